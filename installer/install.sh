#!/bin/sh
# install.sh: installs molt from a signed build package on a host without a
# package manager; the .deb and .rpm run it too, after unpacking. It verifies
# the package with a molt-installer the operator already trusts (never with
# code from the package), installs it into the versioned layout, writes the
# configuration, and sets up the service. On a host where molt is already
# installed it follows the coexistence rule (README.md, "Installing on
# servers"): a newer build is switched to through molt-installer (apply, a
# trial proven by the agent's heartbeat, commit), an older one never replaces
# what runs.
set -eu

PROG=install.sh
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
    cat <<'EOF'
Usage: install.sh --package PKG --url URL --access-id ID --access-key KEY [OPTIONS]
       install.sh --package PKG --keep-config [OPTIONS]
       install.sh --uninstall [--purge] [--prefix DIR]
Verifies and installs a signed molt build package (PKG, with PKG.statement.json and
PKG.sig beside it), writes /etc/molt/molt.conf and sets up the molt-agent service.

  --package PKG         the signed build package (molt-V-linux-ARCH.tar.gz)
  --url URL             control plane URL (https://...)
  --access-id ID        installation access id
  --access-key KEY      installation access key (or --access-key-file F, or the
                        MOLT_ACCESS_KEY environment variable: not visible in ps)
  --name N              collector name (default: the host name)
  --ephemeral           register as an ephemeral collector
  --ca-file F           CA bundle for the control plane (copied to /etc/molt/ca.pem)
  --keys DIR            trusted release keys (*.pub), copied to /etc/molt/keys
  --prefix DIR          put everything under DIR (DIR/opt/molt, DIR/var/lib/molt,
                        DIR/etc/molt, DIR/run/molt): tests, image builds, dpkg --root
  --user U              service user (default molt when run as root without --prefix;
                        with --prefix: the invoking user); created when missing
  --installer FILE      the trusted molt-installer that verifies PKG (default: one
                        beside this script, else molt-installer on PATH)
  --keep-config         keep the existing configuration (packages; re-runs)
  --no-service          do not install, enable or start a service
  --health-wait S       seconds to wait for a switched-to version's first
                        acknowledged heartbeat before committing it (default 60)
  --uninstall           stop and remove the service, the PATH links and the install
                        root (every version); --purge also the state dir and /etc/molt
  -h, --help            show this help

molt-agent and molt-installer are linked into /usr/sbin (DIR/usr/sbin with --prefix), as the
packages do. To move to the .deb later, install it over this: it keeps /etc/molt/molt.conf (as
the drop-in molt.conf.d/00-install-sh.conf), the state and the running version. See
molt-installer(8).

Exit status: 0 installed (or left alone by the coexistence rule, which it says), 1 failed,
2 usage error.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_die() { printf '%s: %s\nTry %s --help.\n' "$PROG" "$*" "$PROG" >&2; exit 2; }

PKG='' URL='' ACCESS_ID='' ACCESS_KEY=${MOLT_ACCESS_KEY:-} ACCESS_KEY_FILE='' NAME='' EPHEMERAL=0
CA_FILE='' KEYS='' PREFIX='' SVC_USER='' USER_SET=0 INSTALLER='' KEEP_CONFIG=0 NO_SERVICE=0
HEALTH_WAIT=60 UNINSTALL=0 PURGE=0

while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
    -h | --help) usage; exit 0 ;;
    --ephemeral) EPHEMERAL=1; shift; continue ;;
    --keep-config) KEEP_CONFIG=1; shift; continue ;;
    --no-service) NO_SERVICE=1; shift; continue ;;
    --uninstall) UNINSTALL=1; shift; continue ;;
    --purge) PURGE=1; shift; continue ;;
    --package | --url | --access-id | --access-key | --access-key-file | --name | --ca-file | \
        --keys | --prefix | --user | --installer | --health-wait) ;;
    *) usage_die "unknown argument '$opt'" ;;
    esac
    [ $# -ge 2 ] || usage_die "$opt needs a value"
    val=$2
    shift 2
    case "$opt" in
    --package) PKG=$val ;;
    --url) URL=$val ;;
    --access-id) ACCESS_ID=$val ;;
    --access-key) ACCESS_KEY=$val ;;
    --access-key-file) ACCESS_KEY_FILE=$val ;;
    --name) NAME=$val ;;
    --ca-file) CA_FILE=$val ;;
    --keys) KEYS=$val ;;
    --prefix) PREFIX=$val ;;
    --user) SVC_USER=$val; USER_SET=1 ;;
    --installer) INSTALLER=$val ;;
    --health-wait) HEALTH_WAIT=$val ;;
    esac
