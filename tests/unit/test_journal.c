/* test_journal.c: the upgrade journal: round trips, corrupt documents, and
 * every transition from every state (legal ones succeed, the others are
 * refused and change nothing). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "journal.h"

#define NOW 1700000000000LL

/* ---- states built through the API ---- */

enum {
    ST_IDLE,
    ST_SWITCHING,
    ST_TRIAL,
    ST_ROLLING_BACK,
    ST_COMMITTED,
    ST_ROLLED_BACK,
    ST_WATCHING, /* committed, inside its watch window */
    N_ST
};

#define WATCH_MS 600000

static void make_state(struct molt_journal *j, int st)
{
    struct molt_err err = MOLT_ERR_INIT;

    molt_journal_init(j);
    if (st == ST_IDLE)
        return;
    assert_int_equal(
        molt_journal_begin_switch(j, "12", "20.1-2749", "20.2-100", "20.0-1", NOW, &err), 0);
    if (st == ST_SWITCHING)
        return;
    assert_int_equal(molt_journal_begin_trial(j, NOW + 10, 120000, &err), 0);
    if (st == ST_TRIAL)
        return;
    if (st == ST_COMMITTED || st == ST_WATCHING) {
        assert_int_equal(molt_journal_commit(j, "12", NOW + 20, &err), 0);
        if (st == ST_WATCHING)
            assert_int_equal(molt_journal_watch(j, WATCH_MS, NOW + 20, &err), 0);
        return;
    }
    assert_int_equal(
        molt_journal_begin_rollback(j, "20.2-100 exited 3 times during trial", NOW + 20, &err), 0);
    if (st == ST_ROLLING_BACK)
        return;
    assert_int_equal(molt_journal_finish_rollback(j, NOW + 30, &err), 0);
}

static void assert_journal_equal(const struct molt_journal *a, const struct molt_journal *b)
{
    assert_int_equal(a->state, b->state);
    assert_string_equal(a->task_id, b->task_id);
    assert_string_equal(a->from_version, b->from_version);
    assert_string_equal(a->to_version, b->to_version);
    assert_string_equal(a->prev_version, b->prev_version);
    assert_int_equal(a->starts, b->starts);
    assert_int_equal(a->trial_started_ms, b->trial_started_ms);
    assert_int_equal(a->trial_deadline_ms, b->trial_deadline_ms);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->watch_until_ms, b->watch_until_ms);
    assert_int_equal(a->watch_starts, b->watch_starts);
    assert_int_equal(a->after_commit, b->after_commit);
    assert_int_equal(a->updated_ms, b->updated_ms);
    assert_int_equal(a->n_outcomes, b->n_outcomes);
    for (size_t i = 0; i < a->n_outcomes; i++) {
        assert_string_equal(a->outcomes[i].task_id, b->outcomes[i].task_id);
        assert_int_equal(a->outcomes[i].result, b->outcomes[i].result);
        assert_string_equal(a->outcomes[i].from_version, b->outcomes[i].from_version);
        assert_string_equal(a->outcomes[i].to_version, b->outcomes[i].to_version);
        assert_string_equal(a->outcomes[i].reason, b->outcomes[i].reason);
        assert_int_equal(a->outcomes[i].at_ms, b->outcomes[i].at_ms);
        assert_int_equal(a->outcomes[i].after_commit, b->outcomes[i].after_commit);
    }
}

static void roundtrip(const struct molt_journal *j)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal back;
    char *text = NULL;

    assert_int_equal(molt_journal_serialize(j, &text, &err), 0);
    assert_int_equal(molt_journal_parse(text, strlen(text), &back, &err), 0);
    assert_journal_equal(j, &back);
    free(text);
}

/* ---- round trips ---- */

static void test_roundtrip_every_state(void **state)
{
    struct molt_journal j;

    for (int st = 0; st < N_ST; st++) {
        make_state(&j, st);
        roundtrip(&j);
    }
}

