/* json.h: strict, bounded access to JSON documents over json-c. Every getter
 * checks the type and names the offending field in its error, so hostile or
 * malformed replies are rejected with a clear reason, never half-read. */
#ifndef MOLT_JSON_H
#define MOLT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"

#define MOLT_JSON_MAX_DEPTH 16

/* Parses exactly len bytes as one RFC 8259 document with a nesting limit:
 * json-c's strict tokener, UTF-8 checked, plus what it lets through refused
 * here: single quotes, NaN/Infinity, leading zeros, control characters and
 * "\u0000" in strings or keys, integers outside int64 (named by their key),
 * and any byte but whitespace after the document (a NUL included). */
int molt_json_parse(const char *buf, size_t len, struct json_object **out, struct molt_err *err);
/* Required getters: missing or mistyped fields are errors naming the key. */
int molt_json_get_obj(struct json_object *o, const char *key, struct json_object **out,
                      struct molt_err *err);
int molt_json_get_str(struct json_object *o, const char *key, const char **out,
                      struct molt_err *err);
int molt_json_get_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err);
int molt_json_get_bool(struct json_object *o, const char *key, int *out, struct molt_err *err);
/* The one reader of an integer field with a range: 1 when read into *out, 0
 * when optional and absent or null (*out untouched: presence is the return,
 * never a value), negative with "field 'key': N is not in min..max" when out
 * of range. */
int molt_json_int_field(struct json_object *o, const char *key, int optional, int64_t min,
                        int64_t max, int64_t *out, struct molt_err *err);
/* Optional getters: a missing key or null leaves *out untouched and returns 0;
 * a present key of the wrong type is still an error. */
int molt_json_opt_str(struct json_object *o, const char *key, const char **out,
                      struct molt_err *err);
int molt_json_opt_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err);
int molt_json_opt_bool(struct json_object *o, const char *key, int *out, struct molt_err *err);
int molt_json_opt_obj(struct json_object *o, const char *key, struct json_object **out,
                      struct molt_err *err);
/* Copies a string field into a fixed buffer, failing if it does not fit. */
int molt_json_copy_str(struct json_object *o, const char *key, char *out, size_t n,
                       struct molt_err *err);
/* Serialises without spaces or escaped slashes; bytes of a string that are not
 * UTF-8 are written as '?', so that molt_json_parse reads back what was written. */
const char *molt_json_dump(struct json_object *o);

#endif
