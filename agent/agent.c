/* agent.c: the agent's life: start-up, the main loop (register, heartbeat,
 * outbox), signals, configuration reload, service-manager notifications, stop. */
#include "config.h"

#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include "api.h"
#include "fs.h"
#include "heartbeat.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "notify.h"
#include "outbox.h"
#include "sandbox.h"
#include "text.h"
#include "watch_events.h"
#include "version.h"

#define LOCK_FILE "agent.lock"
#define REFUSED_LOG_EVERY_MS 60000    /* a refused reply's warning, at most this often */
#define WAKE_SPACING_MS 1000    /* early heartbeats (MOLT_WAKE_HEARTBEAT) at most this often */

/* The one agent of this process, for the signal handlers: they only set flags
 * and poke the eventfd. */
static struct molt_agent *signal_agent;

/* Main-loop scheduling state (main thread only). */
struct loop {
    int64_t next_hb;           /* monotonic ms */
    int64_t last_send;         /* monotonic ms the last heartbeat left */
    int64_t interval_ms;
    int64_t jitter_until;      /* monotonic ms: nothing goes to the server before (start-up) */
    int server_interval;       /* the server chose interval_ms */
    int long_poll;             /* the last reply offered long-poll */
    int outbox_pending;
    int64_t outbox_retry_after;
    int token_rejected;        /* set by the outbox sender on 401 */
    char last_cmd[96];         /* the last command seen, to notice repeats */
    char last_cmd_error[128];
    int warned_no_credentials;
    struct molt_log_limit refused;    /* capped or malformed heartbeat replies */
};

static void on_signal(int sig)
{
    struct molt_agent *a = signal_agent;
    int saved = errno;
    uint64_t one = 1;

    if (!a)
        return;
    if (sig == SIGHUP)
        a->reload = 1;
    else
        a->stop = 1;
    if (write(a->wake_fd, &one, sizeof(one)) < 0) {
        /* The counter is full, so the loop is awake anyway. */
    }
    errno = saved;
}

/* The service manager's notifications never stop the agent: a failure is
 * logged once, then the agent carries on as if there were no manager. */
static void notify(struct molt_agent *a, const char *state)
{
    struct molt_err err = MOLT_ERR_INIT;

    if (molt_notify(state, &err) < 0 && !a->notify_warned) {
        a->notify_warned = 1;
        molt_log_warn("agent.notify", "state=%.*s error=\"%s\"", (int)strcspn(state, "\n"), state,
                      err.msg);
    }
}

static void poke(struct molt_agent *a)
{
    uint64_t one = 1;

    if (a->wake_fd >= 0 && write(a->wake_fd, &one, sizeof(one)) < 0) {
        /* Already awake (counter full). */
    }
}

void molt_agent_wake(struct molt_agent *a, int what)
{
    atomic_fetch_or(&a->wake, what);
    poke(a);
}

void molt_agent_request_exit(struct molt_agent *a, int code)
{
    atomic_store(&a->exit_code, code);
    a->stop = 1;
    poke(a);
}

void molt_agent_on_first_ack(struct molt_agent *a, molt_agent_hook fn, void *arg)
{
    a->first_ack_fn = fn;
    a->first_ack_arg = arg;
}

void molt_agent_config(struct molt_agent *a, struct molt_config *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->conf;
    pthread_mutex_unlock(&a->mu);
}

int molt_agent_token(struct molt_agent *a, char *out, size_t n, struct molt_err *err)
{
    int rc = 0;

    pthread_mutex_lock(&a->mu);
    if (!a->have_identity)
        rc = molt_err_set(err, MOLT_E_STATE, "not registered");
    else if (strlen(a->id.token) >= n)
        rc = molt_err_set(err, MOLT_E_LIMIT, "token buffer too small");
    else
        memcpy(out, a->id.token, strlen(a->id.token) + 1);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void molt_agent_status(struct molt_agent *a, struct molt_agent_status *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->st;
    out->registered = a->have_identity;
    snprintf(out->server_url, sizeof(out->server_url), "%s", a->conf.server.url);
    pthread_mutex_unlock(&a->mu);
    out->has_task = molt_task_current(&a->tasks, &out->task);
    out->bytes_downloaded = molt_task_bytes_downloaded(&a->tasks);
}

int64_t molt_agent_os_time(const struct molt_agent *a)
{
    return molt_host_monotonic_ms() - a->start_mono_ms;
}

static void watchdog_tick(struct molt_agent *a)
{
    int64_t now;

    if (!a->watchdog_ms)
        return;
    now = molt_host_monotonic_ms();
    if (now - a->watchdog_last_mono >= a->watchdog_ms) {
        notify(a, "WATCHDOG=1");
        a->watchdog_last_mono = now;
    }
}

int molt_agent_poll_tick(void *arg)
{
    watchdog_tick(arg);
    return 0;
}

/* ---- start-up ---------------------------------------------------------- */

static int take_lock(struct molt_agent *a, struct molt_err *err)
{
    char path[PATH_MAX], pid[32];
    ssize_t n;
    int rc = molt_fs_join(path, sizeof(path), a->state_dir, LOCK_FILE, err);

    if (rc < 0)
        return rc;
    a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0)
        return molt_err_errno(err, "open %s", path);
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return molt_err_errno(err, "lock %s", path);
        n = pread(a->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return molt_err_set(err, MOLT_E_BUSY, "another molt-agent (pid %s) holds %s",
                            pid[0] ? pid : "unknown", a->state_dir);
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(a->lock_fd, 0) < 0 || pwrite(a->lock_fd, pid, (size_t)n, 0) != n)
        return molt_err_errno(err, "write %s", path);
    return 0;
}

