/* health.c: runs [install] health_command for the trial (docs/upgrades.md,
 * section 5). The command runs directly (no shell: nothing in it is expanded),
 * as the agent's own user, in its own process group so that a hung check and
 * whatever it started are killed together at health_timeout. Its output goes
 * to the agent's log, which launch keeps in the trial log. */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "host.h"
#include "log.h"
#include "text.h"

#define OUT_MAX 4096
#define LINE_MAX_SHOWN 200

struct check {
    char out[OUT_MAX];
    size_t used;
    int status;          /* waitpid status */
    int timed_out;
    char exec_error[128];
};

/* Keeps the tail of the output: its last line says what went wrong. */
static void keep(struct check *c, const char *buf, size_t len)
{
    if (len >= OUT_MAX - 1) {
        buf += len - (OUT_MAX / 2);
        len = OUT_MAX / 2;
    }
    if (c->used + len > OUT_MAX - 1) {
        size_t drop = c->used + len - (OUT_MAX - 1);
        memmove(c->out, c->out + drop, c->used - drop);
        c->used -= drop;
    }
    memcpy(c->out + c->used, buf, len);
    c->used += len;
    c->out[c->used] = '\0';
}

/* The last non-empty line, at most LINE_MAX_SHOWN bytes, control characters
 * (and the quote and backslash our log format uses) shown as '?'. */
static void last_line(const char *out, char *line, size_t n)
{
    size_t end = strlen(out), start;

    while (end > 0 && (out[end - 1] == '\n' || out[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && out[start - 1] != '\n')
        start--;
    if (end - start > LINE_MAX_SHOWN)
        end = start + LINE_MAX_SHOWN;
    molt_text_show(line, n, out + start, end - start, MOLT_TEXT_QUOTES);
}

static void child(char **argv, int outfd)
{
    setpgid(0, 0);
    dup2(outfd, STDOUT_FILENO);
    dup2(outfd, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    dprintf(STDERR_FILENO, "cannot exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Reads the child's output until it closes or the deadline passes. */
static void collect(struct check *c, int fd, int64_t deadline)
{
    char buf[1024];

    for (;;) {
        int64_t left = deadline - molt_host_monotonic_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0) {
            c->timed_out = 1;
            return;
        }
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return;
        keep(c, buf, (size_t)got);
    }
}

/* The check ends when its output closes (or at the timeout): a command that
 * leaves something running with its stdout open runs until the timeout. */
static void run_once(char **argv, int64_t timeout_ms, struct check *c)
{
    siginfo_t info;
    int pipefd[2];
    pid_t pid;

    memset(c, 0, sizeof(*c));
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(c->exec_error, sizeof(c->exec_error), "pipe: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(c->exec_error, sizeof(c->exec_error), "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return;
    }
    if (pid == 0)
        child(argv, pipefd[1]);
    setpgid(pid, pid);  /* also here: no race with the kill below */
    close(pipefd[1]);
    collect(c, pipefd[0], molt_host_monotonic_ms() + timeout_ms);
    close(pipefd[0]);
    if (c->timed_out)
        kill(-pid, SIGKILL);
    /* Wait without reaping: while the leader is a zombie its group id cannot be
     * reused, so the kill below reaches only what the check left running. */
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL);
    while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR)
        ;
}

static void log_output(int i, int total, const struct check *c)
{
    const char *p = c->out;

    while (*p) {
        char line[LINE_MAX_SHOWN + 1];
        size_t len = strcspn(p, "\n");
        char one[LINE_MAX_SHOWN + 1];
        snprintf(one, sizeof(one), "%.*s", (int)(len > LINE_MAX_SHOWN ? LINE_MAX_SHOWN : len), p);
        last_line(one, line, sizeof(line));
        if (line[0])
            molt_log_info("upgrade.health_output", "check=%d/%d line=\"%s\"", i, total, line);
        p += len;
        if (*p)
            p++;
    }
}

static int judge(const struct check *c, int i, int total, int64_t timeout_ms, char *reason,
                 size_t n)
{
    char line[LINE_MAX_SHOWN + 1], how[48];

    if (c->exec_error[0]) {
        snprintf(reason, n, "health check %d/%d could not run: %s", i, total, c->exec_error);
        return -1;
    }
    if (!c->timed_out && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
        return 0;
    if (c->timed_out)
        snprintf(how, sizeof(how), "timed out after %lldms, killed", (long long)timeout_ms);
    else if (WIFEXITED(c->status))
        snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(c->status));
    else
        snprintf(how, sizeof(how), "signal %d", WTERMSIG(c->status));
    last_line(c->out, line, sizeof(line));
    snprintf(reason, n, "health check %d/%d failed (%s)%s%s", i, total, how, line[0] ? ": " : "",
             line);
    return -1;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int molt_health_run(const struct molt_config *conf, molt_health_progress_fn fn, void *arg,
                    char *reason, size_t n)
{
    char buf[MOLT_CONF_STR], *argv[64];
    struct molt_err err = MOLT_ERR_INIT;
    int total = (int)conf->install.health_checks;
    struct check c;

    if (!conf->install.health_command[0])
        return 0;
    if (molt_conf_split_command(conf->install.health_command, buf, sizeof(buf), argv, 64,
                                &err) < 0) {
        snprintf(reason, n, "health check: %s", err.msg);
        return -1;
    }
    if (fn)
        fn(arg, 0, total);
    for (int i = 1; i <= total; i++) {
        if (i > 1)
            sleep_ms(conf->install.health_interval_ms);
        molt_log_info("upgrade.health_check", "check=%d/%d command=\"%.128s\"", i, total, argv[0]);
        MOLT_FAULT_POINT("trial.health_check");
        run_once(argv, conf->install.health_timeout_ms, &c);
        log_output(i, total, &c);
        if (judge(&c, i, total, conf->install.health_timeout_ms, reason, n) < 0) {
            molt_log_error("upgrade.health_failed", "reason=\"%s\"", reason);
            return -1;
        }
        molt_log_info("upgrade.health_passed", "check=%d/%d", i, total);
        if (fn)
            fn(arg, i, total);
    }
    return 0;
}
