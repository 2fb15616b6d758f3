/* watch.c: the health check repeated during the watch after a commit,
 * after-commit rollbacks turned into events for the control plane, and the
 * test builds' crash-after-commit fault. */
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "fault.h" /* MOLT_FAULT_POINTS */
#include "health.h"
#include "host.h"
#include "journal.h"
#include "log.h"
#include "outbox.h"
#include "upgrade.h"
#include "version.h"

#define MOLT_WATCH_CRASH_MS 30000

static int load_journal(const char *state_dir, struct molt_journal *j)
{
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];

    if (molt_journal_path(path, sizeof(path), state_dir, &err) < 0 ||
        molt_journal_load(path, j, &err) < 0) {
        molt_log_warn("watch.journal", "error=\"%s\"", err.msg);
        return -1;
    }
    return 0;
}

/* ---- the health watch ---- */

struct molt_watch {
    struct molt_agent *a;
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
    if (load_journal(state_dir, j) == 0) {
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
    const char *args[] = {"rollback", "--task", task_id, "--reason", reason, NULL};

    snprintf(reason, sizeof(reason), "watch: %s", why);
    molt_log_warn("watch.health_failed", "task=%s reason=\"%s\" action=rollback", task_id, reason);
    if (molt_upgrade_installer(w->a, args, msg, sizeof(msg)) < 0) {
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

struct molt_watch *molt_watch_start(struct molt_agent *a)
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

/* ---- events ---- */

/* Is (task_id, at) still an after-commit rollback in the journal? */
static int in_journal(void *arg, const char *task_id, int64_t at_ms)
{
    const struct molt_journal *j = arg;

    for (size_t i = 0; i < j->n_outcomes; i++) {
        const struct molt_journal_outcome *o = &j->outcomes[i];
        if (o->after_commit && o->at_ms == at_ms && strcmp(o->task_id, task_id) == 0)
            return 1;
    }
    return 0;
}

void molt_watch_queue_events(const char *state_dir, const char *outbox_dir)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal *j = malloc(sizeof(*j));

    if (!j)
        return;
    if (load_journal(state_dir, j) < 0)
        goto out;
    for (size_t i = 0; i < j->n_outcomes; i++) {
        const struct molt_journal_outcome *o = &j->outcomes[i];
        struct molt_outbox_event e;

        /* A manual revert has no task: nothing on the server to attach it to. */
        if (!o->after_commit || !o->task_id[0])
            continue;
        memset(&e, 0, sizeof(e));
        snprintf(e.task_id, sizeof(e.task_id), "%s", o->task_id);
        snprintf(e.type, sizeof(e.type), "%s", MOLT_EVENT_ROLLED_BACK_AFTER_COMMIT);
        /* The outcome describes the switch; the event, the way back. */
        snprintf(e.from_version, sizeof(e.from_version), "%s", o->to_version);
        snprintf(e.to_version, sizeof(e.to_version), "%s", o->from_version);
        snprintf(e.reason, sizeof(e.reason), "%s", o->reason);
        e.at_ms = o->at_ms;
        if (molt_outbox_put_event(outbox_dir, &e, &err) < 0) {
            molt_log_error("event.queue", "task=%s error=\"%s\"", e.task_id, err.msg);
            molt_err_clear(&err);
        }
    }
    molt_outbox_prune_events(outbox_dir, in_journal, j);
out:
    free(j);
}

void molt_watch_fault_tick(const char *state_dir)
{
#ifdef MOLT_FAULT_POINTS
    const char *list = getenv("MOLT_FAULT");
    const struct molt_journal_outcome *o;
    struct molt_journal *j;

    if (!list || !strstr(list, "agent.watch_crash"))
        return;
    j = malloc(sizeof(*j));
    if (!j)
        return;
    if (load_journal(state_dir, j) == 0 &&
        molt_journal_watching(j, molt_host_realtime_ms()) &&
        strcmp(j->to_version, molt_version_self()) == 0 &&
        (o = molt_journal_find_outcome(j, j->task_id)) != NULL &&
        o->result == MOLT_JOURNAL_RESULT_COMMITTED &&
        molt_host_realtime_ms() - o->at_ms >= MOLT_WATCH_CRASH_MS) {
        /* Not MOLT_FAULT_POINT: it must fire in every start (a crash loop),
         * also when MOLT_FAULT_ONCE_DIR makes the other points fire once. */
        molt_log_warn("fault.kill", "point=agent.watch_crash action=kill");
        kill(getpid(), SIGKILL);
    }
    free(j);
#else
    (void)state_dir;
#endif
}
