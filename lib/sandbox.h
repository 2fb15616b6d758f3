/* sandbox.h: confines the calling process (the upgrade worker, which parses
 * untrusted packages) with the three layers the kernel offers, each where it
 * is supported: PR_SET_NO_NEW_PRIVS, a Landlock ruleset (files: write only
 * under the listed directories, read only the listed paths, execute nothing;
 * TCP: connect only to the listed ports, bind nothing) and a seccomp
 * allow-list (with no_sockets, no TCP socket of its own) (docs/security.md section 7). Irreversible: apply it in the
 * process that is to be confined, after it has opened what it needs. */
#ifndef MOLT_SANDBOX_H
#define MOLT_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum molt_sandbox_layer {
    MOLT_SANDBOX_NO_NEW_PRIVS = 1 << 0,
    MOLT_SANDBOX_LANDLOCK = 1 << 1,
    MOLT_SANDBOX_SECCOMP = 1 << 2,
};

#define MOLT_SANDBOX_PORTS_MAX 16

struct molt_sandbox_conf {
    /* NULL-terminated lists. writable: directories that must exist, where
     * files and directories may be created, written, renamed and removed.
     * readable: directories or files to read (beneath, for a directory); one
     * that does not exist is skipped, so a list may name both /etc/ssl and
     * /etc/pki. */
    const char *const *writable;
    const char *const *readable;
    /* TCP ports connect() may reach (Landlock ABI 4 and later); n_ports 0
     * leaves connecting unrestricted by Landlock unless no_sockets is set
     * (seccomp still allows only TCP and UDP sockets of IPv4 and IPv6). */
    uint16_t ports[MOLT_SANDBOX_PORTS_MAX];
    size_t n_ports;
    /* The process gets its TCP connections connected by another (the agent,
     * worker_net.h): seccomp refuses socket() for IPv4 and IPv6, and answers
     * connect() with success without making it (libcurl 7.88 connects a
     * socket it was told is connected). Landlock's port rules then hold only
     * where seccomp is not in force. */
    int no_sockets;
};

struct molt_sandbox_status {
    unsigned layers;        /* enum molt_sandbox_layer bits in force */
    int landlock_abi;       /* the kernel's, 0 without Landlock */
    /* For the log: "no_new_privs landlock(abi 4) seccomp", a missing layer
     * named as "-landlock(unsupported)" or "-landlock(disabled)". */
    char text[128];
};

/* What a TLS download needs to read besides the caller's own files: shared
 * libraries, CA stores, name resolution. For molt_sandbox_conf.readable. */
extern const char *const molt_sandbox_system_readable[];

/* What this kernel offers, applying nothing (sandbox_probe.c): *st as
 * molt_sandbox_apply would leave it. */
void molt_sandbox_probe(struct molt_sandbox_status *st);

/* Applies the layers molt_sandbox_probe finds, in order. A layer the kernel
 * lacks is reported in *st, not an error; a supported layer that fails to
 * apply is (the message names the step: "sandbox: landlock: open /x: ..."),
 * and the process must then not go on: the layers before it stay in force.
 * Call it before starting threads: Landlock confines only the calling thread
 * and its new ones. */
int molt_sandbox_apply(const struct molt_sandbox_conf *conf, struct molt_sandbox_status *st,
                       struct molt_err *err);

#endif
