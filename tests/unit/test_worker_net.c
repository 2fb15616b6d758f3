/* test_worker_net.c: the hosts an upgrade task may reach, pinned by the
 * agent: every URL of the task and the proxy (configured, or from the
 * environment as libcurl reads it), numeric hosts kept as they are (names
 * are loopback's only: no test asks a DNS server); the JSON form round trips and bad
 * entries are refused by name; libcurl's resolve entries; connections, made
 * only to a pinned address and port, on real loopback sockets; and a
 * resolver that never answers (a silent name server on loopback, in a mount
 * namespace of the test's own) holding up neither the deadline nor a
 * cancel. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "upgrade_state.h"
#include "worker_net.h"

static const struct molt_wnet_host *find(const struct molt_wnet *net, const char *host,
                                         unsigned port)
{
    for (size_t i = 0; i < net->n_hosts; i++) {
        if (strcmp(net->hosts[i].host, host) == 0 && net->hosts[i].port == port)
            return &net->hosts[i];
    }
    return NULL;
}

static int has_addr(const struct molt_wnet_host *e, const char *addr)
{
    for (size_t i = 0; e && i < e->n_addrs; i++) {
        if (strcmp(e->addrs[i], addr) == 0)
            return 1;
    }
    return 0;
}

static void task_of(struct molt_upgrade_state *t)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->build.url, "/builds/molt.tar.gz");
    strcpy(t->build.mirrors[0], "https://LocalHost:8443/m/molt.tar.gz");
    strcpy(t->build.mirrors[1], "https://[::1]:9443/molt.tar.gz");
    strcpy(t->build.mirrors[2], "https://localhost/molt.tar.gz");
    t->build.n_mirrors = 3;
    t->build.delta.present = 1;
    strcpy(t->build.delta.url, "https://localhost:8443/d/molt.delta");
}

static void test_pin_task(void **state)
{
    struct molt_wnet *net = malloc(sizeof(*net));
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t;
    struct molt_config c;
    const struct molt_wnet_host *e;

    (void)state;
    assert_non_null(net);
    molt_conf_defaults(&c);
    strcpy(c.server.url, "https://127.0.0.1:7443/");
    task_of(&t);
    setenv("https_proxy", "http://user:secret@[::1]:3128/", 1);
    setenv("ALL_PROXY", "socks5h://localhost", 1);
    assert_int_equal(molt_wnet_pin(net, &c, &t, 5000, NULL, NULL, &err), 0);
    /* The build URL, on the server; the mirrors; the delta's host once (the
     * same host and port as a mirror, in another case); both proxies. */
    assert_int_equal(net->n_hosts, 6);
    e = find(net, "127.0.0.1", 7443);
    assert_non_null(e);
    assert_int_equal(e->n_addrs, 1);
    assert_true(has_addr(e, "127.0.0.1"));
    e = find(net, "LocalHost", 8443);
    assert_non_null(e);
    assert_true(has_addr(e, "127.0.0.1"));
    assert_true(has_addr(find(net, "::1", 9443), "::1"));
    assert_true(has_addr(find(net, "localhost", 443), "127.0.0.1"));
    assert_true(has_addr(find(net, "::1", 3128), "::1"));
    assert_true(has_addr(find(net, "localhost", 1080), "127.0.0.1"));

    /* server.proxy set: libcurl reads no variable, nor does the pinning. */
    strcpy(c.server.proxy, "localhost:8080");
    assert_int_equal(molt_wnet_pin(net, &c, &t, 5000, NULL, NULL, &err), 0);
    assert_int_equal(net->n_hosts, 5);
    assert_true(has_addr(find(net, "localhost", 8080), "127.0.0.1"));
    assert_null(find(net, "::1", 3128));
    unsetenv("https_proxy");
    unsetenv("ALL_PROXY");

    /* An offline package: nothing to connect to. */
    strcpy(t.local_package, "/var/tmp/molt.tar.gz");
    assert_int_equal(molt_wnet_pin(net, &c, &t, 5000, NULL, NULL, &err), 0);
    assert_int_equal(net->n_hosts, 0);
    free(net);
}

