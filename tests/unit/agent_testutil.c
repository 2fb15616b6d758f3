/* agent_testutil.c: helpers shared by the agent's unit tests: commands as
 * the control plane sends them, final reports as the outbox holds them. */
#include "agent_testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "json.h"

/* base64("statement bytes") and base64("sig") */
#define STMT_B64 "c3RhdGVtZW50IGJ5dGVz"
#define SIG_B64 "c2ln"
#define SHA "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"

char *tu_upgrade_json(const char *override_key, const char *override_value)
{
    static char buf[8192];
    struct json_object *o = json_object_new_object(), *b = json_object_new_object();
    struct json_object *target;

    json_object_object_add(o, "type", json_object_new_string("upgrade"));
    json_object_object_add(o, "taskId", json_object_new_string("12345"));
    json_object_object_add(o, "toVersion", json_object_new_string("20.2-100"));
    json_object_object_add(o, "requestTime", json_object_new_int64(1700000000000LL));
    json_object_object_add(o, "expiresAt", json_object_new_int64(1700001800000LL));
    json_object_object_add(b, "version", json_object_new_string("20.2-100"));
    json_object_object_add(b, "url", json_object_new_string("/builds/molt-20.2-100.tar.gz"));
    json_object_object_add(b, "size", json_object_new_int64(4194304));
    json_object_object_add(b, "sha256", json_object_new_string(SHA));
    json_object_object_add(b, "statement", json_object_new_string(STMT_B64));
    json_object_object_add(b, "signature", json_object_new_string(SIG_B64));
    json_object_object_add(o, "build", b);
    if (override_key) {
        /* "build.x" changes a build field; the value is JSON text, or NULL to remove. */
        const char *key = override_key;
        target = o;
        if (strncmp(key, "build.", 6) == 0) {
            target = b;
            key += 6;
        }
        if (override_value) {
            struct json_object *v = json_tokener_parse(override_value);
            assert_non_null(v);
            json_object_object_add(target, key, v);
        } else {
            json_object_object_del(target, key);
        }
    }
    snprintf(buf, sizeof(buf), "%s", molt_json_dump(o));
    json_object_put(o);
    return buf;
}

int tu_parse_command(const char *text, struct molt_command *cmd, struct molt_err *err)
{
    struct json_object *o = NULL;
    int rc = molt_json_parse(text, strlen(text), &o, err);

    if (rc == 0)
        rc = molt_command_parse(o, cmd, err);
    json_object_put(o);
    return rc;
}

/* An upgrade command: target to_version, applying build_version now. */
void tu_command(struct molt_command *cmd, const char *task_id, const char *to_version,
                const char *build_version)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"type\":\"upgrade\",\"taskId\":\"%s\",\"toVersion\":\"%s\","
             "\"requestTime\":1700000000000,\"expiresAt\":1700001800000,\"build\":{"
             "\"version\":\"%s\",\"url\":\"/builds/p.tar.gz\",\"size\":10,\"sha256\":\"%064d\","
             "\"statement\":\"e30K\",\"signature\":\"e30K\"}}",
             task_id, to_version, build_version, 0);
    assert_int_equal(molt_json_parse(text, strlen(text), &o, &err), 0);
    assert_int_equal(molt_command_parse(o, cmd, &err), 0);
    json_object_put(o);
}

void tu_read_final(const char *dir, const char *id, struct molt_report *r)
{
    char path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    char *text = NULL;
    size_t len;

    snprintf(path, sizeof(path), "%s/outbox/%s.json", dir, id);
    assert_int_equal(molt_fs_read_file(path, 65536, &text, &len, &err), 0);
    assert_int_equal(molt_json_parse(text, len, &o, &err), 0);
    assert_int_equal(molt_report_from_json(o, r, &err), 0);
    json_object_put(o);
    free(text);
}
