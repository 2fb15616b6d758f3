/* trust.c: the release channel in force and the release keys (trust.h): each
 * kept, fetched, replaced only by a newer verified one; the channel asked
 * about every build before a byte of it is downloaded. */
#include "trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "base64.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "sigset.h"
#include "version.h"

int molt_trust_init(struct molt_trust *t, struct molt_err *err)
{
    memset(t, 0, sizeof(*t));
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        return molt_err_set(err, MOLT_E_NOMEM, "trust: cannot create its lock");
    return 0;
}

void molt_trust_cleanup(struct molt_trust *t)
{
    molt_channel_free(&t->ch);
    pthread_mutex_destroy(&t->mu);
}

/* A kept file that cannot be read back is moved out of the way (and kept for
 * a look), so that the next document can be written. */
static void set_aside(const char *path, const char *kind, const char *event, const char *why)
{
    char aside[PATH_MAX + 32];

    snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)molt_host_realtime_ms());
    if (rename(path, aside) < 0)
        aside[0] = '\0';
    molt_log_error(event, "path=%s reason=\"%s\" set_aside=%s action=\"no upgrade until a new %s "
                   "arrives\"", path, why, aside[0] ? aside : "-", kind);
}

/* t->mu held. Reads the kept channel again and verifies it with the keys in
 * force now: a key revoked or expired since makes it lapse. */
static void load_kept(struct molt_trust *t)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel_kept k;
    int rc;

    molt_channel_free(&t->ch);
    memset(&t->ch, 0, sizeof(t->ch));
    t->chd.have = 0;
    t->chd.kept_serial = 0;
    t->chd.kept_sha256[0] = '\0';
    rc = molt_channel_kept_read(t->path, &k, &err);
    if (rc == MOLT_E_NOTFOUND) {
        molt_log_info("trust.channel", "name=%s state=none", t->name);
        return;
    }
    if (rc < 0) {
        set_aside(t->path, "channel", "trust.channel_corrupt", err.msg);
        return;
    }
    if (strcmp(k.name, t->name) != 0) {
        /* Another channel's serial says nothing about this one's. */
        molt_log_warn("trust.channel", "name=%s kept=%s state=none (the host follows another "
                      "channel now)", t->name, k.name);
        molt_channel_kept_free(&k);
        return;
    }
    t->chd.kept_serial = k.serial;
    snprintf(t->chd.kept_sha256, sizeof(t->chd.kept_sha256), "%s", k.sha256);
    rc = molt_channel_load(t->verify_dir, t->threshold, t->name, k.doc, k.doc_len, k.sig,
                           k.sig_len, &t->ch, &err);
    if (rc < 0) {
        molt_log_error("trust.channel_lapsed", "name=%s serial=%lld reason=\"%s\" action=\"no "
                       "upgrade until a newer channel arrives\"", t->name, (long long)k.serial,
                       err.msg);
    } else {
        t->chd.have = 1;
        molt_log_info("trust.channel", "name=%s serial=%lld state=kept", t->name,
                      (long long)t->ch.serial);
    }
    molt_channel_kept_free(&k);
}

/* t->mu held. The effective release keys for now_ms: keys_dir alone without a
 * keyring (as before keyrings existed), else keys_dir's and the keyring's
 * unexpired ones in trusted_dir. A directory that cannot be built leaves the
 * pinned keys alone in force: fewer keys, never more. */
static void rebuild_keys(struct molt_trust *t, int64_t now_ms)
{
    struct molt_err err = MOLT_ERR_INIT;
    size_t n = 0;

    snprintf(t->verify_dir, sizeof(t->verify_dir), "%s", t->keys_dir);
    t->keys_expiry_ms = INT64_MAX;
    if (!t->krd.have)
        return;
    if (molt_keyring_materialise(t->keys_dir, &t->kr, now_ms, t->trusted_dir, &n, &err) < 0) {
        molt_log_error("trust.keys", "keyring=%lld error=\"%s\" action=\"only the pinned keys "
                       "of %s count; retried in %d s\"", (long long)t->kr.serial, err.msg,
                       t->keys_dir, MOLT_TRUST_RETRY_MS / 1000);
        t->keys_expiry_ms = now_ms + MOLT_TRUST_RETRY_MS; /* refresh_keys tries again */
        return;
    }
    snprintf(t->verify_dir, sizeof(t->verify_dir), "%s", t->trusted_dir);
    t->keys_expiry_ms = molt_keyring_next_expiry(&t->kr, now_ms);
    molt_log_info("trust.keys", "keyring=%lld delegated=%zu of %zu dir=%s", (long long)t->kr.serial,
                  n, t->kr.nkeys, t->trusted_dir);
}

