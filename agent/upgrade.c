/* upgrade.c: the upgrade pipeline. One task at a time runs in a worker thread
 * through the stages of docs/protocol.md section 4: accepted, preflight,
 * downloading, verifying, staging, switching, restarting; then, in the new
 * version's agent, health-check and committed. Every stage boundary is
 * persisted in <state_dir>/upgrade.json, so an agent restart at any stage
 * resumes the task instead of starting a second download or a second switch.
 * molt-installer owns the switch itself; this file only asks it to apply,
 * commit and gc, and reads its journal to learn how a trial ended. */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "delta.h"
#include "download.h"
#include "fault.h"
#include "fs.h"
#include "health.h"
#include "host.h"
#include "http.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "package.h"
#include "resume.h"
#include "upgrade_state.h"
#include "watch.h"
#include "version.h"
#include "window.h"

#define PROGRESS_PERIOD_MS 1000

_Static_assert(MOLT_SOURCE_NAME_MAX == MOLT_HTTP_URL_NAME_MAX, "servedBy holds a URL's name");
#define FREE_MARGIN (16ULL * 1024 * 1024)
#define WINDOW_POLL_MS 500 /* how soon a wait sees a cancel, --now or a reload */

enum abort_reason { ABORT_NONE, ABORT_CANCEL, ABORT_SHUTDOWN, ABORT_EXPIRED };

struct upgrade {
    pthread_mutex_t mu;                 /* start, submit and cancel come from two threads */
    pthread_mutex_t final_mu;           /* guards last_final (written by the worker) */
    struct molt_report last_final;      /* the last task's final report (local API) */
    int has_last_final;
    struct molt_http *http;             /* the worker's own client (curl handles are per thread) */
    pthread_t thread;
    int thread_started;
    struct molt_upgrade_state task;     /* what upgrade.json holds */
    volatile sig_atomic_t abort;
    volatile sig_atomic_t abort_reason;
    volatile sig_atomic_t switch_now;   /* the operator's upgrade --now: skip the window */
    struct molt_pkg_hasher hasher;
    int hash_failed;
    struct molt_err hash_err;
    int64_t last_progress_mono;
    uint64_t dl_limit;  /* bytes the transfer under way may bring: the package's or the delta's */
    int delta_active;   /* the delta is downloading: servedBy names it */
    struct molt_agent *agent;
    struct molt_watch *watch;           /* health checks during the watch after a commit */
};

static struct upgrade *upgrade_of(struct molt_agent *a)
{
    return a->upgrade;
}

/* ---- reports -------------------------------------------------------------- */

/* Sends a progress report at once, so the server sees every stage and not only
 * the one a heartbeat happens to carry. Best effort: the next heartbeat
 * carries the latest report anyway. */
static void post_progress(struct molt_agent *a, struct molt_http *http, const struct molt_report *r)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_reply rep = { 0 };
    struct json_object *body = molt_report_to_json(r);
    char token[MOLT_TOKEN_MAX + 1];
    const char *text = molt_json_dump(body);
    struct molt_http_req req = {
        .method = "POST", .url = "/api/v1/collector/reports", .body = text,
        .body_len = strlen(text), .bearer = token, .timeout_ms = 5000,
        .max_reply = MOLT_REPORT_REPLY_MAX,
    };

    if (molt_agent_token(a, token, sizeof(token), &err) == 0 &&
        molt_http_request(http, &req, &rep, &err) < 0)
        molt_log_debug("upgrade.progress", "task=%s stage=%s error=\"%s\"", r->task_id, r->stage,
                       err.msg);
    explicit_bzero(token, sizeof(token));
    molt_http_reply_free(&rep);
    json_object_put(body);
}

/* A source's name for logs and reports: its URL resolved against server.url
 * (the origin may be a path), less query and fragment (molt_http_url_name). */
static void source_name(const struct molt_config *conf, const char *ref, char *out, size_t n)
{
    char url[MOLT_BUILD_URL_MAX + MOLT_CONF_STR];
    struct molt_err err = MOLT_ERR_INIT;

    molt_http_url_name(molt_http_resolve(conf, ref, url, sizeof(url), &err) == 0 ? url : ref,
                           out, n);
}

/* servedBy: the source in use from the download on (while downloading, the
 * one being tried; afterwards, the one that served). Local tasks have none. */
static void fill_source(struct molt_agent *a, const struct molt_upgrade_state *t, int stage,
                        struct molt_report *r)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    struct molt_config conf;
    int n;

    if (t->local || t->local_package[0] || stage < MOLT_STAGE_DOWNLOADING)
        return;
    n = molt_build_sources(&t->build, src);
    if (t->source < 0 || t->source >= n)
        return;
    molt_agent_config(a, &conf);
    source_name(&conf, src[t->source], r->served_by, sizeof(r->served_by));
}

/* http: the calling thread's client (the worker's, or the agent's on the main
 * thread); message: NULL for none. */
static void report_stage_via(struct upgrade *u, struct molt_http *http, int stage, int64_t done,
                             int64_t total, const char *message)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    molt_report_init(&r, u->task.task_id, u->task.build.version, MOLT_TASK_PROGRESSING, stage);
    r.local = u->task.local;
    r.bytes_done = done;
    r.bytes_total = total;
    if (message)
        snprintf(r.message, sizeof(r.message), "%s", message);
    fill_source(u->agent, &u->task, stage, &r);
    if (u->delta_active) {
        struct molt_config conf;
        molt_agent_config(u->agent, &conf);
        source_name(&conf, u->task.build.delta.url, r.served_by, sizeof(r.served_by));
    }
    if (molt_task_update(&u->agent->tasks, &r, &err) < 0 && molt_task_begin(&u->agent->tasks, &r, &err) < 0)
        molt_log_error("upgrade.report", "task=%s error=\"%s\"", u->task.task_id, err.msg);
    if (http && !u->task.local)   /* the server does not know local tasks */
        post_progress(u->agent, http, &r);
}

static void report_stage(struct upgrade *u, int stage, int64_t done, int64_t total)
{
    report_stage_via(u, u->http, stage, done, total, NULL);
}

/* From the main thread, which owns the agent's client. */
static void report_stage_main(struct upgrade *u, int stage)
{
    report_stage_via(u, u->agent->http, stage, 0, 0, NULL);
}

static void finish(struct molt_agent *a, const struct molt_upgrade_state *t, int status, int stage,
                   const char *message)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    molt_report_init(&r, t->task_id, t->build.version, status, stage);
    r.local = t->local;
    snprintf(r.message, sizeof(r.message), "%s", message);
    if (status == MOLT_TASK_SUCCEEDED || stage > MOLT_STAGE_DOWNLOADING)
        fill_source(a, t, stage, &r);
    if (a->upgrade) {
        struct upgrade *u = a->upgrade;
        pthread_mutex_lock(&u->final_mu);
        u->last_final = r;
        u->has_last_final = 1;
        pthread_mutex_unlock(&u->final_mu);
    }
    if (molt_task_finish(&a->tasks, &r, &err) < 0)
        molt_log_error("upgrade.final", "task=%s error=\"%s\"", t->task_id, err.msg);
}

/* ---- molt-installer --------------------------------------------------------- */

