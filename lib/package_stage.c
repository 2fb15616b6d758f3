/* package_stage.c: safe extraction of a verified package into a fresh
 * directory of the upgrade dir, and the same checks without writing.
 *
 * libarchive's archive_write_disk resolves names from the working directory;
 * its SECURE_* flags then re-check each path. We do not use it: every entry is
 * written relative to a directory fd we created ourselves, with openat and
 * O_NOFOLLOW|O_EXCL, after the rules of its secure flags and stricter ones of
 * our own were checked (docs/package-format.md, "Staging"). */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "fs.h"
#include "log.h"
#include "package_int.h"
#include "text.h"

/* The package file as libarchive reads it, hashed on the way through, so the
 * bytes unpacked are provably the bytes the statement describes. */
struct pkg_src {
    int fd;
    int hashing;
    struct molt_pkg_hasher h;
    struct molt_err err;
    int failed;
    unsigned char buf[65536];
};

struct stage {
    struct archive *a;
    struct pkg_src *src;
    const struct molt_statement *st;
    struct molt_pkg_limits lim;
    struct molt_manifest m;
    char *manifest_text;
    size_t manifest_len;
    int rootfd; /* -1: check only, write nothing */
};

static la_ssize_t src_read(struct archive *a, void *ud, const void **out)
{
    struct pkg_src *s = ud;
    ssize_t n;

    do {
        n = read(s->fd, s->buf, sizeof(s->buf));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        int saved = errno;
        molt_err_errno(&s->err, "read package");
        s->failed = 1;
        archive_set_error(a, saved, "%s", s->err.msg);
        return -1;
    }
    if (n > 0 && s->hashing && molt_pkg_hasher_update(&s->h, s->buf, (size_t)n, &s->err) < 0) {
        s->failed = 1;
        archive_set_error(a, EFBIG, "%s", s->err.msg);
        return -1;
    }
    *out = s->buf;
    return n;
}

/* libarchive's message, or ours when our read callback is what failed. */
static int archive_fail(struct stage *s, const char *what, struct molt_err *err)
{
    if (s->src->failed) {
        *err = s->src->err;
        return err->code;
    }
    return molt_err_set(err, MOLT_E_VERIFY, "archive: %s: %s", what,
                        archive_error_string(s->a) ? archive_error_string(s->a) : "error");
}