done

# ---- checks of the command line -----------------------------------------

[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || usage_die "--purge goes with --uninstall"
if [ "$UNINSTALL" = 0 ]; then
    [ -n "$PKG" ] || usage_die "--package is required"
    [ -f "$PKG" ] || die "$PKG: no such file"
fi
case "$HEALTH_WAIT" in '' | *[!0-9]*) usage_die "--health-wait: a number of seconds" ;; esac
if [ -n "$ACCESS_KEY_FILE" ]; then
    [ -r "$ACCESS_KEY_FILE" ] || die "$ACCESS_KEY_FILE: cannot read"
    ACCESS_KEY=$(head -n 1 "$ACCESS_KEY_FILE")
fi
if [ "$KEEP_CONFIG" = 0 ] && [ "$UNINSTALL" = 0 ]; then
    [ -n "$URL" ] && [ -n "$ACCESS_ID" ] && [ -n "$ACCESS_KEY" ] ||
        usage_die "--url, --access-id and --access-key are required (or --keep-config)"
    case "$URL" in https://*) ;; *) usage_die "--url: '$URL' is not an https:// URL" ;; esac
fi
# Every value becomes one line of an INI file: a line break would inject keys.
nl='
'
for v in "$URL" "$ACCESS_ID" "$ACCESS_KEY" "$NAME" "$CA_FILE" "$PREFIX"; do
    case "$v" in *"$nl"* | *"$(printf '\r')"*) usage_die "values must not contain line breaks" ;; esac
done
if [ -n "$PREFIX" ]; then
    mkdir -p "$PREFIX"
    PREFIX=$(cd "$PREFIX" && pwd)
    [ "$PREFIX" != / ] || PREFIX=''
fi

ROOT=$PREFIX/opt/molt
STATE=$PREFIX/var/lib/molt
UPG=$ROOT/upgrade
ETC=$PREFIX/etc/molt
CONF=$ETC/molt.conf
TRUSTED=$ETC/keys

if [ "$USER_SET" = 0 ] && [ -z "$PREFIX" ] && [ "$(id -u)" -eq 0 ]; then
    SVC_USER=molt
fi
[ "$SVC_USER" != root ] || SVC_USER=''
if [ -n "$SVC_USER" ] && [ "$(id -u)" -ne 0 ]; then
    die "--user $SVC_USER needs root (run as root, or install for yourself with --prefix)"
fi

# ---- uninstall ------------------------------------------------------------------

