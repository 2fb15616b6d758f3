/* fuzz_command.c: libFuzzer harness for command validation alone
 * (molt_command_parse), fed command objects rather than whole replies so the
 * fuzzer spends its time in the build fields; an accepted command must copy
 * and survive a copy of its copy. */
#include <stdint.h>
#include <string.h>

#include "command.h"
#include "fuzz_util.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct json_object *o = NULL;
    struct molt_command cmd, a, b;

    if (molt_json_parse((const char *)data, size, &o, &err) < 0)
        return 0;
    fuzz_assert_strict(data, size);
    if (molt_command_parse(o, &cmd, &err) == 0) {
        if (molt_command_copy(&a, &cmd, &err) == 0) {
            if (molt_command_copy(&b, &a, &err) == 0) {
                if (b.build.statement_len != cmd.build.statement_len ||
                    (cmd.build.statement &&
                     memcmp(b.build.statement, cmd.build.statement, cmd.build.statement_len)) ||
                    strcmp(b.task_id, cmd.task_id) != 0)
                    fuzz_fail("a copied command differs from the original");
                molt_command_free(&b);
            }
            molt_command_free(&a);
        }
        molt_command_free(&cmd);
    }
    json_object_put(o);
    return 0;
}
