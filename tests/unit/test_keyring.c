/* test_keyring.c: the release keyring (lib/keyring.c): strict parse and its
 * rules (key ids bound to keys, caps, unknown fields), a reproducible writer,
 * root signatures under a threshold before parsing, key expiry, and the
 * directory of effective release keys. Keys are made at test time. */
#include "test_package_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"
#include "fs.h"
#include "keyring.h"
#include "sign.h"

#define ISSUED 1700000000000LL
#define DAY (86400000LL)

/* Key A of the env is the pinned release key, key B (other_keys) is
 * delegated; root and root2 are made here. */
struct fx {
    struct tp_env env;
    char root[PATH_MAX], root_key[PATH_MAX], root2_key[PATH_MAX];
    char b_pub[PATH_MAX];
};

static void only_file(const char *dir, const char *suffix, char out[PATH_MAX])
{
    DIR *d = opendir(dir);
    struct dirent *e;

    assert_non_null(d);
    out[0] = '\0';
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), m = strlen(suffix);
        if (n > m && strcmp(e->d_name + n - m, suffix) == 0)
            snprintf(out, PATH_MAX, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    assert_true(out[0] != '\0');
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct molt_err err = MOLT_ERR_INIT;
    char id[MOLT_PKG_KEYID_SIZE], dir2[PATH_MAX + 8];

    assert_non_null(f);
    tp_env_setup(&f->env);
    snprintf(f->root, sizeof(f->root), "%s/root", f->env.dir);
    assert_int_equal(molt_pkg_key_generate(f->root, id, &err), 0);
    snprintf(f->root_key, sizeof(f->root_key), "%s/%s.key", f->root, id);
    snprintf(dir2, sizeof(dir2), "%s/root2", f->env.dir);
    assert_int_equal(molt_pkg_key_generate(dir2, id, &err), 0);
    snprintf(f->root2_key, sizeof(f->root2_key), "%s/%s.key", dir2, id);
    only_file(f->env.other_keys, ".pub", f->b_pub);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    tp_env_teardown(&f->env);
    free(f);
    return 0;
}

static void add_key(struct molt_keyring *kr, const char *pub, int64_t expires)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring_key *k = &kr->keys[kr->nkeys++];

    assert_int_equal(molt_pkg_key_raw_file(pub, k->raw, &err), 0);
    assert_int_equal(molt_pkg_key_id_raw(k->raw, k->keyid, &err), 0);
    k->expires_ms = expires;
}

/* A keyring of serial delegating B until b_expires; written, and signed by key
 * (NULL: unsigned). */
static void keyring(struct fx *f, int64_t serial, int64_t b_expires, const char *key,
                    char **doc, size_t *doc_len, char **sig, size_t *sig_len)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring kr = {.serial = serial, .issued_ms = ISSUED,
                              .expires_ms = ISSUED + 365 * DAY};

    add_key(&kr, f->b_pub, b_expires);
    assert_int_equal(molt_keyring_format(&kr, doc, doc_len, &err), 0);
    *sig = NULL;
    *sig_len = 0;
    if (key)
        assert_int_equal(molt_pkg_sig_create(key, *doc, *doc_len, sig, sig_len, &err), 0);
}

static void expect_parse_error(const char *doc, const char *needle)
{
    struct molt_keyring kr;
    struct molt_err err = MOLT_ERR_INIT;

    assert_true(molt_keyring_parse(doc, strlen(doc), &kr, &err) < 0);
    if (!strstr(err.msg, needle))
        fail_msg("'%s' does not contain '%s'", err.msg, needle);
}

/* doc with the first from replaced by to (malloc'd). */
static char *edited(const char *doc, const char *from, const char *to)
{
    const char *at = strstr(doc, from);
    char *out;

    assert_non_null(at);
    out = malloc(strlen(doc) + strlen(to) + 1);
    assert_non_null(out);
    sprintf(out, "%.*s%s%s", (int)(at - doc), doc, to, at + strlen(from));
    return out;
}

static void test_parse_and_format(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring kr, again;
    char *doc, *sig, *text;
    size_t dl, sl, tl;

    keyring(f, 4, ISSUED + DAY, NULL, &doc, &dl, &sig, &sl);
    assert_int_equal(molt_keyring_parse(doc, dl, &kr, &err), 0);
    assert_int_equal(kr.serial, 4);
    assert_int_equal(kr.nkeys, 1);
    assert_int_equal(kr.keys[0].expires_ms, ISSUED + DAY);
    assert_int_equal(strlen(kr.sha256), 64);
    /* reproducible: the same keyring is the same bytes */
    assert_int_equal(molt_keyring_format(&kr, &text, &tl, &err), 0);
    assert_int_equal(tl, dl);
    assert_memory_equal(text, doc, dl);
    assert_int_equal(molt_keyring_parse(text, tl, &again, &err), 0);
    assert_string_equal(again.sha256, kr.sha256);
    assert_non_null(molt_keyring_find(&kr, kr.keys[0].keyid));
    assert_null(molt_keyring_find(&kr, "0000000000000000"));
    free(text);
    free(doc);
}

