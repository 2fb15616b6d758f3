/* test_http.c: the HTTPS client's rules (URLs, schemes, TLS options) and its
 * behaviour against a tiny loopback HTTP server in a thread: reply cap,
 * Retry-After, legacy errors, no redirects, connection reuse, abort, what a
 * reused handle carries from one request or configuration to the next. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "http.h"
#include "log.h"

/* ---- a loopback server: one connection at a time, keep-alive ---------------- */

struct server {
    int fd;
    int port;
    volatile int quit;
    pthread_t thread;
    char last_auth[512];
    char last_method[16];
    int requests;
};

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int status, const char *extra, const char *body)
{
    char head[512];

    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
             "Content-Type: application/json\r\n%s\r\n", status, strlen(body), extra);
    send_all(fd, head, strlen(head));
    send_all(fd, body, strlen(body));
}

/* n bytes of body, announced by Content-Length or (chunked) only as they come. */
static void respond_sized(int fd, size_t n, int chunked)
{
    char head[128], *body = malloc(n);

    memset(body, 'x', n);
    if (chunked)
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "%zx\r\n", n);
    else
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    send_all(fd, head, strlen(head));
    send_all(fd, body, n);
    if (chunked)
        send_all(fd, "\r\n0\r\n\r\n", 7);
    free(body);
}

/* Reads one request; returns its path (in buf) or NULL when the peer is gone. */
static char *read_request(struct server *s, int fd, char *buf, size_t n)
{
    size_t len = 0;
    char *end = NULL, *auth, *cl;
    long body = 0;

    while (!end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (s->quit || len + 1 >= n || poll(&p, 1, 100) < 0)
            return NULL;
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t r = recv(fd, buf + len, n - 1 - len, 0);
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    cl = strcasestr(buf, "Content-Length:");
    if (cl)
        body = strtol(cl + 15, NULL, 10);
    for (long have = (long)(len - (size_t)(end + 4 - buf)); have < body;) {
        char junk[4096];
        ssize_t r = recv(fd, junk, sizeof(junk), 0);
        if (r <= 0)
            return NULL;
        have += r;
    }
    auth = strcasestr(buf, "\r\nAuthorization: ");
    s->last_auth[0] = '\0';
    if (auth && auth < end)
        snprintf(s->last_auth, sizeof(s->last_auth), "%.*s", (int)strcspn(auth + 17, "\r"),
                 auth + 17);
    s->requests++;
    snprintf(s->last_method, sizeof(s->last_method), "%.*s", (int)strcspn(buf, " "), buf);
    *strchr(strchr(buf, ' ') + 1, ' ') = '\0';
    return strchr(buf, ' ') + 1;
}

static void serve_connection(struct server *s, int fd)
{
    char buf[16384];
    char *path;

    while ((path = read_request(s, fd, buf, sizeof(buf)))) {
        if (strcmp(path, "/ok") == 0) {
            respond(fd, 200, "", "{\"ok\":true}");
        } else if (strcmp(path, "/big") == 0) {
            respond_sized(fd, 2 * 1024 * 1024, 0);
        } else if (strncmp(path, "/sized/", 7) == 0) {
            respond_sized(fd, (size_t)strtoul(path + 7, NULL, 10), 0);
        } else if (strncmp(path, "/chunked/", 9) == 0) {
            respond_sized(fd, (size_t)strtoul(path + 9, NULL, 10), 1);
        } else if (strcmp(path, "/429") == 0) {
            respond(fd, 429, "Retry-After: 7\r\n", "{\"status\":429,\"code\":\"rate.limited\"}");
        } else if (strcmp(path, "/401") == 0) {
            respond(fd, 401, "", "{\"status\":401,\"id\":\"r1\",\"code\":\"token.invalid\","
                                 "\"message\":\"token not recognised\\nforged=1 \\\"x\"}");
        } else if (strcmp(path, "/redirect") == 0) {
            respond(fd, 302, "Location: file:///etc/passwd\r\n", "");
        } else if (strcmp(path, "/hang") == 0) {
            for (int i = 0; i < 100 && !s->quit; i++) {   /* at most 10 s */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 100) > 0)
                    break;   /* the client gave up */
            }
            break;
        } else {
            respond(fd, 404, "", "{\"status\":404,\"code\":\"not.found\"}");
        }
    }
    close(fd);
}

