/* fuzz_archive.c: libFuzzer harness for archive validation and extraction:
 * the input is taken as a package whose statement matches its bytes
 * (version 1.0, linux/amd64), checked without writing, then staged into a
 * temporary upgrade directory, which must be empty again after a failure.
 * An input that is not gzip or zstd is gzip-compressed first, so that the
 * fuzzer can reach the tar and manifest rules instead of only the
 * decompressors' checksums. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[PATH_MAX];

static void remove_root(void)
{
    molt_fs_remove_tree(root, NULL);
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n == 0;
}

static int compressed(const uint8_t *data, size_t size)
{
    static const uint8_t gz[] = {0x1f, 0x8b}, zst[] = {0x28, 0xb5, 0x2f, 0xfd};

    return (size >= 2 && memcmp(data, gz, 2) == 0) || (size >= 4 && memcmp(data, zst, 4) == 0);
}

/* Writes data gzip-compressed (no tar framing of its own) to path. */
static void write_gzip(const char *path, const uint8_t *data, size_t size)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();

    if (!a || !e || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_format_raw(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_filename(a, path) != ARCHIVE_OK)
        abort();
    archive_entry_set_pathname(e, "data");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)size);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (size && archive_write_data(a, data, size) != (la_ssize_t)size) ||
        archive_write_close(a) != ARCHIVE_OK)
        abort();
    archive_entry_free(e);
    archive_write_free(a);
}

/* A statement that matches the package file's bytes, named by its compression. */
static int statement_for(const char *pkg, struct molt_statement *st)
{
    struct molt_pkg_hasher h;
    struct stat sb;
    unsigned char magic[4] = {0};
    FILE *f = fopen(pkg, "rb");
    int zstd;

    if (!f)
        return -1;
    zstd = fread(magic, 1, 4, f) == 4 && compressed(magic, 4) && magic[0] == 0x28;
    fclose(f);
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "molt");
    snprintf(st->version, sizeof(st->version), "1.0");
    snprintf(st->os, sizeof(st->os), "linux");
    snprintf(st->arch, sizeof(st->arch), "amd64");
    snprintf(st->package, sizeof(st->package), "molt-1.0-linux-amd64.%s",
             zstd ? "tar.zst" : "tar.gz");
    if (stat(pkg, &sb) < 0 || molt_pkg_hasher_init(&h, 0, NULL) < 0)
        return -1;
    if (molt_pkg_hasher_update_file(&h, pkg, (uint64_t)sb.st_size, NULL) < 0) {
        molt_pkg_hasher_free(&h);
        return -1;
    }
    return molt_pkg_hasher_final(&h, st->sha256, &st->size, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_pkg_limits lim;
    struct molt_statement st;
    char pkg[PATH_MAX], upgrade[PATH_MAX], out[PATH_MAX];
    FILE *f;

    if (!root[0]) {
        const char *tmp = getenv("TMPDIR");
        molt_log_setup("fuzz_archive", MOLT_LOG_ERROR, 0);
        snprintf(root, sizeof(root), "%s/molt-fuzz-archive-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(root))
            abort();
        atexit(remove_root);
    }
    snprintf(pkg, sizeof(pkg), "%s/package", root);
    snprintf(upgrade, sizeof(upgrade), "%s/upgrade", root);
    molt_fs_remove_tree(upgrade, NULL);
    molt_fs_mkdir_p(upgrade, 0755, NULL);
    if (compressed(data, size)) {
        f = fopen(pkg, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
            abort();
    } else {
        write_gzip(pkg, data, size);
    }
    molt_pkg_limits_default(&lim);
    lim.max_entries = 64;
    lim.max_unpacked = 1u << 20;
    lim.free_margin = 0;
    if (statement_for(pkg, &st) < 0)
        abort();
    (void)molt_pkg_inspect(pkg, NULL, &lim, NULL);
    if (molt_pkg_stage_ex(pkg, &st, upgrade, "stage", &lim, out, NULL) < 0 &&
        !dir_is_empty(upgrade))
        abort(); /* a failed staging must leave nothing behind */
    /* libFuzzer may end without running atexit handlers: keep the scratch
     * directory empty between inputs. */
    molt_fs_remove_tree(upgrade, NULL);
    unlink(pkg);
    return 0;
}
