#!/usr/bin/env bash
# system_systemd.sh (make check-system): the .deb built from this tree in a
# booted Debian 12 (systemd-nspawn, systemd as PID 1), the agent under its
# real, hardened unit and journal: READY, registration and heartbeats, `status`;
# with the README's minimal configuration as the whole molt.conf an upgrade
# through the management API ends 2 with the new version as the main process;
# builds that exit at start or never heartbeat are rolled back (3) through
# systemd's restarts (default RestartSec); kill -9 and a SIGSTOP (watchdog)
# restart it; reload with a good and a bad drop-in; a configuration naming a
# read-only path is refused at start; the SysV script with the unit masked;
# the coexistence rule with a newer .deb; remove and purge; and no permission
# or sandbox denial in the journal of the whole run.
. "$(dirname "$0")/lib/system.sh"
set -u

sys_skip_unless_able
pkg_start system 46
NAME=molt-sys-$$

journal_has() { journal -u molt-agent --since "$1" | grep -Eq "$2"; } # SINCE REGEX
main_pid_is_not() { local p; p=$(main_pid) && [ "$p" != 0 ] && [ "$p" != "$1" ]; }
agent_runs_as() { # USER: a molt-agent process runs as USER
    ct sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = molt-agent ] && stat -c %U $p; done' |
        grep -qx "$1"
}
journal_idle() { ct grep -Eq '"state": *"(idle|committed)"' /var/lib/molt/journal.json; }

B1=$(pkg_build_dir "$V1") && B3=$(pkg_build_dir "$V3") || { echo "Bail out! builds"; exit 1; }
D1=$(pkg_deb_of "$B1" "$WORK/debs") && D3=$(pkg_deb_of "$B3" "$WORK/debs") &&
    [ -f "$D1" ] && [ -f "$D3" ] || { sed 's/^/#   /' "$WORK/make.err"; echo "Bail out! make deb"; exit 1; }
cp_start "$WORK" --heartbeat-interval 1s --rate-limit 0 >/dev/null || { echo "Bail out! control plane"; exit 1; }
publish "$V2" "$VX" "$VH"

ct_boot "$NAME"
ok $? "a Debian 12 container booted with systemd ($(ct systemctl is-system-running))"
ok "$(ct test ! -e /bin/kill -a ! -e /usr/bin/kill; echo $?)" "a minimal image: no /bin/kill"

# ---- install and start ---------------------------------------------------------------------

cp "$D1" "$D3" "$CT_ROOT/root/"
out=$(ct dpkg -i "/root/$(basename "$D1")" 2>&1)
ok $? "dpkg -i installs $V1 in the container"
printf '%s\n' "$out" | grep -i 'error' | sed 's/^/#   /'
cp "$CP_CA" "$CT_ROOT/etc/molt/ca.pem"
# README's minimal configuration, as the whole file (no upgrade_dir, no root).
cat >"$CT_ROOT/etc/molt/molt.conf" <<CONF
[server]
url = $CP_URL
access_id = $CP_ACCESS_ID
access_key = $CP_ACCESS_KEY
ca_file = /etc/molt/ca.pem
CONF
ct chown root:molt /etc/molt/molt.conf && ct chmod 0640 /etc/molt/molt.conf
ct systemctl restart molt-agent
ok $? "systemctl restart returns: Type=notify READY reached"
is "$(unit_state)" "active running" "the unit is active (running)"
wait_for 30 registered
ok $? "the agent registered (collector $CID)"
wait_for 15 version_is "$V1"
ok $? "and heartbeats as $V1"
like "$(ct /usr/sbin/molt-agent status 2>&1)" "$V1" "molt-agent status works inside"

# ---- upgrade with the minimal configuration --------------------------------------------------

tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 120
ok $? "upgrade to $V2 ends 2 ($CP_TASK_MESSAGE)"
wait_for 30 main_runs "$V2"
ok $? "the service's main process is $V2's agent ($(main_exe))"
is "$(ct ls -A /opt/molt/upgrade)" "" "the default upgrade_dir /opt/molt/upgrade is empty again"
# Under the unit's own filters (SystemCallFilter=, RestrictAddressFamilies=) the worker still confines
# itself with all three layers (the container lets Landlock through: lib/system.sh) and gets its
# connections from the agent.
sandbox=$(journal -u molt-agent | grep 'worker.sandbox' | tail -n 1)
like "$sandbox" 'layers="no_new_privs landlock\(abi [0-9]+\) seccomp" ports=1 connections=agent' \
    "under the service, the worker's sandbox is whole and the agent makes its connections (${sandbox#*layers=})"

