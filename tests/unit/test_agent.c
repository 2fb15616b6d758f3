/* test_agent.c: agent core units: backoff, heartbeat replies (hostile ones
 * included), command validation and policy, reports, the outbox, identity. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "api.h"
#include "backoff.h"
#include "command.h"
#include "fs.h"
#include "heartbeat.h"
#include "host.h"
#include "identity.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "status.h"
#include "task.h"
#include "upgrade.h"
#include "version.h"

/* ---- backoff ------------------------------------------------------------- */

static void test_backoff_bounds(void **state)
{
    struct molt_backoff b;
    int64_t seen_max = 0, seen_min = INT64_MAX;

    molt_backoff_init(&b, 1000, 8000, 42);
    for (int n = 1; n <= 12; n++) {
        int64_t cap = molt_backoff_ceiling(&b);
        int64_t want = 1000LL << (n - 1 < 4 ? n - 1 : 3);
        assert_int_equal(cap, want > 8000 ? 8000 : want);
        int64_t d = molt_backoff_next(&b, -1);
        assert_true(d >= 0 && d <= cap);
    }
    /* Full jitter spreads over the whole range at the cap. */
    for (int i = 0; i < 2000; i++) {
        int64_t d = molt_backoff_next(&b, -1);
        assert_true(d >= 0 && d <= 8000);
        seen_max = d > seen_max ? d : seen_max;
        seen_min = d < seen_min ? d : seen_min;
    }
    assert_true(seen_max > 7000);
    assert_true(seen_min < 1000);
}

static void test_backoff_reset_and_retry_after(void **state)
{
    struct molt_backoff b;

    molt_backoff_init(&b, 1000, 300000, 7);
    for (int i = 0; i < 10; i++)
        molt_backoff_next(&b, -1);
    assert_int_equal(molt_backoff_ceiling(&b), 300000);
    molt_backoff_reset(&b);
    assert_int_equal(molt_backoff_ceiling(&b), 1000);
    assert_true(molt_backoff_next(&b, -1) <= 1000);
    /* Retry-After wins over a shorter draw, even beyond the cap. */
    molt_backoff_reset(&b);
    assert_int_equal(molt_backoff_next(&b, 30000), 30000);
    molt_backoff_init(&b, 1000, 5000, 9);
    assert_int_equal(molt_backoff_next(&b, 60000), 60000);
    for (int i = 0; i < 100; i++)
        assert_true(molt_backoff_next(&b, 2000) >= 2000);
}

static void test_backoff_jitter(void **state)
{
    struct molt_backoff b;
    int below = 0, above = 0;

    molt_backoff_init(&b, 1000, 5000, 3);
    for (int i = 0; i < 1000; i++) {
        int64_t j = molt_backoff_jitter(&b, 15000, 10);
        assert_true(j >= 13500 && j <= 16500);
        below += j < 15000;
        above += j > 15000;
    }
    assert_true(below > 100 && above > 100);
    assert_int_equal(molt_backoff_jitter(&b, 5, 10), 5);
}

/* ---- commands ------------------------------------------------------------ */

/* base64("statement bytes") and base64("sig") */
#define STMT_B64 "c3RhdGVtZW50IGJ5dGVz"
#define SIG_B64 "c2ln"
#define SHA "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"

static char *upgrade_json(const char *override_key, const char *override_value)
{
    static char buf[8192];
    struct json_object *o = json_object_new_object(), *b = json_object_new_object();
    struct json_object *target;

    json_object_object_add(o, "type", json_object_new_string("upgrade"));
    json_object_object_add(o, "taskId", json_object_new_string("12345"));
    json_object_object_add(o, "toVersion", json_object_new_string("20.2-100"));
    json_object_object_add(o, "requestTime", json_object_new_int64(1700000000000LL));
    json_object_object_add(o, "expiresAt", json_object_new_int64(1700001800000LL));
    json_object_object_add(b, "version", json_object_new_string("20.2-100"));
    json_object_object_add(b, "url", json_object_new_string("/builds/molt-20.2-100.tar.gz"));
    json_object_object_add(b, "size", json_object_new_int64(4194304));
    json_object_object_add(b, "sha256", json_object_new_string(SHA));
    json_object_object_add(b, "statement", json_object_new_string(STMT_B64));
    json_object_object_add(b, "signature", json_object_new_string(SIG_B64));
    json_object_object_add(o, "build", b);
    if (override_key) {
        /* "build.x" changes a build field; the value is JSON text, or NULL to remove. */
        const char *key = override_key;
        target = o;
        if (strncmp(key, "build.", 6) == 0) {
            target = b;
            key += 6;
        }
        if (override_value) {
            struct json_object *v = json_tokener_parse(override_value);
            assert_non_null(v);
            json_object_object_add(target, key, v);
        } else {
            json_object_object_del(target, key);
        }
    }
    snprintf(buf, sizeof(buf), "%s", molt_json_dump(o));
    json_object_put(o);
    return buf;
}

static int parse_cmd_text(const char *text, struct molt_command *cmd, struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc = molt_json_parse(text, strlen(text), &o, err);

    if (rc == 0)
        rc = molt_command_parse(o, cmd, err);
    json_object_put(o);
    return rc;
}

