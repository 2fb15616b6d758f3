/* heartbeat.c: heartbeat body, strict reply parsing and the exchange itself. */
#include "heartbeat.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "proto.h"
#include "version.h"

/* The members that change only when the host facts are read again. */
static struct json_object *host_facts(const struct molt_host *host)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "collectorVersion", json_object_new_string(molt_version_self()));
    json_object_object_add(o, "osName", json_object_new_string(host->os_name));
    json_object_object_add(o, "osVersion", json_object_new_string(host->os_version));
    json_object_object_add(o, "osArch", json_object_new_string(host->os_arch));
    json_object_object_add(o, "hostName", json_object_new_string(host->host_name));
    json_object_object_add(o, "timeZone", json_object_new_string(host->time_zone));
    return o;
}

struct json_object *molt_heartbeat_body(const struct molt_host *host, int64_t os_time_ms,
                                        const struct molt_hb_channel *channel,
                                        const struct molt_report *task)
{
    struct json_object *o = host_facts(host);

    json_object_object_add(o, "osTime", json_object_new_int64(os_time_ms));
    json_object_object_add(o, "uptimeMs", json_object_new_int64(host->uptime_ms));
    json_object_object_add(o, "channelName", json_object_new_string(channel->name));
    json_object_object_add(o, "channelSerial", json_object_new_int64(channel->serial));
    json_object_object_add(o, "channelAgeMs", json_object_new_int64(channel->age_ms));
    json_object_object_add(o, "channelState", json_object_new_string(channel->state));
    json_object_object_add(o, "keyringSerial", json_object_new_int64(channel->keyring_serial));
    json_object_object_add(o, "task", task ? molt_report_to_json(task) : NULL);
    return o;
}

/* json-c does the escaping of the host facts; only the braces are dropped. */
static int host_members(const struct molt_host *host, char *out, size_t n)
{
    struct json_object *o = host_facts(host);
    const char *text;
    size_t len;
    int rc = -1;

    text = molt_json_dump(o);
    len = text ? strlen(text) : 0;
    if (len >= 2 && text[0] == '{' && text[len - 1] == '}' && len - 2 < n) {
        memcpy(out, text + 1, len - 2);
        out[len - 2] = '\0';
        rc = 0;
    }
    json_object_put(o);
    return rc;
}

int molt_heartbeat_body_idle(const struct molt_host *host, int64_t os_time_ms,
                             const struct molt_hb_channel *channel, struct molt_hb_cache *cache,
                             char *out, size_t n)
{
    int len;

    if (cache->read_mono_ms == 0 || cache->read_mono_ms != host->read_mono_ms) {
        cache->read_mono_ms = 0;
        if (host_members(host, cache->members, sizeof(cache->members)) < 0)
            return -1;
        cache->read_mono_ms = host->read_mono_ms;
    }
    /* The name is a checked [a-z0-9_] word (molt_channel_name_valid), the state
     * one of trust.h's constants: nothing to escape. */
    len = snprintf(out, n, "{%s,\"osTime\":%lld,\"uptimeMs\":%lld,\"channelName\":\"%s\","
                   "\"channelSerial\":%lld,\"channelAgeMs\":%lld,\"channelState\":\"%s\","
                   "\"keyringSerial\":%lld,\"task\":null}",
                   cache->members, (long long)os_time_ms, (long long)host->uptime_ms, channel->name,
                   (long long)channel->serial, (long long)channel->age_ms, channel->state,
                   (long long)channel->keyring_serial);
    return len < 0 || (size_t)len >= n ? -1 : len;
}

void molt_hb_reply_free(struct molt_hb_reply *r)
{
    if (r->has_command)
        molt_command_free(&r->cmd);
    r->has_command = 0;
}

static void parse_command(struct json_object *root, struct molt_hb_reply *out)
{
    struct json_object *c = NULL;
    struct molt_err err = MOLT_ERR_INIT;

    if (!json_object_object_get_ex(root, "command", &c) || json_object_is_type(c, json_type_null))
        return;
    if (molt_command_parse(c, &out->cmd, &err) < 0) {
        snprintf(out->command_error, sizeof(out->command_error), "%s", err.msg);
        return;
    }
    out->has_command = 1;
}

int molt_heartbeat_parse_reply(const char *body, size_t len, struct molt_hb_reply *out,
                               struct molt_err *err)
{
    struct json_object *root = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!body || len == 0)
        return molt_err_set(err, MOLT_E_PARSE, "heartbeat reply: empty body");
    rc = molt_json_parse(body, len, &root, err);
    if (rc < 0)
        return molt_err_prefix(err, "heartbeat reply");
    if (!json_object_is_type(root, json_type_object)) {
        rc = molt_err_set(err, MOLT_E_PARSE, "heartbeat reply: not a JSON object");
        goto out;
    }
    if ((rc = molt_hb_interval_field(root, &out->interval_ms, err)) < 0 ||
        (rc = molt_json_opt_bool(root, "longPoll", &out->long_poll, err)) < 0 ||
        (rc = molt_json_opt_int(root, "serverTime", &out->server_time, err)) < 0 ||
        (rc = molt_json_opt_int(root, "channelSerial", &out->channel_serial, err)) < 0 ||
        (rc = molt_json_opt_int(root, "keyringSerial", &out->keyring_serial, err)) < 0) {
        molt_err_prefix(err, "heartbeat reply");
        goto out;
    }
    if (out->channel_serial < 0) {
        rc = molt_err_set(err, MOLT_E_PARSE, "heartbeat reply: field 'channelSerial': negative");
        goto out;
    }
    if (out->keyring_serial < 0) {
        rc = molt_err_set(err, MOLT_E_PARSE, "heartbeat reply: field 'keyringSerial': negative");
        goto out;
    }
    rc = 0;
    parse_command(root, out);
out:
    json_object_put(root);
    return rc;
}

int molt_heartbeat_send(struct molt_http *http, const struct molt_hb_req *q,
                        struct molt_http_reply *rep, struct molt_hb_reply *out,
                        struct molt_err *err)
{
    char url[64], idle[sizeof(q->cache->members) + 128];
    struct json_object *body = NULL;
    const char *text = idle;
    int rc, len = -1;

    memset(out, 0, sizeof(*out));
    /* Without a task (nearly always) the body is text around cached members: a
     * json-c tree per heartbeat costs a tenth of the heartbeat's instructions. */
    if (!q->task)
        len = molt_heartbeat_body_idle(q->host, q->os_time_ms, &q->channel, q->cache, idle,
                                       sizeof(idle));
    if (len < 0) {
        body = molt_heartbeat_body(q->host, q->os_time_ms, &q->channel, q->task);
        text = molt_json_dump(body);
    }
    if (q->wait_ms > 0)
        snprintf(url, sizeof(url), "/api/v1/collector/heartbeat?waitMs=%lld",
                 (long long)q->wait_ms);
    else
        snprintf(url, sizeof(url), "/api/v1/collector/heartbeat");
    struct molt_http_req req = {
        .method = "POST",
        .url = url,
        .body = text,
        .body_len = strlen(text),
        .bearer = q->token,
        .timeout_ms = q->wait_ms + MOLT_HB_GRACE_MS,
        .long_poll = q->wait_ms > 0,
        .max_reply = MOLT_HB_REPLY_MAX,
        .abort_fn = q->abort_fn,
        .abort_arg = q->abort_arg,
    };
    rc = molt_http_request(http, &req, rep, err);
    json_object_put(body);
    if (rc == 0)
        rc = molt_heartbeat_parse_reply(rep->body, rep->len, out, err);
    return rc;
}
