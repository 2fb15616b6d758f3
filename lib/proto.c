/* proto.c: validators of the values the programs exchange (proto.h). */
#include "proto.h"

#include <ctype.h>
#include <string.h>

#include "json.h"

int molt_task_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > MOLT_TASK_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

int molt_version_valid(const char *v)
{
    size_t n = v ? strlen(v) : 0;

    if (n == 0 || n > MOLT_VERSION_MAX || !isdigit((unsigned char)v[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '+' && c != '_')
            return 0;
    }
    return 1;
}

int molt_hb_interval_valid(int64_t ms)
{
    return ms >= MOLT_HB_INTERVAL_MIN_MS && ms <= MOLT_HB_INTERVAL_MAX_MS;
}

int molt_hb_interval_field(struct json_object *o, int64_t *ms, struct molt_err *err)
{
    return molt_json_int_field(o, "heartbeatIntervalMs", 1, MOLT_HB_INTERVAL_MIN_MS,
                               MOLT_HB_INTERVAL_MAX_MS, ms, err);
}