static void test_command_valid(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_command cmd, copy;

    assert_int_equal(parse_cmd_text(upgrade_json(NULL, NULL), &cmd, &err), 0);
    assert_int_equal(cmd.type, MOLT_CMD_UPGRADE);
    assert_string_equal(cmd.task_id, "12345");
    assert_string_equal(cmd.to_version, "20.2-100");
    assert_string_equal(cmd.build.version, "20.2-100");
    assert_int_equal(cmd.build.size, 4194304);
    assert_string_equal(cmd.build.sha256,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_int_equal(cmd.build.statement_len, strlen("statement bytes"));
    assert_memory_equal(cmd.build.statement, "statement bytes", cmd.build.statement_len);
    assert_int_equal(cmd.build.signature_len, 3);
    assert_memory_equal(cmd.build.signature, "sig", 3);
    assert_int_equal(molt_command_copy(&copy, &cmd, &err), 0);
    molt_command_free(&cmd);
    assert_memory_equal(copy.build.statement, "statement bytes", copy.build.statement_len);
    molt_command_free(&copy);

    assert_int_equal(parse_cmd_text("{\"type\":\"cancel\",\"taskId\":\"9\",\"extra\":[1]}", &cmd,
                                    &err), 0);
    assert_int_equal(cmd.type, MOLT_CMD_CANCEL);
    assert_string_equal(cmd.task_id, "9");
    molt_command_free(&cmd);
    /* An absolute https URL is fine too. */
    assert_int_equal(parse_cmd_text(upgrade_json("build.url", "\"https://cp.example/b.tgz\""),
                                    &cmd, &err), 0);
    molt_command_free(&cmd);
}

static void test_command_hostile(void **state)
{
    static const struct {
        const char *key, *value, *expect;
    } bad[] = {
        { "type", NULL, "type" },
        { "type", "\"reboot\"", "type" },
        { "type", "7", "type" },
        { "taskId", "12345", "taskId" },
        { "taskId", "\"12a\"", "taskId" },
        { "taskId", "\"\"", "taskId" },
        { "taskId", "\"123456789012345678901\"", "taskId" },
        { "taskId", "\"../1\"", "taskId" },
        { "toVersion", "\"../../etc\"", "toVersion" },
        { "toVersion", "\"v2\"", "toVersion" },
        { "toVersion", NULL, "toVersion" },
        { "requestTime", "\"1700000000000\"", "requestTime" },
        { "requestTime", "0", "requestTime" },
        { "requestTime", "1.5e12", "requestTime" },
        { "expiresAt", "1600000000000", "expiresAt" },
        { "expiresAt", "9000000000000000000", "expiresAt" },
        { "expiresAt", "1700000000000", "expiresAt" },
        { "build", NULL, "build" },
        { "build", "[]", "build" },
        { "build.version", "\"20.2-100/../x\"", "version" },
        { "build.size", "0", "size" },
        { "build.size", "-1", "size" },
        { "build.size", "1099511627776", "size" },
        { "build.size", "\"5\"", "size" },
        { "build.sha256", "\"0123\"", "sha256" },
        { "build.sha256",
          "\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"", "sha256" },
        { "build.statement", "\"not base64!\"", "statement" },
        { "build.statement", "\"c3Rh dGVt\"", "statement" },
        { "build.statement", "\"c3RhdGVtZW50IGJ5dGVz\\n\"", "statement" },
        { "build.statement", "\"c2lm\"", NULL },   /* valid: checks the table's harness */
        { "build.signature", "\"c2lnb===\"", "signature" },
        { "build.signature", NULL, "signature" },
        { "build.url", "\"file:///etc/passwd\"", "url" },
        { "build.url", "\"//evil.example/x\"", "url" },
        { "build.url", "\"ftp://x/y\"", "url" },
        { "build.url", "\"/a b\"", "url" },
        { "build.url", "\"/a\\nb\"", "url" },
        { "build.url", "\"\"", "url" },
    };
    struct molt_command cmd;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct molt_err err = MOLT_ERR_INIT;
        int rc = parse_cmd_text(upgrade_json(bad[i].key, bad[i].value), &cmd, &err);
        if (!bad[i].expect) {
            assert_int_equal(rc, 0);
            molt_command_free(&cmd);
            continue;
        }
        if (rc == 0)
            fail_msg("accepted a command with %s = %s", bad[i].key,
                     bad[i].value ? bad[i].value : "(missing)");
        if (!strstr(err.msg, bad[i].expect))
            fail_msg("%s = %s: message '%s' does not name '%s'", bad[i].key,
                     bad[i].value ? bad[i].value : "(missing)", err.msg, bad[i].expect);
        assert_null(cmd.build.statement);
    }
    /* A huge statement is refused before decoding. */
    {
        size_t n = 200000;
        char *big = malloc(n + 3);
        struct molt_err err = MOLT_ERR_INIT;
        big[0] = '"';
        memset(big + 1, 'A', n);
        big[n + 1] = '"';
        big[n + 2] = '\0';
        assert_int_not_equal(parse_cmd_text(upgrade_json("build.statement", big), &cmd, &err),
                             0);
        free(big);
    }
}

/* ---- heartbeat replies --------------------------------------------------------- */

static void test_heartbeat_reply_valid(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_hb_reply r;
    char text[9000];
    const char *plain = "{\"heartbeatIntervalMs\":500,\"longPoll\":true,\"serverTime\":"
                        "1700000000000,\"command\":null,\"unknownField\":{\"x\":[1,2]}}";

    assert_int_equal(molt_heartbeat_parse_reply(plain, strlen(plain), &r, &err), 0);
    assert_int_equal(r.interval_ms, 500);
    assert_true(r.long_poll);
    assert_int_equal(r.server_time, 1700000000000LL);
    assert_false(r.has_command);
    molt_hb_reply_free(&r);

    assert_int_equal(molt_heartbeat_parse_reply("{}", 2, &r, &err), 0);
    assert_int_equal(r.interval_ms, 0);
    assert_false(r.long_poll);

    snprintf(text, sizeof(text), "{\"heartbeatIntervalMs\":15000,\"longPoll\":false,"
             "\"command\":%s}", upgrade_json(NULL, NULL));
    assert_int_equal(molt_heartbeat_parse_reply(text, strlen(text), &r, &err), 0);
    assert_true(r.has_command);
    assert_string_equal(r.cmd.task_id, "12345");
    molt_hb_reply_free(&r);
}

static void test_heartbeat_reply_hostile(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "<html>502 Bad Gateway</html>",
        "[]",
        "42",
        "\"string\"",
        "null",
        "{\"heartbeatIntervalMs\":\"15000\"}",
        "{\"heartbeatIntervalMs\":-1}",
        "{\"heartbeatIntervalMs\":0}",
        "{\"heartbeatIntervalMs\":99}",
        "{\"heartbeatIntervalMs\":99999999999999}",
        "{\"heartbeatIntervalMs\":9223372036854775807}",
        "{\"heartbeatIntervalMs\":1.5}",
        "{\"heartbeatIntervalMs\":[15000]}",
        "{\"longPoll\":\"yes\"}",
        "{\"longPoll\":1}",
        "{\"serverTime\":\"now\"}",
        "{\"heartbeatIntervalMs\":15000} trailing",
        "{\"heartbeatIntervalMs\":15000",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    struct molt_hb_reply r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct molt_err err = MOLT_ERR_INIT;
        if (molt_heartbeat_parse_reply(bad[i], strlen(bad[i]), &r, &err) == 0)
            fail_msg("accepted hostile reply #%zu: %s", i, bad[i]);
        assert_true(err.msg[0] != '\0');
        assert_false(r.has_command);
    }
    /* A NUL byte and garbage after the document. */
    {
        const char text[] = "{}\0garbage";
        struct molt_err err = MOLT_ERR_INIT;
        assert_int_not_equal(molt_heartbeat_parse_reply(text, sizeof(text) - 1, &r, &err), 0);
    }
}

