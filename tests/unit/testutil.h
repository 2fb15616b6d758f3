/* testutil.h: helpers shared by the cmocka unit tests. */
#ifndef MOLT_TESTUTIL_H
#define MOLT_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"    /* MOLT_FAULT_POINTS: tests of MOLT_FAULT only where it works */


/* Creates a fresh temporary directory; the path lives in a static buffer per call slot. */
char *tu_mkdtemp(char buf[PATH_MAX]);
/* Writes text to dir/name and returns the full path in out. */
void tu_write(char out[PATH_MAX], const char *dir, const char *name, const char *text);
void tu_rmtree(const char *dir);
/* A TCP socket listening on 127.0.0.1, on a port of the kernel's choosing
 * (*port); fails the test when it cannot. */
int tu_listen_loopback(uint16_t *port);

/* A forked child's check (cmocka's asserts belong to the parent): prints what
 * failed and exits with the check's number. */
#define TU_CHILD_CHECK(n, cond)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check %d failed: %s (errno %d %s)\n", n, #cond, errno,                \
                    strerror(errno));                                                              \
            _exit(n);                                                                              \
        }                                                                                          \
    } while (0)

#endif
