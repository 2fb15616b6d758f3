/* worker_msg.h: the messages between the agent and its upgrade worker over
 * two socketpairs (docs/protocol.md section 7): frames of a 4-byte big-endian
 * length and one JSON object of at most MOLT_WMSG_MAX bytes, on a stream (the
 * task's messages) or one per record of a SOCK_SEQPACKET pair (the worker's
 * requests for connections, answered with a connected socket). The
 * worker parses untrusted packages, so the agent reads what it sends as
 * hostile: every field typed and bounded, unknown types and fields refused,
 * and a reader that takes bytes as they come from a non-blocking fd. */
#ifndef MOLT_WORKER_MSG_H
#define MOLT_WORKER_MSG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "command.h"
#include "identity.h"
#include "err.h"
#include "log.h"

#define MOLT_WMSG_MAX (64 * 1024) /* a frame's JSON, bytes */
#define MOLT_WMSG_HEADER 4
#define MOLT_WMSG_EVENT_MAX 63
#define MOLT_WMSG_TEXT_MAX 1023
#define MOLT_WMSG_MESSAGE_MAX 511 /* a report's message (report.h) */
#define MOLT_WMSG_STAGE_MAX 15

enum molt_wmsg_type {
    /* worker -> agent */
    MOLT_WMSG_PROGRESS = 1,
    MOLT_WMSG_LOG,
    MOLT_WMSG_RESULT,
    MOLT_WMSG_CONNECT,
    /* agent -> worker */
    MOLT_WMSG_START,
    MOLT_WMSG_CANCEL,
    MOLT_WMSG_CONNECTED,
};

/* Who reads a stream: a message of the other direction is refused. */
enum molt_wmsg_dir { MOLT_WMSG_TO_AGENT, MOLT_WMSG_TO_WORKER };

struct molt_wmsg {
    enum molt_wmsg_type type;
    /* progress and result: "preflight", "downloading", "verifying" or "staging" */
    char stage[MOLT_WMSG_STAGE_MAX + 1];
    /* progress */
    int64_t bytes_done;                         /* 0..bytes_total when that is known (> 0) */
    int64_t bytes_total;                        /* 0 = unknown */
    char served_by[MOLT_SOURCE_NAME_MAX + 1];   /* "" = none */
    int source;        /* the source in use, an index into molt_build_sources; -1 = none */
    /* progress (optional) and result: the report's message */
    /* log */
    enum molt_log_level level;
    char event[MOLT_WMSG_EVENT_MAX + 1];        /* [a-z0-9_.-], as molt_log's */
    char text[MOLT_WMSG_TEXT_MAX + 1];
    char message[MOLT_WMSG_MESSAGE_MAX + 1];
    /* result and connected */
    int ok;
    char staged_path[PATH_MAX];                 /* ok: absolute, no "." or ".." parts */
    /* start: the task state (the document of upgrade.json); owned, freed by
     * molt_wmsg_clear */
    struct json_object *task;
    /* start: the agent's settings in force, molt_conf_format's text (a JSON
     * string), which the worker reads instead of any file; owned, freed by
     * molt_wmsg_clear */
    struct json_object *config;
    /* connect: the numeric address and TCP port libcurl would connect to */
    char address[64];
    int64_t port;
    /* start: the hosts the task may reach, pinned by the agent
     * (molt_wnet_to_json's array, checked by molt_wnet_from_json); owned,
     * freed by molt_wmsg_clear */
    struct json_object *hosts;
    /* start (optional): the collector token, sent only when a download URL of
     * the task is the control plane's own origin; wiped by molt_wmsg_clear */
    char token[MOLT_TOKEN_MAX + 1];
};

/* A new, empty message (source -1). */
void molt_wmsg_init(struct molt_wmsg *m);
/* Empties m as molt_wmsg_init does, dropping its task and configuration and
 * wiping its token. */
void molt_wmsg_clear(struct molt_wmsg *m);
const char *molt_wmsg_type_name(enum molt_wmsg_type type);

/* One frame's JSON (without the length) into *m, which is cleared first and
 * left cleared on error. Errors name the field: "field 'bytesDone': ...". */
int molt_wmsg_decode(const char *json, size_t len, enum molt_wmsg_dir dir, struct molt_wmsg *m,
                     struct molt_err *err);
/* The whole frame, length included, into a malloc'd *out. m is checked as
 * the reader checks it, so what is written is always read back. */
int molt_wmsg_encode(const struct molt_wmsg *m, char **out, size_t *len, struct molt_err *err);
/* Encodes and writes the whole frame; on a non-blocking fd waits for room up
 * to timeout_ms (MOLT_E_TIMEOUT). */
int molt_wmsg_write(int fd, const struct molt_wmsg *m, int timeout_ms, struct molt_err *err);

/* A frame as one record of a SOCK_SEQPACKET socket, with the descriptor
 * pass_fd along (SCM_RIGHTS) when it is not -1; waits for room up to
 * timeout_ms. */
int molt_wmsg_send(int fd, const struct molt_wmsg *m, int pass_fd, int timeout_ms,
                   struct molt_err *err);
/* Waits up to timeout_ms (MOLT_E_TIMEOUT) for one record of a SOCK_SEQPACKET
 * socket: 1 with *m filled and *passed the descriptor it carried (-1 for
 * none; close-on-exec), MOLT_WMSG_EOF when the peer is gone, negative when
 * the record is not one whole frame or carries more than one descriptor. */
int molt_wmsg_recv(int fd, enum molt_wmsg_dir dir, int timeout_ms, struct molt_wmsg *m,
                   int *passed, struct molt_err *err);

/* The reader: a state machine over header and body, so a frame may arrive in
 * any number of pieces. Any error is final (a stream out of step cannot be
 * trusted to find the next frame): the reader refuses everything after it. */
struct molt_wmsg_reader {
    enum molt_wmsg_dir dir;
    unsigned char header[MOLT_WMSG_HEADER];
    size_t header_got;
    uint32_t len;       /* the body's, once the header is in */
    size_t body_got;
    char *body;         /* MOLT_WMSG_MAX bytes, allocated at init */
    int failed;
};

#define MOLT_WMSG_EOF 2 /* the peer closed the stream between two frames */

int molt_wmsg_reader_init(struct molt_wmsg_reader *r, enum molt_wmsg_dir dir,
                          struct molt_err *err);
void molt_wmsg_reader_free(struct molt_wmsg_reader *r);
/* Takes bytes from data (at most up to the end of the current frame; *used
 * says how many): 1 with *m filled when a frame is complete, 0 when more is
 * needed, negative on a bad frame. */
int molt_wmsg_reader_feed(struct molt_wmsg_reader *r, const void *data, size_t n, size_t *used,
                          struct molt_wmsg *m, struct molt_err *err);
/* Reads from fd, never past the current frame: 1 with *m filled, 0 when fd
 * has nothing more now (EAGAIN), MOLT_WMSG_EOF on end of stream between
 * frames, negative on an error or an end of stream inside a frame. */
int molt_wmsg_read(struct molt_wmsg_reader *r, int fd, struct molt_wmsg *m, struct molt_err *err);

#endif
