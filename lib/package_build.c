/* package_build.c: builds a reproducible package from a version tree, and its
 * unsigned release statement (molt-pack build). Same tree, same bytes: entries
 * sorted, manifest.json first, fixed mtime and owners, no gzip timestamp. */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "host.h"
#include "log.h"
#include "package_int.h"
#include "version.h"

struct tree {
    struct molt_manifest m;
    size_t cap;
    struct molt_pkg_limits lim;
};

struct sink {
    int fd;
    struct molt_pkg_hasher h;
    struct molt_err err;
    int failed;
};

static int add_entry(struct tree *t, const char *rel, enum molt_pkg_ftype type, unsigned mode,
                     const char *target, struct molt_err *err)
{
    struct molt_pkg_file *f;

    if (t->m.nfiles >= t->lim.max_entries)
        return molt_err_set(err, MOLT_E_LIMIT, "more than %zu entries", t->lim.max_entries);
    if (t->m.nfiles == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct molt_pkg_file *files = realloc(t->m.files, cap * sizeof(*files));
        if (!files)
            return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
        t->m.files = files;
        t->cap = cap;
    }
    f = &t->m.files[t->m.nfiles];
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->mode = mode;
    f->path = strdup(rel);
    f->target = target ? strdup(target) : NULL;
    t->m.nfiles++;
    if (!f->path || (target && !f->target))
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    return 0;
}

static int add_file(struct tree *t, int dirfd, const char *name, const char *rel, mode_t mode,
                    struct molt_err *err)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct molt_pkg_file *f;
    int rc;

    if (fd < 0)
        return molt_err_errno(err, "open %s", rel);
    rc = add_entry(t, rel, MOLT_PKG_FILE, mode & 0755, NULL, err);
    if (rc == 0) {
        f = &t->m.files[t->m.nfiles - 1];
        rc = molt_pkg_hash_fd(fd, rel, f->sha256, &f->size, err);
    }
    close(fd);
    return rc;
}

static int walk(struct tree *t, int fd, const char *prefix, size_t depth, struct molt_err *err);

static int walk_entry(struct tree *t, int dirfd, const char *prefix, const char *name, size_t depth,
                      struct molt_err *err)
{
    char rel[PATH_MAX], target[PATH_MAX];
    struct stat sb;
    ssize_t n;
    int rc, sub;

    if (snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", name) >= (int)sizeof(rel))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long under %s", prefix);
    if (!*prefix && strcmp(name, MOLT_PKG_MANIFEST_NAME) == 0)
        return molt_err_set(err, MOLT_E_INVAL, "%s is reserved for the package's own manifest",
                            MOLT_PKG_MANIFEST_NAME);
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return molt_err_errno(err, "stat %s", rel);
    if (S_ISREG(sb.st_mode))
        return add_file(t, dirfd, name, rel, sb.st_mode, err);
    if (S_ISLNK(sb.st_mode)) {
        n = readlinkat(dirfd, name, target, sizeof(target) - 1);
        if (n < 0)
            return molt_err_errno(err, "readlink %s", rel);
        target[n] = '\0';
        return add_entry(t, rel, MOLT_PKG_SYMLINK, 0777, target, err);
    }
    if (!S_ISDIR(sb.st_mode))
        return molt_err_set(err, MOLT_E_INVAL,
                            "%s: only files, directories and symlinks can be packaged", rel);
    if (depth >= t->lim.max_depth)
        return molt_err_set(err, MOLT_E_LIMIT, "%s: deeper than %zu levels", rel, t->lim.max_depth);
    rc = add_entry(t, rel, MOLT_PKG_DIR, (sb.st_mode & 0755) | 0700, NULL, err);
    if (rc < 0)
        return rc;
    sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return molt_err_errno(err, "open %s", rel);
    return walk(t, sub, rel, depth + 1, err);
}

