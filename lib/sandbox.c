/* sandbox.c: the upgrade worker's confinement (sandbox.h). Landlock through
 * raw syscalls (no library; the constants of newer ABIs are defined here, as
 * build hosts' headers may be older than the kernels the agent runs on) and
 * seccomp through libseccomp. Why each rule is there: docs/security.md
 * section 7. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox.h"
#include "sandbox_int.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/* The ABI's layout, with the fields of ABI 4 (net) and 6 (scoped). */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
struct ll_net_port {
    uint64_t allowed_access;
    uint64_t port;
};
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_NET_BIND_TCP (1ULL << 0)  /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)

#define LL_FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_FS_WRITE                                                                                \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                               \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |  \
     LANDLOCK_ACCESS_FS_MAKE_SYM)

const char *const molt_sandbox_system_readable[] = {
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/ld.so.cache",
    "/etc/ssl", "/etc/pki", "/etc/ca-certificates", "/usr/share/ca-certificates",
    "/usr/lib/ssl", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
    "/etc/host.conf", "/etc/services", "/etc/localtime", "/proc/sys/crypto", "/dev/null",
    "/dev/urandom", NULL,
};

static uint64_t ll_fs_handled(int abi)
{
    uint64_t fs = LANDLOCK_ACCESS_FS_EXECUTE | LL_FS_READ | LL_FS_WRITE |
                  LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                  LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK;

    if (abi >= 2)
        fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LL_FS_IOCTL_DEV;
    return fs;
}

/* Grants access (as far as the ruleset handles it) beneath path. A file gets
 * only the rights that apply to files; the kernel refuses directory rights
 * on one. */
static int ll_add_path(int ruleset, const char *path, uint64_t access, uint64_t handled,
                       int must_exist, struct molt_err *err)
{
    const uint64_t file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                 LANDLOCK_ACCESS_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
    struct ll_path_beneath rule;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);
    int rc = 0;

    if (fd < 0) {
        if (!must_exist && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        return molt_err_errno(err, "landlock: open %s", path);
    }
    if (fstat(fd, &st) < 0) {
        rc = molt_err_errno(err, "landlock: stat %s", path);
        goto out;
    }
    if (must_exist && !S_ISDIR(st.st_mode)) {
        rc = molt_err_set(err, MOLT_E_INVAL, "landlock: %s is not a directory", path);
        goto out;
    }
    rule.allowed_access = access & handled & (S_ISDIR(st.st_mode) ? ~0ULL : file_rights);
    rule.parent_fd = fd;
    if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
        rc = molt_err_errno(err, "landlock: add rule for %s", path);
out:
    close(fd);
    return rc;
}

static int ll_rules(int ruleset, int abi, const struct molt_sandbox_conf *conf, uint64_t handled,
                    struct molt_err *err)
{
    int rc;

    for (const char *const *p = conf->writable; p && *p; p++) {
        if ((rc = ll_add_path(ruleset, *p, LL_FS_READ | LL_FS_WRITE | LANDLOCK_ACCESS_FS_REFER |
                                               LL_FS_TRUNCATE, handled, 1, err)) < 0)
            return rc;
    }
    for (const char *const *p = conf->readable; p && *p; p++) {
        if ((rc = ll_add_path(ruleset, *p, LL_FS_READ, handled, 0, err)) < 0)
            return rc;
    }
    for (size_t i = 0; abi >= 4 && i < conf->n_ports; i++) {
        struct ll_net_port np = { LL_NET_CONNECT_TCP, conf->ports[i] };

        if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) < 0)
            return molt_err_errno(err, "landlock: add rule for port %u", conf->ports[i]);
    }
    return 0;
}

static int apply_landlock(const struct molt_sandbox_conf *conf, int abi, struct molt_err *err)
{
    struct ll_ruleset_attr attr = { .handled_access_fs = ll_fs_handled(abi) };
    size_t attr_size = sizeof(attr.handled_access_fs);
    int ruleset;
    int rc;

    if (abi >= 4) {
        /* No sockets of its own: no port either, where seccomp cannot refuse them. */
        attr.handled_access_net =
            LL_NET_BIND_TCP | (conf->n_ports || conf->no_sockets ? LL_NET_CONNECT_TCP : 0);
        attr_size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        attr_size = sizeof(attr);
    }
    ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0)
        return molt_err_errno(err, "landlock: create ruleset (abi %d)", abi);
    rc = ll_rules(ruleset, abi, conf, attr.handled_access_fs, err);
    if (rc == 0 && syscall(__NR_landlock_restrict_self, ruleset, 0) < 0)
        rc = molt_err_errno(err, "landlock: restrict self");
    close(ruleset);
    return rc;
}

