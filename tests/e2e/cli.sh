# cli.sh: every program answers --help and --version, with the configured build version.
set -u
. "$(dirname "$0")/lib/tap.sh"

progs="agent/molt-agent installer/molt-installer packaging/molt-pack"
tap_plan 30
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

# Every subcommand answers --help with its own usage, pointing at a man page.
subhelp() { # PROG MANPAGE COMMAND...
    local bin="$MOLT_TOP_BUILDDIR/$1" name man=$2 c out
    name=$(basename "$1")
    shift 2
    for c in "$@"; do
        out=$("$bin" "$c" --help 2>&1)
        if [[ "$out" == "Usage: $name "*"$c"* && "$out" == *"$man"* && "$out" != *docs/* ]]; then
            ok 0 "$name $c --help: its own usage, naming $man"
        else
            ok 1 "$name $c --help: its own usage, naming $man (got: ${out%%$'\n'*})"
        fi
    done
}
subhelp agent/molt-agent "molt-agent(8)" run status image-prep check-config upgrade cancel rollback
subhelp installer/molt-installer "molt-installer(8)" install apply launch commit rollback status gc
subhelp packaging/molt-pack "molt-pack(1)" keygen build sign verify keyid arch channel
tap_done
