/* cli.h: what every molt program's command line shares: --help and --version. */
#ifndef MOLT_CLI_H
#define MOLT_CLI_H

#include <stdio.h>

/* Prints "prog VERSION" the same way in every program. */
void molt_cli_print_version(FILE *out, const char *prog);
/* Handles a leading --help/-h or --version/-V; returns 1 when handled (the
 * caller exits 0), 0 otherwise. usage is printed for --help. */
int molt_cli_common(int argc, char **argv, const char *prog, const char *usage);

#endif
