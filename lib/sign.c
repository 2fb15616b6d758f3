/* sign.c: Ed25519 release keys, .sig files and their verification against a
 * directory of trusted public keys (several, so keys rotate without a flag day). */
#include "sign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "package_int.h"

#define SIG_FORMAT "molt-sig-1"
#define SIG_ALG "ed25519"
#define SIG_SHORT 1 /* sig_fields: fewer signature bytes than Ed25519's 64 */

/* ---- keys ------------------------------------------------------------------ */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int key_id(EVP_PKEY *pkey, char out[MOLT_PKG_KEYID_SIZE], struct molt_err *err)
{
    unsigned char raw[32];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t rawlen = sizeof(raw);
    char hex[2 * EVP_MAX_MD_SIZE + 1];

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519)
        return molt_err_set(err, MOLT_E_INVAL, "not an Ed25519 key");
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != sizeof(raw))
        return molt_err_set(err, MOLT_E_INVAL, "cannot read the raw public key");
    if (EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1)
        return molt_err_set(err, MOLT_E_IO, "sha256 failed");
    hex_encode(md, mdlen, hex);
    memcpy(out, hex, MOLT_PKG_KEYID_LEN);
    out[MOLT_PKG_KEYID_LEN] = '\0';
    return 0;
}

int molt_pkg_key_id_raw(const unsigned char raw[MOLT_PKG_KEY_RAW_LEN],
                        char out[MOLT_PKG_KEYID_SIZE], struct molt_err *err)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
                                                 MOLT_PKG_KEY_RAW_LEN);
    int rc;

    if (!pkey)
        return molt_err_set(err, MOLT_E_INVAL, "not an Ed25519 public key");
    rc = key_id(pkey, out, err);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Reads a PEM key (public, or private when want_private) from a file. */
static int load_pem(const char *path, int want_private, EVP_PKEY **out, struct molt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    BIO *bio;
    int rc;

    *out = NULL;
    rc = molt_fs_read_file(path, MOLT_PKG_KEY_FILE_MAX, &text, &len, err);
    if (rc < 0)
        return rc;
    bio = BIO_new_mem_buf(text, (int)len);
    if (!bio) {
        free(text);
        return molt_err_set(err, MOLT_E_NOMEM, "%s: out of memory", path);
    }
    if (want_private)
        *out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    else
        *out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    OPENSSL_cleanse(text, len);
    free(text);
    if (!*out)
        return molt_err_set(err, MOLT_E_PARSE, "%s: not a PEM %s key", path,
                            want_private ? "private" : "public");
    if (EVP_PKEY_get_base_id(*out) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return molt_err_set(err, MOLT_E_PARSE, "%s: not an Ed25519 key", path);
    }
    return 0;
}

