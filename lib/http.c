/* http.c: hardened HTTPS requests over one reused libcurl easy handle, driven
 * through a multi handle of its own so that a wake-up fd can end a wait. */
#include "http.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "text.h"

#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif

/* The longest curl_multi_poll wait: abort_fn runs at least this often. */
#define POLL_MAX_MS 1000

/* What the callbacks of one request share. */
struct xfer {
    struct molt_http_reply *rep;
    size_t cap;
    size_t max;
    int too_big;
    long long declared;       /* Content-Length of a reply refused on its headers, else -1 */
    const volatile sig_atomic_t *stop;
    molt_http_abort_fn abort_fn;
    void *abort_arg;
    int aborted;
};

struct molt_http {
    /* The multi handle owns the connection cache: both are replaced together
     * when the transport settings change, so no connection outlives its trust. */
    CURLM *multi;
    CURL *curl;
    struct molt_config conf;
    char tls_hint[MOLT_CONF_STR];   /* tls_setting's message */
    const volatile sig_atomic_t *stop;
    int wake_fd;              /* -1, or an fd whose readability means "check stop/abort" */
    int configured;           /* curl carries the transport options of conf */
    struct xfer x;            /* the current request's; the callbacks point here */
    char errbuf[CURL_ERROR_SIZE];
};

int molt_http_global_init(struct molt_err *err)
{
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (cc != CURLE_OK)
        return molt_err_set(err, MOLT_E_NET, "libcurl init: %s", curl_easy_strerror(cc));
    return 0;
}

void molt_http_global_cleanup(void)
{
    curl_global_cleanup();
}

static int url_has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncasecmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

int molt_http_url_check(const struct molt_config *conf, const char *url, struct molt_err *err)
{
    const char *auth;
    size_t alen;

    if (strlen(url) >= 4096)
        return molt_err_set(err, MOLT_E_INVAL, "URL longer than 4095 bytes");
    if (strchr(url, ' ') || molt_text_find_control(url, SIZE_MAX, NULL))
        return molt_err_set(err, MOLT_E_INVAL, "URL contains a space or control character");
    if (url_has_scheme(url, "http")) {
        if (!conf->server.allow_insecure_http || !molt_conf_url_is_loopback(url))
            return molt_err_set(err, MOLT_E_INVAL,
                                "http:// is allowed only to loopback with "
                                "server.allow_insecure_http = true");
    } else if (!url_has_scheme(url, "https")) {
        return molt_err_set(err, MOLT_E_INVAL, "not an https:// URL");
    }
    auth = strstr(url, "://") + 3;
    alen = strcspn(auth, "/?#");
    if (alen == 0)
        return molt_err_set(err, MOLT_E_INVAL, "URL has no host");
    if (memchr(auth, '@', alen))
        return molt_err_set(err, MOLT_E_INVAL, "URL must not carry credentials");
    return 0;
}

void molt_http_url_name(const char *url, char *out, size_t n)
{
    size_t len = strcspn(url, "?#");

    if (n == 0)
        return;
    if (len < n) {
        snprintf(out, n, "%.*s", (int)len, url);
        return;
    }
    snprintf(out, n, "%.*s...", (int)(n > 4 ? n - 4 : 0), url);
}

/* Splits an authority (up to the first '/', '?' or '#') into host, without
 * the brackets of an IPv6 literal, and port (def when none is given); 0 on
 * success, -1 when there is no usable authority. */