#define TOKEN "abcdefghijklmnopqrstuvwxyz0123456789-_"

/* Replies refused by molt_json_parse's strict rules and the fields' ranges,
 * each with its message; no value of a field stands for "absent". */
static void test_replies_strict(void **state)
{
    static const struct {
        const char *body, *msg;
    } hb[] = {
        { "{\"heartbeatIntervalMs\":-9223372036854775808}",
          "heartbeat reply: field 'heartbeatIntervalMs': -9223372036854775808 is not in "
          "100..86400000" },
        { "{\"heartbeatIntervalMs\":300,}", "heartbeat reply: JSON: unexpected character at "
                                            "offset 27" },
        { "{'heartbeatIntervalMs':300}",
          "heartbeat reply: JSON: unexpected byte 0x27 at offset 1" },
        { "{\"heartbeatIntervalMs\":0300}", "heartbeat reply: JSON: number expected at offset 27" },
        { "{\"heartbeatIntervalMs\":00}", "heartbeat reply: JSON: number with a leading zero at "
                                          "offset 23" },
        { "{\"heartbeatIntervalMs\":300/**/}", "heartbeat reply: JSON: object value separator "
                                               "',' expected at offset 26" },
        { "{\"serverTime\":9223372036854775808}", "heartbeat reply: JSON: field 'serverTime': "
                                                "9223372036854775808 is outside int64" },
        { "{\"heartbeatIntervalMs\\u0000\":300}", "heartbeat reply: JSON: NUL (\\u0000) in a "
                                                  "string at offset 21" },
    };
    struct molt_identity id;
    struct molt_hb_reply r;
    int64_t interval = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(hb) / sizeof(hb[0]); i++) {
        struct molt_err err = MOLT_ERR_INIT;
        assert_int_equal(molt_heartbeat_parse_reply(hb[i].body, strlen(hb[i].body), &r, &err),
                         MOLT_E_PARSE);
        assert_string_equal(err.msg, hb[i].msg);
    }
    /* Absent is absent: no interval, and the reply is fine. */
    struct molt_err err = MOLT_ERR_INIT;
    assert_int_equal(molt_heartbeat_parse_reply("{\"longPoll\":true}", 17, &r, &err), 0);
    assert_int_equal(r.interval_ms, 0);
    assert_int_equal(r.long_poll, 1);

    static const struct {
        const char *body, *msg;
    } reg[] = {
        { "{\"collectorId\":18446744073709551616,\"token\":\"" TOKEN "\"}",
          "registration reply: JSON: field 'collectorId': 18446744073709551616 is outside int64" },
        { "{\"collectorId\":0,\"token\":\"" TOKEN "\"}",
          "registration reply: field 'collectorId': 0 is not in 1..9223372036854775807" },
        { "{\"collectorId\":1,\"token\":\"" TOKEN "\","
          "\"heartbeatIntervalMs\":-9223372036854775808}",
          "registration reply: field 'heartbeatIntervalMs': -9223372036854775808 is not in "
          "100..86400000" },
        { "{\"collectorId\":1,\"token\":\"" TOKEN "\"}\n\n{}",
          "registration reply: JSON: unexpected character at offset 68" },
    };
    for (size_t i = 0; i < sizeof(reg) / sizeof(reg[0]); i++) {
        err = (struct molt_err)MOLT_ERR_INIT;
        interval = 7;
        assert_int_equal(molt_register_parse_reply(reg[i].body, strlen(reg[i].body), &id,
                                                   &interval, &err), MOLT_E_PARSE);
        assert_string_equal(err.msg, reg[i].msg);
        assert_int_equal(interval, 0);
    }
    static const char no_interval[] =
        "{\"collectorId\":9223372036854775807,\"token\":\"" TOKEN "\"}";
    assert_int_equal(molt_register_parse_reply(no_interval, sizeof(no_interval) - 1, &id,
                                               &interval, &err), 0);
    assert_true(id.collector_id == INT64_MAX);
    assert_int_equal(interval, 0);
}

static void test_heartbeat_bad_command_keeps_reply(void **state)
{
    static const char *const cmds[] = {
        "5", "\"upgrade\"", "[]", "{}", "{\"type\":\"upgrade\",\"taskId\":\"1\"}",
        "{\"type\":\"cancel\",\"taskId\":12}",
    };
    struct molt_hb_reply r;
    char text[9000];

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        struct molt_err err = MOLT_ERR_INIT;
        snprintf(text, sizeof(text), "{\"heartbeatIntervalMs\":700,\"command\":%s}", cmds[i]);
        assert_int_equal(molt_heartbeat_parse_reply(text, strlen(text), &r, &err), 0);
        assert_int_equal(r.interval_ms, 700);
        assert_false(r.has_command);
        if (!r.command_error[0])
            fail_msg("command %s not reported as rejected", cmds[i]);
    }
    snprintf(text, sizeof(text), "{\"command\":%s}", upgrade_json("build.size", "-5"));
    assert_int_equal(molt_heartbeat_parse_reply(text, strlen(text), &r, NULL), 0);
    assert_false(r.has_command);
    assert_non_null(strstr(r.command_error, "size"));
}