static int open_archive(struct stage *s, const char *package, struct molt_err *err)
{
    struct stat sb;

    s->src->fd = open(package, O_RDONLY | O_CLOEXEC);
    if (s->src->fd < 0)
        return molt_err_errno(err, "open %s", package);
    if (fstat(s->src->fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return molt_err_set(err, MOLT_E_INVAL, "%s: not a regular file", package);
    if (s->st) {
        s->src->hashing = 1;
        if (molt_pkg_hasher_init(&s->src->h, s->st->size, err) < 0)
            return err->code;
    }
    s->a = archive_read_new();
    if (!s->a)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    archive_read_support_filter_gzip(s->a);
    archive_read_support_filter_zstd(s->a);
    archive_read_support_format_tar(s->a);
    if (archive_read_open(s->a, s->src, NULL, src_read, NULL) != ARCHIVE_OK)
        return archive_fail(s, "open", err);
    return 0;
}

/* Compression must be what the file name (statement) says, gzip or zstd. */
static int check_filter(struct stage *s, struct molt_err *err)
{
    int code = archive_filter_code(s->a, 0);
    const char *want = NULL;

    if (s->st) {
        const char *dot = strrchr(s->st->package, '.');
        want = dot && strcmp(dot, ".zst") == 0 ? "zstd" : "gzip";
    }
    if (code == ARCHIVE_FILTER_GZIP && (!want || strcmp(want, "gzip") == 0))
        return 0;
    if (code == ARCHIVE_FILTER_ZSTD && (!want || strcmp(want, "zstd") == 0))
        return 0;
    return molt_err_set(err, MOLT_E_VERIFY, "archive: compression is %s, expected %s",
                        archive_filter_name(s->a, 0), want ? want : "gzip or zstd");
}

/* The first entry must be manifest.json; it is read, parsed and compared with
 * the statement before anything is written. */
static int read_manifest(struct stage *s, struct molt_err *err)
{
    struct archive_entry *e;
    const char *path;
    la_int64_t size;
    la_ssize_t n;
    int rc;

    rc = archive_read_next_header(s->a, &e);
    if (rc == ARCHIVE_EOF)
        return molt_err_set(err, MOLT_E_VERIFY, "archive: empty");
    if (rc != ARCHIVE_OK)
        return archive_fail(s, "first entry", err);
    if ((rc = check_filter(s, err)) < 0)
        return rc;
    path = archive_entry_pathname(e);
    if (!path || strcmp(path, MOLT_PKG_MANIFEST_NAME) != 0 ||
        archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
        return molt_err_set(err, MOLT_E_VERIFY, "archive: first entry is not %s",
                            MOLT_PKG_MANIFEST_NAME);
    size = archive_entry_size(e);
    if (size < 0 || (uint64_t)size > s->lim.max_manifest)
        return molt_err_set(err, MOLT_E_LIMIT, "manifest: larger than %zu bytes",
                            s->lim.max_manifest);
    s->manifest_text = malloc((size_t)size + 1);
    if (!s->manifest_text)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    n = archive_read_data(s->a, s->manifest_text, (size_t)size);
    if (n < 0)
        return archive_fail(s, MOLT_PKG_MANIFEST_NAME, err);
    if (n != size)
        return molt_err_set(err, MOLT_E_VERIFY, "archive: %s: truncated", MOLT_PKG_MANIFEST_NAME);
    s->manifest_len = (size_t)n;
    /* Its bytes, before they are parsed, as the statement names them. */
    if (s->st && s->st->manifest_sha256[0] &&
        (rc = molt_pkg_manifest_bytes_check(s->manifest_text, s->manifest_len,
                                            s->st->manifest_sha256, err)) < 0)
        return rc;
    rc = molt_pkg_manifest_parse(s->manifest_text, s->manifest_len, &s->lim, &s->m, err);
    if (rc < 0)
        return rc;
    if (s->st && (strcmp(s->m.version, s->st->version) != 0 || strcmp(s->m.os, s->st->os) != 0 ||
                  strcmp(s->m.arch, s->st->arch) != 0))
        return molt_err_set(err, MOLT_E_VERIFY,
                            "manifest mismatch: manifest is for %s %s/%s, statement for %s %s/%s",
                            s->m.version, s->m.os, s->m.arch, s->st->version, s->st->os,
                            s->st->arch);
    return 0;
}

static int check_free_space(struct stage *s, const char *upgrade_dir, struct molt_err *err)
{
    uint64_t avail = 0, need;
    int rc = molt_fs_free_bytes(upgrade_dir, &avail, err);

    if (rc < 0)
        return rc;
    if (MOLT_FAULT_INJECT("stage.enospc"))
        avail = 0;
    need = (s->st ? s->st->size : 0) + s->m.total_size + s->lim.free_margin;
    if (avail < need)
        return molt_err_set(err, MOLT_E_NOSPC,
                            "not enough free space in %s: need %" PRIu64 " bytes, %" PRIu64
                            " available",
                            upgrade_dir, need, avail);
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    if (MOLT_FAULT_INJECT("stage.write.enospc")) {
        errno = ENOSPC;
        return -1;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Streams one file's data: never more than the manifest's size, no holes,
 * hashed and compared with the manifest. fd -1 checks without writing. */
static int copy_data(struct stage *s, const struct molt_pkg_file *f, int fd, const char *show,
                     struct molt_err *err)
{
    struct molt_pkg_hasher h;
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t got = 0;
    int rc = molt_pkg_hasher_init(&h, 0, err);

    while (rc == 0) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int ar = archive_read_data_block(s->a, &buf, &size, &offset);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar != ARCHIVE_OK) {
            rc = archive_fail(s, show, err);
        } else if (offset < 0 || (uint64_t)offset != got) {
            rc = molt_err_set(err, MOLT_E_VERIFY, "sparse entry not allowed: %s", show);
        } else if (size > f->size - got) {
            rc = molt_err_set(err, MOLT_E_VERIFY,
                              "manifest mismatch: %s: larger than the manifest's %" PRIu64 " bytes",
                              show, f->size);
        } else if ((rc = molt_pkg_hasher_update(&h, buf, size, err)) == 0) {
            if (fd >= 0 && write_all(fd, buf, size) < 0)
                rc = molt_err_errno(err, "write %s", show);
            got += size;
        }
    }
    if (rc < 0) {
        molt_pkg_hasher_free(&h);
        return rc;
    }
    if ((rc = molt_pkg_hasher_final(&h, hex, NULL, err)) < 0)
        return rc;
    if (got != f->size)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "manifest mismatch: %s: %" PRIu64 " bytes, manifest says %" PRIu64,
                            show, got, f->size);
    if (strcmp(hex, f->sha256) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "manifest mismatch: %s: sha256 differs", show);
    return 0;
}

static int write_file(struct stage *s, const struct molt_pkg_file *f, int dirfd, const char *base,
                      const char *show, struct molt_err *err)
{
    int fd = -1;
    int rc;

    if (dirfd >= 0) {
        fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return molt_err_errno(err, "create %s", show);
    }
    rc = copy_data(s, f, fd, show, err);
    if (fd < 0)
        return rc;
    /* At most rwx for the owner, rx for others: no setuid, setgid, sticky or
     * group/world write, whatever the archive or manifest said; always
     * readable by its owner, so the tree can be checked and copied. */
    if (rc == 0 && fchmod(fd, (f->mode & 0755) | 0400) < 0)
        rc = molt_err_errno(err, "chmod %s", show);
    if (rc == 0 && fsync(fd) < 0)
        rc = molt_err_errno(err, "fsync %s", show);
    if (close(fd) < 0 && rc == 0)
        rc = molt_err_errno(err, "close %s", show);
    return rc;
}

static int make_dir(const struct molt_pkg_file *f, int dirfd, const char *base, const char *show,
                    struct molt_err *err)
{
    int fd, rc = 0;

    if (mkdirat(dirfd, base, 0700) < 0)
        return molt_err_errno(err, "mkdir %s", show);
    fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "open %s", show);
    if (fchmod(fd, (f->mode & 0755) | 0700) < 0)
        rc = molt_err_errno(err, "chmod %s", show);
    close(fd);
    return rc;
}

/* Rules on the entry's header alone, before the manifest is consulted. */
static int check_header(struct archive_entry *e, const char *show, struct molt_err *err)
{
    if (archive_entry_hardlink(e))
        return molt_err_set(err, MOLT_E_VERIFY, "hardlink not allowed: %s", show);
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
        break;
    case AE_IFCHR:
    case AE_IFBLK:
        return molt_err_set(err, MOLT_E_VERIFY, "device node not allowed: %s", show);
    case AE_IFIFO:
        return molt_err_set(err, MOLT_E_VERIFY, "FIFO not allowed: %s", show);
    case AE_IFSOCK:
        return molt_err_set(err, MOLT_E_VERIFY, "socket not allowed: %s", show);
    default:
        return molt_err_set(err, MOLT_E_VERIFY, "unsupported entry type: %s", show);
    }
    if (archive_entry_sparse_count(e) > 0)
        return molt_err_set(err, MOLT_E_VERIFY, "sparse entry not allowed: %s", show);
    return 0;
}

