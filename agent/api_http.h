/* api_http.h: the local API's HTTP/1.1 server, written for the agent's Unix
 * socket instead of linking libmicrohttpd, which brought a second TLS stack
 * (GnuTLS, nettle, gmp, p11-kit) into the resident process for a socket that
 * never speaks TLS. Debian 12 has no well-kept server library that fits
 * without one: libevent's evhttp (its only other candidate; libc alone) has
 * had no stable release since 2.1.12 (2020), and its 2.1 has no connection
 * cap or per-request deadline, takes chunked bodies, keep-alive and
 * pipelining, and would be a new dependency of every build and package. The
 * API needs a handful of routes for local clients, one request per
 * connection, so the server below is small, strict and bounded:
 *
 *   - at most MOLT_API_HTTP_CONN_MAX connections (more wait in the backlog);
 *   - one request per connection ("Connection: close"), no pipelining;
 *   - the head (request line and headers) at most MOLT_API_HTTP_HEAD_MAX
 *     bytes with at most MOLT_API_HTTP_HEADERS_MAX header lines, CRLF only,
 *     no obsolete line folding, no control bytes;
 *   - a body only with one Content-Length; Transfer-Encoding is refused (411),
 *     bodies over MOLT_API_HTTP_BODY_MAX answer 413 (read and dropped up to
 *     MOLT_API_HTTP_DISCARD_MAX, so a client still sending sees the answer);
 *   - MOLT_API_HTTP_DEADLINE_MS for the whole exchange, accept to last byte.
 *
 * The parser (molt_api_http_parse) is a pure function over the bytes
 * received so far, unit-tested and fuzzed (tests/fuzz/fuzz_api_request.c).
 * The server runs on its own thread, poll-driven, and hands each complete
 * request to one handler (api.c: the peer check, the router, the envelope). */
#ifndef MOLT_API_HTTP_H
#define MOLT_API_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define MOLT_API_HTTP_CONN_MAX 32
#define MOLT_API_HTTP_BODY_MAX (64 * 1024)
#define MOLT_API_HTTP_HEAD_MAX (8 * 1024)
#define MOLT_API_HTTP_HEADERS_MAX 32
#define MOLT_API_HTTP_PATH_MAX 1024
#define MOLT_API_HTTP_METHOD_MAX 16        /* with the NUL */
#define MOLT_API_HTTP_DISCARD_MAX (1024 * 1024)
#define MOLT_API_HTTP_DEADLINE_MS 10000

/* A parsed request head. */
struct molt_api_http_req {
    char method[MOLT_API_HTTP_METHOD_MAX];
    char path[MOLT_API_HTTP_PATH_MAX];    /* percent-decoded, without the query */
    size_t head_len;                      /* bytes up to and with the blank line */
    uint64_t content_length;              /* 0 without a Content-Length */
    int n_headers;
    int expect_continue;                  /* "Expect: 100-continue" */
};

/* Parses the head of a request from the first len bytes received. Returns 1
 * once the head is complete (req filled; the body, if any, follows at
 * buf + req->head_len), 0 while more bytes may complete it, or a negative
 * code with *status set to the HTTP status to answer (400 malformed, 411
 * Transfer-Encoding, 414 path too long, 431 head too large or too many
 * headers, 501 method too long, 505 version) and err naming the problem.
 * Content-Length is not checked against a body limit here (the server does:
 * 413). */
int molt_api_http_parse(const char *buf, size_t len, struct molt_api_http_req *req, int *status,
                        struct molt_err *err);

/* The reason phrase of a status ("Not Found"); a generic one for others. */
const char *molt_api_http_reason(int status);

/* One exchange, as the handler sees it. */
struct molt_api_http_exchange {
    /* Set by the server. */
    const struct molt_api_http_req *req;  /* NULL when the head was refused */
    int refused_status;                   /* with req NULL: the status to answer */
    const char *refused_reason;           /* and why (the parser's message) */
    const char *body;                     /* NUL-terminated, "" without one */
    size_t body_len;
    int body_too_large;                   /* over MOLT_API_HTTP_BODY_MAX: not kept */
    int peer_allowed;                     /* what the admit function said */
    uid_t peer_uid;
    pid_t peer_pid;
    int64_t start_ms;                     /* monotonic, at accept */
    /* Set by the handler. */
    int status;
    char *reply;                          /* malloc'd, owned by the server afterwards */
    size_t reply_len;
    char content_type[64];
    /* Run once the reply is sent or the connection ends. */
    void (*then)(void *arg);
    void *then_arg;
};

/* Called at accept with the peer's credentials (SO_PEERCRED): 1 to serve,
 * 0 to have the handler refuse (peer_allowed 0; the body is not kept). */
typedef int (*molt_api_http_admit_fn)(void *arg, uid_t uid, gid_t gid, pid_t pid);
/* Called on the server thread once per connection with a complete request,
 * or with a refused one (x->req NULL), to fill the reply. */
typedef void (*molt_api_http_handler_fn)(void *arg, struct molt_api_http_exchange *x);

struct molt_api_http;

/* Serves listen_fd (a listening, non-blocking AF_UNIX stream socket, still
 * the caller's to close) from a new thread. */
int molt_api_http_start(struct molt_api_http **out, int listen_fd, molt_api_http_admit_fn admit,
                        molt_api_http_handler_fn handler, void *arg, struct molt_err *err);
/* Stops the thread, closes every connection (running their then), frees. */
void molt_api_http_stop(struct molt_api_http *srv);

#endif
