/* test_base.c: error formatting, version ordering and the log's rate limit
 * (JSON and host facts: test_json.c, test_host.c). */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "log.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_chain),
        cmocka_unit_test(test_err_truncates),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_log_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
