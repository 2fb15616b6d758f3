/* test_package_util.c: test-time packages, good and hostile, written with
 * libarchive's writer so that every rejection can be crafted on purpose. */
#include "test_package_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fs.h"
#include "package_int.h"
#include "sign.h"

const struct tp_entry tp_good[] = {
    {.path = "bin", .type = 'd'},
    {.path = "bin/molt-agent", .type = 'f', .data = "#!/bin/sh\necho agent\n", .mode = 0755},
    {.path = "bin/molt-installer",
     .type = 'f',
     .data = "#!/bin/sh\necho installer\n",
     .mode = 0755},
    {.path = "share", .type = 'd'},
    {.path = "share/molt", .type = 'd'},
    {.path = "share/molt/readme", .type = 'f', .data = "molt test package\n"},
    {.path = "share/molt/agent", .type = 'l', .data = "../../bin/molt-agent"},
};
const size_t tp_good_n = sizeof(tp_good) / sizeof(tp_good[0]);

static void host_arch(char arch[32])
{
    char os[16];

    molt_pkg_host(os, arch);
}

static void first_file(const char *dir, const char *suffix, char out[PATH_MAX])
{
    DIR *d = opendir(dir);
    struct dirent *de;

    assert_non_null(d);
    out[0] = '\0';
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > strlen(suffix) && strcmp(de->d_name + n - strlen(suffix), suffix) == 0) {
            snprintf(out, PATH_MAX, "%s/%s", dir, de->d_name);
            break;
        }
    }
    closedir(d);
    assert_true(out[0] != '\0');
}

void tp_env_setup(struct tp_env *env)
{
    struct molt_err err = MOLT_ERR_INIT;

    memset(env, 0, sizeof(*env));
    tu_mkdtemp(env->dir);
    snprintf(env->keys, PATH_MAX, "%s/keys", env->dir);
    snprintf(env->other_keys, PATH_MAX, "%s/other-keys", env->dir);
    snprintf(env->upgrade, PATH_MAX, "%s/upgrade", env->dir);
    snprintf(env->builds, PATH_MAX, "%s/builds", env->dir);
    assert_int_equal(molt_pkg_key_generate(env->keys, NULL, &err), 0);
    assert_int_equal(molt_pkg_key_generate(env->other_keys, NULL, &err), 0);
    first_file(env->keys, ".key", env->key);
    first_file(env->other_keys, ".key", env->other_key);
    assert_int_equal(mkdir(env->upgrade, 0755), 0);
    assert_int_equal(mkdir(env->builds, 0755), 0);
}

void tp_env_teardown(struct tp_env *env)
{
    tu_rmtree(env->dir);
}

int tp_setup(void **state)
{
    struct tp_env *env = calloc(1, sizeof(*env));

    if (!env)
        return -1;
    tp_env_setup(env);
    *state = env;
    return 0;
}

int tp_teardown(void **state)
{
    tp_env_teardown(*state);
    free(*state);
    return 0;
}

char *tp_slurp(const char *path, size_t *len)
{
    struct molt_err err = MOLT_ERR_INIT;
    char *text = NULL;
    size_t n = 0;

    if (molt_fs_read_file(path, 1u << 30, &text, &n, &err) < 0)
        fail_msg("read %s: %s", path, err.msg);
    if (len)
        *len = n;
    return text;
}

void tp_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

int tp_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    struct molt_pkg_hasher h;
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(molt_pkg_hasher_init(&h, 0, &err), 0);
    assert_int_equal(molt_pkg_hasher_update(&h, data, len, &err), 0);
    assert_int_equal(molt_pkg_hasher_final(&h, hex, NULL, &err), 0);
}

/* The entry's bytes (zeros when data is NULL); caller frees. */
static char *entry_bytes(const struct tp_entry *e, size_t *len)
{
    char *buf;

    *len = e->data ? strlen(e->data) : e->zeros;
    buf = calloc(1, *len + 1);
    assert_non_null(buf);
    if (e->data)
        memcpy(buf, e->data, *len);
    return buf;
}

