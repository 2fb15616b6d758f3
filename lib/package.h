/* package.h: molt build packages (docs/package-format.md): the release
 * statement, the manifest, streaming hashing, the checks that make a package
 * acceptable on this host, safe staging, and building packages.
 *
 * The order of use for a downloaded package (agent), every step fatal on error:
 *   1. molt_pkg_authenticate(): signature over the statement's exact bytes (before
 *      anything reads the statement), then parse, then molt_pkg_statement_check();
 *   2. download, feeding every byte to a molt_pkg_hasher (limit = statement size);
 *   3. molt_pkg_bytes_check() with the hasher's result;
 *   4. molt_pkg_stage() into the upgrade directory.
 * For a package file already on disk (offline / first install), molt_pkg_verify_file()
 * does 1 to 3 in one call, then molt_pkg_stage().
 *
 * Error messages name the reason precisely; the ones callers may rely on:
 *   "signature: ..." (see sign.h), "statement is for V1, command asked for V2",
 *   "built for aarch64, host is amd64", "requires at least M, running R",
 *   "sha256 mismatch", "size mismatch: got N bytes, statement says M",
 *   "longer than declared: ...", and staging's "<reason>: <entry path>". */
#ifndef MOLT_PACKAGE_H
#define MOLT_PACKAGE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sign.h"

#define MOLT_PKG_NAME "molt"
#define MOLT_PKG_STATEMENT_MAX 65536 /* largest statement accepted */
#define MOLT_PKG_SHA256_HEX 65       /* 64 lowercase hex digits + NUL */
#define MOLT_PKG_MANIFEST_NAME "manifest.json"

/* ---- release statement --------------------------------------------------- */

struct molt_statement {
    char name[32]; /* always "molt" */
    char version[65];
    char release[65]; /* free build tag, [0-9A-Za-z.+_-]*, may be empty */
    char os[16];      /* "linux" */
    char arch[32];    /* molt_host_arch_name() spelling: amd64, aarch64, ... */
    uint64_t size;    /* package bytes */
    char sha256[MOLT_PKG_SHA256_HEX];
    /* sha256 of the package's manifest.json: binds a staged tree, file by
     * file, to this statement (molt_pkg_tree_check). "" in a statement of a
     * molt-pack from before the field, which the agent refuses. */
    char manifest_sha256[MOLT_PKG_SHA256_HEX];
    char min_version[65]; /* oldest running version it applies to; "" = any */
    int64_t created_ms;
    char package[256]; /* molt-<version>-<os>-<arch>.tar.gz|.tar.zst */
    /* Not a statement field: the key id that signed it, set by
     * molt_pkg_authenticate() and molt_pkg_verify_file(); "" after a bare parse. */
    char keyid[MOLT_PKG_KEYID_SIZE];
};

/* Parses a statement (only after its signature verified!). Strict: every
 * field present with its type; name "molt"; versions valid; sha256 64
 * lowercase hex; package named as the fields say. Unknown fields are ignored. */
int molt_pkg_statement_parse(const void *buf, size_t len, struct molt_statement *out,
                             struct molt_err *err);

/* Serialises st as the one-line JSON (plus "\n") molt-pack writes; *out malloc'd. */
int molt_pkg_statement_format(const struct molt_statement *st, char **out, size_t *len,
                              struct molt_err *err);

/* Is this statement acceptable here? expected_version NULL: any version;
 * running_version NULL: skip the oldest-applicable check; host_os/host_arch
 * NULL: this host ("linux", molt_host_arch_name(uname -m)). */
int molt_pkg_statement_check(const struct molt_statement *st, const char *expected_version,
                             const char *running_version, const char *host_os,
                             const char *host_arch, struct molt_err *err);

/* Signature, then parse, then molt_pkg_statement_check(): the statement and
 * signature as the command carries them (base64-decoded). out->keyid is set. */
int molt_pkg_authenticate(const char *keys_dir, const void *stmt, size_t stmt_len, const void *sig,
                          size_t sig_len, const char *expected_version, const char *running_version,
                          const char *host_os, const char *host_arch, struct molt_statement *out,
                          struct molt_err *err);

/* The package file name the statement fields imply ("molt-20.2-100-linux-amd64.tar.gz"). */
int molt_pkg_file_name(const char *version, const char *os, const char *arch, const char *ext,
                       char *out, size_t n, struct molt_err *err);

/* ---- streaming hash ------------------------------------------------------ */

