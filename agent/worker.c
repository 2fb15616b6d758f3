/* worker.c: the upgrade worker's stages (worker.h): downloading, verifying
 * and staging one task's build inside the worker's sandbox. Moved here from
 * the agent's pipeline (agent/upgrade.c) so that the code that reads untrusted
 * bytes, and the libraries it needs (libarchive, libzstd), run only in the
 * worker process. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "download.h"
#include "fault.h"
#include "fs.h"
#include "host.h"
#include "http.h"
#include "log.h"
#include "report.h"
#include "text.h"
#include "version.h"

#define PROGRESS_PERIOD_MS 1000

/* One progress message: the stage, its bytes, the source in use and an
 * optional message (a delta not used, say). */
static void report(struct molt_worker *w, int stage, int64_t done, int64_t total,
                   const char *message)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    struct molt_wmsg m;
    int n = molt_build_sources(&w->task.build, src);

    molt_wmsg_init(&m);
    m.type = MOLT_WMSG_PROGRESS;
    snprintf(m.stage, sizeof(m.stage), "%s", molt_stage_name(stage));
    m.bytes_done = done;
    m.bytes_total = total;
    if (message)
        snprintf(m.message, sizeof(m.message), "%s", message);
    if (!w->task.local_package[0] && w->task.source >= 0 && w->task.source < n) {
        m.source = w->task.source;
        molt_http_ref_name(&w->conf, w->delta_active ? w->task.build.delta.url : src[m.source],
                           m.served_by, sizeof(m.served_by));
    }
    w->send(w->ctx, &m);
}

/* 0 while the task may go on; else why not (a cancel, the deadline). */
static int aborted(struct molt_worker *w, struct molt_err *err)
{
    if (w->poll)
        w->poll(w->ctx);
    if (!w->abort && molt_host_realtime_ms() >= w->task.expires_at)
        w->abort = MOLT_WORKER_EXPIRED;
    switch (w->abort) {
    case MOLT_WORKER_GO_ON:
        return 0;
    case MOLT_WORKER_EXPIRED:
        return molt_err_set(err, MOLT_E_TIMEOUT, "task expired (not finished 30 minutes "
                            "after it was requested)");
    default:
        return molt_err_set(err, MOLT_E_CANCELLED, "cancelled");
    }
}

static int enter(struct molt_worker *w, int stage, struct molt_err *err)
{
    int rc = aborted(w, err);

    if (rc == 0)
        report(w, stage, 0, stage == MOLT_STAGE_DOWNLOADING ? w->task.build.size : 0, NULL);
    return rc;
}

/* ---- downloading ------------------------------------------------------------ */

static void dl_reset(void *ctx)
{
    struct molt_worker *w = ctx;
    struct molt_err err = MOLT_ERR_INIT;

    molt_pkg_hasher_free(&w->hasher);
    w->hash_failed = molt_pkg_hasher_init(&w->hasher, w->dl_limit, &err) < 0;
}

static void dl_data(void *ctx, const void *buf, size_t len)
{
    struct molt_worker *w = ctx;

    if (!w->hash_failed && molt_pkg_hasher_update(&w->hasher, buf, len, &w->hash_err) < 0)
        w->hash_failed = 1;
}

static void dl_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct molt_worker *w = ctx;
    int64_t now = molt_host_monotonic_ms();

    if (w->poll)
        w->poll(w->ctx);
    if (molt_host_realtime_ms() >= w->task.expires_at && !w->abort)
        w->abort = MOLT_WORKER_EXPIRED;
    if (done < total && now - w->last_progress_mono < PROGRESS_PERIOD_MS)
        return;
    w->last_progress_mono = now;
    report(w, MOLT_STAGE_DOWNLOADING, (int64_t)done, (int64_t)total, NULL);
}

/* Offline upgrades: the package is copied into the task directory the way a
 * download would write it, hashed as it streams, so staging works the same. */
static int copy_local(struct molt_worker *w, const struct molt_statement *st,
                      struct molt_err *err)
{
    char dest[PATH_MAX], buf[65536];
    uint64_t done = 0;
    int in = -1, out = -1, rc = 0;

