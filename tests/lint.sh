#!/usr/bin/env bash
# lint.sh: static analysis of molt's C sources, what `make lint` runs: no
# circle of includes or calls among the files of agent/ nor among those of lib/
# (tests/depcycles.py: #include "..." lines, and nm on the built objects),
# the log event names (events: one scheme, <program-or-module>.<event> in
# snake case, e.g. installer.trial_failed), cppcheck (suppressions in
# tests/cppcheck.supp), clang-tidy (.clang-tidy) and scan-build (clang's
# analyzer over a full build in a scratch directory). Each exclusion is
# justified where it is configured. Exits 1 on any finding.
#
#   tests/lint.sh [--builddir DIR] [--only cycles|events|cppcheck|clang-tidy|scan-build]...
#
# DIR is a configured build directory (for config.h; cycles builds it for the
# objects); by default the current directory when it holds one. Tools: nm,
# python3, cppcheck, clang-tidy, scan-build (Debian: binutils python3 cppcheck
# clang-tidy clang-tools).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=
ONLY=()
while [ $# -gt 0 ]; do
    case $1 in
    --builddir) BUILD=$2; shift 2 ;;
    --only) ONLY+=("$2"); shift 2 ;;
    *) echo "usage: lint.sh [--builddir DIR] [--only CHECK]..." >&2; exit 2 ;;
    esac
done
[ -n "$BUILD" ] || BUILD=$PWD
[ -f "$BUILD/config.h" ] || { echo "lint.sh: $BUILD has no config.h: configure a build first" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
wanted() { [ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " == *" $1 "* ]]; }

cd "$SRC" || exit 2
SOURCES=(lib/*.c agent/*.c installer/*.c packaging/molt-pack*.c)
DEPS="libcurl json-c libarchive libcrypto"
CFLAGS_DEPS=$(pkg-config --cflags $DEPS 2>/dev/null)
JOBS=$(nproc 2>/dev/null || echo 2)
failed=()

run_cycles() {
    command -v nm >/dev/null || { echo "lint: nm not installed (binutils)"; return 1; }
    # The call graph comes from the objects: bring them up to date first.
    make -s -C "$BUILD" all >/dev/null || { echo "lint: the build failed"; return 1; }
    "${PYTHON3:-/usr/bin/python3}" "$SRC/tests/depcycles.py" --builddir "$BUILD" \
        "$SRC/agent" "$SRC/lib"
}

run_cppcheck() {
    command -v cppcheck >/dev/null || { echo "lint: cppcheck not installed"; return 1; }
    # __clang_analyzer__ makes err.h state that error returns are negative.
    cppcheck --enable=warning,portability,performance --std=c11 --inline-suppr \
        --suppressions-list=tests/cppcheck.supp --error-exitcode=1 --quiet -j "$JOBS" \
        -I lib -I agent -I "$BUILD" -D_GNU_SOURCE -DHAVE_CONFIG_H -D__clang_analyzer__ \
        "${SOURCES[@]}"
}

run_clang_tidy() {
    command -v clang-tidy >/dev/null || { echo "lint: clang-tidy not installed"; return 1; }
    local out rc
    out=$(mktemp)
    # One file per process, JOBS at a time; .clang-tidy makes every warning an error.
    printf '%s\n' "${SOURCES[@]}" | xargs -P "$JOBS" -I{} clang-tidy --quiet {} -- -std=c11 \
        -D_GNU_SOURCE -DHAVE_CONFIG_H -I"$BUILD" -Ilib -Iagent $CFLAGS_DEPS >"$out" 2>/dev/null
    rc=$?
    grep -E '(warning|error):' "$out"
    [ "$rc" -eq 0 ] && ! grep -qE '(warning|error):' "$out"
    rc=$?
    rm -f "$out"
    return "$rc"
}

run_scan_build() {
    command -v scan-build >/dev/null || { echo "lint: scan-build not installed (clang-tools)"; return 1; }
    local dir rc
    dir=$(mktemp -d "${TMPDIR:-/tmp}/molt-scan-build-XXXXXX")
    # It builds a copy of the distributed sources (make distdir): configure
    # refuses a second build of a tree configured in place, as CI's is.
    # Same exclusions as .clang-tidy (deadcode.DeadStores: the rc convention).
    (
        make -s -C "$BUILD" distdir distdir="$dir/src" >"$dir/distdir.log" 2>&1 &&
            cd "$dir" &&
            scan-build --use-cc=clang "$dir/src/configure" -q >configure.log 2>&1 &&
            scan-build --use-cc=clang --status-bugs -o "$dir/report" \
                -disable-checker deadcode.DeadStores -disable-checker valist.Uninitialized \
                make -j "$JOBS" >make.log 2>&1
    )
    rc=$?
    grep -sE 'scan-build: ([0-9]+ bugs? found|No bugs found)' "$dir/make.log"
    if [ "$rc" -ne 0 ]; then
        echo "lint: scan-build failed or found bugs; reports kept in $dir/report, logs in $dir"
        return 1
    fi
    rm -rf "$dir"
}

# Every molt_log*() event is a string literal named <program-or-module>.<event>,
# both parts snake case, so logs grep the same way across the programs.
run_events() {
    "${PYTHON3:-python3}" - "${SOURCES[@]}" <<'PY'
import re, sys
call = re.compile(r'\bmolt_log(?:_(?:error|warn|info|debug))?\(\s*((?:MOLT_LOG_[A-Z]+|level)\s*,\s*)?([^,)]*)')
name = re.compile(r'"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*"$')
bad = 0
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    for m in call.finditer(text):
        if path.startswith("lib/log.") or m.group(2).strip() in ("ev", "event"):
            continue    # the logger itself, its macros, and the worker's lines relayed
        if not name.match(m.group(2).strip()):
            line = text.count("\n", 0, m.start()) + 1
            print(f"{path}:{line}: log event {m.group(2).strip()} is not \"<program-or-module>.<event>\"")
            bad = 1
sys.exit(bad)
PY
}

wanted cycles && { echo "== cycles"; run_cycles || failed+=(cycles); }
wanted events && { echo "== events"; run_events || failed+=(events); }
wanted cppcheck && { echo "== cppcheck"; run_cppcheck || failed+=(cppcheck); }
wanted clang-tidy && { echo "== clang-tidy"; run_clang_tidy || failed+=(clang-tidy); }
wanted scan-build && { echo "== scan-build"; run_scan_build || failed+=(scan-build); }
if [ ${#failed[@]} -gt 0 ]; then
    echo "lint: findings from: ${failed[*]}"
    exit 1
fi
echo "lint: no findings"
