/* api_http.c: the local API's HTTP/1.1 server: a strict request-head parser
 * and a poll loop over the Unix socket's connections (why hand-written, and
 * the limits: api_http.h). */
#include "config.h"

#include "api_http.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host.h"
#include "text.h"

/* ---- request head parser ---- */

static int refuse(int *status, int code, struct molt_err *err, const char *what)
{
    *status = code;
    return molt_err_set(err, MOLT_E_PARSE, "%s", what);
}

/* RFC 9110 token characters. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Finds the blank line that ends the head, refusing what can never become a
 * valid head as soon as it is seen: a NUL, a bare CR or LF, too many lines,
 * too many bytes. Returns 1 with *end just past the blank line, 0 for more. */
static int find_head_end(const char *buf, size_t len, size_t *end, int *status,
                         struct molt_err *err)
{
    int lines = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\0')
            return refuse(status, 400, err, "NUL byte in the request head");
        if (i > 0 && buf[i - 1] == '\r' && c != '\n')
            return refuse(status, 400, err, "CR without LF in the request head");
        if (c != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r')
            return refuse(status, 400, err, "LF without CR in the request head");
        if (i >= 3 && buf[i - 2] == '\n') {
            if (i + 1 > MOLT_API_HTTP_HEAD_MAX)
                break;
            *end = i + 1;
            return 1;
        }
        if (++lines > MOLT_API_HTTP_HEADERS_MAX + 1)
            return refuse(status, 431, err, "more than 32 header lines");
    }
    if (len >= MOLT_API_HTTP_HEAD_MAX)
        return refuse(status, 431, err, "request head larger than 8192 bytes");
    return 0;
}

/* The origin-form target up to '?', percent-decoded into req->path. */
static int parse_target(const char *t, size_t n, struct molt_api_http_req *req, int *status,
                        struct molt_err *err)
{
    size_t o = 0;

    if (n == 0 || t[0] != '/')
        return refuse(status, 400, err, "request target is not an absolute path");
    if (n >= MOLT_API_HTTP_PATH_MAX)
        return refuse(status, 414, err, "request target longer than 1023 bytes");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!molt_text_is_visible_ascii(c) || c == '#')
            return refuse(status, 400, err, "bad byte in the request target");
    }
    for (size_t i = 0; i < n && t[i] != '?'; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_digit((unsigned char)t[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit((unsigned char)t[i + 2]) : -1;
            if (lo < 0)
                return refuse(status, 400, err, "bad percent-encoding in the request target");
            c = (unsigned char)(hi * 16 + lo);
            if (molt_text_is_control(c))
                return refuse(status, 400, err, "control byte encoded in the request target");
            i += 2;
        }
        req->path[o++] = (char)c;
    }
    req->path[o] = '\0';
    return 0;
}

/* "METHOD SP target SP HTTP/1.x"; *http10 tells the version. */
static int parse_request_line(const char *s, size_t n, struct molt_api_http_req *req, int *http10,
                              int *status, struct molt_err *err)
{
    size_t m = 0, t, tn;

    while (m < n && is_tchar((unsigned char)s[m]))
        m++;
    if (m == 0 || m == n || s[m] != ' ')
        return refuse(status, 400, err, "malformed request line (method)");
    if (m >= MOLT_API_HTTP_METHOD_MAX)
        return refuse(status, 501, err, "method longer than 15 bytes");
    memcpy(req->method, s, m);
    req->method[m] = '\0';
    t = m + 1;
    for (tn = 0; t + tn < n && s[t + tn] != ' '; tn++)
        ;
    if (t + tn == n)
        return refuse(status, 400, err, "malformed request line (no version)");
    if (parse_target(s + t, tn, req, status, err) < 0)
        return MOLT_E_PARSE;
    s += t + tn + 1;
    n -= t + tn + 1;
    if (n == 8 && memcmp(s, "HTTP/1.", 7) == 0 && (s[7] == '1' || s[7] == '0')) {
        *http10 = s[7] == '0';
        return 0;
    }
    if (n == 8 && memcmp(s, "HTTP/", 5) == 0 && s[5] >= '0' && s[5] <= '9' && s[6] == '.' &&
        s[7] >= '0' && s[7] <= '9')
        return refuse(status, 505, err, "HTTP version not supported (1.0 and 1.1 are)");
    return refuse(status, 400, err, "malformed request line (version)");
}

