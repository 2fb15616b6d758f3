/* test_package_stage.c: safe staging. One test per rejection the format
 * lists, each on a package crafted at test time, each checking that the
 * upgrade directory is left as it was; plus the good path (gzip and zstd). */
#include "test_package_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "package.h"

static int teardown(void **state)
{
    unsetenv("MOLT_FAULT");
    return tp_teardown(state);
}

/* Makes, verifies and stages a package; returns staging's rc. Verification
 * must pass: these packages are "genuine", the archive itself is hostile. */
static int stage_entries(struct tp_env *env, const struct tp_entry *e, size_t n,
                         const struct tp_opts *o, const struct molt_pkg_limits *lim,
                         struct molt_err *err)
{
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX];
    int rc;

    tp_make(env, e, n, o, pkg, NULL);
    if (molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, err) < 0)
        fail_msg("verify: %s", err->msg);
    rc = molt_pkg_stage_ex(pkg, &st, env->upgrade, "task", lim, out, err);
    /* the check-only pass agrees with staging (it needs no disk space) */
    if (rc < 0 && rc != MOLT_E_NOSPC) {
        struct molt_err ierr = MOLT_ERR_INIT;
        assert_true(molt_pkg_inspect(pkg, &st, lim, &ierr) < 0);
    }
    return rc;
}

/* A failed staging leaves nothing in the upgrade dir, and nothing was
 * written next to it (escape attempts aim at env->dir). */
static void assert_nothing_left(struct tp_env *env)
{
    char path[PATH_MAX];

    assert_int_equal(tp_count(env->upgrade), 0);
    snprintf(path, sizeof(path), "%s/evil", env->dir);
    assert_false(molt_fs_exists(path));
    /* keys, other-keys, upgrade, builds */
    assert_int_equal(tp_count(env->dir), 4);
}

/* tp_good plus one more entry. */
static void with_extra(struct tp_entry *out, const struct tp_entry *extra)
{
    memcpy(out, tp_good, tp_good_n * sizeof(*out));
    out[tp_good_n] = *extra;
}

static void reject_extra(struct tp_env *env, const struct tp_entry *extra, int code,
                         const char *msg)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct tp_entry e[16];

    with_extra(e, extra);
    tp_assert_err(stage_entries(env, e, tp_good_n + 1, NULL, NULL, &err), err, code, msg);
    assert_nothing_left(env);
}

/* ---- the good path ----------------------------------------------------------- */

static void good_path(struct tp_env *env, int zstd)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    struct tp_opts o = {.zstd = zstd};
    char pkg[PATH_MAX], out[PATH_MAX], path[PATH_MAX], target[64];
    char *text;
    struct stat sb;
    ssize_t n;

    tp_make(env, tp_good, tp_good_n, &o, pkg, NULL);
    assert_non_null(strstr(pkg, zstd ? ".tar.zst" : ".tar.gz"));
    assert_int_equal(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, "20.2-100", NULL, NULL, NULL, &st, &err),
        0);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "12345", out, &err), 0);
    snprintf(path, sizeof(path), "%s/12345", env->upgrade);
    assert_string_equal(out, path);
    assert_int_equal(tp_count(env->upgrade), 1); /* no .partial left */
    text = tp_slurp(strcat(path, "/bin/molt-agent"), NULL);
    assert_string_equal(text, "#!/bin/sh\necho agent\n");
    free(text);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0755);
    snprintf(path, sizeof(path), "%s/share/molt/agent", out);
    n = readlink(path, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../../bin/molt-agent");
    snprintf(path, sizeof(path), "%s/manifest.json", out);
    assert_true(molt_fs_exists(path));
    assert_int_equal(molt_pkg_tree_check(out, NULL, &err), 0);
    /* staging again replaces the earlier result */
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "12345", out, &err), 0);
    assert_int_equal(tp_count(env->upgrade), 1);
}

static void test_good_gzip(void **state)
{
    good_path(*state, 0);
}

static void test_good_zstd(void **state)
{
    good_path(*state, 1);
}

/* A staged tree altered afterwards no longer passes the tree check. */
static void test_tree_check(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX], path[PATH_MAX];

    tp_make(env, tp_good, tp_good_n, NULL, pkg, &st);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), 0);
    tu_write(path, out, "share/molt/extra", "x");
    tp_assert_err(molt_pkg_tree_check(out, NULL, &err), err, MOLT_E_VERIFY, "not in manifest");
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/share/molt/readme", out);
    tp_spit(path, "changed\n", 8);
    tp_assert_err(molt_pkg_tree_check(out, NULL, &err), err, MOLT_E_VERIFY, "differs");
    assert_int_equal(unlink(path), 0);
    tp_assert_err(molt_pkg_tree_check(out, NULL, &err), err, MOLT_E_IO, "share/molt/readme");
}

