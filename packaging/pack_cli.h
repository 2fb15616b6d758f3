/* pack_cli.h: the messages every molt-pack command prints, in one form. group
 * is the command group ("channel", "keyring") or "" for molt-pack's own
 * commands: "molt-pack: [GROUP ]CMD: reason" (exit 1), and for usage errors
 * "molt-pack: [GROUP: ]WHAT" with a pointer to the group's --help (exit 2). */
#ifndef MOLT_PACK_CLI_H
#define MOLT_PACK_CLI_H

#include "err.h"

/* Prints err for command cmd; returns 1. */
int molt_pack_fail(const char *group, const char *cmd, const struct molt_err *err);
/* Prints what (and arg, NULL for none) and where to find help; returns 2. */
int molt_pack_usage_error(const char *group, const char *what, const char *arg);
/* s as a whole decimal number in min..max into *out: 0, or 2 after saying why. */
int molt_pack_number(const char *group, const char *opt, const char *s, long long min,
                     long long max, long long *out);

#endif
