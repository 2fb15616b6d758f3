/* checkconf.c: molt-agent check-config: loads the configuration as the agent
 * does and checks, before a task needs them, what a bad one breaks later: the
 * server URL, the CA and client files, the trusted keys, the rename of a
 * staged build into the install root, the writability of the agent's
 * directories and that everything in the state and run directories belongs to
 * the service user (a root-run molt-installer once left a root-owned lock). */
#include "checkconf.h"

#include <dirent.h>
#include <errno.h>
#include <fts.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "fs.h"
#include "journal.h"
#include "sign.h"

#define MOLT_CHECK_MAX_ENTRIES 100000 /* a state dir walk stops there */

struct check {
    int start;     /* --start: problems that only stop upgrades are warnings */
    int switching; /* --start during a switch: every problem is a warning */
    int errors;
    int warnings;
    uid_t uid;     /* the service user */
    char user[64];
};

enum severity { CHECK_OK, CHECK_FAIL, CHECK_UPGRADE };

static void report(struct check *c, enum severity sev, const char *fmt, ...) MOLT_PRINTF(3, 4);

static void report(struct check *c, enum severity sev, const char *fmt, ...)
{
    const char *word = "ok";
    va_list ap;

    if (sev != CHECK_OK && !c->switching && (sev == CHECK_FAIL || !c->start)) {
        word = "error";
        c->errors++;
    } else if (sev == CHECK_UPGRADE) {
        word = "warning";
        c->warnings++;
    }
    printf("%s: ", word);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void check_readable(struct check *c, const char *key, const char *path)
{
    if (!path[0])
        return;
    if (access(path, R_OK) == 0)
        report(c, CHECK_OK, "%s = %s is readable", key, path);
    else if (errno == ENOENT)
        report(c, CHECK_FAIL, "%s = %s does not exist", key, path);
    else
        report(c, CHECK_FAIL, "%s = %s: %s cannot read it: %s", key, path, c->user,
               strerror(errno));
}

/* At least one certificate in PEM, as libcurl will read it. */
static void check_ca_file(struct check *c, const char *path)
{
    BIO *bio;
    X509 *cert = NULL;

    if (!path[0]) {
        report(c, CHECK_OK, "server.ca_file unset: the system's trust store verifies the server");
        return;
    }
    if (access(path, R_OK) < 0) {
        check_readable(c, "server.ca_file", path);
        return;
    }
    bio = BIO_new_file(path, "r");
    if (!bio) {
        report(c, CHECK_FAIL, "server.ca_file = %s: cannot open it", path);
        return;
    }
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert)
        report(c, CHECK_OK, "server.ca_file = %s holds a PEM certificate", path);
    else
        report(c, CHECK_FAIL, "server.ca_file = %s: no PEM certificate in it", path);
    X509_free(cert);
    BIO_free(bio);
}

/* Counts the *.pub files of dir whose key id can be read; reports (and counts
 * in *bad) the others under key, the configuration key naming them. -1: dir
 * cannot be opened. */
static int count_keys(struct check *c, const char *dir, const char *key, int *bad)
{
    DIR *d = opendir(dir);
    const struct dirent *de;
    int usable = 0;

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char path[PATH_MAX], id[MOLT_PKG_KEYID_SIZE];
        struct molt_err err = MOLT_ERR_INIT;

        if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 4, ".pub") != 0)
            continue;
        if (molt_fs_join(path, sizeof(path), dir, de->d_name, &err) == 0 &&
            molt_pkg_key_id_file(path, id, &err) == 0) {
            usable++;
            continue;
        }
        (*bad)++;
        report(c, CHECK_UPGRADE, "%s: %s", key, err.msg);
    }
    closedir(d);
    return usable;
}

/* The keys a signature can name: the pinned release keys, and the root keys
 * that may delegate others through the keyring (docs/security.md 6.6). */
