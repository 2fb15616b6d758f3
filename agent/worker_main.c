/* worker_main.c: molt-worker, the upgrade worker. molt-agent starts one per
 * task, from its own bin directory, with the message stream on fd 3
 * and its connection channel on fd 4 (docs/protocol.md section 7): it reads
 * the start message (the task, the agent's settings, the pinned hosts),
 * confines itself (lib/sandbox.h) before it touches the
 * network or a byte of the package, runs the stages of worker.c, and ends
 * with one result message. Its log lines go to the agent as log messages.
 * Not meant to be run by hand. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "cli.h"
#include "fault.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "package.h"
#include "report.h"
#include "sandbox.h"
#include "text.h"
#include "worker.h"

/* An ASan build (GCC says so with __SANITIZE_ADDRESS__, clang with
 * __has_feature): see the end of main. */
#if defined(__SANITIZE_ADDRESS__)
#define WORKER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WORKER_ASAN 1
#endif
#endif

#define CHANNEL_FD 3
#define NET_FD 4
#define START_TIMEOUT_MS 10000
#define CONNECT_SLACK_MS 5000  /* beyond the connect timeout, for the agent's answer */
#define WRITE_TIMEOUT_MS 10000

static const char usage[] =
    "Usage: molt-worker\n"
    "The upgrade worker: molt-agent starts it for each upgrade task, with the\n"
    "agent's message stream on file descriptor 3 (docs/protocol.md, section 7).\n";

struct channel {
    int fd;
    int net_fd;
    struct molt_wmsg_reader reader;
    struct molt_worker *w;
    int broken;     /* the agent is gone or out of step: nothing more is sent */
};

static void send_msg(void *ctx, const struct molt_wmsg *m)
{
    struct channel *c = ctx;
    struct molt_err err = MOLT_ERR_INIT;

    if (c->broken)
        return;
    if (molt_wmsg_write(c->fd, m, WRITE_TIMEOUT_MS, &err) < 0) {
        c->broken = 1;
        if (c->w)
            c->w->abort = MOLT_WORKER_CANCELLED;
    }
}

/* A cancel, or the agent going away (end of stream, a bad frame), stops the
 * task: nobody would hear its result. */
static void poll_agent(void *ctx)
{
    struct channel *c = ctx;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m;
    int rc;

    molt_wmsg_init(&m);
    while (!c->broken && (rc = molt_wmsg_read(&c->reader, c->fd, &m, &err)) != 0) {
        if (rc == 1 && m.type == MOLT_WMSG_CANCEL) {
            c->w->abort = MOLT_WORKER_CANCELLED;
        } else if (rc != 1) {
            c->broken = 1;
            c->w->abort = MOLT_WORKER_CANCELLED;
        }
        molt_wmsg_clear(&m);
    }
}

/* Each log line becomes a log message; the agent logs it. */
static void log_to_agent(enum molt_log_level level, const char *event, const char *text,
                         void *ctx)
{
    struct molt_wmsg m;

    molt_wmsg_init(&m);
    m.type = MOLT_WMSG_LOG;
    m.level = level;
    snprintf(m.event, sizeof(m.event), "%s", event);
    /* Control characters cannot travel (the agent refuses them). */
    molt_text_shown(m.text, sizeof(m.text), text, 0);
    send_msg(ctx, &m);
}

static int read_start(struct channel *c, struct molt_wmsg *m, struct molt_err *err)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    int rc;

    while ((rc = molt_wmsg_read(&c->reader, c->fd, m, err)) == 0) {
        int n = poll(&p, 1, START_TIMEOUT_MS);
        if (n == 0)
            return molt_err_set(err, MOLT_E_TIMEOUT, "no start message in %d ms",
                                START_TIMEOUT_MS);
        if (n < 0 && errno != EINTR)
            return molt_err_errno(err, "poll");
    }
    if (rc == MOLT_WMSG_EOF)
        return molt_err_set(err, MOLT_E_STATE, "the agent closed the stream before the start");
    if (rc < 0)
        return rc;
    if (m->type != MOLT_WMSG_START)
        return molt_err_set(err, MOLT_E_STATE, "a %s message before the start",
                            molt_wmsg_type_name(m->type));
    return 0;
}

