/* delta.h: delta packages (docs/package-format.md, section 7): a fixed header
 * and one zstd frame that rebuilds a build's uncompressed archive from the
 * uncompressed archive of an older build (the base, zstd's refPrefix with
 * long-distance matching); recompressing it the way molt-pack build does gives
 * the signed package again, which is hashed as it is written and accepted only
 * if it has the signed size and sha256. */
#ifndef MOLT_DELTA_H
#define MOLT_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "package.h"

#define MOLT_DELTA_MAGIC "MOLTDLT1"
#define MOLT_DELTA_HEADER_SIZE 144
/* Bases and rebuilt archives: 4 GiB of file data plus headers and the manifest. */
#define MOLT_DELTA_ARCHIVE_MAX ((uint64_t)5 << 30)
/* zstd levels: 19 gives the smallest point-release deltas, but past a few tens
 * of MiB its parser misses long matches (a 64 MiB pair: 1 MB at 19, 295 KB at
 * 9, bench/README.md), so larger archives get 9. */
#define MOLT_DELTA_LEVEL_DEFAULT 19
#define MOLT_DELTA_LEVEL_LARGE 9
#define MOLT_DELTA_LARGE_ARCHIVE ((uint64_t)32 << 20)

struct molt_delta_header {
    enum molt_pkg_compress compress; /* the package's: MOLT_PKG_GZIP or MOLT_PKG_ZSTD */
    uint64_t base_size;              /* the base: the old build's uncompressed archive */
    char base_sha256[MOLT_PKG_SHA256_HEX];
    uint64_t archive_size; /* what the patch rebuilds: the new build's uncompressed archive */
    char archive_sha256[MOLT_PKG_SHA256_HEX];
    uint64_t package_size; /* the new package (as its signed statement says) */
    char package_sha256[MOLT_PKG_SHA256_HEX];
    uint64_t patch_size; /* bytes of the zstd frame after the header */
};

/* Big-endian fixed layout; parse refuses a bad magic, unknown flags or
 * compression, sizes out of bounds, with a message naming the field. */
void molt_delta_header_format(const struct molt_delta_header *h,
                              unsigned char out[MOLT_DELTA_HEADER_SIZE]);
int molt_delta_header_parse(const void *buf, size_t len, struct molt_delta_header *h,
                            struct molt_err *err);

/* A base in memory (mapped from a file): its bytes, size and sha256. */
struct molt_delta_base {
    const unsigned char *data;
    uint64_t size;
    char sha256[MOLT_PKG_SHA256_HEX];
    void *map;
    size_t map_len;
};

/* The base rebuilt from an installed (or staged) tree: molt_pkg_archive_tree
 * into an unlinked temporary file in tmp_dir (its disk space is given back at
 * close), mapped read-only. */
int molt_delta_base_from_tree(const char *tree_dir, const char *tmp_dir, struct molt_delta_base *b,
                              struct molt_err *err);
/* The base taken from a package file (decompressed into a temporary file). */
int molt_delta_base_from_package(const char *package, const char *tmp_dir,
                                 struct molt_delta_base *b, struct molt_err *err);
void molt_delta_base_close(struct molt_delta_base *b);

/* Makes a delta from old_package's archive to new_package at out_path
 * (written atomically). Refuses a new package that recompressing its own
 * archive does not give again (not a molt-pack build, or another compressor).
 * level: zstd level (0: MOLT_DELTA_LEVEL_DEFAULT, or _LARGE above MOLT_DELTA_LARGE_ARCHIVE). */
int molt_delta_make(const char *old_package, const char *new_package, const char *out_path,
                    int level, const char *tmp_dir, struct molt_delta_header *h_out,
                    struct molt_err *err);

/* Applies the delta read from patch_fd (its start) to base, writing the
 * package to out_fd. The header must name this base and exactly the package
 * expected (size, sha256: the signed statement's); the output is hashed as it
 * is written and never longer than that size. On failure out_fd holds garbage
 * the caller discards. h_out (may be NULL) gets the header once parsed. */
int molt_delta_apply(int patch_fd, const struct molt_delta_base *base, uint64_t package_size,
                     const char package_sha256[MOLT_PKG_SHA256_HEX], int out_fd,
                     struct molt_delta_header *h_out, struct molt_err *err);

#endif
