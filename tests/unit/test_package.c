/* test_package.c: signatures and key rotation, the release statement and its
 * checks, streaming hashing, whole-file verification, and molt_pkg_build. */
#include "test_package_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "package.h"
#include "package_int.h"
#include "sign.h"

static const char good_stmt[] =
    "{\"name\":\"molt\",\"version\":\"20.2-100\",\"release\":\"1\",\"os\":\"linux\","
    "\"arch\":\"amd64\",\"size\":4194304,"
    "\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "\"minVersion\":\"20.1-0\",\"created\":1700000000000,"
    "\"package\":\"molt-20.2-100-linux-amd64.tar.gz\"}\n";

/* Signs msg with key and returns the .sig bytes. */
static char *sign_bytes(const char *key, const char *msg, size_t *len)
{
    struct molt_err err = MOLT_ERR_INIT;
    char *sig = NULL;

    assert_int_equal(molt_pkg_sig_create(key, msg, strlen(msg), &sig, len, &err), 0);
    return sig;
}

/* ---- signatures ------------------------------------------------------------ */

static void test_sig_good_and_keyid(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char keyid[MOLT_PKG_KEYID_SIZE], fromfile[MOLT_PKG_KEYID_SIZE];
    size_t len;
    char *sig = sign_bytes(env->key, good_stmt, &len);
    struct stat sb;

    assert_int_equal(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig, len, keyid, &err), 0);
    assert_int_equal(molt_pkg_key_id_file(env->key, fromfile, &err), 0);
    assert_string_equal(keyid, fromfile);
    /* key files are named by their id; the private one is 0600 */
    assert_non_null(strstr(env->key, keyid));
    assert_int_equal(stat(env->key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(sig);
}

static void test_sig_invalid(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    size_t len;
    char *sig = sign_bytes(env->key, good_stmt, &len);
    char *b64 = strstr(sig, "\"sig\":\"") + 7;
    char stmt[sizeof(good_stmt)];

    /* the statement changed by one byte */
    memcpy(stmt, good_stmt, sizeof(stmt));
    stmt[20] ^= 1;
    tp_assert_err(molt_pkg_sig_verify(env->keys, stmt, strlen(stmt), sig, len, NULL, &err), err,
                  MOLT_E_VERIFY, "signature: invalid");
    /* the signature changed by one character */
    b64[3] = b64[3] == 'A' ? 'B' : 'A';
    tp_assert_err(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig, len, NULL, &err), err,
        MOLT_E_VERIFY, "signature: invalid");
    free(sig);
}

static void test_sig_missing_truncated_malformed(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    size_t len;
    char *sig = sign_bytes(env->key, good_stmt, &len);
    const char *sp = good_stmt;
    size_t sl = strlen(good_stmt);
    char buf[512];
    char *b64 = strstr(sig, "\"sig\":\"") + 7;

    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, "", 0, NULL, &err), err, MOLT_E_VERIFY,
                  "signature: missing");
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, NULL, 0, NULL, &err), err, MOLT_E_VERIFY,
                  "signature: missing");
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, sig, len / 2, NULL, &err), err,
                  MOLT_E_VERIFY, "signature: truncated");
    /* valid JSON, but fewer signature bytes than Ed25519's 64 */
    snprintf(buf, sizeof(buf), "%.*s\"}\n", (int)(b64 - sig + 40), sig);
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, buf, strlen(buf), NULL, &err), err,
                  MOLT_E_VERIFY, "signature: truncated");
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, "hello", 5, NULL, &err), err,
                  MOLT_E_VERIFY, "signature: malformed");
    snprintf(buf, sizeof(buf), "%s", sig);
    memcpy(strstr(buf, "ed25519"), "ed448xx", 7);
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, buf, strlen(buf), NULL, &err), err,
                  MOLT_E_VERIFY, "signature: malformed: unsupported algorithm");
    snprintf(buf, sizeof(buf),
             "{\"format\":\"molt-sig-1\",\"alg\":\"ed25519\",\"keyid\":"
             "\"XYZ\",\"sig\":\"AAAA\"}");
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, buf, strlen(buf), NULL, &err), err,
                  MOLT_E_VERIFY, "signature: malformed");
    snprintf(buf, sizeof(buf), "%s", sig);
    b64 = strstr(buf, "\"sig\":\"") + 7;
    b64[5] = '*';
    tp_assert_err(molt_pkg_sig_verify(env->keys, sp, sl, buf, strlen(buf), NULL, &err), err,
                  MOLT_E_VERIFY, "signature: malformed: base64");
    free(sig);
}

