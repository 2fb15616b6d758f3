/* json.c: bounded parsing and type-checked field access over json-c. */
#include "json.h"

#include <string.h>

int molt_json_parse(const char *buf, size_t len, struct json_object **out, struct molt_err *err)
{
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error jerr;
    size_t used;

    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "JSON document too large");
    tok = json_tokener_new_ex(MOLT_JSON_MAX_DEPTH);
    if (!tok)
        return molt_err_set(err, MOLT_E_NOMEM, "JSON: out of memory");
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!obj || jerr != json_tokener_success) {
        json_object_put(obj);
        if (jerr == json_tokener_continue)
            return molt_err_set(err, MOLT_E_PARSE, "JSON: truncated document");
        return molt_err_set(err, MOLT_E_PARSE, "JSON: %s at offset %zu",
                            json_tokener_error_desc(jerr), used);
    }
    /* Only whitespace may follow the document. */
    for (size_t i = used; i < len; i++) {
        if (!strchr(" \t\r\n", buf[i])) {
            json_object_put(obj);
            return molt_err_set(err, MOLT_E_PARSE, "JSON: trailing data at offset %zu", i);
        }
    }
    *out = obj;
    return 0;
}

static int get_typed(struct json_object *o, const char *key, enum json_type type, int optional,
                     struct json_object **out, struct molt_err *err)
{
    static const char *const names[] = { "null", "boolean", "number", "number", "object",
                                         "array", "string" };
    struct json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "'%s': parent is not an object", key);
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
        if (optional)
            return 1;
        return molt_err_set(err, MOLT_E_PARSE, "missing field '%s'", key);
    }
    if (type == json_type_int
            ? !json_object_is_type(v, json_type_int)
            : !json_object_is_type(v, type))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': expected %s", key,
                            type == json_type_int ? "integer" : names[type]);
    *out = v;
    return 0;
}

int molt_json_get_obj(struct json_object *o, const char *key, struct json_object **out,
                      struct molt_err *err)
{
    return get_typed(o, key, json_type_object, 0, out, err);
}

/* A string with an escaped NUL ("\u0000") would be read cut short as a C
 * string: a value other than the one sent. Refused. */
static int string_of(struct json_object *v, const char *key, const char **out,
                     struct molt_err *err)
{
    const char *s = json_object_get_string(v);

    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': contains a NUL character", key);
    *out = s;
    return 0;
}

int molt_json_get_str(struct json_object *o, const char *key, const char **out,
                      struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_string, 0, &v, err);

    if (rc == 0)
        rc = string_of(v, key, out, err);
    return rc;
}

int molt_json_get_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_int, 0, &v, err);

    if (rc == 0)
        *out = json_object_get_int64(v);
    return rc;
}

int molt_json_get_bool(struct json_object *o, const char *key, int *out, struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_boolean, 0, &v, err);

    if (rc == 0)
        *out = json_object_get_boolean(v);
    return rc;
}

int molt_json_opt_str(struct json_object *o, const char *key, const char **out,
                      struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_string, 1, &v, err);

    if (rc == 0)
        rc = string_of(v, key, out, err);
    return rc < 0 ? rc : 0;
}

int molt_json_opt_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_int, 1, &v, err);

    if (rc == 0)
        *out = json_object_get_int64(v);
    return rc < 0 ? rc : 0;
}

int molt_json_opt_bool(struct json_object *o, const char *key, int *out, struct molt_err *err)
{
    struct json_object *v;
    int rc = get_typed(o, key, json_type_boolean, 1, &v, err);

    if (rc == 0)
        *out = json_object_get_boolean(v);
    return rc < 0 ? rc : 0;
}

int molt_json_opt_obj(struct json_object *o, const char *key, struct json_object **out,
                      struct molt_err *err)
{
    int rc = get_typed(o, key, json_type_object, 1, out, err);

    return rc < 0 ? rc : 0;
}

int molt_json_copy_str(struct json_object *o, const char *key, char *out, size_t n,
                       struct molt_err *err)
{
    const char *s = NULL;
    int rc = molt_json_get_str(o, key, &s, err);

    if (rc < 0)
        return rc;
    if (strlen(s) >= n)
        return molt_err_set(err, MOLT_E_LIMIT, "field '%s': longer than %zu bytes", key, n - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

const char *molt_json_dump(struct json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}
