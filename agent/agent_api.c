/* agent_api.c: GET /api/v1/agent, what `molt-agent status` shows, and GET
 * /metrics, the same facts in the Prometheus text format. */
#include "agent_api.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "host.h"
#include "journal.h"
#include "outbox.h"
#include "version.h"

/* What both endpoints show: a status snapshot and what it does not hold. */
struct facts {
    struct molt_agent_status st;
    int64_t outbox_depth;  /* final reports not yet sent: files and kept in memory */
    int64_t rollbacks;     /* rolled-back outcomes among the journal's recent ones */
};

static void get_facts(struct molt_agent *a, struct facts *f)
{
    struct molt_journal j;
    char path[PATH_MAX];

    molt_agent_status(a, &f->st);
    f->outbox_depth = molt_outbox_count(a->outbox_dir) + molt_outbox_kept_count(&a->tasks.kept);
    f->rollbacks = 0;
    if (molt_journal_path(path, sizeof(path), a->state_dir, NULL) == 0 &&
        molt_journal_load(path, &j, NULL) == 0) {
        for (size_t i = 0; i < j.n_outcomes; i++)
            f->rollbacks += j.outcomes[i].result == MOLT_JOURNAL_RESULT_ROLLED_BACK;
    }
}

static struct json_object *ms_or_null(int64_t ms)
{
    return ms > 0 ? json_object_new_int64(ms) : NULL;
}

struct json_object *molt_agent_api_info(struct molt_agent *a)
{
    struct facts f;
    struct json_object *o = json_object_new_object();

    get_facts(a, &f);
    json_object_object_add(o, "version", json_object_new_string(molt_version_self()));
    json_object_object_add(o, "registered", json_object_new_boolean(f.st.registered));
    json_object_object_add(o, "collectorId",
                           f.st.collector_id > 0 ? json_object_new_int64(f.st.collector_id) : NULL);
    json_object_object_add(o, "name", json_object_new_string(f.st.name));
    json_object_object_add(o, "server", json_object_new_string(f.st.server_url));
    json_object_object_add(o, "machineId", json_object_new_string(a->machine_id));
    json_object_object_add(o, "pid", json_object_new_int64(getpid()));
    json_object_object_add(o, "osTime", json_object_new_int64(molt_agent_os_time(a)));
    json_object_object_add(o, "lastHeartbeatTime", ms_or_null(f.st.last_heartbeat_ms));
    json_object_object_add(o, "nextHeartbeatTime", ms_or_null(f.st.next_heartbeat_ms));
    json_object_object_add(o, "heartbeatIntervalMs", json_object_new_int64(f.st.interval_ms));
    json_object_object_add(o, "longPoll", json_object_new_boolean(f.st.long_poll));
    json_object_object_add(o, "heartbeats", json_object_new_int64(f.st.heartbeats));
    json_object_object_add(o, "failures", json_object_new_int64(f.st.failures));
    json_object_object_add(o, "lastError", json_object_new_string(f.st.last_error));
    json_object_object_add(o, "heartbeatsFailed", json_object_new_int64(f.st.heartbeats_failed));
    json_object_object_add(o, "bytesDownloaded", json_object_new_int64(f.st.bytes_downloaded));
    json_object_object_add(o, "outboxDepth", json_object_new_int64(f.outbox_depth));
    json_object_object_add(o, "rollbacks", json_object_new_int64(f.rollbacks));
    json_object_object_add(o, "task", f.st.has_task ? molt_report_to_json(&f.st.task) : NULL);
    return o;
}

struct text {
    char *buf;
    size_t len, size;
};

static void add(struct text *t, const char *fmt, ...) MOLT_PRINTF(2, 3);

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->size - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->size) {
            t->len += (size_t)n;
            return;
        }
        size_t want = (t->size ? t->size * 2 : 4096) + (size_t)n;
        char *p = realloc(t->buf, want);
        if (!p)
            return;
        t->buf = p;
        t->size = want;
    }
}

/* One sample with its HELP and TYPE lines; labels may be "". */
static void metric(struct text *t, const char *name, const char *type, const char *help,
                   const char *labels, double value)
{
    add(t, "# HELP %s %s\n# TYPE %s %s\n%s%s%s%s %.17g\n", name, help, name, type, name,
        labels[0] ? "{" : "", labels, labels[0] ? "}" : "", value);
}

char *molt_agent_metrics(struct molt_agent *a)
{
    struct facts f;
    struct text t = { 0 };
    char labels[256];
    int64_t now = molt_host_realtime_ms();

    get_facts(a, &f);
    /* Versions and task ids are [0-9A-Za-z.+_-]: nothing to escape in a label. */
    snprintf(labels, sizeof(labels), "version=\"%s\"", molt_version_self());
    metric(&t, "molt_agent_info", "gauge", "The running agent; its version is the label.", labels,
           1);
    metric(&t, "molt_agent_registered", "gauge", "1 when the agent has a collector identity.", "",
           f.st.registered);
    metric(&t, "molt_heartbeats_sent_total", "counter", "Heartbeats sent since start.", "",
           (double)(f.st.heartbeats + f.st.heartbeats_failed));
    metric(&t, "molt_heartbeats_failed_total", "counter",
           "Heartbeats that failed (network, TLS, HTTP error) since start.", "",
           (double)f.st.heartbeats_failed);
    if (f.st.last_heartbeat_ms > 0)
        metric(&t, "molt_heartbeat_last_ack_age_seconds", "gauge",
               "Seconds since the control plane acknowledged a heartbeat (absent before the "
               "first).", "", (double)(now - f.st.last_heartbeat_ms) / 1000.0);
    metric(&t, "molt_outbox_depth", "gauge", "Final task reports waiting to be sent.", "",
           (double)f.outbox_depth);
    metric(&t, "molt_download_bytes_total", "counter", "Build bytes downloaded since start.", "",
           (double)f.st.bytes_downloaded);
    metric(&t, "molt_rollbacks", "gauge",
           "Rolled-back upgrades among the journal's recent outcomes.", "", (double)f.rollbacks);
    metric(&t, "molt_task_active", "gauge", "1 while an upgrade task is in progress.", "",
           f.st.has_task);
    if (f.st.has_task) {
        snprintf(labels, sizeof(labels), "task=\"%s\",build=\"%s\",stage=\"%s\"",
                 f.st.task.task_id, f.st.task.build_version, f.st.task.stage);
        metric(&t, "molt_task_status", "gauge",
               "The task's status code as the management API reports it (6 progressing).",
               labels, f.st.task.status);
        metric(&t, "molt_task_stage", "gauge", "The task's stage index, 1 to 9.", labels,
               f.st.task.stage_index);
    }
    return t.buf;
}

static void get_metrics(void *arg, const struct molt_api_request *req,
                        struct molt_api_response *res)
{
    res->text = molt_agent_metrics(arg);
    res->text_type = "text/plain; version=0.0.4; charset=utf-8";
    if (!res->text)
        molt_api_error(res, 500, "out.of.memory", "cannot build the metrics");
}

static void get_agent(void *arg, const struct molt_api_request *req,
                      struct molt_api_response *res)
{
    res->data = molt_agent_api_info(arg);
}

int molt_agent_api_routes(struct molt_agent *a, struct molt_err *err)
{
    if (molt_api_route(a->api, "GET", "/api/v1/agent", get_agent, a, err) < 0)
        return err->code;
    return molt_api_route(a->api, "GET", "/metrics", get_metrics, a, err);
}