static int authority_host_port(const char *auth, long def, const char **host, size_t *hlen,
                               long *port)
{
    const char *end = auth + strcspn(auth, "/?#"), *colon = NULL, *at;
    char *num_end;

    /* Credentials (a proxy's) come before the host. */
    if ((at = memchr(auth, '@', (size_t)(end - auth))))
        auth = at + 1;
    *host = auth;
    if (*auth == '[') {    /* [v6]:port */
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (!close)
            return -1;
        if (close + 1 < end && close[1] == ':')
            colon = close + 1;
        else if (close + 1 != end)
            return -1;
        *host = auth + 1;
        *hlen = (size_t)(close - *host);
    } else {
        colon = memchr(auth, ':', (size_t)(end - auth));
        *hlen = (size_t)((colon ? colon : end) - auth);
    }
    *port = def;
    if (colon && colon + 1 < end) {
        errno = 0;
        *port = strtol(colon + 1, &num_end, 10);
        if (errno || num_end != end || *port <= 0 || *port > 65535)
            return -1;
    }
    return *hlen > 0 ? 0 : -1;
}

/* An absolute URL's host and port (the scheme's default when none is given). */
static int url_host_port(const char *url, const char **host, size_t *hlen, long *port)
{
    const char *auth = strstr(url, "://");

    if (!auth)
        return -1;
    return authority_host_port(auth + 3, url_has_scheme(url, "https") ? 443 : 80, host, hlen,
                               port);
}

static int copy_host(const char *host, size_t hlen, char *out, size_t n)
{
    if (hlen >= n)
        return -1;
    memcpy(out, host, hlen);
    out[hlen] = '\0';
    return 0;
}

int molt_http_url_endpoint(const char *url, char *host, size_t n, long *port)
{
    const char *h;
    size_t hlen;

    if (url_host_port(url, &h, &hlen, port) < 0)
        return -1;
    return copy_host(h, hlen, host, n);
}

int molt_http_proxy_endpoint(const char *proxy, char *host, size_t n, long *port)
{
    const char *auth = strstr(proxy, "://"), *h;
    size_t hlen;

    auth = auth ? auth + 3 : proxy;
    if (authority_host_port(auth, url_has_scheme(proxy, "https") ? 443 : 1080, &h, &hlen,
                            port) < 0)
        return -1;
    return copy_host(h, hlen, host, n);
}

void molt_http_ref_name(const struct molt_config *conf, const char *ref, char *out, size_t n)
{
    char url[MOLT_HTTP_REF_MAX];
    struct molt_err err = MOLT_ERR_INIT;

    molt_http_url_name(molt_http_resolve(conf, ref, url, sizeof(url), &err) == 0 ? url : ref, out,
                       n);
}

int molt_http_same_origin(const char *a, const char *b)
{
    const char *ha, *hb;
    size_t la, lb;
    long pa, pb;

    if (!(url_has_scheme(a, "https") && url_has_scheme(b, "https")) &&
        !(url_has_scheme(a, "http") && url_has_scheme(b, "http")))
        return 0;
    if (url_host_port(a, &ha, &la, &pa) < 0 || url_host_port(b, &hb, &lb, &pb) < 0)
        return 0;
    return la == lb && strncasecmp(ha, hb, la) == 0 && pa == pb;
}

int molt_http_resolve(const struct molt_config *conf, const char *ref, char *out, size_t n,
                      struct molt_err *err)
{
    size_t blen;

    if (url_has_scheme(ref, "https") || url_has_scheme(ref, "http")) {
        if (strlen(ref) >= n)
            return molt_err_set(err, MOLT_E_LIMIT, "URL too long");
        memcpy(out, ref, strlen(ref) + 1);
        return 0;
    }
    if (ref[0] != '/' || ref[1] == '/')
        return molt_err_set(err, MOLT_E_INVAL, "'%.64s' is neither an absolute URL nor a path",
                            ref);
    if (!conf->server.url[0])
        return molt_err_set(err, MOLT_E_CONFIG, "server.url is not set");
    blen = strlen(conf->server.url);
    while (blen > 0 && conf->server.url[blen - 1] == '/')
        blen--;
    if (snprintf(out, n, "%.*s%s", (int)blen, conf->server.url, ref) >= (int)n)
        return molt_err_set(err, MOLT_E_LIMIT, "URL too long");
    return 0;
}

