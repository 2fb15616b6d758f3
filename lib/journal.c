/* journal.c: the upgrade journal's state machine, strict parser and writer. */
#include "journal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fs.h"
#include "json.h"
#include "version.h"

static const char *const state_names[] = {
    [MOLT_JOURNAL_IDLE] = "idle",           [MOLT_JOURNAL_SWITCHING] = "switching",
    [MOLT_JOURNAL_TRIAL] = "trial",         [MOLT_JOURNAL_ROLLING_BACK] = "rolling-back",
    [MOLT_JOURNAL_COMMITTED] = "committed", [MOLT_JOURNAL_ROLLED_BACK] = "rolled-back",
};

#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

void molt_journal_init(struct molt_journal *j)
{
    memset(j, 0, sizeof(*j));
    j->state = MOLT_JOURNAL_IDLE;
}

const char *molt_journal_state_name(enum molt_journal_state state)
{
    return (size_t)state < N_STATES ? state_names[state] : "unknown";
}

int molt_journal_state_parse(const char *name, enum molt_journal_state *out)
{
    for (size_t i = 0; i < N_STATES; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum molt_journal_state)i;
            return 0;
        }
    }
    return MOLT_E_INVAL;
}

const char *molt_journal_result_name(enum molt_journal_result result)
{
    return result == MOLT_JOURNAL_RESULT_COMMITTED ? "committed" : "rolled-back";
}

static int result_parse(const char *name, enum molt_journal_result *out)
{
    if (strcmp(name, "committed") == 0)
        *out = MOLT_JOURNAL_RESULT_COMMITTED;
    else if (strcmp(name, "rolled-back") == 0)
        *out = MOLT_JOURNAL_RESULT_ROLLED_BACK;
    else
        return MOLT_E_INVAL;
    return 0;
}

int molt_journal_path(char *out, size_t n, const char *state_dir, struct molt_err *err)
{
    return molt_fs_join(out, n, state_dir, MOLT_JOURNAL_FILE, err);
}

/* Reasons come from people and error messages: keep what fits, cut the rest. */
static void copy_reason(char *dst, const char *src)
{
    snprintf(dst, MOLT_JOURNAL_REASON_MAX, "%s", src ? src : "");
}

/* ---- parsing ---- */

static int get_version(struct json_object *o, const char *key, char *out, struct molt_err *err)
{
    int rc = molt_json_copy_str(o, key, out, MOLT_JOURNAL_VERSION_MAX, err);

    if (rc < 0)
        return rc;
    if (out[0] && !molt_version_valid(out))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': '%s' is not a version", key, out);
    return 0;
}

static int get_task(struct json_object *o, const char *key, char *out, struct molt_err *err)
{
    int rc = molt_json_copy_str(o, key, out, MOLT_JOURNAL_TASK_MAX, err);

    if (rc < 0)
        return rc;
    if (out[0] && !molt_task_id_valid(out))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': '%s' is not a task id", key, out);
    return 0;
}

static int get_time(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    int rc = molt_json_int_field(o, key, 0, 0, INT64_MAX, out, err);

    return rc < 0 ? rc : 0;
}

/* Fields later than the first format: absent in older journals, 0 then. */
static int get_opt_time(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    int rc;

    *out = 0;
    rc = molt_json_int_field(o, key, 1, 0, INT64_MAX, out, err);
    return rc < 0 ? rc : 0;
}

static int get_opt_bool(struct json_object *o, const char *key, int *out, struct molt_err *err)
{
    struct json_object *v;

    *out = 0;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    return molt_json_get_bool(o, key, out, err);
}

