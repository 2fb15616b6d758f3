/* test_delta.c: delta packages (lib/delta.c) between two real molt-pack builds
 * of version trees made here: byte-exact round trips (gzip and zstd, base from
 * the old package or rebuilt from a staged tree), the header, and every
 * refusal: truncated, corrupt or padded patches, the wrong base or target,
 * output over the signed size, an archive other than the header's. */
#include "test_package_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "fs.h"
#include "package.h"
#include "package_int.h"

struct pair {
    struct tp_env env;
    char old_pkg[PATH_MAX], new_pkg[PATH_MAX], delta[PATH_MAX];
    struct molt_statement old_st, new_st;
    struct molt_delta_header h;
};

/* 256 KiB of deterministic noise: a "binary" that compresses badly, as real ones do. */
static void write_tree(const char *dir, const char *version)
{
    char path[PATH_MAX];
    unsigned char *blob = malloc(256 * 1024);
    uint32_t x = 2463534242u;

    assert_non_null(blob);
    for (size_t i = 0; i < 256 * 1024; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        blob[i] = (unsigned char)x;
    }
    /* The version string inside the "binary", as a point release changes it. */
    memcpy(blob + 100000, version, strlen(version));
    snprintf(path, sizeof(path), "%s/bin", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/bin/molt-agent", dir);
    tp_spit(path, blob, 256 * 1024);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/bin/VERSION", dir);
    tp_spit(path, version, strlen(version));
    free(blob);
}

static void build(struct tp_env *env, const char *name, const char *version,
                  enum molt_pkg_compress c, char pkg[PATH_MAX], struct molt_statement *st)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_build_opts o = {0};
    char tree[PATH_MAX], os[16], arch[32];

    snprintf(tree, sizeof(tree), "%s/%s", env->dir, name);
    write_tree(tree, version);
    molt_pkg_host(os, arch);
    o.src_dir = tree;
    o.out = env->builds;
    o.version = version;
    o.arch = arch;
    o.compress = c;
    o.created_ms = 1700000000000;
    assert_int_equal(molt_pkg_build(&o, pkg, st, &err), 0);
}

static void make_pair(struct pair *p, enum molt_pkg_compress c)
{
    struct molt_err err = MOLT_ERR_INIT;

    tp_env_setup(&p->env);
    build(&p->env, "old", "20.2-100", c, p->old_pkg, &p->old_st);
    build(&p->env, "new", "20.2-101", c, p->new_pkg, &p->new_st);
    snprintf(p->delta, sizeof(p->delta), "%s/d.delta", p->env.dir);
    assert_int_equal(
        molt_delta_make(p->old_pkg, p->new_pkg, p->delta, 0, p->env.dir, &p->h, &err), 0);
}

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));

    assert_non_null(p);
    make_pair(p, MOLT_PKG_GZIP);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;

    tp_env_teardown(&p->env);
    free(p);
    return 0;
}

/* Applies delta_path to base, expecting size/sha; out (may be NULL) gets the bytes. */
static int apply(struct pair *p, const char *delta_path, const struct molt_delta_base *base,
                 uint64_t size, const char *sha, char **out, size_t *len, struct molt_err *err)
{
    char path[PATH_MAX];
    int in = open(delta_path, O_RDONLY), fd;
    int rc;

    snprintf(path, sizeof(path), "%s/out.pkg", p->env.dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(in >= 0 && fd >= 0);
    rc = molt_delta_apply(in, base, size, sha, fd, NULL, err);
    close(in);
    close(fd);
    if (out)
        *out = tp_slurp(path, len);
    return rc;
}

static void open_base(struct pair *p, struct molt_delta_base *b)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(molt_delta_base_from_package(p->old_pkg, p->env.dir, b, &err), 0);
}

static void assert_rebuilds(struct pair *p, const struct molt_delta_base *base)
{
    struct molt_err err = MOLT_ERR_INIT;
    size_t len = 0, want_len = 0;
    char *got = NULL, *want = tp_slurp(p->new_pkg, &want_len);

    assert_int_equal(apply(p, p->delta, base, p->new_st.size, p->new_st.sha256, &got, &len, &err),
                     0);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
}

static void test_round_trip_gzip(void **state)
{
    struct pair *p = *state;
    struct molt_delta_base b;

    open_base(p, &b);
    assert_rebuilds(p, &b);
    /* A point release costs a small fraction of the package. */
    assert_true((p->h.patch_size + MOLT_DELTA_HEADER_SIZE) * 10 < p->new_st.size);
    molt_delta_base_close(&b);
}

static void test_round_trip_zstd(void **state)
{
    struct pair z;
    struct molt_delta_base b;

    (void)state;
    memset(&z, 0, sizeof(z));
    make_pair(&z, MOLT_PKG_ZSTD);
    assert_int_equal(z.h.compress, MOLT_PKG_ZSTD);
    open_base(&z, &b);
    assert_rebuilds(&z, &b);
    molt_delta_base_close(&b);
    tp_env_teardown(&z.env);
}