/* sha256 of dir's manifest.json into hex. */
static void manifest_hex(const char *dir, char hex[MOLT_PKG_SHA256_HEX])
{
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    text = tp_slurp(path, &len);
    assert_int_equal(molt_pkg_sha256_buf(text, len, hex, &err), 0);
    free(text);
}

/* What a compromised unpacker could do: change a file and rewrite the
 * manifest to match, a tree consistent with itself. */
static void forge_readme(const char *dir)
{
    static const char evil[] = "not what was signed\n";
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_manifest m;
    char path[PATH_MAX];
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/share/molt/readme", dir);
    tp_spit(path, evil, strlen(evil));
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    text = tp_slurp(path, &len);
    assert_int_equal(molt_pkg_manifest_parse(text, len, NULL, &m, &err), 0);
    free(text);
    struct molt_pkg_file *f = NULL;
    for (size_t i = 0; i < m.nfiles; i++) {
        if (strcmp(m.files[i].path, "share/molt/readme") == 0)
            f = &m.files[i];
    }
    assert_non_null(f);
    f->size = strlen(evil);
    assert_int_equal(molt_pkg_sha256_buf(evil, strlen(evil), f->sha256, &err), 0);
    assert_int_equal(molt_pkg_manifest_format(&m, &text, &len, &err), 0);
    tp_spit(path, text, len);
    free(text);
    molt_pkg_manifest_free(&m);
}

/* With the statement's manifestSha256 the tree check is authenticity: a tree
 * consistent with a rewritten manifest passes alone, not against the hash. */
static void test_tree_check_signed(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX], path[PATH_MAX], link[PATH_MAX];
    char hex[MOLT_PKG_SHA256_HEX], wrong[MOLT_PKG_SHA256_HEX];

    tp_make(env, tp_good, tp_good_n, NULL, pkg, &st);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), 0);
    manifest_hex(out, hex);
    assert_int_equal(molt_pkg_tree_check(out, hex, &err), 0);
    snprintf(wrong, sizeof(wrong), "%s", hex);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    tp_assert_err(molt_pkg_tree_check(out, wrong, &err), err, MOLT_E_VERIFY, "manifestSha256");
    /* the directory itself through a symlink: refused */
    snprintf(link, sizeof(link), "%s/link", env->upgrade);
    assert_int_equal(symlink(out, link), 0);
    assert_true(molt_pkg_tree_check(link, hex, &err) < 0);
    assert_non_null(strstr(err.msg, "open"));
    /* manifest.json a symlink to a copy: refused */
    snprintf(path, sizeof(path), "%s/manifest.json", out);
    snprintf(link, sizeof(link), "%s/m.json", env->upgrade);
    assert_int_equal(rename(path, link), 0);
    assert_int_equal(symlink(link, path), 0);
    tp_assert_err(molt_pkg_tree_check(out, hex, &err), err, MOLT_E_VERIFY, "not a regular file");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rename(link, path), 0);
    /* forged, self-consistent: passes for integrity, not against the statement */
    forge_readme(out);
    assert_int_equal(molt_pkg_tree_check(out, NULL, &err), 0);
    tp_assert_err(molt_pkg_tree_check(out, hex, &err), err, MOLT_E_VERIFY, "manifestSha256");
    /* no manifest at all */
    assert_int_equal(unlink(path), 0);
    assert_true(molt_pkg_tree_check(out, hex, &err) < 0);
}

/* Staging compares the manifest's bytes with the statement's manifestSha256. */
static void test_stage_manifest_sha256(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX], hex[MOLT_PKG_SHA256_HEX];

    tp_make(env, tp_good, tp_good_n, NULL, pkg, &st);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "a", out, &err), 0);
    manifest_hex(out, hex);
    snprintf(st.manifest_sha256, sizeof(st.manifest_sha256), "%s", hex);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "b", out, &err), 0);
    st.manifest_sha256[63] = st.manifest_sha256[63] == 'a' ? 'b' : 'a';
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "c", out, &err), err, MOLT_E_VERIFY,
                  "manifest mismatch: manifest.json has sha256");
    tp_assert_err(molt_pkg_inspect(pkg, &st, NULL, &err), err, MOLT_E_VERIFY, "manifest mismatch");
}