/* What the server acts on among the headers; the others are skipped. */
struct head_facts {
    int hosts, lengths;
};

static int parse_header(const char *s, size_t n, struct molt_api_http_req *req,
                        struct head_facts *f, int *status, struct molt_err *err)
{
    size_t k = 0, v, vn;

    if (n > 0 && (s[0] == ' ' || s[0] == '\t'))
        return refuse(status, 400, err, "folded header line");
    while (k < n && is_tchar((unsigned char)s[k]))
        k++;
    if (k == 0 || k == n || s[k] != ':')
        return refuse(status, 400, err, "malformed header line");
    for (v = k + 1; v < n && (s[v] == ' ' || s[v] == '\t'); v++)
        ;
    for (vn = n; vn > v && (s[vn - 1] == ' ' || s[vn - 1] == '\t'); vn--)
        ;
    if (molt_text_find_control(s + v, vn - v, "\t"))
        return refuse(status, 400, err, "control byte in a header value");
    vn -= v;
#define IS(name) (k == sizeof(name) - 1 && strncasecmp(s, name, k) == 0)
    if (IS("Host")) {
        f->hosts++;
    } else if (IS("Content-Length")) {
        uint64_t x = 0;
        if (f->lengths++ || vn == 0 || vn > 18)
            return refuse(status, 400, err, "bad or repeated Content-Length");
        for (size_t i = 0; i < vn; i++) {
            if (s[v + i] < '0' || s[v + i] > '9')
                return refuse(status, 400, err, "Content-Length is not a decimal number");
            x = x * 10 + (uint64_t)(s[v + i] - '0');
        }
        req->content_length = x;
    } else if (IS("Transfer-Encoding")) {
        return refuse(status, 411, err, "Transfer-Encoding is not supported: send Content-Length");
    } else if (IS("Expect")) {
        if (vn != 12 || strncasecmp(s + v, "100-continue", 12) != 0)
            return refuse(status, 417, err, "only 'Expect: 100-continue' is supported");
        req->expect_continue = 1;
    }
#undef IS
    return 0;
}

int molt_api_http_parse(const char *buf, size_t len, struct molt_api_http_req *req, int *status,
                        struct molt_err *err)
{
    struct head_facts f = { 0 };
    size_t end = 0, pos, eol;
    int rc, http10 = 0;

    *status = 0;
    memset(req, 0, sizeof(*req));
    rc = find_head_end(buf, len, &end, status, err);
    if (rc <= 0)
        return rc;
    eol = (size_t)((const char *)memchr(buf, '\r', end) - buf);
    if ((rc = parse_request_line(buf, eol, req, &http10, status, err)) < 0)
        return rc;
    for (pos = eol + 2; pos < end - 2; pos = eol + 2) {
        eol = pos + (size_t)((const char *)memchr(buf + pos, '\r', end - pos) - (buf + pos));
        if (++req->n_headers > MOLT_API_HTTP_HEADERS_MAX)
            return refuse(status, 431, err, "more than 32 headers");
        if ((rc = parse_header(buf + pos, eol - pos, req, &f, status, err)) < 0)
            return rc;
    }
    if (f.hosts > 1 || (f.hosts == 0 && !http10))
        return refuse(status, 400, err, "an HTTP/1.1 request needs exactly one Host header");
    req->head_len = end;
    return 1;
}

const char *molt_api_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* ---- server ---- */

enum conn_state { CONN_HEAD, CONN_BODY, CONN_DISCARD, CONN_WRITE };

struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline;
    char *buf;               /* the head, then the body after it */
    size_t len, cap;
    uint64_t discard_left;
    struct molt_api_http_req req;
    struct molt_err refusal;     /* why the head was refused: x.refused_reason */
    struct molt_api_http_exchange x;
    char *out;               /* the reply: head and body */
    size_t out_len, out_off;
};

struct molt_api_http {
    int listen_fd;
    int wake_fd;
    atomic_int stop;
    pthread_t thread;
    molt_api_http_admit_fn admit;
    molt_api_http_handler_fn handler;
    void *arg;
    struct conn conns[MOLT_API_HTTP_CONN_MAX];
    int n_conns;
};

/* Ends a connection; what the reply deferred runs now, sent or not. Unread
 * input is drained first: closing a Unix socket with bytes still queued
 * makes the peer's next read fail (ECONNRESET) instead of seeing the end. */
