/* molt-pack.c: the release tool: keygen, build, sign, verify (docs/package-format.md).
 * Exit status: 0 success, 1 failure (the reason on stderr), 2 usage error. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "delta.h"
#include "fs.h"
#include "pack_cli.h"
#include "host.h"
#include "log.h"
#include "molt-pack-channel.h"
#include "molt-pack-keyring.h"
#include "package.h"
#include "sign.h"

static const char usage[] =
    "Usage: molt-pack COMMAND [OPTIONS] [ARGS]\n"
    "Builds, signs and verifies molt build packages (see molt-pack(1)).\n"
    "\n"
    "Commands:\n"
    "  keygen --out DIR       create a signing key pair: DIR/<keyid>.key (private, 0600)\n"
    "                         and DIR/<keyid>.pub (install it in the agents' keys_dir)\n"
    "  build --version V --arch A [--os OS] [--min-version M] [--release R]\n"
    "        [--compress gzip|zstd] [--created MS] DIR -o OUT\n"
    "                         package the version tree DIR (bin/molt-agent, ...) into OUT,\n"
    "                         a directory or a file named molt-V-OS-A.tar.gz|.tar.zst;\n"
    "                         writes the unsigned statement OUT.statement.json\n"
    "  sign --key KEY PACKAGE sign PACKAGE.statement.json into PACKAGE.sig, after checking\n"
    "                         that the statement describes PACKAGE\n"
    "  verify --keys DIR [--version V] [--running R] [--os OS] [--arch A] [--no-contents]\n"
    "         PACKAGE [STATEMENT SIGNATURE]\n"
    "                         verify as an agent would; STATEMENT and SIGNATURE default to\n"
    "                         PACKAGE.statement.json and PACKAGE.sig\n"
    "  delta --from OLD_PACKAGE [--level N] NEW_PACKAGE -o DELTA\n"
    "                         make a delta package: a patch that rebuilds NEW_PACKAGE from\n"
    "                         OLD_PACKAGE's (or an installed tree's) uncompressed archive\n"
    "  delta-apply --from OLD_PACKAGE|--base-tree DIR --statement STATEMENT DELTA -o OUT\n"
    "                         rebuild the package STATEMENT describes from DELTA\n"
    "  keyid FILE             print the key id of a .pub or .key file\n"
    "  arch                   print this host's package arch (amd64, aarch64, ...)\n"
    "  channel SUBCOMMAND     create, edit, sign, verify or show a release channel\n"
    "                         ('molt-pack channel --help')\n"
    "  keyring SUBCOMMAND     create, edit, sign, verify or show the release keyring\n"
    "                         ('molt-pack keyring --help')\n"
    "\n"
    "Options:\n"
    "  -o, --out PATH         keygen: key directory; build: output package file or directory;\n"
    "                         delta: the delta; delta-apply: the rebuilt package\n"
    "      --version V        build: the package's version; verify: the version expected\n"
    "      --arch A           build: target arch; verify: host arch to check against\n"
    "      --os OS            build: target os (default linux); verify: host os\n"
    "      --min-version M    build: oldest running version the package applies to\n"
    "      --release R        build: release tag (default 1)\n"
    "      --compress C       build: gzip (default) or zstd\n"
    "      --created MS       build: creation time in ms since the epoch (default\n"
    "                         SOURCE_DATE_EPOCH, else now)\n"
    "      --from PACKAGE     delta: the older package; delta-apply: the base's package\n"
    "      --base-tree DIR    delta-apply: rebuild the base from an installed tree\n"
    "      --statement FILE   delta-apply: the new package's statement (size, sha256)\n"
    "      --level N          delta: zstd level, 1..22 (default 19; 9 for archives over 32 MiB)\n"
    "  -k, --key FILE         sign: the private key\n"
    "      --keys DIR         verify: directory of trusted *.pub keys\n"
    "      --running R        verify: running version for the minimum-version check\n"
    "      --no-contents      verify: skip unpacking checks of the archive (in memory)\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit (as the first argument)\n"
    "'molt-pack COMMAND --help' shows a command's own usage.\n";

enum {
    OPT_VERSION = 256,
    OPT_ARCH,
    OPT_OS,
    OPT_MIN,
    OPT_RELEASE,
    OPT_COMPRESS,
    OPT_CREATED,
    OPT_KEYS,
    OPT_RUNNING,
    OPT_NO_CONTENTS,
    OPT_FROM,
    OPT_BASE_TREE,
    OPT_STATEMENT,
    OPT_LEVEL,
};

struct args {
    const char *out, *version, *arch, *os, *min_version, *release, *compress, *key, *keys, *running;
    const char *from, *base_tree, *statement;
    long long created;
    int level;
    int no_contents, quiet;
    const char *help; /* the command's --help */
    char **rest;
    int nrest;
};

