/* test_trust.c: the release channel in force (agent/trust.c): taken only when
 * newer and signed, kept across a restart, replays and bad documents refused
 * with the previous one kept, a lapsed or corrupt kept file, the opt-out, and
 * admission (remote with the rollout, local without); the keyring: a release
 * key delegated by root, rotation, revocation (the channel lapses), expiry,
 * replays and bad keyrings refused. Keys are made at test time. */
#include "test_package_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "conf.h"
#include "fs.h"
#include "keyring.h"
#include "sign.h"
#include "trust.h"

#define ISSUED 1700000000000LL
#define NOW (ISSUED + 1000)
#define STMT_A "{\"statement\":\"A\"}"
#define STMT_B "{\"statement\":\"B\"}"

struct fx {
    struct tp_env env;
    struct molt_config conf;
    struct molt_trust t;
    char state[PATH_MAX];
    char root_key[PATH_MAX]; /* keys_dir/root's private key */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct molt_err err = MOLT_ERR_INIT;

    assert_non_null(f);
    tp_env_setup(&f->env);
    snprintf(f->state, sizeof(f->state), "%s/state", f->env.dir);
    assert_int_equal(molt_fs_mkdir_p(f->state, 0700, &err), 0);
    molt_conf_defaults(&f->conf);
    snprintf(f->conf.agent.keys_dir, sizeof(f->conf.agent.keys_dir), "%s", f->env.keys);
    {
        char root[PATH_MAX + 8], id[MOLT_PKG_KEYID_SIZE];
        snprintf(root, sizeof(root), "%s/root", f->env.keys);
        assert_int_equal(molt_pkg_key_generate(root, id, &err), 0);
        snprintf(f->root_key, sizeof(f->root_key), "%s/%s.key", root, id);
    }
    assert_int_equal(molt_trust_init(&f->t, &err), 0);
    molt_trust_configure(&f->t, &f->conf, f->state);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    molt_trust_cleanup(&f->t);
    tp_env_teardown(&f->env);
    free(f);
    return 0;
}

/* A channel 'stable' of serial: 20.2-1 (statement A) at 100%, 20.3-1
 * (statement B) at 0%; written and signed with key (NULL: unsigned). */
static void channel(int64_t serial, const char *key, char **doc, size_t *doc_len, char **sig,
                    size_t *sig_len)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel_build b[2] = {
        { .version = "20.2-1", .os = "linux", .arch = "amd64", .percent = 100 },
        { .version = "20.3-1", .os = "linux", .arch = "amd64", .percent = 0 },
    };
    struct molt_channel ch = { .name = "stable", .serial = serial, .issued_ms = ISSUED,
                               .expires_ms = ISSUED + 86400000, .builds = b, .nbuilds = 2 };

    assert_int_equal(molt_pkg_sha256_buf(STMT_A, strlen(STMT_A), b[0].statement_sha256, &err), 0);
    assert_int_equal(molt_pkg_sha256_buf(STMT_B, strlen(STMT_B), b[1].statement_sha256, &err), 0);
    assert_int_equal(molt_channel_format(&ch, doc, doc_len, &err), 0);
    *sig = NULL;
    *sig_len = 0;
    if (key)
        assert_int_equal(molt_pkg_sig_create(key, *doc, *doc_len, sig, sig_len, &err), 0);
}

static int offer(struct fx *f, int64_t serial, const char *key, struct molt_err *err)
{
    char *doc, *sig;
    size_t dl, sl;
    int rc;

    channel(serial, key, &doc, &dl, &sig, &sl);
    rc = molt_trust_offer(&f->t, doc, dl, sig ? sig : "", sl, NOW, err);
    free(doc);
    free(sig);
    return rc;
}

static int admit(struct fx *f, int local, const char *version, const char *stmt,
                 struct molt_err *err)
{
    return molt_trust_admit(&f->t, NOW, "0123456789abcdef0123456789abcdef", local, version,
                            "linux", "amd64", stmt, strlen(stmt), err);
}

static void expect_view(struct fx *f, const char *state, int64_t serial)
{
    struct molt_hb_channel v;

    molt_trust_view(&f->t, NOW, &v);
    assert_string_equal(v.name, "stable");
    assert_string_equal(v.state, state);
    assert_int_equal(v.serial, serial);
}

static void expect_error(int rc, const struct molt_err *err, const char *needle)
{
    assert_true(rc < 0);
    if (!strstr(err->msg, needle))
        fail_msg("'%s' does not contain '%s'", err->msg, needle);
}

