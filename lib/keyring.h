/* keyring.h: the release keyring (docs/security.md 6.6): root keys, kept
 * offline in keys_dir/root, delegate the release role to release keys, each
 * with an expiry, through one signed document the control plane distributes;
 * revoking a release key is one newer keyring without it.
 *
 * The order of use (agent), every step fatal for the new document only:
 *   1. molt_keyring_load(): size cap, signatures by root keys under
 *      trust.root_threshold (before any byte is parsed), strict parse;
 *   2. molt_signed_replay_check() (channel.h) against the serial kept before;
 *   3. molt_keyring_materialise(): the pinned keys_dir/ *.pub and the keyring's
 *      unexpired keys as one directory of .pub files, which statements and
 *      channels are then verified against (sign.c reads a directory). */
#ifndef MOLT_KEYRING_H
#define MOLT_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "package.h"
#include "sign.h"

#define MOLT_KEYRING_FORMAT "molt-keyring-1"
#define MOLT_KEYRING_NAME "release" /* the one role root delegates */
#define MOLT_KEYRING_MAX 65536      /* largest keyring document accepted */
#define MOLT_KEYRING_MAX_KEYS 64
#define MOLT_KEYRING_ROOT_SUBDIR "root" /* keys_dir/root/ *.pub: the root keys */

struct molt_keyring_key {
    char keyid[MOLT_PKG_KEYID_SIZE];          /* sign.c's id of raw: checked by parse */
    unsigned char raw[MOLT_PKG_KEY_RAW_LEN];  /* the Ed25519 public key */
    int64_t expires_ms;                       /* from then on the key counts for nothing */
};

struct molt_keyring {
    int64_t serial;     /* 1.., strictly increasing */
    int64_t issued_ms;
    int64_t expires_ms; /* after it, none of its keys counts */
    struct molt_keyring_key keys[MOLT_KEYRING_MAX_KEYS];
    size_t nkeys;
    char sha256[MOLT_PKG_SHA256_HEX]; /* not a field: of the document's bytes, set by parse */
};

/* Strict parse (only after the signatures verified!): at most
 * MOLT_KEYRING_MAX bytes, RFC 8259 JSON, every field present with its type, no
 * unknown field, then molt_keyring_check(). */
int molt_keyring_parse(const void *buf, size_t len, struct molt_keyring *out,
                       struct molt_err *err);

/* The document's rules, shared by parse and format: serial >= 1, issued >= 1,
 * expires > issued, at most 64 keys, each keyid sign.c's id of its key, unique,
 * expires >= 1. */
int molt_keyring_check(const struct molt_keyring *kr, struct molt_err *err);

/* Size cap, then molt_sigset_verify() with root_dir's keys under threshold over
 * the exact bytes, then parse. Errors are prefixed "keyring: ". */
int molt_keyring_load(const char *root_dir, int threshold, const void *doc, size_t doc_len,
                      const void *sig, size_t sig_len, struct molt_keyring *out,
                      struct molt_err *err);

/* Serialises reproducibly (keys in byte order, keys sorted by keyid), one line
 * of JSON plus "\n"; *out malloc'd. */
int molt_keyring_format(const struct molt_keyring *kr, char **out, size_t *len,
                        struct molt_err *err);

/* 1 when the key counts at now_ms: before its own expiry and the keyring's. */
int molt_keyring_key_valid(const struct molt_keyring *kr, const struct molt_keyring_key *k,
                           int64_t now_ms);
/* The earliest time after now_ms at which a key stops counting, or INT64_MAX. */
int64_t molt_keyring_next_expiry(const struct molt_keyring *kr, int64_t now_ms);

/* Builds dir (replaced as a whole): a symbolic link to a new private directory
 * dir.<ms> holding the pinned keys_dir/ *.pub files (copied) and the keys of kr
 * (may be NULL) that are valid at now_ms, as <keyid>.pub; the link is replaced
 * atomically, then the previous directory removed. *nkeys (may be NULL) gets the
 * number of delegated keys written. */
int molt_keyring_materialise(const char *keys_dir, const struct molt_keyring *kr, int64_t now_ms,
                             const char *dir, size_t *nkeys, struct molt_err *err);

/* The key with this id, or NULL. */
const struct molt_keyring_key *molt_keyring_find(const struct molt_keyring *kr, const char *keyid);

#endif
