/* report.c: a task's report (docs/protocol.md section 4): stages, the running
 * version, and the report's JSON, as heartbeats, the outbox and the local API
 * carry it. */
#include "report.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "version.h"

static const char *const stage_names[MOLT_STAGE_NAMES] = {
    "accepted", "preflight", "downloading", "verifying", "staging",
    "switching", "restarting", "health-check", "committed", "waiting",
};

const char *molt_stage_name(int stage)
{
    if (stage < 1 || stage > MOLT_STAGE_NAMES)
        return NULL;
    return stage_names[stage - 1];
}

int molt_stage_reported_index(int stage)
{
    if (stage == MOLT_STAGE_WAITING)
        return MOLT_STAGE_STAGING;
    return stage >= 1 && stage <= MOLT_STAGE_COUNT ? stage : MOLT_STAGE_ACCEPTED;
}

void molt_report_init(struct molt_report *r, const char *task_id, const char *build_version,
                      int status, int stage)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->task_id, sizeof(r->task_id), "%s", task_id);
    r->status = status;
    r->stage_index = molt_stage_reported_index(stage);
    r->stage_count = MOLT_STAGE_COUNT;
    snprintf(r->stage, sizeof(r->stage), "%s",
             molt_stage_name(stage) ? molt_stage_name(stage) : "accepted");
    snprintf(r->version, sizeof(r->version), "%s", molt_version_self());
    snprintf(r->build_version, sizeof(r->build_version), "%s", build_version);
}

struct json_object *molt_report_to_json(const struct molt_report *r)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "taskId", json_object_new_string(r->task_id));
    json_object_object_add(o, "status", json_object_new_int(r->status));
    json_object_object_add(o, "stage", json_object_new_string(r->stage));
    json_object_object_add(o, "stageIndex", json_object_new_int(r->stage_index));
    json_object_object_add(o, "stageCount", json_object_new_int(r->stage_count));
    json_object_object_add(o, "bytesDone", json_object_new_int64(r->bytes_done));
    json_object_object_add(o, "bytesTotal", json_object_new_int64(r->bytes_total));
    json_object_object_add(o, "version", json_object_new_string(r->version));
    json_object_object_add(o, "buildVersion", json_object_new_string(r->build_version));
    json_object_object_add(o, "message", json_object_new_string(r->message));
    if (r->served_by[0])
        json_object_object_add(o, "servedBy", json_object_new_string(r->served_by));
    return o;
}

static int get_small_int(struct json_object *o, const char *key, int lo, int hi, int *out,
                         struct molt_err *err)
{
    int64_t v = 0;
    int rc = molt_json_int_field(o, key, 0, lo, hi, &v, err);

    if (rc < 0)
        return rc;
    *out = (int)v;
    return 0;
}

int molt_report_from_json(struct json_object *o, struct molt_report *r, struct molt_err *err)
{
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = molt_json_copy_str(o, "taskId", r->task_id, sizeof(r->task_id), err)) < 0 ||
        (rc = get_small_int(o, "status", 2, 6, &r->status, err)) < 0 ||
        (rc = molt_json_copy_str(o, "stage", r->stage, sizeof(r->stage), err)) < 0 ||
        (rc = get_small_int(o, "stageIndex", 1, MOLT_STAGE_COUNT, &r->stage_index, err)) < 0 ||
        (rc = get_small_int(o, "stageCount", 1, MOLT_STAGE_COUNT, &r->stage_count, err)) < 0 ||
        (rc = molt_json_get_int(o, "bytesDone", &r->bytes_done, err)) < 0 ||
        (rc = molt_json_get_int(o, "bytesTotal", &r->bytes_total, err)) < 0 ||
        (rc = molt_json_copy_str(o, "version", r->version, sizeof(r->version), err)) < 0 ||
        (rc = molt_json_copy_str(o, "buildVersion", r->build_version, sizeof(r->build_version),
                                 err)) < 0 ||
        (rc = molt_json_copy_str(o, "message", r->message, sizeof(r->message), err)) < 0)
        return rc;
    const char *served = "";
    if ((rc = molt_json_opt_str(o, "servedBy", &served, err)) < 0)
        return rc;
    if (strlen(served) >= sizeof(r->served_by))
        return molt_err_set(err, MOLT_E_PARSE, "field 'servedBy': too long");
    snprintf(r->served_by, sizeof(r->served_by), "%s", served);
    if (!molt_task_id_valid(r->task_id))
        return molt_err_set(err, MOLT_E_PARSE, "field 'taskId': expected digits");
    if (r->status != 2 && r->status != 3 && r->status != 6)
        return molt_err_set(err, MOLT_E_PARSE, "field 'status': expected 2, 3 or 6");
    if (!molt_version_valid(r->version) || !molt_version_valid(r->build_version))
        return molt_err_set(err, MOLT_E_PARSE, "field 'version': not a version");
    if (r->bytes_done < 0 || r->bytes_total < 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'bytesDone': negative");
    return 0;
}
