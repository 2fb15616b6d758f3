/* sigset.c: counts the distinct trusted keys whose signatures over a document
 * verify, one molt-sig-1 line at a time through sign.c, against a threshold. */
#include "sigset.h"

#include <stdio.h>
#include <string.h>

/* Appends id to the comma-separated list (ids are fixed-length hex). */
static void list_add(char *list, size_t size, const char *id)
{
    size_t n = strlen(list);

    if (size > n + MOLT_PKG_KEYID_LEN + 1)
        snprintf(list + n, size - n, "%s%s", n ? "," : "", id);
}

static int counted_already(char seen[][MOLT_PKG_KEYID_SIZE], int n, const char *id)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(seen[i], id) == 0)
            return 1;
    }
    return 0;
}

int molt_sigset_verify(const char *keys_dir, int threshold, const void *doc, size_t doc_len,
                       const void *set, size_t set_len, char *keyids, size_t keyids_size,
                       struct molt_err *err)
{
    char seen[MOLT_SIGSET_MAX / 64][MOLT_PKG_KEYID_SIZE];
    char first_miss[MOLT_ERR_MSG_MAX / 2] = "";
    const char *p = set, *end = (const char *)set + set_len;
    int nseen = 0, line = 0;

    if (keyids && keyids_size)
        keyids[0] = '\0';
    if (threshold < 1 || threshold > MOLT_SIGSET_MAX_THRESHOLD)
        return molt_err_set(err, MOLT_E_INVAL, "signature: threshold %d is not in 1..%d", threshold,
                            MOLT_SIGSET_MAX_THRESHOLD);
    if (!set || set_len == 0)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: missing");
    if (set_len > MOLT_SIGSET_MAX)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: larger than %d bytes",
                            MOLT_SIGSET_MAX);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct molt_err lerr = MOLT_ERR_INIT;
        char id[MOLT_PKG_KEYID_SIZE];
        struct molt_pkg_sig parsed;

        line++;
        /* Parse first: a line that is no signature spoils the set; one that is
         * a signature but not countable (untrusted, invalid) is only skipped. */
        if (molt_pkg_sig_parse(p, len, &parsed, &lerr) < 0) {
            if (strstr(lerr.msg, "signature: truncated") && !nl)
                return molt_err_set(err, MOLT_E_VERIFY, "signature: truncated");
            return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: line %d: %s", line,
                                lerr.msg);
        }
        if (molt_pkg_sig_verify(keys_dir, doc, doc_len, p, len, id, &lerr) == 0) {
            if (!counted_already(seen, nseen, id) &&
                nseen < (int)(sizeof(seen) / sizeof(seen[0]))) {
                memcpy(seen[nseen++], id, MOLT_PKG_KEYID_SIZE);
                if (keyids)
                    list_add(keyids, keyids_size, id);
            }
        } else if (!first_miss[0]) {
            snprintf(first_miss, sizeof(first_miss), "line %d, key %s: %.200s", line, id, lerr.msg);
        }
        p = nl ? nl + 1 : end;
    }
    if (nseen >= threshold)
        return 0;
    if (!first_miss[0] && line > nseen)
        snprintf(first_miss, sizeof(first_miss), "the same key signed more than once");
    else if (!first_miss[0])
        snprintf(first_miss, sizeof(first_miss), "the set has %d line%s", line, line == 1 ? "" : "s");
    return molt_err_set(err, MOLT_E_VERIFY,
                        "signature: %d of %d required signatures by distinct trusted keys (%s)",
                        nseen, threshold, first_miss);
}
