/* worker_msg.c: frames and messages between the agent and the upgrade worker
 * (worker_msg.h, docs/protocol.md section 7). The encoder runs the decoder on
 * what it built, so the two cannot disagree about what is valid. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "text.h"
#include "worker_msg.h"
#include "worker_net.h"

static const char *const type_names[] = { NULL,    "progress", "log",      "result", "connect",
                                          "start", "cancel",   "connected" };
static const char *const stage_names[] = { "preflight", "downloading", "verifying", "staging" };
static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* The fields each type may carry besides "type". */
static const char *const fields_progress[] = { "stage",    "bytesDone", "bytesTotal",
                                               "servedBy", "source",    "message", NULL };
static const char *const fields_log[] = { "level", "event", "text", NULL };
static const char *const fields_result[] = { "ok", "stage", "message", "stagedPath", NULL };
static const char *const fields_connect[] = { "address", "port", NULL };
static const char *const fields_start[] = { "task", "config", "hosts", "token", NULL };
static const char *const fields_cancel[] = { NULL };
static const char *const fields_connected[] = { "ok", "message", NULL };

#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

void molt_wmsg_init(struct molt_wmsg *m)
{
    memset(m, 0, sizeof(*m));
    m->source = -1;
}

void molt_wmsg_clear(struct molt_wmsg *m)
{
    if (m->task)
        json_object_put(m->task);
    if (m->config)
        json_object_put(m->config);
    if (m->hosts)
        json_object_put(m->hosts);
    explicit_bzero(m->token, sizeof(m->token));
    molt_wmsg_init(m);
}

const char *molt_wmsg_type_name(enum molt_wmsg_type type)
{
    return (size_t)type > 0 && (size_t)type < N_TYPES ? type_names[type] : NULL;
}

static enum molt_wmsg_dir type_dir(enum molt_wmsg_type type)
{
    return type >= MOLT_WMSG_START ? MOLT_WMSG_TO_WORKER : MOLT_WMSG_TO_AGENT;
}

static int known_fields(struct json_object *o, enum molt_wmsg_type type, struct molt_err *err)
{
    static const char *const *const fields[N_TYPES] = {
        NULL, fields_progress, fields_log, fields_result, fields_connect, fields_start,
        fields_cancel, fields_connected,
    };

    json_object_object_foreach(o, key, val) {
        const char *const *f = fields[type];

        (void)val;
        while (*f && strcmp(*f, key) != 0)
            f++;
        if (!*f && strcmp(key, "type") != 0)
            return molt_err_set(err, MOLT_E_PARSE, "unknown field '%.64s' in a %s message", key,
                                type_names[type]);
    }
    return 0;
}

/* A string field that fits out and holds no control byte (the agent logs
 * and reports it). */
static int text_field(struct json_object *o, const char *key, int optional, char *out, size_t n,
                      struct molt_err *err)
{
    const char *s = NULL;
    size_t len;
    int rc;

    rc = optional ? molt_json_opt_str(o, key, &s, err) : molt_json_get_str(o, key, &s, err);
    if (rc < 0)
        return rc;
    if (!s)
        return 0;
    len = strlen(s);
    if (len >= n)
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': longer than %zu bytes", key, n - 1);
    if (molt_text_find_control(s, len, NULL))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': control character", key);
    memcpy(out, s, len + 1);
    return 0;
}

static int name_field(struct json_object *o, const char *key, const char *const *names,
                      size_t n_names, char *out, size_t n, int *index, struct molt_err *err)
{
    int rc = text_field(o, key, 0, out, n, err);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n_names; i++) {
        if (strcmp(out, names[i]) == 0) {
            if (index)
                *index = (int)i;
            return 0;
        }
    }
    return molt_err_set(err, MOLT_E_PARSE, "field '%s': '%s' is not known", key, out);
}

