/* molt-pack-channel.h: the "molt-pack channel" command (molt-pack-channel.c). */
#ifndef MOLT_PACK_CHANNEL_H
#define MOLT_PACK_CHANNEL_H

/* argv[0] is "channel", argv[1] the subcommand; returns the exit status. */
int molt_pack_channel(int argc, char **argv);

#endif
