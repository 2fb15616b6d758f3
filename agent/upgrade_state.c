/* upgrade_state.c: (de)serialisation of the in-flight upgrade task. The build's
 * statement and signature are kept as the exact bytes the server sent
 * (base64 in the file), so a resumed task verifies what it verified before. */
#include "upgrade_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "fs.h"
#include "json.h"
#include "sign.h"
#include "version.h"

static void state_path(const char *state_dir, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", state_dir, MOLT_UPGRADE_STATE_FILE);
}

int molt_upgrade_state_from_command(struct molt_upgrade_state *t, const struct molt_command *cmd,
                                    const char *running_version, const char *upgrade_dir,
                                    struct molt_err *err)
{
    struct molt_command copy;

    memset(t, 0, sizeof(*t));
    if (molt_command_copy(&copy, cmd, err) < 0)
        return err->code;
    snprintf(t->task_id, sizeof(t->task_id), "%s", cmd->task_id);
    snprintf(t->to_version, sizeof(t->to_version), "%s", cmd->to_version);
    snprintf(t->from_version, sizeof(t->from_version), "%s", running_version);
    t->request_time = cmd->request_time;
    t->expires_at = cmd->expires_at;
    t->max_rate = cmd->max_rate;
    snprintf(t->stage, sizeof(t->stage), "accepted");
    t->build = copy.build;
    if (snprintf(t->task_dir, sizeof(t->task_dir), "%s/task-%s", upgrade_dir, cmd->task_id) >=
        (int)sizeof(t->task_dir)) {
        molt_upgrade_state_free(t);
        return molt_err_set(err, MOLT_E_LIMIT, "upgrade_dir path too long");
    }
    return 0;
}

static int add_blob(struct json_object *o, const char *key, const void *buf, size_t len,
                    struct molt_err *err)
{
    char *b64 = NULL;

    if (molt_base64_encode(buf, len, &b64, err) < 0)
        return err->code;
    json_object_object_add(o, key, json_object_new_string(b64));
    free(b64);
    return 0;
}

int molt_upgrade_state_to_json(const struct molt_upgrade_state *t, struct json_object **out,
                               struct molt_err *err)
{
    struct json_object *o = json_object_new_object();
    struct json_object *b = json_object_new_object();
    int rc;