struct molt_pkg_hasher {
    void *ctx;      /* EVP_MD_CTX */
    uint64_t bytes; /* bytes fed so far */
    uint64_t limit; /* 0: none; else update fails once bytes would exceed it */
};

/* limit: the statement's size, so a server sending more is stopped at once. */
int molt_pkg_hasher_init(struct molt_pkg_hasher *h, uint64_t limit, struct molt_err *err);
/* Fails with MOLT_E_LIMIT "longer than declared: ..." past the limit (nothing fed then). */
int molt_pkg_hasher_update(struct molt_pkg_hasher *h, const void *data, size_t len,
                           struct molt_err *err);
/* Feeds the first len bytes of path: rebuilds the state for a partial download
 * after an agent restart (the only time a download's bytes are read back). */
int molt_pkg_hasher_update_file(struct molt_pkg_hasher *h, const char *path, uint64_t len,
                                struct molt_err *err);
/* Writes the lowercase hex digest and the byte count; frees the context. */
int molt_pkg_hasher_final(struct molt_pkg_hasher *h, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                          struct molt_err *err);
/* Frees without a result (error paths); safe on a zeroed or finalised hasher. */
void molt_pkg_hasher_free(struct molt_pkg_hasher *h);

/* sha256 of len bytes at buf, as 64 lowercase hex digits. */
int molt_pkg_sha256_buf(const void *buf, size_t len, char hex[MOLT_PKG_SHA256_HEX],
                        struct molt_err *err);

/* Do the downloaded bytes match the statement? Size first, then sha256. */
int molt_pkg_bytes_check(const struct molt_statement *st, uint64_t size,
                         const char sha256_hex[MOLT_PKG_SHA256_HEX], struct molt_err *err);

/* Offline and first installs: reads statement_path and sig_path (NULL: the
 * names beside package: <package>.statement.json, <package>.sig), verifies the
 * signature, parses, checks (as molt_pkg_statement_check), then reads the
 * package once, hashing as it streams, and checks size and sha256. */
int molt_pkg_verify_file(const char *keys_dir, const char *package, const char *statement_path,
                         const char *sig_path, const char *expected_version,
                         const char *running_version, const char *host_os, const char *host_arch,
                         struct molt_statement *out, struct molt_err *err);

/* ---- manifest ------------------------------------------------------------ */

enum molt_pkg_ftype { MOLT_PKG_FILE, MOLT_PKG_DIR, MOLT_PKG_SYMLINK };

struct molt_pkg_file {
    char *path;   /* relative, normalised, e.g. "bin/molt-agent" */
    char *target; /* symlinks only, else NULL */
    enum molt_pkg_ftype type;
    unsigned mode; /* as listed; staged files get (mode & 0755) | 0400, dirs | 0700 */
    uint64_t size; /* files only */
    char sha256[MOLT_PKG_SHA256_HEX]; /* files only */
    int seen;                         /* staging's bookkeeping */
};

struct molt_manifest {
    char name[32];
    char version[65];
    char os[16];
    char arch[32];
    struct molt_pkg_file *files; /* sorted by path (strcmp) */
    size_t nfiles;
    uint64_t total_size; /* sum of file sizes */
};

/* Limits on what a package may unpack to; molt_pkg_limits_default() fills the
 * defaults below. Tests and fuzzers use smaller ones. */
struct molt_pkg_limits {
    size_t max_entries;    /* manifest entries (default 10000) */
    size_t max_path;       /* bytes in one path (default 255) */
    size_t max_depth;      /* path components (default 32) */
    size_t max_manifest;   /* manifest.json bytes (default 4 MiB) */
    uint64_t max_unpacked; /* sum of file sizes (default 4 GiB) */
    uint64_t free_margin;  /* free space kept beyond package + unpacked (default 16 MiB) */
};

void molt_pkg_limits_default(struct molt_pkg_limits *lim);

/* Parses and validates a manifest: fields, types, paths (relative, no "." or
 * "..", no control characters), unique paths, parents listed as directories,
 * symlinks resolving inside the package through directories only, limits.
 * lim NULL: defaults. Free with molt_pkg_manifest_free(). */
int molt_pkg_manifest_parse(const void *buf, size_t len, const struct molt_pkg_limits *lim,
                            struct molt_manifest *out, struct molt_err *err);
void molt_pkg_manifest_free(struct molt_manifest *m);
const struct molt_pkg_file *molt_pkg_manifest_find(const struct molt_manifest *m, const char *path);
/* Serialises a manifest in molt-pack's layout (files in path order); *out malloc'd. */
int molt_pkg_manifest_format(const struct molt_manifest *m, char **out, size_t *len,
                             struct molt_err *err);

