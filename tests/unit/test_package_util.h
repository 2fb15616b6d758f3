/* test_package_util.h: crafts packages, statements, keys and signatures at test
 * time (libarchive's writer and molt's own keygen), for the package tests. */
#ifndef MOLT_TEST_PACKAGE_UTIL_H
#define MOLT_TEST_PACKAGE_UTIL_H

#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

/* One archive entry. type: 'f' file, 'd' dir, 'l' symlink, 'h' hardlink,
 * 'c' char device, 'b' block device, 'p' FIFO, 's' sparse file. */
struct tp_entry {
    const char *path;
    char type;
    const char *data;     /* file contents, or symlink/hardlink target */
    unsigned mode;        /* 0: 0755 for dirs, 0644 for files */
    size_t zeros;         /* 'f' with data NULL: this many zero bytes */
    int not_listed;       /* left out of the manifest */
    int not_archived;     /* listed in the manifest, left out of the archive */
    const char *m_sha256; /* manifest says this sha256 instead */
    int64_t m_size;       /* manifest says this size instead (when > 0) */
    char m_type;          /* manifest says this type instead ('f', 'd', 'l') */
};

struct tp_opts {
    const char *version;     /* default "20.2-100" */
    const char *os;          /* default "linux" */
    const char *arch;        /* default: this host */
    const char *min_version; /* default "" */
    int zstd;
    const char *manifest;  /* raw manifest.json instead of the generated one */
    const char *m_version; /* generated manifest says this version instead */
    int manifest_last;     /* manifest.json written last instead of first */
};

struct tp_env {
    char dir[PATH_MAX];
    char keys[PATH_MAX];       /* trusted keys directory (key A) */
    char key[PATH_MAX];        /* key A, private */
    char other_keys[PATH_MAX]; /* key B's directory: not trusted */
    char other_key[PATH_MAX];  /* key B, private */
    char upgrade[PATH_MAX];    /* an empty upgrade directory */
    char builds[PATH_MAX];
};

void tp_env_setup(struct tp_env *env);
void tp_env_teardown(struct tp_env *env);
/* cmocka setup and teardown: *state is a struct tp_env made by tp_env_setup. */
int tp_setup(void **state);
int tp_teardown(void **state);

/* The default, valid version tree. */
extern const struct tp_entry tp_good[];
extern const size_t tp_good_n;

/* Writes the archive at path. */
void tp_write_archive(const char *path, const struct tp_entry *e, size_t n,
                      const struct tp_opts *o);
/* Writes path.statement.json describing the bytes at path now; st_out may be NULL. */
void tp_write_statement(const char *path, const struct tp_opts *o, struct molt_statement *st_out);
/* Signs path.statement.json with key into path.sig. */
void tp_sign(const char *path, const char *key);
/* All three into env->builds under the canonical name; path_out gets the package path. */
void tp_make(struct tp_env *env, const struct tp_entry *e, size_t n, const struct tp_opts *o,
             char path_out[PATH_MAX], struct molt_statement *st_out);

/* Reads a whole file (test failure if absent); *len may be NULL. */
char *tp_slurp(const char *path, size_t *len);
void tp_spit(const char *path, const void *data, size_t len);
/* Number of entries in dir (without . and ..). */
int tp_count(const char *dir);

#define tp_assert_err(rc, err, expect_code, substring)                                             \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (getenv("TP_SHOW"))                                                                     \
            print_message("# %s\n", (err).msg);                                                    \
        if (rc_ != (expect_code) || !strstr((err).msg, (substring)))                               \
            fail_msg("rc %d (want %d), message \"%s\" (want \"%s\")", rc_, (expect_code),          \
                     (err).msg, (substring));                                                      \
    } while (0)

#endif
