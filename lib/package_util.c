/* package_util.c: the small spelling and text helpers the package files share
 * (package_int.h). They live apart so that package.c, package_manifest.c,
 * package_tree.c and sign.c each depend on this file, not on one another in
 * a circle. */
#include "package_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "text.h"

int molt_pkg_is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

int molt_pkg_is_token(const char *s, size_t n)
{
    size_t len = strlen(s);

    if (len == 0 || len >= n)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    }
    return 1;
}

int molt_pkg_is_release(const char *s, size_t n)
{
    size_t len = strlen(s);

    if (len >= n)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && !strchr(".+_-", s[i]))
            return 0;
    }
    return 1;
}

int molt_pkg_only_fields(struct json_object *o, const char *const *allowed, const char *where,
                       struct molt_err *err)
{
    json_object_object_foreach(o, key, val)
    {
        size_t i = 0;

        (void)val;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            char shown[200];
            return molt_err_set(err, MOLT_E_PARSE, "%s: unknown field '%s'", where,
                                molt_text_shown(shown, sizeof(shown), key, 0));
        }
    }
    return 0;
}

int molt_pkg_text_line(const char *text, char **out, size_t *len, struct molt_err *err)
{
    if (!text || !(*out = malloc(strlen(text) + 2)))
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    *len = strlen(text) + 1;
    memcpy(*out, text, *len - 1);
    (*out)[*len - 1] = '\n';
    (*out)[*len] = '\0';
    return 0;
}
