/* window.h: maintenance windows, [install] switch_window: the times of the
 * week when a switch may happen, in the host's time zone.
 *
 * A specification is a comma-separated list of at most MOLT_WINDOW_MAX
 * windows, each "[DAYS] HH:MM[:SS]-HH:MM[:SS]": DAYS is one day (Mon) or a
 * range (Mon-Fri, Fri-Mon wraps through the weekend), every day when left
 * out. A window whose end is not after its start crosses midnight and ends
 * on the next day; DAYS names the day it opens. Times are wall-clock times:
 * a window opens at 02:00 local time whatever the UTC offset is that day. */
#ifndef MOLT_WINDOW_H
#define MOLT_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define MOLT_WINDOW_MAX 16

struct molt_window {
    uint8_t days;       /* bit d: opens on weekday d (0 = Sunday, as struct tm counts) */
    int32_t start_s;    /* seconds after local midnight */
    int32_t end_s;      /* <= start_s: the next day's */
};

struct molt_window_set {
    size_t n;           /* 0: no window, a switch may happen at any time */
    struct molt_window w[MOLT_WINDOW_MAX];
};

/* Parses spec ("" is the empty set). MOLT_E_INVAL names the window and the
 * part that is wrong; set is left empty then. */
int molt_window_parse(const char *spec, struct molt_window_set *set, struct molt_err *err);
/* 1 when now lies inside a window of set (or set is empty); otherwise 0 with
 * *open_at the next time a window opens. Reads the local time zone. */
int molt_window_next_open(const struct molt_window_set *set, time_t now, time_t *open_at);
/* when as "YYYY-MM-DD HH:MM:SS +HHMM" in local time. */
void molt_window_format(time_t when, char *out, size_t n);

#endif