static void test_sig_untrusted_key(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char keyid[MOLT_PKG_KEYID_SIZE], other[MOLT_PKG_KEYID_SIZE];
    size_t len;
    char *sig = sign_bytes(env->other_key, good_stmt, &len);
    char nodir[PATH_MAX];

    tp_assert_err(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig, len, keyid, &err), err,
        MOLT_E_VERIFY, "signature: no trusted key");
    /* the key id is still reported, for the log */
    assert_int_equal(molt_pkg_key_id_file(env->other_key, other, &err), 0);
    assert_string_equal(keyid, other);
    snprintf(nodir, sizeof(nodir), "%s/nonexistent", env->dir);
    tp_assert_err(molt_pkg_sig_verify(nodir, good_stmt, strlen(good_stmt), sig, len, NULL, &err),
                  err, MOLT_E_VERIFY, "signature: no trusted key");
    free(sig);
}

/* Two trusted keys: packages signed by either verify (rotation without a flag
 * day); broken or world-writable key files are skipped, not trusted. */
static void test_sig_rotation(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char keyid[MOLT_PKG_KEYID_SIZE], pub[PATH_MAX], dst[PATH_MAX], junk[PATH_MAX];
    size_t len_a, len_b, publen;
    char *sig_a = sign_bytes(env->key, good_stmt, &len_a);
    char *sig_b = sign_bytes(env->other_key, good_stmt, &len_b);
    char *pubtext;

    snprintf(pub, sizeof(pub), "%.*s.pub", (int)(strlen(env->other_key) - 4), env->other_key);
    pubtext = tp_slurp(pub, &publen);
    snprintf(dst, sizeof(dst), "%s/%s", env->keys, strrchr(pub, '/') + 1);
    tp_spit(dst, pubtext, publen);
    tu_write(junk, env->keys, "broken.pub", "-----BEGIN PUBLIC KEY-----\nnope\n");
    assert_int_equal(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig_a, len_a, keyid, &err), 0);
    assert_int_equal(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig_b, len_b, keyid, &err), 0);
    assert_int_equal(chmod(dst, 0666), 0);
    tp_assert_err(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig_b, len_b, NULL, &err), err,
        MOLT_E_VERIFY, "signature: no trusted key");
    /* retiring key B: remove its .pub */
    assert_int_equal(unlink(dst), 0);
    tp_assert_err(
        molt_pkg_sig_verify(env->keys, good_stmt, strlen(good_stmt), sig_b, len_b, NULL, &err), err,
        MOLT_E_VERIFY, "signature: no trusted key");
    free(pubtext);
    free(sig_a);
    free(sig_b);
}

/* ---- statement ------------------------------------------------------------- */

static void test_statement_parse_good(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char *text;
    size_t len;

    assert_int_equal(molt_pkg_statement_parse(good_stmt, strlen(good_stmt), &st, &err), 0);
    assert_string_equal(st.version, "20.2-100");
    assert_string_equal(st.arch, "amd64");
    assert_string_equal(st.min_version, "20.1-0");
    assert_int_equal(st.size, 4194304);
    assert_int_equal(st.created_ms, 1700000000000);
    assert_string_equal(st.package, "molt-20.2-100-linux-amd64.tar.gz");
    /* formatting gives back the same bytes */
    assert_int_equal(molt_pkg_statement_format(&st, &text, &len, &err), 0);
    assert_string_equal(text, good_stmt);
    free(text);
}

