/* log.h: one line per event, "LEVEL event key=value ...", to stderr (where
 * journald picks it up) or syslog. Callers never pass secrets. */
#ifndef MOLT_LOG_H
#define MOLT_LOG_H

#include <stdint.h>

#include "err.h"

enum molt_log_level { MOLT_LOG_ERROR, MOLT_LOG_WARN, MOLT_LOG_INFO, MOLT_LOG_DEBUG };

/* Process-wide logging settings: configuration, the one global state allowed. */
void molt_log_setup(const char *ident, enum molt_log_level level, int use_syslog);
/* Sends every line that is enabled to sink instead (the upgrade worker hands
 * its lines to the agent, which logs them); NULL restores stderr/syslog. */
typedef void (*molt_log_sink_fn)(enum molt_log_level level, const char *event, const char *text,
                                 void *ctx);
void molt_log_set_sink(molt_log_sink_fn sink, void *ctx);
int molt_log_level_parse(const char *name, enum molt_log_level *out);
int molt_log_enabled(enum molt_log_level level);
void molt_log(enum molt_log_level level, const char *event, const char *fmt, ...) MOLT_PRINTF(3, 4);

/* A warning a peer can repeat at will (a refused reply) is held back: the
 * first of a kind is logged, then one every_ms at most, or when its reason
 * changes. Caller-owned state, zeroed to start. */
struct molt_log_limit {
    int64_t next_ms;
    unsigned long held;
    char last[96];
};
/* 1 when the line for reason should go out at now_ms; *held then says how many
 * were held back since the last one that went out. */
int molt_log_limit_pass(struct molt_log_limit *l, const char *reason, int64_t now_ms,
                        int64_t every_ms, unsigned long *held);

#define molt_log_error(ev, ...) molt_log(MOLT_LOG_ERROR, ev, __VA_ARGS__)
#define molt_log_warn(ev, ...) molt_log(MOLT_LOG_WARN, ev, __VA_ARGS__)
#define molt_log_info(ev, ...) molt_log(MOLT_LOG_INFO, ev, __VA_ARGS__)
#define molt_log_debug(ev, ...) molt_log(MOLT_LOG_DEBUG, ev, __VA_ARGS__)

#endif
