/* identity.c: registration and the stored identity. */
#include "identity.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs.h"
#include "heartbeat.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "text.h"
#include "version.h"

static int token_valid(const char *t)
{
    size_t n = strlen(t);

    if (n < MOLT_TOKEN_MIN || n > MOLT_TOKEN_MAX)
        return 0;
    /* It goes into an HTTP header: printable ASCII only, no spaces. */
    return molt_text_all_visible_ascii(t, n);
}

static int machine_id_valid(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++) {
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    }
    return 1;
}

int molt_identity_load(const char *path, struct molt_identity *id, struct molt_err *err)
{
    struct json_object *o = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(id, 0, sizeof(*id));
    rc = molt_fs_read_file(path, 65536, &text, &len, err);
    if (rc < 0)
        return rc;
    rc = molt_json_parse(text, len, &o, err);
    if (rc == 0)
        rc = molt_json_get_int(o, "collectorId", &id->collector_id, err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "token", id->token, sizeof(id->token), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "machineId", id->machine_id, sizeof(id->machine_id), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "name", id->name, sizeof(id->name), err);
    if (rc == 0)
        rc = molt_json_copy_str(o, "serverUrl", id->server_url, sizeof(id->server_url), err);
    if (rc == 0 && (id->collector_id <= 0 || !token_valid(id->token) ||
                    !machine_id_valid(id->machine_id)))
        rc = molt_err_set(err, MOLT_E_PARSE, "implausible collectorId, token or machineId");
    explicit_bzero(text, len);
    free(text);
    json_object_put(o);
    if (rc < 0) {
        explicit_bzero(id, sizeof(*id));
        molt_err_prefix(err, "%s", path);
    }
    return rc;
}

int molt_identity_save(const char *path, const struct molt_identity *id, struct molt_err *err)
{
    struct json_object *o = json_object_new_object();
    const char *text;
    int rc;

    json_object_object_add(o, "collectorId", json_object_new_int64(id->collector_id));
    json_object_object_add(o, "token", json_object_new_string(id->token));
    json_object_object_add(o, "machineId", json_object_new_string(id->machine_id));
    json_object_object_add(o, "name", json_object_new_string(id->name));
    json_object_object_add(o, "serverUrl", json_object_new_string(id->server_url));
    text = molt_json_dump(o);
    rc = molt_fs_write_atomic(path, text, strlen(text), 0600, err);
    /* json-c's buffer held the token; it is ours until the put below. */
    explicit_bzero((char *)(uintptr_t)text, strlen(text));
    json_object_put(o);
    return rc < 0 ? molt_err_prefix(err, "save identity") : 0;
}

const char *molt_identity_stale(const struct molt_identity *id, const char *machine_id,
                                const char *server_url)
{
    if (strcasecmp(id->machine_id, machine_id) != 0)
        return "machine id changed";
    if (strcmp(id->server_url, server_url) != 0)
        return "server URL changed";
    return NULL;
}

int molt_identity_can_register(const struct molt_config *conf)
{
    return conf->server.access_id[0] && conf->server.access_key[0];
}

int molt_register_parse_reply(const char *body, size_t len, struct molt_identity *id,
                              int64_t *interval_ms, struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc;

    *interval_ms = 0;
    if (!body || len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "registration reply: empty body");
    rc = molt_json_parse(body, len, &o, err);
    if (rc == 0)
        rc = molt_json_int_field(o, "collectorId", 0, 1, INT64_MAX, &id->collector_id, err);
    if (rc >= 0)
        rc = molt_json_copy_str(o, "token", id->token, sizeof(id->token), err);
    if (rc == 0)
        rc = molt_hb_interval_field(o, interval_ms, err);
    json_object_put(o);
    if (rc >= 0 && !token_valid(id->token))
        rc = molt_err_set(err, MOLT_E_PARSE, "token: expected %d..%d printable characters",
                          MOLT_TOKEN_MIN, MOLT_TOKEN_MAX);
    if (rc < 0) {
        *interval_ms = 0;
        return molt_err_prefix(err, "registration reply");
    }
    return 0;
}

static struct json_object *register_body(const struct molt_register_req *q, const char *name)
{
    struct json_object *o = json_object_new_object();
    const struct molt_config *c = q->conf;

    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "hostName", json_object_new_string(q->host->host_name));
    json_object_object_add(o, "machineId", json_object_new_string(q->machine_id));
    json_object_object_add(o, "ephemeral", json_object_new_boolean(c->agent.ephemeral));
    /* Unset is absent, not "": the management API shows it as null. */
    if (c->agent.category[0])
        json_object_object_add(o, "category", json_object_new_string(c->agent.category));
    if (c->agent.description[0])
        json_object_object_add(o, "description", json_object_new_string(c->agent.description));
    json_object_object_add(o, "fields", json_object_new_object());
    json_object_object_add(o, "collectorVersion", json_object_new_string(molt_version_self()));
    json_object_object_add(o, "osName", json_object_new_string(q->host->os_name));
    json_object_object_add(o, "osVersion", json_object_new_string(q->host->os_version));
    json_object_object_add(o, "osArch", json_object_new_string(q->host->os_arch));
    json_object_object_add(o, "osTime", json_object_new_int64(q->os_time_ms));
    json_object_object_add(o, "timeZone", json_object_new_string(q->host->time_zone));
    return o;
}

int molt_identity_register(struct molt_http *http, const struct molt_register_req *q,
                           struct molt_identity *out, struct molt_http_reply *rep,
                           int64_t *interval_ms, struct molt_err *err)
{
    const struct molt_config *c = q->conf;
    const char *name = c->agent.name[0] ? c->agent.name : q->host->host_name;
    struct molt_identity id;
    char path[PATH_MAX];
    struct json_object *body;
    int rc;

    memset(rep, 0, sizeof(*rep));
    rep->retry_after_ms = -1;
    if (!molt_identity_can_register(c))
        return molt_err_set(err, MOLT_E_CONFIG, "no registration credentials "
                            "(server.access_id and server.access_key)");
    body = register_body(q, name);
    const char *text = molt_json_dump(body);
    struct molt_http_req req = {
        .method = "POST",
        .url = "/api/v1/collector/register",
        .body = text,
        .body_len = strlen(text),
        .basic_user = c->server.access_id,
        .basic_pass = c->server.access_key,
        .max_reply = MOLT_REGISTER_REPLY_MAX,
        .abort_fn = q->abort_fn,
        .abort_arg = q->abort_arg,
    };
    rc = molt_http_request(http, &req, rep, err);
    json_object_put(body);
    if (rc < 0)
        return rc;
    memset(&id, 0, sizeof(id));
    rc = molt_register_parse_reply(rep->body, rep->len, &id, interval_ms, err);
    if (rc < 0)
        return rc;
    snprintf(id.machine_id, sizeof(id.machine_id), "%s", q->machine_id);
    snprintf(id.name, sizeof(id.name), "%s", name);
    snprintf(id.server_url, sizeof(id.server_url), "%s", c->server.url);
    rc = molt_fs_join(path, sizeof(path), q->state_dir, MOLT_IDENTITY_FILE, err);
    if (rc == 0)
        rc = molt_identity_save(path, &id, err);
    if (rc == 0) {
        *out = id;
        molt_log_info("identity.registered", "collector=%lld name=%s machine_id=%s", 
                      (long long)id.collector_id, id.name, id.machine_id);
    }
    explicit_bzero(&id, sizeof(id));
    return rc;
}