/* t->mu held. When a delegated key expired since the last build: the keys and
 * so the channel in force change with the clock, not only with documents. */
static void refresh_keys(struct molt_trust *t, int64_t now_ms)
{
    if (t->krd.have && now_ms >= t->keys_expiry_ms) {
        rebuild_keys(t, now_ms);
        if (!t->off)
            load_kept(t);
    }
}

/* t->mu held. */
static void load_keyring(struct molt_trust *t)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel_kept k;
    int rc;

    memset(&t->krd, 0, sizeof(t->krd));
    memset(&t->kr, 0, sizeof(t->kr));
    rc = molt_channel_kept_read(t->keyring_path, &k, &err);
    if (rc == MOLT_E_NOTFOUND)
        return;
    if (rc < 0) {
        set_aside(t->keyring_path, "keyring", "trust.keyring_corrupt", err.msg);
        return;
    }
    t->krd.kept_serial = k.serial;
    snprintf(t->krd.kept_sha256, sizeof(t->krd.kept_sha256), "%s", k.sha256);
    rc = molt_keyring_load(t->root_dir, t->root_threshold, k.doc, k.doc_len, k.sig, k.sig_len,
                           &t->kr, &err);
    if (rc < 0)
        molt_log_error("trust.keyring_lapsed", "serial=%lld reason=\"%s\" action=\"only the "
                       "pinned keys of %s count\"", (long long)k.serial, err.msg, t->keys_dir);
    else
        t->krd.have = 1;
    if (t->krd.have)
        molt_log_info("trust.keyring", "serial=%lld keys=%zu state=kept", (long long)t->kr.serial,
                      t->kr.nkeys);
    molt_channel_kept_free(&k);
}

