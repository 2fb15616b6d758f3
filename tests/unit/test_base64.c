/* test_base64.c: strict base64 and the bounded base64 JSON field reader (lib/base64.c). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "err.h"

static void test_base64(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    unsigned char *out;
    size_t len;
    char *enc;

    assert_int_equal(molt_base64_decode("aGVsbG8=", 8, &out, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(molt_base64_decode("", 0, &out, &len, &err), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(molt_base64_encode("hi!?", 4, &enc, &err), 0);
    assert_string_equal(enc, "aGkhPw==");
    free(enc);
    assert_true(molt_base64_decode("aGVsbG8", 7, &out, &len, &err) < 0);
    assert_true(molt_base64_decode("aG=sbG8=", 8, &out, &len, &err) < 0);
    assert_true(molt_base64_decode("aGVs\nG8=", 8, &out, &len, &err) < 0);
    assert_true(molt_base64_decode("====", 4, &out, &len, &err) < 0);
    /* A byte >= 0x80 (a negative char on amd64, positive on aarch64) is refused, not looked up. */
    assert_true(molt_base64_decode("aGVs\xe9G8=", 8, &out, &len, &err) < 0);
}

/* One reader of a bounded base64 JSON field: present, a string, non-empty,
 * no longer than the base64 of max bytes, strict base64. */
static void test_base64_field(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = json_tokener_parse(
        "{\"ok\": \"aGVsbG8=\", \"long\": \"aGVsbG8h\", \"empty\": \"\", \"bad\": \"aGVs G8=\", "
        "\"num\": 5}");
    unsigned char *out;
    size_t len;

    assert_int_equal(molt_base64_field(o, "ok", 5, &out, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(molt_base64_field(o, "long", 5, &out, &len, &err), MOLT_E_LIMIT);
    assert_string_equal(err.msg, "field 'long': larger than 5 bytes");
    assert_int_equal(molt_base64_field(o, "empty", 5, &out, &len, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 'empty': not valid base64");
    assert_int_equal(molt_base64_field(o, "bad", 5, &out, &len, &err), MOLT_E_PARSE);
    assert_null(out);
    assert_true(molt_base64_field(o, "num", 5, &out, &len, &err) < 0);
    assert_true(molt_base64_field(o, "missing", 5, &out, &len, &err) < 0);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_base64_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
