/* watch_events.h: the agent's side of a rollback after a commit
 * (docs/upgrades.md section 5.5): the agent running after a rollback that
 * ended a watch queues a rolled-back-after-commit event, read from the
 * journal's outcome, for its outbox to send once. */
#ifndef MOLT_WATCH_EVENTS_H
#define MOLT_WATCH_EVENTS_H

#include "journal.h"

#define MOLT_EVENT_ROLLED_BACK_AFTER_COMMIT "rolled-back-after-commit"

/* <state_dir>/journal.json into j; -1 (logged) when it cannot be read. */
int molt_watch_load_journal(const char *state_dir, struct molt_journal *j);

/* Queues an event for every after-commit rollback in the journal that was
 * not queued before, and forgets the sent markers of outcomes the journal
 * no longer holds. Logs what goes wrong; never fails the agent. */
void molt_watch_queue_events(const char *state_dir, const char *outbox_dir);

/* After the agent stopped by itself (exit 0 or 75): the clean-exit marker
 * (journal.h), so the launcher does not count the next start in a watch. */
void molt_watch_mark_clean_exit(const char *state_dir);

/* Test builds only (agent.watch_crash listed in MOLT_FAULT): dies by SIGKILL,
 * in every start, once this version is committed, inside its watch, and 30 s
 * have passed since the commit: a build that crashes after its commit. */
void molt_watch_fault_tick(const char *state_dir);

#endif
