/* fs.c: crash-safe file replacement and small file-system helpers. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fault.h"

static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        snprintf(out, n, ".");
    } else if (slash == path) {
        snprintf(out, n, "/");
    } else {
        snprintf(out, n, "%.*s", (int)(slash - path), path);
    }
}

int molt_fs_join(char *out, size_t n, const char *dir, const char *name, struct molt_err *err)
{
    int len = snprintf(out, n, "%s/%s", dir, name);

    if (len < 0 || (size_t)len >= n)
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s/%s", dir, name);
    return 0;
}

int molt_fs_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

int molt_fs_path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(path, dir, n) == 0 &&
           (path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/'));
}

int molt_fs_fsync_dir(const char *dir, struct molt_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return molt_err_errno(err, "open directory %s", dir);
    /* Some file systems refuse fsync on directories; that is not a failure. */
    if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
        int rc = molt_err_errno(err, "fsync directory %s", dir);
        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

int molt_fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int molt_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct molt_err *err)
{
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    int fd = -1;
    int rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", path);
    dir_of(path, dir, sizeof(dir));
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "create temporary file for %s", path);
    if (fchmod(fd, mode) < 0) {
        rc = molt_err_errno(err, "chmod %s", tmp);
        goto fail;
    }
    if (MOLT_FAULT_INJECT("fs.write.enospc")) {
        errno = ENOSPC;
        rc = molt_err_errno(err, "write %s", tmp);
        goto fail;
    }
    if (molt_fs_write_all(fd, data, len) < 0) {
        rc = molt_err_errno(err, "write %s", tmp);
        goto fail;
    }
    if (fsync(fd) < 0) {
        rc = molt_err_errno(err, "fsync %s", tmp);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = molt_err_errno(err, "close %s", tmp);
        goto fail;
    }
    fd = -1;
    MOLT_FAULT_POINT("fs.write.before_rename");
    if (rename(tmp, path) < 0) {
        rc = molt_err_errno(err, "rename %s to %s", tmp, path);
        goto fail;
    }
    /* Renamed but not yet durable: a power cut here must find the old file. */
    MOLT_FAULT_POINT("fs.write.before_dir_sync");
    return molt_fs_fsync_dir(dir, err);

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int molt_fs_symlink_atomic(const char *target, const char *linkpath, struct molt_err *err)
{
    char tmp[PATH_MAX];
    char dir[PATH_MAX];

    if (snprintf(tmp, sizeof(tmp), "%s.new", linkpath) >= (int)sizeof(tmp))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", linkpath);
    dir_of(linkpath, dir, sizeof(dir));
    if (unlink(tmp) < 0 && errno != ENOENT)
        return molt_err_errno(err, "remove stale %s", tmp);
    if (symlink(target, tmp) < 0)
        return molt_err_errno(err, "symlink %s -> %s", tmp, target);
    if (rename(tmp, linkpath) < 0) {
        int rc = molt_err_errno(err, "rename %s to %s", tmp, linkpath);
        unlink(tmp);
        return rc;
    }
    return molt_fs_fsync_dir(dir, err);
}

const char *molt_fs_user_name(uid_t uid, char *buf, size_t size)
{
    const struct passwd *pw = getpwuid(uid);

    if (pw && pw->pw_name)
        snprintf(buf, size, "%s", pw->pw_name);
    else
        snprintf(buf, size, "uid %lu", (unsigned long)uid);
    return buf;
}

int molt_fs_read_file(const char *path, size_t max, char **out, size_t *len,
                      struct molt_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd;
    int rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return molt_err_set(err, MOLT_E_NOTFOUND, "%s: no such file", path);
        if (errno == EACCES) {
            char user[64];
            return molt_err_set(err, MOLT_E_IO, "%s cannot read %s (permission denied)",
                                molt_fs_user_name(geteuid(), user, sizeof(user)), path);
        }
        return molt_err_errno(err, "open %s", path);
    }
    if (fstat(fd, &st) < 0) {
        rc = molt_err_errno(err, "stat %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = molt_err_set(err, MOLT_E_INVAL, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = molt_err_set(err, MOLT_E_LIMIT, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = molt_err_errno(err, "read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = got;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

int molt_fs_mkdir_p(const char *path, mode_t mode, struct molt_err *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return molt_err_set(err, MOLT_E_INVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) == 0) {
                /* A new directory's name is durable only once its parent is synced (a power
                 * cut would otherwise take it, and all synced inside it, away). */
                char parent[PATH_MAX];
                int rc;

                dir_of(buf, parent, sizeof(parent));
                if ((rc = molt_fs_fsync_dir(parent, err)) < 0)
                    return rc;
            } else if (errno != EEXIST) {
                return molt_err_errno(err, "mkdir %s", buf);
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

static int remove_at(int dirfd, const char *name, struct molt_err *err);

static int remove_dir_contents(int fd, const char *name, struct molt_err *err)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    int rc = 0;

    if (!d) {
        close(fd);
        return molt_err_errno(err, "opendir %s", name);
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = remove_at(dirfd(d), de->d_name, err);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

static int remove_at(int dirfd, const char *name, struct molt_err *err)
{
    struct stat st;
    int fd;
    int rc;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : molt_err_errno(err, "stat %s", name);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            return molt_err_errno(err, "remove %s", name);
        return 0;
    }
    /* A read-only directory (from a package) must become writable to empty it. */
    fchmodat(dirfd, name, 0700, 0);
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "open %s", name);
    rc = remove_dir_contents(fd, name, err);
    if (rc < 0)
        return rc;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return molt_err_errno(err, "rmdir %s", name);
    return 0;
}

int molt_fs_remove_tree(const char *path, struct molt_err *err)
{
    int rc = remove_at(AT_FDCWD, path, err);

    if (rc < 0)
        molt_err_prefix(err, "remove %s", path);
    return rc;
}

int molt_fs_free_bytes(const char *path, uint64_t *out, struct molt_err *err)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0)
        return molt_err_errno(err, "statvfs %s", path);
    *out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 0;
}

int molt_fs_probe_rename(const char *from_dir, const char *to_dir, struct molt_err *err)
{
    char from[PATH_MAX];
    char to[PATH_MAX];
    int rc;

    if (snprintf(from, sizeof(from), "%s/.molt-probe.XXXXXX", from_dir) >= (int)sizeof(from))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", from_dir);
    if (!mkdtemp(from))
        return molt_err_errno(err, "create a probe directory in %s", from_dir);
    rc = molt_fs_join(to, sizeof(to), to_dir, strrchr(from, '/') + 1, err);
    if (rc < 0)
        goto fail;
    if (rename(from, to) < 0) {
        rc = molt_err_errno(err, "probe rename from %s into %s", from_dir, to_dir);
        goto fail;
    }
    if (rmdir(to) < 0)
        return molt_err_errno(err, "remove probe directory %s", to);
    return 0;

fail:
    rmdir(from);
    return rc;
}

uint64_t molt_fs_file_size(const char *path)
{
    struct stat s;

    if (lstat(path, &s) < 0)
        return 0;
    return (uint64_t)s.st_size;
}
