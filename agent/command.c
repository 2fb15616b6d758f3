/* command.c: strict validation of upgrade and cancel commands. */
#include "command.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "sign.h"
#include "text.h"
#include "version.h"

_Static_assert(MOLT_BUILD_SIG_MAX == MOLT_PKG_SIG_MAX, "a command carries any .sig file");
_Static_assert(MOLT_COMMAND_REPLY_MAX > MOLT_BASE64_LEN(MOLT_BUILD_BLOB_MAX) +
                                            MOLT_BASE64_LEN(MOLT_BUILD_SIG_MAX) +
                                            (MOLT_BUILD_SOURCES_MAX * (MOLT_BUILD_URL_MAX + 4)) + 1024,
               "the largest valid command fits a heartbeat reply");

const char *molt_command_type_name(enum molt_command_type t)
{
    return t == MOLT_CMD_UPGRADE ? "upgrade" : t == MOLT_CMD_CANCEL ? "cancel" : "unknown";
}

static int get_version(struct json_object *o, const char *key, char *out, struct molt_err *err)
{
    const char *s;
    int rc = molt_json_get_str(o, key, &s, err);

    if (rc < 0)
        return rc;
    if (!molt_version_valid(s))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': not a version", key);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int get_time(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    int rc = molt_json_int_field(o, key, 0, MOLT_TIME_MIN_MS, MOLT_TIME_MAX_MS, out, err);

    return rc < 0 ? rc : 0;
}

static int check_url(const char *url, struct molt_err *err)
{
    size_t n = strlen(url);

    if (n == 0 || n > MOLT_BUILD_URL_MAX)
        return molt_err_set(err, MOLT_E_PARSE, "field 'url': empty or too long");
    if (!molt_text_all_visible_ascii(url, n))
        return molt_err_set(err, MOLT_E_PARSE, "field 'url': space or control character");
    if (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0)
        return 0;    /* the scheme and host rules are checked again when downloading */
    if (url[0] == '/' && url[1] != '/')
        return 0;
    return molt_err_set(err, MOLT_E_PARSE, "field 'url': neither an http(s) URL nor a path");
}

/* One entry of downloadUrls. Stricter than url: https only, absolute, with a
 * host and no user:password@ (which libcurl would send, and logs would show). */
static int check_mirror(struct json_object *v, int i, char out[MOLT_BUILD_URL_MAX + 1],
                        struct molt_err *err)
{
    const char *url, *auth;
    size_t n, alen;

    if (!json_object_is_type(v, json_type_string))
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': not a string", i);
    url = json_object_get_string(v);
    n = strlen(url);
    if (n == 0 || n > MOLT_BUILD_URL_MAX)
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': empty or longer than "
                            "%d bytes", i, MOLT_BUILD_URL_MAX);
    if (!molt_text_all_visible_ascii(url, n))
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': space or control "
                            "character", i);
    if (strncasecmp(url, "https://", 8) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': not an https:// URL",
                            i);
    auth = url + 8;
    alen = strcspn(auth, "/?#");
    if (alen == 0 || auth[0] == ':')
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': no host", i);
    if (memchr(auth, '@', alen))
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls[%d]': credentials in the "
                            "URL", i);
    memcpy(out, url, n + 1);
    return 0;
}

int molt_build_mirrors_parse(struct json_object *o, struct molt_build *b, struct molt_err *err)
{
    struct json_object *list;
    size_t n;
    int rc;

    b->n_mirrors = 0;
    if (!json_object_object_get_ex(o, "downloadUrls", &list))
        return 0;
    if (!json_object_is_type(list, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls': not an array");
    n = json_object_array_length(list);
    if (n > MOLT_BUILD_MIRRORS_MAX)
        return molt_err_set(err, MOLT_E_PARSE, "field 'downloadUrls': %zu URLs, at most %d", n,
                            MOLT_BUILD_MIRRORS_MAX);
    for (size_t i = 0; i < n; i++) {
        rc = check_mirror(json_object_array_get_idx(list, i), (int)i, b->mirrors[i], err);
        if (rc < 0) {
            b->n_mirrors = 0;   /* all or nothing */
            return rc;
        }
    }
    b->n_mirrors = (int)n;
    return 0;
}

int molt_build_sources(const struct molt_build *b, const char *out[MOLT_BUILD_SOURCES_MAX])
{
    const char *all[MOLT_BUILD_SOURCES_MAX];
    int n = 0, count = 0;

    for (int i = 0; i < b->n_mirrors && i < MOLT_BUILD_MIRRORS_MAX; i++)
        all[n++] = b->mirrors[i];
    all[n++] = b->url;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < count && !seen; j++)
            seen = strcmp(out[j], all[i]) == 0;
        if (!seen)
            out[count++] = all[i];
    }
    return count;
}

static int parse_sha256(struct json_object *o, char out[65], struct molt_err *err)
{
    const char *s;
    int rc = molt_json_get_str(o, "sha256", &s, err);

    if (rc < 0)
        return rc;
    if (strlen(s) != 64)
        return molt_err_set(err, MOLT_E_PARSE, "field 'sha256': expected 64 hex digits");
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return molt_err_set(err, MOLT_E_PARSE, "field 'sha256': expected 64 hex digits");
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return 0;
}

int molt_delta_ref_parse(struct json_object *o, struct molt_delta_ref *d, struct molt_err *err)
{
    const char *url;
    int rc;

    if ((rc = get_version(o, "baseVersion", d->base_version, err)) < 0 ||
        (rc = molt_json_get_str(o, "url", &url, err)) < 0 || (rc = check_url(url, err)) < 0 ||
        (rc = molt_json_int_field(o, "size", 0, 1, MOLT_BUILD_MAX_SIZE, &d->size, err)) < 0 ||
        (rc = parse_sha256(o, d->sha256, err)) < 0)
        return rc;
    memcpy(d->url, url, strlen(url) + 1);
    d->present = 1;
    return 0;
}

