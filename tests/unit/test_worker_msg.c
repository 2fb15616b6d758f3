/* test_worker_msg.c: the agent <-> upgrade worker frames: every message type
 * round trips, each bad frame is refused naming what is wrong (oversize,
 * empty, truncated, bad JSON, wrong types, bounds, unknown types and fields,
 * the wrong direction), a frame split across many reads on a non-blocking
 * pipe, a reader that refuses everything after a bad frame, and the
 * connection channel's records with the descriptor they carry. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "worker_msg.h"

static void frame_of(const char *json, char *out, size_t *len)
{
    size_t n = strlen(json);

    out[0] = (char)(n >> 24);
    out[1] = (char)(n >> 16);
    out[2] = (char)(n >> 8);
    out[3] = (char)n;
    memcpy(out + 4, json, n);
    *len = n + 4;
}

/* Feeds a whole buffer; returns the last result. */
static int feed_all(struct molt_wmsg_reader *r, const char *buf, size_t len, struct molt_wmsg *m,
                    struct molt_err *err)
{
    size_t used;
    int rc = molt_wmsg_reader_feed(r, buf, len, &used, m, err);

    if (rc == 1)
        assert_int_equal(used, len);
    return rc;
}

static void round_trip(const struct molt_wmsg *in, enum molt_wmsg_dir dir, struct molt_wmsg *out)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg_reader r;
    char *frame;
    size_t len;

    assert_int_equal(molt_wmsg_encode(in, &frame, &len, &err), 0);
    assert_int_equal(molt_wmsg_reader_init(&r, dir, &err), 0);
    assert_int_equal(feed_all(&r, frame, len, out, &err), 1);
    molt_wmsg_reader_free(&r);
    free(frame);
}

static void test_round_trips(void **state)
{
    struct molt_wmsg in = { .type = MOLT_WMSG_PROGRESS, .bytes_done = 5, .bytes_total = 1 << 30 };
    struct molt_wmsg out;

    strcpy(in.stage, "downloading");
    strcpy(in.served_by, "mirror.example:443");
    round_trip(&in, MOLT_WMSG_TO_AGENT, &out);
    assert_int_equal(out.type, MOLT_WMSG_PROGRESS);
    assert_string_equal(out.stage, "downloading");
    assert_int_equal(out.bytes_done, 5);
    assert_int_equal(out.bytes_total, 1 << 30);
    assert_string_equal(out.served_by, "mirror.example:443");
    molt_wmsg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = MOLT_WMSG_LOG;
    in.level = MOLT_LOG_WARN;
    strcpy(in.event, "download.retry");
    strcpy(in.text, "source 1 failed: \"timeout\" \xc3\xa9");
    round_trip(&in, MOLT_WMSG_TO_AGENT, &out);
    assert_int_equal(out.level, MOLT_LOG_WARN);
    assert_string_equal(out.event, "download.retry");
    assert_string_equal(out.text, in.text);
    molt_wmsg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = MOLT_WMSG_RESULT;
    in.ok = 1;
    strcpy(in.stage, "staging");
    strcpy(in.staged_path, "/var/lib/molt/upgrades/task-7/staged");
    round_trip(&in, MOLT_WMSG_TO_AGENT, &out);
    assert_true(out.ok);
    assert_string_equal(out.staged_path, in.staged_path);
    assert_string_equal(out.message, "");
    molt_wmsg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = MOLT_WMSG_RESULT;
    strcpy(in.stage, "verifying");
    strcpy(in.message, "signature: no key of the keyring signed the statement");
    round_trip(&in, MOLT_WMSG_TO_AGENT, &out);
    assert_false(out.ok);
    assert_string_equal(out.message, in.message);
    assert_string_equal(out.staged_path, "");
    molt_wmsg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = MOLT_WMSG_START;
    in.task = json_tokener_parse("{\"taskId\":\"7\",\"stage\":\"downloading\",\"n\":[1,2]}");
    assert_non_null(in.task);
    in.config = json_object_new_string("[server]\nurl = \"https://cp:8443\"\n[agent]\n");
    in.hosts = json_tokener_parse("[{\"host\":\"cp\",\"port\":8443,"
                                  "\"addresses\":[\"10.0.0.1\",\"fd00::1\"]}]");
    assert_non_null(in.hosts);
    round_trip(&in, MOLT_WMSG_TO_WORKER, &out);
    assert_int_equal(out.type, MOLT_WMSG_START);
    assert_non_null(out.task);
    assert_string_equal(molt_json_dump(out.task), molt_json_dump(in.task));
    assert_string_equal(json_object_get_string(out.config),
                        "[server]\nurl = \"https://cp:8443\"\n[agent]\n");
    assert_string_equal(molt_json_dump(out.hosts), molt_json_dump(in.hosts));
    molt_wmsg_clear(&out);
    molt_wmsg_clear(&in);

    in.type = MOLT_WMSG_CONNECT;
    strcpy(in.address, "2001:db8::7");
    in.port = 443;
    round_trip(&in, MOLT_WMSG_TO_AGENT, &out);
    assert_string_equal(out.address, "2001:db8::7");
    assert_int_equal(out.port, 443);
    molt_wmsg_clear(&in);

    in.type = MOLT_WMSG_CONNECTED;
    strcpy(in.message, "10.0.0.1 port 443: connect: Connection refused");
    round_trip(&in, MOLT_WMSG_TO_WORKER, &out);
    assert_false(out.ok);
    assert_string_equal(out.message, in.message);
    molt_wmsg_clear(&in);

    in.type = MOLT_WMSG_CANCEL;
    round_trip(&in, MOLT_WMSG_TO_WORKER, &out);
    assert_int_equal(out.type, MOLT_WMSG_CANCEL);
    assert_string_equal(molt_wmsg_type_name(out.type), "cancel");
}

