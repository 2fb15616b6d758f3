/* fuzz_journal.c: libFuzzer harness for the upgrade journal parser. A journal
 * that parses must serialise and parse back to the same journal, and the
 * queries the launcher and the agent make on it must hold up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_journal j, again;
    char reason[MOLT_JOURNAL_REASON_MAX + 64];
    char *text = NULL;

    if (molt_journal_parse((const char *)data, size, &j, &err) < 0)
        return 0;
    fuzz_assert_strict(data, size);
    if (j.n_outcomes > MOLT_JOURNAL_OUTCOMES)
        fuzz_fail("more outcomes than the journal keeps");
    (void)molt_journal_in_progress(&j);
    (void)molt_journal_trial_failed(&j, j.trial_deadline_ms, 3, reason, sizeof(reason));
    (void)molt_journal_trial_task(&j, j.to_version);
    for (size_t i = 0; i < j.n_outcomes; i++) {
        const struct molt_journal_outcome *o = molt_journal_find_outcome(&j, j.outcomes[i].task_id);
        if (!o)
            fuzz_fail("an outcome cannot be found by its task id");
        molt_journal_outcome_message(o, reason, sizeof(reason));
    }
    if (molt_journal_serialize(&j, &text, &err) < 0)
        return 0;
    if (molt_journal_parse(text, strlen(text), &again, &err) < 0)
        fuzz_fail("a serialised journal does not parse");
    if (memcmp(&j, &again, sizeof(j)) != 0)
        fuzz_fail("a journal changed in a serialise/parse round trip");
    free(text);
    return 0;
}