/* Runs <root>/bin/molt-installer with args; on failure msg gets its last stderr line. */
static int run_installer(struct molt_agent *a, const struct molt_config *conf, const char **args,
                         char *msg, size_t n)
{
    char path[PATH_MAX];
    const char *argv[16];
    char out[4096];
    size_t used = 0, argc = 0;
    int pipefd[2];
    pid_t pid;
    int status;

    snprintf(path, sizeof(path), "%s/bin/molt-installer", conf->install.root);
    argv[argc++] = path;
    argv[argc++] = *args++;     /* the command, then its options */
    if (a->config_path[0]) {
        argv[argc++] = "--config";
        argv[argc++] = a->config_path;
    }
    argv[argc++] = "--root";
    argv[argc++] = conf->install.root;
    argv[argc++] = "--state-dir";
    argv[argc++] = a->state_dir;
    while (*args && argc < sizeof(argv) / sizeof(argv[0]) - 1)
        argv[argc++] = *args++;
    argv[argc] = NULL;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(msg, n, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(msg, n, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        /* execv's prototype predates const; it does not modify the strings. */
        union { const char **c; char *const *v; } av = { argv };
        dup2(pipefd[1], STDERR_FILENO);
        execv(path, av.v);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t r = read(pipefd[0], out + used, sizeof(out) - 1 - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
        if (used == sizeof(out) - 1) {
            /* Keep the tail: the last line says what went wrong. */
            memmove(out, out + 2048, used - 2048);
            used -= 2048;
        }
    }
    close(pipefd[0]);
    out[used] = '\0';
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    while (used > 0 && (out[used - 1] == '\n' || out[used - 1] == '\r'))
        out[--used] = '\0';
    /* The installer's own error line says what went wrong; hints follow it. */
    const char *last = NULL;
    for (const char *p = out; (p = strstr(p, "molt-installer: ")) != NULL; p++) {
        if (p == out || p[-1] == '\n')
            last = p + 16;
    }
    if (last) {
        size_t len = strcspn(last, "\n");
        out[last - out + len] = '\0';
    } else {
        last = strrchr(out, '\n');
        last = last ? last + 1 : out;
    }
    if (*last)
        snprintf(msg, n, "%s", last);
    else
        snprintf(msg, n, "molt-installer exited with status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return -1;
}

/* The watch's health check failed after the commit: the installer's entry
 * point a failed trial's check uses ends that task's watch. */
static int rollback_watch(struct molt_agent *a, const char *task_id, const char *reason,
                          char *msg, size_t n)
{
    const char *args[] = { "rollback", "--task", task_id, "--reason", reason, NULL };
    struct molt_config conf;

    molt_agent_config(a, &conf);
    return run_installer(a, &conf, args, msg, n);
}

/* Removes versions beyond current and previous, and the upgrade directory's leftovers. */
static void collect_garbage(struct molt_agent *a)
{
    struct molt_config conf;
    const char *args[] = { "gc", NULL };
    char msg[256];

    molt_agent_config(a, &conf);
    if (run_installer(a, &conf, args, msg, sizeof(msg)) < 0)
        molt_log_warn("upgrade.gc", "error=\"%s\"", msg);
}

/* ---- the worker's stages ---------------------------------------------------- */

/* 0 while the task may go on; else why not (cancel, deadline, shutdown). */
static int aborted(struct upgrade *u, struct molt_err *err)
{
    if (!u->abort && molt_host_realtime_ms() < u->task.expires_at)
        return 0;
    if (!u->abort) {
        u->abort_reason = ABORT_EXPIRED;
        u->abort = 1;
    }
    switch (u->abort_reason) {
    case ABORT_CANCEL:
        return molt_err_set(err, MOLT_E_CANCELLED, "cancelled");
    case ABORT_EXPIRED:
        return molt_err_set(err, MOLT_E_TIMEOUT, "task expired (not finished 30 minutes "
                            "after it was requested)");
    default:
        return molt_err_set(err, MOLT_E_CANCELLED, "agent stopping");
    }
}

static int enter(struct upgrade *u, int stage, struct molt_err *err)
{
    int rc = aborted(u, err);

    if (rc < 0)
        return rc;
    snprintf(u->task.stage, sizeof(u->task.stage), "%s", molt_stage_name(stage));
    rc = molt_upgrade_state_save(u->agent->state_dir, &u->task, err);
    if (rc < 0)
        return rc;
    report_stage(u, stage, 0, stage == MOLT_STAGE_DOWNLOADING ? u->task.build.size : 0);
    return 0;
}

/* Signatures, the statement for this host, the release channel (trust.h). */
static int authenticate(struct upgrade *u, struct molt_statement *st, struct molt_err *err)
{
    return molt_trust_authenticate(&u->agent->trust, &u->task.build, u->task.build.version,
                                   molt_host_realtime_ms(), u->agent->machine_id, u->task.local,
                                   st, err);
}

/* Size of one file (not following links); 0 when missing. */
static uint64_t file_size(const char *path)
{
    struct stat s;

    if (lstat(path, &s) < 0)
        return 0;
    return (uint64_t)s.st_size;
}

static uint64_t version_dir_size(const struct molt_config *conf)
{
    char dir[PATH_MAX], bin[PATH_MAX];

    /* The binaries dominate a version; the running one is a fair estimate of
     * what the next one unpacks to. */
    snprintf(dir, sizeof(dir), "%s/current/bin", conf->install.root);
    snprintf(bin, sizeof(bin), "%s/molt-agent", dir);
    uint64_t total = file_size(bin);
    snprintf(bin, sizeof(bin), "%s/molt-installer", dir);
    return total + file_size(bin);
}

/* Before any bandwidth is spent: the build staged in the task directory must be
 * renameable into <root>/versions, on the mounts this process really has. */
static int check_rename_into_root(const struct upgrade *u, const struct molt_config *conf,
                                  struct molt_err *err)
{
    char versions[PATH_MAX];
    int rc = molt_fs_join(versions, sizeof(versions), conf->install.root, "versions", err);

    if (rc == 0 && molt_fs_probe_rename(u->task.task_dir, versions, err) < 0)
        rc = molt_conf_explain_upgrade_dir(conf, err);
    return rc;
}

/* ---- the switch window ([install] switch_window) ---------------------------- */

/* 0: the switch may happen now; 1: not before *open_at; MOLT_E_TIMEOUT when
 * the next window opens after the task's deadline, so that the task fails at
 * once with the reason rather than timing out in the wait. */
static int window_closed(struct upgrade *u, const struct molt_config *conf, time_t *open_at,
                         struct molt_err *err)
{
    struct molt_window_set set;
    char when[48], deadline[48];

    if (u->switch_now)
        return 0;
    if (molt_window_parse(conf->install.switch_window, &set, err) < 0)
        return molt_err_prefix(err, "install.switch_window");
    if (molt_window_next_open(&set, time(NULL), open_at))
        return 0;
    if ((int64_t)*open_at * 1000 < u->task.expires_at)
        return 1;
    molt_window_format(*open_at, when, sizeof(when));
    molt_window_format((time_t)(u->task.expires_at / 1000), deadline, sizeof(deadline));
    return molt_err_set(err, MOLT_E_TIMEOUT, "the next switch window opens %s, after the task's "
                        "deadline %s (install.switch_window = %s)", when, deadline,
                        conf->install.switch_window);
}

/* Waits, in the reported stage waiting, until a window opens (the operator's
 * --now, a cancel, the deadline or a stop end it sooner). Reads the
 * configuration on every round, so a reload that changes the window counts. */
static int wait_for_window(struct upgrade *u, struct molt_err *err)
{
    struct molt_config conf;
    struct timespec nap = { 0, WINDOW_POLL_MS * 1000000L };
    time_t open_at = 0, reported = 0;
    char when[48], msg[128];
    int rc;

    molt_agent_config(u->agent, &conf);
    while ((rc = window_closed(u, &conf, &open_at, err)) == 1) {
        if (open_at != reported) {
            if (reported == 0 && (rc = enter(u, MOLT_STAGE_WAITING, err)) < 0)
                return rc;
            molt_window_format(open_at, when, sizeof(when));
            snprintf(msg, sizeof(msg), "waiting for a switch window: the next opens %s", when);
            report_stage_via(u, u->http, MOLT_STAGE_WAITING, 0, 0, msg);
            molt_log_info("upgrade.waiting", "task=%s window=\"%s\" opens=\"%s\"",
                          u->task.task_id, conf.install.switch_window, when);
            reported = open_at;
        }
        nanosleep(&nap, NULL);
        if ((rc = aborted(u, err)) < 0)
            return rc;
        molt_agent_config(u->agent, &conf);
    }
    if (rc == 0 && reported)
        molt_log_info("upgrade.window", "task=%s result=%s", u->task.task_id,
                      u->switch_now ? "operator --now" : "open");
    return rc;
}

static int preflight(struct upgrade *u, const struct molt_config *conf, struct molt_statement *st,
                     struct molt_err *err)
{
    uint64_t avail = 0, need, have = 0;
    struct stat s;
    char pkg[PATH_MAX];
    int rc;

    /* Verify before anything else reads the statement or spends bandwidth. */
    rc = authenticate(u, st, err);
    if (rc < 0)
        return rc;
    /* Nor download what could not be switched to before the deadline. */
    time_t open_at;
    if ((rc = window_closed(u, conf, &open_at, err)) < 0)
        return rc;
    if (molt_fs_mkdir_p(u->task.task_dir, 0700, err) < 0)
        return err->code;
    if ((rc = check_rename_into_root(u, conf, err)) < 0)
        return rc;
    snprintf(pkg, sizeof(pkg), "%s/package", u->task.task_dir);
    if (stat(pkg, &s) == 0)
        have = (uint64_t)s.st_size;
    rc = molt_fs_free_bytes(u->task.task_dir, &avail, err);
    if (rc < 0)
        return rc;
    /* download + unpacked tree (at least the package size, usually what the
     * running version takes) + the kept previous version + a margin. */
    uint64_t unpacked = version_dir_size(conf);
    if (unpacked < st->size)
        unpacked = st->size;
    need = (st->size - (have < st->size ? have : st->size)) + unpacked + unpacked + FREE_MARGIN;
    if (MOLT_FAULT_INJECT("preflight.enospc"))
        avail = 0;
    if (avail < need)
        return molt_err_set(err, MOLT_E_NOSPC, "not enough free space in %s: %llu MiB needed, "
                            "%llu MiB free", conf->agent.upgrade_dir,
                            (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20));
    return 0;
}

static void dl_reset(void *ctx)
{
    struct upgrade *u = ctx;
    struct molt_err err = MOLT_ERR_INIT;

    molt_pkg_hasher_free(&u->hasher);
    u->hash_failed = molt_pkg_hasher_init(&u->hasher, u->dl_limit, &err) < 0;
}

static void dl_data(void *ctx, const void *buf, size_t len)
{
    struct upgrade *u = ctx;

    if (!u->hash_failed && molt_pkg_hasher_update(&u->hasher, buf, len, &u->hash_err) < 0)
        u->hash_failed = 1;
}

static void dl_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct upgrade *u = ctx;
    int64_t now = molt_host_monotonic_ms();

    if (molt_host_realtime_ms() >= u->task.expires_at && !u->abort) {
        u->abort_reason = ABORT_EXPIRED;
        u->abort = 1;
    }
    if (done < total && now - u->last_progress_mono < PROGRESS_PERIOD_MS)
        return;
    u->last_progress_mono = now;
    report_stage(u, MOLT_STAGE_DOWNLOADING, (int64_t)done, (int64_t)total);
}

/* Offline upgrades: the package is copied into the task directory the way a
 * download would write it, hashed as it streams, so staging works the same. */
static int copy_local(struct upgrade *u, const struct molt_statement *st,
                      struct molt_err *err)
{
    char dest[PATH_MAX], buf[65536];
    uint64_t done = 0;
    int in = -1, out = -1, rc = 0;

    snprintf(dest, sizeof(dest), "%s/package", u->task.task_dir);
    in = open(u->task.local_package, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return molt_err_errno(err, "open %s", u->task.local_package);
    out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        rc = molt_err_errno(err, "open %s", dest);
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = molt_err_errno(err, "read %s", u->task.local_package);
            goto out;
        }
        if (n == 0)
            break;
        if (done + (uint64_t)n > st->size) {
            rc = molt_err_set(err, MOLT_E_VERIFY, "package longer than the declared %llu bytes",
                              (unsigned long long)st->size);
            goto out;
        }
        if (molt_fs_write_all(out, buf, (size_t)n) < 0) {
            rc = molt_err_errno(err, "write %s", dest);
            goto out;
        }
        done += (uint64_t)n;
        dl_data(u, buf, (size_t)n);
        dl_progress(u, done, st->size);
        if (u->abort) {
            rc = aborted(u, err);
            goto out;
        }
    }
    if (fsync(out) < 0)
        rc = molt_err_errno(err, "fsync %s", dest);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* The host's agent.download_max_rate and the command's maxBytesPerSecond:
 * the lower wins, so a server can slow a download but never lift the host's
 * cap (0 on either side: no cap from that side). */
static int64_t download_rate(int64_t host_cap, int64_t asked)
{
    if (host_cap > 0 && (asked <= 0 || asked > host_cap))
        return host_cap;
    return asked > 0 ? asked : 0;
}

/* One file of the task from ref (resolved against the server URL) into dest,
 * hashed as it arrives (dl_data) and never longer than size, resuming what is
 * there (its bytes are hashed again as the fetch opens it); kind names it in
 * the log. attempts: connections tried before giving up. */
static int fetch_file(struct upgrade *u, const struct molt_config *conf, const char *ref,
                      const char *dest, uint64_t size, int attempts, const char *kind,
                      struct molt_err *err)
{
    char url[MOLT_BUILD_URL_MAX + MOLT_CONF_STR], token[MOLT_TOKEN_MAX + 1];
    char name[MOLT_SOURCE_NAME_MAX + 1], shown[MOLT_SOURCE_NAME_MAX + 1];
    struct molt_dl_stats stats = { 0 };
    struct molt_dl_opts o = {
        .conf = conf, .url = url, .dest = dest, .bearer = token, .size = size,
        .max_attempts = attempts, .backoff_base_ms = 500, .backoff_max_ms = 10000,
        .stop = &u->abort, .on_reset = dl_reset, .on_data = dl_data,
        .on_progress = dl_progress, .ctx = u,
    };
    int rc;

    u->dl_limit = size;
    dl_reset(u);
    if (u->hash_failed)
        return molt_err_set(err, u->hash_err.code ? u->hash_err.code : MOLT_E_NOMEM, "%s",
                            u->hash_err.msg);
    rc = molt_http_resolve(conf, ref, url, sizeof(url), err);
    if (rc == 0)
        rc = molt_http_url_check(conf, url, err);
    /* The one place the rule lives: the token is the collector's credential
     * with its server, and goes to nobody else (a mirror, a CDN, a build URL
     * on another host or port). */
    if (rc == 0 && molt_http_same_origin(conf->server.url, url))
        rc = molt_agent_token(u->agent, token, sizeof(token), err);
    else
        o.bearer = NULL;
    if (rc < 0)
        return rc;
    o.max_rate = download_rate(conf->agent.download_max_rate, u->task.max_rate);
    if (o.max_rate)
        molt_log_info("upgrade.rate", "task=%s max_bytes_per_second=%lld host_cap=%lld "
                      "command=%lld", u->task.task_id, (long long)o.max_rate,
                      (long long)conf->agent.download_max_rate, (long long)u->task.max_rate);
    rc = molt_dl_fetch(&o, &stats, err);
    explicit_bzero(token, sizeof(token));
    molt_http_url_name(url, name, sizeof(name));
    molt_http_sanitize(shown, sizeof(shown), name);
    molt_log_info("upgrade.download",
                  "task=%s build=%s auth=%s file=%s bytes=%llu attempts=%d restarts=%d rc=%d "
                  "source=\"%s\"", u->task.task_id, u->task.build.version,
                  o.bearer ? "token" : "none", kind, (unsigned long long)stats.transferred,
                  stats.attempts, stats.restarts, rc, shown);
    if (rc == 0 && u->hash_failed)
        rc = molt_err_set(err, u->hash_err.code ? u->hash_err.code : MOLT_E_VERIFY, "%s",
                          u->hash_err.msg);
    return rc;
}

/* One source's turn: the package at ref into <task_dir>/package, resuming what
 * is there (whoever served it). attempts: connections tried before the next
 * source gets its turn. */
static int fetch_source(struct upgrade *u, const struct molt_config *conf,
                        const struct molt_statement *st, const char *ref, int attempts,
                        struct molt_err *err)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", u->task.task_dir);
    return fetch_file(u, conf, ref, dest, st->size, attempts, "package", err);
}

/* 1 when a failure is the source's (its answer, its bytes, its URL), so the
 * next source may do better; 0 for ours (disk, cancel, deadline). */
static int source_failure(int code)
{
    return code == MOLT_E_NET || code == MOLT_E_HTTP || code == MOLT_E_AUTH ||
           code == MOLT_E_VERIFY || code == MOLT_E_INVAL || code == MOLT_E_LIMIT ||
           code == MOLT_E_CONFIG;
}

/* The source's error without the "download URL: " molt_dl_fetch puts first. */
static const char *source_error(const char *msg)
{
    const char *p = strstr(msg, "://");

    if (strncmp(msg, "download ", 9) != 0 || !p || !(p = strstr(p, ": ")))
        return msg;
    return p + 2;
}

/* The partial file goes: the next source starts from scratch. */
static void discard_partial(struct upgrade *u)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", u->task.task_dir);
    if (unlink(dest) < 0 && errno != ENOENT)
        molt_log_warn("upgrade.download", "task=%s error=\"unlink %s: %s\"", u->task.task_id,
                      dest, strerror(errno));
}

