/* fuzz_upgrade_state.c: libFuzzer harness for <state_dir>/upgrade.json, the
 * in-flight task an agent resumes after a restart (molt_upgrade_state_load
 * reads it from a scratch state directory). A state that loads must save and
 * load back to the same task. */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "upgrade_state.h"
#include "version.h"

static int same_mirrors(const struct molt_build *a, const struct molt_build *b)
{
    if (a->n_mirrors != b->n_mirrors)
        return 0;
    for (int i = 0; i < a->n_mirrors; i++) {
        if (strcmp(a->mirrors[i], b->mirrors[i]) != 0)
            return 0;
    }
    return 1;
}

static int same_state(const struct molt_upgrade_state *a, const struct molt_upgrade_state *b)
{
    return a->source == b->source && same_mirrors(&a->build, &b->build) && strcmp(a->task_id, b->task_id) == 0 && strcmp(a->to_version, b->to_version) == 0 &&
           strcmp(a->from_version, b->from_version) == 0 && strcmp(a->stage, b->stage) == 0 &&
           strcmp(a->task_dir, b->task_dir) == 0 &&
           strcmp(a->local_package, b->local_package) == 0 && a->local == b->local &&
           a->request_time == b->request_time && a->expires_at == b->expires_at &&
           strcmp(a->build.version, b->build.version) == 0 &&
           strcmp(a->build.url, b->build.url) == 0 && a->build.size == b->build.size &&
           strcmp(a->build.sha256, b->build.sha256) == 0 &&
           a->build.statement_len == b->build.statement_len &&
           a->build.signature_len == b->build.signature_len &&
           (a->build.statement_len == 0 ||
            memcmp(a->build.statement, b->build.statement, a->build.statement_len) == 0) &&
           (a->build.signature_len == 0 ||
            memcmp(a->build.signature, b->build.signature, a->build.signature_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t, again;
    const char *dir = fuzz_scratch();

    fuzz_write(MOLT_UPGRADE_STATE_FILE, data, size);
    if (molt_upgrade_state_load(dir, &t, &err) < 0)
        return 0;
    fuzz_assert_strict(data, size);
    if (!molt_task_id_valid(t.task_id) || !molt_version_valid(t.build.version) || t.build.size <= 0)
        fuzz_fail("loaded a task the pipeline cannot resume");
    if (molt_upgrade_state_save(dir, &t, &err) < 0)
        fuzz_fail("a loaded state cannot be saved");
    if (molt_upgrade_state_load(dir, &again, &err) < 0)
        fuzz_fail("a saved state does not load");
    if (!same_state(&t, &again))
        fuzz_fail("a state changed in a save/load round trip");
    molt_upgrade_state_free(&again);
    molt_upgrade_state_free(&t);
    return 0;
}
