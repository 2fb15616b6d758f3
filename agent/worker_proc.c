/* worker_proc.c: starting, hearing and ending the upgrade worker
 * (worker_proc.h). Runs on the agent's upgrade thread, one worker at a time. */
#include "worker_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "log.h"
#include "report.h"

extern char **environ;

#define CHANNEL_FD 3           /* the worker's end of the stream (worker_main.c) */
#define NET_FD 4               /* and of the connection channel */
#define POLL_MS 250
#define WRITE_TIMEOUT_MS 5000
#define GRACE_MS 2000          /* after a cancel, before SIGKILL */
#define EXIT_WAIT_MS 5000      /* after its result, before SIGKILL */

struct proc {
    const struct molt_worker_job *job;
    pid_t pid;
    int fd;
    int net_fd;                /* -1 once the worker closed it */
    int stage;                 /* the last stage the worker entered */
    int has_result;
    struct molt_wmsg result;
};

int molt_worker_proc_path(char out[PATH_MAX], struct molt_err *err)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n < 0)
        return molt_err_errno(err, "readlink /proc/self/exe");
    self[n] = '\0';
    if (!(slash = strrchr(self, '/')))
        return molt_err_set(err, MOLT_E_STATE, "/proc/self/exe: %s has no directory", self);
    *slash = '\0';
    if (snprintf(out, PATH_MAX, "%s/%s", self, MOLT_WORKER_PROGRAM) >= PATH_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "%s: path too long", self);
    return 0;
}

/* One end of a new pair for the worker, moved above its fds 3 and 4 (a
 * dup2 onto itself would keep close-on-exec set). */
static int pair(int type, int *ours, int *theirs, struct molt_err *err)
{
    int sv[2];

    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
        return molt_err_errno(err, "socketpair");
    *ours = sv[0];
    *theirs = fcntl(sv[1], F_DUPFD_CLOEXEC, NET_FD + 1);
    close(sv[1]);
    if (*theirs < 0) {
        close(sv[0]);
        return molt_err_errno(err, "dup");
    }
    return 0;
}

