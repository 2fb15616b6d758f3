/* notify.h: the service manager's notification protocol (sd_notify(3)),
 * written here instead of linking libsystemd, which the agent used for this
 * alone and which maps gcrypt, lz4, zstd and more into the resident process.
 * The protocol is documented as stable for reimplementation
 * (systemd.io/PORTABILITY_AND_STABILITY, sd_notify(3) "Notes"): one datagram
 * of newline-separated VAR=VALUE lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET, a file system path or, with a leading '@', an abstract name.
 *
 *   molt_notify("READY=1", &err);          // 1 sent, 0 no $NOTIFY_SOCKET, < 0 error
 *   if (molt_notify_watchdog_usec(&usec, &err) > 0) ... send "WATCHDOG=1" every usec / 2 */
#ifndef MOLT_NOTIFY_H
#define MOLT_NOTIFY_H

#include <stdint.h>

#include "err.h"

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=text", or
 * several lines) to $NOTIFY_SOCKET. Returns 1 once sent, 0 when the variable
 * is unset or empty (not run by a service manager), a negative code when it
 * is malformed or the send fails. Like sd_notify, the send may block while
 * the manager's queue is full. */
int molt_notify(const char *state, struct molt_err *err);

/* As sd_watchdog_enabled(0, usec): 1 with *usec set when $WATCHDOG_USEC asks
 * this process for keep-alives; 0 when it is unset or $WATCHDOG_PID names
 * another process; a negative code when either is not a valid number
 * (WATCHDOG_USEC must be a decimal in [1, 2^64 - 2] microseconds,
 * WATCHDOG_PID a decimal process id > 0). The environment is left as is. */
int molt_notify_watchdog_usec(uint64_t *usec, struct molt_err *err);

#endif
