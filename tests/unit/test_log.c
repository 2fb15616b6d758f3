/* test_log.c: the log's rate limit for repeated warnings (lib/log.c). */
#include "testutil.h"

#include "log.h"

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
        cmocka_unit_test(test_log_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
