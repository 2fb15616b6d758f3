/* test_hardening.c: regression tests for what the hardening work (fuzzing,
 * the fault matrix) found in state-file handling. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#include "agent.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "task.h"
#include "upgrade.h"
#include "upgrade_state.h"
#include "version.h"

/* A pipeline double (as in test_agent.c): the policy's hand-offs are counted,
 * and the real agent/upgrade.c stays out of this program. */
static int pipeline_starts;

int molt_upgrade_init(struct molt_agent *a, struct molt_err *err)
{
    return 0;
}

void molt_upgrade_start(struct molt_agent *a, const struct molt_command *cmd)
{
    pipeline_starts++;
}

void molt_upgrade_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
}

void molt_upgrade_shutdown(struct molt_agent *a)
{
}

struct sent {
    int n;
    char ids[4][32];
};

static int send_ok(void *arg, const char *task_id, const char *body, size_t len, long *status,
                   struct molt_err *err)
{
    struct sent *s = arg;

    if (s->n < 4)
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", task_id);
    s->n++;
    *status = 200;
    return 0;
}

/* An outbox entry too large to be a report, or one that is not a regular
 * file, is moved aside like any corrupt entry; it used to fail the flush on
 * every attempt and so hold back every later entry for good. */
static void test_outbox_unreadable_entries_moved_aside(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;
    struct sent s = {0};
    struct stat st;
    FILE *f;

    tu_mkdtemp(tmp);
    snprintf(dir, sizeof(dir), "%s/outbox", tmp);
    assert_int_equal(molt_fs_mkdir_p(dir, 0700, &err), 0);
    /* 7: larger than MOLT_OUTBOX_ENTRY_MAX; 8: a directory; 9: a valid report. */
    snprintf(path, sizeof(path), "%s/7.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < MOLT_OUTBOX_ENTRY_MAX + 1; i++)
        fputc(' ', f);
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof(path), "%s/8.json", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    molt_report_init(&r, "9", "20.2-100", MOLT_TASK_FAILED, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_outbox_put(dir, &r, &err), 0);
    assert_int_equal(molt_outbox_count(dir), 3);

    assert_int_equal(molt_outbox_flush(dir, send_ok, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "9");
    assert_int_equal(molt_outbox_count(dir), 0);
    snprintf(path, sizeof(path), "%s/7.json.bad", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, MOLT_OUTBOX_ENTRY_MAX + 1);
    snprintf(path, sizeof(path), "%s/8.json.bad", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    tu_rmtree(tmp);
}

/* An upgrade command: target to_version, applying build_version now. */
static void command(struct molt_command *cmd, const char *task_id, const char *to_version,
                    const char *build_version)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"type\":\"upgrade\",\"taskId\":\"%s\",\"toVersion\":\"%s\","
             "\"requestTime\":1700000000000,\"expiresAt\":1700001800000,\"build\":{"
             "\"version\":\"%s\",\"url\":\"/builds/p.tar.gz\",\"size\":10,\"sha256\":\"%064d\","
             "\"statement\":\"e30K\",\"signature\":\"e30K\"}}",
             task_id, to_version, build_version, 0);
    assert_int_equal(molt_json_parse(text, strlen(text), &o, &err), 0);
    assert_int_equal(molt_command_parse(o, cmd, &err), 0);
    json_object_put(o);
}

static void final_message(const char *dir, const char *task_id, char *out, size_t n)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    struct molt_report r;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/outbox/%s.json", dir, task_id);
    assert_int_equal(molt_fs_read_file(path, 65536, &text, &len, &err), 0);
    assert_int_equal(molt_json_parse(text, len, &o, &err), 0);
    assert_int_equal(molt_report_from_json(o, &r, &err), 0);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    snprintf(out, n, "%s", r.message);
    json_object_put(o);
    free(text);
}

/* With allow_downgrade off, a build older than the running version is refused
 * even when the command names a newer target (as an intermediate hop would):
 * the policy used to look at toVersion only, so a control plane could
 * downgrade through a disguised hop. */
