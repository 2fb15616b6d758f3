/* json.c: bounded parsing and type-checked field access over json-c. */
#include "json.h"

#include <string.h>

/* What json-c's strict mode lets through (checked on json-c 0.16, in
 * tests/unit/test_json.c): single-quoted strings, NaN and Infinity, "00" and
 * "-01", raw control characters in strings, "\u0000" in keys (cut short there)
 * and in strings, and integers outside int64 (saturated without a word). One
 * linear pass over the raw text of the document json-c accepted refuses those. */
struct scan {
    const char *buf;
    size_t len;
    size_t i;
    const char *key;          /* the last string followed by ':' */
    size_t key_len;
};

/* The key for a message: printable ASCII only, at most 64 bytes. */
static void key_name(const struct scan *s, char *out, size_t n)
{
    size_t j = 0;

    for (size_t k = 0; k < s->key_len && j + 1 < n && j < 64; k++) {
        unsigned char c = (unsigned char)s->key[k];
        out[j++] = c >= 0x20 && c < 0x7f && !strchr("'\"\\", c) ? (char)c : '?';
    }
    out[j] = '\0';
}

static int scan_string(struct scan *s, struct molt_err *err)
{
    size_t start = ++s->i;

    for (; s->i < s->len; s->i++) {
        unsigned char c = (unsigned char)s->buf[s->i];

        if (c < 0x20)
            return molt_err_set(err, MOLT_E_PARSE,
                                "JSON: control character 0x%02x in a string at offset %zu", c,
                                s->i);
        if (c == '\\') {
            if (s->i + 5 < s->len && s->buf[s->i + 1] == 'u' &&
                memcmp(s->buf + s->i + 2, "0000", 4) == 0)
                return molt_err_set(err, MOLT_E_PARSE,
                                    "JSON: NUL (\\u0000) in a string at offset %zu", s->i);
            s->i++;
            continue;
        }
        if (c == '"')
            break;
    }
    if (s->i >= s->len)
        return 0;    /* json-c names the truncation */
    size_t end = s->i++;
    size_t j = s->i;
    while (j < s->len && strchr(" \t\r\n", s->buf[j]) && s->buf[j] != '\0')
        j++;
    if (j < s->len && s->buf[j] == ':') {
        s->key = s->buf + start;
        s->key_len = end - start;
    }
    return 0;
}

/* An integer literal of n digits (no sign) fits int64 when it is not longer,
 * or as long and not larger, than the limit written out. */
static int fits_int64(const char *digits, size_t n, int negative)
{
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    size_t ln = strlen(limit);

    return n < ln || (n == ln && memcmp(digits, limit, ln) <= 0);
}

static int scan_number(struct scan *s, struct molt_err *err)
{
    size_t at = s->i, d;
    int negative = s->buf[s->i] == '-', integer = 1;
    char key[72];

    if (negative)
        s->i++;
    d = s->i;
    while (s->i < s->len && s->buf[s->i] >= '0' && s->buf[s->i] <= '9')
        s->i++;
    if (s->i - d > 1 && s->buf[d] == '0')
        return molt_err_set(err, MOLT_E_PARSE, "JSON: number with a leading zero at offset %zu",
                            at);
    while (s->i < s->len && strchr("0123456789.eE+-", s->buf[s->i]) && s->buf[s->i] != '\0') {
        integer = 0;
        s->i++;
    }
    if (integer && s->i > d && !fits_int64(s->buf + d, s->i - d, negative)) {
        key_name(s, key, sizeof(key));
        return molt_err_set(err, MOLT_E_PARSE, "JSON: field '%s': %.*s is outside int64", key,
                            (int)(s->i - at > 40 ? 40 : s->i - at), s->buf + at);
    }
    return 0;
}

static int scan_word(struct scan *s, struct molt_err *err)
{
    static const char *const words[] = { "true", "false", "null" };
    size_t at = s->i;

    while (s->i < s->len && ((s->buf[s->i] >= 'a' && s->buf[s->i] <= 'z') ||
                             (s->buf[s->i] >= 'A' && s->buf[s->i] <= 'Z')))
        s->i++;
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (s->i - at == strlen(words[k]) && memcmp(s->buf + at, words[k], s->i - at) == 0)
            return 0;
    }
    return molt_err_set(err, MOLT_E_PARSE, "JSON: unexpected '%.*s' at offset %zu",
                        (int)(s->i - at > 16 ? 16 : s->i - at), s->buf + at, at);
}

