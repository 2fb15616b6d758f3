/* test_channel.c: the release channel (lib/channel.c) and signature thresholds
 * (lib/sigset.c): strict parsing, signatures by keys made at test time, every
 * admit and refusal, rollout buckets, replay refusal, reproducible writing. */
#include "test_package_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "sign.h"
#include "sigset.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ISSUED 1700000000000LL
#define EXPIRES 1700086400000LL /* issued + 1 day */
#define NOW (ISSUED + 1000)

/* Two builds of 20.3-1 (amd64 at 100%, aarch64 at 10% from NOW + 1 h) and 20.2-5
 * for amd64; floor 20.2-0. */
static const char good_doc[] =
    "{\"builds\":["
    "{\"arch\":\"amd64\",\"os\":\"linux\",\"rollout\":{\"notBefore\":0,\"percent\":100},"
    "\"statementSha256\":\"" SHA_A "\",\"version\":\"20.3-1\"},"
    "{\"arch\":\"aarch64\",\"os\":\"linux\",\"rollout\":{\"notBefore\":1700003601000,\"percent\":"
    "10},"
    "\"statementSha256\":\"" SHA_B "\",\"version\":\"20.3-1\"},"
    "{\"arch\":\"amd64\",\"os\":\"linux\",\"rollout\":{\"notBefore\":0,\"percent\":0},"
    "\"statementSha256\":\"" SHA_B "\",\"version\":\"20.2-5\"}"
    "],\"expires\":1700086400000,\"floor\":\"20.2-0\",\"format\":\"molt-channel-1\","
    "\"issued\":1700000000000,\"name\":\"stable\",\"serial\":7}\n";

static void parse_ok(const char *doc, struct molt_channel *ch)
{
    struct molt_err err = MOLT_ERR_INIT;

    if (molt_channel_parse(doc, strlen(doc), ch, &err) != 0)
        fail_msg("parse: %s", err.msg);
}

/* good_doc with the first occurrence of from replaced by to. */
static char *edited(const char *from, const char *to)
{
    const char *at = strstr(good_doc, from);
    size_t n = strlen(good_doc) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);

    assert_non_null(at);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - good_doc), good_doc, to, at + strlen(from));
    return out;
}

static void expect_parse_error(const char *doc, size_t len, const char *substring)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch;

    tp_assert_err(molt_channel_parse(doc, len, &ch, &err) < 0 ? -1 : 0, err, -1, substring);
    assert_null(ch.builds);
}

static void expect_edit_error(const char *from, const char *to, const char *substring)
{
    char *doc = edited(from, to);

    expect_parse_error(doc, strlen(doc), substring);
    free(doc);
}

/* ---- parse ------------------------------------------------------------------ */

static void test_parse_good(void **state)
{
    struct molt_channel ch;
    char hex[MOLT_PKG_SHA256_HEX];
    struct molt_err err = MOLT_ERR_INIT;

    (void)state;
    parse_ok(good_doc, &ch);
    assert_string_equal(ch.name, "stable");
    assert_int_equal(ch.serial, 7);
    assert_int_equal(ch.issued_ms, ISSUED);
    assert_int_equal(ch.expires_ms, EXPIRES);
    assert_string_equal(ch.floor, "20.2-0");
    assert_int_equal(ch.nbuilds, 3);
    assert_string_equal(ch.builds[1].arch, "aarch64");
    assert_int_equal(ch.builds[1].percent, 10);
    assert_int_equal(ch.builds[1].not_before_ms, 1700003601000LL);
    assert_string_equal(ch.builds[0].statement_sha256, SHA_A);
    assert_int_equal(molt_pkg_sha256_buf(good_doc, strlen(good_doc), hex, &err), 0);
    assert_string_equal(ch.sha256, hex);
    molt_channel_free(&ch);
}