static void test_heartbeat_body(void **state)
{
    struct molt_host host;
    struct molt_report rep;
    struct json_object *o, *task;
    const char *s;
    int64_t n;

    assert_int_equal(molt_host_read(&host, NULL), 0);
    o = molt_heartbeat_body(&host, 1234, NULL);
    assert_int_equal(molt_json_get_str(o, "collectorVersion", &s, NULL), 0);
    assert_string_equal(s, molt_version_self());
    assert_int_equal(molt_json_get_str(o, "osName", &s, NULL), 0);
    assert_string_equal(s, "Linux");
    assert_int_equal(molt_json_get_str(o, "osArch", &s, NULL), 0);
    assert_string_equal(s, host.os_arch);
    assert_int_equal(molt_json_get_int(o, "osTime", &n, NULL), 0);
    assert_int_equal(n, 1234);
    assert_int_equal(molt_json_get_int(o, "uptimeMs", &n, NULL), 0);
    assert_true(n > 0);
    assert_true(json_object_object_get_ex(o, "task", &task));
    assert_null(task);
    json_object_put(o);

    molt_report_init(&rep, "77", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_DOWNLOADING);
    rep.bytes_done = 10;
    rep.bytes_total = 100;
    o = molt_heartbeat_body(&host, 1, &rep);
    assert_int_equal(molt_json_get_obj(o, "task", &task, NULL), 0);
    assert_int_equal(molt_json_get_str(task, "stage", &s, NULL), 0);
    assert_string_equal(s, "downloading");
    assert_int_equal(molt_json_get_int(task, "stageIndex", &n, NULL), 0);
    assert_int_equal(n, 3);
    json_object_put(o);
}

/* Heartbeats without a task send a text body around cached host members: it must say what
 * the json-c tree says, follow a new read of the facts, and keep hostile strings strings. */
static void test_heartbeat_body_idle(void **state)
{
    struct molt_host host;
    struct molt_hb_cache cache = { 0 };
    struct json_object *o, *t;
    char text[4096];
    int len;

    assert_int_equal(molt_host_read(&host, NULL), 0);
    o = molt_heartbeat_body(&host, 1234, NULL);
    len = molt_heartbeat_body_idle(&host, 1234, &cache, text, sizeof(text));
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(text));
    assert_int_equal(molt_json_parse(text, strlen(text), &t, NULL), 0);
    assert_true(json_object_equal(o, t));
    json_object_put(o);
    json_object_put(t);

    /* A later read with new facts: the cache follows. */
    snprintf(host.host_name, sizeof(host.host_name), "h\"ost\\\n\x01,\"task\":1}");
    host.read_mono_ms++;
    host.uptime_ms += 5;
    o = molt_heartbeat_body(&host, 99, NULL);
    assert_true(molt_heartbeat_body_idle(&host, 99, &cache, text, sizeof(text)) > 0);
    assert_int_equal(molt_json_parse(text, strlen(text), &t, NULL), 0);
    assert_true(json_object_equal(o, t));
    json_object_put(o);
    json_object_put(t);

    /* Too small a buffer is said, not truncated. */
    assert_int_equal(molt_heartbeat_body_idle(&host, 99, &cache, text, 32), -1);
}

/* ---- reports and the outbox ------------------------------------------------------ */

static void test_report_roundtrip(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r, back;
    struct json_object *o;

    molt_report_init(&r, "12345", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    molt_report_fail(&r, "signature: no trusted key");
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_string_equal(r.message, "verifying: signature: no trusted key");
    o = molt_report_to_json(&r);
    assert_int_equal(molt_report_from_json(o, &back, &err), 0);
    assert_memory_equal(&r, &back, sizeof(r));
    json_object_object_add(o, "status", json_object_new_int(4));
    assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
    json_object_object_add(o, "status", json_object_new_int(2));
    json_object_object_add(o, "taskId", json_object_new_string("1/2"));
    assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
    json_object_put(o);
    assert_null(molt_stage_name(0));
    assert_string_equal(molt_stage_name(MOLT_STAGE_HEALTH_CHECK), "health-check");
    assert_string_equal(molt_stage_name(MOLT_STAGE_COUNT), "committed");
}

struct fake_server {
    long statuses[8];   /* answers in order; 0 = no reply (connection failure) */
    int n_calls;
    char sent[8][32];
};

static int fake_send(void *arg, const char *task_id, const char *body, size_t len, long *status,
                     struct molt_err *err)
{
    struct fake_server *s = arg;
    long st = s->statuses[s->n_calls];

    snprintf(s->sent[s->n_calls], sizeof(s->sent[0]), "%s", task_id);
    s->n_calls++;
    *status = st;
    if (st == 0)
        return molt_err_set(err, MOLT_E_NET, "connection refused");
    if (st != 200)
        return molt_err_set(err, st == 401 ? MOLT_E_AUTH : MOLT_E_HTTP, "HTTP %ld", st);
    return 0;
}

static void put_report(const char *dir, const char *id, int status)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    molt_report_init(&r, id, "20.2-100", status, MOLT_STAGE_COMMITTED);
    assert_int_equal(molt_outbox_put(dir, &r, &err), 0);
}

