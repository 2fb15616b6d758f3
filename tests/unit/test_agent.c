/* test_agent.c: agent/agent.c's start-up and stop with a pipeline double
 * given through struct molt_agent_parts (no server: nothing here heartbeats),
 * and the task slot wired to the main loop. */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "http.h"
#include "log.h"
#include "pipeline.h"
#include "report.h"
#include "task.h"

/* What the agent asked of its parts, in order. */
static struct {
    char calls[128];
    int init_rc;
    struct molt_agent *agent;
} seen;

static void called(const char *what)
{
    size_t n = strlen(seen.calls);

    snprintf(seen.calls + n, sizeof(seen.calls) - n, "%s%s", n ? " " : "", what);
}

static int double_init(struct molt_agent *a, struct molt_err *err)
{
    called("init");
    seen.agent = a;
    return seen.init_rc < 0 ? molt_err_set(err, seen.init_rc, "pipeline double refused") : 0;
}

static void double_start(struct molt_agent *a, const struct molt_command *cmd)
{
    called("start");
}

static void double_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
    called("cancel");
}

static void double_shutdown(struct molt_agent *a)
{
    called("shutdown");
}

static int double_routes(struct molt_agent *a, struct molt_err *err)
{
    called("routes");
    return 0;
}

static const struct molt_pipeline pipeline_double = {
    .init = double_init,
    .start = double_start,
    .cancel = double_cancel,
    .shutdown = double_shutdown,
};

static const struct molt_agent_parts parts = {
    .pipeline = &pipeline_double,
    .api_routes = double_routes,
};

/* A configuration whose every directory is under dir. */
static void write_config(char path[PATH_MAX], const char *dir)
{
    char text[4096], mid[PATH_MAX];

    tu_write(mid, dir, "machine-id", "0123456789abcdef0123456789abcdef\n");
    snprintf(text, sizeof(text),
             "[server]\nurl = https://127.0.0.1:9\n"
             "[agent]\nstate_dir = %s/state\nrun_dir = %s/run\nmachine_id_file = %s\n"
             "log_level = error\n"
             "[install]\nroot = %s/root\n",
             dir, dir, mid, dir);
    tu_write(path, dir, "molt.conf", text);
}

/* Start-up gives the parts their turns (routes, then the pipeline's init
 * before the API serves), the task slot reaches the pipeline and wakes the
 * main loop for a final report, and stop ends the pipeline. */
static void test_agent_parts(void **state)
{
    char dir[PATH_MAX], conf[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_agent *a = calloc(1, sizeof(*a));
    struct molt_agent_status st;
    struct molt_report r;

    assert_non_null(a);
    memset(&seen, 0, sizeof(seen));
    tu_mkdtemp(dir);
    write_config(conf, dir);
    assert_int_equal(molt_agent_init(a, conf, &parts, &err), 0);
    assert_string_equal(seen.calls, "routes init");
    assert_ptr_equal(seen.agent, a);

    molt_report_init(&r, "7", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_DOWNLOADING);
    r.bytes_done = 100;
    assert_int_equal(molt_task_begin(&a->tasks, &r, &err), 0);
    r.bytes_done = 300;
    assert_int_equal(molt_task_update(&a->tasks, &r, &err), 0);
    molt_agent_status(a, &st);
    assert_true(st.has_task);
    assert_string_equal(st.task.task_id, "7");
    assert_int_equal(st.bytes_downloaded, 200);
    assert_int_equal(atomic_load(&a->wake), 0);
    r.status = MOLT_TASK_SUCCEEDED;
    assert_int_equal(molt_task_finish(&a->tasks, &r, &err), 0);
    assert_true(atomic_load(&a->wake) & MOLT_WAKE_OUTBOX);
    molt_agent_status(a, &st);
    assert_false(st.has_task);

    molt_agent_cleanup(a);
    assert_string_equal(seen.calls, "routes init shutdown");
    free(a);
    tu_rmtree(dir);
}

/* A pipeline that cannot start is fatal, and is still shut down. */
static void test_agent_pipeline_init_fails(void **state)
{
    char dir[PATH_MAX], conf[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_agent *a = calloc(1, sizeof(*a));

    assert_non_null(a);
    memset(&seen, 0, sizeof(seen));
    seen.init_rc = MOLT_E_STATE;
    tu_mkdtemp(dir);
    write_config(conf, dir);
    assert_int_equal(molt_agent_init(a, conf, &parts, &err), MOLT_EXIT_FATAL);
    assert_string_equal(err.msg, "pipeline double refused");
    molt_agent_cleanup(a);
    assert_string_equal(seen.calls, "routes init shutdown");
    free(a);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_parts),
        cmocka_unit_test(test_agent_pipeline_init_fails),
    };
    struct molt_err err = MOLT_ERR_INIT;
    int rc;

    molt_log_setup("test_agent", MOLT_LOG_ERROR, 0);
    if (molt_http_global_init(&err) < 0)
        fail_msg("%s", err.msg);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    molt_http_global_cleanup();
    return rc;
}
