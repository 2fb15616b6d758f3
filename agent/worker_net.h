/* worker_net.h: the network endpoints of one upgrade task, and the
 * connections the agent opens to them for its worker (docs/security.md
 * section 7). The agent resolves the hosts the task may reach (the server,
 * the build's sources, the delta, the proxy) before the worker starts and
 * hands them over pinned, in the start message's "hosts"; the sandboxed
 * worker opens no socket and resolves no name: it asks the agent for each
 * connection, and the agent connects only to a pinned address and port. */
#ifndef MOLT_WORKER_NET_H
#define MOLT_WORKER_NET_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <netinet/in.h>

#include "conf.h"
#include "err.h"
#include "upgrade_state.h"

/* The server, MOLT_BUILD_SOURCES_MAX sources, the delta and five proxies
 * (server.proxy or https_proxy, HTTPS_PROXY, http_proxy, all_proxy,
 * ALL_PROXY), with room to spare. */
#define MOLT_WNET_HOSTS_MAX 16
#define MOLT_WNET_ADDRS_MAX 8
#define MOLT_WNET_HOST_MAX 253

struct molt_wnet_host {
    char host[MOLT_WNET_HOST_MAX + 1];          /* a name or an IP literal (no brackets) */
    uint16_t port;
    size_t n_addrs;
    char addrs[MOLT_WNET_ADDRS_MAX][INET6_ADDRSTRLEN]; /* numeric, inet_ntop's form */
};

struct molt_wnet {
    struct molt_wnet_host hosts[MOLT_WNET_HOSTS_MAX];
    size_t n_hosts;
};

/* Resolves the endpoints of task under conf (and the proxy variables of the
 * environment, which libcurl would read) into *net, all at once and within
 * timeout_ms in all; aborted (when not NULL) is asked several times a second
 * and its error returned as soon as it has one. A host that does not resolve
 * in time is left without addresses and logged: the worker's download from
 * it then fails as an unresolvable host would. Errors otherwise only for a
 * task with more endpoints than MOLT_WNET_HOSTS_MAX. */
int molt_wnet_pin(struct molt_wnet *net, const struct molt_config *conf,
                  const struct molt_upgrade_state *task, int timeout_ms,
                  int (*aborted)(void *ctx, struct molt_err *err), void *ctx,
                  struct molt_err *err);

/* The JSON form of the start message: [{"host","port","addresses":[...]}]. */
struct json_object *molt_wnet_to_json(const struct molt_wnet *net);
/* Reads and checks it (names of [A-Za-z0-9.-_] or IP literals, ports
 * 1..65535, at most MOLT_WNET_ADDRS_MAX numeric addresses each, no other
 * field); errors name the entry: "hosts[2]: addresses[0]: ...". */
int molt_wnet_from_json(struct json_object *a, struct molt_wnet *net, struct molt_err *err);

/* libcurl's CURLOPT_RESOLVE entries for the named hosts ("host:port:a,b"),
 * NULL-terminated, in out (at least MOLT_WNET_HOSTS_MAX + 1 pointers) with
 * their text in buf: IP literals need none. */
#define MOLT_WNET_RESOLVE_MAX (MOLT_WNET_HOST_MAX + 8 + MOLT_WNET_ADDRS_MAX * INET6_ADDRSTRLEN)
void molt_wnet_resolve_list(const struct molt_wnet *net, const char *out[],
                            char buf[][MOLT_WNET_RESOLVE_MAX]);

/* Connects to address:port (numeric) when it is a pinned one, within
 * timeout_ms: the connected socket (non-blocking, close-on-exec) in *fd. MOLT_E_INVAL when it is
 * not pinned (a worker asking for it is out of bounds), MOLT_E_NET when the
 * connection fails. */
int molt_wnet_connect(const struct molt_wnet *net, const char *address, long port,
                      int timeout_ms, int *fd, struct molt_err *err);

#endif
