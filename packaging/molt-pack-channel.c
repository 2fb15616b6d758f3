/* molt-pack-channel.c: molt-pack channel: create and edit a release channel
 * document, sign it with one or more release keys, verify and show it
 * (docs/security.md, section 6). Every edit writes a new serial and drops the
 * now stale signature file; the document is written reproducibly by
 * molt_channel_format. Exit status as molt-pack's: 0, 1 failure, 2 usage. */
#include "molt-pack-channel.h"

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
#include "package.h"
#include "sigset.h"

#define DAY_MS (24LL * 3600 * 1000)
#define DEFAULT_VALIDITY_DAYS 30
#define MAX_KEYS 16

static const char usage[] =
    "Usage: molt-pack channel SUBCOMMAND [OPTIONS] CHANNEL [ARGS]\n"
    "Edits, signs and verifies a release channel document. See molt-pack(1).\n"
    "Each edit writes serial + 1, issued = now, a new expiry, and removes CHANNEL.sig.\n"
    "\n"
    "Subcommands:\n"
    "  create --name N [--serial S] [--floor F] [--expires-days D] CHANNEL\n"
    "                         a new, empty channel (serial 1 unless --serial)\n"
    "  add [--percent P] [--not-before MS] CHANNEL STATEMENT\n"
    "                         list the build STATEMENT describes (bound to its sha256),\n"
    "                         replacing the entry of the same version/os/arch\n"
    "  remove --version V [--os O] [--arch A] CHANNEL\n"
    "                         unlist V (on every os/arch unless given)\n"
    "  floor --version F CHANNEL\n"
    "                         no host installs below F ('' clears); refused while builds\n"
    "                         below F are listed\n"
    "  rollout --version V [--os O] [--arch A] [--percent P] [--not-before MS] CHANNEL\n"
    "                         change V's rollout\n"
    "  renew CHANNEL          a new serial and expiry, nothing else\n"
    "  sign --key KEY [--key KEY ...] [--append] CHANNEL\n"
    "                         write CHANNEL.sig, one signature line per key; --append keeps\n"
    "                         the other keys' lines already there\n"
    "  verify --keys DIR [--threshold N] [--name N] [--machine-id ID --version V\n"
    "         --os O --arch A --statement STATEMENT] CHANNEL [SIGNATURE]\n"
    "                         verify as an agent would (refused once expired); with\n"
    "                         --machine-id, also whether that host may apply the build\n"
    "  show CHANNEL           print the channel (not verified)\n"
    "\n"
    "Options:\n"
    "      --expires-days D   every edit: validity from now (default: the channel's\n"
    "                         current validity; create: 30)\n"
    "      --now MS           the time to use, ms since the epoch (default: now)\n"
    "  -q, --quiet            print nothing on success\n";

enum {
    OPT_NAME = 256,
    OPT_SERIAL,
    OPT_FLOOR,
    OPT_EXPIRES_DAYS,
    OPT_NOW,
    OPT_PERCENT,
    OPT_NOT_BEFORE,
    OPT_VERSION,
    OPT_OS,
    OPT_ARCH,
    OPT_APPEND,
    OPT_KEYS,
    OPT_THRESHOLD,
    OPT_MACHINE_ID,
    OPT_STATEMENT,
};

struct cargs {
    const char *name, *floor, *version, *os, *arch, *keys_dir, *machine_id, *statement;
    const char *keys[MAX_KEYS];
    int nkeys, append, quiet, threshold;
    long long serial, expires_days, now, percent, not_before; /* -1: not given */
    char **rest;
    int nrest;
};

static int fail(const char *cmd, const struct molt_err *err)
{
    return molt_pack_fail("channel", cmd, err);
}

static int usage_error(const char *what, const char *arg)
{
    return molt_pack_usage_error("channel", what, arg);
}

static int number(const char *opt, const char *s, long long min, long long max, long long *out)
{
    return molt_pack_number("channel", opt, s, min, max, out);
}

