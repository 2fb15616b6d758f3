/* upgrade_state.h: the task an upgrade pipeline is carrying out, as persisted
 * in <state_dir>/upgrade.json at every stage boundary (atomic write, 0600), so
 * that an agent restart resumes the task where it was. */
#ifndef MOLT_UPGRADE_STATE_H
#define MOLT_UPGRADE_STATE_H

#include <limits.h>
#include <stdint.h>

#include <json-c/json.h>

#include "command.h"
#include "err.h"

#define MOLT_UPGRADE_STATE_FILE "upgrade.json"

struct molt_upgrade_state {
    char task_id[MOLT_TASK_ID_MAX + 1];
    char to_version[MOLT_VERSION_MAX + 1];
    char from_version[MOLT_VERSION_MAX + 1];   /* running when the build was accepted */
    int64_t request_time;
    int64_t expires_at;
    int64_t max_rate;                          /* the command's maxBytesPerSecond, 0 = none */
    char stage[32];                            /* last stage entered */
    char task_dir[PATH_MAX];                   /* <upgrade_dir>/task-<id> */
    char local_package[PATH_MAX];              /* offline upgrade: the package file, else "" */
    int local;                                 /* started on the local API, unknown to the server */
    int source;                                /* downloadSource: the source in use, an index
                                                * into molt_build_sources(&build) */
    struct molt_build build;                   /* owns statement and signature */
};

/* A new state for cmd (deep copy of its build) at stage "accepted". */
int molt_upgrade_state_from_command(struct molt_upgrade_state *t, const struct molt_command *cmd,
                                    const char *running_version, const char *upgrade_dir,
                                    struct molt_err *err);
int molt_upgrade_state_save(const char *state_dir, const struct molt_upgrade_state *t,
                            struct molt_err *err);
/* MOLT_E_NOTFOUND when no task is persisted; MOLT_E_PARSE for a corrupt file. */
int molt_upgrade_state_load(const char *state_dir, struct molt_upgrade_state *t,
                            struct molt_err *err);
/* The document of upgrade.json (the worker's start message carries it too):
 * *out a new object; from_json validates as load does. */
int molt_upgrade_state_to_json(const struct molt_upgrade_state *t, struct json_object **out,
                               struct molt_err *err);
int molt_upgrade_state_from_json(struct json_object *o, struct molt_upgrade_state *t,
                                 struct molt_err *err);
void molt_upgrade_state_clear(const char *state_dir);
void molt_upgrade_state_free(struct molt_upgrade_state *t);

#endif
