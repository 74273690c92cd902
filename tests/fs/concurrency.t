#!/bin/bash
# tests/fs/concurrency.t: several processes at once create, write, rename and
# delete files in the same directories (lower ones included), race for the
# same names and append to the same lower files; the tree left behind, also
# after a remount, must be exactly what the processes' logs add up to.  Then
# four processes append to one 64 MiB lower file at once: nothing may be lost
# in the concurrent copy-ups.  Kernel overlayfs runs the same as a reference.
#   STRATA_CONCUR_PROCS, STRATA_CONCUR_OPS, STRATA_CONCUR_SEED tune the run.
# rootless: yes
. "$(dirname "$0")/../lib.sh"

CONCUR=$HELPERS/concur
[ -x "$CONCUR" ] || t_skip_all "$CONCUR is not built"
[ -x "$STRATA_FS" ] || t_skip_all "$STRATA_FS is not built"
PROCS=${STRATA_CONCUR_PROCS:-6}
OPS=${STRATA_CONCUR_OPS:-1500}
SEED=${STRATA_CONCUR_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
BIG_MB=64
t_diag "concur seed $SEED, $PROCS processes, $OPS operations each"

mkdir -p "$T/lower" "$T/lowerlogs" "$T/big"
"$CONCUR" setup "$T/lower" "$T/lowerlogs" || exit 1
head -c "${BIG_MB}M" /dev/urandom >"$T/big/big.bin"
big_md5=$(md5sum <"$T/big/big.bin" | cut -c1-32)

lower_state() {
	(cd "$T" && find lower big -printf '%p %y %m %s %T@\n' | LC_ALL=C sort &&
		find lower big -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}
lower_before=$(lower_state)

# The tree as "PATH d" and "PATH f MD5" lines; the app-* files every process
# appends to show as "APPEND", they are checked on their own.
dump() {
	(cd "$1" && {
		find . -mindepth 1 -type d -printf '%P d\n'
		find . -mindepth 1 ! -type d ! -type f -printf '%P %y\n'
		find . -type f -name 'app-*' -printf '%P f APPEND\n'
		find . -type f ! -name 'app-*' -print0 | xargs -0r md5sum |
			awk '{ p = $2; sub(/^\.\//, "", p); print p " f " $1 }'
	} | LC_ALL=C sort)
}

# What the logs add up to: the lower tree, d3, every process's own files and
# directories, and each token where its latest record (highest gen) put it.
expected() {
	local logs=$1
	{
		cat "$T/lowerlogs/lower.tree" "$logs"/w*.files
		echo "d3 d"
		cat "$T/lowerlogs/lower.tokens" "$logs"/w*.tokens | LC_ALL=C sort -k1,1n -k2,2n |
			awk '{ last[$1] = $3 " f " $4; gone[$1] = ($3 == "-") }
			     END { for (t in last) if (!gone[t]) print last[t] }'
	} | LC_ALL=C sort
}

# Two processes recording the same generation of a token means both claimed
# the same file: a rename succeeded twice.
duplicate_claims() {
	cat "$T/lowerlogs/lower.tokens" "$1"/w*.tokens | awk '{ print $1, $2 }' | LC_ALL=C sort | uniq -d
}

# check_appends MNT LOGS: each app-* file is its lower content followed by
# exactly the lines all processes appended, in any order.
check_appends() {
	local mnt=$1 logs=$2 f size bad=0
	for f in d1/app-0 d2/app-1; do
		size=$(stat -c %s "$T/lower/$f")
		if [ "$(head -c "$size" "$mnt/$f" | md5sum)" != "$(md5sum <"$T/lower/$f")" ]; then
			echo "$f: the lower content is not intact"
			bad=1
		fi
		if ! diff -u <(cat "$logs"/w*.appends | awk -v f="$f" '$1 == f { print $2 }' |
			LC_ALL=C sort) <(tail -c +$((size + 1)) "$mnt/$f" | LC_ALL=C sort); then
			echo "$f: appended lines differ (- logged, + in the file)"
			bad=1
		fi
	done
	return $bad
}

# check_big FILE: the lower 64 MiB followed by every tag, none lost.
check_big() {
	local f=$1 want_tags got_size want_size
	want_tags=$(for p in 0 1 2 3; do for k in 0 1 2 3 4 5 6 7; do echo "tag-$p-$k"; done; done |
		LC_ALL=C sort)
	want_size=$((BIG_MB * 1024 * 1024 + $(printf '%s\n' "$want_tags" | wc -c)))
	got_size=$(stat -c %s "$f")
	[ "$got_size" = "$want_size" ] || echo "size $got_size, expected $want_size"
	[ "$(head -c "${BIG_MB}M" "$f" | md5sum | cut -c1-32)" = "$big_md5" ] ||
		echo "the lower content is not intact"
	diff -u <(printf '%s\n' "$want_tags") \
		<(tail -c +$((BIG_MB * 1024 * 1024 + 1)) "$f" | LC_ALL=C sort) | head -20
	[ "$got_size" = "$want_size" ] &&
		[ "$(head -c "${BIG_MB}M" "$f" | md5sum | cut -c1-32)" = "$big_md5" ] &&
		[ "$(tail -c +$((BIG_MB * 1024 * 1024 + 1)) "$f" | LC_ALL=C sort)" = "$want_tags" ]
}

check() {
	local kind=$1 mountfn=$2 d=$T/$1 rc start end
	mkdir -p "$d/upper" "$d/work" "$d/logs"
	local opts=lowerdir=$T/lower:$T/big,upperdir=$d/upper,workdir=$d/work
	if ! $mountfn "$d/mnt" "$opts" 2>"$d/mount.err"; then
		t_skip "$kind: concurrent operations" "cannot mount: $(head -1 "$d/mount.err")"
		return
	fi
	start=$(date +%s.%N)
	timeout "${STRATA_CONCUR_TIMEOUT:-300}" "$CONCUR" run -p "$PROCS" -n "$OPS" -s "$SEED" \
		"$d/mnt" "$d/logs" >"$d/run.log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	t_is "$rc" 0 "$kind: $PROCS processes ran $OPS operations each without an error"
	[ "$rc" = 0 ] || tail -20 "$d/run.log" | sed 's/^/#   /'
	t_diag "$kind: concurrent run took $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"
	t_is "$(duplicate_claims "$d/logs")" "" "$kind: no token was claimed twice"
	local want
	want=$(expected "$d/logs")
	t_is "$(dump "$d/mnt" | grep -v '^big.bin ')" "$want" "$kind: tree is what the processes did"
	t_ok "$kind: appends to shared lower files all landed" check_appends "$d/mnt" "$d/logs"

	# Four processes append 8 tags each to the 64 MiB lower file at once.
	t_ok "$kind: concurrent appends to a ${BIG_MB} MiB lower file" \
		"$CONCUR" append-race -p 4 -n 8 "$d/mnt/big.bin"
	t_ok "$kind: ${BIG_MB} MiB file holds the lower data and every tag" check_big "$d/mnt/big.bin"

	t_ok "$kind: unmount" t_umount "$d/mnt"
	t_is "$(find "$d/work" -mindepth 2 ! -path "$d/work/work/whiteout" -printf '%P\n' | LC_ALL=C sort)" "" \
		"$kind: nothing left in the workdir"
	t_ok "$kind: remount" $mountfn "$d/mnt" "$opts"
	t_is "$(dump "$d/mnt" | grep -v '^big.bin ')" "$want" "$kind: tree is the same after remount"
	t_ok "$kind: appends persist after remount" check_appends "$d/mnt" "$d/logs"
	t_ok "$kind: ${BIG_MB} MiB file persists after remount" check_big "$d/mnt/big.bin"
	t_ok "$kind: unmount again" t_umount "$d/mnt"
	t_is "$(lower_state)" "$lower_before" "$kind: lower layers unchanged"
}

check strata-fs sfs_mount
if [ "$STRATA_ROOTLESS" = 1 ] || [ "$(id -u)" = 0 ]; then
	check overlayfs kovl_mount
else
	t_skip "overlayfs: concurrent operations" "needs root or a user namespace"
fi
t_done
