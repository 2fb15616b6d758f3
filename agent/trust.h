/* trust.h: the release channel in force on this host (docs/security.md 6.5).
 *
 * The agent keeps the channel it accepted last in <state_dir>/channel.json
 * (lib/channel.h's kept state), fetches a newer one when a heartbeat reply
 * announces a higher serial, refuses one that does not verify or replays an
 * older serial (the previous stays in force), and admits every build it is
 * asked to apply against it. No channel state ever stops the agent from
 * running or heartbeating: only new upgrades wait.
 *
 * Any thread: every function takes the lock. */
#ifndef MOLT_TRUST_H
#define MOLT_TRUST_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "channel.h"
#include "command.h"
#include "conf.h"
#include "err.h"
#include "heartbeat.h"
#include "http.h"

#define MOLT_TRUST_FILE "channel.json"
/* The channel reply: 64 KiB document and 4 KiB set in base64, and the rest. */
#define MOLT_TRUST_REPLY_MAX (96 * 1024)
/* An announced serial that was refused is fetched again after this long at
 * the earliest (a control plane announcing a bad channel gets one fetch per
 * period, not one per heartbeat). */
#define MOLT_TRUST_RETRY_MS (5 * 60 * 1000)

struct molt_trust {
    pthread_mutex_t mu;
    int off;                            /* trust.channel = off */
    char name[65];                      /* trust.channel_name */
    int threshold;                      /* trust.signature_threshold */
    char keys_dir[MOLT_CONF_STR];
    char path[PATH_MAX];                /* <state_dir>/channel.json */
    int have;                           /* ch holds a verified channel */
    struct molt_channel ch;
    int64_t kept_serial;                /* replay floor: also while the kept one lapsed */
    char kept_sha256[MOLT_PKG_SHA256_HEX];
    int64_t refused_serial;             /* the last announced serial refused, and when */
    int64_t refused_mono_ms;
};

/* Sets the lock up; molt_trust_configure does the rest. */
int molt_trust_init(struct molt_trust *t, struct molt_err *err);
void molt_trust_cleanup(struct molt_trust *t);
/* At start and on every reload: takes the configuration's trust settings and
 * reads the kept channel again, verifying it with the current keys and
 * threshold. Never fails: a corrupt file is set aside (channel.json.corrupt-MS)
 * and logged, a lapsed channel is logged; either way upgrades wait for a new
 * channel and heartbeats go on. */
void molt_trust_configure(struct molt_trust *t, const struct molt_config *conf,
                          const char *state_dir);

/* 1 when a heartbeat's announced serial is worth fetching. */
int molt_trust_wants(struct molt_trust *t, int64_t announced, int64_t now_mono_ms);
/* GET /api/v1/collector/channel?name=NAME over http (the caller's client),
 * then molt_trust_offer; a failed fetch or a refusal is remembered against
 * announced (see MOLT_TRUST_RETRY_MS). */
int molt_trust_fetch(struct molt_trust *t, struct molt_http *http, const char *token,
                     int64_t announced, int64_t now_mono_ms, struct molt_err *err);
/* A document and its signature set: verified (size, threshold, name), checked
 * against the kept serial, written atomically, then in force. On any refusal
 * the channel in force stays, and err says why ("channel: ..."). */
int molt_trust_offer(struct molt_trust *t, const void *doc, size_t doc_len, const void *sig,
                     size_t sig_len, int64_t now_ms, struct molt_err *err);

/* Everything a build must pass before a byte of it is downloaded, in order:
 * with trust.signature_threshold above 1, that many distinct trusted keys
 * signed the statement (molt_sigset_verify, before it is parsed); then
 * molt_pkg_authenticate (a trusted signature, the statement's fields for this
 * host and the running version, expected NULL: any version); then
 * molt_trust_admit. The one entry point of the agent's pipeline and local API. */
int molt_trust_authenticate(struct molt_trust *t, const struct molt_build *b,
                            const char *expected, int64_t now_ms, const char *machine_id,
                            int local, struct molt_statement *st, struct molt_err *err);

/* 0 when the channel in force admits applying the build whose (authentic)
 * statement is stmt on this host now; MOLT_E_VERIFY with the reason otherwise.
 * local: the host's operator asked (offline package, local API), so the
 * rollout is not checked. Always 0 with trust.channel = off. */
int molt_trust_admit(struct molt_trust *t, int64_t now_ms, const char *machine_id, int local,
                     const char *version, const char *os, const char *arch, const void *stmt,
                     size_t stmt_len, struct molt_err *err);

/* What heartbeats report: state "off", "none" (no channel yet), "lapsed" (the
 * kept one no longer verifies: a key revoked or the threshold raised),
 * "expired" or "ok"; the serial (0: none) and the age, now - issued by this
 * host's clock (0 without a channel). */
void molt_trust_view(struct molt_trust *t, int64_t now_ms, struct molt_hb_channel *out);

#endif