/* The base an agent has: the archive rebuilt from the staged (installed) tree. */
static void test_base_from_staged_tree(void **state)
{
    struct pair *p = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base from_tree, from_pkg;
    char staged[PATH_MAX], path[PATH_MAX];

    assert_int_equal(
        molt_pkg_stage(p->old_pkg, &p->old_st, p->env.upgrade, "old", staged, &err), 0);
    assert_int_equal(molt_delta_base_from_tree(staged, p->env.dir, &from_tree, &err), 0);
    open_base(p, &from_pkg);
    assert_int_equal(from_tree.size, from_pkg.size);
    assert_string_equal(from_tree.sha256, from_pkg.sha256);
    assert_string_equal(from_tree.sha256, p->h.base_sha256);
    assert_rebuilds(p, &from_tree);
    molt_delta_base_close(&from_tree);
    /* A tree that changed since it was installed is no base. */
    snprintf(path, sizeof(path), "%s/bin/VERSION", staged);
    assert_int_equal(chmod(path, 0644), 0);
    tp_spit(path, "20.2-999", 8);
    tp_assert_err(molt_delta_base_from_tree(staged, p->env.dir, &from_tree, &err), err,
                  MOLT_E_IO, "bin/VERSION");
    molt_delta_base_close(&from_pkg);
}

static void test_header_fields(void **state)
{
    struct pair *p = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_header h;
    struct molt_delta_base b;
    unsigned char buf[MOLT_DELTA_HEADER_SIZE], again[MOLT_DELTA_HEADER_SIZE];
    size_t len = 0;
    char *d = tp_slurp(p->delta, &len);
    struct stat sb;

    open_base(p, &b);
    assert_int_equal(molt_delta_header_parse(d, len, &h, &err), 0);
    assert_memory_equal(d, MOLT_DELTA_MAGIC, 8);
    assert_int_equal(h.compress, MOLT_PKG_GZIP);
    assert_int_equal(h.base_size, b.size);
    assert_string_equal(h.base_sha256, b.sha256);
    assert_int_equal(h.package_size, p->new_st.size);
    assert_string_equal(h.package_sha256, p->new_st.sha256);
    assert_int_equal(h.patch_size + MOLT_DELTA_HEADER_SIZE, len);
    assert_int_equal(stat(p->new_pkg, &sb), 0);
    assert_true(h.archive_size > (uint64_t)sb.st_size / 2);
    molt_delta_header_format(&h, again);
    assert_memory_equal(again, d, MOLT_DELTA_HEADER_SIZE);

    memcpy(buf, d, sizeof(buf));
    tp_assert_err(molt_delta_header_parse(buf, 100, &h, &err), err, MOLT_E_PARSE, "truncated");
    buf[0] = 'X';
    tp_assert_err(molt_delta_header_parse(buf, sizeof(buf), &h, &err), err, MOLT_E_PARSE,
                  "bad magic");
    memcpy(buf, d, sizeof(buf));
    buf[8] = 7;
    tp_assert_err(molt_delta_header_parse(buf, sizeof(buf), &h, &err), err, MOLT_E_PARSE,
                  "unknown compression");
    memcpy(buf, d, sizeof(buf));
    buf[12] = 1;
    tp_assert_err(molt_delta_header_parse(buf, sizeof(buf), &h, &err), err, MOLT_E_PARSE,
                  "reserved byte");
    memcpy(buf, d, sizeof(buf));
    memset(buf + 136, 0, 8);
    tp_assert_err(molt_delta_header_parse(buf, sizeof(buf), &h, &err), err, MOLT_E_PARSE,
                  "patch size");
    memcpy(buf, d, sizeof(buf));
    memset(buf + 16, 0xff, 8);
    tp_assert_err(molt_delta_header_parse(buf, sizeof(buf), &h, &err), err, MOLT_E_PARSE,
                  "base size");
    molt_delta_base_close(&b);
    free(d);
}

/* Writes the delta, changed by edit(), to DIR/bad.delta. */
static const char *variant(struct pair *p, void (*edit)(char **d, size_t *len),
                           char path[PATH_MAX])
{
    size_t len = 0;
    char *d = tp_slurp(p->delta, &len);

    edit(&d, &len);
    snprintf(path, PATH_MAX, "%s/bad.delta", p->env.dir);
    tp_spit(path, d, len);
    free(d);
    return path;
}

static void cut_end(char **d, size_t *len)
{
    (void)d;
    *len -= 5;
}

static void cut_header(char **d, size_t *len)
{
    (void)d;
    *len = 50;
}

static void flip_middle(char **d, size_t *len)
{
    (*d)[MOLT_DELTA_HEADER_SIZE + (*len - MOLT_DELTA_HEADER_SIZE) / 2] ^= 0x55;
}

static void add_trailer(char **d, size_t *len)
{
    *d = realloc(*d, *len + 3);
    memcpy(*d + *len, "xyz", 3);
    *len += 3;
}

static void bad_apply(struct pair *p, void (*edit)(char **, size_t *), int code, const char *msg)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base b;
    char path[PATH_MAX];

    open_base(p, &b);
    tp_assert_err(apply(p, variant(p, edit, path), &b, p->new_st.size, p->new_st.sha256, NULL, NULL,
                        &err),
                  err, code, msg);
    molt_delta_base_close(&b);
}

