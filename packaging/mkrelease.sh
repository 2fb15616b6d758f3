#!/usr/bin/env bash
# mkrelease.sh: makes one signed release of molt from a configured and built
# build directory: lays out the version tree (bin/molt-agent, bin/molt-installer,
# share/molt/...), then molt-pack build and sign, and lists the build in the
# release channel beside it (docs/security.md 6), signed with the same key.
# Used by the installer and upgrade tests, the demo and the benchmarks. Prints
# the package path.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: mkrelease.sh --build-dir B --version V (--keys DIR | --key FILE) --out BUILDS_DIR [OPTIONS]
Makes BUILDS_DIR/molt-V-linux-ARCH.tar.gz (or .tar.zst) with its .statement.json and .sig,
and adds it to the release channel BUILDS_DIR/stable.channel.json (created if missing; signed).

  --build-dir B       configured and built tree: B/agent/molt-agent, B/installer/molt-installer
  --version V         the release's version
  --keys DIR          directory holding exactly one private key (*.key) to sign with
  --key FILE          the private key to sign with (instead of --keys)
  --out DIR           where the package, statement and signature go (created if missing)
  --arch A            target arch (default: this host's, as molt-pack arch says)
  --min-version M     oldest running version the release may be applied to
  --release R         release tag (default 1)
  --agent FILE        use FILE as bin/molt-agent (deliberately broken builds in tests)
  --installer FILE    use FILE as bin/molt-installer
  --compress C        gzip (default) or zstd
  --pad-mib N         add share/molt/pad.bin, N MiB of random bytes (big packages)
  --molt-pack FILE    molt-pack to use (default B/packaging/molt-pack)
  --created MS        creation time in the statement (ms since the epoch)
  --delta-from PKG    also make a delta from the earlier release PKG (repeatable):
                      OUT/molt-<its version>-to-V-linux-<arch>.delta, which the reference
                      control plane offers to hosts running that version
  --channel FILE      the channel document to list the build in (default
                      BUILDS_DIR/stable.channel.json; its name is FILE's, less .channel.json);
                      'none': list it in no channel
  --percent P         the build's rollout in the channel (default 100)
  -h, --help          show this help
EOF
}

die() { echo "mkrelease.sh: $*" >&2; exit 1; }

BUILD_DIR="" VERSION="" KEYS="" KEY="" OUT="" ARCH="" MIN="" RELEASE="" AGENT="" INSTALLER=""
COMPRESS=gzip PAD=0 MOLT_PACK="" CREATED="" CHANNEL="" PERCENT=100 DELTA_FROM=()
while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
    -h|--help) usage; exit 0 ;;
    --build-dir|--version|--keys|--key|--out|--arch|--min-version|--release|--agent|--installer|\
    --compress|--pad-mib|--molt-pack|--created|--channel|--percent|--delta-from)
        [ $# -ge 2 ] || die "$opt needs a value"
        val=$2
        shift 2
        case "$opt" in
        --build-dir) BUILD_DIR=$val ;;
        --version) VERSION=$val ;;
        --keys) KEYS=$val ;;
        --key) KEY=$val ;;
        --out) OUT=$val ;;
        --arch) ARCH=$val ;;
        --min-version) MIN=$val ;;
        --release) RELEASE=$val ;;
        --agent) AGENT=$val ;;
        --installer) INSTALLER=$val ;;
        --compress) COMPRESS=$val ;;
        --pad-mib) PAD=$val ;;
        --molt-pack) MOLT_PACK=$val ;;
        --created) CREATED=$val ;;
        --channel) CHANNEL=$val ;;
        --percent) PERCENT=$val ;;
        --delta-from) DELTA_FROM+=("$val") ;;
        esac
        ;;
    *) usage >&2; die "unknown argument: $opt" ;;
    esac
done

[ -n "$BUILD_DIR" ] && [ -n "$VERSION" ] && [ -n "$OUT" ] || { usage >&2; exit 2; }
[ -n "$KEYS$KEY" ] || die "--keys DIR or --key FILE is needed"
case "$COMPRESS" in gzip) EXT=tar.gz ;; zstd) EXT=tar.zst ;; *) die "--compress: gzip or zstd" ;; esac
case "$PAD" in ''|*[!0-9]*) die "--pad-mib: a number of MiB" ;; esac

