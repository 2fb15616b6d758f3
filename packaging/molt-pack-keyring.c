/* molt-pack-keyring.c: molt-pack keyring: create and edit the release keyring
 * (the release keys the root keys delegate to, each with an expiry), sign it
 * with root keys, verify and show it (docs/security.md 6.6). Every edit writes
 * serial + 1 and drops the now stale signature file; the document is written
 * reproducibly by molt_keyring_format. Exit status as molt-pack's. */
#include "molt-pack-keyring.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "fs.h"
#include "pack_cli.h"
#include "host.h"
#include "keyring.h"
#include "molt-pack-channel.h"
#include "sigset.h"

#define DAY_MS (24LL * 3600 * 1000)
#define DEFAULT_KEYRING_DAYS 365
#define DEFAULT_KEY_DAYS 365
#define MAX_SIGN_KEYS 16

static const char usage[] =
    "Usage: molt-pack keyring SUBCOMMAND [OPTIONS] KEYRING [SIGNATURE]\n"
    "Edits, signs and verifies the release keyring: the release keys that the root keys\n"
    "(keys_dir/root on hosts) delegate to. See molt-pack(1).\n"
    "Each edit writes serial + 1, issued = now, and removes KEYRING.sig.\n"
    "\n"
    "Subcommands:\n"
    "  create [--serial S] [--expires-days D] KEYRING\n"
    "                         a new, empty keyring valid D days (default 365)\n"
    "  add --pub FILE [--expires-days D] KEYRING\n"
    "                         delegate the release key FILE (PEM public key) for D days\n"
    "                         (default 365), replacing its entry if listed\n"
    "  remove --keyid ID KEYRING\n"
    "                         revoke a release key: hosts stop counting its signatures\n"
    "  sign --key ROOTKEY [--key ROOTKEY ...] [--append] KEYRING\n"
    "                         write KEYRING.sig with root keys; --append keeps the other\n"
    "                         keys' lines already there\n"
    "  verify --keys ROOTDIR [--threshold N] KEYRING [SIGNATURE]\n"
    "                         verify as an agent would (refused once expired)\n"
    "  show KEYRING           print the keyring (not verified)\n"
    "\n"
    "Options:\n"
    "      --now MS           the time to use, ms since the epoch (default: now)\n"
    "  -q, --quiet            print nothing on success\n";

enum { OPT_SERIAL = 256, OPT_EXPIRES_DAYS, OPT_PUB, OPT_KEYID, OPT_APPEND, OPT_KEYS,
       OPT_THRESHOLD, OPT_NOW };

struct kargs {
    const char *pub, *keyid, *keys_dir;
    const char *keys[MAX_SIGN_KEYS];
    int nkeys, append, quiet, threshold;
    long long serial, expires_days, now; /* -1: not given */
    char **rest;
    int nrest;
};

static int fail(const char *cmd, const struct molt_err *err)
{
    return molt_pack_fail("keyring", cmd, err);
}

static int usage_error(const char *what, const char *arg)
{
    return molt_pack_usage_error("keyring", what, arg);
}

static int number(const char *opt, const char *s, long long min, long long max, long long *out)
{
    return molt_pack_number("keyring", opt, s, min, max, out);
}

