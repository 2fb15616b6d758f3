/* test_upgrade_state.c: agent/upgrade_state.c: upgrade.json and what is
 * refused in it. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_testutil.h"
#include "fs.h"
#include "log.h"
#include "upgrade_state.h"

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
    tu_command(&cmd, "77", "999.0-1", "999.0-1");
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

/* A command's maxBytesPerSecond survives a restart: a resumed download keeps
 * the server's rate (absent stays absent). */
static void test_upgrade_state_keeps_rate(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t, back;
    struct molt_command cmd;
    char dir[PATH_MAX];

    tu_mkdtemp(dir);
    for (int64_t rate = 0; rate <= 65536; rate += 65536) {
        tu_command(&cmd, "78", "999.0-1", "999.0-1");
        cmd.max_rate = rate;
        assert_int_equal(
            molt_upgrade_state_from_command(&t, &cmd, "1.0-1", "/var/lib/molt/upgrade", &err), 0);
        molt_command_free(&cmd);
        assert_int_equal(molt_upgrade_state_save(dir, &t, &err), 0);
        assert_int_equal(molt_upgrade_state_load(dir, &back, &err), 0);
        assert_int_equal(back.max_rate, rate);
        molt_upgrade_state_free(&back);
        molt_upgrade_state_free(&t);
    }
    tu_rmtree(dir);
}

/* The mirror list and the source in use survive a restart, so a resumed
 * download goes on from the same source; an index the list lacks is refused. */
static void test_upgrade_state_keeps_source(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t, back;
    struct molt_command cmd;
    char dir[PATH_MAX], path[PATH_MAX], *text = NULL, *p;
    size_t len = 0;
    FILE *f;

    tu_mkdtemp(dir);
    tu_command(&cmd, "79", "999.0-1", "999.0-1");
    snprintf(cmd.build.mirrors[0], sizeof(cmd.build.mirrors[0]), "https://a.example/p");
    snprintf(cmd.build.mirrors[1], sizeof(cmd.build.mirrors[1]), "https://b.example/p");
    cmd.build.n_mirrors = 2;
    assert_int_equal(
        molt_upgrade_state_from_command(&t, &cmd, "1.0-1", "/var/lib/molt/upgrade", &err), 0);
    molt_command_free(&cmd);
    assert_int_equal(t.source, 0);
    t.source = 2;   /* the origin */
    assert_int_equal(molt_upgrade_state_save(dir, &t, &err), 0);
    assert_int_equal(molt_upgrade_state_load(dir, &back, &err), 0);
    assert_int_equal(back.source, 2);
    assert_int_equal(back.build.n_mirrors, 2);
    assert_string_equal(back.build.mirrors[1], "https://b.example/p");
    molt_upgrade_state_free(&back);

    /* downloadSource 3 with three sources: refused, not a read past the list. */
    snprintf(path, sizeof(path), "%s/%s", dir, MOLT_UPGRADE_STATE_FILE);
    assert_int_equal(molt_fs_read_file(path, 1 << 20, &text, &len, &err), 0);
    p = strstr(text, "\"downloadSource\": 2");
    if (!p)
        p = strstr(text, "\"downloadSource\":2");
    assert_non_null(p);
    p[strlen(p[17] == ' ' ? "\"downloadSource\": " : "\"downloadSource\":")] = '3';
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(text);
    assert_int_equal(molt_upgrade_state_load(dir, &back, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "downloadSource"));
    molt_upgrade_state_free(&t);
    tu_rmtree(dir);
}

/* build.delta survives a restart too: a resumed task can still take the delta. */
static void test_upgrade_state_keeps_delta(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t, back;
    struct molt_command cmd;
    char dir[PATH_MAX];

    tu_mkdtemp(dir);
    for (int with = 0; with <= 1; with++) {
        tu_command(&cmd, "79", "999.0-1", "999.0-1");
        if (with) {
            cmd.build.delta.present = 1;
            snprintf(cmd.build.delta.base_version, sizeof(cmd.build.delta.base_version), "1.0-1");
            snprintf(cmd.build.delta.url, sizeof(cmd.build.delta.url), "/builds/x.delta");
            cmd.build.delta.size = 3964;
            memset(cmd.build.delta.sha256, 'a', 64);
            cmd.build.delta.sha256[64] = '\0';
        }
        assert_int_equal(
            molt_upgrade_state_from_command(&t, &cmd, "1.0-1", "/var/lib/molt/upgrade", &err), 0);
        molt_command_free(&cmd);
        assert_int_equal(molt_upgrade_state_save(dir, &t, &err), 0);
        assert_int_equal(molt_upgrade_state_load(dir, &back, &err), 0);
        assert_int_equal(back.build.delta.present, with);
        if (with) {
            assert_string_equal(back.build.delta.base_version, "1.0-1");
            assert_string_equal(back.build.delta.url, "/builds/x.delta");
            assert_int_equal(back.build.delta.size, 3964);
            assert_string_equal(back.build.delta.sha256, t.build.delta.sha256);
        }
        molt_upgrade_state_free(&back);
        molt_upgrade_state_free(&t);
    }
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_state_task_dir_checked),
        cmocka_unit_test(test_upgrade_state_keeps_delta),
        cmocka_unit_test(test_upgrade_state_keeps_rate),
        cmocka_unit_test(test_upgrade_state_keeps_source),
    };

    molt_log_setup("test_upgrade_state", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
