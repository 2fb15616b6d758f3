#!/usr/bin/env bash
# pkg_service.sh: the systemd unit passes `systemd-analyze verify` (with its
# ExecStart and man pages present: a copy of the unit with /opt/molt rewritten
# to a scratch root holding a real molt-installer, and MANPATH naming our man
# pages) and fails it when the binary is missing; its settings keep the
# installer's contract (docs/upgrades.md section 5.2) and let a self-upgrade
# write what it must; the SysV script parses and answers status and usage.
. "$(dirname "$0")/lib/tap.sh"
set -u

command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "1..0 # SKIP systemd-analyze not installed (the systemd package)"; exit 0; }
tap_plan 19

SRC=$MOLT_TOP_SRCDIR
UNIT_SRC=$SRC/packaging/systemd/molt-agent.service
WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-pkg-service-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/opt/molt/bin" "$WORK/man/man1" "$WORK/man/man5" "$WORK/man/man8" "$WORK/unit"
cp "$MOLT_TOP_BUILDDIR/installer/molt-installer" "$WORK/opt/molt/bin/"
for page in molt-agent.8 molt-installer.8 molt-pack.1 molt.conf.5; do
    cp "$SRC/packaging/man/$page" "$WORK/man/man${page##*.}/"
done
sed "s|/opt/molt|$WORK/opt/molt|g" "$UNIT_SRC" >"$WORK/unit/molt-agent.service"

verify() { # UNIT: systemd-analyze verify, with our man pages when man is there
    if command -v man >/dev/null 2>&1; then
        MANPATH=$WORK/man SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$1" 2>&1
    else
        SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$1" 2>&1
    fi
}

out=$(verify "$WORK/unit/molt-agent.service")
rc=$?
ok "$rc" "systemd-analyze verify passes"
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
is "$(printf '%s' "$out" | grep -v '^$' | wc -l | tr -d ' ')" 0 "verify prints no warning"

sed "s|/opt/molt|$WORK/missing|g" "$UNIT_SRC" >"$WORK/unit/molt-agent.service"
out=$(verify "$WORK/unit/molt-agent.service")
ok $((! $?)) "verify fails when ExecStart's binary is missing"
like "$out" "not executable|No such file" "and says why"

prop() { sed -n "s/^$1=//p" "$UNIT_SRC" | tail -n 1; }
is "$(prop Type)/$(prop NotifyAccess)" "notify/main" \
    "Type=notify, NotifyAccess=main: exec-mode launch makes the agent the main process"
like "$(prop ExecStart)" '^/opt/molt/bin/molt-installer launch$' \
    "ExecStart is the stable installer's launch (exec mode)"
like "$(prop ExecStartPre)" "molt-agent check-config --start; \\[ \"\\\$\\\$\\?\" -ne 1 \\]'\$" \
    "ExecStartPre runs check-config --start and fails only on its exit 1"
in_flight="^/bin/sh -c '/opt/molt/bin/molt-installer status .*switching\\|trial\\|rolling-back"
like "$(prop ExecStartPre)" "$in_flight.* && exit 0; timeout 30 " \
    "but not while the committed installer sees a switch or trial in flight, and for 30 s at most"
ok "$( { [ -n "$(prop WatchdogSec)" ] && [ "$(prop User)" = molt ]; } ; echo $?)" \
    "WatchdogSec set, runs as user molt"
ok "$( { [ "$(prop Restart)" = always ] && [ "$(prop KillMode)" = control-group ] &&
    ! grep -q '^RestartPreventExitStatus' "$UNIT_SRC"; } ; echo $?)" \
    "restarts after exit 75 and SIGKILL; a stop ends a trial watchdog too"

# Hardening that still lets it upgrade itself: every path the packaged
# configuration makes it write is writable, and nothing else is.
rw=" $(prop ReadWritePaths) /var/lib/$(prop StateDirectory) /run/$(prop RuntimeDirectory) "
conf_val() { sed -n "s/^$1 *= *//p" "$SRC/packaging/molt.conf" | head -n 1; }
missing=''
for p in "$(conf_val root)" "$(conf_val state_dir)" "$(conf_val upgrade_dir)" /run/molt; do
    covered=1
    for w in $rw; do
        case "$p/" in "$w"/*) covered=0 ;; esac
    done
    [ "$covered" -eq 0 ] || missing="$missing $p"
done
is "$missing" "" "root, state_dir, upgrade_dir and the run dir of molt.conf are writable"
is "$(prop ProtectSystem)/$(prop NoNewPrivileges)/$(prop ProtectHome)/$(prop PrivateTmp)" \
    "strict/yes/yes/yes" "ProtectSystem=strict, NoNewPrivileges, ProtectHome, PrivateTmp"
is "$(prop RestrictAddressFamilies)" "AF_UNIX AF_INET AF_INET6" "only Unix and IP sockets"

# The SysV script.
INIT=$SRC/packaging/sysv/molt-agent.init
sh -n "$INIT"
ok $? "the init script parses (sh -n)"
sed -e "s|^PIDFILE=.*|PIDFILE=$WORK/none.pid|" -e "s|^DEFAULTS=.*|DEFAULTS=$WORK/none|" \
    -e "s|/etc/sysconfig/molt-agent|$WORK/none|" "$INIT" >"$WORK/init"
out=$(sh "$WORK/init" status 2>&1)
is "$?" 3 "init status: 3 when not running (LSB)"
sh "$WORK/init" frobnicate >/dev/null 2>&1
is "$?" 2 "init: an unknown action is a usage error"

# start with a bad configuration: refused with check-config's message, nothing started.
mkdir -p "$WORK/opt/molt/current/bin"
cp "$MOLT_TOP_BUILDDIR/agent/molt-agent" "$WORK/opt/molt/current/bin/"
printf '[server]\nurl = ftp://cp.example.com\n' >"$WORK/bad.conf"
sed -i -e "s|^MOLT_ROOT=.*|MOLT_ROOT=$WORK/opt/molt|" -e "s|^MOLT_CONFIG=.*|MOLT_CONFIG=$WORK/bad.conf|" \
    -e "s|^LOGFILE=.*|LOGFILE=$WORK/log|" -e "s|^RUN_DIR=.*|RUN_DIR=$WORK/run|" \
    -e "s|^MOLT_USER=.*|MOLT_USER=$(id -un)|" "$WORK/init"
out=$(sh "$WORK/init" start 2>&1)
is "$?" 1 "init start with a bad configuration fails"
like "$out" "error: .*server.url: 'ftp://cp.example.com' is not an https:// URL" \
    "with check-config's message"
[ ! -e "$WORK/none.pid" ] && [ ! -e "$WORK/log" ]
ok $? "and starts nothing"
tap_done
