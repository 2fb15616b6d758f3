/* task.c: the current-task slot, final reports, and the command policy. */
#include "task.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "version.h"

void molt_tasks_init(struct molt_tasks *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    molt_outbox_kept_init(&t->kept);
}

void molt_tasks_destroy(struct molt_tasks *t)
{
    molt_outbox_kept_destroy(&t->kept);
    pthread_mutex_destroy(&t->mu);
}

int molt_task_begin(struct molt_tasks *t, const struct molt_report *r, struct molt_err *err)
{
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    if (t->active && strcmp(t->task.task_id, r->task_id) != 0) {
        rc = molt_err_set(err, MOLT_E_BUSY, "another task is in progress: %s", t->task.task_id);
    } else {
        t->task = *r;
        t->active = 1;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc == 0)
        molt_log_info("task.begin", "task=%s build=%s stage=%s", r->task_id, r->build_version,
                      r->stage);
    return rc;
}

int molt_task_update(struct molt_tasks *t, const struct molt_report *r, struct molt_err *err)
{
    int rc = 0, stage_changed = 0;

    pthread_mutex_lock(&t->mu);
    if (!t->active || strcmp(t->task.task_id, r->task_id) != 0) {
        rc = molt_err_set(err, MOLT_E_STATE, "task %s does not hold the task slot", r->task_id);
    } else {
        /* by name too: waiting shares staging's index */
        stage_changed = t->task.stage_index != r->stage_index ||
                        strcmp(t->task.stage, r->stage) != 0;
        if (r->bytes_done > t->task.bytes_done)
            t->bytes_downloaded += r->bytes_done - t->task.bytes_done;
        t->task = *r;
    }
    pthread_mutex_unlock(&t->mu);
    if (stage_changed)
        molt_log_info("task.stage", "task=%s stage=%s index=%d/%d", r->task_id, r->stage,
                      r->stage_index, r->stage_count);
    return rc;
}

int molt_task_current(struct molt_tasks *t, struct molt_report *out)
{
    int active;

    pthread_mutex_lock(&t->mu);
    active = t->active;
    if (active)
        *out = t->task;
    pthread_mutex_unlock(&t->mu);
    return active;
}

int64_t molt_task_bytes_downloaded(struct molt_tasks *t)
{
    int64_t n;

    pthread_mutex_lock(&t->mu);
    n = t->bytes_downloaded;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static int recent_locked(struct molt_tasks *t, const char *task_id)
{
    for (unsigned i = 0; i < MOLT_RECENT_TASKS; i++) {
        if (t->recent[i][0] && strcmp(t->recent[i], task_id) == 0)
            return 1;
    }
    return 0;
}

int molt_task_recently_finished(struct molt_tasks *t, const char *task_id)
{
    int found;

    pthread_mutex_lock(&t->mu);
    found = recent_locked(t, task_id);
    pthread_mutex_unlock(&t->mu);
    return found || molt_outbox_has(t->outbox_dir, task_id) ||
           molt_outbox_kept_has(&t->kept, task_id);
}

int molt_task_finish(struct molt_tasks *t, const struct molt_report *final, struct molt_err *err)
{
    int rc;

    if (final->status != MOLT_TASK_SUCCEEDED && final->status != MOLT_TASK_FAILED)
        return molt_err_set(err, MOLT_E_INVAL, "final report with status %d", final->status);
    rc = final->local ? 0 : molt_outbox_put(t->outbox_dir, final, err);
    if (rc < 0) {
        /* Still the final word on the task: hold it in memory and send it. */
        molt_log_error("report.unsaved", "task=%s error=\"%s\" kept=memory", final->task_id,
                       err->msg);
        molt_outbox_keep(&t->kept, final);
    }
    pthread_mutex_lock(&t->mu);
    if (t->active && strcmp(t->task.task_id, final->task_id) == 0)
        t->active = 0;
    if (!recent_locked(t, final->task_id)) {
        snprintf(t->recent[t->recent_next], sizeof(t->recent[0]), "%s", final->task_id);
        t->recent_next = (t->recent_next + 1) % MOLT_RECENT_TASKS;
    }
    pthread_mutex_unlock(&t->mu);
    molt_log_info("task.final", "task=%s status=%d stage=%s build=%s message=\"%s\"%s",
                  final->task_id, final->status, final->stage, final->build_version,
                  final->message, final->local ? " local=1 reported=no" : "");
    if (!final->local && t->queued_fn)
        t->queued_fn(t->queued_arg);
    return 0;
}

/* A final report for a command the core answers itself. */
static void answer(struct molt_tasks *t, const struct molt_command *cmd, int status, int stage,
                   const char *message)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    molt_report_init(&r, cmd->task_id, cmd->build.version[0] ? cmd->build.version :
                     molt_version_self(), status, stage);
    if (message)
        snprintf(r.message, sizeof(r.message), "%s", message);
    if (molt_task_finish(t, &r, &err) < 0)
        molt_log_error("task.final", "task=%s error=\"%s\"", cmd->task_id, err.msg);
}

