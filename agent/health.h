/* health.h: the trial's health check. After the new version's first
 * acknowledged heartbeat, [install] health_command must exit 0
 * health_checks times, health_interval apart, before the commit. */
#ifndef MOLT_HEALTH_H
#define MOLT_HEALTH_H

#include <stddef.h>

#include "conf.h"

#define MOLT_HEALTH_REASON_MAX 320

/* Called before the first run (passed 0) and after each passed one. */
typedef void (*molt_health_progress_fn)(void *arg, int passed, int total);

/* Runs the checks; returns 0 when all passed, else -1 with reason set to
 * "health check N/M failed (exit 1): <last output line>" (bounded, control
 * characters masked). An empty health_command passes at once. */
int molt_health_run(const struct molt_config *conf, molt_health_progress_fn fn, void *arg,
                    char *reason, size_t n);

#endif