#define SETOPT(h, opt, val)                                                                   \
    do {                                                                                      \
        CURLcode cc_ = curl_easy_setopt((h), (opt), (val));                                   \
        if (cc_ != CURLE_OK)                                                                  \
            return molt_err_set(err, MOLT_E_NET, "libcurl option %s: %s", #opt,              \
                                curl_easy_strerror(cc_));                                     \
    } while (0)

static int restrict_protocols(CURL *h, int allow_http, struct molt_err *err)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    const char *list = allow_http ? "https,http" : "https";
    SETOPT(h, CURLOPT_PROTOCOLS_STR, list);
    SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, list);
#else
    long mask = CURLPROTO_HTTPS | (allow_http ? CURLPROTO_HTTP : 0);
    SETOPT(h, CURLOPT_PROTOCOLS, mask);
    SETOPT(h, CURLOPT_REDIR_PROTOCOLS, mask);
#endif
    return 0;
}

/* Whether dir holds a CA by its subject hash ("9ae7f320.0"), as OpenSSL
 * looks them up. */
static int has_hashed_certs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;

        found = strlen(n) >= 10 && strspn(n, "0123456789abcdef") == 8 && n[8] == '.' &&
                strspn(n + 9, "0123456789") == strlen(n + 9);
    }
    closedir(d);
    return found;
}

/* Without server.ca_file, the system's CAs: Debian's libcurl reads both the
 * bundle and the hashed directory, and the bundle costs every connection all
 * its ~140 CAs parsed, 0.8 MiB held while the connection lives (bench/README.md).
 * update-ca-certificates writes both from the same set, so the directory
 * alone, where OpenSSL reads a CA only when a chain names it, trusts the same
 * CAs. A libcurl with no directory (Fedora's), or a directory with no hashed
 * CA in it, keeps the bundle. */
static int system_trust(CURL *h, struct molt_err *err)
{
#if LIBCURL_VERSION_NUM >= 0x075400    /* CURLINFO_CAPATH: 7.84.0 */
    char *dir = NULL;

    if (curl_easy_getinfo(h, CURLINFO_CAPATH, &dir) != CURLE_OK || !dir || !has_hashed_certs(dir))
        return 0;
    SETOPT(h, CURLOPT_CAPATH, dir);
    SETOPT(h, CURLOPT_CAINFO, (char *)NULL);
#else
    (void)h;
    (void)err;
#endif
    return 0;
}

int molt_http_apply_common(CURL *h, const struct molt_config *conf, struct molt_err *err)
{
    long low_speed_s = (long)((conf->server.low_speed_timeout_ms + 999) / 1000);

    int rc = restrict_protocols(h, conf->server.allow_insecure_http, err);

    if (rc < 0)
        return rc;
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_MAXREDIRS, 5L);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (conf->server.ca_file[0]) {
        if (access(conf->server.ca_file, R_OK) < 0)
            return molt_err_errno(err, "server.ca_file %s", conf->server.ca_file);
        SETOPT(h, CURLOPT_CAINFO, conf->server.ca_file);
    } else if ((rc = system_trust(h, err)) < 0) {
        return rc;
    }
    if (conf->server.client_cert[0]) {
        if (access(conf->server.client_cert, R_OK) < 0)
            return molt_err_errno(err, "server.client_cert %s", conf->server.client_cert);
        if (access(conf->server.client_key, R_OK) < 0)
            return molt_err_errno(err, "server.client_key %s", conf->server.client_key);
        SETOPT(h, CURLOPT_SSLCERT, conf->server.client_cert);
        SETOPT(h, CURLOPT_SSLKEY, conf->server.client_key);
    }
    /* Without server.proxy libcurl reads https_proxy/http_proxy/no_proxy itself. */
    if (conf->server.proxy[0])
        SETOPT(h, CURLOPT_PROXY, conf->server.proxy);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)conf->server.connect_timeout_ms);
    if (low_speed_s > 0) {
        SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(h, CURLOPT_LOW_SPEED_TIME, low_speed_s);
    }
    SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(h, CURLOPT_USERAGENT, "molt/" MOLT_VERSION);
    return 0;
}