static void test_parse_malformed(void **state)
{
    struct fx *f = *state;
    char *doc, *sig, *bad, big[MOLT_KEYRING_MAX + 2];
    size_t dl, sl;
    struct molt_keyring kr;
    struct molt_err err = MOLT_ERR_INIT;

    keyring(f, 4, ISSUED + DAY, NULL, &doc, &dl, &sig, &sl);
    bad = edited(doc, "\"serial\":4", "\"serial\":4,\"extra\":1");
    expect_parse_error(bad, "keyring: unknown field 'extra'");
    free(bad);
    bad = edited(doc, "\"keyid\":\"", "\"role\":\"x\",\"keyid\":\"");
    expect_parse_error(bad, "keys[0]: key: unknown field 'role'");
    free(bad);
    bad = edited(doc, "\"keyid\":\"", "\"keyid\":\"0");
    expect_parse_error(bad, "keys[0]");
    free(bad);
    /* a key id that is not the key's own */
    {
        const char *k = strstr(doc, "\"keyid\":\"") + 9;
        char wrong[MOLT_PKG_KEYID_SIZE], from[40], to[40];
        snprintf(wrong, sizeof(wrong), "%.16s", k);
        wrong[0] = wrong[0] == '0' ? '1' : '0';
        snprintf(from, sizeof(from), "\"keyid\":\"%.16s\"", k);
        snprintf(to, sizeof(to), "\"keyid\":\"%s\"", wrong);
        bad = edited(doc, from, to);
        expect_parse_error(bad, "is not the id of its key");
        free(bad);
    }
    bad = edited(doc, "\"publicKey\":\"", "\"publicKey\":\"AAAA");
    expect_parse_error(bad, "keys[0]: field 'publicKey'");
    free(bad);
    bad = edited(doc, "\"name\":\"release\"", "\"name\":\"root\"");
    expect_parse_error(bad, "field 'name': not release");
    free(bad);
    bad = edited(doc, "molt-keyring-1", "molt-keyring-2");
    expect_parse_error(bad, "field 'format': not molt-keyring-1");
    free(bad);
    bad = edited(doc, "\"serial\":4", "\"serial\":0");
    expect_parse_error(bad, "serial");
    free(bad);
    expect_parse_error("{\"format\":\"molt-keyring-1\"", "");
    expect_parse_error("[]", "not a JSON object");
    memset(big, ' ', sizeof(big));
    assert_true(molt_keyring_parse(big, sizeof(big), &kr, &err) < 0);
    assert_non_null(strstr(err.msg, "larger than 65536"));
    free(doc);
}