void molt_trust_configure(struct molt_trust *t, const struct molt_config *conf,
                          const char *state_dir)
{
    struct stat st;

    pthread_mutex_lock(&t->mu);
    /* New keys or threshold: a refused channel or keyring may pass now. */
    t->chd.refused_serial = 0;
    t->off = strcmp(conf->trust.channel, "off") == 0;
    snprintf(t->name, sizeof(t->name), "%s", conf->trust.channel_name);
    t->threshold = (int)conf->trust.signature_threshold;
    t->root_threshold = (int)conf->trust.root_threshold;
    snprintf(t->keys_dir, sizeof(t->keys_dir), "%s", conf->agent.keys_dir);
    snprintf(t->root_dir, sizeof(t->root_dir), "%s/%s", t->keys_dir, MOLT_KEYRING_ROOT_SUBDIR);
    t->has_root = stat(t->root_dir, &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(t->path, sizeof(t->path), "%s/%s", state_dir, MOLT_TRUST_FILE);
    snprintf(t->keyring_path, sizeof(t->keyring_path), "%s/%s", state_dir,
             MOLT_TRUST_KEYRING_FILE);
    snprintf(t->trusted_dir, sizeof(t->trusted_dir), "%s/%s", state_dir, MOLT_TRUST_KEYS_DIR);
    /* Keys first: the channel is verified with them. */
    load_keyring(t);
    rebuild_keys(t, molt_host_realtime_ms());
    if (t->off) {
        molt_channel_free(&t->ch);
        memset(&t->ch, 0, sizeof(t->ch));
        t->chd.have = 0;
        molt_log_warn("trust.channel_off", "trust.channel = off: no release channel is "
                      "enforced; any build signed by a trusted key, older ones included, may be "
                      "installed (for labs only: docs/security.md 6.5)");
    } else {
        load_kept(t);
    }
    pthread_mutex_unlock(&t->mu);
}

/* The one fetch rule of channels and keyrings: a serial higher than the one
 * kept, or the kept one again while it lapsed (it may come back with the same
 * serial and a new set of signatures: a raised threshold met, a rotated key);
 * an announced serial refused is asked for again only after
 * MOLT_TRUST_RETRY_MS. t->mu held. */
static int doc_wanted(const struct molt_trust_doc *d, int64_t announced, int64_t now_mono_ms)
{
    return announced > 0 &&
           (announced > d->kept_serial || (!d->have && announced == d->kept_serial)) &&
           !(announced == d->refused_serial &&
             now_mono_ms - d->refused_mono_ms < MOLT_TRUST_RETRY_MS);
}

int molt_trust_wants(struct molt_trust *t, int64_t announced, int64_t now_mono_ms)
{
    int wants;

    pthread_mutex_lock(&t->mu);
    wants = !t->off && doc_wanted(&t->chd, announced, now_mono_ms);
    pthread_mutex_unlock(&t->mu);
    return wants;
}

int molt_trust_keyring_wants(struct molt_trust *t, int64_t announced, int64_t now_mono_ms)
{
    int wants;

    pthread_mutex_lock(&t->mu);
    wants = t->has_root && doc_wanted(&t->krd, announced, now_mono_ms);
    pthread_mutex_unlock(&t->mu);
    return wants;
}

/* t->mu held: the document is in force from now on. */
static void doc_accepted(struct molt_trust_doc *d, int64_t serial, const char *sha256)
{
    d->have = 1;
    d->kept_serial = serial;
    snprintf(d->kept_sha256, sizeof(d->kept_sha256), "%s", sha256);
}

int molt_trust_offer(struct molt_trust *t, const void *doc, size_t doc_len, const void *sig,
                     size_t sig_len, int64_t now_ms, struct molt_err *err)
{
    struct molt_channel ch = { 0 };
    int rc;

    pthread_mutex_lock(&t->mu);
    refresh_keys(t, now_ms);
    rc = molt_channel_load(t->verify_dir, t->threshold, t->name, doc, doc_len, sig, sig_len, &ch,
                           err);
    if (rc == 0)
        rc = molt_channel_replay_check(t->chd.kept_serial, t->chd.kept_sha256, &ch, err);
    if (rc == 0 && t->chd.have && ch.serial == t->ch.serial) {
        molt_channel_free(&ch); /* the one in force, again */
        goto out;
    }
    if (rc == 0)
        rc = molt_channel_kept_write(t->path, &ch, doc, doc_len, sig, sig_len, now_ms, err);
    if (rc < 0) {
        molt_channel_free(&ch);
        molt_log_warn("trust.channel_refused", "name=%s reason=\"%s\" in_force=%lld", t->name,
                      err->msg, (long long)(t->chd.have ? t->ch.serial : 0));
        goto out;
    }
    molt_channel_free(&t->ch);
    t->ch = ch;
    doc_accepted(&t->chd, ch.serial, ch.sha256);
    molt_log_info("trust.channel_accepted", "name=%s serial=%lld builds=%zu floor=%s", t->name,
                  (long long)ch.serial, ch.nbuilds, ch.floor[0] ? ch.floor : "-");
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int molt_trust_keyring_offer(struct molt_trust *t, const void *doc, size_t doc_len,
                             const void *sig, size_t sig_len, int64_t now_ms,
                             struct molt_err *err)
{
    struct molt_keyring *kr = calloc(1, sizeof(*kr));
    int rc;

    if (!kr)
        return molt_err_set(err, MOLT_E_NOMEM, "keyring: out of memory");
    pthread_mutex_lock(&t->mu);
    rc = molt_keyring_load(t->root_dir, t->root_threshold, doc, doc_len, sig, sig_len, kr, err);
    if (rc == 0)
        rc = molt_signed_replay_check("keyring", MOLT_KEYRING_NAME, t->krd.kept_serial,
                                      t->krd.kept_sha256, kr->serial, kr->sha256, err);
    if (rc == 0 && t->krd.have && kr->serial == t->kr.serial)
        goto out; /* the one in force, again */
    if (rc == 0)
        rc = molt_signed_kept_write(t->keyring_path, "keyring", MOLT_KEYRING_NAME, kr->serial,
                                    kr->sha256, doc, doc_len, sig, sig_len, now_ms, err);
    if (rc < 0) {
        molt_log_warn("trust.keyring_refused", "reason=\"%s\" in_force=%lld", err->msg,
                      (long long)(t->krd.have ? t->kr.serial : 0));
        goto out;
    }
    t->kr = *kr;
    doc_accepted(&t->krd, kr->serial, kr->sha256);
    molt_log_info("trust.keyring_accepted", "serial=%lld keys=%zu", (long long)kr->serial,
                  kr->nkeys);
    rebuild_keys(t, now_ms);
    if (!t->off)
        load_kept(t); /* a revoked key's channel lapses now */
out:
    pthread_mutex_unlock(&t->mu);
    free(kr);
    return rc;
}

int64_t molt_trust_keyring_serial(struct molt_trust *t)
{
    int64_t serial;

    pthread_mutex_lock(&t->mu);
    serial = t->krd.have ? t->kr.serial : 0;
    pthread_mutex_unlock(&t->mu);
    return serial;
}

/* The reply's two base64 members (field: the document's), each within its cap. */
static int parse_reply(const struct molt_http_reply *rep, const char *field, size_t max,
                       unsigned char **doc, size_t *doc_len, unsigned char **sig, size_t *sig_len,
                       struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc = molt_json_parse(rep->body, rep->len, &o, err);

    if (rc == 0 && !json_object_is_type(o, json_type_object))
        rc = molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if (rc == 0)
        rc = molt_base64_field(o, field, max, doc, doc_len, err);
    if (rc == 0)
        rc = molt_base64_field(o, "signature", MOLT_SIGSET_MAX, sig, sig_len, err);
    json_object_put(o);
    return rc;
}

/* What differs between fetching a channel and a keyring. */
struct doc_kind {
    const char *member; /* the reply's member holding the document */
    const char *event;  /* logged when the fetch fails */
    size_t max;         /* the document's cap */
    int (*offer)(struct molt_trust *t, const void *doc, size_t doc_len, const void *sig,
                 size_t sig_len, int64_t now_ms, struct molt_err *err);
};

static const struct doc_kind channel_kind = { "channel", "trust.channel_fetch", MOLT_CHANNEL_MAX,
                                              molt_trust_offer };
static const struct doc_kind keyring_kind = { "keyring", "trust.keyring_fetch", MOLT_KEYRING_MAX,
                                              molt_trust_keyring_offer };

/* One signed document fetched from url and offered; a failed fetch or a
 * refusal is remembered in d against announced (the retry bound). */
static int fetch_doc(struct molt_trust *t, struct molt_http *http, const char *token,
                     const char *url, const struct doc_kind *k, struct molt_trust_doc *d,
                     int64_t announced, int64_t now_mono_ms, struct molt_err *err)
{
    struct molt_http_reply rep = { 0 };
    unsigned char *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    struct molt_http_req req = { .method = "GET", .url = url, .bearer = token,
                                 .timeout_ms = 10000, .max_reply = MOLT_TRUST_REPLY_MAX };
    const char *event = k->event; /* a literal of the kinds above */
    int rc = molt_http_request(http, &req, &rep, err);

    if (rc == 0 && rep.status != 200)
        rc = molt_err_set(err, MOLT_E_HTTP, "HTTP %ld", rep.status);
    if (rc == 0 &&
        (rc = parse_reply(&rep, k->member, k->max, &doc, &doc_len, &sig, &sig_len, err)) < 0)
        molt_err_prefix(err, "%s reply", k->member);
    if (rc < 0)
        molt_log_warn(event, "serial=%lld error=\"%s\"", (long long)announced, err->msg);
    else
        rc = k->offer(t, doc, doc_len, sig, sig_len, molt_host_realtime_ms(), err);
    if (rc < 0) {
        pthread_mutex_lock(&t->mu);
        d->refused_serial = announced;
        d->refused_mono_ms = now_mono_ms;
        pthread_mutex_unlock(&t->mu);
    }
    free(doc);
    free(sig);
    molt_http_reply_free(&rep);
    return rc;
}

int molt_trust_fetch(struct molt_trust *t, struct molt_http *http, const char *token,
                     int64_t announced, int64_t now_mono_ms, struct molt_err *err)
{
    char url[128];

    pthread_mutex_lock(&t->mu);
    snprintf(url, sizeof(url), "/api/v1/collector/channel?name=%s", t->name);
    pthread_mutex_unlock(&t->mu);
    return fetch_doc(t, http, token, url, &channel_kind, &t->chd, announced, now_mono_ms, err);
}

int molt_trust_keyring_fetch(struct molt_trust *t, struct molt_http *http, const char *token,
                             int64_t announced, int64_t now_mono_ms, struct molt_err *err)
{
    return fetch_doc(t, http, token, "/api/v1/collector/keyring", &keyring_kind, &t->krd,
                     announced, now_mono_ms, err);
}

int molt_trust_admit(struct molt_trust *t, int64_t now_ms, const char *machine_id, int local,
                     const char *version, const char *os, const char *arch, const void *stmt,
                     size_t stmt_len, struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    refresh_keys(t, now_ms);
    if (t->off)
        goto out;
    if (!t->chd.have && t->chd.kept_serial)
        rc = molt_err_set(err, MOLT_E_VERIFY, "channel '%s' serial %lld no longer verifies with "
                          "the trusted keys: no upgrade until a newer channel arrives", t->name,
                          (long long)t->chd.kept_serial);
    else if (!t->chd.have)
        rc = molt_err_set(err, MOLT_E_VERIFY, "no release channel '%s' accepted yet: no upgrade "
                          "until the control plane serves one (trust.channel = on)", t->name);
    else if ((rc = molt_pkg_sha256_buf(stmt, stmt_len, hex, err)) == 0)
        rc = local ? molt_channel_admits_local(&t->ch, now_ms, version, os, arch, hex, err)
                   : molt_channel_admits(&t->ch, now_ms, machine_id, version, os, arch, hex, err);
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int molt_trust_authenticate(struct molt_trust *t, const struct molt_build *b,
                            const char *expected, int64_t now_ms, const char *machine_id,
                            int local, struct molt_statement *st, struct molt_err *err)
{
    char keys_dir[sizeof(t->verify_dir)];
    int threshold, rc = 0;

    pthread_mutex_lock(&t->mu);
    refresh_keys(t, now_ms);
    snprintf(keys_dir, sizeof(keys_dir), "%s", t->verify_dir);
    threshold = t->threshold;
    pthread_mutex_unlock(&t->mu);
    if (threshold > 1)
        rc = molt_sigset_verify(keys_dir, threshold, b->statement, b->statement_len,
                                b->signature, b->signature_len, NULL, 0, err);
    if (rc == 0)
        rc = molt_pkg_authenticate(keys_dir, b->statement, b->statement_len, b->signature,
                                   b->signature_len, expected, molt_version_self(), NULL, NULL,
                                   st, err);
    /* What binds the tree the sandboxed worker stages to this statement
     * (molt-installer apply --manifest-sha256): without it, that tree would
     * be the worker's word. */
    if (rc == 0 && !st->manifest_sha256[0])
        rc = molt_err_set(err, MOLT_E_VERIFY, "the statement of %s names no manifestSha256 (an "
                          "older molt-pack built it), so its staged tree could not be checked: "
                          "rebuild it", st->version);
    if (rc == 0)
        rc = molt_trust_admit(t, now_ms, machine_id, local, st->version, st->os, st->arch,
                              b->statement, b->statement_len, err);
    return rc;
}

void molt_trust_view(struct molt_trust *t, int64_t now_ms, struct molt_hb_channel *out)
{
    pthread_mutex_lock(&t->mu);
    refresh_keys(t, now_ms);
    out->name = t->name; /* set at configure, on the main thread, which also reads this */
    out->serial = t->chd.have ? t->ch.serial : t->chd.kept_serial;
    out->age_ms = t->chd.have ? now_ms - t->ch.issued_ms : 0;
    out->keyring_serial = t->krd.have ? t->kr.serial : 0;
    if (t->off)
        out->state = "off";
    else if (!t->chd.have)
        out->state = t->chd.kept_serial ? "lapsed" : "none";
    else
        out->state = now_ms >= t->ch.expires_ms ? "expired" : "ok";
    pthread_mutex_unlock(&t->mu);
}
