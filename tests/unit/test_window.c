/* test_window.c: switch_window specifications and the next opening (lib/window.c),
 * in fixed POSIX time zones (no tzdata needed), across midnight and a DST change. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "window.h"

#define MON (1u << 1)
#define FRI (1u << 5)
#define SAT (1u << 6)
#define SUN (1u << 0)

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* Seconds since the epoch of a UTC date and time. */
static time_t utc(int y, int mon, int d, int h, int min)
{
    struct tm t = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = min };
    return timegm(&t);
}

static void test_parse(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_window_set s;

    (void)state;
    assert_int_equal(molt_window_parse("Mon-Fri 02:00-04:00", &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.w[0].days, 0x3e);
    assert_int_equal(s.w[0].start_s, 2 * 3600);
    assert_int_equal(s.w[0].end_s, 4 * 3600);
    assert_int_equal(molt_window_parse(" fri-mon 23:00:30-01:00 , sat 10:00-24:00,22:00-02:00",
                                       &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.w[0].days, FRI | SAT | SUN | MON);
    assert_int_equal(s.w[0].start_s, 23 * 3600 + 30);
    assert_int_equal(s.w[1].days, SAT);
    assert_int_equal(s.w[1].end_s, 24 * 3600);
    assert_int_equal(s.w[2].days, 0x7f);
    assert_int_equal(molt_window_parse("", &s, &err), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(molt_window_parse("  ", &s, &err), 0);
    assert_int_equal(s.n, 0);
}

static void expect_error(const char *spec, const char *what)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_window_set s;

    assert_int_equal(molt_window_parse(spec, &s, &err), MOLT_E_INVAL);
    if (!strstr(err.msg, what))
        fail_msg("'%s': got \"%s\", expected it to name \"%s\"", spec, err.msg, what);
    assert_int_equal(s.n, 0);
}

static void test_parse_errors(void **state)
{
    char many[17 * 13 + 1] = "";

    (void)state;
    expect_error("Mon-Fri", "window 1: 'Mon-Fri': expected HH:MM");
    expect_error("Xyz 02:00-04:00", "expected days as Mon or Mon-Fri");
    expect_error("Monday 02:00-04:00", "expected days");
    expect_error("Mon02:00-03:00", "expected a blank after the days");
    expect_error("02:00-04:00,25:00-26:00", "window 2: '25:00-26:00'");
    expect_error("02:60-03:00", "expected HH:MM");
    expect_error("24:00-01:00", "expected HH:MM");
    expect_error("01:00-24:30", "expected HH:MM");
    expect_error("2:00-04:00", "expected HH:MM");
    expect_error("02:00-04:00 daily", "unexpected text after the times");
    expect_error("02:00-02:00", "starts and ends at the same time");
    expect_error("00:00-24:00", "starts and ends at the same time");
    expect_error("02:00-04:00,", "window 2");
    expect_error("Mon-Fri                                                      02:00-04:00",
                 "window 1: longer than 63 characters");
    for (int i = 0; i < 17; i++)
        strcat(many, "01:00-02:00,");
    many[strlen(many) - 1] = '\0';
    expect_error(many, "more than 16 windows");
}

static void expect_open(const char *spec, time_t now, int inside, time_t next)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_window_set s;
    time_t at = 0;

    assert_int_equal(molt_window_parse(spec, &s, &err), 0);
    assert_int_equal(molt_window_next_open(&s, now, &at), inside);
    if (!inside)
        assert_int_equal((long long)at, (long long)next);
}

static void test_next_open(void **state)
{
    (void)state;
    set_tz("UTC0");
    /* 2026-11-30 is a Monday. */
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 11, 30, 1, 0), 0, utc(2026, 11, 30, 2, 0));
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 11, 30, 2, 0), 1, 0);
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 11, 30, 3, 59), 1, 0);
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 11, 30, 4, 0), 0, utc(2026, 12, 1, 2, 0));
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 12, 4, 5, 0), 0, utc(2026, 12, 7, 2, 0));
    expect_open("Mon-Fri 02:00-04:00", utc(2026, 12, 5, 12, 0), 0, utc(2026, 12, 7, 2, 0));
    /* Across midnight: opened on Friday, still open early on Saturday. */
    expect_open("Fri 23:00-01:00", utc(2026, 12, 5, 0, 30), 1, 0);
    expect_open("Fri 23:00-01:00", utc(2026, 12, 5, 1, 0), 0, utc(2026, 12, 11, 23, 0));
    expect_open("22:00-24:00", utc(2026, 12, 5, 23, 59), 1, 0);
    expect_open("22:00-24:00", utc(2026, 12, 6, 0, 0), 0, utc(2026, 12, 6, 22, 0));
    /* Several windows: the earliest opening wins. */
    expect_open("Sat 10:00-11:00, Thu 09:00-09:30", utc(2026, 12, 3, 9, 30), 0,
                utc(2026, 12, 5, 10, 0));
    expect_open("", utc(2026, 12, 3, 9, 30), 1, 0);
}

static void test_local_time(void **state)
{
    (void)state;
    /* New York: 02:00 local is 07:00 UTC in winter and 06:00 UTC in summer; DST
     * starts on 2027-03-14, between the two Mondays. */
    set_tz("EST5EDT,M3.2.0,M11.1.0");
    expect_open("Mon 02:00-04:00", utc(2026, 12, 5, 12, 0), 0, utc(2026, 12, 7, 7, 0));
    expect_open("Mon 02:00-04:00", utc(2027, 3, 13, 12, 0), 0, utc(2027, 3, 15, 6, 0));
    expect_open("Mon 02:00-04:00", utc(2027, 3, 15, 7, 59), 1, 0);
    expect_open("Mon 02:00-04:00", utc(2027, 3, 15, 8, 0), 0, utc(2027, 3, 22, 6, 0));
    /* Sunday 22:00 UTC is already Monday 01:00 in UTC+3. */
    set_tz("<+03>-3");
    expect_open("Mon 02:00-04:00", utc(2026, 11, 29, 22, 0), 0, utc(2026, 11, 29, 23, 0));
    set_tz("UTC0");
}

static void test_format(void **state)
{
    char buf[64];

    (void)state;
    set_tz("<+0530>-5:30");
    molt_window_format(utc(2026, 12, 3, 0, 0), buf, sizeof(buf));
    assert_string_equal(buf, "2026-12-03 05:30:00 +0530");
    set_tz("UTC0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_open),
        cmocka_unit_test(test_local_time),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
