/* log.c: line-oriented event logging to stderr or syslog. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
    const char *ident;
    enum molt_log_level level;
    int use_syslog;
    molt_log_sink_fn sink;
    void *sink_ctx;
} log_conf = { "molt", MOLT_LOG_INFO, 0, NULL, NULL };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void molt_log_setup(const char *ident, enum molt_log_level level, int use_syslog)
{
    log_conf.ident = ident ? ident : "molt";
    log_conf.level = level;
    if (use_syslog && !log_conf.use_syslog)
        openlog(log_conf.ident, LOG_PID, LOG_DAEMON);
    log_conf.use_syslog = use_syslog;
}

void molt_log_set_sink(molt_log_sink_fn sink, void *ctx)
{
    log_conf.sink = sink;
    log_conf.sink_ctx = ctx;
}

int molt_log_level_parse(const char *name, enum molt_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum molt_log_level)i;
            return 0;
        }
    }
    return MOLT_E_INVAL;
}

int molt_log_enabled(enum molt_log_level level)
{
    return level <= log_conf.level;
}

static int syslog_priority(enum molt_log_level level)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    return prio[level];
}

void molt_log(enum molt_log_level level, const char *event, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (!molt_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (log_conf.sink) {
        log_conf.sink(level, event, line, log_conf.sink_ctx);
        return;
    }
    if (log_conf.use_syslog) {
        syslog(syslog_priority(level), "%s %s", event, line);
        return;
    }
    /* journald stamps lines itself; a terminal or file gets our own stamp. */
    if (getenv("JOURNAL_STREAM")) {
        fprintf(stderr, "%s %s %s\n", level_names[level], event, line);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s %s\n", stamp, ts.tv_nsec / 1000000L,
                log_conf.ident, (long)getpid(), level_names[level], event, line);
    }
    fflush(stderr);
}

int molt_log_limit_pass(struct molt_log_limit *l, const char *reason, int64_t now_ms,
                        int64_t every_ms, unsigned long *held)
{
    int same = strncmp(l->last, reason, sizeof(l->last) - 1) == 0;

    *held = 0;
    if (same && l->next_ms != 0 && now_ms < l->next_ms) {
        l->held++;
        return 0;
    }
    *held = l->held;
    l->held = 0;
    l->next_ms = now_ms + every_ms;
    if (l->next_ms == 0)
        l->next_ms = 1;
    snprintf(l->last, sizeof(l->last), "%s", reason);
    return 1;
}