static void conn_close(struct molt_api_http *srv, int i)
{
    struct conn *c = &srv->conns[i];
    char sink[4096];

    for (int k = 0; k < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++)
        ;
    close(c->fd);
    if (c->x.then)
        c->x.then(c->x.then_arg);
    free(c->buf);
    free(c->out);
    free(c->x.reply);
    srv->conns[i] = srv->conns[--srv->n_conns];
}

/* Lets the handler fill the reply and formats it; HEAD gets the head only. */
static int conn_reply(struct molt_api_http *srv, struct conn *c)
{
    struct molt_api_http_exchange *x = &c->x;
    size_t body_len, head_max = 256;
    int n, head_only;

    x->body = x->body ? x->body : "";
    srv->handler(srv->arg, x);
    head_only = x->req && strcmp(x->req->method, "HEAD") == 0;
    body_len = x->reply ? x->reply_len : 0;
    c->out = malloc(head_max + body_len);
    if (!c->out)
        return -1;
    n = snprintf(c->out, head_max,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 x->status, molt_api_http_reason(x->status),
                 x->content_type[0] ? x->content_type : "application/json", body_len);
    if (n < 0 || (size_t)n >= head_max)
        return -1;
    if (body_len && !head_only)
        memcpy(c->out + n, x->reply, body_len);
    c->out_len = (size_t)n + (head_only ? 0 : body_len);
    c->out_off = 0;
    c->state = CONN_WRITE;
    return 0;
}

/* The head is in: decide what happens to the body. */
static int conn_head_done(struct molt_api_http *srv, struct conn *c)
{
    uint64_t cl = c->req.content_length;
    size_t have = c->len - c->req.head_len;

    c->x.req = &c->req;
    c->x.body_too_large = cl > MOLT_API_HTTP_BODY_MAX;
    if (cl == 0)
        return conn_reply(srv, c);
    if (!c->x.peer_allowed || c->x.body_too_large) {
        /* Not kept. A client waiting for 100-continue sends nothing more. */
        if (c->req.expect_continue || cl > MOLT_API_HTTP_DISCARD_MAX || have >= cl)
            return conn_reply(srv, c);
        c->discard_left = cl - have;
        c->state = CONN_DISCARD;
        return 0;
    }
    if (c->cap < c->req.head_len + cl + 1) {
        char *p = realloc(c->buf, c->req.head_len + cl + 1);
        if (!p)
            return -1;
        c->buf = p;
        c->cap = c->req.head_len + cl + 1;
    }
    if (c->req.expect_continue && have == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        /* Best effort: a fresh socket's buffer takes it, and a client that
         * does not see it sends the body after its own wait (curl: 1 s). */
        if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* Nothing to undo. */
        }
    }
    c->state = CONN_BODY;
    return 0;
}

static int body_complete(struct molt_api_http *srv, struct conn *c)
{
    size_t end = c->req.head_len + (size_t)c->req.content_length;

    if (c->len < end)
        return 0;
    c->buf[end] = '\0';
    c->x.body = c->buf + c->req.head_len;
    c->x.body_len = (size_t)c->req.content_length;
    return conn_reply(srv, c);
}

/* Reads what is there; returns -1 to close the connection. */
static int conn_read(struct molt_api_http *srv, struct conn *c)
{
    char sink[4096];
    ssize_t n;
    int rc, status;

    if (c->state == CONN_DISCARD) {
        n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n <= 0)
            return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->discard_left -= (uint64_t)n < c->discard_left ? (uint64_t)n : c->discard_left;
        return c->discard_left ? 0 : conn_reply(srv, c);
    }
    /* The head phase reads no more than the head may be; the body phase no
     * more than the body is. */
    size_t want = c->state == CONN_HEAD ? MOLT_API_HTTP_HEAD_MAX - c->len
                                        : c->req.head_len + c->req.content_length - c->len;
    n = recv(c->fd, c->buf + c->len, want, MSG_DONTWAIT);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->len += (size_t)n;
    if (c->state == CONN_BODY)
        return body_complete(srv, c);
    rc = molt_api_http_parse(c->buf, c->len, &c->req, &status, &c->refusal);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        c->x.refused_status = status;
        c->x.refused_reason = c->refusal.msg;
        return conn_reply(srv, c);
    }
    if (c->len > c->req.head_len + c->req.content_length)
        c->len = c->req.head_len + (size_t)c->req.content_length;    /* pipelined: ignored */
    if ((rc = conn_head_done(srv, c)) < 0 || c->state != CONN_BODY)
        return rc;
    return body_complete(srv, c);
}

