/* window.c: maintenance windows (window.h): parsing a switch_window
 * specification and finding when the next window opens. */
#include "window.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DAY_S 86400

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

/* A day name at *p (three letters, any case); advances *p. -1 when none. */
static int parse_day(const char **p)
{
    for (int d = 0; d < 7; d++) {
        if (strncasecmp(*p, day_names[d], 3) == 0 && !isalpha((unsigned char)(*p)[3])) {
            *p += 3;
            return d;
        }
    }
    return -1;
}

/* "Mon" or "Mon-Fri" (wrapping: "Fri-Mon") at *p into a day mask. */
static int parse_days(const char **p, uint8_t *days)
{
    int from = parse_day(p), to;

    if (from < 0)
        return -1;
    to = from;
    if (**p == '-') {
        (*p)++;
        if ((to = parse_day(p)) < 0)
            return -1;
    }
    *days = 0;
    for (int d = from;; d = (d + 1) % 7) {
        *days |= (uint8_t)(1u << d);
        if (d == to)
            break;
    }
    return 0;
}

static int two_digits(const char **p, int max, int *out)
{
    const char *s = *p;

    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return -1;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    *p += 2;
    return *out <= max ? 0 : -1;
}

/* "HH:MM" or "HH:MM:SS" at *p, in seconds after midnight. 24:00 only when
 * allow_24 (a window's end: midnight at the end of the day). */
static int parse_time(const char **p, int allow_24, int32_t *out)
{
    int h, m, s = 0;

    if (two_digits(p, 24, &h) < 0 || **p != ':')
        return -1;
    (*p)++;
    if (two_digits(p, 59, &m) < 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (two_digits(p, 59, &s) < 0)
            return -1;
    }
    if (h == 24 && (!allow_24 || m || s))
        return -1;
    *out = h * 3600 + m * 60 + s;
    return 0;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* One window, item (NUL-terminated, blanks around it allowed). */
static int parse_one(const char *item, struct molt_window *w, struct molt_err *err)
{
    const char *p = skip_blanks(item);

    w->days = 0x7f;
    if (isalpha((unsigned char)*p)) {
        if (parse_days(&p, &w->days) < 0)
            return molt_err_set(err, MOLT_E_INVAL, "'%s': expected days as Mon or Mon-Fri "
                                "(Sun Mon Tue Wed Thu Fri Sat)", item);
        if (*p == '\0')
            return molt_err_set(err, MOLT_E_INVAL, "'%s': expected HH:MM[:SS]-HH:MM[:SS] after "
                                "the days", item);
        if (*p != ' ' && *p != '\t')
            return molt_err_set(err, MOLT_E_INVAL, "'%s': expected a blank after the days", item);
        p = skip_blanks(p);
    }
    if (parse_time(&p, 0, &w->start_s) < 0 || *p++ != '-' || parse_time(&p, 1, &w->end_s) < 0)
        return molt_err_set(err, MOLT_E_INVAL, "'%s': expected HH:MM[:SS]-HH:MM[:SS]", item);
    if (*skip_blanks(p) != '\0')
        return molt_err_set(err, MOLT_E_INVAL, "'%s': unexpected text after the times", item);
    if (w->start_s == w->end_s % DAY_S)
        return molt_err_set(err, MOLT_E_INVAL, "'%s': the window starts and ends at the same "
                            "time", item);
    return 0;
}

int molt_window_parse(const char *spec, struct molt_window_set *set, struct molt_err *err)
{
    const char *p = spec;

    memset(set, 0, sizeof(*set));
    if (*skip_blanks(spec) == '\0')
        return 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        int rc;

        if (set->n == MOLT_WINDOW_MAX) {
            memset(set, 0, sizeof(*set));
            return molt_err_set(err, MOLT_E_INVAL, "more than %d windows", MOLT_WINDOW_MAX);
        }
        if (len >= sizeof(item)) {
            memset(set, 0, sizeof(*set));
            return molt_err_set(err, MOLT_E_INVAL, "window %zu: longer than %zu characters",
                                set->n + 1, sizeof(item) - 1);
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if ((rc = parse_one(item, &set->w[set->n], err)) < 0) {
            size_t bad = set->n + 1;
            memset(set, 0, sizeof(*set));
            return molt_err_prefix(err, "window %zu", bad);
        }
        set->n++;
        if (!end)
            return 0;
        p = end + 1;
    }
}

/* The local time secs after midnight of the day offset days after date
 * (mktime normalises both, and picks the UTC offset in force then). */
static time_t local_at(const struct tm *date, int offset, int32_t secs)
{
    struct tm t = { 0 };

    t.tm_year = date->tm_year;
    t.tm_mon = date->tm_mon;
    t.tm_mday = date->tm_mday + offset;
    t.tm_hour = secs / 3600;
    t.tm_min = secs / 60 % 60;
    t.tm_sec = secs % 60;
    t.tm_isdst = -1;
    return mktime(&t);
}

int molt_window_next_open(const struct molt_window_set *set, time_t now, time_t *open_at)
{
    struct tm today;
    int found = 0;

    if (set->n == 0)
        return 1;
    localtime_r(&now, &today);
    /* From yesterday (a window crossing midnight may still be open) to a week ahead. */
    for (int offset = -1; offset <= 7; offset++) {
        struct tm day = today;

        day.tm_mday += offset;
        day.tm_hour = 12; /* noon: never in a DST gap, so mktime fills tm_wday for the right day */
        day.tm_min = day.tm_sec = 0;
        day.tm_isdst = -1;
        (void)mktime(&day);
        for (size_t i = 0; i < set->n; i++) {
            const struct molt_window *w = &set->w[i];
            time_t open, close;

            if (!(w->days & (1u << day.tm_wday)))
                continue;
            open = local_at(&day, 0, w->start_s);
            close = local_at(&day, w->end_s <= w->start_s ? 1 : 0, w->end_s);
            if (open <= now && now < close)
                return 1;
            if (open > now && (!found || open < *open_at)) {
                *open_at = open;
                found = 1;
            }
        }
    }
    if (!found) /* cannot happen: every window opens on some day of the week */
        *open_at = now + 8 * DAY_S;
    return 0;
}

void molt_window_format(time_t when, char *out, size_t n)
{
    struct tm t;

    if (n == 0)
        return;
    if (!localtime_r(&when, &t) || strftime(out, n, "%Y-%m-%d %H:%M:%S %z", &t) == 0)
        snprintf(out, n, "@%lld", (long long)when);
}
