/* launch.c: what the service manager starts. Before every start of the agent
 * the journal decides: a crash is recovered from, a failed trial is rolled
 * back, a trial start is counted. Then either exec the agent (the default,
 * with a watchdog child that enforces the trial deadline), or, with
 * --supervise, stay its parent: restart it (exit 75 at once, anything else
 * with a backoff), enforce the deadline, keep the tail of its stderr during a
 * trial in <state_dir>/trial-<version>.log, and stop it on SIGTERM. This code
 * runs from <root>/bin/molt-installer, the last committed version's copy, so a
 * new build that cannot start cannot prevent its own rollback. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "fs.h"
#include "installer.h"
#include "log.h"

#define EXIT_RESTART 75 /* EX_TEMPFAIL: the agent asks to be restarted now */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_MS 30000 /* a run this long resets the backoff */
#define KILL_GRACE_MS 5000     /* SIGTERM, then SIGKILL after this */
#define TICK_MS 100
#define LINK_CHECK_MS 500
#define TAIL_LINES 100
#define TAIL_LINE_MAX 512

struct start_plan {
    char version[INST_VERSION_MAX];
    char agent[PATH_MAX];
    int trial;
    char task_id[MOLT_JOURNAL_TASK_MAX];
    int64_t deadline_ms;
    int64_t start_no; /* during a trial: which start this is */
};

/* The last lines the agent wrote to stderr, for the trial log. */
struct tail {
    char version[INST_VERSION_MAX];
    char lines[TAIL_LINES][TAIL_LINE_MAX];
    size_t next, count;
    char partial[TAIL_LINE_MAX];
    size_t partial_len;
};

/* ---- stderr tail and trial log ---- */

static void tail_reset(struct tail *t, const char *version)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->version, sizeof(t->version), "%s", version);
}

static void tail_push(struct tail *t, const char *line, size_t len)
{
    if (len >= TAIL_LINE_MAX)
        len = TAIL_LINE_MAX - 1;
    memcpy(t->lines[t->next], line, len);
    t->lines[t->next][len] = '\0';
    t->next = (t->next + 1) % TAIL_LINES;
    if (t->count < TAIL_LINES)
        t->count++;
}

static void tail_feed(struct tail *t, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || t->partial_len == TAIL_LINE_MAX - 1) {
            tail_push(t, t->partial, t->partial_len);
            t->partial_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        t->partial[t->partial_len++] = buf[i];
    }
}

static void tail_note(struct tail *t, const char *fmt, ...) MOLT_PRINTF(2, 3);
static void tail_note(struct tail *t, const char *fmt, ...)
{
    char line[TAIL_LINE_MAX];
    va_list ap;

    if (t->partial_len) {
        tail_push(t, t->partial, t->partial_len);
        t->partial_len = 0;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tail_push(t, line, strlen(line));
}

static void write_trial_log(const struct inst *in, const struct tail *t, const char *header)
{
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX], name[INST_VERSION_MAX + 16];
    size_t cap = 512 + TAIL_LINES * (TAIL_LINE_MAX + 1);
    char *buf = malloc(cap);
    size_t len;

    if (!buf)
        return;
    len = (size_t)snprintf(buf, cap, "# %s\n", header);
    for (size_t i = 0; i < t->count && len < cap; i++) {
        size_t idx = (t->next + TAIL_LINES - t->count + i) % TAIL_LINES;
        len += (size_t)snprintf(buf + len, cap - len, "%s\n", t->lines[idx]);
    }
    if (len > cap)
        len = cap;
    snprintf(name, sizeof(name), "trial-%s.log", t->version);
    if (molt_fs_join(path, sizeof(path), in->state_dir, name, &err) < 0 ||
        molt_fs_write_atomic(path, buf, len, 0640, &err) < 0)
        molt_log_warn("installer.trial_log", "error=\"%s\"", err.msg);
    free(buf);
}

/* ---- deciding what to start ---- */

/* After a commit, for install.watch_window: a start of the committed version
 * is counted, and a start beyond install.watch_max_starts rolls back to the
 * version before it, although its task ended 2 (the agent running then
 * reports the event). Once the window has passed the watch is closed. */
