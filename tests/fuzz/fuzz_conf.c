/* fuzz_conf.c: libFuzzer harness for the configuration file parser
 * (molt_conf_load on a file holding the input, no drop-ins, no MOLT_*
 * environment) and for durations. A configuration that loads must validate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz_util.h"

static void clear_env(void)
{
    extern char **environ;
    /* MOLT_<SECTION>_<KEY> variables would override the file. */
    for (int i = 0; environ && environ[i];) {
        if (strncmp(environ[i], "MOLT_", 5) == 0) {
            char name[128];
            size_t n = strcspn(environ[i], "=");
            if (n >= sizeof(name))
                n = sizeof(name) - 1;
            memcpy(name, environ[i], n);
            name[n] = '\0';
            unsetenv(name);
            continue;
        }
        i++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    static int ready;
    struct molt_config conf;
    const char *path;
    char text[64];
    int64_t ms;

    if (!ready) {
        clear_env();
        ready = 1;
    }
    path = fuzz_write("molt.conf", data, size);
    if (molt_conf_load(&conf, path, &err) == 0 && molt_conf_validate(&conf, &err) < 0)
        fuzz_fail("a loaded configuration does not validate");
    if (size < sizeof(text)) {
        memcpy(text, data, size);
        text[size] = '\0';
        if (molt_conf_parse_duration(text, &ms) == 0 && ms < 0)
            fuzz_fail("a negative duration parsed");
    }
    return 0;
}
