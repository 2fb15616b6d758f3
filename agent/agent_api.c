/* agent_api.c: GET /api/v1/agent, what `molt-agent status` shows. */
#include "agent_api.h"

#include <unistd.h>

#include "api.h"
#include "version.h"

static struct json_object *ms_or_null(int64_t ms)
{
    return ms > 0 ? json_object_new_int64(ms) : NULL;
}

struct json_object *molt_agent_api_info(struct molt_agent *a)
{
    struct molt_agent_status st;
    struct json_object *o = json_object_new_object();

    molt_agent_status(a, &st);
    json_object_object_add(o, "version", json_object_new_string(molt_version_self()));
    json_object_object_add(o, "registered", json_object_new_boolean(st.registered));
    json_object_object_add(o, "collectorId",
                           st.collector_id > 0 ? json_object_new_int64(st.collector_id) : NULL);
    json_object_object_add(o, "name", json_object_new_string(st.name));
    json_object_object_add(o, "server", json_object_new_string(st.server_url));
    json_object_object_add(o, "machineId", json_object_new_string(a->machine_id));
    json_object_object_add(o, "pid", json_object_new_int64(getpid()));
    json_object_object_add(o, "osTime", json_object_new_int64(molt_agent_os_time(a)));
    json_object_object_add(o, "lastHeartbeatTime", ms_or_null(st.last_heartbeat_ms));
    json_object_object_add(o, "nextHeartbeatTime", ms_or_null(st.next_heartbeat_ms));
    json_object_object_add(o, "heartbeatIntervalMs", json_object_new_int64(st.interval_ms));
    json_object_object_add(o, "longPoll", json_object_new_boolean(st.long_poll));
    json_object_object_add(o, "heartbeats", json_object_new_int64(st.heartbeats));
    json_object_object_add(o, "failures", json_object_new_int64(st.failures));
    json_object_object_add(o, "lastError", json_object_new_string(st.last_error));
    json_object_object_add(o, "task", st.has_task ? molt_report_to_json(&st.task) : NULL);
    return o;
}

static void get_agent(void *arg, const struct molt_api_request *req,
                      struct molt_api_response *res)
{
    res->data = molt_agent_api_info(arg);
}

int molt_agent_api_routes(struct molt_agent *a, struct molt_err *err)
{
    return molt_api_route(a->api, "GET", "/api/v1/agent", get_agent, a, err);
}