struct json_object *molt_delta_ref_to_json(const struct molt_delta_ref *d)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "baseVersion", json_object_new_string(d->base_version));
    json_object_object_add(o, "url", json_object_new_string(d->url));
    json_object_object_add(o, "size", json_object_new_int64(d->size));
    json_object_object_add(o, "sha256", json_object_new_string(d->sha256));
    return o;
}

static int parse_build(struct json_object *o, struct molt_build *b, struct molt_err *err)
{
    struct json_object *delta = NULL;
    const char *url;
    int rc;

    if ((rc = get_version(o, "version", b->version, err)) < 0 ||
        (rc = molt_json_get_str(o, "url", &url, err)) < 0 || (rc = check_url(url, err)) < 0 ||
        (rc = molt_json_int_field(o, "size", 0, 1, MOLT_BUILD_MAX_SIZE, &b->size, err)) < 0)
        return rc;
    memcpy(b->url, url, strlen(url) + 1);
    if ((rc = parse_sha256(o, b->sha256, err)) < 0 ||
        (rc = molt_base64_field(o, "statement", MOLT_BUILD_BLOB_MAX, &b->statement,
                                &b->statement_len, err)) < 0 ||
        (rc = molt_base64_field(o, "signature", MOLT_BUILD_SIG_MAX, &b->signature,
                                &b->signature_len, err)) < 0 ||
        (rc = molt_build_mirrors_parse(o, b, err)) < 0)
        return rc;
    if ((rc = molt_json_opt_obj(o, "delta", &delta, err)) < 0)
        return rc;
    if (delta && molt_delta_ref_parse(delta, &b->delta, err) < 0)
        return molt_err_prefix(err, "delta");
    return 0;
}

static int parse_upgrade(struct json_object *o, struct molt_command *cmd, struct molt_err *err)
{
    struct json_object *build;
    int rc;

    if ((rc = get_version(o, "toVersion", cmd->to_version, err)) < 0 ||
        (rc = get_time(o, "requestTime", &cmd->request_time, err)) < 0 ||
        (rc = get_time(o, "expiresAt", &cmd->expires_at, err)) < 0)
        return rc;
    if (cmd->expires_at <= cmd->request_time ||
        cmd->expires_at - cmd->request_time > MOLT_COMMAND_MAX_LIFETIME_MS)
        return molt_err_set(err, MOLT_E_PARSE, "field 'expiresAt': not within 7 days after "
                                               "requestTime");
    /* The server may only slow a download: the host's cap still bounds it. */
    rc = molt_json_int_field(o, "maxBytesPerSecond", 1, MOLT_RATE_MIN_BPS, MOLT_RATE_MAX_BPS,
                             &cmd->max_rate, err);
    if (rc < 0)
        return rc;
    if ((rc = molt_json_get_obj(o, "build", &build, err)) < 0)
        return rc;
    rc = parse_build(build, &cmd->build, err);
    if (rc < 0)
        molt_err_prefix(err, "build");
    return rc;
}

int molt_command_parse(struct json_object *o, struct molt_command *cmd, struct molt_err *err)
{
    const char *type, *id;
    int rc;

    memset(cmd, 0, sizeof(*cmd));
    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "command: not an object");
    if ((rc = molt_json_get_str(o, "type", &type, err)) < 0 ||
        (rc = molt_json_get_str(o, "taskId", &id, err)) < 0)
        goto fail;
    if (!molt_task_id_valid(id)) {
        rc = molt_err_set(err, MOLT_E_PARSE, "field 'taskId': expected 1..%d digits",
                          MOLT_TASK_ID_MAX);
        goto fail;
    }
    memcpy(cmd->task_id, id, strlen(id) + 1);
    if (strcmp(type, "cancel") == 0) {
        cmd->type = MOLT_CMD_CANCEL;
        return 0;
    }
    if (strcmp(type, "upgrade") != 0) {
        rc = molt_err_set(err, MOLT_E_PARSE, "field 'type': unknown command type");
        goto fail;
    }
    cmd->type = MOLT_CMD_UPGRADE;
    rc = parse_upgrade(o, cmd, err);
    if (rc == 0)
        return 0;
fail:
    molt_command_free(cmd);
    molt_err_prefix(err, "command");
    return rc;
}

static unsigned char *dup_blob(const unsigned char *p, size_t n)
{
    unsigned char *q = malloc(n + 1);

    if (q) {
        memcpy(q, p, n);
        q[n] = '\0';
    }
    return q;
}

int molt_command_copy(struct molt_command *dst, const struct molt_command *src,
                      struct molt_err *err)
{
    *dst = *src;
    dst->build.statement = NULL;
    dst->build.signature = NULL;
    if (src->build.statement &&
        !(dst->build.statement = dup_blob(src->build.statement, src->build.statement_len)))
        goto nomem;
    if (src->build.signature &&
        !(dst->build.signature = dup_blob(src->build.signature, src->build.signature_len)))
        goto nomem;
    return 0;
nomem:
    molt_command_free(dst);
    return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
}

void molt_command_free(struct molt_command *cmd)
{
    free(cmd->build.statement);
    free(cmd->build.signature);
    cmd->build.statement = NULL;
    cmd->build.signature = NULL;
    cmd->build.statement_len = 0;
    cmd->build.signature_len = 0;
}
