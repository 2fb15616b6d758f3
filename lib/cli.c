/* cli.c: shared --help and --version handling. */
#include "cli.h"

#include <string.h>

#include "version.h"

void molt_cli_print_version(FILE *out, const char *prog)
{
    fprintf(out, "%s %s\n", prog, molt_version_self());
}

int molt_cli_common(int argc, char **argv, const char *prog, const char *usage)
{
    if (argc < 2)
        return 0;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 1;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
        strcmp(argv[1], "version") == 0) {
        molt_cli_print_version(stdout, prog);
        return 1;
    }
    return 0;
}
