/* command.h: commands riding on heartbeat replies (docs/protocol.md section 3),
 * validated strictly before anything acts on them.
 *
 * molt_command_parse accepts only a well-formed command: known type, task id of
 * 1..20 digits, valid versions (molt_version_valid), sane times, a build with
 * 0 < size <= MOLT_BUILD_MAX_SIZE, 64 hex digits of sha256, an https URL or a
 * server-relative path, and statement and signature that are valid base64 of at
 * most MOLT_BUILD_BLOB_MAX and MOLT_BUILD_SIG_MAX bytes (kept decoded: the exact bytes that were
 * signed), an optional build.delta (baseVersion, url, size, sha256, checked as the
 * build's), an optional maxBytesPerSecond in MOLT_RATE_MIN_BPS..MOLT_RATE_MAX_BPS, and an
 * optional build.downloadUrls: at most MOLT_BUILD_MIRRORS_MAX https URLs (each at most
 * MOLT_BUILD_URL_MAX bytes, with a host, no credentials, no spaces or control
 * characters) tried before the build's own url (molt_build_sources).
 * Anything else is an error naming the offending field; the caller logs
 * it and ignores the command. Whether a valid command is expired, a downgrade or
 * the running version is policy, decided in task.c. */
#ifndef MOLT_COMMAND_H
#define MOLT_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "base64.h"
#include "err.h"
#include "proto.h"

#define MOLT_BUILD_URL_MAX 2048
/* build.downloadUrls: mirrors and CDNs a server names for the build, tried in
 * order before url (the origin). Four are enough for a CDN, two mirrors and a
 * spare; each one more is a source a malicious server can make us wait on. */
#define MOLT_BUILD_MIRRORS_MAX 4
#define MOLT_BUILD_SOURCES_MAX (MOLT_BUILD_MIRRORS_MAX + 1)
/* A source as logs and reports name it (servedBy): molt_http_url_name, the
 * URL less its query and fragment, cut to MOLT_HTTP_URL_NAME_MAX (the same). */
#define MOLT_SOURCE_NAME_MAX 160
#define MOLT_BUILD_MAX_SIZE (2LL * 1024 * 1024 * 1024)   /* 2 GiB */
#define MOLT_BUILD_BLOB_MAX (64 * 1024)         /* statement (decoded): MOLT_PKG_STATEMENT_MAX */
#define MOLT_BUILD_SIG_MAX 4096                 /* signature (decoded): MOLT_PKG_SIG_MAX */
/* The largest command a heartbeat reply can legitimately carry: the statement
 * and signature in base64 (87,384 + 5,464), the URL and the mirrors' (5 x
 * 2,048) and the fixed members (under 1 KiB), about 104 KiB; the cap leaves room for members a
 * server adds. The builds endpoint returns the same build object. */
#define MOLT_COMMAND_REPLY_MAX (128 * 1024)
/* requestTime and expiresAt must fall between these (2020-01-01 .. 2200-01-01). */
#define MOLT_TIME_MIN_MS 1577836800000LL
#define MOLT_TIME_MAX_MS 7258118400000LL
#define MOLT_COMMAND_MAX_LIFETIME_MS (7LL * 24 * 3600 * 1000)

enum molt_command_type { MOLT_CMD_UPGRADE = 1, MOLT_CMD_CANCEL = 2 };

/* build.delta (docs/protocol.md section 3): a patch that rebuilds the build's
 * package from base_version's installed tree (docs/package-format.md section 7).
 * Only a hint: the rebuilt package must still match the signed statement. */
struct molt_delta_ref {
    int present;
    char base_version[MOLT_VERSION_MAX + 1];
    char url[MOLT_BUILD_URL_MAX + 1];
    int64_t size;
    char sha256[65];
};

struct molt_build {
    char version[MOLT_VERSION_MAX + 1];
    char url[MOLT_BUILD_URL_MAX + 1];        /* absolute https://, or "/path" on the server */
    char mirrors[MOLT_BUILD_MIRRORS_MAX][MOLT_BUILD_URL_MAX + 1];   /* downloadUrls, in order */
    int n_mirrors;
    int64_t size;
    char sha256[65];                         /* lower-case hex */
    unsigned char *statement;                /* decoded; malloc'd */
    size_t statement_len;
    unsigned char *signature;                /* decoded; malloc'd */
    size_t signature_len;
    struct molt_delta_ref delta;             /* optional */
};

struct molt_command {
    enum molt_command_type type;
    char task_id[MOLT_TASK_ID_MAX + 1];
    /* upgrade only: */
    char to_version[MOLT_VERSION_MAX + 1];
    int64_t request_time;
    int64_t expires_at;
    int64_t max_rate;        /* maxBytesPerSecond, 0 = none asked (the host's cap applies) */
    struct molt_build build;
};

/* build.delta's object, parsed as strictly as the command (upgrade.json keeps it too). */
int molt_delta_ref_parse(struct json_object *o, struct molt_delta_ref *d, struct molt_err *err);
struct json_object *molt_delta_ref_to_json(const struct molt_delta_ref *d);

/* Fills cmd from a command object; on error cmd holds nothing to free. */
int molt_command_parse(struct json_object *o, struct molt_command *cmd, struct molt_err *err);
/* Deep copy, for a pipeline that keeps the command beyond the dispatch call. */
int molt_command_copy(struct molt_command *dst, const struct molt_command *src,
                      struct molt_err *err);
void molt_command_free(struct molt_command *cmd);
/* Optional member downloadUrls of the build object o into b (validated as
 * above; b->n_mirrors = 0 when absent). Also what upgrade.json is read with. */
int molt_build_mirrors_parse(struct json_object *o, struct molt_build *b, struct molt_err *err);
/* The order in which a build is fetched: its mirrors in the listed order, then
 * its url (the origin), each once. out[i] points into b; returns the count (>= 1). */
int molt_build_sources(const struct molt_build *b, const char *out[MOLT_BUILD_SOURCES_MAX]);
/* "upgrade" / "cancel". */
const char *molt_command_type_name(enum molt_command_type t);

#endif