static void test_parse_malformed(void **state)
{
    char *big;

    (void)state;
    expect_parse_error("", 0, "empty document");
    expect_parse_error("{", 1, "JSON: truncated document");
    expect_parse_error(good_doc, strlen(good_doc) / 2, "JSON: truncated document");
    expect_parse_error("[1]", 3, "not a JSON object");
    expect_parse_error("{\"a\":1} x", 9, "JSON: unexpected character at offset 8");
    expect_parse_error("{\"a\":1}\n\0", 9, "JSON: trailing data at offset 8");
    big = malloc(MOLT_CHANNEL_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', MOLT_CHANNEL_MAX + 1);
    memcpy(big, good_doc, strlen(good_doc));
    expect_parse_error(big, MOLT_CHANNEL_MAX + 1, "larger than 65536");
    free(big);
}

static void test_parse_fields(void **state)
{
    static const char builds_obj[] =
        "{\"builds\":{},\"expires\":2,\"floor\":\"\",\"format\":\"molt-channel-1\","
        "\"issued\":1,\"name\":\"s\",\"serial\":1}";

    (void)state;
    expect_edit_error("\"serial\":7", "\"serial\":\"7\"", "field 'serial': expected integer");
    expect_edit_error("\"serial\":7", "\"serial\":0", "field 'serial': 0 is not in 1..");
    expect_edit_error("\"serial\":7", "\"serial\":7.5", "field 'serial': expected integer");
    expect_edit_error("\"serial\":7", "\"serial\":99999999999999999999", "outside int64");
    expect_edit_error(",\"serial\":7", "", "missing field 'serial'");
    expect_edit_error("\"expires\":1700086400000", "\"expires\":\"tomorrow\"",
                      "field 'expires': expected integer");
    expect_edit_error("\"expires\":1700086400000", "\"expires\":1700000000000",
                      "field 'expires': not after 'issued'");
    expect_edit_error("\"format\":\"molt-channel-1\"", "\"format\":\"molt-channel-2\"",
                      "field 'format': not molt-channel-1");
    expect_edit_error("\"name\":\"stable\"", "\"name\":\"Stable!\"", "field 'name'");
    expect_edit_error("\"floor\":\"20.2-0\"", "\"floor\":\"x\"",
                      "field 'floor': 'x' is not a version");
    expect_edit_error("\"serial\":7", "\"serial\":7,\"mirror\":\"x\"",
                      "channel: unknown field 'mirror'");
    expect_edit_error("\"percent\":100", "\"percent\":101",
                      "field 'percent': 101 is not in 0..100");
    expect_edit_error("\"notBefore\":0", "\"notBefore\":-1", "field 'notBefore'");
    expect_edit_error("\"percent\":100}", "\"percent\":100,\"x\":1}", "rollout: unknown field 'x'");
    expect_edit_error("\"version\":\"20.3-1\"", "\"version\":\"20.3-1\",\"url\":\"u\"",
                      "builds[0]: build: unknown field 'url'");
    expect_edit_error(SHA_A, "AAAA", "builds[0]: statementSha256: not 64 lowercase hex digits");
    expect_edit_error("\"arch\":\"amd64\"", "\"arch\":\"amd 64\"", "builds[0]: os and arch");
    expect_edit_error("\"version\":\"20.2-5\"", "\"version\":\"20.1-5\"",
                      "builds[2]: 20.1-5 is below the floor 20.2-0");
    expect_edit_error("\"version\":\"20.2-5\"", "\"version\":\"20.3-1\"",
                      "builds[2]: 20.3-1 linux/amd64 is listed twice");
    expect_parse_error(builds_obj, strlen(builds_obj), "field 'builds': expected array");
}

static void test_parse_too_many_builds(void **state)
{
    struct molt_channel ch = {.serial = 1, .issued_ms = 1, .expires_ms = 2, .name = "s"};
    struct molt_err err = MOLT_ERR_INIT;
    char *text = NULL;
    size_t len = 0;

    (void)state;
    ch.nbuilds = MOLT_CHANNEL_MAX_BUILDS + 1;
    ch.builds = calloc(ch.nbuilds, sizeof(*ch.builds));
    assert_non_null(ch.builds);
    for (size_t i = 0; i < ch.nbuilds; i++) {
        snprintf(ch.builds[i].version, sizeof(ch.builds[i].version), "1.%zu", i);
        snprintf(ch.builds[i].os, sizeof(ch.builds[i].os), "linux");
        snprintf(ch.builds[i].arch, sizeof(ch.builds[i].arch), "amd64");
        memset(ch.builds[i].statement_sha256, 'a', 64);
    }
    tp_assert_err(molt_channel_format(&ch, &text, &len, &err), err, MOLT_E_LIMIT,
                  "257 builds, at most 256");
    ch.nbuilds--;
    assert_int_equal(molt_channel_format(&ch, &text, &len, &err), 0);
    assert_true(len < MOLT_CHANNEL_MAX);
    /* The parser counts as well: one more build in the text is refused. */
    {
        char *more = malloc(len + 300);
        const char *extra = "{\"arch\":\"amd64\",\"os\":\"linux\",\"rollout\":{\"notBefore\":0,"
                            "\"percent\":0},\"statementSha256\":\"" SHA_A "\",\"version\":\"9\"},";
        assert_non_null(more);
        snprintf(more, len + 300, "{\"builds\":[%s%s", extra, text + strlen("{\"builds\":["));
        expect_parse_error(more, strlen(more), "field 'builds': 257 builds, at most 256");
        free(more);
    }
    free(text);
    molt_channel_free(&ch);
}

/* ---- format ----------------------------------------------------------------- */

static void test_format_reproducible(void **state)
{
    struct molt_channel ch, again;
    struct molt_channel_build tmp;
    struct molt_err err = MOLT_ERR_INIT;
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;

    (void)state;
    parse_ok(good_doc, &ch);
    assert_int_equal(molt_channel_format(&ch, &a, &alen, &err), 0);
    /* Builds sorted by version then os/arch, keys in byte order, one line. */
    assert_true(strstr(a, "\"version\":\"20.2-5\"") < strstr(a, "\"version\":\"20.3-1\""));
    assert_true(strstr(a, "\"arch\":\"aarch64\"") < strstr(a, "\"arch\":\"amd64\",\"os\":\"linux\","
                                                              "\"rollout\":{\"notBefore\":0,"
                                                              "\"percent\":100}"));
    assert_int_equal(strchr(a, '\n') - a, (long)alen - 1);
    tmp = ch.builds[0];
    ch.builds[0] = ch.builds[2];
    ch.builds[2] = tmp;
    assert_int_equal(molt_channel_format(&ch, &b, &blen, &err), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    parse_ok(a, &again);
    assert_int_equal(again.serial, 7);
    assert_int_equal(again.nbuilds, 3);
    assert_non_null(molt_channel_find(&again, "20.3-1", "linux", "aarch64"));
    free(a);
    free(b);
    molt_channel_free(&again);
    /* The writer keeps the parser's rules. */
    snprintf(ch.floor, sizeof(ch.floor), "20.3-0");
    tp_assert_err(molt_channel_format(&ch, &a, &alen, &err), err, MOLT_E_PARSE,
                  "20.2-5 is below the floor 20.3-0");
    assert_null(a);
    molt_channel_free(&ch);
}

/* ---- signatures ------------------------------------------------------------- */

static char *sign_doc(const char *key, const char *doc, size_t *len)
{
    struct molt_err err = MOLT_ERR_INIT;
    char *sig = NULL;

    assert_int_equal(molt_pkg_sig_create(key, doc, strlen(doc), &sig, len, &err), 0);
    return sig;
}

static char *concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *out = malloc(n);

    assert_non_null(out);
    snprintf(out, n, "%s%s", a, b);
    return out;
}

static int load(const struct tp_env *env, int threshold, const char *name, const char *doc,
                const char *sig, struct molt_channel *ch, struct molt_err *err)
{
    return molt_channel_load(env->keys, threshold, name, doc, strlen(doc), sig,
                             sig ? strlen(sig) : 0, ch, err);
}

static void test_load_signatures(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch;
    size_t len;
    char *sig = sign_doc(env->key, good_doc, &len);
    char *other = sign_doc(env->other_key, good_doc, &len);
    char *tampered = edited("\"percent\":10}", "\"percent\":100}");

    assert_int_equal(load(env, 1, "stable", good_doc, sig, &ch, &err), 0);
    assert_int_equal(ch.serial, 7);
    /* A refused channel leaves the one in force as it was. */
    tp_assert_err(load(env, 1, NULL, good_doc, NULL, &ch, &err), err, MOLT_E_VERIFY,
                  "channel: signature: missing");
    tp_assert_err(load(env, 1, NULL, tampered, sig, &ch, &err), err, MOLT_E_VERIFY,
                  "signature: invalid");
    assert_int_equal(ch.serial, 7);
    assert_int_equal(ch.nbuilds, 3);
    assert_string_equal(ch.builds[2].version, "20.2-5");
    molt_channel_free(&ch);
    memset(&ch, 0, sizeof(ch));
    tp_assert_err(load(env, 1, NULL, good_doc, other, &ch, &err), err, MOLT_E_VERIFY,
                  "channel: signature: 0 of 1 required signatures by distinct trusted keys "
                  "(line 1, key");
    assert_non_null(strstr(err.msg, "no trusted key"));
    tp_assert_err(load(env, 1, NULL, tampered, sig, &ch, &err), err, MOLT_E_VERIFY,
                  "signature: invalid");
    tp_assert_err(load(env, 1, "beta", good_doc, sig, &ch, &err), err, MOLT_E_VERIFY,
                  "channel: is 'stable', this host follows 'beta'");
    sig[40] = '\0';
    tp_assert_err(load(env, 1, NULL, good_doc, sig, &ch, &err), err, MOLT_E_VERIFY,
                  "channel: signature: truncated");
    tp_assert_err(load(env, 1, NULL, good_doc, "not a signature\n", &ch, &err), err, MOLT_E_VERIFY,
                  "channel: signature: malformed: line 1:");
    {
        char *big = malloc(MOLT_SIGSET_MAX + 2);
        assert_non_null(big);
        memset(big, ' ', MOLT_SIGSET_MAX + 1);
        big[MOLT_SIGSET_MAX + 1] = '\0';
        tp_assert_err(load(env, 1, NULL, good_doc, big, &ch, &err), err, MOLT_E_VERIFY,
                      "channel: signature: malformed: larger than 4096 bytes");
        free(big);
    }
    free(sig);
    free(other);
    free(tampered);
}

/* A document whose signature verifies but whose contents are bad is refused
 * by the parser, after the signature: verify before parse. */
static void test_load_signed_garbage(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch;
    size_t len;
    const char *garbage = "{\"format\":\"molt-channel-1\"";
    char *sig = sign_doc(env->key, garbage, &len);
    char *big = malloc(MOLT_CHANNEL_MAX + 2);

    tp_assert_err(load(env, 1, NULL, garbage, sig, &ch, &err), err, MOLT_E_PARSE,
                  "channel: JSON: truncated document");
    assert_non_null(big);
    memset(big, ' ', MOLT_CHANNEL_MAX + 1);
    big[MOLT_CHANNEL_MAX + 1] = '\0';
    memcpy(big, good_doc, strlen(good_doc));
    tp_assert_err(load(env, 1, NULL, big, sig, &ch, &err), err, MOLT_E_LIMIT,
                  "channel: 65537 bytes, larger than 65536");
    free(big);
    free(sig);
}

static void test_load_threshold(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch;
    char second[PATH_MAX], keyid[MOLT_PKG_KEYID_SIZE], ids[128];
    size_t len;
    char *a, *b, *c, *twice, *both, *with_other;

    /* A second trusted key in the same keys directory. */
    assert_int_equal(molt_pkg_key_generate(env->keys, keyid, &err), 0);
    snprintf(second, sizeof(second), "%s/%s.key", env->keys, keyid);
    a = sign_doc(env->key, good_doc, &len);
    b = sign_doc(second, good_doc, &len);
    twice = concat(a, a);
    both = concat(a, b);
    c = sign_doc(env->other_key, good_doc, &len);
    with_other = concat(a, c);

    tp_assert_err(load(env, 2, NULL, good_doc, a, &ch, &err), err, MOLT_E_VERIFY,
                  "signature: 1 of 2 required signatures");
    tp_assert_err(load(env, 2, NULL, good_doc, twice, &ch, &err), err, MOLT_E_VERIFY,
                  "1 of 2 required signatures by distinct trusted keys (the same key signed "
                  "more than once)");
    /* One compromised key under threshold 2: its own second line by an untrusted key. */
    tp_assert_err(load(env, 2, NULL, good_doc, with_other, &ch, &err), err, MOLT_E_VERIFY,
                  "1 of 2 required signatures by distinct trusted keys (line 2, key");
    assert_int_equal(load(env, 2, NULL, good_doc, both, &ch, &err), 0);
    molt_channel_free(&ch);
    assert_int_equal(molt_sigset_verify(env->keys, 2, good_doc, strlen(good_doc), both,
                                        strlen(both), ids, sizeof(ids), &err),
                     0);
    assert_non_null(strstr(ids, keyid));
    assert_int_equal(strlen(ids), 2 * MOLT_PKG_KEYID_LEN + 1);
    /* Without the final newline the set is still read; an empty line is not a signature. */
    both[strlen(both) - 1] = '\0';
    assert_int_equal(load(env, 2, NULL, good_doc, both, &ch, &err), 0);
    molt_channel_free(&ch);
    free(twice);
    twice = concat(a, "\n");
    tp_assert_err(load(env, 1, NULL, good_doc, twice, &ch, &err), err, MOLT_E_VERIFY,
                  "signature: malformed: line 2: signature: missing");
    tp_assert_err(load(env, 17, NULL, good_doc, a, &ch, &err), err, MOLT_E_INVAL,
                  "threshold 17 is not in 1..16");
    free(a);
    free(b);
    free(c);
    free(twice);
    free(both);
    free(with_other);
}

/* ---- admits ----------------------------------------------------------------- */

/* A machine id whose bucket for version is below (want_in) or at least limit. */
static void machine_id_for(const char *version, unsigned limit, int want_in, char out[33])
{
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(out, 33, "%032x", i);
        if ((molt_channel_bucket(out, version) < limit) == want_in)
            return;
    }
    fail_msg("no machine id found");
}

