# tap.sh: TAP helpers sourced by the e2e shell tests. Each test script calls
# tap_plan N, then ok/is/like per check; tap_done exits non-zero on failure.
# Scripts get MOLT_TOP_SRCDIR, MOLT_TOP_BUILDDIR and MOLT_BUILD_VERSION from make.
TAP_N=0
TAP_FAILED=0
: "${MOLT_TOP_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${MOLT_TOP_BUILDDIR:=$MOLT_TOP_SRCDIR}"

tap_plan() { echo "1..$1"; }

ok() { # ok CONDITION_EXIT_CODE DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $TAP_N - $2"
    else
        echo "not ok $TAP_N - $2"
        TAP_FAILED=$((TAP_FAILED + 1))
    fi
}

is() { # is GOT EXPECTED DESCRIPTION
    local rc=0
    [ "$1" = "$2" ] || rc=1
    ok "$rc" "$3"
    [ "$rc" -eq 0 ] || printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
}

like() { # like GOT REGEX DESCRIPTION
    local rc=0
    printf '%s' "$1" | grep -qE -- "$2" || rc=1
    ok "$rc" "$3"
    [ "$rc" -eq 0 ] || printf '#   got:     %s\n#   pattern: %s\n' "$(printf '%s' "$1" | head -c 600)" "$2"
}

# Fault points (MOLT_FAULT, lib/fault.h) exist only in a build configured
# --enable-fault-points (autogen.sh's default); a test driving them SKIPs elsewhere.
TAP_NO_FAULT_POINTS="MOLT_FAULT needs a build configured --enable-fault-points"
tap_have_fault_points() { grep -qs '^#define MOLT_FAULT_POINTS 1$' "$MOLT_TOP_BUILDDIR/config.h"; }
tap_need_fault_points() { # the whole test SKIPs (before tap_plan) without them
    tap_have_fault_points && return 0
    echo "1..0 # SKIP $TAP_NO_FAULT_POINTS"
    exit 0
}
tap_skip() { # tap_skip N REASON: N checks skipped
    local i
    for ((i = 0; i < $1; i++)); do TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $2"; done
}

tap_diag() { printf '# %s\n' "$*"; }

tap_done() { [ "$TAP_FAILED" -eq 0 ]; exit $?; }
