/* report.h: a task's report, the "task" of docs/protocol.md section 4: what
 * every heartbeat carries for the current task, what the outbox keeps for a
 * finished one, and what the local API shows. */
#ifndef MOLT_REPORT_H
#define MOLT_REPORT_H

#include <stdint.h>

#include <json-c/json.h>

#include "command.h"
#include "err.h"

enum molt_task_status {
    MOLT_TASK_SUCCEEDED = 2,
    MOLT_TASK_FAILED = 3,
    MOLT_TASK_PROGRESSING = 6,
};

/* Stage indexes, 1-based as reported. */
enum molt_stage {
    MOLT_STAGE_ACCEPTED = 1,
    MOLT_STAGE_PREFLIGHT,
    MOLT_STAGE_DOWNLOADING,
    MOLT_STAGE_VERIFYING,
    MOLT_STAGE_STAGING,
    MOLT_STAGE_SWITCHING,
    MOLT_STAGE_RESTARTING,
    MOLT_STAGE_HEALTH_CHECK,
    MOLT_STAGE_COMMITTED,
    /* Staged, waiting for a switch window ([install] switch_window). Not a
     * stage of the protocol's nine: it is reported as "waiting" with staging's
     * index, so stageCount stays 9 and an older agent, or a server, that reads
     * the report still finds a known index. */
    MOLT_STAGE_WAITING,
};
#define MOLT_STAGE_COUNT 9           /* the stages reported by index */
#define MOLT_STAGE_NAMES 10          /* with waiting */
/* The reply to POST /reports: {"accepted","taskStatus"}, or a legacy error whose
 * message may quote a task's failure message (at most its report's): 8 KiB. */
#define MOLT_REPORT_REPLY_MAX (8 * 1024)

struct molt_report {
    char task_id[MOLT_TASK_ID_MAX + 1];
    int status;                            /* enum molt_task_status */
    char stage[32];
    int stage_index;                       /* 1..MOLT_STAGE_COUNT */
    int stage_count;
    int64_t bytes_done;
    int64_t bytes_total;
    char version[MOLT_VERSION_MAX + 1];    /* running now */
    char build_version[MOLT_VERSION_MAX + 1];
    char message[512];
    char served_by[MOLT_SOURCE_NAME_MAX + 1];   /* servedBy: the download source in use (its
                                                 * name, molt_http_url_name), "" = none */
    int local;                             /* host-started (local API): never sent to the
                                            * control plane, which does not know the task */
};

/* "accepted", ..., "committed", "waiting"; NULL out of range. */
const char *molt_stage_name(int stage);
/* The index a stage is reported with (waiting: staging's). */
int molt_stage_reported_index(int stage);
/* A report at stage (enum molt_stage) with the running version filled in. */
void molt_report_init(struct molt_report *r, const char *task_id, const char *build_version,
                      int status, int stage);
struct json_object *molt_report_to_json(const struct molt_report *r);
/* Strict: every field present and typed, status one of 2/3/6, ids and versions valid. */
int molt_report_from_json(struct json_object *o, struct molt_report *r, struct molt_err *err);

#endif