static void check_keys(struct check *c, const char *dir, int64_t root_threshold)
{
    char root[PATH_MAX];
    int bad = 0, usable = count_keys(c, dir, "agent.keys_dir", &bad), roots = -1;

    if (usable < 0) {
        report(c, CHECK_UPGRADE, "agent.keys_dir = %s: %s (no build can be verified)", dir,
               strerror(errno));
        return;
    }
    if (snprintf(root, sizeof(root), "%s/root", dir) < (int)sizeof(root))
        roots = count_keys(c, root, "agent.keys_dir/root", &bad);
    if (usable)
        report(c, CHECK_OK, "agent.keys_dir = %s: %d trusted key%s", dir, usable,
               usable == 1 ? "" : "s");
    if (roots > 0 && roots < root_threshold)
        report(c, CHECK_UPGRADE, "agent.keys_dir/root: %d root key%s, fewer than "
               "trust.root_threshold = %lld: no keyring can be accepted", roots,
               roots == 1 ? "" : "s", (long long)root_threshold);
    else if (roots > 0)
        report(c, CHECK_OK, "agent.keys_dir/root: %d root key%s (release keys delegated by a "
               "keyring signed by %lld of them count too)", roots, roots == 1 ? "" : "s",
               (long long)root_threshold);
    if (!usable && roots <= 0 && !bad)
        report(c, CHECK_UPGRADE,
               "agent.keys_dir = %s has no *.pub key: no build can be verified (copy the "
               "release's public key there, see molt-pack(1) keygen)",
               dir);
}

/* The rename the switch does, tried for real on this process's mounts. An
 * upgrade_dir not made yet is tried from the directory it will be made in
 * (making it here would leave it root's when root runs this). */
static void check_rename(struct check *c, const struct molt_config *conf)
{
    struct molt_err err = MOLT_ERR_INIT;
    char versions[PATH_MAX], from[PATH_MAX];
    char *slash;

    snprintf(from, sizeof(from), "%s", conf->agent.upgrade_dir);
    while (!molt_fs_exists(from) && (slash = strrchr(from, '/')) != NULL && slash != from)
        *slash = '\0';
    if (molt_fs_join(versions, sizeof(versions), conf->install.root, "versions", &err) < 0 ||
        molt_fs_probe_rename(from, versions, &err) < 0) {
        molt_conf_explain_upgrade_dir(conf, &err);
        report(c, CHECK_UPGRADE, "%s", err.msg);
        return;
    }
    report(c, CHECK_OK, "agent.upgrade_dir = %s: a staged build can be renamed into %s",
           conf->agent.upgrade_dir, versions);
}

/* Everything under dir belongs to the service user: the first stranger is
 * named with the command that repairs it. A stranger breaks upgrades (the
 * installer's lock); what the agent itself cannot open stops it on its own,
 * so --start does not stop a heartbeating host for it. */
static void check_owner(struct check *c, const char *key, const char *dir)
{
    char root[PATH_MAX];
    char *paths[] = { root, NULL };
    FTS *fts;
    const FTSENT *e;
    int seen = 0, strangers = 0;
    char first[PATH_MAX] = "", owner[64] = "";

    if (!molt_fs_exists(dir)) {
        report(c, CHECK_OK, "%s = %s does not exist yet (made at start)", key, dir);
        return;
    }
    snprintf(root, sizeof(root), "%s", dir);
    fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts) {
        report(c, CHECK_FAIL, "%s = %s: %s", key, dir, strerror(errno));
        return;
    }
    while ((e = fts_read(fts)) != NULL && seen < MOLT_CHECK_MAX_ENTRIES) {
        if (e->fts_info == FTS_DP)
            continue;
        if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR || e->fts_info == FTS_NS) {
            report(c, CHECK_FAIL, "%s: %s cannot read %s: %s", key, c->user, e->fts_path,
                   strerror(e->fts_errno));
            continue;
        }
        seen++;
        if (e->fts_statp->st_uid == c->uid)
            continue;
        if (!strangers++) {
            snprintf(first, sizeof(first), "%s", e->fts_path);
            molt_fs_user_name(e->fts_statp->st_uid, owner, sizeof(owner));
        }
    }
    fts_close(fts);
    if (strangers)
        report(c, CHECK_UPGRADE, "%s: %s is owned by %s, not %s (%d path%s so; repair: chown -R %s: %s)",
               key, first, owner, c->user, strangers, strangers == 1 ? "" : "s", c->user, dir);
    else
        report(c, CHECK_OK, "%s = %s: owned by %s", key, dir, c->user);
}