/* Replaces the first occurrence of from with to in good_stmt and parses. */
static int parse_edited(const char *from, const char *to, struct molt_err *err)
{
    char buf[2048];
    const char *p = strstr(good_stmt, from);
    struct molt_statement st;

    assert_non_null(p);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - good_stmt), good_stmt, to, p + strlen(from));
    return molt_pkg_statement_parse(buf, strlen(buf), &st, err);
}

static void test_statement_parse_bad(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;

    tp_assert_err(parse_edited("\"size\":4194304,", "", &err), err, MOLT_E_PARSE,
                  "statement: missing field 'size'");
    tp_assert_err(parse_edited("4194304", "\"4194304\"", &err), err, MOLT_E_PARSE,
                  "field 'size': expected integer");
    tp_assert_err(parse_edited("4194304", "-1", &err), err, MOLT_E_PARSE, "-1 is not in 0..");
    tp_assert_err(parse_edited("0123456789abcdef0", "0123456789ABCDEF0", &err), err, MOLT_E_PARSE,
                  "field 'sha256'");
    tp_assert_err(parse_edited("\"version\":\"20.2-100\"", "\"version\":\"../x\"", &err), err,
                  MOLT_E_PARSE, "field 'version'");
    tp_assert_err(parse_edited("\"name\":\"molt\"", "\"name\":\"other\"", &err), err, MOLT_E_PARSE,
                  "name is 'other'");
    tp_assert_err(parse_edited("linux-amd64.tar.gz", "linux-aarch64.tar.gz", &err), err,
                  MOLT_E_PARSE, "field 'package'");
    tp_assert_err(parse_edited("\"arch\":\"amd64\"", "\"arch\":\"../amd64\"", &err), err,
                  MOLT_E_PARSE, "field 'arch'");
    tp_assert_err(parse_edited("\"minVersion\":\"20.1-0\"", "\"minVersion\":\"x y\"", &err), err,
                  MOLT_E_PARSE, "field 'minVersion'");
    tp_assert_err(parse_edited("}\n", "} trailing", &err), err, MOLT_E_PARSE,
                  "unexpected character at offset");
    tp_assert_err(molt_pkg_statement_parse("[1,2]", 5, &st, &err), err, MOLT_E_PARSE,
                  "not a JSON object");
    tp_assert_err(molt_pkg_statement_parse(good_stmt, 40, &st, &err), err, MOLT_E_PARSE,
                  "truncated");
    /* empty minVersion means any */
    assert_int_equal(parse_edited("\"minVersion\":\"20.1-0\"", "\"minVersion\":\"\"", &err), 0);
    /* unknown fields are ignored */
    assert_int_equal(parse_edited("\"release\"", "\"future\":[1],\"release\"", &err), 0);
    /* manifestSha256: optional (older statements), and 64 lowercase hex when there */
    tp_assert_err(parse_edited("\"release\"", "\"manifestSha256\":\"ABC\",\"release\"", &err),
                  err, MOLT_E_PARSE, "field 'manifestSha256'");
    tp_assert_err(parse_edited("\"release\"", "\"manifestSha256\":7,\"release\"", &err), err,
                  MOLT_E_PARSE, "manifestSha256");
}

