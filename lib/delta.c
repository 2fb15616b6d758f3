/* delta.c: makes and applies delta packages (delta.h; the format is
 * docs/package-format.md, section 7). Nothing a delta says is trusted: the
 * header must name the base we hold and the package the signed statement
 * describes, and the rebuilt package is accepted only by its hash. */
#include "delta.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "fs.h"

#define CHUNK 65536

/* ---- header -------------------------------------------------------------- */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static unsigned hex_value(char c)
{
    return c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : (unsigned)(c - '0') & 0xf;
}

/* hex: 64 lowercase hex digits (the callers' sha256 strings). */
static void put_sha(unsigned char *p, const char *hex)
{
    for (int i = 0; i < 32; i++)
        p[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
}

static void get_sha(const unsigned char *p, char hex[MOLT_PKG_SHA256_HEX])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", p[i]);
}

/* Offsets of the fixed layout (section 7 of docs/package-format.md). */
enum { H_COMPRESS = 8, H_BASE = 16, H_ARCHIVE = 56, H_PACKAGE = 96, H_PATCH = 136 };

void molt_delta_header_format(const struct molt_delta_header *h,
                              unsigned char out[MOLT_DELTA_HEADER_SIZE])
{
    memset(out, 0, MOLT_DELTA_HEADER_SIZE);
    /* The magic is 8 bytes, no NUL: the header is not a string. */
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
    memcpy(out, MOLT_DELTA_MAGIC, sizeof(MOLT_DELTA_MAGIC) - 1);
    out[H_COMPRESS] = h->compress == MOLT_PKG_ZSTD ? 2 : 1;
    put64(out + H_BASE, h->base_size);
    put_sha(out + H_BASE + 8, h->base_sha256);
    put64(out + H_ARCHIVE, h->archive_size);
    put_sha(out + H_ARCHIVE + 8, h->archive_sha256);
    put64(out + H_PACKAGE, h->package_size);
    put_sha(out + H_PACKAGE + 8, h->package_sha256);
    put64(out + H_PATCH, h->patch_size);
}

int molt_delta_header_parse(const void *buf, size_t len, struct molt_delta_header *h,
                            struct molt_err *err)
{
    const unsigned char *p = buf;

    memset(h, 0, sizeof(*h));
    if (len < MOLT_DELTA_HEADER_SIZE)
        return molt_err_set(err, MOLT_E_PARSE, "delta header: truncated (%zu of %d bytes)", len,
                            MOLT_DELTA_HEADER_SIZE);
    if (memcmp(p, MOLT_DELTA_MAGIC, 8) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "delta header: bad magic (not a %s delta)",
                            MOLT_DELTA_MAGIC);
    if (p[H_COMPRESS] != 1 && p[H_COMPRESS] != 2)
        return molt_err_set(err, MOLT_E_PARSE, "delta header: unknown compression %u",
                            p[H_COMPRESS]);
    for (int i = H_COMPRESS + 1; i < H_BASE; i++)
        if (p[i])
            return molt_err_set(err, MOLT_E_PARSE, "delta header: reserved byte %d is not zero", i);
    h->compress = p[H_COMPRESS] == 2 ? MOLT_PKG_ZSTD : MOLT_PKG_GZIP;
    h->base_size = get64(p + H_BASE);
    get_sha(p + H_BASE + 8, h->base_sha256);
    h->archive_size = get64(p + H_ARCHIVE);
    get_sha(p + H_ARCHIVE + 8, h->archive_sha256);
    h->package_size = get64(p + H_PACKAGE);
    get_sha(p + H_PACKAGE + 8, h->package_sha256);
    h->patch_size = get64(p + H_PATCH);
    if (h->base_size == 0 || h->base_size > MOLT_DELTA_ARCHIVE_MAX)
        return molt_err_set(err, MOLT_E_PARSE, "delta header: base size %" PRIu64 " out of range",
                            h->base_size);
    if (h->archive_size == 0 || h->archive_size > MOLT_DELTA_ARCHIVE_MAX)
        return molt_err_set(err, MOLT_E_PARSE,
                            "delta header: archive size %" PRIu64 " out of range", h->archive_size);
    if (h->package_size == 0 || h->package_size > MOLT_DELTA_ARCHIVE_MAX)
        return molt_err_set(err, MOLT_E_PARSE,
                            "delta header: package size %" PRIu64 " out of range", h->package_size);
    if (h->patch_size == 0 || h->patch_size > MOLT_DELTA_ARCHIVE_MAX)
        return molt_err_set(err, MOLT_E_PARSE, "delta header: patch size %" PRIu64 " out of range",
                            h->patch_size);
    return 0;
}

