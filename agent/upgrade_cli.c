/* upgrade_cli.c: `molt-agent upgrade --to V` and the offline
 * `molt-agent upgrade --package FILE [--statement F --signature F]`. The
 * running agent does the work (verification, switch, trial); this only asks
 * and, with --wait, follows the task across the agent's restart. */
#include "upgrade_cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "conf.h"
#include "fs.h"
#include "json.h"
#include "proto.h"
#include "sign.h"
#include "status.h"

#define WAIT_LIMIT_S (35 * 60)   /* the 30-minute task lifetime, and a margin */

struct opts {
    const char *to, *release, *dir, *package, *statement, *signature;
    int wait;
};

static const char upgrade_usage[] =
    "Usage: molt-agent [--config FILE] upgrade --to VERSION [--release R] [OPTIONS]\n"
    "       molt-agent [--config FILE] upgrade --package FILE [--statement F] [--signature F]\n"
    "                  [OPTIONS]\n"
    "Asks the running agent to upgrade (or downgrade): to a build of the control plane\n"
    "(--to), or offline from a package file on this host (--package), verified against\n"
    "agent.keys_dir as any build. Such a task is the host's: it is not reported to the\n"
    "control plane.\n"
    "\n"
    "  --to VERSION        the version to install from the control plane\n"
    "  --release R         the release its statement must carry\n"
    "  --package FILE      an offline build package\n"
    "  --statement FILE    its release statement (default FILE.statement.json)\n"
    "  --signature FILE    its signature (default FILE.sig)\n"
    "  --upgrade-dir DIR   download and stage there (default: agent.upgrade_dir)\n"
    "  --wait              follow the task until it ends, printing its status (the\n"
    "                      management API's codes: 6 progressing, 2 succeeded, 3 failed)\n"
    "                      and stage once per change; exit 0 only on success\n"
    "  --json              print the local API's reply\n"
    "  -h, --help          show this help and exit\n"
    "\n"
    "molt-agent upgrade --now [TASK] switches a task waiting for install.switch_window\n"
    "at once (see molt-agent cancel --help).\n"
    "\n"
    "Exit status: 0 accepted (--wait: succeeded), 1 refused or failed, 2 usage.\n"
    "See molt-agent(8).\n";

static const char operator_usage[] =
    "Usage: molt-agent [--config FILE] cancel [TASK] [--json]\n"
    "       molt-agent [--config FILE] rollback [TASK] [--json]\n"
    "       molt-agent [--config FILE] upgrade --now [TASK] [--json]\n"
    "cancel: stops the task TASK (default: the current one) of the running agent; it ends\n"
    "3 failed, \"cancelled\", and nothing is switched. rollback: after the task TASK\n"
    "(default: the last one) ended, goes back to the version that ran before it (the\n"
    "agent restarts into it). upgrade --now: the task TASK (default: the current one)\n"
    "switches without waiting for a switch window (install.switch_window). All are the\n"
    "local API's POST /api/v1/agent/tasks/TASK\n"
    "{\"operator\": \"CANCEL\" | \"ROLLBACK\" | \"SWITCH_NOW\"}.\n"
    "\n"
    "  --json        print the local API's reply\n"
    "  -h, --help    show this help and exit\n"
    "\n"
    "Exit status: 0 done, 1 refused (the reason is printed), 2 usage. See molt-agent(8).\n";

static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "molt-agent upgrade: %s%s%s\nTry 'molt-agent upgrade --help'.\n", what,
            arg ? " " : "", arg ? arg : "");
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const char *const names[] = { "--to", "--release", "--upgrade-dir", "--package",
                                         "--statement", "--signature" };
    const char **slots[] = { &o->to, &o->release, &o->dir, &o->package, &o->statement,
                             &o->signature };

    for (int i = 0; i < argc; i++) {
        size_t k;
        if (strcmp(argv[i], "--wait") == 0) {
            o->wait = 1;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(upgrade_usage, stdout);
            return -1;
        }
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strcmp(argv[i], names[k]) == 0)
                break;
        }
        if (k == sizeof(names) / sizeof(names[0]))
            return usage("unknown option", argv[i]);
        if (++i >= argc)
            return usage("missing value for", names[k]);
        *slots[k] = argv[i];
    }
    if (!o->to == !o->package)
        return usage("give either --to VERSION or --package FILE", NULL);
    if (o->to && (o->statement || o->signature))
        return usage("--statement and --signature go with --package", NULL);
    return 0;
}

/* Adds field key with the base64 of a file's bytes. */
static int add_file(struct json_object *o, const char *key, const char *path)
{
    struct molt_err err = MOLT_ERR_INIT;
    char *data = NULL, *b64 = NULL;
    size_t len = 0;

    if (molt_fs_read_file(path, 65536, &data, &len, &err) < 0 ||
        molt_base64_encode(data, len, &b64, &err) < 0) {
        fprintf(stderr, "molt-agent upgrade: %s\n", err.msg);
        free(data);
        return -1;
    }
    json_object_object_add(o, key, json_object_new_string(b64));
    free(data);
    free(b64);
    return 0;
}

