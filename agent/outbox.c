/* outbox.c: a directory of final reports, resent until acknowledged. */
#include "outbox.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "fs.h"
#include "json.h"
#include "log.h"

static int entry_path(char *out, size_t n, const char *dir, const char *task_id,
                      struct molt_err *err)
{
    char name[MOLT_TASK_ID_MAX + 8];

    if (!molt_task_id_valid(task_id))
        return molt_err_set(err, MOLT_E_INVAL, "outbox: bad task id");
    snprintf(name, sizeof(name), "%s.json", task_id);
    return molt_fs_join(out, n, dir, name, err);
}

int molt_outbox_put(const char *dir, const struct molt_report *r, struct molt_err *err)
{
    char path[PATH_MAX];
    struct json_object *o;
    const char *text;
    int rc;

    rc = entry_path(path, sizeof(path), dir, r->task_id, err);
    if (rc == 0)
        rc = molt_fs_mkdir_p(dir, 0700, err);
    if (rc < 0)
        return molt_err_prefix(err, "outbox");
    o = molt_report_to_json(r);
    text = molt_json_dump(o);
    rc = molt_fs_write_atomic(path, text, strlen(text), 0600, err);
    json_object_put(o);
    if (rc < 0)
        return molt_err_prefix(err, "outbox");
    return 0;
}

int molt_outbox_has(const char *dir, const char *task_id)
{
    char path[PATH_MAX];

    return entry_path(path, sizeof(path), dir, task_id, NULL) == 0 && molt_fs_exists(path);
}

/* "<digits>.json" and nothing else (temporary files and .bad entries are skipped). */
static int is_entry(const struct dirent *de)
{
    const char *dot = strrchr(de->d_name, '.');
    char id[MOLT_TASK_ID_MAX + 1];
    size_t n;

    if (!dot || strcmp(dot, ".json") != 0)
        return 0;
    n = (size_t)(dot - de->d_name);
    if (n == 0 || n > MOLT_TASK_ID_MAX)
        return 0;
    memcpy(id, de->d_name, n);
    id[n] = '\0';
    return molt_task_id_valid(id);
}

/* Task ids compare as numbers: shorter first, then by digits. */
static int by_task_id(const struct dirent **a, const struct dirent **b)
{
    size_t la = strlen((*a)->d_name), lb = strlen((*b)->d_name);

    return la != lb ? (la < lb ? -1 : 1) : strcmp((*a)->d_name, (*b)->d_name);
}

int molt_outbox_count(const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_entry, NULL);

    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return n < 0 ? 0 : n;
}

static void move_aside(const char *path, const char *why)
{
    char bad[PATH_MAX];

    snprintf(bad, sizeof(bad), "%s.bad", path);
    if (rename(path, bad) < 0)
        molt_log_error("outbox.bad", "file=%s error=\"%s\" rename=\"%s\"", path, why,
                       strerror(errno));
    else
        molt_log_error("outbox.bad", "file=%s error=\"%s\" moved_to=%s", path, why, bad);
}

/* Sends one report: 1 = the server has answered for good (200 recorded, 404
 * or 409 refused), <0 = keep it for a retry. */
static int send_report(const struct molt_report *r, const char *text, size_t len,
                       molt_outbox_send_fn send, void *arg, struct molt_err *err)
{
    long status = 0;
    int rc = send(arg, r->task_id, text, len, &status, err);

    if (status == 200) {
        molt_log_info("report.sent", "task=%s status=%d", r->task_id, r->status);
        return 1;
    }
    if (status == 404 || status == 409) {
        molt_log_warn("report.refused", "task=%s http=%ld error=\"%s\"", r->task_id, status,
                      err ? err->msg : "");
        return 1;
    }
    return rc < 0 ? rc : molt_err_set(err, MOLT_E_HTTP, "unexpected HTTP %ld", status);
}

/* Sends one entry; 1 = done with it (deleted or moved aside), <0 = keep it. */
static int send_entry(const char *dir, const char *name, molt_outbox_send_fn send, void *arg,
                      struct molt_err *err)
{
    char path[PATH_MAX], id[MOLT_TASK_ID_MAX + 1];
    struct json_object *o = NULL;
    struct molt_report r;
    char *text = NULL;
    size_t len = 0;
    int rc;

