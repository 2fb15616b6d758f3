/* outbox.h: final task reports that must reach the server, persisted first.
 *
 * One file per task, <dir>/<taskId>.json, written atomically (mode 0600) before
 * any attempt to send it, so a report survives crashes and restarts. Entries are
 * sent oldest task id first; an entry is deleted when the server answers 200
 * (recorded), 404 task.unknown or 409 task.closed (a clear answer, logged);
 * anything else keeps it for a retry with backoff. A file that is not a valid
 * report is moved aside to <taskId>.json.bad (never silently dropped). */
#ifndef MOLT_OUTBOX_H
#define MOLT_OUTBOX_H

#include <stddef.h>

#include "err.h"
#include "task.h"

#define MOLT_OUTBOX_ENTRY_MAX 65536

/* Sends one report body; sets *status to the HTTP status (0 when no reply) and
 * returns the transport's result code. */
typedef int (*molt_outbox_send_fn)(void *arg, const char *task_id, const char *body, size_t len,
                                   long *status, struct molt_err *err);

int molt_outbox_put(const char *dir, const struct molt_report *r, struct molt_err *err);
/* 1 when an entry for task_id is queued. */
int molt_outbox_has(const char *dir, const char *task_id);
/* Number of queued entries (0 when the directory is missing). */
int molt_outbox_count(const char *dir);
/* Sends entries in order until one fails. Returns 0 when the outbox was
 * emptied, or the failing entry's error (later entries stay for the retry). */
int molt_outbox_flush(const char *dir, molt_outbox_send_fn send, void *arg,
                      struct molt_err *err);

#endif
