/* pcfs_fuse.c: molt-powercutfs's FUSE operations and main (test tool, see README.md).
 * Every operation goes to the live tree; fsync, fdatasync and fsync of a
 * directory copy state into the durable tree (pcfs_state.c). It runs
 * single-threaded, so the durable state needs no lock.
 * Usage: molt-powercutfs DURABLE LIVE MOUNTPOINT [FUSE options] */
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "pcfs.h"

#define LIVE(var, path) \
    char var[PATH_MAX]; \
    pcfs_live_path(var, path)

static int neg(int rc) { return rc < 0 ? -errno : rc; }

/* A new inode may reuse the number of a removed one: it has no durable content. */
static void created(const char *lp)
{
    struct fuse_context *c = fuse_get_context();
    struct stat st;

    if (lstat(lp, &st) < 0)
        return;
    pcfs_forget(st.st_ino);
    if (geteuid() == 0 && c)
        lchown(lp, c->uid, c->gid);
}

/* The last name of an inode is going: its durable content is forgotten. */
static ino_t last_name(const char *lp)
{
    struct stat st;

    if (lstat(lp, &st) < 0)
        return 0;
    return S_ISDIR(st.st_mode) || st.st_nlink <= 1 ? st.st_ino : 0;
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    cfg->use_ino = 1;
    cfg->hard_remove = 1; /* no .fuse_hidden files to become durable names */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    return NULL;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    LIVE(lp, path);
    return neg(fi ? fstat((int)fi->fh, st) : lstat(lp, st));
}

static int pc_access(const char *path, int mask)
{
    LIVE(lp, path);
    return neg(access(lp, mask));
}

static int pc_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n;

    LIVE(lp, path);
    n = readlink(lp, buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

static int pc_mkdir(const char *path, mode_t mode)
{
    LIVE(lp, path);
    if (mkdir(lp, mode) < 0)
        return -errno;
    created(lp);
    return 0;
}

static int pc_symlink(const char *target, const char *path)
{
    LIVE(lp, path);
    if (symlink(target, lp) < 0)
        return -errno;
    created(lp);
    return 0;
}

static int pc_mknod(const char *path, mode_t mode, dev_t dev)
{
    LIVE(lp, path);
    if (mknod(lp, mode, dev) < 0)
        return -errno;
    created(lp);
    return 0;
}

static int pc_unlink(const char *path)
{
    ino_t ino;

    LIVE(lp, path);
    ino = last_name(lp);
    if (unlink(lp) < 0)
        return -errno;
    if (ino)
        pcfs_forget(ino);
    return 0;
}

static int pc_rmdir(const char *path)
{
    ino_t ino;

    LIVE(lp, path);
    ino = last_name(lp);
    if (rmdir(lp) < 0)
        return -errno;
    if (ino)
        pcfs_forget(ino);
    return 0;
}

static int pc_rename(const char *from, const char *to, unsigned int flags)
{
    ino_t ino;

    LIVE(lf, from);
    LIVE(lt, to);
    if (flags)
        return -EINVAL; /* RENAME_NOREPLACE and RENAME_EXCHANGE are not modelled */
    ino = last_name(lt);
    if (rename(lf, lt) < 0)
        return -errno;
    if (ino)
        pcfs_forget(ino);
    return 0;
}

static int pc_link(const char *from, const char *to)
{
    LIVE(lf, from);
    LIVE(lt, to);
    return neg(link(lf, lt));
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LIVE(lp, path);
    return neg(fi ? fchmod((int)fi->fh, mode) : chmod(lp, mode));
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    LIVE(lp, path);
    return neg(fi ? fchown((int)fi->fh, uid, gid) : lchown(lp, uid, gid));
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    LIVE(lp, path);
    return neg(fi ? ftruncate((int)fi->fh, size) : truncate(lp, size));
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    LIVE(lp, path);
    return neg(fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, lp, tv, AT_SYMLINK_NOFOLLOW));
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int fd;

    LIVE(lp, path);
    fd = open(lp, fi->flags | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    created(lp);
    return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi)
{
    int fd;

    LIVE(lp, path);
    fd = open(lp, fi->flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int pc_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    ssize_t n = pread((int)fi->fh, buf, size, off);

    return n < 0 ? -errno : (int)n;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    ssize_t n = pwrite((int)fi->fh, buf, size, off);

    return n < 0 ? -errno : (int)n;
}

static int pc_statfs(const char *path, struct statvfs *sv)
{
    return neg(statvfs(pcfs.live, sv));
}

static int pc_release(const char *path, struct fuse_file_info *fi)
{
    close((int)fi->fh);
    return 0;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    return pcfs_sync_file(path);
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    struct dirent *de;
    DIR *d;

    LIVE(lp, path);
    d = opendir(lp);
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(path, "/") == 0 && strcmp(de->d_name, PCFS_ORPHANS) == 0)
            continue;
        if (fill(buf, de->d_name, NULL, 0, 0))
            break;
    }
    closedir(d);
    return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    return pcfs_sync_dir(path);
}

static const struct fuse_operations pc_ops = {
    .init = pc_init,
    .getattr = pc_getattr,
    .access = pc_access,
    .readlink = pc_readlink,
    .mknod = pc_mknod,
    .mkdir = pc_mkdir,
    .symlink = pc_symlink,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .rename = pc_rename,
    .link = pc_link,
    .chmod = pc_chmod,
    .chown = pc_chown,
    .truncate = pc_truncate,
    .utimens = pc_utimens,
    .create = pc_create,
    .open = pc_open,
    .read = pc_read,
    .write = pc_write,
    .statfs = pc_statfs,
    .release = pc_release,
    .fsync = pc_fsync,
    .readdir = pc_readdir,
    .fsyncdir = pc_fsyncdir,
};

int main(int argc, char **argv)
{
    static char single[] = "-s";
    char *fargv[64];
    int fargc = 0;

    if (argc < 4 || argc > 60) {
        fprintf(stderr, "usage: %s DURABLE LIVE MOUNTPOINT [FUSE options]\n", argv[0]);
        return 2;
    }
    if (!realpath(argv[1], pcfs.durable)) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
        return 1;
    }
    snprintf(pcfs.live, sizeof(pcfs.live), "%s", argv[2]);
    if (pcfs.live[0] != '/' || pcfs_boot() < 0) {
        fprintf(stderr, "%s: cannot copy %s to %s (LIVE must be absolute)\n", argv[0],
                pcfs.durable, pcfs.live);
        return 1;
    }
    fargv[fargc++] = argv[0];
    fargv[fargc++] = single; /* single-threaded: the durable state has no lock */
    for (int i = 3; i < argc; i++)
        fargv[fargc++] = argv[i];
    fargv[fargc] = NULL;
    return fuse_main(fargc, fargv, &pc_ops, NULL);
}