static int pem_to_mem(EVP_PKEY *pkey, int private, char **out, size_t *len, struct molt_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    int ok;

    *out = NULL;
    if (!bio)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    ok = private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_bio_PUBKEY(bio, pkey);
    n = BIO_get_mem_data(bio, &data);
    if (ok != 1 || n <= 0) {
        BIO_free(bio);
        return molt_err_set(err, MOLT_E_IO, "cannot encode the key as PEM");
    }
    *out = malloc((size_t)n);
    if (*out) {
        memcpy(*out, data, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_cleanse(data, (size_t)n);
    BIO_free(bio);
    return *out ? 0 : molt_err_set(err, MOLT_E_NOMEM, "out of memory");
}

int molt_pkg_key_generate(const char *out_dir, char keyid_out[MOLT_PKG_KEYID_SIZE],
                          struct molt_err *err)
{
    EVP_PKEY *pkey = NULL;
    char keyid[MOLT_PKG_KEYID_SIZE];
    char path[PATH_MAX], name[64];
    char *priv = NULL, *pub = NULL;
    size_t priv_len = 0, pub_len = 0;
    int rc;

    rc = molt_fs_mkdir_p(out_dir, 0700, err);
    if (rc < 0)
        return rc;
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return molt_err_set(err, MOLT_E_IO, "Ed25519 key generation failed");
    rc = key_id(pkey, keyid, err);
    if (rc < 0)
        goto out;
    rc = pem_to_mem(pkey, 1, &priv, &priv_len, err);
    if (rc < 0)
        goto out;
    rc = pem_to_mem(pkey, 0, &pub, &pub_len, err);
    if (rc < 0)
        goto out;
    snprintf(name, sizeof(name), "%s.key", keyid);
    rc = molt_fs_join(path, sizeof(path), out_dir, name, err);
    if (rc < 0)
        goto out;
    if (molt_fs_exists(path)) {
        rc = molt_err_set(err, MOLT_E_STATE, "%s exists already", path);
        goto out;
    }
    rc = molt_fs_write_atomic(path, priv, priv_len, 0600, err);
    if (rc < 0)
        goto out;
    snprintf(name, sizeof(name), "%s.pub", keyid);
    rc = molt_fs_join(path, sizeof(path), out_dir, name, err);
    if (rc == 0)
        rc = molt_fs_write_atomic(path, pub, pub_len, 0644, err);
    if (rc == 0 && keyid_out)
        memcpy(keyid_out, keyid, sizeof(keyid));
out:
    if (priv) {
        OPENSSL_cleanse(priv, priv_len);
        free(priv);
    }
    free(pub);
    EVP_PKEY_free(pkey);
    return rc;
}

int molt_pkg_key_id_file(const char *pem_path, char keyid_out[MOLT_PKG_KEYID_SIZE],
                         struct molt_err *err)
{
    EVP_PKEY *pkey = NULL;
    struct molt_err ignored = MOLT_ERR_INIT;
    int rc;

    rc = load_pem(pem_path, 0, &pkey, &ignored);
    if (rc < 0)
        rc = load_pem(pem_path, 1, &pkey, err);
    if (rc < 0)
        return rc;
    rc = key_id(pkey, keyid_out, err);
    EVP_PKEY_free(pkey);
    return rc;
}

int molt_pkg_key_raw_file(const char *pem_path, unsigned char raw[MOLT_PKG_KEY_RAW_LEN],
                          struct molt_err *err)
{
    EVP_PKEY *pkey = NULL;
    size_t len = MOLT_PKG_KEY_RAW_LEN;
    int rc = load_pem(pem_path, 0, &pkey, err);

    if (rc < 0)
        return rc;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != MOLT_PKG_KEY_RAW_LEN)
        rc = molt_err_set(err, MOLT_E_INVAL, "%s: cannot read the raw public key", pem_path);
    EVP_PKEY_free(pkey);
    return rc;
}

int molt_pkg_key_pub_pem(const unsigned char raw[MOLT_PKG_KEY_RAW_LEN], char **pem, size_t *len,
                         struct molt_err *err)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
                                                 MOLT_PKG_KEY_RAW_LEN);
    int rc;

    *pem = NULL;
    if (!pkey)
        return molt_err_set(err, MOLT_E_INVAL, "not an Ed25519 public key");
    rc = pem_to_mem(pkey, 0, pem, len, err);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- .sig files ------------------------------------------------------------ */

int molt_pkg_sig_create(const char *key_path, const void *msg, size_t msg_len, char **sig_out,
                        size_t *sig_len, struct molt_err *err)
{
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char sig[MOLT_PKG_SIG_RAW_LEN];
    size_t siglen = sizeof(sig);
    char keyid[MOLT_PKG_KEYID_SIZE];
    char *b64 = NULL;
    int rc;

    *sig_out = NULL;
    rc = load_pem(key_path, 1, &pkey, err);
    if (rc < 0)
        return rc;
    rc = key_id(pkey, keyid, err);
    if (rc < 0)
        goto out;
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, msg_len) != 1 || siglen != sizeof(sig)) {
        rc = molt_err_set(err, MOLT_E_IO, "signing with %s failed", key_path);
        goto out;
    }
    rc = molt_base64_encode(sig, siglen, &b64, err);
    if (rc < 0)
        goto out;
    {
        size_t n = strlen(b64) + 128;
        char *text = malloc(n);
        if (!text) {
            rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
            goto out;
        }
        snprintf(text, n, "{\"format\":\"%s\",\"alg\":\"%s\",\"keyid\":\"%s\",\"sig\":\"%s\"}\n",
                 SIG_FORMAT, SIG_ALG, keyid, b64);
        *sig_out = text;
        *sig_len = strlen(text);
    }
out:
    free(b64);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}

static int sig_fields(struct json_object *o, struct molt_pkg_sig *out, struct molt_err *err)
{
    const char *format, *alg, *keyid, *b64;
    unsigned char *raw = NULL;
    size_t rawlen = 0;

    if (molt_json_get_str(o, "format", &format, err) < 0 ||
        molt_json_get_str(o, "alg", &alg, err) < 0 ||
        molt_json_get_str(o, "keyid", &keyid, err) < 0 ||
        molt_json_get_str(o, "sig", &b64, err) < 0)
        return MOLT_E_VERIFY;
    if (strcmp(format, SIG_FORMAT) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "unknown format '%.32s'", format);
    if (strcmp(alg, SIG_ALG) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "unsupported algorithm '%.32s'", alg);
    if (!molt_pkg_is_hex(keyid, MOLT_PKG_KEYID_LEN))
        return molt_err_set(err, MOLT_E_VERIFY, "key id is not %d lowercase hex digits",
                            MOLT_PKG_KEYID_LEN);
    memcpy(out->keyid, keyid, MOLT_PKG_KEYID_SIZE);
    if (molt_base64_decode(b64, strlen(b64), &raw, &rawlen, err) < 0)
        return MOLT_E_VERIFY;
    if (rawlen != MOLT_PKG_SIG_RAW_LEN) {
        free(raw);
        /* A short signature is a cut one; a long one is not ours. */
        if (rawlen < MOLT_PKG_SIG_RAW_LEN)
            return SIG_SHORT;
        return molt_err_set(err, MOLT_E_VERIFY, "%zu signature bytes, expected %d", rawlen,
                            MOLT_PKG_SIG_RAW_LEN);
    }
    memcpy(out->sig, raw, MOLT_PKG_SIG_RAW_LEN);
    free(raw);
    return 0;
}

