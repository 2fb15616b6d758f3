/* test_api_http.c: agent/api_http.c: the request-head parser's limits and
 * refusals, and the server over a real Unix socket (bodies, 100-continue,
 * bodies over the limit, refused peers, the connection cap, HEAD, then). */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_http.h"
#include "err.h"

static int parse(const char *head, struct molt_api_http_req *req, int *status)
{
    struct molt_err err = MOLT_ERR_INIT;

    return molt_api_http_parse(head, strlen(head), req, status, &err);
}

/* The status a complete head is refused with (0 when it is accepted). */
static int refused(const char *head)
{
    struct molt_api_http_req req;
    int status, rc = parse(head, &req, &status);

    assert_int_not_equal(rc, 0);
    return rc < 0 ? status : 0;
}

static void test_parse_get(void **state)
{
    static const char head[] = "GET /api/v1/agent/tasks/a%2Fb?x=1 HTTP/1.1\r\n"
                               "Host: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
    struct molt_api_http_req req;
    int status;

    assert_int_equal(parse(head, &req, &status), 1);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.path, "/api/v1/agent/tasks/a/b");
    assert_int_equal(req.head_len, sizeof(head) - 1);
    assert_int_equal(req.content_length, 0);
    assert_int_equal(req.n_headers, 3);
    assert_false(req.expect_continue);
    /* Every shorter prefix asks for more. */
    for (size_t n = 0; n < sizeof(head) - 1; n++) {
        struct molt_err err = MOLT_ERR_INIT;
        assert_int_equal(molt_api_http_parse(head, n, &req, &status, &err), 0);
    }
}

static void test_parse_post(void **state)
{
    struct molt_api_http_req req;
    int status;

    assert_int_equal(parse("POST /api/v1/agent/upgrade HTTP/1.1\r\nHost: x\r\n"
                           "content-length: 123\r\nEXPECT: 100-Continue\r\n\r\n{\"a\"",
                           &req, &status),
                     1);
    assert_string_equal(req.method, "POST");
    assert_int_equal(req.content_length, 123);
    assert_true(req.expect_continue);
    /* HTTP/1.0 needs no Host. */
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &req, &status), 1);
    assert_string_equal(req.path, "/");
}

