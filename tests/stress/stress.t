#!/bin/bash
# tests/stress/stress.t: a long randomized workload.  Several processes run
# mixed data and metadata operations (writes, truncates, renames, unlinks,
# chmods, directories, symlinks, reads of shared lower files) on files that
# start in a lower layer and on new ones, each checked against a model; after
# a remount every file is checked again.  Eight processes by default: more
# requests in flight than cores is what found a read waiting forever on a
# full pipe.  STRATA_STRESS_SECONDS (default 20;
# `make stress STRESS_SECONDS=3600` for the long run), STRATA_STRESS_PROCS,
# STRATA_STRESS_SEED.
# rootless: yes
. "$(dirname "$0")/../lib.sh"

ST=$HELPERS/stress
[ -x "$ST" ] || t_skip_all "$ST is not built"
[ -x "$STRATA_FS" ] || t_skip_all "$STRATA_FS is not built"
SECS=${STRESS_SECONDS:-${STRATA_STRESS_SECONDS:-20}}
PROCS=${STRATA_STRESS_PROCS:-8}
SEED=${STRATA_STRESS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
t_diag "seed $SEED, $PROCS processes, $SECS s (STRATA_STRESS_SEED=$SEED reproduces)"

mkdir -p "$T/lower" "$T/upper" "$T/work" "$T/logs"
"$ST" setup -p "$PROCS" "$T/lower" || exit 1
lower_before=$(cd "$T/lower" && find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work
t_ok "mount" sfs_mount "$T/mnt" "$OPTS"
timeout $((SECS + 120)) "$ST" run -p "$PROCS" -t "$SECS" -s "$SEED" "$T/mnt" "$T/logs" >"$T/run.log" 2>&1
rc=$?
t_is "$rc" 0 "$PROCS processes for $SECS s: every result matches the model"
if [ "$rc" != 0 ]; then
	head -40 "$T/run.log" | sed 's/^/#   /'
	# where the daemon's threads wait, should a request never end
	for task in $(pgrep -f -- "$T/mnt" | sed 's|^|/proc/|; s|$|/task/*|'); do
		[ -r "$task/wchan" ] && t_diag "daemon thread ${task##*/}: $(cat "$task/wchan")"
	done
fi
t_diag "$(awk '{ n += $3 } END { print n + 0 }' "$T/run.log") operations in $SECS s"
t_ok "the daemon is alive" stat "$T/mnt/shared"
t_ok "unmount" t_umount "$T/mnt"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_ok "remount" sfs_mount "$T/mnt" "$OPTS"
t_ok "every file as the model says after the remount" "$ST" verify -p "$PROCS" "$T/mnt" "$T/logs"
t_ok "unmount again" t_umount "$T/mnt"
t_is "$(cd "$T/lower" && find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)" "$lower_before" \
	"lower layer unchanged"
t_done
