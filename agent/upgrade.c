/* upgrade.c: the upgrade pipeline. One task at a time runs in an upgrade
 * thread through the stages of docs/protocol.md section 4: accepted,
 * preflight, downloading, verifying, staging, switching, restarting; then, in
 * the new version's agent, health-check and committed. Downloading, verifying
 * and staging happen in a sandboxed worker process (worker_proc.h, worker.h),
 * which this thread starts, hears and ends. Every stage boundary is
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
#include "worker_proc.h"

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
    molt_http_ref_name(&conf, src[t->source], r->served_by, sizeof(r->served_by));
}

/* http: the calling thread's client (the upgrade thread's, or the agent's on
 * the main thread); message: NULL for none; served_by: NULL for the task's
 * source in use (the worker names the delta's while it downloads). */
static void report_stage_via(struct upgrade *u, struct molt_http *http, int stage, int64_t done,
                             int64_t total, const char *message, const char *served_by)
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
    if (served_by && served_by[0])
        snprintf(r.served_by, sizeof(r.served_by), "%s", served_by);
    if (molt_task_update(&u->agent->tasks, &r, &err) < 0 && molt_task_begin(&u->agent->tasks, &r, &err) < 0)
        molt_log_error("upgrade.report", "task=%s error=\"%s\"", u->task.task_id, err.msg);
    if (http && !u->task.local)   /* the server does not know local tasks */
        post_progress(u->agent, http, &r);
}

static void report_stage(struct upgrade *u, int stage, int64_t done, int64_t total)
{
    report_stage_via(u, u->http, stage, done, total, NULL, NULL);
}