static int decode_progress(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    int rc;

    if ((rc = name_field(o, "stage", stage_names, 4, m->stage, sizeof(m->stage), NULL, err)) < 0 ||
        (rc = molt_json_int_field(o, "bytesDone", 0, 0, INT64_MAX, &m->bytes_done, err)) < 0 ||
        (rc = molt_json_int_field(o, "bytesTotal", 0, 0, INT64_MAX, &m->bytes_total, err)) < 0 ||
        (rc = text_field(o, "servedBy", 1, m->served_by, sizeof(m->served_by), err)) < 0 ||
        (rc = text_field(o, "message", 1, m->message, sizeof(m->message), err)) < 0)
        return rc;
    int64_t source = -1;
    if ((rc = molt_json_int_field(o, "source", 1, 0, MOLT_BUILD_SOURCES_MAX - 1, &source, err)) < 0)
        return rc;
    m->source = (int)source;
    if (m->bytes_total > 0 && m->bytes_done > m->bytes_total)
        return molt_err_set(err, MOLT_E_PARSE, "field 'bytesDone': %lld is more than bytesTotal",
                            (long long)m->bytes_done);
    return 0;
}

static int decode_log(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    char level[8];
    int index = 0;
    int rc;

    if ((rc = name_field(o, "level", level_names, 4, level, sizeof(level), &index, err)) < 0 ||
        (rc = text_field(o, "event", 0, m->event, sizeof(m->event), err)) < 0 ||
        (rc = text_field(o, "text", 0, m->text, sizeof(m->text), err)) < 0)
        return rc;
    m->level = (enum molt_log_level)index;
    if (!m->event[0] || strspn(m->event, "abcdefghijklmnopqrstuvwxyz0123456789_.-") !=
                            strlen(m->event))
        return molt_err_set(err, MOLT_E_PARSE, "field 'event': not a name of [a-z0-9_.-]");
    return 0;
}

/* Absolute, without empty, "." or ".." parts: the agent checks it is under
 * the task directory by its prefix, which such parts would defeat. */
static int path_ok(const char *p)
{
    if (p[0] != '/' || !p[1])
        return 0;
    for (const char *s = p + 1;; s = strchr(s, '/') + 1) {
        size_t n = strcspn(s, "/");

        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!s[n])
            return 1;
    }
}

static int decode_result(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    struct json_object *path;
    int rc;

    if ((rc = molt_json_get_bool(o, "ok", &m->ok, err)) < 0 ||
        (rc = name_field(o, "stage", stage_names, 4, m->stage, sizeof(m->stage), NULL, err)) < 0 ||
        (rc = text_field(o, "message", 0, m->message, sizeof(m->message), err)) < 0 ||
        (rc = text_field(o, "stagedPath", 1, m->staged_path, sizeof(m->staged_path), err)) < 0)
        return rc;
    if (!m->ok)
        return json_object_object_get_ex(o, "stagedPath", &path)
                   ? molt_err_set(err, MOLT_E_PARSE, "field 'stagedPath': set on a failure")
                   : 0;
    if (!path_ok(m->staged_path))
        return molt_err_set(err, MOLT_E_PARSE,
                            "field 'stagedPath': not an absolute path without '.' or '..'");
    return 0;
}

/* INI text: lines of printable bytes and tabs (molt_conf_load_text reads the
 * rest). */
static int config_field(struct json_object *o, struct json_object **out, struct molt_err *err)
{
    struct json_object *v;
    const char *s;
    int rc;

    if ((rc = molt_json_get_str(o, "config", &s, err)) < 0)
        return rc;
    json_object_object_get_ex(o, "config", &v);
    if (molt_text_find_control(s, SIZE_MAX, "\n\t"))
        return molt_err_set(err, MOLT_E_PARSE, "field 'config': control character");
    *out = json_object_get(v);
    return 0;
}

/* The pinned hosts, checked as the worker will read them. */
static int hosts_field(struct json_object *o, struct json_object **out, struct molt_err *err)
{
    struct json_object *v;
    struct molt_wnet *net;
    int rc;

    if (!json_object_object_get_ex(o, "hosts", &v))
        return molt_err_set(err, MOLT_E_PARSE, "field 'hosts': missing");
    if (!(net = malloc(sizeof(*net))))
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    rc = molt_wnet_from_json(v, net, err);
    free(net);
    if (rc < 0)
        return molt_err_prefix(err, "field 'hosts'");
    *out = json_object_get(v);
    return 0;
}