static uint64_t partial_size(const struct upgrade *u)
{
    char dest[PATH_MAX];

    snprintf(dest, sizeof(dest), "%s/package", u->task.task_dir);
    return file_size(dest);
}

/* Appends "name: error" for a failed source to the reason, each source in
 * its share of the message so that every one is named. */
static void add_reason(const struct molt_config *conf, char *out, size_t n, int nsrc,
                       const char *ref, const char *msg)
{
    size_t used = strlen(out), share = (n - 48) / (size_t)nsrc;
    char name[MOLT_SOURCE_NAME_MAX + 1];

    source_name(conf, ref, name, share / 2 < sizeof(name) ? share / 2 : sizeof(name));
    if (used < n)
        snprintf(out + used, n - used, "%s%s: %.*s", used ? "; " : "", name,
                 (int)(share - strlen(name) - 4), source_error(msg));
}

/* One source's turn, its result checked against the signed size and sha256
 * when others could do better (check). Bytes partly another source's that
 * come out wrong get this source one more go from scratch before it is
 * blamed: one bad mirror must not discredit a good one that resumed it. */
static int try_source(struct upgrade *u, const struct molt_config *conf,
                      const struct molt_statement *st, const char *ref, int attempts, int check,
                      char hex[MOLT_PKG_SHA256_HEX], uint64_t *size, struct molt_err *err)
{
    int carried = check && partial_size(u) > 0;

    for (;;) {
        int rc = fetch_source(u, conf, st, ref, attempts, err);
        if (rc < 0) {
            molt_pkg_hasher_free(&u->hasher);
            return rc;
        }
        rc = molt_pkg_hasher_final(&u->hasher, hex, size, err);
        if (rc < 0 || !check || (rc = molt_pkg_bytes_check(st, *size, hex, err)) == 0 ||
            !carried)
            return rc;
        molt_log_warn("upgrade.download", "task=%s reason=\"%s\" action=refetch",
                      u->task.task_id, err->msg);
        discard_partial(u);
        carried = 0;
    }
}