static void test_parse_bad_method(void **state)
{
    assert_int_equal(refused("GE T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused(" / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("ABCDEFGHIJKLMNOP / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
    /* A method of fifteen is passed on: the router answers 405 or 404. */
    assert_int_equal(refused("ABCDEFGHIJKLMNO / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
}

static void test_parse_bad_target(void **state)
{
    char head[2048];

    assert_int_equal(refused("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a%2 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a%0ab HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /a\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    snprintf(head, sizeof(head), "GET /%01023d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(refused(head), 414);
    snprintf(head, sizeof(head), "GET /%01022d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(refused(head), 0);
}

static void test_parse_bad_version(void **state)
{
    assert_int_equal(refused("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
    assert_int_equal(refused("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
    assert_int_equal(refused("GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("GET /\r\nHost: x\r\n\r\n"), 400);
    assert_int_equal(refused("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

static void test_parse_line_endings(void **state)
{
    struct molt_api_http_req req;
    struct molt_err err = MOLT_ERR_INIT;
    int status;

    /* Refused as soon as seen, not once the head would end. */
    assert_true(parse("GET / HTTP/1.1\nHost: x", &req, &status) < 0);
    assert_int_equal(status, 400);
    assert_true(parse("GET / HTTP/1.1\rHost: x", &req, &status) < 0);
    assert_int_equal(status, 400);
    assert_true(molt_api_http_parse("GET /\0 HTTP/1.1", 15, &req, &status, &err) < 0);
    assert_int_equal(status, 400);
    assert_non_null(strstr(err.msg, "NUL"));
}

static void test_parse_head_size(void **state)
{
    struct molt_api_http_req req;
    struct molt_err err = MOLT_ERR_INIT;
    char *head = malloc(MOLT_API_HTTP_HEAD_MAX + 64);
    size_t fixed = strlen("GET / HTTP/1.1\r\nHost: x\r\nX: \r\n\r\n");
    int status;

    /* Exactly the limit, then one byte over it. */
    snprintf(head, MOLT_API_HTTP_HEAD_MAX + 64, "GET / HTTP/1.1\r\nHost: x\r\nX: %0*d\r\n\r\n",
             (int)(MOLT_API_HTTP_HEAD_MAX - fixed), 0);
    assert_int_equal(strlen(head), MOLT_API_HTTP_HEAD_MAX);
    assert_int_equal(parse(head, &req, &status), 1);
    snprintf(head, MOLT_API_HTTP_HEAD_MAX + 64, "GET / HTTP/1.1\r\nHost: x\r\nX: %0*d\r\n\r\n",
             (int)(MOLT_API_HTTP_HEAD_MAX - fixed + 1), 0);
    assert_true(parse(head, &req, &status) < 0);
    assert_int_equal(status, 431);
    /* No end in sight within the limit. */
    memset(head, 'a', MOLT_API_HTTP_HEAD_MAX);
    memcpy(head, "GET /", 5);
    assert_true(molt_api_http_parse(head, MOLT_API_HTTP_HEAD_MAX, &req, &status, &err) < 0);
    assert_int_equal(status, 431);
    assert_int_equal(molt_api_http_parse(head, MOLT_API_HTTP_HEAD_MAX - 1, &req, &status, &err), 0);
    free(head);
}

static void test_parse_header_count(void **state)
{
    char head[2048];
    size_t n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: x\r\n");

    for (int i = 1; i < MOLT_API_HTTP_HEADERS_MAX; i++)
        n += (size_t)snprintf(head + n, sizeof(head) - n, "X-%d: y\r\n", i);
    snprintf(head + n, sizeof(head) - n, "\r\n");
    assert_int_equal(refused(head), 0);
    snprintf(head + n, sizeof(head) - n, "X-last: y\r\n\r\n");
    assert_int_equal(refused(head), 431);
}

static void test_parse_bad_headers(void **state)
{
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01" "b\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\nX: a\tb \r\n\r\n"), 0);
    assert_int_equal(refused("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400);
    assert_int_equal(refused("GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"), 417);
}

static void test_parse_content_length(void **state)
{
    static const char *bad[] = { "abc", "-1", "+5", "1 2", "0x10", "", "1234567890123456789",
                                 "5, 5" };
    char head[256];
    struct molt_api_http_req req;
    int status;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(head, sizeof(head), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n",
                 bad[i]);
        assert_int_equal(refused(head), 400);
    }
    assert_int_equal(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                             "Content-Length: 5\r\n\r\n"),
                     400);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999\r\n\r\n",
                           &req, &status),
                     1);
    assert_true(req.content_length == 999999999999999999ULL);
}

static void test_parse_chunked(void **state)
{
    assert_int_equal(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     411);
    assert_int_equal(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
                     411);
}

static void test_reason(void **state)
{
    assert_string_equal(molt_api_http_reason(404), "Not Found");
    assert_string_equal(molt_api_http_reason(413), "Content Too Large");
    assert_string_equal(molt_api_http_reason(499), "Client Error");
}

/* ---- the server over a real socket ---- */

struct server {
    char dir[PATH_MAX];
    char path[PATH_MAX];
    int listen_fd;
    struct molt_api_http *srv;
    atomic_int allow;
    atomic_int then_runs;
};

static void count_then(void *arg)
{
    struct server *s = arg;

    atomic_fetch_add(&s->then_runs, 1);
}

static int admit(void *arg, uid_t uid, gid_t gid, pid_t pid)
{
    struct server *s = arg;

    return atomic_load(&s->allow) && uid == geteuid() && pid == getpid();
}

/* Replies "METHOD PATH body_len allowed too_large|body", or the refusal. */
static void handler(void *arg, struct molt_api_http_exchange *x)
{
    char text[256];

    if (!x->req) {
        x->status = x->refused_status;
        snprintf(text, sizeof(text), "refused: %s", x->refused_reason);
    } else {
        x->status = x->body_too_large ? 413 : 200;
        snprintf(text, sizeof(text), "%s %s %zu %d %d|%.16s", x->req->method, x->req->path,
                 x->body_len, x->peer_allowed, x->body_too_large, x->body);
    }
    x->reply = strdup(text);
    x->reply_len = strlen(text);
    snprintf(x->content_type, sizeof(x->content_type), "text/plain");
    x->then = count_then;
    x->then_arg = arg;
}

static int server_setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct molt_err err = MOLT_ERR_INIT;

    tu_mkdtemp(s->dir);
    snprintf(s->path, sizeof(s->path), "%s/s", s->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->listen_fd, 16), 0);
    atomic_store(&s->allow, 1);
    assert_int_equal(molt_api_http_start(&s->srv, s->listen_fd, admit, handler, s, &err), 0);
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    struct server *s = *state;

    molt_api_http_stop(s->srv);
    close(s->listen_fd);
    tu_rmtree(s->dir);
    free(s);
    return 0;
}

static int client(struct server *s)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_str(int fd, const char *p);

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *p)
{
    send_all(fd, p, strlen(p));
}

/* Reads until the server closes (at most 5 s); returns 0 on a timeout. */
static int read_reply(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;
        if (poll(&p, 1, timeout_ms) != 1)
            return 0;
        n = recv(fd, out + len, cap - 1 - len, 0);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        assert_true(len < cap - 1);
    }
    out[len] = '\0';
    return 1;
}

static void exchange(struct server *s, const char *req, char *out, size_t cap)
{
    int fd = client(s);

    send_str(fd, req);
    assert_true(read_reply(fd, out, cap, 5000));
    close(fd);
}

static void test_server_get(void **state)
{
    struct server *s = *state;
    const char *req = "GET /a/b?q HTTP/1.1\r\nHost: x\r\n\r\n";
    char out[1024];

    exchange(s, req, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 15\r\nConnection: close\r\n\r\nGET /a/b 0 1 0|");
    /* then runs once the reply is out, on the server's thread. */
    for (int i = 0; i < 100 && atomic_load(&s->then_runs) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&s->then_runs), 1);
    /* HEAD: the length of what GET would send, and no body. */
    exchange(s, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "Content-Length: 13\r\n"));
    assert_string_equal(strstr(out, "\r\n\r\n") + 4, "");
}

static void test_server_body(void **state)
{
    struct server *s = *state;
    char out[1024];
    int fd = client(s);

    /* The body in pieces, after the head. */
    send_str(fd, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123");
    usleep(50000);
    send_str(fd, "456789");
    assert_true(read_reply(fd, out, sizeof(out), 5000));
    close(fd);
    assert_non_null(strstr(out, "\r\n\r\nPOST /p 10 1 0|0123456789"));
}

static void test_server_continue(void **state)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct server *s = *state;
    char out[1024];
    int fd = client(s);
    ssize_t n;

    send_str(fd, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    n = recv(fd, out, sizeof(cont) - 1, MSG_WAITALL);
    assert_int_equal(n, sizeof(cont) - 1);
    assert_memory_equal(out, cont, sizeof(cont) - 1);
    send_str(fd, "abc");
    assert_true(read_reply(fd, out, sizeof(out), 5000));
    close(fd);
    assert_non_null(strstr(out, "POST /p 3 1 0|abc"));
}

static void test_server_too_large(void **state)
{
    struct server *s = *state;
    char head[256], out[1024];
    size_t big = MOLT_API_HTTP_BODY_MAX + 1;
    char *body = calloc(1, big);
    int fd = client(s), n;

    /* With 100-continue: answered at once, no body wanted. */
    n = snprintf(head, sizeof(head),
                 "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
                 big);
    send_all(fd, head, (size_t)n);
    assert_true(read_reply(fd, out, sizeof(out), 5000));
    close(fd);
    assert_true(strncmp(out, "HTTP/1.1 413 Content Too Large\r\n", 32) == 0);
    assert_non_null(strstr(out, "POST /p 0 1 1|"));
    /* Without: read and dropped, then answered. */
    fd = client(s);
    n = snprintf(head, sizeof(head), "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                 big);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, big);
    assert_true(read_reply(fd, out, sizeof(out), 5000));
    close(fd);
    assert_non_null(strstr(out, "POST /p 0 1 1|"));
    free(body);
}

static void test_server_refused(void **state)
{
    static const char chunked[] = "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct server *s = *state;
    char out[1024];

    exchange(s, chunked, out, sizeof(out));
    assert_true(strncmp(out, "HTTP/1.1 411 Length Required\r\n", 30) == 0);
    assert_non_null(strstr(out, "refused: Transfer-Encoding"));
    exchange(s, "GET / HTTP/1.1\nHost: x\n\n", out, sizeof(out));
    assert_true(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    /* A peer the admit function turns away: its body is not kept. */
    atomic_store(&s->allow, 0);
    exchange(s, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", out, sizeof(out));
    assert_non_null(strstr(out, "POST /p 0 0 0|"));
}

static void test_server_connection_cap(void **state)
{
    static const char req[] = "GET /last HTTP/1.1\r\nHost: x\r\n\r\n";
    struct server *s = *state;
    int idle[MOLT_API_HTTP_CONN_MAX], fd;
    char out[1024];

    for (int i = 0; i < MOLT_API_HTTP_CONN_MAX; i++)
        idle[i] = client(s);
    usleep(200000);    /* all accepted */
    fd = client(s);    /* in the backlog */
    send_str(fd, req);
    assert_false(read_reply(fd, out, sizeof(out), 300));
    close(idle[0]);
    assert_true(read_reply(fd, out, sizeof(out), 5000));
    assert_non_null(strstr(out, "GET /last 0 1 0|"));
    close(fd);
    for (int i = 1; i < MOLT_API_HTTP_CONN_MAX; i++)
        close(idle[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_get),
        cmocka_unit_test(test_parse_post),
        cmocka_unit_test(test_parse_bad_method),
        cmocka_unit_test(test_parse_bad_target),
        cmocka_unit_test(test_parse_bad_version),
        cmocka_unit_test(test_parse_line_endings),
        cmocka_unit_test(test_parse_head_size),
        cmocka_unit_test(test_parse_header_count),
        cmocka_unit_test(test_parse_bad_headers),
        cmocka_unit_test(test_parse_content_length),
        cmocka_unit_test(test_parse_chunked),
        cmocka_unit_test(test_reason),
        cmocka_unit_test_setup_teardown(test_server_get, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_server_body, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_server_continue, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_server_too_large, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_server_refused, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_server_connection_cap, server_setup, server_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