static int decode_start(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    struct json_object *task;
    int rc;

    if ((rc = molt_json_get_obj(o, "task", &task, err)) < 0 ||
        (rc = text_field(o, "token", 1, m->token, sizeof(m->token), err)) < 0 ||
        (rc = config_field(o, &m->config, err)) < 0 ||
        (rc = hosts_field(o, &m->hosts, err)) < 0)
        return rc;
    m->task = json_object_get(task);
    return 0;
}

/* A numeric address (no name: the worker resolves none) and a TCP port. */
static int decode_connect(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    unsigned char bin[sizeof(struct in6_addr)];
    int rc;

    if ((rc = text_field(o, "address", 0, m->address, sizeof(m->address), err)) < 0 ||
        (rc = molt_json_int_field(o, "port", 0, 1, 65535, &m->port, err)) < 0)
        return rc;
    if (inet_pton(AF_INET, m->address, bin) != 1 && inet_pton(AF_INET6, m->address, bin) != 1)
        return molt_err_set(err, MOLT_E_PARSE, "field 'address': not a numeric IP address");
    return 0;
}

static int decode_connected(struct json_object *o, struct molt_wmsg *m, struct molt_err *err)
{
    int rc;

    if ((rc = molt_json_get_bool(o, "ok", &m->ok, err)) < 0 ||
        (rc = text_field(o, "message", 1, m->message, sizeof(m->message), err)) < 0)
        return rc;
    return 0;
}

static int decode_object(struct json_object *o, enum molt_wmsg_dir dir, struct molt_wmsg *m,
                         struct molt_err *err)
{
    const char *type;
    size_t t = 1;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if ((rc = molt_json_get_str(o, "type", &type, err)) < 0)
        return rc;
    while (t < N_TYPES && strcmp(type_names[t], type) != 0)
        t++;
    if (t == N_TYPES)
        return molt_err_set(err, MOLT_E_PARSE, "field 'type': '%.32s' is not known", type);
    m->type = (enum molt_wmsg_type)t;
    if (type_dir(m->type) != dir)
        return molt_err_set(err, MOLT_E_PARSE, "field 'type': a %s message is not sent %s", type,
                            dir == MOLT_WMSG_TO_AGENT ? "by the worker" : "by the agent");
    if ((rc = known_fields(o, m->type, err)) < 0)
        return rc;
    switch (m->type) {
    case MOLT_WMSG_PROGRESS:
        return decode_progress(o, m, err);
    case MOLT_WMSG_LOG:
        return decode_log(o, m, err);
    case MOLT_WMSG_RESULT:
        return decode_result(o, m, err);
    case MOLT_WMSG_CONNECT:
        return decode_connect(o, m, err);
    case MOLT_WMSG_START:
        return decode_start(o, m, err);
    case MOLT_WMSG_CANCEL:
        return 0;
    case MOLT_WMSG_CONNECTED:
        return decode_connected(o, m, err);
    }
    return molt_err_set(err, MOLT_E_PARSE, "field 'type': not known");
}

int molt_wmsg_decode(const char *json, size_t len, enum molt_wmsg_dir dir, struct molt_wmsg *m,
                     struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc;

    molt_wmsg_init(m);
    if (len > MOLT_WMSG_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "worker message: %zu bytes, more than %d", len,
                            MOLT_WMSG_MAX);
    if ((rc = molt_json_parse(json, len, &o, err)) < 0)
        return molt_err_prefix(err, "worker message");
    rc = decode_object(o, dir, m, err);
    json_object_put(o);
    if (rc < 0) {
        molt_wmsg_clear(m);
        return molt_err_prefix(err, "worker message");
    }
    return 0;
}

static struct json_object *to_json(const struct molt_wmsg *m)
{
    struct json_object *o = json_object_new_object();
    const char *type = molt_wmsg_type_name(m->type);

