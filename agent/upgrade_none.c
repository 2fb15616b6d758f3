/* upgrade_none.c: placeholder pipeline until agent/upgrade.c exists. It answers
 * what the core can answer honestly without one (task.c does: busy, expired,
 * running version, downgrade, unknown cancels) and leaves real upgrades alone,
 * saying so once per (task, build), so the server's task stays pending. */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "upgrade.h"

int molt_upgrade_init(struct molt_agent *a, struct molt_err *err)
{
    return 0;
}

void molt_upgrade_start(struct molt_agent *a, const struct molt_command *cmd)
{
    char key[sizeof(a->upgrade_note)];

    snprintf(key, sizeof(key), "%s/%s", cmd->task_id, cmd->build.version);
    if (strcmp(key, a->upgrade_note) == 0)
        return;
    snprintf(a->upgrade_note, sizeof(a->upgrade_note), "%s", key);
    molt_log_warn("command.ignored", "type=upgrade task=%s build=%s reason=\"upgrade pipeline "
                  "not available\"", cmd->task_id, cmd->build.version);
}

void molt_upgrade_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
    molt_log_warn("command.ignored", "type=cancel task=%s reason=\"upgrade pipeline not "
                  "available\"", cmd->task_id);
}

void molt_upgrade_shutdown(struct molt_agent *a)
{
}
