/* main.c: molt-agent command line: dispatches to the daemon and its clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_api.h"
#include "checkconf.h"
#include "cli.h"
#include "http.h"
#include "imageprep.h"
#include "log.h"
#include "status.h"
#include "upgrade.h"
#include "upgrade_cli.h"
#include "watch_events.h"

static const char usage[] =
    "Usage: molt-agent [--config FILE] COMMAND [OPTIONS]\n"
    "The molt collector agent: heartbeats to the control plane and upgrades itself.\n"
    "\n"
    "Commands:\n"
    "  run                 run the agent in the foreground (what the service manager starts)\n"
    "  status              show identity, heartbeat and the current task\n"
    "  image-prep          clear identity, outbox, task state and downloads so that a VM\n"
    "                      image can be captured (the service must be stopped; --dry-run)\n"
    "  check-config        check the configuration as the agent reads it, and what a task\n"
    "                      will need (keys, upgrade_dir, ownership); exit 0 or 1\n"
    "  upgrade             ask the running agent to upgrade: to a build of the control\n"
    "                      plane (--to), or offline from a package file (--package)\n"
    "  cancel [TASK]       cancel the running agent's current (or named) task\n"
    "  rollback [TASK]     after a task, go back to the version that ran before it\n"
    "\n"
    "'molt-agent COMMAND --help' shows a command's own options.\n"
    "\n"
    "Options:\n"
    "  --config FILE       configuration file (default /etc/molt/molt.conf; MOLT_CONFIG)\n"
    "  --json              status: print the local API's JSON reply\n"
    "  --dry-run           image-prep: list what would be cleared, change nothing\n"
    "  --to VERSION        upgrade: the version to install from the control plane\n"
    "  --release R         upgrade: the release the statement must carry\n"
    "  --upgrade-dir DIR   upgrade: download and stage there (default: [agent] upgrade_dir)\n"
    "  --package FILE      upgrade: an offline build package on this host\n"
    "  --statement FILE    upgrade: its release statement (default FILE.statement.json)\n"
    "  --signature FILE    upgrade: its signature (default FILE.sig)\n"
    "  --wait              upgrade: follow the task until it ends (exit 0 only on success)\n"
    "  --user NAME         check-config: whom the state and run dirs must belong to\n"
    "                      (default: the caller; molt when run as root)\n"
    "  --start             check-config: what only stops upgrades is a warning (the\n"
    "                      service's start check)\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
    "\n"
    "Exit codes of run: 0 stopped, 1 configuration or setup error, 2 usage,\n"
    "3 another agent holds the state directory, 75 restart requested (after an upgrade).\n"
    "See molt-agent(8) and molt.conf(5).\n";

static const char check_usage[] =
    "Usage: molt-agent [--config FILE] check-config [--user NAME] [--start]\n"
    "Loads the configuration as the agent does and checks the server URL, the CA and\n"
    "client files, the trusted keys in agent.keys_dir, that a staged build in\n"
    "agent.upgrade_dir can be renamed into install.root, that the agent's directories\n"
    "are writable and that the state and run directories belong to the service user.\n"
    "Prints one ok/warning/error line per check.\n"
    "\n"
    "  --user NAME   whom the state and run dirs must belong to (default: the caller;\n"
    "                molt when run as root)\n"
    "  --start       problems that only stop upgrades are warnings, not errors (what\n"
    "                the service runs before it starts the agent)\n"
    "  -h, --help    show this help and exit\n"
    "\n"
    "Exit status: 0 usable, 1 not, 2 usage. See molt-agent(8).\n";

static const char run_usage[] =
    "Usage: molt-agent [--config FILE] run\n"
    "Runs the agent in the foreground: registers, heartbeats, carries out upgrade tasks\n"
    "and serves the local API on <agent.run_dir>/agent.sock. The service starts it\n"
    "through molt-installer launch. SIGTERM stops it, SIGHUP re-reads the configuration.\n"
    "\n"
    "Exit status: 0 stopped, 1 configuration or setup error, 2 usage, 3 another agent\n"
    "holds the state directory, 75 restart requested. See molt-agent(8), molt.conf(5).\n";

static const char status_usage[] =
    "Usage: molt-agent [--config FILE] status [--json]\n"
    "Asks the running agent over its socket for its identity, heartbeats and task.\n"
    "\n"
    "  --json        print the local API's JSON reply\n"
    "\n"
    "Exit status: 0, or 1 when the agent cannot be reached. See molt-agent(8).\n";

static const char imageprep_usage[] =
    "Usage: molt-agent [--config FILE] image-prep [--dry-run]\n"
    "Clears identity, outbox, task state and downloads so that a VM image can be\n"
    "captured and each clone registers as a new collector (the service must be stopped).\n"
    "\n"
    "  --dry-run     list what would be cleared, change nothing\n"
    "\n"
    "Exit status: 0 done, 1 error, 3 refused (in use). See molt-agent(8).\n";

/* A command's own --help (NULL: none known). */
static const char *command_usage(const char *command)
{
    if (!command)
        return usage;
    if (strcmp(command, "run") == 0)
        return run_usage;
    if (strcmp(command, "status") == 0)
        return status_usage;
    if (strcmp(command, "image-prep") == 0)
        return imageprep_usage;
    return NULL;
}