/* The window covers the whole base and the whole new archive, so every match
 * against the base is in reach; the decoder allows no more than that. */
static int window_log(uint64_t base_size, uint64_t archive_size)
{
    uint64_t need = base_size > archive_size ? base_size : archive_size;
    ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_windowLog);
    int log = 10;

    while (log < 62 && ((uint64_t)1 << log) < need)
        log++;
    if (log < b.lowerBound)
        log = b.lowerBound;
    return log > b.upperBound ? b.upperBound : log;
}

/* ---- bases ---------------------------------------------------------------- */

static int tmp_file(const char *dir, struct molt_err *err)
{
    char path[PATH_MAX];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : molt_err_errno(err, "temporary file in %s", dir);
    if (snprintf(path, sizeof(path), "%s/.molt-delta.XXXXXX", dir) >= (int)sizeof(path))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "temporary file in %s", dir);
    unlink(path);
    return fd;
}

static int map_base(int fd, uint64_t size, struct molt_delta_base *b, struct molt_err *err)
{
    if (size == 0)
        return molt_err_set(err, MOLT_E_INVAL, "empty archive");
    if (size > MOLT_DELTA_ARCHIVE_MAX || size > SIZE_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "archive larger than %" PRIu64 " bytes",
                            MOLT_DELTA_ARCHIVE_MAX);
    b->map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (b->map == MAP_FAILED) {
        b->map = NULL;
        return molt_err_errno(err, "map the archive");
    }
    b->map_len = (size_t)size;
    b->data = b->map;
    b->size = size;
    return 0;
}

int molt_delta_base_from_tree(const char *tree_dir, const char *tmp_dir, struct molt_delta_base *b,
                              struct molt_err *err)
{
    uint64_t size = 0;
    int fd, rc;

    memset(b, 0, sizeof(*b));
    fd = tmp_file(tmp_dir, err);
    if (fd < 0)
        return fd;
    rc = molt_pkg_archive_tree(tree_dir, fd, b->sha256, &size, err);
    if (rc == 0)
        rc = map_base(fd, size, b, err);
    close(fd);
    if (rc < 0)
        molt_err_prefix(err, "rebuild the archive of %s", tree_dir);
    return rc;
}

/* Decompresses package (gzip or zstd, as molt-pack build wrote it) into fd. */
static int unpack(const char *package, int fd, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                  enum molt_pkg_compress *c, struct molt_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    struct molt_pkg_hasher h = {0};
    char buf[CHUNK];
    la_ssize_t n;
    int rc;

    if (!a)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    rc = molt_pkg_hasher_init(&h, MOLT_DELTA_ARCHIVE_MAX, err);
    if (rc < 0)
        goto out;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_filename(a, package, CHUNK) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        rc = molt_err_set(err, MOLT_E_IO, "%s: %s", package,
                          archive_error_string(a) ? archive_error_string(a) : "cannot read");
        goto out;
    }
    switch (archive_filter_code(a, 0)) {
    case ARCHIVE_FILTER_GZIP:
        *c = MOLT_PKG_GZIP;
        break;
    case ARCHIVE_FILTER_ZSTD:
        *c = MOLT_PKG_ZSTD;
        break;
    default:
        rc = molt_err_set(err, MOLT_E_INVAL, "%s: neither gzip nor zstd compressed", package);
        goto out;
    }
    while (rc == 0 && (n = archive_read_data(a, buf, sizeof(buf))) != 0) {
        if (n < 0)
            rc = molt_err_set(err, MOLT_E_IO, "%s: %s", package, archive_error_string(a));
        else if ((rc = molt_pkg_hasher_update(&h, buf, (size_t)n, err)) == 0 &&
                 molt_fs_write_all(fd, buf, (size_t)n) < 0)
            rc = molt_err_errno(err, "write the archive of %s", package);
    }
    if (rc == 0)
        rc = molt_pkg_hasher_final(&h, hex, size, err);