/* The encoder refuses what the reader would, instead of sending it. */
static void test_encode_refuses_invalid(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m = { .type = MOLT_WMSG_PROGRESS, .bytes_done = 9, .bytes_total = 3 };
    char *frame;
    size_t len;

    strcpy(m.stage, "downloading");
    assert_true(molt_wmsg_encode(&m, &frame, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'bytesDone'"));
    assert_null(frame);
    memset(&m, 0, sizeof(m));
    m.type = MOLT_WMSG_RESULT;
    m.ok = 1;
    strcpy(m.stage, "staging");
    strcpy(m.staged_path, "/var/lib/molt/../../etc");
    assert_true(molt_wmsg_encode(&m, &frame, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'stagedPath'"));
    memset(&m, 0, sizeof(m));
    m.type = MOLT_WMSG_START;
    assert_true(molt_wmsg_encode(&m, &frame, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "task"));
    /* A start without the agent's settings: the worker would have none. */
    m.task = json_object_new_object();
    assert_true(molt_wmsg_encode(&m, &frame, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'config'"));
    molt_wmsg_clear(&m);
    /* Nor without the pinned hosts: the worker could connect nowhere. */
    m.type = MOLT_WMSG_START;
    m.task = json_object_new_object();
    m.config = json_object_new_string("");
    assert_true(molt_wmsg_encode(&m, &frame, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'hosts'"));
    molt_wmsg_clear(&m);
}

struct bad {
    const char *json;
    enum molt_wmsg_dir dir;
    const char *want; /* in the error */
};

static void test_bad_messages(void **state)
{
    static const struct bad cases[] = {
        { "{\"type\":\"progress\"", MOLT_WMSG_TO_AGENT, "worker message" },
        { "[1,2]", MOLT_WMSG_TO_AGENT, "not a JSON object" },
        { "{}", MOLT_WMSG_TO_AGENT, "type" },
        { "{\"type\":7}", MOLT_WMSG_TO_AGENT, "type" },
        { "{\"type\":\"shell\"}", MOLT_WMSG_TO_AGENT, "'shell' is not known" },
        { "{\"type\":\"start\",\"task\":{}}", MOLT_WMSG_TO_AGENT, "not sent by the worker" },
        { "{\"type\":\"result\",\"ok\":false,\"stage\":\"staging\",\"message\":\"\"}",
          MOLT_WMSG_TO_WORKER, "not sent by the agent" },
        { "{\"type\":\"cancel\",\"now\":true}", MOLT_WMSG_TO_WORKER, "unknown field 'now'" },
        { "{\"type\":\"start\",\"task\":{}}", MOLT_WMSG_TO_WORKER, "field 'config'" },
        { "{\"type\":\"start\",\"task\":{},\"config\":7}", MOLT_WMSG_TO_WORKER,
          "field 'config'" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"[agent]\\r\\nname = x\"}",
          MOLT_WMSG_TO_WORKER, "field 'config': control character" },
        { "{\"type\":\"progress\",\"stage\":\"downloading\",\"bytesDone\":\"1\",\"bytesTotal\":2}",
          MOLT_WMSG_TO_AGENT, "bytesDone" },
        { "{\"type\":\"progress\",\"stage\":\"downloading\",\"bytesDone\":-1,\"bytesTotal\":2}",
          MOLT_WMSG_TO_AGENT, "bytesDone" },
        { "{\"type\":\"progress\",\"stage\":\"downloading\",\"bytesDone\":1,\"bytesTotal\":1.5}",
          MOLT_WMSG_TO_AGENT, "bytesTotal" },
        { "{\"type\":\"progress\",\"stage\":\"downloading\",\"bytesDone\":1,"
          "\"bytesTotal\":99999999999999999999}",
          MOLT_WMSG_TO_AGENT, "bytesTotal" },
        { "{\"type\":\"progress\",\"stage\":\"switching\",\"bytesDone\":1,\"bytesTotal\":2}",
          MOLT_WMSG_TO_AGENT, "field 'stage': 'switching' is not known" },
        { "{\"type\":\"progress\",\"stage\":\"staging\",\"bytesDone\":1,\"bytesTotal\":2,"
          "\"servedBy\":\"a\\nb\"}",
          MOLT_WMSG_TO_AGENT, "field 'servedBy': control character" },
        { "{\"type\":\"progress\",\"stage\":\"staging\",\"bytesDone\":1,\"bytesTotal\":2,"
          "\"extra\":1}",
          MOLT_WMSG_TO_AGENT, "unknown field 'extra' in a progress message" },
        { "{\"type\":\"log\",\"level\":\"panic\",\"event\":\"x\",\"text\":\"\"}",
          MOLT_WMSG_TO_AGENT, "field 'level'" },
        { "{\"type\":\"log\",\"level\":\"info\",\"event\":\"Bad Event\",\"text\":\"\"}",
          MOLT_WMSG_TO_AGENT, "field 'event'" },
        { "{\"type\":\"log\",\"level\":\"info\",\"event\":\"\",\"text\":\"\"}", MOLT_WMSG_TO_AGENT,
          "field 'event'" },
        { "{\"type\":\"log\",\"level\":\"info\",\"event\":\"x\",\"text\":\"\\u001b[2J\"}",
          MOLT_WMSG_TO_AGENT, "field 'text': control character" },
        { "{\"type\":\"log\",\"level\":\"info\",\"event\":\"x\"}", MOLT_WMSG_TO_AGENT, "text" },
        { "{\"type\":\"result\",\"ok\":1,\"stage\":\"staging\",\"message\":\"\"}",
          MOLT_WMSG_TO_AGENT, "ok" },
        { "{\"type\":\"result\",\"ok\":true,\"stage\":\"staging\",\"message\":\"\"}",
          MOLT_WMSG_TO_AGENT, "field 'stagedPath'" },
        { "{\"type\":\"result\",\"ok\":true,\"stage\":\"staging\",\"message\":\"\","
          "\"stagedPath\":\"relative/x\"}",
          MOLT_WMSG_TO_AGENT, "field 'stagedPath'" },
        { "{\"type\":\"result\",\"ok\":true,\"stage\":\"staging\",\"message\":\"\","
          "\"stagedPath\":\"/a//b\"}",
          MOLT_WMSG_TO_AGENT, "field 'stagedPath'" },
        { "{\"type\":\"result\",\"ok\":true,\"stage\":\"staging\",\"message\":\"\","
          "\"stagedPath\":\"/a/b/..\"}",
          MOLT_WMSG_TO_AGENT, "field 'stagedPath'" },
        { "{\"type\":\"result\",\"ok\":false,\"stage\":\"staging\",\"message\":\"x\","
          "\"stagedPath\":\"/a\"}",
          MOLT_WMSG_TO_AGENT, "field 'stagedPath': set on a failure" },
        { "{\"type\":\"start\",\"task\":[]}", MOLT_WMSG_TO_WORKER, "task" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\"}", MOLT_WMSG_TO_WORKER,
          "field 'hosts': missing" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\",\"hosts\":{}}", MOLT_WMSG_TO_WORKER,
          "field 'hosts': not an array" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\",\"hosts\":[{\"host\":\"a b\","
          "\"port\":1,\"addresses\":[]}]}",
          MOLT_WMSG_TO_WORKER, "field 'hosts': hosts[0]: field 'host'" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\",\"hosts\":[{\"host\":\"a\","
          "\"port\":0,\"addresses\":[]}]}",
          MOLT_WMSG_TO_WORKER, "hosts[0]: field 'port'" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\",\"hosts\":[{\"host\":\"a\","
          "\"port\":1,\"addresses\":[\"evil.example\"]}]}",
          MOLT_WMSG_TO_WORKER, "hosts[0]: addresses[0]: not a numeric IP address" },
        { "{\"type\":\"start\",\"task\":{},\"config\":\"\",\"hosts\":[{\"host\":\"a\","
          "\"port\":1,\"addresses\":[],\"via\":1}]}",
          MOLT_WMSG_TO_WORKER, "hosts[0]: unknown field 'via'" },
        { "{\"type\":\"connect\",\"address\":\"localhost\",\"port\":443}", MOLT_WMSG_TO_AGENT,
          "field 'address': not a numeric IP address" },
        { "{\"type\":\"connect\",\"address\":\"127.0.0.1\",\"port\":65536}",
          MOLT_WMSG_TO_AGENT, "field 'port'" },
        { "{\"type\":\"connect\",\"address\":\"127.0.0.1\",\"port\":443}",
          MOLT_WMSG_TO_WORKER, "not sent by the agent" },
        { "{\"type\":\"connected\",\"ok\":\"yes\"}", MOLT_WMSG_TO_WORKER, "ok" },
        { "{\"type\":\"progress\",\"type\":\"log\"}", MOLT_WMSG_TO_AGENT, "" },
    };
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = molt_wmsg_decode(cases[i].json, strlen(cases[i].json), cases[i].dir, &m, &err);

        if (rc == 0 || !strstr(err.msg, cases[i].want))
            fprintf(stderr, "case %zu (%s): rc %d, '%s'\n", i, cases[i].json, rc, err.msg);
        assert_true(rc < 0);
        assert_non_null(strstr(err.msg, cases[i].want));
        assert_null(m.task);
    }
}

static void test_text_bounds(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg m;
    char json[4096], text[MOLT_WMSG_TEXT_MAX + 2];

    memset(text, 'a', sizeof(text) - 1);
    text[MOLT_WMSG_TEXT_MAX] = '\0'; /* exactly the limit: accepted */
    snprintf(json, sizeof(json), "{\"type\":\"log\",\"level\":\"info\",\"event\":\"e\",\"text\":\"%s\"}",
             text);
    assert_int_equal(molt_wmsg_decode(json, strlen(json), MOLT_WMSG_TO_AGENT, &m, &err), 0);
    assert_int_equal(strlen(m.text), MOLT_WMSG_TEXT_MAX);
    text[MOLT_WMSG_TEXT_MAX] = 'a';
    text[MOLT_WMSG_TEXT_MAX + 1] = '\0';
    snprintf(json, sizeof(json), "{\"type\":\"log\",\"level\":\"info\",\"event\":\"e\",\"text\":\"%s\"}",
             text);
    assert_true(molt_wmsg_decode(json, strlen(json), MOLT_WMSG_TO_AGENT, &m, &err) < 0);
    assert_non_null(strstr(err.msg, "field 'text': longer than 1023 bytes"));
}

static void test_bad_frames(void **state)
{
    static const unsigned char oversize[] = { 0, 1, 0, 1 }; /* 65537 */
    static const unsigned char empty[] = { 0, 0, 0, 0 };
    static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff };
    const unsigned char *const heads[] = { oversize, empty, huge };
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg_reader r;
    struct molt_wmsg m;
    char frame[256];
    size_t len, used;

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_AGENT, &err), 0);
        assert_true(molt_wmsg_reader_feed(&r, heads[i], 4, &used, &m, &err) < 0);
        assert_int_equal(err.code, MOLT_E_LIMIT);
        assert_non_null(strstr(err.msg, "frame length"));
        /* Final: a good frame after it is refused too. */
        frame_of("{\"type\":\"cancel\"}", frame, &len);
        assert_true(molt_wmsg_reader_feed(&r, frame, len, &used, &m, &err) < 0);
        assert_non_null(strstr(err.msg, "refused after a bad frame"));
        molt_wmsg_reader_free(&r);
    }
    /* The largest frame is read; the body is bounded, not the JSON's meaning. */
    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_AGENT, &err), 0);
    {
        char *big = malloc(4 + MOLT_WMSG_MAX);

        assert_non_null(big);
        big[0] = 0;
        big[1] = 1;
        big[2] = 0;
        big[3] = 0;
        memset(big + 4, ' ', MOLT_WMSG_MAX);
        memcpy(big + 4, "{\"type\":\"cancel\"}", 17);
        assert_true(molt_wmsg_reader_feed(&r, big, 4 + MOLT_WMSG_MAX, &used, &m, &err) < 0);
        assert_non_null(strstr(err.msg, "a cancel message is not sent by the worker"));
        free(big);
    }
    molt_wmsg_reader_free(&r);
}

static int nonblocking_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    return 0;
}

