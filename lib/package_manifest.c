/* package_manifest.c: the package's manifest.json: parsing with every
 * structural rule (paths, parents, symlinks, limits), so that staging only has
 * to match archive entries against an already sound list. */
#include "package.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "package_int.h"
#include "text.h"
#include "version.h"

#define MANIFEST_FORMAT 1

void molt_pkg_limits_default(struct molt_pkg_limits *lim)
{
    lim->max_entries = 10000;
    lim->max_path = 255;
    lim->max_depth = 32;
    lim->max_manifest = 4u << 20;
    lim->max_unpacked = (uint64_t)4 << 30;
    lim->free_margin = 16u << 20;
}

void molt_pkg_limits_resolve(const struct molt_pkg_limits *in, struct molt_pkg_limits *out)
{
    if (in)
        *out = *in;
    else
        molt_pkg_limits_default(out);
}

int molt_pkg_path_check(const char *path, const struct molt_pkg_limits *lim, struct molt_err *err)
{
    char show[200];
    size_t len = strlen(path), depth = 0;

    molt_text_shown(show, sizeof(show), path, 0);
    if (len == 0)
        return molt_err_set(err, MOLT_E_VERIFY, "empty path");
    if (len > lim->max_path)
        return molt_err_set(err, MOLT_E_LIMIT, "path longer than %zu bytes: %s", lim->max_path,
                            show);
    if (path[0] == '/')
        return molt_err_set(err, MOLT_E_VERIFY, "absolute path: %s", show);
    if (molt_text_find_control(path, len, NULL))
        return molt_err_set(err, MOLT_E_VERIFY, "control character in path: %s", show);
    for (const char *p = path; p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return molt_err_set(err, MOLT_E_VERIFY, "path traversal ('..'): %s", show);
        if (n == 1 && p[0] == '.')
            return molt_err_set(err, MOLT_E_VERIFY, "'.' component in path: %s", show);
        if (n == 0)
            return molt_err_set(err, MOLT_E_VERIFY, "empty component in path: %s", show);
        if (++depth > lim->max_depth)
            return molt_err_set(err, MOLT_E_LIMIT, "path deeper than %zu components: %s",
                                lim->max_depth, show);
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const struct molt_pkg_file *)a)->path, ((const struct molt_pkg_file *)b)->path);
}

static int cmp_path(const void *key, const void *elem)
{
    return strcmp(key, ((const struct molt_pkg_file *)elem)->path);
}

const struct molt_pkg_file *molt_pkg_manifest_find(const struct molt_manifest *m, const char *path)
{
    if (!m->files)
        return NULL;
    return bsearch(path, m->files, m->nfiles, sizeof(m->files[0]), cmp_path);
}

void molt_pkg_manifest_free(struct molt_manifest *m)
{
    for (size_t i = 0; m->files && i < m->nfiles; i++) {
        free(m->files[i].path);
        free(m->files[i].target);
    }
    free(m->files);
    memset(m, 0, sizeof(*m));
}

static int parse_mode(const char *s, unsigned *out)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n < 3 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        v = v * 8 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_entry(struct json_object *o, const struct molt_pkg_limits *lim,
                       struct molt_pkg_file *f, struct molt_err *err)
{
    const char *path, *type, *mode = NULL, *sha = NULL, *target = NULL;
    int64_t size = -1;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not an object");
    if ((rc = molt_json_get_str(o, "path", &path, err)) < 0 ||
        (rc = molt_json_get_str(o, "type", &type, err)) < 0)
        return rc;
    rc = molt_pkg_path_check(path, lim, err);
    if (rc < 0)
        return rc;
    if (strcmp(path, MOLT_PKG_MANIFEST_NAME) == 0)
        return molt_err_set(err, MOLT_E_PARSE, "'%s' is reserved", MOLT_PKG_MANIFEST_NAME);
    if (strcmp(type, "file") == 0) {
        f->type = MOLT_PKG_FILE;
        if ((rc = molt_json_get_str(o, "mode", &mode, err)) < 0 ||
            (rc = molt_json_int_field(o, "size", 0, 0, INT64_MAX, &size, err)) < 0 ||
            (rc = molt_json_get_str(o, "sha256", &sha, err)) < 0)
            return rc;
        if (!molt_pkg_is_hex(sha, 64))
            return molt_err_set(err, MOLT_E_PARSE, "field 'sha256': not 64 lowercase hex digits");
        f->size = (uint64_t)size;
        memcpy(f->sha256, sha, MOLT_PKG_SHA256_HEX);
    } else if (strcmp(type, "dir") == 0) {
        f->type = MOLT_PKG_DIR;
        if ((rc = molt_json_get_str(o, "mode", &mode, err)) < 0)
            return rc;
    } else if (strcmp(type, "symlink") == 0) {
        f->type = MOLT_PKG_SYMLINK;
        if ((rc = molt_json_get_str(o, "target", &target, err)) < 0)
            return rc;
        if (strlen(target) == 0 || strlen(target) > lim->max_path)
            return molt_err_set(err, MOLT_E_PARSE, "field 'target': empty or too long");
    } else {
        return molt_err_set(err, MOLT_E_PARSE, "field 'type': '%.16s' is not file, dir or symlink",
                            type);
    }
    if (mode && parse_mode(mode, &f->mode) < 0)
        return molt_err_set(err, MOLT_E_PARSE, "field 'mode': not 3 or 4 octal digits");
    f->path = strdup(path);
    f->target = target ? strdup(target) : NULL;
    if (!f->path || (target && !f->target))
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    return 0;
}