/* From the main thread, which owns the agent's client. */
static void report_stage_main(struct upgrade *u, int stage)
{
    report_stage_via(u, u->agent->http, stage, 0, 0, NULL, NULL);
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

static uint64_t version_dir_size(const struct molt_config *conf)
{
    char dir[PATH_MAX], bin[PATH_MAX];

    /* The binaries dominate a version; the running one is a fair estimate of
     * what the next one unpacks to. */
    snprintf(dir, sizeof(dir), "%s/current/bin", conf->install.root);
    snprintf(bin, sizeof(bin), "%s/molt-agent", dir);
    uint64_t total = molt_fs_file_size(bin);
    snprintf(bin, sizeof(bin), "%s/molt-installer", dir);
    return total + molt_fs_file_size(bin);
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
            report_stage_via(u, u->http, MOLT_STAGE_WAITING, 0, 0, msg, NULL);
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

/* The staged tree comes from the sandboxed worker, trusted for nothing: the
 * installer checks it file by file against the manifest the verified
 * statement names (docs/security.md section 7). */
static int switch_to(struct upgrade *u, const struct molt_config *conf, const char *staged,
                     const struct molt_statement *st, struct molt_err *err)
{
    const char *args[] = { "apply", staged, "--task", u->task.task_id, "--build-version",
                           u->task.build.version, "--manifest-sha256", st->manifest_sha256,
                           NULL };
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

/* ---- the upgrade worker (worker_proc.h) --------------------------------- */

/* What the worker reported: its source in use and each new stage persisted
 * (a restart resumes from there), the report passed on. */
static int on_worker_progress(void *ctx, const struct molt_wmsg *m, int stage, int is_new,
                              struct molt_err *err)
{
    struct upgrade *u = ctx;
    int save = is_new;

    if (m->source >= 0 && m->source != u->task.source) {
        const char *src[MOLT_BUILD_SOURCES_MAX];
        if (m->source >= molt_build_sources(&u->task.build, src))
            return molt_err_set(err, MOLT_E_PARSE, "source %d: the build has no such source",
                                m->source);
        u->task.source = m->source;
        save = 1;
    }
    if (is_new && stage == MOLT_STAGE_VERIFYING)
        MOLT_FAULT_POINT("upgrade.after_download");
    if (is_new)
        snprintf(u->task.stage, sizeof(u->task.stage), "%s", molt_stage_name(stage));
    if (save && molt_upgrade_state_save(u->agent->state_dir, &u->task, err) < 0)
        return err->code;
    report_stage_via(u, u->http, stage, m->bytes_done, m->bytes_total,
                     m->message[0] ? m->message : NULL, m->served_by);
    return 0;
}

static int worker_aborted(void *ctx, struct molt_err *err)
{
    return aborted(ctx, err);
}

/* 1 when a URL of the task is the server's own origin: only then does the
 * worker get the token (fetch_file in worker.c sends it only there). */
static int needs_token(const struct molt_config *conf, const struct molt_upgrade_state *t)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    char url[MOLT_HTTP_REF_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    int n = molt_build_sources(&t->build, src);

    if (t->local_package[0])
        return 0;
    if (t->build.delta.present)
        src[n++] = t->build.delta.url;
    for (int i = 0; i < n; i++) {
        if (molt_http_resolve(conf, src[i], url, sizeof(url), &err) == 0 &&
            molt_http_same_origin(conf->server.url, url))
            return 1;
    }
    return 0;
}

/* Downloading, verifying and staging, in the worker: the failed stage with
 * err set, or 0 with staged set. */
static int run_worker(struct upgrade *u, const struct molt_config *conf, char staged[PATH_MAX],
                      struct molt_err *err)
{
    char program[PATH_MAX], token[MOLT_TOKEN_MAX + 1] = "", *settings = NULL;
    struct molt_wnet *net = NULL;
    struct molt_worker_job job = {
        .program = program, .task = &u->task, .ctx = u,
        .progress = on_worker_progress, .aborted = worker_aborted,
    };
    int failed = MOLT_STAGE_DOWNLOADING;
    int rc = molt_worker_proc_path(program, err);

    /* The settings in force, not the file as it may have been edited since. */
    if (rc == 0 && (rc = molt_conf_format(conf, &settings, err)) == 0)
        job.config = settings;
    if (rc == 0 && needs_token(conf, &u->task)) {
        rc = molt_agent_token(u->agent, token, sizeof(token), err);
        job.token = token;
    }
    /* Resolved here, so the worker needs neither sockets nor a resolver. */
    if (rc == 0 && !(net = malloc(sizeof(*net))))
        rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if (rc == 0 && (rc = molt_wnet_pin(net, conf, &u->task, (int)conf->server.connect_timeout_ms,
                                       worker_aborted, u, err)) == 0) {
        job.net = net;
        job.connect_timeout_ms = (int)conf->server.connect_timeout_ms;
        rc = molt_worker_proc_run(&job, staged, &failed, err);
    }
    explicit_bzero(token, sizeof(token));
    free(net);
    free(settings);
    if (rc < 0 && u->abort)
        aborted(u, err); /* the agent's reason, not the worker's echo of it */
    return rc < 0 ? failed : 0;
}

/* Stages 1 to 7; returns the failed stage with err set, or 0 after asking the
 * agent to restart into the new version. */
static int run_stages(struct upgrade *u, struct molt_err *err)
{
    char staged[PATH_MAX];
    struct molt_statement st;
    struct molt_config conf;
    int failed;

    molt_agent_config(u->agent, &conf);
    if (enter(u, MOLT_STAGE_PREFLIGHT, err) < 0 || preflight(u, &conf, &st, err) < 0)
        return MOLT_STAGE_PREFLIGHT;
    if ((failed = run_worker(u, &conf, staged, err)) != 0)
        return failed;
    MOLT_FAULT_POINT("upgrade.after_staging");
    if (wait_for_window(u, err) < 0)
        return MOLT_STAGE_WAITING;
    /* The last moment a cancel or the deadline can stop the task cleanly. */
    if (enter(u, MOLT_STAGE_SWITCHING, err) < 0 || switch_to(u, &conf, staged, &st, err) < 0)
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
    /* accepted on this connection first: the heartbeat that carries it may
     * reach the server after preflight's report (docs/protocol.md section 4). */
    if (strcmp(u->task.stage, molt_stage_name(MOLT_STAGE_ACCEPTED)) == 0)
        report_stage(u, MOLT_STAGE_ACCEPTED, 0, 0);
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
/* accepted (may be NULL): the task's report as begun, stage accepted. */
static int start_locked(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package, int local,
                        struct molt_report *accepted, struct molt_err *err)
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
    if (accepted)
        *accepted = r;
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
    if (!worker_busy(u) && start_locked(a, cmd, conf.agent.upgrade_dir, NULL, 0, NULL, &err) < 0)
        molt_log_warn("upgrade.start", "task=%s error=\"%s\"", cmd->task_id, err.msg);
    pthread_mutex_unlock(&u->mu);
}

int molt_upgrade_submit(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package,
                        struct molt_report *accepted, struct molt_err *err)
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
                      local_package, 1, accepted, err);
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