static int parse_args(int argc, char **argv, struct cargs *a)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"floor", required_argument, NULL, OPT_FLOOR},
        {"expires-days", required_argument, NULL, OPT_EXPIRES_DAYS},
        {"now", required_argument, NULL, OPT_NOW},
        {"percent", required_argument, NULL, OPT_PERCENT},
        {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
        {"version", required_argument, NULL, OPT_VERSION},
        {"os", required_argument, NULL, OPT_OS},
        {"arch", required_argument, NULL, OPT_ARCH},
        {"key", required_argument, NULL, 'k'},
        {"append", no_argument, NULL, OPT_APPEND},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"machine-id", required_argument, NULL, OPT_MACHINE_ID},
        {"statement", required_argument, NULL, OPT_STATEMENT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long long t = 0;
    int c, rc = 0;

    memset(a, 0, sizeof(*a));
    a->serial = a->expires_days = a->now = a->percent = a->not_before = -1;
    a->threshold = 1;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "k:qh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_NAME:
            a->name = optarg;
            break;
        case OPT_FLOOR:
            a->floor = optarg;
            break;
        case OPT_VERSION:
            a->version = optarg;
            break;
        case OPT_OS:
            a->os = optarg;
            break;
        case OPT_ARCH:
            a->arch = optarg;
            break;
        case OPT_KEYS:
            a->keys_dir = optarg;
            break;
        case OPT_MACHINE_ID:
            a->machine_id = optarg;
            break;
        case OPT_STATEMENT:
            a->statement = optarg;
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
        case OPT_PERCENT:
            rc = number("--percent", optarg, 0, 100, &a->percent);
            break;
        case OPT_NOT_BEFORE:
            rc = number("--not-before", optarg, 0, INT64_MAX, &a->not_before);
            break;
        case OPT_THRESHOLD:
            rc = number("--threshold", optarg, 1, MOLT_SIGSET_MAX_THRESHOLD, &t);
            a->threshold = (int)t;
            break;
        case 'k':
            if (a->nkeys == MAX_KEYS)
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

/* ---- reading and writing the document ----------------------------------------- */

static int path_with(char *out, size_t n, const char *base, const char *suffix,
                     struct molt_err *err)
{
    if (snprintf(out, n, "%s%s", base, suffix) >= (int)n)
        return molt_err_set(err, MOLT_E_LIMIT, "%s: path too long", base);
    return 0;
}

/* Reads an existing channel without verifying it: edits are made by its owner
 * on the signing machine, and every edit is signed again afterwards. */
static int read_channel(const char *path, struct molt_channel *ch, struct molt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = molt_fs_read_file(path, MOLT_CHANNEL_MAX, &text, &len, err);

    if (rc == 0 && (rc = molt_channel_parse(text, len, ch, err)) < 0)
        molt_err_prefix(err, "%s", path);
    free(text);
    return rc;
}

/* Writes ch as the next serial, issued now, and removes the stale signature. */
static int write_next(const struct cargs *a, const char *path, struct molt_channel *ch,
                      int64_t validity_ms, struct molt_err *err)
{
    char sigpath[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    ch->issued_ms = a->now;
    ch->expires_ms = a->now + (a->expires_days > 0 ? a->expires_days * DAY_MS : validity_ms);
    rc = molt_channel_format(ch, &text, &len, err);
    if (rc == 0)
        rc = path_with(sigpath, sizeof(sigpath), path, ".sig", err);
    if (rc == 0)
        rc = molt_fs_write_atomic(path, text, len, 0644, err);
    if (rc == 0 && unlink(sigpath) < 0 && errno != ENOENT)
        rc = molt_err_errno(err, "remove the stale %s", sigpath);
    free(text);
    if (rc == 0 && !a->quiet)
        printf("%s: channel '%s' serial %lld (unsigned: run molt-pack channel sign)\n", path,
               ch->name, (long long)ch->serial);
    return rc;
}

/* Reads, lets edit() change it, bumps the serial and writes it back. */
static int edit_channel(const struct cargs *a, const char *cmd,
                        int (*edit)(const struct cargs *, struct molt_channel *, struct molt_err *))
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch = {0};
    int64_t validity;
    int rc;

    if (a->nrest < 1)
        return usage_error(cmd, ": needs CHANNEL");
    rc = read_channel(a->rest[0], &ch, &err);
    if (rc < 0)
        return fail(cmd, &err);
    validity = ch.expires_ms - ch.issued_ms;
    rc = edit(a, &ch, &err);
    if (rc == 0 && ch.serial == INT64_MAX)
        rc = molt_err_set(&err, MOLT_E_LIMIT, "serial %lld is the last one", (long long)ch.serial);
    if (rc == 0) {
        ch.serial++;
        rc = write_next(a, a->rest[0], &ch, validity, &err);
    }
    molt_channel_free(&ch);
    return rc < 0 ? fail(cmd, &err) : 0;
}

/* ---- edits ------------------------------------------------------------------ */

static int matches(const struct cargs *a, const struct molt_channel_build *b)
{
    return strcmp(b->version, a->version) == 0 && (!a->os || strcmp(b->os, a->os) == 0) &&
           (!a->arch || strcmp(b->arch, a->arch) == 0);
}

static int edit_add(const struct cargs *a, struct molt_channel *ch, struct molt_err *err)
{
    struct molt_channel_build nb = {.percent = 100}, *slot;
    struct molt_statement st;
    struct molt_channel_build *grown;
    const struct molt_channel_build *found;
    char *text = NULL;
    size_t len = 0;
    int rc = molt_fs_read_file(a->rest[1], MOLT_PKG_STATEMENT_MAX, &text, &len, err);

    if (rc == 0)
        rc = molt_pkg_statement_parse(text, len, &st, err);
    if (rc == 0)
        rc = molt_pkg_sha256_buf(text, len, nb.statement_sha256, err);
    free(text);
    if (rc < 0)
        return molt_err_prefix(err, "%s", a->rest[1]);
    snprintf(nb.version, sizeof(nb.version), "%s", st.version);
    snprintf(nb.os, sizeof(nb.os), "%s", st.os);
    snprintf(nb.arch, sizeof(nb.arch), "%s", st.arch);
    if (a->percent >= 0)
        nb.percent = (int)a->percent;
    if (a->not_before >= 0)
        nb.not_before_ms = a->not_before;
    found = molt_channel_find(ch, nb.version, nb.os, nb.arch);
    slot = found ? &ch->builds[found - ch->builds] : NULL;
    if (!slot) {
        grown = realloc(ch->builds, (ch->nbuilds + 1) * sizeof(*grown));
        if (!grown)
            return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
        ch->builds = grown;
        slot = &ch->builds[ch->nbuilds++];
    }
    *slot = nb;
    return 0;
}

static int edit_remove(const struct cargs *a, struct molt_channel *ch, struct molt_err *err)
{
    size_t kept = 0;

    if (!a->version)
        return molt_err_set(err, MOLT_E_INVAL, "--version V is required");
    for (size_t i = 0; i < ch->nbuilds; i++) {
        if (!matches(a, &ch->builds[i]))
            ch->builds[kept++] = ch->builds[i];
    }
    if (kept == ch->nbuilds)
        return molt_err_set(err, MOLT_E_NOTFOUND, "%s %s/%s is not listed", a->version,
                            a->os ? a->os : "*", a->arch ? a->arch : "*");
    ch->nbuilds = kept;
    return 0;
}

static int edit_floor(const struct cargs *a, struct molt_channel *ch, struct molt_err *err)
{
    if (!a->version)
        return molt_err_set(err, MOLT_E_INVAL, "--version F is required ('' clears the floor)");
    if (strlen(a->version) >= sizeof(ch->floor))
        return molt_err_set(err, MOLT_E_INVAL, "--version: too long");
    snprintf(ch->floor, sizeof(ch->floor), "%s", a->version);
    /* molt_channel_format checks it: a floor above listed builds is refused there. */
    return 0;
}

static int edit_rollout(const struct cargs *a, struct molt_channel *ch, struct molt_err *err)
{
    int found = 0;

    if (!a->version || (a->percent < 0 && a->not_before < 0))
        return molt_err_set(err, MOLT_E_INVAL, "needs --version V and --percent or --not-before");
    for (size_t i = 0; i < ch->nbuilds; i++) {
        if (!matches(a, &ch->builds[i]))
            continue;
        found = 1;
        if (a->percent >= 0)
            ch->builds[i].percent = (int)a->percent;
        if (a->not_before >= 0)
            ch->builds[i].not_before_ms = a->not_before;
    }
    if (!found)
        return molt_err_set(err, MOLT_E_NOTFOUND, "%s %s/%s is not listed", a->version,
                            a->os ? a->os : "*", a->arch ? a->arch : "*");
    return 0;
}

static int edit_none(const struct cargs *a, struct molt_channel *ch, struct molt_err *err)
{
    (void)a;
    (void)ch;
    (void)err;
    return 0;
}

static int cmd_create(const struct cargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch = {.serial = a->serial > 0 ? a->serial : 1};
    int rc;

    if (!a->name || a->nrest != 1)
        return usage_error("create: needs --name N CHANNEL", NULL);
    if (molt_fs_exists(a->rest[0])) {
        molt_err_set(&err, MOLT_E_STATE, "%s exists already", a->rest[0]);
        return fail("create", &err);
    }
    if (strlen(a->name) >= sizeof(ch.name) || (a->floor && strlen(a->floor) >= sizeof(ch.floor)))
        return usage_error("create: --name or --floor too long", NULL);
    snprintf(ch.name, sizeof(ch.name), "%s", a->name);
    snprintf(ch.floor, sizeof(ch.floor), "%s", a->floor ? a->floor : "");
    rc = write_next(a, a->rest[0], &ch, DEFAULT_VALIDITY_DAYS * DAY_MS, &err);
    return rc < 0 ? fail("create", &err) : 0;
}

/* ---- signing and verifying ---------------------------------------------------- */

struct sigline {
    char keyid[MOLT_PKG_KEYID_SIZE];
    char *text; /* with its "\n" */
};

static int sigline_order(const void *pa, const void *pb)
{
    return strcmp(((const struct sigline *)pa)->keyid, ((const struct sigline *)pb)->keyid);
}

/* Keeps the existing lines of keys not being signed with now (--append). */
static int keep_old_lines(const char *sigpath, struct sigline *lines, int *n, int max,
                          struct molt_err *err)
{
    char *text = NULL, *p, *nl;
    size_t len = 0;
    int rc;

    if (!molt_fs_exists(sigpath))
        return 0;
    rc = molt_fs_read_file(sigpath, MOLT_SIGSET_MAX, &text, &len, err);
    for (p = text; rc == 0 && p && p < text + len; p = nl + 1) {
        struct molt_pkg_sig sig;
        int dup = 0;

        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl) {
            rc = molt_err_set(err, MOLT_E_PARSE, "%s: last line not terminated", sigpath);
            break;
        }
        if ((rc = molt_pkg_sig_parse(p, (size_t)(nl - p), &sig, err)) < 0)
            break;
        for (int i = 0; i < *n; i++)
            dup |= strcmp(lines[i].keyid, sig.keyid) == 0;
        if (dup)
            continue;
        if (*n == max) {
            rc = molt_err_set(err, MOLT_E_LIMIT, "%s: more than %d signatures", sigpath, max);
            break;
        }
        char *copy = strndup(p, (size_t)(nl - p + 1));
        if (!copy) {
            rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
            break;
        }
        memcpy(lines[*n].keyid, sig.keyid, sizeof(sig.keyid));
        lines[(*n)++].text = copy;
    }
    free(text);
    if (rc < 0)
        molt_err_prefix(err, "--append");
    return rc;
}

