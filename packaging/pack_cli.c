/* pack_cli.c: molt-pack's error and usage messages and its number option
 * parser, shared by its command groups (pack_cli.h). */
#include "pack_cli.h"

#include <stdio.h>
#include <stdlib.h>

int molt_pack_fail(const char *group, const char *cmd, const struct molt_err *err)
{
    fprintf(stderr, "molt-pack: %s%s%s: %s\n", group, group[0] ? " " : "", cmd, err->msg);
    return 1;
}

int molt_pack_usage_error(const char *group, const char *what, const char *arg)
{
    fprintf(stderr, "molt-pack: %s%s%s%s\nTry 'molt-pack %s%s--help'.\n", group,
            group[0] ? ": " : "", what, arg ? arg : "", group, group[0] ? " " : "");
    return 2;
}

int molt_pack_number(const char *group, const char *opt, const char *s, long long min,
                     long long max, long long *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);

    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "molt-pack: %s%s%s: '%s' is not a number in %lld..%lld\n", group,
                group[0] ? ": " : "", opt, s, min, max);
        return 2;
    }
    *out = v;
    return 0;
}