static void test_roundtrip_full(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    /* Many tasks, a reason with quotes, newlines and non-ASCII, all fields set. */
    molt_journal_init(&j);
    for (int i = 0; i < 5; i++) {
        char task[16];
        snprintf(task, sizeof(task), "%d", 100 + i);
        assert_int_equal(molt_journal_begin_switch(&j, task, "1.0", "2.0", "0.9", NOW + i, &err),
                         0);
        assert_int_equal(molt_journal_begin_trial(&j, NOW + i, 5000, &err), 0);
        assert_int_equal(molt_journal_count_start(&j, NOW + i, &err), 0);
        if (i % 2) {
            assert_int_equal(molt_journal_commit(&j, task, NOW + i, &err), 0);
        } else {
            assert_int_equal(molt_journal_begin_rollback(&j, "said \"no\"\n\té/\\", NOW + i, &err),
                             0);
            assert_int_equal(molt_journal_finish_rollback(&j, NOW + i, &err), 0);
        }
    }
    assert_int_equal(j.n_outcomes, 5);
    roundtrip(&j);
}

static void test_save_load(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
    struct molt_journal j, back;
    struct stat st;

    tu_mkdtemp(dir);
    assert_int_equal(molt_journal_path(path, sizeof(path), dir, &err), 0);
    assert_non_null(strstr(path, "/journal.json"));
    /* missing: an idle journal, not an error */
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(molt_journal_load(path, &back, &err), 0);
    assert_int_equal(back.state, MOLT_JOURNAL_IDLE);
    assert_int_equal(back.n_outcomes, 0);

    make_state(&j, ST_TRIAL);
    assert_int_equal(molt_journal_count_start(&j, NOW + 40, &err), 0);
    assert_int_equal(molt_journal_save(path, &j, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(molt_journal_load(path, &back, &err), 0);
    assert_journal_equal(&j, &back);
    assert_int_equal(back.starts, 1);
    tu_rmtree(dir);
}

static void test_unknown_fields_ignored(void **state)
{
    static const char doc[] =
        "{\"format\":1,\"state\":\"idle\",\"taskId\":\"\",\"fromVersion\":\"\",\"toVersion\":\"\","
        "\"previousVersion\":\"\",\"starts\":0,\"trialStartedAt\":0,\"trialDeadline\":0,"
        "\"reason\":\"\",\"updatedAt\":5,\"outcomes\":[],\"addedLater\":{\"x\":[1,2]}}";
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), 0);
    assert_int_equal(j.state, MOLT_JOURNAL_IDLE);
    assert_int_equal(j.updated_ms, 5);
}

/* ---- corrupt documents ---- */

/* A valid trial document with one substitution applied. */
static char *trial_doc_with(const char *from, const char *to)
{
    static const char base[] =
        "{\"format\":1,\"state\":\"trial\",\"taskId\":\"12\",\"fromVersion\":\"20.1-2749\","
        "\"toVersion\":\"20.2-100\",\"previousVersion\":\"\",\"starts\":1,"
        "\"trialStartedAt\":1000,\"trialDeadline\":2000,\"reason\":\"\",\"updatedAt\":1000,"
        "\"outcomes\":[{\"taskId\":\"11\",\"result\":\"committed\",\"fromVersion\":\"20.0-1\","
        "\"toVersion\":\"20.1-2749\",\"reason\":\"\",\"at\":900}]}";
    const char *at = from ? strstr(base, from) : NULL;
    char *out = malloc(sizeof(base) + (to ? strlen(to) : 0) + 1);

    assert_non_null(out);
    if (!from) {
        strcpy(out, base);
        return out;
    }
    assert_non_null(at);
    sprintf(out, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return out;
}

static void test_corrupt_documents(void **state)
{
    static const char *const whole[] = {
        "", "{", "not json", "[]", "null", "42", "{\"format\":1}",
    };
    static const char *const subst[][2] = {
        {"\"format\":1", "\"format\":2"},
        {"\"format\":1", "\"format\":\"1\""},
        {"\"trial\"", "\"testing\""},
        {"\"state\":\"trial\"", "\"state\":7"},
        {"\"taskId\":\"12\"", "\"taskId\":\"12a\""},
        {"\"taskId\":\"12\"", "\"taskId\":12"},
        {"\"taskId\":\"12\"", "\"taskId\":\"\""},
        {"\"fromVersion\":\"20.1-2749\"", "\"fromVersion\":\"../../etc\""},
        {"\"toVersion\":\"20.2-100\"", "\"toVersion\":\"\""},
        {"\"toVersion\":\"20.2-100\"", "\"toVersion\":\"20.1-2749\""},
        {"\"starts\":1", "\"starts\":-1"},
        {"\"starts\":1", "\"starts\":1.5"},
        {"\"starts\":1,", ""},
        {"\"trialDeadline\":2000", "\"trialDeadline\":0"},
        {"\"reason\":\"\"", "\"reason\":null"},
        {"\"outcomes\":[", "\"outcomes\":{\"a\":["},
        {"\"result\":\"committed\"", "\"result\":\"maybe\""},
        {"\"at\":900", "\"at\":\"900\""},
        {"}]}", "}]} x"},
        {"}]}", "}]}{}"},
    };
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char *doc;

    /* the base document itself is fine */
    doc = trial_doc_with(NULL, NULL);
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), 0);
    assert_int_equal(j.state, MOLT_JOURNAL_TRIAL);
    free(doc);
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
        molt_err_clear(&err);
        assert_int_equal(molt_journal_parse(whole[i], strlen(whole[i]), &j, &err), MOLT_E_PARSE);
        assert_int_equal(j.state, MOLT_JOURNAL_IDLE);
        assert_non_null(strstr(err.msg, "journal"));
    }
    for (size_t i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
        doc = trial_doc_with(subst[i][0], subst[i][1]);
        molt_err_clear(&err);
        if (molt_journal_parse(doc, strlen(doc), &j, &err) != MOLT_E_PARSE)
            fail_msg("accepted corrupt journal #%zu: %s", i, doc);
        /* never a half-read journal */
        assert_int_equal(j.state, MOLT_JOURNAL_IDLE);
        assert_int_equal(j.n_outcomes, 0);
        assert_string_equal(j.task_id, "");
        free(doc);
    }
}

