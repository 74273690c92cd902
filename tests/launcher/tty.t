#!/bin/bash
# tests/launcher/tty.t: -t and -i of run and exec, driven from a real
# terminal (tests/helpers/ptyrun): the command gets a pty of the
# container's own /dev/pts with the caller's window size, typed input and
# ^C reach it, SIGWINCH passes a new size on, the exit status comes back,
# the caller's terminal is left as it was; -i alone passes stdin through.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

PTY=$HELPERS/ptyrun
[ -x "$PTY" ] || t_skip_all "tests/helpers/ptyrun is not built"
# pty ACTION... -- CMD...: the output with the terminal's \r removed.
pty() { timeout 60 "$PTY" "$@" | tr -d '\r'; return "${PIPESTATUS[0]}"; }

out=$(pty size=33,111 -- "$S" --root "$ROOT" run -it --rootfs-layers "$LAYERS" \
	sh -c 'tty; stty size; readlink /proc/self/fd/0')
t_ok "run -it: the command's terminal is a pty" grep -qx '/dev/pts/[0-9]*' <<<"$(sed -n 1p <<<"$out")"
t_is "$(sed -n 2p <<<"$out")" "33 111" "run -it: the pty has the caller's window size"
t_is "$(sed -n 3p <<<"$out")" "$(sed -n 1p <<<"$out")" "stdin is that pty"
t_is "$(pty size=20,70 -- "$S" --root "$ROOT" run -t --rootfs-layers "$LAYERS" sh -c 'stty size')" \
	"20 70" "run -t without -i: the size is set too"
# A fresh pty every time: the size is there before the command's first look.
sizes=$(for i in 1 2 3 4 5; do
	pty size=21,71 -- "$S" --root "$ROOT" run -t --rootfs-layers "$LAYERS" sh -c 'stty size'
done | sort -u)
t_is "$sizes" "21 71" "the size is set before the command starts (5 runs)"
t_is "$(pty -- "$S" --root "$ROOT" run -it --rootfs-layers "$LAYERS" sh -c 'exit 42' >/dev/null; echo $?)" \
	"42" "run -it: the exit status comes back"
t_is "$(pty size=24,80 -- "$S" --root "$ROOT" run -it --rootfs-layers "$LAYERS" sh -c 'test -t 0 && test -t 1 && test -t 2 && echo all')" \
	"all" "stdin, stdout and stderr are the terminal"

# Typed input, echoed by the container's own pty (ours is raw).
out=$(pty size=24,80 wait=ready send='hello there\r' -- "$S" --root "$ROOT" run -it \
	--rootfs-layers "$LAYERS" sh -c 'echo ready; read x; echo "got <$x>"; exit 5')
st=$?
t_is "$(grep -c 'hello there' <<<"$out")" "2" "typed input is echoed once (by the container's pty) and read"
t_ok "the command read the line" grep -qx 'got <hello there>' <<<"$out"
t_is "$st" "5" "and its status comes back"
out=$(pty size=24,80 wait=ready send='\x03' -- "$S" --root "$ROOT" run -it --rootfs-layers "$LAYERS" \
	sh -c 'echo ready; sleep 30')
t_is "$?" "130" "^C typed interrupts the command (130), through its pty"
out=$(pty size=24,80 wait=ready send='line1\r' eof -- "$S" --root "$ROOT" run -it --rootfs-layers "$LAYERS" \
	sh -c 'echo ready; cat; echo "cat done"')
t_ok "^D ends the input of the command" grep -qx 'cat done' <<<"$out"
out=$(pty size=24,80 wait=ready size=50,132 wait=WINCH -- "$S" --root "$ROOT" run -it \
	--rootfs-layers "$LAYERS" \
	sh -c 'trap "echo WINCH; stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done')
t_ok "a resized terminal sends SIGWINCH to the command" grep -qx WINCH <<<"$out"
t_is "$(sed -n '/WINCH/{n;p}' <<<"$out")" "50 132" "with the new size"
# The caller's terminal is raw while attached and restored after.
out=$(pty size=24,80 -- sh -c "stty -g; '$S' --root '$ROOT' run -it --rootfs-layers '$LAYERS' true; stty -g")
t_is "$(sort -u <<<"$out" | wc -l)" "1" "the caller's terminal settings are restored on exit"
out=$(pty size=24,80 -- sh -c "'$S' --root '$ROOT' run -it --rootfs-layers /no/such true; stty -g" 2>&1)
t_ok "and after a container that fails to start" grep -q ':' <<<"$(tail -1 <<<"$out")"
t_is "$(pty -- sh -c "stty -g" | tail -1)" "$(tail -1 <<<"$out")" "(the same settings)"

# -i alone: stdin passes through, no terminal.
t_is "$(echo hi | run -i cat)" "hi" "-i without -t: stdin reaches the command"
t_is "$(printf 'a\nb\n' | run -i sh -c 'wc -l; test -t 0 || echo "no tty"')" "$(printf '2\nno tty')" \
	"-i: all of stdin, and it is not a terminal"
t_is "$(echo hi | run cat)" "" "without -i the command's stdin is empty"
t_is "$(pty size=24,80 -- sh -c "echo piped | '$S' --root '$ROOT' run -i --rootfs-layers '$LAYERS' sh -c 'cat; test -t 1 && echo out-is-tty'")" \
	"$(printf 'piped\nout-is-tty')" "-i without -t from a terminal: no pty of its own, stdout is the caller's"

# exec -t / -it
st run -d --name box --rootfs-layers "$LAYERS" sleep 1000 >/dev/null
out=$(pty size=27,99 -- "$S" --root "$ROOT" exec -it box sh -c 'tty; stty size; ls -1 /dev/pts')
t_ok "exec -it: a pty" grep -qx '/dev/pts/[0-9]*' <<<"$(sed -n 1p <<<"$out")"
t_is "$(sed -n 2p <<<"$out")" "27 99" "exec -it: the caller's window size"
t_ok "from the container's own devpts instance" grep -qx ptmx <<<"$(sed -n '3,$p' <<<"$out")"
t_is "$(pty size=22,66 -- "$S" --root "$ROOT" exec -t box sh -c 'stty size; exit 6'; echo "$?")" \
	"$(printf '22 66\n6')" "exec -t: size and exit status"
out=$(pty size=24,80 wait=ready send='typed\r' -- "$S" --root "$ROOT" exec -it box sh -c 'echo ready; read x; echo "got <$x>"')
t_ok "exec -it: typed input reaches the command" grep -qx 'got <typed>' <<<"$out"
out=$(pty size=24,80 wait=ready size=40,120 wait=WINCH -- "$S" --root "$ROOT" exec -it box \
	sh -c 'trap "echo WINCH; stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done')
t_is "$(sed -n '/WINCH/{n;p}' <<<"$out")" "40 120" "exec -it: SIGWINCH with the new size"
t_is "$(echo hi | st exec -i box cat)" "hi" "exec -i passes stdin"
t_is "$(echo hi | st exec box cat)" "" "exec without -i: empty stdin"
st rm -f box >/dev/null

# Detached with -t: the pty's output goes to the log.
st run -d -t --name dt --rootfs-layers "$LAYERS" sh -c 'tty; echo logged' >/dev/null
t_ok "run -dt: the output of the pty is logged" wait_for sh -c "'$S' --root '$ROOT' logs dt | grep -q logged"
t_ok "and the command had a terminal" sh -c "'$S' --root '$ROOT' logs dt | tr -d '\r' | grep -qx '/dev/pts/[0-9]*'"
st rm -f dt >/dev/null
t_done
