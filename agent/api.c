/* api.c: local API server: Unix socket, peer check, router, obshell envelope
 * (the HTTP itself: api_http.c). */
#include "config.h"

#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api_http.h"
#include "host.h"
#include "json.h"
#include "log.h"

struct route {
    char method[8];
    char path[128];
    size_t prefix_len;      /* > 0 for a prefix route */
    molt_api_handler fn;
    void *arg;
};

struct molt_api {
    struct route routes[MOLT_API_MAX_ROUTES];
    int n_routes;
    struct molt_api_http *server;
    int listen_fd;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    gid_t socket_gid;
};

int molt_api_new(struct molt_api **out, struct molt_err *err)
{
    struct molt_api *api = calloc(1, sizeof(*api));

    if (!api)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    api->listen_fd = -1;
    *out = api;
    return 0;
}

int molt_api_route(struct molt_api *api, const char *method, const char *path,
                   molt_api_handler fn, void *arg, struct molt_err *err)
{
    struct route *r;
    size_t n = strlen(path);

    if (api->server)
        return molt_err_set(err, MOLT_E_STATE, "api: routes are fixed once serving");
    if (api->n_routes == MOLT_API_MAX_ROUTES)
        return molt_err_set(err, MOLT_E_LIMIT, "api: too many routes");
    if (strlen(method) >= sizeof(r->method) || n >= sizeof(r->path) || n == 0 || path[0] != '/')
        return molt_err_set(err, MOLT_E_INVAL, "api: bad route %s %s", method, path);
    r = &api->routes[api->n_routes++];
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->prefix_len = path[n - 1] == '*' ? n - 1 : 0;
    r->fn = fn;
    r->arg = arg;
    return 0;
}

