/* test_heartbeat.c: agent/heartbeat.c: replies (hostile ones included, a bad
 * command that does not spoil its reply) and the request body. */
#include "testutil.h"

#include <string.h>

#include "agent_testutil.h"
#include "heartbeat.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "version.h"

static void test_heartbeat_reply_valid(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_hb_reply r;
    char text[9000];
    const char *plain = "{\"heartbeatIntervalMs\":500,\"longPoll\":true,\"serverTime\":"
                        "1700000000000,\"command\":null,\"unknownField\":{\"x\":[1,2]},"
                        "\"channelSerial\":42,\"keyringSerial\":3}";

    assert_int_equal(molt_heartbeat_parse_reply(plain, strlen(plain), &r, &err), 0);
    assert_int_equal(r.interval_ms, 500);
    assert_true(r.long_poll);
    assert_int_equal(r.server_time, 1700000000000LL);
    assert_int_equal(r.channel_serial, 42);
    assert_int_equal(r.keyring_serial, 3);
    assert_false(r.has_command);
    molt_hb_reply_free(&r);

    assert_int_equal(molt_heartbeat_parse_reply("{}", 2, &r, &err), 0);
    assert_int_equal(r.interval_ms, 0);
    assert_false(r.long_poll);

    snprintf(text, sizeof(text), "{\"heartbeatIntervalMs\":15000,\"longPoll\":false,"
             "\"command\":%s}", tu_upgrade_json(NULL, NULL));
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
        "{\"channelSerial\":-1}",
        "{\"channelSerial\":\"7\"}",
        "{\"channelSerial\":7.5}",
        "{\"keyringSerial\":-1}",
        "{\"keyringSerial\":\"3\"}",
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

/* Replies refused by molt_json_parse's strict rules and the fields' ranges,
 * each with its message; no value of a field stands for "absent". */
static void test_heartbeat_reply_strict(void **state)
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
    struct molt_hb_reply r;

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
    snprintf(text, sizeof(text), "{\"command\":%s}", tu_upgrade_json("build.size", "-5"));
    assert_int_equal(molt_heartbeat_parse_reply(text, strlen(text), &r, NULL), 0);
    assert_false(r.has_command);
    assert_non_null(strstr(r.command_error, "size"));
}

static const struct molt_hb_channel CHANNEL = { "stable", "ok", 7, 3600000, 4 };

static void test_heartbeat_body(void **state)
{
    struct molt_host host;
    struct molt_report rep;
    struct json_object *o, *task;
    const char *s;
    int64_t n;

    assert_int_equal(molt_host_read(&host, NULL), 0);
    o = molt_heartbeat_body(&host, 1234, &CHANNEL, NULL);
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
    /* the channel in force: freeze attacks show centrally (docs/security.md 6.5) */
    assert_int_equal(molt_json_get_int(o, "channelSerial", &n, NULL), 0);
    assert_int_equal(n, 7);
    assert_int_equal(molt_json_get_int(o, "channelAgeMs", &n, NULL), 0);
    assert_int_equal(n, 3600000);
    assert_int_equal(molt_json_get_str(o, "channelState", &s, NULL), 0);
    assert_string_equal(s, "ok");
    assert_int_equal(molt_json_get_int(o, "keyringSerial", &n, NULL), 0);
    assert_int_equal(n, 4); /* which hosts took a revocation (docs/security.md 6.6) */
    assert_true(json_object_object_get_ex(o, "task", &task));
    assert_null(task);
    json_object_put(o);

    molt_report_init(&rep, "77", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_DOWNLOADING);
    rep.bytes_done = 10;
    rep.bytes_total = 100;
    o = molt_heartbeat_body(&host, 1, &CHANNEL, &rep);
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
    o = molt_heartbeat_body(&host, 1234, &CHANNEL, NULL);
    len = molt_heartbeat_body_idle(&host, 1234, &CHANNEL, &cache, text, sizeof(text));
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
    o = molt_heartbeat_body(&host, 99, &CHANNEL, NULL);
    assert_true(molt_heartbeat_body_idle(&host, 99, &CHANNEL, &cache, text, sizeof(text)) > 0);
    assert_int_equal(molt_json_parse(text, strlen(text), &t, NULL), 0);
    assert_true(json_object_equal(o, t));
    json_object_put(o);
    json_object_put(t);

    /* Too small a buffer is said, not truncated. */
    assert_int_equal(molt_heartbeat_body_idle(&host, 99, &CHANNEL, &cache, text, 32), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_reply_valid),
        cmocka_unit_test(test_heartbeat_reply_hostile),
        cmocka_unit_test(test_heartbeat_reply_strict),
        cmocka_unit_test(test_heartbeat_bad_command_keeps_reply),
        cmocka_unit_test(test_heartbeat_body),
        cmocka_unit_test(test_heartbeat_body_idle),
    };

    molt_log_setup("test_heartbeat", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
