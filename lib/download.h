/* download.h: resumable, bounded download of a build package.
 * Bytes are handed to on_data as they arrive (the caller hashes them), so the
 * package is never read back for verification. A partial file is resumed with
 * Range/If-Range; a 200 instead of a 206, or a changed ETag, restarts cleanly
 * (on_reset tells the caller to reset its hash). An ETag is sent back only to
 * the URL it came from, so a partial file may be continued from another source
 * (a mirror) with a plain Range request. More bytes than declared is an error,
 * never a longer file. */
#ifndef MOLT_DOWNLOAD_H
#define MOLT_DOWNLOAD_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "err.h"

struct molt_dl_opts {
    const struct molt_config *conf;   /* TLS, proxy and timeouts */
    const char *url;
    const char *dest;                 /* partial data lives here; dest.etag beside it */
    const char *bearer;               /* collector token, or NULL */
    uint64_t size;                    /* declared size: the most we accept */
    int max_attempts;                 /* connections tried before giving up */
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t max_rate;                 /* bytes/s, 0 = unlimited (libcurl paces the reads) */
    volatile sig_atomic_t *stop;      /* aborts with MOLT_E_CANCELLED when set */
    /* For a caller that may open no socket and resolve no name (the
     * sandboxed worker): resolve, NULL-terminated "host:port:addr[,addr]"
     * entries libcurl takes instead of looking the names up
     * (CURLOPT_RESOLVE); connect, called for each address libcurl would
     * connect to, returns a connected TCP socket (which libcurl then owns)
     * or -1. NULL for libcurl's own. */
    const char *const *resolve;
    int (*connect)(void *ctx, const struct sockaddr *addr, socklen_t len);
    void *connect_ctx;
    void (*on_reset)(void *ctx);
    void (*on_data)(void *ctx, const void *buf, size_t len);
    void (*on_progress)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
};

struct molt_dl_stats {
    uint64_t transferred;   /* bytes received over the network, all attempts */
    int attempts;
    int restarts;           /* times the partial file was discarded */
};

int molt_dl_fetch(const struct molt_dl_opts *opts, struct molt_dl_stats *stats,
                  struct molt_err *err);

#endif
