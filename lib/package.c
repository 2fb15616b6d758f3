/* package.c: the release statement (parse, format, checks), streaming sha256,
 * and the whole verification of a package file on disk. */
#include "package.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fs.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "package_int.h"
#include "sigset.h"
#include "version.h"

/* ---- small shared helpers ------------------------------------------------- */

void molt_pkg_host(char os[16], char arch[32])
{
    struct utsname u;

    snprintf(os, 16, "linux");
    snprintf(arch, 32, "unknown");
    if (uname(&u) < 0)
        return;
    for (size_t i = 0; i < 15 && u.sysname[i]; i++) {
        os[i] = (char)tolower((unsigned char)u.sysname[i]);
        os[i + 1] = '\0';
    }
    snprintf(arch, 32, "%s", molt_host_arch_name(u.machine));
}

int molt_pkg_file_name(const char *version, const char *os, const char *arch, const char *ext,
                       char *out, size_t n, struct molt_err *err)
{
    int len = snprintf(out, n, "molt-%s-%s-%s%s", version, os, arch, ext);

    if (len < 0 || (size_t)len >= n)
        return molt_err_set(err, MOLT_E_LIMIT, "package file name too long");
    return 0;
}

/* ---- statement ------------------------------------------------------------ */

static int statement_strings(struct json_object *o, struct molt_statement *st, struct molt_err *err)
{
#define STR_FIELD(key, member)                                                                     \
    {                                                                                              \
        key, offsetof(struct molt_statement, member), sizeof(((struct molt_statement *)0)->member) \
    }
    static const struct {
        const char *key;
        size_t off, size;
    } fields[] = {
        STR_FIELD("name", name),
        STR_FIELD("version", version),
        STR_FIELD("release", release),
        STR_FIELD("os", os),
        STR_FIELD("arch", arch),
        STR_FIELD("sha256", sha256),
        STR_FIELD("minVersion", min_version),
        STR_FIELD("package", package),
    };
#undef STR_FIELD

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        int rc =
            molt_json_copy_str(o, fields[i].key, (char *)st + fields[i].off, fields[i].size, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Optional: absent in statements of a molt-pack from before it. */
static int statement_manifest_sha256(struct json_object *o, struct molt_statement *st,
                                     struct molt_err *err)
{
    const char *hex = NULL;
    int rc = molt_json_opt_str(o, "manifestSha256", &hex, err);

    if (rc < 0 || !hex)
        return rc < 0 ? rc : 0;
    if (strlen(hex) >= sizeof(st->manifest_sha256))
        return molt_err_set(err, MOLT_E_PARSE,
                            "field 'manifestSha256': not 64 lowercase hex digits");
    snprintf(st->manifest_sha256, sizeof(st->manifest_sha256), "%s", hex);
    return 0;
}

static int statement_validate(const struct molt_statement *st, struct molt_err *err)
{
    char want[256];

    if (strcmp(st->name, MOLT_PKG_NAME) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "name is '%s', expected '%s'", st->name,
                            MOLT_PKG_NAME);
    if (!molt_version_valid(st->version))
        return molt_err_set(err, MOLT_E_PARSE, "field 'version': not a version");
    if (st->min_version[0] && !molt_version_valid(st->min_version))
        return molt_err_set(err, MOLT_E_PARSE, "field 'minVersion': not a version");
    if (!molt_pkg_is_release(st->release, sizeof(st->release)))
        return molt_err_set(err, MOLT_E_PARSE, "field 'release': only [0-9A-Za-z.+_-] allowed");
    if (!molt_pkg_is_token(st->os, sizeof(st->os)))
        return molt_err_set(err, MOLT_E_PARSE, "field 'os': only [a-z0-9_] allowed");
    if (!molt_pkg_is_token(st->arch, sizeof(st->arch)))
        return molt_err_set(err, MOLT_E_PARSE, "field 'arch': only [a-z0-9_] allowed");
    if (!molt_pkg_is_hex(st->sha256, 64))
        return molt_err_set(err, MOLT_E_PARSE, "field 'sha256': not 64 lowercase hex digits");
    if (st->manifest_sha256[0] && !molt_pkg_is_hex(st->manifest_sha256, 64))
        return molt_err_set(err, MOLT_E_PARSE,
                            "field 'manifestSha256': not 64 lowercase hex digits");
    if (st->created_ms < 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'created': negative");
    molt_pkg_file_name(st->version, st->os, st->arch, "", want, sizeof(want), NULL);
    if (strncmp(st->package, want, strlen(want)) != 0 ||
        (strcmp(st->package + strlen(want), ".tar.gz") != 0 &&
         strcmp(st->package + strlen(want), ".tar.zst") != 0))
        return molt_err_set(err, MOLT_E_PARSE, "field 'package': expected %s.tar.gz or .tar.zst",
                            want);
    return 0;
}

int molt_pkg_statement_parse(const void *buf, size_t len, struct molt_statement *out,
                             struct molt_err *err)
{
    struct json_object *o = NULL;
    int64_t size = -1;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > MOLT_PKG_STATEMENT_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "statement: larger than %d bytes",
                            MOLT_PKG_STATEMENT_MAX);
    if (memchr(buf, '\0', len))
        return molt_err_set(err, MOLT_E_PARSE, "statement: contains a NUL byte");
    rc = molt_json_parse(buf, len, &o, err);
    if (rc < 0)
        goto out;
    if (!json_object_is_type(o, json_type_object)) {
        rc = molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
        goto out;
    }
    rc = statement_strings(o, out, err);
    if (rc == 0)
        rc = statement_manifest_sha256(o, out, err);
    if (rc == 0)
        rc = molt_json_int_field(o, "size", 0, 0, INT64_MAX, &size, err);
    if (rc >= 0)
        rc = molt_json_get_int(o, "created", &out->created_ms, err);
    if (rc == 0)
        rc = statement_validate(out, err);
    out->size = (uint64_t)size;
out:
    json_object_put(o);
    if (rc < 0) {
        molt_err_prefix(err, "statement");
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int molt_pkg_statement_format(const struct molt_statement *st, char **out, size_t *len,
                              struct molt_err *err)
{
    struct json_object *o = json_object_new_object();
    const char *text;
    int rc = 0;

    *out = NULL;
    if (!o)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    json_object_object_add(o, "name", json_object_new_string(st->name));
    json_object_object_add(o, "version", json_object_new_string(st->version));
    json_object_object_add(o, "release", json_object_new_string(st->release));
    json_object_object_add(o, "os", json_object_new_string(st->os));
    json_object_object_add(o, "arch", json_object_new_string(st->arch));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)st->size));
    json_object_object_add(o, "sha256", json_object_new_string(st->sha256));
    if (st->manifest_sha256[0])
        json_object_object_add(o, "manifestSha256", json_object_new_string(st->manifest_sha256));
    json_object_object_add(o, "minVersion", json_object_new_string(st->min_version));
    json_object_object_add(o, "created", json_object_new_int64(st->created_ms));
    json_object_object_add(o, "package", json_object_new_string(st->package));
    text = molt_json_dump(o);
    rc = molt_pkg_text_line(text, out, len, err);
    json_object_put(o);
    return rc;
}

int molt_pkg_statement_check(const struct molt_statement *st, const char *expected_version,
                             const char *running_version, const char *host_os,
                             const char *host_arch, struct molt_err *err)
{
    char os[16], arch[32];

    molt_pkg_host(os, arch);
    if (host_os)
        snprintf(os, sizeof(os), "%s", host_os);
    if (host_arch)
        snprintf(arch, sizeof(arch), "%s", host_arch);
    if (expected_version && strcmp(st->version, expected_version) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "statement is for %s, command asked for %s",
                            st->version, expected_version);
    if (strcmp(st->os, os) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "built for %s, host is %s", st->os, os);
    if (strcmp(st->arch, arch) != 0)
        return molt_err_set(err, MOLT_E_VERIFY, "built for %s, host is %s", st->arch, arch);
    if (running_version && st->min_version[0] &&
        molt_version_cmp(running_version, st->min_version) < 0)
        return molt_err_set(err, MOLT_E_VERIFY, "requires at least %s, running %s", st->min_version,
                            running_version);
    return 0;
}

int molt_pkg_authenticate(const char *keys_dir, const void *stmt, size_t stmt_len, const void *sig,
                          size_t sig_len, const char *expected_version, const char *running_version,
                          const char *host_os, const char *host_arch, struct molt_statement *out,
                          struct molt_err *err)
{
    char keyid[MOLT_PKG_KEYID_SIZE];
    int rc;

    memset(out, 0, sizeof(*out));
    /* The statement is untrusted bytes until the signature says otherwise. A
     * .sig of several lines is a signature set (sigset.h): one trusted line
     * suffices here (a caller wanting more checks the threshold first). */
    if (sig_len > 1 && memchr(sig, '\n', sig_len - 1)) {
        char ids[MOLT_SIGSET_MAX / 32];
        rc = molt_sigset_verify(keys_dir, 1, stmt, stmt_len, sig, sig_len, ids, sizeof(ids), err);
        snprintf(keyid, sizeof(keyid), "%.*s", (int)strcspn(ids, ","), ids);
    } else {
        rc = molt_pkg_sig_verify(keys_dir, stmt, stmt_len, sig, sig_len, keyid, err);
    }
    if (rc < 0)
        return rc;
    rc = molt_pkg_statement_parse(stmt, stmt_len, out, err);
    if (rc < 0)
        return rc;
    memcpy(out->keyid, keyid, sizeof(keyid));
    return molt_pkg_statement_check(out, expected_version, running_version, host_os, host_arch,
                                    err);
}

/* ---- hashing -------------------------------------------------------------- */

int molt_pkg_hasher_init(struct molt_pkg_hasher *h, uint64_t limit, struct molt_err *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    memset(h, 0, sizeof(*h));
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return molt_err_set(err, MOLT_E_NOMEM, "sha256: cannot initialise");
    }
    h->ctx = ctx;
    h->limit = limit;
    return 0;
}

