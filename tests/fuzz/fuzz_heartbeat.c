/* fuzz_heartbeat.c: libFuzzer harness for what the control plane answers to
 * the agent: heartbeat replies (with the command they may carry) and
 * registration replies. Whatever is accepted must satisfy the documented
 * limits, so the rest of the agent can rely on them. */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "heartbeat.h"
#include "identity.h"
#include "version.h"

static void check_command(const struct molt_command *c)
{
    if (!molt_task_id_valid(c->task_id))
        fuzz_fail("accepted a command with a bad task id");
    if (c->type == MOLT_CMD_CANCEL)
        return;
    if (c->type != MOLT_CMD_UPGRADE)
        fuzz_fail("accepted a command of unknown type");
    if (!molt_version_valid(c->to_version) || !molt_version_valid(c->build.version))
        fuzz_fail("accepted a command with a bad version");
    if (c->build.size <= 0 || c->build.size > MOLT_BUILD_MAX_SIZE)
        fuzz_fail("accepted a build size out of range");
    if (c->expires_at <= c->request_time || strlen(c->build.sha256) != 64)
        fuzz_fail("accepted implausible times or digest");
    if (!c->build.statement || !c->build.signature || c->build.statement_len == 0 ||
        c->build.statement_len > MOLT_BUILD_BLOB_MAX ||
        c->build.signature_len > MOLT_BUILD_SIG_MAX)
        fuzz_fail("accepted a statement or signature out of bounds");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_hb_reply r;
    struct molt_identity id;
    int64_t interval = 0;

    if (molt_heartbeat_parse_reply((const char *)data, size, &r, &err) == 0) {
        fuzz_assert_strict(data, size);
        if (r.interval_ms != 0 &&
            (r.interval_ms < MOLT_HB_INTERVAL_MIN_MS || r.interval_ms > MOLT_HB_INTERVAL_MAX_MS))
            fuzz_fail("accepted an interval out of range");
        if (r.has_command) {
            struct molt_command copy;
            check_command(&r.cmd);
            if (molt_command_copy(&copy, &r.cmd, &err) == 0)
                molt_command_free(&copy);
        }
        molt_hb_reply_free(&r);
    }
    memset(&id, 0, sizeof(id));
    if (molt_register_parse_reply((const char *)data, size, &id, &interval, &err) == 0) {
        fuzz_assert_strict(data, size);
        if (id.collector_id <= 0 || strlen(id.token) < MOLT_TOKEN_MIN)
            fuzz_fail("accepted a registration without a usable identity");
        if (interval != 0 &&
            (interval < MOLT_HB_INTERVAL_MIN_MS || interval > MOLT_HB_INTERVAL_MAX_MS))
            fuzz_fail("accepted a registration interval out of range");
    }
    return 0;
}
