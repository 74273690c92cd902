#!/bin/bash
# tests/launcher/process.t: PID 1 of a container -- exit statuses, 128+N for
# signals, signal forwarding, zombie reaping, user, environment, working
# directory, host name, capabilities and no_new_privs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

t_is "$(run sh -c 'echo hello')" "hello" "run prints the command's output"
t_is "$(rc run sh -c 'exit 7')" "7" "the exit status is the command's"
t_is "$(rc run sh -c 'kill -KILL $$')" "137" "a command killed by SIGKILL: 137"
t_is "$(rc run sh -c 'kill -TERM $$')" "143" "a command killed by SIGTERM: 143"
t_is "$(rc run /no/such/program)" "127" "a missing program: 127"
t_is "$(run sh -c 'echo $$')" "2" "the command is PID 2 under strata's init"

# Signals sent to `strata run` reach the command.
# (strata itself in the background, not a shell function running it)
"$S" --root "$ROOT" run --rootfs-layers "$LAYERS" \
	sh -c 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done' \
	>"$T/sig.out" 2>&1 &
pid=$!
wait_for grep -q ready "$T/sig.out"
kill -TERM $pid
wait $pid
t_is "$?" "3" "SIGTERM to strata run is forwarded; the trap's status comes back"
t_ok "the command saw the signal" grep -q "got TERM" "$T/sig.out"
for s in INT HUP USR1 USR2 QUIT; do
	"$S" --root "$ROOT" run --rootfs-layers "$LAYERS" \
		sh -c "trap 'echo got $s; exit 0' $s; echo ready; while :; do sleep 0.1; done" \
		>"$T/sig.out" 2>&1 &
	pid=$!
	wait_for grep -q ready "$T/sig.out"
	kill -$s $pid
	wait $pid
	t_ok "SIG$s is forwarded" grep -q "got $s" "$T/sig.out"
done

# An orphan is re-parented to PID 1 and reaped there.
out=$(run sh -c '(sleep 0.2 &); sleep 1; for f in /proc/[0-9]*/stat; do cut -d" " -f3 $f; done')
t_ok "orphans are reaped: no zombie in the container" \
	awk '/Z/ { z = 1 } NF { n++ } END { exit !(n && !z) }' <<<"$out"

if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_is "$(run -u app id 2>&1)" "strata: setgid 1000 (is it mapped in the user namespace?): Invalid argument" \
		"-u app: uid 1000 is not mapped in a single-id user namespace"
else
	t_is "$(run -u app id)" "uid=1000(app) gid=1000(app) groups=1000(app)" "-u NAME from /etc/passwd"
fi
t_is "$(run -u 0:0 id -u)" "0" "-u UID:GID"
t_is "$(run -e FOO=bar -e PATH=/bin sh -c 'echo $FOO $PATH')" "bar /bin" "-e sets and overrides"
printf 'A=1\n# comment\nB=two words\n' >"$T/env"
t_is "$(run --env-file "$T/env" sh -c 'echo $A $B')" "1 two words" "--env-file"
t_is "$(run -w /new/dir pwd)" "/new/dir" "-w creates a missing working directory"
t_is "$(run --hostname box hostname)" "box" "--hostname sets the UTS name"
t_is "$(run sh -c 'grep CapEff /proc/self/status')" "CapEff:	00000000a80425fb" \
	"root in the container has Docker's default capabilities"
t_is "$(run sh -c 'grep CapBnd /proc/self/status')" "CapBnd:	00000000a80425fb" \
	"the bounding set is Docker's default set"
t_is "$(run sh -c 'grep NoNewPrivs /proc/self/status')" "NoNewPrivs:	1" "no_new_privs is set"
t_is "$(run --entrypoint /bin/echo a b)" "a b" "--entrypoint replaces the entrypoint"
pidns=$(run readlink /proc/self/ns/pid)
t_ok "the container has its own PID namespace" test -n "$pidns" -a "$pidns" != "$(readlink /proc/self/ns/pid)"
t_ok "--network none: only lo" sh -c "[ \"\$('$S' --root '$ROOT' run --rootfs-layers '$LAYERS' --network none ls /sys/class/net)\" = lo ]"
t_done
