/* molt-pack-channel.h: the "molt-pack channel" command (molt-pack-channel.c). */
#ifndef MOLT_PACK_CHANNEL_H
#define MOLT_PACK_CHANNEL_H

/* argv[0] is "channel", argv[1] the subcommand; returns the exit status. */
int molt_pack_channel(int argc, char **argv);

#include <stddef.h>

#include "err.h"

/* Writes sigpath: a signature set over doc, one line per key (private key
 * files), sorted by key id; append keeps the lines of other keys already in
 * sigpath. *nsigs gets the lines written. Shared by channel and keyring sign. */
int molt_pack_sign_set(const char *const *keys, int nkeys, int append, const char *doc,
                       size_t doc_len, const char *sigpath, int *nsigs, struct molt_err *err);

#endif