out:
    molt_pkg_hasher_free(&h);
    archive_read_free(a);
    return rc;
}

static int base_from_package(const char *package, const char *tmp_dir, struct molt_delta_base *b,
                             enum molt_pkg_compress *c, struct molt_err *err)
{
    uint64_t size = 0;
    int fd, rc;

    memset(b, 0, sizeof(*b));
    fd = tmp_file(tmp_dir, err);
    if (fd < 0)
        return fd;
    rc = unpack(package, fd, b->sha256, &size, c, err);
    if (rc == 0)
        rc = map_base(fd, size, b, err);
    close(fd);
    return rc;
}

int molt_delta_base_from_package(const char *package, const char *tmp_dir,
                                 struct molt_delta_base *b, struct molt_err *err)
{
    enum molt_pkg_compress c;

    return base_from_package(package, tmp_dir, b, &c, err);
}

void molt_delta_base_close(struct molt_delta_base *b)
{
    if (b->map)
        munmap(b->map, b->map_len);
    memset(b, 0, sizeof(*b));
}

/* ---- making --------------------------------------------------------------- */

struct hash_sink {
    struct molt_pkg_hasher h;
    int fd; /* -1: hash only */
};

static int hash_sink_out(void *ud, const void *buf, size_t n, struct molt_err *err)
{
    struct hash_sink *s = ud;
    int rc = molt_pkg_hasher_update(&s->h, buf, n, err);

    if (rc < 0)
        return molt_err_prefix(err, "delta: the rebuilt package is over its size");
    if (s->fd >= 0 && molt_fs_write_all(s->fd, buf, n) < 0)
        rc = molt_err_errno(err, "write the package");
    return rc;
}

/* Would recompressing the archive give the package again, here? */
static int check_recompress(const struct molt_delta_base *arch, enum molt_pkg_compress c,
                            uint64_t want_size, const char *want_sha, struct molt_err *err)
{
    struct hash_sink s = {.fd = -1};
    struct molt_pkg_recompress *r = NULL;
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    int rc = molt_pkg_hasher_init(&s.h, 0, err);

    if (rc == 0)
        rc = molt_pkg_recompress_open(&r, c, hash_sink_out, &s, err);
    for (uint64_t off = 0; rc == 0 && off < arch->size; off += CHUNK) {
        size_t n = arch->size - off < CHUNK ? (size_t)(arch->size - off) : CHUNK;
        rc = molt_pkg_recompress_write(r, arch->data + off, n, err);
    }
    rc = rc == 0 ? molt_pkg_recompress_close(r, 1, err) : (molt_pkg_recompress_close(r, 0, NULL), rc);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&s.h, hex, &size, err);
    molt_pkg_hasher_free(&s.h);
    if (rc == 0 && (size != want_size || strcmp(hex, want_sha) != 0))
        rc = molt_err_set(err, MOLT_E_VERIFY,
                          "recompressing its archive does not give the package again (%" PRIu64
                          " bytes, not %" PRIu64 "): not made by molt-pack build with this "
                          "compressor",
                          size, want_size);
    return rc;
}

