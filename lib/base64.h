/* base64.h: strict standard base64 (RFC 4648, padding required, no
 * whitespace), and the bounded base64 JSON field reader. */
#ifndef MOLT_BASE64_H
#define MOLT_BASE64_H

#include <stddef.h>

#include <json-c/json.h>

#include "err.h"

/* The base64 length of n bytes. */
#define MOLT_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* *out is malloc'd and NUL-terminated (not counted in *out_len). */
int molt_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len,
                       struct molt_err *err);
/* *out is malloc'd, NUL-terminated. */
int molt_base64_encode(const void *in, size_t len, char **out, struct molt_err *err);
/* The string member key of o, non-empty base64 of at most max bytes, decoded
 * into *out (malloc'd, NUL-terminated) and *len. Errors name the field:
 * MOLT_E_LIMIT when too long, MOLT_E_PARSE when not valid base64. */
int molt_base64_field(struct json_object *o, const char *key, size_t max, unsigned char **out,
                      size_t *len, struct molt_err *err);

#endif
