/* test_version.c: version ordering (lib/version.c; a version's syntax is
 * proto.c's, in test_proto.c). */
#include "testutil.h"

#include "version.h"

static void test_version_cmp(void **state)
{
    assert_true(molt_version_cmp("20.1-2749", "20.2-100") < 0);
    assert_true(molt_version_cmp("20.2-100", "20.1-2749") > 0);
    assert_true(molt_version_cmp("20.10-1", "20.9-99") > 0);
    assert_true(molt_version_cmp("19.115-37", "20.1-2749") < 0);
    assert_int_equal(molt_version_cmp("20.1-2749", "20.1-2749"), 0);
    assert_int_equal(molt_version_cmp("20.01", "20.1"), 0);
    assert_true(molt_version_cmp("20.1", "20.1-5") < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