int molt_pkg_hasher_update(struct molt_pkg_hasher *h, const void *data, size_t len,
                           struct molt_err *err)
{
    if (!h->ctx)
        return molt_err_set(err, MOLT_E_STATE, "sha256: hasher not initialised");
    if (h->limit && (len > h->limit || h->bytes > h->limit - len))
        return molt_err_set(err, MOLT_E_LIMIT, "longer than declared: more than %" PRIu64 " bytes",
                            h->limit);
    if (EVP_DigestUpdate(h->ctx, data, len) != 1)
        return molt_err_set(err, MOLT_E_IO, "sha256: update failed");
    h->bytes += len;
    return 0;
}

int molt_pkg_hasher_update_file(struct molt_pkg_hasher *h, const char *path, uint64_t len,
                                struct molt_err *err)
{
    unsigned char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return molt_err_errno(err, "open %s", path);
    while (len > 0 && rc == 0) {
        ssize_t n = read(fd, buf, len < sizeof(buf) ? (size_t)len : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = molt_err_errno(err, "read %s", path);
        else if (n == 0)
            rc = molt_err_set(err, MOLT_E_IO, "%s: shorter than %" PRIu64 " bytes", path, len);
        else {
            rc = molt_pkg_hasher_update(h, buf, (size_t)n, err);
            len -= (uint64_t)n;
        }
    }
    close(fd);
    return rc;
}

int molt_pkg_hasher_final(struct molt_pkg_hasher *h, char hex[MOLT_PKG_SHA256_HEX], uint64_t *size,
                          struct molt_err *err)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;

