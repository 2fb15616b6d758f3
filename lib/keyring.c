/* keyring.c: the release keyring document (keyring.h): strict parse after a
 * threshold of root signatures, its rules, a reproducible writer, key expiry,
 * and the directory of effective release keys the agent verifies against. */
#include "keyring.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base64.h"
#include "channel.h"
#include "fs.h"
#include "json.h"
#include "package_int.h"
#include "sigset.h"
#include "text.h"

static const char *const top_fields[] = {"expires", "format", "issued", "keys",
                                         "name",    "serial", NULL};
static const char *const key_fields[] = {"expires", "keyid", "publicKey", NULL};

/* ---- parse ------------------------------------------------------------------ */

static int parse_key(struct json_object *k, struct molt_keyring_key *out, struct molt_err *err)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0;

    if (!json_object_is_type(k, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not an object");
    if (molt_pkg_only_fields(k, key_fields, "key", err) < 0 ||
        molt_json_copy_str(k, "keyid", out->keyid, sizeof(out->keyid), err) < 0 ||
        molt_json_int_field(k, "expires", 0, 1, INT64_MAX, &out->expires_ms, err) < 0 ||
        molt_base64_field(k, "publicKey", 64, &raw, &rawlen, err) < 0)
        return MOLT_E_PARSE;
    if (rawlen != MOLT_PKG_KEY_RAW_LEN) {
        free(raw);
        return molt_err_set(err, MOLT_E_PARSE, "field 'publicKey': %zu bytes, an Ed25519 key has "
                            "%d", rawlen, MOLT_PKG_KEY_RAW_LEN);
    }
    memcpy(out->raw, raw, MOLT_PKG_KEY_RAW_LEN);
    free(raw);
    return 0;
}

static int parse_keys(struct json_object *o, struct molt_keyring *kr, struct molt_err *err)
{
    struct json_object *arr;
    size_t n;

    if (!json_object_object_get_ex(o, "keys", &arr))
        return molt_err_set(err, MOLT_E_PARSE, "missing field 'keys'");
    if (!json_object_is_type(arr, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'keys': expected array");
    n = json_object_array_length(arr);
    if (n > MOLT_KEYRING_MAX_KEYS)
        return molt_err_set(err, MOLT_E_LIMIT, "field 'keys': %zu keys, at most %d", n,
                            MOLT_KEYRING_MAX_KEYS);
    for (size_t i = 0; i < n; i++) {
        if (parse_key(json_object_array_get_idx(arr, i), &kr->keys[i], err) < 0)
            return molt_err_prefix(err, "keys[%zu]", i);
        kr->nkeys = i + 1;
    }
    return 0;
}

static int parse_fields(struct json_object *o, struct molt_keyring *kr, struct molt_err *err)
{
    const char *format, *name;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if (molt_pkg_only_fields(o, top_fields, "keyring", err) < 0 ||
        molt_json_get_str(o, "format", &format, err) < 0)
        return MOLT_E_PARSE;
    if (strcmp(format, MOLT_KEYRING_FORMAT) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'format': not %s", MOLT_KEYRING_FORMAT);
    if (molt_json_get_str(o, "name", &name, err) < 0)
        return MOLT_E_PARSE;
    if (strcmp(name, MOLT_KEYRING_NAME) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'name': not %s", MOLT_KEYRING_NAME);
    if (molt_json_int_field(o, "serial", 0, 1, INT64_MAX, &kr->serial, err) < 0 ||
        molt_json_int_field(o, "issued", 0, 1, INT64_MAX, &kr->issued_ms, err) < 0 ||
        molt_json_int_field(o, "expires", 0, 1, INT64_MAX, &kr->expires_ms, err) < 0)
        return MOLT_E_PARSE;
    return parse_keys(o, kr, err);
}

int molt_keyring_parse(const void *buf, size_t len, struct molt_keyring *out,
                       struct molt_err *err)
{
    struct json_object *o = NULL;
    struct molt_keyring *kr;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!buf || len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "empty document");
    if (len > MOLT_KEYRING_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "%zu bytes, larger than %d", len, MOLT_KEYRING_MAX);
    kr = calloc(1, sizeof(*kr));
    if (!kr)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    rc = molt_json_parse(buf, len, &o, err);
    if (rc == 0)
        rc = parse_fields(o, kr, err);
    if (rc == 0)
        rc = molt_keyring_check(kr, err);
    if (rc == 0)
        rc = molt_pkg_sha256_buf(buf, len, kr->sha256, err);
    json_object_put(o);
    if (rc == 0)
        *out = *kr;
    free(kr);
    return rc;
}

/* ---- rules ------------------------------------------------------------------ */

const struct molt_keyring_key *molt_keyring_find(const struct molt_keyring *kr, const char *keyid)
{
    for (size_t i = 0; i < kr->nkeys; i++) {
        if (strcmp(kr->keys[i].keyid, keyid) == 0)
            return &kr->keys[i];
    }
    return NULL;
}

static int check_key(const struct molt_keyring *kr, size_t i, struct molt_err *err)
{
    const struct molt_keyring_key *k = &kr->keys[i];
    char id[MOLT_PKG_KEYID_SIZE], shown[64];

    if (!molt_pkg_is_hex(k->keyid, MOLT_PKG_KEYID_LEN))
        return molt_err_set(err, MOLT_E_PARSE, "keys[%zu]: keyid '%s' is not %d lowercase hex "
                            "digits", i, molt_text_shown(shown, sizeof(shown), k->keyid, 0),
                            MOLT_PKG_KEYID_LEN);
    if (molt_pkg_key_id_raw(k->raw, id, err) < 0)
        return molt_err_prefix(err, "keys[%zu]: publicKey", i);
    if (strcmp(id, k->keyid) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "keys[%zu]: keyid %s is not the id of its key "
                            "(%s)", i, k->keyid, id);
    if (k->expires_ms < 1)
        return molt_err_set(err, MOLT_E_PARSE, "keys[%zu]: expires must be at least 1", i);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(kr->keys[j].keyid, k->keyid) == 0)
            return molt_err_set(err, MOLT_E_PARSE, "keys[%zu]: key %s is listed twice", i,
                                k->keyid);
    }
    return 0;
}

int molt_keyring_check(const struct molt_keyring *kr, struct molt_err *err)
{
    if (kr->serial < 1)
        return molt_err_set(err, MOLT_E_PARSE, "field 'serial': must be at least 1");
    if (kr->issued_ms < 1)
        return molt_err_set(err, MOLT_E_PARSE, "field 'issued': must be at least 1");
    if (kr->expires_ms <= kr->issued_ms)
        return molt_err_set(err, MOLT_E_PARSE, "field 'expires': not after 'issued'");
    if (kr->nkeys > MOLT_KEYRING_MAX_KEYS)
        return molt_err_set(err, MOLT_E_LIMIT, "field 'keys': %zu keys, at most %d", kr->nkeys,
                            MOLT_KEYRING_MAX_KEYS);
    for (size_t i = 0; i < kr->nkeys; i++) {
        int rc = check_key(kr, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- load ------------------------------------------------------------------- */

int molt_keyring_load(const char *root_dir, int threshold, const void *doc, size_t doc_len,
                      const void *sig, size_t sig_len, struct molt_keyring *out,
                      struct molt_err *err)
{
    int rc;

    if (!doc || doc_len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "keyring: missing");
    /* The cap comes before the signatures: no unbounded hashing of a hostile document. */
    if (doc_len > MOLT_KEYRING_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "keyring: %zu bytes, larger than %d", doc_len,
                            MOLT_KEYRING_MAX);
    rc = molt_sigset_verify(root_dir, threshold, doc, doc_len, sig, sig_len, NULL, 0, err);
    if (rc == 0)
        rc = molt_keyring_parse(doc, doc_len, out, err);
    return rc < 0 ? molt_err_prefix(err, "keyring") : 0;
}

/* ---- format ----------------------------------------------------------------- */

static int key_order(const void *pa, const void *pb)
{
    return strcmp(((const struct molt_keyring_key *)pa)->keyid,
                  ((const struct molt_keyring_key *)pb)->keyid);
}

/* Keys are added in byte order: json-c keeps insertion order, so the text is sorted. */
static int key_json(const struct molt_keyring_key *k, struct json_object **out,
                    struct molt_err *err)
{
    char *b64 = NULL;
    int rc = molt_base64_encode(k->raw, sizeof(k->raw), &b64, err);

    if (rc < 0)
        return rc;
    *out = json_object_new_object();
    json_object_object_add(*out, "expires", json_object_new_int64(k->expires_ms));
    json_object_object_add(*out, "keyid", json_object_new_string(k->keyid));
    json_object_object_add(*out, "publicKey", json_object_new_string(b64));
    free(b64);
    return 0;
}

int molt_keyring_format(const struct molt_keyring *kr, char **out, size_t *len,
                        struct molt_err *err)
{
    struct molt_keyring_key sorted[MOLT_KEYRING_MAX_KEYS];
    struct json_object *o, *arr, *k;
    int rc;

    *out = NULL;
    rc = molt_keyring_check(kr, err);
    if (rc < 0)
        return rc;
    memcpy(sorted, kr->keys, kr->nkeys * sizeof(sorted[0]));
    qsort(sorted, kr->nkeys, sizeof(sorted[0]), key_order);
    o = json_object_new_object();
    json_object_object_add(o, "expires", json_object_new_int64(kr->expires_ms));
    json_object_object_add(o, "format", json_object_new_string(MOLT_KEYRING_FORMAT));
    json_object_object_add(o, "issued", json_object_new_int64(kr->issued_ms));
    arr = json_object_new_array();
    json_object_object_add(o, "keys", arr);
    for (size_t i = 0; i < kr->nkeys && rc == 0; i++) {
        rc = key_json(&sorted[i], &k, err);
        if (rc == 0)
            json_object_array_add(arr, k);
    }
    json_object_object_add(o, "name", json_object_new_string(MOLT_KEYRING_NAME));
    json_object_object_add(o, "serial", json_object_new_int64(kr->serial));
    if (rc == 0)
        rc = molt_pkg_text_line(molt_json_dump(o), out, len, err);
    json_object_put(o);
    return rc;
}

/* ---- expiry ----------------------------------------------------------------- */

int molt_keyring_key_valid(const struct molt_keyring *kr, const struct molt_keyring_key *k,
                           int64_t now_ms)
{
    return now_ms < k->expires_ms && now_ms < kr->expires_ms;
}

int64_t molt_keyring_next_expiry(const struct molt_keyring *kr, int64_t now_ms)
{
    int64_t next = kr->expires_ms > now_ms ? kr->expires_ms : INT64_MAX;

    for (size_t i = 0; i < kr->nkeys; i++) {
        if (kr->keys[i].expires_ms > now_ms && kr->keys[i].expires_ms < next)
            next = kr->keys[i].expires_ms;
    }
    return next;
}

/* ---- the directory of effective release keys -------------------------------- */

static int has_pub_suffix(const char *s)
{
    size_t n = strlen(s);

    return n > 4 && strcmp(s + n - 4, ".pub") == 0;
}

/* Copies keys_dir/ *.pub (regular files only, capped like sign.c's reads). */
static int copy_pinned(const char *keys_dir, const char *to, struct molt_err *err)
{
    DIR *d = opendir(keys_dir);
    struct dirent *de;
    int rc = 0;

    if (!d)
        return 0; /* no pinned keys: the keyring's alone count */
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char from[PATH_MAX], dst[PATH_MAX], *text = NULL;
        size_t len = 0;
        struct stat st;

        if (de->d_name[0] == '.' || !has_pub_suffix(de->d_name))
            continue;
        if (molt_fs_join(from, sizeof(from), keys_dir, de->d_name, err) < 0 ||
            molt_fs_join(dst, sizeof(dst), to, de->d_name, err) < 0) {
            rc = MOLT_E_INVAL;
            break;
        }
        /* As sign.c does: what it would skip is not copied. */
        if (stat(from, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH))
            continue;
        if (molt_fs_read_file(from, MOLT_PKG_KEY_FILE_MAX, &text, &len, err) < 0)
            continue;
        rc = molt_fs_write_atomic(dst, text, len, 0644, err);
        free(text);
    }
    closedir(d);
    return rc;
}

static int write_delegated(const struct molt_keyring *kr, int64_t now_ms, const char *to,
                           size_t *nkeys, struct molt_err *err)
{
    for (size_t i = 0; i < kr->nkeys; i++) {
        const struct molt_keyring_key *k = &kr->keys[i];
        char name[MOLT_PKG_KEYID_SIZE + 16], path[PATH_MAX], *pem = NULL;
        size_t len = 0;
        int rc;

        if (!molt_keyring_key_valid(kr, k, now_ms))
            continue;
        snprintf(name, sizeof(name), "%s.pub", k->keyid);
        rc = molt_fs_join(path, sizeof(path), to, name, err);
        if (rc == 0)
            rc = molt_pkg_key_pub_pem(k->raw, &pem, &len, err);
        if (rc == 0)
            rc = molt_fs_write_atomic(path, pem, len, 0644, err);
        free(pem);
        if (rc < 0)
            return rc;
        (*nkeys)++;
    }
    return 0;
}

/* Removes the siblings <dir>.* but the one in use: the previous directory, and
 * any a crash left between its making and the link's replacement. */
static void remove_stale(const char *dir, const char *keep)
{
    const char *slash = strrchr(dir, '/');
    char parent[PATH_MAX], prefix[NAME_MAX + 2];
    struct molt_err ignored = MOLT_ERR_INIT;
    struct dirent *de;
    DIR *d;

    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - dir) : 1, slash ? dir : ".");
    snprintf(prefix, sizeof(prefix), "%s.", slash ? slash + 1 : dir);
    d = opendir(parent[0] ? parent : "/");
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX];

        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || strcmp(de->d_name, keep) == 0 ||
            molt_fs_join(path, sizeof(path), parent[0] ? parent : "/", de->d_name, &ignored) < 0)
            continue;
        (void)molt_fs_remove_tree(path, &ignored);
    }
    closedir(d);
}

