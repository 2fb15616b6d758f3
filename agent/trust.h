/* trust.h: the release channel in force on this host (docs/security.md 6.5),
 * and the release keys it and statements are verified with (6.6).
 *
 * The agent keeps the channel it accepted last in <state_dir>/channel.json
 * (lib/channel.h's kept state), fetches a newer one when a heartbeat reply
 * announces a higher serial, refuses one that does not verify or replays an
 * older serial (the previous stays in force), and admits every build it is
 * asked to apply against it. No channel state ever stops the agent from
 * running or heartbeating: only new upgrades wait.
 *
 * The keys: keys_dir/ *.pub (pinned) and, once a keyring signed by the root
 * keys (keys_dir/root/ *.pub, trust.root_threshold) was accepted, its
 * unexpired keys. The keyring is kept in <state_dir>/keyring.json like the
 * channel, fetched when a heartbeat reply announces a higher keyringSerial,
 * and the effective keys are materialised as <state_dir>/trusted (a link to a
 * private directory, replaced whole) at start and reload, after each accepted
 * keyring and when a key expires; every change re-checks the channel in force
 * (a revoked key's channel lapses). Without a keyring, keys_dir is used as is.
 *
 * Any thread: every function takes the lock. */
#ifndef MOLT_TRUST_H
#define MOLT_TRUST_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "channel.h"
#include "keyring.h"
#include "command.h"
#include "conf.h"
#include "err.h"
#include "heartbeat.h"
#include "http.h"

#define MOLT_TRUST_FILE "channel.json"
#define MOLT_TRUST_KEYRING_FILE "keyring.json"
#define MOLT_TRUST_KEYS_DIR "trusted" /* <state_dir>/trusted: the effective release keys */
/* The channel reply: 64 KiB document and 4 KiB set in base64, and the rest. */
#define MOLT_TRUST_REPLY_MAX (96 * 1024)
/* An announced serial that was refused is fetched again after this long at
 * the earliest (a control plane announcing a bad channel gets one fetch per
 * period, not one per heartbeat). */
#define MOLT_TRUST_RETRY_MS (5 * 60 * 1000)

/* What the agent holds of one kind of signed document (a channel, the keyring):
 * the replay floor, and the last announced serial it refused, and when. */
struct molt_trust_doc {
    int have;                           /* a verified document is in force */
    int64_t kept_serial;                /* replay floor: also while the kept one lapsed */
    char kept_sha256[MOLT_PKG_SHA256_HEX];
    int64_t refused_serial;
    int64_t refused_mono_ms;
};

struct molt_trust {
    pthread_mutex_t mu;
    int off;                            /* trust.channel = off */
    char name[65];                      /* trust.channel_name */
    int threshold;                      /* trust.signature_threshold */
    int root_threshold;                 /* trust.root_threshold */
    char keys_dir[MOLT_CONF_STR];       /* pinned release keys */
    char root_dir[PATH_MAX];            /* keys_dir/root: the root keys */
    int has_root;                       /* root_dir exists: keyrings are fetched */
    char path[PATH_MAX];                /* <state_dir>/channel.json */
    char keyring_path[PATH_MAX];        /* <state_dir>/keyring.json */
    char trusted_dir[PATH_MAX];         /* <state_dir>/trusted */
    char verify_dir[PATH_MAX];          /* keys_dir, or trusted_dir with a keyring in force */
    int64_t keys_expiry_ms;             /* when a delegated key stops counting (rebuild) */
    struct molt_trust_doc chd;          /* the channel */
    struct molt_channel ch;
    struct molt_trust_doc krd;          /* the keyring */
    struct molt_keyring kr;
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
 * host and the running version, expected NULL: any version); a
 * manifestSha256 in it; then molt_trust_admit. The one entry point of the
 * agent's pipeline and local API. */
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

/* The keyring, as the channel: molt_trust_keyring_wants says whether an
 * announced keyringSerial is worth fetching (never without keys_dir/root);
 * molt_trust_keyring_fetch GETs /api/v1/collector/keyring and offers it;
 * molt_trust_keyring_offer verifies it with the root keys under
 * trust.root_threshold, refuses a replayed serial, keeps it atomically, then
 * rebuilds the effective keys and re-checks the channel in force. On any
 * refusal the keyring in force stays ("keyring: ..."). */
int molt_trust_keyring_wants(struct molt_trust *t, int64_t announced, int64_t now_mono_ms);
int molt_trust_keyring_fetch(struct molt_trust *t, struct molt_http *http, const char *token,
                             int64_t announced, int64_t now_mono_ms, struct molt_err *err);
int molt_trust_keyring_offer(struct molt_trust *t, const void *doc, size_t doc_len,
                             const void *sig, size_t sig_len, int64_t now_ms,
                             struct molt_err *err);
/* The serial of the keyring in force (0: none). */
int64_t molt_trust_keyring_serial(struct molt_trust *t);

/* What heartbeats report: the keyring serial in force (0: none); state "off", "none" (no channel yet), "lapsed" (the
 * kept one no longer verifies: a key revoked or the threshold raised),
 * "expired" or "ok"; the serial (0: none) and the age, now - issued by this
 * host's clock (0 without a channel). */
void molt_trust_view(struct molt_trust *t, int64_t now_ms, struct molt_hb_channel *out);

#endif
