/* resume.c: the decision what to do after a restart with a saved task
 * (resume.h); pure, so each case has a unit test (tests/unit/test_resume.c). */
#include "resume.h"

#include <stdio.h>
#include <string.h>

#include "report.h"

int molt_resume_stage_index(const char *name)
{
    for (int i = 1; i <= MOLT_STAGE_NAMES; i++) {
        if (strcmp(molt_stage_name(i), name) == 0)
            return molt_stage_reported_index(i);
    }
    return MOLT_STAGE_ACCEPTED;
}

/* After a restart: what did the switch come to? */
static void after_switch(const struct molt_upgrade_state *t, const struct molt_journal *j,
                         const char *self, struct molt_resume *out)
{
    const struct molt_journal_outcome *o;
    const char *trial;

    trial = molt_journal_trial_task(j, self);
    if (trial && strcmp(trial, t->task_id) == 0) {
        out->action = MOLT_RESUME_TRIAL;
        return;
    }
    o = molt_journal_find_outcome(j, t->task_id);
    if (o && o->result == MOLT_JOURNAL_RESULT_COMMITTED && strcmp(o->to_version, self) == 0) {
        out->action = MOLT_RESUME_COMMITTED;
        return;
    }
    if (o && o->result == MOLT_JOURNAL_RESULT_ROLLED_BACK) {
        char outcome[MOLT_JOURNAL_REASON_MAX + 64];
        molt_journal_outcome_message(o, outcome, sizeof(outcome));
        snprintf(out->message, sizeof(out->message), "health-check: %s", outcome);
        out->action = MOLT_RESUME_ROLLED_BACK;
        out->final_stage = MOLT_STAGE_HEALTH_CHECK;
        return;
    }
    if (strcmp(t->from_version, self) == 0 && !molt_journal_in_progress(j)) {
        out->action = MOLT_RESUME_SWITCH_NOT_DONE;
        return;
    }
    snprintf(out->message, sizeof(out->message), "switching: running %s after switching from %s "
             "to %s; journal state %s", self, t->from_version, t->build.version,
             molt_journal_state_name(j->state));
    out->action = MOLT_RESUME_SWITCH_FAILED;
    out->final_stage = MOLT_STAGE_SWITCHING;
}

void molt_resume_decide(const struct molt_upgrade_state *t, const struct molt_journal *j,
                        const char *self, struct molt_resume *out)
{
    memset(out, 0, sizeof(*out));
    out->stage = molt_resume_stage_index(t->stage);
    if (out->stage == MOLT_STAGE_COMMITTED && strcmp(t->build.version, self) == 0)
        out->action = MOLT_RESUME_WAIT_HOP;
    else if (out->stage < MOLT_STAGE_SWITCHING)
        out->action = MOLT_RESUME_CONTINUE;
    else if (!j)
        out->action = MOLT_RESUME_READ_JOURNAL;
    else
        after_switch(t, j, self, out);
}