/* Allowed as they are: what downloading (libcurl, OpenSSL, the resolver),
 * verifying and staging (libarchive into the task directory) call. */
static const char *const sc_allow[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "close_range",
    "open", "openat", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
    "lseek", "_llseek", "getdents64", "readlink", "readlinkat", "access", "faccessat",
    "faccessat2", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "symlink", "symlinkat", "link", "linkat",
    "fchmod", "fchown", "utimensat", "fsync", "fdatasync", "ftruncate", "fallocate",
    "fadvise64", "flock", "umask", "copy_file_range", "sendfile", "dup", "dup2", "dup3",
    "fcntl", "pipe", "pipe2", "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "futex", "futex_waitv",
    "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "membarrier",
    "restart_syscall", "exit", "exit_group", "getpid", "gettid", "getppid", "getuid",
    "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "getrandom",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "getitimer", "setitimer", "alarm", "poll", "ppoll", "select", "pselect6", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
    "getsockopt", "setsockopt", "getsockname", "getpeername", "sendto",
    "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "socketpair",
    "uname", "sysinfo", "getrlimit", "sched_getaffinity", "sched_yield", "getrusage",
    "times", NULL,
};

/* Ending the process, not refusing the call: nothing molt runs calls these,
 * so a call is an attempt to leave the sandbox (run a program, change the
 * mounts or namespaces, reach another process, load kernel code). */
static const char *const sc_kill[] = {
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "mount", "umount2", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
    "mount_setattr", "pivot_root", "chroot", "unshare", "setns", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "open_by_handle_at", "name_to_handle_at", "mknod", "mknodat",
    "reboot", "swapon", "swapoff", "iopl", "ioperm", "io_uring_setup", "userfaultfd",
    "keyctl", "add_key", "request_key", "personality", NULL,
};

static int sc_add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                  const struct scmp_arg_cmp *cmp, struct molt_err *err)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a call of this architecture */
    rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (rc < 0) {
        errno = -rc;
        return molt_err_errno(err, "seccomp: rule for %s", name);
    }
    return 0;
}

/* SCMP_CMP with every field named: the macro leaves datum_b out for EQ, which
 * clang's -Wmissing-field-initializers refuses. For MASKED_EQ a is the mask. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
    struct scmp_arg_cmp c = { .arg = arg, .op = op, .datum_a = a, .datum_b = b };

    return c;
}

static int sc_add_arg(scmp_filter_ctx ctx, const char *name, unsigned arg, uint64_t value,
                      struct molt_err *err)
{
    struct scmp_arg_cmp cmp = arg_cmp(arg, SCMP_CMP_EQ, value, 0);

    return sc_add(ctx, SCMP_ACT_ALLOW, name, 1, &cmp, err);
}

/* Sockets of its own, or only the connected ones it is given. */
static int sc_sockets(scmp_filter_ctx ctx, int no_sockets, struct molt_err *err)
{
    const int domains[] = { AF_INET, AF_INET6 };
    const int types[] = { SOCK_STREAM, SOCK_DGRAM };
    int rc;

    if (no_sockets)
        return sc_add(ctx, SCMP_ACT_ERRNO(0), "connect", 0, NULL, err);
    if ((rc = sc_add(ctx, SCMP_ACT_ALLOW, "connect", 0, NULL, err)) < 0)
        return rc;
    for (size_t d = 0; d < 2; d++) {
        for (size_t t = 0; t < 2; t++) {
            struct scmp_arg_cmp cmp[2] = {
                arg_cmp(0, SCMP_CMP_EQ, (uint64_t)domains[d], 0),
                arg_cmp(1, SCMP_CMP_MASKED_EQ, 0xf, (uint64_t)types[t]),
            };

            if ((rc = sc_add(ctx, SCMP_ACT_ALLOW, "socket", 2, cmp, err)) < 0)
                return rc;
        }
    }
    return 0;
}

