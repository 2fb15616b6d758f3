/* upgrade.h: what the agent core expects from the upgrade pipeline.
 *
 * agent/upgrade.c implements them (the unit tests link a double instead).
 * Threads: all four are called from the main loop thread and must not block on
 * the network or disk for long; a pipeline runs its work in a thread of its own
 * and reports through agent/task.h (molt_task_begin/update/finish). */
#ifndef MOLT_UPGRADE_H
#define MOLT_UPGRADE_H

#include "command.h"
#include "err.h"

struct molt_agent;

/* At start, after identity is loaded and before the first heartbeat: resume
 * journaled work (a task interrupted by a restart, the trial of a freshly
 * switched version). The local API exists but does not serve yet: this is the
 * place to add endpoints with molt_api_route(a->api, ...). An error is fatal
 * (exit 1). */
int molt_upgrade_init(struct molt_agent *a, struct molt_err *err);
/* A valid upgrade command that passed the core's policy checks (task.h): no
 * other task holds the slot, not expired, not the running version, downgrade
 * allowed. cmd is only borrowed for the call (molt_command_copy to keep it). */
void molt_upgrade_start(struct molt_agent *a, const struct molt_command *cmd);
/* A cancel for the task that currently holds the slot. */
void molt_upgrade_cancel(struct molt_agent *a, const struct molt_command *cmd);
/* On stop, after the local API stopped serving (also when start-up failed, even
 * before molt_upgrade_init): abort or pause the worker, which may resume after
 * the restart. Must be safe to call when nothing was started. */
void molt_upgrade_shutdown(struct molt_agent *a);

/* The local API's side (agent/upgrade_api.c), callable from any thread. */
struct molt_report;
/* Starts a task the operator asked for on the local API (a verified command;
 * local_package: an offline package file, else NULL). MOLT_E_BUSY while
 * another task runs; MOLT_E_STATE for the running version or a refused downgrade. */
int molt_upgrade_submit(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package, struct molt_err *err);
/* The current task (task_id NULL or matching), else the last finished one;
 * returns 1 when found, with *active telling which. */
int molt_upgrade_view(struct molt_agent *a, const char *task_id, struct molt_report *out,
                      int *active);
int molt_upgrade_cancel_task(struct molt_agent *a, const char *task_id, struct molt_err *err);
/* Switches back to the previous version (molt-installer rollback) and restarts. */
int molt_upgrade_rollback(struct molt_agent *a, const char *reason, struct molt_err *err);
/* Registers POST/GET /api/v1/agent/upgrade and /api/v1/agent/tasks/ID. */
int molt_upgrade_api_routes(struct molt_agent *a, struct molt_err *err);

#endif
