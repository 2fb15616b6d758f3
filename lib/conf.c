/* conf.c: INI parsing, drop-ins, environment overrides and validation. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <unistd.h>

#include "channel.h"
#include "fs.h"
#include "log.h"
#include "proto.h"
#include "sigset.h"
#include "text.h"
#include "window.h"

/* A start-up wait longer than an hour is a host out of touch, not a spread. */
#define STARTUP_JITTER_MAX_MS (3600LL * 1000)
#define WATCH_WINDOW_MAX_MS (24LL * 3600 * 1000)

enum conf_type {
    CONF_STR, CONF_BOOL, CONF_DURATION, CONF_COUNT, CONF_RATE, CONF_LEVEL, CONF_TARGET
};

struct conf_key {
    const char *section;
    const char *key;
    enum conf_type type;
    size_t offset;
    size_t size;     /* for strings: buffer size */
    int secret;
};

#define STR(sec, k) { #sec, #k, CONF_STR, offsetof(struct molt_config, sec.k), \
                      sizeof(((struct molt_config *)0)->sec.k), 0 }
#define SECRET(sec, k) { #sec, #k, CONF_STR, offsetof(struct molt_config, sec.k), \
                         sizeof(((struct molt_config *)0)->sec.k), 1 }
#define TYPED(sec, k, field, t) { #sec, #k, t, offsetof(struct molt_config, sec.field), 0, 0 }

static const struct conf_key conf_keys[] = {
    STR(server, url),
    STR(server, access_id),
    SECRET(server, access_key),
    STR(server, ca_file),
    STR(server, client_cert),
    STR(server, client_key),
    STR(server, proxy),
    TYPED(server, allow_insecure_http, allow_insecure_http, CONF_BOOL),
    TYPED(server, connect_timeout, connect_timeout_ms, CONF_DURATION),
    TYPED(server, low_speed_timeout, low_speed_timeout_ms, CONF_DURATION),
    STR(agent, name),
    STR(agent, category),
    STR(agent, description),
    TYPED(agent, ephemeral, ephemeral, CONF_BOOL),
    STR(agent, state_dir),
    STR(agent, run_dir),
    STR(agent, upgrade_dir),
    STR(agent, keys_dir),
    STR(agent, machine_id_file),
    TYPED(agent, heartbeat_interval, heartbeat_interval_ms, CONF_DURATION),
    TYPED(agent, backoff_max, backoff_max_ms, CONF_DURATION),
    TYPED(agent, download_max_rate, download_max_rate, CONF_RATE),
    TYPED(agent, startup_jitter, startup_jitter_ms, CONF_DURATION),
    TYPED(agent, long_poll, long_poll, CONF_BOOL),
    TYPED(agent, allow_downgrade, allow_downgrade, CONF_BOOL),
    { "agent", "log_level", CONF_LEVEL, offsetof(struct molt_config, agent.log_level),
      sizeof(((struct molt_config *)0)->agent.log_level), 0 },
    { "agent", "log_target", CONF_TARGET, offsetof(struct molt_config, agent.log_target),
      sizeof(((struct molt_config *)0)->agent.log_target), 0 },
    STR(install, root),
    TYPED(install, trial_timeout, trial_timeout_ms, CONF_DURATION),
    TYPED(install, trial_max_starts, trial_max_starts, CONF_COUNT),
    STR(install, health_command),
    TYPED(install, health_timeout, health_timeout_ms, CONF_DURATION),
    TYPED(install, health_checks, health_checks, CONF_COUNT),
    TYPED(install, health_interval, health_interval_ms, CONF_DURATION),
    TYPED(install, watch_window, watch_window_ms, CONF_DURATION),
    TYPED(install, watch_max_starts, watch_max_starts, CONF_COUNT),
    STR(install, switch_window),
    STR(trust, channel),
    STR(trust, channel_name),
    TYPED(trust, signature_threshold, signature_threshold, CONF_COUNT),
    TYPED(trust, root_threshold, root_threshold, CONF_COUNT),
};

#define N_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

