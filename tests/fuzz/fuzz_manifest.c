/* fuzz_manifest.c: libFuzzer harness for the manifest parser (paths,
 * symlink resolution, limits), with small limits so deep cases are reached;
 * what parses must format and parse again to the same entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_pkg_limits lim;
    struct molt_manifest m, again;
    char *text = NULL;
    size_t len = 0;

    molt_pkg_limits_default(&lim);
    lim.max_entries = 64;
    lim.max_depth = 8;
    lim.max_path = 64;
    if (molt_pkg_manifest_parse(data, size, &lim, &m, NULL) < 0)
        return 0;
    for (size_t i = 0; i < m.nfiles; i++) {
        if (molt_pkg_manifest_find(&m, m.files[i].path) != &m.files[i])
            abort();
    }
    if (molt_pkg_manifest_format(&m, &text, &len, NULL) == 0) {
        if (molt_pkg_manifest_parse(text, len, &lim, &again, NULL) < 0 || again.nfiles != m.nfiles)
            abort();
        molt_pkg_manifest_free(&again);
        free(text);
    }
    molt_pkg_manifest_free(&m);
    return 0;
}
