/* fuzz_delta.c: libFuzzer harness for applying delta packages (lib/delta.c):
 * the input is a delta against a fixed base (lines of text). Its header's
 * base fields are replaced by the real base's and its package fields taken as
 * the expected (signed) ones, so that the fuzzer gets past the header checks
 * into the zstd patch, the caps and the recompression; sizes are clamped to
 * 1 MiB so that a patch that decompresses without end stops at the cap. Any
 * result is fine but a crash, a leak, or an output longer than the cap. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "fuzz_util.h"
#include "log.h"

#define CAP ((uint64_t)1 << 20)

/* The base: "line N of the fuzz base\n" for N = 0..1999 (tests/fuzz/corpus/delta's README). */
static struct molt_delta_base *base(void)
{
    static struct molt_delta_base b;
    static char *text;
    struct molt_pkg_hasher h;
    size_t len = 0, cap = 2000 * 32;

    if (text)
        return &b;
    molt_log_setup("fuzz_delta", MOLT_LOG_ERROR, 0);
    text = malloc(cap);
    if (!text)
        abort();
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(text + len, cap - len, "line %d of the fuzz base\n", i);
    if (molt_pkg_hasher_init(&h, 0, NULL) < 0 || molt_pkg_hasher_update(&h, text, len, NULL) < 0 ||
        molt_pkg_hasher_final(&h, b.sha256, &b.size, NULL) < 0)
        abort();
    b.data = (const unsigned char *)text;
    return &b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct molt_delta_base *b = base();
    struct molt_delta_header h;
    unsigned char *buf;
    const char *path;
    struct stat sb;
    int in, out;

    if (size < MOLT_DELTA_HEADER_SIZE || molt_delta_header_parse(data, size, &h, NULL) < 0) {
        path = fuzz_write("delta", data, size);
        buf = NULL;
    } else {
        h.base_size = b->size;
        memcpy(h.base_sha256, b->sha256, sizeof(h.base_sha256));
        h.package_size = h.package_size > CAP ? CAP : h.package_size;
        h.archive_size = h.archive_size > CAP ? CAP : h.archive_size;
        buf = malloc(size);
        if (!buf)
            abort();
        memcpy(buf, data, size);
        molt_delta_header_format(&h, buf);
        path = fuzz_write("delta", buf, size);
    }
    in = open(path, O_RDONLY);
    out = open(fuzz_write("out", NULL, 0), O_WRONLY | O_TRUNC);
    if (in < 0 || out < 0)
        abort();
    (void)molt_delta_apply(in, b, buf ? h.package_size : 1, buf ? h.package_sha256 : b->sha256,
                           out, NULL, NULL);
    if (fstat(out, &sb) < 0 || (uint64_t)sb.st_size > CAP)
        fuzz_fail("delta output longer than the cap");
    close(in);
    close(out);
    free(buf);
    return 0;
}
