/* upgrade.h: the upgrade pipeline (agent/upgrade.c): the operations the agent
 * core is given (pipeline.h) and the local API's side (agent/upgrade_api.c). */
#ifndef MOLT_UPGRADE_H
#define MOLT_UPGRADE_H

#include "command.h"
#include "err.h"
#include "pipeline.h"

struct molt_agent;

/* The pipeline the agent is given (pipeline.h). */
extern const struct molt_pipeline molt_upgrade_pipeline;

/* The local API's side (agent/upgrade_api.c), callable from any thread. */
struct molt_report;
/* Starts a task the operator asked for on the local API (a verified command;
 * local_package: an offline package file, else NULL); *accepted gets the task
 * as it was accepted, before its thread moves it on. MOLT_E_BUSY while
 * another task runs; MOLT_E_STATE for the running version or a refused downgrade. */
int molt_upgrade_submit(struct molt_agent *a, const struct molt_command *cmd,
                        const char *upgrade_dir, const char *local_package,
                        struct molt_report *accepted, struct molt_err *err);
/* The current task (task_id NULL or matching), else the last finished one;
 * returns 1 when found, with *active telling which. */
int molt_upgrade_view(struct molt_agent *a, const char *task_id, struct molt_report *out,
                      int *active);
int molt_upgrade_cancel_task(struct molt_agent *a, const char *task_id, struct molt_err *err);
/* The operator's upgrade --now: task_id switches without waiting for a switch
 * window (at once when it waits, else when it gets there). MOLT_E_NOTFOUND
 * when it does not run, MOLT_E_STATE past the switch. */
int molt_upgrade_switch_now(struct molt_agent *a, const char *task_id, struct molt_err *err);
/* Switches back to the previous version (molt-installer rollback). current
 * then names it: the caller restarts the agent into it
 * (molt_agent_request_exit(a, MOLT_EXIT_RESTART)) once it has answered. */
int molt_upgrade_rollback(struct molt_agent *a, const char *reason, struct molt_err *err);
/* Registers POST/GET /api/v1/agent/upgrade and /api/v1/agent/tasks/ID. */
int molt_upgrade_api_routes(struct molt_agent *a, struct molt_err *err);

#endif
