/* main.c: molt-agent command line: dispatches to the daemon and its clients. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: molt-agent COMMAND [OPTIONS]\n"
    "The molt collector agent: heartbeats to the control plane and upgrades itself.\n"
    "\n"
    "Commands:\n"
    "  run                 run the agent in the foreground (what the service manager starts)\n"
    "  status              show identity, heartbeat and the current task\n"
    "\n"
    "Options:\n"
    "  --config FILE       configuration file (default /etc/molt/molt.conf; MOLT_CONFIG)\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n";

int main(int argc, char **argv)
{
    if (molt_cli_common(argc, argv, "molt-agent", usage))
        return 0;
    fprintf(stderr, "molt-agent: %s: not implemented yet\n%s", argc > 1 ? argv[1] : "no command",
            "Try 'molt-agent --help'.\n");
    return 2;
}
