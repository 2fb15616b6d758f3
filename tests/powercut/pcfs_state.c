/* pcfs_state.c: the durable state of molt-powercutfs (test tool, see README.md).
 * The durable tree is a real directory; every live inode that has durable
 * content is mapped to the path holding it there, either at its durable name or,
 * while it has none yet, under .pcfs-orphans/<ino>. Syncs move content into the
 * durable tree; a "power cut" is a remount that copies the durable tree to live. */
#include "pcfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct pcfs pcfs;

static struct pcfs_ent *find_ino(ino_t ino)
{
    for (size_t i = 0; i < pcfs.n; i++)
        if (pcfs.ents[i].ino == ino)
            return &pcfs.ents[i];
    return NULL;
}

static struct pcfs_ent *find_dpath(const char *dpath)
{
    for (size_t i = 0; i < pcfs.n; i++)
        if (strcmp(pcfs.ents[i].dpath, dpath) == 0)
            return &pcfs.ents[i];
    return NULL;
}

static void map_set(ino_t ino, const char *dpath)
{
    struct pcfs_ent *e = find_ino(ino);

    if (!e) {
        if (pcfs.n == pcfs.cap) {
            size_t cap = pcfs.cap ? pcfs.cap * 2 : 256;
            struct pcfs_ent *n = realloc(pcfs.ents, cap * sizeof(*n));
            if (!n)
                abort(); /* a test tool: out of memory ends the run loudly */
            pcfs.ents = n;
            pcfs.cap = cap;
        }
        e = &pcfs.ents[pcfs.n++];
        e->ino = ino;
    }
    snprintf(e->dpath, sizeof(e->dpath), "%s", dpath);
}

static void map_drop_index(size_t i)
{
    pcfs.ents[i] = pcfs.ents[--pcfs.n];
}

void pcfs_forget(ino_t ino)
{
    for (size_t i = 0; i < pcfs.n; i++)
        if (pcfs.ents[i].ino == ino) {
            map_drop_index(i);
            return;
        }
}

/* Durable paths under PREFIX (a durable path just removed or moved) follow it. */
static void map_move_prefix(const char *from, const char *to)
{
    size_t n = strlen(from);

    for (size_t i = 0; i < pcfs.n; i++) {
        char *p = pcfs.ents[i].dpath;
        if (strncmp(p, from, n) == 0 && (p[n] == '/' || p[n] == '\0')) {
            char buf[PATH_MAX];
            if (to) {
                snprintf(buf, sizeof(buf), "%s%s", to, p + n);
                snprintf(p, PATH_MAX, "%s", buf);
            } else {
                map_drop_index(i--);
            }
        }
    }
}

static char rm_[] = "rm", rf_[] = "-rf", dd_[] = "--", cp_[] = "cp", a_[] = "-a";

static int run(char *const argv[])
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void remove_durable(const char *dpath)
{
    char path[PATH_MAX];
    char *argv[] = {rm_, rf_, dd_, path, NULL};

    snprintf(path, sizeof(path), "%s", dpath);
    run(argv);
    map_move_prefix(dpath, NULL);
}

static int copy_fd(int in, int out)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return -1;
    return n < 0 ? -1 : 0;
}

/* The durable copy of a regular file's data: written in place, so that every
 * durable name of the inode (hard links in the durable tree) sees it. */
static int write_durable_data(int livefd, const char *dpath, const struct stat *st)
{
    int out = open(dpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc;

    if (out < 0)
        return -errno;
    rc = lseek(livefd, 0, SEEK_SET) < 0 || copy_fd(livefd, out) < 0 ? -errno : 0;
    if (rc == 0 && fchmod(out, st->st_mode & 07777) < 0)
        rc = -errno;
    if (rc == 0 && geteuid() == 0 && fchown(out, st->st_uid, st->st_gid) < 0)
        rc = -errno;
    close(out);
    return rc;
}

int pcfs_sync_file(const char *path)
{
    char live[PATH_MAX];
    char orphan[PATH_MAX];
    struct pcfs_ent *e;
    struct stat st;
    int fd, rc;

    pcfs_live_path(live, path);
    fd = open(live, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0; /* gone, or not a file: nothing of it to keep */
    }
    e = find_ino(st.st_ino);
    if (!e) {
        snprintf(orphan, sizeof(orphan), "%s/%s/%lu", pcfs.durable, PCFS_ORPHANS,
                 (unsigned long)st.st_ino);
        map_set(st.st_ino, orphan);
        e = find_ino(st.st_ino);
    }
    rc = write_durable_data(fd, e->dpath, &st);
    close(fd);
    pcfs.stats.file_syncs++;
    return rc;
}

void pcfs_live_path(char *out, const char *path)
{
    snprintf(out, PATH_MAX, "%s%s", pcfs.live, path);
}

static void durable_path(char *out, const char *ddir, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", ddir, name);
}

static int hidden(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, PCFS_ORPHANS) == 0;
}

/* A durable name whose live name now means another inode, or whose inode is
 * gone, is removed; one whose inode moved to a directory not yet synced stays
 * (the rename becomes durable when its new parent is synced). */