/* Takes ownership of dirfd. */
static int walk(struct tree *t, int fd, const char *prefix, size_t depth, struct molt_err *err)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    int rc = 0;

    if (!d) {
        close(fd);
        return molt_err_errno(err, "opendir %s", *prefix ? prefix : ".");
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = walk_entry(t, dirfd(d), prefix, de->d_name, depth, err);
    }
    closedir(d);
    return rc;
}

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct sink *s = ud;
    const char *p = buf;
    size_t left = n;

    if (molt_pkg_hasher_update(&s->h, buf, n, &s->err) < 0) {
        s->failed = 1;
        archive_set_error(a, EIO, "%s", s->err.msg);
        return -1;
    }
    while (left > 0) {
        ssize_t w = write(s->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int saved = errno;
            molt_err_errno(&s->err, "write package");
            s->failed = 1;
            archive_set_error(a, saved, "%s", s->err.msg);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return (la_ssize_t)n;
}

static int archive_err(struct archive *a, struct sink *s, const char *what, struct molt_err *err)
{
    if (s->failed) {
        *err = s->err;
        return err->code;
    }
    return molt_err_set(err, MOLT_E_IO, "archive: %s: %s", what,
                        archive_error_string(a) ? archive_error_string(a) : "error");
}

static struct archive_entry *new_entry(const char *path, mode_t type, unsigned perm)
{
    struct archive_entry *e = archive_entry_new();

    if (!e)
        return NULL;
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 0, 0);
    return e;
}

/* Streams a file into the archive, checking it did not change since it was hashed. */
static int write_file_data(struct archive *a, struct sink *s, int srcfd,
                           const struct molt_pkg_file *f, struct molt_err *err)
{
    struct molt_pkg_hasher h;
    char buf[65536], hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    int fd = openat(srcfd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return molt_err_errno(err, "open %s", f->path);
    rc = molt_pkg_hasher_init(&h, f->size, err);
    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = molt_err_errno(err, "read %s", f->path);
        else if (n == 0)
            break;
        else if ((rc = molt_pkg_hasher_update(&h, buf, (size_t)n, err)) < 0)
            molt_err_prefix(err, "%s", f->path);
        else if (archive_write_data(a, buf, (size_t)n) != n)
            rc = archive_err(a, s, f->path, err);
    }
    close(fd);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&h, hex, &size, err);
    molt_pkg_hasher_free(&h);
    if (rc == 0 && (size != f->size || strcmp(hex, f->sha256) != 0))
        rc = molt_err_set(err, MOLT_E_IO, "%s changed while the package was built", f->path);
    return rc;
}

static int write_one(struct archive *a, struct sink *s, int srcfd, const struct molt_pkg_file *f,
                     struct molt_err *err)
{
    static const mode_t types[] = {
        [MOLT_PKG_FILE] = AE_IFREG, [MOLT_PKG_DIR] = AE_IFDIR, [MOLT_PKG_SYMLINK] = AE_IFLNK};
    unsigned perm = f->type == MOLT_PKG_SYMLINK ? 0777 : f->mode & 0755;
    struct archive_entry *e = new_entry(f->path, types[f->type], perm);
    int rc = 0;

    if (!e)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if (f->type == MOLT_PKG_FILE)
        archive_entry_set_size(e, (la_int64_t)f->size);
    if (f->type == MOLT_PKG_SYMLINK)
        archive_entry_set_symlink(e, f->target);
    if (archive_write_header(a, e) != ARCHIVE_OK)
        rc = archive_err(a, s, f->path, err);
    else if (f->type == MOLT_PKG_FILE)
        rc = write_file_data(a, s, srcfd, f, err);
    archive_entry_free(e);
    return rc;
}

static int write_manifest_entry(struct archive *a, struct sink *s, const char *text, size_t len,
                                struct molt_err *err)
{
    struct archive_entry *e = new_entry(MOLT_PKG_MANIFEST_NAME, AE_IFREG, 0644);
    int rc = 0;

    if (!e)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        archive_write_data(a, text, len) != (la_ssize_t)len)
        rc = archive_err(a, s, MOLT_PKG_MANIFEST_NAME, err);
    archive_entry_free(e);
    return rc;
}

/* The compression of every package in one place: molt_pkg_recompress must give
 * a build's bytes again (delta packages rebuild the signed file from its archive).
 * No padding of the last block: the archive ends where its data does. */
static int set_compression(struct archive *a, enum molt_pkg_compress c)
{
    int rc = ARCHIVE_OK;

    if (c == MOLT_PKG_ZSTD)
        rc = archive_write_add_filter_zstd(a);
    else if (c == MOLT_PKG_GZIP && (rc = archive_write_add_filter_gzip(a)) == ARCHIVE_OK)
        rc = archive_write_set_options(a, "gzip:!timestamp");
    return rc == ARCHIVE_OK ? archive_write_set_bytes_in_last_block(a, 1) : rc;
}