static int read_machine_id(struct molt_agent *a, struct molt_err *err)
{
    int rc = molt_host_machine_id(a->conf.agent.machine_id_file, a->machine_id, err);

    /* Some minimal images only have D-Bus's copy. */
    if (rc == MOLT_E_NOTFOUND && strcmp(a->conf.agent.machine_id_file, "/etc/machine-id") == 0)
        rc = molt_host_machine_id("/var/lib/dbus/machine-id", a->machine_id, err);
    for (char *p = a->machine_id; rc == 0 && *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    return rc;
}

static void load_identity(struct molt_agent *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];
    const char *why;

    if (molt_fs_join(path, sizeof(path), a->state_dir, MOLT_IDENTITY_FILE, &err) < 0 ||
        molt_identity_load(path, &a->id, &err) < 0) {
        if (err.code == MOLT_E_NOTFOUND)
            molt_log_info("identity.none", "action=register");
        else
            molt_log_warn("identity.unusable", "error=\"%s\" action=register", err.msg);
        return;
    }
    why = molt_identity_stale(&a->id, a->machine_id, a->conf.server.url);
    if (why) {
        molt_log_warn("identity.stale", "collector=%lld reason=\"%s\" action=register",
                      (long long)a->id.collector_id, why);
        return;
    }
    a->have_identity = 1;
    a->st.collector_id = a->id.collector_id;
    snprintf(a->st.name, sizeof(a->st.name), "%s", a->id.name);
    snprintf(a->st.server_url, sizeof(a->st.server_url), "%s", a->id.server_url);
    molt_log_info("identity.loaded", "collector=%lld name=%s", (long long)a->id.collector_id,
                  a->id.name);
}