static void *server_main(void *arg)
{
    struct server *s = arg;

    while (!s->quit) {
        struct pollfd p = { .fd = s->fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0)
            serve_connection(s, c);
    }
    return NULL;
}

static void server_start(struct server *s)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);

    memset(s, 0, sizeof(*s));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    s->quit = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void loopback_conf(struct molt_config *c, int port)
{
    molt_conf_defaults(c);
    snprintf(c->server.url, sizeof(c->server.url), "http://127.0.0.1:%d/", port);
    c->server.allow_insecure_http = 1;
    c->server.connect_timeout_ms = 5000;
}

/* ---- pure rules ----------------------------------------------------------------- */

static void test_url_rules(void **state)
{
    struct molt_config c;
    struct molt_err err = MOLT_ERR_INIT;
    char out[256];

    molt_conf_defaults(&c);
    snprintf(c.server.url, sizeof(c.server.url), "https://cp.example:8443/");
    assert_int_equal(molt_http_url_check(&c, "https://cp.example/x", &err), 0);
    assert_int_equal(molt_http_url_check(&c, "HTTPS://cp.example/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "http://127.0.0.1/x", &err), 0);
    c.server.allow_insecure_http = 1;
    assert_int_equal(molt_http_url_check(&c, "http://127.0.0.1:8/x", &err), 0);
    assert_int_equal(molt_http_url_check(&c, "http://[::1]:8/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "http://10.0.0.1/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "http://127.0.0.1.evil.com/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "file:///etc/passwd", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "ftp://cp.example/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "https://user:pw@cp.example/x", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "https://cp.example/a b", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "https://cp.example/a\r\nX: y", &err), 0);
    assert_int_not_equal(molt_http_url_check(&c, "https:///x", &err), 0);

    assert_int_equal(molt_http_resolve(&c, "/api/v1/x?y=1", out, sizeof(out), &err), 0);
    assert_string_equal(out, "https://cp.example:8443/api/v1/x?y=1");
    assert_int_equal(molt_http_resolve(&c, "https://cdn.example/b.tgz", out, sizeof(out), &err),
                     0);
    assert_string_equal(out, "https://cdn.example/b.tgz");
    assert_int_not_equal(molt_http_resolve(&c, "//evil/x", out, sizeof(out), &err), 0);
    assert_int_not_equal(molt_http_resolve(&c, "relative/x", out, sizeof(out), &err), 0);
    assert_int_not_equal(molt_http_resolve(&c, "/x", out, 10, &err), 0);
}

/* Where the collector token may go: the server's own scheme, host and port. */
/* A URL's name for logs and messages: no query or fragment (signed URLs carry
 * credentials there), bounded, and visibly cut. */
static void test_url_name(void **state)
{
    char name[MOLT_HTTP_URL_NAME_MAX + 1], longest[2100];

    molt_http_url_name("https://m.example:8443/p?sig=secret#f", name, sizeof(name));
    assert_string_equal(name, "https://m.example:8443/p");
    molt_http_url_name("https://m.example/p#frag?x", name, sizeof(name));
    assert_string_equal(name, "https://m.example/p");
    molt_http_url_name("/builds/p", name, sizeof(name));
    assert_string_equal(name, "/builds/p");
    memset(longest, 'a', sizeof(longest) - 1);
    memcpy(longest, "https://m.example/", 18);
    longest[sizeof(longest) - 1] = '\0';
    molt_http_url_name(longest, name, sizeof(name));
    assert_int_equal(strlen(name), MOLT_HTTP_URL_NAME_MAX);
    assert_string_equal(name + MOLT_HTTP_URL_NAME_MAX - 3, "...");
    assert_memory_equal(name, "https://m.example/aaa", 21);
    molt_http_url_name(longest, name, 8);
    assert_string_equal(name, "http...");
}

static void test_same_origin(void **state)
{
    const char *srv = "https://cp.example:8443/base";

    (void)state;
    assert_true(molt_http_same_origin(srv, "https://cp.example:8443/builds/p.tar.gz"));
    assert_true(molt_http_same_origin(srv, "HTTPS://CP.Example:8443?x"));
    assert_true(molt_http_same_origin("https://cp.example/a", "https://cp.example:443/b"));
    assert_true(molt_http_same_origin("http://127.0.0.1/a", "http://127.0.0.1:80#f"));
    assert_true(molt_http_same_origin("https://[::1]:9/a", "https://[::1]:9"));
    assert_false(molt_http_same_origin(srv, "https://cdn.example:8443/builds/p.tar.gz"));
    assert_false(molt_http_same_origin(srv, "https://cp.example/builds/p.tar.gz"));
    assert_false(molt_http_same_origin(srv, "https://cp.example:8444/builds/p.tar.gz"));
    assert_false(molt_http_same_origin(srv, "http://cp.example:8443/builds/p.tar.gz"));
    assert_false(molt_http_same_origin(srv, "https://cp.example.evil:8443/"));
    assert_false(molt_http_same_origin(srv, "https://cp.exampl:8443/"));
    assert_false(molt_http_same_origin("https://[::1]:9/a", "https://[::2]:9"));
    assert_false(molt_http_same_origin("https://[::1]x/a", "https://[::1]x/a"));
    assert_false(molt_http_same_origin("https://cp:99999/", "https://cp:99999/"));
    assert_false(molt_http_same_origin("https://cp:8x/", "https://cp:8x/"));
    assert_false(molt_http_same_origin("https:///a", "https:///a"));
    assert_false(molt_http_same_origin("/builds/p", "/builds/p"));
}

/* Where a URL or a proxy string connects: what the worker's hosts pin. */
static void test_endpoints(void **state)
{
    char host[64];
    long port = 0;

    (void)state;
    assert_int_equal(molt_http_url_endpoint("https://cp.example:8443/a?b", host, sizeof(host),
                                            &port), 0);
    assert_string_equal(host, "cp.example");
    assert_int_equal(port, 8443);
    assert_int_equal(molt_http_url_endpoint("http://[::1]/x", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(molt_http_url_endpoint("https://cp#f", host, sizeof(host), &port), 0);
    assert_int_equal(port, 443);
    assert_int_equal(molt_http_url_endpoint("https://cp:0/", host, sizeof(host), &port), -1);
    assert_int_equal(molt_http_url_endpoint("/builds/p", host, sizeof(host), &port), -1);
    assert_int_equal(molt_http_url_endpoint("https://a-host-name-too-long-for-the-buffer-"
                                            "given-here-by-far.example/", host, 16, &port), -1);
    /* libcurl's proxy forms: no scheme, credentials, 1080 by default. */
    assert_int_equal(molt_http_proxy_endpoint("proxy.local:3128", host, sizeof(host), &port), 0);
    assert_string_equal(host, "proxy.local");
    assert_int_equal(port, 3128);
    assert_int_equal(molt_http_proxy_endpoint("http://u:p@[fd00::2]/", host, sizeof(host),
                                              &port), 0);
    assert_string_equal(host, "fd00::2");
    assert_int_equal(port, 1080);
    assert_int_equal(molt_http_proxy_endpoint("https://proxy", host, sizeof(host), &port), 0);
    assert_int_equal(port, 443);
    assert_int_equal(molt_http_proxy_endpoint("socks5h://p:99999", host, sizeof(host), &port),
                     -1);
    assert_int_equal(molt_http_proxy_endpoint("", host, sizeof(host), &port), -1);
}

static void test_apply_common(void **state)
{
    struct molt_config c;
    struct molt_err err = MOLT_ERR_INIT;
    CURL *h = curl_easy_init();

    molt_conf_defaults(&c);
    assert_int_equal(molt_http_apply_common(h, &c, &err), 0);
    snprintf(c.server.ca_file, sizeof(c.server.ca_file), "/nonexistent/ca.pem");
    assert_int_not_equal(molt_http_apply_common(h, &c, &err), 0);
    assert_non_null(strstr(err.msg, "server.ca_file"));
    c.server.ca_file[0] = '\0';
    snprintf(c.server.client_cert, sizeof(c.server.client_cert), "/nonexistent/c.pem");
    snprintf(c.server.client_key, sizeof(c.server.client_key), "/nonexistent/k.pem");
    assert_int_not_equal(molt_http_apply_common(h, &c, &err), 0);
    curl_easy_cleanup(h);
}

/* ---- against the loopback server ---------------------------------------------------- */

static void test_requests(void **state)
{
    struct server s;
    struct molt_config c;
    struct molt_http *h;
    struct molt_http_reply rep;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_req req = { .method = "GET", .url = "/ok", .bearer = "tok-123" };

    server_start(&s);
    loopback_conf(&c, s.port);
    assert_int_equal(molt_http_new(&h, &c, NULL, &err), 0);

    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(rep.status, 200);
    assert_string_equal(rep.body, "{\"ok\":true}");
    assert_string_equal(s.last_auth, "Bearer tok-123");
    assert_int_equal(rep.connects, 1);
    molt_http_reply_free(&rep);
    /* The same connection serves the next request. */
    req.method = "POST";
    req.body = "{}";
    req.body_len = 2;
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(rep.connects, 0);
    molt_http_reply_free(&rep);

    req = (struct molt_http_req){ .method = "POST", .url = "/ok", .basic_user = "id",
                                  .basic_pass = "key" };
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_string_equal(s.last_auth, "Basic aWQ6a2V5");
    assert_string_equal(s.last_method, "POST");
    molt_http_reply_free(&rep);
    /* The handle is reused: a request without credentials sends none, a GET after a POST is a
     * GET, another method is sent as such. */
    req = (struct molt_http_req){ .method = "GET", .url = "/ok" };
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_string_equal(s.last_auth, "");
    assert_string_equal(s.last_method, "GET");
    molt_http_reply_free(&rep);
    req.method = "DELETE";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_string_equal(s.last_method, "DELETE");
    molt_http_reply_free(&rep);
    req.method = "GET";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_string_equal(s.last_method, "GET");
    molt_http_reply_free(&rep);

    req = (struct molt_http_req){ .method = "GET", .url = "/big" };
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_LIMIT);
    assert_string_equal(err.msg, "GET /big: reply of 2097152 bytes refused: larger than this "
                                 "endpoint's cap of 1048576 bytes");
    molt_http_reply_free(&rep);
    /* Each endpoint's own cap: at the cap is a reply, a byte over is refused on its
     * Content-Length, or while it is received when no length is announced. */
    req = (struct molt_http_req){ .method = "GET", .url = "/sized/1000", .max_reply = 1000 };
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(rep.len, 1000);
    molt_http_reply_free(&rep);
    req.url = "/chunked/1000";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(rep.len, 1000);
    molt_http_reply_free(&rep);
    req.url = "/sized/1001";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_LIMIT);
    assert_string_equal(err.msg, "GET /sized/1001: reply of 1001 bytes refused: larger than "
                                 "this endpoint's cap of 1000 bytes");
    assert_true(rep.len == 0);
    molt_http_reply_free(&rep);
    req.url = "/chunked/100000";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_LIMIT);
    assert_string_equal(err.msg, "GET /chunked/100000: reply refused: larger than this "
                                 "endpoint's cap of 1000 bytes");
    assert_true(rep.len <= 1000);
    molt_http_reply_free(&rep);
    req = (struct molt_http_req){ .method = "GET", .url = "/ok" };

    req.url = "/429";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_HTTP);
    assert_int_equal(rep.status, 429);
    assert_int_equal(rep.retry_after_ms, 7000);
    assert_string_equal(rep.code, "rate.limited");
    molt_http_reply_free(&rep);

    req.url = "/401";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_AUTH);
    assert_int_equal(rep.status, 401);
    assert_string_equal(rep.code, "token.invalid");
    assert_null(strchr(rep.message, '\n'));
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "HTTP 401 token.invalid"));
    molt_http_reply_free(&rep);

    req.url = "/redirect";    /* not followed, whatever the target */
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_HTTP);
    assert_int_equal(rep.status, 302);
    molt_http_reply_free(&rep);

    /* An absolute URL to a non-loopback http host never leaves the process. */
    int before = s.requests;
    req.url = "http://192.0.2.1/ok";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_INVAL);
    assert_int_equal(s.requests, before);
    molt_http_reply_free(&rep);

    molt_http_free(h);
    server_stop(&s);
}

