/* fuzz_outbox.c: libFuzzer harness for outbox entries: the input is put in a
 * scratch outbox as 12345.json and flushed with a sender that always answers
 * 200. Whatever the file holds, the entry must end up sent (a valid report for
 * task 12345, and only then) or moved aside to 12345.json.bad. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "fuzz_util.h"
#include "json.h"
#include "outbox.h"

static int sent;

static int send_ok(void *arg, const char *task_id, const char *body, size_t len, long *status,
                   struct molt_err *err)
{
    struct json_object *o = NULL;
    struct molt_report r;

    /* The body sent is the file's bytes, which must be a valid report. */
    if (molt_json_parse(body, len, &o, err) < 0 || molt_report_from_json(o, &r, err) < 0 ||
        strcmp(r.task_id, task_id) != 0)
        fuzz_fail("sent an entry that is not a valid report for its task");
    fuzz_assert_strict((const uint8_t *)body, len);
    json_object_put(o);
    sent++;
    *status = 200;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[4096], bad[4096];
    int rc;

    snprintf(dir, sizeof(dir), "%s/outbox", fuzz_scratch());
    snprintf(bad, sizeof(bad), "%s/12345.json.bad", dir);
    molt_fs_mkdir_p(dir, 0700, NULL);
    unlink(bad);
    fuzz_write("outbox/12345.json", data, size);
    sent = 0;
    rc = molt_outbox_flush(dir, send_ok, NULL, &err);
    if (molt_outbox_has(dir, "12345"))
        fuzz_fail("an entry stayed in the outbox after a 200");
    if (rc == 0 && sent == 0 && !molt_fs_exists(bad))
        fuzz_fail("an entry vanished without being sent or moved aside");
    if (sent > 1)
        fuzz_fail("one entry was sent twice");
    return 0;
}