static void expect_refusal(const struct molt_channel *ch, int64_t now, const char *mid,
                           const char *version, const char *arch, const char *sha,
                           const char *substring)
{
    struct molt_err err = MOLT_ERR_INIT;

    tp_assert_err(molt_channel_admits(ch, now, mid, version, "linux", arch, sha, &err), err,
                  MOLT_E_VERIFY, substring);
}

static void test_admits(void **state)
{
    struct molt_channel ch;
    struct molt_err err = MOLT_ERR_INIT;
    char in[33], out[33];

    (void)state;
    parse_ok(good_doc, &ch);
    machine_id_for("20.3-1", 1000, 1, in);
    machine_id_for("20.3-1", 1000, 0, out);

    assert_int_equal(molt_channel_admits(&ch, NOW, out, "20.3-1", "linux", "amd64", SHA_A, &err),
                     0);
    assert_int_equal(
        molt_channel_admits(&ch, EXPIRES - 1, in, "20.3-1", "linux", "aarch64", SHA_B, &err), 0);
    expect_refusal(&ch, NOW, in, "20.4-1", "amd64", SHA_A,
                   "20.4-1 is not in channel 'stable' serial 7");
    expect_refusal(&ch, NOW, in, "20.3-1", "x86", SHA_A,
                   "channel 'stable' serial 7 lists 20.3-1 for linux/amd64 linux/aarch64 only, "
                   "not linux/x86");
    expect_refusal(&ch, NOW, in, "20.3-1", "amd64", SHA_B,
                   "statement of 20.3-1 linux/amd64 is not the one channel 'stable' lists");
    expect_refusal(&ch, NOW, in, "20.3-1", "amd64", NULL, "is not the one channel 'stable' lists");
    expect_refusal(&ch, NOW, in, "20.1-9", "amd64", SHA_A,
                   "20.1-9 is below the floor 20.2-0 of channel 'stable'");
    expect_refusal(&ch, NOW, in, "20.3-1", "aarch64", SHA_B,
                   "rollout of 20.3-1 in channel 'stable' starts at 2023-11-14T23:13:21Z");
    expect_refusal(&ch, EXPIRES - 1, out, "20.3-1", "aarch64", SHA_B,
                   "is outside the 10% rollout of 20.3-1 in channel 'stable' (buckets below 1000)");
    expect_refusal(&ch, EXPIRES - 1, "", "20.3-1", "aarch64", SHA_B,
                   "no machine id: only a 100% rollout admits this host, 20.3-1 is at 10%");
    assert_int_equal(molt_channel_admits(&ch, NOW, NULL, "20.3-1", "linux", "amd64", SHA_A, &err),
                     0);
    expect_refusal(&ch, EXPIRES - 1, in, "20.2-5", "amd64", SHA_B,
                   "outside the 0% rollout of 20.2-5");
    expect_refusal(&ch, EXPIRES, out, "20.3-1", "amd64", SHA_A,
                   "channel 'stable' serial 7 expired at 2023-11-15T22:13:20Z: no new upgrade");
    molt_channel_free(&ch);
}