/* The task, the configuration and the statement, all before the sandbox.
 * The settings are the agent's, as in force there: the worker reads no
 * configuration file, so registration's secret never reaches it and an edit
 * the agent has not reloaded does not either. */
static int setup(struct molt_worker *w, struct molt_wmsg *start, struct molt_err *err)
{
    enum molt_log_level level = MOLT_LOG_INFO;
    int rc;

    if ((rc = molt_upgrade_state_from_json(start->task, &w->task, err)) < 0)
        return molt_err_prefix(err, "start: task");
    snprintf(w->token, sizeof(w->token), "%s", start->token);
    if ((rc = molt_conf_load_text(&w->conf, json_object_get_string(start->config),
                                  "the agent's settings", err)) < 0)
        return molt_err_prefix(err, "start");
    if ((rc = molt_wnet_from_json(start->hosts, &w->net, err)) < 0)
        return molt_err_prefix(err, "start: hosts");
    molt_wnet_resolve_list(&w->net, w->resolve, w->resolve_text);
    molt_log_level_parse(w->conf.agent.log_level, &level);
    molt_log_setup("molt-worker", level, 0);
    /* The agent authenticated it: a bare parse. */
    if ((rc = molt_pkg_statement_parse(w->task.build.statement, w->task.build.statement_len,
                                       &w->st, err)) < 0)
        return molt_err_prefix(err, "the task's statement");
    return molt_http_global_init(err);
}

/* A connection from the agent to address, one of the task's pinned hosts
 * (worker_net.h): the connected socket, or -1 with the agent's reason
 * logged. Only one request is ever out, so the answer is the next record. */
static int ask_agent(void *ctx, const struct sockaddr *sa, socklen_t len)
{
    struct channel *c = ctx;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m, reply;
    const void *bin = NULL;
    int fd = -1, rc = MOLT_E_INVAL;

    molt_wmsg_init(&m);
    molt_wmsg_init(&reply);
    m.type = MOLT_WMSG_CONNECT;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        bin = &((const struct sockaddr_in *)sa)->sin_addr;
        m.port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        bin = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        m.port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    if (!bin || !inet_ntop(sa->sa_family, bin, m.address, sizeof(m.address)))
        molt_err_set(&err, MOLT_E_INVAL, "not an IPv4 or IPv6 address");
    else if ((rc = molt_wmsg_send(c->net_fd, &m, -1, WRITE_TIMEOUT_MS, &err)) == 0)
        rc = molt_wmsg_recv(c->net_fd, MOLT_WMSG_TO_WORKER,
                            c->w->conf.server.connect_timeout_ms + CONNECT_SLACK_MS, &reply,
                            &fd, &err);
    if (rc == 1 && reply.type == MOLT_WMSG_CONNECTED && reply.ok && fd >= 0)
        return fd;
    if (fd >= 0)
        close(fd);
    molt_log_info("worker.connect", "address=%s port=%lld error=\"%s\"", m.address,
                  (long long)m.port,
                  rc == 1 ? (reply.message[0] ? reply.message : "refused") :
                  rc == MOLT_WMSG_EOF ? "the agent closed the connection channel" : err.msg);
    return -1;
}

static int confine(struct molt_worker *w, struct molt_err *err)
{
    const char *readable[64];
    const char *writable[] = { w->task.task_dir, NULL, NULL };
    char base[PATH_MAX];
    struct molt_sandbox_conf sc = { .writable = writable, .readable = readable };
    struct molt_sandbox_status st;
    size_t n = 0;

    for (const char *const *p = molt_sandbox_system_readable; *p && n < 48; p++)
        readable[n++] = *p;
    readable[n++] = w->conf.server.ca_file;
    readable[n++] = w->conf.server.client_cert;
    readable[n++] = w->conf.server.client_key;
    if (w->task.local_package[0])
        readable[n++] = w->task.local_package;
    if (w->task.build.delta.present) {
        /* The delta's base is rebuilt from the installed tree. */
        snprintf(base, sizeof(base), "%s/versions/%s", w->conf.install.root,
                 w->task.build.delta.base_version);
        readable[n++] = base;
    }
    readable[n] = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!readable[i][0])
            readable[i] = "/dev/null"; /* an unset file: nothing more */
    }
#ifdef MOLT_FAULT_POINTS
    /* Test builds only: once-only fault points remember firing there (fault.h). */
    const char *once = getenv("MOLT_FAULT_ONCE_DIR");
    if (once && *once)
        writable[1] = once;