    snprintf(dest, sizeof(dest), "%s/package", w->task.task_dir);
    in = open(w->task.local_package, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return molt_err_errno(err, "open %s", w->task.local_package);
    out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        rc = molt_err_errno(err, "open %s", dest);
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = molt_err_errno(err, "read %s", w->task.local_package);
            goto out;
        }
        if (n == 0)
            break;
        if (done + (uint64_t)n > st->size) {
            rc = molt_err_set(err, MOLT_E_VERIFY, "package longer than the declared %llu bytes",
                              (unsigned long long)st->size);
            goto out;
        }
        if (molt_fs_write_all(out, buf, (size_t)n) < 0) {
            rc = molt_err_errno(err, "write %s", dest);
            goto out;
        }
        done += (uint64_t)n;
        dl_data(w, buf, (size_t)n);
        dl_progress(w, done, st->size);
        if (w->abort) {
            rc = aborted(w, err);
            goto out;
        }
    }
    if (fsync(out) < 0)
        rc = molt_err_errno(err, "fsync %s", dest);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* The host's agent.download_max_rate and the command's maxBytesPerSecond:
 * the lower wins, so a server can slow a download but never lift the host's
 * cap (0 on either side: no cap from that side). */
static int64_t download_rate(int64_t host_cap, int64_t asked)
{
    if (host_cap > 0 && (asked <= 0 || asked > host_cap))
        return host_cap;
    return asked > 0 ? asked : 0;
}

/* One file of the task from ref (resolved against the server URL) into dest,
 * hashed as it arrives (dl_data) and never longer than size, resuming what is
 * there (its bytes are hashed again as the fetch opens it); kind names it in
 * the log. attempts: connections tried before giving up. */
static int fetch_file(struct molt_worker *w, const struct molt_config *conf, const char *ref,
                      const char *dest, uint64_t size, int attempts, const char *kind,
                      struct molt_err *err)
{
    char url[MOLT_BUILD_URL_MAX + MOLT_CONF_STR], token[MOLT_TOKEN_MAX + 1];
    char name[MOLT_SOURCE_NAME_MAX + 1], shown[MOLT_SOURCE_NAME_MAX + 1];
    struct molt_dl_stats stats = { 0 };
    struct molt_dl_opts o = {
        .conf = conf, .url = url, .dest = dest, .bearer = token, .size = size,
        .max_attempts = attempts, .backoff_base_ms = 500, .backoff_max_ms = 10000,
        .stop = &w->abort, .on_reset = dl_reset, .on_data = dl_data,
        .on_progress = dl_progress, .ctx = w, .resolve = w->resolve,
        .connect = w->connect, .connect_ctx = w->ctx,
    };
    int rc;

    w->dl_limit = size;
    dl_reset(w);
    if (w->hash_failed)
        return molt_err_set(err, w->hash_err.code ? w->hash_err.code : MOLT_E_NOMEM, "%s",
                            w->hash_err.msg);
    rc = molt_http_resolve(conf, ref, url, sizeof(url), err);
    if (rc == 0)
        rc = molt_http_url_check(conf, url, err);
    /* The one place the rule lives: the token is the collector's credential
     * with its server, and goes to nobody else (a mirror, a CDN, a build URL
     * on another host or port). */
    if (rc == 0 && molt_http_same_origin(conf->server.url, url) && w->token[0])
        snprintf(token, sizeof(token), "%s", w->token);
    else
        o.bearer = NULL;
    if (rc < 0)
        return rc;
    o.max_rate = download_rate(conf->agent.download_max_rate, w->task.max_rate);
    if (o.max_rate)
        molt_log_info("upgrade.rate", "task=%s max_bytes_per_second=%lld host_cap=%lld "
                      "command=%lld", w->task.task_id, (long long)o.max_rate,
                      (long long)conf->agent.download_max_rate, (long long)w->task.max_rate);
    rc = molt_dl_fetch(&o, &stats, err);
    explicit_bzero(token, sizeof(token));
    molt_http_url_name(url, name, sizeof(name));
    molt_text_shown(shown, sizeof(shown), name, MOLT_TEXT_QUOTES);
    molt_log_info("upgrade.download",
                  "task=%s build=%s auth=%s file=%s bytes=%llu attempts=%d restarts=%d rc=%d "
                  "source=\"%s\"", w->task.task_id, w->task.build.version,
                  o.bearer ? "token" : "none", kind, (unsigned long long)stats.transferred,
                  stats.attempts, stats.restarts, rc, shown);
    if (rc == 0 && w->hash_failed)
        rc = molt_err_set(err, w->hash_err.code ? w->hash_err.code : MOLT_E_VERIFY, "%s",
                          w->hash_err.msg);
    return rc;
}