/* ---- rejections ---------------------------------------------------------------- */

static void test_truncated_archive(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    struct tp_entry e[16];
    struct tp_entry big = {.path = "share/molt/big", .type = 'f', .zeros = 300000};
    char pkg[PATH_MAX], out[PATH_MAX], *bytes;
    size_t len;

    with_extra(e, &big);
    tp_make(env, e, tp_good_n + 1, NULL, pkg, NULL);
    /* cut, then state and sign the cut bytes: genuine but broken */
    bytes = tp_slurp(pkg, &len);
    tp_spit(pkg, bytes, len * 2 / 3);
    free(bytes);
    tp_write_statement(pkg, NULL, NULL);
    tp_sign(pkg, env->key);
    assert_int_equal(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), 0);
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), err, MOLT_E_VERIFY,
                  "archive:");
    assert_nothing_left(env);
}

/* Staging hashes what it unpacks: bytes that differ from the statement are
 * refused even if the caller skipped the check, and nothing stays. */
static void test_stage_rehashes(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX], *bytes;
    size_t len;

    tp_make(env, tp_good, tp_good_n, NULL, pkg, &st);
    st.sha256[0] = st.sha256[0] == 'a' ? 'b' : 'a';
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), err, MOLT_E_VERIFY,
                  "sha256 mismatch");
    assert_nothing_left(env);
    st.sha256[0] = st.sha256[0] == 'a' ? 'b' : 'a';
    /* longer than declared */
    bytes = tp_slurp(pkg, &len);
    bytes = realloc(bytes, len + 100);
    memset(bytes + len, 0, 100);
    tp_spit(pkg, bytes, len + 100);
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), err, MOLT_E_LIMIT,
                  "longer than declared");
    assert_nothing_left(env);
    free(bytes);
}

static void test_path_traversal(void **state)
{
    struct tp_entry e = {.path = "../evil", .type = 'f', .data = "x", .not_listed = 1};
    struct tp_entry e2 = {.path = "share/../../evil", .type = 'f', .data = "x", .not_listed = 1};

    reject_extra(*state, &e, MOLT_E_VERIFY, "path traversal ('..'): ../evil");
    reject_extra(*state, &e2, MOLT_E_VERIFY, "path traversal");
}

static void test_path_traversal_in_manifest(void **state)
{
    struct tp_entry e = {.path = "share/../../evil", .type = 'f', .data = "x"};

    reject_extra(*state, &e, MOLT_E_VERIFY, "manifest: files[");
}

static void test_absolute_path(void **state)
{
    struct tp_env *env = *state;
    char abs[PATH_MAX];
    struct tp_entry e = {.type = 'f', .data = "x", .not_listed = 1};

    snprintf(abs, sizeof(abs), "%s/evil", env->dir);
    e.path = abs;
    reject_extra(env, &e, MOLT_E_VERIFY, "absolute path");
}

static void test_symlink_escaping(void **state)
{
    struct tp_entry up = {.path = "share/molt/evil", .type = 'l', .data = "../../../evil"};
    struct tp_entry abs = {.path = "share/molt/evil", .type = 'l', .data = "/etc/passwd"};
    /* through a symlink the kernel would resolve elsewhere: "agent/.." is not "share/molt" */
    struct tp_entry via = {.path = "share/molt/evil", .type = 'l', .data = "agent/../../../x"};
    struct tp_entry dangling = {.path = "share/molt/evil", .type = 'l', .data = "nothere"};

    reject_extra(*state, &up, MOLT_E_VERIFY, "symlink escapes the package");
    reject_extra(*state, &abs, MOLT_E_VERIFY, "symlink escapes the package");
    reject_extra(*state, &via, MOLT_E_VERIFY, "not a listed directory");
    reject_extra(*state, &dangling, MOLT_E_VERIFY, "symlink target not in the package");
}

/* A file whose parent is a symlink: by the manifest's rules (the parent is
 * not a listed directory), and when the manifest lies about the parent's
 * type. Either way no byte is written through the link. */