static void test_outbox(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct fake_server s = { .statuses = { 500, 0 } };
    struct stat st;

    tu_mkdtemp(tmp);
    snprintf(dir, sizeof(dir), "%s/outbox", tmp);
    assert_int_equal(molt_outbox_count(dir), 0);
    assert_int_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);   /* no dir: nothing */
    put_report(dir, "100", MOLT_TASK_SUCCEEDED);
    put_report(dir, "99", MOLT_TASK_FAILED);
    put_report(dir, "1000", MOLT_TASK_SUCCEEDED);
    assert_int_equal(molt_outbox_count(dir), 3);
    assert_true(molt_outbox_has(dir, "99"));
    assert_false(molt_outbox_has(dir, "98"));
    snprintf(path, sizeof(path), "%s/99.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A 500 keeps everything; the oldest task goes first. */
    assert_int_not_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);
    assert_int_equal(s.n_calls, 1);
    assert_string_equal(s.sent[0], "99");
    assert_int_equal(molt_outbox_count(dir), 3);
    /* No reply at all: kept too (as across a restart: the files are all there is). */
    assert_int_not_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);
    assert_int_equal(molt_outbox_count(dir), 3);

    /* 200, 404 and 409 are answers: each entry goes. */
    struct fake_server ok = { .statuses = { 200, 404, 409 } };
    assert_int_equal(molt_outbox_flush(dir, fake_send, &ok, &err), 0);
    assert_int_equal(ok.n_calls, 3);
    assert_string_equal(ok.sent[0], "99");
    assert_string_equal(ok.sent[1], "100");
    assert_string_equal(ok.sent[2], "1000");
    assert_int_equal(molt_outbox_count(dir), 0);

    /* A corrupt entry is moved aside, not sent, not lost; temp files are ignored. */
    tu_write(path, dir, "5.json", "{\"taskId\":\"5\",\"status\":");
    tu_write(path, dir, "6.json.tmp.abcdef", "junk");
    struct fake_server none = { .statuses = { 200 } };
    assert_int_equal(molt_outbox_flush(dir, fake_send, &none, &err), 0);
    assert_int_equal(none.n_calls, 0);
    snprintf(path, sizeof(path), "%s/5.json.bad", dir);
    assert_true(molt_fs_exists(path));
    tu_rmtree(tmp);
}

static void keep_report(struct molt_outbox_kept *k, const char *id, int status)
{
    struct molt_report r;

    molt_report_init(&r, id, "20.2-100", status, MOLT_STAGE_COMMITTED);
    molt_outbox_keep(k, &r);
}

/* Reports the outbox directory will not take are kept in memory and sent all
 * the same; once the directory takes files again they are filed there. */
static void test_outbox_kept(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_outbox_kept k;
    struct molt_report r;
    char id[16];

    (void)state;
    tu_mkdtemp(tmp);
    tu_write(path, tmp, "state", "a file where the state directory should be");
    snprintf(dir, sizeof(dir), "%s/state/outbox", tmp);
    molt_report_init(&r, "7", "20.2-100", MOLT_TASK_FAILED, MOLT_STAGE_VERIFYING);
    assert_int_not_equal(molt_outbox_put(dir, &r, &err), 0);

    molt_outbox_kept_init(&k);
    molt_outbox_keep(&k, &r);
    keep_report(&k, "5", MOLT_TASK_FAILED);
    keep_report(&k, "7", MOLT_TASK_SUCCEEDED);    /* replaces the first report of 7 */
    assert_int_equal(molt_outbox_kept_count(&k), 2);
    assert_true(molt_outbox_kept_has(&k, "7"));
    assert_true(molt_outbox_kept_has(&k, "5"));
    assert_false(molt_outbox_kept_has(&k, "6"));

    /* No reply: everything stays. Then 200 for 5 and a 500 for 7: only 7 stays. */
    struct fake_server down = { .statuses = { 0 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &down, &err), 0);
    assert_int_equal(down.n_calls, 1);
    assert_string_equal(down.sent[0], "5");
    assert_int_equal(molt_outbox_kept_count(&k), 2);
    struct fake_server half = { .statuses = { 200, 500 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &half, &err), 0);
    assert_int_equal(half.n_calls, 2);
    assert_string_equal(half.sent[1], "7");
    assert_int_equal(molt_outbox_kept_count(&k), 1);
    assert_true(molt_outbox_kept_has(&k, "7"));

    /* Full: the oldest report goes (with an error in the log). */
    for (int i = 0; i < MOLT_OUTBOX_KEPT_MAX; i++) {
        snprintf(id, sizeof(id), "%d", 100 + i);
        keep_report(&k, id, MOLT_TASK_SUCCEEDED);
    }
    assert_int_equal(molt_outbox_kept_count(&k), MOLT_OUTBOX_KEPT_MAX);
    assert_false(molt_outbox_kept_has(&k, "7"));

    /* The directory takes files again: all are filed, then sent from there. */
    assert_int_equal(unlink(path), 0);
    struct fake_server again = { .statuses = { 0 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &again, &err), 0);
    assert_int_equal(molt_outbox_kept_count(&k), 0);
    assert_int_equal(molt_outbox_count(dir), MOLT_OUTBOX_KEPT_MAX);
    assert_int_equal(again.n_calls, 1);
    assert_string_equal(again.sent[0], "100");
    molt_outbox_kept_destroy(&k);
    tu_rmtree(tmp);
}

/* ---- task policy ---------------------------------------------------------------------- */

/* A pipeline double: the policy's hand-offs are recorded, so the test sees what
 * reached the pipeline and what the core answered itself. (Defining these here
 * keeps the real agent/upgrade.c out of this test program.) */
static struct {
    int starts, cancels;
    char last_task[MOLT_TASK_ID_MAX + 1];
} pipeline;

int molt_upgrade_init(struct molt_agent *a, struct molt_err *err)
{
    return 0;
}

void molt_upgrade_start(struct molt_agent *a, const struct molt_command *cmd)
{
    pipeline.starts++;
    snprintf(pipeline.last_task, sizeof(pipeline.last_task), "%s", cmd->task_id);
}