static int sign_lines(const char *const *keys, int nkeys, const char *doc, size_t doc_len,
                      struct sigline *lines, int *n, struct molt_err *err)
{
    for (int i = 0; i < nkeys; i++) {
        char *sig = NULL;
        size_t sig_len = 0;
        int rc = molt_pkg_sig_create(keys[i], doc, doc_len, &sig, &sig_len, err);
        if (rc == 0)
            rc = molt_pkg_key_id_file(keys[i], lines[*n].keyid, err);
        for (int j = 0; rc == 0 && j < *n; j++) {
            if (strcmp(lines[j].keyid, lines[*n].keyid) == 0)
                rc = molt_err_set(err, MOLT_E_INVAL, "key %s given twice", lines[j].keyid);
        }
        if (rc < 0) {
            free(sig);
            return rc;
        }
        lines[(*n)++].text = sig; /* owned by lines from here: the caller frees it */
    }
    return 0;
}

int molt_pack_sign_set(const char *const *keys, int nkeys, int append, const char *doc,
                       size_t doc_len, const char *sigpath, int *nsigs, struct molt_err *err)
{
    struct sigline lines[2 * MAX_KEYS] = {{"", NULL}};
    char *out = NULL;
    size_t used = 0;
    int n = 0, rc;

    if (nkeys > MAX_KEYS)
        return molt_err_set(err, MOLT_E_LIMIT, "more than %d keys", MAX_KEYS);
    rc = sign_lines(keys, nkeys, doc, doc_len, lines, &n, err);
    if (rc == 0 && append)
        rc = keep_old_lines(sigpath, lines, &n, 2 * MAX_KEYS, err);
    if (rc == 0) {
        qsort(lines, (size_t)n, sizeof(lines[0]), sigline_order);
        out = calloc(1, MOLT_SIGSET_MAX + 1);
        if (!out)
            rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t l = strlen(lines[i].text);
        if (used + l > MOLT_SIGSET_MAX)
            rc = molt_err_set(err, MOLT_E_LIMIT, "more than %d bytes of signatures",
                              MOLT_SIGSET_MAX);
        else
            memcpy(out + used, lines[i].text, l + 1);
        used += l;
    }
    if (rc == 0)
        rc = molt_fs_write_atomic(sigpath, out, used, 0644, err);
    for (int i = 0; i < n; i++)
        free(lines[i].text);
    free(out);
    if (rc == 0)
        *nsigs = n;
    return rc;
}

