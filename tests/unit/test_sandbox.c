/* test_sandbox.c: molt_sandbox_apply in a forked child (it cannot be undone):
 * writing inside the writable directory works, writing or reading outside
 * fails even as root, refused and fatal system calls, threads still start,
 * TCP connect limited to the listed ports, no sockets of its own, and the
 * status text. Where the
 * kernel lacks Landlock the file checks print "# SKIP" and the rest runs.
 * And the real work under the real sandbox: a signed package verified and
 * staged (gzip and zstd) into the task directory, and refused elsewhere; a
 * package downloaded over TLS (libcurl, OpenSSL) from `openssl s_server` on
 * loopback by molt_dl_fetch, as the worker does it: no socket of its own, a
 * host name pinned, a connection made before the sandbox handed to it;
 * trusting server.ca_file, and (root) the system's CAs through a hashed
 * /etc/ssl/certs of the test's own with no bundle in it. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "download.h"
#include "sandbox.h"
#include "test_package_util.h"

#define ALL_LAYERS (MOLT_SANDBOX_NO_NEW_PRIVS | MOLT_SANDBOX_LANDLOCK | MOLT_SANDBOX_SECCOMP)

struct dirs {
    char base[PATH_MAX];
    char inside[PATH_MAX];
    char outside[PATH_MAX];
    char secret[PATH_MAX]; /* an existing file outside */
};

static void make_dirs(struct dirs *d)
{
    tu_mkdtemp(d->base);
    snprintf(d->inside, sizeof(d->inside), "%s/task", d->base);
    snprintf(d->outside, sizeof(d->outside), "%s/other", d->base);
    assert_int_equal(mkdir(d->inside, 0700), 0);
    assert_int_equal(mkdir(d->outside, 0700), 0);
    tu_write(d->secret, d->outside, "secret", "key");
}


static void child_apply(const struct dirs *d, const uint16_t *ports, size_t n_ports,
                        struct molt_sandbox_status *st)
{
    const char *const writable[] = { d->inside, NULL };
    struct molt_sandbox_conf conf = { writable, molt_sandbox_system_readable, { 0 }, n_ports, 0 };
    struct molt_err err = MOLT_ERR_INIT;

    for (size_t i = 0; i < n_ports; i++)
        conf.ports[i] = ports[i];
    if (molt_sandbox_apply(&conf, st, &err) < 0) {
        fprintf(stderr, "apply: %s\n", err.msg);
        _exit(100);
    }
}

/* Runs fn in a child; returns its wait status. */
static int run_child(void (*fn)(const struct dirs *), const struct dirs *d)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        fn(d);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int landlock_abi(void)
{
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* VERSION */);

    return abi > 0 ? abi : 0;
}

