/* layout.c: the install root (versions/, current, previous, bin/molt-installer),
 * the state-dir lock and the journal as the installer's commands see them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "installer.h"
#include "log.h"
#include "version.h"

#define LOCK_FILE "installer.lock"
#define LOCK_WAIT_MS 30000
#define INSTALLER_MAX_BYTES (256u << 20)

int64_t inst_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int inst_path(const struct inst *in, const char *rel, char *out, size_t n, struct molt_err *err)
{
    return molt_fs_join(out, n, in->root, rel, err);
}

int inst_version_path(const struct inst *in, const char *version, const char *rel, char *out,
                      size_t n, struct molt_err *err)
{
    int len;

    if (!molt_version_valid(version))
        return molt_err_set(err, MOLT_E_INVAL, "'%.64s' is not a version", version);
    if (rel)
        len = snprintf(out, n, "%s/versions/%s/%s", in->root, version, rel);
    else
        len = snprintf(out, n, "%s/versions/%s", in->root, version);
    if (len < 0 || (size_t)len >= n)
        return molt_err_set(err, MOLT_E_LIMIT, "path too long under %s", in->root);
    return 0;
}

int inst_read_link(const struct inst *in, const char *link, char out[INST_VERSION_MAX],
                   struct molt_err *err)
{
    char path[PATH_MAX], target[PATH_MAX];
    ssize_t n;
    int rc;

    out[0] = '\0';
    if ((rc = inst_path(in, link, path, sizeof(path), err)) < 0)
        return rc;
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return 0;
        return molt_err_errno(err, "readlink %s", path);
    }
    target[n] = '\0';
    if (strncmp(target, "versions/", 9) != 0 || !molt_version_valid(target + 9) ||
        strlen(target + 9) >= INST_VERSION_MAX)
        return molt_err_set(err, MOLT_E_STATE,
                            "%s: unexpected target '%.200s' (expected "
                            "versions/<version>)",
                            path, target);
    memcpy(out, target + 9, strlen(target + 9) + 1);
    return 0;
}

int inst_write_link(const struct inst *in, const char *link, const char *version,
                    struct molt_err *err)
{
    char path[PATH_MAX], target[PATH_MAX];
    int rc;

    if ((rc = inst_path(in, link, path, sizeof(path), err)) < 0)
        return rc;
    if (!version[0]) {
        if (unlink(path) < 0 && errno != ENOENT)
            return molt_err_errno(err, "remove %s", path);
        return molt_fs_fsync_dir(in->root, err);
    }
    if (!molt_version_valid(version))
        return molt_err_set(err, MOLT_E_INVAL, "'%.64s' is not a version", version);
    snprintf(target, sizeof(target), "versions/%s", version);
    return molt_fs_symlink_atomic(target, path, err);
}

static int check_executable(const char *dir, const char *rel, struct molt_err *err)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    if ((rc = molt_fs_join(path, sizeof(path), dir, rel, err)) < 0)
        return rc;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return molt_err_set(err, MOLT_E_INVAL, "%s: missing %s", dir, rel);
        return molt_err_errno(err, "stat %s", path);
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
        return molt_err_set(err, MOLT_E_INVAL, "%s: %s is not an executable file", dir, rel);
    return 0;
}

int inst_check_build_dir(const char *dir, struct molt_err *err)
{
    struct stat st;
    int rc;

    if (lstat(dir, &st) < 0)
        return molt_err_errno(err, "%s", dir);
    if (!S_ISDIR(st.st_mode))
        return molt_err_set(err, MOLT_E_INVAL, "%s: not a directory", dir);
    if ((rc = check_executable(dir, "bin/molt-agent", err)) < 0)
        return rc;
    return check_executable(dir, "bin/molt-installer", err);
}

int inst_check_version(const struct inst *in, const char *version, struct molt_err *err)
{
    char dir[PATH_MAX];
    int rc;

    if ((rc = inst_version_path(in, version, NULL, dir, sizeof(dir), err)) < 0)
        return rc;
    return inst_check_build_dir(dir, err);
}

static int fsync_tree_at(int dirfd, const char *name, struct molt_err *err);

static int fsync_dir_contents(int fd, const char *name, struct molt_err *err)
{
    DIR *d = fdopendir(dup(fd));
    struct dirent *de;
    int rc = 0;

    if (!d)
        return molt_err_errno(err, "opendir %s", name);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc = fsync_tree_at(fd, de->d_name, err);
    }
    closedir(d);
    return rc;
}

static int fsync_tree_at(int dirfd, const char *name, struct molt_err *err)
{
    struct stat st;
    int fd;
    int rc = 0;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return molt_err_errno(err, "stat %s", name);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return 0; /* symlinks live in their directory, synced with it */
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "open %s", name);
    if (S_ISDIR(st.st_mode))
        rc = fsync_dir_contents(fd, name, err);
    if (rc == 0 && fsync(fd) < 0 && errno != EINVAL)
        rc = molt_err_errno(err, "fsync %s", name);
    close(fd);
    return rc;
}

