/* main.c: molt-installer command line: parses options, loads the
 * configuration, and dispatches to the commands. Exit codes are part of the
 * contract with the agent (docs/upgrades.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "installer.h"
#include "log.h"

static const char usage[] =
    "Usage: molt-installer COMMAND [OPTIONS]\n"
    "Installs molt builds side by side and switches between them atomically.\n"
    "\n"
    "Commands:\n"
    "  install PACKAGE      first install of a signed build package onto an empty root\n"
    "  apply STAGED_DIR     switch to a verified, staged build and start its trial\n"
    "                       (--task required); the calling agent then exits 75\n"
    "  launch               start the current version's agent: what the service manager runs\n"
    "  commit               end the trial: keep the new version (the new agent calls it)\n"
    "  rollback             switch back to the previous version\n"
    "  status               show the versions, the journal and recent outcomes\n"
    "  gc                   remove versions other than current and previous, and the\n"
    "                       upgrade directory's contents\n"
    "\n"
    "Options (before or after the command):\n"
    "  --config FILE        configuration file (default /etc/molt/molt.conf; MOLT_CONFIG)\n"
    "  --root DIR           install root (default: [install] root, /opt/molt)\n"
    "  --state-dir DIR      state directory holding journal.json (default: [agent] state_dir)\n"
    "  --task ID            apply: the task switching (required); commit: must be on trial\n"
    "  --build-version V    apply: the staged build's version (default: its manifest.json)\n"
    "  --manifest-sha256 HEX  apply: the signed statement's manifestSha256 the tree must match\n"
    "  --keys DIR           install: trusted release keys (default: [agent] keys_dir)\n"
    "  --statement FILE     install: the release statement (default: PACKAGE.statement.json)\n"
    "  --signature FILE     install: its detached signature (default: PACKAGE.sig)\n"
    "  --supervise          launch: stay the agent's parent and restart it (no systemd, tests)\n"
    "  --reason TEXT        rollback: why, recorded in the journal\n"
    "  --keep NAME          gc: keep this entry of the upgrade directory (repeatable)\n"
    "  --json               status: print JSON\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 done; 1 failed (the message says why); 2 usage error; 3 refused in the\n"
    "current state (another task on trial, trial over, nothing to roll back to, ...).\n"
    "launch execs the agent, whose status it then is. 'molt-installer COMMAND --help' shows a\n"
    "command's own options. See molt-installer(8).\n";

enum {
    OPT_CONFIG = 256,
    OPT_ROOT,
    OPT_STATE_DIR,
    OPT_TASK,
    OPT_BUILD_VERSION,
    OPT_KEYS,
    OPT_STATEMENT,
    OPT_SIGNATURE,
    OPT_SUPERVISE,
    OPT_REASON,
    OPT_KEEP,
    OPT_JSON,
    OPT_MANIFEST_SHA256,
};

#define MAX_KEEP 32

struct args {
    const char *command;
    const char *operand;
    const char *config, *root, *state_dir, *task, *build_version, *keys, *statement, *signature,
        *reason, *manifest_sha256;
    const char *keep[MAX_KEEP];
    size_t n_keep;
    int supervise, json;
    unsigned seen; /* bit per option, to refuse options a command does not take */
};

struct command {
    const char *name;
    int operand; /* 1: takes one operand */
    unsigned allowed;
    const char *usage; /* its --help, after "Usage: molt-installer " */
};

#define BIT(opt) (1u << ((opt)-OPT_CONFIG))
#define COMMON (BIT(OPT_CONFIG) | BIT(OPT_ROOT) | BIT(OPT_STATE_DIR))

#define COMMON_HELP                                                                                \
    "  --config FILE      configuration file (default /etc/molt/molt.conf; MOLT_CONFIG)\n"         \
    "  --root DIR         install root (default: [install] root, /opt/molt)\n"                     \
    "  --state-dir DIR    state directory (default: [agent] state_dir)\n"                          \
    "See molt-installer(8).\n"

