/* upgrade.h: what the agent core expects from the upgrade pipeline.
 *
 * The core ships a placeholder (agent/upgrade_none.c) that accepts nothing; the
 * pipeline replaces that file with agent/upgrade.c implementing these functions.
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

#endif