static int setup_signals(struct molt_agent *a, struct molt_err *err)
{
    struct sigaction sa;

    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->wake_fd < 0)
        return molt_err_errno(err, "eventfd");
    signal_agent = a;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return molt_err_errno(err, "sigaction");
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* The API thread must not take our signals: the main thread's poll should see them. */
static int start_api(struct molt_agent *a, struct molt_err *err)
{
    char path[PATH_MAX];
    sigset_t block, old;
    int rc;

    if ((rc = molt_fs_mkdir_p(a->run_dir, 0755, err)) < 0 ||
        (rc = molt_fs_join(path, sizeof(path), a->run_dir, MOLT_API_SOCKET, err)) < 0)
        return rc;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = molt_api_start(a->api, path, err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void setup_logging(const struct molt_config *c)
{
    enum molt_log_level level = MOLT_LOG_INFO;

    molt_log_level_parse(c->agent.log_level, &level);
    molt_log_setup("molt-agent", level, strcmp(c->agent.log_target, "syslog") == 0);
}

static int init_steps(struct molt_agent *a, const char *config_path,
                      const struct molt_agent_parts *parts, struct molt_err *err)
{
    int rc;

    if ((rc = molt_conf_load(&a->conf, config_path, err)) < 0 ||
        (rc = molt_conf_check_writable(&a->conf, err)) < 0)
        return MOLT_EXIT_FATAL;
    setup_logging(&a->conf);
    if (!a->conf.server.url[0])
        return molt_err_set(err, MOLT_E_CONFIG, "configuration: server.url is not set"),
               MOLT_EXIT_FATAL;
    snprintf(a->state_dir, sizeof(a->state_dir), "%s", a->conf.agent.state_dir);
    snprintf(a->run_dir, sizeof(a->run_dir), "%s", a->conf.agent.run_dir);
    if (molt_fs_mkdir_p(a->state_dir, 0700, err) < 0 ||
        molt_fs_join(a->outbox_dir, sizeof(a->outbox_dir), a->state_dir, "outbox", err) < 0)
        return MOLT_EXIT_FATAL;
    if ((rc = take_lock(a, err)) < 0)
        return rc == MOLT_E_BUSY ? MOLT_EXIT_LOCKED : MOLT_EXIT_FATAL;
    if (molt_host_read(&a->host, err) < 0 || read_machine_id(a, err) < 0 ||
        molt_http_new(&a->http, &a->conf, &a->stop, err) < 0 || setup_signals(a, err) < 0)
        return MOLT_EXIT_FATAL;
    /* Signals, molt_agent_wake and molt_agent_request_exit write to wake_fd after
     * setting their flag: a held long-poll then ends at once, not at the next check. */
    molt_http_set_wake_fd(a->http, a->wake_fd);
    snprintf(a->st.name, sizeof(a->st.name), "%s",
             a->conf.agent.name[0] ? a->conf.agent.name : a->host.host_name);
    a->st.interval_ms = a->conf.agent.heartbeat_interval_ms;
    load_identity(a);
    molt_trust_configure(&a->trust, &a->conf, a->state_dir);
    /* A first retry never waits longer than a heartbeat would have. */
    molt_backoff_init(&a->hb_backoff,
                      a->conf.agent.heartbeat_interval_ms < MOLT_BACKOFF_BASE_MS
                          ? a->conf.agent.heartbeat_interval_ms
                          : MOLT_BACKOFF_BASE_MS,
                      a->conf.agent.backoff_max_ms, 0);
    molt_backoff_init(&a->outbox_backoff, MOLT_BACKOFF_BASE_MS, a->conf.agent.backoff_max_ms, 0);
    /* The pipeline starts before the API serves, so it can add routes of its own. */
    if (molt_api_new(&a->api, err) < 0 || (parts->api_routes && parts->api_routes(a, err) < 0) ||
        a->pipeline->init(a, err) < 0)
        return MOLT_EXIT_FATAL;
    if ((rc = start_api(a, err)) < 0)
        return rc == MOLT_E_BUSY ? MOLT_EXIT_LOCKED : MOLT_EXIT_FATAL;
    return 0;
}

static void wake_outbox(void *arg)
{
    molt_agent_wake(arg, MOLT_WAKE_OUTBOX);
}

int molt_agent_init(struct molt_agent *a, const char *config_path,
                    const struct molt_agent_parts *parts, struct molt_err *err)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    molt_tasks_init(&a->tasks);
    a->tasks.outbox_dir = a->outbox_dir;
    a->tasks.queued_fn = wake_outbox;
    a->tasks.queued_arg = a;
    a->tasks.pipeline = a->pipeline = parts->pipeline;
    a->tasks.agent = a;
    a->lock_fd = -1;
    a->wake_fd = -1;
    a->start_mono_ms = molt_host_monotonic_ms();
    if (molt_trust_init(&a->trust, err) < 0)
        return MOLT_EXIT_FATAL;
    if (config_path)
        snprintf(a->config_path, sizeof(a->config_path), "%s", config_path);
    return init_steps(a, config_path, parts, err);
}

void molt_agent_cleanup(struct molt_agent *a)
{
    molt_api_free(a->api);    /* first: no handler may run once the pipeline is gone */
    a->api = NULL;
    if (a->pipeline)
        a->pipeline->shutdown(a);
    molt_http_free(a->http);
    a->http = NULL;
    molt_trust_cleanup(&a->trust);
    signal_agent = NULL;
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    if (a->lock_fd >= 0)
        close(a->lock_fd);    /* releases the flock */
    a->wake_fd = a->lock_fd = -1;
    explicit_bzero(&a->id, sizeof(a->id));
    explicit_bzero(&a->conf.server.access_key, sizeof(a->conf.server.access_key));
    molt_tasks_destroy(&a->tasks);
    pthread_mutex_destroy(&a->mu);
}

/* ---- status bookkeeping ----------------------------------------------- */

static void status_failure(struct molt_agent *a, const char *msg, int64_t delay_ms)
{
    pthread_mutex_lock(&a->mu);
    a->st.failures++;
    a->st.heartbeats_failed++;
    molt_text_shown(a->st.last_error, sizeof(a->st.last_error), msg, MOLT_TEXT_QUOTES);
    a->st.next_heartbeat_ms = molt_host_realtime_ms() + delay_ms;
    pthread_mutex_unlock(&a->mu);
}

static void status_success(struct molt_agent *a, const struct loop *l, int64_t delay_ms)
{
    int64_t now = molt_host_realtime_ms();

    pthread_mutex_lock(&a->mu);
    a->st.failures = 0;
    a->st.last_error[0] = '\0';
    a->st.heartbeats++;
    a->st.last_heartbeat_ms = now;
    a->st.interval_ms = l->interval_ms;
    a->st.long_poll = l->long_poll;
    a->st.next_heartbeat_ms = now + (l->long_poll ? l->interval_ms : delay_ms);
    pthread_mutex_unlock(&a->mu);
}

/* ---- registration ------------------------------------------------------- */

static int64_t retry_after_of(const struct molt_http_reply *rep)
{
    return rep->status == 429 || rep->status == 503 ? rep->retry_after_ms : -1;
}

/* A new identity becomes the current one. */
static void adopt_identity(struct molt_agent *a, const struct molt_identity *id)
{
    pthread_mutex_lock(&a->mu);
    a->id = *id;
    a->have_identity = 1;
    a->st.registered = 1;
    a->st.collector_id = id->collector_id;
    snprintf(a->st.name, sizeof(a->st.name), "%s", id->name);
    snprintf(a->st.server_url, sizeof(a->st.server_url), "%s", id->server_url);
    pthread_mutex_unlock(&a->mu);
}

static void do_register(struct molt_agent *a, struct loop *l, int64_t now)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_identity id;
    struct molt_http_reply rep;
    int64_t interval = 0, delay;
    int rc;

    if (!molt_identity_can_register(&a->conf)) {
        delay = molt_backoff_next(&a->hb_backoff, -1);
        if (!l->warned_no_credentials)
            molt_log_error("register.impossible", "reason=\"no identity and no registration "
                           "credentials (server.access_id, server.access_key)\" action=retry");
        l->warned_no_credentials = 1;
        status_failure(a, "no identity and no registration credentials", delay);
        l->next_hb = now + delay;
        return;
    }
    molt_host_read(&a->host, NULL);
    struct molt_register_req q = {
        .conf = &a->conf,
        .host = &a->host,
        .machine_id = a->machine_id,
        .state_dir = a->state_dir,
        .os_time_ms = molt_agent_os_time(a),
        .abort_fn = molt_agent_poll_tick,
        .abort_arg = a,
    };
    rc = molt_identity_register(a->http, &q, &id, &rep, &interval, &err);
    if (rep.body)
        explicit_bzero(rep.body, rep.len);    /* it held the token */
    if (rc == 0) {
        adopt_identity(a, &id);
        explicit_bzero(&id, sizeof(id));
        if (interval > 0) {
            l->interval_ms = interval;
            l->server_interval = 1;
        }
        l->long_poll = 0;
        l->next_hb = now;
        l->warned_no_credentials = 0;
        pthread_mutex_lock(&a->mu);
        a->st.interval_ms = l->interval_ms;
        pthread_mutex_unlock(&a->mu);
    } else if (rc != MOLT_E_CANCELLED) {
        delay = molt_backoff_next(&a->hb_backoff, retry_after_of(&rep));
        molt_log_warn("register.failed", "error=\"%s\" retry_in_ms=%lld", err.msg,
                      (long long)delay);
        status_failure(a, err.msg, delay);
        l->next_hb = now + delay;
    }
    molt_http_reply_free(&rep);
}