static int package_hash(const char *path, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                        struct molt_err *err)
{
    struct molt_pkg_hasher h = {0};
    struct stat sb;
    int rc;

    if (stat(path, &sb) < 0)
        return molt_err_errno(err, "stat %s", path);
    rc = molt_pkg_hasher_init(&h, 0, err);
    if (rc == 0)
        rc = molt_pkg_hasher_update_file(&h, path, (uint64_t)sb.st_size, err);
    if (rc == 0)
        rc = molt_pkg_hasher_final(&h, hex, size, err);
    molt_pkg_hasher_free(&h);
    return rc;
}

static int compress_patch(const struct molt_delta_base *base, const struct molt_delta_base *arch,
                          int level, unsigned char **out, size_t *len, struct molt_err *err)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t bound = ZSTD_compressBound((size_t)arch->size);
    unsigned char *buf = malloc(MOLT_DELTA_HEADER_SIZE + bound);
    size_t n;
    int rc = 0;

    if (!cc || !buf) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
        goto out;
    }
    n = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_setParameter(cc, ZSTD_c_enableLongDistanceMatching, 1);
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, window_log(base->size, arch->size));
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_refPrefix(cc, base->data, (size_t)base->size);
    if (!ZSTD_isError(n))
        n = ZSTD_compress2(cc, buf + MOLT_DELTA_HEADER_SIZE, bound, arch->data, (size_t)arch->size);
    if (ZSTD_isError(n)) {
        rc = molt_err_set(err, MOLT_E_INVAL, "zstd: %s", ZSTD_getErrorName(n));
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    ZSTD_freeCCtx(cc);
    return rc;
}

int molt_delta_make(const char *old_package, const char *new_package, const char *out_path,
                    int level, const char *tmp_dir, struct molt_delta_header *h_out,
                    struct molt_err *err)
{
    struct molt_delta_base base = {0}, arch = {0};
    struct molt_delta_header h = {0};
    enum molt_pkg_compress oldc, c = MOLT_PKG_GZIP;
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc;

    rc = base_from_package(old_package, tmp_dir, &base, &oldc, err);
    if (rc < 0)
        molt_err_prefix(err, "base %s", old_package);
    if (rc == 0 && (rc = base_from_package(new_package, tmp_dir, &arch, &c, err)) < 0)
        molt_err_prefix(err, "%s", new_package);
    if (rc == 0 && (rc = package_hash(new_package, h.package_sha256, &h.package_size, err)) == 0 &&
        (rc = check_recompress(&arch, c, h.package_size, h.package_sha256, err)) < 0)
        molt_err_prefix(err, "%s", new_package);
    if (rc == 0)
        rc = compress_patch(&base, &arch, level > 0                               ? level
                                          : arch.size > MOLT_DELTA_LARGE_ARCHIVE ? MOLT_DELTA_LEVEL_LARGE
                                                                                 : MOLT_DELTA_LEVEL_DEFAULT,
                            &buf, &n, err);
    if (rc == 0) {
        h.compress = c;
        h.base_size = base.size;
        snprintf(h.base_sha256, sizeof(h.base_sha256), "%s", base.sha256);
        h.archive_size = arch.size;
        snprintf(h.archive_sha256, sizeof(h.archive_sha256), "%s", arch.sha256);
        h.patch_size = n;
        molt_delta_header_format(&h, buf);
        rc = molt_fs_write_atomic(out_path, buf, MOLT_DELTA_HEADER_SIZE + n, 0644, err);
    }
    if (rc == 0 && h_out)
        *h_out = h;
    free(buf);
    molt_delta_base_close(&base);
    molt_delta_base_close(&arch);
    return rc;
}

/* ---- applying ------------------------------------------------------------- */