/* A fresh pair of handles: no connections, no TLS sessions, no options set. */
static int new_handles(struct molt_http *h, struct molt_err *err)
{
    CURLM *multi = curl_multi_init();
    CURL *curl = curl_easy_init();

    if (!multi || !curl) {
        curl_multi_cleanup(multi);
        curl_easy_cleanup(curl);
        return molt_err_set(err, MOLT_E_NOMEM, "libcurl: cannot create a handle");
    }
    /* One connection is all the agent uses; the cache keeps it alive between requests. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 4L);
    curl_easy_cleanup(h->curl);
    curl_multi_cleanup(h->multi);
    h->multi = multi;
    h->curl = curl;
    h->configured = 0;
    return 0;
}

int molt_http_new(struct molt_http **out, const struct molt_config *conf,
                  const volatile sig_atomic_t *stop, struct molt_err *err)
{
    struct molt_http *h = calloc(1, sizeof(*h));
    int rc;

    *out = NULL;
    if (!h)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if ((rc = new_handles(h, err)) < 0) {
        free(h);
        return rc;
    }
    h->conf = *conf;
    h->stop = stop;
    h->wake_fd = -1;
    *out = h;
    return 0;
}

void molt_http_set_wake_fd(struct molt_http *h, int fd)
{
    h->wake_fd = fd;
}

void molt_http_free(struct molt_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    curl_multi_cleanup(h->multi);
    explicit_bzero(&h->conf, sizeof(h->conf));
    free(h);
}

static int transport_changed(const struct molt_config *a, const struct molt_config *b)
{
    return strcmp(a->server.url, b->server.url) || strcmp(a->server.ca_file, b->server.ca_file) ||
           strcmp(a->server.client_cert, b->server.client_cert) ||
           strcmp(a->server.client_key, b->server.client_key) ||
           strcmp(a->server.proxy, b->server.proxy) ||
           a->server.allow_insecure_http != b->server.allow_insecure_http;
}

int molt_http_set_config(struct molt_http *h, const struct molt_config *conf,
                         struct molt_err *err)
{
    int rc;

    if (transport_changed(&h->conf, conf)) {
        /* Fresh handles forget connections and TLS sessions made under the old trust. */
        if ((rc = new_handles(h, err)) < 0)
            return rc;
    } else {
        /* Same trust: keep the connection, but let the next request apply every
         * option again from a clean slate (timeouts may have changed). */
        curl_easy_reset(h->curl);
        h->configured = 0;
    }
    h->conf = *conf;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    struct molt_http_reply *rep = x->rep;
    size_t n = size * nmemb;

    if (rep->len + n > x->max) {
        x->too_big = 1;
        return 0;
    }
    /* Doubling, but never past the cap: the buffer is bounded by the endpoint's cap. */
    if (rep->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < rep->len + n + 1)
            cap *= 2;
        if (cap > x->max + 1)
            cap = x->max + 1;
        char *p = realloc(rep->body, cap);
        if (!p)
            return 0;
        rep->body = p;
        x->cap = cap;
    }
    memcpy(rep->body + rep->len, data, n);
    rep->len += n;
    rep->body[rep->len] = '\0';
    return n;
}