/* The server no longer knows our token. */
static void token_rejected(struct molt_agent *a, struct loop *l, int64_t now, const char *what)
{
    int64_t delay = molt_backoff_next(&a->hb_backoff, -1);

    if (molt_identity_can_register(&a->conf)) {
        molt_log_warn("token.rejected", "during=%s action=register", what);
        pthread_mutex_lock(&a->mu);
        a->have_identity = 0;
        pthread_mutex_unlock(&a->mu);
    } else {
        molt_log_error("token.rejected", "during=%s reason=\"no registration credentials "
                       "(server.access_id, server.access_key) to register again\" "
                       "action=retry retry_in_ms=%lld", what, (long long)delay);
    }
    status_failure(a, "token rejected by the server", delay);
    l->next_hb = now + delay;
}

/* ---- outbox --------------------------------------------------------------- */

struct sender {
    struct molt_agent *a;
    struct loop *l;
};

/* POSTs one outbox entry to url: a final report or an event. */
static int post_entry(struct sender *s, const char *url, const char *body, size_t len,
                      long *status, struct molt_err *err)
{
    char token[MOLT_TOKEN_MAX + 1];
    struct molt_http_reply rep;
    int rc;

    *status = 0;
    if ((rc = molt_agent_token(s->a, token, sizeof(token), err)) < 0)
        return rc;
    struct molt_http_req req = {
        .method = "POST",
        .url = url,
        .body = body,
        .body_len = len,
        .bearer = token,
        .max_reply = MOLT_REPORT_REPLY_MAX,
        .abort_fn = molt_agent_poll_tick,
        .abort_arg = s->a,
    };
    rc = molt_http_request(s->a->http, &req, &rep, err);
    explicit_bzero(token, sizeof(token));
    *status = rep.status;
    s->l->outbox_retry_after = retry_after_of(&rep);
    if (rep.status == 401)
        s->l->token_rejected = 1;
    molt_http_reply_free(&rep);
    return rc;
}

