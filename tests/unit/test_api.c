/* test_api.c: agent/api.c: the local API's envelope. */
#include "testutil.h"

#include <string.h>

#include "api.h"
#include "json.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_envelope),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