# ---- reload --------------------------------------------------------------------------------

ct mkdir -p /etc/molt/molt.conf.d
printf '[agent]\nlog_level = debug\nstartup_jitter = 0\n[install]\ntrial_timeout = 40s\n' >"$CT_ROOT/etc/molt/molt.conf.d/50-test.conf"
since=$(ct date '+%Y-%m-%d %H:%M:%S')
pid=$(main_pid)
ct systemctl reload molt-agent
ok $? "systemctl reload works without /bin/kill"
wait_for 10 journal_has "$since" 'config.reloaded.*log_level=debug'
ok $? "the good drop-in is applied (config.reloaded log_level=debug)"
printf '[agent]\nlog_level = info\nheartbeat_intervl = 5s\n' >"$CT_ROOT/etc/molt/molt.conf.d/60-bad.conf"
since=$(ct date '+%Y-%m-%d %H:%M:%S')
reloads=$(journal -u molt-agent | grep -c 'config.reloaded')
ct systemctl reload molt-agent
wait_for 10 journal_has "$since" "config.reload.*unknown key 'heartbeat_intervl'.*keep-running-configuration"
ok $? "a bad drop-in: the journal names the error and says the running configuration is kept"
sleep 2
is "$(journal -u molt-agent | grep -c 'config.reloaded')" "$reloads" \
    "nothing of it is applied (no config.reloaded after it)"
is "$(main_pid)" "$pid" "the agent kept running through both reloads"
rm "$CT_ROOT/etc/molt/molt.conf.d/60-bad.conf"

# ---- crashes and the watchdog ----------------------------------------------------------------

ct_kill KILL "$pid"
wait_for 30 main_pid_is_not "$pid"
ok $? "kill -9: systemd restarts the agent"
wait_for 15 main_runs "$V2"
ok $? "still $V2"
ct mkdir -p /etc/systemd/system/molt-agent.service.d
printf '[Service]\nWatchdogSec=3s\n' >"$CT_ROOT/etc/systemd/system/molt-agent.service.d/50-test-watchdog.conf"
ct systemctl daemon-reload && ct systemctl restart molt-agent
pid=$(main_pid)
since=$(ct date '+%Y-%m-%d %H:%M:%S')
ct_kill STOP "$pid"
wait_for 30 main_pid_is_not "$pid"
ok $? "SIGSTOP: the watchdog kills the agent and systemd restarts it"
like "$(journal -u molt-agent --since "$since")" "[Ww]atchdog timeout" "the journal says Watchdog timeout"
rm "$CT_ROOT/etc/systemd/system/molt-agent.service.d/50-test-watchdog.conf"
ct systemctl daemon-reload && ct systemctl restart molt-agent
wait_for 30 version_is "$V2"

# ---- rollbacks through systemd's restarts ----------------------------------------------------

tid=$(cp_create_task "$CID" "$VX")
cp_wait_task_status "$tid" 3 150
ok $? "a build whose agent exits at start ends 3"
like "$CP_TASK_MESSAGE" "rolled back: $VX exited 3 times during trial" "with the reason ($CP_TASK_MESSAGE)"
wait_for 30 main_runs "$V2"
ok $? "$V2 is the main process again"
tid=$(cp_create_task "$CID" "$VH")
cp_wait_task_status "$tid" 3 150
ok $? "a build that never heartbeats ends 3"
like "$CP_TASK_MESSAGE" "rolled back: $VH did not commit" "with the reason ($CP_TASK_MESSAGE)"
wait_for 30 main_runs "$V2"
ok $? "$V2 is the main process again"

# ---- upgrade_dir on another mount: refused before the download ---------------------------------
# /var/lib/molt is writable, but a ReadWritePaths= mount of its own: rename(2)
# into /opt/molt/versions gives EXDEV although it is the same disk.

