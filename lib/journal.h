/* journal.h: the upgrade journal, <state_dir>/journal.json. It records which
 * switch is in progress (and how far it got) so that any process restarting
 * after a crash finishes or undoes it, and the outcome of recent tasks so that
 * the agent running after a commit or a rollback can report 2 or 3.
 *
 * molt-installer is the only writer (always under its lock, always through
 * molt_fs_write_atomic); the agent only reads it. The state machine:
 *
 *   idle|committed|rolled-back --begin_switch--> switching --begin_trial--> trial
 *   trial --count_start--> trial          trial --commit--> committed
 *   switching|trial --begin_rollback--> rolling-back --finish_rollback--> rolled-back
 *   idle|committed|rolled-back --begin_revert--> rolling-back   (manual rollback)
 *   committed --watch--> committed(watching until watch_until_ms)
 *   committed(watching) --count_watch_start--> committed(watching)
 *   committed(watching) --begin_watch_rollback--> rolling-back  (a crash loop
 *                                                after the commit)
 *
 * Every transition function checks that it is legal from the current state and
 * returns MOLT_E_STATE otherwise, leaving the journal unchanged. */
#ifndef MOLT_JOURNAL_H
#define MOLT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "proto.h"

#define MOLT_JOURNAL_FILE "journal.json"
#define MOLT_JOURNAL_FORMAT 1
#define MOLT_JOURNAL_MAX_BYTES (64 * 1024)
/* Buffer sizes for proto.h's task ids ("" for a manual action) and versions. */
#define MOLT_JOURNAL_TASK_MAX (MOLT_TASK_ID_MAX + 1)
#define MOLT_JOURNAL_VERSION_MAX (MOLT_VERSION_MAX + 1)
#define MOLT_JOURNAL_REASON_MAX 512
#define MOLT_JOURNAL_OUTCOMES 16 /* outcomes kept, newest first */

enum molt_journal_state {
    MOLT_JOURNAL_IDLE,         /* installed, no task has switched yet */
    MOLT_JOURNAL_SWITCHING,    /* apply is moving the build in and flipping current */
    MOLT_JOURNAL_TRIAL,        /* current names to_version, which must commit in time */
    MOLT_JOURNAL_ROLLING_BACK, /* decided: current goes back to from_version */
    MOLT_JOURNAL_COMMITTED,    /* to_version passed its trial */
    MOLT_JOURNAL_ROLLED_BACK,  /* from_version is current again */
};

enum molt_journal_result { MOLT_JOURNAL_RESULT_COMMITTED, MOLT_JOURNAL_RESULT_ROLLED_BACK };

struct molt_journal_outcome {
    char task_id[MOLT_JOURNAL_TASK_MAX];
    enum molt_journal_result result;
    char from_version[MOLT_JOURNAL_VERSION_MAX];
    char to_version[MOLT_JOURNAL_VERSION_MAX];
    char reason[MOLT_JOURNAL_REASON_MAX]; /* why it was rolled back; "" when committed */
    int64_t at_ms;
    int after_commit; /* rolled back during the watch window, after the task ended 2 */
};

struct molt_journal {
    enum molt_journal_state state;
    char task_id[MOLT_JOURNAL_TASK_MAX];
    char from_version[MOLT_JOURNAL_VERSION_MAX]; /* current before the switch: the way back */
    char to_version[MOLT_JOURNAL_VERSION_MAX];   /* the version switched to */
    char prev_version[MOLT_JOURNAL_VERSION_MAX]; /* previous before the switch, restored on rollback
                                                  */
    int64_t starts;                              /* starts of to_version during the trial */
    int64_t trial_started_ms;
    int64_t trial_deadline_ms;
    char reason[MOLT_JOURNAL_REASON_MAX]; /* rolling-back / rolled-back: why */
    /* committed: the watch window ("watchUntil", 0 = none) and the starts of
     * to_version counted in it; rolling-back: after_commit says the rollback
     * ends a watch. Optional in the file: older parsers ignore them. */
    int64_t watch_until_ms;
    int64_t watch_starts;
    int after_commit;
    int64_t updated_ms;
    size_t n_outcomes;
    struct molt_journal_outcome outcomes[MOLT_JOURNAL_OUTCOMES];
};

/* An empty journal: idle, no outcomes. */
void molt_journal_init(struct molt_journal *j);
const char *molt_journal_state_name(enum molt_journal_state state);
int molt_journal_state_parse(const char *name, enum molt_journal_state *out);
const char *molt_journal_result_name(enum molt_journal_result result);

/* <state_dir>/journal.json into out. */
int molt_journal_path(char *out, size_t n, const char *state_dir, struct molt_err *err);

/* Strict parse of a journal document: every field typed and checked, states,
 * versions and task ids validated, and the fields each state needs present.
 * Unknown fields are ignored (later formats only add fields). Any failure is
 * MOLT_E_PARSE with the reason, and j is left as an idle journal. */
