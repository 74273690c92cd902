#!/bin/bash
# tests/fs/samecpu.t: replies that wake their program on its own CPU
# (fs/uring.c, samecpu=1).  With FUSE over io_uring a queue's thread commits
# a reply at SCHED_IDLE policy, so the scheduler counts its CPU as idle and
# wakes the program there; the thread is back at normal policy when the
# program waits again.  Checked here: a daemon that may renice (root) says
# it does this, and samecpu=0 or an unprivileged daemon does not; requests
# are answered right; once the program is done no thread of the daemon is
# left at idle policy; with every CPU busy the daemon notices and commits
# at normal policy, and requests are still answered; the daemon ends on
# unmount and on SIGTERM.  Speed is measured by bench/, not here.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need python3 taskset

P=/sys/module/fuse/parameters/enable_uring
[ -e "$P" ] || t_skip_all "this kernel has no FUSE over io_uring ($P)"
if [ "$(cat "$P")" != Y ]; then
	[ "$(id -u)" = 0 ] && [ -w "$P" ] || t_skip_all "FUSE over io_uring is off and turning it on needs root"
	was=$(cat "$P")
	trap 'echo "$was" >"$P"; _t_cleanup' EXIT
	echo 1 >"$P"
fi

mkdir -p "$T/lower" "$T/upper" "$T/work"
printf 'twelve bytes' >"$T/lower/f"
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work,timeout=0
M=$T/mnt
cpus=$(nproc)

# stats N FILE: N fstat calls (each a GETATTR, timeout=0); prints the size
# each time it differs from 12, then "done"
stats() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[2], os.O_RDONLY)
for i in range(int(sys.argv[1])):
    st = os.fstat(fd)
    if st.st_size != 12:
        print("size", st.st_size)
print("done")' "$@"
}

# idle_threads PID: how many threads of PID are at SCHED_IDLE (policy 5)
idle_threads() {
	local n=0 t
	for t in /proc/"$1"/task/*/stat; do
		[ "$(sed 's/.*) //' "$t" 2>/dev/null | awk '{ print $39 }')" = 5 ] && n=$((n + 1))
	done
	echo $n
}

t_ok "mount with debug output" start_debug "$OPTS"
pid=$(tail -1 "$T/.pids")
t_ok "the INIT reply accepts io_uring" grep -q "io_uring: accepted" "$T/d.log"
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_ok "an unprivileged daemon does not commit at idle policy: it could not come back" \
		grep -q "replies wake programs on their own CPU: no (the daemon may not renice)" "$T/d.log"
else
	t_ok "a daemon that may renice commits at idle policy" \
		grep -q "replies wake programs on their own CPU: yes" "$T/d.log"
fi
for ((c = 0; c < cpus; c++)); do
	t_is "$(taskset -c $c bash -c "$(declare -f stats); stats 2000 '$M/f'")" done \
		"2000 GETATTRs from CPU $c, each with the right size"
done
t_is "$(stats 3000 "$M/f")" done "3000 more from a program the scheduler moves"
idle=1
for _ in $(seq 100); do
	idle=$(idle_threads "$pid")
	[ "$idle" = 0 ] && break
	sleep 0.05
done
t_is "$idle" 0 "the program done, no thread of the daemon is left at idle policy"

# every CPU busy: nothing to gain, and a thread at idle policy could wait
# long for its CPU
hogs=()
for ((c = 0; c < cpus; c++)); do
	taskset -c $c sh -c 'while :; do :; done' &
	hogs+=($!)
done
start=$(date +%s)
t_is "$(taskset -c 0 bash -c "$(declare -f stats); stats 3000 '$M/f'")" done \
	"with a busy loop on every CPU, 3000 GETATTRs are answered"
t_is "$(stats 3000 "$M/f")" done "and 3000 from a program free to move"
took=$(($(date +%s) - start))
kill "${hogs[@]}"
wait "${hogs[@]}" 2>/dev/null
t_ok "in under 60 s (took ${took} s)" [ "$took" -lt 60 ]
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_fail "an unprivileged daemon never read the CPUs' load" grep -q "io_uring: CPUs busy" "$T/d.log"
else
	t_ok "the daemon saw the CPUs busy and committed at normal policy" \
		grep -q "io_uring: CPUs busy: replies at normal policy" "$T/d.log"
fi
t_is "$(idle_threads "$pid")" 0 "no thread left at idle policy"

t_ok "unmount" umount "$M"
gone=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { gone=1 && break; }; sleep 0.05; done
t_is "$gone" 1 "the daemon ends after the unmount"

t_ok "mount again" start_debug "$OPTS"
pid=$(tail -1 "$T/.pids")
t_is "$(stats 500 "$M/f")" done "500 GETATTRs"
kill -TERM "$pid"
gone=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { gone=1 && break; }; sleep 0.05; done
t_is "$gone" 1 "SIGTERM ends the daemon"
umount "$M" 2>/dev/null

t_ok "mount with samecpu=0" start_debug "$OPTS,samecpu=0"
t_ok "it says it does not commit at idle policy" \
	grep -q "replies wake programs on their own CPU: no (samecpu=0)" "$T/d.log"
t_is "$(stats 1000 "$M/f")" done "1000 GETATTRs"
umount "$M"
t_fail "a bad value is refused" "$STRATA_FS" -o "$OPTS,samecpu=maybe" "$M"
t_done