static void test_write_through_symlink(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct tp_entry e[16];
    size_t n = tp_good_n;

    memcpy(e, tp_good, sizeof(tp_good[0]) * n);
    e[n++] = (struct tp_entry){.path = "lnk", .type = 'l', .data = "share"};
    e[n++] = (struct tp_entry){.path = "lnk/evil", .type = 'f', .data = "x"};
    tp_assert_err(stage_entries(env, e, n, NULL, NULL, &err), err, MOLT_E_VERIFY,
                  "parent of lnk/evil is not a listed directory");
    assert_nothing_left(env);
    e[n - 2].m_type = 'd';
    tp_assert_err(stage_entries(env, e, n, NULL, NULL, &err), err, MOLT_E_VERIFY,
                  "manifest mismatch: lnk: a symlink, manifest says directory");
    assert_nothing_left(env);
}

static void test_hardlink(void **state)
{
    struct tp_entry e = {
        .path = "bin/other", .type = 'h', .data = "bin/molt-agent", .not_listed = 1};

    reject_extra(*state, &e, MOLT_E_VERIFY, "hardlink not allowed: bin/other");
}

static void test_device_node(void **state)
{
    struct tp_entry c = {.path = "share/null", .type = 'c', .not_listed = 1};
    struct tp_entry b = {.path = "share/disk", .type = 'b', .not_listed = 1};

    reject_extra(*state, &c, MOLT_E_VERIFY, "device node not allowed: share/null");
    reject_extra(*state, &b, MOLT_E_VERIFY, "device node not allowed: share/disk");
}

static void test_fifo(void **state)
{
    struct tp_entry e = {.path = "share/fifo", .type = 'p', .not_listed = 1};

    reject_extra(*state, &e, MOLT_E_VERIFY, "FIFO not allowed: share/fifo");
}

static void test_sparse(void **state)
{
    struct tp_entry e = {.path = "share/sparse", .type = 's', .zeros = 65536};

    reject_extra(*state, &e, MOLT_E_VERIFY, "sparse entry not allowed");
}

/* setuid, setgid, sticky, group and world write are stripped, not restored. */
static void test_setuid_stripped(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct tp_entry e[16];
    struct tp_entry suid = {.path = "bin/suid", .type = 'f', .data = "x", .mode = 06777};
    char path[PATH_MAX];
    struct stat sb;

    with_extra(e, &suid);
    e[0].mode = 01777; /* bin/ sticky and world-writable */
    assert_int_equal(stage_entries(env, e, tp_good_n + 1, NULL, NULL, &err), 0);
    snprintf(path, sizeof(path), "%s/task/bin/suid", env->upgrade);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0755);
    snprintf(path, sizeof(path), "%s/task/bin", env->upgrade);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0755);
}

static void test_duplicate_entry(void **state)
{
    struct tp_entry e = {
        .path = "share/molt/readme", .type = 'f', .data = "molt test package\n", .not_listed = 1};
    struct tp_entry m = {.path = "manifest.json", .type = 'f', .data = "{}", .not_listed = 1};

    reject_extra(*state, &e, MOLT_E_VERIFY, "duplicate entry: share/molt/readme");
    reject_extra(*state, &m, MOLT_E_VERIFY, "duplicate entry: manifest.json");
}

static void test_not_in_manifest(void **state)
{
    struct tp_entry e = {.path = "bin/extra", .type = 'f', .data = "x", .not_listed = 1};

    reject_extra(*state, &e, MOLT_E_VERIFY, "not in manifest: bin/extra");
}

static void test_manifest_mismatch(void **state)
{
    struct tp_env *env = *state;
    struct tp_entry sha = {.path = "bin/x",
                           .type = 'f',
                           .data = "abc",
                           .m_sha256 =
                               "0000000000000000000000000000000000000000000000000000000000000000"};
    struct tp_entry size = {.path = "bin/x", .type = 'f', .data = "abc", .m_size = 4};
    struct tp_entry missing = {.path = "bin/x", .type = 'f', .data = "abc", .not_archived = 1};
    struct tp_entry type = {.path = "bin/x", .type = 'd', .m_type = 'f'};
    struct molt_err err = MOLT_ERR_INIT;
    struct tp_opts o = {.m_version = "20.2-99"};

    reject_extra(env, &sha, MOLT_E_VERIFY, "manifest mismatch: bin/x: sha256 differs");
    reject_extra(env, &size, MOLT_E_VERIFY, "manifest mismatch: bin/x: 3 bytes, manifest says 4");
    reject_extra(env, &missing, MOLT_E_VERIFY, "missing from package: bin/x");
    reject_extra(env, &type, MOLT_E_VERIFY, "manifest mismatch: bin/x: a directory");
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, &o, NULL, &err), err, MOLT_E_VERIFY,
                  "manifest is for 20.2-99");
    assert_nothing_left(env);
}