static int spawn_worker(struct proc *p, struct molt_err *err)
{
    const struct molt_worker_job *job = p->job;
    char prog[PATH_MAX];
    char *argv[] = { prog, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int child, child_net, rc;

    snprintf(prog, sizeof(prog), "%s", job->program);
    if ((rc = pair(SOCK_STREAM, &p->fd, &child, err)) < 0)
        return rc;
    if ((rc = pair(SOCK_SEQPACKET, &p->net_fd, &child_net, err)) < 0) {
        close(child);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, child, CHANNEL_FD);
    posix_spawn_file_actions_adddup2(&fa, child_net, NET_FD);
    posix_spawnattr_init(&attr);
    /* This thread blocks the signals the main loop handles: the worker must not. */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&p->pid, job->program, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(child);
    close(child_net);
    if (rc != 0) {
        errno = rc;
        return molt_err_errno(err, "start %s", job->program);
    }
    if (fcntl(p->fd, F_SETFL, O_NONBLOCK) < 0)
        return molt_err_errno(err, "worker stream");
    return 0;
}

static int send_start(struct proc *p, struct molt_err *err)
{
    struct molt_wmsg m;
    int rc;

    molt_wmsg_init(&m);
    m.type = MOLT_WMSG_START;
    if ((rc = molt_upgrade_state_to_json(p->job->task, &m.task, err)) < 0)
        return rc;
    m.hosts = molt_wnet_to_json(p->job->net);
    if (!(m.config = json_object_new_string(p->job->config ? p->job->config : "")) ||
        !m.hosts) {
        molt_wmsg_clear(&m);
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    }
    if (p->job->token)
        snprintf(m.token, sizeof(m.token), "%s", p->job->token);
    rc = molt_wmsg_write(p->fd, &m, WRITE_TIMEOUT_MS, err);
    molt_wmsg_clear(&m);
    return rc;
}

static int stage_index(const char *name)
{
    for (int s = MOLT_STAGE_PREFLIGHT; s <= MOLT_STAGE_STAGING; s++) {
        if (strcmp(molt_stage_name(s), name) == 0)
            return s;
    }
    return -1;
}

/* What the format cannot check: stages forward only, byte counts of this
 * task's package or delta. */
static int on_progress(struct proc *p, const struct molt_wmsg *m, struct molt_err *err)
{
    const struct molt_build *b = &p->job->task->build;
    int stage = stage_index(m->stage), is_new;

    if (stage < p->stage)
        return molt_err_set(err, MOLT_E_PARSE, "stage went back from %s to %s",
                            molt_stage_name(p->stage), m->stage);
    if (m->bytes_total != 0 && m->bytes_total != b->size &&
        !(b->delta.present && m->bytes_total == b->delta.size))
        return molt_err_set(err, MOLT_E_PARSE, "bytesTotal %lld is neither the package's nor "
                            "the delta's size", (long long)m->bytes_total);
    is_new = stage > p->stage;
    p->stage = stage;
    return p->job->progress(p->job->ctx, m, stage, is_new, err);
}

static int on_result(struct proc *p, const struct molt_wmsg *m, struct molt_err *err)
{
    char want[PATH_MAX];

    if (p->has_result)
        return molt_err_set(err, MOLT_E_PARSE, "a second result");
    snprintf(want, sizeof(want), "%s/staged", p->job->task->task_dir);
    if (m->ok && strcmp(m->staged_path, want) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "stagedPath %s is not %s", m->staged_path, want);
    p->result = *m;
    p->result.task = NULL;
    p->has_result = 1;
    return 0;
}

/* A log line of the worker's: its events are checked where the worker logs
 * them; the text cannot break the line (the format refuses control bytes). */
static void relay_log(enum molt_log_level level, const char *event, const char *text, pid_t pid)
{
    molt_log(level, event, "%s worker=%ld", text, (long)pid);
}

static int on_message(struct proc *p, const struct molt_wmsg *m, struct molt_err *err)
{
    switch (m->type) {
    case MOLT_WMSG_PROGRESS:
        return on_progress(p, m, err);
    case MOLT_WMSG_LOG:
        relay_log(m->level, m->event, m->text, p->pid);
        return 0;
    case MOLT_WMSG_RESULT:
        return on_result(p, m, err);
    default:
        return molt_err_set(err, MOLT_E_PARSE, "a %s message", molt_wmsg_type_name(m->type));
    }
}

/* A request on the connection channel: a connection to a pinned address is
 * made and handed over (or why it failed, for libcurl to try the next
 * address); any other request is the worker out of bounds. */
static int on_connect(struct proc *p, struct molt_err *err)
{
    struct molt_wmsg m, reply;
    struct molt_err why = MOLT_ERR_INIT;
    int passed = -1, fd = -1, rc;

    rc = molt_wmsg_recv(p->net_fd, MOLT_WMSG_TO_AGENT, WRITE_TIMEOUT_MS, &m, &passed, err);
    if (rc == MOLT_WMSG_EOF) {
        close(p->net_fd);
        p->net_fd = -1;
        return 0;
    }
    if (rc < 0)
        return molt_err_prefix(err, "connection channel");
    if (passed >= 0)
        close(passed);
    if (m.type != MOLT_WMSG_CONNECT || passed >= 0)
        return molt_err_set(err, MOLT_E_PARSE, "connection channel: a %s message%s",
                            molt_wmsg_type_name(m.type), passed >= 0 ? " with a descriptor" : "");
    rc = molt_wnet_connect(p->job->net, m.address, (long)m.port, p->job->connect_timeout_ms, &fd,
                           &why);
    molt_log_debug("upgrade.connect", "task=%s address=%s port=%lld result=\"%s\"",
                   p->job->task->task_id, m.address, (long long)m.port, rc < 0 ? why.msg : "ok");
    if (rc == MOLT_E_INVAL)
        return molt_err_set(err, MOLT_E_PARSE, "connect: %s", why.msg);
    molt_wmsg_init(&reply);
    reply.type = MOLT_WMSG_CONNECTED;
    reply.ok = rc == 0;
    snprintf(reply.message, sizeof(reply.message), "%s", rc < 0 ? why.msg : "");
    rc = molt_wmsg_send(p->net_fd, &reply, fd, WRITE_TIMEOUT_MS, err);
    if (fd >= 0)
        close(fd);
    return rc < 0 ? molt_err_prefix(err, "connection channel") : 0;
}

/* Reads what is there: 1 at the end of the stream, 0 for more later,
 * negative (err set) when the worker must be ended. */
static int drain(struct proc *p, struct molt_wmsg_reader *r, struct molt_err *err)
{
    struct molt_wmsg m;
    int rc;

    for (;;) {
        rc = molt_wmsg_read(r, p->fd, &m, err);
        if (rc == 1) {
            if (p->has_result)
                rc = molt_err_set(err, MOLT_E_PARSE, "a %s message after its result",
                                  molt_wmsg_type_name(m.type));
            else
                rc = on_message(p, &m, err);
            molt_wmsg_clear(&m);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc == MOLT_WMSG_EOF)
            return 1;
        return rc;
    }
}

/* Waits up to ms for the worker to exit (then SIGKILL), and reaps it. */
static void reap(struct proc *p, int ms, int *status, struct rusage *ru)
{
    struct timespec nap = { 0, 20 * 1000000L };
    int64_t until = molt_host_monotonic_ms() + ms;

    for (;;) {
        pid_t r = wait4(p->pid, status, WNOHANG, ru);
        if (r == p->pid || (r < 0 && errno != EINTR))
            return;
        if (molt_host_monotonic_ms() >= until)
            break;
        nanosleep(&nap, NULL);
    }
    kill(p->pid, SIGKILL);
    while (wait4(p->pid, status, 0, ru) < 0 && errno == EINTR)
        ;
}

static void cancel(struct proc *p)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m;

    molt_wmsg_init(&m);
    m.type = MOLT_WMSG_CANCEL;
    if (molt_wmsg_write(p->fd, &m, 100, &err) < 0)
        kill(p->pid, SIGKILL);
}

