/* upgrade_cli.h: `molt-agent upgrade`, a client of the local API's
 * POST /api/v1/agent/upgrade. Exit codes: 0 accepted (with --wait: succeeded),
 * 1 refused or failed (the reason is printed), 2 usage. */
#ifndef MOLT_UPGRADE_CLI_H
#define MOLT_UPGRADE_CLI_H

int molt_upgrade_cli_main(const char *config_path, int json, int argc, char **argv);
/* `molt-agent cancel|rollback [TASK]` and `upgrade --now [TASK]`: POST
 * /api/v1/agent/tasks/TASK with op ("CANCEL", "ROLLBACK" or "SWITCH_NOW"); TASK
 * defaults to the agent's current (or last) task.
 * Exit codes as above. */
int molt_operator_cli_main(const char *config_path, int json, const char *op, int argc,
                           char **argv);

#endif
