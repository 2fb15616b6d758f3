/* trust.c: the release channel in force (trust.h): kept, fetched, replaced
 * only by a newer verified one, and asked about every build before a byte of
 * it is downloaded. */
#include "trust.h"

#include <stdio.h>
#include <string.h>

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
 * a look), so that the next channel can be written. */
static void set_aside(struct molt_trust *t, const char *why)
{
    char aside[PATH_MAX + 32];

    snprintf(aside, sizeof(aside), "%s.corrupt-%lld", t->path, (long long)molt_host_realtime_ms());
    if (rename(t->path, aside) < 0)
        aside[0] = '\0';
    molt_log_error("trust.channel_corrupt", "path=%s reason=\"%s\" set_aside=%s action=\"no "
                   "upgrade until a new channel arrives\"", t->path, why, aside[0] ? aside : "-");
}

/* t->mu held. */
static void load_kept(struct molt_trust *t)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel_kept k;
    int rc = molt_channel_kept_read(t->path, &k, &err);

    if (rc == MOLT_E_NOTFOUND) {
        molt_log_info("trust.channel", "name=%s state=none", t->name);
        return;
    }
    if (rc < 0) {
        set_aside(t, err.msg);
        return;
    }
    if (strcmp(k.name, t->name) != 0) {
        /* Another channel's serial says nothing about this one's. */
        molt_log_warn("trust.channel", "name=%s kept=%s state=none (the host follows another "
                      "channel now)", t->name, k.name);
        molt_channel_kept_free(&k);
        return;
    }
    t->kept_serial = k.serial;
    snprintf(t->kept_sha256, sizeof(t->kept_sha256), "%s", k.sha256);
    rc = molt_channel_load(t->keys_dir, t->threshold, t->name, k.doc, k.doc_len, k.sig, k.sig_len,
                           &t->ch, &err);
    if (rc < 0) {
        molt_log_error("trust.channel_lapsed", "name=%s serial=%lld reason=\"%s\" action=\"no "
                       "upgrade until a newer channel arrives\"", t->name, (long long)k.serial,
                       err.msg);
    } else {
        t->have = 1;
        molt_log_info("trust.channel", "name=%s serial=%lld state=kept", t->name,
                      (long long)t->ch.serial);
    }
    molt_channel_kept_free(&k);
}

void molt_trust_configure(struct molt_trust *t, const struct molt_config *conf,
                          const char *state_dir)
{
    pthread_mutex_lock(&t->mu);
    molt_channel_free(&t->ch);
    memset(&t->ch, 0, sizeof(t->ch));
    t->have = 0;
    t->kept_serial = 0;
    t->kept_sha256[0] = '\0';
    t->refused_serial = 0; /* new keys or threshold: a refused channel may pass now */
    t->off = strcmp(conf->trust.channel, "off") == 0;
    snprintf(t->name, sizeof(t->name), "%s", conf->trust.channel_name);
    t->threshold = (int)conf->trust.signature_threshold;
    snprintf(t->keys_dir, sizeof(t->keys_dir), "%s", conf->agent.keys_dir);
    snprintf(t->path, sizeof(t->path), "%s/%s", state_dir, MOLT_TRUST_FILE);
    if (t->off)
        molt_log_warn("trust.channel_off", "trust.channel = off: no release channel is "
                      "enforced; any build signed by a trusted key, older ones included, may be "
                      "installed (for labs only: docs/security.md 6.5)");
    else
        load_kept(t);
    pthread_mutex_unlock(&t->mu);
}

int molt_trust_wants(struct molt_trust *t, int64_t announced, int64_t now_mono_ms)
{
    int wants;

    pthread_mutex_lock(&t->mu);
    /* A lapsed channel may come back with the same serial and a new set of
     * signatures (a raised threshold met, a rotated key). */
    wants = !t->off && announced > 0 &&
            (announced > t->kept_serial || (!t->have && announced == t->kept_serial)) &&
            !(announced == t->refused_serial &&
              now_mono_ms - t->refused_mono_ms < MOLT_TRUST_RETRY_MS);
    pthread_mutex_unlock(&t->mu);
    return wants;
}

