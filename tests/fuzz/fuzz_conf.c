/* fuzz_conf.c: libFuzzer harness for the configuration file parser
 * (molt_conf_load on a file holding the input, no drop-ins, no MOLT_*
 * environment) and for durations. A configuration that loads must validate,
 * and must survive the agent's hand-over to its worker: molt_conf_format's
 * text, read back by molt_conf_load_text, is the same configuration without
 * the secret. */
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

static void hand_over(const struct molt_config *conf)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config back;
    char *text = NULL, *again = NULL;

    /* The loader refuses line breaks in values, so formatting cannot fail. */
    if (molt_conf_format(conf, &text, &err) < 0)
        fuzz_fail("a loaded configuration does not format");
    if (strstr(text, "\naccess_key = "))
        fuzz_fail("the formatted configuration names the secret");
    if (molt_conf_load_text(&back, text, "start", &err) < 0)
        fuzz_fail("the formatted configuration does not load");
    if (back.server.access_key[0])
        fuzz_fail("the secret came through the hand-over");
    if (molt_conf_format(&back, &again, &err) < 0 || strcmp(text, again) != 0)
        fuzz_fail("the hand-over changed the configuration");
    free(text);
    free(again);
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
    if (molt_conf_load(&conf, path, &err) == 0) {
        if (molt_conf_validate(&conf, &err) < 0)
            fuzz_fail("a loaded configuration does not validate");
        hand_over(&conf);
    }
    if (size < sizeof(text)) {
        memcpy(text, data, size);
        text[size] = '\0';
        if (molt_conf_parse_duration(text, &ms) == 0 && ms < 0)
            fuzz_fail("a negative duration parsed");
    }
    return 0;
}