static int send_report(void *arg, const char *task_id, const char *body, size_t len,
                       long *status, struct molt_err *err)
{
    (void)task_id;
    return post_entry(arg, "/api/v1/collector/reports", body, len, status, err);
}

/* An event of docs/protocol.md section 4. */
static int send_event(void *arg, const char *task_id, const char *body, size_t len,
                      long *status, struct molt_err *err)
{
    (void)task_id;
    return post_entry(arg, "/api/v1/collector/events", body, len, status, err);
}

static void flush_outbox(struct molt_agent *a, struct loop *l, int64_t now)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct sender s = { a, l };
    int rc;

    l->outbox_retry_after = -1;
    l->token_rejected = 0;
    rc = molt_outbox_flush(a->outbox_dir, send_report, &s, &err);
    if (rc == 0)
        rc = molt_outbox_flush_kept(&a->tasks.kept, a->outbox_dir, send_report, &s, &err);
    if (rc == 0)
        rc = molt_outbox_flush_events(a->outbox_dir, send_event, &s, &err);
    if (rc == 0) {
        l->outbox_pending = 0;
        molt_backoff_reset(&a->outbox_backoff);
        return;
    }
    if (rc == MOLT_E_CANCELLED)
        return;
    if (l->token_rejected) {
        token_rejected(a, l, now, "report");
        return;
    }
    int64_t delay = molt_backoff_next(&a->outbox_backoff, l->outbox_retry_after);
    a->outbox_due_mono = now + delay;
    molt_log_warn("report.retry", "error=\"%s\" retry_in_ms=%lld", err.msg, (long long)delay);
}

/* ---- heartbeat ------------------------------------------------------------- */

/* Handles the reply's command; returns 1 when it is one not seen on the last reply. */
static int on_command(struct molt_agent *a, struct loop *l, struct molt_hb_reply *hr)
{
    char key[sizeof(l->last_cmd)];

    if (hr->command_error[0]) {
        if (strncmp(l->last_cmd_error, hr->command_error, sizeof(l->last_cmd_error) - 1) != 0)
            molt_log_warn("command.invalid", "error=\"%s\" action=ignore", hr->command_error);
        snprintf(l->last_cmd_error, sizeof(l->last_cmd_error), "%s", hr->command_error);
        return 0;
    }
    if (!hr->has_command) {
        l->last_cmd[0] = l->last_cmd_error[0] = '\0';
        return 0;
    }
    snprintf(key, sizeof(key), "%s/%s/%s", molt_command_type_name(hr->cmd.type),
             hr->cmd.task_id, hr->cmd.build.version);
    int fresh = strcmp(key, l->last_cmd) != 0;
    if (!fresh)
        molt_log_debug("command.repeat", "key=%s", key);
    else if (hr->cmd.type == MOLT_CMD_UPGRADE)
        molt_log_info("command.received",
                      "type=upgrade task=%s to=%s build=%s size=%lld expires_at=%lld",
                      hr->cmd.task_id, hr->cmd.to_version, hr->cmd.build.version,
                      (long long)hr->cmd.build.size, (long long)hr->cmd.expires_at);
    else
        molt_log_info("command.received", "type=cancel task=%s", hr->cmd.task_id);
    snprintf(l->last_cmd, sizeof(l->last_cmd), "%s", key);
    molt_task_on_command(&a->tasks, &hr->cmd, molt_host_realtime_ms(),
                         a->conf.agent.allow_downgrade);
    return fresh;
}

/* The keyring and channel a heartbeat reply announced, keys first (the
 * channel is verified with them); a failure or refusal is logged by trust.c
 * and leaves the document in force. */
