/* backoff.c: retry delays; a small private PRNG keeps them testable. */
#include "backoff.h"

#include <sys/random.h>
#include <time.h>

static uint64_t seed_from_system(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s) || s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
    }
    return s ? s : 0x2545F4914F6CDD1DULL;
}

void molt_backoff_init(struct molt_backoff *b, int64_t base_ms, int64_t max_ms, uint64_t seed)
{
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
    b->failures = 0;
    b->rng = seed ? seed : seed_from_system();
}

uint64_t molt_backoff_rand(struct molt_backoff *b, uint64_t n)
{
    uint64_t x = b->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    x *= 0x2545F4914F6CDD1DULL;
    return n == UINT64_MAX ? x : x % (n + 1);
}

int64_t molt_backoff_ceiling(const struct molt_backoff *b)
{
    int64_t cap = b->base_ms;

    for (unsigned i = 0; i < b->failures && cap < b->max_ms; i++)
        cap *= 2;
    return cap < b->max_ms ? cap : b->max_ms;
}

int64_t molt_backoff_next(struct molt_backoff *b, int64_t retry_after_ms)
{
    int64_t cap = molt_backoff_ceiling(b);
    int64_t delay = (int64_t)molt_backoff_rand(b, (uint64_t)cap);

    if (b->failures < 64)
        b->failures++;
    return retry_after_ms > delay ? retry_after_ms : delay;
}

void molt_backoff_reset(struct molt_backoff *b)
{
    b->failures = 0;
}

int64_t molt_backoff_jitter(struct molt_backoff *b, int64_t interval_ms, int pct)
{
    int64_t spread = interval_ms * pct / 100;

    if (spread <= 0)
        return interval_ms;
    return interval_ms - spread + (int64_t)molt_backoff_rand(b, (uint64_t)(2 * spread));
}