/* Logs a source that failed and adds it to the task's reason; its bytes go
 * when they were wrong, and stay for the next source to resume otherwise. */
static void source_failed(struct upgrade *u, const struct molt_config *conf, int i, int n,
                          const char *ref, int rc, const struct molt_err *err, char *reason,
                          size_t reason_len)
{
    char name[MOLT_SOURCE_NAME_MAX + 1], shown[MOLT_SOURCE_NAME_MAX + 1];

    if (rc == MOLT_E_VERIFY)
        discard_partial(u);
    source_name(conf, ref, name, sizeof(name));
    molt_http_sanitize(shown, sizeof(shown), name);
    molt_log_warn("upgrade.source_failed", "task=%s source=%d of=%d name=\"%s\" error=\"%s\"",
                  u->task.task_id, i + 1, n, shown, source_error(err->msg));
    add_reason(conf, reason, reason_len, n, ref, err->msg);
}

/* The build's sources in turn (molt_build_sources), from the one upgrade.json
 * says is in use: a partial download carries over to the next source (a Range
 * request; a validator never goes to a source it did not come from), and with
 * more than one source each result is checked here, so that wrong bytes cost
 * one source, not the task. With one source the verifying stage checks it, as
 * it always did. Failures that are not the source's end the loop. */
static int download_sources(struct upgrade *u, const struct molt_config *conf,
                            const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                            uint64_t *size, struct molt_err *err)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    char reason[MOLT_ERR_MSG_MAX] = "";
    int n = molt_build_sources(&u->task.build, src), rc = MOLT_E_NET;

    if (u->task.source < 0 || u->task.source >= n)
        u->task.source = 0;
    for (int i = u->task.source; i < n; i++) {
        if (i != u->task.source) {
            u->task.source = i;   /* persisted: a restart goes on from here */
            if (molt_upgrade_state_save(u->agent->state_dir, &u->task, err) < 0)
                return err->code;
            report_stage(u, MOLT_STAGE_DOWNLOADING, (int64_t)partial_size(u), st->size);
        }
        rc = try_source(u, conf, st, src[i], i + 1 < n ? 3 : 8, n > 1, hex, size, err);
        if (rc == 0)
            return 0;
        if (rc == MOLT_E_CANCELLED)
            return aborted(u, err);
        if (n == 1 || !source_failure(rc))
            return rc;
        source_failed(u, conf, i, n, src[i], rc, err, reason, sizeof(reason));
    }
    return molt_err_set(err, rc, "all %d sources failed: %s", n, reason);
}

/* ---- delta upgrades (docs/upgrades.md, section 10) ------------------------ */

/* Applying maps the base and keeps a window of up to the new archive
 * (docs/package-format.md, 7.4): both together stay under this, or the full
 * package is downloaded instead. This tree's point releases need 2.8 MB. */
