/* test_health.c: agent/health.c: passes counted, the first failure decides, the
 * reason's last line bounded and masked, a hung check killed with its process
 * group at the timeout, a program that cannot run. Real processes (/bin/sh). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "health.h"

struct progress {
    int calls, last_passed, total;
};

static void on_progress(void *arg, int passed, int total)
{
    struct progress *p = arg;

    p->calls++;
    p->last_passed = passed;
    p->total = total;
}

static void conf_for(struct molt_config *conf, const char *script, int checks, int64_t timeout_ms)
{
    molt_conf_defaults(conf);
    snprintf(conf->install.health_command, sizeof(conf->install.health_command),
             "/bin/sh -c '%s'", script);
    conf->install.health_checks = checks;
    conf->install.health_interval_ms = 10;
    conf->install.health_timeout_ms = timeout_ms;
}

static void test_health_passes(void **state)
{
    struct molt_config conf;
    struct progress p = { 0 };
    char reason[MOLT_HEALTH_REASON_MAX] = "";

    conf_for(&conf, "echo fine", 3, 5000);
    assert_int_equal(molt_health_run(&conf, on_progress, &p, reason, sizeof(reason)), 0);
    assert_int_equal(p.calls, 4);   /* 0/3, then each pass */
    assert_int_equal(p.last_passed, 3);
    assert_int_equal(p.total, 3);
    /* no command: nothing runs, nothing is reported */
    molt_conf_defaults(&conf);
    p.calls = 0;
    assert_int_equal(molt_health_run(&conf, on_progress, &p, reason, sizeof(reason)), 0);
    assert_int_equal(p.calls, 0);
}

static void test_health_fails_with_last_line(void **state)
{
    struct molt_config conf;
    struct progress p = { 0 };
    char reason[MOLT_HEALTH_REASON_MAX];
    char dir[PATH_MAX], script[2 * PATH_MAX + 128], path[PATH_MAX];

    /* the second run fails: the first failure decides, its last line is shown */
    tu_mkdtemp(dir);
    snprintf(script, sizeof(script),
             "#!/bin/sh\n[ -e %s/ran ] || { touch %s/ran; exit 0; }\necho first\n"
             "printf 'db \"down\" \\\\ \\033[0m\\n\\n' >&2\nexit 4\n", dir, dir);
    tu_write(path, dir, "check.sh", script);
    assert_int_equal(chmod(path, 0755), 0);
    molt_conf_defaults(&conf);
    snprintf(conf.install.health_command, sizeof(conf.install.health_command), "%s", path);
    conf.install.health_checks = 3;
    conf.install.health_interval_ms = 10;
    assert_int_equal(molt_health_run(&conf, on_progress, &p, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "health check 2/3 failed (exit 4): db ?down? ? ?[0m");
    assert_int_equal(p.last_passed, 1);
    tu_rmtree(dir);

    /* a long line is cut: the reason stays bounded */
    conf_for(&conf, "head -c 5000 /dev/zero | tr \"\\\\0\" x; exit 1", 1, 5000);
    assert_int_equal(molt_health_run(&conf, NULL, NULL, reason, sizeof(reason)), -1);
    assert_int_equal(strlen(reason), strlen("health check 1/1 failed (exit 1): ") + 200);

    /* killed by a signal */
    conf_for(&conf, "kill -TERM $$", 1, 5000);
    assert_int_equal(molt_health_run(&conf, NULL, NULL, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "health check 1/1 failed (signal 15)");
}

static int dead(pid_t pid)
{
    char path[64], stat[256] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 1;
    if (!fgets(stat, sizeof(stat), f))
        stat[0] = '\0';
    fclose(f);
    const char *close = strrchr(stat, ')');
    return close && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
}

static void test_health_timeout_kills_group(void **state)
{
    struct molt_config conf;
    char reason[MOLT_HEALTH_REASON_MAX];
    char dir[PATH_MAX], script[PATH_MAX + 128], pidfile[PATH_MAX + 8];
    FILE *f;
    long child = 0;

    tu_mkdtemp(dir);
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(script, sizeof(script), "echo waiting; sleep 60 & echo $! >%s; wait", pidfile);
    conf_for(&conf, script, 1, 300);
    assert_int_equal(molt_health_run(&conf, NULL, NULL, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "health check 1/1 failed (timed out after 300ms, killed): waiting");
    f = fopen(pidfile, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &child), 1);
    fclose(f);
    /* the sleep, a grandchild, went with the group (not ours to reap: a zombie is gone) */
    for (int i = 0; i < 250 && !dead((pid_t)child); i++)
        usleep(20000);
    assert_true(dead((pid_t)child));
    tu_rmtree(dir);
}

static void test_health_cannot_exec(void **state)
{
    struct molt_config conf;
    char reason[MOLT_HEALTH_REASON_MAX];

    molt_conf_defaults(&conf);
    snprintf(conf.install.health_command, sizeof(conf.install.health_command),
             "/nonexistent/check --now");
    assert_int_equal(molt_health_run(&conf, NULL, NULL, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "health check 1/1 failed (exit 127): cannot exec "
                                "/nonexistent/check: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_passes),
        cmocka_unit_test(test_health_fails_with_last_line),
        cmocka_unit_test(test_health_timeout_kills_group),
        cmocka_unit_test(test_health_cannot_exec),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
