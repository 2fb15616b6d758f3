/* channel.h: the signed release channel (docs/security.md, section 6): which
 * builds hosts may run, from when, for which share of hosts, and nothing below
 * a floor; with a strictly increasing serial and an expiry. The release key(s)
 * sign it with molt-pack channel; the control plane only serves it.
 *
 * The order of use (agent), every step fatal:
 *   1. molt_channel_load(): size cap, signatures (threshold, before any byte is
 *      parsed), strict parse and the document's own rules;
 *   2. molt_channel_replay_check() against the serial accepted before;
 *   3. molt_channel_admits() for each build the host is asked to apply.
 * Every refusal names what was wrong ("channel: ..." from load). */
#ifndef MOLT_CHANNEL_H
#define MOLT_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "package.h"

#define MOLT_CHANNEL_FORMAT "molt-channel-1"
#define MOLT_CHANNEL_MAX 65536      /* largest channel document accepted */
#define MOLT_CHANNEL_MAX_BUILDS 256 /* builds listed in one document */
#define MOLT_CHANNEL_BUCKETS 10000  /* rollout buckets: a percent is 100 of them */

struct molt_channel_build {
    char version[65];
    char os[16];
    char arch[32];
    char statement_sha256[MOLT_PKG_SHA256_HEX]; /* sha256 of the build's statement bytes */
    int percent;                                /* rollout: 0..100 of the hosts' buckets */
    int64_t not_before_ms;                      /* rollout: not before (ms since epoch), 0 = now */
};

struct molt_channel {
    char name[65];      /* "stable": hosts follow one channel by name */
    int64_t serial;     /* 1.., strictly increasing between documents of one name */
    int64_t issued_ms;  /* when this serial was made (channel age = now - issued) */
    int64_t expires_ms; /* after it, no new upgrade is admitted */
    char floor[65];     /* "" or the lowest version any host may install */
    struct molt_channel_build *builds;
    size_t nbuilds;
    /* Not a document field: sha256 of the document's bytes, set by parse. */
    char sha256[MOLT_PKG_SHA256_HEX];
};

/* Strict parse of a document's bytes (only after its signatures verified!):
 * at most MOLT_CHANNEL_MAX bytes, RFC 8259 JSON (lib/json.c), every field
 * present with its type, no unknown field, then molt_channel_check(). */
int molt_channel_parse(const void *buf, size_t len, struct molt_channel *out, struct molt_err *err);

/* A channel name: 1 to 64 of [a-z0-9_]. */
int molt_channel_name_valid(const char *name);

/* The document's rules, shared by parse and format: format, name [a-z0-9_],
 * serial >= 1, issued >= 1, expires > issued, floor "" or a version, builds
 * valid and unique by version/os/arch, none below the floor. */
int molt_channel_check(const struct molt_channel *ch, struct molt_err *err);

/* Size cap, then molt_sigset_verify() with threshold over the document's exact
 * bytes, then parse; expected_name (NULL: any) must equal the channel's name.
 * Errors are prefixed "channel: ". out is untouched on failure. */
int molt_channel_load(const char *keys_dir, int threshold, const char *expected_name,
                      const void *doc, size_t doc_len, const void *sig, size_t sig_len,
                      struct molt_channel *out, struct molt_err *err);

/* Serialises the channel reproducibly: keys in byte order, builds sorted by
 * version (molt_version_cmp), os, arch; one line of JSON plus "\n"; *out
 * malloc'd. Refuses a channel molt_channel_check() refuses. */
int molt_channel_format(const struct molt_channel *ch, char **out, size_t *len,
                        struct molt_err *err);

void molt_channel_free(struct molt_channel *ch);

/* The host's rollout bucket for a version, 0..9999: the first 8 bytes of
 * sha256("molt-rollout\0" machine_id "\0" version), big endian, mod 10000.
 * Stable for a host and version; uncorrelated between versions. */
unsigned molt_channel_bucket(const char *machine_id, const char *version);

