/* test_resume.c: agent/resume.c: what an agent does after a restart, for each
 * combination of saved stage, journal and running version that leads to a
 * different action. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "journal.h"
#include "report.h"
#include "resume.h"
#include "upgrade_state.h"

#define OLD "20.1-1"
#define NEW "20.2-100"

/* Task 42, accepted while OLD ran, applying NEW, saved at stage. */
static void saved(struct molt_upgrade_state *t, const char *stage)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->task_id, sizeof(t->task_id), "42");
    snprintf(t->to_version, sizeof(t->to_version), NEW);
    snprintf(t->from_version, sizeof(t->from_version), OLD);
    snprintf(t->build.version, sizeof(t->build.version), NEW);
    snprintf(t->stage, sizeof(t->stage), "%s", stage);
}

static void outcome(struct molt_journal *j, const char *task_id, enum molt_journal_result res,
                    const char *to, const char *reason)
{
    struct molt_journal_outcome *o = &j->outcomes[j->n_outcomes++];

    snprintf(o->task_id, sizeof(o->task_id), "%s", task_id);
    o->result = res;
    snprintf(o->from_version, sizeof(o->from_version), OLD);
    snprintf(o->to_version, sizeof(o->to_version), "%s", to);
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static void journal_in(struct molt_journal *j, enum molt_journal_state state, const char *task_id)
{
    molt_journal_init(j);
    j->state = state;
    snprintf(j->task_id, sizeof(j->task_id), "%s", task_id);
    snprintf(j->from_version, sizeof(j->from_version), OLD);
    snprintf(j->to_version, sizeof(j->to_version), NEW);
}

/* Before the switch the journal is not needed: the task carries on. */
static void test_resume_before_switch(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "downloading");
    molt_resume_decide(&t, NULL, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_CONTINUE);
    assert_int_equal(d.stage, MOLT_STAGE_DOWNLOADING);
    /* Whatever the journal says. */
    journal_in(&j, MOLT_JOURNAL_ROLLED_BACK, "42");
    molt_resume_decide(&t, &j, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_CONTINUE);
    /* Waiting for a switch window: staged, not switched; it carries on (the
     * window is checked again, the download is complete). */
    saved(&t, "waiting");
    molt_resume_decide(&t, NULL, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_CONTINUE);
    assert_int_equal(d.stage, MOLT_STAGE_STAGING);
    /* A stage name it does not know counts as accepted. */
    saved(&t, "bogus");
    molt_resume_decide(&t, NULL, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_CONTINUE);
    assert_int_equal(d.stage, MOLT_STAGE_ACCEPTED);
}

/* From the switch on, without a journal: it is asked for. */
static void test_resume_needs_journal(void **state)
{
    static const char *const stages[] = { "switching", "restarting", "health-check",
                                          "committed" };
    struct molt_upgrade_state t;
    struct molt_resume d;

    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        saved(&t, stages[i]);
        molt_resume_decide(&t, NULL, OLD, &d);
        assert_int_equal(d.action, MOLT_RESUME_READ_JOURNAL);
        assert_int_equal(d.stage, MOLT_STAGE_SWITCHING + (int)i);
    }
}

/* A hop committed and running: wait for the next command, journal unread. */
static void test_resume_between_hops(void **state)
{
    struct molt_upgrade_state t;
    struct molt_resume d;

    saved(&t, "committed");
    molt_resume_decide(&t, NULL, NEW, &d);
    assert_int_equal(d.action, MOLT_RESUME_WAIT_HOP);
    assert_int_equal(d.stage, MOLT_STAGE_COMMITTED);
}

/* The new version on trial for this task proves itself; on trial for another
 * task, or another version on trial, it is not ours. */
static void test_resume_trial(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "restarting");
    journal_in(&j, MOLT_JOURNAL_TRIAL, "42");
    molt_resume_decide(&t, &j, NEW, &d);
    assert_int_equal(d.action, MOLT_RESUME_TRIAL);
    journal_in(&j, MOLT_JOURNAL_TRIAL, "43");
    molt_resume_decide(&t, &j, NEW, &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_FAILED);
    journal_in(&j, MOLT_JOURNAL_TRIAL, "42");
    molt_resume_decide(&t, &j, OLD, &d);    /* OLD runs while NEW is on trial */
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_FAILED);
}

/* Committed to the running version but not reported: as on trial. Committed
 * to another version: not that. */
static void test_resume_committed(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "health-check");
    journal_in(&j, MOLT_JOURNAL_COMMITTED, "42");
    outcome(&j, "42", MOLT_JOURNAL_RESULT_COMMITTED, NEW, "");
    molt_resume_decide(&t, &j, NEW, &d);
    assert_int_equal(d.action, MOLT_RESUME_COMMITTED);
    molt_resume_decide(&t, &j, "20.3-1", &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_FAILED);
}

/* A rolled-back trial fails the task at health-check with the journal's reason. */
static void test_resume_rolled_back(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "restarting");
    journal_in(&j, MOLT_JOURNAL_ROLLED_BACK, "42");
    outcome(&j, "41", MOLT_JOURNAL_RESULT_COMMITTED, OLD, "");
    outcome(&j, "42", MOLT_JOURNAL_RESULT_ROLLED_BACK, NEW, NEW " exited 3 times during trial");
    molt_resume_decide(&t, &j, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_ROLLED_BACK);
    assert_int_equal(d.final_stage, MOLT_STAGE_HEALTH_CHECK);
    assert_string_equal(d.message, "health-check: rolled back: " NEW " exited 3 times during "
                                   "trial");
    j.outcomes[1].reason[0] = '\0';
    molt_resume_decide(&t, &j, OLD, &d);
    assert_string_equal(d.message, "health-check: rolled back: no reason recorded");
}

/* Still the old version and the journal at rest: the switch never happened,
 * carry on. The old version with a switch in progress: fail at switching. */
static void test_resume_switch_not_done(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "switching");
    molt_journal_init(&j);
    molt_resume_decide(&t, &j, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_NOT_DONE);
    journal_in(&j, MOLT_JOURNAL_COMMITTED, "41");
    molt_resume_decide(&t, &j, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_NOT_DONE);
    journal_in(&j, MOLT_JOURNAL_SWITCHING, "42");
    molt_resume_decide(&t, &j, OLD, &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_FAILED);
    assert_int_equal(d.final_stage, MOLT_STAGE_SWITCHING);
    assert_string_equal(d.message, "switching: running " OLD " after switching from " OLD
                                   " to " NEW "; journal state switching");
}

/* Neither version expected and nothing in the journal about the task. */
static void test_resume_switch_failed(void **state)
{
    struct molt_upgrade_state t;
    struct molt_journal j;
    struct molt_resume d;

    saved(&t, "restarting");
    molt_journal_init(&j);
    molt_resume_decide(&t, &j, "20.3-1", &d);
    assert_int_equal(d.action, MOLT_RESUME_SWITCH_FAILED);
    assert_int_equal(d.final_stage, MOLT_STAGE_SWITCHING);
    assert_string_equal(d.message, "switching: running 20.3-1 after switching from " OLD
                                   " to " NEW "; journal state idle");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_before_switch),
        cmocka_unit_test(test_resume_needs_journal),
        cmocka_unit_test(test_resume_between_hops),
        cmocka_unit_test(test_resume_trial),
        cmocka_unit_test(test_resume_committed),
        cmocka_unit_test(test_resume_rolled_back),
        cmocka_unit_test(test_resume_switch_not_done),
        cmocka_unit_test(test_resume_switch_failed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
