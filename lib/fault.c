/* fault.c: test-only fault points, driven by the MOLT_FAULT environment variable. */
#include "fault.h"

#include <signal.h>
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

int molt_fault_inject(const char *name)
{
    if (!listed(getenv("MOLT_FAULT"), name))
        return 0;
    molt_log_warn("fault", "point=%s action=inject", name);
    return 1;
}

void molt_fault_point(const char *name)
{
    if (!listed(getenv("MOLT_FAULT"), name))
        return;
    molt_log_warn("fault", "point=%s action=kill", name);
    kill(getpid(), SIGKILL);
    _exit(137);
}
