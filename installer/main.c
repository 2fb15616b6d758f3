/* main.c: molt-installer command line. */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "Usage: molt-installer COMMAND [OPTIONS]\n"
    "Installs molt builds side by side and switches between them atomically.\n"
    "\n"
    "Options:\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n";

int main(int argc, char **argv)
{
    if (molt_cli_common(argc, argv, "molt-installer", usage))
        return 0;
    fprintf(stderr, "molt-installer: not implemented yet\nTry 'molt-installer --help'.\n");
    return 2;
}