static void child_files(const struct dirs *d)
{
    struct molt_sandbox_status st;
    char path[PATH_MAX];
    char buf[8];
    int fd;

    child_apply(d, NULL, 0, &st);
    TU_CHILD_CHECK(1, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    snprintf(path, sizeof(path), "%s/staged", d->inside);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    TU_CHILD_CHECK(2, fd >= 0 && write(fd, "ok", 2) == 2 && close(fd) == 0);
    TU_CHILD_CHECK(3, mkdir(d->inside, 0700) < 0 && errno == EEXIST);
    snprintf(path, sizeof(path), "%s/sub", d->inside);
    TU_CHILD_CHECK(4, mkdir(path, 0700) == 0 && rmdir(path) == 0);
    if (!(st.layers & MOLT_SANDBOX_LANDLOCK)) {
        printf("# SKIP landlock not in force (%s): outside writes not checked\n", st.text);
        return;
    }
    snprintf(path, sizeof(path), "%s/planted", d->outside);
    errno = 0;
    TU_CHILD_CHECK(5, open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600) < 0 && errno == EACCES);
    errno = 0;
    TU_CHILD_CHECK(6, open(d->secret, O_WRONLY | O_CLOEXEC) < 0 && errno == EACCES);
    errno = 0;
    TU_CHILD_CHECK(7, open(d->secret, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES);
    errno = 0;
    TU_CHILD_CHECK(8, unlink(d->secret) < 0 && errno == EACCES);
    errno = 0;
    TU_CHILD_CHECK(9, open("/etc/molt-sandbox-test", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) < 0 &&
                       errno == EACCES);
    /* A rename out of the task directory is a write outside. */
    snprintf(path, sizeof(path), "%s/staged", d->inside);
    errno = 0;
    TU_CHILD_CHECK(10, rename(path, d->secret) < 0 && (errno == EACCES || errno == EXDEV));
    /* What a download reads is still readable. */
    fd = open("/etc/ssl", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    TU_CHILD_CHECK(11, fd >= 0 || errno == ENOENT);
    if (fd >= 0)
        close(fd);
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    TU_CHILD_CHECK(12, fd >= 0 && read(fd, buf, sizeof(buf)) == 0);
    close(fd);
}

static void test_files(void **state)
{
    struct dirs d;
    char path[PATH_MAX];
    int status;

    make_dirs(&d);
    if (geteuid() == 0)
        printf("# running as root: the sandbox must hold for root too\n");
    status = run_child(child_files, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    snprintf(path, sizeof(path), "%s/staged", d.inside);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/planted", d.outside);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(d.secret, F_OK), 0);
    tu_rmtree(d.base);
}

static void child_refused_calls(const struct dirs *d)
{
    struct molt_sandbox_status st;
    int fd;

    child_apply(d, NULL, 0, &st);
    if (!(st.layers & MOLT_SANDBOX_SECCOMP)) {
        printf("# SKIP seccomp not in force (%s)\n", st.text);
        return;
    }
    errno = 0;
    TU_CHILD_CHECK(1, socket(AF_PACKET, SOCK_RAW, 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(2, socket(AF_INET, SOCK_RAW, IPPROTO_RAW) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(3, socket(AF_UNIX, SOCK_STREAM, 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(4, socket(AF_NETLINK, SOCK_RAW, 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(5, kill(getppid(), 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(6, chmod(d->inside, 0755) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(7, ioctl(0, 0x5412 /* TIOCSTI */, "x") < 0 && errno == EPERM);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TU_CHILD_CHECK(8, fd >= 0);
    close(fd);
    fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    TU_CHILD_CHECK(9, fd >= 0 || errno == EAFNOSUPPORT);
    if (fd >= 0)
        close(fd);
}

static void test_refused_calls(void **state)
{
    struct dirs d;
    int status;

    make_dirs(&d);
    status = run_child(child_refused_calls, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rmtree(d.base);
}

static void child_mount(const struct dirs *d)
{
    struct molt_sandbox_status st;

    child_apply(d, NULL, 0, &st);
    mount("none", d->inside, "tmpfs", 0, NULL);
    _exit(50);
}

static void child_exec(const struct dirs *d)
{
    struct molt_sandbox_status st;
    char arg0[] = "/bin/true";
    char *const argv[] = { arg0, NULL };

    child_apply(d, NULL, 0, &st);
    execv(arg0, argv);
    _exit(51);
}

static void child_ptrace(const struct dirs *d)
{
    struct molt_sandbox_status st;

    child_apply(d, NULL, 0, &st);
    syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
    _exit(52);
}

static void test_escapes_killed(void **state)
{
    void (*const fns[])(const struct dirs *) = { child_mount, child_exec, child_ptrace };
    struct dirs d;

    make_dirs(&d);
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        int status = run_child(fns[i], &d);

        if (!WIFSIGNALED(status))
            fprintf(stderr, "escape %zu: exit %d\n", i, WEXITSTATUS(status));
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGSYS);
    }
    tu_rmtree(d.base);
}

static void *thread_main(void *arg)
{
    *(int *)arg = 7;
    return NULL;
}

static void child_thread(const struct dirs *d)
{
    struct molt_sandbox_status st;
    pthread_t t;
    int value = 0;

    child_apply(d, NULL, 0, &st);
    TU_CHILD_CHECK(1, pthread_create(&t, NULL, thread_main, &value) == 0);
    TU_CHILD_CHECK(2, pthread_join(t, NULL) == 0 && value == 7);
    if (!(st.layers & MOLT_SANDBOX_SECCOMP)) {
        printf("# SKIP seccomp not in force (%s): fork not checked\n", st.text);
        return;
    }
    /* Threads only, never a process: one would outlive the worker's kill. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    TU_CHILD_CHECK(3, pid < 0 && errno == EPERM);
}

/* The resolver starts threads: glibc must fall back from clone3 to clone;
 * a new process (fork) is refused. */
static void test_threads_start(void **state)
{
    struct dirs d;
    int status;

    make_dirs(&d);
    status = run_child(child_thread, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rmtree(d.base);
}

static int try_connect(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;

    if (fd < 0)
        return -1;
    rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    return rc;
}

static uint16_t g_ports[2];

static void child_connect(const struct dirs *d)
{
    struct molt_sandbox_status st;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd;

    child_apply(d, &g_ports[0], 1, &st);
    if (st.landlock_abi < 4) {
        printf("# SKIP landlock abi %d has no TCP rules\n", st.landlock_abi);
        return;
    }
    TU_CHILD_CHECK(1, try_connect(g_ports[0]) == 0);
    errno = 0;
    TU_CHILD_CHECK(2, try_connect(g_ports[1]) < 0 && errno == EACCES);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    errno = 0;
    TU_CHILD_CHECK(3, fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
                       (errno == EACCES || errno == EPERM));
    close(fd);
}

/* no_sockets: none of its own; a connected one it holds stays connected
 * where it was, whatever connect() is asked. */
static void child_no_sockets(const struct dirs *d)
{
    const char *const writable[] = { d->inside, NULL };
    struct molt_sandbox_conf conf = { writable, molt_sandbox_system_readable, { 0 }, 0, 1 };
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(g_ports[0]),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in other = to, peer;
    socklen_t len = sizeof(peer);
    struct molt_sandbox_status st;
    struct molt_err err = MOLT_ERR_INIT;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    TU_CHILD_CHECK(1, fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0);
    if (molt_sandbox_apply(&conf, &st, &err) < 0) {
        fprintf(stderr, "apply: %s\n", err.msg);
        _exit(100);
    }
    if (!(st.layers & MOLT_SANDBOX_SECCOMP)) {
        printf("# SKIP seccomp not in force (%s)\n", st.text);
        return;
    }
    errno = 0;
    TU_CHILD_CHECK(2, socket(AF_INET, SOCK_STREAM, 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(3, socket(AF_INET6, SOCK_STREAM, 0) < 0 && errno == EPERM);
    errno = 0;
    TU_CHILD_CHECK(4, socket(AF_INET, SOCK_DGRAM, 0) < 0 && errno == EPERM);
    other.sin_port = htons(g_ports[1]);
    TU_CHILD_CHECK(5, connect(fd, (struct sockaddr *)&other, sizeof(other)) == 0);
    TU_CHILD_CHECK(6, getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
                       peer.sin_port == htons(g_ports[0]));
    TU_CHILD_CHECK(7, write(fd, "x", 1) == 1);
    close(fd);
}

static void test_no_sockets(void **state)
{
    struct dirs d;
    int l1 = tu_listen_loopback(&g_ports[0]);
    int l2 = tu_listen_loopback(&g_ports[1]);
    int status;

    (void)state;
    make_dirs(&d);
    status = run_child(child_no_sockets, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(l1);
    close(l2);
    tu_rmtree(d.base);
}

static void test_connect_ports(void **state)
{
    struct dirs d;
    int l1 = tu_listen_loopback(&g_ports[0]);
    int l2 = tu_listen_loopback(&g_ports[1]);
    int status;

    make_dirs(&d);
    status = run_child(child_connect, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(l1);
    close(l2);
    tu_rmtree(d.base);
}

static void child_status(const struct dirs *d)
{
    struct molt_sandbox_status st, probed;
    char want[128];
    int abi = landlock_abi();

    /* The probe (the agent's start line) says what applying then does. */
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    molt_sandbox_probe(&probed);
    TU_CHILD_CHECK(4, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == nnp); /* applies nothing */
    child_apply(d, NULL, 0, &st);
    printf("# sandbox: %s\n", st.text);
    TU_CHILD_CHECK(5, probed.layers == st.layers && probed.landlock_abi == st.landlock_abi &&
                       strcmp(probed.text, st.text) == 0);
    TU_CHILD_CHECK(1, st.landlock_abi == abi);
    if (abi > 0) {
        snprintf(want, sizeof(want), "no_new_privs landlock(abi %d) seccomp", abi);
        TU_CHILD_CHECK(2, st.layers == ALL_LAYERS && strcmp(st.text, want) == 0);
    } else {
        TU_CHILD_CHECK(3, (st.layers & MOLT_SANDBOX_NO_NEW_PRIVS) &&
                           strstr(st.text, "-landlock(") != NULL);
    }
}

static void test_status_text(void **state)
{
    struct dirs d;
    int status;

    make_dirs(&d);
    status = run_child(child_status, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rmtree(d.base);
}

static void child_bad_writable(const struct dirs *d)
{
    const char *const writable[] = { "/nonexistent/molt-task", NULL };
    struct molt_sandbox_conf conf = { writable, NULL, { 0 }, 0, 0 };
    struct molt_sandbox_status st;
    struct molt_err err = MOLT_ERR_INIT;

    if (!landlock_abi())
        return;
    TU_CHILD_CHECK(1, molt_sandbox_apply(&conf, &st, &err) < 0);
    TU_CHILD_CHECK(2, strstr(err.msg, "sandbox: landlock: open /nonexistent/molt-task") == err.msg);
}

/* A supported layer that cannot be applied is an error naming the step. */
static void test_bad_writable_fails(void **state)
{
    struct dirs d;
    int status;

    make_dirs(&d);
    status = run_child(child_bad_writable, &d);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    tu_rmtree(d.base);
}

static void stage_in_sandbox(struct tp_env *env, int zstd)
{
    const char *const writable[] = { env->upgrade, NULL };
    const char *readable[32];
    struct tp_opts o = { .zstd = zstd };
    struct molt_sandbox_conf conf = { writable, readable, { 0 }, 0, 0 };
    struct molt_sandbox_status st;
    struct molt_statement stmt;
    struct molt_err err = MOLT_ERR_INIT;
    char pkg[PATH_MAX], out[PATH_MAX];
    size_t n = 0;
    int status;
    pid_t pid;

    tp_make(env, tp_good, tp_good_n, &o, pkg, NULL);
    readable[n++] = env->builds;
    readable[n++] = env->keys;
    for (size_t i = 0; molt_sandbox_system_readable[i] && n < 31; i++)
        readable[n++] = molt_sandbox_system_readable[i];
    readable[n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (molt_sandbox_apply(&conf, &st, &err) < 0) {
            fprintf(stderr, "apply: %s\n", err.msg);
            _exit(100);
        }
        if (molt_pkg_verify_file(env->keys, pkg, NULL, NULL, "20.2-100", NULL, NULL, NULL, &stmt,
                                 &err) < 0) {
            fprintf(stderr, "verify: %s\n", err.msg);
            _exit(1);
        }
        if (molt_pkg_stage(pkg, &stmt, env->upgrade, "task-1", out, &err) < 0) {
            fprintf(stderr, "stage: %s\n", err.msg);
            _exit(2);
        }
        /* The same staging into a directory it may only read: refused. */
        if ((st.layers & MOLT_SANDBOX_LANDLOCK) &&
            molt_pkg_stage(pkg, &stmt, env->builds, "task-1", out, &err) == 0) {
            fprintf(stderr, "staged outside the task directory\n");
            _exit(3);
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    snprintf(out, sizeof(out), "%s/task-1/bin/molt-agent", env->upgrade);
    assert_int_equal(access(out, F_OK), 0);
    snprintf(out, sizeof(out), "%s/task-1", env->builds);
    assert_int_equal(access(out, F_OK), -1);
}

static void test_stage_in_sandbox(void **state)
{
    stage_in_sandbox(*state, 0);
}

static void test_stage_zstd_in_sandbox(void **state)
{
    stage_in_sandbox(*state, 1);
}

static uint16_t free_port(void)
{
    uint16_t port;
    int fd = tu_listen_loopback(&port);

    close(fd);
    return port;
}

static int wait_listening(uint16_t port)
{
    for (int i = 0; i < 100; i++) {
        if (try_connect(port) == 0)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

/* The worker's way: one connection made before the sandbox, as the agent
 * makes it, handed to libcurl for the address it asks for. */
struct handed {
    int fd;
    uint16_t port;
    int asked;
};

static int hand_over(void *ctx, const struct sockaddr *addr, socklen_t len)
{
    struct handed *h = ctx;
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    int fd = h->fd;

    h->asked++;
    if (len < sizeof(*in) || in->sin_family != AF_INET || in->sin_port != htons(h->port) ||
        in->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return -1;
    h->fd = -1;
    return fd;
}

/* The system's store of the test's own over /etc/ssl/certs (dir/certs), in a
 * mount namespace of this child. */
static int own_system_store(const char *dir)
{
    char certs[PATH_MAX];

    snprintf(certs, sizeof(certs), "%s/certs", dir);
    if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return mount(certs, "/etc/ssl/certs", NULL, MS_BIND, NULL);
}

/* ca NULL: no server.ca_file, the system's CAs (own_system_store's). */
static void child_download(const char *dir, const char *ca, uint16_t port)
{
    char task[PATH_MAX], dest[PATH_MAX], url[128], pin[64];
    const char *const writable[] = { task, NULL };
    const char *const resolve[] = { pin, NULL };
    const char *readable[40];
    struct molt_sandbox_conf conf = { writable, readable, { port }, 1, 1 };
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct handed h = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), .port = port };
    struct molt_sandbox_status st;
    struct molt_config c;
    struct molt_dl_opts o = { .conf = &c, .url = url, .dest = dest, .size = 100000,
                              .max_attempts = 1, .resolve = resolve, .connect = hand_over,
                              .connect_ctx = &h };
    struct molt_dl_stats stats;
    struct molt_err err = MOLT_ERR_INIT;
    size_t n = 0;

    /* A name the resolver does not know: only the pin says where it is. */
    snprintf(pin, sizeof(pin), "package.molt.invalid:%u:127.0.0.1", port);
    if (h.fd < 0 || connect(h.fd, (struct sockaddr *)&to, sizeof(to)) < 0)
        _exit(101);

    snprintf(task, sizeof(task), "%s/task", dir);
    snprintf(dest, sizeof(dest), "%s/package", task);
    snprintf(url, sizeof(url), "https://package.molt.invalid:%u/pkg", port);
    if (ca)
        readable[n++] = ca;
    else if (own_system_store(dir) < 0)
        _exit(102);
    for (size_t i = 0; molt_sandbox_system_readable[i] && n < 39; i++)
        readable[n++] = molt_sandbox_system_readable[i];
    readable[n] = NULL;
    molt_conf_defaults(&c);
    snprintf(c.server.url, sizeof(c.server.url), "https://package.molt.invalid:%u/", port);
    snprintf(c.server.ca_file, sizeof(c.server.ca_file), "%s", ca ? ca : "");
    c.server.connect_timeout_ms = 5000;
    if (molt_sandbox_apply(&conf, &st, &err) < 0) {
        fprintf(stderr, "apply: %s\n", err.msg);
        _exit(100);
    }
    /* As the worker: without seccomp, libcurl 7.88 would connect the handed
     * socket again (download.c), so it opens its own to the pinned address. */
    if (!(st.layers & MOLT_SANDBOX_SECCOMP)) {
        printf("# seccomp not in force (%s): libcurl connects itself\n", st.text);
        o.connect = NULL;
        h.asked = 1;
    }
    if (molt_dl_fetch(&o, &stats, &err) < 0) {
        fprintf(stderr, "download: %s\n", err.msg);
        _exit(1);
    }
    if (h.asked != 1) {
        fprintf(stderr, "download: asked for %d connections, not 1\n", h.asked);
        _exit(2);
    }
    _exit(0);
}

static void test_download_in_sandbox(void **state)
{
    char dir[PATH_MAX], cmd[3 * PATH_MAX], path[PATH_MAX], ca[PATH_MAX];
    uint16_t port = free_port();
    int status[2], runs = geteuid() == 0 ? 2 : 1;
    pid_t server, pid;
    size_t len[2] = { 0, 0 };
    struct stat sb;

    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("# SKIP openssl not installed: no TLS server for the download\n");
        skip();
    }
    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/task", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout key.pem -out cert.pem -days 1 -subj /CN=package.molt.invalid "
             "-addext subjectAltName=DNS:package.molt.invalid >/dev/null 2>&1 && "
             "head -c 100000 /dev/urandom >pkg && mkdir certs && cp cert.pem certs/ && "
             "ln -s cert.pem certs/$(openssl x509 -hash -noout -in cert.pem).0",
             dir);
    assert_int_equal(system(cmd), 0);
    server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        char accept_arg[16];

        snprintf(accept_arg, sizeof(accept_arg), "%u", port);
        if (chdir(dir) == 0)
            execlp("openssl", "openssl", "s_server", "-quiet", "-WWW", "-accept", accept_arg,
                   "-cert", "cert.pem", "-key", "key.pem", (char *)NULL);
        _exit(127);
    }
    if (wait_listening(port) < 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
        fail_msg("openssl s_server is not listening on port %u", port);
    }
    snprintf(path, sizeof(path), "%s/task/package", dir);
    /* Then with no ca_file and the CA only hashed in a /etc/ssl/certs with no
     * bundle, as lib/http.c's system_trust reads the system's CAs. The server
     * is stopped before any assertion. */
    for (int system_store = 0; system_store < runs; system_store++) {
        unlink(path);
        pid = fork();
        if (pid == 0)
            child_download(dir, system_store ? NULL : ca, port);
        if (pid < 0 || waitpid(pid, &status[system_store], 0) != pid)
            status[system_store] = -1;
        len[system_store] = stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
    }
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    for (int i = 0; i < runs; i++) {
        assert_true(WIFEXITED(status[i]));
        assert_int_equal(WEXITSTATUS(status[i]), 0);
        assert_int_equal(len[i], 100000);
    }
    if (runs == 1)
        printf("# root only: the download with the system's CAs not checked\n");
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),          cmocka_unit_test(test_refused_calls),
        cmocka_unit_test(test_escapes_killed), cmocka_unit_test(test_threads_start),
        cmocka_unit_test(test_connect_ports),  cmocka_unit_test(test_no_sockets),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_bad_writable_fails),
        cmocka_unit_test_setup_teardown(test_stage_in_sandbox, tp_setup, tp_teardown),
        cmocka_unit_test_setup_teardown(test_stage_zstd_in_sandbox, tp_setup, tp_teardown),
        cmocka_unit_test(test_download_in_sandbox),
    };
    setvbuf(stdout, NULL, _IONBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