static void test_json_and_resolve(void **state)
{
    struct molt_wnet *net = calloc(2, sizeof(*net));
    struct molt_wnet *back = net + 1;
    struct molt_err err = MOLT_ERR_INIT;
    const char *list[MOLT_WNET_HOSTS_MAX + 1];
    char (*buf)[MOLT_WNET_RESOLVE_MAX] = malloc(MOLT_WNET_HOSTS_MAX * MOLT_WNET_RESOLVE_MAX);
    struct json_object *j;

    (void)state;
    assert_non_null(net);
    assert_non_null(buf);
    net->n_hosts = 3;
    strcpy(net->hosts[0].host, "cp.example");
    net->hosts[0].port = 443;
    net->hosts[0].n_addrs = 2;
    strcpy(net->hosts[0].addrs[0], "2001:db8::1");
    strcpy(net->hosts[0].addrs[1], "192.0.2.1");
    strcpy(net->hosts[1].host, "192.0.2.9");
    net->hosts[1].port = 8443;
    net->hosts[1].n_addrs = 1;
    strcpy(net->hosts[1].addrs[0], "192.0.2.9");
    strcpy(net->hosts[2].host, "gone.example");
    net->hosts[2].port = 443;
    j = molt_wnet_to_json(net);
    assert_int_equal(molt_wnet_from_json(j, back, &err), 0);
    json_object_put(j);
    assert_int_equal(back->n_hosts, 3);
    assert_memory_equal(back, net, sizeof(*net));

    /* Names only, IPv6 in brackets; a host of no address has no entry. */
    molt_wnet_resolve_list(back, list, buf);
    assert_string_equal(list[0], "cp.example:443:[2001:db8::1],192.0.2.1");
    assert_null(list[1]);

    j = json_tokener_parse("[{\"host\":\"cp\",\"port\":443,\"addresses\":"
                           "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}]");
    assert_true(molt_wnet_from_json(j, back, &err) < 0);
    assert_non_null(strstr(err.msg, "hosts[0]: field 'addresses': more than 8"));
    assert_int_equal(back->n_hosts, 0);
    json_object_put(j);
    j = json_tokener_parse("[{\"host\":\"cp\",\"port\":443,\"addresses\":[\"10.0.0.1\"]},"
                           "{\"host\":\"cp;rm\",\"port\":443,\"addresses\":[]}]");
    assert_true(molt_wnet_from_json(j, back, &err) < 0);
    assert_non_null(strstr(err.msg, "hosts[1]: field 'host'"));
    json_object_put(j);
    free(buf);
    free(net);
}

static void test_connect(void **state)
{
    struct molt_wnet *net = calloc(1, sizeof(*net));
    struct molt_err err = MOLT_ERR_INIT;
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    uint16_t port, closed;
    int l = tu_listen_loopback(&port), c = tu_listen_loopback(&closed), fd = 7;

    (void)state;
    close(c); /* a port just free: refused */
    assert_non_null(net);
    net->n_hosts = 2;
    strcpy(net->hosts[0].host, "localhost");
    net->hosts[0].port = port;
    net->hosts[0].n_addrs = 1;
    strcpy(net->hosts[0].addrs[0], "127.0.0.1");
    net->hosts[1] = net->hosts[0];
    net->hosts[1].port = closed;

    assert_int_equal(molt_wnet_connect(net, "127.0.0.1", port, 2000, &fd, &err), 0);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &len), 0);
    assert_int_equal(ntohs(peer.sin_port), port);
    close(fd);

    /* Not pinned: another port, another address, a name. */
    assert_int_equal(molt_wnet_connect(net, "127.0.0.1", 9, 2000, &fd, &err), MOLT_E_INVAL);
    assert_string_equal(err.msg, "127.0.0.1 port 9 is not an address of the task's hosts");
    assert_int_equal(fd, -1);
    assert_int_equal(molt_wnet_connect(net, "127.0.0.2", port, 2000, &fd, &err), MOLT_E_INVAL);
    assert_int_equal(molt_wnet_connect(net, "::1", port, 2000, &fd, &err), MOLT_E_INVAL);
    assert_int_equal(molt_wnet_connect(net, "localhost", port, 2000, &fd, &err), MOLT_E_INVAL);
    /* Pinned, nobody listening: the reason, for libcurl's next address. */
    assert_int_equal(molt_wnet_connect(net, "127.0.0.1", closed, 2000, &fd, &err), MOLT_E_NET);
    assert_non_null(strstr(err.msg, "Connection refused"));
    assert_int_equal(fd, -1);
    close(l);
    free(net);
}