    snprintf(id, sizeof(id), "%.*s", (int)(strcspn(name, ".")), name);
    if ((rc = molt_fs_join(path, sizeof(path), dir, name, err)) < 0)
        return rc;
    rc = molt_fs_read_file(path, MOLT_OUTBOX_ENTRY_MAX, &text, &len, err);
    if (rc == MOLT_E_NOTFOUND)
        return 1;
    if (rc == MOLT_E_LIMIT || rc == MOLT_E_INVAL) {
        /* Too large or not a regular file: never an entry we wrote, and
         * retrying it would hold back every later entry for good. */
        move_aside(path, err && err->msg[0] ? err->msg : "not a report file");
        return 1;
    }
    if (rc < 0)
        return rc;
    if (molt_json_parse(text, len, &o, err) < 0 || molt_report_from_json(o, &r, err) < 0 ||
        strcmp(r.task_id, id) != 0) {
        move_aside(path, err && err->msg[0] ? err->msg : "task id does not match file name");
        rc = 1;
        goto out;
    }
    rc = send_report(&r, text, len, send, arg, err);
    if (rc == 1) /* acknowledged, not yet removed: a cut here sends it again */
        MOLT_FAULT_POINT("outbox.after_send");
    if (rc == 1 && unlink(path) < 0 && errno != ENOENT)
        rc = molt_err_errno(err, "outbox: remove %s", path);
    else if (rc == 1)
        molt_fs_fsync_dir(dir, NULL);
out:
    json_object_put(o);
    free(text);
    return rc;
}

int molt_outbox_flush(const char *dir, molt_outbox_send_fn send, void *arg, struct molt_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_entry, by_task_id);
    int rc = 0;

    if (n < 0)
        return errno == ENOENT ? 0 : molt_err_errno(err, "outbox: read %s", dir);
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            int r = send_entry(dir, list[i]->d_name, send, arg, err);
            if (r < 0)
                rc = molt_err_prefix(err, "report %.*s", (int)strcspn(list[i]->d_name, "."),
                                     list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

/* ---- reports kept in memory ----------------------------------------------- */

void molt_outbox_kept_init(struct molt_outbox_kept *k)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->mu, NULL);
}

void molt_outbox_kept_destroy(struct molt_outbox_kept *k)
{
    for (unsigned i = 0; i < k->n; i++)
        molt_log_error("report.lost", "task=%s status=%d reason=\"never written to the outbox, "
                       "not sent before the agent stopped\"", k->e[i].r.task_id,
                       k->e[i].r.status);
    k->n = 0;
    pthread_mutex_destroy(&k->mu);
}

static int kept_index(const struct molt_outbox_kept *k, const char *task_id)
{
    for (unsigned i = 0; i < k->n; i++) {
        if (strcmp(k->e[i].r.task_id, task_id) == 0)
            return (int)i;
    }
    return -1;
}

static void kept_remove_at(struct molt_outbox_kept *k, unsigned i)
{
    memmove(&k->e[i], &k->e[i + 1], (k->n - i - 1) * sizeof(k->e[0]));
    k->n--;
}

void molt_outbox_keep(struct molt_outbox_kept *k, const struct molt_report *r)
{
    int i;

    pthread_mutex_lock(&k->mu);
    i = kept_index(k, r->task_id);
    if (i >= 0) {
        kept_remove_at(k, (unsigned)i);
    } else if (k->n == MOLT_OUTBOX_KEPT_MAX) {
        molt_log_error("report.lost", "task=%s status=%d reason=\"more than %d reports kept "
                       "in memory\"", k->e[0].r.task_id, k->e[0].r.status, MOLT_OUTBOX_KEPT_MAX);
        kept_remove_at(k, 0);
    }
    k->e[k->n].r = *r;
    k->e[k->n].gen = ++k->next_gen;
    k->n++;
    pthread_mutex_unlock(&k->mu);
}

int molt_outbox_kept_has(struct molt_outbox_kept *k, const char *task_id)
{
    int found;

    pthread_mutex_lock(&k->mu);
    found = kept_index(k, task_id) >= 0;
    pthread_mutex_unlock(&k->mu);
    return found;
}

int molt_outbox_kept_count(struct molt_outbox_kept *k)
{
    int n;

    pthread_mutex_lock(&k->mu);
    n = (int)k->n;
    pthread_mutex_unlock(&k->mu);
    return n;
}

/* Copies the oldest kept entry into e; 0 when none is kept. */
static int kept_oldest(struct molt_outbox_kept *k, struct molt_outbox_kept_entry *e)
{
    int any;

    pthread_mutex_lock(&k->mu);
    any = k->n > 0;
    if (any)
        *e = k->e[0];
    pthread_mutex_unlock(&k->mu);
    return any;
}

/* Forgets e unless a later report of its task was kept meanwhile. */
static void kept_done(struct molt_outbox_kept *k, const struct molt_outbox_kept_entry *e)
{
    int i;

    pthread_mutex_lock(&k->mu);
    i = kept_index(k, e->r.task_id);
    if (i >= 0 && k->e[i].gen == e->gen)
        kept_remove_at(k, (unsigned)i);
    pthread_mutex_unlock(&k->mu);
}