static void test_bucket_stable_and_spread(void **state)
{
    char mid[33];
    unsigned in10 = 0, in_both = 0, in100 = 0;

    (void)state;
    /* Pinned: the hash is the documented one, so the control plane can compute it too. */
    assert_int_equal(molt_channel_bucket("0123456789abcdef0123456789abcdef", "20.3-1"),
                     molt_channel_bucket("0123456789abcdef0123456789abcdef", "20.3-1"));
    assert_true(molt_channel_bucket("", "") < MOLT_CHANNEL_BUCKETS);
    for (unsigned i = 0; i < 10000; i++) {
        unsigned a, b;
        snprintf(mid, sizeof(mid), "%08x%024x", i * 2654435761u, i);
        a = molt_channel_bucket(mid, "20.3-1");
        b = molt_channel_bucket(mid, "20.4-1");
        assert_true(a < MOLT_CHANNEL_BUCKETS);
        in10 += a < 1000;
        in_both += a < 1000 && b < 1000;
        in100 += a < 10000;
    }
    /* 10% rollout: 9..11% of 10,000 hosts (the binomial sd is 30). */
    assert_in_range(in10, 900, 1100);
    assert_int_equal(in100, 10000);
    /* Uncorrelated between versions: about 1% are in both first waves, not 10%. */
    assert_in_range(in_both, 50, 160);
}

