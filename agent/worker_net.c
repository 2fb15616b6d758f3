/* worker_net.c: the endpoints of an upgrade task, pinned by the agent, and
 * the connections it opens to them for the sandboxed worker (worker_net.h). */
#include "worker_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "host.h"
#include "http.h"
#include "json.h"
#include "log.h"

/* The variables libcurl reads for a proxy when server.proxy is not set. */
static const char *const proxy_vars[] = { "https_proxy", "HTTPS_PROXY", "http_proxy",
                                          "all_proxy", "ALL_PROXY", NULL };

/* A numeric address in its canonical text form (out), or 0 for none. */
static int numeric(const char *s, char out[INET6_ADDRSTRLEN], int *family)
{
    unsigned char bin[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, s, bin) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, s, bin) == 1)
        *family = AF_INET6;
    else
        return 0;
    return inet_ntop(*family, bin, out, INET6_ADDRSTRLEN) != NULL;
}

/* A DNS name libcurl would look up, or an IP literal. */
static int host_ok(const char *h)
{
    char canon[INET6_ADDRSTRLEN];
    size_t n = strlen(h);
    int family;

    if (numeric(h, canon, &family))
        return 1;
    return n > 0 && n <= MOLT_WNET_HOST_MAX &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

static int add_endpoint(struct molt_wnet *net, const char *host, long port, struct molt_err *err)
{
    struct molt_wnet_host *e;

    for (size_t i = 0; i < net->n_hosts; i++) {
        if (net->hosts[i].port == port && strcasecmp(net->hosts[i].host, host) == 0)
            return 0;
    }
    if (net->n_hosts >= MOLT_WNET_HOSTS_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "more than %d hosts to connect to",
                            MOLT_WNET_HOSTS_MAX);
    e = &net->hosts[net->n_hosts++];
    memset(e, 0, sizeof(*e));
    snprintf(e->host, sizeof(e->host), "%s", host);
    e->port = (uint16_t)port;
    return 0;
}

/* A URL of the task, resolved against server.url; one that cannot be used
 * is the download's to refuse, with its reason, not the pinning's. */
static int add_url(struct molt_wnet *net, const struct molt_config *conf, const char *ref,
                   struct molt_err *err)
{
    char url[MOLT_HTTP_REF_MAX], host[MOLT_WNET_HOST_MAX + 1];
    struct molt_err ignored = MOLT_ERR_INIT;
    long port;

    if (!ref[0] || molt_http_resolve(conf, ref, url, sizeof(url), &ignored) < 0 ||
        molt_http_url_endpoint(url, host, sizeof(host), &port) < 0 || !host_ok(host))
        return 0;
    return add_endpoint(net, host, port, err);
}

static int add_proxy(struct molt_wnet *net, const char *proxy, struct molt_err *err)
{
    char host[MOLT_WNET_HOST_MAX + 1];
    long port;

    if (!proxy || !proxy[0] || molt_http_proxy_endpoint(proxy, host, sizeof(host), &port) < 0 ||
        !host_ok(host))
        return 0;
    return add_endpoint(net, host, port, err);
}

static void add_addr(struct molt_wnet_host *e, const char *canon)
{
    for (size_t i = 0; i < e->n_addrs; i++) {
        if (strcmp(e->addrs[i], canon) == 0)
            return;
    }
    if (e->n_addrs < MOLT_WNET_ADDRS_MAX)
        snprintf(e->addrs[e->n_addrs++], INET6_ADDRSTRLEN, "%s", canon);
}

/* The addresses of one endpoint, in the resolver's order (RFC 6724's). */
static void resolve_host(struct molt_wnet_host *e)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char canon[INET6_ADDRSTRLEN];
    int family, rc;

    if (numeric(e->host, canon, &family)) {
        add_addr(e, canon);
        return;
    }
    if ((rc = getaddrinfo(e->host, NULL, &hints, &res)) != 0) {
        molt_log_info("upgrade.pin", "host=%s port=%u error=\"%s\" (not pinned: the worker "
                      "cannot connect to it but through a proxy)", e->host, e->port,
                      gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const void *bin = ai->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            inet_ntop(ai->ai_family, bin, canon, sizeof(canon)))
            add_addr(e, canon);
    }
    freeaddrinfo(res);
}