void molt_conf_defaults(struct molt_config *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->server.connect_timeout_ms = 10000;
    conf->server.low_speed_timeout_ms = 30000;
    snprintf(conf->agent.state_dir, sizeof(conf->agent.state_dir), "/var/lib/molt");
    snprintf(conf->agent.run_dir, sizeof(conf->agent.run_dir), "/run/molt");
    /* <install root>/upgrade, derived again by molt_conf_load from the root it
     * reads: a staged build must be renamed into <root>/versions, and under the
     * packaged unit's ReadWritePaths= each listed path is its own mount. */
    snprintf(conf->agent.upgrade_dir, sizeof(conf->agent.upgrade_dir), "/opt/molt/upgrade");
    snprintf(conf->agent.keys_dir, sizeof(conf->agent.keys_dir), "/etc/molt/keys");
    snprintf(conf->agent.machine_id_file, sizeof(conf->agent.machine_id_file), "/etc/machine-id");
    conf->agent.heartbeat_interval_ms = 15000;
    conf->agent.backoff_max_ms = 300000;
    /* Twice the default heartbeat interval: after a power cut a fleet's
     * registrations spread over 30 s (10,000 hosts: ~330/s, not 10,000 at once,
     * and after that their heartbeats stay spread over the interval), while no
     * host is silent for more than two missed heartbeats. */
    conf->agent.startup_jitter_ms = 30000;
    conf->agent.long_poll = 1;
    conf->agent.allow_downgrade = 1;
    snprintf(conf->agent.log_level, sizeof(conf->agent.log_level), "info");
    snprintf(conf->agent.log_target, sizeof(conf->agent.log_target), "stderr");
    snprintf(conf->install.root, sizeof(conf->install.root), "/opt/molt");
    conf->install.trial_timeout_ms = 120000;
    conf->install.trial_max_starts = 3;
    conf->install.health_timeout_ms = 30000;
    conf->install.health_checks = 1;
    conf->install.health_interval_ms = 5000;
    conf->install.watch_window_ms = 600000;
    conf->install.watch_max_starts = 3;
    snprintf(conf->trust.channel, sizeof(conf->trust.channel), "on");
    snprintf(conf->trust.channel_name, sizeof(conf->trust.channel_name), "stable");
    conf->trust.signature_threshold = 1;
    conf->trust.root_threshold = 1;
}

struct unit {
    const char *suffix;
    int64_t mult;
};

/* A decimal number followed by one of UNITS' suffixes (the first entry's is
 * taken when there is none; NOCASE: in either case), scaled without overflow. */
static int parse_scaled(const char *s, const struct unit *units, size_t n, int nocase,
                        int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    if (!isdigit((unsigned char)*s))
        return MOLT_E_INVAL;
    v = strtoll(s, &end, 10);
    if (errno)
        return MOLT_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        int same = nocase ? !strcasecmp(end, units[i].suffix) : !strcmp(end, units[i].suffix);
        if (!same && (i > 0 || *end))
            continue;
        if (v > INT64_MAX / units[i].mult)
            return MOLT_E_INVAL;
        *out = v * units[i].mult;
        return 0;
    }
    return MOLT_E_INVAL;
}

int molt_conf_parse_duration(const char *s, int64_t *ms)
{
    static const struct unit units[] = {
        { "s", 1000 }, { "ms", 1 }, { "m", 60000 }, { "h", 3600000 },
    };

    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 0, ms);
}

int molt_conf_parse_rate(const char *s, int64_t *bps)
{
    static const struct unit units[] = {
        { "/s", 1 }, { "k", 1024 }, { "k/s", 1024 }, { "m", 1 << 20 }, { "m/s", 1 << 20 },
        { "g", 1 << 30 }, { "g/s", 1 << 30 },
    };

    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 1, bps);
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return MOLT_E_INVAL;
}

static const struct conf_key *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].key, key) == 0)
            return &conf_keys[i];
    }
    return NULL;
}

/* No control byte but a tab: none means anything in a setting, and a line
 * break would not survive molt_conf_format. */
