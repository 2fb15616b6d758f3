/* test_conf.c: configuration files, drop-ins, environment and every kind of bad input. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"

static void clear_env(void)
{
    unsetenv("MOLT_CONFIG");
    unsetenv("MOLT_SERVER_URL");
    unsetenv("MOLT_AGENT_HEARTBEAT_INTERVAL");
    unsetenv("MOLT_SERVER_ACCESS_KEY");
    unsetenv("MOLT_INSTALL_ROOT");
}

static int load_text(const char *text, struct molt_config *conf, struct molt_err *err,
                     char dir[PATH_MAX])
{
    char path[PATH_MAX];

    tu_mkdtemp(dir);
    tu_write(path, dir, "molt.conf", text);
    return molt_conf_load(conf, path, err);
}

static void test_good_file(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    clear_env();
    assert_int_equal(load_text("# comment\n"
                               "[server]\n"
                               "url = https://cp.example:8443\n"
                               "access_id = \"abc\"\n"
                               "access_key = s3cret\n"
                               "\n"
                               "[agent]\n"
                               "name=web-1\n"
                               "heartbeat_interval = 500ms\n"
                               "ephemeral = yes\n"
                               "log_level = debug\n"
                               "[install]\n"
                               "trial_timeout = 2m\n"
                               "trial_max_starts = 5\n",
                               &conf, &err, dir), 0);
    assert_string_equal(conf.server.url, "https://cp.example:8443");
    assert_string_equal(conf.server.access_id, "abc");
    assert_string_equal(conf.server.access_key, "s3cret");
    assert_string_equal(conf.agent.name, "web-1");
    assert_int_equal(conf.agent.heartbeat_interval_ms, 500);
    assert_int_equal(conf.agent.ephemeral, 1);
    assert_string_equal(conf.agent.log_level, "debug");
    assert_int_equal(conf.install.trial_timeout_ms, 120000);
    assert_int_equal(conf.install.trial_max_starts, 5);
    /* untouched keys keep their defaults */
    assert_string_equal(conf.install.root, "/opt/molt");
    assert_int_equal(conf.agent.long_poll, 1);
    tu_rmtree(dir);
}

static void expect_error(const char *text, const char *needle)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    clear_env();
    assert_int_equal(load_text(text, &conf, &err, dir), MOLT_E_CONFIG);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not contain '%s'", err.msg, needle);
    tu_rmtree(dir);
}

static void test_bad_files(void **state)
{
    expect_error("[server]\nurl = https://x\nbogus = 1\n", "molt.conf:3: unknown key 'bogus'");
    expect_error("[nosuch]\n", "molt.conf:1: unknown section [nosuch]");
    expect_error("url = https://x\n", "molt.conf:1: key outside of a section");
    expect_error("[agent]\njust words\n", "molt.conf:2: expected 'key = value'");
    expect_error("[agent\n", "molt.conf:1: malformed section header");
    expect_error("[agent]\nephemeral = maybe\n", "molt.conf:2: agent.ephemeral: bad value 'maybe'");
    expect_error("[agent]\nheartbeat_interval = 3 weeks\n", "expected a duration");
    expect_error("[agent]\nlog_level = loud\n", "expected error, warn, info or debug");
    expect_error("[install]\ntrial_max_starts = -1\n", "expected a whole number");
    expect_error("[server]\nurl = ftp://x\n", "is not an https:// URL");
    expect_error("[server]\nurl = http://10.0.0.1\nallow_insecure_http = true\n",
                 "allowed only to a loopback");
    expect_error("[agent]\nheartbeat_interval = 1ms\n", "1ms is not in 100ms..86400000ms");
    expect_error("[agent]\nheartbeat_interval = 25h\n", "90000000ms is not in 100ms..86400000ms");
    expect_error("[server]\nclient_cert = /x\n", "go together");
}

static void test_secret_not_in_error(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char long_key[400];

    molt_conf_defaults(&conf);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    memcpy(long_key, "TOPSECRET", 9);
    assert_int_equal(molt_conf_set(&conf, "server", "access_key", long_key, "f:1", &err),
                     MOLT_E_CONFIG);
    assert_null(strstr(err.msg, "TOPSECRET"));
    assert_non_null(strstr(err.msg, "server.access_key"));
}