static int send_kept(const struct molt_report *r, molt_outbox_send_fn send, void *arg,
                     struct molt_err *err)
{
    struct json_object *o = molt_report_to_json(r);
    const char *text = molt_json_dump(o);
    int rc = send_report(r, text, strlen(text), send, arg, err);

    json_object_put(o);
    return rc;
}

int molt_outbox_flush_kept(struct molt_outbox_kept *k, const char *dir, molt_outbox_send_fn send,
                           void *arg, struct molt_err *err)
{
    struct molt_outbox_kept_entry e;
    int filed = 0, rc;

    while (kept_oldest(k, &e)) {
        if (molt_outbox_put(dir, &e.r, NULL) == 0) {
            molt_log_info("report.filed", "task=%s dir=%s", e.r.task_id, dir);
            filed = 1;
        } else if ((rc = send_kept(&e.r, send, arg, err)) < 0) {
            return molt_err_prefix(err, "report %s (kept in memory)", e.r.task_id);
        }
        kept_done(k, &e);
    }
    return filed ? molt_outbox_flush(dir, send, arg, err) : 0;
}

/* ---- events ---------------------------------------------------------------- */

/* <dir>/events/<taskId>-<at><suffix>, creating the directory when asked. */
static int event_path(char *out, size_t n, const char *dir, const char *task_id, int64_t at_ms,
                      const char *suffix, struct molt_err *err)
{
    char name[MOLT_TASK_ID_MAX + 48];
    char edir[PATH_MAX];
    int rc;

    if (!molt_task_id_valid(task_id) || at_ms < 0)
        return molt_err_set(err, MOLT_E_INVAL, "outbox: bad event key");
    snprintf(name, sizeof(name), "%s-%lld%s", task_id, (long long)at_ms, suffix);
    if ((rc = molt_fs_join(edir, sizeof(edir), dir, MOLT_OUTBOX_EVENTS, err)) < 0)
        return rc;
    return molt_fs_join(out, n, edir, name, err);
}

static int event_known(const char *dir, const struct molt_outbox_event *e)
{
    static const char *const suffixes[] = {".json", ".sent", ".json.bad"};
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (event_path(path, sizeof(path), dir, e->task_id, e->at_ms, suffixes[i], NULL) == 0 &&
            molt_fs_exists(path))
            return 1;
    }
    return 0;
}

static struct json_object *event_json(const struct molt_outbox_event *e)
{
    struct json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    json_object_object_add(o, "taskId", json_object_new_string(e->task_id));
    json_object_object_add(o, "type", json_object_new_string(e->type));
    json_object_object_add(o, "fromVersion", json_object_new_string(e->from_version));
    json_object_object_add(o, "toVersion", json_object_new_string(e->to_version));
    json_object_object_add(o, "reason", json_object_new_string(e->reason));
    json_object_object_add(o, "at", json_object_new_int64(e->at_ms));
    return o;
}

int molt_outbox_put_event(const char *dir, const struct molt_outbox_event *e,
                          struct molt_err *err)
{
    char path[PATH_MAX], edir[PATH_MAX];
    struct json_object *o;
    const char *text;
    int rc;

    if ((rc = event_path(path, sizeof(path), dir, e->task_id, e->at_ms, ".json", err)) < 0 ||
        (rc = molt_fs_join(edir, sizeof(edir), dir, MOLT_OUTBOX_EVENTS, err)) < 0)
        return molt_err_prefix(err, "outbox");
    if (event_known(dir, e))
        return 0;
    if ((rc = molt_fs_mkdir_p(edir, 0700, err)) < 0)
        return molt_err_prefix(err, "outbox");
    o = event_json(e);
    if (!o)
        return molt_err_set(err, MOLT_E_NOMEM, "outbox: out of memory");
    text = molt_json_dump(o);
    rc = molt_fs_write_atomic(path, text, strlen(text), 0600, err);
    json_object_put(o);
    if (rc < 0)
        return molt_err_prefix(err, "outbox");
    molt_log_info("event.queued", "task=%s type=%s at=%lld", e->task_id, e->type,
                  (long long)e->at_ms);
    return 1;
}

/* "<digits>-<digits>.json" */
static int is_event_entry(const struct dirent *de)
{
    const char *dash = strchr(de->d_name, '-');
    const char *dot = strrchr(de->d_name, '.');
    size_t n;

    if (!dash || !dot || dot < dash || strcmp(dot, ".json") != 0)
        return 0;
    n = (size_t)(dash - de->d_name);
    if (n == 0 || n > MOLT_TASK_ID_MAX || dot == dash + 1)
        return 0;
    for (const char *p = de->d_name; p < dot; p++) {
        if (p != dash && (*p < '0' || *p > '9'))
            return 0;
    }
    return 1;
}