printf '[agent]\nupgrade_dir = /var/lib/molt/upgrade\n' >"$CT_ROOT/etc/molt/molt.conf.d/80-upgrade-dir.conf"
ct systemctl restart molt-agent
tid=$(cp_create_task "$CID" "$VX")
cp_wait_task_status "$tid" 3 60
like "$CP_TASK_MESSAGE" \
    "agent.upgrade_dir /var/lib/molt/upgrade: probe rename from /var/lib/molt/upgrade/task-[0-9]+ into /opt/molt/versions: Invalid cross-device link: a staged build must be renamed into /opt/molt/versions: leave agent.upgrade_dir unset" \
    "upgrade_dir on another mount: the task ends 3 naming agent.upgrade_dir, the paths and EXDEV"
unlike_stage=$(task_stages "$tid")
ok "$(case " $unlike_stage " in *" downloading "*) echo 1 ;; *) echo 0 ;; esac)" \
    "refused at preflight, before downloading ($unlike_stage)"
rm "$CT_ROOT/etc/molt/molt.conf.d/80-upgrade-dir.conf"
ct systemctl restart molt-agent
wait_for 30 main_runs "$V2"
ok $? "back on the default upgrade_dir, $V2 runs"

# ---- a path the unit cannot write ----------------------------------------------------------

printf '[agent]\nupgrade_dir = /srv/molt-upgrade\n' >"$CT_ROOT/etc/molt/molt.conf.d/70-srv.conf"
ct systemctl restart molt-agent >/dev/null 2>&1
ok $((! $?)) "upgrade_dir outside ReadWritePaths=: the service refuses to start"
like "$(journal -u molt-agent -n 30)" \
    "agent.upgrade_dir /srv/molt-upgrade is not writable by this service.*ReadWritePaths=/srv/molt-upgrade" \
    "the journal names the path and the drop-in to add"
rm "$CT_ROOT/etc/molt/molt.conf.d/70-srv.conf"
ct systemctl reset-failed molt-agent
ct systemctl restart molt-agent
ok $? "without it the service starts again"

# ---- the SysV script, the unit stopped --------------------------------------------------------
# Not masked: Debian's init-functions make a masked service's script exit 0 at
# once. SYSTEMCTL_SKIP_REDIRECT=1 runs the script itself instead of systemctl.

ct systemctl stop molt-agent
out=$(ct env SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/molt-agent start 2>&1)
ok $? "SysV: /etc/init.d/molt-agent start ($out)"
wait_for 30 agent_runs_as molt
ok $? "the agent runs as molt under launch --supervise"
ct env SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/molt-agent status >/dev/null 2>&1
is "$?" 0 "SysV status: 0 while running"
ct env SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/molt-agent stop >/dev/null 2>&1
ct env SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/molt-agent status >/dev/null 2>&1
is "$?" 3 "SysV stop, then status 3"
ct systemctl start molt-agent

# ---- coexistence with the package manager ----------------------------------------------------

out=$(ct dpkg -i "/root/$(basename "$D1")" 2>&1)
like "$out" "keeping $V2: it is newer than this package's $V1" "reinstalling the $V1 .deb keeps the self-upgraded $V2"
out=$(ct dpkg -i "/root/$(basename "$D3")" 2>&1)
ok $? "the newer $V3 .deb installs over the self-upgraded $V2"
wait_for 60 main_runs "$V3"
ok $? "and $V3 runs as the main process"
wait_for 150 journal_idle
ok $? "its trial is committed"
is "$(ct readlink /opt/molt/previous)" "versions/$V2" "previous is $V2"

# ---- remove, purge ---------------------------------------------------------------------------

ct dpkg -r molt >/dev/null 2>&1
ok "$( { ct test ! -e /opt/molt && ct test -f /var/lib/molt/journal.json &&
    ct test -f /etc/molt/molt.conf; }; echo $?)" "remove: the service stopped, /opt/molt gone, state and configuration kept"
ct dpkg -P molt >/dev/null 2>&1
ok "$( { ct test ! -e /var/lib/molt && ct test ! -e /etc/molt && ct id molt >/dev/null; }; echo $?)" \
    "purge: state and configuration gone; the system user molt is kept (Debian keeps system users)"
is "$(ct systemctl show -p LoadState --value molt-agent)" "not-found" "the unit is gone"

# ---- the journal of the whole run ------------------------------------------------------------

# (the container's own dbus may not raise its fd limit there: only molt's lines count)
denials=$(journal -b | grep -i molt | grep -E 'EACCES|EPERM|EROFS|Read-only file system|Permission denied|Operation not permitted' |
    grep -v 'srv/molt-upgrade')
is "$denials" "" "no permission or sandbox denial in the journal of the whole run"
tap_done