static int write_archive(int outfd, int srcfd, const struct molt_manifest *m, const char *text,
                         size_t len, enum molt_pkg_compress compress, char hex[65], uint64_t *size,
                         struct molt_err *err)
{
    struct sink s = {.fd = outfd};
    struct archive *a = archive_write_new();
    int rc;

    if (!a)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    rc = molt_pkg_hasher_init(&s.h, 0, err);
    if (rc < 0)
        goto out;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        set_compression(a, compress) != ARCHIVE_OK ||
        archive_write_open(a, &s, NULL, sink_write, NULL) != ARCHIVE_OK) {
        rc = archive_err(a, &s, "open", err);
        goto out;
    }
    rc = write_manifest_entry(a, &s, text, len, err);
    for (size_t i = 0; rc == 0 && i < m->nfiles; i++)
        rc = write_one(a, &s, srcfd, &m->files[i], err);
    if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
        rc = archive_err(a, &s, "close", err);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&s.h, hex, size, err);
out:
    archive_write_free(a);
    molt_pkg_hasher_free(&s.h);
    return rc;
}

static int check_opts(const struct molt_pkg_build_opts *o, struct molt_err *err)
{
    if (!o->src_dir || !o->out)
        return molt_err_set(err, MOLT_E_INVAL, "a source directory and an output are needed");
    if (!o->version || !molt_version_valid(o->version))
        return molt_err_set(err, MOLT_E_INVAL, "version '%s' is not a version",
                            o->version ? o->version : "");
    if (o->min_version && o->min_version[0] && !molt_version_valid(o->min_version))
        return molt_err_set(err, MOLT_E_INVAL, "minimum version '%s' is not a version",
                            o->min_version);
    if (!o->arch || !molt_pkg_is_token(o->arch, 32))
        return molt_err_set(err, MOLT_E_INVAL, "arch '%s': only [a-z0-9_] allowed",
                            o->arch ? o->arch : "");
    if (o->os && !molt_pkg_is_token(o->os, 16))
        return molt_err_set(err, MOLT_E_INVAL, "os '%s': only [a-z0-9_] allowed", o->os);
    if (o->release && !molt_pkg_is_release(o->release, 65))
        return molt_err_set(err, MOLT_E_INVAL, "release '%s': only [0-9A-Za-z.+_-] allowed",
                            o->release);
    return 0;
}

static int64_t created_ms(const struct molt_pkg_build_opts *o)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;

    if (o->created_ms > 0)
        return o->created_ms;
    if (sde && *sde) {
        long long v = strtoll(sde, &end, 10);
        if (*end == '\0' && v >= 0)
            return (int64_t)v * 1000;
    }
    return molt_host_realtime_ms();
}

static int fill_statement(const struct molt_pkg_build_opts *o, struct molt_statement *st,
                          struct molt_err *err)
{
    const char *ext = o->compress == MOLT_PKG_ZSTD ? ".tar.zst" : ".tar.gz";

    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "%s", MOLT_PKG_NAME);
    snprintf(st->version, sizeof(st->version), "%s", o->version);
    snprintf(st->release, sizeof(st->release), "%s", o->release ? o->release : "1");
    snprintf(st->os, sizeof(st->os), "%s", o->os ? o->os : "linux");
    snprintf(st->arch, sizeof(st->arch), "%s", o->arch);
    snprintf(st->min_version, sizeof(st->min_version), "%s", o->min_version ? o->min_version : "");
    st->created_ms = created_ms(o);
    return molt_pkg_file_name(st->version, st->os, st->arch, ext, st->package, sizeof(st->package),
                              err);
}

/* The output is a directory (the canonical name goes in it) or a path whose
 * file name is the canonical one: the statement names the file it describes. */
static int output_path(const char *out, const char *canonical, char path[PATH_MAX],
                       struct molt_err *err)
{
    struct stat sb;
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;

    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
        return molt_fs_join(path, PATH_MAX, out, canonical, err);
    if (strcmp(base, canonical) != 0)
        return molt_err_set(err, MOLT_E_INVAL,
                            "output must be named %s (or be a directory), not %s", canonical, base);
    if (snprintf(path, PATH_MAX, "%s", out) >= PATH_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "output path too long");
    return 0;
}