static void fetch_trust(struct molt_agent *a, const struct molt_hb_reply *hr, int64_t now)
{
    struct molt_err err = MOLT_ERR_INIT;
    char token[MOLT_TOKEN_MAX + 1];
    int keyring = molt_trust_keyring_wants(&a->trust, hr->keyring_serial, now);

    if (!keyring && !molt_trust_wants(&a->trust, hr->channel_serial, now))
        return;
    if (molt_agent_token(a, token, sizeof(token), &err) == 0) {
        if (keyring)
            molt_trust_keyring_fetch(&a->trust, a->http, token, hr->keyring_serial, now, &err);
        /* Asked again: a new keyring may make a lapsed channel verify. */
        if (molt_trust_wants(&a->trust, hr->channel_serial, now))
            molt_trust_fetch(&a->trust, a->http, token, hr->channel_serial, now, &err);
    }
    explicit_bzero(token, sizeof(token));
}

static void heartbeat_ok(struct molt_agent *a, struct loop *l, struct molt_hb_reply *hr,
                         int64_t now)
{
    int64_t next, recovered = a->hb_backoff.failures;

    molt_backoff_reset(&a->hb_backoff);
    if (hr->interval_ms > 0 && hr->interval_ms != l->interval_ms) {
        molt_log_info("heartbeat.interval", "interval_ms=%lld", (long long)hr->interval_ms);
        l->interval_ms = hr->interval_ms;
        l->server_interval = 1;
    }
    l->long_poll = hr->long_poll && a->conf.agent.long_poll;
    /* Before any command: the trial of a new version commits on this. */
    if (!a->first_ack_done) {
        a->first_ack_done = 1;
        molt_log_info("heartbeat.first", "collector=%lld", (long long)a->st.collector_id);
        if (a->first_ack_fn)
            a->first_ack_fn(a, a->first_ack_arg);
    }
    /* Before the command: it is admitted against the newest keys and channel. */
    fetch_trust(a, hr, now);
    int fresh = on_command(a, l, hr);
    if (l->long_poll) {
        /* The next heartbeat goes at once (the server holds it), but not sooner than half
         * an interval after the last one unless a new command just came: a server that
         * answers at once, or repeats a command we cannot act on yet, gets no busy loop. */
        next = fresh ? now : l->last_send + l->interval_ms / 2;
        if (next < now)
            next = now;
    } else {
        next = now + molt_backoff_jitter(&a->hb_backoff, l->interval_ms, MOLT_HB_JITTER_PCT);
    }
    l->next_hb = next;
    status_success(a, l, next - now);
    if (recovered)
        molt_log_info("heartbeat.recovered", "after_failures=%lld", (long long)recovered);
    molt_log_debug("heartbeat.next", "interval_ms=%lld long_poll=%d next_in_ms=%lld",
                   (long long)l->interval_ms, l->long_poll, (long long)(next - now));
}

/* A server answers as often as it is asked: a reply refused for its size or
 * its contents is warned about once, then at most once a minute with a count. */
static void heartbeat_failed_log(struct loop *l, int rc, const struct molt_err *err, int64_t now,
                                 int64_t delay)
{
    unsigned long held = 0;
    char note[48] = "";

    if (rc == MOLT_E_LIMIT || rc == MOLT_E_PARSE) {
        if (!molt_log_limit_pass(&l->refused, err->msg, now, REFUSED_LOG_EVERY_MS, &held))
            return;
        if (held)
            snprintf(note, sizeof(note), " held_back=%lu", held);
    }
    molt_log_warn("heartbeat.failed", "error=\"%s\" retry_in_ms=%lld%s", err->msg,
                  (long long)delay, note);
}

/* Aborts a held long-poll when the main loop has something better to do (a
 * wakeup, a reload); the stop flag is the HTTP client's own. */
static int long_poll_abort(void *arg)
{
    struct molt_agent *a = arg;

    molt_agent_poll_tick(a);
    return atomic_load(&a->wake) != 0 || a->reload;
}

/* One heartbeat with the agent's token; wait_ms > 0 asks for a long-poll. The
 * transfer aborts (MOLT_E_CANCELLED) on stop and, during a long-poll, on a wakeup. */
static int send_heartbeat(struct molt_agent *a, int64_t wait_ms, struct molt_http_reply *rep,
                          struct molt_hb_reply *out, struct molt_err *err)
{
    char token[MOLT_TOKEN_MAX + 1];
    struct molt_report task;
    /* A host-started task is the host's business: the server does not know it. */
    int has_task = molt_task_current(&a->tasks, &task) && !task.local;
    int rc;