/* The hash is sha256("molt-rollout\0" machine_id "\0" version), first 8 bytes
 * big endian, mod 10000: checked against OpenSSL's sha256 computed here. */
static void test_bucket_definition(void **state)
{
    static const char msg[] = "molt-rollout\0abc\0"
                              "20.3-1";
    char hex[MOLT_PKG_SHA256_HEX];
    struct molt_err err = MOLT_ERR_INIT;
    unsigned long long v = 0;

    (void)state;
    assert_int_equal(molt_pkg_sha256_buf(msg, sizeof(msg) - 1, hex, &err), 0);
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    assert_int_equal(molt_channel_bucket("abc", "20.3-1"), (unsigned)(v % 10000));
}

/* ---- replay ----------------------------------------------------------------- */

static void test_replay(void **state)
{
    struct molt_channel ch;
    struct molt_err err = MOLT_ERR_INIT;

    (void)state;
    parse_ok(good_doc, &ch);
    assert_int_equal(molt_channel_replay_check(0, NULL, &ch, &err), 0);
    assert_int_equal(molt_channel_replay_check(6, SHA_A, &ch, &err), 0);
    assert_int_equal(molt_channel_replay_check(7, ch.sha256, &ch, &err), 0);
    tp_assert_err(molt_channel_replay_check(8, SHA_A, &ch, &err), err, MOLT_E_VERIFY,
                  "channel 'stable' serial 7 is older than serial 8 accepted before (replay "
                  "refused)");
    tp_assert_err(molt_channel_replay_check(7, SHA_A, &ch, &err), err, MOLT_E_VERIFY,
                  "channel 'stable' serial 7 differs from the serial 7 accepted before");
    molt_channel_free(&ch);
}