MOLT_PACK=${MOLT_PACK:-$BUILD_DIR/packaging/molt-pack}
AGENT=${AGENT:-$BUILD_DIR/agent/molt-agent}
INSTALLER=${INSTALLER:-$BUILD_DIR/installer/molt-installer}
for f in "$MOLT_PACK" "$AGENT" "$INSTALLER"; do
    [ -f "$f" ] || die "$f: no such file (is $BUILD_DIR built?)"
done
if [ -z "$KEY" ]; then
    shopt -s nullglob
    keys=("$KEYS"/*.key)
    shopt -u nullglob
    [ ${#keys[@]} -eq 1 ] || die "$KEYS: expected exactly one *.key, found ${#keys[@]}; name one with --key"
    KEY=${keys[0]}
fi
"$MOLT_PACK" arch >/dev/null 2>&1 ||
    die "$MOLT_PACK does not run on this host (a cross build?): name one that does with --molt-pack"
ARCH=${ARCH:-$("$MOLT_PACK" arch)}

# A build that reports another version would make upgrades look as if they failed.
if [ "$AGENT" = "$BUILD_DIR/agent/molt-agent" ]; then
    reported=$("$AGENT" --version 2>/dev/null || true)
    [ "$reported" = "molt-agent $VERSION" ] ||
        echo "mkrelease.sh: warning: $AGENT reports '$reported', packaging it as $VERSION" >&2
fi

TREE=$(mktemp -d "${TMPDIR:-/tmp}/molt-release.XXXXXX")
trap 'rm -rf "$TREE"' EXIT
mkdir -p "$TREE/bin" "$TREE/share/molt" "$OUT"
cp "$AGENT" "$TREE/bin/molt-agent"
cp "$INSTALLER" "$TREE/bin/molt-installer"
chmod 0755 "$TREE/bin/molt-agent" "$TREE/bin/molt-installer"
# The upgrade worker the agent starts from its own directory (builds older
# than issue 20 have none: their agents upgrade in process).
if grep -qs 'agent/molt-worker' "$BUILD_DIR/Makefile" && [ ! -f "$BUILD_DIR/agent/molt-worker" ]; then
    die "$BUILD_DIR/agent/molt-worker: no such file (make agent/molt-worker): its agent could not upgrade"
fi
if [ -f "$BUILD_DIR/agent/molt-worker" ]; then
    cp "$BUILD_DIR/agent/molt-worker" "$TREE/bin/molt-worker"
    chmod 0755 "$TREE/bin/molt-worker"
fi
printf '%s\n' "$VERSION" > "$TREE/share/molt/VERSION"
if [ "$PAD" -gt 0 ]; then
    head -c $((PAD * 1048576)) /dev/urandom > "$TREE/share/molt/pad.bin"
fi

args=(build --quiet --version "$VERSION" --arch "$ARCH" --compress "$COMPRESS")
[ -z "$MIN" ] || args+=(--min-version "$MIN")
[ -z "$RELEASE" ] || args+=(--release "$RELEASE")
[ -z "$CREATED" ] || args+=(--created "$CREATED")
"$MOLT_PACK" "${args[@]}" "$TREE" -o "$OUT"
PKG="$OUT/molt-$VERSION-linux-$ARCH.$EXT"
"$MOLT_PACK" sign --quiet --key "$KEY" "$PKG"
CHANNEL=${CHANNEL:-$OUT/stable.channel.json}
if [ "$CHANNEL" != none ]; then
    case "$CHANNEL" in *.channel.json) ;; *) die "--channel: a file named NAME.channel.json" ;; esac
    if [ ! -e "$CHANNEL" ]; then
        name=$(basename "$CHANNEL" .channel.json)
        "$MOLT_PACK" channel create --quiet --name "$name" "$CHANNEL"
    fi
    "$MOLT_PACK" channel add --quiet --percent "$PERCENT" "$CHANNEL" "$PKG.statement.json"
    "$MOLT_PACK" channel sign --quiet --key "$KEY" "$CHANNEL"
fi
echo "$PKG"
for base in ${DELTA_FROM[@]+"${DELTA_FROM[@]}"}; do
    bv=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$base.statement.json" 2>/dev/null)
    [ -n "$bv" ] || die "--delta-from $base: no version in $base.statement.json"
    delta="$OUT/molt-$bv-to-$VERSION-linux-$ARCH.delta"
    "$MOLT_PACK" delta --quiet --from "$base" "$PKG" -o "$delta" || die "delta from $base failed"
    echo "$delta"
done