/* How a worker without a result ended, for the task's reason. */
static int died(const struct proc *p, int status, struct molt_err *err)
{
    const char *stage = molt_stage_name(p->stage);

    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
        return molt_err_set(err, MOLT_E_STATE, "the upgrade worker was stopped by its sandbox "
                            "(a system call it may not make, SIGSYS) during %s", stage);
    if (WIFSIGNALED(status))
        return molt_err_set(err, MOLT_E_STATE, "the upgrade worker was killed by signal %d (%s) "
                            "during %s", WTERMSIG(status), strsignal(WTERMSIG(status)), stage);
    return molt_err_set(err, MOLT_E_STATE, "the upgrade worker exited with status %d during %s "
                        "without a result", WIFEXITED(status) ? WEXITSTATUS(status) : -1, stage);
}

static void log_exit(const struct proc *p, int status, const struct rusage *ru)
{
    char how[32];

    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "signal-%d", WTERMSIG(status));
    else
        snprintf(how, sizeof(how), "%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    molt_log_info("upgrade.worker", "task=%s pid=%ld exit=%s stage=%s maxrss_kib=%ld "
                  "cpu_ms=%ld", p->job->task->task_id, (long)p->pid, how,
                  molt_stage_name(p->stage), ru->ru_maxrss,
                  (long)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
                      (long)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000);
}

/* Until the worker's result (or the stream's end without one), the task
 * is aborted or the worker misbehaves: 0 at the result or the end, else
 * negative with err set; *aborted says whether the agent aborted (its
 * reason is in err). Not waiting for the stream's end after the result:
 * a worker that lingers in its exit (or holds the stream open from a
 * clone) is the reaper's to end, and the task goes on. */
static int converse(struct proc *p, struct molt_wmsg_reader *r, int *aborted,
                    struct molt_err *err)
{
    struct pollfd pfd[2] = { { .fd = p->fd, .events = POLLIN },
                             { .fd = p->net_fd, .events = POLLIN } };
    int rc;

    for (;;) {
        if ((rc = p->job->aborted(p->job->ctx, err)) < 0) {
            *aborted = 1;
            return rc;
        }
        pfd[1].fd = p->net_fd;
        pfd[1].revents = 0;
        if (poll(pfd, 2, POLL_MS) < 0 && errno != EINTR)
            return molt_err_errno(err, "poll the upgrade worker");
        if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && (rc = on_connect(p, err)) < 0)
            return rc;
        if ((rc = drain(p, r, err)) != 0)
            return rc == 1 ? 0 : rc;
        if (p->has_result)
            return 0;
    }
}

int molt_worker_proc_run(const struct molt_worker_job *job, char staged[PATH_MAX], int *failed,
                         struct molt_err *err)
{
    struct proc p = { .job = job, .pid = -1, .fd = -1, .net_fd = -1,
                      .stage = MOLT_STAGE_PREFLIGHT };
    struct molt_wmsg_reader r;
    struct rusage ru;
    int status = 0, aborted = 0, rc;

    memset(&ru, 0, sizeof(ru));
    *failed = MOLT_STAGE_DOWNLOADING;
    if ((rc = molt_wmsg_reader_init(&r, MOLT_WMSG_TO_AGENT, err)) < 0)
        return rc;
    if ((rc = spawn_worker(&p, err)) < 0)
        goto out;
    if ((rc = send_start(&p, err)) < 0)
        molt_err_prefix(err, "the upgrade worker's start");
    else if ((rc = converse(&p, &r, &aborted, err)) < 0 && !aborted)
        molt_err_prefix(err, "the upgrade worker sent a bad message");
    if (rc < 0 && aborted) {
        cancel(&p);
        reap(&p, GRACE_MS, &status, &ru);
    } else if (rc < 0) {
        /* Out of step or misbehaving: nothing it says counts any more. */
        kill(p.pid, SIGKILL);
        reap(&p, 0, &status, &ru);
    } else {
        reap(&p, EXIT_WAIT_MS, &status, &ru);
    }
    log_exit(&p, status, &ru);
    if (rc == 0 && !p.has_result)
        rc = died(&p, status, err);
    else if (rc == 0 && !p.result.ok)
        rc = molt_err_set(err, MOLT_E_STATE, "%s", p.result.message);
    if (rc == 0)
        snprintf(staged, PATH_MAX, "%s", p.result.staged_path);
    *failed = p.has_result ? stage_index(p.result.stage) : p.stage;
    if (*failed < MOLT_STAGE_DOWNLOADING)
        *failed = MOLT_STAGE_DOWNLOADING;
out:
    if (p.fd >= 0)
        close(p.fd);
    if (p.net_fd >= 0)
        close(p.net_fd);
    molt_wmsg_reader_free(&r);
    return rc;
}