static int parse_args(int argc, char **argv, struct kargs *a)
{
    static const struct option opts[] = {
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"expires-days", required_argument, NULL, OPT_EXPIRES_DAYS},
        {"pub", required_argument, NULL, OPT_PUB},
        {"keyid", required_argument, NULL, OPT_KEYID},
        {"key", required_argument, NULL, 'k'},
        {"append", no_argument, NULL, OPT_APPEND},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"now", required_argument, NULL, OPT_NOW},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long long t = 0;
    int c, rc = 0;

    memset(a, 0, sizeof(*a));
    a->serial = a->expires_days = a->now = -1;
    a->threshold = 1;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "k:qh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PUB:
            a->pub = optarg;
            break;
        case OPT_KEYID:
            a->keyid = optarg;
            break;
        case OPT_KEYS:
            a->keys_dir = optarg;
            break;
        case OPT_APPEND:
            a->append = 1;
            break;
        case 'q':
            a->quiet = 1;
            break;
        case OPT_SERIAL:
            rc = number("--serial", optarg, 1, INT64_MAX, &a->serial);
            break;
        case OPT_EXPIRES_DAYS:
            rc = number("--expires-days", optarg, 1, 3650, &a->expires_days);
            break;
        case OPT_NOW:
            rc = number("--now", optarg, 1, INT64_MAX / 2, &a->now);
            break;
        case OPT_THRESHOLD:
            rc = number("--threshold", optarg, 1, MOLT_SIGSET_MAX_THRESHOLD, &t);
            a->threshold = (int)t;
            break;
        case 'k':
            if (a->nkeys == MAX_SIGN_KEYS)
                return usage_error("sign: too many --key", NULL);
            a->keys[a->nkeys++] = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            return usage_error("unknown option or missing value: ", argv[optind - 1]);
        }
    }
    a->rest = argv + optind;
    a->nrest = argc - optind;
    if (a->now < 0)
        a->now = molt_host_realtime_ms();
    return rc;
}

static int sig_path(char *out, size_t n, const char *base, struct molt_err *err)
{
    if (snprintf(out, n, "%s.sig", base) >= (int)n)
        return molt_err_set(err, MOLT_E_LIMIT, "%s: path too long", base);
    return 0;
}

/* Reads an existing keyring without verifying it: edits are made by its owner
 * on the signing machine, and every edit is signed again afterwards. */
static int read_keyring(const char *path, struct molt_keyring *kr, struct molt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = molt_fs_read_file(path, MOLT_KEYRING_MAX, &text, &len, err);

    if (rc == 0 && (rc = molt_keyring_parse(text, len, kr, err)) < 0)
        molt_err_prefix(err, "%s", path);
    free(text);
    return rc;
}

/* Writes kr as issued now, valid validity_ms, and removes the stale signature. */
static int write_keyring(const struct kargs *a, const char *path, struct molt_keyring *kr,
                         int64_t validity_ms, struct molt_err *err)
{
    char sigpath[PATH_MAX], *text = NULL;
    size_t len = 0;
    int rc;

    kr->issued_ms = a->now;
    kr->expires_ms = a->now + validity_ms;
    rc = molt_keyring_format(kr, &text, &len, err);
    if (rc == 0)
        rc = sig_path(sigpath, sizeof(sigpath), path, err);
    if (rc == 0)
        rc = molt_fs_write_atomic(path, text, len, 0644, err);
    if (rc == 0 && unlink(sigpath) < 0 && errno != ENOENT)
        rc = molt_err_errno(err, "remove the stale %s", sigpath);
    free(text);
    if (rc == 0 && !a->quiet)
        printf("%s: keyring serial %lld, %zu key%s (unsigned: run molt-pack keyring sign)\n", path,
               (long long)kr->serial, kr->nkeys, kr->nkeys == 1 ? "" : "s");
    return rc;
}

static int edit_keyring(const struct kargs *a, const char *cmd,
                        int (*edit)(const struct kargs *, struct molt_keyring *,
                                    struct molt_err *))
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring *kr = calloc(1, sizeof(*kr));
    int rc;

    if (!kr) {
        molt_err_set(&err, MOLT_E_NOMEM, "out of memory");
        return fail(cmd, &err);
    }
    rc = read_keyring(a->rest[0], kr, &err);
    if (rc == 0)
        rc = edit(a, kr, &err);
    if (rc == 0 && kr->serial == INT64_MAX)
        rc = molt_err_set(&err, MOLT_E_LIMIT, "serial %lld is the last one", (long long)kr->serial);
    if (rc == 0) {
        int64_t validity = kr->expires_ms - kr->issued_ms;
        kr->serial++;
        rc = write_keyring(a, a->rest[0], kr, validity, &err);
    }
    free(kr);
    return rc < 0 ? fail(cmd, &err) : 0;
}

