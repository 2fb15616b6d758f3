/* watch.h: the health check repeated during the watch after a commit
 * (docs/upgrades.md section 5.5), in a thread of the new version's agent. */
#ifndef MOLT_WATCH_H
#define MOLT_WATCH_H

#include <stddef.h>

struct molt_agent;
struct molt_watch;

/* Ends the watch of task_id by a rollback with reason (molt-installer
 * rollback --task); -1 with msg on failure. */
typedef int (*molt_watch_rollback_fn)(struct molt_agent *a, const char *task_id,
                                      const char *reason, char *msg, size_t n);

/* Starts the health watch thread when this version is on trial or watched
 * and health_command and watch_window are set; NULL otherwise (or when the
 * thread cannot start: logged, the crash-loop watch of launch remains). */
struct molt_watch *molt_watch_start(struct molt_agent *a, molt_watch_rollback_fn rollback);
/* Stops and joins it (waits for a check under way); NULL is fine. */
void molt_watch_stop(struct molt_watch *w);

#endif