static void test_manifest_not_first(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct tp_opts last = {.manifest_last = 1};
    struct tp_opts bad = {.manifest = "{\"format\":1,\"name\":\"molt\""};

    tp_assert_err(stage_entries(env, tp_good, tp_good_n, &last, NULL, &err), err, MOLT_E_VERIFY,
                  "first entry is not manifest.json");
    assert_nothing_left(env);
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, &bad, NULL, &err), err, MOLT_E_PARSE,
                  "manifest: JSON: truncated");
    assert_nothing_left(env);
}

static void test_too_many_entries(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_limits lim;

    molt_pkg_limits_default(&lim);
    lim.max_entries = tp_good_n - 1;
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, NULL, &lim, &err), err, MOLT_E_LIMIT,
                  "too many entries");
    assert_nothing_left(env);
    lim.max_entries = tp_good_n;
    assert_int_equal(stage_entries(env, tp_good, tp_good_n, NULL, &lim, &err), 0);
}

static void test_long_and_deep_paths(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_limits lim;

    molt_pkg_limits_default(&lim);
    lim.max_path = 15;
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, NULL, &lim, &err), err, MOLT_E_LIMIT,
                  "path longer than 15 bytes");
    assert_nothing_left(env);
    molt_pkg_limits_default(&lim);
    lim.max_depth = 2;
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, NULL, &lim, &err), err, MOLT_E_LIMIT,
                  "deeper than 2");
    assert_nothing_left(env);
}

/* 16 MiB of zeros compress to a few KiB. Stopped by the unpacked-size limit
 * before a byte is written, and by the manifest when it understates sizes. */
static void test_unpack_bomb(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_limits lim;
    struct tp_entry e[16];
    struct tp_entry bomb = {.path = "share/molt/bomb", .type = 'f', .zeros = 16u << 20};
    struct tp_entry liar = {
        .path = "share/molt/bomb", .type = 'f', .zeros = 16u << 20, .m_size = 10};

    molt_pkg_limits_default(&lim);
    lim.max_unpacked = 1u << 20;
    with_extra(e, &bomb);
    tp_assert_err(stage_entries(env, e, tp_good_n + 1, NULL, &lim, &err), err, MOLT_E_LIMIT,
                  "unpacked size exceeds the limit");
    assert_nothing_left(env);
    with_extra(e, &liar);
    tp_assert_err(stage_entries(env, e, tp_good_n + 1, NULL, &lim, &err), err, MOLT_E_VERIFY,
                  "manifest mismatch: share/molt/bomb: 16777216 bytes, manifest says 10");
    assert_nothing_left(env);
}

#ifdef MOLT_FAULT_POINTS    /* MOLT_FAULT (lib/fault.h) does nothing without */
static void test_disk_full(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;

    setenv("MOLT_FAULT", "stage.enospc", 1);
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, NULL, NULL, &err), err, MOLT_E_NOSPC,
                  "not enough free space");
    assert_nothing_left(env);
    /* space runs out in the middle of writing */
    setenv("MOLT_FAULT", "stage.write.enospc", 1);
    tp_assert_err(stage_entries(env, tp_good, tp_good_n, NULL, NULL, &err), err, MOLT_E_NOSPC,
                  "No space left on device");
    assert_nothing_left(env);
    unsetenv("MOLT_FAULT");
}
#endif

/* Compression must match the statement's file name, and be gzip or zstd. */
static void test_wrong_compression(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    struct tp_opts zstd = {.zstd = 1};
    char pkg[PATH_MAX], out[PATH_MAX];

    tp_make(env, tp_good, tp_good_n, &zstd, pkg, &st);
    snprintf(st.package, sizeof(st.package), "molt-%s-%s-%s.tar.gz", st.version, st.os, st.arch);
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), err, MOLT_E_VERIFY,
                  "compression is zstd, expected gzip");
    assert_nothing_left(env);
}

