# installer_cli.sh: molt-installer's command line: every option in --help,
# usage errors (exit 2), refusals in the wrong state (exit 3), bad input
# (exit 1, nothing changed), path and configuration overrides, and the
# corrupt-journal rule (moved aside, no trial assumed, current kept).
set -u
. "$(dirname "$0")/lib/installer.sh"

tap_plan 60

help=$("$INSTALLER" --help)
for opt in --config --root --state-dir --task --build-version --keys --statement --signature \
    --supervise --reason --keep --json --help --version; do
    printf '%s\n' "$help" | grep -qE -- "^ +(-[a-zA-Z], )?$opt( |$)"
    ok $? "--help lists $opt on a line of its own"
done
for cmd in install apply launch commit rollback status gc; do
    printf '%s\n' "$help" | grep -qE "^  $cmd( |$)"
    ok $? "--help lists the $cmd command"
done

new_case cli
usage() { "$INSTALLER" "$@" >/dev/null 2>"$T/err"; echo $?; }
is "$(usage)" "2" "no command: exit 2"
is "$(usage frobnicate)" "2" "unknown command: exit 2"
is "$(usage status --frobnicate)" "2" "unknown option: exit 2"
is "$(usage apply)" "2" "apply without a directory: exit 2"
is "$(usage apply "$T")" "2" "apply without --task: exit 2"
like "$(cat "$T/err")" "apply needs --task" "and says so"
is "$(usage status --task 1)" "2" "an option of another command: exit 2"
is "$(usage status extra)" "2" "an extra argument: exit 2"
is "$(usage rollback --reason)" "2" "an option without its value: exit 2"

# Nothing installed yet.
is "$(usage launch)" "3" "launch with nothing installed: exit 3"
like "$(cat "$T/err")" "nothing installed under $ROOT" "and says so"
is "$(usage commit)" "3" "commit without a trial: exit 3"
like "$(cat "$T/err")" "no trial in progress" "and says so"

install_by_hand 1.0 steady
is "$(usage rollback)" "3" "rollback without a previous version: exit 3"
like "$(cat "$T/err")" "nothing to roll back to" "and says so"
stage 2.0 healthy 12
is "$(usage apply "$UPG/stage-2.0" --task 12x --build-version 2.0)" "1" "a bad task id: exit 1"
like "$(cat "$T/err")" "not a task id" "and says so"
rm "$UPG/stage-2.0/bin/molt-installer"
is "$(usage apply "$UPG/stage-2.0" --task 12 --build-version 2.0)" "1" "an incomplete build: exit 1"
like "$(cat "$T/err")" "missing bin/molt-installer" "naming what is missing"
[ "$(link_of current)" = 1.0 ] && [ ! -e "$STATE/journal.json" ] && [ ! -e "$ROOT/versions/2.0" ]
ok $? "nothing changed"
is "$(usage apply "$UPG/stage-2.0" --task 12)" "1" "no manifest.json and no --build-version: exit 1"

# The agent's shape: common options before the command.
"$INSTALLER" --config "$T/molt.conf" --root "$ROOT" --state-dir "$STATE" apply "$UPG/stage-2.0" \
    --task 12 --build-version 2.0 >/dev/null 2>"$T/err"
is "$?" "1" "common options may come before the command"
like "$(cat "$T/err")" "missing bin/molt-installer" "(the same apply as above)"

# Paths: relative ones are made absolute; options and environment override the file.
out=$(cd "$T" && "$INSTALLER" status --root root --state-dir state)
like "$out" "root: +$T/root" "a relative --root is made absolute"
out=$(MOLT_INSTALL_ROOT=$T/elsewhere "$INSTALLER" status)
like "$out" "root: +$T/elsewhere" "MOLT_INSTALL_ROOT overrides the configuration"
printf '[install]\nroot = %s\ntrial_timeout = soon\n' "$ROOT" >"$T/bad.conf"
is "$(usage status --config "$T/bad.conf")" "1" "a bad configuration: exit 1"
like "$(cat "$T/err")" "configuration: .*bad.conf:3: install.trial_timeout" "naming file and line"

# gc never empties an upgrade_dir that holds the state or the install.
printf '[agent]\nstate_dir = %s\nupgrade_dir = %s\n[install]\nroot = %s\n' "$STATE" "$STATE" "$ROOT" \
    >"$T/overlap.conf"
"$INSTALLER" gc --config "$T/overlap.conf" >/dev/null 2>"$T/err"
is "$?" "1" "gc refuses an upgrade_dir that is the state dir"
like "$(cat "$T/err")" "overlaps" "and says why"
[ -f "$STATE/installer.lock" ] && [ -x "$ROOT/versions/1.0/bin/molt-agent" ]
ok $? "nothing was removed"
printf '[agent]\nstate_dir = %s\nupgrade_dir = %s\n[install]\nroot = %s\n' "$STATE" "$ROOT/upgrade" "$ROOT" \
    >"$T/inside.conf"
mkdir -p "$ROOT/upgrade/old-task"
"$INSTALLER" gc --config "$T/inside.conf" >/dev/null 2>&1
ok $? "an upgrade_dir inside the root (not in versions/ or bin/) is fine"
[ ! -e "$ROOT/upgrade/old-task" ] && [ -x "$ROOT/versions/1.0/bin/molt-agent" ]
ok $? "and is cleaned"

# A corrupt journal: status reports it and changes nothing; the launcher moves
# it aside, assumes no trial and keeps current as it is (here: the new version).
new_case corrupt
install_by_hand 1.0 steady
make_version "$ROOT/versions/2.0" 2.0 steady
ln -sfn versions/2.0 "$ROOT/current"
ln -sfn versions/1.0 "$ROOT/previous"
cp "$ROOT/versions/2.0/bin/molt-installer" "$ROOT/bin/molt-installer"
printf '{"format": 1, "state": "tri' >"$STATE/journal.json"
out=$(inst status)
like "$out" "journal: +CORRUPT: .*truncated" "status reports a corrupt journal"
is "$(cat "$STATE/journal.json")" '{"format": 1, "state": "tri' "and leaves it alone"
start_supervisor
wait_for 10 has_event_like '^start 2\.0 '
ok $? "the launcher starts current as it is"
is "$(jfield state)" "idle" "with a fresh idle journal"
ls "$STATE"/journal.json.corrupt-* >/dev/null 2>&1
ok $? "the corrupt journal is kept aside for diagnosis"
like "$(cat "$T/supervisor.log")" "error installer.journal_corrupt .*action=\"no trial assumed" "and logged clearly"
is "$(link_of current) $(link_of previous)" "2.0 1.0" "no link was changed"
stop_supervisor

tap_done
