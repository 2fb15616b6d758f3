/* test_notify.c: the service-manager notifications (lib/notify.c) against a
 * real datagram socket, bound at a path and under an abstract name, and the
 * watchdog variables as sd_watchdog_enabled(3) reads them. */
#include "testutil.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "notify.h"

struct listener {
    char dir[PATH_MAX];
    int fd;
};

/* A datagram socket as the manager binds it; addr is "/path" or "@name". */
static int bind_dgram(const char *addr)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 5 };
    size_t n = strlen(addr);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(n < sizeof(sa.sun_path));
    memcpy(sa.sun_path, addr, n);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0';
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static int setup(void **state)
{
    struct listener *l = calloc(1, sizeof(*l));

    tu_mkdtemp(l->dir);
    l->fd = -1;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct listener *l = *state;

    if (l->fd >= 0)
        close(l->fd);
    tu_rmtree(l->dir);
    free(l);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return 0;
}

static void test_no_manager(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(molt_notify("READY=1", &err), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(molt_notify("READY=1", &err), 0);
}

static void test_path_socket(void **state)
{
    struct listener *l = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/notify", l->dir);
    l->fd = bind_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(molt_notify("READY=1", &err), 1);
    expect_datagram(l->fd, "READY=1");
    assert_int_equal(molt_notify("WATCHDOG=1", &err), 1);
    expect_datagram(l->fd, "WATCHDOG=1");
    assert_int_equal(molt_notify("STATUS=heartbeating\nSTOPPING=1", &err), 1);
    expect_datagram(l->fd, "STATUS=heartbeating\nSTOPPING=1");
}

static void test_abstract_socket(void **state)
{
    struct listener *l = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char name[64];

    snprintf(name, sizeof(name), "@molt-test-notify-%ld", (long)getpid());
    l->fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(molt_notify("READY=1", &err), 1);
    expect_datagram(l->fd, "READY=1");
    assert_int_equal(molt_notify("STOPPING=1", &err), 1);
    expect_datagram(l->fd, "STOPPING=1");
}

static void test_bad_socket(void **state)
{
    struct listener *l = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX], longname[200];

    setenv("NOTIFY_SOCKET", "run/notify", 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_INVAL);
    assert_non_null(strstr(err.msg, "NOTIFY_SOCKET"));
    setenv("NOTIFY_SOCKET", "@", 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_INVAL);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_LIMIT);
    /* 108 bytes: too long for a path (no room for its NUL), not for an abstract name. */
    longname[108] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_LIMIT);
    longname[0] = '@';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_IO);    /* valid, nobody there */
    longname[108] = 'x';    /* 109 bytes */
    longname[109] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_LIMIT);
    /* Nobody listens there: the send fails, saying where it went. */
    snprintf(path, sizeof(path), "%s/absent", l->dir);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(molt_notify("READY=1", &err), MOLT_E_IO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(molt_notify("", &err), MOLT_E_INVAL);
}

static void test_watchdog(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    uint64_t usec = 7;
    char pid[32];

    assert_int_equal(molt_notify_watchdog_usec(&usec, &err), 0);
    assert_int_equal(usec, 7);
    setenv("WATCHDOG_USEC", "400000", 1);
    assert_int_equal(molt_notify_watchdog_usec(&usec, &err), 1);
    assert_int_equal(usec, 400000);
    setenv("WATCHDOG_USEC", "18446744073709551614", 1);
    assert_int_equal(molt_notify_watchdog_usec(&usec, &err), 1);
    assert_true(usec == UINT64_MAX - 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(molt_notify_watchdog_usec(&usec, &err), 1);
    assert_int_equal(usec, 30000000);
    /* The variables were meant for another process (a parent's, inherited). */
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    usec = 7;
    assert_int_equal(molt_notify_watchdog_usec(&usec, &err), 0);
    assert_int_equal(usec, 7);
    assert_string_equal(getenv("WATCHDOG_USEC"), "30000000");
}

static void test_watchdog_invalid(void **state)
{
    static const char *bad_usec[] = { "", "0", "-5", "+5", " 5", "5 ", "5s", "0x10", "abc",
                                      "18446744073709551615", "18446744073709551616" };
    static const char *bad_pid[] = { "", "0", "-1", "x", "12a", "99999999999" };
    struct molt_err err = MOLT_ERR_INIT;
    uint64_t usec = 7;

    for (size_t i = 0; i < sizeof(bad_usec) / sizeof(bad_usec[0]); i++) {
        setenv("WATCHDOG_USEC", bad_usec[i], 1);
        assert_int_equal(molt_notify_watchdog_usec(&usec, &err), MOLT_E_INVAL);
        assert_non_null(strstr(err.msg, "WATCHDOG_USEC"));
    }
    setenv("WATCHDOG_USEC", "400000", 1);
    for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++) {
        setenv("WATCHDOG_PID", bad_pid[i], 1);
        assert_int_equal(molt_notify_watchdog_usec(&usec, &err), MOLT_E_INVAL);
        assert_non_null(strstr(err.msg, "WATCHDOG_PID"));
    }
    assert_int_equal(usec, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_manager, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abstract_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_invalid, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