static int watch_locked(struct inst *in, struct molt_journal *j, struct tail *tail,
                        int clean_restart, struct molt_err *err)
{
    char reason[MOLT_JOURNAL_REASON_MAX], header[MOLT_JOURNAL_REASON_MAX + 128];
    char current[INST_VERSION_MAX];
    int64_t now = inst_now_ms();
    int rc;

    if (molt_journal_watch_over(j, now)) {
        molt_log_info("installer.watch_over", "task=%s version=%s starts=%lld", j->task_id,
                      j->to_version, (long long)j->watch_starts);
        if ((rc = molt_journal_end_watch(j, now, err)) < 0)
            return rc;
        return inst_journal_save(in, j, err);
    }
    /* A crash loop is what the watch is for: a restart after a clean exit
     * (0, or 75 asking for it), which the supervisor saw or the agent's
     * clean-exit marker tells, is not one. */
    if (!molt_journal_watching(j, now))
        return 0;
    /* Only starts of the watched version count (not one after a manual
     * change of current). */
    if ((rc = inst_read_link(in, "current", current, err)) < 0)
        return rc;
    /* The agent's marker says it exited by itself (exec mode: a service
     * restart or stop); taken in any case, it is for this start only. */
    if (molt_journal_take_clean_exit(in->state_dir, j->to_version))
        clean_restart = 1;
    if (strcmp(current, j->to_version) != 0 || clean_restart)
        return 0;
    if (molt_journal_watch_failed(j, now, in->conf.install.watch_max_starts, reason,
                                  sizeof(reason))) {
        molt_log_warn("installer.watch_failed", "task=%s version=%s starts=%lld reason=\"%s\"",
                      j->task_id, j->to_version, (long long)j->watch_starts, reason);
        if (tail && tail->count && strcmp(tail->version, j->to_version) == 0) {
            snprintf(header, sizeof(header), "watch of %s for task %s: rolled back: %s",
                     j->to_version, j->task_id, reason);
            write_trial_log(in, tail, header);
        }
        return inst_rollback_watch(in, j, reason, err);
    }
    if ((rc = molt_journal_count_watch_start(j, now, err)) < 0 ||
        (rc = inst_journal_save(in, j, err)) < 0)
        return rc;
    molt_log_info("installer.watch_start", "task=%s version=%s start=%lld of %lld",
                  j->task_id, j->to_version, (long long)j->watch_starts,
                  (long long)in->conf.install.watch_max_starts);
    MOLT_FAULT_POINT("launch.after_count_watch_start");
    return 0;
}

static int prepare_locked(struct inst *in, struct start_plan *plan, struct tail *tail,
                          int clean_restart, struct molt_err *err)
{
    char reason[MOLT_JOURNAL_REASON_MAX], header[MOLT_JOURNAL_REASON_MAX + 128];
    struct molt_journal j;
    int rc;

    if ((rc = inst_journal_open(in, &j, err)) < 0 || (rc = inst_recover(in, &j, err)) < 0)
        return rc;
    if (molt_journal_trial_failed(&j, inst_now_ms(), in->conf.install.trial_max_starts, reason,
                                  sizeof(reason))) {
        molt_log_warn("installer.trial_failed", "task=%s version=%s starts=%lld reason=\"%s\"",
                      j.task_id, j.to_version, (long long)j.starts, reason);
        if (tail && tail->count && strcmp(tail->version, j.to_version) == 0) {
            snprintf(header, sizeof(header), "trial of %s for task %s: rolled back: %s",
                     j.to_version, j.task_id, reason);
            write_trial_log(in, tail, header);
        }
        if ((rc = inst_rollback_trial(in, &j, reason, err)) < 0)
            return rc;
    } else if (j.state == MOLT_JOURNAL_TRIAL) {
        if ((rc = molt_journal_count_start(&j, inst_now_ms(), err)) < 0 ||
            (rc = inst_journal_save(in, &j, err)) < 0)
            return rc;
        MOLT_FAULT_POINT("launch.after_count_start");
    } else if ((rc = watch_locked(in, &j, tail, clean_restart, err)) < 0) {
        return rc;
    }
    if ((rc = inst_read_link(in, "current", plan->version, err)) < 0)
        return rc;
    if (!plan->version[0])
        return molt_err_set(err, MOLT_E_STATE, "nothing installed under %s", in->root);
    if ((rc = inst_check_version(in, plan->version, err)) < 0 ||
        (rc = inst_version_path(in, plan->version, "bin/molt-agent", plan->agent,
                                sizeof(plan->agent), err)) < 0)
        return rc;
    plan->trial = j.state == MOLT_JOURNAL_TRIAL && strcmp(j.to_version, plan->version) == 0;
    snprintf(plan->task_id, sizeof(plan->task_id), "%s", plan->trial ? j.task_id : "");
    plan->deadline_ms = plan->trial ? j.trial_deadline_ms : 0;
    plan->start_no = plan->trial ? j.starts : 0;
    return 0;
}