static int is_event_marker(const struct dirent *de)
{
    const char *dot = strrchr(de->d_name, '.');

    return dot && strcmp(dot, ".sent") == 0 && strchr(de->d_name, '-');
}

int molt_outbox_event_count(const char *dir)
{
    struct dirent **list = NULL;
    char edir[PATH_MAX];
    int n;

    if (molt_fs_join(edir, sizeof(edir), dir, MOLT_OUTBOX_EVENTS, NULL) < 0)
        return 0;
    n = scandir(edir, &list, is_event_entry, NULL);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return n < 0 ? 0 : n;
}

/* Sends one event file; 1 = done with it (marked sent or moved aside). */
static int send_event_entry(const char *edir, const char *name, molt_outbox_send_fn send,
                            void *arg, struct molt_err *err)
{
    char path[PATH_MAX], sent[PATH_MAX], id[MOLT_TASK_ID_MAX + 1];
    struct json_object *o = NULL;
    const char *tid = NULL;
    char *text = NULL;
    size_t len = 0;
    long status = 0;
    int rc;

    snprintf(id, sizeof(id), "%.*s", (int)strcspn(name, "-"), name);
    if ((rc = molt_fs_join(path, sizeof(path), edir, name, err)) < 0)
        return rc;
    snprintf(sent, sizeof(sent), "%.*s.sent", (int)(strlen(path) - 5), path);
    rc = molt_fs_read_file(path, MOLT_OUTBOX_ENTRY_MAX, &text, &len, err);
    if (rc == MOLT_E_NOTFOUND)
        return 1;
    if (rc == MOLT_E_LIMIT || rc == MOLT_E_INVAL) {
        move_aside(path, err && err->msg[0] ? err->msg : "not an event file");
        return 1;
    }
    if (rc < 0)
        return rc;
    if (molt_json_parse(text, len, &o, err) < 0 || molt_json_get_str(o, "taskId", &tid, err) < 0 ||
        strcmp(tid, id) != 0) {
        move_aside(path, "not an event of the task its name says");
        rc = 1;
        goto out;
    }
    rc = send(arg, id, text, len, &status, err);
    if (status == 200 || status == 404 || status == 409) {
        if (status == 200)
            molt_log_info("event.sent", "task=%s file=%s", id, name);
        else
            molt_log_warn("event.refused", "task=%s http=%ld error=\"%s\"", id, status,
                          err ? err->msg : "");
        /* Marked, not removed: the journal raises it again after a restart. */
        rc = rename(path, sent) < 0 ? molt_err_errno(err, "outbox: rename %s", path) : 1;
        if (rc == 1)
            molt_fs_fsync_dir(edir, NULL);
    } else if (status == 400) {
        move_aside(path, err && err->msg[0] ? err->msg : "refused by the server (400)");
        rc = 1;
    } else if (rc >= 0) {
        rc = molt_err_set(err, MOLT_E_HTTP, "unexpected HTTP %ld", status);
    }
out:
    json_object_put(o);
    free(text);
    return rc;
}

int molt_outbox_flush_events(const char *dir, molt_outbox_send_fn send, void *arg,
                             struct molt_err *err)
{
    struct dirent **list = NULL;
    char edir[PATH_MAX];
    int n, rc = 0;

    if ((rc = molt_fs_join(edir, sizeof(edir), dir, MOLT_OUTBOX_EVENTS, err)) < 0)
        return rc;
    n = scandir(edir, &list, is_event_entry, alphasort);
    if (n < 0)
        return errno == ENOENT ? 0 : molt_err_errno(err, "outbox: read %s", edir);
    for (int i = 0; i < n; i++) {
        if (rc == 0 && send_event_entry(edir, list[i]->d_name, send, arg, err) < 0)
            rc = molt_err_prefix(err, "event %s", list[i]->d_name);
        free(list[i]);
    }
    free(list);
    return rc;
}

void molt_outbox_prune_events(const char *dir, int (*keep)(void *arg, const char *task_id,
                                                           int64_t at_ms),
                              void *arg)
{
    struct dirent **list = NULL;
    char edir[PATH_MAX], path[PATH_MAX];
    int n;

    if (molt_fs_join(edir, sizeof(edir), dir, MOLT_OUTBOX_EVENTS, NULL) < 0)
        return;
    n = scandir(edir, &list, is_event_marker, NULL);
    for (int i = 0; i < n; i++) {
        char id[MOLT_TASK_ID_MAX + 1];
        const char *name = list[i]->d_name;
        long long at = strtoll(strchr(name, '-') + 1, NULL, 10);

        snprintf(id, sizeof(id), "%.*s", (int)strcspn(name, "-"), name);
        if (!keep(arg, id, at) && molt_fs_join(path, sizeof(path), edir, name, NULL) == 0)
            unlink(path);
        free(list[i]);
    }
    free(list);
}