    json_object_object_add(o, "taskId", json_object_new_string(t->task_id));
    json_object_object_add(o, "toVersion", json_object_new_string(t->to_version));
    json_object_object_add(o, "fromVersion", json_object_new_string(t->from_version));
    json_object_object_add(o, "requestTime", json_object_new_int64(t->request_time));
    json_object_object_add(o, "expiresAt", json_object_new_int64(t->expires_at));
    if (t->max_rate > 0)
        json_object_object_add(o, "maxBytesPerSecond", json_object_new_int64(t->max_rate));
    json_object_object_add(o, "stage", json_object_new_string(t->stage));
    json_object_object_add(o, "taskDir", json_object_new_string(t->task_dir));
    json_object_object_add(o, "localPackage", json_object_new_string(t->local_package));
    json_object_object_add(o, "local", json_object_new_boolean(t->local));
    json_object_object_add(o, "downloadSource", json_object_new_int(t->source));
    json_object_object_add(b, "version", json_object_new_string(t->build.version));
    json_object_object_add(b, "url", json_object_new_string(t->build.url));
    json_object_object_add(b, "size", json_object_new_int64(t->build.size));
    json_object_object_add(b, "sha256", json_object_new_string(t->build.sha256));
    if (t->build.n_mirrors > 0) {
        struct json_object *list = json_object_new_array();
        for (int i = 0; i < t->build.n_mirrors; i++)
            json_object_array_add(list, json_object_new_string(t->build.mirrors[i]));
        json_object_object_add(b, "downloadUrls", list);
    }
    if (t->build.delta.present)
        json_object_object_add(b, "delta", molt_delta_ref_to_json(&t->build.delta));
    json_object_object_add(o, "build", b);
    rc = add_blob(b, "statement", t->build.statement, t->build.statement_len, err);
    if (rc == 0)
        rc = add_blob(b, "signature", t->build.signature, t->build.signature_len, err);
    if (rc < 0) {
        json_object_put(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

int molt_upgrade_state_save(const char *state_dir, const struct molt_upgrade_state *t,
                            struct molt_err *err)
{
    struct json_object *o = NULL;
    char path[PATH_MAX];
    const char *text;
    int rc = molt_upgrade_state_to_json(t, &o, err);

    if (rc == 0) {
        state_path(state_dir, path);
        text = molt_json_dump(o);
        rc = molt_fs_write_atomic(path, text, strlen(text), 0600, err);
    }
    json_object_put(o);
    if (rc < 0)
        molt_err_prefix(err, "save upgrade state");
    return rc;
}

/* The task directory is removed recursively when the task ends: it must be
 * what molt_upgrade_state_from_command made, <upgrade_dir>/task-<id>, so that
 * a damaged file cannot aim the removal at anything but a task directory. */
static int task_dir_ok(const struct molt_upgrade_state *t)
{
    char suffix[MOLT_TASK_ID_MAX + 8];
    size_t n = strlen(t->task_dir);
    size_t m = (size_t)snprintf(suffix, sizeof(suffix), "/task-%s", t->task_id);

    return n > m && strcmp(t->task_dir + n - m, suffix) == 0;
}

int molt_upgrade_state_from_json(struct json_object *o, struct molt_upgrade_state *t,
                                 struct molt_err *err)
{
    struct json_object *b = NULL;
    int rc;

    rc = molt_json_copy_str(o, "taskId", t->task_id, sizeof(t->task_id), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "toVersion", t->to_version, sizeof(t->to_version), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "fromVersion", t->from_version, sizeof(t->from_version), err);
    if (rc == 0)
        rc = molt_json_get_int(o, "requestTime", &t->request_time, err);
    if (rc == 0)
        rc = molt_json_get_int(o, "expiresAt", &t->expires_at, err);
    if (rc == 0 && molt_json_int_field(o, "maxBytesPerSecond", 1, MOLT_RATE_MIN_BPS,
                                       MOLT_RATE_MAX_BPS, &t->max_rate, err) < 0)
        rc = err->code;
    if (rc == 0)
        rc = molt_json_copy_str(o, "stage", t->stage, sizeof(t->stage), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "taskDir", t->task_dir, sizeof(t->task_dir), err);
    if (rc == 0) {
        const char *lp = "";
        rc = molt_json_opt_str(o, "localPackage", &lp, err);
        if (rc == 0 && strlen(lp) >= sizeof(t->local_package))
            rc = molt_err_set(err, MOLT_E_LIMIT, "localPackage too long");
        if (rc == 0)
            snprintf(t->local_package, sizeof(t->local_package), "%s", lp);
    }
    if (rc == 0)
        rc = molt_json_opt_bool(o, "local", &t->local, err);
    if (rc == 0)
        rc = molt_json_get_obj(o, "build", &b, err);
    if (rc == 0)
        rc = molt_json_copy_str(b, "version", t->build.version, sizeof(t->build.version), err);
    if (rc == 0)
        rc = molt_json_copy_str(b, "url", t->build.url, sizeof(t->build.url), err);
    if (rc == 0)
        rc = molt_json_get_int(b, "size", &t->build.size, err);
    if (rc == 0)
        rc = molt_json_copy_str(b, "sha256", t->build.sha256, sizeof(t->build.sha256), err);
    if (rc == 0)
        rc = molt_build_mirrors_parse(b, &t->build, err);
    if (rc == 0) {
        /* A damaged index must not aim the download at a source the list lacks. */
        const char *src[MOLT_BUILD_SOURCES_MAX];
        int64_t idx = 0;
        rc = molt_json_int_field(o, "downloadSource", 1, 0,
                                 molt_build_sources(&t->build, src) - 1, &idx, err) < 0
                 ? err->code
                 : 0;
        t->source = (int)idx;
    }
    if (rc == 0)
        rc = molt_base64_field(b, "statement", MOLT_BUILD_BLOB_MAX, &t->build.statement,
                               &t->build.statement_len, err);
    if (rc == 0)
        rc = molt_base64_field(b, "signature", MOLT_BUILD_SIG_MAX, &t->build.signature,
                               &t->build.signature_len, err);
    if (rc == 0) {
        struct json_object *d = NULL;
        rc = molt_json_opt_obj(b, "delta", &d, err);
        if (rc == 0 && d && molt_delta_ref_parse(d, &t->build.delta, err) < 0)
            rc = molt_err_prefix(err, "build: delta");
    }
    if (rc == 0 && (!molt_task_id_valid(t->task_id) || !molt_version_valid(t->build.version) ||
                    !molt_version_valid(t->to_version) || t->build.size <= 0))
        rc = molt_err_set(err, MOLT_E_PARSE, "invalid task id, version or size");
    if (rc == 0 && !task_dir_ok(t))
        rc = molt_err_set(err, MOLT_E_PARSE, "taskDir is not <upgrade_dir>/task-%s", t->task_id);
    return rc;
}

int molt_upgrade_state_load(const char *state_dir, struct molt_upgrade_state *t,
                            struct molt_err *err)
{
    struct json_object *o = NULL;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    state_path(state_dir, path);
    rc = molt_fs_read_file(path, 1 << 20, &text, &len, err);
    if (rc < 0)
        return rc;
    rc = molt_json_parse(text, len, &o, err);
    if (rc == 0)
        rc = molt_upgrade_state_from_json(o, t, err);
    json_object_put(o);
    free(text);
    if (rc < 0) {
        molt_upgrade_state_free(t);
        rc = molt_err_prefix(err, "%s", path);
        err->code = rc = MOLT_E_PARSE;
    }
    return rc;
}

void molt_upgrade_state_clear(const char *state_dir)
{
    char path[PATH_MAX];

    state_path(state_dir, path);
    unlink(path);
    molt_fs_fsync_dir(state_dir, NULL);
}

void molt_upgrade_state_free(struct molt_upgrade_state *t)
{
    free(t->build.statement);
    free(t->build.signature);
    t->build.statement = NULL;
    t->build.signature = NULL;
}