static struct json_object *request_body(const struct opts *o)
{
    struct json_object *body = json_object_new_object();
    char abs[PATH_MAX], def[PATH_MAX];

    if (o->to) {
        json_object_object_add(body, "version", json_object_new_string(o->to));
        if (o->release)
            json_object_object_add(body, "release", json_object_new_string(o->release));
    } else {
        if (!realpath(o->package, abs)) {
            fprintf(stderr, "molt-agent upgrade: %s: no such file\n", o->package);
            goto fail;
        }
        json_object_object_add(body, "package", json_object_new_string(abs));
        snprintf(def, sizeof(def), "%s.statement.json", abs);
        if (add_file(body, "statement", o->statement ? o->statement : def) < 0)
            goto fail;
        snprintf(def, sizeof(def), "%s.sig", abs);
        if (add_file(body, "signature", o->signature ? o->signature : def) < 0)
            goto fail;
    }
    if (o->dir)
        json_object_object_add(body, "upgradeDir", json_object_new_string(o->dir));
    return body;
fail:
    json_object_put(body);
    return NULL;
}

/* One call; on success *data gets the envelope's data (owned by *env). */
static int call(const char *sock, const char *method, const char *path, const char *json,
                struct json_object **env, struct json_object **data, char *msg, size_t n)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *error = NULL;
    const char *m = NULL;
    char *body = NULL;
    long status = molt_status_request(sock, method, path, json, &body, msg, n);
    int ok = 0;

    *env = NULL;
    if (status < 0)
        return -1;
    if (molt_json_parse(body, strlen(body), env, &err) < 0) {
        snprintf(msg, n, "unreadable reply (HTTP %ld): %s", status, err.msg);
        free(body);
        return -1;
    }
    free(body);
    molt_json_opt_bool(*env, "successful", &ok, NULL);
    if (!ok) {
        molt_json_opt_obj(*env, "error", &error, NULL);
        molt_json_opt_str(error, "message", &m, NULL);
        snprintf(msg, n, "%s", m ? m : "refused");
        return 1;
    }
    molt_json_opt_obj(*env, "data", data, NULL);
    return 0;
}

/* A call that failed (rc != 0): says why, frees env; 1 when it did. */
static int refused(const char *command, int rc, const char *msg, struct json_object *env)
{
    if (rc == 0)
        return 0;
    fprintf(stderr, "molt-agent %s: %s%s\n", command, rc < 0 ? "cannot reach the agent: " : "",
            msg);
    json_object_put(env);
    return 1;
}

/* The management API's words for the task status codes. */
static const char *status_word(int64_t status)
{
    switch (status) {
    case 0: return "not started";
    case 1: return "pending";
    case 2: return "succeeded";
    case 3: return "failed";
    case 6: return "progressing";
    default: return "unknown";
    }
}

/* "task ID: 6 progressing, stage 3/9 downloading[: message]"; key gets the
 * status and stage only, what --wait prints again when it changes. */
static void task_line(struct json_object *data, char *line, size_t n, char *key, size_t kn)
{
    struct json_object *extra = NULL;
    const char *id = "", *stage = "", *message = "";
    int64_t idx = 0, max = 0, status = -1;

    molt_json_opt_str(data, "id", &id, NULL);
    molt_json_opt_int(data, "stage", &idx, NULL);
    molt_json_opt_int(data, "max_stage", &max, NULL);
    molt_json_opt_obj(data, "additional_data", &extra, NULL);
    molt_json_opt_str(extra, "stage_name", &stage, NULL);
    molt_json_opt_str(extra, "message", &message, NULL);
    molt_json_opt_int(extra, "status", &status, NULL);
    snprintf(line, n, "task %s: %lld %s, stage %lld/%lld %s%s%s", id, (long long)status,
             status_word(status), (long long)idx, (long long)max, stage, *message ? ": " : "",
             message);
    snprintf(key, kn, "%lld %s", (long long)status, stage);
}

/* key (may be NULL) gets what task_line's does. */
static void print_task(struct json_object *data, char *key, size_t kn)
{
    char line[1024], k[64];

    task_line(data, line, sizeof(line), key ? key : k, key ? kn : sizeof(k));
    printf("%s\n", line);
    fflush(stdout);
}

/* Follows the task until SUCCEED or FAILED; the agent restarts in between.
 * shown: the status and stage already printed. */
static int follow(const char *sock, const char *id, const char *shown)
{
    char path[96], msg[256], last[64];
    time_t end = time(NULL) + WAIT_LIMIT_S;

    snprintf(last, sizeof(last), "%s", shown);
    snprintf(path, sizeof(path), "/api/v1/agent/tasks/%s", id);
    while (time(NULL) < end) {
        struct json_object *env = NULL, *data = NULL;
        const char *state = "";
        int rc = call(sock, "GET", path, NULL, &env, &data, msg, sizeof(msg));

        if (rc == 0 && data) {
            char line[1024], now[64];
            molt_json_opt_str(data, "state", &state, NULL);
            task_line(data, line, sizeof(line), now, sizeof(now));
            if (strcmp(now, last) != 0) {
                printf("%s\n", line);
                fflush(stdout);
                snprintf(last, sizeof(last), "%s", now);
            }
            if (strcmp(state, "SUCCEED") == 0 || strcmp(state, "FAILED") == 0) {
                rc = strcmp(state, "SUCCEED") == 0 ? 0 : 1;
                json_object_put(env);
                return rc;
            }
        }
        json_object_put(env);
        usleep(200 * 1000);
    }
    fprintf(stderr, "molt-agent upgrade: task %s did not end in %d minutes\n", id,
            WAIT_LIMIT_S / 60);
    return 1;
}

