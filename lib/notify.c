/* notify.c: sd_notify(3) and sd_watchdog_enabled(3), reimplemented (see notify.h). */
#include "notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A decimal without sign, spaces or leading '+': what the manager writes. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* $NOTIFY_SOCKET as an address: "/path" or "@abstract" (the '@' becomes the
 * leading NUL, and the length counts no terminator, as systemd binds it). */
static int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len,
                          struct molt_err *err)
{
    size_t n = strlen(name);
    /* A path needs its NUL in sun_path; an abstract name has none. */
    size_t max = sizeof(sa->sun_path) - (name[0] == '/');

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if ((name[0] != '/' && name[0] != '@') || n < 2)
        return molt_err_set(err, MOLT_E_INVAL,
                            "NOTIFY_SOCKET: not an absolute path or @abstract name: '%s'", name);
    if (n > max)
        return molt_err_set(err, MOLT_E_LIMIT, "NOTIFY_SOCKET: longer than %zu bytes", max);
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int molt_notify(const char *state, struct molt_err *err)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t sa_len = 0;
    size_t n = strlen(state);
    ssize_t sent;
    int fd, rc;

    if (!name || !*name)
        return 0;
    if (n == 0)
        return molt_err_set(err, MOLT_E_INVAL, "notify: empty state");
    if ((rc = notify_address(name, &sa, &sa_len, err)) < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return molt_err_errno(err, "notify: socket");
    sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, sa_len);
    if (sent < 0)
        rc = molt_err_errno(err, "notify: send to %s", name);
    else if ((size_t)sent != n)
        rc = molt_err_set(err, MOLT_E_IO, "notify: short send to %s", name);
    else
        rc = 1;
    close(fd);
    return rc;
}

int molt_notify_watchdog_usec(uint64_t *usec, struct molt_err *err)
{
    const char *s = getenv("WATCHDOG_USEC"), *p;
    uint64_t v, pid;

    if (!s)
        return 0;
    /* 0 and UINT64_MAX (infinity) mean no watchdog to systemd; it rejects both. */
    if (parse_u64(s, &v) < 0 || v == 0 || v == UINT64_MAX)
        return molt_err_set(err, MOLT_E_INVAL, "WATCHDOG_USEC: not a number of microseconds: '%s'",
                            s);
    p = getenv("WATCHDOG_PID");
    if (p) {
        if (parse_u64(p, &pid) < 0 || pid == 0 || pid > (uint64_t)INT32_MAX)
            return molt_err_set(err, MOLT_E_INVAL, "WATCHDOG_PID: not a process id: '%s'", p);
        if ((pid_t)pid != getpid())
            return 0;
    }
    *usec = v;
    return 1;
}
