/* watch.c: the health check repeated during the watch after a commit
 * (docs/upgrades.md section 5.5): with [install] health_command the new
 * version runs it every health_interval in a thread of its own, and a failure
 * has the stable installer roll back. */
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "health.h"
#include "host.h"
#include "journal.h"
#include "log.h"
#include "version.h"
#include "watch_events.h"

struct molt_watch {
    struct molt_agent *a;
    molt_watch_rollback_fn rollback;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

enum watch_phase { WATCH_NONE, WATCH_TRIAL, WATCH_ON };

/* Is this version on trial (the watch comes after its commit) or watched? */
static enum watch_phase phase(const char *state_dir, char *task_id, size_t n)
{
    const char *self = molt_version_self();
    struct molt_journal *j = malloc(sizeof(*j));
    enum watch_phase p = WATCH_NONE;

    if (!j)
        return WATCH_NONE;
    if (molt_watch_load_journal(state_dir, j) == 0) {
        if (molt_journal_trial_task(j, self))
            p = WATCH_TRIAL;
        else if (molt_journal_watching(j, molt_host_realtime_ms()) &&
                 strcmp(j->to_version, self) == 0)
            p = WATCH_ON;
        snprintf(task_id, n, "%s", j->task_id);
    }
    free(j);
    return p;
}

static int wanted(const struct molt_config *conf)
{
    return conf->install.health_command[0] && conf->install.watch_window_ms > 0;
}

/* Waits ms, or until stopped: returns 1 when stopped. */
static int watch_wait(struct molt_watch *w, int64_t ms)
{
    struct timespec until;
    int stop;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
        ;
    stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

/* One failed check ends the watch: the stable installer rolls back (the same
 * entry point a failed trial's check uses) and we restart into the old
 * version. Should that fail, launch's crash-loop watch remains. */
static void watch_failed(struct molt_watch *w, const char *task_id, const char *why)
{
    char reason[MOLT_HEALTH_REASON_MAX + 16], msg[400];

    snprintf(reason, sizeof(reason), "watch: %s", why);
    molt_log_warn("watch.health_failed", "task=%s reason=\"%s\" action=rollback", task_id, reason);
    if (w->rollback(w->a, task_id, reason, msg, sizeof(msg)) < 0) {
        molt_log_error("watch.rollback", "task=%s error=\"%s\"", task_id, msg);
        return;
    }
    molt_agent_request_exit(w->a, MOLT_EXIT_RESTART);
}

static void *watch_thread(void *arg)
{
    struct molt_watch *w = arg;
    struct molt_config *conf = malloc(sizeof(*conf));
    char task_id[MOLT_JOURNAL_TASK_MAX], why[MOLT_HEALTH_REASON_MAX];

    if (!conf)
        return NULL;
    for (;;) {
        molt_agent_config(w->a, conf);
        if (!wanted(conf) || watch_wait(w, conf->install.health_interval_ms))
            break;
        switch (phase(w->a->state_dir, task_id, sizeof(task_id))) {
        case WATCH_TRIAL:
            continue; /* the trial's own check comes first */
        case WATCH_NONE:
            goto out;
        case WATCH_ON:
            break;
        }
        conf->install.health_checks = 1; /* one run per interval */
        if (molt_health_run(conf, NULL, NULL, why, sizeof(why)) < 0) {
            watch_failed(w, task_id, why);
            break;
        }
    }
out:
    molt_log_debug("watch.health_end", "version=%s", molt_version_self());
    free(conf);
    return NULL;
}

struct molt_watch *molt_watch_start(struct molt_agent *a, molt_watch_rollback_fn rollback)
{
    char task_id[MOLT_JOURNAL_TASK_MAX];
    struct molt_config conf;
    struct molt_watch *w;

    molt_agent_config(a, &conf);
    if (!wanted(&conf) || phase(a->state_dir, task_id, sizeof(task_id)) == WATCH_NONE)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->a = a;
    w->rollback = rollback;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        molt_log_warn("watch.health", "error=\"cannot start a thread\" action=\"crash-loop watch "
                      "only\"");
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    molt_log_info("watch.health_start", "version=%s interval_ms=%lld", molt_version_self(),
                  (long long)conf.install.health_interval_ms);
    return w;
}

void molt_watch_stop(struct molt_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