static int64_t parse_retry_after(const char *v)
{
    char *end;
    long long s;

    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        errno = 0;
        s = strtoll(v, &end, 10);
        if (errno || (*end && !isspace((unsigned char)*end)))
            return -1;
        return s > MOLT_HTTP_RETRY_AFTER_MAX_MS / 1000 ? MOLT_HTTP_RETRY_AFTER_MAX_MS : s * 1000;
    }
    /* An HTTP-date. */
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    int64_t ms = ((int64_t)when - (int64_t)time(NULL)) * 1000;
    return ms < 0 ? 0 : ms > MOLT_HTTP_RETRY_AFTER_MAX_MS ? MOLT_HTTP_RETRY_AFTER_MAX_MS : ms;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    char line[256];

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->rep->retry_after_ms = -1;    /* a new response (after 100, or a proxy's) */
        return n;
    }
    /* A reply announced larger than the cap is refused before its body comes. */
    if (n > 15 && n < sizeof(line) && strncasecmp(data, "Content-Length:", 15) == 0) {
        char *end;
        memcpy(line, data + 15, n - 15);
        line[n - 15] = '\0';
        errno = 0;
        long long v = strtoll(line, &end, 10);
        if (errno == 0 && v >= 0 && (unsigned long long)v > x->max) {
            x->too_big = 1;
            x->declared = v;
            return 0;
        }
        return n;
    }
    if (n < 12 || n >= sizeof(line) || strncasecmp(data, "Retry-After:", 12) != 0)
        return n;
    memcpy(line, data + 12, n - 12);
    line[n - 12] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    x->rep->retry_after_ms = parse_retry_after(line);
    return n;
}

/* Reads the legacy error body {"status","id","code","message"} when there is one. */
static void parse_error_body(struct molt_http_reply *rep)
{
    struct json_object *o = NULL;
    const char *s = NULL;

    if (!rep->body || molt_json_parse(rep->body, rep->len, &o, NULL) < 0)
        return;
    if (molt_json_opt_str(o, "code", &s, NULL) == 0 && s && strlen(s) < sizeof(rep->code))
        molt_text_shown(rep->code, sizeof(rep->code), s, MOLT_TEXT_QUOTES);
    s = NULL;
    if (molt_json_opt_str(o, "message", &s, NULL) == 0 && s)
        molt_text_shown(rep->message, sizeof(rep->message), s, MOLT_TEXT_QUOTES);
    json_object_put(o);
}

/* For a TLS failure, the setting that decides it, next to libcurl's text. */
static const char *tls_setting(struct molt_http *h, CURLcode cc)
{
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        break;
    default:
        return "";
    }
    if (h->conf.server.ca_file[0])
        snprintf(h->tls_hint, sizeof(h->tls_hint), " (server.ca_file = %.900s)",
                 h->conf.server.ca_file);
    else
        snprintf(h->tls_hint, sizeof(h->tls_hint),
                 " (server.ca_file is unset: the system's CAs verify the server)");
    return h->tls_hint;
}

static int classify(struct molt_http *h, const struct molt_http_req *req, const char *path,
                    CURLcode cc, const struct xfer *x, struct molt_err *err)
{
    struct molt_http_reply *rep = x->rep;

    if (x->aborted || cc == CURLE_ABORTED_BY_CALLBACK)
        return molt_err_set(err, MOLT_E_CANCELLED, "%s %s: cancelled", req->method, path);
    if (x->too_big && x->declared >= 0)
        return molt_err_set(err, MOLT_E_LIMIT, "%s %s: reply of %lld bytes refused: larger than "
                            "this endpoint's cap of %zu bytes", req->method, path, x->declared,
                            x->max);
    if (x->too_big)
        return molt_err_set(err, MOLT_E_LIMIT, "%s %s: reply refused: larger than this "
                            "endpoint's cap of %zu bytes", req->method, path, x->max);
    if (cc != CURLE_OK)
        return molt_err_set(err, MOLT_E_NET, "%s %s: %s%s", req->method, path,
                            h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc),
                            tls_setting(h, cc));
    if (rep->status >= 200 && rep->status < 300)
        return 0;
    parse_error_body(rep);
    return molt_err_set(err, rep->status == 401 || rep->status == 403 ? MOLT_E_AUTH : MOLT_E_HTTP,
                        "%s %s: HTTP %ld%s%s%s%s", req->method, path, rep->status,
                        rep->code[0] ? " " : "", rep->code, rep->message[0] ? ": " : "",
                        rep->message);
}

/* The URL less scheme and authority, for messages; no query strings carry secrets. */
static const char *url_path(const char *url)
{
    const char *p = strstr(url, "://");

    p = p ? p + 3 : url;
    p += strcspn(p, "/");
    return *p ? p : "/";
}

