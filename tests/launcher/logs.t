#!/bin/bash
# tests/launcher/logs.t: `strata logs` of a detached container -- all of
# its output, --tail N, and -f printing what was there, then what comes,
# and returning when the container stops.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

run -d --name done sh -c 'printf "one\ntwo\nthree\n"; printf "no newline"' >/dev/null
wait_for sh -c "'$S' --root '$ROOT' ps -a --format json | grep '\"done\"' | grep -q exited"
t_is "$(st logs done)" "$(printf 'one\ntwo\nthree\nno newline')" "logs: everything the container wrote"
t_is "$(st logs --tail 2 done)" "$(printf 'three\nno newline')" "--tail 2: the last two lines"
t_is "$(st logs -n 1 done)" "no newline" "-n 1: a last line without a newline counts"
t_is "$(st logs --tail=0 done | wc -c)" "0" "--tail 0: nothing"
t_is "$(st logs --tail 100 done)" "$(st logs done)" "--tail beyond the start: everything"
t_is "$(st logs --tail all done)" "$(st logs done)" "--tail all"
t_is "$(timeout 20 "$S" --root "$ROOT" logs -f done)" "$(st logs done)" \
	"-f on a stopped container: prints and returns"
t_is "$(rc st logs --tail x done)" "2" "--tail x: a usage error"
t_is "$(rc st logs)" "2" "no container: a usage error"

run -d --name slow sh -c 'echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second; sleep 0.5; echo third' \
	>/dev/null
wait_for sh -c "'$S' --root '$ROOT' logs slow | grep -q first"
timeout 60 "$S" --root "$ROOT" logs -f slow >"$T/follow" 2>&1 &
f=$!
wait_for grep -q first "$T/follow"
t_is "$(cat "$T/follow")" "first" "-f prints what is there"
t_ok "and keeps following while the container runs" kill -0 $f
st exec slow touch /tmp/go
wait $f
t_is "$?" "0" "-f returns once the container stops"
t_is "$(cat "$T/follow")" "$(printf 'first\nsecond\nthird')" "having printed what came after"

# 6 comes once logs -f has printed the tail (not after a fixed delay).
run -d --name tailf sh -c 'seq 5; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo 6' >/dev/null
wait_for sh -c "'$S' --root '$ROOT' logs tailf | grep -qx 5"
timeout 60 "$S" --root "$ROOT" logs -f --tail 2 tailf >"$T/tailf" 2>&1 &
f=$!
wait_for grep -qx 5 "$T/tailf"
st exec tailf touch /tmp/go
wait $f
t_is "$(cat "$T/tailf")" "$(printf '4\n5\n6')" "-f --tail 2: the last two lines, then the rest"
t_done