/* 0 when the channel admits applying this build on this host at now_ms; else
 * MOLT_E_VERIFY with the reason: expired, below the floor, not listed, not for
 * this os/arch, statement sha256 not the one listed, rollout not started, host
 * bucket outside the rollout. statement_sha256 is of the statement's bytes.
 * machine_id NULL or "": only a 100% rollout admits the host. */
int molt_channel_admits(const struct molt_channel *ch, int64_t now_ms, const char *machine_id,
                        const char *version, const char *os, const char *arch,
                        const char *statement_sha256, struct molt_err *err);
/* molt_channel_admits without the rollout (bucket and notBefore): for a build
 * the host's operator asked for (offline package, local API), who chose the
 * time. Expiry, floor, listing and the statement's hash still hold. */
int molt_channel_admits_local(const struct molt_channel *ch, int64_t now_ms, const char *version,
                              const char *os, const char *arch, const char *statement_sha256,
                              struct molt_err *err);

/* Replay refusal: 0 when ch may replace the channel accepted before (serial
 * kept_serial, document sha256 kept_sha256; kept_serial 0: none yet): a higher
 * serial, or the same serial with the same bytes. A lower serial, or the same
 * serial with other bytes, is MOLT_E_VERIFY. */
int molt_channel_replay_check(int64_t kept_serial, const char *kept_sha256,
                              const struct molt_channel *ch, struct molt_err *err);

/* The replay rule shared by channels and keyrings (kind "channel",
 * "keyring"): a higher serial, or the same serial with the same bytes. */
int molt_signed_replay_check(const char *kind, const char *name, int64_t kept_serial,
                             const char *kept_sha256, int64_t serial, const char *sha256,
                             struct molt_err *err);

/* ---- the channel in force, kept in the state directory -------------------- */

/* <state_dir>/channel.json: the accepted document and signature set as they
 * arrived, with the serial and sha256 that replay refusal compares against.
 * One file, replaced atomically (molt_fs_write_atomic: temp, fsync, rename,
 * directory fsync), so the kept serial never goes back, through a crash or a
 * power cut. The document is verified again (molt_channel_load) after a read:
 * a key revoked since makes it lapse, its serial still refuses replays. */
#define MOLT_CHANNEL_STATE_FORMAT "molt-channel-state-1"
#define MOLT_CHANNEL_STATE_MAX 131072 /* 64 KiB + 4 KiB in base64, and the rest */

struct molt_channel_kept {
    char name[65];
    int64_t serial;
    char sha256[MOLT_PKG_SHA256_HEX]; /* of doc */
    int64_t accepted_ms;
    unsigned char *doc; /* malloc'd, NUL-terminated (not counted in doc_len) */
    size_t doc_len;
    unsigned char *sig;
    size_t sig_len;
};

/* Writes a verified signed document (a channel, or a keyring: kind) as the one
 * in force, in the kept format below; molt_channel_kept_read reads either. */
int molt_signed_kept_write(const char *path, const char *kind, const char *name, int64_t serial,
                           const char *sha256, const void *doc, size_t doc_len, const void *sig,
                           size_t sig_len, int64_t accepted_ms, struct molt_err *err);
/* Writes the channel ch (loaded from doc/sig) as the one in force. */
int molt_channel_kept_write(const char *path, const struct molt_channel *ch, const void *doc,
                            size_t doc_len, const void *sig, size_t sig_len, int64_t accepted_ms,
                            struct molt_err *err);
/* Reads it back, strictly: a missing file is MOLT_E_NOTFOUND (no channel yet);
 * anything else wrong is "channel state: ..." (the caller sets the file aside). */
int molt_channel_kept_read(const char *path, struct molt_channel_kept *out, struct molt_err *err);
void molt_channel_kept_free(struct molt_channel_kept *k);

/* The build the channel lists for version/os/arch, or NULL. */
const struct molt_channel_build *molt_channel_find(const struct molt_channel *ch,
                                                   const char *version, const char *os,
                                                   const char *arch);


/* Writes ms since the epoch as "2026-12-02T18:00:00Z" (UTC, seconds). */
void molt_channel_time_str(int64_t ms, char out[32]);

#endif
