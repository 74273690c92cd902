#!/bin/bash
# tests/launcher/rmkill.t: container rm interrupted and raced.  `strata rm
# -v` of a stopped container (a file in its writable layer, an anonymous
# volume) is killed with SIGKILL, children included (tests/helpers/killat
# -f), at every syscall from its first change to the store on (as root;
# rootless at each logged syscall and every 7th stop), and `rm -f
# -v` of a running one at each logged syscall and every 20th stop.  After
# each kill the container is listed whole (it starts, or runs, and sees
# its layer and volume), listed dead with its removal in progress (start
# refuses it), or gone; one more `rm -f -v` then leaves no container
# directory, .rm-* leftover, volume, process or mount.  Also: the .rm-<id>
# left by an rm killed after its commit is deleted by the next rm of that
# id and by any other rm, and `start` racing `rm -f` never leaves a
# container running that is no longer listed.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

KA=$HELPERS/killat
[ -x "$KA" ] || t_skip_all "$KA is not built"
t_need jq
CDIR=$ROOT/containers
CWANT=$(printf 'kept\nanon')

# mkvictim [MODE]: a container "victim" (id VID) with /keep in its
# writable layer and an anonymous volume holding a; its command prints
# them, then (MODE "waiting" or "running") sleeps; "running" starts it.
mkvictim() {
	local wait=""
	[ "${1:-stopped}" = stopped ] || wait='; exec sleep 100'
	VID=$(st create --name victim -v /anon --rootfs-layers "$LAYERS" \
		sh -c "cat /keep /anon/a$wait") || return 1
	mkdir -p "$CDIR/$VID/upper" && echo kept >"$CDIR/$VID/upper/keep" &&
		echo anon >"$ROOT/volumes/$(st volume ls -q)/_data/a" || return 1
	[ "${1:-}" != running ] || st start victim >/dev/null
}

mounts_of() { grep -l -- "$ROOT/" /proc/[0-9]*/mountinfo 2>/dev/null; }
# procs: processes whose command line names a path under $ROOT (lch.sh's
# procs_of forks twice per process: too slow for hundreds of rounds).
procs() { grep -la -- "$ROOT/" /proc/[0-9]*/cmdline 2>/dev/null; }
no_procs() { [ -z "$(procs)" ]; }

# state: the victim's State in `ps -a` ("" when not listed).
state() { st ps -a --format json | jq -r --arg id "$VID" 'select(.ID == $id) | .State'; }

# after_kill MODE: prints what is wrong right after a kill of an rm of a
# MODE victim; sets VSTATE (so it runs outside $(...)).  A victim listed
# whole starts: a stopped one's command prints what it sees, a running
# one's is looked at with exec.
after_kill() {
	local out
	VSTATE=$(state 2>&1)
	case $VSTATE in
	"") ;;
	created | exited)
		if [ "$1" = stopped ]; then
			out=$(st start -a victim 2>&1)
		else
			out=$(st start victim >/dev/null 2>&1 && st exec victim cat /keep /anon/a 2>&1)
		fi
		[ "$out" = "$CWANT" ] || echo "listed $VSTATE, then started: $out"
		;;
	running)
		out=$(st exec victim cat /keep /anon/a 2>&1)
		[ "$out" = "$CWANT" ] || echo "listed running, exec prints: $out"
		;;
	dead)
		out=$(st start victim 2>&1) && echo "listed dead, start succeeds"
		grep -q 'is being removed' <<<"$out" || echo "listed dead, start says: $out"
		[ "$(state)" = dead ] || echo "listed dead, then $(state) after start"
		;;
	*) echo "listed as $VSTATE" ;;
	esac
	return 0
}

