/* sign.h: release keys and detached signatures (Ed25519 through OpenSSL 3 EVP).
 *
 * A release statement is signed by one private key; agents trust a directory of
 * public keys (*.pub, PEM SubjectPublicKeyInfo), so a new key can be added
 * before the old one is retired. Each key is named by its key id: the first 16
 * lowercase hex digits of sha256 over the raw 32-byte public key.
 *
 * The .sig file is one line of JSON (see docs/package-format.md):
 *   {"format":"molt-sig-1","alg":"ed25519","keyid":"<16 hex>","sig":"<base64, 64 bytes>"}
 *
 * Verification failures carry MOLT_E_VERIFY and a message starting with one of
 * "signature: missing", "signature: truncated", "signature: malformed",
 * "signature: no trusted key", "signature: invalid". */
#ifndef MOLT_SIGN_H
#define MOLT_SIGN_H

#include <stddef.h>

#include "err.h"

#define MOLT_PKG_KEYID_LEN 16
#define MOLT_PKG_KEYID_SIZE (MOLT_PKG_KEYID_LEN + 1)
#define MOLT_PKG_SIG_RAW_LEN 64     /* Ed25519 signature bytes */
#define MOLT_PKG_KEY_RAW_LEN 32     /* Ed25519 public key bytes */
#define MOLT_PKG_SIG_MAX 4096       /* largest .sig file accepted */
#define MOLT_PKG_KEY_FILE_MAX 16384 /* largest .pub/.key file read */
#define MOLT_PKG_MAX_TRUSTED_KEYS 256

/* A parsed .sig file. */
struct molt_pkg_sig {
    char keyid[MOLT_PKG_KEYID_SIZE];
    unsigned char sig[MOLT_PKG_SIG_RAW_LEN];
};

/* Creates a new key pair: out_dir/<keyid>.key (private, PEM PKCS#8, mode 0600)
 * and out_dir/<keyid>.pub (PEM, 0644). out_dir is created (0700) if missing. */
int molt_pkg_key_generate(const char *out_dir, char keyid_out[MOLT_PKG_KEYID_SIZE],
                          struct molt_err *err);

/* Key id of the public key in a PEM file (public or private key). */
int molt_pkg_key_id_file(const char *pem_path, char keyid_out[MOLT_PKG_KEYID_SIZE],
                         struct molt_err *err);

/* The key id of a raw 32-byte Ed25519 public key (the same rule as above). */
int molt_pkg_key_id_raw(const unsigned char raw[MOLT_PKG_KEY_RAW_LEN],
                        char out[MOLT_PKG_KEYID_SIZE], struct molt_err *err);
/* The raw 32 bytes of the public key in a PEM public key file. */
int molt_pkg_key_raw_file(const char *pem_path, unsigned char raw[MOLT_PKG_KEY_RAW_LEN],
                          struct molt_err *err);
/* A raw public key as a .pub file's PEM text (*pem malloc'd): how a keyring's
 * delegated keys become files molt_pkg_sig_verify reads. */
int molt_pkg_key_pub_pem(const unsigned char raw[MOLT_PKG_KEY_RAW_LEN], char **pem, size_t *len,
                         struct molt_err *err);

/* Signs msg with the private key in key_path; *sig_out (malloc'd) receives the
 * .sig file's bytes, newline-terminated. */
int molt_pkg_sig_create(const char *key_path, const void *msg, size_t msg_len, char **sig_out,
                        size_t *sig_len, struct molt_err *err);

/* Parses a .sig file (untrusted bytes; no key involved). */
int molt_pkg_sig_parse(const void *buf, size_t len, struct molt_pkg_sig *out, struct molt_err *err);

/* Verifies sig (the .sig file's bytes) over stmt's exact bytes with the
 * trusted key whose id the signature names, from keys_dir/ *.pub. Returns 0
 * only when EVP_DigestVerify returned exactly 1. keyid_out (may be NULL) gets
 * the signature's key id as soon as it is known, also on failure, for logs. */
int molt_pkg_sig_verify(const char *keys_dir, const void *stmt, size_t stmt_len, const void *sig,
                        size_t sig_len, char keyid_out[MOLT_PKG_KEYID_SIZE], struct molt_err *err);

#endif