#define DELTA_MEMORY_BUDGET ((uint64_t)32 << 20)

static void unlink_download(const char *path)
{
    char etag[PATH_MAX];

    unlink(path);
    if (snprintf(etag, sizeof(etag), "%s.etag", path) < (int)sizeof(etag))
        unlink(etag);
}

/* The delta into dest from the command's delta url, with its sha256 and size
 * (fetch_file: hashed as it arrives, never longer than its size). */
static int fetch_delta(struct upgrade *u, const struct molt_config *conf, const char *dest,
                       char hex[MOLT_PKG_SHA256_HEX], uint64_t *size, struct molt_err *err)
{
    const struct molt_delta_ref *d = &u->task.build.delta;
    int rc;

    u->delta_active = 1; /* servedBy names the delta meanwhile */
    rc = fetch_file(u, conf, d->url, dest, (uint64_t)d->size, 3, "delta", err);
    u->delta_active = 0;
    if (rc == 0)
        return molt_pkg_hasher_final(&u->hasher, hex, size, err);
    molt_pkg_hasher_free(&u->hasher);
    return rc;
}

static int delta_within_budget(const char *path, struct molt_err *err)
{
    unsigned char buf[MOLT_DELTA_HEADER_SIZE];
    struct molt_delta_header h;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return molt_err_errno(err, "open %s", path);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    rc = molt_delta_header_parse(buf, n > 0 ? (size_t)n : 0, &h, err);
    if (rc == 0 && h.base_size + h.archive_size > DELTA_MEMORY_BUDGET)
        rc = molt_err_set(err, MOLT_E_LIMIT, "applying it needs %llu MiB, over the budget of "
                          "%d MiB", (unsigned long long)((h.base_size + h.archive_size) >> 20),
                          (int)(DELTA_MEMORY_BUDGET >> 20));
    return rc;
}

/* Rebuilds the package from the command's delta: the delta downloaded and
 * checked against its size and sha256, the base rebuilt from the running
 * version's installed tree, the package written beside "package" and renamed
 * to it only when it has the statement's size and sha256 (so a crash never
 * leaves a wrong "package" for a resumed download to extend). */