static int edit_add(const struct kargs *a, struct molt_keyring *kr, struct molt_err *err)
{
    struct molt_keyring_key k = {.expires_ms = 0};
    const struct molt_keyring_key *found;
    int rc = molt_pkg_key_raw_file(a->pub, k.raw, err);

    if (rc == 0)
        rc = molt_pkg_key_id_raw(k.raw, k.keyid, err);
    if (rc < 0)
        return molt_err_prefix(err, "--pub %s", a->pub);
    k.expires_ms = a->now + (a->expires_days > 0 ? a->expires_days : DEFAULT_KEY_DAYS) * DAY_MS;
    found = molt_keyring_find(kr, k.keyid);
    if (!found && kr->nkeys == MOLT_KEYRING_MAX_KEYS)
        return molt_err_set(err, MOLT_E_LIMIT, "already %d keys", MOLT_KEYRING_MAX_KEYS);
    kr->keys[found ? (size_t)(found - kr->keys) : kr->nkeys++] = k;
    if (!a->quiet)
        printf("key %s delegated until %lld\n", k.keyid, (long long)k.expires_ms);
    return 0;
}

static int edit_remove(const struct kargs *a, struct molt_keyring *kr, struct molt_err *err)
{
    const struct molt_keyring_key *found = molt_keyring_find(kr, a->keyid);
    size_t i;

    if (!found)
        return molt_err_set(err, MOLT_E_NOTFOUND, "key %s is not in the keyring", a->keyid);
    i = (size_t)(found - kr->keys);
    memmove(&kr->keys[i], &kr->keys[i + 1], (kr->nkeys - i - 1) * sizeof(kr->keys[0]));
    kr->nkeys--;
    return 0;
}

static int cmd_create(const struct kargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring *kr;
    int rc;

    if (a->nrest != 1)
        return usage_error("create: needs KEYRING", NULL);
    if (molt_fs_exists(a->rest[0])) {
        molt_err_set(&err, MOLT_E_STATE, "%s exists already", a->rest[0]);
        return fail("create", &err);
    }
    kr = calloc(1, sizeof(*kr));
    if (!kr)
        return usage_error("out of memory", NULL);
    kr->serial = a->serial > 0 ? a->serial : 1;
    rc = write_keyring(a, a->rest[0], kr,
                       (a->expires_days > 0 ? a->expires_days : DEFAULT_KEYRING_DAYS) * DAY_MS,
                       &err);
    free(kr);
    return rc < 0 ? fail("create", &err) : 0;
}

static int cmd_add(const struct kargs *a)
{
    if (!a->pub || a->nrest != 1)
        return usage_error("add: needs --pub FILE KEYRING", NULL);
    return edit_keyring(a, "add", edit_add);
}

static int cmd_remove(const struct kargs *a)
{
    if (!a->keyid || a->nrest != 1)
        return usage_error("remove: needs --keyid ID KEYRING", NULL);
    return edit_keyring(a, "remove", edit_remove);
}

static int cmd_sign(const struct kargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring *kr = calloc(1, sizeof(*kr));
    char sigpath[PATH_MAX], *doc = NULL;
    size_t doc_len = 0;
    int n = 0, rc = kr ? 0 : molt_err_set(&err, MOLT_E_NOMEM, "out of memory");

    if (a->nkeys == 0 || a->nrest != 1) {
        free(kr);
        return usage_error("sign: needs --key ROOTKEY [--key ROOTKEY ...] KEYRING", NULL);
    }
    if (rc == 0)
        rc = sig_path(sigpath, sizeof(sigpath), a->rest[0], &err);
    if (rc == 0)
        rc = molt_fs_read_file(a->rest[0], MOLT_KEYRING_MAX, &doc, &doc_len, &err);
    /* Sign only a well-formed keyring. */
    if (rc == 0)
        rc = molt_keyring_parse(doc, doc_len, kr, &err);
    if (rc == 0)
        rc = molt_pack_sign_set(a->keys, a->nkeys, a->append, doc, doc_len, sigpath, &n, &err);
    free(doc);
    free(kr);
    if (rc < 0)
        return fail("sign", &err);
    if (!a->quiet)
        printf("%s: %d signature%s\n", sigpath, n, n == 1 ? "" : "s");
    return 0;
}