static int set_string(char *field, size_t size, const char *value)
{
    if (molt_text_find_control(value, SIZE_MAX, "\t"))
        return MOLT_E_INVAL;
    if (strlen(value) >= size)
        return MOLT_E_LIMIT;
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

static int set_typed(struct molt_config *conf, const struct conf_key *k, const char *value)
{
    char *field = (char *)conf + k->offset;
    enum molt_log_level level;
    int64_t n;

    switch (k->type) {
    case CONF_LEVEL:
        if (molt_log_level_parse(value, &level) < 0)
            return MOLT_E_INVAL;
        return set_string(field, k->size, value);
    case CONF_TARGET:
        if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0)
            return MOLT_E_INVAL;
        return set_string(field, k->size, value);
    case CONF_STR:
        return set_string(field, k->size, value);
    case CONF_BOOL:
        return parse_bool(value, (int *)(void *)field);
    case CONF_DURATION:
        if (molt_conf_parse_duration(value, &n) < 0)
            return MOLT_E_INVAL;
        memcpy(field, &n, sizeof(n));
        return 0;
    case CONF_RATE:
        if (molt_conf_parse_rate(value, &n) < 0)
            return MOLT_E_INVAL;
        memcpy(field, &n, sizeof(n));
        return 0;
    case CONF_COUNT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value || v < 0)
            return MOLT_E_INVAL;
        n = v;
        memcpy(field, &n, sizeof(n));
        return 0;
    }
    }
    return MOLT_E_INVAL;
}

static const char *type_hint(enum conf_type t)
{
    switch (t) {
    case CONF_BOOL: return "expected true or false";
    case CONF_DURATION: return "expected a duration such as 15s, 500ms or 5m";
    case CONF_COUNT: return "expected a whole number";
    case CONF_RATE: return "expected bytes per second such as 0, 512K or 50M";
    case CONF_LEVEL: return "expected error, warn, info or debug";
    case CONF_TARGET: return "expected stderr or syslog";
    case CONF_STR: return "value too long";
    }
    return "";
}

int molt_conf_set(struct molt_config *conf, const char *section, const char *key,
                  const char *value, const char *where, struct molt_err *err)
{
    const struct conf_key *k = find_key(section, key);

    if (!k)
        return molt_err_set(err, MOLT_E_CONFIG, "%s: unknown key '%s' in section [%s]", where,
                            key, section);
    int rc = set_typed(conf, k, value);

    if (rc < 0) {
        int control = k->type == CONF_STR && rc == MOLT_E_INVAL;
        const char *hint = control ? "control character" : type_hint(k->type);

        if (k->secret || control)
            return molt_err_set(err, MOLT_E_CONFIG, "%s: %s.%s: bad value (%s)", where, section,
                                key, hint);
        return molt_err_set(err, MOLT_E_CONFIG, "%s: %s.%s: bad value '%.64s' (%s)", where,
                            section, key, value, hint);
    }
    return 0;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* A section is known when a key of the table is in it. */
static int known_section(const char *section)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(conf_keys[i].section, section) == 0)
            return 1;
    }
    return 0;
}

static int parse_line(struct molt_config *conf, char *line, char *section, size_t secsize,
                      const char *where, struct molt_err *err)
{
    char *s = trim(line);
    char *eq;

    if (*s == '\0' || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || close[1] != '\0' || close == s + 1)
            return molt_err_set(err, MOLT_E_CONFIG, "%s: malformed section header", where);
        *close = '\0';
        snprintf(section, secsize, "%s", trim(s + 1));
        if (!known_section(section))
            return molt_err_set(err, MOLT_E_CONFIG, "%s: unknown section [%s]", where, section);
        return 0;
    }
    eq = strchr(s, '=');
    if (!eq)
        return molt_err_set(err, MOLT_E_CONFIG, "%s: expected 'key = value'", where);
    if (section[0] == '\0')
        return molt_err_set(err, MOLT_E_CONFIG, "%s: key outside of a section", where);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    if (*key == '\0')
        return molt_err_set(err, MOLT_E_CONFIG, "%s: empty key", where);
    return molt_conf_set(conf, section, key, value, where, err);
}

