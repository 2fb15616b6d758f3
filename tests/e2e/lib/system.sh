# shellcheck shell=bash
# lib/system.sh: the system tier (make check-system): a Debian 12 rootfs
# (system_rootfs.sh, cached in MOLT_SYSTEM_ROOTFS_CACHE) copied per run and
# booted with systemd-nspawn as PID 1, sharing the host's network namespace so
# the reference control plane on 127.0.0.1 is reachable. ct runs a command
# inside (nsenter into the container's systemd). The container is always
# terminated by ct_cleanup (EXIT trap), every wait is bounded.
. "$(dirname "${BASH_SOURCE[0]}")/pkg.sh"

# sys_skip_unless_able: SKIP (never pass) without root, systemd-nspawn, debootstrap or dpkg-deb.
sys_skip_unless_able() {
    [ "$(id -u)" -eq 0 ] || pkg_skip_all "needs root (systemd-nspawn, debootstrap)"
    local t
    for t in systemd-nspawn nsenter debootstrap dpkg-deb dpkg-shlibdeps; do
        command -v "$t" >/dev/null 2>&1 || pkg_skip_all "$t is not installed"
    done
    [ -d /run/systemd/system ] || [ -w /sys/fs/cgroup ] ||
        pkg_skip_all "no writable cgroup file system for systemd-nspawn"
}

CT_ROOT='' CT_NSPAWN='' CT_LEADER=''
ct_cleanup() {
    if [ -n "$CT_NSPAWN" ] && kill -0 "$CT_NSPAWN" 2>/dev/null; then
        # SIGTERM to nspawn (through timeout) halts the container; then force.
        kill -TERM "$CT_NSPAWN" 2>/dev/null
        timeout 20 tail --pid="$CT_NSPAWN" -f /dev/null 2>/dev/null
        [ -z "$CT_LEADER" ] || kill -KILL "$CT_LEADER" 2>/dev/null
        kill -KILL "$CT_NSPAWN" 2>/dev/null
        wait "$CT_NSPAWN" 2>/dev/null
    fi
    cp_stop
    if [ -n "${MOLT_TEST_KEEP:-}" ]; then echo "# kept $PKG_WORK"; return; fi
    [ -z "$PKG_WORK" ] || rm -rf "$PKG_WORK"
}

# ct_boot NAME: a fresh copy of the cached rootfs booted; CT_ROOT is its path on the host.
ct_boot() {
    local cache=${MOLT_SYSTEM_ROOTFS_CACHE:-$MOLT_TOP_BUILDDIR/tests/system-rootfs}
    timeout 600 bash "$MOLT_TOP_SRCDIR/tests/e2e/lib/system_rootfs.sh" "$cache/bookworm" ||
        { echo "Bail out! debootstrap of the rootfs failed (see $cache/bookworm.log)"; exit 1; }
    CT_ROOT=$WORK/$1
    cp -a "$cache/bookworm" "$CT_ROOT" || { echo "Bail out! copy of the rootfs"; exit 1; }
    echo "$1" >"$CT_ROOT/etc/hostname" # the collector's name (debootstrap copied the host's)
    trap ct_cleanup EXIT
    # timeout: even if this script is killed, the container halts within 15 minutes.
    # nspawn's own seccomp filter (systemd 252) lacks Landlock's calls: added, so that the worker
    # confines itself in the container as on a host, under the packaged unit's filter alone.
    timeout 900 systemd-nspawn -D "$CT_ROOT" --boot --register=no --keep-unit --console=pipe \
        --system-call-filter='landlock_create_ruleset landlock_add_rule landlock_restrict_self' \
        --machine="$1" >"$WORK/console.log" 2>&1 </dev/null &
    CT_NSPAWN=$!
    local i p
    for i in $(seq 300); do
        for p in $(pgrep -P "$(pgrep -P "$CT_NSPAWN" | head -n 1)" 2>/dev/null); do
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && CT_LEADER=$p
        done
        [ -n "$CT_LEADER" ] && break
        kill -0 "$CT_NSPAWN" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$CT_LEADER" ] || { sed 's/^/#   /' "$WORK/console.log"; echo "Bail out! boot"; exit 1; }
    # Until its systemd answers on its bus, then until boot has finished.
    wait_for 60 ct_booted
}

ct_booted() {
    case $(ct systemctl is-system-running 2>/dev/null) in
    running | degraded) return 0 ;;
    esac
    return 1
}

# ct COMMAND...: run it inside the container (bounded: 120 s).
ct() { timeout 120 nsenter -t "$CT_LEADER" -m -u -i -p -n -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

main_pid() { ct systemctl show -p MainPID --value molt-agent; }
main_exe() { local p; p=$(main_pid) && [ "$p" != 0 ] && ct readlink "/proc/$p/exe"; }
main_runs() { [ "$(main_exe 2>/dev/null)" = "/opt/molt/versions/$1/bin/molt-agent" ]; }
unit_state() { ct systemctl show -p ActiveState,SubState --value molt-agent | tr '\n' ' ' | sed 's/ $//'; }
journal() { ct journalctl --no-pager -o cat "$@"; }
# ct_kill SIGNAL PID: the shell's kill builtin inside (the image has no /bin/kill).
ct_kill() { ct sh -c 'kill -s "$1" "$2"' sh "$@"; }
