/* fs.h: file-system helpers whose results survive a crash or power cut:
 * every replacement is temp file, fsync, rename(2), fsync of the directory. */
#ifndef MOLT_FS_H
#define MOLT_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* write(2) until all of data is written, retrying EINTR; -1 with errno set. */
int molt_fs_write_all(int fd, const void *data, size_t len);
/* Replaces path with data atomically; the file gets mode. */
int molt_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct molt_err *err);
/* Points linkpath at target atomically (new symlink beside it, then rename). */
int molt_fs_symlink_atomic(const char *target, const char *linkpath, struct molt_err *err);
int molt_fs_fsync_dir(const char *dir, struct molt_err *err);
/* 1 when path is dir or lies inside it (both absolute and resolved: the
 * spelling is compared, component by component, not the file system). */
int molt_fs_path_within(const char *path, const char *dir);
/* The user's name, or "uid N", in buf: for messages such as "molt cannot
 * read /etc/molt/molt.conf". */
const char *molt_fs_user_name(uid_t uid, char *buf, size_t size);
/* Reads a whole file, NUL-terminated, refusing files larger than max bytes.
 * *out is malloc'd. A missing file gives MOLT_E_NOTFOUND. */
int molt_fs_read_file(const char *path, size_t max, char **out, size_t *len,
                      struct molt_err *err);
/* mkdir -p; existing directories are left as they are. */
int molt_fs_mkdir_p(const char *path, mode_t mode, struct molt_err *err);
/* rm -rf that never follows symlinks; a missing path is not an error. */
int molt_fs_remove_tree(const char *path, struct molt_err *err);
/* Bytes available to an unprivileged user on the file system holding path. */
int molt_fs_free_bytes(const char *path, uint64_t *out, struct molt_err *err);
/* Size of one file (not following links); 0 when it is missing. */
uint64_t molt_fs_file_size(const char *path);
/* Joins dir and name into out (size n); fails rather than truncating. */
int molt_fs_join(char *out, size_t n, const char *dir, const char *name, struct molt_err *err);
int molt_fs_exists(const char *path);
/* Proves that a directory made in from_dir can be rename(2)d into to_dir, as a
 * staged build is moved into versions/: makes a temporary directory in from_dir,
 * renames it into to_dir and removes it. Comparing st_dev is not enough: bind
 * mounts of one file system (systemd's ReadWritePaths=) also refuse with EXDEV.
 * The message names both paths and the errno (EXDEV, EROFS, EACCES, ...). */
int molt_fs_probe_rename(const char *from_dir, const char *to_dir, struct molt_err *err);

#endif
