#!/bin/bash
# tests/fs/locks.t: file locking and mmap through the mount: flock(2)
# exclusive/shared between processes (also across a copy-up), POSIX fcntl
# record locks (conflicts and F_GETLK), and mmap: MAP_SHARED writes reach the
# file (and survive a remount), MAP_PRIVATE writes do not, a mapping sees
# write(2) from another descriptor.  Each step also runs on a plain directory.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"
t_need flock
for h in locktest mmaptest; do [ -x "$HELPERS/$h" ] || t_skip_all "no helper $HELPERS/$h (run make)"; done

L=$T/lower U=$T/upper W=$T/work M=$T/mnt R=$T/ref
mkdir -p "$L" "$U" "$W"
for f in fl fs fc rl ml mp mc; do head -c 8192 /dev/zero | tr '\0' . >"$L/$f"; done
cp -a "$L" "$R"
mount_sfs() { sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"; }
mount_sfs || t_skip_all "cannot mount strata-fs"

# both DESC CMDS: CMDS ($D is the directory) on the reference and the mount.
both() {
	local want got
	want=$(D=$R && eval "$2" 2>&1)
	got=$(D=$M && eval "$2" 2>&1)
	t_is "$got" "$want" "$1"
}

# hold MODE FILE: a background process holding flock MODE (-x/-s) on FILE
# (opened read-only, created if missing) until killed; returns once held.
hold() {
	# (called in $(...) subshells, where the counter restarts: the marker
	# of an earlier run must not count as this lock being held)
	local ready=$T/held.$BASHPID.$((++nhold))
	rm -f "$ready"
	[ -e "$2" ] || : >"$2"
	(exec 9<"$2" && flock "$1" 9 && touch "$ready" && exec sleep 30) &
	holder=$!
	echo $holder >>"$T/.pids"
	for _ in $(seq 200); do [ -e "$ready" ] && return 0; sleep 0.05; done
	return 1
}
nhold=0
release() { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }
try() { flock -n "$1" "$2" true && echo got || echo busy; }
# rwflock FILE: opens FILE read-write (copying it up) and tries flock -n -x.
rwflock() { (exec 9<>"$1" && flock -n -x 9 && echo got || echo busy); }

# flock
flocks() {
	local D=$1
	hold -x "$D/fl" || { echo "could not take the lock"; return; }
	echo "while exclusive: -x $(try -x "$D/fl"), -s $(try -s "$D/fl")"
	release
	echo "after release: -x $(try -x "$D/fl")"
	hold -s "$D/fs" || return
	echo "while shared: -s $(try -s "$D/fs"), -x $(try -x "$D/fs")"
	release
	hold -x "$D/fc" || return
	echo "copy-up while locked: $(echo w >>"$D/fc" && rwflock "$D/fc")"
	release
	echo "after release: $(rwflock "$D/fc")"
	hold -x "$D/new-unused" || return
	echo "new file: -x $(try -x "$D/new-unused")"
	release
}
want=$(flocks "$R")
t_is "$want" "while exclusive: -x busy, -s busy
after release: -x got
while shared: -s got, -x busy
copy-up while locked: busy
after release: got
new file: -x busy" "flock on a plain directory (reference)"
t_is "$(flocks "$M")" "$want" "flock exclusive/shared between processes, across copy-up"

# POSIX record locks
locks_want="parent write lock: ok
overlapping write lock: busy
overlapping read lock: busy
getlk type: F_WRLCK
getlk pid is holder: yes
getlk range: 0+100
disjoint write lock: ok
parent unlock: ok
after unlock write lock: ok"
t_is "$("$HELPERS/locktest" "$R/rl" 2>&1)" "$locks_want" "fcntl locks on a plain directory (reference)"
t_is "$("$HELPERS/locktest" "$M/rl" 2>&1)" "$locks_want" "fcntl locks on a lower file"
t_is "$("$HELPERS/locktest" "$M/rl" 2>&1)" "$locks_want" "fcntl locks on the copied-up file"
echo x >"$M/rnew"
t_is "$("$HELPERS/locktest" "$M/rnew" 2>&1)" "$locks_want" "fcntl locks on a new file"

# mmap
both "MAP_SHARED write to a lower file, read back with read(2)" '$HELPERS/mmaptest shared $D/ml 100 SHARED-WRITE'
both "MAP_SHARED write: file content" 'md5sum <$D/ml; stat -c %s $D/ml'
t_is "$(head -c 200 "$L/ml" | tail -c 100)" "$(head -c 100 /dev/zero | tr '\0' .)" "lower file untouched by the mapping"
both "MAP_PRIVATE write to a lower file stays private" '$HELPERS/mmaptest private $D/mp 10 PRIVATE'
both "MAP_PRIVATE write: file content unchanged" 'md5sum <$D/mp'
both "mapping of a new file sees write(2) through another descriptor" \
	'head -c 8192 /dev/zero >$D/mnew && $HELPERS/mmaptest coherent $D/mnew 4000 COHERENT'
both "mapping of a lower file sees write(2) through another descriptor (copy-up)" \
	'$HELPERS/mmaptest coherent $D/mc 5 LATER'
both "MAP_SHARED write to a new file" '$HELPERS/mmaptest shared $D/mnew 8000 TAIL && tail -c 192 $D/mnew | head -c 10 | tr "\\0" 0'

t_ok "unmount" t_umount "$M"
t_ok "remount" mount_sfs
both "after remount: MAP_SHARED writes kept" 'dd if=$D/ml bs=1 skip=100 count=12 status=none; echo; dd if=$D/mnew bs=1 skip=8000 count=4 status=none'
both "after remount: content of every file" 'cd $D && md5sum ml mp mc mnew fc'
t_done