    memset(out, 0, sizeof(*out));
    if (molt_agent_token(a, token, sizeof(token), err) < 0)
        return err ? err->code : MOLT_E_STATE;
    /* A failed refresh keeps the last facts: the heartbeat matters more. */
    molt_host_refresh(&a->host, MOLT_HOST_REFRESH_MS, NULL);
    struct molt_hb_req q = {
        .token = token,
        .host = &a->host,
        .cache = &a->hb_cache,
        .os_time_ms = molt_agent_os_time(a),
        .task = has_task ? &task : NULL,
        .wait_ms = wait_ms,
        .abort_fn = wait_ms > 0 ? long_poll_abort : molt_agent_poll_tick,
        .abort_arg = a,
    };
    molt_trust_view(&a->trust, molt_host_realtime_ms(), &q.channel);
    rc = molt_heartbeat_send(a->http, &q, rep, out, err);
    explicit_bzero(token, sizeof(token));
    return rc;
}

static void heartbeat_cycle(struct molt_agent *a, struct loop *l)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_http_reply rep = {0};    /* read below also when no request was made */
    struct molt_hb_reply hr;
    int64_t now, delay;
    int rc;

    molt_watch_fault_tick(a->state_dir);
    l->last_send = molt_host_monotonic_ms();
    rc = send_heartbeat(a, l->long_poll ? l->interval_ms : 0, &rep, &hr, &err);
    now = molt_host_monotonic_ms();
    if (rc == 0) {
        heartbeat_ok(a, l, &hr, now);
    } else if (rc == MOLT_E_CANCELLED) {
        l->next_hb = now;    /* woken (or stopping): go round the loop */
    } else if (rep.status == 401) {
        token_rejected(a, l, now, "heartbeat");
    } else {
        delay = molt_backoff_next(&a->hb_backoff, retry_after_of(&rep));
        heartbeat_failed_log(l, rc, &err, now, delay);
        status_failure(a, err.msg, delay);
        l->next_hb = now + delay;
    }
    molt_hb_reply_free(&hr);
    molt_http_reply_free(&rep);
}

/* ---- reload ------------------------------------------------------------------ */

static void do_reload(struct molt_agent *a, struct loop *l, int64_t now)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config c;

    a->reload = 0;
    if (molt_conf_load(&c, a->config_path[0] ? a->config_path : NULL, &err) < 0 ||
        (!c.server.url[0] && molt_err_set(&err, MOLT_E_CONFIG, "server.url is not set") < 0)) {
        molt_log_error("config.reload", "error=\"%s\" action=keep-running-configuration",
                       err.msg);
        return;
    }
    if (strcmp(c.agent.state_dir, a->state_dir) != 0 || strcmp(c.agent.run_dir, a->run_dir) != 0)
        molt_log_warn("config.reload", "note=\"state_dir and run_dir changes need a restart\"");
    snprintf(c.agent.state_dir, sizeof(c.agent.state_dir), "%s", a->state_dir);
    snprintf(c.agent.run_dir, sizeof(c.agent.run_dir), "%s", a->run_dir);
    if (molt_http_set_config(a->http, &c, &err) < 0) {
        molt_log_error("config.reload", "error=\"%s\" action=keep-running-configuration",
                       err.msg);
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->conf = c;
    if (a->have_identity && strcmp(a->id.server_url, c.server.url) != 0) {
        a->have_identity = 0;
        molt_log_warn("identity.stale", "collector=%lld reason=\"server URL changed\" "
                      "action=register", (long long)a->id.collector_id);
    }
    pthread_mutex_unlock(&a->mu);
    setup_logging(&c);
    molt_trust_configure(&a->trust, &a->conf, a->state_dir);
    a->host.read_mono_ms = 0;    /* the next heartbeat reads the host facts again */
    a->hb_backoff.max_ms = a->outbox_backoff.max_ms = c.agent.backoff_max_ms;
    if (!l->server_interval)
        l->interval_ms = c.agent.heartbeat_interval_ms;
    if (!c.agent.long_poll)
        l->long_poll = 0;
    l->next_hb = now > l->jitter_until ? now : l->jitter_until;
    explicit_bzero(&c, sizeof(c));
    molt_log_info("config.reloaded", "server=%s interval_ms=%lld log_level=%s",
                  a->conf.server.url, (long long)l->interval_ms, a->conf.agent.log_level);
}

/* ---- the loop --------------------------------------------------------------- */

static void wait_until(struct molt_agent *a, int64_t deadline)
{
    struct pollfd p = { .fd = a->wake_fd, .events = POLLIN };
    uint64_t v;

    for (;;) {
        int64_t now = molt_host_monotonic_ms(), t;
        if (a->stop || a->reload || atomic_load(&a->wake) || now >= deadline)
            return;
        watchdog_tick(a);
        t = deadline - now;
        if (a->watchdog_ms && t > a->watchdog_ms)
            t = a->watchdog_ms;
        if (poll(&p, 1, (int)(t > 86400000 ? 86400000 : t)) > 0 &&
            read(a->wake_fd, &v, sizeof(v)) < 0) {
            /* EAGAIN: another reader was first. */
        }
    }
}

