/* upgrade_api.c: the upgrade endpoints of the agent's local API, in the shape
 * of obshell's UpgradeAgent:
 *   POST /api/v1/agent/upgrade {"version", "release"?, "upgradeDir"?}
 *        a build from the control plane's repository, or, offline,
 *        {"package": "/path", "statement": base64, "signature": base64};
 *   GET  /api/v1/agent/upgrade           the current (or last) task;
 *   GET  /api/v1/agent/tasks/ID          that task;
 *   POST /api/v1/agent/tasks/ID {"operator": "CANCEL" | "ROLLBACK" | "SWITCH_NOW"}
 *        (SWITCH_NOW: switch without waiting for install.switch_window).
 * Requests are verified before they are accepted (the signature over the
 * statement, os, arch and version), so a bad package is refused at once with
 * its reason. Tasks started here have ids of their own and are unknown to the
 * control plane: their reports stay on the host (molt_report.local). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "api.h"
#include "base64.h"
#include "command.h"
#include "host.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "package.h"
#include "sign.h"
#include "upgrade.h"
#include "version.h"

#define TASK_LIFETIME_MS (30LL * 60 * 1000)
#define BUILD_FETCH_TIMEOUT_MS 10000

static void iso_time(char *out, size_t n, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *task_state(const struct molt_report *r, int active)
{
    if (active)
        return r->stage_index <= MOLT_STAGE_ACCEPTED ? "READY" : "RUNNING";
    return r->status == MOLT_TASK_SUCCEEDED ? "SUCCEED" : "FAILED";
}

/* The obshell task object for a report. */
static struct json_object *task_json(const struct molt_report *r, int active, const char *op)
{
    struct json_object *o = json_object_new_object();
    struct json_object *extra = json_object_new_object();
    char name[160], when[32];

    snprintf(name, sizeof(name), "Upgrade molt %s", r->build_version);
    json_object_object_add(o, "id", json_object_new_string(r->task_id));
    json_object_object_add(o, "dag_id", json_object_new_int64(strtoll(r->task_id, NULL, 10)));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "stage", json_object_new_int(r->stage_index));
    json_object_object_add(o, "max_stage", json_object_new_int(MOLT_STAGE_COUNT));
    json_object_object_add(o, "state", json_object_new_string(task_state(r, active)));
    json_object_object_add(o, "operator", json_object_new_string(op));
    iso_time(when, sizeof(when), 0);
    json_object_object_add(o, "start_time", json_object_new_string(when));
    json_object_object_add(o, "end_time", json_object_new_string(when));
    json_object_object_add(extra, "stage_name", json_object_new_string(r->stage));
    json_object_object_add(extra, "status", json_object_new_int(r->status));
    json_object_object_add(extra, "bytes_done", json_object_new_int64(r->bytes_done));
    json_object_object_add(extra, "bytes_total", json_object_new_int64(r->bytes_total));
    json_object_object_add(extra, "version", json_object_new_string(r->version));
    json_object_object_add(extra, "message", json_object_new_string(r->message));
    json_object_object_add(o, "additional_data", extra);
    json_object_object_add(o, "nodes", NULL);
    return o;
}

static int error_status(int code)
{
    switch (code) {
    case MOLT_E_BUSY:
    case MOLT_E_STATE: return 409;
    case MOLT_E_NOTFOUND: return 404;
    case MOLT_E_NET:
    case MOLT_E_HTTP:
    case MOLT_E_AUTH: return 502;
    default: return 400;
    }
}

static void fail(struct molt_api_response *res, const struct molt_err *err)
{
    molt_api_error(res, error_status(err->code), molt_errc_name(err->code), "%s", err->msg);
}

static void local_task_id(char out[MOLT_TASK_ID_MAX + 1])
{
    /* "9" and the time in ms: unlike the control plane's ids, and ordered. */
    snprintf(out, MOLT_TASK_ID_MAX + 1, "9%lld", (long long)molt_host_realtime_ms());
}

/* Verifies the build as preflight will (signatures before the statement is
 * read, the statement for this host, the release channel), so that a bad
 * request is refused at once; expected may be NULL (offline: any version). */
static int verify(struct molt_agent *a, const struct molt_build *b, const char *expected,
                  const char *release, struct molt_statement *st, struct molt_err *err)
{
    int rc = molt_trust_authenticate(&a->trust, b, expected, molt_host_realtime_ms(),
                                     a->machine_id, 1, st, err);

    if (rc == 0 && release && *release && strcmp(release, st->release) != 0)
        rc = molt_err_set(err, MOLT_E_VERIFY, "statement is for release '%s', request asked "
                          "for '%s'", st->release, release);
    return rc;
}

