# pcfs_model.sh: molt-powercutfs keeps to its model (README.md): what was made
# durable by fsync of the file or of its directory survives a power cut, and
# nothing else does.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/tap.sh"
. "$MOLT_TOP_SRCDIR/tests/powercut/pcfs_lib.sh"
pcfs_need

TOP=$(mktemp -d "${TMPDIR:-/tmp}/molt-pcfs-XXXXXX")
trap 'pcfs_cut; rm -rf "$TOP"' EXIT
mkdir "$TOP/durable" "$TOP/mnt"
PCFS_LOG=$TOP/pcfs.log
M=$TOP/mnt
tap_plan 25

pcfs_mount_at "$TOP/durable" "$TOP/live" "$M"
ok $? "mounts"

# durable baseline: a (file "one"), d/ (dir), cur -> v1
echo one >"$M/a" && mkdir "$M/d" && ln -s v1 "$M/cur" && pcfs_fsync "$M/a" "$M" "$M/d"
echo kept >"$M/k" && pcfs_fsync "$M/k" "$M"        # file and name synced
echo name-only >"$M/e" && pcfs_fsync "$M"          # only its name synced
echo more >>"$M/a"                                 # data not synced
echo new >"$M/n"                                   # never synced
pcfs_reboot
is "$(cat "$M/a")" "one" "an fsync'd file survives; data written after it is lost"
ok "$([ ! -e "$M/n" ]; echo $?)" "a file never synced is lost"
is "$(cat "$M/k")" "kept" "a file fsync'd with its directory survives"
is "$(stat -c %s "$M/e" 2>/dev/null)" "0" "a name synced without its file's data is an empty file"
is "$(readlink "$M/cur")" "v1" "a symlink synced with its directory survives"

mv "$M/a" "$M/b"
pcfs_reboot
ok "$([ -e "$M/a" ] && [ ! -e "$M/b" ]; echo $?)" "an unsynced rename is lost"
mv "$M/a" "$M/b" && pcfs_fsync "$M"
pcfs_reboot
ok "$([ ! -e "$M/a" ] && [ "$(cat "$M/b")" = one ]; echo $?)" "fsync of the directory after a rename keeps it"

echo two >"$M/b.tmp" && pcfs_fsync "$M/b.tmp" && mv "$M/b.tmp" "$M/b"
pcfs_reboot
is "$(cat "$M/b")" "one" "atomic replace without fsync of the directory: the old file after the cut"
echo two >"$M/b.tmp" && pcfs_fsync "$M/b.tmp" && mv "$M/b.tmp" "$M/b" && pcfs_fsync "$M"
pcfs_reboot
ok "$([ "$(cat "$M/b")" = two ] && [ ! -e "$M/b.tmp" ]; echo $?)" "atomic replace with fsync of the directory: the new file"

echo t >"$M/t.tmp" && mv "$M/t.tmp" "$M/t" && pcfs_fsync "$M"
pcfs_reboot
is "$(stat -c %s "$M/t" 2>/dev/null)" "0" "a renamed file whose data was never synced is empty after the cut"

ln -s v2 "$M/cur.new" && mv -T "$M/cur.new" "$M/cur"
pcfs_reboot
is "$(readlink "$M/cur")" "v1" "symlink replacement by rename without fsync of the directory is lost"
ln -s v2 "$M/cur.new" && mv -T "$M/cur.new" "$M/cur" && pcfs_fsync "$M"
pcfs_reboot
ok "$([ "$(readlink "$M/cur")" = v2 ] && [ ! -L "$M/cur.new" ]; echo $?)" "symlink replacement with fsync of the directory is kept"

mkdir "$M/sub" && echo s >"$M/sub/f" && pcfs_fsync "$M/sub/f" "$M/sub"
pcfs_reboot
ok "$([ ! -e "$M/sub" ]; echo $?)" "a synced file in a new directory whose parent was not synced is lost"
mkdir "$M/sub" && echo s >"$M/sub/f" && pcfs_fsync "$M/sub/f" "$M/sub" "$M"
pcfs_reboot
is "$(cat "$M/sub/f" 2>/dev/null)" "s" "the same with the parent synced survives"

rm "$M/k"
pcfs_reboot
is "$(cat "$M/k" 2>/dev/null)" "kept" "an unsynced unlink is lost"
rm "$M/k" && pcfs_fsync "$M"
pcfs_reboot
ok "$([ ! -e "$M/k" ]; echo $?)" "an unlink with fsync of the directory is kept"

echo x >"$M/d/x" && pcfs_fsync "$M/d/x" "$M/d" && mv "$M/d/x" "$M/x" && pcfs_fsync "$M/d"
pcfs_reboot
ok "$([ -e "$M/d/x" ] && [ ! -e "$M/x" ]; echo $?)" "a rename to another directory is not durable by syncing the old one"
mv "$M/d/x" "$M/x" && pcfs_fsync "$M"
pcfs_reboot
ok "$([ ! -e "$M/d/x" ] && [ "$(cat "$M/x")" = x ]; echo $?)" "syncing the new directory makes the move durable"

# The staging pattern: a tree built and synced, then renamed into place.
mkdir "$M/versions" && pcfs_fsync "$M" && mkdir -p "$M/stage/bin"
echo agent >"$M/stage/bin/agent" && pcfs_fsync "$M/stage/bin/agent" "$M/stage/bin" "$M/stage"
mv "$M/stage" "$M/versions/2.0"
pcfs_reboot
ok "$([ ! -e "$M/versions/2.0" ] && [ ! -e "$M/stage" ]; echo $?)" "a staged tree never named durably is lost"
mkdir -p "$M/stage/bin" && echo agent >"$M/stage/bin/agent"
pcfs_fsync "$M/stage/bin/agent" "$M/stage/bin" "$M/stage"
mv "$M/stage" "$M/versions/2.0" && pcfs_fsync "$M/versions"
pcfs_reboot
is "$(cat "$M/versions/2.0/bin/agent" 2>/dev/null)" "agent" "a synced tree renamed into a synced directory survives whole"

echo old >"$M/m" && pcfs_fsync "$M/m" "$M" && echo newer >"$M/m"
pcfs_reboot
is "$(cat "$M/m")" "old" "rewriting a durable file without fsync keeps the old data"
chmod 700 "$M/m" && pcfs_fsync "$M/m"
pcfs_reboot
is "$(stat -c %a "$M/m")" "700" "the mode is durable with the file's fsync"

pcfs_cut
ok "$(mountpoint -q "$M"; [ $? -ne 0 ]; echo $?)" "the cut unmounts"
ok "$([ ! -e "$TOP/durable/.pcfs-orphans/x" ]; echo $?)" "orphans stay out of the tree"
tap_done