static void handle_wake(struct molt_agent *a, struct loop *l, int64_t now)
{
    int w = atomic_exchange(&a->wake, 0);

    /* Neither goes out before the start-up jitter has passed (0 once it has). */
    if (w & MOLT_WAKE_OUTBOX) {
        l->outbox_pending = 1;
        a->outbox_due_mono = l->jitter_until;
    }
    if ((w & MOLT_WAKE_HEARTBEAT) && a->hb_backoff.failures == 0 && a->have_identity) {
        int64_t t = l->last_send + WAKE_SPACING_MS;
        if (t < l->jitter_until)
            t = l->jitter_until;
        if (t < l->next_hb)
            l->next_hb = t > now ? t : now;
    }
}

/* After a boot or restart the first registration, heartbeat and outbox send
 * wait a random time in [0, agent.startup_jitter], so a fleet that lost power
 * together does not come back as one burst. Not on trial (a hook waits for the
 * first heartbeat: the trial's clock runs) and not when the jitter is 0. The
 * wait is the loop's own, so a stop or reload still ends it at once. */
static void startup_jitter(struct molt_agent *a, struct loop *l)
{
    int64_t max = a->conf.agent.startup_jitter_ms, delay, now = molt_host_monotonic_ms();

    if (max <= 0 || a->first_ack_fn) {
        if (max > 0)
            molt_log_info("agent.startup_jitter", "delay_ms=0 jitter_ms=%lld reason=trial",
                          (long long)max);
        return;
    }
    delay = (int64_t)molt_backoff_rand(&a->hb_backoff, (uint64_t)max);
    l->jitter_until = l->next_hb = a->outbox_due_mono = now + delay;
    molt_log_info("agent.startup_jitter", "delay_ms=%lld jitter_ms=%lld", (long long)delay,
                  (long long)max);
}

/* WATCHDOG=1 at half the manager's period, as sd_watchdog_enabled(3) advises. */
static void start_watchdog(struct molt_agent *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    uint64_t usec = 0;
    int rc = molt_notify_watchdog_usec(&usec, &err);

    if (rc < 0)
        molt_log_warn("agent.watchdog", "error=\"%s\"", err.msg);
    else if (rc > 0 && usec >= 2000)
        a->watchdog_ms = usec / 2000 > INT32_MAX ? INT32_MAX : (int)(usec / 2000);
}

/* What confines each upgrade worker on this kernel, said once at the start
 * (a layer the kernel lacks reads "-landlock(unsupported)"); each worker
 * logs what it applied. */
static void log_sandbox(void)
{
    struct molt_sandbox_status st;

    molt_sandbox_probe(&st);
    molt_log_info("agent.sandbox", "worker_layers=\"%s\"", st.text);
}

int molt_agent_run(struct molt_agent *a)
{
    struct loop l = { 0 };

    l.interval_ms = a->conf.agent.heartbeat_interval_ms;
    /* The agent running after a rollback that ended a watch tells the server. */
    molt_watch_queue_events(a->state_dir, a->outbox_dir);
    l.outbox_pending = molt_outbox_count(a->outbox_dir) > 0 ||
                       molt_outbox_event_count(a->outbox_dir) > 0;
    l.last_send = -WAKE_SPACING_MS;
    start_watchdog(a);
    notify(a, "READY=1");
    molt_log_info("agent.start", "version=%s server=%s state_dir=%s pid=%ld", molt_version_self(),
                  a->conf.server.url, a->state_dir, (long)getpid());
    log_sandbox();
    startup_jitter(a, &l);
    while (!a->stop) {
        int64_t now = molt_host_monotonic_ms();
        if (a->reload)
            do_reload(a, &l, now);
        handle_wake(a, &l, now);
        if (!a->have_identity) {
            if (now >= l.next_hb)
                do_register(a, &l, now);
            if (!a->have_identity) {
                wait_until(a, l.next_hb);
                continue;
            }
        }
        if (l.outbox_pending && now >= a->outbox_due_mono)
            flush_outbox(a, &l, now);
        if (a->stop)
            break;
        if (a->have_identity && molt_host_monotonic_ms() >= l.next_hb) {
            heartbeat_cycle(a, &l);
            continue;
        }
        int64_t deadline = l.next_hb;
        if (l.outbox_pending && a->outbox_due_mono < deadline)
            deadline = a->outbox_due_mono;
        wait_until(a, deadline);
    }
    notify(a, "STOPPING=1");
    molt_log_info("agent.stopping", "exit_code=%d", atomic_load(&a->exit_code));
    return atomic_load(&a->exit_code);
}