/* clean_restart: the supervisor restarts an agent that exited 0 or 75. */
static int prepare_start(struct inst *in, struct start_plan *plan, struct tail *tail,
                         int clean_restart, struct molt_err *err)
{
    int rc;

    memset(plan, 0, sizeof(*plan));
    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = prepare_locked(in, plan, tail, clean_restart, err);
    inst_unlock(in);
    if (rc == 0 && plan->trial)
        molt_log_info("installer.trial_start", "task=%s version=%s start=%lld of %lld",
                      plan->task_id, plan->version, (long long)plan->start_no,
                      (long long)in->conf.install.trial_max_starts);
    return rc;
}

/* Is the journal's trial the one plan started? */
static int is_plan_trial(const struct molt_journal *j, const struct start_plan *plan)
{
    return j->state == MOLT_JOURNAL_TRIAL && strcmp(j->task_id, plan->task_id) == 0 &&
           strcmp(j->to_version, plan->version) == 0;
}

/* The trial log's header for an exit of plan's agent: its start while the
 * trial is on, or the reason when the trial ended rolled back while it ran
 * (its health check failed, or the watchdog's deadline); 0 when committed. */
static int trial_log_header(const struct inst *in, const struct start_plan *plan, char *header,
                            size_t n)
{
    struct molt_err err = MOLT_ERR_INIT;
    const struct molt_journal_outcome *o;
    struct molt_journal j;

    if (molt_journal_load(in->journal_path, &j, &err) < 0 || is_plan_trial(&j, plan)) {
        snprintf(header, n, "trial of %s for task %s: start %lld", plan->version, plan->task_id,
                 (long long)plan->start_no);
        return 1;
    }
    o = molt_journal_find_outcome(&j, plan->task_id);
    if (!o || o->result != MOLT_JOURNAL_RESULT_ROLLED_BACK || strcmp(o->to_version, plan->version))
        return 0;
    snprintf(header, n, "trial of %s for task %s: rolled back: %s", plan->version, plan->task_id,
             o->reason);
    return 1;
}

/* Reads the journal without the lock: is this trial still undecided? */
static int still_on_trial(const struct inst *in, const struct start_plan *plan)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    if (molt_journal_load(in->journal_path, &j, &err) < 0)
        return 1; /* unreadable: let the next start decide under the lock */
    return is_plan_trial(&j, plan);
}

/* Under the lock: if the trial of plan is still on, end it now. */
static int end_trial(struct inst *in, const struct start_plan *plan, const char *why,
                     struct molt_err *err)
{
    char reason[MOLT_JOURNAL_REASON_MAX];
    struct molt_journal j;
    int rc;

    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = inst_journal_open(in, &j, err);
    if (rc == 0 && is_plan_trial(&j, plan)) {
        if (why)
            snprintf(reason, sizeof(reason), "%s", why);
        else if (!molt_journal_trial_failed(&j, inst_now_ms(), in->conf.install.trial_max_starts,
                                            reason, sizeof(reason)))
            snprintf(reason, sizeof(reason), "%s did not commit in time", plan->version);
        rc = inst_rollback_trial(in, &j, reason, err);
    }
    inst_unlock(in);
    return rc;
}

static void set_agent_env(const struct inst *in)
{
    /* The agent loads the same configuration, including our overrides. */
    setenv("MOLT_INSTALL_ROOT", in->root, 1);
    setenv("MOLT_AGENT_STATE_DIR", in->state_dir, 1);
    if (in->config_path)
        setenv("MOLT_CONFIG", in->config_path, 1);
    /* libcurl's LDAP support maps GnuTLS (Debian's libldap links it), whose
     * constructor initialises it in every process: p11-kit, its priorities,
     * about 0.7 MiB RSS (bench/README.md). The agent and its workers speak
     * only HTTP(S), through OpenSSL, and GnuTLS still initialises if asked
     * (gnutls_global_init): they go without the implicit one. An operator's
     * own setting stays. */
    setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
}

static void exec_agent(const struct start_plan *plan)
{
    char name[] = "molt-agent", run[] = "run";
    char *argv[] = {name, run, NULL};

    execv(plan->agent, argv);
}