static void test_no_reply(void **state)
{
    struct molt_config c;
    struct molt_http *h;
    struct molt_http_reply rep;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_req req = { .method = "GET", .url = "/ok" };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);

    /* A port that was just free: connection refused. */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    loopback_conf(&c, ntohs(sa.sin_port));
    assert_int_equal(molt_http_new(&h, &c, NULL, &err), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_NET);
    assert_int_equal(rep.status, 0);
    molt_http_reply_free(&rep);
    molt_http_free(h);
}

struct stopper {
    volatile sig_atomic_t *flag;
};

static void *set_flag_later(void *arg)
{
    struct stopper *st = arg;

    usleep(200 * 1000);
    *st->flag = 1;
    return NULL;
}

static int abort_after_calls(void *arg)
{
    int *calls = arg;

    return ++*calls >= 3;
}

static void test_abort(void **state)
{
    static volatile sig_atomic_t stop;
    struct server s;
    struct molt_config c;
    struct molt_http *h;
    struct molt_http_reply rep;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_req req = { .method = "POST", .url = "/hang", .body = "{}", .body_len = 2,
                                 .timeout_ms = 20000, .long_poll = 1 };
    struct stopper st = { &stop };
    pthread_t t;
    int calls = 0;

    server_start(&s);
    loopback_conf(&c, s.port);
    assert_int_equal(molt_http_new(&h, &c, &stop, &err), 0);
    /* The stop flag (SIGTERM) ends a held request. */
    assert_int_equal(pthread_create(&t, NULL, set_flag_later, &st), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_CANCELLED);
    pthread_join(t, NULL);
    molt_http_reply_free(&rep);
    /* Once set, nothing is even sent. */
    int before = s.requests;
    req.url = "/ok";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_CANCELLED);
    assert_int_equal(s.requests, before);
    molt_http_reply_free(&rep);
    stop = 0;
    /* So does the per-request abort callback. */
    req.url = "/hang";
    req.abort_fn = abort_after_calls;
    req.abort_arg = &calls;
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_CANCELLED);
    assert_true(calls >= 3);
    molt_http_reply_free(&rep);
    molt_http_free(h);
    server_stop(&s);
}

