/* test_status.c: agent/status.c: what `molt-agent status` prints. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "status.h"

static char *print_status(const char *json, int tty)
{
    struct json_object *o = json_tokener_parse(json);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(o);
    assert_non_null(f);
    molt_status_print(f, o, tty);
    fclose(f);
    json_object_put(o);
    return out;
}

static void test_status_print(void **state)
{
    const char *data =
        "{\"version\":\"20.1-2749\",\"registered\":true,\"collectorId\":100000001,"
        "\"name\":\"web-1\",\"server\":\"https://cp:8443\",\"lastHeartbeatTime\":1700000000000,"
        "\"nextHeartbeatTime\":1700000015000,\"heartbeatIntervalMs\":15000,\"longPoll\":true,"
        "\"failures\":0,\"task\":{\"taskId\":\"12345\",\"status\":6,\"stage\":\"downloading\","
        "\"stageIndex\":3,\"stageCount\":9,\"bytesDone\":2097152,\"bytesTotal\":4194304,"
        "\"version\":\"20.1-2749\",\"buildVersion\":\"20.2-100\",\"message\":\"\"}}";
    char *out = print_status(data, 1);

    assert_non_null(strstr(out, "collector id     100000001\n"));
    assert_non_null(strstr(out, "server           https://cp:8443\n"));
    assert_non_null(strstr(out, "interval         15s (long-poll)\n"));
    assert_non_null(strstr(out, "task             12345 -> 20.2-100\n"));
    assert_non_null(strstr(out, "  stage          downloading (3/9)\n"));
    assert_non_null(strstr(out, "[###############...............]  50%  2.0 MiB / 4.0 MiB"));
    free(out);
    out = print_status(data, 0);
    assert_null(strchr(out, '['));
    assert_non_null(strstr(out, "  progress       50%  2.0 MiB / 4.0 MiB\n"));
    free(out);
    out = print_status("{\"registered\":false,\"failures\":3,\"lastError\":\"refused\","
                       "\"task\":null}", 0);
    assert_non_null(strstr(out, "collector id     not registered\n"));
    assert_non_null(strstr(out, "last heartbeat   never\n"));
    assert_non_null(strstr(out, "problem          3 failures, last: refused\n"));
    assert_non_null(strstr(out, "task             none\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_print),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