static void test_check_rules(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring kr = {.serial = 1, .issued_ms = ISSUED, .expires_ms = ISSUED + DAY};
    char *text = NULL;
    size_t len;

    add_key(&kr, f->b_pub, ISSUED + DAY);
    assert_int_equal(molt_keyring_check(&kr, &err), 0);
    kr.keys[1] = kr.keys[0];
    kr.nkeys = 2;
    assert_true(molt_keyring_check(&kr, &err) < 0);
    assert_non_null(strstr(err.msg, "listed twice"));
    kr.nkeys = 1;
    kr.expires_ms = ISSUED;
    assert_true(molt_keyring_format(&kr, &text, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'expires': not after 'issued'"));
    kr.expires_ms = ISSUED + DAY;
    kr.nkeys = MOLT_KEYRING_MAX_KEYS + 1;
    assert_true(molt_keyring_check(&kr, &err) < 0);
    assert_non_null(strstr(err.msg, "at most 64"));
}

static void test_load_signatures(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring kr;
    char *doc, *sig, *sig2, *both;
    size_t dl, sl, sl2;

    keyring(f, 2, ISSUED + DAY, f->root_key, &doc, &dl, &sig, &sl);
    assert_int_equal(molt_keyring_load(f->root, 1, doc, dl, sig, sl, &kr, &err), 0);
    assert_int_equal(kr.serial, 2);
    /* signed by a release key, not a root key */
    assert_true(molt_keyring_load(f->env.keys, 1, doc, dl, sig, sl, &kr, &err) < 0);
    assert_non_null(strstr(err.msg, "keyring: signature: 0 of 1 required"));
    assert_true(molt_keyring_load(f->root, 1, doc, dl, NULL, 0, &kr, &err) < 0);
    assert_string_equal(err.msg, "keyring: signature: missing");
    /* a tampered document: its signature no longer verifies */
    doc[dl - 3] = doc[dl - 3] == '2' ? '3' : '2';
    assert_true(molt_keyring_load(f->root, 1, doc, dl, sig, sl, &kr, &err) < 0);
    assert_non_null(strstr(err.msg, "signature: invalid"));
    doc[dl - 3] = doc[dl - 3] == '2' ? '3' : '2';
    /* threshold 2: root alone is not enough; root2 is not trusted either */
    assert_int_equal(molt_pkg_sig_create(f->root2_key, doc, dl, &sig2, &sl2, &err), 0);
    both = malloc(sl + sl2 + 1);
    assert_non_null(both);
    memcpy(both, sig, sl);
    memcpy(both + sl, sig2, sl2);
    assert_true(molt_keyring_load(f->root, 2, doc, dl, both, sl + sl2, &kr, &err) < 0);
    assert_non_null(strstr(err.msg, "1 of 2 required"));
    /* an oversized document is refused before its signatures are looked at */
    assert_true(molt_keyring_load(f->root, 1, doc, MOLT_KEYRING_MAX + 1, sig, sl, &kr, &err) < 0);
    assert_non_null(strstr(err.msg, "keyring: 65537 bytes, larger than 65536"));
    free(both);
    free(sig2);
    free(sig);
    free(doc);
}

static void test_replay(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;

    (void)f;
    assert_int_equal(molt_signed_replay_check("keyring", "release", 3, "aa", 4, "bb", &err), 0);
    assert_int_equal(molt_signed_replay_check("keyring", "release", 3, "aa", 3, "aa", &err), 0);
    assert_true(molt_signed_replay_check("keyring", "release", 3, "aa", 2, "bb", &err) < 0);
    assert_string_equal(err.msg, "keyring 'release' serial 2 is older than serial 3 accepted "
                                 "before (replay refused)");
    assert_true(molt_signed_replay_check("keyring", "release", 3, "aa", 3, "bb", &err) < 0);
    assert_non_null(strstr(err.msg, "a serial is never reused"));
}

static void test_expiry(void **state)
{
    struct fx *f = *state;
    struct molt_keyring kr = {.serial = 1, .issued_ms = ISSUED, .expires_ms = ISSUED + 10 * DAY};

    add_key(&kr, f->b_pub, ISSUED + DAY);
    assert_true(molt_keyring_key_valid(&kr, &kr.keys[0], ISSUED));
    assert_false(molt_keyring_key_valid(&kr, &kr.keys[0], ISSUED + DAY));
    assert_int_equal(molt_keyring_next_expiry(&kr, ISSUED), ISSUED + DAY);
    assert_int_equal(molt_keyring_next_expiry(&kr, ISSUED + DAY), ISSUED + 10 * DAY);
    assert_int_equal(molt_keyring_next_expiry(&kr, ISSUED + 10 * DAY), INT64_MAX);
    /* the keyring's own expiry ends every key */
    kr.keys[0].expires_ms = ISSUED + 20 * DAY;
    assert_false(molt_keyring_key_valid(&kr, &kr.keys[0], ISSUED + 10 * DAY));
}

static int count_pub(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".pub") != NULL;
    closedir(d);
    return n;
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_materialise(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring kr = {.serial = 1, .issued_ms = ISSUED, .expires_ms = ISSUED + 10 * DAY};
    char dir[PATH_MAX + 16], *sig = NULL;
    size_t n = 9, sl;
    struct stat st;

    add_key(&kr, f->b_pub, ISSUED + DAY);
    snprintf(dir, sizeof(dir), "%s/trusted", f->env.dir);
    /* no keyring: the pinned keys alone */
    assert_int_equal(molt_keyring_materialise(f->env.keys, NULL, ISSUED, dir, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_pub(dir), 1);
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* with B delegated: a statement signed by B verifies against the directory */
    assert_int_equal(molt_keyring_materialise(f->env.keys, &kr, ISSUED, dir, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(count_pub(dir), 2);
    assert_int_equal(count_entries(f->env.dir, "trusted."), 1); /* the previous one removed */
    assert_int_equal(molt_pkg_sig_create(f->env.other_key, "x", 1, &sig, &sl, &err), 0);
    assert_int_equal(molt_pkg_sig_verify(dir, "x", 1, sig, sl, NULL, &err), 0);
    /* once B expired it counts for nothing */
    assert_int_equal(molt_keyring_materialise(f->env.keys, &kr, ISSUED + DAY, dir, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_pub(dir), 1);
    assert_true(molt_pkg_sig_verify(dir, "x", 1, sig, sl, NULL, &err) < 0);
    /* built twice in the same millisecond: still replaced whole */
    assert_int_equal(molt_keyring_materialise(f->env.keys, &kr, ISSUED, dir, &n, &err), 0);
    assert_int_equal(molt_keyring_materialise(f->env.keys, &kr, ISSUED, dir, &n, &err), 0);
    assert_int_equal(count_pub(dir), 2);
    assert_int_equal(count_entries(f->env.dir, "trusted."), 1);
    free(sig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_and_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_materialise, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
