/* outbox.h: final task reports that must reach the server, persisted first.
 *
 * One file per task, <dir>/<taskId>.json, written atomically (mode 0600) before
 * any attempt to send it, so a report survives crashes and restarts. Entries are
 * sent oldest task id first; an entry is deleted when the server answers 200
 * (recorded), 404 task.unknown or 409 task.closed (a clear answer, logged);
 * anything else keeps it for a retry with backoff. A file that is not a valid
 * report is moved aside to <taskId>.json.bad (never silently dropped).
 *
 * A report the directory will not take (read-only or full disk) is kept in
 * memory instead (struct molt_outbox_kept) and sent all the same: it is lost
 * only if the agent stops before the server has it.
 *
 * Events (docs/protocol.md section 4) live beside them in <dir>/events/,
 * one file <taskId>-<at>.json each. An event is sent until the server answers
 * for good; then its file is renamed <taskId>-<at>.sent, and an event whose
 * file or marker exists is never queued again: one delivery per event even
 * when what raises it (the journal's outcome) is read after every restart. */
#ifndef MOLT_OUTBOX_H
#define MOLT_OUTBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "proto.h"
#include "report.h"

#define MOLT_OUTBOX_ENTRY_MAX 65536
#define MOLT_OUTBOX_KEPT_MAX 16

/* Final reports held in memory, oldest first; safe to use from any thread. */
struct molt_outbox_kept {
    pthread_mutex_t mu;
    struct molt_outbox_kept_entry {
        struct molt_report r;
        unsigned long gen;    /* tells a report from a later one of the same task */
    } e[MOLT_OUTBOX_KEPT_MAX];
    unsigned n;
    unsigned long next_gen;
};

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

#define MOLT_OUTBOX_EVENTS "events"
#define MOLT_EVENT_TYPE_MAX 32
#define MOLT_EVENT_REASON_MAX 512

struct molt_outbox_event {
    char task_id[MOLT_TASK_ID_MAX + 1];
    char type[MOLT_EVENT_TYPE_MAX];         /* "rolled-back-after-commit" */
    char from_version[MOLT_VERSION_MAX + 1]; /* the version that ran before */
    char to_version[MOLT_VERSION_MAX + 1];   /* the version that runs now */
    char reason[MOLT_EVENT_REASON_MAX];
    int64_t at_ms;
};

/* Queues e unless it was queued before (pending, sent or refused): 1 when
 * queued now, 0 when already known, negative on error. */
int molt_outbox_put_event(const char *dir, const struct molt_outbox_event *e,
                          struct molt_err *err);
/* Number of events waiting to be sent. */
int molt_outbox_event_count(const char *dir);
/* Sends pending events, oldest first, until one fails (0 when none is left).
 * 200, 404 and 409 end an event (marked sent); 400 moves it aside (.bad). */
int molt_outbox_flush_events(const char *dir, molt_outbox_send_fn send, void *arg,
                             struct molt_err *err);
/* Removes the sent markers of events for which keep(arg, task_id, at_ms) is 0
 * (no longer raised by anything), so the directory stays bounded. */
void molt_outbox_prune_events(const char *dir, int (*keep)(void *arg, const char *task_id,
                                                           int64_t at_ms),
                              void *arg);

void molt_outbox_kept_init(struct molt_outbox_kept *k);
/* Logs every report still kept (they are about to be lost) and frees the lock. */
void molt_outbox_kept_destroy(struct molt_outbox_kept *k);
/* Keeps r (replacing an earlier report of the same task); when full, the
 * oldest is dropped with an error in the log. */
void molt_outbox_keep(struct molt_outbox_kept *k, const struct molt_report *r);
int molt_outbox_kept_has(struct molt_outbox_kept *k, const char *task_id);
int molt_outbox_kept_count(struct molt_outbox_kept *k);
/* For each kept report, oldest first: writes it to dir when dir takes files
 * again (the directory's flush sends it), otherwise sends it, until one fails.
 * Returns 0 when nothing is kept any more, or the failing report's error. */
int molt_outbox_flush_kept(struct molt_outbox_kept *k, const char *dir, molt_outbox_send_fn send,
                           void *arg, struct molt_err *err);

#endif
