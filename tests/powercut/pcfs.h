/* pcfs.h: molt-powercutfs, a FUSE file system that loses what was not synced (test tool). */
#ifndef MOLT_PCFS_H
#define MOLT_PCFS_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define PCFS_ORPHANS ".pcfs-orphans"

/* A live inode and where its durable content is. */
struct pcfs_ent {
    ino_t ino;
    char dpath[PATH_MAX];
};

struct pcfs {
    char durable[PATH_MAX];
    char live[PATH_MAX];
    struct pcfs_ent *ents;
    size_t n, cap;
    struct {
        unsigned long file_syncs, dir_syncs;
    } stats;
};

extern struct pcfs pcfs;

void pcfs_live_path(char *out, const char *path);
void pcfs_forget(ino_t ino);
int pcfs_sync_file(const char *path);
int pcfs_sync_dir(const char *path);
int pcfs_boot(void);

#endif
