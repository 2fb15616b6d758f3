/* resume.h: what an agent does after a restart with a task saved in
 * upgrade.json: a decision from the saved task state, the installer's journal
 * and the running version alone (no I/O, no clock), which agent/upgrade.c then
 * carries out.
 *
 * Before the switch the task carries on (its download resumes). From the
 * switch on the journal tells how the switch ended: the new version on trial
 * (or committed, but not yet reported) proves itself with a heartbeat; a
 * rolled-back trial fails the task at health-check; a switch that never
 * happened carries on; anything else fails it at switching. */
#ifndef MOLT_RESUME_H
#define MOLT_RESUME_H

#include <stddef.h>

#include "journal.h"
#include "upgrade_state.h"

enum molt_resume_action {
    MOLT_RESUME_READ_JOURNAL,      /* asked without a journal: it is needed, ask again with it */
    MOLT_RESUME_WAIT_HOP,          /* an intermediate hop, committed and running: wait for
                                    * the next command */
    MOLT_RESUME_CONTINUE,          /* before the switch: carry on in a worker */
    MOLT_RESUME_SWITCH_NOT_DONE,   /* the switch never happened (the agent died before apply's
                                    * first step): carry on from the download */
    MOLT_RESUME_TRIAL,             /* we are the new version, on trial: report health-check,
                                    * commit on the first acknowledged heartbeat */
    MOLT_RESUME_COMMITTED,         /* committed, but the agent died before reporting it: the
                                    * same as a trial (the installer's commit is idempotent) */
    MOLT_RESUME_ROLLED_BACK,       /* the trial was rolled back: final 3 at health-check */
    MOLT_RESUME_SWITCH_FAILED,     /* not the version expected, no outcome: final 3 at switching */
};

struct molt_resume {
    enum molt_resume_action action;
    int stage;                     /* the saved stage's index (accepted when unknown) */
    int final_stage;               /* the stage a failure is reported at */
    char message[600];             /* a failure's message */
};

/* The stage index of a saved stage name; accepted when it names none. */
int molt_resume_stage_index(const char *name);
/* Decides for saved task t with the journal j (NULL: not read yet) and the
 * running version self. */
void molt_resume_decide(const struct molt_upgrade_state *t, const struct molt_journal *j,
                        const char *self, struct molt_resume *out);

#endif
