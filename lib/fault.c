/* fault.c: test-only fault points, driven by the MOLT_FAULT environment variable. */
#include "fault.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p && *p; ) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* 1 when the point should fire now: listed, and not yet fired if once-only. */
static int armed(const char *name)
{
    const char *once = getenv("MOLT_FAULT_ONCE_DIR");
    char path[PATH_MAX];
    int fd;

    if (!listed(getenv("MOLT_FAULT"), name))
        return 0;
    if (!once || !*once)
        return 1;
    snprintf(path, sizeof(path), "%s/%s", once, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;   /* fired before (EEXIST), or no way to remember it: stay quiet */
    fsync(fd);
    close(fd);
    return 1;
}

int molt_fault_inject(const char *name)
{
    if (!armed(name))
        return 0;
    molt_log_warn("fault.inject", "point=%s action=inject", name);
    return 1;
}

void molt_fault_point(const char *name)
{
    const char *action = getenv("MOLT_FAULT_ACTION");

    if (!armed(name))
        return;
    /* "stop" freezes the process at the point, for a power-cut test to cut
     * power there before anything else happens in it. */
    if (action && strcmp(action, "stop") == 0) {
        molt_log_warn("fault.stop", "point=%s action=stop", name);
        raise(SIGSTOP);
    }
    molt_log_warn("fault.kill", "point=%s action=kill", name);
    raise(SIGKILL); /* tgkill on itself: what the worker's sandbox allows */
    _exit(137);
}
