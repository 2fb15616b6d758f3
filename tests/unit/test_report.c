/* test_report.c: agent/report.c: a report, its failure message, its JSON. */
#include "testutil.h"

#include "report.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
