/* identity.h: who this collector is to the server (docs/protocol.md section 1).
 *
 * <state_dir>/identity.json (mode 0600, atomic write) holds collectorId, token,
 * machineId, name and the server URL. A stored identity is used only when its
 * machine id is this host's (a cloned VM image registers as a new collector
 * instead of impersonating its parent) and its server URL is the configured
 * one; otherwise, or when the server rejects the token (401), the agent
 * registers again with the installation credentials (server.access_id/key). */
#ifndef MOLT_IDENTITY_H
#define MOLT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "host.h"
#include "http.h"

#define MOLT_IDENTITY_FILE "identity.json"
#define MOLT_TOKEN_MIN 32
#define MOLT_TOKEN_MAX 1024

/* What identity.json holds. token is a secret: never logged. */
struct molt_identity {
    int64_t collector_id;
    char token[MOLT_TOKEN_MAX + 1];
    char machine_id[33];
    char name[256];
    char server_url[MOLT_CONF_STR];
};
/* collectorId, a token of at most MOLT_TOKEN_MAX bytes, the interval and the
 * name (or a legacy error body): 8 KiB is four times that. */
#define MOLT_REGISTER_REPLY_MAX (8 * 1024)

int molt_identity_load(const char *path, struct molt_identity *id, struct molt_err *err);
int molt_identity_save(const char *path, const struct molt_identity *id, struct molt_err *err);
/* NULL when id can be used here; else why not ("machine id changed", ...). */
const char *molt_identity_stale(const struct molt_identity *id, const char *machine_id,
                                const char *server_url);
/* 1 when conf carries registration credentials. */
int molt_identity_can_register(const struct molt_config *conf);

/* Parses a registration reply: collectorId > 0, a token of printable ASCII
 * between MOLT_TOKEN_MIN and MOLT_TOKEN_MAX bytes, optional heartbeatIntervalMs. */
int molt_register_parse_reply(const char *body, size_t len, struct molt_identity *id,
                              int64_t *interval_ms, struct molt_err *err);
/* What a registration needs from the agent: its configuration (name,
 * credentials, server URL), host facts freshly read, this host's machine id,
 * where identity.json goes, the osTime to report and the HTTP request's abort
 * check (the agent's periodic duties). */
struct molt_register_req {
    const struct molt_config *conf;
    const struct molt_host *host;
    const char *machine_id;
    const char *state_dir;
    int64_t os_time_ms;
    int (*abort_fn)(void *arg);
    void *abort_arg;
};

/* POST /api/v1/collector/register over http, then stores the new identity in
 * <state_dir>/identity.json and copies it to *id (the caller makes it
 * current). rep keeps the HTTP reply for the caller (status, Retry-After);
 * *interval_ms the server's interval or 0. */
int molt_identity_register(struct molt_http *http, const struct molt_register_req *q,
                           struct molt_identity *id, struct molt_http_reply *rep,
                           int64_t *interval_ms, struct molt_err *err);

#endif