static void test_truncated(void **state)
{
    bad_apply(*state, cut_end, MOLT_E_VERIFY, "truncated");
    bad_apply(*state, cut_header, MOLT_E_PARSE, "delta header: truncated");
}

static void test_corrupt(void **state)
{
    bad_apply(*state, flip_middle, MOLT_E_VERIFY, "delta: ");
}

static void test_trailing_data(void **state)
{
    bad_apply(*state, add_trailer, MOLT_E_VERIFY, "data after the patch");
}

static void test_wrong_base(void **state)
{
    struct pair *p = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base b;

    /* The new package's archive is a base, but not this delta's. */
    assert_int_equal(molt_delta_base_from_package(p->new_pkg, p->env.dir, &b, &err), 0);
    tp_assert_err(apply(p, p->delta, &b, p->new_st.size, p->new_st.sha256, NULL, NULL, &err), err,
                  MOLT_E_VERIFY, "wrong base");
    molt_delta_base_close(&b);
}

static void test_wrong_target(void **state)
{
    struct pair *p = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base b;

    open_base(p, &b);
    tp_assert_err(apply(p, p->delta, &b, p->old_st.size, p->old_st.sha256, NULL, NULL, &err), err,
                  MOLT_E_VERIFY, "wrong target");
    tp_assert_err(apply(p, p->delta, &b, p->new_st.size + 1, p->new_st.sha256, NULL, NULL, &err),
                  err, MOLT_E_VERIFY, "wrong target");
    molt_delta_base_close(&b);
}

/* A header that lies about sizes or hashes: the caps and checks stop it. */
static void rewrite(struct pair *p, void (*edit)(struct molt_delta_header *), uint64_t *size,
                    char sha[MOLT_PKG_SHA256_HEX])
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_header h;
    size_t len = 0;
    char *d = tp_slurp(p->delta, &len);
    char path[PATH_MAX];

    assert_int_equal(molt_delta_header_parse(d, len, &h, &err), 0);
    edit(&h);
    molt_delta_header_format(&h, (unsigned char *)d);
    snprintf(path, sizeof(path), "%s/bad.delta", p->env.dir);
    tp_spit(path, d, len);
    *size = h.package_size;
    snprintf(sha, MOLT_PKG_SHA256_HEX, "%s", h.package_sha256);
    free(d);
}

static void smaller_package(struct molt_delta_header *h)
{
    h->package_size = h->package_size / 2;
}

static void smaller_archive(struct molt_delta_header *h)
{
    h->archive_size = h->archive_size / 2;
}

static void other_archive_sha(struct molt_delta_header *h)
{
    h->archive_sha256[0] = h->archive_sha256[0] == 'a' ? 'b' : 'a';
}

static void other_package_sha(struct molt_delta_header *h)
{
    h->package_sha256[0] = h->package_sha256[0] == 'a' ? 'b' : 'a';
}

static void bad_header(struct pair *p, void (*edit)(struct molt_delta_header *), int code,
                       const char *msg)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base b;
    char sha[MOLT_PKG_SHA256_HEX], path[PATH_MAX];
    uint64_t size = 0;

    rewrite(p, edit, &size, sha);
    snprintf(path, sizeof(path), "%s/bad.delta", p->env.dir);
    open_base(p, &b);
    tp_assert_err(apply(p, path, &b, size, sha, NULL, NULL, &err), err, code, msg);
    molt_delta_base_close(&b);
}

static void test_output_over_cap(void **state)
{
    struct pair *p = *state;
    struct stat sb;
    char path[PATH_MAX];

    /* The statement (here: what the caller expects) says half the size. */
    bad_header(p, smaller_package, MOLT_E_LIMIT, "rebuilt package is over its size");
    snprintf(path, sizeof(path), "%s/out.pkg", p->env.dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true((uint64_t)sb.st_size <= p->new_st.size / 2);
    bad_header(p, smaller_archive, MOLT_E_LIMIT, "larger than its header says");
}

static void test_wrong_bytes(void **state)
{
    bad_header(*state, other_archive_sha, MOLT_E_VERIFY, "rebuilt the wrong archive");
    bad_header(*state, other_package_sha, MOLT_E_VERIFY, "differs from the signed one");
}

/* Only a package that recompresses to itself can be a delta's target. */
static void test_make_refuses_foreign_package(void **state)
{
    struct pair *p = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char foreign[PATH_MAX], cmd[PATH_MAX * 3];

    snprintf(foreign, sizeof(foreign), "%s/foreign.tar.gz", p->env.dir);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s' | gzip -1n > '%s'", p->new_pkg, foreign);
    assert_int_equal(system(cmd), 0);
    tp_assert_err(molt_delta_make(p->old_pkg, foreign, p->delta, 0, p->env.dir, NULL, &err), err,
                  MOLT_E_VERIFY, "does not give the package again");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_gzip, setup, teardown),
        cmocka_unit_test(test_round_trip_zstd),
        cmocka_unit_test_setup_teardown(test_base_from_staged_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_refuses_foreign_package, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
