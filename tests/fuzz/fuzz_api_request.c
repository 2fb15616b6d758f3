/* fuzz_api_request.c: libFuzzer harness for the local API's request-head
 * parser (molt_api_http_parse, agent/api_http.c), which reads whatever a
 * local client writes to the agent's socket. Besides the sanitizers it checks
 * what the server relies on: an accepted head is within the limits, its path
 * is an absolute path without control bytes, and the verdict does not depend
 * on how the bytes arrived (every shorter prefix of an accepted head asks for
 * more, and the head alone parses the same). */
#include <stdint.h>
#include <string.h>

#include "api_http.h"
#include "fuzz_util.h"

static void check_accepted(const uint8_t *data, const struct molt_api_http_req *req)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_api_http_req again;
    int status;

    if (req->head_len > MOLT_API_HTTP_HEAD_MAX || req->head_len < 4 ||
        memcmp(data + req->head_len - 4, "\r\n\r\n", 4) != 0)
        fuzz_fail("an accepted head is not within the limit or does not end in a blank line");
    if (req->n_headers > MOLT_API_HTTP_HEADERS_MAX || !req->method[0] ||
        strlen(req->method) >= MOLT_API_HTTP_METHOD_MAX)
        fuzz_fail("an accepted head breaks the header count or method limits");
    if (req->path[0] != '/' || strlen(req->path) >= MOLT_API_HTTP_PATH_MAX)
        fuzz_fail("an accepted path is not absolute or too long");
    for (const char *p = req->path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            fuzz_fail("an accepted path holds a control byte");
    }
    if (molt_api_http_parse((const char *)data, req->head_len, &again, &status, &err) != 1 ||
        memcmp(&again, req, sizeof(again)) != 0)
        fuzz_fail("the head alone parses differently from the head with what follows");
    for (size_t n = 0; n < req->head_len; n++) {
        if (molt_api_http_parse((const char *)data, n, &again, &status, &err) != 0)
            fuzz_fail("a prefix of an accepted head is not 'more needed'");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_api_http_req req;
    int status = 0, rc;

    rc = molt_api_http_parse((const char *)data, size, &req, &status, &err);
    if (rc == 1)
        check_accepted(data, &req);
    else if (rc < 0 && (status < 400 || status > 505 || !err.msg[0]))
        fuzz_fail("a refused head has no error status or message");
    else if (rc == 0 && size >= MOLT_API_HTTP_HEAD_MAX)
        fuzz_fail("more than the head limit still asks for more");
    return 0;
}
