/* heartbeat.h: the heartbeat exchange (docs/protocol.md section 2).
 *
 * The body carries the host facts, osTime and the current task's report. The
 * reply is parsed strictly: it must be a JSON object; heartbeatIntervalMs, when
 * present, an integer in proto.h's range (molt_hb_interval_field);
 * longPoll a boolean; serverTime an integer; channelSerial an integer >= 0.
 * Anything else makes the reply malformed (the caller logs it and backs off; the heartbeat is not counted as
 * acknowledged). A command that fails validation (command.h) does not spoil the
 * reply: it is dropped and its error kept in command_error for the log. */
#ifndef MOLT_HEARTBEAT_H
#define MOLT_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "command.h"
#include "err.h"
#include "host.h"
#include "http.h"
#include "report.h"

#define MOLT_HB_JITTER_PCT 10
#define MOLT_HB_GRACE_MS 15000           /* HTTP timeout = waitMs + this */
#define MOLT_HB_REPLY_MAX MOLT_COMMAND_REPLY_MAX   /* docs/protocol.md section 0 */

/* The host-fact members of the body ("collectorVersion":...,"timeZone":...),
 * serialised once per read of the facts rather than on every heartbeat. */
struct molt_hb_cache {
    int64_t read_mono_ms;                /* the host.read_mono_ms they came from, 0 = none */
    char members[2048];
};

struct molt_hb_reply {
    int64_t interval_ms;                 /* 0 when the reply did not say */
    int64_t channel_serial;              /* the newest channel the server has, 0 = none said */
    int64_t keyring_serial;              /* the newest keyring the server has, 0 = none said */
    int long_poll;
    int64_t server_time;                 /* 0 when absent */
    int has_command;
    struct molt_command cmd;             /* when has_command; molt_hb_reply_free */
    char command_error[MOLT_ERR_MSG_MAX]; /* a command was present but rejected */
};

/* The release channel in force, as heartbeats report it (agent/trust.h's view). */
struct molt_hb_channel {
    const char *name;                    /* trust.channel_name: [a-z0-9_]{1,64} */
    const char *state;                   /* off | none | lapsed | expired | ok */
    int64_t serial;
    int64_t age_ms;
    int64_t keyring_serial;              /* the release keyring in force, 0 = none */
};

/* The request body; task may be NULL. The caller puts the object. */
struct json_object *molt_heartbeat_body(const struct molt_host *host, int64_t os_time_ms,
                                        const struct molt_hb_channel *channel,
                                        const struct molt_report *task);
/* The same body as molt_heartbeat_body without a task, written as text into out
 * (size n) from cache (brought up to date with host first). Returns the length,
 * or -1 when it does not fit (the caller then uses molt_heartbeat_body). */
int molt_heartbeat_body_idle(const struct molt_host *host, int64_t os_time_ms,
                             const struct molt_hb_channel *channel, struct molt_hb_cache *cache,
                             char *out, size_t n);
int molt_heartbeat_parse_reply(const char *body, size_t len, struct molt_hb_reply *out,
                               struct molt_err *err);
void molt_hb_reply_free(struct molt_hb_reply *r);

/* What one heartbeat needs from the agent: its token, the host facts (as
 * fresh as the caller wants them) with their cache, osTime, the task to carry
 * (NULL: none), wait_ms > 0 to ask for a long-poll, and the transfer's abort
 * check. */
struct molt_hb_req {
    const char *token;
    const struct molt_host *host;
    struct molt_hb_cache *cache;
    int64_t os_time_ms;
    struct molt_hb_channel channel;
    const struct molt_report *task;
    int64_t wait_ms;
    int (*abort_fn)(void *arg);
    void *abort_arg;
};

/* Sends one heartbeat over http. rep gets the raw HTTP reply (status,
 * Retry-After, error code) and out the parsed one when rc == 0. The transfer
 * aborts (MOLT_E_CANCELLED) on the client's stop flag and when abort_fn says so. */
int molt_heartbeat_send(struct molt_http *http, const struct molt_hb_req *q,
                        struct molt_http_reply *rep, struct molt_hb_reply *out,
                        struct molt_err *err);

#endif