int inst_fsync_tree(const char *dir, struct molt_err *err)
{
    int rc = fsync_tree_at(AT_FDCWD, dir, err);

    if (rc < 0)
        molt_err_prefix(err, "sync %s", dir);
    return rc;
}

int inst_discard_tree(const char *path, struct molt_err *err)
{
    char aside[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    const char *base = slash ? slash + 1 : path;
    char dir[PATH_MAX];
    int rc;

    snprintf(dir, sizeof(dir), "%.*s", dirlen, slash ? path : ".");
    if (snprintf(aside, sizeof(aside), "%s/.discard-%s-%ld-%lld", dir, base, (long)getpid(),
                 (long long)inst_now_ms()) >= (int)sizeof(aside))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", path);
    if (rename(path, aside) < 0) {
        if (errno == ENOENT)
            return 0;
        return molt_err_errno(err, "rename %s aside", path);
    }
    if ((rc = molt_fs_fsync_dir(dir, err)) < 0)
        return rc;
    return molt_fs_remove_tree(aside, err);
}

int inst_sync_installer(const struct inst *in, const char *version, struct molt_err *err)
{
    char src[PATH_MAX], dst[PATH_MAX], bindir[PATH_MAX];
    char *want = NULL, *have = NULL;
    size_t want_len = 0, have_len = 0;
    int rc;

    if ((rc = inst_version_path(in, version, "bin/molt-installer", src, sizeof(src), err)) < 0 ||
        (rc = inst_path(in, "bin", bindir, sizeof(bindir), err)) < 0 ||
        (rc = inst_path(in, "bin/molt-installer", dst, sizeof(dst), err)) < 0)
        return rc;
    if ((rc = molt_fs_read_file(src, INSTALLER_MAX_BYTES, &want, &want_len, err)) < 0)
        goto out;
    rc = molt_fs_read_file(dst, INSTALLER_MAX_BYTES, &have, &have_len, err);
    if (rc == 0 && have_len == want_len && memcmp(have, want, want_len) == 0)
        goto out;
    if ((rc = molt_fs_mkdir_p(bindir, 0755, err)) < 0)
        goto out;
    rc = molt_fs_write_atomic(dst, want, want_len, 0755, err);
    if (rc == 0)
        molt_log_info("installer.replaced", "path=%s from=%s", dst, version);
out:
    free(want);
    free(have);
    if (rc < 0)
        molt_err_prefix(err, "install the stable molt-installer of %s", version);
    return rc;
}

int inst_lock(struct inst *in, struct molt_err *err)
{
    char path[PATH_MAX];
    int waited = 0;
    int rc;

    if (in->lock_fd >= 0)
        return 0;
    if ((rc = molt_fs_mkdir_p(in->state_dir, 0750, err)) < 0 ||
        (rc = molt_fs_join(path, sizeof(path), in->state_dir, LOCK_FILE, err)) < 0)
        return rc;
    in->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (in->lock_fd < 0)
        return molt_err_errno(err, "open %s", path);
    /* Bounded, so a wedged process shows up as an error instead of a hang. */
    while (flock(in->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = molt_err_errno(err, "lock %s", path);
            goto fail;
        }
        if (waited >= LOCK_WAIT_MS) {
            rc = molt_err_set(err, MOLT_E_BUSY, "%s: held by another molt-installer for %d s", path,
                              LOCK_WAIT_MS / 1000);
            goto fail;
        }
        usleep(20000);
        waited += 20;
    }
    return 0;
fail:
    close(in->lock_fd);
    in->lock_fd = -1;
    return rc;
}

void inst_unlock(struct inst *in)
{
    if (in->lock_fd >= 0)
        close(in->lock_fd);
    in->lock_fd = -1;
}

int inst_journal_open(struct inst *in, struct molt_journal *j, struct molt_err *err)
{
    struct molt_err perr = MOLT_ERR_INIT;
    char aside[PATH_MAX];
    int rc = molt_journal_load(in->journal_path, j, &perr);

    if (rc == 0)
        return 0;
    if (rc != MOLT_E_PARSE) {
        *err = perr;
        return rc;
    }
    if (snprintf(aside, sizeof(aside), "%s.corrupt-%lld", in->journal_path,
                 (long long)inst_now_ms()) >= (int)sizeof(aside))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", in->journal_path);
    molt_log_error("installer.journal_corrupt",
                   "error=\"%s\" moved_to=%s action=\"no trial assumed, "
                   "current kept as it is\"",
                   perr.msg, aside);
    if (rename(in->journal_path, aside) < 0)
        return molt_err_errno(err, "move corrupt journal aside to %s", aside);
    molt_journal_init(j);
    j->updated_ms = inst_now_ms();
    return inst_journal_save(in, j, err);
}

int inst_journal_save(struct inst *in, const struct molt_journal *j, struct molt_err *err)
{
    return molt_journal_save(in->journal_path, j, err);
}
