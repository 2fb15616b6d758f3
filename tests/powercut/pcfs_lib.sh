# pcfs_lib.sh: mount, power-cut and remount molt-powercutfs for the tests in
# tests/powercut/. pcfs_need skips the whole test (TAP "1..0 # SKIP") with the
# reason when FUSE cannot be used here.
PCFS_BIN="$MOLT_TOP_BUILDDIR/tests/powercut/molt-powercutfs"
PCFS_PID=

pcfs_need() {
    local why=
    if [ "$(id -u)" != 0 ]; then why="needs root (FUSE mounts with allow_other)"
    elif [ ! -c /dev/fuse ]; then why="no /dev/fuse"
    elif [ ! -x "$PCFS_BIN" ]; then why="molt-powercutfs not built (libfuse3 missing at configure)"
    elif ! command -v fusermount3 >/dev/null 2>&1; then why="no fusermount3 (package fuse3)"
    fi
    if [ -z "$why" ]; then
        local probe
        probe=$(mktemp -d "${TMPDIR:-/tmp}/molt-pcfs-probe-XXXXXX")
        mkdir "$probe/d" "$probe/m"
        if pcfs_mount_at "$probe/d" "$probe/live" "$probe/m"; then
            pcfs_cut
        else
            why="cannot mount a FUSE file system here"
        fi
        rm -rf "$probe"
    fi
    if [ -n "$why" ]; then
        echo "1..0 # SKIP $why"
        exit 0
    fi
}

# pcfs_mount_at DURABLE LIVE MOUNTPOINT: boots (live = a copy of durable) and mounts.
pcfs_mount_at() {
    PCFS_D=$1 PCFS_L=$2 PCFS_M=$3
    "$PCFS_BIN" "$PCFS_D" "$PCFS_L" "$PCFS_M" -f -o allow_other,default_permissions \
        2>>"${PCFS_LOG:-/dev/null}" &
    PCFS_PID=$!
    local n=50
    while [ $n -gt 0 ]; do
        mountpoint -q "$PCFS_M" && return 0
        kill -0 "$PCFS_PID" 2>/dev/null || break
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# pcfs_cut: the power goes: the file system dies at once (what it had not made
# durable is gone) and the mount goes away.
pcfs_cut() {
    [ -n "$PCFS_PID" ] || return 0
    kill -KILL "$PCFS_PID" 2>/dev/null
    wait "$PCFS_PID" 2>/dev/null
    PCFS_PID=
    umount -l "$PCFS_M" 2>/dev/null || fusermount3 -u -z "$PCFS_M" 2>/dev/null
    return 0
}

# pcfs_reboot: cut, then mount again from the durable state.
pcfs_reboot() {
    pcfs_cut
    pcfs_mount_at "$PCFS_D" "$PCFS_L" "$PCFS_M"
}

# pcfs_fsync PATH...: fsync(2) each file or directory, as an application would.
pcfs_fsync() {
    "${PYTHON3:-python3}" -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)' "$@"
}

# pcfs_sync_tree DIR: fsync every file and directory under DIR (as sync(1)
# would on a disk; sync(2) does not reach FUSE).
pcfs_sync_tree() {
    "${PYTHON3:-python3}" -c 'import os, sys
for top, dirs, files in os.walk(sys.argv[1]):
    for n in files + [""]:
        p = os.path.join(top, n) if n else top
        if os.path.islink(p): continue
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)' "$1"
}

# kill_case: every process of this case (they carry MOLT_PC_CASE in their environment).
kill_case() {
    local p
    [ -n "${MOLT_PC_CASE:-}" ] || return 0
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" != $$ ] || continue
        { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "MOLT_PC_CASE=$MOLT_PC_CASE" &&
            kill -KILL "${p#/proc/}" 2>/dev/null
    done
    SUP_PID=
    return 0
}

# pcfs_manifest_valid DIR: the version directory holds every entry of its
# manifest.json with the recorded type, mode, size and sha256. Prints the
# first difference.
pcfs_manifest_valid() {
    "${PYTHON3:-python3}" -c 'import hashlib, json, os, stat, sys
d = sys.argv[1]
try:
    m = json.load(open(os.path.join(d, "manifest.json")))
except (OSError, ValueError) as e:
    sys.exit("%s: manifest.json: %s" % (d, e))
for f in m.get("files", []):
    p = os.path.join(d, f["path"])
    try:
        st = os.lstat(p)
    except OSError:
        sys.exit("%s: %s missing" % (d, f["path"]))
    t = f["type"]
    if t == "symlink":
        ok = stat.S_ISLNK(st.st_mode) and os.readlink(p) == f["target"]
    elif t == "dir":
        ok = stat.S_ISDIR(st.st_mode) and "%04o" % (st.st_mode & 0o7777) == f["mode"]
    else:
        ok = (stat.S_ISREG(st.st_mode) and st.st_size == f["size"]
              and "%04o" % (st.st_mode & 0o7777) == f["mode"]
              and hashlib.sha256(open(p, "rb").read()).hexdigest() == f["sha256"])
    if not ok:
        sys.exit("%s: %s differs from the manifest" % (d, f["path"]))' "$1" 2>&1
}

# pcfs_journal_agrees JOURNAL ROOT: the journal parses, is at rest and its
# versions are the links': committed: current is toVersion and previous
# fromVersion; rolled-back: current is fromVersion and previous is
# previousVersion or absent (dropped when incomplete); idle: current, if any,
# is an installed version. Prints the disagreement.
pcfs_journal_agrees() {
    "${PYTHON3:-python3}" -c 'import json, os, sys
jp, root = sys.argv[1], sys.argv[2]
def link(n):
    p = os.path.join(root, n)
    return os.readlink(p).split("/")[-1] if os.path.islink(p) else ""
try:
    j = json.load(open(jp))
except (OSError, ValueError) as e:
    sys.exit("journal: %s" % e)
st, cur, prev = j.get("state"), link("current"), link("previous")
want = {"committed": (j.get("toVersion"), (j.get("fromVersion"),)),
        "rolled-back": (j.get("fromVersion"), (j.get("previousVersion") or "", ""))}
if st == "idle":
    ok = not cur or os.path.isdir(os.path.join(root, "versions", cur))
elif st in want:
    ok = cur == want[st][0] and prev in want[st][1]
else:
    sys.exit("journal state %s is not at rest" % st)
if not ok:
    sys.exit("journal %s from %s to %s (previous %s) but current -> %s, previous -> %s" % (
        st, j.get("fromVersion"), j.get("toVersion"), j.get("previousVersion") or "-",
        cur or "-", prev or "-"))' "$1" "$2" 2>&1
}
