/* fuzz_worker_msg.c: libFuzzer harness for the agent <-> upgrade worker
 * stream (agent/worker_msg.c), which the agent reads from a worker that
 * parses untrusted packages. The first byte picks the reader's direction and
 * how the rest is cut into reads. Besides the sanitizers it checks that the
 * verdicts do not depend on how the bytes arrive (whole or in pieces), that
 * an accepted message encodes and reads back the same, and that nothing is
 * accepted after a refused frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "json.h"
#include "worker_msg.h"

#define MAX_MSGS 64

struct verdicts {
    int rc[MAX_MSGS];
    int type[MAX_MSGS];
    size_t n;
};

static int same_msg(const struct molt_wmsg *a, const struct molt_wmsg *b)
{
    if (a->type != b->type || strcmp(a->stage, b->stage) || a->bytes_done != b->bytes_done ||
        a->bytes_total != b->bytes_total || strcmp(a->served_by, b->served_by) ||
        a->level != b->level || strcmp(a->event, b->event) || strcmp(a->text, b->text) ||
        a->ok != b->ok || strcmp(a->message, b->message) || strcmp(a->staged_path, b->staged_path) ||
        a->source != b->source || strcmp(a->token, b->token) || strcmp(a->address, b->address) ||
        a->port != b->port)
        return 0;
    if (!a->task != !b->task || !a->config != !b->config || !a->hosts != !b->hosts)
        return 0;
    if (a->hosts && strcmp(molt_json_dump(a->hosts), molt_json_dump(b->hosts)))
        return 0;
    if (a->config && strcmp(json_object_get_string(a->config), json_object_get_string(b->config)))
        return 0;
    return !a->task || strcmp(molt_json_dump(a->task), molt_json_dump(b->task)) == 0;
}

static void check_accepted(const struct molt_wmsg *m, enum molt_wmsg_dir dir)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg back;
    char *frame;
    size_t len;

    if (molt_wmsg_encode(m, &frame, &len, &err) < 0)
        fuzz_fail("an accepted message does not encode");
    if (len < MOLT_WMSG_HEADER || len - MOLT_WMSG_HEADER > MOLT_WMSG_MAX)
        fuzz_fail("an encoded frame is not within the limit");
    if (molt_wmsg_decode(frame + MOLT_WMSG_HEADER, len - MOLT_WMSG_HEADER, dir, &back, &err) < 0)
        fuzz_fail("an encoded message does not read back");
    if (!same_msg(m, &back))
        fuzz_fail("an encoded message reads back differently");
    molt_wmsg_clear(&back);
    free(frame);
}

/* Feeds data in pieces of at most step bytes, recording each verdict. */
static void run(const uint8_t *data, size_t size, enum molt_wmsg_dir dir, size_t step,
                struct verdicts *v, int check)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg_reader r;
    struct molt_wmsg m;
    size_t off = 0;

    memset(v, 0, sizeof(*v));
    if (molt_wmsg_reader_init(&r, dir, &err) < 0)
        abort();
    while (off < size && v->n < MAX_MSGS) {
        size_t used = 0, n = size - off < step ? size - off : step;
        int rc = molt_wmsg_reader_feed(&r, data + off, n, &used, &m, &err);

        off += used;
        if (rc == 0)
            continue;
        if (rc < 0 && !err.msg[0])
            fuzz_fail("a refused frame has no message");
        if (rc == 1 && check)
            check_accepted(&m, dir);
        v->rc[v->n] = rc < 0 ? -1 : rc;
        v->type[v->n++] = rc == 1 ? (int)m.type : 0;
        if (rc == 1)
            molt_wmsg_clear(&m);
        if (rc < 0) {
            /* Final: the rest is refused as a whole. */
            if (off < size && molt_wmsg_reader_feed(&r, data + off, size - off, &used, &m,
                                                    &err) >= 0)
                fuzz_fail("a reader accepted bytes after a refused frame");
            break;
        }
    }
    molt_wmsg_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct verdicts whole, pieces;
    enum molt_wmsg_dir dir;
    size_t step;

    if (size < 1)
        return 0;
    dir = data[0] & 1 ? MOLT_WMSG_TO_WORKER : MOLT_WMSG_TO_AGENT;
    step = (size_t)(data[0] >> 1) + 1;
    run(data + 1, size - 1, dir, size, &whole, 1);
    run(data + 1, size - 1, dir, step, &pieces, 0);
    if (whole.n != pieces.n || memcmp(whole.rc, pieces.rc, sizeof(whole.rc)) ||
        memcmp(whole.type, pieces.type, sizeof(whole.type)))
        fuzz_fail("the verdicts depend on how the bytes arrive");
    return 0;
}