int molt_journal_parse(const char *buf, size_t len, struct molt_journal *j, struct molt_err *err);
/* Serialises j; *out is malloc'd and NUL-terminated. */
int molt_journal_serialize(const struct molt_journal *j, char **out, struct molt_err *err);
/* Reads path. A missing file is an idle journal (returns 0); a corrupt one is
 * MOLT_E_PARSE, unreadable MOLT_E_IO, with j idle in both cases. */
int molt_journal_load(const char *path, struct molt_journal *j, struct molt_err *err);
/* Writes path atomically (temp, fsync, rename, fsync directory), mode 0644. */
int molt_journal_save(const char *path, const struct molt_journal *j, struct molt_err *err);

/* Transitions. now_ms stamps updated_ms and outcomes. */
int molt_journal_begin_switch(struct molt_journal *j, const char *task_id, const char *from,
                              const char *to, const char *prev, int64_t now_ms,
                              struct molt_err *err);
int molt_journal_begin_trial(struct molt_journal *j, int64_t now_ms, int64_t timeout_ms,
                             struct molt_err *err);
int molt_journal_count_start(struct molt_journal *j, int64_t now_ms, struct molt_err *err);
/* Ends a switch or a trial: current must go back to from_version. */
int molt_journal_begin_rollback(struct molt_journal *j, const char *reason, int64_t now_ms,
                                struct molt_err *err);
/* A manual rollback from a resting state: current goes back to previous, and
 * the version left becomes previous (so a second rollback undoes the first). */
int molt_journal_begin_revert(struct molt_journal *j, const char *current, const char *previous,
                              const char *reason, int64_t now_ms, struct molt_err *err);
/* rolling-back -> rolled-back, recording the outcome. */
int molt_journal_finish_rollback(struct molt_journal *j, int64_t now_ms, struct molt_err *err);
/* trial -> committed, recording the outcome. task_id NULL: whatever task is on
 * trial; otherwise it must match. Refused once the deadline has passed. */
int molt_journal_commit(struct molt_journal *j, const char *task_id, int64_t now_ms,
                        struct molt_err *err);

/* committed -> committed and watched: for window_ms from now a crash loop of
 * to_version still rolls back (window_ms 0: no watch). */
int molt_journal_watch(struct molt_journal *j, int64_t window_ms, int64_t now_ms,
                       struct molt_err *err);
/* Counts a start of to_version during the watch. */
int molt_journal_count_watch_start(struct molt_journal *j, int64_t now_ms, struct molt_err *err);
/* committed(watching) -> rolling-back: the way back is from_version, with
 * previous restored to prev_version, as for a failed trial; the outcome gets
 * after_commit. */
int molt_journal_begin_watch_rollback(struct molt_journal *j, const char *reason, int64_t now_ms,
                                      struct molt_err *err);
/* Ends the watch once its window passed (watch_until_ms back to 0). */
int molt_journal_end_watch(struct molt_journal *j, int64_t now_ms, struct molt_err *err);

/* <state_dir>/clean-exit: the agent of `version` leaves it when it exits by
 * itself (0, or 75 asking for a restart), so that the launcher's next start,
 * in exec mode too, tells a restart from a crash: only crashes count in the
 * watch. Written by the agent (not the journal: launch only reads and removes
 * it). */
#define MOLT_JOURNAL_CLEAN_EXIT_FILE "clean-exit"
int molt_journal_mark_clean_exit(const char *state_dir, const char *version,
                                 struct molt_err *err);
/* 1 when the marker names version; removes any marker (it is for one start). */
int molt_journal_take_clean_exit(const char *state_dir, const char *version);

/* Queries. */
/* 1 while committed and now_ms is inside the watch window. */
int molt_journal_watching(const struct molt_journal *j, int64_t now_ms);
/* 1 when committed with a watch whose window has passed (end_watch is due). */
int molt_journal_watch_over(const struct molt_journal *j, int64_t now_ms);
/* 1 when the watched version has used max_starts starts within the window:
 * the next start would be one more; reason gets "watch: V started N times
 * within T of its commit". */
int molt_journal_watch_failed(const struct molt_journal *j, int64_t now_ms, int64_t max_starts,
                              char *reason, size_t n);
/* 1 while a switch, trial or rollback is unfinished. */
int molt_journal_in_progress(const struct molt_journal *j);
/* 1 when the trial has failed: max_starts starts used up, or the deadline
 * passed; reason gets e.g. "20.2-100 exited 3 times during trial". 0 otherwise
 * (also when no trial is in progress). */
int molt_journal_trial_failed(const struct molt_journal *j, int64_t now_ms, int64_t max_starts,
                              char *reason, size_t n);
/* The task id whose trial version is running as `version`, or NULL: how a new
 * agent learns it is on trial and must commit. */
const char *molt_journal_trial_task(const struct molt_journal *j, const char *version);
/* The newest outcome for task_id, or NULL. */
const struct molt_journal_outcome *molt_journal_find_outcome(const struct molt_journal *j,
                                                             const char *task_id);
/* "committed 20.2-100" or "rolled back: <reason>": the text an agent reports. */
void molt_journal_outcome_message(const struct molt_journal_outcome *o, char *buf, size_t n);

#endif