    if (!h->ctx)
        return molt_err_set(err, MOLT_E_STATE, "sha256: hasher not initialised");
    ok = EVP_DigestFinal_ex(h->ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    if (!ok)
        return molt_err_set(err, MOLT_E_IO, "sha256: final failed");
    for (unsigned i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    if (size)
        *size = h->bytes;
    return 0;
}

void molt_pkg_hasher_free(struct molt_pkg_hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int molt_pkg_sha256_buf(const void *buf, size_t len, char hex[MOLT_PKG_SHA256_HEX],
                        struct molt_err *err)
{
    struct molt_pkg_hasher h;
    int rc = molt_pkg_hasher_init(&h, 0, err);

    if (rc == 0)
        rc = molt_pkg_hasher_update(&h, buf, len, err);
    if (rc == 0)
        return molt_pkg_hasher_final(&h, hex, NULL, err);
    molt_pkg_hasher_free(&h);
    return rc;
}

int molt_pkg_manifest_bytes_check(const void *text, size_t len, const char *want,
                                  struct molt_err *err)
{
    char hex[MOLT_PKG_SHA256_HEX];
    int rc = molt_pkg_sha256_buf(text, len, hex, err);

    if (rc == 0 && strcmp(hex, want) != 0)
        rc = molt_err_set(err, MOLT_E_VERIFY, "manifest mismatch: %s has sha256 %s, the "
                          "statement's manifestSha256 is %s", MOLT_PKG_MANIFEST_NAME, hex, want);
    return rc;
}

int molt_pkg_hash_fd(int fd, const char *what, char *hex, uint64_t *size, struct molt_err *err)
{
    struct molt_pkg_hasher h;
    unsigned char buf[65536];
    int rc = molt_pkg_hasher_init(&h, 0, err);

    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = molt_err_errno(err, "read %s", what);
        else if (n == 0)
            break;
        else
            rc = molt_pkg_hasher_update(&h, buf, (size_t)n, err);
    }
    if (rc == 0)
        return molt_pkg_hasher_final(&h, hex, size, err);
    molt_pkg_hasher_free(&h);
    return rc;
}

int molt_pkg_bytes_check(const struct molt_statement *st, uint64_t size,
                         const char sha256_hex[MOLT_PKG_SHA256_HEX], struct molt_err *err)
{
    if (size > st->size)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "longer than declared: got %" PRIu64 " bytes, statement says %" PRIu64,
                            size, st->size);
    if (size < st->size)
        return molt_err_set(err, MOLT_E_VERIFY,
                            "size mismatch: got %" PRIu64 " bytes, statement says %" PRIu64, size,
                            st->size);
    if (strcmp(sha256_hex, st->sha256) != 0) {
        molt_log_warn("package.sha256_mismatch", "got=%s expected=%s", sha256_hex, st->sha256);
        return molt_err_set(err, MOLT_E_VERIFY, "sha256 mismatch");
    }
    return 0;
}

/* ---- whole-file verification ---------------------------------------------- */

static int read_beside(const char *given, const char *package, const char *suffix, size_t max,
                       char **out, size_t *len, char *path, struct molt_err *err)
{
    if (given)
        snprintf(path, PATH_MAX, "%s", given);
    else if (snprintf(path, PATH_MAX, "%s%s", package, suffix) >= PATH_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s%s", package, suffix);
    return molt_fs_read_file(path, max, out, len, err);
}

/* Streams the package through a hasher capped at the statement's size. */
static int hash_package(const char *package, const struct molt_statement *st, struct molt_err *err)
{
    struct molt_pkg_hasher h;
    unsigned char buf[65536];
    char hex[MOLT_PKG_SHA256_HEX];
    uint64_t size = 0;
    struct stat sb;
    int fd, rc;

    fd = open(package, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, "open %s", package);
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return molt_err_set(err, MOLT_E_INVAL, "%s: not a regular file", package);
    }
    /* A wrong size is known without reading; the hasher's cap still guards
     * against a file that grows while it is read. */
    if ((uint64_t)sb.st_size != st->size) {
        close(fd);
        return molt_pkg_bytes_check(st, (uint64_t)sb.st_size, st->sha256, err);
    }
    rc = molt_pkg_hasher_init(&h, st->size, err);
    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = molt_err_errno(err, "read %s", package);
        else if (n == 0)
            break;
        else
            rc = molt_pkg_hasher_update(&h, buf, (size_t)n, err);
    }
    close(fd);
    if (rc < 0) {
        molt_pkg_hasher_free(&h);
        return rc;
    }
    rc = molt_pkg_hasher_final(&h, hex, &size, err);
    return rc < 0 ? rc : molt_pkg_bytes_check(st, size, hex, err);
}