static const struct command commands[] = {
    {"install", 1, COMMON | BIT(OPT_KEYS) | BIT(OPT_STATEMENT) | BIT(OPT_SIGNATURE),
     "install [--keys DIR] [--statement FILE] [--signature FILE] PACKAGE\n"
     "First install of a signed build package onto an empty root, verified with the keys\n"
     "(default: [agent] keys_dir); the statement and signature default to\n"
     "PACKAGE.statement.json and PACKAGE.sig.\n" COMMON_HELP},
    {"apply", 1, COMMON | BIT(OPT_TASK) | BIT(OPT_BUILD_VERSION) | BIT(OPT_MANIFEST_SHA256),
     "apply --task ID [--build-version V] [--manifest-sha256 HEX] STAGED_DIR\n"
     "Switches to a verified, staged build and starts its trial; the calling agent then\n"
     "exits 75. With --manifest-sha256 (the signed statement's manifestSha256), the tree\n"
     "must be exactly that build, whoever unpacked it.\n" COMMON_HELP},
    {"launch", 0, COMMON | BIT(OPT_SUPERVISE),
     "launch [--supervise]\n"
     "Settles the upgrade journal and starts the current version's agent: what the\n"
     "service manager runs. --supervise stays its parent and restarts it.\n" COMMON_HELP},
    {"commit", 0, COMMON | BIT(OPT_TASK),
     "commit [--task ID]\n"
     "Ends the trial and keeps the new version (the new agent calls it).\n" COMMON_HELP},
    {"rollback", 0, COMMON | BIT(OPT_REASON) | BIT(OPT_TASK),
     "rollback [--reason TEXT] [--task ID]\n"
     "Switches back to the previous version; the reason goes into the journal.\n"
     "With --task, the agent on trial for that task failed its health check: the trial\n"
     "ends with the reason as given (refused unless that task's trial is on).\n" COMMON_HELP},
    {"status", 0, COMMON | BIT(OPT_JSON),
     "status [--json]\n"
     "Shows the versions, the journal and recent outcomes, changing nothing.\n" COMMON_HELP},
    {"gc", 0, COMMON | BIT(OPT_KEEP),
     "gc [--keep NAME]...\n"
     "Removes versions other than current and previous, and the upgrade directory's\n"
     "contents (but each --keep NAME).\n" COMMON_HELP},
};

static const struct option options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"root", required_argument, NULL, OPT_ROOT},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"task", required_argument, NULL, OPT_TASK},
    {"build-version", required_argument, NULL, OPT_BUILD_VERSION},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"statement", required_argument, NULL, OPT_STATEMENT},
    {"signature", required_argument, NULL, OPT_SIGNATURE},
    {"supervise", no_argument, NULL, OPT_SUPERVISE},
    {"reason", required_argument, NULL, OPT_REASON},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"json", no_argument, NULL, OPT_JSON},
    {"manifest-sha256", required_argument, NULL, OPT_MANIFEST_SHA256},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "molt-installer: %s%s%s%s\nTry 'molt-installer --help'.\n", what,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return INST_EXIT_USAGE;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static void store_option(struct args *a, int opt, const char *arg)
{
    a->seen |= BIT(opt);
    switch (opt) {
    case OPT_CONFIG:
        a->config = arg;
        break;
    case OPT_ROOT:
        a->root = arg;
        break;
    case OPT_STATE_DIR:
        a->state_dir = arg;
        break;
    case OPT_TASK:
        a->task = arg;
        break;
    case OPT_BUILD_VERSION:
        a->build_version = arg;
        break;
    case OPT_KEYS:
        a->keys = arg;
        break;
    case OPT_STATEMENT:
        a->statement = arg;
        break;
    case OPT_SIGNATURE:
        a->signature = arg;
        break;
    case OPT_SUPERVISE:
        a->supervise = 1;
        break;
    case OPT_REASON:
        a->reason = arg;
        break;
    case OPT_KEEP:
        if (a->n_keep < MAX_KEEP)
            a->keep[a->n_keep++] = arg;
        break;
    case OPT_JSON:
        a->json = 1;
        break;
    case OPT_MANIFEST_SHA256:
        a->manifest_sha256 = arg;
        break;
    default:
        break;
    }
}

static const char *option_name(unsigned bit)
{
    for (const struct option *o = options; o->name; o++) {
        if (o->val >= OPT_CONFIG && BIT(o->val) == bit)
            return o->name;
    }
    return "?";
}

