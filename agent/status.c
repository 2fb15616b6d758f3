/* status.c: `molt-agent status [--json]` over the local API socket. */
#include "status.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api.h"
#include "conf.h"
#include "fs.h"
#include "host.h"
#include "json.h"

#define STATUS_REPLY_MAX (1024 * 1024)

struct buf {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    char *q;

    if (b->len + n > STATUS_REPLY_MAX || !(q = realloc(b->data, b->len + n + 1)))
        return 0;
    b->data = q;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

long molt_status_fetch(const char *socket_path, const char *path, char **body, char *msg,
                       size_t msg_len)
{
    return molt_status_request(socket_path, "GET", path, NULL, body, msg, msg_len);
}

long molt_status_request(const char *socket_path, const char *method, const char *path,
                         const char *json, char **body, char *msg, size_t msg_len)
{
    struct curl_slist *hdrs = NULL;
    CURL *h = curl_easy_init();
    struct buf b = { 0 };
    char url[256];
    long status = -1;
    CURLcode cc;

    *body = NULL;
    if (!h) {
        snprintf(msg, msg_len, "libcurl: cannot create a handle");
        return -1;
    }
    snprintf(url, sizeof(url), "http://localhost%s", path);
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_path);
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (json) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    }
    cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        snprintf(msg, msg_len, "%s", curl_easy_strerror(cc));
        free(b.data);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        *body = b.data;
    }
    curl_easy_cleanup(h);
    return status;
}

static const char *str_of(struct json_object *o, const char *key)
{
    const char *s = NULL;

    return molt_json_opt_str(o, key, &s, NULL) == 0 && s ? s : "";
}

static int64_t int_of(struct json_object *o, const char *key)
{
    int64_t v = 0;

    molt_json_opt_int(o, key, &v, NULL);
    return v;
}

static void line(FILE *out, const char *label, const char *value)
{
    fprintf(out, "%-16s %s\n", label, value);
}

static void format_age(char *out, size_t n, int64_t ms)
{
    int64_t s = (ms < 0 ? -ms : ms) / 1000;

    if (s < 120)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", (long long)(s / 60));
    else
        snprintf(out, n, "%lldh", (long long)(s / 3600));
}

static void format_when(char *out, size_t n, int64_t ms, int64_t now)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char stamp[32], age[16];

    if (ms <= 0) {
        snprintf(out, n, "never");
        return;
    }
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    format_age(age, sizeof(age), ms - now);
    if (ms <= now)
        snprintf(out, n, "%s (%s ago)", stamp, age);
    else
        snprintf(out, n, "%s (in %s)", stamp, age);
}

static void format_bytes(char *out, size_t n, int64_t b)
{
    if (b >= 1024 * 1024)
        snprintf(out, n, "%.1f MiB", (double)b / (1024.0 * 1024.0));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(out, n, "%lld B", (long long)b);
}