static int scan_strict(const char *buf, size_t len, struct molt_err *err)
{
    struct scan s = { .buf = buf, .len = len };
    int rc = 0;

    while (rc == 0 && s.i < len) {
        unsigned char c = (unsigned char)buf[s.i];

        if (c == '"')
            rc = scan_string(&s, err);
        else if (c == '-' || (c >= '0' && c <= '9'))
            rc = scan_number(&s, err);
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            rc = scan_word(&s, err);
        else if (c != '\0' && strchr(" \t\r\n{}[],:", c))
            s.i++;
        else
            rc = molt_err_set(err, MOLT_E_PARSE, "JSON: unexpected byte 0x%02x at offset %zu",
                              c, s.i);
    }
    return rc;
}

static size_t utf8_bad_at(const char *buf, size_t len);

int molt_json_parse(const char *buf, size_t len, struct json_object **out, struct molt_err *err)
{
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error jerr;
    size_t used, i_bad;
    int rc;

    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "JSON document too large");
    tok = json_tokener_new_ex(MOLT_JSON_MAX_DEPTH);
    if (!tok)
        return molt_err_set(err, MOLT_E_NOMEM, "JSON: out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
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
    /* Only whitespace may follow the document (strchr would also match the NUL). */
    for (size_t i = used; i < len; i++) {
        if (buf[i] == '\0' || !strchr(" \t\r\n", buf[i])) {
            json_object_put(obj);
            return molt_err_set(err, MOLT_E_PARSE, "JSON: trailing data at offset %zu", i);
        }
    }
    if ((rc = scan_strict(buf, used, err)) < 0) {
        json_object_put(obj);
        return rc;
    }
    /* json-c's UTF-8 check lets overlong forms and surrogates through, which
     * molt_json_dump would write back as '?': refused here, so what is read
     * is what is written. */
    if ((i_bad = utf8_bad_at(buf, used)) < used) {
        json_object_put(obj);
        return molt_err_set(err, MOLT_E_PARSE, "JSON: not UTF-8 at offset %zu", i_bad);
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

int molt_json_int_field(struct json_object *o, const char *key, int optional, int64_t min,
                        int64_t max, int64_t *out, struct molt_err *err)
{
    struct json_object *v;
    int64_t n;
    int rc = get_typed(o, key, json_type_int, optional, &v, err);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* molt_json_parse refused the literals json-c would saturate: n is exact. */
    n = json_object_get_int64(v);
    if (n < min || n > max)
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': %lld is not in %lld..%lld", key,
                            (long long)n, (long long)min, (long long)max);
    *out = n;
    return 1;
}

int molt_json_get_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err)
{
    int rc = molt_json_int_field(o, key, 0, INT64_MIN, INT64_MAX, out, err);

    return rc < 0 ? rc : 0;
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
    int rc = molt_json_int_field(o, key, 1, INT64_MIN, INT64_MAX, out, err);

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

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong form,
 * no surrogate, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned char lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned char lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

/* The offset of the first byte of buf that does not start a well-formed
 * UTF-8 sequence, len if none. */
static size_t utf8_bad_at(const char *buf, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char seq[5] = { 0 };
        size_t n;

        memcpy(seq, buf + i, len - i < 4 ? len - i : 4);
        if (!(n = utf8_seq(seq)) || n > len - i)
            return i;
        i += n;
    }
    return len;
}

/* json-c copies a string's bytes as they are, so a path or a message that is
 * not UTF-8 would make a document the strict parser refuses: a state file molt
 * could not read back. Such bytes become '?' (all JSON syntax is ASCII, so the
 * document stays what it was otherwise). */
const char *molt_json_dump(struct json_object *o)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    unsigned char *p = (unsigned char *)(uintptr_t)text;

    while (p && *p) {
        size_t n = utf8_seq(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
    return text;
}