/* text: modified (lines cut in place); origin names it in errors. */
static int parse_text(struct molt_config *conf, char *text, const char *origin,
                      struct molt_err *err)
{
    char section[32] = "";
    char where[PATH_MAX + 32];
    char *line = text;
    int lineno = 0;
    int rc = 0;

    /* strtok_r would merge blank lines and break numbering; walk by hand. */
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", origin, lineno);
        rc = parse_line(conf, line, section, sizeof(section), where, err);
        if (rc < 0)
            break;
        line = nl ? nl + 1 : NULL;
    }
    return rc;
}

static int load_file(struct molt_config *conf, const char *path, struct molt_err *err)
{
    char *text = NULL;
    int rc;

    rc = molt_fs_read_file(path, 1 << 20, &text, NULL, err);
    if (rc < 0)
        return rc;
    rc = parse_text(conf, text, path, err);
    free(text);
    return rc;
}

static int conf_filter(const struct dirent *de)
{
    size_t n = strlen(de->d_name);

    return de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0;
}

static int load_dropins(struct molt_config *conf, const char *path, struct molt_err *err)
{
    char dir[PATH_MAX];
    struct dirent **list = NULL;
    int n, rc = 0;

    if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir))
        return molt_err_set(err, MOLT_E_LIMIT, "path too long: %s.d", path);
    n = scandir(dir, &list, conf_filter, alphasort);
    if (n < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : molt_err_errno(err, "read %s", dir);
    for (int i = 0; i < n; i++) {
        char file[PATH_MAX];
        if (rc == 0 && molt_fs_join(file, sizeof(file), dir, list[i]->d_name, err) == 0)
            rc = load_file(conf, file, err);
        else if (rc == 0)
            rc = MOLT_E_LIMIT;
        free(list[i]);
    }
    free(list);
    return rc;
}

extern char **environ;

static void env_name(char *name, size_t size, const struct conf_key *k)
{
    snprintf(name, size, "MOLT_%s_%s", k->section, k->key);
    for (size_t j = 0; name[j]; j++)
        name[j] = (char)toupper((unsigned char)name[j]);
}

/* Levenshtein distance of two short names (longer ones count as far). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[97];

    if (la > 96 || lb > 96)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A MOLT_* variable that sets nothing but is a few letters from one that
 * would: the operator meant that one (MOLT_SERVER_ULR). */
static void warn_mistyped_env(void)
{
    static const char *const others[] = { "MOLT_CONFIG", "MOLT_FAULT", "MOLT_FAULT_ONCE_DIR",
                                          "MOLT_AGENT_STATE_DIR" };

    for (char **e = environ; e && *e; e++) {
        char have[97], name[96], best[96] = "";
        size_t n = strcspn(*e, "="), best_d = SIZE_MAX;

        if (strncmp(*e, "MOLT_", 5) != 0 || n >= sizeof(have))
            continue;
        memcpy(have, *e, n);
        have[n] = '\0';
        for (size_t i = 0; i < N_KEYS + 4; i++) {
            if (i < N_KEYS)
                env_name(name, sizeof(name), &conf_keys[i]);
            else
                snprintf(name, sizeof(name), "%s", others[i - N_KEYS]);
            size_t d = distance(have, name);
            if (d < best_d) {
                best_d = d;
                snprintf(best, sizeof(best), "%s", name);
            }
        }
        if (best_d > 0 && best_d <= 3)
            molt_log_warn("config.env_unknown", "name=%s closest=%s (the variable is ignored)",
                          have, best);
    }
}

