/* test_report.c: agent/report.c: a report and its JSON. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "report.h"

static void test_report_roundtrip(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r, back;
    struct json_object *o;

    molt_report_init(&r, "12345", "20.2-100", MOLT_TASK_PROGRESSING, MOLT_STAGE_VERIFYING);
    r.status = MOLT_TASK_FAILED;
    snprintf(r.message, sizeof(r.message), "verifying: signature: no trusted key");
    o = molt_report_to_json(&r);
    assert_int_equal(molt_report_from_json(o, &back, &err), 0);
    assert_memory_equal(&r, &back, sizeof(r));
    json_object_object_add(o, "status", json_object_new_int(4));
    assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
    json_object_object_add(o, "status", json_object_new_int(2));
    json_object_object_add(o, "taskId", json_object_new_string("1/2"));
    assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
    /* servedBy: optional, kept through the outbox's JSON, bounded. */
    assert_null(json_object_object_get(o, "servedBy"));
    json_object_put(o);
    snprintf(r.served_by, sizeof(r.served_by), "https://cdn.example/p.tar.gz");
    o = molt_report_to_json(&r);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "servedBy")),
                        "https://cdn.example/p.tar.gz");
    assert_int_equal(molt_report_from_json(o, &back, &err), 0);
    assert_memory_equal(&r, &back, sizeof(r));
    {
        char big[MOLT_SOURCE_NAME_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        json_object_object_add(o, "servedBy", json_object_new_string(big));
        assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
        assert_non_null(strstr(err.msg, "servedBy"));
        json_object_object_add(o, "servedBy", json_object_new_int(1));
        assert_int_not_equal(molt_report_from_json(o, &back, &err), 0);
    }
    json_object_put(o);
    assert_null(molt_stage_name(0));
    assert_string_equal(molt_stage_name(MOLT_STAGE_HEALTH_CHECK), "health-check");
    assert_string_equal(molt_stage_name(MOLT_STAGE_COUNT), "committed");
}

/* waiting (a switch window) is reported by name with staging's index: stageCount
 * stays 9, and the strict reader (the outbox's, an older agent's) accepts it. */
static void test_report_waiting(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r, back;
    struct json_object *o;

    (void)state;
    assert_string_equal(molt_stage_name(MOLT_STAGE_WAITING), "waiting");
    assert_null(molt_stage_name(MOLT_STAGE_NAMES + 1));
    assert_int_equal(molt_stage_reported_index(MOLT_STAGE_WAITING), MOLT_STAGE_STAGING);
    assert_int_equal(molt_stage_reported_index(MOLT_STAGE_SWITCHING), MOLT_STAGE_SWITCHING);
    molt_report_init(&r, "42", "2.0.0", MOLT_TASK_PROGRESSING, MOLT_STAGE_WAITING);
    assert_string_equal(r.stage, "waiting");
    assert_int_equal(r.stage_index, MOLT_STAGE_STAGING);
    assert_int_equal(r.stage_count, 9);
    o = molt_report_to_json(&r);
    assert_int_equal(molt_report_from_json(o, &back, &err), 0);
    assert_string_equal(back.stage, "waiting");
    assert_int_equal(back.stage_index, MOLT_STAGE_STAGING);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_roundtrip),
        cmocka_unit_test(test_report_waiting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
