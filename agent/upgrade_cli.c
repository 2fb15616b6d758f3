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

#include "conf.h"
#include "fs.h"
#include "json.h"
#include "sign.h"
#include "status.h"

#define WAIT_LIMIT_S (35 * 60)   /* the 30-minute task lifetime, and a margin */

struct opts {
    const char *to, *release, *dir, *package, *statement, *signature;
    int wait;
};

static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "molt-agent upgrade: %s%s%s\nTry 'molt-agent --help'.\n", what,
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
        molt_pkg_base64_encode(data, len, &b64, &err) < 0) {
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
    int rc = parse(argc, argv, &o);

    if (rc)
        return rc;
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
    if (rc != 0) {
        fprintf(stderr, "molt-agent upgrade: %s%s\n", rc < 0 ? "cannot reach the agent: " : "",
                msg);
        json_object_put(env);
        return 1;
    }
    if (json)
        printf("%s\n", molt_json_dump(data));
    else
        print_task(data, shown, sizeof(shown));
    molt_json_opt_str(data, "id", &tid, NULL);
    snprintf(id, sizeof(id), "%s", tid ? tid : "");
    json_object_put(env);
    return o.wait && id[0] ? follow(sock, id, shown) : 0;
}
