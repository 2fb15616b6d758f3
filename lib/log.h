/* log.h: one line per event, "LEVEL event key=value ...", to stderr (where
 * journald picks it up) or syslog. Callers never pass secrets. */
#ifndef MOLT_LOG_H
#define MOLT_LOG_H

#include "err.h"

enum molt_log_level { MOLT_LOG_ERROR, MOLT_LOG_WARN, MOLT_LOG_INFO, MOLT_LOG_DEBUG };

/* Process-wide logging settings: configuration, the one global state allowed. */
void molt_log_setup(const char *ident, enum molt_log_level level, int use_syslog);
int molt_log_level_parse(const char *name, enum molt_log_level *out);
int molt_log_enabled(enum molt_log_level level);
void molt_log(enum molt_log_level level, const char *event, const char *fmt, ...) MOLT_PRINTF(3, 4);

#define molt_log_error(ev, ...) molt_log(MOLT_LOG_ERROR, ev, __VA_ARGS__)
#define molt_log_warn(ev, ...) molt_log(MOLT_LOG_WARN, ev, __VA_ARGS__)
#define molt_log_info(ev, ...) molt_log(MOLT_LOG_INFO, ev, __VA_ARGS__)
#define molt_log_debug(ev, ...) molt_log(MOLT_LOG_DEBUG, ev, __VA_ARGS__)

#endif