/* ---- exec mode: the watchdog ---- */

static void watchdog_expire(struct inst *in, const struct start_plan *plan, pid_t agent)
{
    struct molt_err err = MOLT_ERR_INIT;
    sigset_t set;

    /* A stop of the service now must not cut the rollback short (it would be
     * finished on the next start anyway). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_PDEATHSIG, 0);
    if (!still_on_trial(in, plan))
        return;
    molt_log_warn("installer.trial_deadline",
                  "task=%s version=%s action=\"roll back, stop the agent\"", plan->task_id,
                  plan->version);
    if (end_trial(in, plan, NULL, &err) < 0)
        molt_log_error("installer.rollback_failed", "task=%s error=\"%s\"", plan->task_id, err.msg);
    /* Rolled back first: the new agent can no longer commit. Now stop it so
     * the service manager starts the old version. */
    kill(agent, SIGKILL);
    MOLT_FAULT_POINT("launch.after_deadline_kill");
}

static void watchdog_run(struct inst *in, const struct start_plan *plan, pid_t agent)
{
    int64_t last_check = 0;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        close(fd);
    }
    while (getppid() == agent) {
        int64_t now = inst_now_ms();
        if (now >= plan->deadline_ms) {
            watchdog_expire(in, plan, agent);
            return;
        }
        /* Committed (or ended otherwise): nothing left to watch. */
        if (now - last_check >= 1000) {
            if (!still_on_trial(in, plan))
                return;
            last_check = now;
        }
        usleep(TICK_MS * 1000);
    }
}

/* A child of the process that is about to become the agent: it outlives the
 * exec and enforces the trial deadline with the known-good code. */
static pid_t spawn_watchdog(struct inst *in, const struct start_plan *plan)
{
    pid_t agent = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        molt_log_warn("installer.watchdog",
                      "error=\"fork: %s\" action=\"deadline checked at the next "
                      "start\"",
                      strerror(errno));
        return -1;
    }
    if (pid > 0)
        return pid;
    /* Dies with the agent: the next start brings its own watchdog. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != agent)
        _exit(0);
    watchdog_run(in, plan, agent);
    _exit(0);
}

static int launch_exec(struct inst *in, struct molt_err *err)
{
    struct start_plan plan;
    int rc;

    set_agent_env(in);
    for (int attempt = 0; attempt < 3; attempt++) {
        char why[MOLT_JOURNAL_REASON_MAX];
        pid_t watchdog;
        int e;

        if ((rc = prepare_start(in, &plan, NULL, 0, err)) < 0)
            return rc;
        watchdog = plan.trial ? spawn_watchdog(in, &plan) : -1;
        MOLT_FAULT_POINT("launch.before_exec");
        molt_log_info("installer.exec", "version=%s agent=%s", plan.version, plan.agent);
        exec_agent(&plan);
        e = errno;
        if (watchdog > 0) {
            kill(watchdog, SIGKILL);
            waitpid(watchdog, NULL, 0);
        }
        errno = e;
        rc = molt_err_errno(err, "exec %s", plan.agent);
        if (!plan.trial)
            return rc;
        snprintf(why, sizeof(why), "%s: cannot execute bin/molt-agent: %s", plan.version,
                 strerror(e));
        molt_log_error("installer.trial_failed", "task=%s reason=\"%s\"", plan.task_id, why);
        if ((rc = end_trial(in, &plan, why, err)) < 0)
            return rc;
    }
    return molt_err_set(err, MOLT_E_STATE, "no version could be started");
}

/* ---- supervise mode ---- */

struct child {
    pid_t pid;
    int out_fd; /* read end of the agent's stderr, -1 once closed */
    int status;
    int exited;
    int64_t started_ms;
    int64_t term_ms; /* when SIGTERM was sent, 0 if not */
    int64_t link_checked_ms;
    int restart_now; /* current moved under it (manual rollback) */
};

static int hold_launch_lock(const struct inst *in, int *fd, struct molt_err *err)
{
    char path[PATH_MAX];
    int rc;

    if ((rc = molt_fs_mkdir_p(in->state_dir, 0750, err)) < 0 ||
        (rc = molt_fs_join(path, sizeof(path), in->state_dir, "launch.lock", err)) < 0)
        return rc;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0)
        return molt_err_errno(err, "open %s", path);
    if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK
                 ? molt_err_set(err, MOLT_E_BUSY, "another launch --supervise runs for %s",
                                in->state_dir)
                 : molt_err_errno(err, "lock %s", path);
        close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