static int cmd_sign(const struct cargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch = {0};
    char sigpath[PATH_MAX], *doc = NULL;
    size_t doc_len = 0;
    int n = 0, rc;

    if (a->nkeys == 0 || a->nrest != 1)
        return usage_error("sign: needs --key KEY [--key KEY ...] CHANNEL", NULL);
    rc = path_with(sigpath, sizeof(sigpath), a->rest[0], ".sig", &err);
    if (rc == 0)
        rc = molt_fs_read_file(a->rest[0], MOLT_CHANNEL_MAX, &doc, &doc_len, &err);
    /* Sign only a well-formed channel. */
    if (rc == 0 && (rc = molt_channel_parse(doc, doc_len, &ch, &err)) == 0)
        molt_channel_free(&ch);
    if (rc == 0)
        rc = molt_pack_sign_set(a->keys, a->nkeys, a->append, doc, doc_len, sigpath, &n, &err);
    free(doc);
    if (rc < 0)
        return fail("sign", &err);
    if (!a->quiet)
        printf("%s: %d signature%s\n", sigpath, n, n == 1 ? "" : "s");
    return 0;
}

static int check_admits(const struct cargs *a, const struct molt_channel *ch, struct molt_err *err)
{
    char *stmt = NULL, hex[MOLT_PKG_SHA256_HEX];
    size_t len = 0;
    int rc;

    if (!a->version || !a->os || !a->arch || !a->statement)
        return molt_err_set(err, MOLT_E_INVAL,
                            "--machine-id needs --version, --os, --arch and --statement");
    rc = molt_fs_read_file(a->statement, MOLT_PKG_STATEMENT_MAX, &stmt, &len, err);
    if (rc == 0)
        rc = molt_pkg_sha256_buf(stmt, len, hex, err);
    free(stmt);
    if (rc == 0)
        rc = molt_channel_admits(ch, a->now, a->machine_id, a->version, a->os, a->arch, hex, err);
    if (rc == 0 && !a->quiet)
        printf("ADMITTED %s %s/%s on host %s (bucket %u)\n", a->version, a->os, a->arch,
               a->machine_id, molt_channel_bucket(a->machine_id, a->version));
    return rc;
}