/* ---- the channel in force -------------------------------------------------- */

static void test_kept(void **state)
{
    struct tp_env *env = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch, older;
    struct molt_channel_kept k;
    char path[PATH_MAX], *text, *older_doc = edited("\"serial\":7", "\"serial\":6");
    size_t len;
    char *sig = sign_doc(env->key, good_doc, &len);

    snprintf(path, sizeof(path), "%s/channel.json", env->dir);
    tp_assert_err(molt_channel_kept_read(path, &k, &err), err, MOLT_E_NOTFOUND, "channel.json");
    assert_int_equal(load(env, 1, "stable", good_doc, sig, &ch, &err), 0);
    assert_int_equal(
        molt_channel_kept_write(path, &ch, good_doc, strlen(good_doc), sig, strlen(sig), NOW, &err),
        0);
    assert_int_equal(molt_channel_kept_read(path, &k, &err), 0);
    assert_string_equal(k.name, "stable");
    assert_int_equal(k.serial, 7);
    assert_int_equal(k.accepted_ms, NOW);
    assert_string_equal(k.sha256, ch.sha256);
    assert_int_equal(k.doc_len, strlen(good_doc));
    assert_memory_equal(k.doc, good_doc, k.doc_len);
    assert_memory_equal(k.sig, sig, k.sig_len);
    /* What was kept verifies again, and refuses the replay of an older serial. */
    molt_channel_free(&ch);
    assert_int_equal(
        molt_channel_load(env->keys, 1, k.name, k.doc, k.doc_len, k.sig, k.sig_len, &ch, &err), 0);
    parse_ok(older_doc, &older);
    tp_assert_err(molt_channel_replay_check(k.serial, k.sha256, &older, &err), err, MOLT_E_VERIFY,
                  "serial 6 is older than serial 7 accepted before");
    molt_channel_kept_free(&k);
    tp_assert_err(molt_channel_kept_write(path, &ch, older_doc, strlen(older_doc), sig, strlen(sig),
                                          NOW, &err),
                  err, MOLT_E_INVAL, "the document is not channel 'stable' serial 7");

    /* A damaged state file is refused whole, naming what is wrong. */
    text = tp_slurp(path, &len);
    tp_spit(path, text, len / 2);
    tp_assert_err(molt_channel_kept_read(path, &k, &err), err, MOLT_E_PARSE, "channel state");
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(k.doc);
    {
        char *other = strstr(text, "\"sha256\":\"") + strlen("\"sha256\":\"");
        other[0] = other[0] == 'a' ? 'b' : 'a';
        tp_spit(path, text, len);
        tp_assert_err(molt_channel_kept_read(path, &k, &err), err, MOLT_E_PARSE,
                      "the document does not match its sha256");
    }
    {
        static const char bad[] = "{\"format\":\"molt-channel-state-1\",\"serial\":\"7\"}";
        tp_spit(path, bad, strlen(bad));
    }
    tp_assert_err(molt_channel_kept_read(path, &k, &err), err, MOLT_E_PARSE, "field 'name'");
    free(text);
    free(sig);
    free(older_doc);
    molt_channel_free(&older);
    molt_channel_free(&ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_too_many_builds),
        cmocka_unit_test(test_format_reproducible),
        cmocka_unit_test_setup_teardown(test_load_signatures, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_load_signed_garbage, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_load_threshold, tp_setup, tp_teardown),
        cmocka_unit_test(test_admits),
        cmocka_unit_test(test_bucket_stable_and_spread),
        cmocka_unit_test(test_bucket_definition),
        cmocka_unit_test(test_replay),
        cmocka_unit_test_setup_teardown(test_kept, tp_setup, tp_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
