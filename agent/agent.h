/* agent.h: the molt-agent context and its main loop.
 *
 * Threads: the main thread runs molt_agent_run (registration, heartbeats, the
 * outbox); the local API runs in its server's thread; an upgrade pipeline
 * may run a worker thread of its own. Fields are grouped below by who may touch
 * them. Anything marked "mu" is read and written with a->mu held; use the
 * accessor functions from other threads.
 *
 * osTime: the collector documents define it as the time the collector has been
 * running; molt reports the milliseconds since this agent process started
 * (CLOCK_MONOTONIC, so clock changes do not affect it). An upgrade's restart
 * starts it again, as a collector restart does.
 *
 * Exit codes of `molt-agent run` (enum molt_exit). */
#ifndef MOLT_AGENT_H
#define MOLT_AGENT_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backoff.h"
#include "command.h"
#include "conf.h"
#include "err.h"
#include "heartbeat.h"
#include "host.h"
#include "identity.h"
#include "outbox.h"
#include "pipeline.h"
#include "task.h"
#include "trust.h"

enum molt_exit {
    MOLT_EXIT_OK = 0,        /* stopped by SIGTERM/SIGINT */
    MOLT_EXIT_FATAL = 1,     /* configuration or local setup error (message on stderr/log) */
    MOLT_EXIT_USAGE = 2,     /* bad command line */
    MOLT_EXIT_LOCKED = 3,    /* another molt-agent holds the state dir (or serves the socket) */
    MOLT_EXIT_RESTART = 75,  /* restart requested (after a version switch): the launcher
                              * (molt-installer launch / systemd) starts us again */
};

/* What the local API and `molt-agent status` show (mu). */
struct molt_agent_status {
    int registered;
    int64_t collector_id;
    char name[256];
    char server_url[MOLT_CONF_STR];  /* the configured server */
    int64_t last_heartbeat_ms;   /* epoch ms of the last acknowledged heartbeat, 0 = none */
    int64_t next_heartbeat_ms;   /* epoch ms the next one is planned for, 0 = unknown */
    int64_t interval_ms;
    int long_poll;
    int64_t heartbeats;          /* acknowledged since start */
    int64_t failures;            /* consecutive failed attempts */
    int64_t heartbeats_failed;   /* failed attempts since start */
    int64_t bytes_downloaded;    /* build bytes received since start, all tasks */
    char last_error[256];        /* the last failure, "" after a success */
    int has_task;
    struct molt_report task;
};

typedef void (*molt_agent_hook)(struct molt_agent *a, void *arg);

enum molt_wake {
    MOLT_WAKE_OUTBOX = 1,      /* a final report is waiting: send it now */
    MOLT_WAKE_HEARTBEAT = 2,   /* send a heartbeat now (aborts a long-poll in flight) */
};

struct molt_agent {
    /* Fixed before the threads start, read-only afterwards (any thread). */
    char config_path[PATH_MAX];          /* "" = MOLT_CONFIG or the default */
    char state_dir[MOLT_CONF_STR];
    char run_dir[MOLT_CONF_STR];
    char outbox_dir[PATH_MAX];
    char machine_id[33];
    int64_t start_mono_ms;

    /* Main thread only. conf is also written under mu (reload), so the main
     * thread reads it freely and other threads use molt_agent_config(). */
    struct molt_config conf;
    struct molt_host host;
    struct molt_hb_cache hb_cache;       /* heartbeat body members of host */
    struct molt_http *http;
    struct molt_backoff hb_backoff;
    struct molt_backoff outbox_backoff;
    int64_t outbox_due_mono;             /* next outbox attempt, 0 = now */
    int lock_fd;
    int wake_fd;                          /* eventfd: signals and wakeups */
    int watchdog_ms;                     /* WATCHDOG=1 period (lib/notify.h), 0 = off */
    int64_t watchdog_last_mono;
    int notify_warned;                   /* a failed notification was logged */
    struct molt_api *api;
    const struct molt_pipeline *pipeline;   /* given to molt_agent_init */
    void *upgrade;                       /* the pipeline's private state */

    /* Shared (mu). */
    pthread_mutex_t mu;
    struct molt_identity id;
    int have_identity;                   /* id holds a token we believe in */
    struct molt_agent_status st;

    /* The task slot and the final reports (its own lock; task.h). */
    struct molt_tasks tasks;
    /* The release channel in force (its own lock; trust.h). */
    struct molt_trust trust;

    /* Set from signal handlers and other threads. */
    volatile sig_atomic_t stop;
    volatile sig_atomic_t reload;
    atomic_int wake;                     /* enum molt_wake bits */
    atomic_int exit_code;

    /* Hooks, set before molt_agent_run (molt_agent_on_first_ack). */
    molt_agent_hook first_ack_fn;
    void *first_ack_arg;
    int first_ack_done;
};

/* What the agent is built with besides its configuration: main.c's choice,
 * a test's doubles. */
struct molt_agent_parts {
    const struct molt_pipeline *pipeline;
    /* Adds the local API's endpoints, before it serves; NULL: none. */
    int (*api_routes)(struct molt_agent *a, struct molt_err *err);
};

/* Loads configuration, host facts and identity, takes the state-dir lock,
 * adds the parts' endpoints, starts the pipeline and then the local API.
 * Returns an enum molt_exit code on failure (with err). */
int molt_agent_init(struct molt_agent *a, const char *config_path,
                    const struct molt_agent_parts *parts, struct molt_err *err);
/* Runs until stopped; returns the exit code. */
int molt_agent_run(struct molt_agent *a);
void molt_agent_cleanup(struct molt_agent *a);

/* Any thread. Ends the main loop (at once, even during a long-poll);
 * molt_agent_run then returns code (e.g. MOLT_EXIT_RESTART after a switch). */
void molt_agent_request_exit(struct molt_agent *a, int code);
/* Any thread: wake the main loop (enum molt_wake bits). */
void molt_agent_wake(struct molt_agent *a, int what);
/* Called once, on the main thread, after the first heartbeat that the server
 * acknowledged with a well-formed reply (the installer's trial commits on it). */
void molt_agent_on_first_ack(struct molt_agent *a, molt_agent_hook fn, void *arg);

/* Main thread, as a molt_http_req abort_fn: periodic duties during long
 * transfers (the systemd watchdog); never aborts. arg is the agent. */
int molt_agent_poll_tick(void *arg);

/* Any thread: consistent copies of shared state. */
void molt_agent_config(struct molt_agent *a, struct molt_config *out);
/* Copies the collector token (for downloads); returns 0, or MOLT_E_STATE when
 * the agent holds no token. Wipe the copy after use. */
int molt_agent_token(struct molt_agent *a, char *out, size_t n, struct molt_err *err);
void molt_agent_status(struct molt_agent *a, struct molt_agent_status *out);
/* Milliseconds since the agent process started: the protocol's osTime. */
int64_t molt_agent_os_time(const struct molt_agent *a);

#endif