#endif
    /* The pinned hosts' ports, for Landlock where seccomp cannot keep the
     * worker from opening sockets of its own. */
    for (size_t i = 0; i < w->net.n_hosts; i++) {
        size_t j = 0;

        while (j < sc.n_ports && sc.ports[j] != w->net.hosts[i].port)
            j++;
        if (j == sc.n_ports && sc.n_ports < MOLT_SANDBOX_PORTS_MAX)
            sc.ports[sc.n_ports++] = w->net.hosts[i].port;
    }
    sc.no_sockets = 1;
    if (molt_sandbox_apply(&sc, &st, err) < 0)
        return err->code;
    if (st.layers & MOLT_SANDBOX_SECCOMP)
        w->connect = ask_agent;
    molt_log_info("worker.sandbox", "task=%s layers=\"%s\" ports=%zu connections=%s",
                  w->task.task_id, st.text, sc.n_ports, w->connect ? "agent" : "own");
    return 0;
}

#ifdef MOLT_FAULT_POINTS
static void sleep_forever(void)
{
    struct timespec nap = { 3600, 0 };

    for (;;)
        nanosleep(&nap, NULL);
}

/* Test builds only: a worker that tries to leave its sandbox, as a
 * compromised one would. What the sandbox refuses ends the task with the
 * refusal as its reason; what it lets through ends it too, saying so. */
static int try_escapes(struct molt_worker *w, struct molt_err *err)
{
    if (MOLT_FAULT_INJECT("worker.escape_write")) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/versions/escaped-by-worker", w->conf.install.root);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return molt_err_errno(err, "sandbox refused writing %s", path);
        close(fd);
        return molt_err_set(err, MOLT_E_STATE, "sandbox did not stop writing %s", path);
    }
    if (MOLT_FAULT_INJECT("worker.escape_connect")) {
        /* A port of no URL of the task: the discard port on loopback. */
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
            return molt_err_errno(err, "sandbox refused a socket");
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(fd);
        if (rc < 0 && (e == EACCES || e == EPERM)) {
            errno = e;
            return molt_err_errno(err, "sandbox refused connecting to 127.0.0.1:9");
        }
        return molt_err_set(err, MOLT_E_STATE, "sandbox did not stop connecting to 127.0.0.1:9 "
                            "(%s)", rc < 0 ? strerror(e) : "connected");
    }
    if (MOLT_FAULT_INJECT("worker.escape_ask")) {
        /* Asking the agent instead: the same address, no pinned host's. */
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = ask_agent(w->ctx, (struct sockaddr *)&sa, sizeof(sa));
        if (fd < 0)
            return molt_err_set(err, MOLT_E_STATE, "the agent refused connecting to "
                                "127.0.0.1:9");
        close(fd);
        return molt_err_set(err, MOLT_E_STATE, "the agent connected to 127.0.0.1:9");
    }
    if (MOLT_FAULT_INJECT("worker.escape_exec")) {
        char sh[] = "/bin/sh", c[] = "-c", cmd[] = "true";
        char *const argv[] = { sh, c, cmd, NULL };
        execv(sh, argv); /* seccomp ends the process here */
        return molt_err_errno(err, "sandbox refused running /bin/sh");
    }
    if (MOLT_FAULT_INJECT("worker.hang"))
        sleep_forever();
    return 0;
}

/* Test builds only: a compromised worker's last move, a staged tree that
 * agrees with itself but is not the signed build: bin/molt-agent replaced,
 * and manifest.json rewritten to match. The installer must refuse it. */
static int forge_tree(const char *staged, struct molt_err *err)
{
    static const char evil[] = "#!/bin/sh\necho forged by the worker\n";
    struct molt_manifest m;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(&m, 0, sizeof(m));
    snprintf(path, sizeof(path), "%s/bin/molt-agent", staged);
    rc = molt_fs_write_atomic(path, evil, strlen(evil), 0755, err);
    snprintf(path, sizeof(path), "%s/%s", staged, MOLT_PKG_MANIFEST_NAME);
    if (rc == 0)
        rc = molt_fs_read_file(path, 4u << 20, &text, &len, err);
    if (rc == 0)
        rc = molt_pkg_manifest_parse(text, len, NULL, &m, err);
    for (size_t i = 0; rc == 0 && i < m.nfiles; i++) {
        if (strcmp(m.files[i].path, "bin/molt-agent") != 0)
            continue;
        m.files[i].size = strlen(evil);
        rc = molt_pkg_sha256_buf(evil, strlen(evil), m.files[i].sha256, err);
    }
    free(text);
    text = NULL;
    if (rc == 0)
        rc = molt_pkg_manifest_format(&m, &text, &len, err);
    if (rc == 0)
        rc = molt_fs_write_atomic(path, text, len, 0644, err);
    free(text);
    molt_pkg_manifest_free(&m);
    return rc;
}
#endif