static int spawn_child(const struct start_plan *plan, struct child *c, struct molt_err *err)
{
    pid_t parent = getpid();
    int fds[2];

    memset(c, 0, sizeof(*c));
    c->out_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return molt_err_errno(err, "pipe");
    c->pid = fork();
    if (c->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return molt_err_errno(err, "fork");
    }
    if (c->pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        /* The agent must not outlive its supervisor. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        dup2(fds[1], 2);
        exec_agent(plan);
        fprintf(stderr, "molt-installer: exec %s: %s\n", plan->agent, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    c->out_fd = fds[0];
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    c->started_ms = inst_now_ms();
    return 0;
}

static void pump_output(struct child *c, struct tail *tail)
{
    char buf[4096];

    while (c->out_fd >= 0) {
        ssize_t n = read(c->out_fd, buf, sizeof(buf));
        if (n > 0) {
            /* Our stderr is the agent's log as well: pass it through. */
            if (write(2, buf, (size_t)n) < 0) {
                /* nowhere to log it; the tail still keeps it */
            }
            tail_feed(tail, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            close(c->out_fd);
            c->out_fd = -1;
        }
        return;
    }
}

static void send_term(struct child *c, int sig)
{
    if (c->exited || c->term_ms)
        return;
    kill(c->pid, sig);
    c->term_ms = inst_now_ms();
}

/* Drains the signalfd; returns 1 when asked to stop. */
static int handle_signals(int sfd, struct child *c, int *stop)
{
    struct signalfd_siginfo si;

    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!*stop)
                molt_log_info("installer.stopping", "signal=%u", si.ssi_signo);
            *stop = 1;
            if (c)
                send_term(c, SIGTERM);
            break;
        case SIGHUP:
            if (c && !c->exited)
                kill(c->pid, SIGHUP);
            break;
        default:
            break; /* SIGCHLD: reaped below */
        }
    }
    if (c && !c->exited && waitpid(c->pid, &c->status, WNOHANG) == c->pid)
        c->exited = 1;
    return *stop;
}

static void watch_child(struct inst *in, struct start_plan *plan, struct child *c)
{
    char current[INST_VERSION_MAX];
    int64_t now = inst_now_ms();

    if (c->exited)
        return;
    if (c->term_ms && now - c->term_ms >= KILL_GRACE_MS) {
        molt_log_warn("installer.kill", "pid=%ld reason=\"no exit %d ms after SIGTERM\"",
                      (long)c->pid, KILL_GRACE_MS);
        kill(c->pid, SIGKILL);
        c->term_ms = now; /* SIGKILL again only after another grace period */
    }
    if (c->term_ms)
        return;
    if (plan->trial && now >= plan->deadline_ms) {
        if (still_on_trial(in, plan)) {
            molt_log_warn("installer.trial_deadline",
                          "task=%s version=%s action=\"stop the agent\"", plan->task_id,
                          plan->version);
            send_term(c, SIGTERM);
            MOLT_FAULT_POINT("launch.after_deadline_kill");
            return;
        }
        plan->trial = 0;
    }
    if (now - c->link_checked_ms >= LINK_CHECK_MS) {
        struct molt_err err = MOLT_ERR_INIT;
        c->link_checked_ms = now;
        if (inst_read_link(in, "current", current, &err) == 0 &&
            strcmp(current, plan->version) != 0) {
            molt_log_warn("installer.current_changed", "running=%s current=%s action=restart",
                          plan->version, current[0] ? current : "-");
            c->restart_now = 1;
            send_term(c, SIGTERM);
        }
    }
}

static void describe_exit(const struct child *c, char *buf, size_t n)
{
    if (WIFEXITED(c->status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(c->status));
    else if (WIFSIGNALED(c->status))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(c->status));
    else
        snprintf(buf, n, "ended (status 0x%x)", c->status);
}

/* Runs one start of the agent to its end. */
static void run_child(struct inst *in, struct start_plan *plan, struct child *c, int sfd,
                      struct tail *tail, int *stop)
{
    while (!c->exited) {
        struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {c->out_fd, POLLIN, 0}};
        int n = poll(pfd, c->out_fd >= 0 ? 2 : 1, TICK_MS);