/* Is the accumulated path (stack of components joined) a listed directory? */
static int is_listed_dir(const struct molt_manifest *m, const char *path)
{
    const struct molt_pkg_file *f = molt_pkg_manifest_find(m, path);

    return f && f->type == MOLT_PKG_DIR;
}

/* Resolves a symlink's target lexically from the link's directory. Every
 * component passed through must be a listed directory (never a symlink, whose
 * ".." the kernel would resolve elsewhere), the walk must never climb above
 * the package root, and the result must be a listed entry or the root. */
static int check_symlink(const struct molt_manifest *m, const struct molt_pkg_file *link,
                         struct molt_err *err)
{
    char cur[PATH_MAX];
    char show[200], tshow[200];
    size_t len;
    const char *slash = strrchr(link->path, '/');
    const char *t = link->target;

    molt_text_shown(show, sizeof(show), link->path, 0);
    molt_text_shown(tshow, sizeof(tshow), link->target, 0);
    if (t[0] == '/')
        return molt_err_set(err, MOLT_E_VERIFY, "symlink escapes the package: %s -> %s", show,
                            tshow);
    if (molt_text_find_control(t, SIZE_MAX, NULL))
        return molt_err_set(err, MOLT_E_VERIFY, "control character in symlink: %s", show);
    len = slash ? (size_t)(slash - link->path) : 0;
    memcpy(cur, link->path, len);
    cur[len] = '\0';
    for (const char *p = t; p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* stays where it is */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            char *up = strrchr(cur, '/');
            if (len == 0)
                return molt_err_set(err, MOLT_E_VERIFY, "symlink escapes the package: %s -> %s",
                                    show, tshow);
            len = up ? (size_t)(up - cur) : 0;
            cur[len] = '\0';
        } else {
            if (len + n + 2 > sizeof(cur))
                return molt_err_set(err, MOLT_E_LIMIT, "symlink target too long: %s", show);
            if (len)
                cur[len++] = '/';
            memcpy(cur + len, p, n);
            len += n;
            cur[len] = '\0';
            if (end && !is_listed_dir(m, cur))
                return molt_err_set(err, MOLT_E_VERIFY,
                                    "symlink goes through something not a listed directory: "
                                    "%s -> %s",
                                    show, tshow);
        }
        p = end ? end + 1 : NULL;
    }
    if (len > 0 && !molt_pkg_manifest_find(m, cur))
        return molt_err_set(err, MOLT_E_VERIFY, "symlink target not in the package: %s -> %s", show,
                            tshow);
    return 0;
}

/* Rules across entries: unique paths, parents listed as directories,
 * symlinks inside, total size within the limit. */
static int check_structure(struct molt_manifest *m, const struct molt_pkg_limits *lim,
                           struct molt_err *err)
{
    char show[200];
    uint64_t total = 0;

    qsort(m->files, m->nfiles, sizeof(m->files[0]), cmp_files);
    for (size_t i = 0; i < m->nfiles; i++) {
        struct molt_pkg_file *f = &m->files[i];
        char *slash = strrchr(f->path, '/');

        molt_text_shown(show, sizeof(show), f->path, 0);
        if (i > 0 && strcmp(m->files[i - 1].path, f->path) == 0)
            return molt_err_set(err, MOLT_E_VERIFY, "duplicate path: %s", show);
        if (slash) {
            char parent[PATH_MAX];
            snprintf(parent, sizeof(parent), "%.*s", (int)(slash - f->path), f->path);
            if (!is_listed_dir(m, parent))
                return molt_err_set(err, MOLT_E_VERIFY, "parent of %s is not a listed directory",
                                    show);
        }
        if (f->type == MOLT_PKG_FILE) {
            if (f->size > lim->max_unpacked || total > lim->max_unpacked - f->size)
                return molt_err_set(err, MOLT_E_LIMIT,
                                    "unpacked size exceeds the limit of %" PRIu64 " bytes",
                                    lim->max_unpacked);
            total += f->size;
        }
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        if (m->files[i].type == MOLT_PKG_SYMLINK) {
            int rc = check_symlink(m, &m->files[i], err);
            if (rc < 0)
                return rc;
        }
    }
    m->total_size = total;
    return 0;
}