static enum molt_pkg_ftype entry_type(struct archive_entry *e)
{
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
        return MOLT_PKG_DIR;
    case AE_IFLNK:
        return MOLT_PKG_SYMLINK;
    default:
        return MOLT_PKG_FILE;
    }
}

static const char *type_name(enum molt_pkg_ftype t)
{
    return t == MOLT_PKG_DIR ? "directory" : t == MOLT_PKG_SYMLINK ? "symlink" : "file";
}

/* Matches an entry with its manifest line: listed, not seen before, same
 * type, parent already unpacked, same size or symlink target. */
static int match_manifest(struct stage *s, struct archive_entry *e, const char *path,
                          const char *show, struct molt_pkg_file **out, struct molt_err *err)
{
    const struct molt_pkg_file *found = molt_pkg_manifest_find(&s->m, path);
    struct molt_pkg_file *f = found ? &s->m.files[found - s->m.files] : NULL;
    enum molt_pkg_ftype type = entry_type(e);
    const char *slash = strrchr(path, '/');

    if (strcmp(path, MOLT_PKG_MANIFEST_NAME) == 0)
        return molt_err_set(err, MOLT_E_VERIFY, "duplicate entry: %s", show);
    if (!f)
        return molt_err_set(err, MOLT_E_VERIFY, "not in manifest: %s", show);
    if (f->seen)
        return molt_err_set(err, MOLT_E_VERIFY, "duplicate entry: %s", show);
    if (f->type != type)
        return molt_err_set(err, MOLT_E_VERIFY, "manifest mismatch: %s: a %s, manifest says %s",
                            show, type_name(type), type_name(f->type));
    if (slash) {
        char parent[PATH_MAX];
        const struct molt_pkg_file *p;
        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
        p = molt_pkg_manifest_find(&s->m, parent);
        if (!p || !p->seen)
            return molt_err_set(err, MOLT_E_VERIFY, "entry before its directory: %s", show);
    }
    if (type == MOLT_PKG_FILE && archive_entry_size_is_set(e) &&
        (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) != f->size))
        return molt_err_set(err, MOLT_E_VERIFY,
                            "manifest mismatch: %s: %" PRId64 " bytes, manifest says %" PRIu64,
                            show, (int64_t)archive_entry_size(e), f->size);
    if (type == MOLT_PKG_SYMLINK &&
        (!archive_entry_symlink(e) || strcmp(archive_entry_symlink(e), f->target) != 0))
        return molt_err_set(err, MOLT_E_VERIFY, "manifest mismatch: %s: symlink target differs",
                            show);
    f->seen = 1;
    *out = f;
    return 0;
}