static void test_corrupt_limits(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char *doc, *big;
    size_t n;

    /* 17 outcomes: more than a journal ever holds */
    big = malloc(8192);
    assert_non_null(big);
    strcpy(big, "\"outcomes\":[");
    for (int i = 0; i < MOLT_JOURNAL_OUTCOMES + 1; i++)
        strcat(big, "{\"taskId\":\"1\",\"result\":\"committed\",\"fromVersion\":\"1\","
                    "\"toVersion\":\"2\",\"reason\":\"\",\"at\":1},");
    big[strlen(big) - 1] = '\0';
    strcat(big, ",{\"taskId\":\"11\"");
    doc = trial_doc_with("\"outcomes\":[{\"taskId\":\"11\"", big);
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "outcomes"));
    free(doc);
    free(big);
    /* larger than the file limit */
    n = MOLT_JOURNAL_MAX_BYTES + 10;
    big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[n] = '\0';
    big[0] = '{';
    big[n - 1] = '}';
    assert_int_equal(molt_journal_parse(big, n, &j, &err), MOLT_E_PARSE);
    free(big);
    /* a reason longer than the journal keeps */
    big = malloc(MOLT_JOURNAL_REASON_MAX + 40);
    assert_non_null(big);
    strcpy(big, "\"reason\":\"");
    memset(big + 10, 'r', MOLT_JOURNAL_REASON_MAX);
    strcpy(big + 10 + MOLT_JOURNAL_REASON_MAX, "\"");
    doc = trial_doc_with("\"reason\":\"\"", big);
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    free(doc);
    free(big);
}

