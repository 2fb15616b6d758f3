/* test_host.c: lib/host.c: host facts, the machine id, refreshing. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "host.h"

static void test_host_facts(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host host;
    char dir[PATH_MAX], path[PATH_MAX], id[33];

    assert_string_equal(molt_host_arch_name("x86_64"), "amd64");
    assert_string_equal(molt_host_arch_name("aarch64"), "aarch64");
    assert_string_equal(molt_host_arch_name("arm64"), "aarch64");
    assert_string_equal(molt_host_arch_name("mips"), "mips");
    assert_int_equal(molt_host_read(&host, &err), 0);
    assert_string_equal(host.os_name, "Linux");
    assert_string_equal(host.os_id, "linux");
    assert_true(strlen(host.os_version) > 0);
    assert_true(host.uptime_ms > 0);
    assert_true(strlen(host.host_name) > 0);

    tu_mkdtemp(dir);
    tu_write(path, dir, "good", "0123456789abcdef0123456789ABCDEF\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), 0);
    assert_string_equal(id, "0123456789abcdef0123456789ABCDEF");
    tu_write(path, dir, "short", "0123\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "expected 32 hex digits"));
    tu_write(path, dir, "nothex", "0123456789abcdef0123456789abcdeZ\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    tu_rmtree(dir);
}

static void test_host_machine_id(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX], id[33];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host h;

    tu_mkdtemp(dir);
    tu_write(path, dir, "ok", "4c4c4544003957108052b4c04f4e4d31\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), 0);
    assert_string_equal(id, "4c4c4544003957108052b4c04f4e4d31");
    tu_write(path, dir, "short", "4c4c4544\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    tu_write(path, dir, "nonhex", "zc4c4544003957108052b4c04f4e4d31\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_NOTFOUND);
    tu_rmtree(dir);

    assert_int_equal(molt_host_read(&h, &err), 0);
    assert_true(h.host_name[0] != '\0');
    assert_true(h.time_zone[0] != '\0');
    assert_true(h.uptime_ms > 0);
    assert_true(molt_host_monotonic_ms() > 0);
    assert_true(molt_host_realtime_ms() > 1577836800000LL);    /* after 2020 */
}

static int64_t boottime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Heartbeats report cached facts for up to max_age, a current uptime always, and the facts
 * read again once they are older (or on demand). */
static void test_host_refresh(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host h, real;
    int64_t before, after;

    assert_int_equal(molt_host_read(&real, &err), 0);
    assert_true(real.read_mono_ms > 0);
    h = real;
    snprintf(h.host_name, sizeof(h.host_name), "cached-name");
    h.uptime_ms = 0;
    before = boottime_ms();
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    after = boottime_ms();
    assert_string_equal(h.host_name, "cached-name");    /* not read again */
    assert_true(h.uptime_ms >= before && h.uptime_ms <= after);
    assert_int_equal(h.read_mono_ms, real.read_mono_ms);

    h.read_mono_ms -= MOLT_HOST_REFRESH_MS;              /* a minute old */
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    assert_string_equal(h.host_name, real.host_name);
    assert_string_equal(h.os_version, real.os_version);
    assert_true(h.read_mono_ms >= real.read_mono_ms);

    snprintf(h.host_name, sizeof(h.host_name), "cached-name");
    h.read_mono_ms = 0;                                  /* forced, as on reload */
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    assert_string_equal(h.host_name, real.host_name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_facts),
        cmocka_unit_test(test_host_machine_id),
        cmocka_unit_test(test_host_refresh),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