static int fail(const char *cmd, const struct molt_err *err)
{
    return molt_pack_fail("", cmd, err);
}

static int usage_error(const char *what, const char *arg)
{
    return molt_pack_usage_error("", what, arg);
}

static int parse_args(int argc, char **argv, const char *help, struct args *a)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"version", required_argument, NULL, OPT_VERSION},
        {"arch", required_argument, NULL, OPT_ARCH},
        {"os", required_argument, NULL, OPT_OS},
        {"min-version", required_argument, NULL, OPT_MIN},
        {"release", required_argument, NULL, OPT_RELEASE},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"created", required_argument, NULL, OPT_CREATED},
        {"key", required_argument, NULL, 'k'},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"running", required_argument, NULL, OPT_RUNNING},
        {"no-contents", no_argument, NULL, OPT_NO_CONTENTS},
        {"from", required_argument, NULL, OPT_FROM},
        {"base-tree", required_argument, NULL, OPT_BASE_TREE},
        {"statement", required_argument, NULL, OPT_STATEMENT},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    a->help = help;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:k:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case OPT_VERSION:
            a->version = optarg;
            break;
        case OPT_ARCH:
            a->arch = optarg;
            break;
        case OPT_OS:
            a->os = optarg;
            break;
        case OPT_MIN:
            a->min_version = optarg;
            break;
        case OPT_RELEASE:
            a->release = optarg;
            break;
        case OPT_COMPRESS:
            a->compress = optarg;
            break;
        case OPT_CREATED: {
            char *end = NULL;
            a->created = strtoll(optarg, &end, 10);
            if (!*optarg || *end || a->created <= 0)
                return usage_error("--created: not a positive number of ms: ", optarg);
            break;
        }
        case 'k':
            a->key = optarg;
            break;
        case OPT_KEYS:
            a->keys = optarg;
            break;
        case OPT_RUNNING:
            a->running = optarg;
            break;
        case OPT_NO_CONTENTS:
            a->no_contents = 1;
            break;
        case OPT_FROM:
            a->from = optarg;
            break;
        case OPT_BASE_TREE:
            a->base_tree = optarg;
            break;
        case OPT_STATEMENT:
            a->statement = optarg;
            break;
        case OPT_LEVEL: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 22)
                return usage_error("--level: not a zstd level 1..22: ", optarg);
            a->level = (int)v;
            break;
        }
        case 'q':
            a->quiet = 1;
            break;
        case 'h':
            fputs(a->help ? a->help : usage, stdout);
            exit(0);
        default:
            return usage_error("unknown option or missing value: ", argv[optind - 1]);
        }
    }
    a->rest = argv + optind;
    a->nrest = argc - optind;
    return 0;
}

static int cmd_keygen(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    char keyid[MOLT_PKG_KEYID_SIZE];

    if (!a->out || a->nrest)
        return usage_error("keygen: --out DIR is required, and nothing else", NULL);
    if (molt_pkg_key_generate(a->out, keyid, &err) < 0)
        return fail("keygen", &err);
    if (!a->quiet)
        printf("%s/%s.key\n%s/%s.pub\n", a->out, keyid, a->out, keyid);
    return 0;
}

