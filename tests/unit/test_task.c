/* test_task.c: agent/task.c: the task slot, final reports, and the command
 * policy (what reaches the pipeline, what the core answers itself). */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_testutil.h"
#include "log.h"
#include "outbox.h"
#include "pipeline.h"
#include "task.h"
#include "version.h"

/* A pipeline double, given to the task slot as the agent gives the real one:
 * the policy's hand-offs are recorded, so the test sees what reached the
 * pipeline and what the core answered itself. */
static struct {
    int starts, cancels;
    char last_task[MOLT_TASK_ID_MAX + 1];
} pipeline;

static int double_init(struct molt_agent *a, struct molt_err *err)
{
    return 0;
}

static void double_start(struct molt_agent *a, const struct molt_command *cmd)
{
    pipeline.starts++;
    snprintf(pipeline.last_task, sizeof(pipeline.last_task), "%s", cmd->task_id);
}

static void double_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
    pipeline.cancels++;
    snprintf(pipeline.last_task, sizeof(pipeline.last_task), "%s", cmd->task_id);
}

static void double_shutdown(struct molt_agent *a)
{
}

static const struct molt_pipeline pipeline_double = {
    .init = double_init,
    .start = double_start,
    .cancel = double_cancel,
    .shutdown = double_shutdown,
};

/* A task slot whose final reports go to <dir>/outbox. */
static struct molt_tasks *tasks_for_tests(const char *dir, char outbox_dir[PATH_MAX])
{
    struct molt_tasks *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    molt_tasks_init(t);
    snprintf(outbox_dir, PATH_MAX, "%s/outbox", dir);
    t->outbox_dir = outbox_dir;
    t->pipeline = &pipeline_double;
    memset(&pipeline, 0, sizeof(pipeline));
    return t;
}

static void tasks_free(struct molt_tasks *t)
{
    molt_tasks_destroy(t);
    free(t);
}

static void make_cmd(struct molt_command *cmd, const char *key, const char *value)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(tu_parse_command(tu_upgrade_json(key, value), cmd, &err), 0);
}