static void test_load_corrupt_file(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
    struct molt_journal j;

    tu_mkdtemp(dir);
    tu_write(path, dir, "journal.json", "{\"format\":1,\"state\":\"tri");
    assert_int_equal(molt_journal_load(path, &j, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(j.state, MOLT_JOURNAL_IDLE);
    /* a directory where the file should be is not something we wrote either */
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(molt_journal_load(path, &j, &err), MOLT_E_PARSE);
    tu_rmtree(dir);
}

/* ---- transitions ---- */

enum {
    TR_SWITCH,
    TR_TRIAL,
    TR_START,
    TR_ROLLBACK,
    TR_REVERT,
    TR_FINISH,
    TR_COMMIT,
    TR_WATCH,
    TR_WATCH_START,
    TR_WATCH_ROLLBACK,
    TR_END_WATCH,
    N_TR
};

static const char *const tr_names[] = {
    "begin_switch", "begin_trial", "count_start",       "begin_rollback",
    "begin_revert", "finish_rollback", "commit",        "watch",
    "count_watch_start", "begin_watch_rollback", "end_watch"};

static int do_transition(struct molt_journal *j, int tr, struct molt_err *err)
{
    switch (tr) {
    case TR_SWITCH:
        return molt_journal_begin_switch(j, "13", "20.2-100", "20.3-1", "", NOW, err);
    case TR_TRIAL:
        return molt_journal_begin_trial(j, NOW + 50, 1000, err);
    case TR_START:
        return molt_journal_count_start(j, NOW + 60, err);
    case TR_ROLLBACK:
        return molt_journal_begin_rollback(j, "test", NOW + 70, err);
    case TR_REVERT:
        return molt_journal_begin_revert(j, "20.2-100", "20.1-2749", "manual rollback", NOW, err);
    case TR_FINISH:
        return molt_journal_finish_rollback(j, NOW + 80, err);
    case TR_COMMIT:
        return molt_journal_commit(j, NULL, NOW + 90, err);
    case TR_WATCH:
        return molt_journal_watch(j, 60000, NOW + 100, err);
    case TR_WATCH_START:
        return molt_journal_count_watch_start(j, NOW + 110, err);
    case TR_WATCH_ROLLBACK:
        return molt_journal_begin_watch_rollback(j, "watch: test", NOW + 120, err);
    case TR_END_WATCH:
        /* past the window of ST_WATCHING (and far from any other) */
        return molt_journal_end_watch(j, NOW + 20 + WATCH_MS, err);
    }
    return -1;
}

static void test_transition_matrix(void **state)
{
    /* legal[state][transition] */
    static const int legal[N_ST][N_TR] = {
        [ST_IDLE] = {[TR_SWITCH] = 1, [TR_REVERT] = 1},
        [ST_SWITCHING] = {[TR_TRIAL] = 1, [TR_ROLLBACK] = 1},
        [ST_TRIAL] = {[TR_START] = 1, [TR_ROLLBACK] = 1, [TR_COMMIT] = 1},
        [ST_ROLLING_BACK] = {[TR_FINISH] = 1},
        [ST_COMMITTED] = {[TR_SWITCH] = 1, [TR_REVERT] = 1, [TR_WATCH] = 1},
        [ST_ROLLED_BACK] = {[TR_SWITCH] = 1, [TR_REVERT] = 1},
        [ST_WATCHING] = {[TR_SWITCH] = 1, [TR_REVERT] = 1, [TR_WATCH] = 1, [TR_WATCH_START] = 1,
                         [TR_WATCH_ROLLBACK] = 1, [TR_END_WATCH] = 1},
    };
    static const enum molt_journal_state after[N_TR] = {
        [TR_SWITCH] = MOLT_JOURNAL_SWITCHING,    [TR_TRIAL] = MOLT_JOURNAL_TRIAL,
        [TR_START] = MOLT_JOURNAL_TRIAL,         [TR_ROLLBACK] = MOLT_JOURNAL_ROLLING_BACK,
        [TR_REVERT] = MOLT_JOURNAL_ROLLING_BACK, [TR_FINISH] = MOLT_JOURNAL_ROLLED_BACK,
        [TR_COMMIT] = MOLT_JOURNAL_COMMITTED,    [TR_WATCH] = MOLT_JOURNAL_COMMITTED,
        [TR_WATCH_START] = MOLT_JOURNAL_COMMITTED, [TR_WATCH_ROLLBACK] = MOLT_JOURNAL_ROLLING_BACK,
        [TR_END_WATCH] = MOLT_JOURNAL_COMMITTED,
    };
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j, before;

    for (int st = 0; st < N_ST; st++) {
        for (int tr = 0; tr < N_TR; tr++) {
            int rc;
            make_state(&j, st);
            before = j;
            molt_err_clear(&err);
            rc = do_transition(&j, tr, &err);
            if (legal[st][tr]) {
                if (rc != 0)
                    fail_msg("%s from %s refused: %s", tr_names[tr],
                             molt_journal_state_name(before.state), err.msg);
                assert_int_equal(j.state, after[tr]);
                roundtrip(&j);
            } else {
                if (rc != MOLT_E_STATE)
                    fail_msg("%s from %s: got %d, expected MOLT_E_STATE", tr_names[tr],
                             molt_journal_state_name(before.state), rc);
                assert_journal_equal(&j, &before);
                assert_non_null(strstr(err.msg, "cannot"));
            }
        }
    }
}

static void test_upgrade_then_commit(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    const struct molt_journal_outcome *o;
    struct molt_journal j;
    char msg[600];

    make_state(&j, ST_TRIAL);
    assert_string_equal(j.task_id, "12");
    assert_int_equal(j.trial_started_ms, NOW + 10);
    assert_int_equal(j.trial_deadline_ms, NOW + 10 + 120000);
    assert_int_equal(j.starts, 0);
    /* the new agent learns it is on trial, the old one is not */
    assert_string_equal(molt_journal_trial_task(&j, "20.2-100"), "12");
    assert_null(molt_journal_trial_task(&j, "20.1-2749"));
    assert_int_equal(molt_journal_in_progress(&j), 1);
    assert_int_equal(molt_journal_count_start(&j, NOW + 11, &err), 0);
    assert_int_equal(j.starts, 1);
    /* a commit for another task is refused */
    assert_int_equal(molt_journal_commit(&j, "13", NOW + 12, &err), MOLT_E_STATE);
    assert_non_null(strstr(err.msg, "trial is for task 12"));
    assert_int_equal(molt_journal_commit(&j, "12", NOW + 12, &err), 0);
    assert_int_equal(j.state, MOLT_JOURNAL_COMMITTED);
    assert_int_equal(molt_journal_in_progress(&j), 0);
    assert_null(molt_journal_trial_task(&j, "20.2-100"));
    o = molt_journal_find_outcome(&j, "12");
    assert_non_null(o);
    assert_int_equal(o->result, MOLT_JOURNAL_RESULT_COMMITTED);
    assert_string_equal(o->from_version, "20.1-2749");
    assert_string_equal(o->to_version, "20.2-100");
    assert_int_equal(o->at_ms, NOW + 12);
    molt_journal_outcome_message(o, msg, sizeof(msg));
    assert_string_equal(msg, "committed 20.2-100");
    assert_null(molt_journal_find_outcome(&j, "13"));
}

static void test_rollback_outcome(void **state)
{
    const struct molt_journal_outcome *o;
    struct molt_journal j;
    char msg[600];

    make_state(&j, ST_ROLLED_BACK);
    assert_string_equal(j.from_version, "20.1-2749");
    assert_string_equal(j.prev_version, "20.0-1");
    o = molt_journal_find_outcome(&j, "12");
    assert_non_null(o);
    assert_int_equal(o->result, MOLT_JOURNAL_RESULT_ROLLED_BACK);
    molt_journal_outcome_message(o, msg, sizeof(msg));
    /* what the old agent reports, after "health-check: " */
    assert_string_equal(msg, "rolled back: 20.2-100 exited 3 times during trial");
}

/* The watch after a commit: starts counted in the window, a crash loop rolls
 * back to where a failed trial would, with the outcome marked after_commit;
 * the window's end closes it; a new switch supersedes it. */
static void test_watch(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    const struct molt_journal_outcome *o;
    struct molt_journal j;
    char reason[MOLT_JOURNAL_REASON_MAX];
    int64_t t = NOW + 30;

    make_state(&j, ST_WATCHING);
    assert_int_equal(j.watch_until_ms, NOW + 20 + WATCH_MS);
    assert_true(molt_journal_watching(&j, t));
    assert_false(molt_journal_watching(&j, NOW + 20 + WATCH_MS));
    assert_false(molt_journal_watch_over(&j, t));
    assert_true(molt_journal_watch_over(&j, NOW + 20 + WATCH_MS));
    assert_int_equal(molt_journal_in_progress(&j), 0); /* at rest: gc and apply may run */
    for (int i = 1; i <= 3; i++) {
        assert_false(molt_journal_watch_failed(&j, t, 3, reason, sizeof(reason)));
        assert_int_equal(molt_journal_count_watch_start(&j, t, &err), 0);
        assert_int_equal(j.watch_starts, i);
        roundtrip(&j);
    }
    /* past the window nothing fails and no start is counted */
    assert_false(molt_journal_watch_failed(&j, NOW + 20 + WATCH_MS, 3, reason, sizeof(reason)));
    assert_int_equal(molt_journal_count_watch_start(&j, NOW + 20 + WATCH_MS, &err), MOLT_E_STATE);
    assert_true(molt_journal_watch_failed(&j, t, 3, reason, sizeof(reason)));
    assert_string_equal(reason, "watch: 20.2-100 started 3 times within 10 min of its commit");
    assert_int_equal(molt_journal_begin_watch_rollback(&j, reason, t, &err), 0);
    assert_int_equal(j.state, MOLT_JOURNAL_ROLLING_BACK);
    assert_string_equal(j.from_version, "20.1-2749");
    assert_string_equal(j.prev_version, "20.0-1");
    assert_int_equal(j.after_commit, 1);
    roundtrip(&j);
    assert_int_equal(molt_journal_finish_rollback(&j, t + 1, &err), 0);
    assert_int_equal(j.after_commit, 0);
    assert_int_equal(j.watch_until_ms, 0);
    o = molt_journal_find_outcome(&j, "12");
    assert_non_null(o);
    assert_int_equal(o->result, MOLT_JOURNAL_RESULT_ROLLED_BACK);
    assert_int_equal(o->after_commit, 1);
    assert_string_equal(o->reason, reason);
    /* the commit's outcome stays behind it, unmarked */
    assert_int_equal(j.outcomes[1].result, MOLT_JOURNAL_RESULT_COMMITTED);
    assert_int_equal(j.outcomes[1].after_commit, 0);
    roundtrip(&j);

    /* the window ends: closed, and the watch rollback is refused */
    make_state(&j, ST_WATCHING);
    assert_int_equal(molt_journal_begin_watch_rollback(&j, "x", NOW + 20 + WATCH_MS, &err),
                     MOLT_E_STATE);
    assert_int_equal(molt_journal_end_watch(&j, NOW + 20 + WATCH_MS, &err), 0);
    assert_int_equal(j.watch_until_ms, 0);
    assert_false(molt_journal_watching(&j, t));
    assert_int_equal(molt_journal_end_watch(&j, NOW + 20 + WATCH_MS, &err), MOLT_E_STATE);
    /* a zero window is no watch */
    make_state(&j, ST_COMMITTED);
    assert_int_equal(molt_journal_watch(&j, 0, NOW, &err), 0);
    assert_false(molt_journal_watching(&j, NOW));
    assert_int_equal(molt_journal_watch(&j, -1, NOW, &err), MOLT_E_INVAL);
    /* a new switch supersedes the watch */
    make_state(&j, ST_WATCHING);
    assert_int_equal(molt_journal_begin_switch(&j, "13", "20.2-100", "20.3-1", "20.1-2749", t,
                                               &err), 0);
    assert_int_equal(j.watch_until_ms, 0);
}

/* Fields a format-1 parser may meet or not: absent is no watch; present
 * outside their states is corrupt; an older parser ignores them (unknown). */
static void test_watch_fields(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char *doc;

    doc = trial_doc_with(NULL, NULL);
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), 0);
    assert_int_equal(j.watch_until_ms, 0);
    assert_int_equal(j.outcomes[0].after_commit, 0);
    free(doc);
    doc = trial_doc_with("\"updatedAt\"", "\"watchUntil\":5,\"updatedAt\"");
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "state trial with a watchUntil"));
    free(doc);
    doc = trial_doc_with("\"updatedAt\"", "\"afterCommit\":true,\"updatedAt\"");
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    assert_non_null(strstr(err.msg, "afterCommit"));
    free(doc);
    doc = trial_doc_with("\"updatedAt\"", "\"watchStarts\":-1,\"updatedAt\"");
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    free(doc);
    doc = trial_doc_with("\"at\":900", "\"at\":900,\"afterCommit\":\"yes\"");
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), MOLT_E_PARSE);
    free(doc);
    doc = trial_doc_with("\"at\":900", "\"at\":900,\"afterCommit\":true");
    assert_int_equal(molt_journal_parse(doc, strlen(doc), &j, &err), 0);
    assert_int_equal(j.outcomes[0].after_commit, 1);
    free(doc);
}