static int via_delta(struct upgrade *u, const struct molt_config *conf,
                     const struct molt_statement *st, struct molt_err *err)
{
    const struct molt_delta_ref *d = &u->task.build.delta;
    char dpath[PATH_MAX], tmp[PATH_MAX], pkg[PATH_MAX], tree[PATH_MAX + 64];
    char dhex[MOLT_PKG_SHA256_HEX];
    struct molt_delta_base base;
    uint64_t dsize = 0;
    int in = -1, out = -1, rc;

    memset(&base, 0, sizeof(base));
    if (strcmp(d->base_version, molt_version_self()) != 0)
        return molt_err_set(err, MOLT_E_STATE, "it applies to %s, this host runs %s",
                            d->base_version, molt_version_self());
    /* The package bounds its archive from below: too big a package, no delta at all. */
    if (st->size > DELTA_MEMORY_BUDGET / 2)
        return molt_err_set(err, MOLT_E_LIMIT, "the package's %llu bytes are too many for a "
                            "delta (budget %d MiB)", (unsigned long long)st->size,
                            (int)(DELTA_MEMORY_BUDGET >> 20));
    snprintf(dpath, sizeof(dpath), "%s/delta", u->task.task_dir);
    snprintf(tmp, sizeof(tmp), "%s/package.from-delta", u->task.task_dir);
    snprintf(pkg, sizeof(pkg), "%s/package", u->task.task_dir);
    snprintf(tree, sizeof(tree), "%s/versions/%s", conf->install.root, d->base_version);
    rc = fetch_delta(u, conf, dpath, dhex, &dsize, err);
    if (rc == 0 && (dsize != (uint64_t)d->size || strcmp(dhex, d->sha256) != 0))
        rc = molt_err_set(err, MOLT_E_VERIFY, "the delta's %llu bytes do not have the "
                          "command's size and sha256", (unsigned long long)dsize);
    if (rc == 0)
        rc = delta_within_budget(dpath, err);
    if (rc == 0)
        rc = molt_delta_base_from_tree(tree, u->task.task_dir, &base, err);
    if (rc == 0 && (in = open(dpath, O_RDONLY | O_CLOEXEC)) < 0)
        rc = molt_err_errno(err, "open %s", dpath);
    if (rc == 0 &&
        (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        rc = molt_err_errno(err, "open %s", tmp);
    if (rc == 0)
        rc = molt_delta_apply(in, &base, st->size, st->sha256, out, NULL, err);
    if (rc == 0 && fsync(out) < 0)
        rc = molt_err_errno(err, "fsync %s", tmp);
    if (rc == 0 && rename(tmp, pkg) < 0)
        rc = molt_err_errno(err, "rename %s", tmp);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    molt_delta_base_close(&base);
    unlink_download(dpath);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* 0 with the package rebuilt from the delta (hex and size: the statement's,
 * which the rebuilt bytes were checked against as they were written); 1 when
 * the full package must be downloaded, the reason reported; < 0 on a cancel. */
static int try_delta(struct upgrade *u, const struct molt_config *conf,
                     const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                     uint64_t *size, struct molt_err *err)
{
    struct molt_err derr = MOLT_ERR_INIT;
    char pkg[PATH_MAX], msg[MOLT_ERR_MSG_MAX + 64];

    if (via_delta(u, conf, st, &derr) == 0) {
        molt_log_info("upgrade.delta", "task=%s build=%s base=%s delta_bytes=%lld "
                      "package_bytes=%llu", u->task.task_id, u->task.build.version,
                      u->task.build.delta.base_version, (long long)u->task.build.delta.size,
                      (unsigned long long)st->size);
        snprintf(hex, MOLT_PKG_SHA256_HEX, "%s", st->sha256);
        *size = st->size;
        return 0;
    }
    if (u->abort)
        return aborted(u, err);
    /* A bad delta costs time, never the upgrade: the full package follows. */
    molt_log_warn("upgrade.delta", "task=%s build=%s action=full-download reason=\"%s\"",
                  u->task.task_id, u->task.build.version, derr.msg);
    snprintf(msg, sizeof(msg), "delta not used, downloading the full package: %s", derr.msg);
    report_stage_via(u, u->http, MOLT_STAGE_DOWNLOADING, 0, st->size, msg);
    snprintf(pkg, sizeof(pkg), "%s/package", u->task.task_dir);
    unlink_download(pkg);
    return 1;
}

static int download(struct upgrade *u, const struct molt_config *conf,
                    const struct molt_statement *st, char hex[MOLT_PKG_SHA256_HEX],
                    uint64_t *size, struct molt_err *err)
{
    int rc;

    /* A partial package means a full download is already under way (after a
     * restart): it goes on; the delta is for a fresh start. */
    if (!u->task.local_package[0] && u->task.build.delta.present && partial_size(u) == 0 &&
        (rc = try_delta(u, conf, st, hex, size, err)) <= 0)
        return rc;
    if (!u->task.local_package[0])
        return download_sources(u, conf, st, hex, size, err);
    u->dl_limit = st->size;
    u->hash_failed = molt_pkg_hasher_init(&u->hasher, st->size, err) < 0;
    if (u->hash_failed)
        return err->code;
    rc = copy_local(u, st, err);
    molt_log_info("upgrade.download", "task=%s build=%s auth=none bytes=0 attempts=0 "
                  "restarts=0 rc=%d", u->task.task_id, u->task.build.version, rc);
    if (rc == MOLT_E_CANCELLED)
        rc = aborted(u, err);
    if (rc == 0 && u->hash_failed)
        rc = molt_err_set(err, u->hash_err.code ? u->hash_err.code : MOLT_E_VERIFY, "%s",
                          u->hash_err.msg);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&u->hasher, hex, size, err);
    else
        molt_pkg_hasher_free(&u->hasher);
    return rc;
}

static int stage_build(struct upgrade *u, const struct molt_statement *st, char out[PATH_MAX],
                       struct molt_err *err)
{
    char pkg[PATH_MAX];

    snprintf(pkg, sizeof(pkg), "%s/package", u->task.task_dir);
    return molt_pkg_stage(pkg, st, u->task.task_dir, "staged", out, err);
}

static int switch_to(struct upgrade *u, const struct molt_config *conf, const char *staged,
                     struct molt_err *err)
{
    const char *args[] = { "apply", staged, "--task", u->task.task_id, "--build-version",
                           u->task.build.version, NULL };
    char msg[400];

    if (run_installer(u->agent, conf, args, msg, sizeof(msg)) < 0)
        return molt_err_set(err, MOLT_E_STATE, "%s", msg);
    return 0;
}

/* After a failed apply: 1 when the journal shows the switch half done, so the
 * launcher, not this agent, must finish or undo it. */
static int switch_in_doubt(struct molt_agent *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char path[PATH_MAX];

    if (molt_journal_path(path, sizeof(path), a->state_dir, &err) < 0 ||
        molt_journal_load(path, &j, &err) < 0)
        return 0;
    return molt_journal_in_progress(&j);
}

/* Stages 1 to 7; returns the failed stage with err set, or 0 after asking the
 * agent to restart into the new version. */
static int run_stages(struct upgrade *u, struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX], staged[PATH_MAX];
    struct molt_statement st;
    struct molt_config conf;
    uint64_t size = 0;

    molt_agent_config(u->agent, &conf);
    if (enter(u, MOLT_STAGE_PREFLIGHT, err) < 0 || preflight(u, &conf, &st, err) < 0)
        return MOLT_STAGE_PREFLIGHT;
    if (enter(u, MOLT_STAGE_DOWNLOADING, err) < 0 || download(u, &conf, &st, hex, &size, err) < 0)
        return MOLT_STAGE_DOWNLOADING;
    MOLT_FAULT_POINT("upgrade.after_download");
    if (enter(u, MOLT_STAGE_VERIFYING, err) < 0 || molt_pkg_bytes_check(&st, size, hex, err) < 0)
        return MOLT_STAGE_VERIFYING;
    if (enter(u, MOLT_STAGE_STAGING, err) < 0 || stage_build(u, &st, staged, err) < 0)
        return MOLT_STAGE_STAGING;
    MOLT_FAULT_POINT("upgrade.after_staging");
    if (wait_for_window(u, err) < 0)
        return MOLT_STAGE_WAITING;
    /* The last moment a cancel or the deadline can stop the task cleanly. */
    if (enter(u, MOLT_STAGE_SWITCHING, err) < 0 || switch_to(u, &conf, staged, err) < 0)
        return MOLT_STAGE_SWITCHING;
    MOLT_FAULT_POINT("upgrade.after_switch");
    snprintf(u->task.stage, sizeof(u->task.stage), "%s", molt_stage_name(MOLT_STAGE_RESTARTING));
    if (molt_upgrade_state_save(u->agent->state_dir, &u->task, err) < 0)
        molt_log_error("upgrade.state", "task=%s error=\"%s\"", u->task.task_id, err->msg);
    report_stage(u, MOLT_STAGE_RESTARTING, 0, 0);
    return 0;
}

static void cleanup_task(struct molt_agent *a, const struct molt_upgrade_state *t)
{
    struct molt_err err = MOLT_ERR_INIT;

    if (t->task_dir[0] && molt_fs_remove_tree(t->task_dir, &err) < 0)
        molt_log_warn("upgrade.cleanup", "task=%s error=\"%s\"", t->task_id, err.msg);
    molt_upgrade_state_clear(a->state_dir);
}

static void *worker(void *arg)
{
    struct upgrade *u = arg;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    char msg[600];
    int failed;

    molt_agent_config(u->agent, &conf);
    if (molt_http_new(&u->http, &conf, &u->abort, &err) < 0) {
        molt_log_warn("upgrade.progress", "task=%s error=\"%s\" (progress rides on heartbeats "
                      "only)", u->task.task_id, err.msg);
        u->http = NULL;
        molt_err_clear(&err);
    }
    failed = run_stages(u, &err);
    molt_http_free(u->http);
    u->http = NULL;
    if (failed == 0) {
        molt_log_info("upgrade.restart", "task=%s build=%s", u->task.task_id,
                      u->task.build.version);
        molt_agent_request_exit(u->agent, MOLT_EXIT_RESTART);
        return NULL;
    }
    if (failed == MOLT_STAGE_SWITCHING && switch_in_doubt(u->agent)) {
        /* The outcome is reported after the restart (resume_after_switch). */
        molt_log_warn("upgrade.switch", "task=%s reason=\"%s\" action=restart", u->task.task_id,
                      err.msg);
        snprintf(u->task.stage, sizeof(u->task.stage), "%s",
                 molt_stage_name(MOLT_STAGE_RESTARTING));
        molt_upgrade_state_save(u->agent->state_dir, &u->task, &err);
        molt_agent_request_exit(u->agent, MOLT_EXIT_RESTART);
        return NULL;
    }
    if (u->abort && u->abort_reason == ABORT_SHUTDOWN) {
        /* Not a failure: the task resumes when the agent starts again. */
        molt_log_info("upgrade.paused", "task=%s stage=%s", u->task.task_id, u->task.stage);
        return NULL;
    }
    snprintf(msg, sizeof(msg), "%s: %s", molt_stage_name(failed), err.msg);
    molt_log_error("upgrade.failed", "task=%s build=%s stage=%s reason=\"%s\"", u->task.task_id,
                   u->task.build.version, molt_stage_name(failed), err.msg);
    cleanup_task(u->agent, &u->task);
    finish(u->agent, &u->task, MOLT_TASK_FAILED, failed, msg);
    return NULL;
}

/* ---- starting, resuming and ending tasks ------------------------------------ */

static void join_worker(struct upgrade *u)
{
    if (u->thread_started) {
        pthread_join(u->thread, NULL);
        u->thread_started = 0;
    }
}

static int spawn(struct molt_agent *a, struct molt_err *err)
{
    struct upgrade *u = upgrade_of(a);

    u->abort = 0;
    u->abort_reason = ABORT_NONE;
    u->switch_now = 0;
    u->last_progress_mono = 0;
    if (pthread_create(&u->thread, NULL, worker, u) != 0)
        return molt_err_set(err, MOLT_E_NOMEM, "cannot start the upgrade thread");
    u->thread_started = 1;
    return 0;
}

static int worker_busy(struct upgrade *u)
{
    /* A finished worker has released the slot; reap it before the next. */
    struct molt_report cur;

    if (!u->thread_started)
        return 0;
    if (molt_task_current(&u->agent->tasks, &cur) && strcmp(cur.task_id, u->task.task_id) == 0 &&
        strcmp(cur.build_version, u->task.build.version) == 0 &&
        cur.stage_index < MOLT_STAGE_COMMITTED)
        return 1;
    join_worker(u);
    return 0;
}

/* Takes the task slot and starts the worker; u->mu held. */
static int start_locked(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package, int local,
                        struct molt_err *err)
{
    struct upgrade *u = upgrade_of(a);
    struct molt_upgrade_state t;
    struct molt_report r;

    if (worker_busy(u))
        return molt_err_set(err, MOLT_E_BUSY, "another task is in progress: %s",
                            u->task.task_id);
    if (molt_upgrade_state_from_command(&t, cmd, molt_version_self(), upgrade_dir, err) < 0)
        return err->code;
    t.local = local;
    snprintf(t.local_package, sizeof(t.local_package), "%s", local_package ? local_package : "");
    molt_report_init(&r, t.task_id, t.build.version, MOLT_TASK_PROGRESSING, MOLT_STAGE_ACCEPTED);
    r.local = t.local;
    if (molt_task_begin(&a->tasks, &r, err) < 0) {
        molt_upgrade_state_free(&t);
        return err->code;
    }
    molt_upgrade_state_free(&u->task);
    u->task = t;
    molt_log_info("upgrade.accepted", "task=%s to=%s build=%s from=%s local=%d", t.task_id,
                  t.to_version, t.build.version, molt_version_self(), local);
    if (molt_upgrade_state_save(a->state_dir, &u->task, err) < 0 || spawn(a, err) < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "accepted: %s", err->msg);
        finish(a, &u->task, MOLT_TASK_FAILED, MOLT_STAGE_ACCEPTED, msg);
        return err->code;
    }
    molt_agent_wake(a, MOLT_WAKE_HEARTBEAT);
    return 0;
}

