/* test_base.c: error formatting, version ordering, JSON access (strict
 * parsing, integer fields) and the log's rate limit. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "base64.h"
#include "err.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "version.h"

static int inner(struct molt_err *err)
{
    errno = ENOSPC;
    return molt_err_errno(err, "write %s", "/x/y");
}

static int middle(struct molt_err *err)
{
    int rc = inner(err);

    if (rc < 0)
        molt_err_prefix(err, "stage %s", "20.2-100");
    return rc;
}

static void test_err_chain(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(middle(&err), MOLT_E_NOSPC);
    assert_int_equal(err.code, MOLT_E_NOSPC);
    assert_string_equal(err.msg, "stage 20.2-100: write /x/y: No space left on device");
    assert_int_equal(molt_err_set(NULL, MOLT_E_PARSE, "ignored"), MOLT_E_PARSE);
    molt_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    assert_string_equal(molt_errc_name(MOLT_E_VERIFY), "verify");
}

static void test_err_truncates(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char big[2000];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    molt_err_set(&err, MOLT_E_INVAL, "%s", big);
    molt_err_prefix(&err, "ctx");
    assert_int_equal(strlen(err.msg), MOLT_ERR_MSG_MAX - 1);
    assert_memory_equal(err.msg, "ctx: aaa", 8);
}

static void test_version_cmp(void **state)
{
    assert_true(molt_version_cmp("20.1-2749", "20.2-100") < 0);
    assert_true(molt_version_cmp("20.2-100", "20.1-2749") > 0);
    assert_true(molt_version_cmp("20.10-1", "20.9-99") > 0);
    assert_true(molt_version_cmp("19.115-37", "20.1-2749") < 0);
    assert_int_equal(molt_version_cmp("20.1-2749", "20.1-2749"), 0);
    assert_int_equal(molt_version_cmp("20.01", "20.1"), 0);
    assert_true(molt_version_cmp("20.1", "20.1-5") < 0);
    assert_true(molt_version_valid("20.1-2749"));
    assert_false(molt_version_valid(""));
    assert_false(molt_version_valid("../etc"));
    assert_false(molt_version_valid("20.1/x"));
    assert_false(molt_version_valid("v20"));
}

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

static void test_log_limit(void **state)
{
    struct molt_log_limit l = { 0 };
    unsigned long held = 99;

    (void)state;
    assert_int_equal(molt_log_limit_pass(&l, "too big", 1000, 60000, &held), 1);
    assert_int_equal(held, 0);
    for (int i = 0; i < 199; i++)
        assert_int_equal(molt_log_limit_pass(&l, "too big", 1000 + i, 60000, &held), 0);
    /* A new reason goes out at once, and says how many were held back. */
    assert_int_equal(molt_log_limit_pass(&l, "bad JSON", 2000, 60000, &held), 1);
    assert_int_equal(held, 199);
    assert_int_equal(molt_log_limit_pass(&l, "bad JSON", 3000, 60000, &held), 0);
    assert_int_equal(molt_log_limit_pass(&l, "bad JSON", 62000, 60000, &held), 1);
    assert_int_equal(held, 1);
}

static void test_host_facts(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_host host;
    char dir[PATH_MAX], path[PATH_MAX], id[33];

    assert_string_equal(molt_host_arch_name("x86_64"), "amd64");
    assert_string_equal(molt_host_arch_name("aarch64"), "aarch64");
    assert_string_equal(molt_host_arch_name("arm64"), "aarch64");
    assert_string_equal(molt_host_arch_name("mips"), "mips");
    assert_int_equal(molt_host_read(&host, &err), 0);
    assert_string_equal(host.os_name, "Linux");
    assert_string_equal(host.os_id, "linux");
    assert_true(strlen(host.os_version) > 0);
    assert_true(host.uptime_ms > 0);
    assert_true(strlen(host.host_name) > 0);

    tu_mkdtemp(dir);
    tu_write(path, dir, "good", "0123456789abcdef0123456789ABCDEF\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), 0);
    assert_string_equal(id, "0123456789abcdef0123456789ABCDEF");
    tu_write(path, dir, "short", "0123\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "expected 32 hex digits"));
    tu_write(path, dir, "nothex", "0123456789abcdef0123456789abcdeZ\n");
    assert_int_equal(molt_host_machine_id(path, id, &err), MOLT_E_PARSE);
    tu_rmtree(dir);
}

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
        cmocka_unit_test(test_err_chain),
        cmocka_unit_test(test_err_truncates),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_json_access),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_base64_field),
        cmocka_unit_test(test_proto_rules),
        cmocka_unit_test(test_json_hostile),
        cmocka_unit_test(test_json_strict),
        cmocka_unit_test(test_json_int_field),
        cmocka_unit_test(test_json_dump_reads_back),
        cmocka_unit_test(test_log_limit),
        cmocka_unit_test(test_host_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