/* manifestSha256 is read, and written back where the statement has it. */
static void test_statement_manifest_sha256(void **state)
{
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st, again;
    char buf[2048], *text;
    const char *p = strstr(good_stmt, "\"minVersion\"");
    size_t len;

    (void)state;
    assert_non_null(p);
    snprintf(buf, sizeof(buf), "%.*s\"manifestSha256\":\"%s\",%s", (int)(p - good_stmt), good_stmt,
             hex, p);
    assert_int_equal(molt_pkg_statement_parse(buf, strlen(buf), &st, &err), 0);
    assert_string_equal(st.manifest_sha256, hex);
    assert_int_equal(molt_pkg_statement_format(&st, &text, &len, &err), 0);
    assert_string_equal(text, buf);
    assert_int_equal(molt_pkg_statement_parse(text, len, &again, &err), 0);
    assert_string_equal(again.manifest_sha256, hex);
    free(text);
    assert_int_equal(molt_pkg_statement_parse(good_stmt, strlen(good_stmt), &st, &err), 0);
    assert_string_equal(st.manifest_sha256, "");
}

static void test_statement_check(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;

    assert_int_equal(molt_pkg_statement_parse(good_stmt, strlen(good_stmt), &st, &err), 0);
    assert_int_equal(molt_pkg_statement_check(&st, "20.2-100", "20.1-2749", "linux", "amd64", &err),
                     0);
    assert_int_equal(molt_pkg_statement_check(&st, NULL, NULL, "linux", "amd64", &err), 0);
    tp_assert_err(molt_pkg_statement_check(&st, "20.3-1", NULL, "linux", "amd64", &err), err,
                  MOLT_E_VERIFY, "statement is for 20.2-100, command asked for 20.3-1");
    tp_assert_err(molt_pkg_statement_check(&st, NULL, NULL, "linux", "aarch64", &err), err,
                  MOLT_E_VERIFY, "built for amd64, host is aarch64");
    tp_assert_err(molt_pkg_statement_check(&st, NULL, NULL, "freebsd", "amd64", &err), err,
                  MOLT_E_VERIFY, "built for linux, host is freebsd");
    tp_assert_err(molt_pkg_statement_check(&st, NULL, "19.1-1", "linux", "amd64", &err), err,
                  MOLT_E_VERIFY, "requires at least 20.1-0, running 19.1-1");
    /* the minimum itself is fine, and numeric order decides (20.1-10 > 20.1-9) */
    assert_int_equal(molt_pkg_statement_check(&st, NULL, "20.1-0", "linux", "amd64", &err), 0);
    snprintf(st.min_version, sizeof(st.min_version), "20.1-10");
    tp_assert_err(molt_pkg_statement_check(&st, NULL, "20.1-9", "linux", "amd64", &err), err,
                  MOLT_E_VERIFY, "requires at least");
}

/* The signature is checked before the statement is read: garbage signed by
 * an untrusted key reports the signature, not a parse error. */
static void test_authenticate_verifies_before_parsing(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    const char *garbage = "{\"name\": [[[[ not a statement";
    size_t len;
    char *sig = sign_bytes(env->other_key, garbage, &len);

    tp_assert_err(molt_pkg_authenticate(env->keys, garbage, strlen(garbage), sig, len, NULL, NULL,
                                        NULL, NULL, &st, &err),
                  err, MOLT_E_VERIFY, "signature: no trusted key");
    free(sig);
    /* signed by a trusted key, the garbage is then rejected by the parser */
    sig = sign_bytes(env->key, garbage, &len);
    tp_assert_err(molt_pkg_authenticate(env->keys, garbage, strlen(garbage), sig, len, NULL, NULL,
                                        NULL, NULL, &st, &err),
                  err, MOLT_E_PARSE, "statement:");
    free(sig);
    sig = sign_bytes(env->key, good_stmt, &len);
    assert_int_equal(molt_pkg_authenticate(env->keys, good_stmt, strlen(good_stmt), sig, len,
                                           "20.2-100", "20.2-1", "linux", "amd64", &st, &err),
                     0);
    assert_int_equal(strlen(st.keyid), 16);
    tp_assert_err(molt_pkg_authenticate(env->keys, good_stmt, strlen(good_stmt), sig, len,
                                        "20.2-101", NULL, "linux", "amd64", &st, &err),
                  err, MOLT_E_VERIFY, "statement is for 20.2-100, command asked for 20.2-101");
    free(sig);
}

