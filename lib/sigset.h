/* sigset.h: a threshold of signatures by distinct trusted keys over one
 * document (docs/security.md, section 6.3).
 *
 * A signature set is a .sig file of one or more lines, each one molt-sig-1
 * signature as sign.h describes it, each line ending in "\n" (the last one may
 * omit it). A one-line set is exactly today's .sig file, so statements signed
 * by one key stay valid under a threshold of 1.
 *
 * Each line is checked with molt_pkg_sig_verify() against keys_dir. Lines by
 * keys that are not trusted, and lines that do not verify, are not counted
 * (TUF: a signature by an unknown key is ignored, not fatal); a line that is
 * not a signature at all (malformed, truncated, empty) makes the whole set
 * malformed. Two lines by the same key count once. */
#ifndef MOLT_SIGSET_H
#define MOLT_SIGSET_H

#include <stddef.h>

#include "err.h"
#include "sign.h"

#define MOLT_SIGSET_MAX MOLT_PKG_SIG_MAX /* largest set accepted: 4 KiB, about 25 lines */
#define MOLT_SIGSET_MAX_THRESHOLD 16

/* Verifies that at least threshold (1..16) distinct trusted keys signed doc's
 * exact bytes. Returns 0, or MOLT_E_VERIFY with "signature: missing",
 * "signature: malformed: line N: ...", "signature: truncated", or
 * "signature: N of M required signatures by distinct trusted keys (line L:
 * <why the first uncounted line was not counted>)". keyids (may be NULL)
 * receives the ids of the counted keys, comma separated, for logs. */
int molt_sigset_verify(const char *keys_dir, int threshold, const void *doc, size_t doc_len,
                       const void *set, size_t set_len, char *keyids, size_t keyids_size,
                       struct molt_err *err);

#endif
