#!/bin/bash
# tests/launcher/lifecycle.t: create/start/stop/rm/ps/logs/exec -- the
# writable layer across stop and start, rm leaving no mount, process or
# state, volume references through rm, crashes reported truthfully and
# cleaned up, and 20 containers started and removed without leaks.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

mounts_of() { cat /proc/[0-9]*/mountinfo 2>/dev/null | grep -c -- "$ROOT" || true; }

id=$(st create --name web --rootfs-layers "$LAYERS" sh -c 'echo started >>/log; cat /log; sleep 100')
t_ok "create prints a 64-hex id" grep -Eqx '[0-9a-f]{64}' <<<"$id"
t_is "$(st ps -a --format json | jq -r .State)" "created" "ps -a: created"
t_is "$(st ps -q)" "" "ps without -a hides it"
t_is "$(st start web)" "web" "start prints the name"
t_is "$(st ps -q)" "${id:0:12}" "ps -q: running"
t_ok "logs show the output" wait_for sh -c "'$S' --root '$ROOT' logs web | grep -q started"
t_is "$(st exec web cat /log)" "started" "exec runs in the container"
t_is "$(st exec -w /tmp -e X=1 web sh -c 'echo $X $(pwd)')" "1 /tmp" "exec -w -e"
t_is "$(rc st exec web sh -c 'exit 4')" "4" "exec returns the status"
t_is "$(rc st rm web)" "1" "rm refuses a running container"
t_is "$(st stop -t 1 web)" "web" "stop"
t_is "$(st ps -a --format json | jq -r '.State + " " + (.ExitCode|tostring)')" "exited 143" \
	"ps -a: exited 143 after SIGTERM"
st start web >/dev/null
t_ok "the writable layer is kept across stop and start" \
	wait_for sh -c "[ \"\$('$S' --root '$ROOT' exec web cat /log)\" = \"\$(printf 'started\\nstarted')\" ]"
t_is "$(st stop -t 1 web && st rm web)" "$(printf 'web\nweb')" "stop, rm"
t_is "$(ls -A "$ROOT/containers")" "" "rm leaves no state"
t_is "$(procs_of "$ROOT")" "" "rm leaves no process"
t_is "$(mounts_of)" "0" "rm leaves no mount"
t_is "$(st run --name web --rootfs-layers "$LAYERS" sh -c 'cat /log 2>&1')" \
	"cat: can't open '/log': No such file or directory" "a new container does not see the old layer"
st rm web >/dev/null

# stop with a command that ignores SIGTERM: SIGKILL after -t.  run -d
# returns before the command runs: stop once the trap is set.
st run -d --name stubborn --rootfs-layers "$LAYERS" \
	sh -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
wait_for sh -c "'$S' --root '$ROOT' logs stubborn | grep -q ready"
s0=$(date +%s)
st stop -t 1 stubborn >/dev/null
t_is "$(st ps -a --format json | jq -r .ExitCode)" "137" "stop -t 1: SIGKILL after the timeout"
t_ok "and that took about a second, not the default 10" test $(($(date +%s) - s0)) -le 8
st rm stubborn >/dev/null

# Volume references
st run -d --name v1 --rootfs-layers "$LAYERS" -v keep:/data -v /anon sleep 100 >/dev/null
t_is "$(st volume inspect keep | jq -r '.[0].Name')" "keep" "run created the named volume"
anon=$(st volume ls -q | grep -v keep)
t_ok "and an anonymous one" grep -Eqx '[0-9a-f]{64}' <<<"$anon"
t_is "$(rc st volume rm keep)" "1" "a volume in use cannot be removed"
st rm -f -v v1 >/dev/null
t_is "$(st volume ls -q)" "keep" "rm -v removes the anonymous volume, keeps the named one"
t_is "$(rc st volume rm keep)" "0" "after rm the named volume has no references"
st run --rm --rootfs-layers "$LAYERS" -v /anon2 true
t_is "$(st volume ls -q)$(st ps -a -q)" "" "run --rm removes the container and its anonymous volume"

# PID 1 killed: from the moment kill(2) returns, ps lists the container
# exited (once its keeper has recorded it) and exec refuses it, although
# PID 1 takes a while to die (its 200 children are killed and reaped
# first).  Five rounds.
bad=0
for i in 1 2 3 4 5; do
	st run -d --name killed --rootfs-layers "$LAYERS" \
		sh -c 'for i in $(seq 200); do sleep 100 & done; echo ready; wait' >/dev/null
	wait_for sh -c "'$S' --root '$ROOT' logs killed | grep -q ready"
	kill -9 "$(jq -r .Init.Pid "$ROOT"/containers/*/state.json)"
	out="$(st ps -a --format json | jq -r '.State + " " + (.ExitCode|tostring)') $(rc st exec killed true)"
	[ "$out" = "exited 137 126" ] || { bad=$((bad + 1)) && t_diag "round $i: ps, exec: $out"; }
	st rm -f killed >/dev/null
done
t_is "$bad" 0 "PID 1 killed: at once ps -a lists it exited 137 and exec refuses it (5 rounds)"

# Crashes: the keeper killed; strata-fs killed.
st run -d --name crash --rootfs-layers "$LAYERS" sleep 100 >/dev/null
keeper=$(jq -r .Keeper.Pid "$ROOT"/containers/*/state.json)
kill -9 "$keeper"
t_ok "a killed launcher: ps reports the container dead" \
	wait_for sh -c "'$S' --root '$ROOT' ps -a --format json | jq -e '.State == \"dead\"'"
t_is "$(st rm crash)" "crash" "and rm cleans up"
t_is "$(procs_of "$ROOT")$(ls -A "$ROOT/containers")" "" "nothing left"
st run -d --name crash2 --rootfs-layers "$LAYERS" sleep 100 >/dev/null
kill -9 "$(jq -r .Fs.Pid "$ROOT"/containers/*/state.json)"
t_ok "a killed strata-fs: the container stops" \
	wait_for sh -c "'$S' --root '$ROOT' ps -a --format json | jq -e '.State == \"exited\"'"
st rm crash2 >/dev/null
t_is "$(procs_of "$ROOT")$(ls -A "$ROOT/containers")$(mounts_of)" "0" "nothing left"

# 20 containers: no leaked mounts, processes or descriptors
fds=()
for i in $(seq 20); do
	st run -d --name "c$i" --rootfs-layers "$LAYERS" sleep 100 >/dev/null
	k=$(jq -r .Keeper.Pid "$ROOT/containers/$(st ps --format json | jq -r 'select(.Names=="c'$i'") | .ID')/state.json" 2>/dev/null)
	fds+=("$(ls /proc/"$k"/fd 2>/dev/null | wc -l)")
done
t_is "$(st ps -q | wc -l)" "20" "20 containers run"
t_is "$(printf '%s\n' "${fds[@]}" | sort -u | wc -l)" "1" "every keeper holds the same number of fds (${fds[0]})"
st rm -f $(st ps -q) >/dev/null
t_is "$(procs_of "$ROOT")" "" "after rm -f of 20: no process"
t_is "$(mounts_of)" "0" "no mount"
t_is "$(ls -A "$ROOT/containers")" "" "no state"
t_is "$(ls /proc/self/fd | wc -l)" "$(bash -c 'ls /proc/self/fd | wc -l')" "no descriptor leaked to the caller"
t_done
