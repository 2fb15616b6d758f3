/* download.c: resumable package download over libcurl with Range/If-Range,
 * a size cap, bounded retries and cancellation. */
#include "download.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fault.h"
#include "fs.h"
#include "http.h"
#include "log.h"

/* State of one attempt; lives on the stack of fetch_once. */
struct attempt {
    const struct molt_dl_opts *o;
    struct molt_dl_stats *stats;
    int fd;
    uint64_t have;          /* bytes in dest, all hashed */
    uint64_t resume_from;   /* what we asked for */
    long status;            /* HTTP status seen in the header callback */
    int status_seen;
    int restarted;          /* a 200 answered our range: dest was truncated */
    int too_long;
    int write_errno;
    char etag[256];
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail (which certificate check failed) */
    int64_t retry_after_ms;       /* the server's Retry-After in seconds form, -1 when absent */
    struct curl_slist *resolve;   /* o->resolve as libcurl takes it */
};

static void sleep_ms(int64_t ms, volatile sig_atomic_t *stop)
{
    while (ms > 0 && !(stop && *stop)) {
        int64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = { (time_t)(step / 1000), (long)(step % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static int64_t backoff_ms(const struct molt_dl_opts *o, int attempt)
{
    int64_t cap = o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000;
    int64_t base = o->backoff_base_ms > 0 ? o->backoff_base_ms : 500;
    int64_t ms = base;

    for (int i = 1; i < attempt && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    /* Full jitter, so a fleet that lost its server does not return in step. */
    return ms / 2 + (int64_t)(random() % (ms / 2 + 1));
}

static void etag_path(const struct molt_dl_opts *o, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s.etag", o->dest);
}

/* dest.etag holds the validator and, on its second line, the URL it came
 * from: a download resumed from another source (a mirror list) must not send
 * one server's ETag to another, which could match it by chance or by design. */
static void load_etag(const struct molt_dl_opts *o, char *out, size_t n)
{
    char path[PATH_MAX];
    char *text = NULL;

    out[0] = '\0';
    etag_path(o, path);
    if (molt_fs_read_file(path, n + strlen(o->url) + 2, &text, NULL, NULL) == 0) {
        size_t len = strcspn(text, "\n");
        const char *from = text[len] ? text + len + 1 : "";
        if (len < n && strcmp(from, o->url) == 0)
            snprintf(out, n, "%.*s", (int)len, text);
        free(text);
    }
}

static void save_etag(const struct molt_dl_opts *o, const char *etag)
{
    char path[PATH_MAX], text[256 + 4096 + 2];
    struct molt_err err = MOLT_ERR_INIT;

    etag_path(o, path);
    if (!etag[0]) {
        unlink(path);
        return;
    }
    /* Best effort: without it a resume after a restart starts over. */
    if (snprintf(text, sizeof(text), "%s\n%s", etag, o->url) >= (int)sizeof(text)) {
        unlink(path);
        return;
    }
    if (molt_fs_write_atomic(path, text, strlen(text), 0600, &err) < 0)
        molt_log_warn("download.etag_not_saved", "reason=\"%s\"", err.msg);
}

static int truncate_dest(struct attempt *a)
{
    if (ftruncate(a->fd, 0) < 0 || lseek(a->fd, 0, SEEK_SET) < 0)
        return -1;
    a->have = 0;
    a->restarted = 1;
    a->stats->restarts++;
    if (a->o->on_reset)
        a->o->on_reset(a->o->ctx);
    return 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct attempt *a = userdata;
    size_t len = size * nitems;

    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        a->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        a->status_seen = 1;
        a->etag[0] = '\0';
        a->retry_after_ms = -1;
    } else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        /* Seconds only; an HTTP-date leaves the usual backoff. */
        char v[32], *end;
        size_t n = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
        memcpy(v, buf + 12, n);
        v[n] = '\0';
        long long s = strtoll(v, &end, 10);
        if (end != v && s >= 0)
            a->retry_after_ms = s > MOLT_HTTP_RETRY_AFTER_MAX_MS / 1000
                                    ? MOLT_HTTP_RETRY_AFTER_MAX_MS
                                    : s * 1000;
    } else if (len > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
        size_t n = len - 5;
        const char *v = buf + 5;
        while (n && (*v == ' ' || *v == '\t'))
            v++, n--;
        while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
            n--;
        if (n < sizeof(a->etag))
            snprintf(a->etag, sizeof(a->etag), "%.*s", (int)n, v);
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *userdata)
{
    struct attempt *a = userdata;
    size_t len = size * nmemb;

    if (a->status != 200 && a->status != 206)
        return len;   /* an error page: counted by curl, not kept */
    /* A 200 to a range request means the server ignored the range (or the file
     * changed): what we have is discarded once, at the response's first byte. */
    if (a->status == 200 && a->resume_from > 0 && !a->restarted && truncate_dest(a) < 0) {
        a->write_errno = errno;
        return 0;
    }
    if (a->have + len > a->o->size) {
        a->too_long = 1;
        return 0;
    }
    if (MOLT_FAULT_INJECT("download.enospc")) {
        a->write_errno = ENOSPC;
        return 0;
    }
    if (molt_fs_write_all(a->fd, buf, len) < 0) {
        a->write_errno = errno;
        return 0;
    }
    a->stats->transferred += len;
    a->have += len;
    if (a->o->on_data)
        a->o->on_data(a->o->ctx, buf, len);
    if (a->o->on_progress)
        a->o->on_progress(a->o->ctx, a->have, a->o->size);
    return len;
}

static int on_xfer(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    struct attempt *a = userdata;

    return a->o->stop && *a->o->stop;
}

/* Feeds the bytes already in dest to on_data, so the hash covers them. This is
 * the one read-back, and only after a restart of the agent. */
static int rehash_prefix(struct attempt *a, struct molt_err *err)
{
    char buf[65536];
    uint64_t left = a->have;

    if (lseek(a->fd, 0, SEEK_SET) < 0)
        return molt_err_errno(err, "seek %s", a->o->dest);
    while (left > 0) {
        ssize_t n = read(a->fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return molt_err_errno(err, "read %s", a->o->dest);
        if (a->o->on_data)
            a->o->on_data(a->o->ctx, buf, (size_t)n);
        left -= (uint64_t)n;
    }
    return 0;
}

static int open_dest(struct attempt *a, struct molt_err *err)
{
    struct stat st;

    a->fd = open(a->o->dest, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->fd < 0)
        return molt_err_errno(err, "open %s", a->o->dest);
    if (fstat(a->fd, &st) < 0)
        return molt_err_errno(err, "stat %s", a->o->dest);
    a->have = (uint64_t)st.st_size;
    if (a->have > a->o->size) {
        /* More than declared cannot be a prefix of the package: start over. */
        if (ftruncate(a->fd, 0) < 0)
            return molt_err_errno(err, "truncate %s", a->o->dest);
        a->have = 0;
    }
    if (a->have > 0 && rehash_prefix(a, err) < 0)
        return err->code;
    if (lseek(a->fd, 0, SEEK_END) < 0)
        return molt_err_errno(err, "seek %s", a->o->dest);
    return 0;
}

/* o->connect in place of libcurl's socket() and connect(). */
static curl_socket_t open_socket(void *userdata, curlsocktype purpose,
                                 struct curl_sockaddr *address)
{
    struct attempt *a = userdata;
    int fd;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    fd = a->o->connect(a->o->connect_ctx, &address->addr, address->addrlen);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* libcurl 7.88 connects a socket it is told is connected all the same
 * (fixed in later releases): the worker's seccomp filter answers that
 * connect() with success, as every TCP socket it holds is connected. */
static int connected_already(void *userdata, curl_socket_t fd, curlsocktype purpose)
{
    (void)userdata;
    (void)fd;
    (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static int setup_handle(CURL *h, struct attempt *a, struct curl_slist **hdrs, const char *etag,
                        struct molt_err *err)
{
    char range[64], line[512];
    int rc = molt_http_apply_common(h, a->o->conf, err);

    if (rc < 0)
        return rc;
    curl_easy_setopt(h, CURLOPT_URL, a->o->url);
    a->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)a->o->size);
    if (a->resolve)
        curl_easy_setopt(h, CURLOPT_RESOLVE, a->resolve);
    if (a->o->connect) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, a);
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, connected_already);
    }
    /* libcurl averages over the transfer and stops reading the socket when
     * ahead; body and progress callbacks keep coming between pauses, so
     * progress reports and cancellation work as without a cap. It checks the
     * rate only between rounds of up to 100 reads of its buffer (libcurl 7.x),
     * so a full socket is read in one burst: a buffer of a thousandth of the
     * rate keeps a burst near 0.1 s of the cap (at least 100 KiB). */
    if (a->o->max_rate > 0) {
        curl_off_t rate = (curl_off_t)a->o->max_rate, buf = rate / 1000;
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, rate);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE,
                         (long)(buf < 1024 ? 1024 : buf > CURL_MAX_WRITE_SIZE ? CURL_MAX_WRITE_SIZE
                                                                            : buf));
    }
    if (a->o->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", a->o->bearer);
        *hdrs = curl_slist_append(*hdrs, line);
    }
    if (a->have > 0) {
        snprintf(range, sizeof(range), "%llu-", (unsigned long long)a->have);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
        if (etag[0]) {
            snprintf(line, sizeof(line), "If-Range: %s", etag);
            *hdrs = curl_slist_append(*hdrs, line);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    return 0;
}

enum outcome { DONE, RETRY, FAIL };

/* Decides what one finished attempt means. */
static enum outcome judge(struct attempt *a, CURLcode cc, struct molt_err *err)
{
    if (a->o->stop && *a->o->stop)
        return molt_err_set(err, MOLT_E_CANCELLED, "download cancelled"), FAIL;
    if (a->too_long || cc == CURLE_FILESIZE_EXCEEDED)
        return molt_err_set(err, MOLT_E_VERIFY, "package longer than the declared %llu bytes",
                            (unsigned long long)a->o->size), FAIL;
    if (a->write_errno) {
        errno = a->write_errno;
        return molt_err_errno(err, "write %s", a->o->dest), FAIL;
    }
    if (a->status == 416) {
        /* Our range starts at or past the end: either we have it all, or the
         * file changed under us. */
        if (a->have == a->o->size)
            return DONE;
        if (truncate_dest(a) < 0)
            return molt_err_errno(err, "truncate %s", a->o->dest), FAIL;
        molt_err_set(err, MOLT_E_HTTP, "server answered 416 to a resume; starting over");
        return RETRY;
    }
    if (cc == CURLE_OK && (a->status == 200 || a->status == 206)) {
        if (a->have == a->o->size)
            return DONE;
        molt_err_set(err, MOLT_E_NET, "connection closed at %llu of %llu bytes",
                     (unsigned long long)a->have, (unsigned long long)a->o->size);
        return RETRY;
    }
    if (cc != CURLE_OK) {
        molt_err_set(err, MOLT_E_NET, "%s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(cc));
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
            return FAIL;
        return RETRY;
    }
    molt_err_set(err, a->status == 401 || a->status == 403 ? MOLT_E_AUTH : MOLT_E_HTTP,
                 "server answered HTTP %ld", a->status);
    return a->status >= 500 || a->status == 429 || a->status == 408 ? RETRY : FAIL;
}

static enum outcome fetch_once(CURL *h, struct attempt *a, struct molt_err *err)
{
    struct curl_slist *hdrs = NULL;
    char etag[256];
    enum outcome out;
    CURLcode cc;

    load_etag(a->o, etag, sizeof(etag));
    a->status = 0;
    a->status_seen = 0;
    a->restarted = 0;
    a->retry_after_ms = -1;
    a->resume_from = a->have;
    curl_easy_reset(h);
    if (setup_handle(h, a, &hdrs, etag, err) < 0) {
        curl_slist_free_all(hdrs);
        return FAIL;
    }
    cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if ((a->status == 200 || a->status == 206) && a->etag[0])
        save_etag(a->o, a->etag);
    out = judge(a, cc, err);
    if (out != FAIL && fsync(a->fd) < 0)
        return molt_err_errno(err, "fsync %s", a->o->dest), FAIL;
    return out;
}

int molt_dl_fetch(const struct molt_dl_opts *o, struct molt_dl_stats *stats,
                  struct molt_err *err)
{
    struct molt_dl_stats dummy;
    struct attempt a;
    int max = o->max_attempts > 0 ? o->max_attempts : 5;
    int rc = 0;
    CURL *h;

    if (!stats)
        stats = &dummy;
    memset(stats, 0, sizeof(*stats));
    memset(&a, 0, sizeof(a));
    a.o = o;
    a.stats = stats;
    a.fd = -1;
    h = curl_easy_init();
    if (!h)
        return molt_err_set(err, MOLT_E_NOMEM, "download: cannot create a curl handle");
    for (const char *const *r = o->resolve; r && *r; r++) {
        struct curl_slist *next = curl_slist_append(a.resolve, *r);

        if (!next) {
            rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
            goto out;
        }
        a.resolve = next;
    }
    rc = open_dest(&a, err);
    if (rc < 0)
        goto out;
    if (o->on_progress)
        o->on_progress(o->ctx, a.have, o->size);
    for (;;) {
        enum outcome out;

        stats->attempts++;
        out = fetch_once(h, &a, err);
        if (out == DONE) {
            rc = 0;
            break;
        }
        if (out == FAIL || stats->attempts >= max) {
            rc = err->code ? err->code : MOLT_E_NET;
            if (out == RETRY)
                molt_err_prefix(err, "gave up after %d attempts", stats->attempts);
            break;
        }
        /* A 429 or 503 with Retry-After: wait at least that long (docs/protocol.md). */
        int64_t wait = backoff_ms(o, stats->attempts);
        if (a.retry_after_ms > wait)
            wait = a.retry_after_ms;
        molt_log_warn("download.retry",
                      "attempt=%d have=%llu total=%llu wait_ms=%lld reason=\"%s\"",
                      stats->attempts, (unsigned long long)a.have, (unsigned long long)o->size,
                      (long long)wait, err->msg);
        sleep_ms(wait, o->stop);
    }
out:
    if (a.fd >= 0)
        close(a.fd);
    curl_easy_cleanup(h);
    curl_slist_free_all(a.resolve);
    if (rc < 0) {
        /* Named, so that a signed URL's query stays out of messages and a long
         * URL does not push the error itself out of them. */
        char name[MOLT_HTTP_URL_NAME_MAX + 1];
        molt_http_url_name(o->url, name, sizeof(name));
        molt_err_prefix(err, "download %s", name);
    }
    return rc;
}