static void molt_upgrade_start(struct molt_agent *a, const struct molt_command *cmd)
{
    struct upgrade *u = upgrade_of(a);
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;

    molt_agent_config(a, &conf);
    pthread_mutex_lock(&u->mu);
    if (!worker_busy(u) && start_locked(a, cmd, conf.agent.upgrade_dir, NULL, 0, &err) < 0)
        molt_log_warn("upgrade.start", "task=%s error=\"%s\"", cmd->task_id, err.msg);
    pthread_mutex_unlock(&u->mu);
}

int molt_upgrade_submit(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package, struct molt_err *err)
{
    struct upgrade *u = upgrade_of(a);
    const char *self = molt_version_self();
    struct molt_config conf;
    int rc;

    molt_agent_config(a, &conf);
    if (molt_version_cmp(cmd->build.version, self) == 0)
        return molt_err_set(err, MOLT_E_STATE, "%s is the running version", self);
    if (molt_version_cmp(cmd->build.version, self) < 0 && !conf.agent.allow_downgrade)
        return molt_err_set(err, MOLT_E_STATE, "downgrade from %s to %s not allowed "
                            "(agent.allow_downgrade = false)", self, cmd->build.version);
    pthread_mutex_lock(&u->mu);
    rc = start_locked(a, cmd, upgrade_dir && *upgrade_dir ? upgrade_dir : conf.agent.upgrade_dir,
                      local_package, 1, err);
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int molt_upgrade_view(struct molt_agent *a, const char *task_id, struct molt_report *out,
                      int *active)
{
    struct upgrade *u = upgrade_of(a);
    int found = 0;

    *active = 0;
    if (molt_task_current(&a->tasks, out) && (!task_id || strcmp(out->task_id, task_id) == 0)) {
        *active = 1;
        return 1;
    }
    pthread_mutex_lock(&u->final_mu);
    if (u->has_last_final && (!task_id || strcmp(u->last_final.task_id, task_id) == 0)) {
        *out = u->last_final;
        found = 1;
    }
    pthread_mutex_unlock(&u->final_mu);
    return found;
}

int molt_upgrade_rollback(struct molt_agent *a, const char *reason, struct molt_err *err)
{
    struct molt_config conf;
    const char *args[] = { "rollback", "--reason", reason, NULL };
    struct molt_report cur;
    char msg[400];

    if (molt_task_current(&a->tasks, &cur))
        return molt_err_set(err, MOLT_E_BUSY, "task %s is in progress (stage %s); cancel it "
                            "instead", cur.task_id, cur.stage);
    molt_agent_config(a, &conf);
    if (run_installer(a, &conf, args, msg, sizeof(msg)) < 0)
        return molt_err_set(err, MOLT_E_STATE, "%s", msg);
    return 0;
}

int molt_upgrade_cancel_task(struct molt_agent *a, const char *task_id, struct molt_err *err)
{
    struct upgrade *u = upgrade_of(a);
    struct molt_report cur = { 0 };
    int rc = 0;

    pthread_mutex_lock(&u->mu);
    if (!molt_task_current(&a->tasks, &cur) || strcmp(cur.task_id, task_id) != 0) {
        rc = molt_err_set(err, MOLT_E_NOTFOUND, "task %s is not in progress", task_id);
    } else if (cur.stage_index >= MOLT_STAGE_SWITCHING) {
        /* Past the switch the health check decides; a cancel cannot undo it. */
        rc = molt_err_set(err, MOLT_E_STATE, "too late to cancel task %s: stage %s", task_id,
                          cur.stage);
    } else if (u->thread_started) {
        u->abort_reason = ABORT_CANCEL;
        u->abort = 1;
    } else {
        /* Between hops no worker runs: cancel at once. */
        cleanup_task(a, &u->task);
        finish(a, &u->task, MOLT_TASK_FAILED, cur.stage_index, "cancelled");
    }
    pthread_mutex_unlock(&u->mu);
    molt_log_info("upgrade.cancel", "task=%s stage=%s result=\"%s\"", task_id, cur.stage,
                  rc < 0 ? err->msg : "cancelling");
    return rc;
}

int molt_upgrade_switch_now(struct molt_agent *a, const char *task_id, struct molt_err *err)
{
    struct upgrade *u = upgrade_of(a);
    struct molt_report cur = { 0 };
    int rc = 0;

    pthread_mutex_lock(&u->mu);
    if (!molt_task_current(&a->tasks, &cur) || strcmp(cur.task_id, task_id) != 0 ||
        !u->thread_started)
        rc = molt_err_set(err, MOLT_E_NOTFOUND, "task %s is not in progress", task_id);
    else if (cur.stage_index >= MOLT_STAGE_SWITCHING)
        rc = molt_err_set(err, MOLT_E_STATE, "task %s is past its switch: stage %s", task_id,
                          cur.stage);
    else
        u->switch_now = 1;
    pthread_mutex_unlock(&u->mu);
    molt_log_info("upgrade.switch_now", "task=%s stage=%s result=\"%s\"", task_id, cur.stage,
                  rc < 0 ? err->msg : "the switch window is skipped");
    return rc;
}

static void molt_upgrade_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
    struct molt_err err = MOLT_ERR_INIT;

    molt_upgrade_cancel_task(a, cmd->task_id, &err);
}

/* The task's message shows the checks passed so far to `molt-agent status`
 * and the local API; only locally: the server hears the stage and the result. */
static void health_progress(void *arg, int passed, int total)
{
    struct upgrade *u = arg;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    if (!molt_task_current(&u->agent->tasks, &r) || strcmp(r.task_id, u->task.task_id) != 0)
        return;
    snprintf(r.message, sizeof(r.message), "health check: %d/%d passed", passed, total);
    if (molt_task_update(&u->agent->tasks, &r, &err) < 0)
        molt_log_warn("upgrade.report", "task=%s error=\"%s\"", r.task_id, err.msg);
}