/* A leftover .partial from an interrupted run is replaced, not trusted. */
static void test_leftover_partial(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char pkg[PATH_MAX], out[PATH_MAX], junk[PATH_MAX], path[PATH_MAX];

    snprintf(junk, sizeof(junk), "%s/t.partial", env->upgrade);
    assert_int_equal(mkdir(junk, 0755), 0);
    tu_write(path, junk, "stale", "x");
    tp_make(env, tp_good, tp_good_n, NULL, pkg, &st);
    assert_int_equal(molt_pkg_stage(pkg, &st, env->upgrade, "t", out, &err), 0);
    assert_int_equal(tp_count(env->upgrade), 1);
    assert_int_equal(molt_pkg_tree_check(out, NULL, &err), 0);
    tp_assert_err(molt_pkg_stage(pkg, &st, env->upgrade, "../x", out, &err), err, MOLT_E_INVAL,
                  "bad staging name");
}

/* Manifest parsing on its own: the rules that need no archive. */
static void test_manifest_parse(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_manifest m;
    const char *head = "{\"format\":1,\"name\":\"molt\",\"version\":\"1.0\",\"os\":\"linux\","
                       "\"arch\":\"amd64\",\"files\":[";
    char buf[1024];
    const struct molt_pkg_file *f;

/* The comma operator orders the write before the parse reads buf. */
#define PARSE(files)                                                                               \
    (snprintf(buf, sizeof(buf), "%s%s]}", head, files),                                            \
     molt_pkg_manifest_parse(buf, strlen(buf), NULL, &m, &err))
    assert_int_equal(PARSE("{\"path\":\"b\",\"type\":\"dir\","
                           "\"mode\":\"755\"},{\"path\":\"a\","
                           "\"type\":\"symlink\",\"target\":\"b\"}"),
                     0);
    assert_int_equal(m.nfiles, 2);
    assert_string_equal(m.files[0].path, "a"); /* sorted */
    f = molt_pkg_manifest_find(&m, "b");
    assert_non_null(f);
    assert_int_equal(f->mode, 0755);
    molt_pkg_manifest_free(&m);
    tp_assert_err(PARSE("{\"path\":\"a\",\"type\":\"dir\",\"mode\":"
                        "\"0755\"},{\"path\":\"a\",\"type\":\"dir\","
                        "\"mode\":\"0755\"}"),
                  err, MOLT_E_VERIFY, "manifest: duplicate path: a");
    tp_assert_err(PARSE("{\"path\":\"a\",\"type\":\"fifo\"}"), err, MOLT_E_PARSE,
                  "not file, dir or symlink");
    tp_assert_err(PARSE("{\"path\":\"a\",\"type\":\"dir\",\"mode\":"
                        "\"9\"}"),
                  err, MOLT_E_PARSE, "field 'mode'");
    tp_assert_err(PARSE("{\"path\":\"./a\",\"type\":\"dir\",\"mode\":"
                        "\"755\"}"),
                  err, MOLT_E_VERIFY, "'.' component");
    tp_assert_err(PARSE("{\"path\":\"a//b\",\"type\":\"dir\","
                        "\"mode\":\"755\"}"),
                  err, MOLT_E_VERIFY, "empty component");
    tp_assert_err(PARSE("{\"path\":\"a\\nb\",\"type\":\"dir\","
                        "\"mode\":\"755\"}"),
                  err, MOLT_E_VERIFY, "control character");
    tp_assert_err(PARSE("{\"path\":\"manifest.json\",\"type\":\"dir\","
                        "\"mode\":\"755\"}"),
                  err, MOLT_E_PARSE, "reserved");
    tp_assert_err(molt_pkg_manifest_parse("{\"format\":2}", 12, NULL, &m, &err), err, MOLT_E_PARSE,
                  "format 2");
#undef PARSE
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tp_setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_good_gzip),
        T(test_good_zstd),
        T(test_tree_check),
        T(test_tree_check_signed),
        T(test_stage_manifest_sha256),
        T(test_truncated_archive),
        T(test_stage_rehashes),
        T(test_path_traversal),
        T(test_path_traversal_in_manifest),
        T(test_absolute_path),
        T(test_symlink_escaping),
        T(test_write_through_symlink),
        T(test_hardlink),
        T(test_device_node),
        T(test_fifo),
        T(test_sparse),
        T(test_setuid_stripped),
        T(test_duplicate_entry),
        T(test_not_in_manifest),
        T(test_manifest_mismatch),
        T(test_manifest_not_first),
        T(test_too_many_entries),
        T(test_long_and_deep_paths),
        T(test_unpack_bomb),
#ifdef MOLT_FAULT_POINTS
        T(test_disk_full),
#endif
        T(test_wrong_compression),
        T(test_leftover_partial),
        cmocka_unit_test(test_manifest_parse),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