int molt_upgrade_cli_main(const char *config_path, int json, int argc, char **argv)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    struct json_object *body = NULL, *env = NULL, *data = NULL;
    struct opts o = { 0 };
    char sock[PATH_MAX], msg[512], id[32] = "", shown[64] = "";
    const char *tid = NULL;
    int rc;

    if (argc > 0 && strcmp(argv[0], "--now") == 0)
        return molt_operator_cli_main(config_path, json, "SWITCH_NOW", argc - 1, argv + 1);
    rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (molt_conf_load(&conf, config_path, &err) < 0) {
        fprintf(stderr, "molt-agent upgrade: %s\n", err.msg);
        return 1;
    }
    snprintf(sock, sizeof(sock), "%s/agent.sock", conf.agent.run_dir);
    body = request_body(&o);
    if (!body)
        return 1;
    rc = call(sock, "POST", "/api/v1/agent/upgrade", molt_json_dump(body), &env, &data, msg,
              sizeof(msg));
    json_object_put(body);
    if (refused("upgrade", rc, msg, env))
        return 1;
    if (json)
        printf("%s\n", molt_json_dump(data));
    else
        print_task(data, shown, sizeof(shown));
    molt_json_opt_str(data, "id", &tid, NULL);
    snprintf(id, sizeof(id), "%s", tid ? tid : "");
    json_object_put(env);
    return o.wait && id[0] ? follow(sock, id, shown) : 0;
}

/* The id of the agent's current (or last) task, in id. */
static int current_task(const char *sock, char *id, size_t n, char *msg, size_t mn)
{
    struct json_object *env = NULL, *data = NULL;
    const char *tid = NULL;
    int rc = call(sock, "GET", "/api/v1/agent/upgrade", NULL, &env, &data, msg, mn);

    if (rc == 0 && (molt_json_opt_str(data, "id", &tid, NULL) < 0 || !tid)) {
        snprintf(msg, mn, "the agent's reply names no task");
        rc = 1;
    }
    if (rc == 0)
        snprintf(id, n, "%s", tid);
    json_object_put(env);
    return rc;
}

/* The operators of molt_operator_cli_main: the command's name and what it
 * prints once the agent took it. */
static const struct operator {
    const char *op, *name, *done;
} operators[] = {
    { "CANCEL", "cancel", "cancel asked: it ends 3 failed, cancelled" },
    { "ROLLBACK", "rollback", "rollback asked: the agent restarts into the version before it" },
    { "SWITCH_NOW", "upgrade --now", "switch asked: it switches now, whatever the switch window" },
};

int molt_operator_cli_main(const char *config_path, int json, const char *op, int argc,
                           char **argv)
{
    const struct operator *how = &operators[0];
    const char *name;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    struct json_object *env = NULL, *data = NULL, *body;
    char sock[PATH_MAX], msg[512], id[MOLT_TASK_ID_MAX + 1] = "", path[128];
    int rc;

    for (size_t k = 0; k < sizeof(operators) / sizeof(operators[0]); k++) {
        if (strcmp(operators[k].op, op) == 0)
            how = &operators[k];
    }
    name = how->name;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(operator_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (!id[0] && molt_task_id_valid(argv[i])) {
            snprintf(id, sizeof(id), "%s", argv[i]);
        } else {
            fprintf(stderr, "molt-agent %s: unexpected argument '%s'\n"
                            "Try 'molt-agent %s --help'.\n", name, argv[i], name);
            return 2;
        }
    }
    if (molt_conf_load(&conf, config_path, &err) < 0) {
        fprintf(stderr, "molt-agent %s: %s\n", name, err.msg);
        return 1;
    }
    snprintf(sock, sizeof(sock), "%s/agent.sock", conf.agent.run_dir);
    rc = id[0] ? 0 : current_task(sock, id, sizeof(id), msg, sizeof(msg));
    if (rc == 0) {
        body = json_object_new_object();
        json_object_object_add(body, "operator", json_object_new_string(op));
        snprintf(path, sizeof(path), "/api/v1/agent/tasks/%s", id);
        rc = call(sock, "POST", path, molt_json_dump(body), &env, &data, msg, sizeof(msg));
        json_object_put(body);
    }
    if (refused(name, rc, msg, env))
        return 1;
    if (json)
        printf("%s\n", molt_json_dump(data));
    else
        printf("task %s: %s\n", id, how->done);
    json_object_put(env);
    return 0;
}
