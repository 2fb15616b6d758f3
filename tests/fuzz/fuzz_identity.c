/* fuzz_identity.c: libFuzzer harness for <state_dir>/identity.json
 * (molt_identity_load): a corrupt or hand-edited identity must be refused
 * with a reason, never half-read; one that loads must save and load back. */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_identity id, again;
    const char *path = fuzz_write(MOLT_IDENTITY_FILE, data, size);

    if (molt_identity_load(path, &id, &err) < 0) {
        static const struct molt_identity zero;
        if (memcmp(&id, &zero, sizeof(id)) != 0)
            fuzz_fail("a refused identity left data behind");
        return 0;
    }
    fuzz_assert_strict(data, size);
    if (id.collector_id <= 0 || strlen(id.token) < MOLT_TOKEN_MIN || strlen(id.machine_id) != 32)
        fuzz_fail("loaded an implausible identity");
    if (molt_identity_save(path, &id, &err) < 0)
        fuzz_fail("a loaded identity cannot be saved");
    if (molt_identity_load(path, &again, &err) < 0 || memcmp(&id, &again, sizeof(id)) != 0)
        fuzz_fail("an identity changed in a save/load round trip");
    return 0;
}
