/* test_err.c: error codes, messages and the caller-prefixed chain (lib/err.c). */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "err.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_chain),
        cmocka_unit_test(test_err_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