static void test_no_downgrade_through_a_hop(void **state)
{
    char dir[PATH_MAX], msg[512], want[256];
    struct molt_agent *a = calloc(1, sizeof(*a));
    struct molt_command cmd;
    int64_t now = 1700000100000LL;

    assert_non_null(a);
    tu_mkdtemp(dir);
    pthread_mutex_init(&a->mu, NULL);
    molt_outbox_kept_init(&a->kept);
    a->wake_fd = a->lock_fd = -1;
    molt_conf_defaults(&a->conf);
    a->conf.agent.allow_downgrade = 0;
    snprintf(a->state_dir, sizeof(a->state_dir), "%s", dir);
    snprintf(a->outbox_dir, sizeof(a->outbox_dir), "%s/outbox", dir);

    /* A "hop" to an old build on the way to a newer target: refused. */
    command(&cmd, "601", "999.0-1", "1.0-1");
    molt_task_on_command(a, &cmd, now);
    molt_command_free(&cmd);
    assert_int_equal(pipeline_starts, 0);
    final_message(dir, "601", msg, sizeof(msg));
    snprintf(want, sizeof(want), "accepted: downgrade from %s to 1.0-1 not allowed",
             molt_version_self());
    assert_non_null(strstr(msg, want));

    /* A plain downgrade: refused, as before. */
    command(&cmd, "602", "1.0-1", "1.0-1");
    molt_task_on_command(a, &cmd, now);
    molt_command_free(&cmd);
    assert_int_equal(pipeline_starts, 0);
    assert_true(molt_outbox_has(a->outbox_dir, "602"));

    /* A real hop (newer than running, older than the target): accepted. */
    command(&cmd, "603", "999.0-1", "998.0-1");
    molt_task_on_command(a, &cmd, now);
    molt_command_free(&cmd);
    assert_int_equal(pipeline_starts, 1);

    /* Downgrades allowed: the old build goes to the pipeline. */
    a->conf.agent.allow_downgrade = 1;
    command(&cmd, "604", "999.0-1", "1.0-1");
    molt_task_on_command(a, &cmd, now);
    molt_command_free(&cmd);
    assert_int_equal(pipeline_starts, 2);

    molt_outbox_kept_destroy(&a->kept);
    pthread_mutex_destroy(&a->mu);
    free(a);
    tu_rmtree(dir);
}

/* A string with an escaped NUL is refused, not read cut short (seen while
 * writing the fuzz harnesses: "taskId": "12\u000034" was taken as task 12). */
static void test_json_string_with_nul_refused(void **state)
{
    static const char doc[] = "{\"a\": \"x\\u0000y\", \"b\": \"xy\"}";
    static const char cmd_doc[] = "{\"type\": \"cancel\", \"taskId\": \"12\\u000034\"}";
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    struct molt_command cmd;
    const char *s = NULL;

    /* The parser refuses the document; a tree built otherwise is still checked. */
    assert_int_equal(molt_json_parse(doc, strlen(doc), &o, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "JSON: NUL (\\u0000) in a string at offset 8");
    assert_int_equal(molt_json_parse(cmd_doc, strlen(cmd_doc), &o, &err), MOLT_E_PARSE);
    o = json_object_new_object();
    json_object_object_add(o, "a", json_object_new_string_len("x\0y", 3));
    json_object_object_add(o, "b", json_object_new_string("xy"));
    json_object_object_add(o, "type", json_object_new_string("cancel"));
    json_object_object_add(o, "taskId", json_object_new_string_len("12\0" "34", 5));
    assert_int_equal(molt_json_get_str(o, "a", &s, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "field 'a': contains a NUL character"));
    assert_int_equal(molt_json_opt_str(o, "a", &s, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_get_str(o, "b", &s, &err), 0);
    assert_string_equal(s, "xy");
    assert_int_not_equal(molt_command_parse(o, &cmd, &err), 0);
    json_object_put(o);
}

/* upgrade.json names the task directory that is removed when the task ends;
 * a damaged file must not aim that removal anywhere but at a task directory. */
static void test_upgrade_state_task_dir_checked(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t, back;
    struct molt_command cmd;
    char dir[PATH_MAX], path[PATH_MAX], *text = NULL, *p;
    size_t len = 0;
    FILE *f;

    tu_mkdtemp(dir);
    command(&cmd, "77", "999.0-1", "999.0-1");
    assert_int_equal(
        molt_upgrade_state_from_command(&t, &cmd, "1.0-1", "/var/lib/molt/upgrade", &err), 0);
    molt_command_free(&cmd);
    assert_string_equal(t.task_dir, "/var/lib/molt/upgrade/task-77");
    assert_int_equal(molt_upgrade_state_save(dir, &t, &err), 0);
    assert_int_equal(molt_upgrade_state_load(dir, &back, &err), 0);
    molt_upgrade_state_free(&back);

    /* The same file with taskDir "/var/lib/molt": refused, nothing to resume. */
    snprintf(path, sizeof(path), "%s/%s", dir, MOLT_UPGRADE_STATE_FILE);
    assert_int_equal(molt_fs_read_file(path, 1 << 20, &text, &len, &err), 0);
    p = strstr(text, "/upgrade/task-77");
    assert_non_null(p);
    memmove(p, p + strlen("/upgrade/task-77"), strlen(p + strlen("/upgrade/task-77")) + 1);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(text);
    assert_int_equal(molt_upgrade_state_load(dir, &back, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "taskDir is not <upgrade_dir>/task-77"));
    molt_upgrade_state_free(&t);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_unreadable_entries_moved_aside),
        cmocka_unit_test(test_no_downgrade_through_a_hop),
        cmocka_unit_test(test_json_string_with_nul_refused),
        cmocka_unit_test(test_upgrade_state_task_dir_checked),
    };

    molt_log_setup("test_hardening", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
