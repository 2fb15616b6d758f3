/* fuzz_channel.c: libFuzzer harness for the release channel parser, the
 * writer on what the parser accepts (a round trip must parse to the same
 * channel), and the admission decision on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_channel(const struct molt_channel *a, const struct molt_channel *b)
{
    if (strcmp(a->name, b->name) || a->serial != b->serial || a->issued_ms != b->issued_ms ||
        a->expires_ms != b->expires_ms || strcmp(a->floor, b->floor) || a->nbuilds != b->nbuilds)
        return 0;
    for (size_t i = 0; i < a->nbuilds; i++) {
        if (!molt_channel_find(b, a->builds[i].version, a->builds[i].os, a->builds[i].arch))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_channel ch, again;
    char *text = NULL;
    size_t len = 0;

    if (molt_channel_parse(data, size, &ch, NULL) < 0)
        return 0;
    for (size_t i = 0; i < ch.nbuilds; i++)
        (void)molt_channel_admits(&ch, ch.issued_ms, "0123456789abcdef0123456789abcdef",
                                  ch.builds[i].version, ch.builds[i].os, ch.builds[i].arch,
                                  ch.builds[i].statement_sha256, NULL);
    if (molt_channel_format(&ch, &text, &len, NULL) < 0)
        abort();
    if (molt_channel_parse(text, len, &again, NULL) < 0 || !same_channel(&ch, &again))
        abort();
    molt_channel_free(&again);
    molt_channel_free(&ch);
    free(text);
    return 0;
}
