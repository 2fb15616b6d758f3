/* package_tree.c: re-checks an unpacked version tree against its manifest.json
 * (the installer's "is this version complete and untouched?"). */
#include "package.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "package_int.h"

int molt_pkg_open_parent(int rootfd, const char *rel, const char **base, struct molt_err *err)
{
    char buf[PATH_MAX];
    char *p = buf;
    int fd = dup(rootfd);

    snprintf(buf, sizeof(buf), "%s", rel);
    *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    if (fd < 0)
        return molt_err_errno(err, "dup");
    for (char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        int next;
        *slash = '\0';
        next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0)
            return molt_err_errno(err, "open directory of %s", rel);
        fd = next;
    }
    return fd;
}

static int check_file(int dirfd, const char *base, const struct molt_pkg_file *f,
                      struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    int fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return molt_err_errno(err, "%s", f->path);
    rc = molt_pkg_hash_fd(fd, f->path, hex, &size, err);
    close(fd);
    if (rc < 0)
        return rc;
    if (size != f->size || strcmp(hex, f->sha256) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "%s: content differs from the manifest", f->path);
    return 0;
}

static int check_entry(int rootfd, const struct molt_pkg_file *f, struct molt_err *err)
{
    const char *base;
    struct stat sb;
    char target[PATH_MAX];
    int dirfd = molt_pkg_open_parent(rootfd, f->path, &base, err);
    int rc = 0;
    ssize_t n;

    if (dirfd < 0)
        return dirfd;
    if (fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = molt_err_errno(err, "%s", f->path);
        goto out;
    }
    switch (f->type) {
    case MOLT_PKG_FILE:
        rc = S_ISREG(sb.st_mode) ? check_file(dirfd, base, f, err)
                                 : molt_err_set(err, MOLT_E_VERIFY, "%s: not a file", f->path);
        break;
    case MOLT_PKG_DIR:
        if (!S_ISDIR(sb.st_mode))
            rc = molt_err_set(err, MOLT_E_VERIFY, "%s: not a directory", f->path);
        break;
    case MOLT_PKG_SYMLINK:
        n = S_ISLNK(sb.st_mode) ? readlinkat(dirfd, base, target, sizeof(target) - 1) : -1;
        if (n >= 0)
            target[n] = '\0';
        if (n < 0 || strcmp(target, f->target) != 0)
            rc = molt_err_set(err, MOLT_E_VERIFY, "%s: not the listed symlink", f->path);
        break;
    }
out:
    close(dirfd);
    return rc;
}

/* Walks the real tree: every entry must be listed (manifest.json at the root aside). */
static int find_extras(int fd, const char *prefix, const struct molt_manifest *m, int depth,
                       struct molt_err *err)
{
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (depth > 64)
        return molt_err_set(err, MOLT_E_LIMIT, "tree deeper than 64 levels");
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return molt_err_errno(err, "opendir %s", prefix[0] ? prefix : ".");
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char rel[PATH_MAX];
        const struct molt_pkg_file *f;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!prefix[0] && strcmp(de->d_name, MOLT_PKG_MANIFEST_NAME) == 0)
            continue;
        if (snprintf(rel, sizeof(rel), "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name) >=
            (int)sizeof(rel)) {
            rc = molt_err_set(err, MOLT_E_LIMIT, "path too long under %s", prefix);
            break;
        }
        f = molt_pkg_manifest_find(m, rel);
        if (!f) {
            rc = molt_err_set(err, MOLT_E_VERIFY, "not in manifest: %s", rel);
        } else if (f->type == MOLT_PKG_DIR) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc =
                sub < 0 ? molt_err_errno(err, "%s", rel) : find_extras(sub, rel, m, depth + 1, err);
        }
    }
    closedir(d);
    return rc;
}

/* dir's manifest.json, a regular file of the tree (not a link out of it). */
static int read_manifest(int rootfd, const char *dir, char **text, size_t *len,
                         struct molt_err *err)
{
    char path[PATH_MAX];
    struct stat st;
    int rc = molt_fs_join(path, sizeof(path), dir, MOLT_PKG_MANIFEST_NAME, err);

    if (rc < 0)
        return rc;
    if (fstatat(rootfd, MOLT_PKG_MANIFEST_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG(st.st_mode))
        return molt_err_set(err, MOLT_E_VERIFY, "%s: not a regular file", path);
    return molt_fs_read_file(path, 4u << 20, text, len, err);
}

int molt_pkg_tree_check(const char *dir, const char *manifest_sha256, struct molt_err *err)
{
    struct molt_manifest m;
    char *text = NULL;
    size_t len = 0;
    int rootfd = -1;
    int rc;

    memset(&m, 0, sizeof(m));
    /* Not through a symlink: what is checked must be what is renamed into place. */
    if ((rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = molt_err_errno(err, "open %s", dir);
    else
        rc = read_manifest(rootfd, dir, &text, &len, err);
    if (rc == 0 && manifest_sha256)
        rc = molt_pkg_manifest_bytes_check(text, len, manifest_sha256, err);
    if (rc == 0)
        rc = molt_pkg_manifest_parse(text, len, NULL, &m, err);
    for (size_t i = 0; rc == 0 && i < m.nfiles; i++)
        rc = check_entry(rootfd, &m.files[i], err);
    if (rc == 0) {
        int fd = dup(rootfd);
        rc = fd < 0 ? molt_err_errno(err, "dup") : find_extras(fd, "", &m, 0, err);
    }
    if (rootfd >= 0)
        close(rootfd);
    molt_pkg_manifest_free(&m);
    free(text);
    if (rc < 0)
        molt_err_prefix(err, "%s", dir);
    return rc;
}
