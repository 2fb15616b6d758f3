/* http.h: the agent's HTTPS client over libcurl.
 *
 * One struct molt_http owns ONE easy handle that every request reuses, so the
 * TLS session and the connection stay alive between heartbeats. Security rules
 * are applied to every transfer by molt_http_apply_common(), which other code
 * that needs its own CURL handle (package downloads) calls too:
 *  - TLS peer and host verification always on (system store or server.ca_file),
 *    TLS 1.2 at least, client certificate and key for mTLS when configured;
 *  - https only; http only when server.allow_insecure_http is set, and then only
 *    to loopback (molt_http_url_check); no redirects are followed, and if a
 *    caller enables them they stay on the same scheme family (never file://);
 *  - server.proxy, or the usual environment variables (https_proxy, no_proxy);
 *  - connect and low-speed timeouts; no compressed replies (no decompression bombs).
 *
 * The transport settings are applied once per handle (again after
 * molt_http_set_config); a request sets only its URL, method, body, headers,
 * timeouts and credentials, and detaches the credentials when it ends.
 *
 * A client is not thread-safe: one thread uses it at a time. Requests can be
 * aborted from outside (SIGTERM during a long-poll) through a stop flag and an
 * abort callback, both checked at least once a second while a transfer runs,
 * and at once whenever the wake fd (molt_http_set_wake_fd) becomes readable.
 *
 * Results: 0 for a 2xx reply; otherwise the reply is still filled in (status,
 * body, Retry-After, the legacy error's code and message) and the code says what
 * happened: MOLT_E_NET (no reply: connection, TLS, timeout), MOLT_E_AUTH (401 or
 * 403), MOLT_E_HTTP (any other non-2xx), MOLT_E_LIMIT (reply larger than the
 * request's max_reply: refused on its Content-Length, or as soon as the body
 * passes the cap; the body buffer never grows past it),
 * MOLT_E_CANCELLED (aborted by the stop flag or the abort callback). */
#ifndef MOLT_HTTP_H
#define MOLT_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "conf.h"
#include "err.h"

#define MOLT_HTTP_REPLY_MAX (1024 * 1024)     /* default cap on reply bodies */
#define MOLT_HTTP_TRIM_AT (32 * 1024)         /* freeing a reply this large trims the heap */
#define MOLT_HTTP_DEFAULT_TIMEOUT_MS 60000
#define MOLT_HTTP_RETRY_AFTER_MAX_MS 3600000  /* a larger Retry-After is capped to this */
#define MOLT_HTTP_BEARER_MAX 4096              /* longest bearer token sent */

struct molt_http;

/* Called at least once a second during a transfer; returning non-zero aborts it
 * with MOLT_E_CANCELLED. Also a good place for periodic duties (watchdog pings). */
typedef int (*molt_http_abort_fn)(void *arg);

struct molt_http_req {
    const char *method;       /* "GET" or "POST" */
    const char *url;          /* absolute, or a path ("/api/...") appended to server.url */
    const char *body;         /* JSON for POST, may be NULL */
    size_t body_len;
    const char *bearer;       /* Authorization: Bearer, or NULL */
    const char *basic_user;   /* Authorization: Basic, with basic_pass, or NULL */
    const char *basic_pass;
    int64_t timeout_ms;       /* whole request; 0 = MOLT_HTTP_DEFAULT_TIMEOUT_MS */
    int long_poll;            /* the server may stay silent for the whole timeout */
    size_t max_reply;         /* the endpoint's cap (docs/protocol.md); 0 = MOLT_HTTP_REPLY_MAX */
    molt_http_abort_fn abort_fn;   /* per request, may be NULL */
    void *abort_arg;
};

struct molt_http_reply {
    long status;              /* 0 when no reply arrived */
    char *body;               /* malloc'd, NUL-terminated (not counted in len); may be NULL */
    size_t len;
    int64_t retry_after_ms;   /* -1 when absent */
    char code[64];            /* legacy error body's "code", "" when absent */
    char message[256];        /* legacy error body's "message", sanitised for logs */
    double seconds;           /* total transfer time */
    long connects;            /* new connections made by this request (0 = reused) */
};

/* Creates a client for conf (copied: a later reload goes through
 * molt_http_set_config). stop, when not NULL, aborts any transfer once set. */
int molt_http_new(struct molt_http **out, const struct molt_config *conf,
                  const volatile sig_atomic_t *stop, struct molt_err *err);
void molt_http_free(struct molt_http *h);
/* fd (an eventfd or a pipe's read end, non-blocking; -1 = none) is watched
 * during transfers: when it becomes readable the client empties it and checks
 * the stop flag and the request's abort_fn at once, so whoever sets a flag and
 * then writes to fd ends a held request without waiting for the next check. */
void molt_http_set_wake_fd(struct molt_http *h, int fd);
/* Replaces the configuration (SIGHUP); the connection is dropped only when TLS,
 * proxy or server settings changed. */
int molt_http_set_config(struct molt_http *h, const struct molt_config *conf,
                         struct molt_err *err);

int molt_http_request(struct molt_http *h, const struct molt_http_req *req,
                      struct molt_http_reply *rep, struct molt_err *err);
void molt_http_reply_free(struct molt_http_reply *rep);

/* Applies the security and transport settings above to any easy handle (after
 * curl_easy_reset, or on a fresh one). The caller sets the URL, method, headers
 * and callbacks, and should check the URL with molt_http_url_check first. */
int molt_http_apply_common(CURL *h, const struct molt_config *conf, struct molt_err *err);
/* 0 when url may be used under conf: https, or http to loopback with
 * allow_insecure_http; no credentials in the URL, no control characters. */
int molt_http_url_check(const struct molt_config *conf, const char *url, struct molt_err *err);
/* 1 when the absolute URLs a and b have the same scheme, host (ignoring case)
 * and port (the scheme's default when absent): where the collector token may go. */
int molt_http_same_origin(const char *a, const char *b);
/* Resolves ref against server.url: an absolute http(s) URL is kept, a path
 * starting with '/' is appended to the server URL (less a trailing '/'). */
int molt_http_resolve(const struct molt_config *conf, const char *ref, char *out, size_t n,
                      struct molt_err *err);

/* The name of a URL for logs and messages: scheme, authority and path, never
 * the query or fragment (signed download URLs carry credentials there); cut
 * to n - 1 bytes, ending in "..." when cut. */
#define MOLT_HTTP_URL_NAME_MAX 160
void molt_http_url_name(const char *url, char *out, size_t n);
/* The name of a reference (molt_http_resolve'd against server.url) for logs
 * and reports, as molt_http_url_name. */
#define MOLT_HTTP_REF_MAX 8192
void molt_http_ref_name(const struct molt_config *conf, const char *ref, char *out, size_t n);
/* The host (an IPv6 literal without its brackets) and TCP port (the
 * scheme's default when it names none) an absolute http(s) URL connects to;
 * -1 when it has no usable authority or the host does not fit n. */
int molt_http_url_endpoint(const char *url, char *host, size_t n, long *port);
/* The same for a proxy as libcurl reads server.proxy or https_proxy:
 * "[scheme://][user[:password]@]host[:port][/]", a port of 1080 when it names
 * none (443 for an https:// proxy). */
int molt_http_proxy_endpoint(const char *proxy, char *host, size_t n, long *port);

/* Process-wide libcurl setup; call once from main before any thread starts. */
int molt_http_global_init(struct molt_err *err);
void molt_http_global_cleanup(void);

#endif