/* ---- staging ------------------------------------------------------------- */

/* Extracts a verified package (its statement st already authenticated and its
 * bytes checked) into upgrade_dir/<name>; out_dir gets that path. Unpacks into
 * upgrade_dir/<name>.partial and renames it into place at the end, so
 * upgrade_dir/<name> only ever exists complete; leftovers of an interrupted
 * attempt under either name are removed first. Rejects anything the format
 * forbids (see docs/package-format.md), checks free space (fault point
 * "stage.enospc"), compares every entry with the manifest, re-hashes the
 * package bytes as it reads them and compares them with st. The staged tree
 * holds the files plus manifest.json. On failure nothing is left. */
int molt_pkg_stage(const char *package, const struct molt_statement *st, const char *upgrade_dir,
                   const char *name, char out_dir[PATH_MAX], struct molt_err *err);
/* Same, with explicit limits (NULL: defaults). */
int molt_pkg_stage_ex(const char *package, const struct molt_statement *st, const char *upgrade_dir,
                      const char *name, const struct molt_pkg_limits *lim, char out_dir[PATH_MAX],
                      struct molt_err *err);

/* Runs every staging check without writing anything (molt-pack verify, fuzzers).
 * st may be NULL to skip the statement comparisons (then the archive is trusted
 * as-is: fuzzing and diagnostics only). */
int molt_pkg_inspect(const char *package, const struct molt_statement *st,
                     const struct molt_pkg_limits *lim, struct molt_err *err);

/* Re-checks an unpacked tree (staged or installed) against its own
 * manifest.json: every listed entry present with its type, size and sha256
 * (symlink targets equal), nothing extra. dir itself must not be a symlink.
 * manifest_sha256 NULL: integrity only; else also authenticity, since the
 * manifest's bytes must hash to it (a signed statement's manifestSha256):
 * then the tree is the signed build whoever unpacked it. */
int molt_pkg_tree_check(const char *dir, const char *manifest_sha256, struct molt_err *err);

/* ---- building (molt-pack) ------------------------------------------------ */

/* MOLT_PKG_TAR: the uncompressed archive (delta bases and targets, lib/delta.h). */
enum molt_pkg_compress { MOLT_PKG_GZIP, MOLT_PKG_ZSTD, MOLT_PKG_TAR };

struct molt_pkg_build_opts {
    const char *src_dir; /* the version tree: bin/molt-agent, ... */
    const char *out;     /* the package path, or an existing directory */
    const char *version;
    const char *os; /* NULL: "linux" */
    const char *arch;
    const char *min_version; /* NULL or "": any */
    const char *release;     /* NULL: "1" */
    enum molt_pkg_compress compress;
    int64_t created_ms; /* <= 0: SOURCE_DATE_EPOCH, else now */
};

/* Builds a reproducible package (entries sorted, manifest.json first, mtime 0,
 * owner 0:0, no names, gzip without a timestamp) and its unsigned statement
 * <package>.statement.json. package_out (may be NULL) gets the package path. */
int molt_pkg_build(const struct molt_pkg_build_opts *o, char package_out[PATH_MAX],
                   struct molt_statement *st_out, struct molt_err *err);

/* Writes to outfd the uncompressed archive of an unpacked tree (staged or
 * installed) exactly as molt_pkg_build wrote it inside the package: its own
 * manifest.json's bytes first, then the listed entries in manifest order with
 * the manifest's modes, each file hashed and compared with the manifest as it
 * is copied. hex/size: the archive's sha256 and length. */
int molt_pkg_archive_tree(const char *dir, int outfd, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                          struct molt_err *err);

/* Compresses an uncompressed archive the way molt_pkg_build compresses its
 * package (same libarchive filter and options), feeding the output to out(). */
typedef int (*molt_pkg_out_fn)(void *ud, const void *buf, size_t n, struct molt_err *err);
struct molt_pkg_recompress;
int molt_pkg_recompress_open(struct molt_pkg_recompress **r, enum molt_pkg_compress c,
                             molt_pkg_out_fn out, void *ud, struct molt_err *err);
int molt_pkg_recompress_write(struct molt_pkg_recompress *r, const void *buf, size_t n,
                              struct molt_err *err);
/* Flushes (rc 0) and frees; on any earlier failure just frees. NULL is a no-op. */
int molt_pkg_recompress_close(struct molt_pkg_recompress *r, int flush, struct molt_err *err);

#endif