int molt_pkg_sig_parse(const void *buf, size_t len, struct molt_pkg_sig *out, struct molt_err *err)
{
    struct json_object *o = NULL;
    struct molt_err jerr = MOLT_ERR_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!buf || len == 0)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: missing");
    if (len > MOLT_PKG_SIG_MAX)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: larger than %d bytes",
                            MOLT_PKG_SIG_MAX);
    if (memchr(buf, '\0', len))
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: contains a NUL byte");
    rc = molt_json_parse(buf, len, &o, &jerr);
    if (rc < 0) {
        if (strstr(jerr.msg, "truncated"))
            return molt_err_set(err, MOLT_E_VERIFY, "signature: truncated");
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: %s", jerr.msg);
    }
    rc = sig_fields(o, out, &jerr);
    json_object_put(o);
    if (rc == SIG_SHORT)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: truncated");
    if (rc < 0)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: %s", jerr.msg);
    return 0;
}

/* ---- verification ---------------------------------------------------------- */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Loads the trusted public key with this id from keys_dir. A key file that is
 * unreadable, not Ed25519 or writable by anyone is skipped with a warning:
 * skipping can only make fewer signatures acceptable. */
static int find_trusted_key(const char *keys_dir, const char *keyid, EVP_PKEY **out,
                            struct molt_err *err)
{
    DIR *d;
    struct dirent *de;
    size_t scanned = 0;

    *out = NULL;
    d = opendir(keys_dir);
    if (!d)
        return molt_err_errno(err, "signature: no trusted key: keys directory %s", keys_dir);
    while ((de = readdir(d)) != NULL && !*out) {
        char path[PATH_MAX], id[MOLT_PKG_KEYID_SIZE];
        struct molt_err kerr = MOLT_ERR_INIT;
        EVP_PKEY *pkey = NULL;
        struct stat st;

        if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".pub"))
            continue;
        if (++scanned > MOLT_PKG_MAX_TRUSTED_KEYS) {
            molt_log_warn("keys.too_many", "dir=%s limit=%d", keys_dir, MOLT_PKG_MAX_TRUSTED_KEYS);
            break;
        }
        if (molt_fs_join(path, sizeof(path), keys_dir, de->d_name, &kerr) < 0)
            continue;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (st.st_mode & S_IWOTH) {
            molt_log_warn("keys.skipped", "file=%s reason=world-writable", path);
            continue;
        }
        if (load_pem(path, 0, &pkey, &kerr) < 0 || key_id(pkey, id, &kerr) < 0) {
            molt_log_warn("keys.skipped", "file=%s reason=\"%s\"", path, kerr.msg);
            EVP_PKEY_free(pkey);
            continue;
        }
        if (strcmp(id, keyid) == 0)
            *out = pkey;
        else
            EVP_PKEY_free(pkey);
    }
    closedir(d);
    if (!*out)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: no trusted key");
    return 0;
}

int molt_pkg_sig_verify(const char *keys_dir, const void *stmt, size_t stmt_len, const void *sig,
                        size_t sig_len, char keyid_out[MOLT_PKG_KEYID_SIZE], struct molt_err *err)
{
    struct molt_pkg_sig parsed;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *ctx = NULL;
    int rc, vr;

    if (keyid_out)
        keyid_out[0] = '\0';
    rc = molt_pkg_sig_parse(sig, sig_len, &parsed, err);
    if (rc < 0)
        return rc;
    if (keyid_out)
        memcpy(keyid_out, parsed.keyid, MOLT_PKG_KEYID_SIZE);
    rc = find_trusted_key(keys_dir, parsed.keyid, &pkey, err);
    if (rc < 0) {
        molt_log_warn("signature.untrusted", "keyid=%s keys_dir=%s", parsed.keyid, keys_dir);
        return MOLT_E_VERIFY;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
        rc = molt_err_set(err, MOLT_E_IO, "signature: cannot set up verification");
        goto out;
    }
    /* Anything but exactly 1 (0 = bad signature, <0 = error) is a rejection. */
    vr = EVP_DigestVerify(ctx, parsed.sig, sizeof(parsed.sig), stmt, stmt_len);
    rc = vr == 1 ? 0 : molt_err_set(err, MOLT_E_VERIFY, "signature: invalid");
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}