/* A configuration change after requests takes effect: transport settings (a new
 * server, a CA file) and the others (the low-speed limit) alike. */
static void test_config_change(void **state)
{
    struct server s1, s2;
    struct molt_config c;
    struct molt_http *h;
    struct molt_http_reply rep;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_req req = { .method = "GET", .url = "/ok", .bearer = "tok" };

    server_start(&s1);
    server_start(&s2);
    loopback_conf(&c, s1.port);
    assert_int_equal(molt_http_new(&h, &c, NULL, &err), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(s1.requests, 1);
    molt_http_reply_free(&rep);

    /* Another server: a new connection to it, none of the old one's reused. */
    loopback_conf(&c, s2.port);
    assert_int_equal(molt_http_set_config(h, &c, &err), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_int_equal(s1.requests, 1);
    assert_int_equal(s2.requests, 1);
    assert_int_equal(rep.connects, 1);
    molt_http_reply_free(&rep);

    /* The options are applied again: a CA file that cannot be read stops the request. */
    snprintf(c.server.ca_file, sizeof(c.server.ca_file), "/nonexistent/ca.pem");
    assert_int_equal(molt_http_set_config(h, &c, &err), 0);
    assert_int_not_equal(molt_http_request(h, &req, &rep, &err), 0);
    assert_non_null(strstr(err.msg, "server.ca_file"));
    assert_int_equal(s2.requests, 1);
    molt_http_reply_free(&rep);
    c.server.ca_file[0] = '\0';
    assert_int_equal(molt_http_set_config(h, &c, &err), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    molt_http_reply_free(&rep);

    /* Same transport, shorter low-speed limit: a silent server is given up on for being too
     * slow (without the change, the server's own 10 s would end it: "empty reply"). */
    c.server.low_speed_timeout_ms = 1000;
    assert_int_equal(molt_http_set_config(h, &c, &err), 0);
    req.url = "/hang";
    req.timeout_ms = 20000;
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_NET);
    assert_non_null(strstr(err.msg, "slow"));
    molt_http_reply_free(&rep);

    molt_http_free(h);
    server_stop(&s1);
    server_stop(&s2);
}

struct waker {
    int fd;
    volatile sig_atomic_t flag;
};

static void *wake_later(void *arg)
{
    struct waker *w = arg;

    usleep(200 * 1000);
    w->flag = 1;
    assert_int_equal(write(w->fd, "x", 1), 1);
    return NULL;
}

static int flag_set(void *arg)
{
    const struct waker *w = arg;

    return w->flag != 0;
}

/* The wake fd ends a held request: the client checks the abort callback when the fd becomes
 * readable, and empties the fd so that it cannot keep waking the client. */
static void test_wake_fd(void **state)
{
    struct server s;
    struct molt_config c;
    struct molt_http *h;
    struct molt_http_reply rep;
    struct molt_err err = MOLT_ERR_INIT;
    struct waker w = { .flag = 0 };
    struct molt_http_req req = { .method = "POST", .url = "/hang", .body = "{}", .body_len = 2,
                                 .timeout_ms = 20000, .long_poll = 1, .abort_fn = flag_set,
                                 .abort_arg = &w };
    int p[2];
    char b;
    pthread_t t;

    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    w.fd = p[1];
    server_start(&s);
    loopback_conf(&c, s.port);
    assert_int_equal(molt_http_new(&h, &c, NULL, &err), 0);
    molt_http_set_wake_fd(h, p[0]);
    /* A wake-up that does not abort (left over from before) is emptied, and the request
     * completes. */
    assert_int_equal(write(p[1], "x", 1), 1);
    req.url = "/ok";
    assert_int_equal(molt_http_request(h, &req, &rep, &err), 0);
    molt_http_reply_free(&rep);
    req.url = "/hang";
    assert_int_equal(pthread_create(&t, NULL, wake_later, &w), 0);
    assert_int_equal(molt_http_request(h, &req, &rep, &err), MOLT_E_CANCELLED);
    pthread_join(t, NULL);
    assert_int_equal(read(p[0], &b, 1), -1);    /* emptied by the client */
    molt_http_reply_free(&rep);
    molt_http_free(h);
    server_stop(&s);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_rules),
        cmocka_unit_test(test_same_origin), cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_apply_common),
        cmocka_unit_test(test_url_name),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_no_reply),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_config_change),
        cmocka_unit_test(test_wake_fd),
    };
    int rc;

    /* The loopback server must not be reached through a proxy. */
    setenv("no_proxy", "127.0.0.1,localhost,::1", 1);
    molt_log_setup("test_http", MOLT_LOG_ERROR, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