static int cmd_verify(const struct cargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch = {0};
    char sigpath[PATH_MAX], when[32], *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    int rc;

    if (!a->keys_dir || (a->nrest != 1 && a->nrest != 2))
        return usage_error("verify: needs --keys DIR CHANNEL [SIGNATURE]", NULL);
    rc = path_with(sigpath, sizeof(sigpath), a->nrest == 2 ? a->rest[1] : a->rest[0],
                   a->nrest == 2 ? "" : ".sig", &err);
    if (rc == 0)
        rc = molt_fs_read_file(a->rest[0], MOLT_CHANNEL_MAX, &doc, &doc_len, &err);
    if (rc == 0 && molt_fs_exists(sigpath))
        rc = molt_fs_read_file(sigpath, MOLT_SIGSET_MAX, &sig, &sig_len, &err);
    if (rc == 0)
        rc = molt_channel_load(a->keys_dir, a->threshold, a->name, doc, doc_len, sig, sig_len, &ch,
                               &err);
    free(doc);
    free(sig);
    if (rc < 0)
        return fail("verify", &err);
    molt_channel_time_str(ch.expires_ms, when);
    if (a->now >= ch.expires_ms)
        rc = molt_err_set(&err, MOLT_E_VERIFY, "channel '%s' serial %lld expired at %s", ch.name,
                          (long long)ch.serial, when);
    if (rc == 0 && !a->quiet)
        printf("OK %s: channel '%s' serial %lld, %zu builds, floor '%s', expires %s\n", a->rest[0],
               ch.name, (long long)ch.serial, ch.nbuilds, ch.floor, when);
    if (rc == 0 && a->machine_id)
        rc = check_admits(a, &ch, &err);
    molt_channel_free(&ch);
    return rc < 0 ? fail("verify", &err) : 0;
}