static void drop_stale(const char *live, const char *ddir)
{
    DIR *d = opendir(ddir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char dp[PATH_MAX], lp[PATH_MAX];
        struct pcfs_ent *owner;
        struct stat st;
        if (hidden(de->d_name))
            continue;
        durable_path(dp, ddir, de->d_name);
        durable_path(lp, live, de->d_name);
        owner = find_dpath(dp);
        if (owner && lstat(lp, &st) == 0 && st.st_ino == owner->ino)
            continue;
        if (owner && lstat(lp, &st) < 0 && errno == ENOENT)
            continue;
        remove_durable(dp);
    }
    closedir(d);
}

/* A durable name for an inode that had none: empty for a file (its data is
 * durable only once the file is synced), empty for a directory (its entries
 * only once it is synced), complete for a symlink. */
static int create_fresh(const char *lp, const char *dp, const struct stat *st)
{
    char target[PATH_MAX];
    ssize_t n;
    int fd;

    if (S_ISREG(st->st_mode)) {
        fd = open(dp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
        if (fd < 0)
            return -errno;
        close(fd);
    } else if (S_ISDIR(st->st_mode)) {
        if (mkdir(dp, st->st_mode & 07777) < 0)
            return -errno;
    } else if (S_ISLNK(st->st_mode)) {
        n = readlink(lp, target, sizeof(target) - 1);
        if (n < 0)
            return -errno;
        target[n] = '\0';
        if (symlink(target, dp) < 0)
            return -errno;
    } else {
        return 0; /* devices, fifos and sockets are not modelled */
    }
    if (geteuid() == 0)
        lchown(dp, st->st_uid, st->st_gid);
    chmod(dp, st->st_mode & 07777);
    map_set(st->st_ino, dp);
    return 0;
}

static void add_current(const char *live, const char *ddir)
{
    DIR *d = opendir(live);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char dp[PATH_MAX], lp[PATH_MAX];
        struct pcfs_ent *owner, *e;
        struct stat st, dst;
        if (hidden(de->d_name))
            continue;
        durable_path(dp, ddir, de->d_name);
        durable_path(lp, live, de->d_name);
        if (lstat(lp, &st) < 0)
            continue;
        owner = find_dpath(dp);
        if (owner && owner->ino == st.st_ino)
            continue;
        /* Whatever the durable name held is replaced (pointers into the map
         * do not survive its changes, so paths are copied first). */
        if (lstat(dp, &dst) == 0 || owner)
            remove_durable(dp);
        e = find_ino(st.st_ino);
        if (e) {
            char from[PATH_MAX];
            snprintf(from, sizeof(from), "%s", e->dpath);
            if (rename(from, dp) == 0)
                map_move_prefix(from, dp);
        } else {
            create_fresh(lp, dp, &st);
        }
    }
    closedir(d);
}

int pcfs_sync_dir(const char *path)
{
    char live[PATH_MAX];
    char orphan[PATH_MAX];
    struct pcfs_ent *e;
    struct stat st;

    pcfs_live_path(live, path);
    if (lstat(live, &st) < 0)
        return -errno;
    e = find_ino(st.st_ino);
    if (!e) {
        snprintf(orphan, sizeof(orphan), "%s/%s/%lu", pcfs.durable, PCFS_ORPHANS,
                 (unsigned long)st.st_ino);
        if (mkdir(orphan, st.st_mode & 07777) < 0 && errno != EEXIST)
            return -errno;
        map_set(st.st_ino, orphan);
        e = find_ino(st.st_ino);
    }
    snprintf(orphan, sizeof(orphan), "%s", e->dpath);
    drop_stale(live, orphan);
    add_current(live, orphan);
    chmod(orphan, st.st_mode & 07777);
    pcfs.stats.dir_syncs++;
    return 0;
}

static void map_tree(const char *live, const char *ddir)
{
    DIR *d = opendir(live);
    struct dirent *de;
    struct stat st;

    if (lstat(live, &st) == 0)
        map_set(st.st_ino, ddir);
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char dp[PATH_MAX], lp[PATH_MAX];
        if (hidden(de->d_name))
            continue;
        durable_path(dp, ddir, de->d_name);
        durable_path(lp, live, de->d_name);
        if (lstat(lp, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            map_tree(lp, dp);
        else
            map_set(st.st_ino, dp);
    }
    closedir(d);
}

/* Boot: the live tree is a fresh copy of the durable one; nothing else survives. */
int pcfs_boot(void)
{
    char orphans[PATH_MAX];
    char src[PATH_MAX];
    char *rm_live[] = {rm_, rf_, dd_, pcfs.live, NULL};
    char *rm_orphans[] = {rm_, rf_, dd_, orphans, NULL};
    char *cp[] = {cp_, a_, dd_, src, pcfs.live, NULL};

    snprintf(orphans, sizeof(orphans), "%s/%s", pcfs.durable, PCFS_ORPHANS);
    snprintf(src, sizeof(src), "%s/.", pcfs.durable);
    if (run(rm_orphans) < 0 || run(rm_live) < 0 || mkdir(pcfs.live, 0755) < 0 || run(cp) < 0)
        return -1;
    if (mkdir(orphans, 0700) < 0)
        return -1;
    map_tree(pcfs.live, pcfs.durable);
    return 0;
}