/* ---- hashing ---------------------------------------------------------------- */

static void test_hasher_streaming(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_hasher h;
    char one[65], chunks[65], resumed[65], path[PATH_MAX];
    uint64_t size;
    static char data[100000];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + i / 13);
    assert_int_equal(molt_pkg_hasher_init(&h, 0, &err), 0);
    assert_int_equal(molt_pkg_hasher_update(&h, data, sizeof(data), &err), 0);
    assert_int_equal(molt_pkg_hasher_final(&h, one, &size, &err), 0);
    assert_int_equal(size, sizeof(data));
    assert_int_equal(molt_pkg_hasher_init(&h, sizeof(data), &err), 0);
    for (size_t off = 0; off < sizeof(data); off += 777) {
        size_t n = sizeof(data) - off < 777 ? sizeof(data) - off : 777;
        assert_int_equal(molt_pkg_hasher_update(&h, data + off, n, &err), 0);
    }
    /* exactly at the limit; one more byte is refused */
    tp_assert_err(molt_pkg_hasher_update(&h, "x", 1, &err), err, MOLT_E_LIMIT,
                  "longer than declared");
    assert_int_equal(molt_pkg_hasher_final(&h, chunks, &size, &err), 0);
    assert_string_equal(one, chunks);
    /* a resumed download: the partial file's bytes, then the rest */
    snprintf(path, sizeof(path), "%s/partial", env->dir);
    tp_spit(path, data, 40000);
    assert_int_equal(molt_pkg_hasher_init(&h, sizeof(data), &err), 0);
    assert_int_equal(molt_pkg_hasher_update_file(&h, path, 40000, &err), 0);
    assert_int_equal(molt_pkg_hasher_update(&h, data + 40000, sizeof(data) - 40000, &err), 0);
    assert_int_equal(molt_pkg_hasher_final(&h, resumed, &size, &err), 0);
    assert_string_equal(one, resumed);
    /* sha256 of "" is well known */
    assert_int_equal(molt_pkg_hasher_init(&h, 0, &err), 0);
    assert_int_equal(molt_pkg_hasher_final(&h, one, &size, &err), 0);
    assert_string_equal(one, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_bytes_check(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char other[65];

    assert_int_equal(molt_pkg_statement_parse(good_stmt, strlen(good_stmt), &st, &err), 0);
    assert_int_equal(molt_pkg_bytes_check(&st, 4194304, st.sha256, &err), 0);
    tp_assert_err(molt_pkg_bytes_check(&st, 4194305, st.sha256, &err), err, MOLT_E_VERIFY,
                  "longer than declared: got 4194305 bytes, statement says 4194304");
    tp_assert_err(molt_pkg_bytes_check(&st, 100, st.sha256, &err), err, MOLT_E_VERIFY,
                  "size mismatch: got 100 bytes, statement says 4194304");
    memcpy(other, st.sha256, sizeof(other));
    other[10] = other[10] == 'a' ? 'b' : 'a';
    tp_assert_err(molt_pkg_bytes_check(&st, 4194304, other, &err), err, MOLT_E_VERIFY,
                  "sha256 mismatch");
}

/* ---- whole-file verification ---------------------------------------------- */

static void test_verify_file(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st, made;
    char pkg[PATH_MAX], sig[PATH_MAX], stmt[PATH_MAX], moved[PATH_MAX];
    char arch[32], os[16];
    char *bytes;
    size_t len;

    molt_pkg_host(os, arch);
    tp_make(env, tp_good, tp_good_n, NULL, pkg, &made);
    snprintf(sig, sizeof(sig), "%s.sig", pkg);
    snprintf(stmt, sizeof(stmt), "%s.statement.json", pkg);
    assert_int_equal(molt_pkg_verify_file(env->keys, pkg, NULL, NULL, "20.2-100", "20.1-1", NULL,
                                          NULL, &st, &err),
                     0);
    assert_string_equal(st.sha256, made.sha256);
    /* explicit statement and signature paths */
    snprintf(moved, sizeof(moved), "%s/elsewhere.sig", env->dir);
    assert_int_equal(rename(sig, moved), 0);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), err,
        MOLT_E_VERIFY, "signature: missing");
    assert_int_equal(
        molt_pkg_verify_file(env->keys, pkg, stmt, moved, NULL, NULL, NULL, NULL, &st, &err), 0);
    assert_int_equal(rename(moved, sig), 0);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, "20.3-1", NULL, NULL, NULL, &st, &err),
        err, MOLT_E_VERIFY, "statement is for 20.2-100, command asked for 20.3-1");
    tp_assert_err(molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL,
                                       strcmp(arch, "aarch64") ? "aarch64" : "amd64", &st, &err),
                  err, MOLT_E_VERIFY, "built for");
    /* untrusted signer */
    tp_sign(pkg, env->other_key);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), err,
        MOLT_E_VERIFY, "signature: no trusted key");
    tp_sign(pkg, env->key);
    /* one byte changed */
    bytes = tp_slurp(pkg, &len);
    bytes[len / 2] ^= 0x20;
    tp_spit(pkg, bytes, len);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), err,
        MOLT_E_VERIFY, "sha256 mismatch");
    /* longer than declared, shorter than declared */
    bytes[len / 2] ^= 0x20;
    bytes = realloc(bytes, len + 1);
    bytes[len] = 0;
    tp_spit(pkg, bytes, len + 1);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), err,
        MOLT_E_VERIFY, "longer than declared");
    tp_spit(pkg, bytes, len - 1);
    tp_assert_err(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), err,
        MOLT_E_VERIFY, "size mismatch");
    tp_spit(pkg, bytes, len);
    assert_int_equal(
        molt_pkg_verify_file(env->keys, pkg, NULL, NULL, NULL, NULL, NULL, NULL, &st, &err), 0);
    free(bytes);
}

