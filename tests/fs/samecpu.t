#!/bin/bash
# tests/fs/samecpu.t: replies that wake their program on its own CPU
# (fs/uring.c, samecpu=1).  With FUSE over io_uring a queue's thread commits
# a reply at SCHED_IDLE policy, so the scheduler counts its CPU as idle and
# wakes the program there; the thread is back at normal policy when the
# program waits again.  Checked here: a daemon that may renice says it
# does this, and samecpu=0 or one that may not do not; requests are
# answered right; once the program is done no thread of the daemon is left
# at idle policy; a program sharing its CPU with a busy loop (the other
# CPUs idle) waits for a thread kept off the CPU, and the daemon's watch
# thread notices and pauses the idle spells; with every CPU busy the
# daemon commits at normal policy, and requests are still answered; the
# daemon ends on unmount and on SIGTERM.  Speed is measured by bench/.
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
# the CPUs this test may use, and whether a process here may come back
# from SCHED_IDLE (what the daemon tries at its start)
read -r -a cpu_list <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
renice=$(python3 -c '
import os
try:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    print(1)
except OSError:
    print(0)')

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

# run_until SECONDS CHECK CMD...: runs CMD again and again, for up to
# SECONDS, until the command CHECK succeeds; as CHECK does at the end
run_until() {
	local end=$(($(date +%s) + $1)) check=$2
	shift 2
	while [ "$(date +%s)" -lt $end ]; do
		"$check" && return 0
		"$@" >/dev/null
	done
	"$check"
}

# stats_on CPU N: stats N "$M/f" on CPU
stats_on() {
	taskset -c "$1" bash -c "$(declare -f stats); stats $2 '$M/f'"
}

# busy CPU...: a busy loop on each CPU named
busy() {
	local c
	for c in "$@"; do
		taskset -c "$c" sh -c 'while :; do :; done' &
		echo $! >>"$T/.pids"
		hogs+=($!)
	done
}
unbusy() {
	kill "${hogs[@]}" 2>/dev/null
	wait "${hogs[@]}" 2>/dev/null
	hogs=()
}

# no_idle_threads PID: waits up to 5 s for no thread of PID to be at
# SCHED_IDLE (policy 5); prints how many are
no_idle_threads() {
	local n
	for _ in $(seq 100); do
		n=$(idle_threads "$1")
		[ "$n" = 0 ] && break
		sleep 0.05
	done
	echo "$n"
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
t_ok "the INIT reply accepts io_uring" logged "io_uring: accepted"
if [ "$renice" = 1 ]; then
	t_ok "a daemon that may renice commits at idle policy" \
		logged "replies wake programs on their own CPU: yes"
else
	t_ok "a daemon that may not renice does not commit at idle policy: it could not come back" \
		logged "replies wake programs on their own CPU: no (the daemon may not renice)"
fi
for c in "${cpu_list[@]}"; do
	t_is "$(stats_on "$c" 2000)" done \
		"2000 GETATTRs from CPU $c, each with the right size"
done
t_is "$(stats 3000 "$M/f")" done "3000 more from a program the scheduler moves"
t_is "$(no_idle_threads "$pid")" 0 "the program done, no thread of the daemon is left at idle policy"

# the program's CPU busy, the others idle: the spells go on, and the thread
# holding the program's next request waits behind the busy loops.  (Unless
# the daemon finds the CPUs busy first, as it may when the VM's other CPU
# is taken too, by steal time say: no spells then, nothing to pause.)
c0=${cpu_list[0]}
hogs=()
busy "$c0" "$c0"
paused="a program waited .* us for a thread at idle policy; normal commits for 250 ms"
if [ "$renice" = 1 ] && [ ${#cpu_list[@]} -gt 1 ]; then
	paused_or_busy() { grep -q "$paused\|io_uring: CPUs busy" "$T/d.log"; }
	run_until 30 paused_or_busy stats_on "$c0" 2000
	if grep -q "$paused" "$T/d.log" || ! grep -q "io_uring: CPUs busy" "$T/d.log"; then
		t_ok "a program waiting for a thread kept off its CPU: the watch thread pauses the spells" \
			grep -q "$paused" "$T/d.log"
	else
		t_skip "a program waiting for a thread kept off its CPU: the watch thread pauses the spells" \
			"the daemon found the CPUs busy first and made no idle spells"
	fi
else
	t_skip "a program waiting for a thread kept off its CPU: the watch thread pauses the spells" \
		"$([ "$renice" = 1 ] && echo "one CPU: no idle spells while it is busy" || echo "no idle spells here")"
fi
t_is "$(stats_on "$c0" 2000)" done \
	"next to the busy loop, 2000 GETATTRs are answered"
unbusy

# every CPU busy: nothing to gain, and a thread at idle policy could wait
# long for its CPU
busy "${cpu_list[@]}"
if [ "$renice" = 1 ]; then
	# (the last verdict, as the first phase may have had one of its own)
	load_busy() { grep "io_uring: CPUs" "$T/d.log" | tail -1 | grep -q "CPUs busy: replies at normal policy"; }
	run_until 30 load_busy stats_on "$c0" 2000
	t_ok "with a busy loop on every CPU the daemon commits at normal policy" load_busy
else
	t_fail "a daemon that may not renice never reads the CPUs' load" \
		grep -q "io_uring: CPUs busy" "$T/d.log"
fi
t_is "$(stats_on "$c0" 3000)" done \
	"and 3000 GETATTRs are answered"
t_is "$(stats 3000 "$M/f")" done "and 3000 from a program free to move"
unbusy
t_is "$(no_idle_threads "$pid")" 0 "no thread left at idle policy"

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
	logged "replies wake programs on their own CPU: no (samecpu=0)"
t_is "$(stats 1000 "$M/f")" done "1000 GETATTRs"
umount "$M"
t_fail "a bad value is refused" "$STRATA_FS" -o "$OPTS,samecpu=maybe" "$M"
t_done