void molt_upgrade_cancel(struct molt_agent *a, const struct molt_command *cmd)
{
    pipeline.cancels++;
    snprintf(pipeline.last_task, sizeof(pipeline.last_task), "%s", cmd->task_id);
}

void molt_upgrade_shutdown(struct molt_agent *a)
{
}

static void agent_for_tests(struct molt_agent *a, const char *dir)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    molt_outbox_kept_init(&a->kept);
    a->wake_fd = -1;
    a->lock_fd = -1;
    molt_conf_defaults(&a->conf);
    snprintf(a->state_dir, sizeof(a->state_dir), "%s", dir);
    snprintf(a->outbox_dir, sizeof(a->outbox_dir), "%s/outbox", dir);
}

static void read_final(const char *dir, const char *id, struct molt_report *r)
{
    char path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    char *text = NULL;
    size_t len;

    snprintf(path, sizeof(path), "%s/outbox/%s.json", dir, id);
    assert_int_equal(molt_fs_read_file(path, 65536, &text, &len, &err), 0);
    assert_int_equal(molt_json_parse(text, len, &o, &err), 0);
    assert_int_equal(molt_report_from_json(o, r, &err), 0);
    json_object_put(o);
    free(text);
}

static void make_cmd(struct molt_command *cmd, const char *key, const char *value)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(parse_cmd_text(upgrade_json(key, value), cmd, &err), 0);
}

static void test_task_policy(void **state)
{
    char dir[PATH_MAX], v[96];
    struct molt_agent *a = calloc(1, sizeof(*a));
    struct molt_report r, cur;
    struct molt_command cmd;
    struct molt_err err = MOLT_ERR_INIT;
    int64_t now = 1700000100000LL;

    tu_mkdtemp(dir);
    agent_for_tests(a, dir);

    /* The running version: 2 at once. */
    snprintf(v, sizeof(v), "\"%s\"", molt_version_self());
    make_cmd(&cmd, "toVersion", v);
    snprintf(cmd.task_id, sizeof(cmd.task_id), "501");
    molt_task_on_command(a, &cmd, now);
    read_final(dir, "501", &r);
    assert_int_equal(r.status, MOLT_TASK_SUCCEEDED);
    molt_command_free(&cmd);

    /* Expired: 3, naming the stage. */
    make_cmd(&cmd, NULL, NULL);
    snprintf(cmd.task_id, sizeof(cmd.task_id), "502");
    molt_task_on_command(a, &cmd, cmd.expires_at + 1);
    read_final(dir, "502", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "accepted: command expired"));

    assert_int_equal(pipeline.starts, 0);

    /* A valid upgrade goes to the pipeline; the core writes nothing final. */
    snprintf(cmd.task_id, sizeof(cmd.task_id), "503");
    molt_task_on_command(a, &cmd, now);
    assert_int_equal(pipeline.starts, 1);
    assert_string_equal(pipeline.last_task, "503");
    assert_false(molt_outbox_has(a->outbox_dir, "503"));

    /* Another task in progress: 3 for the newcomer, the other untouched. */
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_DOWNLOADING);
    assert_int_equal(molt_task_begin(a, &r, &err), 0);
    molt_report_init(&r, "401", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_ACCEPTED);
    assert_int_equal(molt_task_begin(a, &r, &err), MOLT_E_BUSY);
    assert_non_null(strstr(err.msg, "another task is in progress: 400"));
    snprintf(cmd.task_id, sizeof(cmd.task_id), "504");
    molt_task_on_command(a, &cmd, now);
    read_final(dir, "504", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "another task is in progress: 400"));
    assert_true(molt_task_current(a, &cur));
    assert_string_equal(cur.task_id, "400");
    assert_string_equal(cur.stage, "downloading");
    assert_int_equal(pipeline.starts, 1);
    /* The current task's own command (same build) is already being carried out. */
    snprintf(cmd.task_id, sizeof(cmd.task_id), "400");
    molt_task_on_command(a, &cmd, now);
    assert_int_equal(pipeline.starts, 1);
    assert_false(molt_outbox_has(a->outbox_dir, "400"));
    /* The same task with another build is its next hop: the pipeline's business. */
    snprintf(cmd.build.version, sizeof(cmd.build.version), "20.3-1");
    molt_task_on_command(a, &cmd, now);
    assert_int_equal(pipeline.starts, 2);
    snprintf(cmd.build.version, sizeof(cmd.build.version), "20.2-100");
    snprintf(cmd.task_id, sizeof(cmd.task_id), "504");
    /* The same command again (the server repeats it): ignored, not re-answered. */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/outbox/504.json", dir);
    assert_int_equal(unlink(path), 0);
    molt_task_on_command(a, &cmd, now);
    assert_false(molt_outbox_has(a->outbox_dir, "504"));
    molt_command_free(&cmd);

    /* A cancel for the current task goes to the pipeline. */
    struct molt_command cancel;
    assert_int_equal(parse_cmd_text("{\"type\":\"cancel\",\"taskId\":\"400\"}", &cancel, &err),
                     0);
    molt_task_on_command(a, &cancel, now);
    assert_int_equal(pipeline.cancels, 1);
    assert_false(molt_outbox_has(a->outbox_dir, "400"));

    /* Progress updates only for the slot's holder; finishing frees the slot. */
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_update(a, &r, &err), 0);
    molt_report_init(&r, "999", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_update(a, &r, &err), MOLT_E_STATE);
    molt_report_init(&r, "400", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_COMMITTED);
    assert_int_not_equal(molt_task_finish(a, &r, &err), 0);   /* 6 is not final */
    r.status = MOLT_TASK_SUCCEEDED;
    assert_int_equal(molt_task_finish(a, &r, &err), 0);
    assert_false(molt_task_current(a, &cur));
    assert_true(molt_task_recently_finished(a, "400"));

    /* An outbox that takes no files: the final report is kept in memory, the
     * slot is freed all the same, and the task counts as finished. */
    char saved_outbox[PATH_MAX], blocker[PATH_MAX];
    snprintf(saved_outbox, sizeof(saved_outbox), "%s", a->outbox_dir);
    tu_write(blocker, dir, "not-a-dir", "x");
    snprintf(a->outbox_dir, sizeof(a->outbox_dir), "%s/outbox", blocker);
    molt_report_init(&r, "401", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_task_begin(a, &r, &err), 0);
    r.status = MOLT_TASK_FAILED;
    assert_int_equal(molt_task_finish(a, &r, &err), 0);
    assert_false(molt_task_current(a, &cur));
    assert_true(molt_outbox_kept_has(&a->kept, "401"));
    assert_true(molt_task_recently_finished(a, "401"));
    snprintf(a->outbox_dir, sizeof(a->outbox_dir), "%s", saved_outbox);

    /* Downgrade refused when configured so. */
    a->conf.agent.allow_downgrade = 0;
    make_cmd(&cmd, "toVersion", "\"1.0-1\"");
    snprintf(cmd.task_id, sizeof(cmd.task_id), "505");
    molt_task_on_command(a, &cmd, now);
    read_final(dir, "505", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_non_null(strstr(r.message, "downgrade"));
    molt_command_free(&cmd);

    /* Cancel of a task unknown here: 3 "cancelled". */
    assert_int_equal(parse_cmd_text("{\"type\":\"cancel\",\"taskId\":\"506\"}", &cmd, &err), 0);
    molt_task_on_command(a, &cmd, now);
    read_final(dir, "506", &r);
    assert_int_equal(r.status, MOLT_TASK_FAILED);
    assert_string_equal(r.message, "cancelled");
    assert_int_equal(pipeline.cancels, 1);
    molt_command_free(&cmd);
    assert_int_equal(pipeline.starts, 2);

    molt_outbox_kept_destroy(&a->kept);
    pthread_mutex_destroy(&a->mu);
    free(a);
    tu_rmtree(dir);
}

