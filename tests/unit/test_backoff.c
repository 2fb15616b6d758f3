/* test_backoff.c: agent/backoff.c: bounds, reset, Retry-After and jitter. */
#include "testutil.h"

#include <stdint.h>

#include "backoff.h"

static void test_backoff_bounds(void **state)
{
    struct molt_backoff b;
    int64_t seen_max = 0, seen_min = INT64_MAX;

    molt_backoff_init(&b, 1000, 8000, 42);
    for (int n = 1; n <= 12; n++) {
        int64_t cap = molt_backoff_ceiling(&b);
        int64_t want = 1000LL << (n - 1 < 4 ? n - 1 : 3);
        assert_int_equal(cap, want > 8000 ? 8000 : want);
        int64_t d = molt_backoff_next(&b, -1);
        assert_true(d >= 0 && d <= cap);
    }
    /* Full jitter spreads over the whole range at the cap. */
    for (int i = 0; i < 2000; i++) {
        int64_t d = molt_backoff_next(&b, -1);
        assert_true(d >= 0 && d <= 8000);
        seen_max = d > seen_max ? d : seen_max;
        seen_min = d < seen_min ? d : seen_min;
    }
    assert_true(seen_max > 7000);
    assert_true(seen_min < 1000);
}

static void test_backoff_reset_and_retry_after(void **state)
{
    struct molt_backoff b;

    molt_backoff_init(&b, 1000, 300000, 7);
    for (int i = 0; i < 10; i++)
        molt_backoff_next(&b, -1);
    assert_int_equal(molt_backoff_ceiling(&b), 300000);
    molt_backoff_reset(&b);
    assert_int_equal(molt_backoff_ceiling(&b), 1000);
    assert_true(molt_backoff_next(&b, -1) <= 1000);
    /* Retry-After wins over a shorter draw, even beyond the cap. */
    molt_backoff_reset(&b);
    assert_int_equal(molt_backoff_next(&b, 30000), 30000);
    molt_backoff_init(&b, 1000, 5000, 9);
    assert_int_equal(molt_backoff_next(&b, 60000), 60000);
    for (int i = 0; i < 100; i++)
        assert_true(molt_backoff_next(&b, 2000) >= 2000);
}

static void test_backoff_jitter(void **state)
{
    struct molt_backoff b;
    int below = 0, above = 0;

    molt_backoff_init(&b, 1000, 5000, 3);
    for (int i = 0; i < 1000; i++) {
        int64_t j = molt_backoff_jitter(&b, 15000, 10);
        assert_true(j >= 13500 && j <= 16500);
        below += j < 15000;
        above += j > 15000;
    }
    assert_true(below > 100 && above > 100);
    assert_int_equal(molt_backoff_jitter(&b, 5, 10), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_reset_and_retry_after),
        cmocka_unit_test(test_backoff_jitter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