static int cmd_build(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_pkg_build_opts o = {0};
    struct molt_statement st;
    char path[PATH_MAX];

    if (a->nrest != 1 || !a->out || !a->version || !a->arch)
        return usage_error("build: needs --version V --arch A DIR -o OUT", NULL);
    if (a->compress && strcmp(a->compress, "gzip") != 0 && strcmp(a->compress, "zstd") != 0)
        return usage_error("build: --compress must be gzip or zstd, not ", a->compress);
    o.src_dir = a->rest[0];
    o.out = a->out;
    o.version = a->version;
    o.arch = a->arch;
    o.os = a->os;
    o.min_version = a->min_version;
    o.release = a->release;
    o.compress = a->compress && strcmp(a->compress, "zstd") == 0 ? MOLT_PKG_ZSTD : MOLT_PKG_GZIP;
    o.created_ms = a->created;
    if (molt_pkg_build(&o, path, &st, &err) < 0)
        return fail("build", &err);
    if (!a->quiet)
        printf("%s\n%s.statement.json\n", path, path);
    return 0;
}

/* Hashes the whole file, however long, for comparison with a statement. */
static int hash_file(const char *path, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                     struct molt_err *err)
{
    struct molt_pkg_hasher h;
    struct stat sb;
    int rc;

    if (stat(path, &sb) < 0)
        return molt_err_errno(err, "stat %s", path);
    rc = molt_pkg_hasher_init(&h, 0, err);
    if (rc == 0)
        rc = molt_pkg_hasher_update_file(&h, path, (uint64_t)sb.st_size, err);
    if (rc == 0)
        return molt_pkg_hasher_final(&h, hex, size, err);
    molt_pkg_hasher_free(&h);
    return rc;
}

static int cmd_sign(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char spath[PATH_MAX], sigpath[PATH_MAX], hex[MOLT_PKG_SHA256_HEX];
    char *stmt = NULL, *sig = NULL;
    size_t stmt_len = 0, sig_len = 0;
    uint64_t size = 0;
    int rc;

    if (!a->key || a->nrest != 1)
        return usage_error("sign: needs --key KEY PACKAGE", NULL);
    if (snprintf(spath, sizeof(spath), "%s.statement.json", a->rest[0]) >= (int)sizeof(spath) ||
        snprintf(sigpath, sizeof(sigpath), "%s.sig", a->rest[0]) >= (int)sizeof(sigpath))
        return usage_error("sign: path too long: ", a->rest[0]);
    rc = molt_fs_read_file(spath, MOLT_PKG_STATEMENT_MAX, &stmt, &stmt_len, &err);
    /* Sign only a statement that is well formed and describes this very file. */
    if (rc == 0)
        rc = molt_pkg_statement_parse(stmt, stmt_len, &st, &err);
    if (rc == 0)
        rc = hash_file(a->rest[0], hex, &size, &err);
    if (rc == 0 && (rc = molt_pkg_bytes_check(&st, size, hex, &err)) < 0)
        molt_err_prefix(&err, "%s does not describe %s", spath, a->rest[0]);
    if (rc == 0)
        rc = molt_pkg_sig_create(a->key, stmt, stmt_len, &sig, &sig_len, &err);
    if (rc == 0)
        rc = molt_fs_write_atomic(sigpath, sig, sig_len, 0644, &err);
    free(stmt);
    free(sig);
    if (rc < 0)
        return fail("sign", &err);
    if (!a->quiet)
        printf("%s\n", sigpath);
    return 0;
}

static int cmd_verify(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    const char *pkg, *stmt = NULL, *sig = NULL;

    if (!a->keys || (a->nrest != 1 && a->nrest != 3))
        return usage_error("verify: needs --keys DIR PACKAGE [STATEMENT SIGNATURE]", NULL);
    pkg = a->rest[0];
    if (a->nrest == 3) {
        stmt = a->rest[1];
        sig = a->rest[2];
    }
    if (molt_pkg_verify_file(a->keys, pkg, stmt, sig, a->version, a->running, a->os, a->arch, &st,
                             &err) < 0)
        return fail("verify", &err);
    if (!a->no_contents && molt_pkg_inspect(pkg, &st, NULL, &err) < 0)
        return fail("verify", &err);
    if (!a->quiet)
        printf("OK %s: molt %s (release %s) for %s/%s, %llu bytes, signed by key %s\n", pkg,
               st.version, st.release, st.os, st.arch, (unsigned long long)st.size, st.keyid);
    return 0;
}