/* Byte by byte over a non-blocking pipe: 0 (EAGAIN) until the last byte. */
static void test_split_reads(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg in = { .type = MOLT_WMSG_PROGRESS, .bytes_done = 1, .bytes_total = 2 };
    struct molt_wmsg_reader r;
    struct molt_wmsg m;
    char *frame, two[1024];
    size_t len, two_len;
    int fds[2];

    strcpy(in.stage, "verifying");
    assert_int_equal(molt_wmsg_encode(&in, &frame, &len, &err), 0);
    nonblocking_pipe(fds);
    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_AGENT, &err), 0);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 0);
    for (size_t i = 0; i + 1 < len; i++) {
        assert_int_equal(write(fds[1], frame + i, 1), 1);
        assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 0);
    }
    assert_int_equal(write(fds[1], frame + len - 1, 1), 1);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 1);
    assert_string_equal(m.stage, "verifying");

    /* Two frames in one write: read one at a time, nothing lost. */
    memcpy(two, frame, len);
    memcpy(two + len, frame, len);
    two_len = 2 * len;
    assert_int_equal(write(fds[1], two, two_len), (ssize_t)two_len);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 1);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 1);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 0);

    /* Feeding from memory stops at the end of a frame. */
    {
        size_t used, off = 0;
        int got = 0;

        while (off < two_len) {
            int rc = molt_wmsg_reader_feed(&r, two + off, 3 < two_len - off ? 3 : two_len - off,
                                           &used, &m, &err);

            assert_true(rc >= 0);
            got += rc;
            off += used;
        }
        assert_int_equal(got, 2);
    }

    /* End of stream: clean between frames, an error inside one. */
    assert_int_equal(write(fds[1], frame, 6), 6);
    close(fds[1]);
    assert_true(molt_wmsg_read(&r, fds[0], &m, &err) < 0);
    assert_non_null(strstr(err.msg, "ended inside a frame"));
    molt_wmsg_reader_free(&r);
    close(fds[0]);

    nonblocking_pipe(fds);
    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_AGENT, &err), 0);
    assert_int_equal(write(fds[1], frame, len), (ssize_t)len);
    close(fds[1]);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 1);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), MOLT_WMSG_EOF);
    molt_wmsg_reader_free(&r);
    close(fds[0]);
    free(frame);
}