static const char *type_word(char t)
{
    return t == 'd' ? "dir" : t == 'l' ? "symlink" : "file";
}

static char *make_manifest(const struct tp_entry *e, size_t n, const struct tp_opts *o)
{
    struct json_object *m = json_object_new_object();
    struct json_object *files = json_object_new_array();
    char arch[32], *text;

    host_arch(arch);
    json_object_object_add(m, "format", json_object_new_int(1));
    json_object_object_add(m, "name", json_object_new_string("molt"));
    json_object_object_add(m, "version",
                           json_object_new_string(o && o->m_version ? o->m_version
                                                  : o && o->version ? o->version
                                                                    : "20.2-100"));
    json_object_object_add(m, "os", json_object_new_string(o && o->os ? o->os : "linux"));
    json_object_object_add(m, "arch", json_object_new_string(o && o->arch ? o->arch : arch));
    for (size_t i = 0; i < n; i++) {
        struct json_object *f;
        char type = e[i].m_type ? e[i].m_type : e[i].type == 's' ? 'f' : e[i].type;
        char mode[8], hex[65];
        size_t len;
        char *bytes;
        if (e[i].not_listed)
            continue;
        f = json_object_new_object();
        json_object_object_add(f, "path", json_object_new_string(e[i].path));
        json_object_object_add(f, "type", json_object_new_string(type_word(type)));
        snprintf(mode, sizeof(mode), "%04o", e[i].mode ? e[i].mode : type == 'd' ? 0755 : 0644);
        if (type == 'l') {
            json_object_object_add(f, "target",
                                   json_object_new_string(e[i].data ? e[i].data : "x"));
        } else {
            json_object_object_add(f, "mode", json_object_new_string(mode));
        }
        if (type == 'f') {
            bytes = entry_bytes(&e[i], &len);
            sha256_hex(bytes, len, hex);
            free(bytes);
            json_object_object_add(
                f, "size", json_object_new_int64(e[i].m_size > 0 ? e[i].m_size : (int64_t)len));
            json_object_object_add(f, "sha256",
                                   json_object_new_string(e[i].m_sha256 ? e[i].m_sha256 : hex));
        }
        json_object_array_add(files, f);
    }
    json_object_object_add(m, "files", files);
    text = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY));
    json_object_put(m);
    return text;
}

static void write_entry(struct archive *a, const struct tp_entry *e)
{
    struct archive_entry *ae = archive_entry_new();
    size_t len = 0;
    char *bytes = NULL;

    archive_entry_set_pathname(ae, e->path);
    archive_entry_set_mtime(ae, 0, 0);
    switch (e->type) {
    case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, e->mode ? e->mode : 0755);
        break;
    case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_perm(ae, 0777);
        archive_entry_set_symlink(ae, e->data);
        break;
    case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_hardlink(ae, e->data);
        archive_entry_set_size(ae, 0);
        break;
    case 'c':
    case 'b':
        archive_entry_set_filetype(ae, e->type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_perm(ae, 0666);
        archive_entry_set_rdevmajor(ae, 1);
        archive_entry_set_rdevminor(ae, 3);
        break;
    case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        archive_entry_set_perm(ae, 0644);
        break;
    default: /* 'f', 's' */
        bytes = entry_bytes(e, &len);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
        archive_entry_set_size(ae, (la_int64_t)len);
        if (e->type == 's') {
            /* data in the first and last 512 bytes, a hole between */
            archive_entry_sparse_add_entry(ae, 0, 512);
            archive_entry_sparse_add_entry(ae, (la_int64_t)len - 512, 512);
        }
        break;
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK)
        fail_msg("archive header %s: %s", e->path, archive_error_string(a));
    if (bytes && e->type == 's') {
        assert_int_equal(archive_write_data(a, bytes, 512), 512);
        assert_int_equal(archive_write_data(a, bytes + len - 512, 512), 512);
    } else if (bytes && len) {
        assert_int_equal(archive_write_data(a, bytes, len), (la_ssize_t)len);
    }
    free(bytes);
    archive_entry_free(ae);
}

