/* err.c: formatting of struct molt_err messages. */
#define MOLT_ERR_IMPLEMENTATION /* the functions themselves, not err.h's analyzer macros */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Concatenates three strings into out, truncating silently: messages are
 * best effort, and a cut message is better than none. */
static void append(char *out, size_t n, const char *a, const char *b, const char *c)
{
    size_t used = 0;
    const char *parts[] = { a, b, c };

    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        if (len > n - 1 - used)
            len = n - 1 - used;
        memmove(out + used, parts[i], len);
        used += len;
    }
    out[used] = '\0';
}

/* The attribute lets the compiler check callers' formats and accept the va_list. */
MOLT_PRINTF(2, 0) static void vformat(struct molt_err *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int molt_err_set(struct molt_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vformat(err, fmt, ap);
    va_end(ap);
    return code;
}

int molt_err_errno(struct molt_err *err, const char *fmt, ...)
{
    int saved = errno;
    int code = (saved == ENOSPC || saved == EDQUOT) ? MOLT_E_NOSPC : MOLT_E_IO;
    size_t len;
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vformat(err, fmt, ap);
    va_end(ap);
    len = strlen(err->msg);
    append(err->msg + len, sizeof(err->msg) - len, ": ", strerror(saved), "");
    return code;
}

int molt_err_prefix(struct molt_err *err, const char *fmt, ...)
{
    char ctx[MOLT_ERR_MSG_MAX];
    char old[MOLT_ERR_MSG_MAX];
    va_list ap;

    if (!err)
        return MOLT_E_INVAL;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    append(err->msg, sizeof(err->msg), ctx, ": ", old);
    if (err->code == 0)
        err->code = MOLT_E_INVAL;
    return err->code;
}

void molt_err_clear(struct molt_err *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *molt_errc_name(int code)
{
    switch (code) {
    case MOLT_OK: return "ok";
    case MOLT_E_INVAL: return "invalid";
    case MOLT_E_IO: return "io";
    case MOLT_E_NOMEM: return "nomem";
    case MOLT_E_PARSE: return "parse";
    case MOLT_E_CONFIG: return "config";
    case MOLT_E_NET: return "network";
    case MOLT_E_HTTP: return "http";
    case MOLT_E_AUTH: return "auth";
    case MOLT_E_VERIFY: return "verify";
    case MOLT_E_NOSPC: return "nospace";
    case MOLT_E_STATE: return "state";
    case MOLT_E_BUSY: return "busy";
    case MOLT_E_NOTFOUND: return "notfound";
    case MOLT_E_CANCELLED: return "cancelled";
    case MOLT_E_TIMEOUT: return "timeout";
    case MOLT_E_LIMIT: return "limit";
    default: return "unknown";
    }
}
