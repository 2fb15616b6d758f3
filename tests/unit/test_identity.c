/* test_identity.c: agent/identity.c: registration replies, identity.json,
 * a stale identity. */
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

#include "agent_testutil.h"
#include "identity.h"
#include "log.h"

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

/* Registration replies refused by molt_json_parse's strict rules and the
 * fields' ranges, each with its message; no value of a field stands for "absent". */
static void test_register_reply_strict(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_identity id;
    int64_t interval = 7;

    (void)state;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_register_reply_strict),
    };

    molt_log_setup("test_identity", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