struct apply {
    ZSTD_DCtx *dc;
    struct molt_pkg_hasher arch;   /* the rebuilt archive, capped at the header's size */
    struct hash_sink pkg;          /* the package, capped at the signed size */
    struct molt_pkg_recompress *r;
    uint64_t patch_left;
    int frame_done;
    unsigned char out[CHUNK];
};

static int read_some(int fd, void *buf, size_t n, size_t *got, struct molt_err *err)
{
    ssize_t r;

    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return molt_err_errno(err, "read the delta");
    *got = (size_t)r;
    return 0;
}

static int read_header(int fd, struct molt_delta_header *h, struct molt_err *err)
{
    unsigned char buf[MOLT_DELTA_HEADER_SIZE];
    size_t have = 0, got = 0;
    int rc = 0;

    while (rc == 0 && have < sizeof(buf)) {
        rc = read_some(fd, buf + have, sizeof(buf) - have, &got, err);
        if (rc == 0 && got == 0)
            break;
        have += got;
    }
    return rc < 0 ? rc : molt_delta_header_parse(buf, have, h, err);
}

static int check_header(const struct molt_delta_header *h, const struct molt_delta_base *base,
                        uint64_t package_size, const char *package_sha256, struct molt_err *err)
{
    if (h->base_size != base->size || strcmp(h->base_sha256, base->sha256) != 0)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "wrong base: the delta is against an archive of %" PRIu64
                            " bytes, sha256 %.16s..., this base is %" PRIu64
                            " bytes, sha256 %.16s...",
                            h->base_size, h->base_sha256, base->size, base->sha256);
    if (h->package_size != package_size || strcmp(h->package_sha256, package_sha256) != 0)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "wrong target: the delta builds a package of %" PRIu64
                            " bytes, sha256 %.16s..., the statement says %" PRIu64
                            " bytes, sha256 %.16s...",
                            h->package_size, h->package_sha256, package_size, package_sha256);
    return 0;
}

/* Decompresses one chunk of patch, passing the archive on to recompression. */
static int feed(struct apply *ap, const void *data, size_t len, struct molt_err *err)
{
    ZSTD_inBuffer in = {data, len, 0};

    if (ap->frame_done)
        return molt_err_set(err, MOLT_E_VERIFY, "delta: data after the zstd frame");
    for (;;) {
        ZSTD_outBuffer o = {ap->out, sizeof(ap->out), 0};
        size_t ret = ZSTD_decompressStream(ap->dc, &o, &in);
        int rc;

        if (ZSTD_isError(ret))
            return molt_err_set(err, MOLT_E_VERIFY, "delta: corrupt patch: %s",
                                ZSTD_getErrorName(ret));
        if (o.pos > 0 && molt_pkg_hasher_update(&ap->arch, ap->out, o.pos, err) < 0)
            return molt_err_prefix(err, "delta: the patch rebuilds an archive larger than its "
                                        "header says");
        if (o.pos > 0 && (rc = molt_pkg_recompress_write(ap->r, ap->out, o.pos, err)) < 0)
            return rc;
        if (ret == 0) {
            ap->frame_done = 1;
            return in.pos < in.size
                       ? molt_err_set(err, MOLT_E_VERIFY, "delta: data after the zstd frame")
                       : 0;
        }
        /* A full output buffer may hold back more: call again even without input. */
        if (in.pos == in.size && o.pos < o.size)
            return 0;
    }
}

static int apply_stream(int patch_fd, struct apply *ap, struct molt_err *err)
{
    unsigned char buf[CHUNK];
    size_t got = 0;
    int rc = 0;

    while (rc == 0 && ap->patch_left > 0) {
        size_t want = ap->patch_left < sizeof(buf) ? (size_t)ap->patch_left : sizeof(buf);
        rc = read_some(patch_fd, buf, want, &got, err);
        if (rc == 0 && got == 0)
            return molt_err_set(err, MOLT_E_VERIFY, "delta: truncated: %" PRIu64
                                " bytes of the patch missing", ap->patch_left);
        if (rc == 0) {
            ap->patch_left -= got;
            rc = feed(ap, buf, got, err);
        }
    }
    if (rc == 0 && !ap->frame_done)
        return molt_err_set(err, MOLT_E_VERIFY, "delta: truncated: the zstd frame is incomplete");
    if (rc == 0 && (rc = read_some(patch_fd, buf, 1, &got, err)) == 0 && got > 0)
        return molt_err_set(err, MOLT_E_VERIFY, "delta: data after the patch's declared size");
    return rc;
}

