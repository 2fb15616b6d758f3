/* host.h: facts about this host, named as the collector documents name them:
 * osName "Linux", osVersion the kernel release, osArch as Java's os.arch
 * ("amd64", "aarch64", "x86", ...), which is also the arch of build packages. */
#ifndef MOLT_HOST_H
#define MOLT_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct molt_host {
    char os_name[64];      /* "Linux" */
    char os_version[128];  /* kernel release, e.g. 6.1.0-18-amd64 */
    char os_arch[32];      /* amd64, aarch64, ... */
    char os_id[16];        /* lower-case os for packages: "linux" */
    char host_name[256];
    char time_zone[64];    /* IANA name when known, else "UTC" */
    int64_t uptime_ms;     /* since boot */
    int64_t read_mono_ms;  /* CLOCK_MONOTONIC when the other facts were read, 0 = never */
};

/* How long a heartbeat may report cached facts (uname, host name, time zone). */
#define MOLT_HOST_REFRESH_MS 60000

/* Maps a uname machine string to the documents' arch name (x86_64 -> amd64). */
const char *molt_host_arch_name(const char *machine);
int molt_host_read(struct molt_host *host, struct molt_err *err);
/* Brings host up to date for a report at a fraction of molt_host_read's cost:
 * the facts that rarely change are read again only when older than max_age_ms
 * (or never read; set read_mono_ms to 0 to force it, e.g. on reload), while
 * uptime_ms is always current. On failure the previous facts stay. */
int molt_host_refresh(struct molt_host *host, int64_t max_age_ms, struct molt_err *err);
/* Reads the machine id (32 hex digits) from path, e.g. /etc/machine-id. */
int molt_host_machine_id(const char *path, char out[33], struct molt_err *err);
/* Milliseconds of CLOCK_MONOTONIC and CLOCK_REALTIME. */
int64_t molt_host_monotonic_ms(void);
int64_t molt_host_realtime_ms(void);

#endif
