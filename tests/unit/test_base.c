/* test_base.c: error formatting, version ordering and JSON access. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "host.h"
#include "json.h"
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
    assert_non_null(strstr(err.msg, "trailing data"));
    assert_int_equal(molt_json_parse("{\"a\":", 5, &o, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_parse("<html>", 6, &o, &err), MOLT_E_PARSE);
    assert_int_equal(molt_json_parse("", 0, &o, &err), MOLT_E_PARSE);
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_int_equal(molt_json_parse(deep, sizeof(deep), &o, &err), MOLT_E_PARSE);
    assert_null(o);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_chain),
        cmocka_unit_test(test_err_truncates),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_json_access),
        cmocka_unit_test(test_json_hostile),
        cmocka_unit_test(test_host_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