static int parse_outcome(struct json_object *o, struct molt_journal_outcome *out,
                         struct molt_err *err)
{
    const char *result;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not an object");
    if ((rc = get_task(o, "taskId", out->task_id, err)) < 0 ||
        (rc = molt_json_get_str(o, "result", &result, err)) < 0 ||
        (rc = get_version(o, "fromVersion", out->from_version, err)) < 0 ||
        (rc = get_version(o, "toVersion", out->to_version, err)) < 0 ||
        (rc = molt_json_copy_str(o, "reason", out->reason, sizeof(out->reason), err)) < 0 ||
        (rc = get_time(o, "at", &out->at_ms, err)) < 0 ||
        (rc = get_opt_bool(o, "afterCommit", &out->after_commit, err)) < 0)
        return rc;
    if (result_parse(result, &out->result) < 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'result': unknown result '%.32s'", result);
    if (!out->to_version[0])
        return molt_err_set(err, MOLT_E_PARSE, "field 'toVersion': empty");
    return 0;
}

static int parse_outcomes(struct json_object *root, struct molt_journal *j, struct molt_err *err)
{
    struct json_object *arr;
    size_t n;

    if (!json_object_object_get_ex(root, "outcomes", &arr))
        return molt_err_set(err, MOLT_E_PARSE, "missing field 'outcomes'");
    if (!json_object_is_type(arr, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'outcomes': expected array");
    n = json_object_array_length(arr);
    if (n > MOLT_JOURNAL_OUTCOMES)
        return molt_err_set(err, MOLT_E_PARSE, "field 'outcomes': more than %d entries",
                            MOLT_JOURNAL_OUTCOMES);
    for (size_t i = 0; i < n; i++) {
        int rc = parse_outcome(json_object_array_get_idx(arr, i), &j->outcomes[i], err);
        if (rc < 0)
            return molt_err_prefix(err, "outcomes[%zu]", i);
    }
    j->n_outcomes = n;
    return 0;
}

/* The fields each state cannot do without; a journal missing them would send
 * recovery the wrong way, so it is corrupt. */
static int check_state_fields(const struct molt_journal *j, struct molt_err *err)
{
    const char *state = molt_journal_state_name(j->state);

    if (j->state == MOLT_JOURNAL_IDLE)
        return 0;
    if (!j->from_version[0] || !j->to_version[0])
        return molt_err_set(err, MOLT_E_PARSE, "state %s without fromVersion and toVersion", state);
    if (strcmp(j->from_version, j->to_version) == 0)
        return molt_err_set(err, MOLT_E_PARSE, "state %s: fromVersion equals toVersion", state);
    if ((j->state == MOLT_JOURNAL_SWITCHING || j->state == MOLT_JOURNAL_TRIAL ||
         j->state == MOLT_JOURNAL_COMMITTED) &&
        !j->task_id[0])
        return molt_err_set(err, MOLT_E_PARSE, "state %s without taskId", state);
    if (j->state == MOLT_JOURNAL_TRIAL && j->trial_deadline_ms <= 0)
        return molt_err_set(err, MOLT_E_PARSE, "state trial without trialDeadline");
    if (j->watch_until_ms && j->state != MOLT_JOURNAL_COMMITTED)
        return molt_err_set(err, MOLT_E_PARSE, "state %s with a watchUntil", state);
    if (j->after_commit && j->state != MOLT_JOURNAL_ROLLING_BACK)
        return molt_err_set(err, MOLT_E_PARSE, "state %s with afterCommit", state);
    return 0;
}

static int parse_root(struct json_object *root, struct molt_journal *j, struct molt_err *err)
{
    const char *state;
    int64_t format;
    int rc;

    if (!json_object_is_type(root, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if ((rc = molt_json_get_int(root, "format", &format, err)) < 0)
        return rc;
    if (format != MOLT_JOURNAL_FORMAT)
        return molt_err_set(err, MOLT_E_PARSE, "unsupported format %" PRId64, format);
    if ((rc = molt_json_get_str(root, "state", &state, err)) < 0)
        return rc;
    if (molt_journal_state_parse(state, &j->state) < 0)
        return molt_err_set(err, MOLT_E_PARSE, "unknown state '%.32s'", state);
    if ((rc = get_task(root, "taskId", j->task_id, err)) < 0 ||
        (rc = get_version(root, "fromVersion", j->from_version, err)) < 0 ||
        (rc = get_version(root, "toVersion", j->to_version, err)) < 0 ||
        (rc = get_version(root, "previousVersion", j->prev_version, err)) < 0 ||
        (rc = get_time(root, "starts", &j->starts, err)) < 0 ||
        (rc = get_time(root, "trialStartedAt", &j->trial_started_ms, err)) < 0 ||
        (rc = get_time(root, "trialDeadline", &j->trial_deadline_ms, err)) < 0 ||
        (rc = molt_json_copy_str(root, "reason", j->reason, sizeof(j->reason), err)) < 0 ||
        (rc = get_time(root, "updatedAt", &j->updated_ms, err)) < 0 ||
        (rc = get_opt_time(root, "watchUntil", &j->watch_until_ms, err)) < 0 ||
        (rc = get_opt_time(root, "watchStarts", &j->watch_starts, err)) < 0 ||
        (rc = get_opt_bool(root, "afterCommit", &j->after_commit, err)) < 0 ||
        (rc = parse_outcomes(root, j, err)) < 0)
        return rc;
    return check_state_fields(j, err);
}

int molt_journal_parse(const char *buf, size_t len, struct molt_journal *j, struct molt_err *err)
{
    struct json_object *root = NULL;
    int rc;

    molt_journal_init(j);
    if (len > MOLT_JOURNAL_MAX_BYTES)
        return molt_err_set(err, MOLT_E_PARSE, "journal: larger than %d bytes",
                            MOLT_JOURNAL_MAX_BYTES);
    rc = molt_json_parse(buf, len, &root, err);
    if (rc == 0)
        rc = parse_root(root, j, err);
    json_object_put(root);
    if (rc < 0) {
        molt_journal_init(j);
        /* Every parse failure means the same thing to callers: corrupt. */
        if (err)
            err->code = MOLT_E_PARSE;
        molt_err_prefix(err, "journal");
        return MOLT_E_PARSE;
    }
    return 0;
}

/* ---- serialising ---- */

static int add(struct json_object *o, const char *key, struct json_object *v)
{
    if (!v)
        return -1;
    json_object_object_add(o, key, v);
    return 0;
}

static int add_str(struct json_object *o, const char *key, const char *s)
{
    return add(o, key, json_object_new_string(s));
}

static int add_int(struct json_object *o, const char *key, int64_t v)
{
    return add(o, key, json_object_new_int64(v));
}

static struct json_object *outcome_json(const struct molt_journal_outcome *oc)
{
    struct json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    if (add_str(o, "taskId", oc->task_id) ||
        add_str(o, "result", molt_journal_result_name(oc->result)) ||
        add_str(o, "fromVersion", oc->from_version) || add_str(o, "toVersion", oc->to_version) ||
        add_str(o, "reason", oc->reason) || add_int(o, "at", oc->at_ms) ||
        (oc->after_commit && add(o, "afterCommit", json_object_new_boolean(1)))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static struct json_object *journal_json(const struct molt_journal *j)
{
    struct json_object *o = json_object_new_object();
    struct json_object *arr = json_object_new_array();

    if (!o || !arr)
        goto fail;
    if (add_int(o, "format", MOLT_JOURNAL_FORMAT) ||
        add_str(o, "state", molt_journal_state_name(j->state)) ||
        add_str(o, "taskId", j->task_id) || add_str(o, "fromVersion", j->from_version) ||
        add_str(o, "toVersion", j->to_version) || add_str(o, "previousVersion", j->prev_version) ||
        add_int(o, "starts", j->starts) || add_int(o, "trialStartedAt", j->trial_started_ms) ||
        add_int(o, "trialDeadline", j->trial_deadline_ms) || add_str(o, "reason", j->reason) ||
        add_int(o, "updatedAt", j->updated_ms))
        goto fail;
    /* Written only when set, so a journal without a watch reads as before. */
    if ((j->watch_until_ms && add_int(o, "watchUntil", j->watch_until_ms)) ||
        (j->watch_starts && add_int(o, "watchStarts", j->watch_starts)) ||
        (j->after_commit && add(o, "afterCommit", json_object_new_boolean(1))))
        goto fail;
    for (size_t i = 0; i < j->n_outcomes; i++) {
        struct json_object *oc = outcome_json(&j->outcomes[i]);
        if (!oc || json_object_array_add(arr, oc) < 0) {
            json_object_put(oc);
            goto fail;
        }
    }
    json_object_object_add(o, "outcomes", arr);
    return o;
fail:
    json_object_put(arr);
    json_object_put(o);
    return NULL;
}

int molt_journal_serialize(const struct molt_journal *j, char **out, struct molt_err *err)
{
    struct json_object *o = journal_json(j);
    const char *text;

    *out = NULL;
    if (!o)
        return molt_err_set(err, MOLT_E_NOMEM, "journal: out of memory");
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text) {
        size_t n = strlen(text);
        *out = malloc(n + 2);
        if (*out) {
            memcpy(*out, text, n);
            (*out)[n] = '\n';
            (*out)[n + 1] = '\0';
        }
    }
    json_object_put(o);
    return *out ? 0 : molt_err_set(err, MOLT_E_NOMEM, "journal: out of memory");
}

int molt_journal_load(const char *path, struct molt_journal *j, struct molt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    molt_journal_init(j);
    rc = molt_fs_read_file(path, MOLT_JOURNAL_MAX_BYTES, &text, &len, err);
    if (rc == MOLT_E_NOTFOUND)
        return 0;
    if (rc == MOLT_E_LIMIT || rc == MOLT_E_INVAL) {
        /* Too large or not a regular file: not something we wrote. */
        if (err)
            err->code = MOLT_E_PARSE;
        rc = MOLT_E_PARSE;
    }
    if (rc == 0)
        rc = molt_journal_parse(text, len, j, err);
    free(text);
    if (rc < 0)
        molt_err_prefix(err, "%s", path);
    return rc;
}

int molt_journal_save(const char *path, const struct molt_journal *j, struct molt_err *err)
{
    char *text = NULL;
    int rc = molt_journal_serialize(j, &text, err);

    if (rc == 0)
        rc = molt_fs_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    if (rc < 0)
        molt_err_prefix(err, "write journal");
    return rc;
}

/* ---- transitions ---- */

static int is_resting(enum molt_journal_state s)
{
    return s == MOLT_JOURNAL_IDLE || s == MOLT_JOURNAL_COMMITTED || s == MOLT_JOURNAL_ROLLED_BACK;
}

int molt_journal_in_progress(const struct molt_journal *j)
{
    return !is_resting(j->state);
}

/* A new switch or a revert supersedes whatever watch was on. */
static void clear_watch(struct molt_journal *j)
{
    j->watch_until_ms = 0;
    j->watch_starts = 0;
    j->after_commit = 0;
}

static int refuse(const struct molt_journal *j, const char *what, struct molt_err *err)
{
    if (j->task_id[0])
        return molt_err_set(err, MOLT_E_STATE, "cannot %s: task %s is %s", what, j->task_id,
                            molt_journal_state_name(j->state));
    return molt_err_set(err, MOLT_E_STATE, "cannot %s in state %s", what,
                        molt_journal_state_name(j->state));
}

int molt_journal_begin_switch(struct molt_journal *j, const char *task_id, const char *from,
                              const char *to, const char *prev, int64_t now_ms,
                              struct molt_err *err)
{
    if (!is_resting(j->state))
        return refuse(j, "switch", err);
    if (!molt_task_id_valid(task_id))
        return molt_err_set(err, MOLT_E_INVAL, "'%.40s' is not a task id", task_id);
    if (!molt_version_valid(from) || !molt_version_valid(to) ||
        (prev[0] && !molt_version_valid(prev)))
        return molt_err_set(err, MOLT_E_INVAL, "switch: invalid version");
    if (strcmp(from, to) == 0)
        return molt_err_set(err, MOLT_E_STATE, "%s is already the current version", to);
    j->state = MOLT_JOURNAL_SWITCHING;
    snprintf(j->task_id, sizeof(j->task_id), "%s", task_id);
    snprintf(j->from_version, sizeof(j->from_version), "%s", from);
    snprintf(j->to_version, sizeof(j->to_version), "%s", to);
    snprintf(j->prev_version, sizeof(j->prev_version), "%s", prev);
    j->starts = 0;
    j->trial_started_ms = 0;
    j->trial_deadline_ms = 0;
    j->reason[0] = '\0';
    clear_watch(j);
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_begin_trial(struct molt_journal *j, int64_t now_ms, int64_t timeout_ms,
                             struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_SWITCHING)
        return refuse(j, "start a trial", err);
    if (timeout_ms <= 0)
        return molt_err_set(err, MOLT_E_INVAL, "trial timeout must be positive");
    j->state = MOLT_JOURNAL_TRIAL;
    j->starts = 0;
    j->trial_started_ms = now_ms;
    j->trial_deadline_ms = now_ms + timeout_ms;
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_count_start(struct molt_journal *j, int64_t now_ms, struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_TRIAL)
        return refuse(j, "count a trial start", err);
    j->starts++;
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_begin_rollback(struct molt_journal *j, const char *reason, int64_t now_ms,
                                struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_SWITCHING && j->state != MOLT_JOURNAL_TRIAL)
        return refuse(j, "roll back", err);
    j->state = MOLT_JOURNAL_ROLLING_BACK;
    copy_reason(j->reason, reason);
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_begin_revert(struct molt_journal *j, const char *current, const char *previous,
                              const char *reason, int64_t now_ms, struct molt_err *err)
{
    if (!is_resting(j->state))
        return refuse(j, "roll back", err);
    if (!molt_version_valid(current) || !previous || !molt_version_valid(previous))
        return molt_err_set(err, MOLT_E_STATE, "nothing to roll back to: no previous version");
    if (strcmp(current, previous) == 0)
        return molt_err_set(err, MOLT_E_STATE,
                            "nothing to roll back to: previous is %s, "
                            "the current version",
                            previous);
    j->state = MOLT_JOURNAL_ROLLING_BACK;
    j->task_id[0] = '\0';
    snprintf(j->from_version, sizeof(j->from_version), "%s", previous);
    snprintf(j->to_version, sizeof(j->to_version), "%s", current);
    snprintf(j->prev_version, sizeof(j->prev_version), "%s", current);
    j->starts = 0;
    j->trial_started_ms = 0;
    j->trial_deadline_ms = 0;
    copy_reason(j->reason, reason);
    clear_watch(j);
    j->updated_ms = now_ms;
    return 0;
}

static void push_outcome(struct molt_journal *j, enum molt_journal_result result, int64_t now_ms)
{
    struct molt_journal_outcome *o;
    size_t keep = j->n_outcomes < MOLT_JOURNAL_OUTCOMES ? j->n_outcomes : MOLT_JOURNAL_OUTCOMES - 1;

    memmove(&j->outcomes[1], &j->outcomes[0], keep * sizeof(j->outcomes[0]));
    j->n_outcomes = keep + 1;
    o = &j->outcomes[0];
    memset(o, 0, sizeof(*o));
    snprintf(o->task_id, sizeof(o->task_id), "%s", j->task_id);
    o->result = result;
    snprintf(o->from_version, sizeof(o->from_version), "%s", j->from_version);
    snprintf(o->to_version, sizeof(o->to_version), "%s", j->to_version);
    if (result == MOLT_JOURNAL_RESULT_ROLLED_BACK)
        copy_reason(o->reason, j->reason);
    o->at_ms = now_ms;
    o->after_commit = result == MOLT_JOURNAL_RESULT_ROLLED_BACK && j->after_commit;
}

int molt_journal_finish_rollback(struct molt_journal *j, int64_t now_ms, struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_ROLLING_BACK)
        return refuse(j, "finish a rollback", err);
    j->state = MOLT_JOURNAL_ROLLED_BACK;
    j->updated_ms = now_ms;
    push_outcome(j, MOLT_JOURNAL_RESULT_ROLLED_BACK, now_ms);
    clear_watch(j);
    return 0;
}

int molt_journal_commit(struct molt_journal *j, const char *task_id, int64_t now_ms,
                        struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_TRIAL)
        return refuse(j, "commit", err);
    if (task_id && strcmp(task_id, j->task_id) != 0)
        return molt_err_set(err, MOLT_E_STATE, "cannot commit task %s: the trial is for task %s",
                            task_id, j->task_id);
    if (now_ms >= j->trial_deadline_ms)
        return molt_err_set(err, MOLT_E_STATE,
                            "cannot commit task %s: its trial deadline has "
                            "passed; it will be rolled back",
                            j->task_id);
    j->state = MOLT_JOURNAL_COMMITTED;
    j->reason[0] = '\0';
    clear_watch(j);
    j->updated_ms = now_ms;
    push_outcome(j, MOLT_JOURNAL_RESULT_COMMITTED, now_ms);
    return 0;
}

int molt_journal_watch(struct molt_journal *j, int64_t window_ms, int64_t now_ms,
                       struct molt_err *err)
{
    if (j->state != MOLT_JOURNAL_COMMITTED)
        return refuse(j, "watch", err);
    if (window_ms < 0)
        return molt_err_set(err, MOLT_E_INVAL, "watch window must not be negative");
    j->watch_until_ms = window_ms ? now_ms + window_ms : 0;
    j->watch_starts = 0;
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_count_watch_start(struct molt_journal *j, int64_t now_ms, struct molt_err *err)
{
    if (!molt_journal_watching(j, now_ms))
        return refuse(j, "count a start during the watch", err);
    j->watch_starts++;
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_begin_watch_rollback(struct molt_journal *j, const char *reason, int64_t now_ms,
                                      struct molt_err *err)
{
    if (!molt_journal_watching(j, now_ms))
        return refuse(j, "roll back after the commit (no watch)", err);
    /* from/to/previous still describe the switch the commit ended: the same
     * way back as a failed trial. */
    j->state = MOLT_JOURNAL_ROLLING_BACK;
    copy_reason(j->reason, reason);
    j->watch_until_ms = 0;
    j->after_commit = 1;
    j->updated_ms = now_ms;
    return 0;
}

int molt_journal_end_watch(struct molt_journal *j, int64_t now_ms, struct molt_err *err)
{
    if (!molt_journal_watch_over(j, now_ms))
        return refuse(j, "end the watch", err);
    j->watch_until_ms = 0;
    j->watch_starts = 0;
    j->updated_ms = now_ms;
    return 0;
}

/* ---- the clean-exit marker ---- */

int molt_journal_mark_clean_exit(const char *state_dir, const char *version,
                                 struct molt_err *err)
{
    char path[PATH_MAX];
    int rc = molt_fs_join(path, sizeof(path), state_dir, MOLT_JOURNAL_CLEAN_EXIT_FILE, err);

    if (rc == 0)
        rc = molt_fs_write_atomic(path, version, strlen(version), 0644, err);
    return rc < 0 ? molt_err_prefix(err, "clean-exit marker") : 0;
}

int molt_journal_take_clean_exit(const char *state_dir, const char *version)
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    int same = 0;

    if (molt_fs_join(path, sizeof(path), state_dir, MOLT_JOURNAL_CLEAN_EXIT_FILE, NULL) < 0)
        return 0;
    if (molt_fs_read_file(path, MOLT_JOURNAL_VERSION_MAX, &text, &len, NULL) == 0) {
        same = len == strlen(version) && memcmp(text, version, len) == 0;
        unlink(path);
    }
    free(text);
    return same;
}

/* ---- queries ---- */

int molt_journal_watching(const struct molt_journal *j, int64_t now_ms)
{
    return j->state == MOLT_JOURNAL_COMMITTED && j->watch_until_ms && now_ms < j->watch_until_ms;
}

int molt_journal_watch_over(const struct molt_journal *j, int64_t now_ms)
{
    return j->state == MOLT_JOURNAL_COMMITTED && j->watch_until_ms && now_ms >= j->watch_until_ms;
}

/* "10 min", "45 s" or "1500 ms": the window as the configuration gave it. */
static void format_window(char *buf, size_t n, int64_t ms)
{
    if (ms > 0 && ms % 60000 == 0)
        snprintf(buf, n, "%" PRId64 " min", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, n, "%" PRId64 " s", ms / 1000);
    else
        snprintf(buf, n, "%" PRId64 " ms", ms);
}

int molt_journal_watch_failed(const struct molt_journal *j, int64_t now_ms, int64_t max_starts,
                              char *reason, size_t n)
{
    const struct molt_journal_outcome *o;
    char window[32];

    if (!molt_journal_watching(j, now_ms) || j->watch_starts < max_starts)
        return 0;
    /* The commit's outcome dates the window's start. */
    o = molt_journal_find_outcome(j, j->task_id);
    format_window(window, sizeof(window),
                  o && o->result == MOLT_JOURNAL_RESULT_COMMITTED ? j->watch_until_ms - o->at_ms
                                                                  : 0);
    snprintf(reason, n, "watch: %s started %" PRId64 " time%s within %s of its commit",
             j->to_version, j->watch_starts, j->watch_starts == 1 ? "" : "s", window);
    return 1;
}

int molt_journal_trial_failed(const struct molt_journal *j, int64_t now_ms, int64_t max_starts,
                              char *reason, size_t n)
{
    if (j->state != MOLT_JOURNAL_TRIAL)
        return 0;
    /* The deadline first: it is what ended a trial whose last start it killed. */
    if (now_ms >= j->trial_deadline_ms) {
        int64_t ms = j->trial_deadline_ms - j->trial_started_ms;
        if (ms % 1000 == 0)
            snprintf(reason, n, "%s did not commit within %" PRId64 " s of the switch",
                     j->to_version, ms / 1000);
        else
            snprintf(reason, n, "%s did not commit within %" PRId64 " ms of the switch",
                     j->to_version, ms);
        return 1;
    }
    if (j->starts >= max_starts) {
        snprintf(reason, n, "%s exited %" PRId64 " time%s during trial", j->to_version, j->starts,
                 j->starts == 1 ? "" : "s");
        return 1;
    }
    return 0;
}

const char *molt_journal_trial_task(const struct molt_journal *j, const char *version)
{
    if (j->state != MOLT_JOURNAL_TRIAL || !version || strcmp(version, j->to_version) != 0)
        return NULL;
    return j->task_id;
}

const struct molt_journal_outcome *molt_journal_find_outcome(const struct molt_journal *j,
                                                             const char *task_id)
{
    for (size_t i = 0; i < j->n_outcomes; i++) {
        if (strcmp(j->outcomes[i].task_id, task_id) == 0)
            return &j->outcomes[i];
    }
    return NULL;
}

void molt_journal_outcome_message(const struct molt_journal_outcome *o, char *buf, size_t n)
{
    if (o->result == MOLT_JOURNAL_RESULT_COMMITTED)
        snprintf(buf, n, "committed %s", o->to_version);
    else
        snprintf(buf, n, "rolled back: %s", o->reason[0] ? o->reason : "no reason recorded");
}
