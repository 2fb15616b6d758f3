/* fuzz_archive.c: libFuzzer harness for archive validation and extraction:
 * the input is taken as a package whose statement matches its bytes
 * (version 1.0, linux/amd64), checked without writing, then staged into a
 * temporary upgrade directory, which must be empty again after a failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void statement_for(const uint8_t *data, size_t size, struct molt_statement *st)
{
    struct molt_pkg_hasher h;
    int zstd =
        size >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd;

    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "molt");
    snprintf(st->version, sizeof(st->version), "1.0");
    snprintf(st->os, sizeof(st->os), "linux");
    snprintf(st->arch, sizeof(st->arch), "amd64");
    snprintf(st->package, sizeof(st->package), "molt-1.0-linux-amd64.%s",
             zstd ? "tar.zst" : "tar.gz");
    molt_pkg_hasher_init(&h, 0, NULL);
    molt_pkg_hasher_update(&h, data, size, NULL);
    molt_pkg_hasher_final(&h, st->sha256, &st->size, NULL);
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
    f = fopen(pkg, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    molt_pkg_limits_default(&lim);
    lim.max_entries = 64;
    lim.max_unpacked = 1u << 20;
    lim.free_margin = 0;
    statement_for(data, size, &st);
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