    if (!o)
        return NULL;
    json_object_object_add(o, "type", json_object_new_string(type ? type : "?"));
    switch (m->type) {
    case MOLT_WMSG_PROGRESS:
        json_object_object_add(o, "stage", json_object_new_string(m->stage));
        json_object_object_add(o, "bytesDone", json_object_new_int64(m->bytes_done));
        json_object_object_add(o, "bytesTotal", json_object_new_int64(m->bytes_total));
        if (m->served_by[0])
            json_object_object_add(o, "servedBy", json_object_new_string(m->served_by));
        if (m->source >= 0)
            json_object_object_add(o, "source", json_object_new_int(m->source));
        if (m->message[0])
            json_object_object_add(o, "message", json_object_new_string(m->message));
        break;
    case MOLT_WMSG_LOG:
        json_object_object_add(o, "level",
                               json_object_new_string((unsigned)m->level < 4
                                                          ? level_names[m->level]
                                                          : "?"));
        json_object_object_add(o, "event", json_object_new_string(m->event));
        json_object_object_add(o, "text", json_object_new_string(m->text));
        break;
    case MOLT_WMSG_RESULT:
        json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
        json_object_object_add(o, "stage", json_object_new_string(m->stage));
        json_object_object_add(o, "message", json_object_new_string(m->message));
        if (m->ok)
            json_object_object_add(o, "stagedPath", json_object_new_string(m->staged_path));
        break;
    case MOLT_WMSG_START:
        json_object_object_add(o, "task", m->task ? json_object_get(m->task) : NULL);
        json_object_object_add(o, "config", m->config ? json_object_get(m->config) : NULL);
        json_object_object_add(o, "hosts", m->hosts ? json_object_get(m->hosts) : NULL);
        if (m->token[0])
            json_object_object_add(o, "token", json_object_new_string(m->token));
        break;
    case MOLT_WMSG_CONNECT:
        json_object_object_add(o, "address", json_object_new_string(m->address));
        json_object_object_add(o, "port", json_object_new_int64(m->port));
        break;
    case MOLT_WMSG_CONNECTED:
        json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
        if (m->message[0])
            json_object_object_add(o, "message", json_object_new_string(m->message));
        break;
    case MOLT_WMSG_CANCEL:
        break;
    }
    return o;
}

int molt_wmsg_encode(const struct molt_wmsg *m, char **out, size_t *len, struct molt_err *err)
{
    struct json_object *o = to_json(m);
    struct molt_wmsg check;
    const char *json;
    size_t n;
    int rc;

    *out = NULL;
    if (!o || !(json = molt_json_dump(o))) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "worker message: encode");
        goto out;
    }
    n = strlen(json);
    if ((rc = molt_wmsg_decode(json, n, type_dir(m->type), &check, err)) < 0)
        goto out;
    molt_wmsg_clear(&check);
    if (!(*out = malloc(MOLT_WMSG_HEADER + n))) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "worker message: encode");
        goto out;
    }
    (*out)[0] = (char)(n >> 24);
    (*out)[1] = (char)(n >> 16);
    (*out)[2] = (char)(n >> 8);
    (*out)[3] = (char)n;
    memcpy(*out + MOLT_WMSG_HEADER, json, n);
    *len = MOLT_WMSG_HEADER + n;
out:
    if (o)
        json_object_put(o);
    return rc;
}

int molt_wmsg_write(int fd, const struct molt_wmsg *m, int timeout_ms, struct molt_err *err)
{
    size_t len = 0, done = 0;
    char *frame;
    int rc;

    if ((rc = molt_wmsg_encode(m, &frame, &len, err)) < 0)
        return rc;
    while (done < len) {
        ssize_t w = write(fd, frame + done, len - done);
        struct pollfd p = { .fd = fd, .events = POLLOUT };

        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int n = poll(&p, 1, timeout_ms);

            if (n == 0) {
                rc = molt_err_set(err, MOLT_E_TIMEOUT, "worker message: write: no room in %d ms",
                                  timeout_ms);
                break;
            }
            if (n < 0 && errno != EINTR) {
                rc = molt_err_errno(err, "worker message: poll");
                break;
            }
        } else {
            rc = molt_err_errno(err, "worker message: write");
            break;
        }
    }
    explicit_bzero(frame, len); /* a start frame may carry the token */
    free(frame);
    return rc;
}