void tp_write_archive(const char *path, const struct tp_entry *e, size_t n, const struct tp_opts *o)
{
    struct archive *a = archive_write_new();
    char *manifest = o && o->manifest ? strdup(o->manifest) : make_manifest(e, n, o);
    struct tp_entry m = {.path = MOLT_PKG_MANIFEST_NAME, .type = 'f', .data = manifest};

    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (o && o->zstd)
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    else
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    if (!(o && o->manifest_last))
        write_entry(a, &m);
    for (size_t i = 0; i < n; i++) {
        if (!e[i].not_archived)
            write_entry(a, &e[i]);
    }
    if (o && o->manifest_last)
        write_entry(a, &m);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    free(manifest);
}

void tp_write_statement(const char *path, const struct tp_opts *o, struct molt_statement *st_out)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_statement st;
    char spath[PATH_MAX], *bytes, *text;
    size_t len, tlen;

    memset(&st, 0, sizeof(st));
    bytes = tp_slurp(path, &len);
    snprintf(st.name, sizeof(st.name), "molt");
    snprintf(st.version, sizeof(st.version), "%s", o && o->version ? o->version : "20.2-100");
    snprintf(st.release, sizeof(st.release), "1");
    snprintf(st.os, sizeof(st.os), "%s", o && o->os ? o->os : "linux");
    if (o && o->arch)
        snprintf(st.arch, sizeof(st.arch), "%s", o->arch);
    else
        host_arch(st.arch);
    snprintf(st.min_version, sizeof(st.min_version), "%s",
             o && o->min_version ? o->min_version : "");
    st.size = len;
    sha256_hex(bytes, len, st.sha256);
    st.created_ms = 1700000000000;
    assert_int_equal(molt_pkg_file_name(st.version, st.os, st.arch,
                                        o && o->zstd ? ".tar.zst" : ".tar.gz", st.package,
                                        sizeof(st.package), &err),
                     0);
    assert_int_equal(molt_pkg_statement_format(&st, &text, &tlen, &err), 0);
    snprintf(spath, sizeof(spath), "%s.statement.json", path);
    tp_spit(spath, text, tlen);
    free(text);
    free(bytes);
    if (st_out)
        *st_out = st;
}

void tp_sign(const char *path, const char *key)
{
    struct molt_err err = MOLT_ERR_INIT;
    char spath[PATH_MAX], gpath[PATH_MAX], *stmt, *sig;
    size_t len, siglen;

    snprintf(spath, sizeof(spath), "%s.statement.json", path);
    snprintf(gpath, sizeof(gpath), "%s.sig", path);
    stmt = tp_slurp(spath, &len);
    if (molt_pkg_sig_create(key, stmt, len, &sig, &siglen, &err) < 0)
        fail_msg("sign: %s", err.msg);
    tp_spit(gpath, sig, siglen);
    free(sig);
    free(stmt);
}

void tp_make(struct tp_env *env, const struct tp_entry *e, size_t n, const struct tp_opts *o,
             char path_out[PATH_MAX], struct molt_statement *st_out)
{
    struct molt_err err = MOLT_ERR_INIT;
    char arch[32], name[256];

    host_arch(arch);
    assert_int_equal(molt_pkg_file_name(o && o->version ? o->version : "20.2-100",
                                        o && o->os ? o->os : "linux", o && o->arch ? o->arch : arch,
                                        o && o->zstd ? ".tar.zst" : ".tar.gz", name, sizeof(name),
                                        &err),
                     0);
    snprintf(path_out, PATH_MAX, "%s/%s", env->builds, name);
    tp_write_archive(path_out, e, n, o);
    tp_write_statement(path_out, o, st_out);
    tp_sign(path_out, env->key);
}
