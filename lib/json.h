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

/* Parses exactly len bytes (no trailing garbage) with a nesting limit. */
int molt_json_parse(const char *buf, size_t len, struct json_object **out, struct molt_err *err);
/* Required getters: missing or mistyped fields are errors naming the key. */
int molt_json_get_obj(struct json_object *o, const char *key, struct json_object **out,
                      struct molt_err *err);
int molt_json_get_str(struct json_object *o, const char *key, const char **out,
                      struct molt_err *err);
int molt_json_get_int(struct json_object *o, const char *key, int64_t *out, struct molt_err *err);
int molt_json_get_bool(struct json_object *o, const char *key, int *out, struct molt_err *err);
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
/* Serialises without spaces or escaped slashes. */
const char *molt_json_dump(struct json_object *o);

#endif