static void send_result(struct channel *c, int ok, int stage, const char *message,
                        const char *staged)
{
    struct molt_wmsg m;

    molt_wmsg_init(&m);
    m.type = MOLT_WMSG_RESULT;
    m.ok = ok;
    snprintf(m.stage, sizeof(m.stage), "%s", molt_stage_name(stage));
    snprintf(m.message, sizeof(m.message), "%s", message);
    if (ok)
        snprintf(m.staged_path, sizeof(m.staged_path), "%s", staged);
    send_msg(c, &m);
}

/* w: zeroed (large: the configuration and the task, so not on the stack);
 * c: the stream, to be set up here. */
static int run(struct molt_worker *w, struct channel *cp)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct channel *c = cp;
    struct molt_wmsg start;
    char staged[PATH_MAX] = "";
    int failed = MOLT_STAGE_DOWNLOADING, rc;

    molt_wmsg_init(&start);
    w->send = send_msg;
    w->poll = poll_agent;
    w->ctx = c;
    c->fd = CHANNEL_FD;
    c->net_fd = NET_FD;
    c->w = w;
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0 ||
        molt_wmsg_reader_init(&c->reader, MOLT_WMSG_TO_WORKER, &err) < 0) {
        fprintf(stderr, "molt-worker: no message stream on fd %d: %s\n", CHANNEL_FD,
                err.msg[0] ? err.msg : strerror(errno));
        return 1;
    }
    molt_log_set_sink(log_to_agent, c);
    rc = read_start(c, &start, &err);
    if (rc == 0)
        rc = setup(w, &start, &err);
    molt_wmsg_clear(&start);
    if (rc == 0 && (rc = confine(w, &err)) < 0)
        molt_err_prefix(&err, "sandbox");
#ifdef MOLT_FAULT_POINTS
    if (rc == 0)
        rc = try_escapes(w, &err);
#endif
    if (rc == 0)
        rc = molt_worker_run(w, staged, &failed, &err);
#ifdef MOLT_FAULT_POINTS
    if (rc == 0 && MOLT_FAULT_INJECT("worker.forge_tree") && forge_tree(staged, &err) < 0)
        molt_log_warn("worker.forge_tree", "error=\"%s\"", err.msg);
#endif
    explicit_bzero(w->token, sizeof(w->token));
    send_result(c, rc == 0, rc == 0 ? MOLT_STAGE_STAGING : failed, rc == 0 ? "" : err.msg,
                staged);
    molt_log_set_sink(NULL, NULL); /* nothing may follow the result */
#ifdef MOLT_FAULT_POINTS
    if (MOLT_FAULT_INJECT("worker.linger")) /* its result sent, it does not exit */
        sleep_forever();
#endif
    molt_wmsg_reader_free(&c->reader);
    molt_upgrade_state_free(&w->task);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (molt_cli_common(argc, argv, "molt-worker", usage))
        return 0;
    if (argc > 1) {
        fprintf(stderr, "molt-worker: unknown argument '%s'\n%s", argv[1], usage);
        return 2;
    }
    /* The agent's end: when its thread goes, so do we (the stream's end says
     * the same, but a hung stage would not read it). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    struct molt_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return 1;
    struct channel c;
    memset(&c, 0, sizeof(c));
    int rc = run(w, &c);
    free(w);
#ifdef WORKER_ASAN
    /* LeakSanitizer's check at exit stops the process with ptrace, from a
     * clone of it that seccomp kills, and then waits for that clone for
     * ever. Its result sent, a sanitizer build's worker leaves without the
     * check; the library code it runs is leak-checked by the unit tests. */
    fflush(NULL);
    _exit(rc);
#endif
    return rc;
}
