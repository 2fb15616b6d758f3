/* molt-pack.c: the release tool: keygen, build, sign, verify. */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "Usage: molt-pack COMMAND [OPTIONS]\n"
    "Builds, signs and verifies molt build packages.\n"
    "\n"
    "Options:\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n";

int main(int argc, char **argv)
{
    if (molt_cli_common(argc, argv, "molt-pack", usage))
        return 0;
    fprintf(stderr, "molt-pack: not implemented yet\nTry 'molt-pack --help'.\n");
    return 2;
}