/* Waits up to timeout_ms for fd to be ready for events. */
static int wait_fd(int fd, short events, int timeout_ms, const char *what, struct molt_err *err)
{
    struct pollfd p = { .fd = fd, .events = events };
    int n;

    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return molt_err_set(err, MOLT_E_TIMEOUT, "worker message: %s: nothing in %d ms", what,
                            timeout_ms);
    if (n < 0)
        return molt_err_errno(err, "worker message: poll");
    return 0;
}

int molt_wmsg_send(int fd, const struct molt_wmsg *m, int pass_fd, int timeout_ms,
                   struct molt_err *err)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh;
    struct iovec iov;
    size_t len = 0;
    char *frame;
    int rc;

    if ((rc = molt_wmsg_encode(m, &frame, &len, err)) < 0)
        return rc;
    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    iov.iov_base = frame;
    iov.iov_len = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (pass_fd >= 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        ctl.h.cmsg_level = SOL_SOCKET;
        ctl.h.cmsg_type = SCM_RIGHTS;
        ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(&ctl.h), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w == (ssize_t)len)
            break;
        if (w >= 0) {
            rc = molt_err_set(err, MOLT_E_IO, "worker message: send: %zd of %zu bytes", w, len);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if ((rc = wait_fd(fd, POLLOUT, timeout_ms, "send", err)) == 0)
                continue;
        } else if (errno == EINTR) {
            continue;
        } else {
            rc = molt_err_errno(err, "worker message: send");
        }
        break;
    }
    free(frame);
    return rc;
}

/* The descriptors a record carried: at most one kept in *passed, any other
 * closed (a count above one is an error). */
static int take_fds(struct msghdr *mh, int *passed, struct molt_err *err)
{
    int extra = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        size_t n;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*passed < 0)
                *passed = fd;
            else
                close(fd), extra = 1;
        }
    }
    if (extra || (mh->msg_flags & MSG_CTRUNC))
        return molt_err_set(err, MOLT_E_PARSE, "worker message: more than one descriptor");
    return 0;
}

int molt_wmsg_recv(int fd, enum molt_wmsg_dir dir, int timeout_ms, struct molt_wmsg *m,
                   int *passed, struct molt_err *err)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    const size_t cap = MOLT_WMSG_HEADER + MOLT_WMSG_MAX;
    char *buf = malloc(cap);
    struct msghdr mh;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    ssize_t got;
    uint32_t len;
    int rc;

    *passed = -1;
    molt_wmsg_init(m);
    if (!buf)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    while ((got = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = molt_err_errno(err, "worker message: receive");
            goto out;
        }
        if ((rc = wait_fd(fd, POLLIN, timeout_ms, "receive", err)) < 0)
            goto out;
    }
    if ((rc = take_fds(&mh, passed, err)) < 0)
        goto out;
    if (got == 0) {
        rc = MOLT_WMSG_EOF;
        goto out;
    }
    len = got >= MOLT_WMSG_HEADER ? (uint32_t)(unsigned char)buf[0] << 24 |
                                        (uint32_t)(unsigned char)buf[1] << 16 |
                                        (uint32_t)(unsigned char)buf[2] << 8 |
                                        (unsigned char)buf[3]
                                  : 0;
    if ((mh.msg_flags & MSG_TRUNC) || got < MOLT_WMSG_HEADER + 1 ||
        len != (size_t)got - MOLT_WMSG_HEADER) {
        rc = molt_err_set(err, MOLT_E_PARSE, "worker message: a record of %zd bytes is not "
                          "one frame", got);
        goto out;
    }
    rc = molt_wmsg_decode(buf + MOLT_WMSG_HEADER, len, dir, m, err);
    if (rc == 0)
        rc = 1;
