/* channel_admit.c: `make bench`'s channel figure (bench/fig-channel.sh). Times
 * what the agent does with the release channel, through agent/trust.c itself:
 * accepting a new channel of 256 builds (signature set, parse, replay check,
 * the atomic write of channel.json), once per serial; and the per-command
 * admission (sha256 of a statement and the lookup in 256 builds), goal under
 * 1 ms. Prints one bench figure as JSON. Built only for make bench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "conf.h"
#include "fs.h"
#include "log.h"
#include "sign.h"
#include "trust.h"

#define BUILDS 256
#define ROUNDS 20000

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* A statement of about the size molt-pack writes, for version v. */
static void statement(int v, char *out, size_t n)
{
    snprintf(out, n, "{\"arch\":\"amd64\",\"created\":1767225600000,\"minVersion\":\"\",\"name\":"
             "\"molt\",\"os\":\"linux\",\"package\":\"molt-20.%d-1-linux-amd64.tar.gz\","
             "\"release\":\"1\",\"sha256\":\"%064d\",\"size\":4194304,\"version\":\"20.%d-1\"}",
             v, v, v);
}

static int die(const char *what, const struct molt_err *err)
{
    fprintf(stderr, "channel_admit: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    static struct molt_channel_build b[BUILDS];
    static double t[ROUNDS];
    struct molt_err err = MOLT_ERR_INIT;
    struct molt_config conf;
    struct molt_trust trust;
    char dir[] = "/tmp/molt-bench-channel-XXXXXX", keyid[MOLT_PKG_KEYID_SIZE], key[PATH_MAX];
    char stmt[512], *doc = NULL, *sig = NULL;
    size_t doc_len, sig_len;
    double t0, accept_ms, sum = 0;
    int64_t now = (int64_t)time(NULL) * 1000;

    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        return 1;
    if (molt_pkg_key_generate(dir, keyid, &err) < 0)
        return die("keygen", &err);
    snprintf(key, sizeof(key), "%s/%s.key", dir, keyid);
    for (int i = 0; i < BUILDS; i++) {
        snprintf(b[i].version, sizeof(b[i].version), "20.%d-1", i);
        snprintf(b[i].os, sizeof(b[i].os), "linux");
        snprintf(b[i].arch, sizeof(b[i].arch), "amd64");
        b[i].percent = 100;
        statement(i, stmt, sizeof(stmt));
        if (molt_pkg_sha256_buf(stmt, strlen(stmt), b[i].statement_sha256, &err) < 0)
            return die("sha256", &err);
    }
    struct molt_channel ch = { .name = "stable", .serial = 1, .issued_ms = now,
                               .expires_ms = now + 86400000, .builds = b, .nbuilds = BUILDS };
    if (molt_channel_format(&ch, &doc, &doc_len, &err) < 0 ||
        molt_pkg_sig_create(key, doc, doc_len, &sig, &sig_len, &err) < 0)
        return die("channel", &err);
    molt_conf_defaults(&conf);
    snprintf(conf.agent.keys_dir, sizeof(conf.agent.keys_dir), "%s", dir);
    if (molt_trust_init(&trust, &err) < 0)
        return die("trust", &err);
    molt_log_setup("channel_admit", MOLT_LOG_ERROR, 0);
    molt_trust_configure(&trust, &conf, dir);
    t0 = now_us();
    if (molt_trust_offer(&trust, doc, doc_len, sig, sig_len, now, &err) < 0)
        return die("accept", &err);
    accept_ms = (now_us() - t0) / 1000;
    /* The last build listed: the longest lookup. */
    statement(BUILDS - 1, stmt, sizeof(stmt));
    for (int i = 0; i < ROUNDS; i++) {
        t0 = now_us();
        if (molt_trust_admit(&trust, now, "0123456789abcdef0123456789abcdef", 0, b[BUILDS - 1].version,
                             "linux", "amd64", stmt, strlen(stmt), &err) < 0)
            return die("admit", &err);
        t[i] = now_us() - t0;
        sum += t[i];
    }
    qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
    printf("{\"id\": \"channel_admit\", \"figure\": \"release channel check per command (%d builds "
           "listed, mean of %d)\", \"value\": %.2f, \"unit\": \"us\", \"goal\": 1000, \"op\": \"<=\", "
           "\"goalText\": \"< 1 ms\", \"baseline\": null, \"met\": %s, \"missing\": null, "
           "\"details\": {\"p50Us\": %.2f, \"p99Us\": %.2f, \"maxUs\": %.2f, \"acceptMs\": %.2f, "
           "\"documentBytes\": %zu}}\n",
           BUILDS, ROUNDS, sum / ROUNDS, sum / ROUNDS < 1000 ? "true" : "false", t[ROUNDS / 2],
           t[ROUNDS * 99 / 100], t[ROUNDS - 1], accept_ms, doc_len);
    molt_trust_cleanup(&trust);
    free(doc);
    free(sig);
    molt_fs_remove_tree(dir, &err);
    return 0;
}
