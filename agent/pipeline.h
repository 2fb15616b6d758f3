/* pipeline.h: what the agent core expects from the upgrade pipeline, as an
 * operations struct the agent is given (molt_agent_init's parts).
 *
 * agent/upgrade.c provides molt_upgrade_pipeline; unit tests pass a double.
 * Threads: all four are called from the main loop thread and must not block on
 * the network or disk for long; a pipeline runs its work in a thread of its own
 * and reports through agent/task.h (molt_task_begin/update/finish). */
#ifndef MOLT_PIPELINE_H
#define MOLT_PIPELINE_H

struct molt_agent;
struct molt_command;
struct molt_err;

struct molt_pipeline {
    /* At start, after identity is loaded and before the first heartbeat: resume
     * journaled work (a task interrupted by a restart, the trial of a freshly
     * switched version). The local API exists but does not serve yet: this is the
     * place to add endpoints with molt_api_route(a->api, ...). An error is fatal
     * (exit 1). */
    int (*init)(struct molt_agent *a, struct molt_err *err);
    /* A valid upgrade command that passed the core's policy checks (task.h): no
     * other task holds the slot, not expired, not the running version, downgrade
     * allowed. cmd is only borrowed for the call (molt_command_copy to keep it). */
    void (*start)(struct molt_agent *a, const struct molt_command *cmd);
    /* A cancel for the task that currently holds the slot. */
    void (*cancel)(struct molt_agent *a, const struct molt_command *cmd);
    /* On stop, after the local API stopped serving (also when start-up failed, even
     * before init): abort or pause the worker, which may resume after
     * the restart. Must be safe to call when nothing was started. */
    void (*shutdown)(struct molt_agent *a);
};

#endif