static int cmd_verify(const struct kargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring *kr = calloc(1, sizeof(*kr));
    char sigpath[PATH_MAX], when[32], *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    int rc = kr ? 0 : molt_err_set(&err, MOLT_E_NOMEM, "out of memory");

    if (!a->keys_dir || (a->nrest != 1 && a->nrest != 2)) {
        free(kr);
        return usage_error("verify: needs --keys ROOTDIR KEYRING [SIGNATURE]", NULL);
    }
    if (rc == 0 && a->nrest == 2)
        snprintf(sigpath, sizeof(sigpath), "%s", a->rest[1]);
    else if (rc == 0)
        rc = sig_path(sigpath, sizeof(sigpath), a->rest[0], &err);
    if (rc == 0)
        rc = molt_fs_read_file(a->rest[0], MOLT_KEYRING_MAX, &doc, &doc_len, &err);
    if (rc == 0 && molt_fs_exists(sigpath))
        rc = molt_fs_read_file(sigpath, MOLT_SIGSET_MAX, &sig, &sig_len, &err);
    if (rc == 0)
        rc = molt_keyring_load(a->keys_dir, a->threshold, doc, doc_len, sig, sig_len, kr, &err);
    if (rc == 0 && a->now >= kr->expires_ms) {
        molt_channel_time_str(kr->expires_ms, when);
        rc = molt_err_set(&err, MOLT_E_VERIFY, "keyring serial %lld expired at %s",
                          (long long)kr->serial, when);
    }
    if (rc == 0 && !a->quiet) {
        size_t valid = 0;
        for (size_t i = 0; i < kr->nkeys; i++)
            valid += (size_t)molt_keyring_key_valid(kr, &kr->keys[i], a->now);
        molt_channel_time_str(kr->expires_ms, when);
        printf("OK %s: keyring serial %lld, %zu keys (%zu valid now), expires %s\n", a->rest[0],
               (long long)kr->serial, kr->nkeys, valid, when);
    }
    free(doc);
    free(sig);
    free(kr);
    return rc < 0 ? fail("verify", &err) : 0;
}

static int cmd_show(const struct kargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_keyring *kr = calloc(1, sizeof(*kr));
    char issued[32], expires[32];

    if (a->nrest != 1 || !kr) {
        free(kr);
        return usage_error("show: needs KEYRING", NULL);
    }
    if (read_keyring(a->rest[0], kr, &err) < 0) {
        free(kr);
        return fail("show", &err);
    }
    molt_channel_time_str(kr->issued_ms, issued);
    molt_channel_time_str(kr->expires_ms, expires);
    printf("keyring %s (not verified: see molt-pack keyring verify)\n", MOLT_KEYRING_NAME);
    printf("serial  %lld\nissued  %s\nexpires %s%s\n", (long long)kr->serial, issued, expires,
           a->now >= kr->expires_ms ? " (expired)" : "");
    for (size_t i = 0; i < kr->nkeys; i++) {
        molt_channel_time_str(kr->keys[i].expires_ms, expires);
        printf("key     %s until %s%s\n", kr->keys[i].keyid, expires,
               molt_keyring_key_valid(kr, &kr->keys[i], a->now) ? "" : " (expired)");
    }
    free(kr);
    return 0;
}

int molt_pack_keyring(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const struct kargs *);
    } cmds[] = {
        {"create", cmd_create}, {"add", cmd_add},       {"remove", cmd_remove},
        {"sign", cmd_sign},     {"verify", cmd_verify}, {"show", cmd_show},
    };
    struct kargs a;
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        rc = parse_args(argc - 1, argv + 1, &a);
        return rc ? rc : cmds[i].fn(&a);
    }
    return usage_error("unknown subcommand: ", argv[1]);
}