static void test_task_policy(void **state)
{
    char dir[PATH_MAX], outbox[PATH_MAX], v[96];
    struct molt_tasks *t;
    int allow_downgrade = 1;
    struct molt_report r, cur;
    struct molt_command cmd;
    struct molt_err err = MOLT_ERR_INIT;
    int64_t now = 1700000100000LL;

    tu_mkdtemp(dir);
    t = tasks_for_tests(dir, outbox);

    /* The running version: 2 at once. */
    snprintf(v, sizeof(v), "\"%s\"", molt_version_self());
    make_cmd(&cmd, "toVersion", v);
    snprintf(cmd.task_id, sizeof(cmd.task_id), "501");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    tu_read_final(dir, "501", &r);
    assert_int_equal(r.status, MOLT_TASK_SUCCEEDED);
    molt_command_free(&cmd);

    /* Expired: 3, naming the stage. */
    make_cmd(&cmd, NULL, NULL);
    snprintf(cmd.task_id, sizeof(cmd.task_id), "502");
    molt_task_on_command(t, &cmd, cmd.expires_at + 1, allow_downgrade);
    tu_read_final(dir, "502", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "accepted: command expired"));

    assert_int_equal(pipeline.starts, 0);

    /* A valid upgrade goes to the pipeline; the core writes nothing final. */
    snprintf(cmd.task_id, sizeof(cmd.task_id), "503");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    assert_int_equal(pipeline.starts, 1);
    assert_string_equal(pipeline.last_task, "503");
    assert_false(molt_outbox_has(t->outbox_dir, "503"));

    /* Another task in progress: 3 for the newcomer, the other untouched. */
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_DOWNLOADING);
    assert_int_equal(molt_task_begin(t, &r, &err), 0);
    molt_report_init(&r, "401", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_ACCEPTED);
    assert_int_equal(molt_task_begin(t, &r, &err), MOLT_E_BUSY);
    assert_non_null(strstr(err.msg, "another task is in progress: 400"));
    snprintf(cmd.task_id, sizeof(cmd.task_id), "504");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    tu_read_final(dir, "504", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "another task is in progress: 400"));
    assert_true(molt_task_current(t, &cur));
    assert_string_equal(cur.task_id, "400");
    assert_string_equal(cur.stage, "downloading");
    assert_int_equal(pipeline.starts, 1);
    /* The current task's own command (same build) is already being carried out. */
    snprintf(cmd.task_id, sizeof(cmd.task_id), "400");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    assert_int_equal(pipeline.starts, 1);
    assert_false(molt_outbox_has(t->outbox_dir, "400"));
    /* The same task with another build is its next hop: the pipeline's business. */
    snprintf(cmd.build.version, sizeof(cmd.build.version), "20.3-1");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    assert_int_equal(pipeline.starts, 2);
    snprintf(cmd.build.version, sizeof(cmd.build.version), "20.2-100");
    snprintf(cmd.task_id, sizeof(cmd.task_id), "504");
    /* The same command again (the server repeats it): ignored, not re-answered. */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/outbox/504.json", dir);
    assert_int_equal(unlink(path), 0);
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    assert_false(molt_outbox_has(t->outbox_dir, "504"));
    molt_command_free(&cmd);

    /* A cancel for the current task goes to the pipeline. */
    struct molt_command cancel;
    assert_int_equal(tu_parse_command("{\"type\":\"cancel\",\"taskId\":\"400\"}", &cancel, &err),
                     0);
    molt_task_on_command(t, &cancel, now, allow_downgrade);
    assert_int_equal(pipeline.cancels, 1);
    assert_false(molt_outbox_has(t->outbox_dir, "400"));

    /* Progress updates only for the slot's holder; finishing frees the slot. */
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_update(t, &r, &err), 0);
    molt_report_init(&r, "999", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_update(t, &r, &err), MOLT_E_STATE);
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_COMMITTED);
    assert_int_not_equal(molt_task_finish(t, &r, &err), 0);   /* 6 is not final */
    r.status = MOLT_TASK_SUCCEEDED;
    assert_int_equal(molt_task_finish(t, &r, &err), 0);
    assert_false(molt_task_current(t, &cur));
    assert_true(molt_task_recently_finished(t, "400"));

    /* An outbox that takes no files: the final report is kept in memory, the
     * slot is freed all the same, and the task counts as finished. */
    char blocker[PATH_MAX], blocked[PATH_MAX];
    tu_write(blocker, dir, "not-a-dir", "x");
    snprintf(blocked, sizeof(blocked), "%s/outbox", blocker);
    t->outbox_dir = blocked;
    molt_report_init(&r, "401", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_begin(t, &r, &err), 0);
    r.status = MOLT_TASK_FAILED;
    assert_int_equal(molt_task_finish(t, &r, &err), 0);
    assert_false(molt_task_current(t, &cur));
    assert_true(molt_outbox_kept_has(&t->kept, "401"));
    assert_true(molt_task_recently_finished(t, "401"));
    t->outbox_dir = outbox;

    /* Downgrade refused when configured so. */
    allow_downgrade = 0;
    make_cmd(&cmd, "toVersion", "\"1.0-1\"");
    snprintf(cmd.task_id, sizeof(cmd.task_id), "505");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    tu_read_final(dir, "505", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "downgrade"));
    molt_command_free(&cmd);

    /* Cancel of a task unknown here: 3 "cancelled". */
    assert_int_equal(tu_parse_command("{\"type\":\"cancel\",\"taskId\":\"506\"}", &cmd, &err), 0);
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    tu_read_final(dir, "506", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_string_equal(r.message, "cancelled");
    assert_int_equal(pipeline.cancels, 1);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 2);

    tasks_free(t);
    tu_rmtree(dir);
}

/* With allow_downgrade off, a build older than the running version is refused
 * even when the command names a newer target (as an intermediate hop would):
 * the policy used to look at toVersion only, so a control plane could
 * downgrade through a disguised hop. */
static void test_no_downgrade_through_a_hop(void **state)
{
    char dir[PATH_MAX], outbox[PATH_MAX], want[256];
    struct molt_tasks *t;
    struct molt_report r;
    struct molt_command cmd;
    int64_t now = 1700000100000LL;
    int allow_downgrade = 0;

    tu_mkdtemp(dir);
    t = tasks_for_tests(dir, outbox);

    /* A "hop" to an old build on the way to a newer target: refused. */
    tu_command(&cmd, "601", "999.0-1", "1.0-1");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 0);
    tu_read_final(dir, "601", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    snprintf(want, sizeof(want), "accepted: downgrade from %s to 1.0-1 not allowed",
             molt_version_self());
    assert_non_null(strstr(r.message, want));

    /* A plain downgrade: refused, as before. */
    tu_command(&cmd, "602", "1.0-1", "1.0-1");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 0);
    assert_true(molt_outbox_has(t->outbox_dir, "602"));

    /* A real hop (newer than running, older than the target): accepted. */
    tu_command(&cmd, "603", "999.0-1", "998.0-1");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 1);

    /* Downgrades allowed: the old build goes to the pipeline. */
    allow_downgrade = 1;
    tu_command(&cmd, "604", "999.0-1", "1.0-1");
    molt_task_on_command(t, &cmd, now, allow_downgrade);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 2);

    tasks_free(t);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_policy),
        cmocka_unit_test(test_no_downgrade_through_a_hop),
    };

    molt_log_setup("test_task", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