static int64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int cancel_now(void *ctx, struct molt_err *err)
{
    int *calls = ctx;

    return ++*calls >= 2 ? molt_err_set(err, MOLT_E_CANCELLED, "cancelled") : 0;
}

#define SILENT_NS "127.0.0.77"

/* In the child: /etc/resolv.conf names a server on loopback that takes
 * queries and never answers, for 30 s each. */
static int silent_resolver(const char *dir)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
    char conf[PATH_MAX];
    FILE *f;
    int fd;

    snprintf(conf, sizeof(conf), "%s/resolv.conf", dir);
    if (!(f = fopen(conf, "w")))
        return -1;
    fprintf(f, "nameserver " SILENT_NS "\noptions timeout:30 attempts:1\n");
    fclose(f);
    inet_pton(AF_INET, SILENT_NS, &a.sin_addr);
    if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -2;
    if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(conf, "/etc/resolv.conf", "none", MS_BIND, NULL) < 0)
        return -3;
    return fd;
}


static void child_silent(const char *dir)
{
    struct molt_wnet *net = calloc(1, sizeof(*net));
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_upgrade_state t;
    struct molt_config c;
    int64_t start;
    int calls = 0, rc;

    if ((rc = silent_resolver(dir)) < 0)
        _exit(rc == -2 ? 76 : 77);
    molt_conf_defaults(&c);
    strcpy(c.server.url, "https://127.0.0.1:7443/");
    memset(&t, 0, sizeof(t));
    strcpy(t.build.url, "/molt.tar.gz");
    strcpy(t.build.mirrors[0], "https://mirror.molt.test/molt.tar.gz");
    t.build.n_mirrors = 1;
    /* The deadline: the silent name is left out, the numeric one pinned. */
    start = now_ms();
    rc = molt_wnet_pin(net, &c, &t, 300, NULL, NULL, &err);
    TU_CHILD_CHECK(1, rc == 0 && net->n_hosts == 2);
    TU_CHILD_CHECK(2, now_ms() - start < 10000);
    TU_CHILD_CHECK(3, has_addr(find(net, "127.0.0.1", 7443), "127.0.0.1"));
    TU_CHILD_CHECK(4, find(net, "mirror.molt.test", 443) &&
                       find(net, "mirror.molt.test", 443)->n_addrs == 0);
    /* A cancel while the resolver is silent: at once, with its reason. */
    start = now_ms();
    rc = molt_wnet_pin(net, &c, &t, 60000, cancel_now, &calls, &err);
    TU_CHILD_CHECK(5, rc == MOLT_E_CANCELLED && strcmp(err.msg, "cancelled") == 0);
    TU_CHILD_CHECK(6, now_ms() - start < 10000);
    _exit(0);
}

static void test_silent_resolver(void **state)
{
    char dir[PATH_MAX];
    int status;
    pid_t pid;

    (void)state;
    if (geteuid() != 0) {
        printf("# SKIP needs root (a mount namespace, a name server on port 53)\n");
        skip();
    }
    tu_mkdtemp(dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_silent(dir);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    tu_rmtree(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 76 || WEXITSTATUS(status) == 77) {
        /* Port 53 is refused to root of a user namespace (the arm64 tier's). */
        printf("# SKIP %s for a silent resolver\n", WEXITSTATUS(status) == 76 ?
               "cannot bind port 53 on " SILENT_NS : "no mount namespace");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_task),
        cmocka_unit_test(test_json_and_resolve),
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_silent_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
