/* test_json.c: lib/json.c: access, hostile and strict documents, integer
 * fields, dumps that read back. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "err.h"
#include "json.h"

/* parse_err: the document is refused with exactly msg. */
static void parse_err(const char *doc, size_t len, const char *msg)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = (struct json_object *)1;

    assert_int_equal(molt_json_parse(doc, len, &o, &err), MOLT_E_PARSE);
    assert_null(o);
    assert_string_equal(err.msg, msg);
}

#define PARSE_ERR(doc, msg) parse_err(doc, sizeof(doc) - 1, msg)

static void test_json_access(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o;
    const char *s = NULL;
    int64_t n = 0;
    char small[4];
    const char *doc = "{\"a\":\"x\",\"n\":42,\"b\":true,\"o\":{},\"z\":null}";

    assert_int_equal(molt_json_parse(doc, strlen(doc), &o, &err), 0);
    assert_int_equal(molt_json_get_str(o, "a", &s, &err), 0);
    assert_string_equal(s, "x");
    assert_int_equal(molt_json_get_int(o, "n", &n, &err), 0);
    assert_int_equal(n, 42);
    assert_int_equal(molt_json_get_int(o, "a", &n, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 'a': expected integer");
    assert_int_equal(molt_json_get_str(o, "missing", &s, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "missing field 'missing'");
    s = "unchanged";
    assert_int_equal(molt_json_opt_str(o, "z", &s, &err), 0);
    assert_string_equal(s, "unchanged");
    assert_int_equal(molt_json_opt_str(o, "n", &s, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_copy_str(o, "a", small, sizeof(small), &err), 0);
    json_object_put(o);
    doc = "{\"a\":\"toolong\"}";
    assert_int_equal(molt_json_parse(doc, strlen(doc), &o, &err), 0);
    assert_int_equal(molt_json_copy_str(o, "a", small, sizeof(small), &err), MOLT_E_LIMIT);
    json_object_put(o);
}

static void test_json_hostile(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o;
    char deep[200];

    assert_int_equal(molt_json_parse("{\"a\":1} x", 9, &o, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "JSON: unexpected character at offset 8");
    assert_int_equal(molt_json_parse("{\"a\":", 5, &o, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_parse("<html>", 6, &o, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_parse("", 0, &o, &err), MOLT_E_PARSE);
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_int_equal(molt_json_parse(deep, sizeof(deep), &o, &err), MOLT_E_PARSE);
    assert_null(o);
}

/* Each thing json-c's strict mode lets through (or not), refused by name. */
static void test_json_strict(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o;

    (void)state;
    PARSE_ERR("{\"heartbeatIntervalMs\":300,}", "JSON: unexpected character at offset 27");
    PARSE_ERR("{\"a\":[1,]}", "JSON: unexpected character at offset 8");
    PARSE_ERR("{'a':1}", "JSON: unexpected byte 0x27 at offset 1");
    PARSE_ERR("{\"a\":'x'}", "JSON: unexpected character at offset 5");
    PARSE_ERR("{\"a\":1 /* c */}", "JSON: object value separator ',' expected at offset 7");
    PARSE_ERR("// c\n{\"a\":1}", "JSON: unexpected character at offset 0");
    PARSE_ERR("{\"a\":0300}", "JSON: number expected at offset 9");
    PARSE_ERR("{\"a\":00}", "JSON: number with a leading zero at offset 5");
    PARSE_ERR("{\"a\":-01}", "JSON: number with a leading zero at offset 5");
    PARSE_ERR("{\"a\":NaN}", "JSON: unexpected 'NaN' at offset 5");
    PARSE_ERR("{\"a\":Infinity}", "JSON: unexpected 'Infinity' at offset 5");
    PARSE_ERR("{\"a\":\"x\ty\"}", "JSON: control character 0x09 in a string at offset 7");
    PARSE_ERR("{\"a\x01\":1}", "JSON: control character 0x01 in a string at offset 3");
    PARSE_ERR("{\"a\":\"x\0y\"}", "JSON: unexpected end of data at offset 8");
    PARSE_ERR("{\"a\\u0000b\":1}", "JSON: NUL (\\u0000) in a string at offset 3");
    PARSE_ERR("{\"a\":\"x\\u0000\"}", "JSON: NUL (\\u0000) in a string at offset 7");
    PARSE_ERR("{\"a\":\"\xff\"}", "JSON: invalid utf-8 string at offset 6");
    /* json-c lets overlong forms and encoded surrogates through. */
    PARSE_ERR("{\"a\":\"u\xc1\x96n\"}", "JSON: not UTF-8 at offset 7");
    PARSE_ERR("{\"a\":\"\xed\xa0\x80\"}", "JSON: not UTF-8 at offset 6");
    PARSE_ERR("{\"a\":1}\0", "JSON: trailing data at offset 7");
    PARSE_ERR("{\"a\":1} \0", "JSON: trailing data at offset 8");
    PARSE_ERR("{\"a\":1}\xef\xbb\xbf", "JSON: unexpected character at offset 7");
    PARSE_ERR("{\"a\":1}{}", "JSON: unexpected character at offset 7");
    /* Saturation: json-c would read these as INT64_MAX or INT64_MIN. */
    PARSE_ERR("{\"collectorId\":18446744073709551616}",
              "JSON: field 'collectorId': 18446744073709551616 is outside int64");
    PARSE_ERR("{\"a\":9223372036854775808}",
              "JSON: field 'a': 9223372036854775808 is outside int64");
    PARSE_ERR("{\"a\":{\"b\":[-9223372036854775809]}}",
              "JSON: field 'b': -9223372036854775809 is outside int64");
    PARSE_ERR("{\"k\\\"x\":99999999999999999999}",
              "JSON: field 'k??x': 99999999999999999999 is outside int64");
    /* What is valid stays valid: escapes, the int64 limits, whitespace, numbers. */
    static const char ok[] = " {\"s\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u00e9\","
                             "\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                             "\"z\":0,\"d\":-0.5e-3,\"b\":[true,false,null]}\r\n\t ";
    assert_int_equal(molt_json_parse(ok, sizeof(ok) - 1, &o, &err), 0);
    int64_t v = 0;
    assert_int_equal(molt_json_get_int(o, "max", &v, &err), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(molt_json_get_int(o, "min", &v, &err), 0);
    assert_true(v == INT64_MIN);
    json_object_put(o);
}

/* What molt writes it reads back, even from strings that are not UTF-8 (an
 * archive entry's name in an error message, a path). */
static void test_json_dump_reads_back(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = json_object_new_object(), *back;
    const char *text, *s;

    (void)state;
    json_object_object_add(o, "m", json_object_new_string("a\xff\xc3Z\xed\xa0\x80\xf4\x90\x80\x80"
                                                          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"));
    json_object_object_add(o, "n", json_object_new_int64(INT64_MIN));
    text = molt_json_dump(o);
    assert_int_equal(molt_json_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(molt_json_get_str(back, "m", &s, &err), 0);
    assert_string_equal(s, "a??Z???????\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z");
    json_object_put(back);
    json_object_put(o);
}

static void test_json_int_field(void **state)
{
    static const char doc[] = "{\"n\":300,\"neg\":-1,\"nul\":null,\"f\":1.5,\"s\":\"1\"}";
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o;
    int64_t v = 42;

    (void)state;
    assert_int_equal(molt_json_parse(doc, sizeof(doc) - 1, &o, &err), 0);
    assert_int_equal(molt_json_int_field(o, "n", 0, 100, 1000, &v, &err), 1);
    assert_true(v == 300);
    /* Absent is told by the return, and leaves *out alone: no value means "absent". */
    v = 42;
    assert_int_equal(molt_json_int_field(o, "missing", 1, 0, 10, &v, &err), 0);
    assert_int_equal(molt_json_int_field(o, "nul", 1, 0, 10, &v, &err), 0);
    assert_true(v == 42);
    assert_int_equal(molt_json_int_field(o, "missing", 0, 0, 10, &v, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "missing field 'missing'");
    assert_int_equal(molt_json_int_field(o, "n", 1, 0, 299, &v, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 'n': 300 is not in 0..299");
    assert_int_equal(molt_json_int_field(o, "neg", 0, 0, INT64_MAX, &v, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 'neg': -1 is not in 0..9223372036854775807");
    assert_int_equal(molt_json_int_field(o, "f", 1, 0, 10, &v, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 'f': expected integer");
    assert_int_equal(molt_json_int_field(o, "s", 1, 0, 10, &v, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "field 's': expected integer");
    assert_true(v == 42);
    json_object_put(o);
}

/* A string with an escaped NUL is refused, not read cut short (seen while
 * writing the fuzz harnesses: "taskId": "12\u000034" was taken as task 12). */
static void test_json_string_with_nul_refused(void **state)
{
    static const char doc[] = "{\"a\": \"x\\u0000y\", \"b\": \"xy\"}";
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    const char *s = NULL;

    /* The parser refuses the document; a tree built otherwise is still checked. */
    assert_int_equal(molt_json_parse(doc, strlen(doc), &o, &err), MOLT_E_PARSE);
    assert_string_equal(err.msg, "JSON: NUL (\\u0000) in a string at offset 8");
    o = json_object_new_object();
    json_object_object_add(o, "a", json_object_new_string_len("x\0y", 3));
    json_object_object_add(o, "b", json_object_new_string("xy"));
    assert_int_equal(molt_json_get_str(o, "a", &s, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "field 'a': contains a NUL character"));
    assert_int_equal(molt_json_opt_str(o, "a", &s, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_get_str(o, "b", &s, &err), 0);
    assert_string_equal(s, "xy");
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_access),
        cmocka_unit_test(test_json_hostile),
        cmocka_unit_test(test_json_strict),
        cmocka_unit_test(test_json_int_field),
        cmocka_unit_test(test_json_dump_reads_back),
        cmocka_unit_test(test_json_string_with_nul_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