static void test_none_then_accepted(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;

    expect_view(f, "none", 0);
    expect_error(admit(f, 0, "20.2-1", STMT_A, &err), &err,
                 "no release channel 'stable' accepted yet");
    assert_true(molt_trust_wants(&f->t, 7, 0));
    assert_false(molt_trust_wants(&f->t, 0, 0));
    assert_int_equal(offer(f, 7, f->env.key, &err), 0);
    expect_view(f, "ok", 7);
    assert_false(molt_trust_wants(&f->t, 7, 0));
    assert_true(molt_trust_wants(&f->t, 8, 0));
    assert_int_equal(admit(f, 0, "20.2-1", STMT_A, &err), 0);
    expect_error(admit(f, 0, "20.2-2", STMT_A, &err), &err, "20.2-2 is not in channel 'stable'");
    expect_error(admit(f, 0, "20.2-1", STMT_B, &err), &err,
                 "statement of 20.2-1 linux/amd64 is not the one channel 'stable' lists");
    /* 20.3-1 is at 0%: refused to the control plane, admitted to the host's operator */
    expect_error(admit(f, 0, "20.3-1", STMT_B, &err), &err, "outside the 0% rollout of 20.3-1");
    assert_int_equal(admit(f, 1, "20.3-1", STMT_B, &err), 0);
    /* expiry holds on every path */
    assert_int_equal(molt_trust_admit(&f->t, ISSUED + 86400000, "", 1, "20.2-1", "linux",
                                      "amd64", STMT_A, strlen(STMT_A), &err), MOLT_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired"));
}

static void test_replay_and_restart(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(offer(f, 7, f->env.key, &err), 0);
    expect_error(offer(f, 5, f->env.key, &err), &err,
                 "serial 5 is older than serial 7 accepted before (replay refused)");
    expect_view(f, "ok", 7);
    /* a restart: the kept serial still refuses the replay */
    molt_trust_configure(&f->t, &f->conf, f->state);
    expect_view(f, "ok", 7);
    expect_error(offer(f, 6, f->env.key, &err), &err, "replay refused");
    assert_int_equal(offer(f, 7, f->env.key, &err), 0); /* the same bytes again: no change */
    assert_int_equal(offer(f, 9, f->env.key, &err), 0);
    expect_view(f, "ok", 9);
}

static void test_bad_documents_keep_the_previous(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(offer(f, 7, f->env.key, &err), 0);
    expect_error(offer(f, 8, NULL, &err), &err, "channel: signature");
    expect_error(offer(f, 8, f->env.other_key, &err), &err, "channel: signature");
    expect_error(molt_trust_offer(&f->t, "{", 1, "x", 1, NOW, &err), &err, "channel: ");
    expect_view(f, "ok", 7);
    assert_int_equal(admit(f, 0, "20.2-1", STMT_A, &err), 0);
}

static void test_lapsed_and_corrupt(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX + 16];
    FILE *fp;
    DIR *d;
    struct dirent *e;
    int aside = 0;

    assert_int_equal(offer(f, 7, f->env.key, &err), 0);
    /* threshold 2: the kept channel, signed by one key, lapses; its serial stays */
    f->conf.trust.signature_threshold = 2;
    molt_trust_configure(&f->t, &f->conf, f->state);
    expect_view(f, "lapsed", 7);
    expect_error(admit(f, 0, "20.2-1", STMT_A, &err), &err,
                 "channel 'stable' serial 7 no longer verifies");
    assert_true(molt_trust_wants(&f->t, 7, 0)); /* the same serial, signed anew, may come */
    expect_error(offer(f, 6, f->env.key, &err), &err, "1 of 2 required signatures");
    /* a corrupt kept file is set aside, and nothing is in force */
    f->conf.trust.signature_threshold = 1;
    snprintf(path, sizeof(path), "%s/channel.json", f->state);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{not json", fp);
    fclose(fp);
    molt_trust_configure(&f->t, &f->conf, f->state);
    expect_view(f, "none", 0);
    d = opendir(f->state);
    assert_non_null(d);
    while ((e = readdir(d)))
        aside += strncmp(e->d_name, "channel.json.corrupt-", 21) == 0;
    closedir(d);
    assert_int_equal(aside, 1);
    assert_int_equal(offer(f, 3, f->env.key, &err), 0);
    expect_view(f, "ok", 3);
}

static void test_off(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;

    snprintf(f->conf.trust.channel, sizeof(f->conf.trust.channel), "off");
    molt_trust_configure(&f->t, &f->conf, f->state);
    expect_view(f, "off", 0);
    assert_false(molt_trust_wants(&f->t, 7, 0));
    assert_int_equal(admit(f, 0, "9.9-9", STMT_B, &err), 0);
}

/* A keyring of serial delegating key B (other_keys) until b_expires (0: not
 * at all), signed by sign_key; offered at now. */
static int offer_keyring(struct fx *f, int64_t serial, int64_t b_expires, const char *sign_key,
                         int64_t now, struct molt_err *err)
{
    struct molt_err e = MOLT_ERR_INIT;
    struct molt_keyring kr = { .serial = serial, .issued_ms = ISSUED,
                               .expires_ms = ISSUED + 3650LL * 86400000 };
    char pub[PATH_MAX + 32], *doc = NULL, *sig = NULL;
    size_t dl = 0, sl = 0;
    int rc;

    if (b_expires) {
        struct molt_keyring_key *k = &kr.keys[kr.nkeys++];
        char id[MOLT_PKG_KEYID_SIZE];
        assert_int_equal(molt_pkg_key_id_file(f->env.other_key, id, &e), 0);
        snprintf(pub, sizeof(pub), "%s/%s.pub", f->env.other_keys, id);
        assert_int_equal(molt_pkg_key_raw_file(pub, k->raw, &e), 0);
        assert_int_equal(molt_pkg_key_id_raw(k->raw, k->keyid, &e), 0);
        k->expires_ms = b_expires;
    }
    assert_int_equal(molt_keyring_format(&kr, &doc, &dl, &e), 0);
    assert_int_equal(molt_pkg_sig_create(sign_key, doc, dl, &sig, &sl, &e), 0);
    rc = molt_trust_keyring_offer(&f->t, doc, dl, sig, sl, now, err);
    free(doc);
    free(sig);
    return rc;
}

static void test_keyring_rotation_and_revocation(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    const int64_t far = ISSUED + 3000LL * 86400000;

    /* without a keyring, key B counts for nothing */
    expect_error(offer(f, 7, f->env.other_key, &err), &err, "channel: signature");
    assert_true(molt_trust_keyring_wants(&f->t, 1, 0));
    assert_false(molt_trust_keyring_wants(&f->t, 0, 0));
    /* root delegates B: a channel signed by B alone is accepted */
    assert_int_equal(offer_keyring(f, 1, far, f->root_key, NOW, &err), 0);
    assert_int_equal(molt_trust_keyring_serial(&f->t), 1);
    assert_false(molt_trust_keyring_wants(&f->t, 1, 0));
    assert_int_equal(offer(f, 7, f->env.other_key, &err), 0);
    expect_view(f, "ok", 7);
    assert_int_equal(admit(f, 0, "20.2-1", STMT_A, &err), 0);
    /* kept across a restart */
    molt_trust_configure(&f->t, &f->conf, f->state);
    assert_int_equal(molt_trust_keyring_serial(&f->t), 1);
    expect_view(f, "ok", 7);
    /* bad keyrings: the one in force stays */
    expect_error(offer_keyring(f, 2, 0, f->env.key, NOW, &err), &err,
                 "keyring: signature: 0 of 1 required signatures");
    expect_error(molt_trust_keyring_offer(&f->t, "{", 1, "x", 1, NOW, &err), &err, "keyring: ");
    expect_view(f, "ok", 7);
    /* revocation: serial 2 without B; the channel signed by B lapses at once */
    assert_int_equal(offer_keyring(f, 2, 0, f->root_key, NOW, &err), 0);
    expect_view(f, "lapsed", 7);
    expect_error(admit(f, 0, "20.2-1", STMT_A, &err), &err, "no longer verifies");
    expect_error(offer(f, 8, f->env.other_key, &err), &err, "channel: signature");
    /* a replayed keyring 1 (which delegated B) is refused */
    expect_error(offer_keyring(f, 1, far, f->root_key, NOW, &err), &err,
                 "keyring 'release' serial 1 is older than serial 2 accepted before (replay "
                 "refused)");
    expect_error(offer(f, 8, f->env.other_key, &err), &err, "channel: signature");
    /* the pinned key still counts */
    assert_int_equal(offer(f, 8, f->env.key, &err), 0);
    expect_view(f, "ok", 8);
}

static void test_keyring_key_expiry(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_hb_channel v;

    assert_int_equal(offer_keyring(f, 1, NOW + 500, f->root_key, NOW, &err), 0);
    assert_int_equal(offer(f, 7, f->env.other_key, &err), 0);
    assert_int_equal(admit(f, 0, "20.2-1", STMT_A, &err), 0);
    /* once B expired, its channel lapses and no upgrade is admitted */
    assert_int_equal(molt_trust_admit(&f->t, NOW + 600, "", 1, "20.2-1", "linux", "amd64",
                                      STMT_A, strlen(STMT_A), &err), MOLT_E_VERIFY);
    assert_non_null(strstr(err.msg, "no longer verifies"));
    molt_trust_view(&f->t, NOW + 600, &v);
    assert_string_equal(v.state, "lapsed");
}

static void test_keyring_without_root(void **state)
{
    struct fx *f = *state;
    struct molt_err err = MOLT_ERR_INIT;
    char root[PATH_MAX + 8];

    snprintf(root, sizeof(root), "%s/root", f->env.keys);
    tu_rmtree(root);
    molt_trust_configure(&f->t, &f->conf, f->state);
    assert_false(molt_trust_keyring_wants(&f->t, 5, 0)); /* nothing could verify it */
    assert_int_equal(offer(f, 7, f->env.key, &err), 0);
    expect_view(f, "ok", 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_none_then_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_documents_keep_the_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_rotation_and_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_key_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_without_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