static void print_task(FILE *out, struct json_object *task, int tty)
{
    int64_t status = int_of(task, "status"), done = int_of(task, "bytesDone");
    int64_t total = int_of(task, "bytesTotal");
    char v[256], a[32], b[32];

    snprintf(v, sizeof(v), "%s -> %s", str_of(task, "taskId"), str_of(task, "buildVersion"));
    line(out, "task", v);
    snprintf(v, sizeof(v), "%s (%lld/%lld)%s", str_of(task, "stage"),
             (long long)int_of(task, "stageIndex"), (long long)int_of(task, "stageCount"),
             status == 6 ? "" : status == 2 ? " succeeded" : " failed");
    line(out, "  stage", v);
    if (total > 0) {
        int pct = (int)(done * 100 / total);
        format_bytes(a, sizeof(a), done);
        format_bytes(b, sizeof(b), total);
        if (tty) {
            char bar[31];
            int fill = pct * 30 / 100;
            for (int i = 0; i < 30; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[30] = '\0';
            snprintf(v, sizeof(v), "[%s] %3d%%  %s / %s", bar, pct, a, b);
        } else {
            snprintf(v, sizeof(v), "%d%%  %s / %s", pct, a, b);
        }
        line(out, "  progress", v);
    }
    if (str_of(task, "message")[0])
        line(out, "  message", str_of(task, "message"));
}

void molt_status_print(FILE *out, struct json_object *data, int tty)
{
    int64_t now = molt_host_realtime_ms();
    struct json_object *task = NULL;
    int registered = 0, long_poll = 0;
    char v[512];

    molt_json_opt_bool(data, "registered", &registered, NULL);
    molt_json_opt_bool(data, "longPoll", &long_poll, NULL);
    line(out, "version", str_of(data, "version"));
    if (int_of(data, "collectorId") > 0)
        snprintf(v, sizeof(v), "%lld", (long long)int_of(data, "collectorId"));
    else
        snprintf(v, sizeof(v), "none");
    line(out, "collector id", registered ? v : "not registered");
    line(out, "name", str_of(data, "name"));
    line(out, "server", str_of(data, "server"));
    format_when(v, sizeof(v), int_of(data, "lastHeartbeatTime"), now);
    line(out, "last heartbeat", v);
    format_when(v, sizeof(v), int_of(data, "nextHeartbeatTime"), now);
    line(out, "next heartbeat", v);
    format_age(v, sizeof(v), int_of(data, "heartbeatIntervalMs"));
    if (int_of(data, "heartbeatIntervalMs") < 1000)
        snprintf(v, sizeof(v), "%lldms", (long long)int_of(data, "heartbeatIntervalMs"));
    if (long_poll)
        strncat(v, " (long-poll)", sizeof(v) - strlen(v) - 1);
    line(out, "interval", v);
    snprintf(v, sizeof(v), "%lld acknowledged, %lld failed since start",
             (long long)int_of(data, "heartbeats"), (long long)int_of(data, "heartbeatsFailed"));
    line(out, "heartbeats", v);
    snprintf(v, sizeof(v), "%lld final report%s waiting", (long long)int_of(data, "outboxDepth"),
             int_of(data, "outboxDepth") == 1 ? "" : "s");
    line(out, "outbox", v);
    format_bytes(v, sizeof(v), int_of(data, "bytesDownloaded"));
    strncat(v, " since start", sizeof(v) - strlen(v) - 1);
    line(out, "downloaded", v);
    snprintf(v, sizeof(v), "%lld among recent upgrades", (long long)int_of(data, "rollbacks"));
    line(out, "rollbacks", v);
    if (int_of(data, "failures") > 0) {
        snprintf(v, sizeof(v), "%lld failures, last: %s", (long long)int_of(data, "failures"),
                 str_of(data, "lastError"));
        line(out, "problem", v);
    }
    molt_json_opt_obj(data, "task", &task, NULL);
    if (task)
        print_task(out, task, tty);
    else
        line(out, "task", "none");
}

static int show(const char *body, int json, const char *sock)
{
    struct json_object *env = NULL, *data = NULL, *error = NULL;
    int ok = 0, rc = 1;

    if (json) {
        fputs(body, stdout);
        if (!*body || body[strlen(body) - 1] != '\n')
            fputc('\n', stdout);
    }
    if (molt_json_parse(body, strlen(body), &env, NULL) < 0 ||
        molt_json_get_bool(env, "successful", &ok, NULL) < 0) {
        fprintf(stderr, "molt-agent: %s: the reply is not an API envelope\n", sock);
        goto out;
    }
    if (!ok) {
        molt_json_opt_obj(env, "error", &error, NULL);
        fprintf(stderr, "molt-agent: the agent refused: %s\n",
                error ? str_of(error, "message") : "unknown error");
        goto out;
    }
    rc = 0;
    if (!json && molt_json_get_obj(env, "data", &data, NULL) == 0)
        molt_status_print(stdout, data, isatty(STDOUT_FILENO));
out:
    json_object_put(env);
    return rc;
}

int molt_status_main(const char *config_path, int json)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    char sock[PATH_MAX], msg[256];
    char *body = NULL;
    long status;
    int rc;

    if (molt_conf_load(&conf, config_path, &err) < 0 ||
        molt_fs_join(sock, sizeof(sock), conf.agent.run_dir, MOLT_API_SOCKET, &err) < 0) {
        fprintf(stderr, "molt-agent: %s\n", err.msg);
        return 1;
    }
    explicit_bzero(&conf.server.access_key, sizeof(conf.server.access_key));
    status = molt_status_fetch(sock, "/api/v1/agent", &body, msg, sizeof(msg));
    if (status < 0) {
        fprintf(stderr, "molt-agent: cannot reach the agent at %s: %s (is it running?)\n", sock,
                msg);
        return 1;
    }
    rc = show(body ? body : "", json, sock);
    free(body);
    return rc;
}