static int load_env(struct molt_config *conf, struct molt_err *err)
{
    warn_mistyped_env();
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[96], where[112];
        const char *value;
        env_name(name, sizeof(name), &conf_keys[i]);
        value = getenv(name);
        if (!value)
            continue;
        snprintf(where, sizeof(where), "environment %s", name);
        int rc = molt_conf_set(conf, conf_keys[i].section, conf_keys[i].key, value, where, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int molt_conf_url_is_loopback(const char *url)
{
    const char *host = strstr(url, "://");
    struct in_addr addr;
    char buf[256];
    size_t n;

    if (!host)
        return 0;
    host += 3;
    if (*host == '[') {
        return strncmp(host, "[::1]", 5) == 0;
    }
    n = strcspn(host, ":/?#");
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return 1;
    /* A name such as 127.example.com must not pass for an address. */
    return inet_pton(AF_INET, buf, &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

int molt_conf_split_command(const char *cmd, char *buf, size_t bufsize, char **argv,
                            size_t max_words, struct molt_err *err)
{
    size_t n = 0, used = 0;
    const char *p = cmd;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n + 1 >= max_words)
            return molt_err_set(err, MOLT_E_CONFIG, "install.health_command: more than %zu words",
                                max_words - 1);
        argv[n++] = buf + used;
        while (*p && *p != ' ' && *p != '\t') {
            char quote = 0;
            if (*p == '\'' || *p == '"')
                quote = *p++;
            while (*p && (quote ? *p != quote : (*p != ' ' && *p != '\t' && *p != '\'' &&
                                                 *p != '"'))) {
                if (used + 1 >= bufsize)
                    return molt_err_set(err, MOLT_E_CONFIG, "install.health_command: too long");
                buf[used++] = *p++;
            }
            if (quote && *p != quote)
                return molt_err_set(err, MOLT_E_CONFIG,
                                    "install.health_command: unterminated %c quote", quote);
            if (quote)
                p++;
        }
        buf[used++] = '\0';
    }
    argv[n] = NULL;
    if (n == 0)
        return molt_err_set(err, MOLT_E_CONFIG, "install.health_command: no program named");
    return 0;
}

/* The check runs inside the trial: launch's deadline must leave room for all
 * of it, or a slow but passing check would be rolled back by the watchdog. */
static int validate_health(const struct molt_config *c, struct molt_err *err)
{
    char buf[MOLT_CONF_STR], *argv[64];
    int64_t need;

    if (!c->install.health_command[0])
        return 0;
    if (molt_conf_split_command(c->install.health_command, buf, sizeof(buf), argv, 64, err) < 0)
        return err->code;
    if (argv[0][0] != '/')
        return molt_err_set(err, MOLT_E_CONFIG,
                            "install.health_command: '%.128s' is not an absolute path", argv[0]);
    if (c->install.health_checks < 1 || c->install.health_checks > 100)
        return molt_err_set(err, MOLT_E_CONFIG, "install.health_checks: 1..100");
    if (c->install.health_timeout_ms < 100)
        return molt_err_set(err, MOLT_E_CONFIG, "install.health_timeout: at least 100ms");
    if (c->install.health_interval_ms > 3600000 || c->install.health_timeout_ms > 3600000)
        return molt_err_set(err, MOLT_E_CONFIG,
                            "install.health_interval and install.health_timeout: at most 1h");
    need = c->install.health_checks * (c->install.health_interval_ms + c->install.health_timeout_ms);
    if (need >= c->install.trial_timeout_ms)
        return molt_err_set(err, MOLT_E_CONFIG,
                            "install.health_checks * (install.health_interval + "
                            "install.health_timeout) = %lldms does not fit in "
                            "install.trial_timeout (%lldms): raise trial_timeout or lower the others",
                            (long long)need, (long long)c->install.trial_timeout_ms);
    return 0;
}

static int validate_trust(const struct molt_config *c, struct molt_err *err)
{
    const char *n = c->trust.channel_name;

    if (strcmp(c->trust.channel, "on") != 0 && strcmp(c->trust.channel, "off") != 0)
        return molt_err_set(err, MOLT_E_CONFIG, "trust.channel: '%.64s' is not on or off",
                            c->trust.channel);
    if (!molt_channel_name_valid(n))
        return molt_err_set(err, MOLT_E_CONFIG, "trust.channel_name: '%.64s' is not 1 to 64 of "
                            "a-z, 0-9 and _", n);
    if (c->trust.signature_threshold < 1 ||
        c->trust.signature_threshold > MOLT_SIGSET_MAX_THRESHOLD)
        return molt_err_set(err, MOLT_E_CONFIG, "trust.signature_threshold: 1..%d",
                            MOLT_SIGSET_MAX_THRESHOLD);
    if (c->trust.root_threshold < 1 || c->trust.root_threshold > MOLT_SIGSET_MAX_THRESHOLD)
        return molt_err_set(err, MOLT_E_CONFIG, "trust.root_threshold: 1..%d",
                            MOLT_SIGSET_MAX_THRESHOLD);
    return 0;
}

static int validate_window(const struct molt_config *c, struct molt_err *err)
{
    struct molt_window_set set;

    if (molt_window_parse(c->install.switch_window, &set, err) < 0) {
        molt_err_prefix(err, "install.switch_window");
        err->code = MOLT_E_CONFIG; /* as every other key's error */
        return err->code;
    }
    return 0;
}

int molt_conf_validate(const struct molt_config *conf, struct molt_err *err)
{
    const char *url = conf->server.url;

    if (url[0]) {
        if (strncasecmp(url, "https://", 8) == 0) {
            /* fine */
        } else if (strncasecmp(url, "http://", 7) == 0) {
            if (!conf->server.allow_insecure_http || !molt_conf_url_is_loopback(url))
                return molt_err_set(err, MOLT_E_CONFIG,
                                    "server.url: http:// is allowed only to a loopback address "
                                    "with server.allow_insecure_http = true");
        } else {
            return molt_err_set(err, MOLT_E_CONFIG, "server.url: '%.128s' is not an https:// URL",
                                url);
        }
    }
    if (!molt_hb_interval_valid(conf->agent.heartbeat_interval_ms))
        return molt_err_set(err, MOLT_E_CONFIG,
                            "agent.heartbeat_interval: %lldms is not in %lldms..%lldms",
                            (long long)conf->agent.heartbeat_interval_ms,
                            (long long)MOLT_HB_INTERVAL_MIN_MS, (long long)MOLT_HB_INTERVAL_MAX_MS);
    if (conf->agent.backoff_max_ms < 1000)
        return molt_err_set(err, MOLT_E_CONFIG, "agent.backoff_max: at least 1s");
    if (conf->agent.download_max_rate != 0 &&
        (conf->agent.download_max_rate < MOLT_RATE_MIN_BPS ||
         conf->agent.download_max_rate > MOLT_RATE_MAX_BPS))
        return molt_err_set(err, MOLT_E_CONFIG,
                            "agent.download_max_rate: %lld bytes/s is not 0 (unlimited) or in "
                            "%lld..%lld", (long long)conf->agent.download_max_rate,
                            (long long)MOLT_RATE_MIN_BPS, (long long)MOLT_RATE_MAX_BPS);
    if (conf->agent.startup_jitter_ms > STARTUP_JITTER_MAX_MS)
        return molt_err_set(err, MOLT_E_CONFIG, "agent.startup_jitter: at most %llds",
                            (long long)STARTUP_JITTER_MAX_MS / 1000);
    if (conf->install.trial_max_starts < 1)
        return molt_err_set(err, MOLT_E_CONFIG, "install.trial_max_starts: at least 1");
    if (conf->install.trial_timeout_ms < 1000)
        return molt_err_set(err, MOLT_E_CONFIG, "install.trial_timeout: at least 1s");
    if (conf->install.watch_window_ms > WATCH_WINDOW_MAX_MS)
        return molt_err_set(err, MOLT_E_CONFIG, "install.watch_window: at most %lldh",
                            (long long)WATCH_WINDOW_MAX_MS / 3600000);
    if (conf->install.watch_max_starts < 1 || conf->install.watch_max_starts > 100)
        return molt_err_set(err, MOLT_E_CONFIG, "install.watch_max_starts: 1..100");
    if (!!conf->server.client_cert[0] != !!conf->server.client_key[0])
        return molt_err_set(err, MOLT_E_CONFIG,
                            "server.client_cert and server.client_key go together");
    if (validate_health(conf, err) < 0 || validate_trust(conf, err) < 0)
        return err->code;
    return validate_window(conf, err);
}

/* The agent appends /api/v1/... to server.url: a URL copied from a browser or
 * the API documents (".../", ".../api/v1") is cut back to the base, with a
 * warning, instead of a 404 loop; a query or fragment has no meaning there. */
static int normalise_url(struct molt_config *conf, struct molt_err *err)
{
    char *url = conf->server.url;
    size_t n = strlen(url), was = n;
    const char *host = strstr(url, "://");

    if (strpbrk(url, "?# \t"))
        return molt_err_set(err, MOLT_E_CONFIG,
                            "server.url: '%.128s' has a query, fragment or blank: give the base "
                            "URL only, such as https://molt.example.com:8443",
                            url);
    for (;;) {
        while (n > 0 && url[n - 1] == '/')
            n--;
        if (n >= 7 && strncasecmp(url + n - 7, "/api/v1", 7) == 0)
            n -= 7;
        else
            break;
    }
    if (host && url + n <= host + 3)
        return molt_err_set(err, MOLT_E_CONFIG, "server.url: '%.128s' has no host", url);
    if (n != was) {
        molt_log_warn("config.url_normalised", "from=\"%.128s\" to=\"%.*s\"", url, (int)n, url);
        url[n] = '\0';
    }
    return 0;
}

/* An unset (or empty) agent.upgrade_dir follows install.root. */
static int derive_upgrade_dir(struct molt_config *conf, struct molt_err *err)
{
    if (conf->agent.upgrade_dir[0])
        return 0;
    if (molt_fs_join(conf->agent.upgrade_dir, sizeof(conf->agent.upgrade_dir), conf->install.root,
                     "upgrade", err) < 0)
        return molt_err_prefix(err, "agent.upgrade_dir from install.root");
    return 0;
}

/* One key's line; *line is "" for a secret. A string is quoted, so that the
 * parser's trimming keeps its blanks and a quote at either end. */
static int format_key(const struct molt_config *conf, const struct conf_key *k, char *line,
                      size_t n, struct molt_err *err)
{
    const char *field = (const char *)conf + k->offset;
    int64_t v = 0;
    int bool_v = 0;

    line[0] = '\0';
    if (k->secret)
        return 0;
    switch (k->type) {
    case CONF_STR:
    case CONF_LEVEL:
    case CONF_TARGET:
        if (strpbrk(field, "\r\n"))
            return molt_err_set(err, MOLT_E_CONFIG, "%s.%s: the value holds a line break",
                                k->section, k->key);
        snprintf(line, n, "%s = \"%s\"\n", k->key, field);
        return 0;
    case CONF_BOOL:
        memcpy(&bool_v, field, sizeof(bool_v));
        snprintf(line, n, "%s = %s\n", k->key, bool_v ? "true" : "false");
        return 0;
    case CONF_DURATION:
    case CONF_RATE:
    case CONF_COUNT:
        memcpy(&v, field, sizeof(v));
        snprintf(line, n, "%s = %lld%s\n", k->key, (long long)v,
                 k->type == CONF_DURATION ? "ms" : "");
        return 0;
    }
    return molt_err_set(err, MOLT_E_CONFIG, "%s.%s: no format", k->section, k->key);
}

int molt_conf_format(const struct molt_config *conf, char **out, struct molt_err *err)
{
    char line[MOLT_CONF_STR + 64];
    size_t cap = N_KEYS * sizeof(line), len = 0;
    const char *section = "";
    char *buf = malloc(cap);
    int rc = 0;

    *out = NULL;
    if (!buf)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    buf[0] = '\0';
    for (size_t i = 0; i < N_KEYS && rc == 0; i++) {
        const struct conf_key *k = &conf_keys[i];
        int head = strcmp(k->section, section) != 0;
        int w;

        section = k->section;
        if ((rc = format_key(conf, k, line, sizeof(line), err)) < 0)
            break;
        /* A line is shorter than line[], so cap (a line[] a key) has room for all. */
        w = snprintf(buf + len, cap - len, "%s%s%s%s", head ? "[" : "", head ? section : "",
                     head ? "]\n" : "", line);
        if (w < 0 || (size_t)w >= cap - len)
            rc = molt_err_set(err, MOLT_E_LIMIT, "%s.%s: no room", k->section, k->key);
        else
            len += (size_t)w;
    }
    if (rc < 0) {
        free(buf);
        return molt_err_prefix(err, "configuration");
    }
    *out = buf;
    return 0;
}

/* What follows reading the sources: the URL's base, the derived directory,
 * the cross-field checks. */
static int finish_load(struct molt_config *conf, struct molt_err *err)
{
    int rc = normalise_url(conf, err);

    if (rc == 0)
        rc = derive_upgrade_dir(conf, err);
    if (rc == 0)
        rc = molt_conf_validate(conf, err);
    return rc;
}

int molt_conf_load_text(struct molt_config *conf, const char *text, const char *origin,
                        struct molt_err *err)
{
    char *copy = strdup(text);
    int rc;

    if (!copy)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    molt_conf_defaults(conf);
    conf->agent.upgrade_dir[0] = '\0';
    rc = parse_text(conf, copy, origin, err);
    free(copy);
    if (rc == 0)
        rc = finish_load(conf, err);
    if (rc < 0)
        molt_err_prefix(err, "configuration");
    return rc;
}

int molt_conf_load(struct molt_config *conf, const char *path, struct molt_err *err)
{
    int explicit = path != NULL;
    int rc;

    molt_conf_defaults(conf);
    conf->agent.upgrade_dir[0] = '\0';
    if (!path) {
        path = getenv("MOLT_CONFIG");
        explicit = path != NULL && *path;
        if (!explicit)
            path = MOLT_CONF_DEFAULT_PATH;
    }
    rc = load_file(conf, path, err);
    if (rc == MOLT_E_NOTFOUND && !explicit)
        rc = 0;
    if (rc == 0)
        rc = load_dropins(conf, path, err);
    if (rc == 0)
        rc = load_env(conf, err);
    if (rc == 0)
        rc = finish_load(conf, err);
    if (rc < 0)
        molt_err_prefix(err, "configuration");
    return rc;
}

/* path, or when it does not exist yet the directory it would be made in, must
 * be writable: ProtectSystem=strict makes whatever is not in ReadWritePaths=
 * read-only (EROFS, or EACCES first where the user could not write anyway). */
static int check_writable(const char *key, const char *path, struct molt_err *err)
{
    char dir[PATH_MAX];
    char *slash;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return molt_err_set(err, MOLT_E_LIMIT, "%s: path too long", key);
    while (access(dir, W_OK) < 0 && errno == ENOENT && (slash = strrchr(dir, '/')) != NULL) {
        if (slash == dir) {
            dir[1] = '\0';
            break;
        }
        *slash = '\0';
    }
    if (access(dir, W_OK) == 0 || (errno != EROFS && errno != EACCES))
        return 0;
    return molt_err_errno(err,
                          "%s %s is not writable by this service: add a drop-in (systemctl edit "
                          "molt-agent) with [Service] ReadWritePaths=%s, and let the service "
                          "user own it; %s",
                          key, path, path, dir);
}

int molt_conf_check_writable(const struct molt_config *conf, struct molt_err *err)
{
    const struct {
        const char *key;
        const char *path;
    } paths[] = {
        { "install.root", conf->install.root },
        { "agent.state_dir", conf->agent.state_dir },
        { "agent.run_dir", conf->agent.run_dir },
        { "agent.upgrade_dir", conf->agent.upgrade_dir },
    };
    int rc;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if ((rc = check_writable(paths[i].key, paths[i].path, err)) < 0)
            return molt_err_prefix(err, "configuration");
    }
    return 0;
}

int molt_conf_explain_upgrade_dir(const struct molt_config *conf, struct molt_err *err)
{
    char why[MOLT_ERR_MSG_MAX];

    memcpy(why, err->msg, sizeof(why));
    why[sizeof(why) - 1] = '\0';
    return molt_err_set(err, err->code < 0 ? err->code : MOLT_E_IO,
                        "agent.upgrade_dir %s: %s: a staged build must be renamed into %s/versions: "
                        "leave agent.upgrade_dir unset (%s/upgrade) or put it inside install.root "
                        "(each systemd ReadWritePaths= entry is its own mount, even on one disk)",
                        conf->agent.upgrade_dir, why, conf->install.root, conf->install.root);
}
