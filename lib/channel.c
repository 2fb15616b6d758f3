/* channel.c: the release channel document: strict parse after a threshold of
 * signatures, its rules, a reproducible writer, the pure decisions an agent
 * makes with it (admit a build on this host now; refuse a replayed serial), and
 * the channel in force as the state directory keeps it. */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "base64.h"
#include "fs.h"
#include "json.h"
#include "package_int.h"
#include "sign.h"
#include "sigset.h"
#include "text.h"
#include "version.h"

#define ROLLOUT_DOMAIN "molt-rollout"

static const char *const top_fields[] = {"builds", "expires", "floor",  "format",
                                         "issued", "name",    "serial", NULL};
static const char *const build_fields[] = {"arch",    "os", "rollout", "statementSha256",
                                           "version", NULL};
static const char *const rollout_fields[] = {"notBefore", "percent", NULL};

/* ---- parse ------------------------------------------------------------------ */

static int parse_rollout(struct json_object *b, struct molt_channel_build *out,
                         struct molt_err *err)
{
    struct json_object *r;
    int64_t percent = 0, not_before = 0;

    if (molt_json_get_obj(b, "rollout", &r, err) < 0 ||
        molt_pkg_only_fields(r, rollout_fields, "rollout", err) < 0 ||
        molt_json_int_field(r, "percent", 0, 0, 100, &percent, err) < 0 ||
        molt_json_int_field(r, "notBefore", 0, 0, INT64_MAX, &not_before, err) < 0)
        return MOLT_E_PARSE;
    out->percent = (int)percent;
    out->not_before_ms = not_before;
    return 0;
}

