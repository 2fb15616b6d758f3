/* package_int.h: helpers shared by the package module's files; not for other
 * modules. It includes no package header (the types it names are declared
 * here), so the files that include it form no circle of includes with it. */
#ifndef MOLT_PACKAGE_INT_H
#define MOLT_PACKAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct molt_pkg_limits;

/* Fills lim with defaults when it is NULL, else copies it. */
void molt_pkg_limits_resolve(const struct molt_pkg_limits *in, struct molt_pkg_limits *out);

/* A package-relative path: non-empty, not absolute, no "", "." or ".."
 * components, no control characters, within lim's length and depth. */
int molt_pkg_path_check(const char *path, const struct molt_pkg_limits *lim, struct molt_err *err);

/* 1 when s is exactly n lowercase hex digits. */
int molt_pkg_is_hex(const char *s, size_t n);

/* 1 for [a-z0-9_]{1,n-1}: the spelling of os and arch names. */
int molt_pkg_is_token(const char *s, size_t n);

/* 1 for [0-9A-Za-z.+_-]{0,n-1}: release tags. */
int molt_pkg_is_release(const char *s, size_t n);

/* The running host's os ("linux") and package arch ("amd64"). */
void molt_pkg_host(char os[16], char arch[32]);

/* A manifest.json's bytes against a statement's manifestSha256 (want):
 * MOLT_E_VERIFY "manifest mismatch: ..." when they differ. Staging and the
 * tree check both ask it. */
int molt_pkg_manifest_bytes_check(const void *text, size_t len, const char *want,
                                  struct molt_err *err);

/* The sha256 and size of an open file's contents from its current offset. */
/* hex holds MOLT_PKG_SHA256_HEX bytes (package.h). */
int molt_pkg_hash_fd(int fd, const char *what, char *hex, uint64_t *size, struct molt_err *err);

/* Opens the directory holding rel (a manifest path) under rootfd, one component
 * at a time, never following a symlink; *base gets rel's last component. */
int molt_pkg_open_parent(int rootfd, const char *rel, const char **base, struct molt_err *err);
/* Copies JSON text into a malloc'd, newline-terminated buffer (*len counts the newline). */
struct json_object;
/* MOLT_E_PARSE "WHERE: unknown field 'K'" for a member of o not in allowed
 * (NULL-terminated): signed lists of permissions refuse what they do not know. */
int molt_pkg_only_fields(struct json_object *o, const char *const *allowed, const char *where,
                         struct molt_err *err);
int molt_pkg_text_line(const char *text, char **out, size_t *len, struct molt_err *err);

#endif