/* One source's turn: the package at ref into <task_dir>/package, resuming what
 * is there (whoever served it). attempts: connections tried before the next
 * source gets its turn. */
static int fetch_source(struct molt_worker *w, const struct molt_config *conf,
                        const struct molt_statement *st, const char *ref, int attempts,
                        struct molt_err *err)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", w->task.task_dir);
    return fetch_file(w, conf, ref, dest, st->size, attempts, "package", err);
}

/* 1 when a failure is the source's (its answer, its bytes, its URL), so the
 * next source may do better; 0 for ours (disk, cancel, deadline). */
static int source_failure(int code)
{
    return code == MOLT_E_NET || code == MOLT_E_HTTP || code == MOLT_E_AUTH ||
           code == MOLT_E_VERIFY || code == MOLT_E_INVAL || code == MOLT_E_LIMIT ||
           code == MOLT_E_CONFIG;
}

/* The source's error without the "download URL: " molt_dl_fetch puts first. */
static const char *source_error(const char *msg)
{
    const char *p = strstr(msg, "://");

    if (strncmp(msg, "download ", 9) != 0 || !p || !(p = strstr(p, ": ")))
        return msg;
    return p + 2;
}

/* The partial file goes: the next source starts from scratch. */
static void discard_partial(struct molt_worker *w)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", w->task.task_dir);
    if (unlink(dest) < 0 && errno != ENOENT)
        molt_log_warn("upgrade.download", "task=%s error=\"unlink %s: %s\"", w->task.task_id,
                      dest, strerror(errno));
}

static uint64_t partial_size(const struct molt_worker *w)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", w->task.task_dir);
    return molt_fs_file_size(dest);
}

/* Appends "name: error" for a failed source to the reason, each source in
 * its share of the message so that every one is named. */
static void add_reason(const struct molt_config *conf, char *out, size_t n, int nsrc,
                       const char *ref, const char *msg)
{
    size_t used = strlen(out), share = (n - 48) / (size_t)nsrc;
    char name[MOLT_SOURCE_NAME_MAX + 1];

    molt_http_ref_name(conf, ref, name, share / 2 < sizeof(name) ? share / 2 : sizeof(name));
    if (used < n)
        snprintf(out + used, n - used, "%s%s: %.*s", used ? "; " : "", name,
                 (int)(share - strlen(name) - 4), source_error(msg));
}

/* One source's turn, its result checked against the signed size and sha256
 * when others could do better (check). Bytes partly another source's that
 * come out wrong get this source one more go from scratch before it is
 * blamed: one bad mirror must not discredit a good one that resumed it. */
static int try_source(struct molt_worker *w, const struct molt_config *conf,
                      const struct molt_statement *st, const char *ref, int attempts, int check,
                      char hex[MOLT_PKG_SHA256_HEX], uint64_t *size, struct molt_err *err)
{
    int carried = check && partial_size(w) > 0;

    for (;;) {
        int rc = fetch_source(w, conf, st, ref, attempts, err);
        if (rc < 0) {
            molt_pkg_hasher_free(&w->hasher);
            return rc;
        }
        rc = molt_pkg_hasher_final(&w->hasher, hex, size, err);
        if (rc < 0 || !check || (rc = molt_pkg_bytes_check(st, *size, hex, err)) == 0 ||
            !carried)
            return rc;
        molt_log_warn("upgrade.download", "task=%s reason=\"%s\" action=refetch",
                      w->task.task_id, err->msg);
        discard_partial(w);
        carried = 0;
    }
}

