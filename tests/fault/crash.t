#!/bin/bash
# tests/fault/crash.t: crash consistency.  Worker processes replace, patch
# (copy-up of 16 MiB lower files included), rename, hard-link and delete files
# while strata-fs is killed with SIGKILL at a random moment; the dead mount is
# detached, the same upper and workdir are mounted again, and then:
#   - the workdir holds nothing of the killed mount (cleaned on mount),
#   - every file holds its content before or after the operation in flight,
#     every completed operation is there (bytes lost must be 0),
#   - no name other than the workload's shows in the merged tree.
# Half the rounds run with metacopy=off, so data copy-ups go through the
# workdir.  STRATA_CRASH_ROUNDS (default 10), STRATA_CRASH_SEED.
# rootless: yes
. "$(dirname "$0")/../lib.sh"

CW=$HELPERS/crashwork
[ -x "$CW" ] || t_skip_all "$CW is not built"
[ -x "$STRATA_FS" ] || t_skip_all "$STRATA_FS is not built"
[ -c /dev/fuse ] || t_skip_all "no /dev/fuse"
ROUNDS=${STRATA_CRASH_ROUNDS:-10}
SEED=${STRATA_CRASH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
P=4 K=24 BIG=16
t_diag "seed $SEED, $ROUNDS rounds, $P workers (STRATA_CRASH_SEED=$SEED reproduces the workload)"
RANDOM=$SEED

mkdir -p "$T/lower" "$T/upper" "$T/work" "$T/mnt"
"$CW" setup -p $P -k $K -b $BIG "$T/lower" "$T/state.0" || exit 1
# Four 128 MiB files whose copy-up the last part interrupts on purpose.
mkdir -p "$T/lower/big"
for j in 0 1 2 3; do head -c 128M /dev/urandom >"$T/lower/big/big$j"; done
lower_state() {
	(cd "$T/lower" && find . -printf '%p %y %m %s %n %T@\n' | LC_ALL=C sort &&
		find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}
lower_before=$(lower_state)
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work
echo "$T/mnt" >>"$T/.mounts"

# mount_fg EXTRA: strata-fs -f in the background; DAEMON is its pid.
mount_fg() {
	"$STRATA_FS" -f -o "$OPTS$1" "$T/mnt" 2>>"$T/daemon.err" &
	DAEMON=$!
	echo "$DAEMON" >>"$T/.pids"
	for _ in $(seq 200); do
		mountpoint -q "$T/mnt" && return 0
		kill -0 "$DAEMON" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

work_entries() {
	work_leftovers "$T/work" | wc -l
}

total_ops=0 lost=0 kills=0 leftovers=0 bad_rounds=0
for ((i = 0; i <= ROUNDS; i++)); do
	extra=
	[ $((i % 2)) = 1 ] && extra=,metacopy=off
	if ! mount_fg "$extra"; then
		t_ok "round $i: mount" false
		break
	fi
	t_is "$(work_entries)" 0 "round $i: workdir clean after mounting"
	if [ $i -gt 0 ]; then
		"$CW" check -p $P -k $K "$T/mnt" "$T/state.$((i - 1))" "$T/logs.$((i - 1))" \
			"$T/state.$i" >"$T/check.$i" 2>&1
		rc=$?
		t_is "$rc" 0 "round $i: after the kill every file is its old or new content"
		[ "$rc" = 0 ] || { head -20 "$T/check.$i" | sed 's/^/#   /'; bad_rounds=$((bad_rounds + 1)); }
		t_diag "round $i: $(tail -1 "$T/check.$i")"
		n=$(sed -n 's/^checked: \([0-9]*\) operations.*/\1/p' "$T/check.$i")
		l=$(sed -n 's/.* \([0-9]*\) bytes lost$/\1/p' "$T/check.$i")
		total_ops=$((total_ops + ${n:-0})) lost=$((lost + ${l:-0}))
	fi
	[ $i = "$ROUNDS" ] && break

	mkdir -p "$T/logs.$i"
	timeout -k 5 60 "$CW" run -p $P -k $K -s $((SEED + i)) "$T/mnt" "$T/state.$i" "$T/logs.$i" \
		>"$T/run.$i" 2>&1 &
	runner=$!
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", (r % 3 ? 0.05 : 0.3) + r / 32767 * 1.2 }')"
	kill -9 "$DAEMON"
	wait "$DAEMON" 2>/dev/null
	kills=$((kills + 1))
	w=$(work_entries)
	[ "$w" -gt 0 ] && leftovers=$((leftovers + 1))
	# the dead connection answers every request with ENOTCONN; the
	# unmount waits for the workers, as one that opens the mount after a
	# lazy unmount would work in the directory beneath
	start=$SECONDS
	wait "$runner"
	rc=$?
	umount -l "$T/mnt" 2>/dev/null || fusermount3 -uz "$T/mnt"
	t_is "$rc" 0 "round $i: workers got ENOTCONN from the dead mount, no hang ($((SECONDS - start)) s)"
	[ "$rc" = 0 ] || sed 's/^/#   /' "$T/run.$i" | head -10
	t_diag "round $i: killed after $(awk '{ s += $3 } END { print s + 0 }' "$T/run.$i") operations;" \
		"$w entries in the workdir at the kill"
done
t_ok "unmount" t_umount "$T/mnt"

# A kill in the middle of one long copy-up: a one-byte append to a 128 MiB
# lower file, the daemon killed once the copy-up has begun (a temporary in
# the workdir, or with metacopy the upper file present), then the file must
# read as the lower file, or the lower file plus the byte.
for j in 0 1 2 3; do
	extra=,metacopy=off
	seen=$T/work/work
	if [ $((j % 2)) = 1 ]; then extra= seen=$T/upper/big/big$j; fi
	mount_fg "$extra" || { t_ok "copy-up $j: mount" false; continue; }
	want_old=$(md5sum <"$T/lower/big/big$j" | cut -c1-32)
	want_new=$( (cat "$T/lower/big/big$j"; printf x) | md5sum | cut -c1-32)
	(printf x >>"$T/mnt/big/big$j") 2>/dev/null &
	writer=$!
	began=0
	for _ in $(seq 400); do
		if [ -n "$(ls -A "$seen" 2>/dev/null)" ] || { [ -f "$seen" ] && [ -s "$seen" ]; }; then
			began=1
			break
		fi
		sleep 0.01
	done
	sleep 0.0$((RANDOM % 5))
	kill -9 "$DAEMON"
	wait "$DAEMON" 2>/dev/null
	umount -l "$T/mnt" 2>/dev/null || fusermount3 -uz "$T/mnt"
	wait "$writer"
	kills=$((kills + 1))
	[ "$(work_entries)" -gt 0 ] && leftovers=$((leftovers + 1))
	t_diag "copy-up $j (${extra:-metacopy}): killed $([ $began = 1 ] && echo during || echo before) the copy-up, $(work_entries) entries in the workdir"
	mount_fg "$extra" || { t_ok "copy-up $j: remount" false; continue; }
	t_is "$(work_entries)" 0 "copy-up $j: workdir clean after mounting"
	got=$(md5sum <"$T/mnt/big/big$j" | cut -c1-32)
	if [ "$got" = "$want_old" ] || [ "$got" = "$want_new" ]; then
		t_ok "copy-up $j: 128 MiB file is the old or the new content" true
	else
		t_is "$got (size $(stat -c %s "$T/mnt/big/big$j"))" "$want_old or $want_new" \
			"copy-up $j: 128 MiB file is the old or the new content"
		lost=$((lost + 134217728))
	fi
	t_ok "copy-up $j: the file can be written after the remount" sh -c "printf y >>'$T/mnt/big/big$j'"
	t_ok "copy-up $j: unmount" t_umount "$T/mnt"
done
t_is "$(work_entries)" 0 "workdir clean after a clean unmount"
t_is "$(lower_state)" "$lower_before" "lower layer unchanged"
t_is "$lost" 0 "bytes lost"
t_diag "$kills SIGKILLs injected, $total_ops operations survived, $leftovers kills left" \
	"temporaries in the workdir, $lost bytes lost, $bad_rounds bad rounds"
t_done
