/* test_outbox.c: agent/outbox.c: queued final reports, their order and
 * answers, entries moved aside, reports kept in memory, events sent once. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "json.h"
#include "log.h"
#include "outbox.h"

struct fake_server {
    long statuses[8];   /* answers in order; 0 = no reply (connection failure) */
    int n_calls;
    char sent[8][32];
};

static int fake_send(void *arg, const char *task_id, const char *body, size_t len, long *status,
                     struct molt_err *err)
{
    struct fake_server *s = arg;
    long st = s->statuses[s->n_calls];

    snprintf(s->sent[s->n_calls], sizeof(s->sent[0]), "%s", task_id);
    s->n_calls++;
    *status = st;
    if (st == 0)
        return molt_err_set(err, MOLT_E_NET, "connection refused");
    if (st != 200)
        return molt_err_set(err, st == 401 ? MOLT_E_AUTH : MOLT_E_HTTP, "HTTP %ld", st);
    return 0;
}

static void put_report(const char *dir, const char *id, int status)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;

    molt_report_init(&r, id, "20.2-100", status, MOLT_STAGE_COMMITTED);
    assert_int_equal(molt_outbox_put(dir, &r, &err), 0);
}

static void test_outbox(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct fake_server s = { .statuses = { 500, 0 } };
    struct stat st;

    tu_mkdtemp(tmp);
    snprintf(dir, sizeof(dir), "%s/outbox", tmp);
    assert_int_equal(molt_outbox_count(dir), 0);
    assert_int_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);   /* no dir: nothing */
    put_report(dir, "100", MOLT_TASK_SUCCEEDED);
    put_report(dir, "99", MOLT_TASK_FAILED);
    put_report(dir, "1000", MOLT_TASK_SUCCEEDED);
    assert_int_equal(molt_outbox_count(dir), 3);
    assert_true(molt_outbox_has(dir, "99"));
    assert_false(molt_outbox_has(dir, "98"));
    snprintf(path, sizeof(path), "%s/99.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A 500 keeps everything; the oldest task goes first. */
    assert_int_not_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);
    assert_int_equal(s.n_calls, 1);
    assert_string_equal(s.sent[0], "99");
    assert_int_equal(molt_outbox_count(dir), 3);
    /* No reply at all: kept too (as across a restart: the files are all there is). */
    assert_int_not_equal(molt_outbox_flush(dir, fake_send, &s, &err), 0);
    assert_int_equal(molt_outbox_count(dir), 3);

    /* 200, 404 and 409 are answers: each entry goes. */
    struct fake_server ok = { .statuses = { 200, 404, 409 } };
    assert_int_equal(molt_outbox_flush(dir, fake_send, &ok, &err), 0);
    assert_int_equal(ok.n_calls, 3);
    assert_string_equal(ok.sent[0], "99");
    assert_string_equal(ok.sent[1], "100");
    assert_string_equal(ok.sent[2], "1000");
    assert_int_equal(molt_outbox_count(dir), 0);

    /* A corrupt entry is moved aside, not sent, not lost; temp files are ignored. */
    tu_write(path, dir, "5.json", "{\"taskId\":\"5\",\"status\":");
    tu_write(path, dir, "6.json.tmp.abcdef", "junk");
    struct fake_server none = { .statuses = { 200 } };
    assert_int_equal(molt_outbox_flush(dir, fake_send, &none, &err), 0);
    assert_int_equal(none.n_calls, 0);
    snprintf(path, sizeof(path), "%s/5.json.bad", dir);
    assert_true(molt_fs_exists(path));
    tu_rmtree(tmp);
}

static void keep_report(struct molt_outbox_kept *k, const char *id, int status)
{
    struct molt_report r;

    molt_report_init(&r, id, "20.2-100", status, MOLT_STAGE_COMMITTED);
    molt_outbox_keep(k, &r);
}

/* Reports the outbox directory will not take are kept in memory and sent all
 * the same; once the directory takes files again they are filed there. */