static void on_cancel(struct molt_tasks *t, const struct molt_command *cmd)
{
    struct molt_report cur;

    if (molt_task_current(t, &cur) && strcmp(cur.task_id, cmd->task_id) == 0) {
        t->pipeline->cancel(t->agent, cmd);
        return;
    }
    molt_log_info("command.answer", "type=cancel task=%s reason=\"unknown task\"", cmd->task_id);
    answer(t, cmd, MOLT_TASK_FAILED, MOLT_STAGE_ACCEPTED, "cancelled");
}

static void on_upgrade(struct molt_tasks *t, const struct molt_command *cmd, int64_t now_ms,
                       int allow_downgrade)
{
    const char *self = molt_version_self();
    struct molt_report cur;
    char msg[160];

    if (molt_task_current(t, &cur)) {
        if (strcmp(cur.task_id, cmd->task_id) != 0) {
            molt_log_warn("command.refused", "task=%s reason=busy current=%s", cmd->task_id,
                          cur.task_id);
            snprintf(msg, sizeof(msg), "accepted: another task is in progress: %s", cur.task_id);
            answer(t, cmd, MOLT_TASK_FAILED, MOLT_STAGE_ACCEPTED, msg);
            return;
        }
        if (strcmp(cur.build_version, cmd->build.version) == 0)
            return;    /* already carrying it out */
    }
    if (cmd->expires_at <= now_ms) {
        snprintf(msg, sizeof(msg), "accepted: command expired %lld ms ago",
                 (long long)(now_ms - cmd->expires_at));
        answer(t, cmd, MOLT_TASK_FAILED, MOLT_STAGE_ACCEPTED, msg);
        return;
    }
    if (molt_version_cmp(cmd->to_version, self) == 0) {
        answer(t, cmd, MOLT_TASK_SUCCEEDED, MOLT_STAGE_COMMITTED, "already running");
        return;
    }
    /* The build applied now counts, not only the target: a build older than
     * the running version is a downgrade even when it comes as a "hop". */
    const char *lowest = molt_version_cmp(cmd->build.version, cmd->to_version) < 0
                             ? cmd->build.version
                             : cmd->to_version;
    if (molt_version_cmp(lowest, self) < 0 && !allow_downgrade) {
        snprintf(msg, sizeof(msg), "accepted: downgrade from %s to %s not allowed "
                 "(agent.allow_downgrade = false)", self, lowest);
        answer(t, cmd, MOLT_TASK_FAILED, MOLT_STAGE_ACCEPTED, msg);
        return;
    }
    t->pipeline->start(t->agent, cmd);
}

void molt_task_on_command(struct molt_tasks *t, const struct molt_command *cmd, int64_t now_ms,
                          int allow_downgrade)
{
    struct molt_report cur;

    /* A finished task's command may be repeated until the server has our report. */
    if (molt_task_recently_finished(t, cmd->task_id) &&
        !(molt_task_current(t, &cur) && strcmp(cur.task_id, cmd->task_id) == 0)) {
        molt_log_debug("command.repeat", "type=%s task=%s", molt_command_type_name(cmd->type),
                       cmd->task_id);
        return;
    }
    if (cmd->type == MOLT_CMD_CANCEL)
        on_cancel(t, cmd);
    else
        on_upgrade(t, cmd, now_ms, allow_downgrade);
}