static int check_results(struct apply *ap, const struct molt_delta_header *h,
                         struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    int rc = molt_pkg_hasher_final(&ap->arch, hex, &size, err);

    if (rc == 0 && (size != h->archive_size || strcmp(hex, h->archive_sha256) != 0))
        return molt_err_set(err, MOLT_E_VERIFY,
                            "delta: the patch rebuilt the wrong archive: %" PRIu64
                            " bytes, sha256 %.16s..., the header says %" PRIu64
                            " bytes, sha256 %.16s...",
                            size, hex, h->archive_size, h->archive_sha256);
    if (rc == 0)
        rc = molt_pkg_recompress_close(ap->r, 1, err);
    ap->r = NULL;
    if (rc == 0)
        rc = molt_pkg_hasher_final(&ap->pkg.h, hex, &size, err);
    if (rc == 0 && (size != h->package_size || strcmp(hex, h->package_sha256) != 0))
        return molt_err_set(err, MOLT_E_VERIFY,
                            "delta: the recompressed package differs from the signed one: %" PRIu64
                            " bytes, sha256 %.16s..., expected %" PRIu64
                            " bytes, sha256 %.16s... (this host compresses differently?)",
                            size, hex, h->package_size, h->package_sha256);
    return rc;
}

int molt_delta_apply(int patch_fd, const struct molt_delta_base *base, uint64_t package_size,
                     const char package_sha256[MOLT_PKG_SHA256_HEX], int out_fd,
                     struct molt_delta_header *h_out, struct molt_err *err)
{
    struct molt_delta_header h = { 0 };
    struct apply *ap = calloc(1, sizeof(*ap)); /* its buffer is too big for a stack */
    size_t n = 0;
    int rc;

    if (!ap)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    ap->pkg.fd = out_fd;
    rc = read_header(patch_fd, &h, err);
    if (rc == 0 && h_out)
        *h_out = h;
    if (rc == 0)
        rc = check_header(&h, base, package_size, package_sha256, err);
    if (rc == 0 && !(ap->dc = ZSTD_createDCtx()))
        rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    if (rc == 0) {
        n = ZSTD_DCtx_setParameter(ap->dc, ZSTD_d_windowLogMax,
                                   window_log(h.base_size, h.archive_size));
        if (!ZSTD_isError(n))
            n = ZSTD_DCtx_refPrefix(ap->dc, base->data, (size_t)base->size);
        if (ZSTD_isError(n))
            rc = molt_err_set(err, MOLT_E_INVAL, "zstd: %s", ZSTD_getErrorName(n));
    }
    if (rc == 0 && (rc = molt_pkg_hasher_init(&ap->arch, h.archive_size, err)) == 0 &&
        (rc = molt_pkg_hasher_init(&ap->pkg.h, package_size, err)) == 0)
        rc = molt_pkg_recompress_open(&ap->r, h.compress, hash_sink_out, &ap->pkg, err);
    ap->patch_left = h.patch_size;
    if (rc == 0)
        rc = apply_stream(patch_fd, ap, err);
    if (rc == 0)
        rc = check_results(ap, &h, err);
    molt_pkg_recompress_close(ap->r, 0, NULL);
    molt_pkg_hasher_free(&ap->arch);
    molt_pkg_hasher_free(&ap->pkg.h);
    ZSTD_freeDCtx(ap->dc);
    free(ap);
    return rc;
}