static int parse_header(struct json_object *o, struct molt_manifest *m, struct molt_err *err)
{
    int64_t format = 0;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not a JSON object");
    if ((rc = molt_json_get_int(o, "format", &format, err)) < 0)
        return rc;
    if (format != MANIFEST_FORMAT)
        return molt_err_set(err, MOLT_E_PARSE, "format %" PRId64 " is not supported", format);
    if ((rc = molt_json_copy_str(o, "name", m->name, sizeof(m->name), err)) < 0 ||
        (rc = molt_json_copy_str(o, "version", m->version, sizeof(m->version), err)) < 0 ||
        (rc = molt_json_copy_str(o, "os", m->os, sizeof(m->os), err)) < 0 ||
        (rc = molt_json_copy_str(o, "arch", m->arch, sizeof(m->arch), err)) < 0)
        return rc;
    if (strcmp(m->name, MOLT_PKG_NAME) != 0)
        return molt_err_set(err, MOLT_E_PARSE, "name is '%s', expected '%s'", m->name,
                            MOLT_PKG_NAME);
    if (!molt_version_valid(m->version))
        return molt_err_set(err, MOLT_E_PARSE, "field 'version': not a version");
    if (!molt_pkg_is_token(m->os, sizeof(m->os)) || !molt_pkg_is_token(m->arch, sizeof(m->arch)))
        return molt_err_set(err, MOLT_E_PARSE, "fields 'os', 'arch': only [a-z0-9_] allowed");
    return 0;
}

static int parse_files(struct json_object *o, const struct molt_pkg_limits *lim,
                       struct molt_manifest *m, struct molt_err *err)
{
    struct json_object *files = NULL;
    size_t n;

    if (!json_object_object_get_ex(o, "files", &files) ||
        !json_object_is_type(files, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'files': missing or not an array");
    n = json_object_array_length(files);
    if (n > lim->max_entries)
        return molt_err_set(err, MOLT_E_LIMIT, "too many entries: %zu, limit %zu", n,
                            lim->max_entries);
    m->files = calloc(n ? n : 1, sizeof(m->files[0]));
    if (!m->files)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc = parse_entry(json_object_array_get_idx(files, i), lim, &m->files[i], err);
        m->nfiles = i + 1;
        if (rc < 0)
            return molt_err_prefix(err, "files[%zu]", i);
    }
    return 0;
}

int molt_pkg_manifest_parse(const void *buf, size_t len, const struct molt_pkg_limits *lim_in,
                            struct molt_manifest *out, struct molt_err *err)
{
    struct molt_pkg_limits lim;
    struct json_object *o = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    molt_pkg_limits_resolve(lim_in, &lim);
    if (len > lim.max_manifest) {
        rc = molt_err_set(err, MOLT_E_LIMIT, "larger than %zu bytes", lim.max_manifest);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        rc = molt_err_set(err, MOLT_E_PARSE, "contains a NUL byte");
        goto out;
    }
    rc = molt_json_parse(buf, len, &o, err);
    if (rc == 0)
        rc = parse_header(o, out, err);
    if (rc == 0)
        rc = parse_files(o, &lim, out, err);
    if (rc == 0)
        rc = check_structure(out, &lim, err);
out:
    json_object_put(o);
    if (rc < 0) {
        molt_pkg_manifest_free(out);
        molt_err_prefix(err, "manifest");
    }
    return rc;
}

static struct json_object *entry_json(const struct molt_pkg_file *f)
{
    struct json_object *e = json_object_new_object();
    char mode[8];

    snprintf(mode, sizeof(mode), "%04o", f->mode & 07777);
    json_object_object_add(e, "path", json_object_new_string(f->path));
    switch (f->type) {
    case MOLT_PKG_FILE:
        json_object_object_add(e, "type", json_object_new_string("file"));
        json_object_object_add(e, "mode", json_object_new_string(mode));
        json_object_object_add(e, "size", json_object_new_int64((int64_t)f->size));
        json_object_object_add(e, "sha256", json_object_new_string(f->sha256));
        break;
    case MOLT_PKG_DIR:
        json_object_object_add(e, "type", json_object_new_string("dir"));
        json_object_object_add(e, "mode", json_object_new_string(mode));
        break;
    case MOLT_PKG_SYMLINK:
        json_object_object_add(e, "type", json_object_new_string("symlink"));
        json_object_object_add(e, "target", json_object_new_string(f->target));
        break;
    }
    return e;
}

int molt_pkg_manifest_format(const struct molt_manifest *m, char **out, size_t *len,
                             struct molt_err *err)
{
    struct json_object *o = json_object_new_object();
    struct json_object *files = json_object_new_array();
    const char *text;
    int rc = 0;

    *out = NULL;
    json_object_object_add(o, "format", json_object_new_int(MANIFEST_FORMAT));
    json_object_object_add(o, "name", json_object_new_string(m->name));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "os", json_object_new_string(m->os));
    json_object_object_add(o, "arch", json_object_new_string(m->arch));
    for (size_t i = 0; i < m->nfiles; i++)
        json_object_array_add(files, entry_json(&m->files[i]));
    json_object_object_add(o, "files", files);
    text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    rc = molt_pkg_text_line(text, out, len, err);
    json_object_put(o);
    return rc;
}
