/* molt-pack-keyring.h: the "molt-pack keyring" command (molt-pack-keyring.c). */
#ifndef MOLT_PACK_KEYRING_H
#define MOLT_PACK_KEYRING_H

/* argv[0] is "keyring", argv[1] the subcommand; returns the exit status. */
int molt_pack_keyring(int argc, char **argv);

#endif