/* The agent's clean-exit marker: taken once, only for the version it names. */
static void test_clean_exit_marker(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    (void)state;
    tu_mkdtemp(dir);
    assert_int_equal(molt_journal_take_clean_exit(dir, "20.2-100"), 0);
    assert_int_equal(molt_journal_mark_clean_exit(dir, "20.2-100", &err), 0);
    assert_int_equal(molt_journal_take_clean_exit(dir, "20.2-100"), 1);
    assert_int_equal(molt_journal_take_clean_exit(dir, "20.2-100"), 0); /* one start only */
    assert_int_equal(molt_journal_mark_clean_exit(dir, "20.1-2749", &err), 0);
    assert_int_equal(molt_journal_take_clean_exit(dir, "20.2-100"), 0); /* another version's */
    assert_int_equal(molt_journal_take_clean_exit(dir, "20.1-2749"), 0); /* and removed */
    tu_rmtree(dir);
}

static void test_commit_after_deadline(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    make_state(&j, ST_TRIAL);
    assert_int_equal(molt_journal_commit(&j, "12", j.trial_deadline_ms, &err), MOLT_E_STATE);
    assert_non_null(strstr(err.msg, "deadline"));
    assert_int_equal(j.state, MOLT_JOURNAL_TRIAL);
    assert_int_equal(molt_journal_commit(&j, NULL, j.trial_deadline_ms - 1, &err), 0);
}

