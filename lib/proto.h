/* proto.h: the rules for the values molt's programs exchange with the server
 * and with each other (docs/protocol.md): task ids, build versions and the
 * heartbeat interval. One rule each, used by the agent (commands, reports,
 * outbox, task state), the journal, the installer and the configuration. */
#ifndef MOLT_PROTO_H
#define MOLT_PROTO_H

#include <stdint.h>

#include <json-c/json.h>

#include "err.h"

/* A task id is 1..20 decimal digits: room for any 64-bit id the management
 * API may hand out (2^64 - 1 has 20 digits; the reference control plane's are
 * SQLite integers, at most 18). The agent took 1..20 and the journal 1..32:
 * every id the agent accepts fits both, and a journal that takes ids the agent
 * never sends only widens what a damaged file may carry, so both take 20. */
#define MOLT_TASK_ID_MAX 20
/* A build version is 1..64 bytes of [0-9A-Za-z.+_-], starting with a digit;
 * buffers hold MOLT_VERSION_MAX + 1 (the journal's old 65 was this plus NUL). */
#define MOLT_VERSION_MAX 64
/* heartbeatIntervalMs from the server, and agent.heartbeat_interval: 100 ms .. 24 h. */
#define MOLT_HB_INTERVAL_MIN_MS 100
#define MOLT_HB_INTERVAL_MAX_MS (24LL * 3600 * 1000)
/* A download rate cap (agent.download_max_rate, an upgrade command's
 * maxBytesPerSecond), bytes per second: below 1 KiB/s a package of a few MiB
 * outlives its task; above 1 TiB/s a cap means nothing. */
#define MOLT_RATE_MIN_BPS 1024LL
#define MOLT_RATE_MAX_BPS (1LL << 40)

/* 1 when s is 1..MOLT_TASK_ID_MAX decimal digits. */
int molt_task_id_valid(const char *s);
/* 1 when v is a well-formed version (above). */
int molt_version_valid(const char *v);
/* 1 when ms is a heartbeat interval in the range above. */
int molt_hb_interval_valid(int64_t ms);
/* Optional member heartbeatIntervalMs of o: *ms gets it, in the range above;
 * returns 1 when present, 0 (*ms untouched) when missing, or an error. */
int molt_hb_interval_field(struct json_object *o, int64_t *ms, struct molt_err *err);

#endif
