/* test_proto.c: the rules for task ids, versions and the heartbeat interval (lib/proto.c). */
#include "testutil.h"

#include <string.h>

#include <json-c/json.h>

#include "err.h"
#include "proto.h"

/* proto.h: one rule per identifier, at its limits. */
static void test_proto_rules(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = json_tokener_parse("{\"heartbeatIntervalMs\": 99}");
    int64_t ms = 7;
    char v[MOLT_VERSION_MAX + 2];

    assert_int_equal(molt_task_id_valid("12345678901234567890"), 1);
    assert_int_equal(molt_task_id_valid("123456789012345678901"), 0);
    assert_int_equal(molt_task_id_valid(""), 0);
    assert_int_equal(molt_task_id_valid("12a"), 0);
    memset(v, '1', MOLT_VERSION_MAX);
    v[MOLT_VERSION_MAX] = '\0';
    assert_int_equal(molt_version_valid(v), 1);
    v[MOLT_VERSION_MAX] = '1';
    v[MOLT_VERSION_MAX + 1] = '\0';
    assert_int_equal(molt_version_valid(v), 0);
    assert_true(molt_version_valid("20.1-2749"));
    assert_false(molt_version_valid(""));
    assert_false(molt_version_valid("../etc"));
    assert_false(molt_version_valid("20.1/x"));
    assert_false(molt_version_valid("v20"));
    /* Bytes >= 0x80 (a negative char on amd64, positive on aarch64) are not version characters. */
    assert_false(molt_version_valid("20.1-\xe9"));
    assert_false(molt_version_valid("\xb2" "0.1"));
    assert_int_equal(molt_hb_interval_valid(MOLT_HB_INTERVAL_MIN_MS), 1);
    assert_int_equal(molt_hb_interval_valid(MOLT_HB_INTERVAL_MAX_MS), 1);
    assert_int_equal(molt_hb_interval_valid(MOLT_HB_INTERVAL_MAX_MS + 1), 0);
    assert_true(molt_hb_interval_field(o, &ms, &err) < 0);
    assert_int_equal(ms, 7);
    json_object_put(o);
    o = json_tokener_parse("{}");
    assert_int_equal(molt_hb_interval_field(o, &ms, &err), 0);
    assert_int_equal(ms, 7);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