/* What stays the same for every request of one configuration: the security and
 * transport rules and the callbacks (whose state lives in h->x). Applied once
 * per handle, not per request: re-applying costs more than the request path. */
static int configure_handle(struct molt_http *h, struct molt_err *err)
{
    CURL *c = h->curl;
    int rc = molt_http_apply_common(c, &h->conf, err);

    if (rc < 0)
        return rc;
    SETOPT(c, CURLOPT_ERRORBUFFER, h->errbuf);
    SETOPT(c, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(c, CURLOPT_WRITEDATA, &h->x);
    SETOPT(c, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(c, CURLOPT_HEADERDATA, &h->x);
    h->configured = 1;
    return 0;
}

/* Only what may differ from the previous request on the same handle. */
static int set_request(struct molt_http *h, const struct molt_http_req *req, const char *url,
                       struct curl_slist **hdrs, struct molt_err *err)
{
    CURL *c = h->curl;
    int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : MOLT_HTTP_DEFAULT_TIMEOUT_MS;
    long low_speed_s = (long)((h->conf.server.low_speed_timeout_ms + 999) / 1000);
    static const char bearer_prefix[] = "Authorization: Bearer ";
    char line[sizeof(bearer_prefix) + MOLT_HTTP_BEARER_MAX];
    size_t used;

    SETOPT(c, CURLOPT_URL, url);
    SETOPT(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    /* A held request is silent by design; any other gets the configured low-speed limit. */
    SETOPT(c, CURLOPT_LOW_SPEED_TIME, req->long_poll ? (long)(timeout / 1000 + 1) : low_speed_s);
    if (strcmp(req->method, "POST") == 0) {
        SETOPT(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    } else {
        SETOPT(c, CURLOPT_HTTPGET, 1L);
        SETOPT(c, CURLOPT_CUSTOMREQUEST, strcmp(req->method, "GET") ? req->method : NULL);
    }
    *hdrs = curl_slist_append(*hdrs, "Accept: application/json");
    *hdrs = curl_slist_append(*hdrs, "Expect:");
    if (req->body)
        *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
    if (req->bearer) {
        if (strlen(req->bearer) > MOLT_HTTP_BEARER_MAX)
            return molt_err_set(err, MOLT_E_LIMIT, "bearer token longer than %d bytes",
                                MOLT_HTTP_BEARER_MAX);
        used = (size_t)snprintf(line, sizeof(line), "%s%s", bearer_prefix, req->bearer);
        *hdrs = curl_slist_append(*hdrs, line);
        /* Only the part written holds the token. */
        explicit_bzero(line, used < sizeof(line) ? used : sizeof(line));
    }
    if (req->basic_user) {
        SETOPT(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(c, CURLOPT_USERNAME, req->basic_user);
        SETOPT(c, CURLOPT_PASSWORD, req->basic_pass ? req->basic_pass : "");
    }
    if (!*hdrs)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    SETOPT(c, CURLOPT_HTTPHEADER, *hdrs);
    return 0;
}

static void free_headers(struct curl_slist *hdrs)
{
    /* The Authorization line holds the token: wipe it before freeing. */
    for (struct curl_slist *l = hdrs; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(hdrs);
}

static int should_abort(struct xfer *x)
{
    if ((x->stop && *x->stop) || (x->abort_fn && x->abort_fn(x->abort_arg)))
        x->aborted = 1;
    return x->aborted;
}

/* The wake fd is a doorbell (an eventfd or a pipe): empty it so that it cannot
 * keep curl_multi_poll returning; what rang it is in flags should_abort reads,
 * and the owner's own wait reads those flags before it sleeps. */
static void drain(int fd)
{
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/* Runs the transfer on h->multi, waiting on curl's sockets and the wake fd, so
 * that a stop or a wake-up ends even a held long-poll at once. */
static CURLcode perform(struct molt_http *h)
{
    struct curl_waitfd wfd = { .fd = h->wake_fd, .events = CURL_WAIT_POLLIN };
    CURLcode result = CURLE_OK;
    CURLMcode mc;
    CURLMsg *msg;
    int running = 1, left;

    mc = curl_multi_add_handle(h->multi, h->curl);
    if (mc != CURLM_OK)
        goto multi_failed;
    for (;;) {
        mc = curl_multi_perform(h->multi, &running);
        if (mc != CURLM_OK || !running)
            break;
        wfd.revents = 0;
        mc = curl_multi_poll(h->multi, &wfd, h->wake_fd >= 0 ? 1 : 0, POLL_MAX_MS, NULL);
        if (mc != CURLM_OK)
            break;
        if (wfd.revents & CURL_WAIT_POLLIN)
            drain(h->wake_fd);
        if (should_abort(&h->x)) {
            result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
    }
    while (running == 0 && (msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->curl)
            result = msg->data.result;
    }
    /* Removing an unfinished transfer closes its connection: nothing half-read is reused. */
    curl_multi_remove_handle(h->multi, h->curl);
    if (mc == CURLM_OK)
        return result;
multi_failed:
    snprintf(h->errbuf, sizeof(h->errbuf), "libcurl: %s", curl_multi_strerror(mc));
    return CURLE_FAILED_INIT;
}

int molt_http_request(struct molt_http *h, const struct molt_http_req *req,
                      struct molt_http_reply *rep, struct molt_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct xfer *x = &h->x;
    char url[4096];
    CURLcode cc;
    int rc;

    memset(rep, 0, sizeof(*rep));
    rep->retry_after_ms = -1;
    rc = molt_http_resolve(&h->conf, req->url, url, sizeof(url), err);
    if (rc == 0)
        rc = molt_http_url_check(&h->conf, url, err);
    if (rc < 0) {
        molt_err_prefix(err, "%s %s", req->method, url_path(req->url));
        return rc;
    }
    *x = (struct xfer){
        .rep = rep,
        .max = req->max_reply ? req->max_reply : MOLT_HTTP_REPLY_MAX,
        .declared = -1,
        .stop = h->stop,
        .abort_fn = req->abort_fn,
        .abort_arg = req->abort_arg,
    };
    if (x->stop && *x->stop)
        return molt_err_set(err, MOLT_E_CANCELLED, "%s %s: cancelled", req->method,
                            url_path(url));
    if (!h->configured && (rc = configure_handle(h, err)) < 0) {
        /* Next time from a clean slate: some options may have been set already. */
        curl_easy_reset(h->curl);
        return molt_err_prefix(err, "%s %s", req->method, url_path(url));
    }
    h->errbuf[0] = '\0';
    rc = set_request(h, req, url, &hdrs, err);
    if (rc == 0) {
        cc = perform(h);
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &rep->status);
        curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME, &rep->seconds);
        curl_easy_getinfo(h->curl, CURLINFO_NUM_CONNECTS, &rep->connects);
        rc = classify(h, req, url_path(url), cc, x, err);
    }
    /* Detach the wiped headers and the credentials from the handle, which
     * outlives this request. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    if (req->basic_user) {
        curl_easy_setopt(h->curl, CURLOPT_USERNAME, NULL);
        curl_easy_setopt(h->curl, CURLOPT_PASSWORD, NULL);
    }
    free_headers(hdrs);
    x->rep = NULL;
    return rc;
}

void molt_http_reply_free(struct molt_http_reply *rep)
{
    size_t len;

    if (!rep)
        return;
    len = rep->len;
    free(rep->body);
    rep->body = NULL;
    rep->len = 0;
#ifdef HAVE_MALLOC_TRIM
    /* glibc keeps what a large reply (and the JSON tree parsed from it) freed,
     * raising its mmap threshold as it goes: a hostile burst would leave the
     * resident set that much larger for good. Hand it back. */
    if (len >= MOLT_HTTP_TRIM_AT)
        malloc_trim(0);
#else
    (void)len;
#endif
}