static int parse_build(struct json_object *b, struct molt_channel_build *out, struct molt_err *err)
{
    if (!json_object_is_type(b, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not an object");
    if (molt_pkg_only_fields(b, build_fields, "build", err) < 0 ||
        molt_json_copy_str(b, "version", out->version, sizeof(out->version), err) < 0 ||
        molt_json_copy_str(b, "os", out->os, sizeof(out->os), err) < 0 ||
        molt_json_copy_str(b, "arch", out->arch, sizeof(out->arch), err) < 0 ||
        molt_json_copy_str(b, "statementSha256", out->statement_sha256,
                           sizeof(out->statement_sha256), err) < 0)
        return MOLT_E_PARSE;
    return parse_rollout(b, out, err);
}

static int parse_builds(struct json_object *o, struct molt_channel *ch, struct molt_err *err)
{
    struct json_object *arr;
    size_t n;

    if (!json_object_object_get_ex(o, "builds", &arr))
        return molt_err_set(err, MOLT_E_PARSE, "missing field 'builds'");
    if (!json_object_is_type(arr, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'builds': expected array");
    n = json_object_array_length(arr);
    if (n > MOLT_CHANNEL_MAX_BUILDS)
        return molt_err_set(err, MOLT_E_LIMIT, "field 'builds': %zu builds, at most %d", n,
                            MOLT_CHANNEL_MAX_BUILDS);
    ch->builds = calloc(n ? n : 1, sizeof(*ch->builds));
    if (!ch->builds)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (parse_build(json_object_array_get_idx(arr, i), &ch->builds[i], err) < 0)
            return molt_err_prefix(err, "builds[%zu]", i);
        ch->nbuilds = i + 1;
    }
    return 0;
}

static int parse_fields(struct json_object *o, struct molt_channel *ch, struct molt_err *err)
{
    const char *format;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if (molt_pkg_only_fields(o, top_fields, "channel", err) < 0 ||
        molt_json_get_str(o, "format", &format, err) < 0)
        return MOLT_E_PARSE;
    if (strcmp(format, MOLT_CHANNEL_FORMAT) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'format': not %s", MOLT_CHANNEL_FORMAT);
    if (molt_json_copy_str(o, "name", ch->name, sizeof(ch->name), err) < 0 ||
        molt_json_int_field(o, "serial", 0, 1, INT64_MAX, &ch->serial, err) < 0 ||
        molt_json_int_field(o, "issued", 0, 1, INT64_MAX, &ch->issued_ms, err) < 0 ||
        molt_json_int_field(o, "expires", 0, 1, INT64_MAX, &ch->expires_ms, err) < 0 ||
        molt_json_copy_str(o, "floor", ch->floor, sizeof(ch->floor), err) < 0)
        return MOLT_E_PARSE;
    return parse_builds(o, ch, err);
}

int molt_channel_parse(const void *buf, size_t len, struct molt_channel *out, struct molt_err *err)
{
    struct json_object *o = NULL;
    struct molt_channel ch = {0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (!buf || len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "empty document");
    if (len > MOLT_CHANNEL_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "%zu bytes, larger than %d", len, MOLT_CHANNEL_MAX);
    rc = molt_json_parse(buf, len, &o, err);
    if (rc == 0)
        rc = parse_fields(o, &ch, err);
    if (rc == 0)
        rc = molt_channel_check(&ch, err);
    if (rc == 0)
        rc = molt_pkg_sha256_buf(buf, len, ch.sha256, err);
    json_object_put(o);
    if (rc < 0) {
        molt_channel_free(&ch);
        return rc;
    }
    *out = ch;
    return 0;
}

/* ---- rules ------------------------------------------------------------------ */

static int same_build(const struct molt_channel_build *a, const struct molt_channel_build *b)
{
    return strcmp(a->version, b->version) == 0 && strcmp(a->os, b->os) == 0 &&
           strcmp(a->arch, b->arch) == 0;
}

static int check_build(const struct molt_channel *ch, size_t i, struct molt_err *err)
{
    const struct molt_channel_build *b = &ch->builds[i];
    char shown[200];

    if (!molt_version_valid(b->version))
        return molt_err_set(err, MOLT_E_PARSE, "builds[%zu]: version '%s' is not a version", i,
                            molt_text_shown(shown, sizeof(shown), b->version, 0));
    if (!molt_pkg_is_token(b->os, sizeof(b->os)) || !molt_pkg_is_token(b->arch, sizeof(b->arch)))
        return molt_err_set(err, MOLT_E_PARSE, "builds[%zu]: os and arch: only [a-z0-9_] allowed",
                            i);
    if (!molt_pkg_is_hex(b->statement_sha256, 64))
        return molt_err_set(err, MOLT_E_PARSE,
                            "builds[%zu]: statementSha256: not 64 lowercase hex digits", i);
    if (b->percent < 0 || b->percent > 100 || b->not_before_ms < 0)
        return molt_err_set(err, MOLT_E_PARSE, "builds[%zu]: rollout out of range", i);
    if (ch->floor[0] && molt_version_cmp(b->version, ch->floor) < 0)
        return molt_err_set(err, MOLT_E_PARSE, "builds[%zu]: %s is below the floor %s", i,
                            b->version, ch->floor);
    for (size_t j = 0; j < i; j++) {
        if (same_build(&ch->builds[j], b))
            return molt_err_set(err, MOLT_E_PARSE, "builds[%zu]: %s %s/%s is listed twice", i,
                                b->version, b->os, b->arch);
    }
    return 0;
}

int molt_channel_name_valid(const char *name)
{
    return molt_pkg_is_token(name, sizeof(((struct molt_channel *)0)->name));
}

int molt_channel_check(const struct molt_channel *ch, struct molt_err *err)
{
    char shown[200];

    if (!molt_channel_name_valid(ch->name))
        return molt_err_set(err, MOLT_E_PARSE, "field 'name': '%s': only [a-z0-9_] allowed",
                            molt_text_shown(shown, sizeof(shown), ch->name, 0));
    if (ch->serial < 1)
        return molt_err_set(err, MOLT_E_PARSE, "field 'serial': must be at least 1");
    if (ch->issued_ms < 1)
        return molt_err_set(err, MOLT_E_PARSE, "field 'issued': must be at least 1");
    if (ch->expires_ms <= ch->issued_ms)
        return molt_err_set(err, MOLT_E_PARSE, "field 'expires': not after 'issued'");
    if (ch->floor[0] && !molt_version_valid(ch->floor))
        return molt_err_set(err, MOLT_E_PARSE, "field 'floor': '%s' is not a version",
                            molt_text_shown(shown, sizeof(shown), ch->floor, 0));
    if (ch->nbuilds > MOLT_CHANNEL_MAX_BUILDS)
        return molt_err_set(err, MOLT_E_LIMIT, "field 'builds': %zu builds, at most %d",
                            ch->nbuilds, MOLT_CHANNEL_MAX_BUILDS);
    for (size_t i = 0; i < ch->nbuilds; i++) {
        int rc = check_build(ch, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- load ------------------------------------------------------------------- */

int molt_channel_load(const char *keys_dir, int threshold, const char *expected_name,
                      const void *doc, size_t doc_len, const void *sig, size_t sig_len,
                      struct molt_channel *out, struct molt_err *err)
{
    struct molt_channel ch;
    int rc;

    if (!doc || doc_len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "channel: missing");
    /* The cap comes before the signatures: no unbounded hashing of a hostile document. */
    if (doc_len > MOLT_CHANNEL_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "channel: %zu bytes, larger than %d", doc_len,
                            MOLT_CHANNEL_MAX);
    rc = molt_sigset_verify(keys_dir, threshold, doc, doc_len, sig, sig_len, NULL, 0, err);
    if (rc == 0)
        rc = molt_channel_parse(doc, doc_len, &ch, err);
    if (rc < 0)
        return molt_err_prefix(err, "channel");
    if (expected_name && strcmp(ch.name, expected_name) != 0) {
        rc = molt_err_set(err, MOLT_E_VERIFY, "channel: is '%s', this host follows '%s'", ch.name,
                          expected_name);
        molt_channel_free(&ch);
        return rc;
    }
    *out = ch;
    return 0;
}

void molt_channel_free(struct molt_channel *ch)
{
    free(ch->builds);
    ch->builds = NULL;
    ch->nbuilds = 0;
}

/* ---- format ----------------------------------------------------------------- */

static int build_order(const void *pa, const void *pb)
{
    const struct molt_channel_build *a = pa, *b = pb;
    int c = molt_version_cmp(a->version, b->version);

    if (c == 0)
        c = strcmp(a->os, b->os);
    if (c == 0)
        c = strcmp(a->arch, b->arch);
    return c;
}

/* Keys are added in byte order: json-c keeps insertion order, so the text is sorted. */
static struct json_object *build_json(const struct molt_channel_build *b)
{
    struct json_object *o = json_object_new_object(), *r = json_object_new_object();

    json_object_object_add(o, "arch", json_object_new_string(b->arch));
    json_object_object_add(o, "os", json_object_new_string(b->os));
    json_object_object_add(r, "notBefore", json_object_new_int64(b->not_before_ms));
    json_object_object_add(r, "percent", json_object_new_int(b->percent));
    json_object_object_add(o, "rollout", r);
    json_object_object_add(o, "statementSha256", json_object_new_string(b->statement_sha256));
    json_object_object_add(o, "version", json_object_new_string(b->version));
    return o;
}

int molt_channel_format(const struct molt_channel *ch, char **out, size_t *len,
                        struct molt_err *err)
{
    struct molt_channel_build *sorted = NULL;
    struct json_object *o, *arr;
    int rc;

    *out = NULL;
    rc = molt_channel_check(ch, err);
    if (rc < 0)
        return rc;
    sorted = calloc(ch->nbuilds ? ch->nbuilds : 1, sizeof(*sorted));
    if (!sorted)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if (ch->nbuilds)
        memcpy(sorted, ch->builds, ch->nbuilds * sizeof(*sorted));
    qsort(sorted, ch->nbuilds, sizeof(*sorted), build_order);
    o = json_object_new_object();
    arr = json_object_new_array();
    for (size_t i = 0; i < ch->nbuilds; i++)
        json_object_array_add(arr, build_json(&sorted[i]));
    json_object_object_add(o, "builds", arr);
    json_object_object_add(o, "expires", json_object_new_int64(ch->expires_ms));
    json_object_object_add(o, "floor", json_object_new_string(ch->floor));
    json_object_object_add(o, "format", json_object_new_string(MOLT_CHANNEL_FORMAT));
    json_object_object_add(o, "issued", json_object_new_int64(ch->issued_ms));
    json_object_object_add(o, "name", json_object_new_string(ch->name));
    json_object_object_add(o, "serial", json_object_new_int64(ch->serial));
    rc = molt_pkg_text_line(molt_json_dump(o), out, len, err);
    json_object_put(o);
    free(sorted);
    if (rc == 0 && *len > MOLT_CHANNEL_MAX) {
        free(*out);
        *out = NULL;
        rc = molt_err_set(err, MOLT_E_LIMIT, "channel would be %zu bytes, larger than %d", *len,
                          MOLT_CHANNEL_MAX);
    }
    return rc;
}

/* ---- decisions -------------------------------------------------------------- */

unsigned molt_channel_bucket(const char *machine_id, const char *version)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t a = strlen(ROLLOUT_DOMAIN) + 1, b = strlen(machine_id) + 1, c = strlen(version);
    unsigned char *msg = malloc(a + b + c + 1);
    uint64_t v = 0;

    /* A hash that cannot be computed puts the host last: no rollout below 100% admits it. */
    if (!msg)
        return MOLT_CHANNEL_BUCKETS - 1;
    memcpy(msg, ROLLOUT_DOMAIN, a);
    memcpy(msg + a, machine_id, b);
    memcpy(msg + a + b, version, c + 1); /* the NUL is not hashed */
    if (EVP_Digest(msg, a + b + c, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8) {
        free(msg);
        return MOLT_CHANNEL_BUCKETS - 1;
    }
    free(msg);
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (unsigned)(v % MOLT_CHANNEL_BUCKETS);
}

void molt_channel_time_str(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld ms", (long long)ms);
}

const struct molt_channel_build *molt_channel_find(const struct molt_channel *ch,
                                                   const char *version, const char *os,
                                                   const char *arch)
{
    for (size_t i = 0; i < ch->nbuilds; i++) {
        const struct molt_channel_build *b = &ch->builds[i];
        if (strcmp(b->version, version) == 0 && strcmp(b->os, os) == 0 &&
            strcmp(b->arch, arch) == 0)
            return b;
    }
    return NULL;
}

/* Why the version is not listed for this os/arch: not at all, or for others only. */
static int not_listed(const struct molt_channel *ch, const char *version, const char *os,
                      const char *arch, struct molt_err *err)
{
    char others[128] = "";
    size_t n = 0;

    for (size_t i = 0; i < ch->nbuilds && n + 1 < sizeof(others); i++) {
        const struct molt_channel_build *b = &ch->builds[i];
        if (strcmp(b->version, version) == 0)
            n += (size_t)snprintf(others + n, sizeof(others) - n, "%s%s/%s", n ? " " : "", b->os,
                                  b->arch);
    }
    if (!others[0])
        return molt_err_set(err, MOLT_E_VERIFY, "%s is not in channel '%s' serial %lld", version,
                            ch->name, (long long)ch->serial);
    return molt_err_set(err, MOLT_E_VERIFY,
                        "channel '%s' serial %lld lists %s for %s only, not %s/%s", ch->name,
                        (long long)ch->serial, version, others, os, arch);
}

static int rollout_admits(const struct molt_channel *ch, const struct molt_channel_build *b,
                          int64_t now_ms, const char *machine_id, struct molt_err *err)
{
    unsigned bucket, limit = (unsigned)b->percent * (MOLT_CHANNEL_BUCKETS / 100);
    char when[32];

    if (now_ms < b->not_before_ms) {
        molt_channel_time_str(b->not_before_ms, when);
        return molt_err_set(err, MOLT_E_VERIFY, "rollout of %s in channel '%s' starts at %s",
                            b->version, ch->name, when);
    }
    /* Without a machine id a host has no stable bucket: only a full rollout admits it. */
    if ((!machine_id || !machine_id[0]) && b->percent < 100)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "no machine id: only a 100%% rollout admits this host, %s is at %d%%",
                            b->version, b->percent);
    if (!machine_id || !machine_id[0])
        return 0;
    bucket = molt_channel_bucket(machine_id, b->version);
    if (bucket >= limit)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "host bucket %u is outside the %d%% rollout of %s in channel '%s' "
                            "(buckets below %u)",
                            bucket, b->percent, b->version, ch->name, limit);
    return 0;
}

int molt_channel_admits(const struct molt_channel *ch, int64_t now_ms, const char *machine_id,
                        const char *version, const char *os, const char *arch,
                        const char *statement_sha256, struct molt_err *err)
{
    int rc = molt_channel_admits_local(ch, now_ms, version, os, arch, statement_sha256, err);

    if (rc < 0)
        return rc;
    return rollout_admits(ch, molt_channel_find(ch, version, os, arch), now_ms, machine_id, err);
}

int molt_channel_admits_local(const struct molt_channel *ch, int64_t now_ms, const char *version,
                              const char *os, const char *arch, const char *statement_sha256,
                              struct molt_err *err)
{
    const struct molt_channel_build *b;
    char when[32];

    if (now_ms >= ch->expires_ms) {
        molt_channel_time_str(ch->expires_ms, when);
        return molt_err_set(err, MOLT_E_VERIFY,
                            "channel '%s' serial %lld expired at %s: no new upgrade until a "
                            "newer channel arrives",
                            ch->name, (long long)ch->serial, when);
    }
    if (ch->floor[0] && molt_version_cmp(version, ch->floor) < 0)
        return molt_err_set(err, MOLT_E_VERIFY, "%s is below the floor %s of channel '%s'", version,
                            ch->floor, ch->name);
    b = molt_channel_find(ch, version, os, arch);
    if (!b)
        return not_listed(ch, version, os, arch, err);
    if (!statement_sha256 || strcmp(b->statement_sha256, statement_sha256) != 0)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "statement of %s %s/%s is not the one channel '%s' lists (sha256 "
                            "%.12s..., channel says %.12s...)",
                            version, os, arch, ch->name,
                            statement_sha256 ? statement_sha256 : "(none)", b->statement_sha256);
    return 0;
}

int molt_signed_replay_check(const char *kind, const char *name, int64_t kept_serial,
                             const char *kept_sha256, int64_t serial, const char *sha256,
                             struct molt_err *err)
{
    if (serial < kept_serial)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "%s '%s' serial %lld is older than serial %lld accepted before "
                            "(replay refused)",
                            kind, name, (long long)serial, (long long)kept_serial);
    if (serial == kept_serial && (!kept_sha256 || strcmp(kept_sha256, sha256) != 0))
        return molt_err_set(err, MOLT_E_VERIFY,
                            "%s '%s' serial %lld differs from the serial %lld accepted "
                            "before (a serial is never reused)",
                            kind, name, (long long)serial, (long long)kept_serial);
    return 0;
}

int molt_channel_replay_check(int64_t kept_serial, const char *kept_sha256,
                              const struct molt_channel *ch, struct molt_err *err)
{
    return molt_signed_replay_check("channel", ch->name, kept_serial, kept_sha256, ch->serial,
                                    ch->sha256, err);
}

/* ---- the channel in force ------------------------------------------------------- */

static int add_base64(struct json_object *o, const char *key, const void *data, size_t len,
                      struct molt_err *err)
{
    char *b64 = NULL;
    int rc = molt_base64_encode(data, len, &b64, err);

    if (rc == 0)
        json_object_object_add(o, key, json_object_new_string(b64));
    free(b64);
    return rc;
}

int molt_signed_kept_write(const char *path, const char *kind, const char *name, int64_t serial,
                           const char *sha256, const void *doc, size_t doc_len, const void *sig,
                           size_t sig_len, int64_t accepted_ms, struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    struct json_object *o;
    char *text = NULL;
    size_t len = 0;
    int rc = molt_pkg_sha256_buf(doc, doc_len, hex, err);

    if (rc == 0 && strcmp(hex, sha256) != 0)
        rc = molt_err_set(err, MOLT_E_INVAL, "%s state: the document is not %s '%s' serial %lld",
                          kind, kind, name, (long long)serial);
    if (rc < 0)
        return rc;
    o = json_object_new_object();
    json_object_object_add(o, "acceptedAt", json_object_new_int64(accepted_ms));
    rc = add_base64(o, "document", doc, doc_len, err);
    json_object_object_add(o, "format", json_object_new_string(MOLT_CHANNEL_STATE_FORMAT));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "serial", json_object_new_int64(serial));
    json_object_object_add(o, "sha256", json_object_new_string(sha256));
    if (rc == 0)
        rc = add_base64(o, "signature", sig, sig_len, err);
    if (rc == 0)
        rc = molt_pkg_text_line(molt_json_dump(o), &text, &len, err);
    json_object_put(o);
    if (rc == 0)
        rc = molt_fs_write_atomic(path, text, len, 0600, err);
    free(text);
    return rc < 0 ? molt_err_prefix(err, "keep %s '%s' serial %lld in %s", kind, name,
                                    (long long)serial, path)
                  : 0;
}

int molt_channel_kept_write(const char *path, const struct molt_channel *ch, const void *doc,
                            size_t doc_len, const void *sig, size_t sig_len, int64_t accepted_ms,
                            struct molt_err *err)
{
    return molt_signed_kept_write(path, "channel", ch->name, ch->serial, ch->sha256, doc, doc_len,
                                  sig, sig_len, accepted_ms, err);
}

static int kept_fields(struct json_object *o, struct molt_channel_kept *k, struct molt_err *err)
{
    static const char *const fields[] = {"acceptedAt", "document", "format",    "name",
                                         "serial",     "sha256",   "signature", NULL};
    char hex[MOLT_PKG_SHA256_HEX];
    const char *format;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if (molt_pkg_only_fields(o, fields, "channel state", err) < 0 ||
        molt_json_get_str(o, "format", &format, err) < 0)
        return MOLT_E_PARSE;
    if (strcmp(format, MOLT_CHANNEL_STATE_FORMAT) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'format': not %s", MOLT_CHANNEL_STATE_FORMAT);
    if (molt_json_copy_str(o, "name", k->name, sizeof(k->name), err) < 0 ||
        molt_json_int_field(o, "serial", 0, 1, INT64_MAX, &k->serial, err) < 0 ||
        molt_json_int_field(o, "acceptedAt", 0, 0, INT64_MAX, &k->accepted_ms, err) < 0 ||
        molt_json_copy_str(o, "sha256", k->sha256, sizeof(k->sha256), err) < 0 ||
        molt_base64_field(o, "document", MOLT_CHANNEL_MAX, &k->doc, &k->doc_len, err) < 0 ||
        molt_base64_field(o, "signature", MOLT_SIGSET_MAX, &k->sig, &k->sig_len, err) < 0 ||
        molt_pkg_sha256_buf(k->doc, k->doc_len, hex, err) < 0)
        return MOLT_E_PARSE;
    if (strcmp(hex, k->sha256) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "the document does not match its sha256");
    return 0;
}

int molt_channel_kept_read(const char *path, struct molt_channel_kept *out, struct molt_err *err)
{
    struct molt_channel_kept k = {.serial = 0};
    struct json_object *o = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = molt_fs_read_file(path, MOLT_CHANNEL_STATE_MAX, &text, &len, err);
    if (rc == MOLT_E_NOTFOUND)
        return rc;
    if (rc == 0)
        rc = molt_json_parse(text, len, &o, err);
    if (rc == 0)
        rc = kept_fields(o, &k, err);
    json_object_put(o);
    free(text);
    if (rc < 0) {
        molt_channel_kept_free(&k);
        return molt_err_prefix(err, "channel state %s", path);
    }
    *out = k;
    return 0;
}

void molt_channel_kept_free(struct molt_channel_kept *k)
{
    free(k->doc);
    free(k->sig);
    k->doc = k->sig = NULL;
    k->doc_len = k->sig_len = 0;
}