/* Temporary archives go beside the output: they are as large as the packages unpacked. */
static void out_dir(const char *out, char dir[PATH_MAX])
{
    snprintf(dir, PATH_MAX, "%s", out);
    if (strrchr(dir, '/'))
        *strrchr(dir, '/') = '\0';
    else
        snprintf(dir, PATH_MAX, ".");
    if (!*dir)
        snprintf(dir, PATH_MAX, "/");
}

static int cmd_delta(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_header h;
    char dir[PATH_MAX];

    if (!a->from || !a->out || a->nrest != 1)
        return usage_error("delta: needs --from OLD_PACKAGE NEW_PACKAGE -o DELTA", NULL);
    out_dir(a->out, dir);
    if (molt_delta_make(a->from, a->rest[0], a->out, a->level, dir, &h, &err) < 0)
        return fail("delta", &err);
    if (!a->quiet)
        printf("%s: %llu bytes for a package of %llu bytes (%.1f%%)\n", a->out,
               (unsigned long long)h.patch_size + MOLT_DELTA_HEADER_SIZE,
               (unsigned long long)h.package_size,
               100.0 * (double)(h.patch_size + MOLT_DELTA_HEADER_SIZE) / (double)h.package_size);
    return 0;
}

static int apply_to(const char *delta, const struct molt_delta_base *base,
                    const struct molt_statement *st, const char *out, struct molt_err *err)
{
    char tmp[PATH_MAX];
    int in = -1, fd = -1, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", out) >= (int)sizeof(tmp))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s", out);
    in = open(delta, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return molt_err_errno(err, "open %s", delta);
    fd = mkostemp(tmp, O_CLOEXEC);
    rc = fd < 0 ? molt_err_errno(err, "create %s", tmp)
                : molt_delta_apply(in, base, st->size, st->sha256, fd, NULL, err);
    if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        rc = molt_err_errno(err, "sync %s", tmp);
    if (rc == 0 && rename(tmp, out) < 0)
        rc = molt_err_errno(err, "rename %s to %s", tmp, out);
    if (rc < 0 && fd >= 0)
        unlink(tmp);
    if (fd >= 0)
        close(fd);
    close(in);
    return rc;
}

static int cmd_delta_apply(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_delta_base base = {0};
    struct molt_statement st;
    char dir[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!a->from == !a->base_tree || !a->statement || !a->out || a->nrest != 1)
        return usage_error("delta-apply: needs --from OLD_PACKAGE or --base-tree DIR, "
                           "--statement STATEMENT, DELTA and -o OUT", NULL);
    out_dir(a->out, dir);
    rc = molt_fs_read_file(a->statement, MOLT_PKG_STATEMENT_MAX, &text, &len, &err);
    if (rc == 0 && (rc = molt_pkg_statement_parse(text, len, &st, &err)) < 0)
        molt_err_prefix(&err, "%s", a->statement);
    if (rc == 0)
        rc = a->from ? molt_delta_base_from_package(a->from, dir, &base, &err)
                     : molt_delta_base_from_tree(a->base_tree, dir, &base, &err);
    if (rc == 0 && (rc = apply_to(a->rest[0], &base, &st, a->out, &err)) < 0)
        molt_err_prefix(&err, "%s", a->rest[0]);
    molt_delta_base_close(&base);
    free(text);
    if (rc < 0)
        return fail("delta-apply", &err);
    if (!a->quiet)
        printf("%s\n", a->out);
    return 0;
}

static int cmd_keyid(struct args *a)
{
    struct molt_err err = MOLT_ERR_INIT;
    char keyid[MOLT_PKG_KEYID_SIZE];

    if (a->nrest != 1)
        return usage_error("keyid: needs FILE", NULL);
    if (molt_pkg_key_id_file(a->rest[0], keyid, &err) < 0)
        return fail("keyid", &err);
    printf("%s\n", keyid);
    return 0;
}

