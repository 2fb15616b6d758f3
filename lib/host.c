/* host.c: host facts for heartbeats and package checks. */
#include "host.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

const char *molt_host_arch_name(const char *machine)
{
    static const struct { const char *uname, *name; } map[] = {
        { "x86_64", "amd64" }, { "amd64", "amd64" }, { "aarch64", "aarch64" },
        { "arm64", "aarch64" }, { "i386", "x86" }, { "i486", "x86" }, { "i586", "x86" },
        { "i686", "x86" }, { "armv7l", "arm" }, { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
        { "riscv64", "riscv64" },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(machine, map[i].uname) == 0)
            return map[i].name;
    }
    return machine;
}

int64_t molt_host_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t molt_host_realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* TZ, then /etc/timezone, then the /etc/localtime link; "UTC" when unknown. */
static void read_time_zone(char *out, size_t n)
{
    const char *tz = getenv("TZ");
    char buf[PATH_MAX];
    char *text = NULL;
    ssize_t len;

    snprintf(out, n, "UTC");
    if (tz && *tz) {
        snprintf(out, n, "%s", tz[0] == ':' ? tz + 1 : tz);
        return;
    }
    if (molt_fs_read_file("/etc/timezone", 256, &text, NULL, NULL) == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        if (*text)
            snprintf(out, n, "%s", text);
        free(text);
        return;
    }
    len = readlink("/etc/localtime", buf, sizeof(buf) - 1);
    if (len > 0) {
        const char *p;
        buf[len] = '\0';
        p = strstr(buf, "zoneinfo/");
        if (p)
            snprintf(out, n, "%s", p + strlen("zoneinfo/"));
    }
}

static int64_t read_uptime_ms(void)
{
    struct timespec ts;

    /* CLOCK_BOOTTIME counts suspended time too, like /proc/uptime. */
    if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int molt_host_read(struct molt_host *host, struct molt_err *err)
{
    struct utsname u;

    memset(host, 0, sizeof(*host));
    if (uname(&u) < 0)
        return molt_err_errno(err, "uname");
    snprintf(host->os_name, sizeof(host->os_name), "%s", u.sysname);
    snprintf(host->os_version, sizeof(host->os_version), "%s", u.release);
    snprintf(host->os_arch, sizeof(host->os_arch), "%s", molt_host_arch_name(u.machine));
    for (size_t i = 0; i < sizeof(host->os_id) - 1 && u.sysname[i]; i++)
        host->os_id[i] = (char)tolower((unsigned char)u.sysname[i]);
    if (gethostname(host->host_name, sizeof(host->host_name) - 1) < 0)
        snprintf(host->host_name, sizeof(host->host_name), "%s", u.nodename);
    read_time_zone(host->time_zone, sizeof(host->time_zone));
    host->uptime_ms = read_uptime_ms();
    host->read_mono_ms = molt_host_monotonic_ms();
    return 0;
}

int molt_host_refresh(struct molt_host *host, int64_t max_age_ms, struct molt_err *err)
{
    struct molt_host fresh;
    int rc;

    /* uname and gethostname are system calls and the time zone a file read: a
     * heartbeat every 100 ms would pay them all for facts that change by the
     * hour at most. The uptime comes from the vDSO clock, so it stays exact. */
    if (host->read_mono_ms != 0 && molt_host_monotonic_ms() - host->read_mono_ms < max_age_ms) {
        host->uptime_ms = read_uptime_ms();
        return 0;
    }
    if ((rc = molt_host_read(&fresh, err)) < 0)
        return rc;
    *host = fresh;
    return 0;
}

int molt_host_machine_id(const char *path, char out[33], struct molt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = molt_fs_read_file(path, 4096, &text, &len, err);

    if (rc < 0)
        return molt_err_prefix(err, "machine id");
    text[strcspn(text, "\r\n")] = '\0';
    len = strlen(text);
    rc = len == 32 ? 0 : MOLT_E_PARSE;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        if (!isxdigit((unsigned char)text[i]))
            rc = MOLT_E_PARSE;
    }
    if (rc == 0)
        memcpy(out, text, 33);
    free(text);
    if (rc < 0)
        return molt_err_set(err, MOLT_E_PARSE, "machine id: %s: expected 32 hex digits", path);
    return 0;
}
