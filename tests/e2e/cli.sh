# cli.sh: every program answers --help and --version, with the configured build version.
. "$(dirname "$0")/tap.sh"

progs="agent/molt-agent installer/molt-installer packaging/molt-pack"
tap_plan 9
for p in $progs; do
    bin="$MOLT_TOP_BUILDDIR/$p"
    name=$(basename "$p")
    out=$("$bin" --version 2>&1)
    is "$out" "$name $MOLT_BUILD_VERSION" "$name --version prints the build version"
    out=$("$bin" --help 2>&1)
    like "$out" "^Usage: $name" "$name --help prints usage"
    "$bin" --definitely-not-an-option >/dev/null 2>&1
    rc=$?
    [ "$rc" -ne 0 ]
    ok $? "$name rejects an unknown option (exit $rc)"
done
tap_done
