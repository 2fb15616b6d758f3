/* sandbox_probe.c: which of the sandbox's layers this kernel offers
 * (sandbox.h), applying none: molt_sandbox_apply applies exactly these, and
 * the agent logs them at its start. Apart from sandbox.c so that the resident
 * agent, which only probes, does not map libseccomp. */
#include <errno.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"
#include "sandbox_int.h"

static void note(struct molt_sandbox_status *st, const char *word)
{
    size_t len = strlen(st->text);

    snprintf(st->text + len, sizeof(st->text) - len, "%s%s", len ? " " : "", word);
}

void molt_sandbox_probe(struct molt_sandbox_status *st)
{
    char word[32];
    int abi;

    memset(st, 0, sizeof(*st));
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0) {
        st->layers |= MOLT_SANDBOX_NO_NEW_PRIVS;
        note(st, "no_new_privs");
    } else {
        note(st, "-no_new_privs(unsupported)");
    }
    abi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi > 0) {
        st->landlock_abi = abi;
        st->layers |= MOLT_SANDBOX_LANDLOCK;
        snprintf(word, sizeof(word), "landlock(abi %d)", abi);
        note(st, word);
    } else {
        /* ENOSYS: not built in; EOPNOTSUPP: built in but not enabled (lsm=). */
        note(st, errno == EOPNOTSUPP ? "-landlock(disabled)" : "-landlock(unsupported)");
    }
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
        note(st, "-seccomp(unsupported)");
    } else {
        st->layers |= MOLT_SANDBOX_SECCOMP;
        note(st, "seccomp");
    }
}