/* Logs a source that failed and adds it to the task's reason; its bytes go
 * when they were wrong, and stay for the next source to resume otherwise. */
static void source_failed(struct molt_worker *w, const struct molt_config *conf, int i, int n,
                          const char *ref, int rc, const struct molt_err *err, char *reason,
                          size_t reason_len)
{
    char name[MOLT_SOURCE_NAME_MAX + 1], shown[MOLT_SOURCE_NAME_MAX + 1];

    if (rc == MOLT_E_VERIFY)
        discard_partial(w);
    molt_http_ref_name(conf, ref, name, sizeof(name));
    molt_text_shown(shown, sizeof(shown), name, MOLT_TEXT_QUOTES);
    molt_log_warn("upgrade.source_failed", "task=%s source=%d of=%d name=\"%s\" error=\"%s\"",
                  w->task.task_id, i + 1, n, shown, source_error(err->msg));
    add_reason(conf, reason, reason_len, n, ref, err->msg);
}

/* The build's sources in turn (molt_build_sources), from the one upgrade.json
 * says is in use: a partial download carries over to the next source (a Range
 * request; a validator never goes to a source it did not come from), and with
 * more than one source each result is checked here, so that wrong bytes cost
 * one source, not the task. With one source the verifying stage checks it, as
 * it always did. Failures that are not the source's end the loop. */
static int download_sources(struct molt_worker *w, const struct molt_config *conf,
                            const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                            uint64_t *size, struct molt_err *err)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    char reason[MOLT_ERR_MSG_MAX] = "";
    int n = molt_build_sources(&w->task.build, src), rc = MOLT_E_NET;

    if (w->task.source < 0 || w->task.source >= n)
        w->task.source = 0;
    for (int i = w->task.source; i < n; i++) {
        if (i != w->task.source) {
            w->task.source = i;   /* the agent persists it: a restart goes on from here */
            report(w, MOLT_STAGE_DOWNLOADING, (int64_t)partial_size(w), st->size, NULL);
        }
        rc = try_source(w, conf, st, src[i], i + 1 < n ? 3 : 8, n > 1, hex, size, err);
        if (rc == 0)
            return 0;
        if (rc == MOLT_E_CANCELLED)
            return aborted(w, err);
        if (n == 1 || !source_failure(rc))
            return rc;
        source_failed(w, conf, i, n, src[i], rc, err, reason, sizeof(reason));
    }
    return molt_err_set(err, rc, "all %d sources failed: %s", n, reason);
}

/* ---- delta upgrades (docs/upgrades.md, section 10) ------------------------ */

/* Applying maps the base and keeps a window of up to the new archive
 * (docs/package-format.md, 7.4): both together stay under this, or the full
 * package is downloaded instead. This tree's point releases need 2.8 MB. */
#define DELTA_MEMORY_BUDGET ((uint64_t)32 << 20)

static void unlink_download(const char *path)
{
    char etag[PATH_MAX];

    unlink(path);
    if (snprintf(etag, sizeof(etag), "%s.etag", path) < (int)sizeof(etag))
        unlink(etag);
}

/* The delta into dest from the command's delta url, with its sha256 and size
 * (fetch_file: hashed as it arrives, never longer than its size). */
static int fetch_delta(struct molt_worker *w, const struct molt_config *conf, const char *dest,
                       char hex[MOLT_PKG_SHA256_HEX], uint64_t *size, struct molt_err *err)
{
    const struct molt_delta_ref *d = &w->task.build.delta;
    int rc;

    w->delta_active = 1; /* servedBy names the delta meanwhile */
    rc = fetch_file(w, conf, d->url, dest, (uint64_t)d->size, 3, "delta", err);
    w->delta_active = 0;
    if (rc == 0)
        return molt_pkg_hasher_final(&w->hasher, hex, size, err);
    molt_pkg_hasher_free(&w->hasher);
    return rc;
}