/* ---- building --------------------------------------------------------------- */

static void make_tree(const char *root)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/bin", root);
    assert_int_equal(molt_fs_mkdir_p(path, 0755, NULL), 0);
    snprintf(path, sizeof(path), "%s/share/molt", root);
    assert_int_equal(molt_fs_mkdir_p(path, 0755, NULL), 0);
    tu_write(path, root, "bin/molt-agent", "#!/bin/sh\nexit 0\n");
    assert_int_equal(chmod(path, 04775), 0);
    tu_write(path, root, "bin/molt-installer", "#!/bin/sh\nexit 0\n");
    assert_int_equal(chmod(path, 0755), 0);
    tu_write(path, root, "share/molt/notes", "notes\n");
    snprintf(path, sizeof(path), "%s/share/molt/agent", root);
    assert_int_equal(symlink("../../bin/molt-agent", path), 0);
}

static void build_and_stage(struct tp_env *env, enum molt_pkg_compress compress)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_build_opts o = {0};
    struct molt_statement st, vst;
    char tree[PATH_MAX], pkg[PATH_MAX], pkg2[PATH_MAX], staged[PATH_MAX], path[PATH_MAX];
    char arch[32], os[16], *a, *b;
    size_t la, lb;
    struct stat sb;

    molt_pkg_host(os, arch);
    snprintf(tree, sizeof(tree), "%s/tree", env->dir);
    make_tree(tree);
    o.src_dir = tree;
    o.out = env->builds;
    o.version = "20.2-100";
    o.arch = arch;
    o.min_version = "20.1-0";
    o.compress = compress;
    assert_int_equal(molt_pkg_build(&o, pkg, &st, &err), 0);
    assert_non_null(strstr(pkg, compress == MOLT_PKG_ZSTD ? ".tar.zst" : ".tar.gz"));
    assert_string_equal(strrchr(pkg, '/') + 1, st.package);
    /* reproducible: the same tree again gives the same bytes */
    a = tp_slurp(pkg, &la);
    assert_int_equal(unlink(pkg), 0);
    o.out = pkg; /* this time named explicitly */
    assert_int_equal(molt_pkg_build(&o, pkg2, NULL, &err), 0);
    assert_string_equal(pkg, pkg2);
    b = tp_slurp(pkg2, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    /* a wrong output name is refused: the statement names the file */
    snprintf(path, sizeof(path), "%s/other.tar.gz", env->builds);
    o.out = path;
    tp_assert_err(molt_pkg_build(&o, NULL, NULL, &err), err, MOLT_E_INVAL, "output must be named");
    tp_sign(pkg, env->key);
    assert_int_equal(molt_pkg_verify_file(env->keys, pkg, NULL, NULL, "20.2-100", "20.1-5", NULL,
                                          NULL, &vst, &err),
                     0);
    assert_int_equal(molt_pkg_stage(pkg, &vst, env->upgrade, "task-1", staged, &err), 0);
    snprintf(path, sizeof(path), "%s/bin/molt-agent", staged);
    assert_int_equal(lstat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0755); /* setuid and group write dropped */
    assert_int_equal(molt_pkg_tree_check(staged, NULL, &err), 0);
    /* the build names its manifest in the statement, and the staged tree is that build */
    assert_true(strlen(vst.manifest_sha256) == 64);
    assert_string_equal(vst.manifest_sha256, st.manifest_sha256);
    assert_int_equal(molt_pkg_tree_check(staged, vst.manifest_sha256, &err), 0);
}

