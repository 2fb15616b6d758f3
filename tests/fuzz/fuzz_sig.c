/* fuzz_sig.c: libFuzzer harness for the .sig parser and the base64 decoder. */
#include <stdint.h>
#include <stdlib.h>

#include "base64.h"
#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_pkg_sig sig;
    unsigned char *out = NULL;
    size_t len = 0;

    (void)molt_pkg_sig_parse(data, size, &sig, NULL);
    if (molt_base64_decode((const char *)data, size, &out, &len, NULL) == 0)
        free(out);
    return 0;
}