/* The trial's health check failed: the stable installer ends the trial (the
 * same rollback a failed trial gets from launch), and we exit so that launch
 * starts the old version, which reports 3 from the journal's reason. Should
 * the rollback not happen (we crash, it fails), the trial deadline still does it. */
static void fail_health(struct molt_agent *a, struct upgrade *u, const struct molt_config *conf,
                        const char *reason)
{
    const char *args[] = { "rollback", "--task", u->task.task_id, "--reason", reason, NULL };
    char msg[400];

    if (run_installer(a, conf, args, msg, sizeof(msg)) < 0)
        molt_log_error("upgrade.health_rollback", "task=%s error=\"%s\"", u->task.task_id, msg);
    molt_agent_request_exit(a, MOLT_EXIT_RESTART);
}

/* The new version proved itself: the server acknowledged its heartbeat, and
 * (on trial, arg non-NULL) [install] health_command passed. */
static void on_first_ack(struct molt_agent *a, void *arg)
{
    struct upgrade *u = upgrade_of(a);
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    const char *args[] = { "commit", "--task", u->task.task_id, NULL };
    char msg[400];
    int final;

    molt_agent_config(a, &conf);
    /* Run here, on the heartbeat thread: heartbeats pause for at most
     * health_checks * (interval + timeout), which molt_conf_validate keeps
     * within the trial deadline, and no command starts during the check. */
    if (arg && molt_health_run(&conf, health_progress, u, msg, MOLT_HEALTH_REASON_MAX) < 0) {
        fail_health(a, u, &conf, msg);
        return;
    }
    MOLT_FAULT_POINT("upgrade.before_commit");
    if (run_installer(a, &conf, args, msg, sizeof(msg)) < 0) {
        /* The launcher decides now: the trial is over or already undone. */
        molt_log_error("upgrade.commit", "task=%s error=\"%s\"", u->task.task_id, msg);
        molt_agent_request_exit(a, MOLT_EXIT_RESTART);
        return;
    }
    MOLT_FAULT_POINT("upgrade.after_commit");
    final = molt_version_cmp(u->task.to_version, molt_version_self()) == 0;
    molt_log_info("upgrade.committed", "task=%s version=%s final=%d", u->task.task_id,
                  molt_version_self(), final);
    if (!final) {
        /* An intermediate hop: stay 6 until the server sends the next one. */
        snprintf(u->task.stage, sizeof(u->task.stage), "%s", molt_stage_name(MOLT_STAGE_COMMITTED));
        if (molt_upgrade_state_save(a->state_dir, &u->task, &err) < 0)
            molt_log_error("upgrade.state", "task=%s error=\"%s\"", u->task.task_id, err.msg);
        report_stage_main(u, MOLT_STAGE_COMMITTED);
        collect_garbage(a);
        return;
    }
    report_stage_main(u, MOLT_STAGE_COMMITTED);
    cleanup_task(a, &u->task);
    snprintf(msg, sizeof(msg), "committed %s", molt_version_self());
    finish(a, &u->task, MOLT_TASK_SUCCEEDED, MOLT_STAGE_COMMITTED, msg);
    collect_garbage(a);
}

/* After a restart, the switch behind us: what did it come to? */
static int resume_after_switch(struct molt_agent *a, struct upgrade *u, struct molt_err *err)
{
    const char *self = molt_version_self();
    struct molt_journal j;
    struct molt_resume d;
    char path[PATH_MAX];

    if (molt_journal_path(path, sizeof(path), a->state_dir, err) < 0)
        return err->code;
    if (molt_journal_load(path, &j, err) < 0)
        molt_log_warn("upgrade.journal", "error=\"%s\"", err->msg);
    molt_resume_decide(&u->task, &j, self, &d);
    switch (d.action) {
    case MOLT_RESUME_TRIAL:
        /* We are the new version, on trial: prove it with a heartbeat. */
        report_stage_main(u, MOLT_STAGE_HEALTH_CHECK);
        molt_agent_on_first_ack(a, on_first_ack, u);
        molt_log_info("upgrade.trial", "task=%s version=%s", u->task.task_id, self);
        return 0;
    case MOLT_RESUME_COMMITTED:
        /* Committed, but we died before reporting it. */
        report_stage_main(u, MOLT_STAGE_HEALTH_CHECK);
        molt_agent_on_first_ack(a, on_first_ack, NULL);
        return 0;
    case MOLT_RESUME_ROLLED_BACK:
        cleanup_task(a, &u->task);
        finish(a, &u->task, MOLT_TASK_FAILED, d.final_stage, d.message);
        collect_garbage(a);
        return 0;
    case MOLT_RESUME_SWITCH_NOT_DONE:
        /* Carry on from the download, which resumes. */
        molt_log_info("upgrade.resume", "task=%s stage=%s", u->task.task_id, u->task.stage);
        return spawn(a, err);
    default:    /* MOLT_RESUME_SWITCH_FAILED */
        cleanup_task(a, &u->task);
        finish(a, &u->task, MOLT_TASK_FAILED, d.final_stage, d.message);
        return 0;
    }
}

static int molt_upgrade_init(struct molt_agent *a, struct molt_err *err)
{
    struct upgrade *u = calloc(1, sizeof(*u));
    struct molt_resume d;
    struct molt_report r;
    int rc;

    if (!u)
        return molt_err_set(err, MOLT_E_NOMEM, "upgrade: out of memory");
    u->agent = a;
    pthread_mutex_init(&u->mu, NULL);
    pthread_mutex_init(&u->final_mu, NULL);
    a->upgrade = u;
    u->watch = molt_watch_start(a, rollback_watch);
    rc = molt_upgrade_state_load(a->state_dir, &u->task, err);
    if (rc == MOLT_E_NOTFOUND)
        return 0;
    if (rc < 0) {
        /* Unreadable state cannot be resumed; say so and start clean. */
        molt_log_error("upgrade.state", "error=\"%s\" action=discard", err->msg);
        molt_upgrade_state_clear(a->state_dir);
        molt_err_clear(err);
        return 0;
    }
    molt_resume_decide(&u->task, NULL, molt_version_self(), &d);
    molt_report_init(&r, u->task.task_id, u->task.build.version, MOLT_TASK_PROGRESSING, d.stage);
    r.local = u->task.local;
    if (molt_task_begin(&a->tasks, &r, err) < 0)
        return err->code;
    molt_log_info("upgrade.resume", "task=%s build=%s stage=%s", u->task.task_id,
                  u->task.build.version, u->task.stage);
    if (d.action == MOLT_RESUME_WAIT_HOP)
        return 0;   /* between hops: wait for the next command */
    if (d.action == MOLT_RESUME_READ_JOURNAL)
        return resume_after_switch(a, u, err);
    return spawn(a, err);
}

static void molt_upgrade_shutdown(struct molt_agent *a)
{
    struct upgrade *u = upgrade_of(a);

    if (!u)
        return;
    if (u->thread_started) {
        if (!u->abort) {
            u->abort_reason = ABORT_SHUTDOWN;
            u->abort = 1;
        }
        join_worker(u);
    }
    molt_watch_stop(u->watch);
    molt_upgrade_state_free(&u->task);
    pthread_mutex_destroy(&u->mu);
    pthread_mutex_destroy(&u->final_mu);
    free(u);
    a->upgrade = NULL;
}

const struct molt_pipeline molt_upgrade_pipeline = {
    .init = molt_upgrade_init,
    .start = molt_upgrade_start,
    .cancel = molt_upgrade_cancel,
    .shutdown = molt_upgrade_shutdown,
};