/* check-config's own options: the rest of the command line. */
static int check_config(const char *config, int argc, char **argv)
{
    const char *user = NULL;
    int start = 0;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(check_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--start") == 0) {
            start = 1;
        } else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            user = argv[++i];
        } else if (strncmp(argv[i], "--user=", 7) == 0) {
            user = argv[i] + 7;
        } else {
            fprintf(stderr, "molt-agent: check-config: unexpected argument '%s'\n"
                            "Try 'molt-agent check-config --help'.\n", argv[i]);
            return MOLT_EXIT_USAGE;
        }
    }
    return molt_checkconf_main(config, user, start);
}

/* "molt-agent: WHAT 'ARG'" (ARG may be NULL), and where to get help. */
static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "molt-agent: %s%s%s%s\nTry 'molt-agent --help'.\n", what, arg ? " '" : "",
            arg ? arg : "", arg ? "'" : "");
    return MOLT_EXIT_USAGE;
}

/* The local API: the agent's own endpoints, then the pipeline's. */
static int api_routes(struct molt_agent *a, struct molt_err *err)
{
    int rc = molt_agent_api_routes(a, err);

    return rc < 0 ? rc : molt_upgrade_api_routes(a, err);
}

static int run(const char *config_path)
{
    static const struct molt_agent_parts parts = {
        .pipeline = &molt_upgrade_pipeline,
        .api_routes = api_routes,
    };
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_agent *a = calloc(1, sizeof(*a));
    int rc;

    if (!a || molt_http_global_init(&err) < 0) {
        fprintf(stderr, "molt-agent: %s\n", a ? err.msg : "out of memory");
        free(a);
        return MOLT_EXIT_FATAL;
    }
    rc = molt_agent_init(a, config_path, &parts, &err);
    if (rc != 0) {
        fprintf(stderr, "molt-agent: %s\n", err.msg);
        if (strcmp(a->conf.agent.log_target, "syslog") == 0)
            molt_log_error("start.failed", "error=\"%s\" exit_code=%d", err.msg, rc);
    } else {
        rc = molt_agent_run(a);
    }
    molt_agent_cleanup(a);
    if (rc == 0 || rc == MOLT_EXIT_RESTART)
        molt_watch_mark_clean_exit(a->state_dir);
    free(a);
    molt_http_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *command = NULL;
    int json = 0, dry_run = 0;

    if (molt_cli_common(argc, argv, "molt-agent", usage))
        return 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--config") == 0) {
            if (++i >= argc)
                return usage_error("--config needs a FILE", NULL);
            config = argv[i];
        } else if (strncmp(arg, "--config=", 9) == 0) {
            config = arg + 9;
        } else if (strcmp(arg, "--json") == 0) {
            json = 1;
        } else if (strcmp(arg, "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            if (!command_usage(command))
                return usage_error("unknown command", command);
            fputs(command_usage(command), stdout);
            return 0;
        } else if (arg[0] == '-') {
            return usage_error("unknown option", arg);
        } else if (!command) {
            command = arg;
            /* upgrade and check-config have options of their own: the rest
             * of the line is theirs. */
            if (strcmp(command, "check-config") == 0)
                return json || dry_run ? usage_error("--json and --dry-run are not options of "
                                                     "check-config", NULL)
                                       : check_config(config, argc - i - 1, argv + i + 1);
            if (strcmp(command, "cancel") == 0 || strcmp(command, "rollback") == 0) {
                int rc;
                molt_http_global_init(NULL);
                rc = molt_operator_cli_main(config, json,
                                            strcmp(command, "cancel") == 0 ? "CANCEL" : "ROLLBACK",
                                            argc - i - 1, argv + i + 1);
                molt_http_global_cleanup();
                return rc;
            }
            if (strcmp(command, "upgrade") == 0) {
                int rc;
                molt_http_global_init(NULL);
                rc = molt_upgrade_cli_main(config, json, argc - i - 1, argv + i + 1);
                molt_http_global_cleanup();
                return rc;
            }
        } else {
            return usage_error("unexpected argument", arg);
        }
    }
    if (!command)
        return usage_error("no command given", NULL);
    if (dry_run && strcmp(command, "image-prep") != 0)
        return usage_error("--dry-run is an option of image-prep", NULL);
    if (strcmp(command, "image-prep") == 0)
        return json ? usage_error("--json is an option of status", NULL)
                    : molt_imageprep_main(config, dry_run);
    if (strcmp(command, "run") == 0) {
        if (json)
            return usage_error("--json is an option of status", NULL);
        return run(config);
    }
    if (strcmp(command, "status") == 0) {
        int rc;
        molt_http_global_init(NULL);
        rc = molt_status_main(config, json);
        molt_http_global_cleanup();
        return rc;
    }
    return usage_error("unknown command", command);
}