/* The calls allowed only with some arguments. */
static int sc_filtered(scmp_filter_ctx ctx, struct molt_err *err)
{
    const unsigned long ioctls[] = { FIONREAD, FIONBIO, TCGETS };
    const int prctls[] = { PR_GET_NO_NEW_PRIVS, PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
                           PR_SET_VMA };
    const uint64_t ns_flags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                              CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
    /* A thread (CLONE_THREAD), in no new namespace: a new process could
     * outlive the worker, and change its staged tree after the checks. */
    struct scmp_arg_cmp clone_cmp =
        arg_cmp(0, SCMP_CMP_MASKED_EQ, ns_flags | CLONE_THREAD, CLONE_THREAD);
    int rc;

    for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
        if ((rc = sc_add_arg(ctx, "ioctl", 1, ioctls[i], err)) < 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof(prctls) / sizeof(prctls[0]); i++) {
        if ((rc = sc_add_arg(ctx, "prctl", 0, (uint64_t)prctls[i], err)) < 0)
            return rc;
    }
    /* Threads (the resolver's), never processes or namespaces; glibc falls
     * back from clone3, whose flags a filter cannot see, to clone on ENOSYS. */
    if ((rc = sc_add(ctx, SCMP_ACT_ALLOW, "clone", 1, &clone_cmp, err)) < 0 ||
        (rc = sc_add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err)) < 0 ||
        /* Signals to itself only (abort, raise); prlimit on itself only. */
        (rc = sc_add_arg(ctx, "tgkill", 0, (uint64_t)getpid(), err)) < 0 ||
        (rc = sc_add_arg(ctx, "prlimit64", 0, 0, err)) < 0)
        return rc;
    return 0;
}

static int apply_seccomp(int no_sockets, struct molt_err *err)
{
    /* Refusing (EPERM) what is not listed, rather than killing, lets a
     * library's probe of a newer call fail over as it does on older kernels;
     * the calls of sc_kill end the process. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    /* Killing the whole process needs libseccomp to see the kernel's API
     * level 3, which it reads with seccomp(2) itself: under a service
     * manager's own filter (systemd's SystemCallFilter=) that probe can fail,
     * and then the thread making the call is killed instead, which for the
     * worker, single-threaded when it would exec, is the process. */
    uint32_t kill_action = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL_THREAD;
    int rc = 0;

    if (!ctx)
        return molt_err_set(err, MOLT_E_NOMEM, "seccomp: init");
    for (size_t i = 0; rc == 0 && sc_allow[i]; i++)
        rc = sc_add(ctx, SCMP_ACT_ALLOW, sc_allow[i], 0, NULL, err);
    for (size_t i = 0; rc == 0 && sc_kill[i]; i++)
        rc = sc_add(ctx, kill_action, sc_kill[i], 0, NULL, err);
    if (rc == 0)
        rc = sc_filtered(ctx, err);
    if (rc == 0)
        rc = sc_sockets(ctx, no_sockets, err);
    /* The worker applies its sandbox before it starts a thread; TSYNC only
     * covers a caller that did not. libseccomp refuses it when it cannot read
     * the kernel's API level (see kill_action): then go on without. */
    if (rc == 0 && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
        if (rc == -EOPNOTSUPP) {
            rc = 0;
        } else {
            errno = -rc;
            rc = molt_err_errno(err, "seccomp: synchronise threads");
        }
    }
    if (rc == 0 && (rc = seccomp_load(ctx)) < 0) {
        errno = -rc;
        rc = molt_err_errno(err, "seccomp: load filter");
    }
    seccomp_release(ctx);
    return rc;
}

int molt_sandbox_apply(const struct molt_sandbox_conf *conf, struct molt_sandbox_status *st,
                       struct molt_err *err)
{
    if (conf->n_ports > MOLT_SANDBOX_PORTS_MAX)
        return molt_err_set(err, MOLT_E_INVAL, "sandbox: %zu ports, more than %d", conf->n_ports,
                            MOLT_SANDBOX_PORTS_MAX);
    molt_sandbox_probe(st);
    if ((st->layers & MOLT_SANDBOX_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return molt_err_errno(err, "sandbox: no_new_privs");
    if ((st->layers & MOLT_SANDBOX_LANDLOCK) && apply_landlock(conf, st->landlock_abi, err) < 0)
        return molt_err_prefix(err, "sandbox");
    if ((st->layers & MOLT_SANDBOX_SECCOMP) && apply_seccomp(conf->no_sockets, err) < 0)
        return molt_err_prefix(err, "sandbox");
    return 0;
}