        if (n < 0 && errno != EINTR)
            break;
        pump_output(c, tail);
        handle_signals(sfd, c, stop);
        watch_child(in, plan, c);
    }
    /* Whatever is still buffered; a grandchild holding the pipe open must not
     * keep us here. */
    pump_output(c, tail);
    if (c->out_fd >= 0) {
        close(c->out_fd);
        c->out_fd = -1;
    }
}

static void after_exit(struct inst *in, const struct start_plan *plan, const struct child *c,
                       struct tail *tail)
{
    char how[64], header[MOLT_JOURNAL_REASON_MAX + 128];
    int64_t ran = inst_now_ms() - c->started_ms;

    describe_exit(c, how, sizeof(how));
    molt_log_info("installer.agent_exit", "version=%s pid=%ld %s ran_ms=%lld", plan->version,
                  (long)c->pid, how, (long long)ran);
    tail_note(tail, "--- molt-installer: %s pid %ld %s after %lld ms ---", plan->version,
              (long)c->pid, how, (long long)ran);
    if (plan->trial && trial_log_header(in, plan, header, sizeof(header)))
        write_trial_log(in, tail, header);
}

/* Sleeps delay_ms, or less when asked to stop. */
static void wait_delay(int sfd, int64_t delay_ms, int *stop)
{
    int64_t until = inst_now_ms() + delay_ms;

    while (!*stop) {
        int64_t left = until - inst_now_ms();
        struct pollfd pfd = {sfd, POLLIN, 0};
        if (left <= 0)
            break;
        poll(&pfd, 1, (int)(left < TICK_MS ? left : TICK_MS));
        handle_signals(sfd, NULL, stop);
    }
}

static int64_t next_delay(const struct child *c, int64_t *backoff)
{
    int64_t delay;

    if (c->restart_now || (WIFEXITED(c->status) && WEXITSTATUS(c->status) == EXIT_RESTART))
        return 0;
    if (inst_now_ms() - c->started_ms >= BACKOFF_RESET_MS)
        *backoff = BACKOFF_MIN_MS;
    delay = *backoff;
    *backoff = *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
    return delay;
}

static int supervise_loop(struct inst *in, int sfd, struct tail *tail, struct molt_err *err)
{
    int64_t backoff = BACKOFF_MIN_MS;
    struct start_plan plan;
    struct child c;
    int stop = 0, clean = 0;
    int rc = 0;

    while (!stop) {
        if ((rc = prepare_start(in, &plan, tail, clean, err)) < 0)
            break;
        if (strcmp(tail->version, plan.version) != 0)
            tail_reset(tail, plan.version);
        if ((rc = spawn_child(&plan, &c, err)) < 0)
            break;
        molt_log_info("installer.agent_start", "version=%s pid=%ld%s", plan.version, (long)c.pid,
                      plan.trial ? " trial=1" : "");
        run_child(in, &plan, &c, sfd, tail, &stop);
        after_exit(in, &plan, &c, tail);
        clean = WIFEXITED(c.status) &&
                (WEXITSTATUS(c.status) == 0 || WEXITSTATUS(c.status) == EXIT_RESTART);
        if (!stop)
            wait_delay(sfd, next_delay(&c, &backoff), &stop);
    }
    return rc;
}

static int launch_supervise(struct inst *in, struct molt_err *err)
{
    struct tail *tail = calloc(1, sizeof(*tail));
    int lock_fd = -1, sfd = -1;
    sigset_t set;
    int rc;

    if (!tail)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if ((rc = hold_launch_lock(in, &lock_fd, err)) < 0)
        goto out;
    set_agent_env(in);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        rc = molt_err_errno(err, "signalfd");
        goto out;
    }
    molt_log_info("installer.supervise", "root=%s state_dir=%s", in->root, in->state_dir);
    rc = supervise_loop(in, sfd, tail, err);
    if (rc == 0)
        molt_log_info("installer.stopped", "root=%s", in->root);
out:
    if (sfd >= 0)
        close(sfd);
    if (lock_fd >= 0)
        close(lock_fd);
    free(tail);
    return rc;
}

int inst_launch(struct inst *in, int supervise, struct molt_err *err)
{
    int rc = molt_conf_check_writable(&in->conf, err);

    if (rc == 0)
        rc = supervise ? launch_supervise(in, err) : launch_exec(in, err);
    if (rc < 0)
        molt_err_prefix(err, "launch");
    return rc;
}