static int entry_path(struct archive_entry *e, char *path, size_t n, struct molt_err *err)
{
    const char *raw = archive_entry_pathname(e);
    size_t len;

    if (!raw)
        return molt_err_set(err, MOLT_E_VERIFY, "archive: entry without a usable name");
    len = strlen(raw);
    if (len >= n)
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %.64s...", raw);
    memcpy(path, raw, len + 1);
    /* tar marks directories with one trailing slash. */
    if (archive_entry_filetype(e) == AE_IFDIR && len > 1 && path[len - 1] == '/')
        path[len - 1] = '\0';
    return 0;
}

static int unpack_entry(struct stage *s, struct archive_entry *e, struct molt_err *err)
{
    char path[PATH_MAX], show[200];
    struct molt_pkg_file *f = NULL;
    const char *base = NULL;
    int dirfd = -1;
    int rc;

    if ((rc = entry_path(e, path, sizeof(path), err)) < 0)
        return rc;
    molt_text_shown(show, sizeof(show), path, 0);
    if ((rc = check_header(e, show, err)) < 0 ||
        (rc = molt_pkg_path_check(path, &s->lim, err)) < 0 ||
        (rc = match_manifest(s, e, path, show, &f, err)) < 0)
        return rc;
    if (s->rootfd >= 0 && (dirfd = molt_pkg_open_parent(s->rootfd, path, &base, err)) < 0)
        return dirfd;
    switch (f->type) {
    case MOLT_PKG_FILE:
        rc = write_file(s, f, dirfd, base, show, err);
        break;
    case MOLT_PKG_DIR:
        if (dirfd >= 0)
            rc = make_dir(f, dirfd, base, show, err);
        break;
    case MOLT_PKG_SYMLINK:
        if (dirfd >= 0 && symlinkat(f->target, dirfd, base) < 0)
            rc = molt_err_errno(err, "symlink %s", show);
        break;
    }
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* After the archive's end: every listed entry came, and the package bytes
 * (read to their end) are the ones the statement describes. */
static int finish_checks(struct stage *s, struct molt_err *err)
{
    char show[200];
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    const void *dummy;
    int rc;

    for (size_t i = 0; i < s->m.nfiles; i++) {
        if (!s->m.files[i].seen)
            return molt_err_set(err, MOLT_E_VERIFY, "missing from package: %s",
                                molt_text_shown(show, sizeof(show), s->m.files[i].path, 0));
    }
    if (!s->st)
        return 0;
    while ((rc = (int)src_read(s->a, s->src, &dummy)) > 0)
        ;
    if (rc < 0) {
        *err = s->src->err;
        return err->code;
    }
    if ((rc = molt_pkg_hasher_final(&s->src->h, hex, &size, err)) < 0)
        return rc;
    return molt_pkg_bytes_check(s->st, size, hex, err);
}

static int unpack_all(struct stage *s, struct molt_err *err)
{
    struct archive_entry *e;
    int rc;

    for (;;) {
        int ar = archive_read_next_header(s->a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar != ARCHIVE_OK)
            return archive_fail(s, "next entry", err);
        if ((rc = unpack_entry(s, e, err)) < 0)
            return rc;
    }
    return finish_checks(s, err);
}

static void stage_free(struct stage *s)
{
    if (s->a)
        archive_read_free(s->a);
    if (s->src) {
        if (s->src->fd >= 0)
            close(s->src->fd);
        molt_pkg_hasher_free(&s->src->h);
        free(s->src);
    }
    if (s->rootfd >= 0)
        close(s->rootfd);
    molt_pkg_manifest_free(&s->m);
    free(s->manifest_text);
}

/* Sets s up and reads package as far as its manifest; stage_free(s) afterwards
 * whatever this returns. */
static int stage_open(struct stage *s, const char *package, const struct molt_statement *st,
                      const struct molt_pkg_limits *lim, struct molt_err *err)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->rootfd = -1;
    s->st = st;
    molt_pkg_limits_resolve(lim, &s->lim);
    s->src = calloc(1, sizeof(*s->src));
    if (!s->src)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    s->src->fd = -1;
    rc = open_archive(s, package, err);
    if (rc == 0)
        rc = read_manifest(s, err);
    return rc;
}