static int delta_within_budget(const char *path, struct molt_err *err)
{
    unsigned char buf[MOLT_DELTA_HEADER_SIZE];
    struct molt_delta_header h;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return molt_err_errno(err, "open %s", path);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    rc = molt_delta_header_parse(buf, n > 0 ? (size_t)n : 0, &h, err);
    if (rc == 0 && h.base_size + h.archive_size > DELTA_MEMORY_BUDGET)
        rc = molt_err_set(err, MOLT_E_LIMIT, "applying it needs %llu MiB, over the budget of "
                          "%d MiB", (unsigned long long)((h.base_size + h.archive_size) >> 20),
                          (int)(DELTA_MEMORY_BUDGET >> 20));
    return rc;
}

/* Rebuilds the package from the command's delta: the delta downloaded and
 * checked against its size and sha256, the base rebuilt from the running
 * version's installed tree, the package written beside "package" and renamed
 * to it only when it has the statement's size and sha256 (so a crash never
 * leaves a wrong "package" for a resumed download to extend). */
static int via_delta(struct molt_worker *w, const struct molt_config *conf,
                     const struct molt_statement *st, struct molt_err *err)
{
    const struct molt_delta_ref *d = &w->task.build.delta;
    char dpath[PATH_MAX], tmp[PATH_MAX], pkg[PATH_MAX], tree[PATH_MAX + 64];
    char dhex[MOLT_PKG_SHA256_HEX];
    struct molt_delta_base base;
    uint64_t dsize = 0;
    int in = -1, out = -1, rc;

    memset(&base, 0, sizeof(base));
    if (strcmp(d->base_version, molt_version_self()) != 0)
        return molt_err_set(err, MOLT_E_STATE, "it applies to %s, this host runs %s",
                            d->base_version, molt_version_self());
    /* The package bounds its archive from below: too big a package, no delta at all. */
    if (st->size > DELTA_MEMORY_BUDGET / 2)
        return molt_err_set(err, MOLT_E_LIMIT, "the package's %llu bytes are too many for a "
                            "delta (budget %d MiB)", (unsigned long long)st->size,
                            (int)(DELTA_MEMORY_BUDGET >> 20));
    snprintf(dpath, sizeof(dpath), "%s/delta", w->task.task_dir);
    snprintf(tmp, sizeof(tmp), "%s/package.from-delta", w->task.task_dir);
    snprintf(pkg, sizeof(pkg), "%s/package", w->task.task_dir);
    snprintf(tree, sizeof(tree), "%s/versions/%s", conf->install.root, d->base_version);
    rc = fetch_delta(w, conf, dpath, dhex, &dsize, err);
    if (rc == 0 && (dsize != (uint64_t)d->size || strcmp(dhex, d->sha256) != 0))
        rc = molt_err_set(err, MOLT_E_VERIFY, "the delta's %llu bytes do not have the "
                          "command's size and sha256", (unsigned long long)dsize);
    if (rc == 0)
        rc = delta_within_budget(dpath, err);
    if (rc == 0)
        rc = molt_delta_base_from_tree(tree, w->task.task_dir, &base, err);
    if (rc == 0 && (in = open(dpath, O_RDONLY | O_CLOEXEC)) < 0)
        rc = molt_err_errno(err, "open %s", dpath);
    if (rc == 0 &&
        (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        rc = molt_err_errno(err, "open %s", tmp);
    if (rc == 0)
        rc = molt_delta_apply(in, &base, st->size, st->sha256, out, NULL, err);
    if (rc == 0 && fsync(out) < 0)
        rc = molt_err_errno(err, "fsync %s", tmp);
    if (rc == 0 && rename(tmp, pkg) < 0)
        rc = molt_err_errno(err, "rename %s", tmp);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    molt_delta_base_close(&base);
    unlink_download(dpath);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* 0 with the package rebuilt from the delta (hex and size: the statement's,
 * which the rebuilt bytes were checked against as they were written); 1 when
 * the full package must be downloaded, the reason reported; < 0 on a cancel. */
static int try_delta(struct molt_worker *w, const struct molt_config *conf,
                     const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                     uint64_t *size, struct molt_err *err)
{
    struct molt_err derr = MOLT_ERR_INIT;
    char pkg[PATH_MAX], msg[MOLT_ERR_MSG_MAX + 64];

    if (via_delta(w, conf, st, &derr) == 0) {
        molt_log_info("upgrade.delta", "task=%s build=%s base=%s delta_bytes=%lld "
                      "package_bytes=%llu", w->task.task_id, w->task.build.version,
                      w->task.build.delta.base_version, (long long)w->task.build.delta.size,
                      (unsigned long long)st->size);
        snprintf(hex, MOLT_PKG_SHA256_HEX, "%s", st->sha256);
        *size = st->size;
        return 0;
    }
    if (w->abort)
        return aborted(w, err);
    /* A bad delta costs time, never the upgrade: the full package follows. */
    molt_log_warn("upgrade.delta", "task=%s build=%s action=full-download reason=\"%s\"",
                  w->task.task_id, w->task.build.version, derr.msg);
    snprintf(msg, sizeof(msg), "delta not used, downloading the full package: %s", derr.msg);
    report(w, MOLT_STAGE_DOWNLOADING, 0, st->size, msg);
    snprintf(pkg, sizeof(pkg), "%s/package", w->task.task_dir);
    unlink_download(pkg);
    return 1;
}

static int download(struct molt_worker *w, const struct molt_config *conf,
                    const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                    uint64_t *size, struct molt_err *err)
{
    int rc;

    /* A partial package means a full download is already under way (after a
     * restart): it goes on; the delta is for a fresh start. */
    if (!w->task.local_package[0] && w->task.build.delta.present && partial_size(w) == 0 &&
        (rc = try_delta(w, conf, st, hex, size, err)) <= 0)
        return rc;
    if (!w->task.local_package[0])
        return download_sources(w, conf, st, hex, size, err);
    w->dl_limit = st->size;
    w->hash_failed = molt_pkg_hasher_init(&w->hasher, st->size, err) < 0;
    if (w->hash_failed)
        return err->code;
    rc = copy_local(w, st, err);
    molt_log_info("upgrade.download", "task=%s build=%s auth=none bytes=0 attempts=0 "
                  "restarts=0 rc=%d", w->task.task_id, w->task.build.version, rc);
    if (rc == MOLT_E_CANCELLED)
        rc = aborted(w, err);
    if (rc == 0 && w->hash_failed)
        rc = molt_err_set(err, w->hash_err.code ? w->hash_err.code : MOLT_E_VERIFY, "%s",
                          w->hash_err.msg);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&w->hasher, hex, size, err);
    else
        molt_pkg_hasher_free(&w->hasher);
    return rc;
}

static int stage_build(struct molt_worker *w, char out[PATH_MAX], struct molt_err *err)
{
    char pkg[PATH_MAX];

    snprintf(pkg, sizeof(pkg), "%s/package", w->task.task_dir);
    return molt_pkg_stage(pkg, &w->st, w->task.task_dir, "staged", out, err);
}

int molt_worker_run(struct molt_worker *w, char staged[PATH_MAX], int *failed,
                    struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;

    *failed = MOLT_STAGE_DOWNLOADING;
    if (enter(w, MOLT_STAGE_DOWNLOADING, err) < 0)
        return err->code;
    MOLT_FAULT_POINT("worker.in_downloading");
    if (download(w, &w->conf, &w->st, hex, &size, err) < 0)
        return err->code;
    *failed = MOLT_STAGE_VERIFYING;
    if (enter(w, MOLT_STAGE_VERIFYING, err) < 0 ||
        molt_pkg_bytes_check(&w->st, size, hex, err) < 0)
        return err->code;
    MOLT_FAULT_POINT("worker.in_verifying");
    *failed = MOLT_STAGE_STAGING;
    if (enter(w, MOLT_STAGE_STAGING, err) < 0)
        return err->code;
    MOLT_FAULT_POINT("worker.in_staging");
    if (stage_build(w, staged, err) < 0)
        return err->code;
    return 0;
}
