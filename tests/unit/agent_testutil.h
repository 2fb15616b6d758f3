/* agent_testutil.h: helpers shared by the agent's unit tests. */
#ifndef MOLT_AGENT_TESTUTIL_H
#define MOLT_AGENT_TESTUTIL_H

#include "testutil.h"

#include "command.h"
#include "err.h"
#include "report.h"

/* A token registration accepts. */
#define TOKEN "abcdefghijklmnopqrstuvwxyz0123456789-_"

/* A valid upgrade command's JSON (task 12345 to 20.2-100); override_key
 * ("build.x" for a build field) set to override_value (JSON text, NULL to
 * remove it). The text lives in a static buffer. */
char *tu_upgrade_json(const char *override_key, const char *override_value);
/* molt_json_parse and molt_command_parse of text. */
int tu_parse_command(const char *text, struct molt_command *cmd, struct molt_err *err);
/* An upgrade command: target to_version, applying build_version now. */
void tu_command(struct molt_command *cmd, const char *task_id, const char *to_version,
                const char *build_version);
/* The final report <dir>/outbox/<id>.json, which must be there and valid. */
void tu_read_final(const char *dir, const char *id, struct molt_report *r);

#endif