static void test_dropins_and_env(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX], dropdir[PATH_MAX], tmp[PATH_MAX];

    clear_env();
    tu_mkdtemp(dir);
    tu_write(path, dir, "molt.conf", "[agent]\nname = base\nheartbeat_interval = 15\n");
    snprintf(dropdir, sizeof(dropdir), "%s/molt.conf.d", dir);
    assert_int_equal(mkdir(dropdir, 0755), 0);
    tu_write(tmp, dropdir, "20-late.conf", "[agent]\nname = late\n");
    tu_write(tmp, dropdir, "10-early.conf", "[agent]\nname = early\ncategory = db\n");
    tu_write(tmp, dropdir, "30-ignored.txt", "this is not read\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.agent.name, "late");
    assert_string_equal(conf.agent.category, "db");

    setenv("MOLT_AGENT_HEARTBEAT_INTERVAL", "2s", 1);
    setenv("MOLT_SERVER_URL", "http://127.0.0.1:9", 1);
    setenv("MOLT_SERVER_ALLOW_INSECURE_HTTP", "1", 1);
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_int_equal(conf.agent.heartbeat_interval_ms, 2000);
    assert_string_equal(conf.server.url, "http://127.0.0.1:9");

    setenv("MOLT_AGENT_HEARTBEAT_INTERVAL", "soon", 1);
    assert_int_equal(molt_conf_load(&conf, path, &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "environment MOLT_AGENT_HEARTBEAT_INTERVAL"));
    unsetenv("MOLT_SERVER_ALLOW_INSECURE_HTTP");
    clear_env();

    tu_write(tmp, dropdir, "40-bad.conf", "[agent]\nnope = 1\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "40-bad.conf:2: unknown key 'nope'"));
    tu_rmtree(dir);
}

static void test_upgrade_dir_follows_root(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];

    clear_env();
    tu_mkdtemp(dir);
    /* README's minimal configuration: the server only */
    tu_write(path, dir, "min.conf", "[server]\nurl = https://cp.example.com\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.agent.upgrade_dir, "/opt/molt/upgrade");
    tu_write(path, dir, "root.conf", "[install]\nroot = /srv/molt\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.agent.upgrade_dir, "/srv/molt/upgrade");
    setenv("MOLT_INSTALL_ROOT", "/data/molt", 1);
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.agent.upgrade_dir, "/data/molt/upgrade");
    clear_env();
    tu_write(path, dir, "both.conf", "[agent]\nupgrade_dir = /srv/up\n[install]\nroot = /srv/molt\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.agent.upgrade_dir, "/srv/up");
    molt_conf_defaults(&conf);
    assert_string_equal(conf.agent.upgrade_dir, "/opt/molt/upgrade");
    /* a refused probe: the key and the probe's errno come before the advice */
    molt_err_set(&err, MOLT_E_IO, "probe rename from A into B: Invalid cross-device link");
    assert_int_equal(molt_conf_explain_upgrade_dir(&conf, &err), MOLT_E_IO);
    assert_non_null(strstr(err.msg, "agent.upgrade_dir /opt/molt/upgrade: probe rename from A into "
                                    "B: Invalid cross-device link: a staged build must be renamed "
                                    "into /opt/molt/versions: leave agent.upgrade_dir unset"));
    tu_rmtree(dir);
}

/* The agent appends /api/v1/...: what an operator copies from the API
 * documents is cut back to the base, a query refused. */
static void test_url_normalised(void **state)
{
    static const char *const cut[] = { "https://cp.example.com/", "https://cp.example.com/api/v1",
                                       "https://cp.example.com/api/v1/",
                                       "https://cp.example.com//API/V1//" };
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX], text[256];

    clear_env();
    tu_mkdtemp(dir);
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        snprintf(text, sizeof(text), "[server]\nurl = %s\n", cut[i]);
        tu_write(path, dir, "u.conf", text);
        assert_int_equal(molt_conf_load(&conf, path, &err), 0);
        assert_string_equal(conf.server.url, "https://cp.example.com");
    }
    tu_write(path, dir, "p.conf", "[server]\nurl = https://cp.example.com/molt/api/v1\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), 0);
    assert_string_equal(conf.server.url, "https://cp.example.com/molt");
    tu_write(path, dir, "q.conf", "[server]\nurl = https://cp.example.com/?a=1\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "server.url"));
    assert_non_null(strstr(err.msg, "query"));
    tu_write(path, dir, "h.conf", "[server]\nurl = https:///api/v1\n");
    assert_int_equal(molt_conf_load(&conf, path, &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "no host"));
    tu_rmtree(dir);
}

static void test_missing_file(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;

    clear_env();
    assert_int_equal(molt_conf_load(&conf, "/nonexistent/molt.conf", &err), MOLT_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/molt.conf"));
}

static void test_durations_and_loopback(void **state)
{
    int64_t ms;

    assert_int_equal(molt_conf_parse_duration("15", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(molt_conf_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(molt_conf_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_true(molt_conf_parse_duration("-1", &ms) < 0);
    assert_true(molt_conf_parse_duration("", &ms) < 0);
    assert_true(molt_conf_parse_duration("99999999999999999999", &ms) < 0);
    assert_true(molt_conf_url_is_loopback("http://127.0.0.1:80/x"));
    assert_true(molt_conf_url_is_loopback("https://[::1]:8443"));
    assert_true(molt_conf_url_is_loopback("http://localhost/"));
    assert_false(molt_conf_url_is_loopback("http://127.example.com/"));
    assert_false(molt_conf_url_is_loopback("http://10.1.1.1/"));
}

/* [install] health_*: the trial's health check (issue 19). */
static void test_health_keys(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], buf[256], *argv[8];

    clear_env();
    assert_int_equal(load_text("[install]\n", &conf, &err, dir), 0);
    assert_string_equal(conf.install.health_command, "");
    assert_int_equal(conf.install.health_timeout_ms, 30000);
    assert_int_equal(conf.install.health_checks, 1);
    assert_int_equal(conf.install.health_interval_ms, 5000);
    tu_rmtree(dir);
    assert_int_equal(load_text("[install]\n"
                               "health_command = /usr/bin/check --name 'a b' \"c\"d\n"
                               "health_timeout = 2s\n"
                               "health_checks = 3\n"
                               "health_interval = 500ms\n",
                               &conf, &err, dir), 0);
    assert_int_equal(conf.install.health_timeout_ms, 2000);
    assert_int_equal(conf.install.health_checks, 3);
    assert_int_equal(conf.install.health_interval_ms, 500);
    assert_int_equal(molt_conf_split_command(conf.install.health_command, buf, sizeof(buf), argv,
                                             8, &err), 0);
    assert_string_equal(argv[0], "/usr/bin/check");
    assert_string_equal(argv[1], "--name");
    assert_string_equal(argv[2], "a b");
    assert_string_equal(argv[3], "cd");
    assert_null(argv[4]);
    tu_rmtree(dir);
    assert_int_equal(molt_conf_split_command("/a b c d e f g h", buf, sizeof(buf), argv, 4, &err),
                     MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "more than 3 words"));

    expect_error("[install]\nhealth_checks = many\n", "install.health_checks: bad value");
    expect_error("[install]\nhealth_timeout = soon\n", "install.health_timeout: bad value");
    expect_error("[install]\nhealth_command = check.sh\n", "not an absolute path");
    expect_error("[install]\nhealth_command = /bin/x 'open\n", "unterminated ' quote");
    expect_error("[install]\nhealth_command = /bin/true\nhealth_checks = 0\n",
                 "install.health_checks: 1..100");
    expect_error("[install]\nhealth_command = /bin/true\nhealth_timeout = 10ms\n",
                 "install.health_timeout: at least 100ms");
    /* 3 * (5s + 30s) = 105s does not fit in a 100s trial; with the key names */
    expect_error("[install]\nhealth_command = /bin/true\nhealth_checks = 3\n"
                 "trial_timeout = 100s\n",
                 "install.health_checks * (install.health_interval + install.health_timeout) = "
                 "105000ms does not fit in install.trial_timeout (100000ms)");
    /* unchecked without a command: the defaults of the others never refuse a start */
    assert_int_equal(load_text("[install]\nhealth_checks = 0\ntrial_timeout = 1s\n", &conf,
                               &err, dir), 0);
    tu_rmtree(dir);
}

/* [install] watch_window and watch_max_starts: the watch after a commit (issue 19). */
static void test_watch_keys(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    (void)state;
    clear_env();
    assert_int_equal(load_text("[install]\n", &conf, &err, dir), 0);
    assert_int_equal(conf.install.watch_window_ms, 600000);
    assert_int_equal(conf.install.watch_max_starts, 3);
    tu_rmtree(dir);
    assert_int_equal(load_text("[install]\nwatch_window = 45s\nwatch_max_starts = 5\n", &conf,
                               &err, dir), 0);
    assert_int_equal(conf.install.watch_window_ms, 45000);
    assert_int_equal(conf.install.watch_max_starts, 5);
    tu_rmtree(dir);
    /* 0 turns the watch off */
    assert_int_equal(load_text("[install]\nwatch_window = 0\n", &conf, &err, dir), 0);
    assert_int_equal(conf.install.watch_window_ms, 0);
    tu_rmtree(dir);
    expect_error("[install]\nwatch_window = later\n", "install.watch_window: bad value");
    expect_error("[install]\nwatch_window = 25h\n", "install.watch_window: at most 24h");
    expect_error("[install]\nwatch_max_starts = 0\n", "install.watch_max_starts: 1..100");
    expect_error("[install]\nwatch_max_starts = 101\n", "install.watch_max_starts: 1..100");
    expect_error("[install]\nwatch_max_starts = -1\n", "expected a whole number");
}

/* [install] switch_window: checked at load, its error prefixed with the key (issue 19). */
static void test_switch_window(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    (void)state;
    clear_env();
    assert_int_equal(load_text("[install]\n", &conf, &err, dir), 0);
    assert_string_equal(conf.install.switch_window, "");
    tu_rmtree(dir);
    assert_int_equal(load_text("[install]\nswitch_window = Mon-Fri 02:00-04:00, Sat 22:00-02:00\n",
                               &conf, &err, dir), 0);
    assert_string_equal(conf.install.switch_window, "Mon-Fri 02:00-04:00, Sat 22:00-02:00");
    tu_rmtree(dir);
    expect_error("[install]\nswitch_window = Mon-Fri 2am-4am\n",
                 "install.switch_window: window 1: 'Mon-Fri 2am-4am': expected HH:MM");
    expect_error("[install]\nswitch_window = 02:00-04:00, Someday 01:00-02:00\n",
                 "install.switch_window: window 2:");
}

/* [trust]: the release channel's settings (issue 17); a section of its own. */
static void test_trust_keys(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];

    (void)state;
    clear_env();
    assert_int_equal(load_text("[install]\n", &conf, &err, dir), 0);
    assert_string_equal(conf.trust.channel, "on");
    assert_string_equal(conf.trust.channel_name, "stable");
    assert_int_equal(conf.trust.signature_threshold, 1);
    assert_int_equal(conf.trust.root_threshold, 1);
    tu_rmtree(dir);
    assert_int_equal(load_text("[trust]\nchannel = off\nchannel_name = beta_2\n"
                               "signature_threshold = 2\nroot_threshold = 3\n", &conf, &err,
                               dir), 0);
    assert_int_equal(conf.trust.root_threshold, 3);
    assert_string_equal(conf.trust.channel, "off");
    assert_string_equal(conf.trust.channel_name, "beta_2");
    assert_int_equal(conf.trust.signature_threshold, 2);
    tu_rmtree(dir);
    expect_error("[trust]\nchannel = maybe\n", "trust.channel: 'maybe' is not on or off");
    expect_error("[trust]\nchannel_name = Stable\n", "trust.channel_name: 'Stable' is not");
    expect_error("[trust]\nchannel_name = \n", "trust.channel_name: '' is not");
    expect_error("[trust]\nsignature_threshold = 0\n", "trust.signature_threshold: 1..16");
    expect_error("[trust]\nsignature_threshold = 17\n", "trust.signature_threshold: 1..16");
    expect_error("[trust]\nroot_threshold = 0\n", "trust.root_threshold: 1..16");
    expect_error("[trust]\nroot_threshold = 17\n", "trust.root_threshold: 1..16");
    expect_error("[trust]\nkeys_dir = /x\n", "unknown key 'keys_dir' in section [trust]");
}

/* [agent] download_max_rate and startup_jitter (issue 18). */
static void test_rate_and_jitter(void **state)
{
    struct molt_config conf;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX];
    int64_t bps;

    assert_int_equal(molt_conf_parse_rate("0", &bps), 0);
    assert_int_equal(bps, 0);
    assert_int_equal(molt_conf_parse_rate("65536", &bps), 0);
    assert_int_equal(bps, 65536);
    assert_int_equal(molt_conf_parse_rate("512K", &bps), 0);
    assert_int_equal(bps, 512 * 1024);
    assert_int_equal(molt_conf_parse_rate("50M", &bps), 0);
    assert_int_equal(bps, 50LL * 1024 * 1024);
    assert_int_equal(molt_conf_parse_rate("2g/s", &bps), 0);
    assert_int_equal(bps, 2LL * 1024 * 1024 * 1024);
    assert_true(molt_conf_parse_rate("", &bps) < 0);
    assert_true(molt_conf_parse_rate("-5M", &bps) < 0);
    assert_true(molt_conf_parse_rate("50MB", &bps) < 0);
    assert_true(molt_conf_parse_rate("M", &bps) < 0);
    assert_true(molt_conf_parse_rate("9999999999999G", &bps) < 0);

    molt_conf_defaults(&conf);
    assert_int_equal(conf.agent.download_max_rate, 0);
    assert_int_equal(conf.agent.startup_jitter_ms, 30000);
    clear_env();
    assert_int_equal(load_text("[agent]\ndownload_max_rate = 50M\nstartup_jitter = 2s\n", &conf,
                               &err, dir), 0);
    assert_int_equal(conf.agent.download_max_rate, 50LL * 1024 * 1024);
    assert_int_equal(conf.agent.startup_jitter_ms, 2000);
    tu_rmtree(dir);
    assert_int_equal(load_text("[agent]\ndownload_max_rate = 0\nstartup_jitter = 0\n", &conf,
                               &err, dir), 0);
    assert_int_equal(conf.agent.download_max_rate, 0);
    assert_int_equal(conf.agent.startup_jitter_ms, 0);
    tu_rmtree(dir);
    expect_error("[agent]\ndownload_max_rate = fast\n",
                 "agent.download_max_rate: bad value 'fast' (expected bytes per second");
    expect_error("[agent]\ndownload_max_rate = 100\n",
                 "agent.download_max_rate: 100 bytes/s is not 0 (unlimited) or in 1024..");
    expect_error("[agent]\ndownload_max_rate = 2000G\n", "is not 0 (unlimited) or in");
    expect_error("[agent]\nstartup_jitter = soon\n", "agent.startup_jitter: bad value 'soon'");
    expect_error("[agent]\nstartup_jitter = 2h\n", "agent.startup_jitter: at most 3600s");
}

/* The agent hands its settings to the worker as molt_conf_format's text:
 * read back, it must be the same configuration, every key, without the
 * secret; what the text cannot carry is refused by name. */
static void test_format_round_trip(void **state)
{
    struct molt_config conf, back, again;
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], dir2[PATH_MAX], *text = NULL, *text2 = NULL;

    clear_env();
    setenv("MOLT_AGENT_DOWNLOAD_MAX_RATE", "50M", 1);
    assert_int_equal(load_text("[server]\n"
                               "url = https://cp.example:8443/api/v1/\n"
                               "access_id = id-1\n"
                               "access_key = s3cret-key\n"
                               "proxy = \"  http://proxy:3128 \"\n"
                               "[agent]\n"
                               "name = \"quoted\"name\"\n"
                               "description = with = sign; and # hash\n"
                               "heartbeat_interval = 2s\n"
                               "ephemeral = yes\n"
                               "long_poll = off\n"
                               "[install]\n"
                               "root = /srv/molt\n"
                               "health_command = '/bin/check' --fast\n"
                               "trial_max_starts = 7\n"
                               "switch_window = Sat-Sun 01:00-05:00\n"
                               "[trust]\n"
                               "channel_name = beta\n",
                               &conf, &err, dir), 0);
    unsetenv("MOLT_AGENT_DOWNLOAD_MAX_RATE");
    assert_int_equal(molt_conf_format(&conf, &text, &err), 0);
    assert_null(strstr(text, "s3cret-key"));
    assert_null(strstr(text, "access_key"));
    /* The environment's value travels in the text: the reader looks at none. */
    assert_int_equal(molt_conf_load_text(&back, text, "start", &err), 0);
    assert_int_equal(back.agent.download_max_rate, 50 << 20);
    assert_string_equal(back.server.access_key, "");
    assert_string_equal(back.server.url, "https://cp.example:8443");
    assert_string_equal(back.server.access_id, "id-1");
    assert_string_equal(back.server.proxy, "  http://proxy:3128 ");
    assert_string_equal(back.agent.name, "quoted\"name"); /* as the file gave it */
    assert_string_equal(back.agent.description, "with = sign; and # hash");
    assert_int_equal(back.agent.heartbeat_interval_ms, 2000);
    assert_int_equal(back.agent.ephemeral, 1);
    assert_int_equal(back.agent.long_poll, 0);
    assert_string_equal(back.agent.upgrade_dir, "/srv/molt/upgrade");
    assert_string_equal(back.install.health_command, "'/bin/check' --fast");
    assert_int_equal(back.install.trial_max_starts, 7);
    assert_string_equal(back.install.switch_window, "Sat-Sun 01:00-05:00");
    assert_string_equal(back.trust.channel_name, "beta");
    /* Every key, not only those looked at: formatting the copy gives the same text. */
    assert_int_equal(molt_conf_format(&back, &text2, &err), 0);
    assert_string_equal(text2, text);
    free(text2);
    text2 = NULL;

    /* Control bytes mean nothing in a setting, from a file or the environment. */
    assert_int_equal(load_text("[server]\nproxy = http://p\r\r:3128\n", &again, &err, dir2),
                     MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "server.proxy: bad value (control character)"));
    tu_rmtree(dir2);
    setenv("MOLT_AGENT_CATEGORY", "db\n[server]", 1);
    assert_int_equal(load_text("[agent]\n", &again, &err, dir2), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "agent.category: bad value (control character)"));
    unsetenv("MOLT_AGENT_CATEGORY");
    tu_rmtree(dir2);
    assert_int_equal(load_text("[agent]\ndescription = a\tb\n", &again, &err, dir2), 0);
    assert_string_equal(again.agent.description, "a\tb");
    tu_rmtree(dir2);
    /* A line break set behind the loader's back is still not written. */
    again = conf;
    snprintf(again.agent.category, sizeof(again.agent.category), "db\n[server]");
    assert_int_equal(molt_conf_format(&again, &text2, &err), MOLT_E_CONFIG);
    assert_null(text2);
    assert_non_null(strstr(err.msg, "agent.category: the value holds a line break"));
    /* The reader validates as a file load does, naming the origin's line. */
    assert_int_equal(molt_conf_load_text(&back, "[agent]\nheartbeat_interval = 1ms\n", "start",
                                         &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "agent.heartbeat_interval"));
    assert_int_equal(molt_conf_load_text(&back, "[server]\nurl = x\n[agent]\nnope = 1\n",
                                         "start", &err), MOLT_E_CONFIG);
    assert_non_null(strstr(err.msg, "start:4: unknown key 'nope'"));
    free(text);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_secret_not_in_error),
        cmocka_unit_test(test_dropins_and_env),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_url_normalised),
        cmocka_unit_test(test_upgrade_dir_follows_root),
        cmocka_unit_test(test_durations_and_loopback),
        cmocka_unit_test(test_health_keys),
        cmocka_unit_test(test_switch_window),
        cmocka_unit_test(test_watch_keys),
        cmocka_unit_test(test_trust_keys),
        cmocka_unit_test(test_rate_and_jitter),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
