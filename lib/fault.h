/* fault.h: named fault points for crash and failure tests. MOLT_FAULT holds a
 * comma-separated list of point names; a listed kill point makes the process
 * die by SIGKILL right there (as a crash or power cut would), and a listed
 * injection point makes the caller fail as if the system call had. Unset in
 * production, where each check is one getenv().
 *
 * With MOLT_FAULT_ONCE_DIR set, each point fires once across all processes:
 * the first to reach it leaves <dir>/<name> behind, so a restarted process
 * gets past the point (a crash, then recovery, as in real life). */
#ifndef MOLT_FAULT_H
#define MOLT_FAULT_H

/* Dies by SIGKILL when name is listed in MOLT_FAULT. */
void molt_fault_point(const char *name);
/* Returns 1 when name is listed in MOLT_FAULT; the caller simulates a failure. */
int molt_fault_inject(const char *name);

#endif
