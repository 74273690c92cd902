# bench/lib.sh: mounting and unmounting each filesystem under test, the
# daemon's pid and peak RSS, and the clock.  Sourced by bench/run.sh.
#
#   fs_mount FS RUNDIR         mounts FS on RUNDIR/mnt with a fresh upper in
#                              RUNDIR (or, for native, a fresh working copy)
#   fs_umount FS RUNDIR        unmounts, waits for the daemon, removes RUNDIR
#   fs_daemon_pid              pid of the FUSE daemon mounted last (or empty)
#   fs_daemon_stats            "VmHWM_KiB cpu_seconds" of that daemon
#   now                        monotonic clock in seconds (ns resolution)
#   drop_caches                writes back and drops page, dentry, inode caches
#
# Expects IMG (the image dir: l1 l2 l3 native), B (build dir), STRATA_FS.

FS_ALL="native kovl strata fuse-ovl unionfs"
_daemon_pid=

fs_label() {
	case $1 in
	native) echo "native dir" ;;
	kovl) echo "kernel overlayfs" ;;
	strata) echo "strata-fs" ;;
	fuse-ovl) echo "fuse-overlayfs" ;;
	unionfs) echo "unionfs-fuse" ;;
	*) echo "$1" ;;
	esac
}

now() {
	"$B/bench/mono"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# lowerdir= value, top layer first, as overlayfs and its FUSE clones take it.
_lowers() {
	echo "$IMG/l3:$IMG/l2:$IMG/l1"
}

# The native tree is shared by every native run, so a run gets a hard-link
# farm of it (cheap) and fresh real copies of the paths its workload changes
# in place: hard links would carry chmod, append or truncate into the image.
_native_prepare() {
	local run=$1 p
	cp -al "$IMG/native" "$run/mnt"
	for p in $NATIVE_OWN; do
		rm -rf "${run:?}/mnt/$p"
		cp -a "$IMG/native/$p" "$run/mnt/$p"
	done
}

# Finds the daemon serving MNT: the process of that binary whose command line
# names MNT.  FUSE daemons fork away from the shell that started them.
_find_daemon() {
	local bin=$1 mnt=$2 p cmd
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$bin" ] || continue
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case " $cmd " in
		*" $mnt "*)
			echo "${p#/proc/}"
			return 0
			;;
		esac
	done
	return 1
}

fs_mount() {
	local fs=$1 run=$2 mnt=$2/mnt up=$2/upper wk=$2/work bin
	_daemon_pid=
	mkdir -p "$run"
	if [ "$fs" = native ]; then
		_native_prepare "$run"
		return
	fi
	mkdir -p "$mnt" "$up" "$wk"
	case $fs in
	kovl)
		mount -t overlay overlay -o "lowerdir=$(_lowers),upperdir=$up,workdir=$wk" "$mnt"
		return
		;;
	strata)
		bin=$(readlink -f "$STRATA_FS")
		"$bin" -o "lowerdir=$(_lowers),upperdir=$up,workdir=$wk" "$mnt" || return
		;;
	fuse-ovl)
		bin=$(readlink -f "$(command -v fuse-overlayfs)")
		"$bin" -o "lowerdir=$(_lowers),upperdir=$up,workdir=$wk" "$mnt" || return
		;;
	unionfs)
		bin=$(readlink -f "$(command -v unionfs)")
		"$bin" -o cow,allow_other,use_ino,suid,dev \
			"$up=RW:$IMG/l3=RO:$IMG/l2=RO:$IMG/l1=RO" "$mnt" || return
		;;
	*)
		echo "bench: unknown filesystem $fs" >&2
		return 1
		;;
	esac
	mountpoint -q "$mnt" || {
		echo "bench: $fs: $mnt is not a mount point after mounting" >&2
		return 1
	}
	_daemon_pid=$(_find_daemon "$bin" "$mnt") || _daemon_pid=
}

fs_daemon_pid() {
	echo "$_daemon_pid"
}

# Peak resident set (KiB) and user+system CPU (s) of the daemon; read before
# unmounting, since the process is gone after.
fs_daemon_stats() {
	local pid=$_daemon_pid hwm ticks
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/status" ]; then
		echo "- -"
		return
	fi
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
	# Fields 14 and 15 of stat; the command name (field 2) may hold spaces.
	ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
	echo "${hwm:--} $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')"
}

fs_umount() {
	local fs=$1 run=$2 mnt=$2/mnt pid=$_daemon_pid i
	if mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	# A FUSE daemon exits on its own once unmounted; give it time, then stop it.
	if [ -n "$pid" ]; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null
	fi
	_daemon_pid=
	rm -rf "${run:?}"
}

# For the exit trap: whatever is still mounted below DIR, deepest first.
fs_umount_all() {
	local dir=$1 m
	for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	[ -n "$_daemon_pid" ] && kill "$_daemon_pid" 2>/dev/null
	_daemon_pid=
}
