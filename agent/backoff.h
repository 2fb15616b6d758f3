/* backoff.h: exponential backoff with full jitter, and the heartbeat jitter.
 *
 * After the n-th consecutive failure (n = 1, 2, ...) the delay is a uniform
 * random value in [0, min(max, base * 2^(n-1))] ("full jitter", so a fleet that
 * lost its server does not come back in lockstep). A Retry-After from a 429
 * raises the delay to at least that long. Success resets the count. */
#ifndef MOLT_BACKOFF_H
#define MOLT_BACKOFF_H

#include <stdint.h>

#define MOLT_BACKOFF_BASE_MS 1000

struct molt_backoff {
    int64_t base_ms;
    int64_t max_ms;
    unsigned failures;   /* consecutive failures so far */
    uint64_t rng;        /* xorshift64* state, never 0 */
};

/* seed 0 draws one from the system's random source. */
void molt_backoff_init(struct molt_backoff *b, int64_t base_ms, int64_t max_ms, uint64_t seed);
/* Records a failure and returns how long to wait before the next attempt.
 * retry_after_ms < 0 means none was given. */
int64_t molt_backoff_next(struct molt_backoff *b, int64_t retry_after_ms);
/* The ceiling the next molt_backoff_next draws under (before Retry-After). */
int64_t molt_backoff_ceiling(const struct molt_backoff *b);
void molt_backoff_reset(struct molt_backoff *b);
/* interval ± pct percent, uniformly. */
int64_t molt_backoff_jitter(struct molt_backoff *b, int64_t interval_ms, int pct);
/* A uniform value in [0, n]. */
uint64_t molt_backoff_rand(struct molt_backoff *b, uint64_t n);

#endif
