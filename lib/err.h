/* err.h: the one error type of molt. A fallible function returns 0 or a
 * negative MOLT_E_* code and fills a struct molt_err; each caller adds its own
 * context with molt_err_prefix(), so a message reads outermost first:
 * "apply: move staged build: rename: No space left on device". */
#ifndef MOLT_ERR_H
#define MOLT_ERR_H

#include <stddef.h>

enum molt_errc {
    MOLT_OK = 0,
    MOLT_E_INVAL = -1,     /* bad argument or input */
    MOLT_E_IO = -2,        /* system call failed */
    MOLT_E_NOMEM = -3,
    MOLT_E_PARSE = -4,     /* malformed document */
    MOLT_E_CONFIG = -5,
    MOLT_E_NET = -6,       /* connection, TLS, timeout */
    MOLT_E_HTTP = -7,      /* server answered with an error status */
    MOLT_E_AUTH = -8,      /* credentials or token rejected */
    MOLT_E_VERIFY = -9,    /* signature, hash or manifest check failed */
    MOLT_E_NOSPC = -10,
    MOLT_E_STATE = -11,    /* operation not valid in the current state */
    MOLT_E_BUSY = -12,     /* lock held by another process */
    MOLT_E_NOTFOUND = -13,
    MOLT_E_CANCELLED = -14,
    MOLT_E_TIMEOUT = -15,
    MOLT_E_LIMIT = -16,    /* a size, count or depth limit was exceeded */
};

#define MOLT_ERR_MSG_MAX 512

struct molt_err {
    int code;
    char msg[MOLT_ERR_MSG_MAX];
};

#define MOLT_ERR_INIT { 0, "" }

#if defined(__GNUC__)
#define MOLT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MOLT_PRINTF(a, b)
#endif

/* Sets the message and returns code, so "return molt_err_set(...)" reads well.
 * err may be NULL. */
int molt_err_set(struct molt_err *err, int code, const char *fmt, ...) MOLT_PRINTF(3, 4);
/* Like molt_err_set, appending ": strerror(errno)"; the code is MOLT_E_NOSPC for
 * ENOSPC/EDQUOT and MOLT_E_IO otherwise. Reads errno before anything else. */
int molt_err_errno(struct molt_err *err, const char *fmt, ...) MOLT_PRINTF(2, 3);
/* Prepends "context: " to the message; returns the stored code. */
int molt_err_prefix(struct molt_err *err, const char *fmt, ...) MOLT_PRINTF(2, 3);
void molt_err_clear(struct molt_err *err);
const char *molt_errc_name(int code);

/* For the static analyzers (scan-build, clang-tidy's clang-analyzer checks),
 * which do not look into err.c: the three functions above return a negative
 * code, so "if ((rc = f()) < 0) return rc;" is followed as it runs instead of
 * as if an error could return 0. No effect on compiled code. */
#if defined(__clang_analyzer__) && !defined(MOLT_ERR_IMPLEMENTATION)
#define molt_err_set(err, code, ...)                                                               \
    __extension__({                                                                                \
        int molt_rc_ = molt_err_set((err), (code), __VA_ARGS__);                                   \
        molt_rc_ < 0 ? molt_rc_ : MOLT_E_INVAL;                                                    \
    })
#define molt_err_errno(...)                                                                        \
    __extension__({                                                                                \
        int molt_rc_ = molt_err_errno(__VA_ARGS__);                                                \
        molt_rc_ < 0 ? molt_rc_ : MOLT_E_IO;                                                       \
    })
#define molt_err_prefix(...)                                                                       \
    __extension__({                                                                                \
        int molt_rc_ = molt_err_prefix(__VA_ARGS__);                                               \
        molt_rc_ < 0 ? molt_rc_ : MOLT_E_INVAL;                                                    \
    })
#endif

#endif