/* A bad JSON body in a well-formed frame ends the stream, too. */
static void test_bad_body_is_final(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg_reader r;
    struct molt_wmsg m;
    char frame[256];
    size_t len;

    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_WORKER, &err), 0);
    frame_of("{\"type\":\"cancel\"", frame, &len);
    assert_true(feed_all(&r, frame, len, &m, &err) < 0);
    frame_of("{\"type\":\"cancel\"}", frame, &len);
    assert_true(feed_all(&r, frame, len, &m, &err) < 0);
    molt_wmsg_reader_free(&r);
    /* The same good frame on a fresh reader is read. */
    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_WORKER, &err), 0);
    assert_int_equal(feed_all(&r, frame, len, &m, &err), 1);
    molt_wmsg_reader_free(&r);
}

static void test_write_to_pipe(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg in = { .type = MOLT_WMSG_CANCEL };
    struct molt_wmsg_reader r;
    struct molt_wmsg m;
    int fds[2];

    nonblocking_pipe(fds);
    assert_int_equal(molt_wmsg_write(fds[1], &in, 1000, &err), 0);
    assert_int_equal(molt_wmsg_reader_init(&r, MOLT_WMSG_TO_WORKER, &err), 0);
    assert_int_equal(molt_wmsg_read(&r, fds[0], &m, &err), 1);
    assert_int_equal(m.type, MOLT_WMSG_CANCEL);
    /* A full non-blocking pipe: the write gives up after its timeout. */
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    while (write(fds[1], "xxxxxxxxxxxxxxxx", 16) > 0)
        ;
    assert_int_equal(molt_wmsg_write(fds[1], &in, 50, &err), MOLT_E_TIMEOUT);
    molt_wmsg_reader_free(&r);
    close(fds[0]);
    close(fds[1]);
}

