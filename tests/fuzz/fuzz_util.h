/* fuzz_util.h: what the libFuzzer harnesses share: a private scratch
 * directory (removed at exit) for parsers that read files, and a way to put
 * the fuzz input there. */
#ifndef MOLT_FUZZ_UTIL_H
#define MOLT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch directory of this process; created on the first call. */
const char *fuzz_scratch(void);
/* Writes data to <scratch>/<name> (replacing it) and returns the path in a
 * static buffer; aborts on I/O errors, which would make every input look
 * uninteresting. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);
/* Aborts with a message: a harness found an inconsistency the sanitizers
 * cannot see (a round trip that does not hold, a broken invariant). */
void fuzz_fail(const char *what) __attribute__((noreturn));
/* Called on an input a JSON reader accepted: aborts unless it is strict JSON
 * as far as bytes tell (no NUL, no control byte but whitespace between tokens,
 * none inside strings, no single quote outside them, no escaped NUL), so the
 * harnesses check molt_json_parse's strict mode independently of it. */
void fuzz_assert_strict(const uint8_t *data, size_t size);

#endif