static int cmd_show(const struct cargs *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_channel ch = {0};
    char issued[32], expires[32], nb[32];

    if (a->nrest != 1)
        return usage_error("show: needs CHANNEL", NULL);
    if (read_channel(a->rest[0], &ch, &err) < 0)
        return fail("show", &err);
    molt_channel_time_str(ch.issued_ms, issued);
    molt_channel_time_str(ch.expires_ms, expires);
    printf("channel %s (not verified: see molt-pack channel verify)\n", ch.name);
    printf("serial  %lld\nissued  %s\nexpires %s%s\nfloor   %s\n", (long long)ch.serial, issued,
           expires, a->now >= ch.expires_ms ? " (expired)" : "", ch.floor[0] ? ch.floor : "-");
    for (size_t i = 0; i < ch.nbuilds; i++) {
        const struct molt_channel_build *b = &ch.builds[i];
        molt_channel_time_str(b->not_before_ms, nb);
        printf("build   %s %s/%s %3d%% from %s statement %s\n", b->version, b->os, b->arch,
               b->percent, b->not_before_ms ? nb : "the start", b->statement_sha256);
    }
    molt_channel_free(&ch);
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------- */

static int cmd_add(const struct cargs *a)
{
    if (a->nrest != 2)
        return usage_error("add: needs CHANNEL STATEMENT", NULL);
    return edit_channel(a, "add", edit_add);
}

static int cmd_remove(const struct cargs *a)
{
    return edit_channel(a, "remove", edit_remove);
}

static int cmd_floor(const struct cargs *a)
{
    return edit_channel(a, "floor", edit_floor);
}

static int cmd_rollout(const struct cargs *a)
{
    return edit_channel(a, "rollout", edit_rollout);
}

static int cmd_renew(const struct cargs *a)
{
    return edit_channel(a, "renew", edit_none);
}

int molt_pack_channel(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const struct cargs *);
    } cmds[] = {
        {"create", cmd_create}, {"add", cmd_add},         {"remove", cmd_remove},
        {"floor", cmd_floor},   {"rollout", cmd_rollout}, {"renew", cmd_renew},
        {"sign", cmd_sign},     {"verify", cmd_verify},   {"show", cmd_show},
    };
    struct cargs a;
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