/* GET /api/v1/collector/builds/VERSION from the control plane, as a command. */
static int fetch_build(struct molt_agent *a, const char *version, struct molt_command *cmd,
                       struct molt_err *err)
{
    struct molt_config conf;
    struct molt_http *http = NULL;
    struct molt_http_reply rep = { 0 };
    struct json_object *build = NULL, *wrap = NULL;
    char path[256], token[MOLT_TOKEN_MAX + 1];
    struct molt_host host;
    int64_t now = molt_host_realtime_ms();
    int rc;

    molt_agent_config(a, &conf);
    rc = molt_host_read(&host, err);
    if (rc == 0)
        rc = molt_agent_token(a, token, sizeof(token), err);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "/api/v1/collector/builds/%s?os=%s&arch=%s", version,
             host.os_id, host.os_arch);
    struct molt_http_req req = { .method = "GET", .url = path, .bearer = token,
                                 .timeout_ms = BUILD_FETCH_TIMEOUT_MS,
                                 .max_reply = MOLT_COMMAND_REPLY_MAX };
    rc = molt_http_new(&http, &conf, NULL, err);
    if (rc == 0)
        rc = molt_http_request(http, &req, &rep, err);
    explicit_bzero(token, sizeof(token));
    if (rc == 0)
        rc = molt_json_parse(rep.body, rep.len, &build, err);
    if (rc == 0) {
        /* Through the same strict validation as a command from a heartbeat. */
        wrap = json_object_new_object();
        json_object_object_add(wrap, "type", json_object_new_string("upgrade"));
        json_object_object_add(wrap, "taskId", json_object_new_string(cmd->task_id));
        json_object_object_add(wrap, "toVersion", json_object_new_string(version));
        json_object_object_add(wrap, "requestTime", json_object_new_int64(now));
        json_object_object_add(wrap, "expiresAt", json_object_new_int64(now + TASK_LIFETIME_MS));
        json_object_object_add(wrap, "build", json_object_get(build));
        rc = molt_command_parse(wrap, cmd, err);
    }
    if (rc < 0 && rep.status == 404)
        rc = molt_err_set(err, MOLT_E_NOTFOUND, "the control plane has no build %s for %s/%s",
                          version, host.os_id, host.os_arch);
    else if (rc < 0)
        molt_err_prefix(err, "fetch build %s", version);
    json_object_put(wrap);
    json_object_put(build);
    molt_http_reply_free(&rep);
    molt_http_free(http);
    return rc;
}

/* Offline: the package is a file on this host; statement and signature come in the body. */
static int offline_command(struct molt_agent *a, struct json_object *body,
                           struct molt_command *cmd, const char **package, struct molt_err *err)
{
    struct molt_statement st;
    struct stat sb;
    int64_t now = molt_host_realtime_ms();
    int rc;

    rc = molt_json_get_str(body, "package", package, err);
    if (rc == 0 && (*package)[0] != '/')
        rc = molt_err_set(err, MOLT_E_INVAL, "package: '%s' is not an absolute path", *package);
    if (rc == 0)
        rc = molt_base64_field(body, "statement", MOLT_BUILD_BLOB_MAX, &cmd->build.statement,
                               &cmd->build.statement_len, err);
    if (rc == 0)
        rc = molt_base64_field(body, "signature", MOLT_BUILD_SIG_MAX, &cmd->build.signature,
                               &cmd->build.signature_len, err);
    if (rc == 0)
        rc = verify(a, &cmd->build, NULL, NULL, &st, err);
    if (rc == 0 && stat(*package, &sb) < 0)
        rc = molt_err_errno(err, "package %s", *package);
    if (rc == 0 && (uint64_t)sb.st_size != st.size)
        rc = molt_err_set(err, MOLT_E_VERIFY, "size mismatch: %s has %lld bytes, statement "
                          "says %llu", *package, (long long)sb.st_size,
                          (unsigned long long)st.size);
    if (rc < 0)
        return rc;
    cmd->type = MOLT_CMD_UPGRADE;
    snprintf(cmd->to_version, sizeof(cmd->to_version), "%s", st.version);
    snprintf(cmd->build.version, sizeof(cmd->build.version), "%s", st.version);
    snprintf(cmd->build.sha256, sizeof(cmd->build.sha256), "%s", st.sha256);
    cmd->build.size = (int64_t)st.size;
    cmd->request_time = now;
    cmd->expires_at = now + TASK_LIFETIME_MS;
    return 0;
}

static void on_upgrade_post(void *arg, const struct molt_api_request *req,
                            struct molt_api_response *res)
{
    struct molt_agent *a = arg;
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *body = NULL;
    struct molt_command cmd;
    struct molt_statement st;
    const char *version = NULL, *release = NULL, *dir = NULL, *package = NULL;
    struct molt_report r;
    int rc;