static void test_trial_verdict(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char reason[256];

    make_state(&j, ST_TRIAL);
    reason[0] = '\0';
    assert_int_equal(molt_journal_trial_failed(&j, NOW + 20, 3, reason, sizeof(reason)), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(molt_journal_count_start(&j, NOW + 20, &err), 0);
    assert_int_equal(molt_journal_trial_failed(&j, NOW + 20, 4, reason, sizeof(reason)), 0);
    assert_int_equal(molt_journal_trial_failed(&j, NOW + 20, 3, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "20.2-100 exited 3 times during trial");
    /* a passed deadline is the reason that ended the trial, whatever the count */
    assert_int_equal(molt_journal_trial_failed(&j, j.trial_deadline_ms, 3, reason, sizeof(reason)),
                     1);
    assert_string_equal(reason, "20.2-100 did not commit within 120 s of the switch");
    make_state(&j, ST_TRIAL);
    assert_int_equal(
        molt_journal_trial_failed(&j, j.trial_deadline_ms + 1, 3, reason, sizeof(reason)), 1);
    assert_non_null(strstr(reason, "did not commit"));
    /* outside a trial there is nothing to fail */
    make_state(&j, ST_COMMITTED);
    assert_int_equal(molt_journal_trial_failed(&j, NOW * 2, 0, reason, sizeof(reason)), 0);
}

static void test_switch_validation(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    molt_journal_init(&j);
    assert_int_equal(molt_journal_begin_switch(&j, "12a", "1.0", "2.0", "", NOW, &err),
                     MOLT_E_INVAL);
    assert_int_equal(molt_journal_begin_switch(&j, "", "1.0", "2.0", "", NOW, &err), MOLT_E_INVAL);
    assert_int_equal(molt_journal_begin_switch(&j, "1", "1.0", "../2", "", NOW, &err),
                     MOLT_E_INVAL);
    assert_int_equal(molt_journal_begin_switch(&j, "1", "1.0", "2.0", "x y", NOW, &err),
                     MOLT_E_INVAL);
    assert_int_equal(molt_journal_begin_switch(&j, "1", "2.0", "2.0", "", NOW, &err), MOLT_E_STATE);
    assert_int_equal(j.state, MOLT_JOURNAL_IDLE);
    assert_int_equal(molt_journal_begin_switch(&j, "1", "1.0", "2.0", "", NOW, &err), 0);
    assert_int_equal(molt_journal_begin_trial(&j, NOW, 0, &err), MOLT_E_INVAL);
    assert_int_equal(j.state, MOLT_JOURNAL_SWITCHING);
}

static void test_revert(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    const struct molt_journal_outcome *o;
    struct molt_journal j;

    make_state(&j, ST_COMMITTED);
    assert_int_equal(molt_journal_begin_revert(&j, "20.2-100", "", "x", NOW, &err), MOLT_E_STATE);
    assert_non_null(strstr(err.msg, "no previous"));
    assert_int_equal(molt_journal_begin_revert(&j, "20.2-100", "20.2-100", "x", NOW, &err),
                     MOLT_E_STATE);
    assert_int_equal(j.state, MOLT_JOURNAL_COMMITTED);
    assert_int_equal(
        molt_journal_begin_revert(&j, "20.2-100", "20.1-2749", "manual rollback", NOW + 100, &err),
        0);
    /* back to previous; the version left becomes previous */
    assert_string_equal(j.task_id, "");
    assert_string_equal(j.from_version, "20.1-2749");
    assert_string_equal(j.to_version, "20.2-100");
    assert_string_equal(j.prev_version, "20.2-100");
    roundtrip(&j);
    assert_int_equal(molt_journal_finish_rollback(&j, NOW + 101, &err), 0);
    o = molt_journal_find_outcome(&j, "");
    assert_non_null(o);
    assert_string_equal(o->reason, "manual rollback");
    /* the task's own outcome is still there */
    o = molt_journal_find_outcome(&j, "12");
    assert_non_null(o);
    assert_int_equal(o->result, MOLT_JOURNAL_RESULT_COMMITTED);
    roundtrip(&j);
}

static void test_outcomes_bounded(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;

    molt_journal_init(&j);
    for (int i = 0; i < MOLT_JOURNAL_OUTCOMES + 5; i++) {
        char task[16];
        snprintf(task, sizeof(task), "%d", i);
        assert_int_equal(molt_journal_begin_switch(&j, task, "1.0", "2.0", "", NOW, &err), 0);
        assert_int_equal(molt_journal_begin_trial(&j, NOW, 1000, &err), 0);
        assert_int_equal(molt_journal_commit(&j, task, NOW + i, &err), 0);
    }
    assert_int_equal(j.n_outcomes, MOLT_JOURNAL_OUTCOMES);
    /* newest first; the oldest fell off */
    assert_string_equal(j.outcomes[0].task_id, "20");
    assert_string_equal(j.outcomes[MOLT_JOURNAL_OUTCOMES - 1].task_id, "5");
    assert_null(molt_journal_find_outcome(&j, "4"));
    roundtrip(&j);
}

static void test_long_reason_cut(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j;
    char reason[2000];

    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    make_state(&j, ST_TRIAL);
    assert_int_equal(molt_journal_begin_rollback(&j, reason, NOW, &err), 0);
    assert_int_equal(strlen(j.reason), MOLT_JOURNAL_REASON_MAX - 1);
    assert_int_equal(molt_journal_finish_rollback(&j, NOW, &err), 0);
    roundtrip(&j);
}

static void test_names(void **state)
{
    enum molt_journal_state s;

    for (int st = MOLT_JOURNAL_IDLE; st <= MOLT_JOURNAL_ROLLED_BACK; st++) {
        assert_int_equal(molt_journal_state_parse(molt_journal_state_name(st), &s), 0);
        assert_int_equal(s, st);
    }
    assert_int_equal(molt_journal_state_parse("bogus", &s), MOLT_E_INVAL);
    assert_int_equal(molt_task_id_valid("0123456789"), 1);
    assert_int_equal(molt_task_id_valid(""), 0);
    assert_int_equal(molt_task_id_valid("-1"), 0);
    assert_int_equal(molt_task_id_valid("123456789012345678901"), 0);
    assert_int_equal(molt_task_id_valid("12345678901234567890"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_state),
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_corrupt_documents),
        cmocka_unit_test(test_corrupt_limits),
        cmocka_unit_test(test_load_corrupt_file),
        cmocka_unit_test(test_transition_matrix),
        cmocka_unit_test(test_upgrade_then_commit),
        cmocka_unit_test(test_rollback_outcome),
        cmocka_unit_test(test_commit_after_deadline),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_watch_fields),
        cmocka_unit_test(test_clean_exit_marker),
        cmocka_unit_test(test_trial_verdict),
        cmocka_unit_test(test_switch_validation),
        cmocka_unit_test(test_revert),
        cmocka_unit_test(test_outcomes_bounded),
        cmocka_unit_test(test_long_reason_cut),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
