/* fault.h: named fault points for crash and failure tests. MOLT_FAULT holds a
 * comma-separated list of point names; a listed kill point makes the process
 * die by SIGKILL right there (as a crash or power cut would), and a listed
 * injection point makes the caller fail as if the system call had.
 *
 * With MOLT_FAULT_ONCE_DIR set, each point fires once across all processes:
 * the first to reach it leaves <dir>/<name> behind, so a restarted process
 * gets past the point (a crash, then recovery, as in real life).
 *
 * Compiled in only with ./configure --enable-fault-points (test builds): in
 * release builds the macros below expand to nothing, lib/fault.c is not
 * built, and MOLT_FAULT in a host's environment does nothing. */
#ifndef MOLT_FAULT_H
#define MOLT_FAULT_H

#include "config.h"

#ifdef MOLT_FAULT_POINTS
/* Dies by SIGKILL when name is listed in MOLT_FAULT. */
void molt_fault_point(const char *name);
/* Returns 1 when name is listed in MOLT_FAULT; the caller simulates a failure. */
int molt_fault_inject(const char *name);

#define MOLT_FAULT_POINT(name) molt_fault_point(name)
#define MOLT_FAULT_INJECT(name) molt_fault_inject(name)
#else
#define MOLT_FAULT_POINT(name) ((void)0)
#define MOLT_FAULT_INJECT(name) 0
#endif

#endif