/* ---- identity ------------------------------------------------------------------------ */

static void test_identity(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_identity id = { 0 }, back;
    int64_t interval;
    struct stat st;
    const char *ok = "{\"collectorId\":100000001,\"token\":\"" TOKEN "\","
                     "\"heartbeatIntervalMs\":15000}";

    assert_int_equal(molt_register_parse_reply(ok, strlen(ok), &id, &interval, &err), 0);
    assert_int_equal(id.collector_id, 100000001);
    assert_string_equal(id.token, TOKEN);
    assert_int_equal(interval, 15000);
    static const char *const bad[] = {
        "{\"collectorId\":0,\"token\":\"" TOKEN "\"}",
        "{\"collectorId\":\"1\",\"token\":\"" TOKEN "\"}",
        "{\"collectorId\":1,\"token\":\"short\"}",
        "{\"collectorId\":1,\"token\":\"abcdefghijklmnopqrstuvwxyz0123456789\\r\\nX-Evil: 1\"}",
        "{\"collectorId\":1,\"token\":\"abcdefghijklmnopqrstuvwxyz 0123456789\"}",
        "{\"collectorId\":1,\"token\":\"" TOKEN "\",\"heartbeatIntervalMs\":1}",
        "{\"collectorId\":1}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (molt_register_parse_reply(bad[i], strlen(bad[i]), &back, &interval, &err) == 0)
            fail_msg("accepted registration reply %s", bad[i]);
    }

    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/identity.json", dir);
    assert_int_equal(molt_identity_load(path, &back, &err), MOLT_E_NOTFOUND);
    snprintf(id.machine_id, sizeof(id.machine_id), "0123456789abcdef0123456789abcdef");
    snprintf(id.name, sizeof(id.name), "web-1");
    snprintf(id.server_url, sizeof(id.server_url), "https://127.0.0.1:8443");
    assert_int_equal(molt_identity_save(path, &id, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(molt_identity_load(path, &back, &err), 0);
    assert_memory_equal(&id, &back, sizeof(id));
    assert_null(molt_identity_stale(&back, "0123456789abcdef0123456789abcdef",
                                    "https://127.0.0.1:8443"));
    assert_non_null(molt_identity_stale(&back, "ffffffffffffffffffffffffffffffff",
                                        "https://127.0.0.1:8443"));
    assert_non_null(molt_identity_stale(&back, "0123456789abcdef0123456789abcdef",
                                        "https://other:8443"));
    tu_write(path, dir, "identity.json", "{\"collectorId\":1}");
    assert_int_equal(molt_identity_load(path, &back, &err), MOLT_E_PARSE);
    tu_rmtree(dir);
}

/* ---- host facts -------------------------------------------------------------------- */

static void test_host_machine_id(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX], id[33];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host h;

    tu_mkdtemp(dir);
    tu_write(path, dir, "ok", "4c4c4544003957108052b4c04f4e4d31\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), 0);
    assert_string_equal(id, "4c4c4544003957108052b4c04f4e4d31");
    tu_write(path, dir, "short", "4c4c4544\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    tu_write(path, dir, "nonhex", "zc4c4544003957108052b4c04f4e4d31\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_NOTFOUND);
    tu_rmtree(dir);

    assert_int_equal(molt_host_read(&h, &err), 0);
    assert_true(h.host_name[0] != '\0');
    assert_true(h.time_zone[0] != '\0');
    assert_true(h.uptime_ms > 0);
    assert_true(molt_host_monotonic_ms() > 0);
    assert_true(molt_host_realtime_ms() > MOLT_TIME_MIN_MS);
}

static int64_t boottime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Heartbeats report cached facts for up to max_age, a current uptime always, and the facts
 * read again once they are older (or on demand). */
static void test_host_refresh(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host h, real;
    int64_t before, after;

    assert_int_equal(molt_host_read(&real, &err), 0);
    assert_true(real.read_mono_ms > 0);
    h = real;
    snprintf(h.host_name, sizeof(h.host_name), "cached-name");
    h.uptime_ms = 0;
    before = boottime_ms();
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    after = boottime_ms();
    assert_string_equal(h.host_name, "cached-name");    /* not read again */
    assert_true(h.uptime_ms >= before && h.uptime_ms <= after);
    assert_int_equal(h.read_mono_ms, real.read_mono_ms);

    h.read_mono_ms -= MOLT_HOST_REFRESH_MS;              /* a minute old */
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    assert_string_equal(h.host_name, real.host_name);
    assert_string_equal(h.os_version, real.os_version);
    assert_true(h.read_mono_ms >= real.read_mono_ms);

    snprintf(h.host_name, sizeof(h.host_name), "cached-name");
    h.read_mono_ms = 0;                                  /* forced, as on reload */
    assert_int_equal(molt_host_refresh(&h, MOLT_HOST_REFRESH_MS, &err), 0);
    assert_string_equal(h.host_name, real.host_name);
}

/* ---- local API envelope --------------------------------------------------------- */

static void test_api_envelope(void **state)
{
    struct molt_api_response res = { 0 };
    struct json_object *env, *err_obj, *data;
    const char *s;
    int ok;
    int64_t n;

    res.data = json_object_new_object();
    json_object_object_add(res.data, "x", json_object_new_int(1));
    env = molt_api_envelope(&res, 3, "0011223344556677");
    assert_int_equal(molt_json_get_bool(env, "successful", &ok, NULL), 0);
    assert_true(ok);
    assert_int_equal(molt_json_get_int(env, "status", &n, NULL), 0);
    assert_int_equal(n, 200);
    assert_int_equal(molt_json_get_int(env, "duration", &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(molt_json_get_str(env, "traceId", &s, NULL), 0);
    assert_string_equal(s, "0011223344556677");
    assert_int_equal(molt_json_get_str(env, "timestamp", &s, NULL), 0);
    assert_true(strlen(s) >= 24 && s[4] == '-' && s[10] == 'T');
    assert_int_equal(molt_json_get_obj(env, "data", &data, NULL), 0);
    assert_true(json_object_object_get_ex(env, "error", &err_obj) && err_obj == NULL);
    json_object_put(env);

    molt_api_error(&res, 404, "not.found", "no such endpoint: %s", "/x");
    assert_null(res.data);
    env = molt_api_envelope(&res, 0, "00");
    assert_int_equal(molt_json_get_bool(env, "successful", &ok, NULL), 0);
    assert_false(ok);
    assert_int_equal(molt_json_get_obj(env, "error", &err_obj, NULL), 0);
    assert_int_equal(molt_json_get_str(err_obj, "code", &s, NULL), 0);
    assert_string_equal(s, "not.found");
    assert_true(json_object_object_get_ex(env, "data", &data) && data == NULL);
    json_object_put(env);
}

/* ---- molt-agent status ---------------------------------------------------------- */

static char *print_status(const char *json, int tty)
{
    struct json_object *o = json_tokener_parse(json);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(o);
    assert_non_null(f);
    molt_status_print(f, o, tty);
    fclose(f);
    json_object_put(o);
    return out;
}

static void test_status_print(void **state)
{
    const char *data =
        "{\"version\":\"20.1-2749\",\"registered\":true,\"collectorId\":100000001,"
        "\"name\":\"web-1\",\"server\":\"https://cp:8443\",\"lastHeartbeatTime\":1700000000000,"
        "\"nextHeartbeatTime\":1700000015000,\"heartbeatIntervalMs\":15000,\"longPoll\":true,"
        "\"failures\":0,\"task\":{\"taskId\":\"12345\",\"status\":6,\"stage\":\"downloading\","
        "\"stageIndex\":3,\"stageCount\":9,\"bytesDone\":2097152,\"bytesTotal\":4194304,"
        "\"version\":\"20.1-2749\",\"buildVersion\":\"20.2-100\",\"message\":\"\"}}";
    char *out = print_status(data, 1);

    assert_non_null(strstr(out, "collector id     100000001\n"));
    assert_non_null(strstr(out, "server           https://cp:8443\n"));
    assert_non_null(strstr(out, "interval         15s (long-poll)\n"));
    assert_non_null(strstr(out, "task             12345 -> 20.2-100\n"));
    assert_non_null(strstr(out, "  stage          downloading (3/9)\n"));
    assert_non_null(strstr(out, "[###############...............]  50%  2.0 MiB / 4.0 MiB"));
    free(out);
    out = print_status(data, 0);
    assert_null(strchr(out, '['));
    assert_non_null(strstr(out, "  progress       50%  2.0 MiB / 4.0 MiB\n"));
    free(out);
    out = print_status("{\"registered\":false,\"failures\":3,\"lastError\":\"refused\","
                       "\"task\":null}", 0);
    assert_non_null(strstr(out, "collector id     not registered\n"));
    assert_non_null(strstr(out, "last heartbeat   never\n"));
    assert_non_null(strstr(out, "problem          3 failures, last: refused\n"));
    assert_non_null(strstr(out, "task             none\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_reset_and_retry_after),
        cmocka_unit_test(test_backoff_jitter),
        cmocka_unit_test(test_command_valid),
        cmocka_unit_test(test_command_hostile),
        cmocka_unit_test(test_heartbeat_reply_valid),
        cmocka_unit_test(test_heartbeat_reply_hostile),
        cmocka_unit_test(test_replies_strict),
        cmocka_unit_test(test_heartbeat_bad_command_keeps_reply),
        cmocka_unit_test(test_heartbeat_body),
        cmocka_unit_test(test_heartbeat_body_idle),
        cmocka_unit_test(test_report_roundtrip),
        cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_outbox_kept),
        cmocka_unit_test(test_task_policy),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_host_machine_id),
        cmocka_unit_test(test_host_refresh),
        cmocka_unit_test(test_api_envelope),
        cmocka_unit_test(test_status_print),
    };

    molt_log_setup("test_agent", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