    memset(&cmd, 0, sizeof(cmd));
    local_task_id(cmd.task_id);
    rc = molt_json_parse(req->body, req->body_len, &body, &err);
    if (rc == 0)
        rc = molt_json_opt_str(body, "upgradeDir", &dir, &err);
    if (rc == 0 && dir && dir[0] != '/')
        rc = molt_err_set(&err, MOLT_E_INVAL, "upgradeDir: '%s' is not an absolute path", dir);
    if (rc == 0 && json_object_object_get_ex(body, "package", NULL)) {
        rc = offline_command(a, body, &cmd, &package, &err);
    } else if (rc == 0) {
        rc = molt_json_get_str(body, "version", &version, &err);
        if (rc == 0 && !molt_version_valid(version))
            rc = molt_err_set(&err, MOLT_E_INVAL, "version: '%.64s' is not a version", version);
        if (rc == 0)
            rc = molt_json_opt_str(body, "release", &release, &err);
        if (rc == 0)
            rc = fetch_build(a, version, &cmd, &err);
        if (rc == 0)
            rc = verify(a, &cmd.build, version, release, &st, &err);
    }
    if (rc == 0)
        rc = molt_upgrade_submit(a, &cmd, dir, package, &r, &err);
    if (rc < 0) {
        molt_log_warn("api.upgrade", "refused=\"%s\"", err.msg);
        fail(res, &err);
    } else {
        /* As accepted: by now its thread may have moved it on (GET shows that). */
        res->data = task_json(&r, 1, "RUN");
    }
    molt_command_free(&cmd);
    json_object_put(body);
}

static void on_task_get(void *arg, const struct molt_api_request *req,
                        struct molt_api_response *res)
{
    struct molt_agent *a = arg;
    const char *id = req->rest && *req->rest ? req->rest : NULL;
    struct molt_report r;
    int active;

    if (!molt_upgrade_view(a, id, &r, &active)) {
        molt_api_error(res, 404, "notfound", "%s", id ? "no such task" : "no task yet");
        return;
    }
    res->data = task_json(&r, active, "RUN");
}

/* After a rollback current names the previous version: run it. */
static void restart_agent(void *arg)
{
    molt_agent_request_exit(arg, MOLT_EXIT_RESTART);
}

static void on_task_post(void *arg, const struct molt_api_request *req,
                         struct molt_api_response *res)
{
    struct molt_agent *a = arg;
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *body = NULL;
    const char *op = NULL;
    char reason[128];
    struct molt_report r;
    int active = 0, rc;

    rc = molt_json_parse(req->body, req->body_len, &body, &err);
    if (rc == 0)
        rc = molt_json_get_str(body, "operator", &op, &err);
    if (rc == 0 && !molt_upgrade_view(a, req->rest, &r, &active))
        rc = molt_err_set(&err, MOLT_E_NOTFOUND, "task %s: no such task", req->rest);
    if (rc == 0 && strcmp(op, "CANCEL") == 0) {
        rc = molt_upgrade_cancel_task(a, req->rest, &err);
    } else if (rc == 0 && strcmp(op, "SWITCH_NOW") == 0) {
        rc = molt_upgrade_switch_now(a, req->rest, &err);
    } else if (rc == 0 && strcmp(op, "ROLLBACK") == 0) {
        snprintf(reason, sizeof(reason), "operator rollback of task %s", req->rest);
        rc = active ? molt_err_set(&err, MOLT_E_STATE, "task %s is still running; cancel it",
                                   req->rest)
                    : molt_upgrade_rollback(a, reason, &err);
    } else if (rc == 0) {
        rc = molt_err_set(&err, MOLT_E_INVAL, "operator: '%.32s' is not CANCEL, ROLLBACK or "
                          "SWITCH_NOW", op);
    }
    if (rc < 0)
        fail(res, &err);
    else
        res->data = task_json(&r, active, op);
    if (rc == 0 && strcmp(op, "ROLLBACK") == 0) {
        /* Stopping the agent at once would cut this reply off. */
        res->then = restart_agent;
        res->then_arg = a;
    }
    json_object_put(body);
}

int molt_upgrade_api_routes(struct molt_agent *a, struct molt_err *err)
{
    if (!a->api)
        return 0;
    if (molt_api_route(a->api, "POST", "/api/v1/agent/upgrade", on_upgrade_post, a, err) < 0 ||
        molt_api_route(a->api, "GET", "/api/v1/agent/upgrade", on_task_get, a, err) < 0 ||
        molt_api_route(a->api, "GET", "/api/v1/agent/tasks/*", on_task_get, a, err) < 0 ||
        molt_api_route(a->api, "POST", "/api/v1/agent/tasks/*", on_task_post, a, err) < 0)
        return err->code;
    return 0;
}
