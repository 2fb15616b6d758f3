/* test_text.c: the control-byte rule, its finders and the masked copies (lib/text.c). */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "text.h"

/* Every byte, on a char of either signedness: C0 and DEL are control bytes,
 * UTF-8 (>= 0x80) is text. */
static void test_is_control(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        assert_int_equal(molt_text_is_control((unsigned char)c), c < 0x20 || c == 0x7f);
        assert_int_equal(molt_text_is_visible_ascii((unsigned char)c), c > 0x20 && c < 0x7f);
    }
    assert_true(molt_text_is_control((unsigned char)"\x7f"[0]));
    assert_false(molt_text_is_control((unsigned char)"\xc3"[0]));
}

static void test_find_control(void **state)
{
    const char *s = "a\tb\nc";

    (void)state;
    assert_ptr_equal(molt_text_find_control(s, SIZE_MAX, NULL), s + 1);
    assert_ptr_equal(molt_text_find_control(s, SIZE_MAX, "\t"), s + 3);
    assert_null(molt_text_find_control(s, SIZE_MAX, "\n\t"));
    /* Only the first len bytes, and not past a NUL. */
    assert_null(molt_text_find_control(s, 1, NULL));
    assert_null(molt_text_find_control("ab\0\x01", 4, NULL));
    assert_null(molt_text_find_control("caf\xc3\xa9", SIZE_MAX, NULL));
    assert_non_null(molt_text_find_control("x\x7f", SIZE_MAX, NULL));
    assert_non_null(molt_text_find_control("x\x1b[0m", SIZE_MAX, "\t\n"));
}

static void test_all_visible_ascii(void **state)
{
    (void)state;
    assert_true(molt_text_all_visible_ascii("tok-EN_1.~", 10));
    assert_true(molt_text_all_visible_ascii("", 0));
    assert_false(molt_text_all_visible_ascii("a b", 3));
    assert_false(molt_text_all_visible_ascii("a\x7f", 2));
    assert_false(molt_text_all_visible_ascii("caf\xc3\xa9", 5));
    /* len counts: a NUL inside is not visible. */
    assert_false(molt_text_all_visible_ascii("ab\0c", 4));
}

/* Control bytes masked and UTF-8 kept, whatever the signedness of char;
 * quotes and backslashes only with MOLT_TEXT_QUOTES. */
static void test_shown(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(molt_text_shown(out, sizeof(out), "a\x01\x7f\xc3\xa9\x1b[0m", 0),
                        "a??\xc3\xa9?[0m");
    assert_string_equal(molt_text_shown(out, sizeof(out), "a\nb\"c\\d\x01", 0), "a?b\"c\\d?");
    assert_string_equal(molt_text_shown(out, sizeof(out), "a\nb\"c\\d\x01", MOLT_TEXT_QUOTES),
                        "a?b?c?d?");
    assert_string_equal(molt_text_shown(out, 4, "abcdef", 0), "abc");
    assert_string_equal(molt_text_shown(out, sizeof(out), NULL, 0), "");
    out[0] = 'x';
    molt_text_shown(out, 0, "abc", 0);
    assert_int_equal(out[0], 'x');
}

static void test_show_range(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(molt_text_show(out, sizeof(out), "line\tone\ntwo", 8, 0), "line?one");
    assert_string_equal(molt_text_show(out, sizeof(out), "ab\0cd", 5, 0), "ab");
    assert_string_equal(molt_text_show(out, 3, "abcdef", 5, 0), "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_control),
        cmocka_unit_test(test_find_control),
        cmocka_unit_test(test_all_visible_ascii),
        cmocka_unit_test(test_shown),
        cmocka_unit_test(test_show_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
