/* api.c: local API server: Unix socket, peer check, router, obshell envelope. */
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

#include <microhttpd.h>

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
    struct MHD_Daemon *daemon;
    int listen_fd;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    gid_t socket_gid;
};

/* Per-request state, kept by MHD between calls of the access handler. */
struct req_ctx {
    int64_t start_ms;
    int denied;
    uid_t uid;
    pid_t pid;
    char *body;
    size_t len;
    int too_big;
    void (*then)(void *arg);    /* the response's, run in on_completed */
    void *then_arg;
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

    if (api->daemon)
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

static int peer_allowed(struct molt_api *api, struct MHD_Connection *c, struct req_ctx *rc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    rc->uid = cred.uid;
    rc->pid = cred.pid;
    return cred.uid == 0 || cred.uid == geteuid() || cred.gid == api->socket_gid ||
           pid_in_group(cred.pid, api->socket_gid);
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

static enum MHD_Result send_response(struct MHD_Connection *c, const struct molt_api_response *res,
                                     const struct req_ctx *rc)
{
    char trace[17];
    long duration = (long)(molt_host_monotonic_ms() - rc->start_ms);
    struct json_object *env;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    const char *text;

    if (res->text) {
        resp = MHD_create_response_from_buffer(strlen(res->text), res->text,
                                               MHD_RESPMEM_MUST_COPY);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", res->text_type);
        ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    new_trace_id(trace);
    env = molt_api_envelope(res, duration, trace);
    text = molt_json_dump(env);
    resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                           MHD_RESPMEM_MUST_COPY);
    json_object_put(env);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(c, (unsigned)(res->status ? res->status : 200), resp);
    MHD_destroy_response(resp);
    return ret;
}

static void dispatch(struct molt_api *api, struct MHD_Connection *c, const char *method,
                     const char *url, struct req_ctx *rc, struct molt_api_response *res)
{
    int known;
    const struct route *r;

    if (rc->denied) {
        molt_api_error(res, 403, "access.denied", "uid %ld may not use this socket",
                       (long)rc->uid);
        return;
    }
    if (rc->too_big) {
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
        .body = rc->body ? rc->body : "",
        .body_len = rc->len,
        .peer_uid = rc->uid,
        .peer_pid = rc->pid,
    };
    r->fn(r->arg, &req, res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct molt_api *api = cls;
    struct req_ctx *rc = *con_cls;
    struct molt_api_response res = { 0 };
    enum MHD_Result ret;

    if (!rc) {
        rc = calloc(1, sizeof(*rc));
        if (!rc)
            return MHD_NO;
        rc->start_ms = molt_host_monotonic_ms();
        rc->denied = !peer_allowed(api, c, rc);
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        if (!rc->denied && !rc->too_big && rc->len + n <= MOLT_API_BODY_MAX) {
            char *p = realloc(rc->body, rc->len + n + 1);
            if (!p)
                return MHD_NO;
            rc->body = p;
            memcpy(rc->body + rc->len, upload_data, n);
            rc->len += n;
            rc->body[rc->len] = '\0';
        } else {
            rc->too_big = !rc->denied;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    dispatch(api, c, method, url, rc, &res);
    if (res.status >= 400 || res.error_code[0])
        molt_log_info("api.request", "method=%s path=%s status=%d uid=%ld", method, url,
                      res.status, (long)rc->uid);
    else
        molt_log_debug("api.request", "method=%s path=%s status=%d uid=%ld", method, url,
                       res.status ? res.status : 200, (long)rc->uid);
    ret = send_response(c, &res, rc);
    rc->then = res.then;
    rc->then_arg = res.then_arg;
    json_object_put(res.data);
    free(res.text);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *rc = *con_cls;

    if (rc) {
        if (rc->then)
            rc->then(rc->then_arg);
        free(rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

/* fmt comes from libmicrohttpd, a printf format with ap as its arguments. */
MOLT_PRINTF(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    molt_log_debug("api.mhd", "message=\"%s\"", line);
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
    api->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0, NULL, NULL, on_request,
        api, MHD_OPTION_LISTEN_SOCKET, api->listen_fd, MHD_OPTION_CONNECTION_LIMIT, 32u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(128 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api, MHD_OPTION_END);
    if (!api->daemon) {
        close(api->listen_fd);
        api->listen_fd = -1;
        unlink(api->socket_path);
        return molt_err_set(err, MOLT_E_IO, "local API: cannot start the HTTP server on %s",
                            socket_path);
    }
    molt_log_info("api.listening", "socket=%s", socket_path);
    return 0;
}

void molt_api_free(struct molt_api *api)
{
    if (!api)
        return;
    if (api->daemon) {
        /* Quiesced first, so the listen socket stays ours to close (once). */
        MHD_quiesce_daemon(api->daemon);
        MHD_stop_daemon(api->daemon);
    }
    if (api->listen_fd >= 0) {
        close(api->listen_fd);
        unlink(api->socket_path);
    }
    free(api);
}
