#!/bin/bash
# tests/fs/uring.t: FUSE over io_uring (fs/uring.c).  With the fuse module's
# enable_uring on, strata-fs takes requests from one ring queue per CPU and
# answers them there: every CPU's queue serves requests, data of any size
# goes both ways intact (writes of a MiB, spliced read replies, listings),
# errors come back as errors, processes on both CPUs at once get their
# answers, and the daemon ends cleanly on unmount and on SIGTERM.  With
# uring=0, or the parameter off, the mount works through /dev/fuse alone.
# The parameter is put back as it was at the end.  (tests/run.sh also runs
# the files marked "# uring: yes" again with the parameter on.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need taskset cmp setfattr getfattr

P=/sys/module/fuse/parameters/enable_uring
[ -e "$P" ] || t_skip_all "this kernel has no FUSE over io_uring ($P)"
[ "$(id -u)" = 0 ] && [ -w "$P" ] || t_skip_all "turning $P on needs root"
was=$(cat "$P")
trap 'echo "$was" >"$P"; _t_cleanup' EXIT
echo 1 >"$P"

mkdir -p "$T/lower/d" "$T/upper" "$T/work"
L=$T/lower
head -c 5000000 /dev/urandom >"$L/big"
for i in $(seq 2000); do : >"$L/d/f$i"; done
echo lower >"$L/small"
OPTS=lowerdir=$L,upperdir=$T/upper,workdir=$T/work
M=$T/mnt
cpus=$(nproc)

t_ok "mount with debug output" start_debug "$OPTS"
t_ok "the INIT reply accepts io_uring" logged "io_uring: accepted"
for ((c = 0; c < cpus; c++)); do
	taskset -c $c sh -c "stat '$M/small' && cat '$M/small' && echo $c >'$M/cpu$c'" >/dev/null
done
served=0
for ((c = 0; c < cpus; c++)); do
	grep -q "io_uring: queue $c: first request" "$T/d.log" && served=$((served + 1))
done
t_is "$served" "$cpus" "each CPU's queue served the requests made on its CPU"
t_is "$(cat "$M/cpu0")" 0 "a file written through the ring reads back"

head -c 3300000 /dev/urandom >"$T/ref"
t_ok "3.3 MB written in 1 MiB requests" dd if="$T/ref" of="$M/new" bs=1M status=none
t_ok "and read back the same" cmp "$T/ref" "$M/new"
t_ok "a 5 MB lower file reads as in the layer" cmp "$L/big" "$M/big"
t_is "$(ls "$M/d" | wc -l)" 2000 "a 2000-entry directory lists whole"
t_fail "a missing file: an error" cat "$M/nothing"
t_is "$(mkdir "$M/d" 2>&1 | grep -c 'File exists')" 1 "mkdir of an existing directory: EEXIST"
t_ok "an xattr set through the ring" setfattr -n user.k -v vee "$M/small"
t_is "$(getfattr --only-values -n user.k "$M/small" 2>/dev/null)" vee "and read back"

# processes on every CPU at once: create, stat, rename, remove
work() {
	local c=$1 i
	mkdir "$M/p$c" || return 1
	for i in $(seq 300); do
		echo "$c.$i" >"$M/p$c/f$i" && stat "$M/p$c/f$i" >/dev/null || return 1
		mv "$M/p$c/f$i" "$M/p$c/g$i" || return 1
		[ $((i % 3)) = 0 ] && { rm "$M/p$c/g$i" || return 1; }
	done
	return 0
}
pids=()
for ((c = 0; c < 4; c++)); do
	taskset -c $((c % cpus)) bash -c "$(declare -f work); M='$M'; work $c" &
	pids+=($!)
done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
t_is "$ok" 1 "4 processes at once on $cpus CPUs: every request answered"
t_is "$(cat "$M"/p*/g* | wc -l)" 800 "and what they left is all there"
t_is "$(cat "$M/p2/g299")" 2.299 "with the contents written"

pid=$(tail -1 "$T/.pids")
t_ok "unmount" umount "$M"
gone=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { gone=1 && break; }; sleep 0.05; done
t_is "$gone" 1 "the daemon ends after the unmount"
t_ok "the upper kept the new file" cmp "$T/ref" "$T/upper/new"

t_ok "mount again" start_debug "$OPTS"
pid=$(tail -1 "$T/.pids")
cat "$M/small" >/dev/null
kill -TERM "$pid"
gone=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { gone=1 && break; }; sleep 0.05; done
t_is "$gone" 1 "SIGTERM ends the daemon"
t_fail "and the mount with it" mountpoint -q "$M"

t_ok "mount with uring=0" start_debug "$OPTS,uring=0"
t_ok "the big file reads the same" cmp "$L/big" "$M/big"
t_fail "io_uring not accepted" grep -q "io_uring: accepted" "$T/d.log"
umount "$M"

echo 0 >"$P"
t_ok "mount with the parameter off" start_debug "$OPTS"
t_ok "the big file reads the same" cmp "$L/big" "$M/big"
t_fail "io_uring not offered, not accepted" grep -q "io_uring: accepted" "$T/d.log"
umount "$M"
t_done