/* Walks the tree into a manifest, then formats and re-parses it: parsing sorts
 * the entries and proves the tree obeys every rule an agent will enforce
 * (symlinks inside, limits...). out is the sorted manifest, text its bytes. */
static int scan_tree(const struct molt_pkg_build_opts *o, struct molt_manifest *out, char **text,
                     size_t *len, struct molt_err *err)
{
    struct tree t;
    char *unsorted = NULL;
    size_t ulen = 0;
    int fd, rc;

    memset(&t, 0, sizeof(t));
    molt_pkg_limits_default(&t.lim);
    *text = NULL;
    fd = open(o->src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "open %s", o->src_dir);
    rc = walk(&t, fd, "", 0, err);
    snprintf(t.m.name, sizeof(t.m.name), "%s", MOLT_PKG_NAME);
    snprintf(t.m.version, sizeof(t.m.version), "%s", o->version);
    snprintf(t.m.os, sizeof(t.m.os), "%s", o->os ? o->os : "linux");
    snprintf(t.m.arch, sizeof(t.m.arch), "%s", o->arch);
    if (rc == 0)
        rc = molt_pkg_manifest_format(&t.m, &unsorted, &ulen, err);
    if (rc == 0)
        rc = molt_pkg_manifest_parse(unsorted, ulen, NULL, out, err);
    if (rc == 0)
        rc = molt_pkg_manifest_format(out, text, len, err);
    free(unsorted);
    molt_pkg_manifest_free(&t.m);
    return rc;
}

static int write_package(const char *path, const char *src_dir, const struct molt_manifest *m,
                         const char *text, size_t len, enum molt_pkg_compress compress,
                         struct molt_statement *st, struct molt_err *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int srcfd = -1, fd = -1;
    int rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", path);
    snprintf(dir, sizeof(dir), "%s", path);
    if (strrchr(dir, '/'))
        *strrchr(dir, '/') = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    srcfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srcfd < 0)
        return molt_err_errno(err, "open %s", src_dir);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = molt_err_errno(err, "create a temporary file beside %s", path);
        goto out;
    }
    rc = write_archive(fd, srcfd, m, text, len, compress, st->sha256, &st->size, err);
    if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        rc = molt_err_errno(err, "sync %s", tmp);
    /* The builder checks its own output the way an agent will, before it
     * takes the package's name. */
    if (rc == 0 && (rc = molt_pkg_inspect(tmp, st, NULL, err)) < 0)
        molt_err_prefix(err, "self-check of the new package");
    if (rc == 0 && rename(tmp, path) < 0)
        rc = molt_err_errno(err, "rename %s to %s", tmp, path);
    if (rc == 0)
        rc = molt_fs_fsync_dir(dir, err);
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && fd >= 0)
        unlink(tmp);
    close(srcfd);
    return rc;
}

