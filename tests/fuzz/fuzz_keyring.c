/* fuzz_keyring.c: libFuzzer harness for the release keyring parser, the
 * writer on what the parser accepts (a round trip must give the same bytes'
 * keyring back), and the expiry decisions on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_keyring(const struct molt_keyring *a, const struct molt_keyring *b)
{
    if (a->serial != b->serial || a->issued_ms != b->issued_ms ||
        a->expires_ms != b->expires_ms || a->nkeys != b->nkeys)
        return 0;
    for (size_t i = 0; i < a->nkeys; i++) {
        const struct molt_keyring_key *k = molt_keyring_find(b, a->keys[i].keyid);
        if (!k || k->expires_ms != a->keys[i].expires_ms ||
            memcmp(k->raw, a->keys[i].raw, sizeof(k->raw)) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct molt_keyring kr, again;
    char *text = NULL;
    size_t len = 0;

    if (molt_keyring_parse(data, size, &kr, NULL) < 0)
        return 0;
    for (size_t i = 0; i < kr.nkeys; i++)
        (void)molt_keyring_key_valid(&kr, &kr.keys[i], kr.issued_ms);
    if (molt_keyring_next_expiry(&kr, kr.issued_ms) <= kr.issued_ms)
        abort();
    if (molt_keyring_format(&kr, &text, &len, NULL) < 0)
        abort();
    if (molt_keyring_parse(text, len, &again, NULL) < 0 || !same_keyring(&kr, &again))
        abort();
    free(text);
    return 0;
}