/* One host's lookup on a thread of its own, so that a resolver that does
 * not answer holds up neither a cancel nor the agent's stop: the waiter
 * leaves it after the deadline, and whichever of the two is last frees it. */
struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t *done_cv;   /* the waiter's, shared by all lookups */
    int refs;
    int done;
    struct molt_wnet_host host;
};

static void lookup_put(struct lookup *l)
{
    int last;

    pthread_mutex_lock(&l->mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (last) {
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
}

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;

    resolve_host(&l->host);
    pthread_mutex_lock(&l->mu);
    l->done = 1;
    if (l->done_cv)
        pthread_cond_broadcast(l->done_cv);
    pthread_mutex_unlock(&l->mu);
    lookup_put(l);
    return NULL;
}

/* A started lookup for e, or NULL when no thread could be started (then e
 * is resolved here and now). */
static struct lookup *lookup_start(struct molt_wnet_host *e, pthread_cond_t *cv)
{
    struct lookup *l = calloc(1, sizeof(*l));
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    if (l) {
        pthread_mutex_init(&l->mu, NULL);
        l->done_cv = cv;
        l->refs = 2;
        l->host = *e;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, lookup_run, l);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            return l;
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    resolve_host(e);
    return NULL;
}

/* Takes what l found into e if it is done; 1 when it is. */
static int lookup_take(struct lookup *l, struct molt_wnet_host *e)
{
    int done;

    pthread_mutex_lock(&l->mu);
    done = l->done;
    if (done)
        *e = l->host;
    pthread_mutex_unlock(&l->mu);
    return done;
}

/* Leaves l to its thread: it must not signal the waiter's condition any more. */
static void lookup_leave(struct lookup *l)
{
    pthread_mutex_lock(&l->mu);
    l->done_cv = NULL;
    pthread_mutex_unlock(&l->mu);
    lookup_put(l);
}

/* Resolves every host at once, waiting up to timeout_ms in all and asking
 * aborted (when set) several times a second. */
static int resolve_all(struct molt_wnet *net, int timeout_ms,
                       int (*aborted)(void *ctx, struct molt_err *err), void *ctx,
                       struct molt_err *err)
{
    struct lookup *l[MOLT_WNET_HOSTS_MAX] = { NULL };
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_condattr_t ca;
    pthread_cond_t cv;
    int64_t until = molt_host_monotonic_ms() + timeout_ms;
    size_t pending = 0;
    int rc = 0;

    /* Waits on the monotonic clock: a clock set back (NTP at a VM's first
     * boot) must not stretch them. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);

    for (size_t i = 0; i < net->n_hosts; i++) {
        char canon[INET6_ADDRSTRLEN];
        int family;

        if (numeric(net->hosts[i].host, canon, &family))
            resolve_host(&net->hosts[i]); /* nothing to look up */
        else if ((l[i] = lookup_start(&net->hosts[i], &cv)))
            pending++;
    }
    while (pending > 0 && rc == 0) {
        struct timespec nap = { 0, 0 };

        pending = 0;
        for (size_t i = 0; i < net->n_hosts; i++) {
            if (l[i] && lookup_take(l[i], &net->hosts[i])) {
                lookup_put(l[i]);
                l[i] = NULL;
            }
            pending += l[i] != NULL;
        }
        if (pending == 0 || (aborted && (rc = aborted(ctx, err)) < 0))
            break;
        if (molt_host_monotonic_ms() >= until) {
            for (size_t i = 0; i < net->n_hosts; i++) {
                if (l[i])
                    molt_log_warn("upgrade.pin", "host=%s port=%u error=\"no answer from the "
                                  "resolver in %d ms\" (not pinned)", net->hosts[i].host,
                                  net->hosts[i].port, timeout_ms);
            }
            break;
        }
        /* A short wait: a lookup that ends wakes it, a missed wake costs 250 ms. */
        clock_gettime(CLOCK_MONOTONIC, &nap);
        nap.tv_nsec += 250 * 1000000L;
        if (nap.tv_nsec >= 1000000000L) {
            nap.tv_sec++;
            nap.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&mu);
        pthread_cond_timedwait(&cv, &mu, &nap);
        pthread_mutex_unlock(&mu);
    }
    for (size_t i = 0; i < net->n_hosts; i++) {
        if (l[i])
            lookup_leave(l[i]);
    }
    /* No lookup refers to them any more (lookup_leave). */
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
    return rc;
}