static int write_statement(const char *path, const struct molt_statement *st, struct molt_err *err)
{
    char spath[PATH_MAX], sigpath[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (snprintf(spath, sizeof(spath), "%s.statement.json", path) >= (int)sizeof(spath) ||
        snprintf(sigpath, sizeof(sigpath), "%s.sig", path) >= (int)sizeof(sigpath))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", path);
    rc = molt_pkg_statement_format(st, &text, &len, err);
    if (rc == 0)
        rc = molt_fs_write_atomic(spath, text, len, 0644, err);
    /* A signature of an earlier build would sit beside a statement it does not sign. */
    if (rc == 0 && unlink(sigpath) < 0 && errno != ENOENT)
        rc = molt_err_errno(err, "remove stale %s", sigpath);
    free(text);
    return rc;
}

int molt_pkg_build(const struct molt_pkg_build_opts *o, char package_out[PATH_MAX],
                   struct molt_statement *st_out, struct molt_err *err)
{
    struct molt_statement st;
    struct molt_manifest m;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(&m, 0, sizeof(m));
    rc = check_opts(o, err);
    if (rc == 0)
        rc = fill_statement(o, &st, err);
    if (rc == 0)
        rc = output_path(o->out, st.package, path, err);
    if (rc == 0)
        rc = scan_tree(o, &m, &text, &len, err);
    if (rc == 0)
        rc = molt_pkg_sha256_buf(text, len, st.manifest_sha256, err);
    if (rc == 0)
        rc = write_package(path, o->src_dir, &m, text, len, o->compress, &st, err);
    if (rc == 0)
        rc = write_statement(path, &st, err);
    if (rc == 0) {
        if (package_out)
            snprintf(package_out, PATH_MAX, "%s", path);
        if (st_out)
            *st_out = st;
        molt_log_info("package.built", "package=%s version=%s size=%llu sha256=%s", path,
                      st.version, (unsigned long long)st.size, st.sha256);
    }
    molt_pkg_manifest_free(&m);
    free(text);
    return rc;
}

int molt_pkg_archive_tree(const char *dir, int outfd, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                          struct molt_err *err)
{
    struct molt_manifest m;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int srcfd = -1;
    int rc;

    memset(&m, 0, sizeof(m));
    rc = molt_fs_join(path, sizeof(path), dir, MOLT_PKG_MANIFEST_NAME, err);
    if (rc == 0)
        rc = molt_fs_read_file(path, 4u << 20, &text, &len, err);
    if (rc == 0 && (rc = molt_pkg_manifest_parse(text, len, NULL, &m, err)) < 0)
        molt_err_prefix(err, "%s", path);
    if (rc == 0 && (srcfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = molt_err_errno(err, "open %s", dir);
    /* The manifest's exact bytes and order: the archive a build wrote around them. */
    if (rc == 0)
        rc = write_archive(outfd, srcfd, &m, text, len, MOLT_PKG_TAR, hex, size, err);
    if (srcfd >= 0)
        close(srcfd);
    molt_pkg_manifest_free(&m);
    free(text);
    return rc;
}

struct molt_pkg_recompress {
    struct archive *a;
    molt_pkg_out_fn out;
    void *ud;
    struct molt_err err;
    int failed;
    int discard; /* freed without a flush: archive_write_free's own close writes nowhere */
};

static la_ssize_t recompress_sink(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct molt_pkg_recompress *r = ud;

    if (r->discard)
        return (la_ssize_t)n;
    if (r->out(r->ud, buf, n, &r->err) < 0) {
        r->failed = 1;
        archive_set_error(a, EIO, "%s", r->err.msg);
        return -1;
    }
    return (la_ssize_t)n;
}

static int recompress_err(struct molt_pkg_recompress *r, const char *what, struct molt_err *err)
{
    if (r->failed) {
        if (err)
            *err = r->err;
        return r->err.code;
    }
    return molt_err_set(err, MOLT_E_IO, "recompress: %s: %s", what,
                        archive_error_string(r->a) ? archive_error_string(r->a) : "error");
}

int molt_pkg_recompress_open(struct molt_pkg_recompress **out, enum molt_pkg_compress c,
                             molt_pkg_out_fn fn, void *ud, struct molt_err *err)
{
    struct molt_pkg_recompress *r = calloc(1, sizeof(*r));
    struct archive_entry *e = NULL;
    int rc = 0;

    *out = NULL;
    if (!r || !(r->a = archive_write_new()) || !(e = archive_entry_new())) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
        goto out;
    }
    r->out = fn;
    r->ud = ud;
    /* The raw format passes one entry's data through the filter untouched. */
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "archive");
    if (archive_write_set_format_raw(r->a) != ARCHIVE_OK || set_compression(r->a, c) != ARCHIVE_OK ||
        archive_write_open(r->a, r, NULL, recompress_sink, NULL) != ARCHIVE_OK ||
        archive_write_header(r->a, e) != ARCHIVE_OK)
        rc = recompress_err(r, "open", err);
out:
    archive_entry_free(e);
    if (rc < 0)
        molt_pkg_recompress_close(r, 0, NULL);
    else
        *out = r;
    return rc;
}

int molt_pkg_recompress_write(struct molt_pkg_recompress *r, const void *buf, size_t n,
                              struct molt_err *err)
{
    if (n > 0 && archive_write_data(r->a, buf, n) != (la_ssize_t)n)
        return recompress_err(r, "write", err);
    return 0;
}

int molt_pkg_recompress_close(struct molt_pkg_recompress *r, int flush, struct molt_err *err)
{
    int rc = 0;

    if (!r)
        return 0;
    if (r->a && flush && archive_write_close(r->a) != ARCHIVE_OK)
        rc = recompress_err(r, "close", err);
    r->discard = 1;
    if (r->a)
        archive_write_free(r->a);
    free(r);
    return rc;
}
