/* conf.h: molt configuration. /etc/molt/molt.conf (INI), then drop-ins from
 * molt.conf.d/NAME.conf in name order, then MOLT_<SECTION>_<KEY> environment
 * variables, each overriding the one before. Unknown keys, bad values and
 * malformed lines are errors that name file:line; secret values never appear
 * in messages. */
#ifndef MOLT_CONF_H
#define MOLT_CONF_H

#include <stdint.h>

#include "err.h"

#define MOLT_CONF_DEFAULT_PATH "/etc/molt/molt.conf"
#define MOLT_CONF_STR 1024

struct molt_config {
    struct {
        char url[MOLT_CONF_STR];
        char access_id[256];
        char access_key[256];          /* secret */
        char ca_file[MOLT_CONF_STR];
        char client_cert[MOLT_CONF_STR];
        char client_key[MOLT_CONF_STR];
        char proxy[MOLT_CONF_STR];
        int allow_insecure_http;       /* http:// to loopback only */
        int64_t connect_timeout_ms;
        int64_t low_speed_timeout_ms;  /* abort a transfer slower than 1 byte/s for this long */
    } server;
    struct {
        char name[256];
        char category[256];
        char description[1024];
        int ephemeral;
        char state_dir[MOLT_CONF_STR];
        char run_dir[MOLT_CONF_STR];
        char upgrade_dir[MOLT_CONF_STR];
        char keys_dir[MOLT_CONF_STR];  /* trusted release keys, *.pub */
        char machine_id_file[MOLT_CONF_STR];
        int64_t heartbeat_interval_ms;
        int64_t backoff_max_ms;
        int64_t download_max_rate;     /* bytes/s, 0 = unlimited */
        int64_t startup_jitter_ms;     /* first registration/heartbeat waits up to this */
        int long_poll;
        int allow_downgrade;
        char log_level[16];
        char log_target[16];           /* stderr | syslog */
    } agent;
    struct {
        char root[MOLT_CONF_STR];
        int64_t trial_timeout_ms;
        int64_t trial_max_starts;
        char health_command[MOLT_CONF_STR]; /* "" = commit on the first acknowledged heartbeat */
        int64_t health_timeout_ms;
        int64_t health_checks;
        int64_t health_interval_ms;
        int64_t watch_window_ms;  /* after a commit: a crash loop still rolls back; 0 = off */
        int64_t watch_max_starts; /* starts of the committed version allowed in the window */
        char switch_window[MOLT_CONF_STR]; /* "" = switch at once (window.h's syntax) */
    } install;
    struct {
        char channel[8];                   /* "on" (default) | "off": the signed release
                                            * channel enforced (docs/security.md 6) */
        char channel_name[65];             /* the channel this host follows */
        int64_t signature_threshold;       /* signatures by distinct keys a channel needs */
        int64_t root_threshold;            /* root signatures a keyring needs (security.md 6.6) */
    } trust;
};

/* Splits install.health_command into argv words: blanks separate words, and
 * '...' or "..." quote blanks (no escapes, no expansion: no shell runs it).
 * buf holds the words; argv ends with NULL. MOLT_E_CONFIG names the key. */
int molt_conf_split_command(const char *cmd, char *buf, size_t bufsize, char **argv,
                            size_t max_words, struct molt_err *err);

/* Rewrites err, the failure of molt_fs_probe_rename into <root>/versions, so
 * that it names agent.upgrade_dir first and ends with what to do (a report
 * message may be cut at its end, so the probe's paths and errno come before
 * the advice). Shared by the agent's preflight and the installer's apply. */
int molt_conf_explain_upgrade_dir(const struct molt_config *conf, struct molt_err *err);

/* Refuses a configuration naming a directory the agent, the installer or the
 * trial watchdog write (install.root, state_dir, run_dir, upgrade_dir) that
 * this process cannot write (EROFS, EACCES), naming the path and the
 * ReadWritePaths= drop-in. */
int molt_conf_check_writable(const struct molt_config *conf, struct molt_err *err);

/* Fills conf with the built-in defaults. */
void molt_conf_defaults(struct molt_config *conf);
/* Loads path (NULL: MOLT_CONFIG or the default path), its drop-ins and the
 * environment on top of the defaults, then validates. An unset
 * agent.upgrade_dir becomes <install.root>/upgrade; a server.url ending in
 * "/" or "/api/v1" is cut back to its base (logged config.url_normalised), one
 * with a query or fragment refused. A missing file is an
 * error only when it was named explicitly. */
int molt_conf_load(struct molt_config *conf, const char *path, struct molt_err *err);
/* The settings in force as INI text (every key, secrets left out) into a
 * malloc'd *out, which molt_conf_load_text reads back to the same settings:
 * how the agent hands its configuration to a process it starts, which then
 * reads no file, no drop-in and no environment of its own. A value holding a
 * line break (the loaders refuse one; only code could set it) cannot be
 * written so and is an error naming the key. */
int molt_conf_format(const struct molt_config *conf, char **out, struct molt_err *err);
/* Loads text (molt_conf_format's) on top of the defaults and validates it as
 * molt_conf_load does; errors name origin:line. Secrets stay empty. */
int molt_conf_load_text(struct molt_config *conf, const char *text, const char *origin,
                        struct molt_err *err);
/* Applies one key=value as if read from where (e.g. "file.conf:3"). */
int molt_conf_set(struct molt_config *conf, const char *section, const char *key,
                  const char *value, const char *where, struct molt_err *err);
/* Cross-field checks (url scheme, loopback for http, ...). */
int molt_conf_validate(const struct molt_config *conf, struct molt_err *err);
/* 1 when url's host is 127.0.0.0/8, ::1 or localhost. */
int molt_conf_url_is_loopback(const char *url);
/* Parses "15", "15s", "500ms", "5m", "1h" into milliseconds. */
int molt_conf_parse_duration(const char *s, int64_t *ms);
/* Parses a rate in bytes per second: "0", "65536", "512K", "50M", "1G" (K, M,
 * G are 1024-based, as in curl --limit-rate; a trailing "/s" is allowed). */
int molt_conf_parse_rate(const char *s, int64_t *bps);

#endif