out:
    if (rc != 1 && *passed >= 0) {
        close(*passed);
        *passed = -1;
    }
    free(buf);
    return rc;
}

int molt_wmsg_reader_init(struct molt_wmsg_reader *r, enum molt_wmsg_dir dir,
                          struct molt_err *err)
{
    memset(r, 0, sizeof(*r));
    r->dir = dir;
    if (!(r->body = malloc(MOLT_WMSG_MAX)))
        return molt_err_set(err, MOLT_E_NOMEM, "worker message: reader");
    return 0;
}

void molt_wmsg_reader_free(struct molt_wmsg_reader *r)
{
    free(r->body);
    r->body = NULL;
}

static int fail(struct molt_wmsg_reader *r, int rc)
{
    r->failed = 1;
    return rc;
}

/* Where the next bytes go and how many the current part still needs. */
static char *slot(struct molt_wmsg_reader *r, size_t *room)
{
    if (r->header_got < MOLT_WMSG_HEADER) {
        *room = MOLT_WMSG_HEADER - r->header_got;
        return (char *)r->header + r->header_got;
    }
    *room = r->len - r->body_got;
    return r->body + r->body_got;
}

/* n bytes were put at slot(): 1 when they complete a frame. */
static int advance(struct molt_wmsg_reader *r, size_t n, struct molt_wmsg *m, struct molt_err *err)
{
    int rc;

    if (r->header_got < MOLT_WMSG_HEADER) {
        r->header_got += n;
        if (r->header_got < MOLT_WMSG_HEADER)
            return 0;
        r->len = (uint32_t)r->header[0] << 24 | (uint32_t)r->header[1] << 16 |
                 (uint32_t)r->header[2] << 8 | r->header[3];
        if (r->len == 0 || r->len > MOLT_WMSG_MAX)
            return fail(r, molt_err_set(err, MOLT_E_LIMIT,
                                        "worker message: frame length %u is not in 1..%d",
                                        (unsigned)r->len, MOLT_WMSG_MAX));
        r->body_got = 0;
        return 0;
    }
    r->body_got += n;
    if (r->body_got < r->len)
        return 0;
    r->header_got = 0;
    if ((rc = molt_wmsg_decode(r->body, r->len, r->dir, m, err)) < 0)
        return fail(r, rc);
    return 1;
}

static int refused(struct molt_wmsg_reader *r, struct molt_err *err)
{
    return r->failed ? molt_err_set(err, MOLT_E_STATE,
                                    "worker message: stream refused after a bad frame")
                     : 0;
}

int molt_wmsg_reader_feed(struct molt_wmsg_reader *r, const void *data, size_t n, size_t *used,
                          struct molt_wmsg *m, struct molt_err *err)
{
    const char *p = data;
    int rc;

    *used = 0;
    if ((rc = refused(r, err)) < 0)
        return rc;
    while (*used < n) {
        size_t room;
        char *dst = slot(r, &room);

        if (room > n - *used)
            room = n - *used;
        memcpy(dst, p + *used, room);
        *used += room;
        if ((rc = advance(r, room, m, err)) != 0)
            return rc;
    }
    return 0;
}

int molt_wmsg_read(struct molt_wmsg_reader *r, int fd, struct molt_wmsg *m, struct molt_err *err)
{
    int rc;

    if ((rc = refused(r, err)) < 0)
        return rc;
    for (;;) {
        size_t room;
        char *dst = slot(r, &room);
        ssize_t got = read(fd, dst, room);

        if (got > 0) {
            if ((rc = advance(r, (size_t)got, m, err)) != 0)
                return rc;
        } else if (got == 0) {
            if (r->header_got == 0)
                return MOLT_WMSG_EOF;
            return fail(r, molt_err_set(err, MOLT_E_PARSE,
                                        "worker message: stream ended inside a frame"));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return fail(r, molt_err_errno(err, "worker message: read"));
        }
    }
}