/* Options may come before or after the command (the agent puts the common
 * ones first). Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
    const struct command *cmd;
    unsigned extra;
    int opt, help = 0;

    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (opt == 'h') {
            help = 1;
            continue;
        }
        if (opt == '?')
            return usage_error("unknown option", argv[optind - 1]);
        if (opt == ':')
            return usage_error("this option needs a value:", argv[optind - 1]);
        store_option(a, opt, optarg);
    }
    if (help && (optind >= argc || !find_command(argv[optind]))) {
        fputs(usage, stdout);
        return INST_EXIT_OK;
    }
    if (optind >= argc)
        return usage_error("missing command", NULL);
    if (!(cmd = find_command(argv[optind])))
        return usage_error("unknown command", argv[optind]);
    if (help) {
        printf("Usage: molt-installer %s", cmd->usage);
        return INST_EXIT_OK;
    }
    a->command = cmd->name;
    optind++;
    extra = a->seen & ~cmd->allowed;
    if (extra) {
        unsigned bit = extra & -extra;
        char name[48];
        snprintf(name, sizeof(name), "--%s", option_name(bit));
        return usage_error("this option does not apply to the command:", name);
    }
    if (a->n_keep == MAX_KEEP)
        return usage_error("too many --keep options", NULL);
    if (cmd->operand) {
        if (optind >= argc)
            return usage_error("missing operand for", cmd->name);
        a->operand = argv[optind++];
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (strcmp(a->command, "apply") == 0 && !a->task)
        return usage_error("apply needs --task ID", NULL);
    return -1;
}

/* Relative paths are made absolute: the agent we start inherits them. */
static int absolute(char *out, size_t n, const char *path, struct molt_err *err)
{
    char cwd[PATH_MAX];

    if (path[0] == '/') {
        if (snprintf(out, n, "%s", path) >= (int)n)
            return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", path);
        return 0;
    }
    if (!getcwd(cwd, sizeof(cwd)))
        return molt_err_errno(err, "getcwd");
    if (snprintf(out, n, "%s/%s", cwd, path) >= (int)n)
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s/%s", cwd, path);
    return 0;
}

static int setup(struct inst *in, const struct args *a, struct molt_err *err)
{
    enum molt_log_level level = MOLT_LOG_INFO;
    int rc;

    memset(in, 0, sizeof(*in));
    in->lock_fd = -1;
    in->config_path = a->config;
    if ((rc = molt_conf_load(&in->conf, a->config, err)) < 0)
        return rc;
    molt_log_level_parse(in->conf.agent.log_level, &level);
    molt_log_setup("molt-installer", level, strcmp(in->conf.agent.log_target, "syslog") == 0);
    if ((rc = absolute(in->root, sizeof(in->root), a->root ? a->root : in->conf.install.root,
                       err)) < 0 ||
        (rc = absolute(in->state_dir, sizeof(in->state_dir),
                       a->state_dir ? a->state_dir : in->conf.agent.state_dir, err)) < 0 ||
        (rc = absolute(in->upgrade_dir, sizeof(in->upgrade_dir), in->conf.agent.upgrade_dir, err)) <
            0 ||
        (rc = molt_journal_path(in->journal_path, sizeof(in->journal_path), in->state_dir, err)) <
            0)
        return rc;
    if (!in->root[1])
        return molt_err_set(err, MOLT_E_CONFIG, "the install root cannot be /");
    return 0;
}

static int dispatch(struct inst *in, const struct args *a, struct molt_err *err)
{
    if (strcmp(a->command, "apply") == 0) {
        struct inst_apply_args ap = {a->operand, a->task, a->build_version, a->manifest_sha256};
        return inst_apply(in, &ap, err);
    }
    if (strcmp(a->command, "install") == 0) {
        struct inst_install_args ia = {a->operand, a->keys, a->statement, a->signature};
        return inst_install(in, &ia, err);
    }
    if (strcmp(a->command, "launch") == 0)
        return inst_launch(in, a->supervise, err);
    if (strcmp(a->command, "commit") == 0)
        return inst_commit(in, a->task, err);
    if (strcmp(a->command, "rollback") == 0)
        return inst_manual_rollback(in, a->task, a->reason, err);
    if (strcmp(a->command, "status") == 0)
        return inst_status(in, a->json, err);
    return inst_gc(in, a->keep, a->n_keep, err);
}

int main(int argc, char **argv)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct inst *in;
    struct args a;
    int rc;

    if (molt_cli_common(argc, argv, "molt-installer", usage))
        return INST_EXIT_OK;
    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    in = malloc(sizeof(*in));
    if (!in) {
        fprintf(stderr, "molt-installer: out of memory\n");
        return INST_EXIT_FAIL;
    }
    rc = setup(in, &a, &err);
    if (rc == 0)
        rc = dispatch(in, &a, &err);
    free(in);
    if (rc < 0) {
        fprintf(stderr, "molt-installer: %s\n", err.msg);
        return rc == MOLT_E_STATE ? INST_EXIT_STATE : INST_EXIT_FAIL;
    }
    return INST_EXIT_OK;
}