static void test_build_gzip(void **state)
{
    build_and_stage(*state, MOLT_PKG_GZIP);
}

static void test_build_zstd(void **state)
{
    build_and_stage(*state, MOLT_PKG_ZSTD);
}

static void test_build_rejects(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_build_opts o = {0};
    char tree[PATH_MAX], path[PATH_MAX];

    snprintf(tree, sizeof(tree), "%s/tree", env->dir);
    make_tree(tree);
    o.src_dir = tree;
    o.out = env->builds;
    o.version = "20.2-100";
    o.arch = "amd64";
    snprintf(path, sizeof(path), "%s/share/molt/escape", tree);
    assert_int_equal(symlink("../../../etc", path), 0);
    tp_assert_err(molt_pkg_build(&o, NULL, NULL, &err), err, MOLT_E_VERIFY,
                  "symlink escapes the package");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0644), 0);
    tp_assert_err(molt_pkg_build(&o, NULL, NULL, &err), err, MOLT_E_INVAL,
                  "only files, directories and symlinks");
    assert_int_equal(unlink(path), 0);
    tu_write(path, tree, "manifest.json", "{}");
    tp_assert_err(molt_pkg_build(&o, NULL, NULL, &err), err, MOLT_E_INVAL, "reserved");
    assert_int_equal(unlink(path), 0);
    o.version = "not a version";
    tp_assert_err(molt_pkg_build(&o, NULL, NULL, &err), err, MOLT_E_INVAL, "not a version");
    assert_int_equal(tp_count(env->builds), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sig_good_and_keyid, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_sig_invalid, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_sig_missing_truncated_malformed, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_sig_untrusted_key, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_sig_rotation, tp_setup, tp_teardown),
        cmocka_unit_test(test_statement_parse_good),
        cmocka_unit_test(test_statement_parse_bad),
        cmocka_unit_test(test_statement_manifest_sha256),
        cmocka_unit_test(test_statement_check),
        cmocka_unit_test_setup_teardown(test_authenticate_verifies_before_parsing, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_hasher_streaming, tp_setup, tp_teardown),
        cmocka_unit_test(test_bytes_check),
        cmocka_unit_test_setup_teardown(test_verify_file, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_build_gzip, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_build_zstd, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_build_rejects, tp_setup, tp_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