# A link of ours: a symlink into the install root.
remove_link() {
    case "$(readlink "$1" 2>/dev/null)" in /opt/molt/* | "$ROOT"/*) rm -f "$1" ;; esac
}

uninstall() {
    if [ -z "$PREFIX" ] && command -v dpkg-query >/dev/null 2>&1 &&
        dpkg-query -W -f '${Status}' molt 2>/dev/null | grep -q 'ok installed'; then
        die "the molt package is installed: remove it with apt-get remove molt (purge: apt-get purge molt)"
    fi
    if [ -z "$PREFIX" ]; then
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now molt-agent >/dev/null 2>&1 || true
            rm -f /etc/systemd/system/molt-agent.service
            systemctl daemon-reload || true
        elif [ -x /etc/init.d/molt-agent ]; then
            /etc/init.d/molt-agent stop || true
        fi
        if [ -f /etc/init.d/molt-agent ]; then
            if command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d -f molt-agent remove >/dev/null 2>&1 || true
            elif command -v chkconfig >/dev/null 2>&1; then
                chkconfig --del molt-agent || true
            fi
            rm -f /etc/init.d/molt-agent
        fi
    else
        rm -f "$PREFIX/etc/systemd/system/molt-agent.service" "$PREFIX/etc/init.d/molt-agent"
    fi
    remove_link "$PREFIX/usr/sbin/molt-agent"
    remove_link "$PREFIX/usr/sbin/molt-installer"
    rm -rf "$ROOT"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$STATE" "$ETC"
        say "removed $ROOT, $STATE and $ETC"
    else
        say "removed $ROOT (every version); kept $STATE and $ETC (--purge removes them)"
    fi
}
if [ "$UNINSTALL" = 1 ]; then
    uninstall
    exit 0
fi

# The installer that verifies the package must not come from the package.
if [ -z "$INSTALLER" ]; then
    if [ -x "$HERE/molt-installer" ]; then
        INSTALLER=$HERE/molt-installer
    else
        INSTALLER=$(command -v molt-installer 2>/dev/null) ||
            die "no molt-installer beside $PROG or on PATH: give --installer FILE"
    fi
fi
[ -x "$INSTALLER" ] || die "$INSTALLER: not an executable molt-installer"

# ---- the service user -----------------------------------------------------

passwd_field() { # NAME FILE FIELD
    awk -F: -v n="$1" -v f="$3" '$1 == n { print $f; exit }' "$2" 2>/dev/null
}

user_ids() { # sets UID_N and GID_N of SVC_USER, from the prefix's files when there is one
    if [ -n "$PREFIX" ]; then
        UID_N=$(passwd_field "$SVC_USER" "$PREFIX/etc/passwd" 3)
        GID_N=$(passwd_field "$SVC_USER" "$PREFIX/etc/passwd" 4)
    else
        UID_N=$(id -u "$SVC_USER" 2>/dev/null || true)
        GID_N=$(id -g "$SVC_USER" 2>/dev/null || true)
    fi
    [ -n "$UID_N" ] && [ -n "$GID_N" ]
}

ensure_user() {
    [ -n "$SVC_USER" ] || return 0
    user_ids && return 0
    if [ -n "$PREFIX" ]; then
        [ -f "$PREFIX/etc/passwd" ] || die "$PREFIX/etc/passwd is missing: cannot add $SVC_USER"
        useradd --prefix "$PREFIX" --system --user-group --home-dir /var/lib/molt \
            --no-create-home --shell /usr/sbin/nologin --comment "molt agent" "$SVC_USER"
    elif command -v useradd >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/molt --no-create-home \
            --shell "$(command -v nologin || echo /sbin/nologin)" --comment "molt agent" "$SVC_USER"
    else
        adduser -S -D -H -h /var/lib/molt -s /sbin/nologin "$SVC_USER" # busybox
    fi
    user_ids || die "cannot create the user $SVC_USER"
    say "created system user $SVC_USER"
}

# Runs a command as the service user: what molt-installer writes must belong
# to the user that upgrades itself later. setpriv takes numeric ids, so this
# works for users that exist only in a prefix (dpkg --root).
as_user() {
    if [ -n "$SVC_USER" ]; then
        setpriv --reuid="$UID_N" --regid="$GID_N" --clear-groups -- "$@"
    else
        "$@"
    fi
}

own() { # [-R] PATH...: give to the service user
    if [ "$1" = -R ]; then
        shift
        [ -z "$SVC_USER" ] || chown -R "$UID_N:$GID_N" "$@"
    else
        [ -z "$SVC_USER" ] || chown "$UID_N:$GID_N" "$@"
    fi
}

# ---- directories, keys, configuration ---------------------------------------

make_dirs() {
    mkdir -p "$ROOT" "$STATE" "$UPG" "$TRUSTED" "$ETC/molt.conf.d"
    chmod 0755 "$ROOT" "$ETC" "$TRUSTED" "$ETC/molt.conf.d"
    chmod 0750 "$STATE" "$UPG"
    own "$ROOT" "$UPG"
    # All of the state dir: a root-run molt-installer command leaves root's
    # files there (installer.lock), which the service user must open later.
    if [ -n "$SVC_USER" ]; then
        own -R "$STATE"
    elif [ "$(id -u)" -eq 0 ]; then
        chown -R 0:0 "$STATE"
    fi
}

# On PATH as the packages do (a package's own links are left alone).
link_path() {
    mkdir -p "$PREFIX/usr/sbin"
    [ -e "$PREFIX/usr/sbin/molt-agent" ] || [ -L "$PREFIX/usr/sbin/molt-agent" ] ||
        ln -s "$ROOT/current/bin/molt-agent" "$PREFIX/usr/sbin/molt-agent"
    [ -e "$PREFIX/usr/sbin/molt-installer" ] || [ -L "$PREFIX/usr/sbin/molt-installer" ] ||
        ln -s "$ROOT/bin/molt-installer" "$PREFIX/usr/sbin/molt-installer"
}

install_keys() {
    if [ -n "$KEYS" ] && [ "$(cd "$KEYS" && pwd)" != "$(cd "$TRUSTED" && pwd)" ]; then
        set -- "$KEYS"/*.pub
        [ -f "$1" ] || die "$KEYS: no *.pub key"
        for k in "$@"; do
            cp "$k" "$TRUSTED/" && chmod 0644 "$TRUSTED/$(basename "$k")"
        done
        say "trusting $# release key(s) from $KEYS in $TRUSTED"
    fi
    set -- "$TRUSTED"/*.pub
    [ -f "$1" ] || die "no trusted release key in $TRUSTED: give --keys DIR"
}

write_config() {
    [ "$KEEP_CONFIG" = 0 ] || { [ -f "$CONF" ] || die "$CONF is missing (--keep-config)"; return 0; }
    ca_line=''
    if [ -n "$CA_FILE" ]; then
        [ -r "$CA_FILE" ] || die "$CA_FILE: cannot read"
        cp "$CA_FILE" "$ETC/ca.pem.tmp" && chmod 0644 "$ETC/ca.pem.tmp" && mv -f "$ETC/ca.pem.tmp" "$ETC/ca.pem"
        ca_line="ca_file = $ETC/ca.pem"
    fi
    tmp=$ETC/.molt.conf.tmp.$$
    (
        umask 077
        {
            echo "# molt configuration, written by install.sh; see molt.conf(5)."
            echo "# Drop-ins in $ETC/molt.conf.d/*.conf (cloud-init) and MOLT_<SECTION>_<KEY>"
            echo "# environment variables override it."
            echo "[server]"
            echo "url = $URL"
            echo "access_id = $ACCESS_ID"
            echo "access_key = $ACCESS_KEY"
            [ -z "$ca_line" ] || echo "$ca_line"
            echo
            echo "[agent]"
            [ -z "$NAME" ] || echo "name = $NAME"
            [ "$EPHEMERAL" = 0 ] || echo "ephemeral = true"
            echo "state_dir = $STATE"
            echo "upgrade_dir = $UPG"
            echo "keys_dir = $TRUSTED"
            [ -z "$PREFIX" ] || echo "run_dir = $PREFIX/run/molt"
            echo
            echo "[install]"
            echo "root = $ROOT"
        } >"$tmp"
    )
    mv -f "$tmp" "$CONF"
    say "wrote $CONF"
}

# The secrets in it: 0600 for an install without a service user; with one,
# 0640 root:USER, so the agent reads it but cannot rewrite what it trusts.
config_mode() {
    [ -f "$CONF" ] || return 0
    if [ -n "$SVC_USER" ]; then
        chown "0:$GID_N" "$CONF" && chmod 0640 "$CONF"
    else
        chmod 0600 "$CONF"
    fi
}

# ---- install or switch ----------------------------------------------------------

# molt_version_cmp of lib/version.c: digit runs numerically, a digit run after
# a separator, other bytes by value. Prints -1, 0 or 1.
version_cmp() {
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN {
        while (a != "" || b != "") {
            ca = substr(a, 1, 1); cb = substr(b, 1, 1)
            da = ca ~ /[0-9]/; db = cb ~ /[0-9]/
            if (da && db) {
                match(a, /^[0-9]+/); ra = substr(a, 1, RLENGTH); a = substr(a, RLENGTH + 1)
                match(b, /^[0-9]+/); rb = substr(b, 1, RLENGTH); b = substr(b, RLENGTH + 1)
                sub(/^0+/, "", ra); sub(/^0+/, "", rb)
                if (length(ra) != length(rb)) { print (length(ra) < length(rb) ? -1 : 1); exit }
                if (ra != rb) { print (ra < rb ? -1 : 1); exit }
                continue
            }
            if (a == "" || b == "") { print (a != "" ? 1 : -1); exit }
            if (da != db) { print (da ? 1 : -1); exit }
            if (ca != cb) { print (ca < cb ? -1 : 1); exit }
            a = substr(a, 2); b = substr(b, 2)
        }
        print 0
    }'
}

link_version() { # ROOT NAME: the version a link of the layout names
    readlink "$1/$2" 2>/dev/null | sed 's|^versions/||'
}

installer() { # the trusted installer, as the service user, on our root and state dir
    as_user "$INSTALLER" "$@" --config "$CONF" --root "$ROOT" --state-dir "$STATE"
}

# 0 when a process holds the lock file (flock(1) from util-linux).
lock_held() {
    [ -e "$1" ] || return 1
    ! flock -n "$1" true 2>/dev/null
}

agent_status_json() {
    "$ROOT/current/bin/molt-agent" --config "$CONF" status --json 2>/dev/null
}

# 0 once the agent now running is VERSION and the server acknowledged one of its heartbeats.
agent_proven() {
    agent_status_json | tr -d ' \n' | grep -q "\"version\":\"$1\"" &&
        agent_status_json | tr -d ' \n' | grep -q '"heartbeats":[1-9]'
}

# How the running agent (if any) gets to the new current: prints supervise,
# systemd, unknown or none.
how_running() {
    if lock_held "$STATE/launch.lock"; then
        echo supervise
    elif lock_held "$STATE/agent.lock"; then
        if [ -z "$PREFIX" ] && [ -d /run/systemd/system ] &&
            systemctl is-active --quiet molt-agent 2>/dev/null; then
            echo systemd
        else
            echo unknown
        fi
    else
        echo none
    fi
}

commit_now() { # TASK VERSION WHY
    installer commit --task "$1" >/dev/null || die "commit of $2 failed"
    say "switched to $2 ($3)"
}

# Switches from the current version to the verified build staged in DIR.
switch_to() { # DIR VERSION CURRENT
    dir=$1 v=$2 cur=$3
    [ ! -e "$STATE/upgrade.json" ] ||
        die "the agent is carrying out an upgrade task ($STATE/upgrade.json): retry when it has ended"
    task=$(date +%s)$$
    mode=$(how_running)
    installer apply "$dir" --task "$task" --build-version "$v" >/dev/null ||
        die "molt-installer apply of $v refused or failed (see above); $cur stays current"
    case "$mode" in
    none)
        commit_now "$task" "$v" "no agent running to prove it: committed; it runs at the next start"
        return 0 ;;
    unknown)
        commit_now "$task" "$v" "committed; restart the agent (its service manager is unknown) to run it"
        return 0 ;;
    systemd)
        # The package may just have replaced the unit file.
        systemctl daemon-reload || true
        systemctl restart molt-agent || true ;;
    supervise) ;; # the supervisor notices the new current and starts it on trial
    esac
    say "$v is on trial (task $task); waiting up to ${HEALTH_WAIT}s for its first acknowledged heartbeat"
    i=0
    while [ "$i" -lt $((HEALTH_WAIT * 5)) ]; do
        if agent_proven "$v"; then
            installer commit --task "$task" >/dev/null ||
                die "$v heartbeated but its trial had ended: see molt-installer status"
            say "switched to $v: its heartbeat was acknowledged; committed"
            return 0
        fi
        i=$((i + 1))
        sleep 0.2
    done
    say "warning: $v did not prove itself within ${HEALTH_WAIT}s; its trial goes on, and" \
        "molt-installer rolls back to $cur at the deadline unless 'molt-installer commit" \
        "--task $task' is run"
}

# Verifies PKG into a throwaway root inside the upgrade dir (the file system of
# the install root, as apply requires): the same checks as a first install.
stage_package() {
    STAGE=$(as_user mktemp -d "$UPG/.pkg-XXXXXX")
    as_user "$INSTALLER" install "$PKG" --config "$CONF" --root "$STAGE/root" \
        --state-dir "$STAGE/state" --keys "$TRUSTED" >/dev/null ||
        { rm -rf "$STAGE"; die "$PKG: verification or staging failed (see above); nothing changed"; }
    NEW=$(link_version "$STAGE/root" current)
}

# The service user verifies the package: give it copies it can surely read
# (the originals may sit in root's home), in a directory it owns.
stage_inputs() {
    [ -n "$SVC_USER" ] || return 0
    [ -f "$PKG.statement.json" ] && [ -f "$PKG.sig" ] ||
        die "$PKG.statement.json and $PKG.sig must be beside $PKG"
    INPUTS=$(mktemp -d "$UPG/.in-XXXXXX")
    cp "$PKG" "$PKG.statement.json" "$PKG.sig" "$INPUTS/"
    cp "$INSTALLER" "$INPUTS/molt-installer"
    own -R "$INPUTS"
    PKG=$INPUTS/$(basename "$PKG")
    INSTALLER=$INPUTS/molt-installer
}

install_or_switch() {
    cur=$(link_version "$ROOT" current)
    if [ -z "$cur" ]; then
        installer install "$PKG" --keys "$TRUSTED" ||
            die "$PKG: not installed (see above)"
        return 0
    fi
    stage_package
    case "$(version_cmp "$NEW" "$cur")" in
    0) say "$NEW is already the current version under $ROOT" ;;
    -1) say "keeping $cur: it is newer than this package's $NEW (molt upgraded itself);" \
        "not downgrading. A downgrade goes through the control plane or molt-installer rollback." ;;
    1) switch_to "$STAGE/root/versions/$NEW" "$NEW" "$cur" ;;
    esac
    rm -rf "$STAGE"
}

# ---- the service ------------------------------------------------------------------

find_service_file() { # NAME: beside this script, in /usr/lib/molt, or in the source tree
    for f in "$HERE/$1" "/usr/lib/molt/$1" "$HERE/../packaging/systemd/$1" "$HERE/../packaging/sysv/$1"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

rewrite_paths() { # FILE > stdout: the unit or init script for this prefix and user
    sed -e "s|/opt/molt|$ROOT|g" -e "s|/var/lib/molt|$STATE|g" -e "s|/etc/molt|$ETC|g" \
        -e "s|^User=molt|User=${SVC_USER:-root}|" -e "s|^Group=molt|Group=${SVC_USER:-root}|" \
        -e "s|^MOLT_USER=molt|MOLT_USER=${SVC_USER:-root}|" \
        -e "s|^PIDFILE=/run/|PIDFILE=$PREFIX/run/|" -e "s|^RUN_DIR=/run/|RUN_DIR=$PREFIX/run/|" \
        -e "s|^LOGFILE=/var/log/|LOGFILE=$PREFIX/var/log/|" \
        -e "s|DEFAULTS=/etc/|DEFAULTS=$PREFIX/etc/|" "$1"
}

setup_service() {
    [ "$NO_SERVICE" = 0 ] || return 0
    unit=$(find_service_file molt-agent.service || true)
    init=$(find_service_file molt-agent.init || true)
    if [ -n "$PREFIX" ]; then
        # Written for inspection and for image builds; nothing runs in a prefix.
        mkdir -p "$PREFIX/etc/systemd/system" "$PREFIX/etc/init.d"
        [ -z "$unit" ] || rewrite_paths "$unit" >"$PREFIX/etc/systemd/system/molt-agent.service"
        [ -z "$init" ] || { rewrite_paths "$init" >"$PREFIX/etc/init.d/molt-agent" &&
            chmod 0755 "$PREFIX/etc/init.d/molt-agent"; }
        say "service files written under $PREFIX/etc (not enabled: --prefix)"
        return 0
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        [ -n "$unit" ] || die "molt-agent.service not found beside $PROG"
        rewrite_paths "$unit" >/etc/systemd/system/molt-agent.service
        systemctl daemon-reload
        systemctl enable molt-agent >/dev/null 2>&1
        systemctl restart molt-agent
        say "molt-agent.service enabled and started"
    elif [ -d /etc/init.d ]; then
        [ -n "$init" ] || die "molt-agent.init not found beside $PROG"
        rewrite_paths "$init" >/etc/init.d/molt-agent
        chmod 0755 /etc/init.d/molt-agent
        if command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d molt-agent defaults >/dev/null
        elif command -v chkconfig >/dev/null 2>&1; then
            chkconfig --add molt-agent
        fi
        /etc/init.d/molt-agent restart
    else
        say "no systemd and no /etc/init.d: start '$ROOT/bin/molt-installer launch --supervise' yourself"
    fi
}

# ---- main -------------------------------------------------------------------------

INPUTS=''
trap '[ -z "$INPUTS" ] || rm -rf "$INPUTS"' EXIT
ensure_user
make_dirs
install_keys
write_config
config_mode
stage_inputs
install_or_switch
link_path
setup_service
say "done: $(link_version "$ROOT" current) is current under $ROOT"