int molt_keyring_materialise(const char *keys_dir, const struct molt_keyring *kr, int64_t now_ms,
                             const char *dir, size_t *nkeys, struct molt_err *err)
{
    char fresh[PATH_MAX], old[PATH_MAX], *base;
    struct molt_err ignored = MOLT_ERR_INIT;
    size_t n = 0;
    ssize_t oldlen;
    int rc;

    oldlen = readlink(dir, old, sizeof(old) - 1);
    old[oldlen > 0 ? oldlen : 0] = '\0';
    /* A new name each time (never the one in use, even within one ms). */
    for (int64_t stamp = now_ms;; stamp++) {
        if ((size_t)snprintf(fresh, sizeof(fresh), "%s.%lld", dir, (long long)stamp) >=
            sizeof(fresh))
            return molt_err_set(err, MOLT_E_INVAL, "trusted keys: path too long");
        base = strrchr(fresh, '/');
        if (strcmp(old, base ? base + 1 : fresh) != 0)
            break;
    }
    (void)molt_fs_remove_tree(fresh, &ignored);
    rc = mkdir(fresh, 0700) < 0 ? molt_err_errno(err, "trusted keys: mkdir %s", fresh) : 0;
    if (rc == 0)
        rc = copy_pinned(keys_dir, fresh, err);
    if (rc == 0 && kr)
        rc = write_delegated(kr, now_ms, fresh, &n, err);
    if (rc == 0)
        rc = molt_fs_fsync_dir(fresh, err);
    if (rc == 0)
        rc = molt_fs_symlink_atomic(base ? base + 1 : fresh, dir, err);
    if (rc < 0) {
        (void)molt_fs_remove_tree(fresh, &ignored);
        return molt_err_prefix(err, "trusted keys %s", dir);
    }
    remove_stale(dir, base ? base + 1 : fresh);
    if (nkeys)
        *nkeys = n;
    return 0;
}
