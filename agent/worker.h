/* worker.h: what the upgrade worker (agent/molt-worker, worker_main.c) does
 * for one task, in its sandbox: downloading the package (from the build's
 * sources in turn, rebuilt from a delta, or copied from an offline file),
 * checking its bytes against the signed statement, and staging it in the
 * task directory. The agent authenticated the statement before it started
 * the worker, kept the task state, and switches afterwards; the worker only
 * says how far it got (progress messages, docs/protocol.md section 7). */
#ifndef MOLT_WORKER_H
#define MOLT_WORKER_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "identity.h"
#include "package.h"
#include "upgrade_state.h"
#include "worker_msg.h"
#include "worker_net.h"

enum molt_worker_abort { MOLT_WORKER_GO_ON, MOLT_WORKER_CANCELLED, MOLT_WORKER_EXPIRED };

struct molt_worker {
    /* Given by the caller. */
    struct molt_upgrade_state task;        /* the start message's */
    struct molt_config conf;
    struct molt_statement st;              /* the task's statement, authenticated by the agent */
    char token[MOLT_TOKEN_MAX + 1];        /* "" = none: no URL of the task is the server's */
    /* Each report (a progress message) goes out through send; poll is called
     * at least once a second while bytes move, to read the agent's messages
     * (a cancel sets abort). */
    void (*send)(void *ctx, const struct molt_wmsg *m);
    void (*poll)(void *ctx);
    /* The task's pinned hosts, libcurl's entries for them (NULL-terminated),
     * and, where the worker may open no socket, how it gets a connection to
     * one (download.h); NULL: libcurl connects itself. */
    struct molt_wnet net;
    const char *resolve[MOLT_WNET_HOSTS_MAX + 1];
    char resolve_text[MOLT_WNET_HOSTS_MAX][MOLT_WNET_RESOLVE_MAX];
    int (*connect)(void *ctx, const struct sockaddr *addr, socklen_t len);
    void *ctx;
    volatile sig_atomic_t abort;           /* enum molt_worker_abort */
    /* The worker's own. */
    struct molt_pkg_hasher hasher;
    int hash_failed;
    struct molt_err hash_err;
    int64_t last_progress_mono;
    uint64_t dl_limit;  /* bytes the transfer under way may bring: the package's or the delta's */
    int delta_active;   /* the delta is downloading: servedBy names it */
};

/* Downloading, verifying and staging: 0 with staged set (<task_dir>/staged),
 * or negative with err set and *failed the stage (MOLT_STAGE_*) that failed. */
int molt_worker_run(struct molt_worker *w, char staged[PATH_MAX], int *failed,
                    struct molt_err *err);

#endif