int molt_wnet_pin(struct molt_wnet *net, const struct molt_config *conf,
                  const struct molt_upgrade_state *task, int timeout_ms,
                  int (*aborted)(void *ctx, struct molt_err *err), void *ctx,
                  struct molt_err *err)
{
    const char *src[MOLT_BUILD_SOURCES_MAX];
    int n = molt_build_sources(&task->build, src), rc = 0;

    memset(net, 0, sizeof(*net));
    if (task->local_package[0])
        return 0; /* an offline package: nothing to connect to */
    for (int i = 0; rc == 0 && i < n; i++)
        rc = add_url(net, conf, src[i], err);
    if (rc == 0 && task->build.delta.present)
        rc = add_url(net, conf, task->build.delta.url, err);
    if (rc == 0 && conf->server.proxy[0])
        rc = add_proxy(net, conf->server.proxy, err);
    for (size_t i = 0; rc == 0 && !conf->server.proxy[0] && proxy_vars[i]; i++)
        rc = add_proxy(net, getenv(proxy_vars[i]), err);
    if (rc < 0)
        return molt_err_prefix(err, "pinning the task's hosts");
    return resolve_all(net, timeout_ms, aborted, ctx, err);
}

struct json_object *molt_wnet_to_json(const struct molt_wnet *net)
{
    struct json_object *a = json_object_new_array();

    for (size_t i = 0; a && i < net->n_hosts; i++) {
        const struct molt_wnet_host *e = &net->hosts[i];
        struct json_object *o = json_object_new_object(), *addrs = json_object_new_array();

        for (size_t j = 0; addrs && j < e->n_addrs; j++)
            json_object_array_add(addrs, json_object_new_string(e->addrs[j]));
        json_object_object_add(o, "host", json_object_new_string(e->host));
        json_object_object_add(o, "port", json_object_new_int(e->port));
        json_object_object_add(o, "addresses", addrs);
        json_object_array_add(a, o);
    }
    return a;
}

static int host_from_json(struct json_object *o, struct molt_wnet_host *e, struct molt_err *err)
{
    struct json_object *addrs = NULL;
    int64_t port;
    int rc, family;

    if (!json_object_is_type(o, json_type_object))
        return molt_err_set(err, MOLT_E_PARSE, "not an object");
    json_object_object_foreach(o, key, val) {
        (void)val;
        if (strcmp(key, "host") != 0 && strcmp(key, "port") != 0 &&
            strcmp(key, "addresses") != 0)
            return molt_err_set(err, MOLT_E_PARSE, "unknown field '%.64s'", key);
    }
    if ((rc = molt_json_copy_str(o, "host", e->host, sizeof(e->host), err)) < 0 ||
        (rc = molt_json_int_field(o, "port", 0, 1, 65535, &port, err)) < 0)
        return rc;
    if (!host_ok(e->host))
        return molt_err_set(err, MOLT_E_PARSE, "field 'host': not a host name or an IP address");
    e->port = (uint16_t)port;
    if (!json_object_object_get_ex(o, "addresses", &addrs) ||
        !json_object_is_type(addrs, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "field 'addresses': missing or not an array");
    if (json_object_array_length(addrs) > MOLT_WNET_ADDRS_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "field 'addresses': more than %d",
                            MOLT_WNET_ADDRS_MAX);
    e->n_addrs = json_object_array_length(addrs);
    for (size_t j = 0; j < e->n_addrs; j++) {
        struct json_object *v = json_object_array_get_idx(addrs, j);

        if (!json_object_is_type(v, json_type_string) ||
            !numeric(json_object_get_string(v), e->addrs[j], &family))
            return molt_err_set(err, MOLT_E_PARSE, "addresses[%zu]: not a numeric IP address",
                                j);
    }
    return 0;
}

int molt_wnet_from_json(struct json_object *a, struct molt_wnet *net, struct molt_err *err)
{
    memset(net, 0, sizeof(*net));
    if (!json_object_is_type(a, json_type_array))
        return molt_err_set(err, MOLT_E_PARSE, "not an array");
    if (json_object_array_length(a) > MOLT_WNET_HOSTS_MAX)
        return molt_err_set(err, MOLT_E_LIMIT, "more than %d hosts", MOLT_WNET_HOSTS_MAX);
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        int rc = host_from_json(json_object_array_get_idx(a, i), &net->hosts[i], err);

        if (rc < 0) {
            molt_err_prefix(err, "hosts[%zu]", i);
            memset(net, 0, sizeof(*net));
            return rc;
        }
        net->n_hosts = i + 1;
    }
    return 0;
}