/* A start during a switch or trial must reach molt-installer launch, which
 * counts it and rolls back a version that cannot start: this check must not
 * stop it first (it may be the new version's own check that is wrong). */
static int switch_in_flight(const struct molt_config *conf)
{
    struct molt_journal j;
    struct molt_err err = MOLT_ERR_INIT;
    char path[PATH_MAX];

    if (molt_journal_path(path, sizeof(path), conf->agent.state_dir, &err) < 0 ||
        molt_journal_load(path, &j, &err) < 0)
        return 0;
    return j.state == MOLT_JOURNAL_SWITCHING || j.state == MOLT_JOURNAL_TRIAL ||
           j.state == MOLT_JOURNAL_ROLLING_BACK;
}

/* Root checks on behalf of the service user; anyone else for themselves. */
static int pick_user(struct check *c, const char *user)
{
    const struct passwd *pw;

    if (!user && geteuid() != 0) {
        c->uid = geteuid();
        molt_fs_user_name(c->uid, c->user, sizeof(c->user));
        return 0;
    }
    pw = getpwnam(user ? user : MOLT_CHECK_SERVICE_USER);
    if (!pw) {
        if (user) {
            fprintf(stderr, "molt-agent: check-config: no user '%s'\n", user);
            return -1;
        }
        c->uid = geteuid(); /* no service user here: the agent runs as root */
    } else {
        c->uid = pw->pw_uid;
    }
    molt_fs_user_name(c->uid, c->user, sizeof(c->user));
    return 0;
}

int molt_checkconf_main(const char *config_path, const char *user, int start)
{
    struct check c = { .start = start };
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    const char *env = getenv("MOLT_CONFIG");
    const char *shown = config_path ? config_path : MOLT_CONF_DEFAULT_PATH;

    if (pick_user(&c, user) < 0)
        return 1;
    if (!config_path && env && *env)
        shown = env;
    if (molt_conf_load(&conf, config_path, &err) < 0) {
        report(&c, CHECK_FAIL, "%s", err.msg);
        printf("molt-agent: %s is not usable\n", shown);
        return 1;
    }
    if (start && switch_in_flight(&conf)) {
        c.switching = 1;
        printf("note: a version switch is in progress: problems are warnings, molt-installer "
               "launch decides\n");
    }
    if (conf.server.url[0])
        report(&c, CHECK_OK, "server.url = %s", conf.server.url);
    else
        report(&c, CHECK_FAIL, "server.url is not set (the agent cannot start)");
    if (conf.server.url[0] && !conf.server.access_id[0] != !conf.server.access_key[0])
        report(&c, CHECK_FAIL, "server.access_id and server.access_key go together");
    check_ca_file(&c, conf.server.ca_file);
    check_readable(&c, "server.client_cert", conf.server.client_cert);
    check_readable(&c, "server.client_key", conf.server.client_key);
    if (molt_conf_check_writable(&conf, &err) < 0)
        report(&c, CHECK_FAIL, "%s", err.msg);
    check_owner(&c, "agent.state_dir", conf.agent.state_dir);
    check_owner(&c, "agent.run_dir", conf.agent.run_dir);
    check_keys(&c, conf.agent.keys_dir, conf.trust.root_threshold);
    check_rename(&c, &conf);
    if (c.errors)
        printf("molt-agent: %s: %d error%s, %d warning%s\n", shown, c.errors,
               c.errors == 1 ? "" : "s", c.warnings, c.warnings == 1 ? "" : "s");
    else
        printf("molt-agent: %s is usable%s\n", shown,
               c.warnings ? " (upgrades will fail: see the warnings)" : "");
    return c.errors ? 1 : 0;
}