static int cmd_arch(struct args *a)
{
    struct utsname u;

    if (a->nrest != 0)
        return usage_error("arch: takes no arguments", NULL);
    if (uname(&u) < 0) {
        perror("molt-pack: uname");
        return 1;
    }
    printf("%s\n", molt_host_arch_name(u.machine));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct args *);
        const char *help;
    } cmds[] = {
        {"keygen", cmd_keygen,
         "Usage: molt-pack keygen --out DIR\n"
         "Creates a signing key pair: DIR/<keyid>.key (private, 0600: keep it off the hosts\n"
         "and out of version control) and DIR/<keyid>.pub (for the agents' keys_dir).\n"
         "See molt-pack(1).\n"},
        {"build", cmd_build,
         "Usage: molt-pack build --version V --arch A [--os OS] [--min-version M]\n"
         "                      [--release R] [--compress gzip|zstd] [--created MS] DIR -o OUT\n"
         "Packages the version tree DIR (bin/molt-agent, ...) into OUT, a directory or a file\n"
         "named molt-V-OS-A.tar.gz|.tar.zst, and writes the unsigned OUT.statement.json.\n"
         "See molt-pack(1).\n"},
        {"sign", cmd_sign,
         "Usage: molt-pack sign --key KEY PACKAGE\n"
         "Signs PACKAGE.statement.json into PACKAGE.sig, after checking that the statement\n"
         "describes PACKAGE. See molt-pack(1).\n"},
        {"verify", cmd_verify,
         "Usage: molt-pack verify --keys DIR [--version V] [--running R] [--os OS] [--arch A]\n"
         "                       [--no-contents] [-q] PACKAGE [STATEMENT SIGNATURE]\n"
         "Verifies PACKAGE as an agent would; STATEMENT and SIGNATURE default to\n"
         "PACKAGE.statement.json and PACKAGE.sig. See molt-pack(1).\n"},
        {"delta", cmd_delta,
         "Usage: molt-pack delta --from OLD_PACKAGE [--level N] NEW_PACKAGE -o DELTA\n"
         "Makes a delta package: a zstd patch that rebuilds NEW_PACKAGE byte for byte from\n"
         "the uncompressed archive of OLD_PACKAGE (which an agent rebuilds from its installed\n"
         "tree). NEW_PACKAGE's statement and signature still cover the result. See molt-pack(1).\n"},
        {"delta-apply", cmd_delta_apply,
         "Usage: molt-pack delta-apply --from OLD_PACKAGE|--base-tree DIR --statement STATEMENT\n"
         "                             DELTA -o OUT\n"
         "Rebuilds the package STATEMENT describes from DELTA and the base (OLD_PACKAGE's\n"
         "archive, or the archive of the installed tree DIR); OUT is written only when it has\n"
         "the statement's size and sha256. See molt-pack(1).\n"},
        {"keyid", cmd_keyid,
         "Usage: molt-pack keyid FILE\n"
         "Prints the key id of a .pub or .key file. See molt-pack(1).\n"},
        {"arch", cmd_arch,
         "Usage: molt-pack arch\n"
         "Prints this host's package arch (amd64, aarch64, ...). See molt-pack(1).\n"},
    };
    struct args a;
    int rc;

    if (molt_cli_common(argc, argv, "molt-pack", usage))
        return 0;
    molt_log_setup("molt-pack", MOLT_LOG_ERROR, 0);
    if (argc < 2)
        return usage_error("a command is needed", NULL);
    if (strcmp(argv[1], "channel") == 0)
        return molt_pack_channel(argc - 1, argv + 1);
    if (strcmp(argv[1], "keyring") == 0)
        return molt_pack_keyring(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        rc = parse_args(argc - 1, argv + 1, cmds[i].help, &a);
        return rc ? rc : cmds[i].fn(&a);
    }
    return usage_error("unknown command: ", argv[1]);
}