void molt_wnet_resolve_list(const struct molt_wnet *net, const char *out[],
                            char buf[][MOLT_WNET_RESOLVE_MAX])
{
    size_t n = 0;

    for (size_t i = 0; i < net->n_hosts; i++) {
        const struct molt_wnet_host *e = &net->hosts[i];
        char canon[INET6_ADDRSTRLEN];
        int family, len;

        if (e->n_addrs == 0 || numeric(e->host, canon, &family))
            continue;
        len = snprintf(buf[n], MOLT_WNET_RESOLVE_MAX, "%s:%u:", e->host, e->port);
        for (size_t j = 0; j < e->n_addrs; j++) {
            int v6 = strchr(e->addrs[j], ':') != NULL;

            len += snprintf(buf[n] + len, MOLT_WNET_RESOLVE_MAX - (size_t)len, "%s%s%s%s",
                            j ? "," : "", v6 ? "[" : "", e->addrs[j], v6 ? "]" : "");
        }
        out[n] = buf[n];
        n++;
    }
    out[n] = NULL;
}

static int pinned(const struct molt_wnet *net, const char *canon, long port)
{
    for (size_t i = 0; i < net->n_hosts; i++) {
        if (net->hosts[i].port != port)
            continue;
        for (size_t j = 0; j < net->hosts[i].n_addrs; j++) {
            if (strcmp(net->hosts[i].addrs[j], canon) == 0)
                return 1;
        }
    }
    return 0;
}

/* A non-blocking connect, waited for up to timeout_ms. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms,
                          struct molt_err *err)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int e = 0, n;
    socklen_t elen = sizeof(e);

    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return molt_err_errno(err, "connect");
    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return molt_err_set(err, MOLT_E_TIMEOUT, "connect: no answer in %d ms", timeout_ms);
    if (n < 0)
        return molt_err_errno(err, "poll");
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
        return molt_err_errno(err, "connect");
    if (e) {
        errno = e;
        return molt_err_errno(err, "connect");
    }
    return 0;
}

int molt_wnet_connect(const struct molt_wnet *net, const char *address, long port,
                      int timeout_ms, int *fd, struct molt_err *err)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char canon[INET6_ADDRSTRLEN];
    socklen_t len;
    int family, s, rc;

    *fd = -1;
    if (!numeric(address, canon, &family) || port < 1 || port > 65535 ||
        !pinned(net, canon, port))
        return molt_err_set(err, MOLT_E_INVAL, "%.64s port %ld is not an address of the "
                            "task's hosts", address, port);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, canon, &in4->sin_addr);
        len = sizeof(*in4);
    } else {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, canon, &in6->sin6_addr);
        len = sizeof(*in6);
    }
    if ((s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return molt_err_errno(err, "socket");
    if ((rc = connect_within(s, (struct sockaddr *)&ss, len, timeout_ms, err)) < 0) {
        close(s);
        err->code = MOLT_E_NET;
        return molt_err_prefix(err, "%s port %ld", canon, port);
    }
    *fd = s;
    return 0;
}
