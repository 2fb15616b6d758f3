/* task.h: the task slot, the seam from the upgrade pipeline to the agent
 * core (pipeline.h is the seam the other way).
 *
 * The core keeps one "current task" report (report.h) that every
 * heartbeat carries as its "task" field, and an outbox for final reports. The
 * pipeline (agent/upgrade.h) drives a task through its stages with:
 *
 *   molt_task_begin()   claim the single task slot (MOLT_E_BUSY if taken);
 *   molt_task_update()  replace the progress report (stage, bytes, ...);
 *   molt_task_finish()  final report 2 or 3: written to the outbox (atomic, before
 *                       it is sent; kept in memory if the outbox will not take it),
 *                       slot released, main loop woken to send it.
 *
 * They work on the agent's struct molt_tasks (a->tasks). All molt_task_*
 * functions are thread-safe (they take its mutex) and never block on the
 * network, so a worker thread may call them at any time.
 *
 * molt_task_on_command() is called by the main loop for every valid command on
 * a heartbeat reply. It applies the protocol's policy (section 3) and hands what
 * remains to the pipeline's start and cancel (pipeline.h):
 *   - a command for a task already finished here (final report in the outbox or
 *     sent recently) is ignored;
 *   - upgrade with the same (taskId, build.version) as the current task: ignored
 *     (already being carried out); same taskId and another build.version: the
 *     next hop, handed to the pipeline's start;
 *   - another task in progress: final 3 "another task is in progress: <id>";
 *   - expired (expiresAt <= now): final 3;
 *   - toVersion is the running version: final 2 at once;
 *   - toVersion older than the running version with agent.allow_downgrade off: 3;
 *   - cancel of the current task: the pipeline's cancel; of a task unknown here:
 *     final 3 "cancelled" (so the server closes it and stops asking). */
#ifndef MOLT_TASK_H
#define MOLT_TASK_H

#include <pthread.h>
#include <stdint.h>

#include "command.h"
#include "err.h"
#include "outbox.h"
#include "pipeline.h"
#include "report.h"

#define MOLT_RECENT_TASKS 16

struct molt_agent;

/* The task slot, the ids of tasks finished here and the final reports the
 * outbox directory would not take. */
struct molt_tasks {
    pthread_mutex_t mu;
    struct molt_report task;             /* current task when active */
    int active;
    char recent[MOLT_RECENT_TASKS][MOLT_TASK_ID_MAX + 1];   /* finished task ids */
    unsigned recent_next;
    int64_t bytes_downloaded;            /* build bytes received since start, all tasks */
    struct molt_outbox_kept kept;        /* (its own lock) */

    /* Set by the owner before use, read-only afterwards. */
    const char *outbox_dir;
    void (*queued_fn)(void *arg);        /* a final report waits to be sent */
    void *queued_arg;
    const struct molt_pipeline *pipeline;   /* carries out what the policy lets through */
    struct molt_agent *agent;            /* the pipeline's argument */
};

void molt_tasks_init(struct molt_tasks *t);
/* Logs the final reports still kept in memory (about to be lost). */
void molt_tasks_destroy(struct molt_tasks *t);

/* Claims the task slot with a progress report; MOLT_E_BUSY (message names the
 * other task) when another task holds it. Re-beginning the same task id is
 * allowed (a resumed task after a restart, or the next hop). */
int molt_task_begin(struct molt_tasks *t, const struct molt_report *r, struct molt_err *err);
/* Replaces the current report if r->task_id holds the slot; else MOLT_E_STATE. */
int molt_task_update(struct molt_tasks *t, const struct molt_report *r, struct molt_err *err);
/* Copies the current report; returns 1 when there is one, 0 when idle. */
int molt_task_current(struct molt_tasks *t, struct molt_report *out);
/* Writes a final report (status 2 or 3) to the outbox (or keeps it in memory,
 * logged, when the outbox cannot be written; a local task's is only logged),
 * releases the slot if the task
 * held it, remembers the id as finished, and calls queued_fn. Fails only
 * for a status that is not final. */
int molt_task_finish(struct molt_tasks *t, const struct molt_report *final,
                     struct molt_err *err);
/* Build bytes received since start, all tasks (from the reports' bytesDone). */
int64_t molt_task_bytes_downloaded(struct molt_tasks *t);
/* 1 when task_id finished here recently (its final report is queued or sent). */
int molt_task_recently_finished(struct molt_tasks *t, const char *task_id);

/* Called by the main loop for each valid command (see the policy above);
 * allow_downgrade is agent.allow_downgrade. */
void molt_task_on_command(struct molt_tasks *t, const struct molt_command *cmd, int64_t now_ms,
                          int allow_downgrade);

#endif