int molt_pkg_verify_file(const char *keys_dir, const char *package, const char *statement_path,
                         const char *sig_path, const char *expected_version,
                         const char *running_version, const char *host_os, const char *host_arch,
                         struct molt_statement *out, struct molt_err *err)
{
    char spath[PATH_MAX], gpath[PATH_MAX];
    char *stmt = NULL, *sig = NULL;
    size_t stmt_len = 0, sig_len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = read_beside(sig_path, package, ".sig", MOLT_PKG_SIG_MAX, &sig, &sig_len, gpath, err);
    if (rc == MOLT_E_NOTFOUND)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: missing: no file %s", gpath);
    if (rc == MOLT_E_LIMIT)
        return molt_err_set(err, MOLT_E_VERIFY, "signature: malformed: larger than %d bytes",
                            MOLT_PKG_SIG_MAX);
    if (rc < 0)
        return rc;
    rc = read_beside(statement_path, package, ".statement.json", MOLT_PKG_STATEMENT_MAX, &stmt,
                     &stmt_len, spath, err);
    if (rc == MOLT_E_NOTFOUND)
        rc = molt_err_set(err, MOLT_E_VERIFY, "statement: missing: no file %s", spath);
    if (rc == 0)
        rc = molt_pkg_authenticate(keys_dir, stmt, stmt_len, sig, sig_len, expected_version,
                                   running_version, host_os, host_arch, out, err);
    if (rc == 0)
        rc = hash_package(package, out, err);
    if (rc == 0)
        molt_log_info("package.verified", "package=%s version=%s keyid=%s", package, out->version,
                      out->keyid);
    free(stmt);
    free(sig);
    return rc;
}