/* Writes what the socket takes; returns 1 when all is sent, -1 on error. */
static int conn_write(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->out_off += (size_t)n;
    }
    return 1;
}

static void accept_one(struct molt_api_http *srv)
{
    struct conn *c = &srv->conns[srv->n_conns];
    struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
    socklen_t cl = sizeof(cred);
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    memset(c, 0, sizeof(*c));
    c->buf = malloc(MOLT_API_HTTP_HEAD_MAX);
    if (!c->buf) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->cap = MOLT_API_HTTP_HEAD_MAX;
    c->x.start_ms = molt_host_monotonic_ms();
    c->deadline = c->x.start_ms + MOLT_API_HTTP_DEADLINE_MS;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
        c->x.peer_allowed = srv->admit(srv->arg, cred.uid, cred.gid, cred.pid);
    c->x.peer_uid = cred.uid;
    c->x.peer_pid = cred.pid;
    srv->n_conns++;
}

/* One round: wait for the sockets, or the nearest deadline, then serve. */
static void serve_round(struct molt_api_http *srv)
{
    struct pollfd pfd[MOLT_API_HTTP_CONN_MAX + 2];
    int n = srv->n_conns, timeout = -1;
    int64_t now = molt_host_monotonic_ms();

    for (int i = 0; i < n; i++) {
        struct conn *c = &srv->conns[i];
        int64_t left = c->deadline - now;
        pfd[i] = (struct pollfd){ .fd = c->fd,
                                  .events = c->state == CONN_WRITE ? POLLOUT : POLLIN };
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    pfd[n] = (struct pollfd){ .fd = srv->wake_fd, .events = POLLIN };
    /* At the cap, further clients wait in the listen backlog. */
    pfd[n + 1] = (struct pollfd){ .fd = n < MOLT_API_HTTP_CONN_MAX ? srv->listen_fd : -1,
                                  .events = POLLIN };
    if (poll(pfd, (nfds_t)n + 2, timeout) < 0)
        return;
    now = molt_host_monotonic_ms();
    /* Backwards: conn_close moves the last connection into the freed slot. */
    for (int i = n - 1; i >= 0; i--) {
        struct conn *c = &srv->conns[i];
        int rc = 0;
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (c->state != CONN_WRITE)
                rc = conn_read(srv, c);
        }
        if (rc == 0 && c->state == CONN_WRITE)
            rc = conn_write(c);
        if (rc != 0 || now >= c->deadline)
            conn_close(srv, i);
    }
    if (pfd[n + 1].revents & POLLIN)
        accept_one(srv);
}

static void *serve(void *arg)
{
    struct molt_api_http *srv = arg;

    while (!atomic_load(&srv->stop))
        serve_round(srv);
    while (srv->n_conns > 0)
        conn_close(srv, srv->n_conns - 1);
    return NULL;
}

int molt_api_http_start(struct molt_api_http **out, int listen_fd, molt_api_http_admit_fn admit,
                        molt_api_http_handler_fn handler, void *arg, struct molt_err *err)
{
    struct molt_api_http *srv = calloc(1, sizeof(*srv));
    int rc;

    if (!srv)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    srv->listen_fd = listen_fd;
    srv->admit = admit;
    srv->handler = handler;
    srv->arg = arg;
    srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv->wake_fd < 0) {
        rc = molt_err_errno(err, "eventfd");
        free(srv);
        return rc;
    }
    rc = pthread_create(&srv->thread, NULL, serve, srv);
    if (rc != 0) {
        close(srv->wake_fd);
        free(srv);
        return molt_err_set(err, MOLT_E_IO, "start the server thread: %s", strerror(rc));
    }
    *out = srv;
    return 0;
}

void molt_api_http_stop(struct molt_api_http *srv)
{
    uint64_t one = 1;

    if (!srv)
        return;
    atomic_store(&srv->stop, 1);
    if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
        /* The counter is full: the thread is awake anyway. */
    }
    pthread_join(srv->thread, NULL);
    close(srv->wake_fd);
    free(srv);
}