int molt_trust_offer(struct molt_trust *t, const void *doc, size_t doc_len, const void *sig,
                     size_t sig_len, int64_t now_ms, struct molt_err *err)
{
    struct molt_channel ch = { 0 };
    int rc;

    pthread_mutex_lock(&t->mu);
    rc = molt_channel_load(t->keys_dir, t->threshold, t->name, doc, doc_len, sig, sig_len, &ch,
                           err);
    if (rc == 0)
        rc = molt_channel_replay_check(t->kept_serial, t->kept_sha256, &ch, err);
    if (rc == 0 && t->have && ch.serial == t->ch.serial) {
        molt_channel_free(&ch); /* the one in force, again */
        goto out;
    }
    if (rc == 0)
        rc = molt_channel_kept_write(t->path, &ch, doc, doc_len, sig, sig_len, now_ms, err);
    if (rc < 0) {
        molt_channel_free(&ch);
        molt_log_warn("trust.channel_refused", "name=%s reason=\"%s\" in_force=%lld", t->name,
                      err->msg, (long long)(t->have ? t->ch.serial : 0));
        goto out;
    }
    molt_channel_free(&t->ch);
    t->ch = ch;
    t->have = 1;
    t->kept_serial = ch.serial;
    snprintf(t->kept_sha256, sizeof(t->kept_sha256), "%s", ch.sha256);
    molt_log_info("trust.channel_accepted", "name=%s serial=%lld builds=%zu floor=%s", t->name,
                  (long long)ch.serial, ch.nbuilds, ch.floor[0] ? ch.floor : "-");
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* The reply's two base64 members, each within its cap. */
static int parse_reply(const struct molt_http_reply *rep, unsigned char **doc, size_t *doc_len,
                       unsigned char **sig, size_t *sig_len, struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc = molt_json_parse(rep->body, rep->len, &o, err);

    if (rc == 0 && !json_object_is_type(o, json_type_object))
        rc = molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if (rc == 0)
        rc = molt_base64_field(o, "channel", MOLT_CHANNEL_MAX, doc, doc_len, err);
    if (rc == 0)
        rc = molt_base64_field(o, "signature", MOLT_SIGSET_MAX, sig, sig_len, err);
    json_object_put(o);
    return rc;
}

int molt_trust_fetch(struct molt_trust *t, struct molt_http *http, const char *token,
                     int64_t announced, int64_t now_mono_ms, struct molt_err *err)
{
    struct molt_http_reply rep = { 0 };
    unsigned char *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    char url[128];
    int rc;

    pthread_mutex_lock(&t->mu);
    snprintf(url, sizeof(url), "/api/v1/collector/channel?name=%s", t->name);
    pthread_mutex_unlock(&t->mu);
    struct molt_http_req req = { .method = "GET", .url = url, .bearer = token,
                                 .timeout_ms = 10000, .max_reply = MOLT_TRUST_REPLY_MAX };
    rc = molt_http_request(http, &req, &rep, err);
    if (rc == 0 && rep.status != 200)
        rc = molt_err_set(err, MOLT_E_HTTP, "HTTP %ld", rep.status);
    if (rc == 0 && (rc = parse_reply(&rep, &doc, &doc_len, &sig, &sig_len, err)) < 0)
        molt_err_prefix(err, "channel reply");
    if (rc < 0)
        molt_log_warn("trust.channel_fetch", "serial=%lld error=\"%s\"", (long long)announced,
                      err->msg);
    else
        rc = molt_trust_offer(t, doc, doc_len, sig, sig_len, molt_host_realtime_ms(), err);
    if (rc < 0) {
        pthread_mutex_lock(&t->mu);
        t->refused_serial = announced;
        t->refused_mono_ms = now_mono_ms;
        pthread_mutex_unlock(&t->mu);
    }
    free(doc);
    free(sig);
    molt_http_reply_free(&rep);
    return rc;
}

int molt_trust_admit(struct molt_trust *t, int64_t now_ms, const char *machine_id, int local,
                     const char *version, const char *os, const char *arch, const void *stmt,
                     size_t stmt_len, struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    if (t->off)
        goto out;
    if (!t->have && t->kept_serial)
        rc = molt_err_set(err, MOLT_E_VERIFY, "channel '%s' serial %lld no longer verifies with "
                          "the trusted keys: no upgrade until a newer channel arrives", t->name,
                          (long long)t->kept_serial);
    else if (!t->have)
        rc = molt_err_set(err, MOLT_E_VERIFY, "no release channel '%s' accepted yet: no upgrade "
                          "until the control plane serves one (trust.channel = on)", t->name);
    else if ((rc = molt_channel_sha256(stmt, stmt_len, hex, err)) == 0)
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
    char keys_dir[sizeof(t->keys_dir)];
    int threshold, rc = 0;

    pthread_mutex_lock(&t->mu);
    snprintf(keys_dir, sizeof(keys_dir), "%s", t->keys_dir);
    threshold = t->threshold;
    pthread_mutex_unlock(&t->mu);
    if (threshold > 1)
        rc = molt_sigset_verify(keys_dir, threshold, b->statement, b->statement_len,
                                b->signature, b->signature_len, NULL, 0, err);
    if (rc == 0)
        rc = molt_pkg_authenticate(keys_dir, b->statement, b->statement_len, b->signature,
                                   b->signature_len, expected, molt_version_self(), NULL, NULL,
                                   st, err);
    if (rc == 0)
        rc = molt_trust_admit(t, now_ms, machine_id, local, st->version, st->os, st->arch,
                              b->statement, b->statement_len, err);
    return rc;
}

void molt_trust_view(struct molt_trust *t, int64_t now_ms, struct molt_hb_channel *out)
{
    pthread_mutex_lock(&t->mu);
    out->name = t->name; /* set at configure, on the main thread, which also reads this */
    out->serial = t->have ? t->ch.serial : t->kept_serial;
    out->age_ms = t->have ? now_ms - t->ch.issued_ms : 0;
    if (t->off)
        out->state = "off";
    else if (!t->have)
        out->state = t->kept_serial ? "lapsed" : "none";
    else
        out->state = now_ms >= t->ch.expires_ms ? "expired" : "ok";
    pthread_mutex_unlock(&t->mu);
}