static void seqpacket_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* The connection channel: one frame per record, a descriptor along with the
 * answer, and records that are not one frame refused. */
static void test_seqpacket_with_fd(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_wmsg in, out;
    int sv[2], pipefd[2], passed = -2;
    char frame[64];
    size_t len;

    seqpacket_pair(sv);
    molt_wmsg_init(&in);
    in.type = MOLT_WMSG_CONNECT;
    strcpy(in.address, "127.0.0.1");
    in.port = 8443;
    assert_int_equal(molt_wmsg_send(sv[1], &in, -1, 1000, &err), 0);
    assert_int_equal(molt_wmsg_recv(sv[0], MOLT_WMSG_TO_AGENT, 1000, &out, &passed, &err), 1);
    assert_int_equal(out.type, MOLT_WMSG_CONNECT);
    assert_int_equal(out.port, 8443);
    assert_int_equal(passed, -1);

    /* The answer carries the socket: here a pipe's end, read through. */
    assert_int_equal(pipe(pipefd), 0);
    molt_wmsg_init(&in);
    in.type = MOLT_WMSG_CONNECTED;
    in.ok = 1;
    assert_int_equal(molt_wmsg_send(sv[0], &in, pipefd[0], 1000, &err), 0);
    close(pipefd[0]);
    assert_int_equal(molt_wmsg_recv(sv[1], MOLT_WMSG_TO_WORKER, 1000, &out, &passed, &err), 1);
    assert_true(out.ok);
    assert_true(passed >= 0);
    assert_true(fcntl(passed, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(pipefd[1], "z", 1), 1);
    char c = 0;
    assert_int_equal(read(passed, &c, 1), 1);
    assert_int_equal(c, 'z');
    close(passed);
    close(pipefd[1]);

    /* Nothing comes: a timeout. */
    assert_int_equal(molt_wmsg_recv(sv[0], MOLT_WMSG_TO_AGENT, 20, &out, &passed, &err),
                     MOLT_E_TIMEOUT);
    /* A record that is not one frame (a length that is not the record's). */
    frame_of("{\"type\":\"cancel\"}", frame, &len);
    frame[3]++;
    assert_int_equal(send(sv[1], frame, len, 0), (ssize_t)len);
    assert_true(molt_wmsg_recv(sv[0], MOLT_WMSG_TO_AGENT, 1000, &out, &passed, &err) < 0);
    assert_non_null(strstr(err.msg, "is not one frame"));
    assert_int_equal(passed, -1);
    /* A message of the wrong direction, with a descriptor: refused, closed. */
    molt_wmsg_init(&in);
    in.type = MOLT_WMSG_CONNECTED;
    assert_int_equal(molt_wmsg_send(sv[1], &in, 0, 1000, &err), 0);
    assert_true(molt_wmsg_recv(sv[0], MOLT_WMSG_TO_AGENT, 1000, &out, &passed, &err) < 0);
    assert_non_null(strstr(err.msg, "not sent by the worker"));
    assert_int_equal(passed, -1);
    /* The peer gone. */
    close(sv[1]);
    assert_int_equal(molt_wmsg_recv(sv[0], MOLT_WMSG_TO_AGENT, 1000, &out, &passed, &err),
                     MOLT_WMSG_EOF);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),   cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_bad_messages),  cmocka_unit_test(test_text_bounds),
        cmocka_unit_test(test_bad_frames),    cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_bad_body_is_final), cmocka_unit_test(test_write_to_pipe),
        cmocka_unit_test(test_seqpacket_with_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