static void test_outbox_kept(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_outbox_kept k;
    struct molt_report r;
    char id[16];

    (void)state;
    tu_mkdtemp(tmp);
    tu_write(path, tmp, "state", "a file where the state directory should be");
    snprintf(dir, sizeof(dir), "%s/state/outbox", tmp);
    molt_report_init(&r, "7", "20.2-100", MOLT_TASK_FAILED, MOLT_STAGE_VERIFYING);
    assert_int_not_equal(molt_outbox_put(dir, &r, &err), 0);

    molt_outbox_kept_init(&k);
    molt_outbox_keep(&k, &r);
    keep_report(&k, "5", MOLT_TASK_FAILED);
    keep_report(&k, "7", MOLT_TASK_SUCCEEDED);    /* replaces the first report of 7 */
    assert_int_equal(molt_outbox_kept_count(&k), 2);
    assert_true(molt_outbox_kept_has(&k, "7"));
    assert_true(molt_outbox_kept_has(&k, "5"));
    assert_false(molt_outbox_kept_has(&k, "6"));

    /* No reply: everything stays. Then 200 for 5 and a 500 for 7: only 7 stays. */
    struct fake_server down = { .statuses = { 0 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &down, &err), 0);
    assert_int_equal(down.n_calls, 1);
    assert_string_equal(down.sent[0], "5");
    assert_int_equal(molt_outbox_kept_count(&k), 2);
    struct fake_server half = { .statuses = { 200, 500 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &half, &err), 0);
    assert_int_equal(half.n_calls, 2);
    assert_string_equal(half.sent[1], "7");
    assert_int_equal(molt_outbox_kept_count(&k), 1);
    assert_true(molt_outbox_kept_has(&k, "7"));

    /* Full: the oldest report goes (with an error in the log). */
    for (int i = 0; i < MOLT_OUTBOX_KEPT_MAX; i++) {
        snprintf(id, sizeof(id), "%d", 100 + i);
        keep_report(&k, id, MOLT_TASK_SUCCEEDED);
    }
    assert_int_equal(molt_outbox_kept_count(&k), MOLT_OUTBOX_KEPT_MAX);
    assert_false(molt_outbox_kept_has(&k, "7"));

    /* The directory takes files again: all are filed, then sent from there. */
    assert_int_equal(unlink(path), 0);
    struct fake_server again = { .statuses = { 0 } };
    assert_int_not_equal(molt_outbox_flush_kept(&k, dir, fake_send, &again, &err), 0);
    assert_int_equal(molt_outbox_kept_count(&k), 0);
    assert_int_equal(molt_outbox_count(dir), MOLT_OUTBOX_KEPT_MAX);
    assert_int_equal(again.n_calls, 1);
    assert_string_equal(again.sent[0], "100");
    molt_outbox_kept_destroy(&k);
    tu_rmtree(tmp);
}

struct sent {
    int n;
    char ids[4][32];
};

static int send_ok(void *arg, const char *task_id, const char *body, size_t len, long *status,
                   struct molt_err *err)
{
    struct sent *s = arg;

    if (s->n < 4)
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", task_id);
    s->n++;
    *status = 200;
    return 0;
}

/* An outbox entry too large to be a report, or one that is not a regular
 * file, is moved aside like any corrupt entry; it used to fail the flush on
 * every attempt and so hold back every later entry for good. */
