/* api.h: the agent's local HTTP API on a Unix socket, with a small router.
 *
 * api_http.c serves <run_dir>/agent.sock (mode 0660) from its own thread,
 * one request per connection.
 * Every connection's peer is checked with SO_PEERCRED: root, the agent's own
 * user, and members of the socket's group are served; others get 403.
 * Responses use the obshell envelope:
 *   {"successful", "timestamp", "duration", "status", "traceId", "data", "error"}
 * where error is null or {"code", "message"}. Unknown paths answer 404, a known
 * path with another method 405, in the same envelope, as do requests the HTTP
 * layer refuses (400, 411, 413, 414, 417, 431, 501, 505).
 *
 * Adding an endpoint (before molt_api_start; the table is fixed afterwards):
 *   molt_api_route(api, "POST", "/api/v1/agent/upgrade", handler, arg);
 *   molt_api_route(api, "GET", "/api/v1/agent/tasks/" "*", handler, arg);  // prefix
 * A handler runs on the API thread: it must be quick and thread-safe (use the
 * agent's accessors). It fills res->data (an owned json object) or calls
 * molt_api_error(). Request bodies are capped at MOLT_API_BODY_MAX. */
#ifndef MOLT_API_H
#define MOLT_API_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "api_http.h"
#include "err.h"

#define MOLT_API_SOCKET "agent.sock"
#define MOLT_API_BODY_MAX MOLT_API_HTTP_BODY_MAX
#define MOLT_API_MAX_ROUTES 32

struct molt_api;

struct molt_api_request {
    const char *method;
    const char *path;       /* without the query string */
    const char *rest;       /* for prefix routes: the part after the prefix, else "" */
    const char *body;       /* NUL-terminated, may be "" */
    size_t body_len;
    uid_t peer_uid;
    pid_t peer_pid;
};

struct molt_api_response {
    int status;             /* HTTP status; 200 unless set */
    struct json_object *data;      /* owned by the response */
    char *text;             /* malloc'd, owned: sent as is, as text/plain, not in an envelope */
    const char *text_type;  /* its Content-Type */
    char error_code[64];
    char error_message[512];
    /* Called on the API thread once the reply is sent or the connection ends,
     * for what would cut the reply off if done at once (the restart after a
     * rollback); then_arg is its argument. */
    void (*then)(void *arg);
    void *then_arg;
};

typedef void (*molt_api_handler)(void *arg, const struct molt_api_request *req,
                                 struct molt_api_response *res);

int molt_api_new(struct molt_api **out, struct molt_err *err);
/* path ending in '*' matches any path with that prefix. */
int molt_api_route(struct molt_api *api, const char *method, const char *path,
                   molt_api_handler fn, void *arg, struct molt_err *err);
/* Binds the socket (refusing one another process is serving: MOLT_E_BUSY) and
 * starts serving. */
int molt_api_start(struct molt_api *api, const char *socket_path, struct molt_err *err);
/* Stops serving, removes the socket, frees everything. */
void molt_api_free(struct molt_api *api);

/* Sets an error response (data is dropped). */
void molt_api_error(struct molt_api_response *res, int status, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Builds the envelope (exposed for tests). The caller puts the object. */
struct json_object *molt_api_envelope(const struct molt_api_response *res, long duration_ms,
                                      const char *trace_id);

#endif