void molt_api_error(struct molt_api_response *res, int status, const char *code,
                    const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    json_object_put(res->data);
    res->data = NULL;
    snprintf(res->error_code, sizeof(res->error_code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(res->error_message, sizeof(res->error_message), fmt, ap);
    va_end(ap);
}

/* RFC 3339 in local time with milliseconds, as the obshell samples show. */
static void format_timestamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    char base[32], zone[8];

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm);    /* +0800 */
    if (strlen(zone) == 5)
        snprintf(out, n, "%s.%03ld%.3s:%s", base, ts.tv_nsec / 1000000L, zone, zone + 3);
    else
        snprintf(out, n, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

struct json_object *molt_api_envelope(const struct molt_api_response *res, long duration_ms,
                                      const char *trace_id)
{
    struct json_object *o = json_object_new_object();
    int status = res->status ? res->status : 200;
    int ok = status < 400 && !res->error_code[0];
    char stamp[48];

    format_timestamp(stamp, sizeof(stamp));
    json_object_object_add(o, "successful", json_object_new_boolean(ok));
    json_object_object_add(o, "timestamp", json_object_new_string(stamp));
    json_object_object_add(o, "duration", json_object_new_int64(duration_ms));
    json_object_object_add(o, "status", json_object_new_int(status));
    json_object_object_add(o, "traceId", json_object_new_string(trace_id));
    json_object_object_add(o, "data", ok ? json_object_get(res->data) : NULL);
    if (ok) {
        json_object_object_add(o, "error", NULL);
    } else {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string(res->error_code));
        json_object_object_add(e, "message", json_object_new_string(res->error_message));
        json_object_object_add(o, "error", e);
    }
    return o;
}

static void new_trace_id(char out[17])
{
    unsigned char b[8] = { 0 };

    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        int64_t t = molt_host_monotonic_ms();
        memcpy(b, &t, sizeof(b));
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Supplementary groups are not in SO_PEERCRED; /proc has them. */
static int pid_in_group(pid_t pid, gid_t gid)
{
    char path[64], line[4096];
    FILE *f;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Groups:", 7) != 0)
            continue;
        for (char *p = line + 7, *end; *p; p = end) {
            long g = strtol(p, &end, 10);
            if (end == p)
                break;
            if ((gid_t)g == gid)
                found = 1;
        }
        break;
    }
    fclose(f);
    return found;
}

static int peer_allowed(void *arg, uid_t uid, gid_t gid, pid_t pid)
{
    struct molt_api *api = arg;

    return uid == 0 || uid == geteuid() || gid == api->socket_gid ||
           pid_in_group(pid, api->socket_gid);
}

static const struct route *find_route(struct molt_api *api, const char *method, const char *path,
                                      int *path_known)
{
    *path_known = 0;
    for (int i = 0; i < api->n_routes; i++) {
        const struct route *r = &api->routes[i];
        int match = r->prefix_len ? strncmp(path, r->path, r->prefix_len) == 0
                                  : strcmp(path, r->path) == 0;
        if (!match)
            continue;
        *path_known = 1;
        if (strcmp(method, r->method) == 0)
            return r;
    }
    return NULL;
}

/* The reply: text as it is, or the response in the envelope. */
static void set_reply(struct molt_api_http_exchange *x, struct molt_api_response *res)
{
    char trace[17];
    struct json_object *env;
    const char *text;

    if (res->text) {
        x->status = 200;
        x->reply = res->text;
        x->reply_len = strlen(res->text);
        res->text = NULL;
        snprintf(x->content_type, sizeof(x->content_type), "%s",
                 res->text_type ? res->text_type : "text/plain");
        return;
    }
    new_trace_id(trace);
    env = molt_api_envelope(res, (long)(molt_host_monotonic_ms() - x->start_ms), trace);
    text = molt_json_dump(env);
    x->status = res->status ? res->status : 200;
    x->reply = strdup(text);
    x->reply_len = x->reply ? strlen(x->reply) : 0;
    snprintf(x->content_type, sizeof(x->content_type), "application/json");
    json_object_put(env);
}

static void dispatch(struct molt_api *api, const struct molt_api_http_exchange *x,
                     struct molt_api_response *res)
{
    const char *method = x->req->method, *url = x->req->path;
    const struct route *r;
    int known;

    if (!x->peer_allowed) {
        molt_api_error(res, 403, "access.denied", "uid %ld may not use this socket",
                       (long)x->peer_uid);
        return;
    }
    if (x->body_too_large) {
        molt_api_error(res, 413, "request.too.large", "request body larger than %d bytes",
                       MOLT_API_BODY_MAX);
        return;
    }
    r = find_route(api, method, url, &known);
    if (!r) {
        if (known)
            molt_api_error(res, 405, "method.not.allowed", "%s is not allowed on %s", method, url);
        else
            molt_api_error(res, 404, "not.found", "no such endpoint: %s", url);
        return;
    }
    struct molt_api_request req = {
        .method = method,
        .path = url,
        .rest = r->prefix_len ? url + r->prefix_len : "",
        .body = x->body,
        .body_len = x->body_len,
        .peer_uid = x->peer_uid,
        .peer_pid = x->peer_pid,
    };
    r->fn(r->arg, &req, res);
}

/* The envelope's error code of a request the HTTP layer refused. */
static const char *refused_code(int status)
{
    switch (status) {
    case 411: return "length.required";
    case 414: return "uri.too.long";
    case 417: return "expectation.failed";
    case 431: return "request.head.too.large";
    case 501: return "not.implemented";
    case 505: return "version.not.supported";
    default: return "request.malformed";
    }
}

static void on_request(void *arg, struct molt_api_http_exchange *x)
{
    struct molt_api *api = arg;
    struct molt_api_response res = { 0 };
    const char *method = x->req ? x->req->method : "-", *url = x->req ? x->req->path : "-";

    if (!x->req)
        molt_api_error(&res, x->refused_status, refused_code(x->refused_status), "%s",
                       x->refused_reason);
    else
        dispatch(api, x, &res);
    if (res.status >= 400 || res.error_code[0])
        molt_log_info("api.request", "method=%s path=%s status=%d uid=%ld", method, url,
                      res.status, (long)x->peer_uid);
    else
        molt_log_debug("api.request", "method=%s path=%s status=%d uid=%ld", method, url,
                       res.status ? res.status : 200, (long)x->peer_uid);
    set_reply(x, &res);
    x->then = res.then;
    x->then_arg = res.then_arg;
    json_object_put(res.data);
    free(res.text);
}

/* A live socket file means another agent is serving it; a dead one is stale. */
static int socket_in_use(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int used;

    if (fd < 0)
        return 0;
    used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return used;
}

static int bind_socket(struct molt_api *api, const char *path, struct molt_err *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return molt_err_set(err, MOLT_E_LIMIT, "socket path longer than %zu bytes: %s",
                            sizeof(sa.sun_path) - 1, path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return molt_err_set(err, MOLT_E_IO, "%s exists and is not a socket", path);
        if (socket_in_use(&sa))
            return molt_err_set(err, MOLT_E_BUSY, "another molt-agent serves %s", path);
        if (unlink(path) < 0)
            return molt_err_errno(err, "remove stale socket %s", path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return molt_err_errno(err, "socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = molt_err_errno(err, "bind %s", path);
        close(fd);
        return rc;
    }
    if (chmod(path, 0660) < 0 || stat(path, &st) < 0 || listen(fd, 16) < 0) {
        int rc = molt_err_errno(err, "set up %s", path);
        close(fd);
        unlink(path);
        return rc;
    }
    api->listen_fd = fd;
    api->socket_gid = st.st_gid;
    snprintf(api->socket_path, sizeof(api->socket_path), "%s", path);
    return 0;
}

int molt_api_start(struct molt_api *api, const char *socket_path, struct molt_err *err)
{
    int rc = bind_socket(api, socket_path, err);

    if (rc < 0)
        return molt_err_prefix(err, "local API");
    rc = molt_api_http_start(&api->server, api->listen_fd, peer_allowed, on_request, api, err);
    if (rc < 0) {
        close(api->listen_fd);
        api->listen_fd = -1;
        unlink(api->socket_path);
        return molt_err_prefix(err, "local API: cannot start the HTTP server on %s", socket_path);
    }
    molt_log_info("api.listening", "socket=%s", socket_path);
    return 0;
}

void molt_api_free(struct molt_api *api)
{
    if (!api)
        return;
    molt_api_http_stop(api->server);
    if (api->listen_fd >= 0) {
        close(api->listen_fd);
        unlink(api->socket_path);
    }
    free(api);
}
