/* fuzz_util.c: scratch files for the harnesses of file parsers. */
#include "fuzz_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "log.h"

static char scratch[PATH_MAX];

static void remove_scratch(void)
{
    molt_fs_remove_tree(scratch, NULL);
}

const char *fuzz_scratch(void)
{
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        /* Parsers log what they reject; thousands of lines a second would
         * only slow the fuzzer down. */
        molt_log_setup("fuzz", MOLT_LOG_ERROR, 0);
        snprintf(scratch, sizeof(scratch), "%s/molt-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(scratch))
            fuzz_fail("mkdtemp");
        atexit(remove_scratch);
    }
    return scratch;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch(), name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        fuzz_fail("cannot write the input file");
    return path;
}

void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz harness: %s\n", what);
    abort();
}

void fuzz_assert_strict(const uint8_t *data, size_t size)
{
    int in_string = 0;

    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];

        if (c == 0)
            fuzz_fail("accepted a document with a NUL byte");
        if (!in_string) {
            if (c == '\'')
                fuzz_fail("accepted a single quote");
            if (c < 0x20 && c != ' ' && c != '\t' && c != '\r' && c != '\n')
                fuzz_fail("accepted a control byte between tokens");
            in_string = c == '"';
            continue;
        }
        if (c < 0x20)
            fuzz_fail("accepted a control byte in a string");
        if (c == '\\') {
            if (i + 5 < size && data[i + 1] == 'u' && memcmp(data + i + 2, "0000", 4) == 0)
                fuzz_fail("accepted an escaped NUL");
            i++;
        } else if (c == '"') {
            in_string = 0;
        }
    }
}