int molt_pkg_inspect(const char *package, const struct molt_statement *st,
                     const struct molt_pkg_limits *lim, struct molt_err *err)
{
    struct molt_err local = MOLT_ERR_INIT;
    struct stage s;
    int rc;

    if (!err)
        err = &local;
    rc = stage_open(&s, package, st, lim, err);
    if (rc == 0)
        rc = unpack_all(&s, err);
    stage_free(&s);
    return rc;
}

/* The staged tree's directories reach the disk before it is renamed into place. */
static int sync_dirs(struct stage *s, struct molt_err *err)
{
    for (size_t i = 0; i < s->m.nfiles; i++) {
        const struct molt_pkg_file *f = &s->m.files[i];
        const char *base;
        int dirfd, fd, rc = 0;
        if (f->type != MOLT_PKG_DIR)
            continue;
        dirfd = molt_pkg_open_parent(s->rootfd, f->path, &base, err);
        if (dirfd < 0)
            return dirfd;
        fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || (fsync(fd) < 0 && errno != EINVAL))
            rc = molt_err_errno(err, "fsync %s", f->path);
        if (fd >= 0)
            close(fd);
        close(dirfd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int write_manifest_copy(struct stage *s, struct molt_err *err)
{
    int fd = openat(s->rootfd, MOLT_PKG_MANIFEST_NAME,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = 0;

    if (fd < 0)
        return molt_err_errno(err, "create %s", MOLT_PKG_MANIFEST_NAME);
    if (write_all(fd, s->manifest_text, s->manifest_len) < 0 || fchmod(fd, 0644) < 0 ||
        fsync(fd) < 0)
        rc = molt_err_errno(err, "write %s", MOLT_PKG_MANIFEST_NAME);
    close(fd);
    return rc;
}

static int stage_paths(const char *upgrade_dir, const char *name, char final[PATH_MAX],
                       char partial[PATH_MAX], struct molt_err *err)
{
    char pname[NAME_MAX + 1];
    struct stat sb;

    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > NAME_MAX - 8)
        return molt_err_set(err, MOLT_E_INVAL, "bad staging name '%.64s'", name);
    if (stat(upgrade_dir, &sb) < 0)
        return molt_err_errno(err, "upgrade directory %s", upgrade_dir);
    if (!S_ISDIR(sb.st_mode))
        return molt_err_set(err, MOLT_E_INVAL, "upgrade directory %s: not a directory",
                            upgrade_dir);
    snprintf(pname, sizeof(pname), "%s.partial", name);
    if (molt_fs_join(final, PATH_MAX, upgrade_dir, name, err) < 0 ||
        molt_fs_join(partial, PATH_MAX, upgrade_dir, pname, err) < 0)
        return MOLT_E_LIMIT;
    if (molt_fs_remove_tree(final, err) < 0 || molt_fs_remove_tree(partial, err) < 0)
        return molt_err_prefix(err, "remove leftover staging directory");
    return 0;
}

static int stage_into(struct stage *s, const char *upgrade_dir, const char *partial,
                      const char *final, struct molt_err *err)
{
    int rc;

    if ((rc = check_free_space(s, upgrade_dir, err)) < 0)
        return rc;
    if (mkdir(partial, 0700) < 0)
        return molt_err_errno(err, "mkdir %s", partial);
    s->rootfd = open(partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->rootfd < 0)
        return molt_err_errno(err, "open %s", partial);
    if ((rc = unpack_all(s, err)) < 0 || (rc = write_manifest_copy(s, err)) < 0 ||
        (rc = sync_dirs(s, err)) < 0)
        return rc;
    if (fchmod(s->rootfd, 0755) < 0 || fsync(s->rootfd) < 0)
        return molt_err_errno(err, "sync %s", partial);
    MOLT_FAULT_POINT("stage.before_rename");
    if (rename(partial, final) < 0)
        return molt_err_errno(err, "rename %s to %s", partial, final);
    return molt_fs_fsync_dir(upgrade_dir, err);
}

int molt_pkg_stage_ex(const char *package, const struct molt_statement *st, const char *upgrade_dir,
                      const char *name, const struct molt_pkg_limits *lim, char out_dir[PATH_MAX],
                      struct molt_err *err)
{
    char final[PATH_MAX], partial[PATH_MAX];
    struct molt_err local = MOLT_ERR_INIT;
    struct stage s;
    int rc;

    if (!err)
        err = &local;
    if (!st)
        return molt_err_set(err, MOLT_E_INVAL, "staging needs the verified statement");
    rc = stage_paths(upgrade_dir, name, final, partial, err);
    if (rc < 0)
        return rc;
    rc = stage_open(&s, package, st, lim, err);
    if (rc == 0)
        rc = stage_into(&s, upgrade_dir, partial, final, err);
    stage_free(&s);
    if (rc < 0) {
        struct molt_err rerr = MOLT_ERR_INIT;
        if (molt_fs_remove_tree(partial, &rerr) < 0 || molt_fs_remove_tree(final, &rerr) < 0)
            molt_log_error("stage.cleanup_failed", "error=\"%s\"", rerr.msg);
        molt_log_warn("stage.failed", "package=%s error=\"%s\"", package, err->msg);
        return rc;
    }
    snprintf(out_dir, PATH_MAX, "%s", final);
    molt_log_info("stage.done", "package=%s dir=%s version=%s", package, final, st->version);
    return 0;
}

int molt_pkg_stage(const char *package, const struct molt_statement *st, const char *upgrade_dir,
                   const char *name, char out_dir[PATH_MAX], struct molt_err *err)
{
    return molt_pkg_stage_ex(package, st, upgrade_dir, name, NULL, out_dir, err);
}
