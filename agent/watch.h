/* watch.h: the agent's side of the watch window after a commit
 * (docs/upgrades.md section 5.4): with [install] health_command, the new
 * version runs it every health_interval during the watch and has the
 * installer roll back on a failure; the agent running after a rollback that
 * ended a watch queues a rolled-back-after-commit event, read from the
 * journal's outcome, for its outbox to send once. */
#ifndef MOLT_WATCH_H
#define MOLT_WATCH_H

#define MOLT_EVENT_ROLLED_BACK_AFTER_COMMIT "rolled-back-after-commit"

struct molt_agent;
struct molt_watch;

/* Starts the health watch thread when this version is on trial or watched
 * and health_command and watch_window are set; NULL otherwise (or when the
 * thread cannot start: logged, the crash-loop watch of launch remains). */
struct molt_watch *molt_watch_start(struct molt_agent *a);
/* Stops and joins it (waits for a check under way); NULL is fine. */
void molt_watch_stop(struct molt_watch *w);

/* Queues an event for every after-commit rollback in the journal that was
 * not queued before, and forgets the sent markers of outcomes the journal
 * no longer holds. Logs what goes wrong; never fails the agent. */
void molt_watch_queue_events(const char *state_dir, const char *outbox_dir);

/* Test builds only (agent.watch_crash listed in MOLT_FAULT): dies by SIGKILL,
 * in every start, once this version is committed, inside its watch, and 30 s
 * have passed since the commit: a build that crashes after its commit. */
void molt_watch_fault_tick(const char *state_dir);

#endif
