/* worker_proc.h: the agent's side of the upgrade worker (agent/molt-worker):
 * starts it for one task with the message stream on its fd 3 and the
 * connection channel on its fd 4, hands it the task, connects for it to the
 * task's pinned hosts only, reads what it says as it would read a hostile server (worker_msg.h
 * and the checks the format cannot make), and ends it: after its result, on a
 * cancel, the deadline or a stop, or when it misbehaves. A worker that dies
 * without a result is a failed stage whose reason says how it died. */
#ifndef MOLT_WORKER_PROC_H
#define MOLT_WORKER_PROC_H

#include <limits.h>

#include "err.h"
#include "upgrade_state.h"
#include "worker_msg.h"
#include "worker_net.h"

#define MOLT_WORKER_PROGRAM "molt-worker"

struct molt_worker_job {
    const char *program;                   /* molt-worker's path (molt_worker_proc_path) */
    const char *config;                    /* the settings (molt_conf_format's text) */
    const struct molt_upgrade_state *task;
    const struct molt_wnet *net;           /* the task's pinned hosts (molt_wnet_pin) */
    int connect_timeout_ms;                /* for each connection made for the worker */
    const char *token;                     /* NULL: none goes to the worker */
    void *ctx;
    /* A progress message, checked: stage (MOLT_STAGE_DOWNLOADING..STAGING)
     * never goes back, is_new when the worker just entered it, the byte counts
     * are the package's or the delta's. Negative (err set) ends the worker. */
    int (*progress)(void *ctx, const struct molt_wmsg *m, int stage, int is_new,
                    struct molt_err *err);
    /* Asked several times a second: 0 while the task may go on, else err
     * says why not (a cancel, the deadline, the agent stopping). */
    int (*aborted)(void *ctx, struct molt_err *err);
};

/* Runs the worker to its end: 0 with staged (<task_dir>/staged), or negative
 * with err set and *failed the stage that failed (the last one the worker
 * entered, or the result's). */
int molt_worker_proc_run(const struct molt_worker_job *job, char staged[PATH_MAX], int *failed,
                         struct molt_err *err);

/* molt-worker beside the running program (of the same build, as the message
 * format requires): <directory of /proc/self/exe>/molt-worker. */
int molt_worker_proc_path(char out[PATH_MAX], struct molt_err *err);

#endif
