/* watch_events.c: the agent's side of an after-commit rollback: the event it
 * raises for the control plane, read from the journal's outcome, and the test
 * builds' crash-after-commit fault. */
#include "watch_events.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h" /* MOLT_FAULT_POINTS */
#include "host.h"
#include "log.h"
#include "outbox.h"
#include "version.h"

#define MOLT_WATCH_CRASH_MS 30000

int molt_watch_load_journal(const char *state_dir, struct molt_journal *j)
{
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];

    if (molt_journal_path(path, sizeof(path), state_dir, &err) < 0 ||
        molt_journal_load(path, j, &err) < 0) {
        molt_log_warn("watch.journal", "error=\"%s\"", err.msg);
        return -1;
    }
    return 0;
}

/* Is (task_id, at) still an after-commit rollback in the journal? */
static int in_journal(void *arg, const char *task_id, int64_t at_ms)
{
    const struct molt_journal *j = arg;

    for (size_t i = 0; i < j->n_outcomes; i++) {
        const struct molt_journal_outcome *o = &j->outcomes[i];
        if (o->after_commit && o->at_ms == at_ms && strcmp(o->task_id, task_id) == 0)
            return 1;
    }
    return 0;
}

void molt_watch_queue_events(const char *state_dir, const char *outbox_dir)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal *j = malloc(sizeof(*j));

    if (!j)
        return;
    if (molt_watch_load_journal(state_dir, j) < 0)
        goto out;
    for (size_t i = 0; i < j->n_outcomes; i++) {
        const struct molt_journal_outcome *o = &j->outcomes[i];
        struct molt_outbox_event e;

        /* A manual revert has no task: nothing on the server to attach it to. */
        if (!o->after_commit || !o->task_id[0])
            continue;
        memset(&e, 0, sizeof(e));
        snprintf(e.task_id, sizeof(e.task_id), "%s", o->task_id);
        snprintf(e.type, sizeof(e.type), "%s", MOLT_EVENT_ROLLED_BACK_AFTER_COMMIT);
        /* The outcome describes the switch; the event, the way back. */
        snprintf(e.from_version, sizeof(e.from_version), "%s", o->to_version);
        snprintf(e.to_version, sizeof(e.to_version), "%s", o->from_version);
        snprintf(e.reason, sizeof(e.reason), "%s", o->reason);
        e.at_ms = o->at_ms;
        if (molt_outbox_put_event(outbox_dir, &e, &err) < 0) {
            molt_log_error("event.queue", "task=%s error=\"%s\"", e.task_id, err.msg);
            molt_err_clear(&err);
        }
    }
    molt_outbox_prune_events(outbox_dir, in_journal, j);
out:
    free(j);
}

void molt_watch_mark_clean_exit(const char *state_dir)
{
    struct molt_err err = MOLT_ERR_INIT;

    if (state_dir[0] && molt_journal_mark_clean_exit(state_dir, molt_version_self(), &err) < 0)
        molt_log_warn("watch.clean_exit", "error=\"%s\"", err.msg);
}

void molt_watch_fault_tick(const char *state_dir)
{
#ifdef MOLT_FAULT_POINTS
    const char *list = getenv("MOLT_FAULT");
    const struct molt_journal_outcome *o;
    struct molt_journal *j;

    if (!list || !strstr(list, "agent.watch_crash"))
        return;
    j = malloc(sizeof(*j));
    if (!j)
        return;
    if (molt_watch_load_journal(state_dir, j) == 0 &&
        molt_journal_watching(j, molt_host_realtime_ms()) &&
        strcmp(j->to_version, molt_version_self()) == 0 &&
        (o = molt_journal_find_outcome(j, j->task_id)) != NULL &&
        o->result == MOLT_JOURNAL_RESULT_COMMITTED &&
        molt_host_realtime_ms() - o->at_ms >= MOLT_WATCH_CRASH_MS) {
        /* Not MOLT_FAULT_POINT: it must fire in every start (a crash loop),
         * also when MOLT_FAULT_ONCE_DIR makes the other points fire once. */
        molt_log_warn("fault.kill", "point=agent.watch_crash action=kill");
        kill(getpid(), SIGKILL);
    }
    free(j);
#else
    (void)state_dir;
#endif
}
