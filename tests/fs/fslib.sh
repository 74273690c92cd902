# tests/fs/fslib.sh: helpers shared by the tests in tests/fs, sourced after
# tests/lib.sh.  Layer building (whiteouts, opaque dirs in either format),
# error-code probes, and checks of what the machine can do.
#
#   fs_need_sfs             skips the file when the strata-fs binary is missing
#   kovl_usable             true when kernel overlayfs mounts here
#   fsop OP ARGS...         prints OK or the errno name of one syscall
#   mk_whiteout PATH        overlayfs whiteout (char 0/0)
#   mk_opaque DIR           overlayfs opaque xattr in this mode's namespace
#   upper_type PATH         "whiteout", "file", "dir", "symlink" or "none"
#   blocks PATH             allocated 512-byte blocks
#   mount_limited N OPTS    mounts $T/mnt with the daemon under prlimit
#                           --nofile=N (its stderr in $T/d.err, its pid in D)
#   fds_watch               samples the daemon $D's open fds every 20 ms
#   fds_max                 ends the sampling; prints the most seen

fs_need_sfs() {
	[ -x "$STRATA_FS" ] || t_skip_all "strata-fs binary $STRATA_FS not built"
	[ -c /dev/fuse ] || t_skip_all "no /dev/fuse"
	[ -x "$HELPERS/fsop" ] || t_skip_all "test helpers not built in $HELPERS (run make)"
	t_need setfattr getfattr
}

# Probes once per test file: a kernel overlay mount of two empty lowers.
kovl_usable() {
	if [ -z "${_kovl_ok:-}" ]; then
		mkdir -p "$T/.kprobe/l1" "$T/.kprobe/l2" "$T/.kprobe/m"
		if kovl_mount "$T/.kprobe/m" "lowerdir=$T/.kprobe/l1:$T/.kprobe/l2" 2>/dev/null; then
			_kovl_ok=1
			t_umount "$T/.kprobe/m"
		else
			_kovl_ok=0
		fi
	fi
	[ "$_kovl_ok" = 1 ]
}

fsop() {
	"$HELPERS/fsop" "$@"
}

mk_whiteout() {
	rm -rf "$1" && mknod "$1" c 0 0
}

mk_opaque() {
	setfattr -n "$(ovl_xattr_prefix)opaque" -v y "$1"
}

upper_type() {
	if [ -L "$1" ]; then
		echo symlink
	elif [ -c "$1" ] && [ "$(stat -c '%t:%T' "$1")" = 0:0 ]; then
		echo whiteout
	elif [ -f "$1" ]; then
		echo file
	elif [ -d "$1" ]; then
		echo dir
	elif [ -e "$1" ]; then
		echo other
	else
		echo none
	fi
}

blocks() {
	stat -c %b "$1"
}

# The content of a regular file, or a marker saying why it cannot be read.
cat_or() {
	cat "$1" 2>/dev/null || echo "<unreadable>"
}

mount_limited() {
	echo "$T/mnt" >>"$T/.mounts"
	prlimit --nofile="$1" "$STRATA_FS" -f -o "$2" "$T/mnt" 2>"$T/d.err" &
	D=$!
	echo $D >>"$T/.pids"
	for _ in $(seq 200); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
}

fds_watch() {
	(
		max=0
		while kill -0 "$D" 2>/dev/null && [ ! -e "$T/.fds-stop" ]; do
			n=$(ls "/proc/$D/fd" 2>/dev/null | wc -l)
			[ "$n" -gt "$max" ] && echo "$n" >"$T/.fds-max" && max=$n
			sleep 0.02
		done
	) &
	_fds_watcher=$!
}

fds_max() {
	: >"$T/.fds-stop"
	wait "$_fds_watcher"
	cat "$T/.fds-max"
}

# start_debug OPTS: the daemon in the foreground, its debug log in $T/d.log
start_debug() {
	mkdir -p "$T/mnt"
	echo "$T/mnt" >>"$T/.mounts"
	"$STRATA_FS" -d -o "$1" "$T/mnt" >"$T/d.log" 2>&1 &
	echo $! >>"$T/.pids"
	for _ in $(seq 200); do mountpoint -q "$T/mnt" && return 0; sleep 0.05; done
	return 1
}
# logged PATTERN [SECONDS]: waits up to SECONDS (10) for the debug log to
# hold a line matching PATTERN (grep); the daemon writes some lines only
# after the mount is in place (INIT) or on its own threads
logged() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		grep -q -- "$1" "$T/d.log" && return 0
		sleep 0.05
	done
	return 1
}
# requests of one kind the daemon has seen so far
seen() {
	grep -c "opcode: $1 " "$T/d.log"
}
