/* fault.h: named fault points for crash and failure tests. MOLT_FAULT holds a
 * comma-separated list of point names; a listed kill point makes the process
 * die by SIGKILL right there (as a crash or power cut would), and a listed
 * injection point makes the caller fail as if the system call had. Unset in
 * production, where each check is one getenv(). */
#ifndef MOLT_FAULT_H
#define MOLT_FAULT_H

/* Dies by SIGKILL when name is listed in MOLT_FAULT. */
void molt_fault_point(const char *name);
/* Returns 1 when name is listed in MOLT_FAULT; the caller simulates a failure. */
int molt_fault_inject(const char *name);

#endif
