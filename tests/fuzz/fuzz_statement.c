/* fuzz_statement.c: libFuzzer harness for the release statement parser, and
 * for the formatter on what the parser accepts (a round trip must parse). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_statement st, again;
    char *text = NULL;
    size_t len = 0;

    if (molt_pkg_statement_parse(data, size, &st, NULL) < 0)
        return 0;
    (void)molt_pkg_statement_check(&st, "20.2-100", "20.1-0", NULL, NULL, NULL);
    if (molt_pkg_statement_format(&st, &text, &len, NULL) < 0)
        return 0;
    if (molt_pkg_statement_parse(text, len, &again, NULL) < 0 || memcmp(&st, &again, sizeof(st)))
        abort();
    free(text);
    return 0;
}
