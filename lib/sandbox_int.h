/* sandbox_int.h: what sandbox.c and sandbox_probe.c share; not for other
 * modules. Landlock's syscall numbers (the same on every architecture), for
 * build hosts whose headers are older than the kernels the worker runs on. */
#ifndef MOLT_SANDBOX_INT_H
#define MOLT_SANDBOX_INT_H

#include <sys/syscall.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#endif