# after_rerun: `rm -f -v` once more; prints what is wrong.
after_rerun() {
	local out rc
	out=$(st rm -f -v "$VID" 2>&1)
	rc=$?
	if [ -n "$VSTATE" ] && [ $rc != 0 ]; then
		echo "rerun fails: $out"
	elif [ -z "$VSTATE" ] && ! grep -q 'no such container' <<<"$out"; then
		echo "rerun of a committed rm: rc $rc: $out"
	fi
	out=$(ls -A "$CDIR")
	[ -z "$out" ] || echo "left in containers/: $out"
	out=$(st volume ls -q)
	[ -z "$out" ] || echo "volumes left: $out"
	out=$(procs)
	[ -z "$out" ] || echo "processes left: $out"
	out=$(mounts_of)
	[ -z "$out" ] || echo "mounts left in $out"
	# The next round starts from an empty store even when this one failed.
	rm -rf "${CDIR:?}"/* "${CDIR:?}"/.rm-* 2>/dev/null
	return 0
}

# first_change LOG: the stop of the first logged syscall that is not an
# open or a mkdir of a directory that exists (before it the store is only
# read).
first_change() { awk '$2 != "open" && $2 != "mkdir" { print $1; exit }' "$1"; }

# reset: an empty store for the next part, even after a failure.
reset() {
	local ids
	ids=$(st ps -a -q)
	[ -z "$ids" ] || st rm -f -v $ids >/dev/null 2>&1
	rm -rf "${CDIR:?}"/* "${CDIR:?}"/.rm-* 2>/dev/null
	ids=$(st volume ls -q)
	[ -z "$ids" ] || st volume rm -f $ids >/dev/null 2>&1
	return 0
}

# ---- the commit's leftover ----

mkvictim
"$KA" -f -c "$T/count" -l "$T/log" "$S" --root "$ROOT" rm -v victim >/dev/null
t_is "$(ls -A "$CDIR")" "" "rm -v to the end leaves nothing"
# Stops vary by a few from one rm to the next: aim between the first
# rename (the state marked) and the commit (the last before the fork of
# the deleting child), and between the commit and that fork.
fork=$(awk '$2 == "fork" { print $1; exit }' "$T/log")
mark=$(awk '$2 == "rename" { print $1; exit }' "$T/log")
commit=$(awk -v f="$fork" '$2 == "rename" && $1 < f { c = $1 } END { print c }' "$T/log")
t_ok "rm renames the state, then the directory, then forks" \
	test -n "$fork" -a -n "$mark" -a "${commit:-0}" -gt "${mark:-0}"

mkvictim
"$KA" -f -n $(((commit + fork) / 2)) "$S" --root "$ROOT" rm -v victim >/dev/null 2>&1
t_is "$(ls -A "$CDIR")" ".rm-$VID" "rm killed after its commit leaves .rm-<id>"
t_is "$(st ps -a -q)" "" "ps -a does not list it"
t_is "$(rc st start "$VID")" "1" "start cannot find it"
out=$(st rm "$VID" 2>&1)
t_ok "rm of that id again: no such container" grep -q 'no such container' <<<"$out"
t_is "$(ls -A "$CDIR")" "" "and the leftover is gone"

reset
mkvictim
"$KA" -f -n $(((commit + fork) / 2)) "$S" --root "$ROOT" rm -v victim >/dev/null 2>&1
id=$(st create --rootfs-layers "$LAYERS" true)
t_is "$(st rm "$id")" "$id" "rm of another container"
t_is "$(ls -A "$CDIR")" "" "deletes the leftover too"

# ---- killed after the mark: a removal in progress ----

reset
mkvictim
"$KA" -f -n $(((mark + commit) / 2)) "$S" --root "$ROOT" rm -v victim >/dev/null 2>&1
t_is "$(state)" "dead" "rm killed after marking the container: ps -a lists it dead"
t_is "$(st ps -a --format json | jq -r .Status)" "Removal In Progress" \
	"with its removal in progress"
out=$(st start victim 2>&1)
t_is "$?" "1" "start refuses it"
t_ok "saying it is being removed" grep -q "container victim is being removed" <<<"$out"
t_is "$(procs)$(mounts_of)" "" "and runs nothing"
t_is "$(rc st exec victim true)" "126" "exec refuses it"
t_is "$(st rm -v victim)" "victim" "rm -v finishes the removal"
t_is "$(ls -A "$CDIR")$(st volume ls -q)" "" "nothing left"

# ---- start racing rm -f ----

# rm -f from 0 to 200 ms after start began: some rms find it starting, and
# the container must then either run (and be removed by the next rm -f)
# or never start; nothing may run on without a container directory.
reset
bad=0
for d in $(seq 0 0.005 0.2); do
	mkvictim waiting
	st start victim >/dev/null 2>&1 &
	p=$!
	sleep "$d"
	st rm -f -v victim >/dev/null 2>&1
	wait $p
	VSTATE=$(state)
	[ -z "$VSTATE" ] || st rm -f -v victim >/dev/null 2>&1
	wait_for no_procs
	out=$(ls -A "$CDIR"; procs; mounts_of; st volume ls -q)
	[ -z "$out" ] || { bad=$((bad + 1)) && t_diag "rm -f $d s after start (${VSTATE:-gone}): left $out"; }
	# What a failed round left, for the next one.
	for p in $(procs | cut -d/ -f3); do kill -9 "$p" 2>/dev/null; done
	reset
done
t_is "$bad" 0 "start racing rm -f, 41 times: nothing runs or stays behind"
t_diag "races done (${SECONDS} s)"

# ---- killed at every step ----

reset
# kill_rounds MODE FLAGS [STRIDE]: `rm FLAGS victim` of a MODE ("stopped"
# or "running") victim killed at a few random stops before its first
# change to the store, then at the exit of every syscall from there on (a
# kill at the entry of a syscall leaves the store as one at the exit of
# the one before) -- or, with STRIDE, at the entry and exit of each logged
# syscall (rename, unlink, fsync, flock, ...) up to the fork of the child
# that deletes the tree and at every STRIDE-th stop.
kill_rounds() {
	local mode=$1 flags=$2 stride=${3:-} n first fork k bad=0 rerun=0 points states="" out
	mkvictim "$mode"
	"$KA" -f -c "$T/count" -l "$T/log" "$S" --root "$ROOT" rm $flags victim >/dev/null
	n=$(cat "$T/count")
	first=$(first_change "$T/log")
	fork=$(awk '$2 == "fork" { print $1; exit }' "$T/log")
	points="$(for i in 1 2 3; do echo $((RANDOM % first + 1)); done)"
	if [ -z "$stride" ]; then
		points="$points $(seq $((first - 1)) 2 "$n")"
	else
		points="$points $({ awk -v f="$first" -v g="${fork:-$n}" \
			'$1 >= f && $1 <= g && $2 != "open" { print $1; print $1 + 1 }' "$T/log"
			seq "$first" "$stride" "$n"; } | sort -nu)"
	fi
	for k in $points; do
		mkvictim "$mode"
		"$KA" -f -n "$k" "$S" --root "$ROOT" rm $flags victim >/dev/null 2>&1
		after_kill "$mode" >"$T/killed"
		states="$states ${VSTATE:-gone}"
		out=$(cat "$T/killed")
		[ -z "$out" ] || { bad=$((bad + 1)) && t_diag "rm $flags killed at $k: $out"; }
		out=$(after_rerun)
		[ -z "$out" ] || { rerun=$((rerun + 1)) && t_diag "rm $flags killed at $k (${VSTATE:-gone}): rerun: $out"; }
	done
	t_diag "rm $flags of a $mode container: $n stops, first change at $first; after the kills:" \
		"$(echo $states | tr ' ' '\n' | sort | uniq -c | xargs) (${SECONDS} s)"
	t_is "$bad" 0 "rm $flags of a $mode container killed at $(echo $points | wc -w) points: whole, removal in progress, or gone"
	t_is "$rerun" 0 "and one more rm -f -v leaves no container, leftover, volume, process or mount"
}

# Every syscall once as root; the rootless run, which repeats it in a user
# namespace, aims at the logged syscalls.
if [ "$STRATA_ROOTLESS" = 1 ]; then
	kill_rounds stopped -v 7
else
	kill_rounds stopped -v
fi
kill_rounds running "-f -v" 20
t_done