static void test_outbox_unreadable_entries_moved_aside(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_report r;
    struct sent s = {0};
    struct stat st;
    FILE *f;

    tu_mkdtemp(tmp);
    snprintf(dir, sizeof(dir), "%s/outbox", tmp);
    assert_int_equal(molt_fs_mkdir_p(dir, 0700, &err), 0);
    /* 7: larger than MOLT_OUTBOX_ENTRY_MAX; 8: a directory; 9: a valid report. */
    snprintf(path, sizeof(path), "%s/7.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < MOLT_OUTBOX_ENTRY_MAX + 1; i++)
        fputc(' ', f);
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof(path), "%s/8.json", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    molt_report_init(&r, "9", "20.2-100", MOLT_TASK_FAILED, MOLT_STAGE_VERIFYING);
    assert_int_equal(molt_outbox_put(dir, &r, &err), 0);
    assert_int_equal(molt_outbox_count(dir), 3);

    assert_int_equal(molt_outbox_flush(dir, send_ok, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "9");
    assert_int_equal(molt_outbox_count(dir), 0);
    snprintf(path, sizeof(path), "%s/7.json.bad", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, MOLT_OUTBOX_ENTRY_MAX + 1);
    snprintf(path, sizeof(path), "%s/8.json.bad", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    tu_rmtree(tmp);
}

static void make_event(struct molt_outbox_event *e, const char *task, int64_t at)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->task_id, sizeof(e->task_id), "%s", task);
    snprintf(e->type, sizeof(e->type), "rolled-back-after-commit");
    snprintf(e->from_version, sizeof(e->from_version), "20.2-100");
    snprintf(e->to_version, sizeof(e->to_version), "20.1-2749");
    snprintf(e->reason, sizeof(e->reason), "watch: 20.2-100 started 3 times");
    e->at_ms = at;
}

static int keep_none(void *arg, const char *task_id, int64_t at_ms)
{
    (void)arg;
    (void)task_id;
    (void)at_ms;
    return 0;
}

/* Events: queued once, retried until the server answers, then marked sent so
 * that raising the same event again (after a restart) queues nothing. */
static void test_outbox_events(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    struct molt_err err = MOLT_ERR_INIT;
    struct fake_server s = { .statuses = { 0, 200, 400 } };
    struct molt_outbox_event e;

    (void)state;
    tu_mkdtemp(tmp);
    snprintf(dir, sizeof(dir), "%s/outbox", tmp);
    assert_int_equal(molt_outbox_event_count(dir), 0);
    assert_int_equal(molt_outbox_flush_events(dir, fake_send, &s, &err), 0);
    make_event(&e, "12", 1700000000000LL);
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), 1);
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), 0); /* queued already */
    assert_int_equal(molt_outbox_event_count(dir), 1);
    assert_int_equal(molt_outbox_count(dir), 0); /* not a report */
    /* no reply: kept */
    assert_true(molt_outbox_flush_events(dir, fake_send, &s, &err) < 0);
    assert_int_equal(molt_outbox_event_count(dir), 1);
    /* 200: marked sent, never queued again */
    assert_int_equal(molt_outbox_flush_events(dir, fake_send, &s, &err), 0);
    assert_string_equal(s.sent[1], "12");
    assert_int_equal(molt_outbox_event_count(dir), 0);
    snprintf(path, sizeof(path), "%s/events/12-1700000000000.sent", dir);
    assert_true(molt_fs_exists(path));
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), 0);
    assert_int_equal(molt_outbox_event_count(dir), 0);
    /* another rollback of the same task is another event; 400 moves it aside */
    make_event(&e, "12", 1700000000001LL);
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), 1);
    assert_int_equal(molt_outbox_flush_events(dir, fake_send, &s, &err), 0);
    assert_int_equal(s.n_calls, 3);
    snprintf(path, sizeof(path), "%s/events/12-1700000000001.json.bad", dir);
    assert_true(molt_fs_exists(path));
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), 0);
    /* a bad key is refused */
    make_event(&e, "1x", 5);
    assert_int_equal(molt_outbox_put_event(dir, &e, &err), MOLT_E_INVAL);
    /* markers of events nothing raises any more are pruned */
    molt_outbox_prune_events(dir, keep_none, NULL);
    snprintf(path, sizeof(path), "%s/events/12-1700000000000.sent", dir);
    assert_false(molt_fs_exists(path));
    tu_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_outbox_kept),
        cmocka_unit_test(test_outbox_unreadable_entries_moved_aside),
        cmocka_unit_test(test_outbox_events),
    };

    molt_log_setup("test_outbox", MOLT_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
