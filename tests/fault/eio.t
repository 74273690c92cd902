#!/bin/bash
# tests/fault/eio.t: EIO from a layer.  The lower is errfs (tests/helpers/
# errfs.c), a FUSE passthrough standing in for a failing disk: reads of eio-*
# files, reads past 64 KiB of eiotail-* files and listings of eiodir-*
# directories fail with EIO, and a control file makes every operation fail,
# or none.  Through strata-fs the errors come back as EIO (not ENOENT, not a
# hang), the daemon lives on, a copy-up that cannot read its data leaves no
# partial upper file and nothing in the workdir, and once the layer is healed
# everything works, copy-ups included.  Known defect, marked TODO: a read
# that fails part-way through a lower file ends early as if at end of file.
# rootless: yes

# A mount namespace of its own: one made meanwhile by another process (a
# container, a rootless test) would copy these mounts, and its copies keep
# strata-fs and errfs running after they are unmounted here.
if [ -z "${EIO_OWN_NS:-}" ] && unshare --mount true 2>/dev/null; then
	EIO_OWN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fs/fslib.sh"
fs_need_sfs
[ -x "$HELPERS/errfs" ] || t_skip_all "errfs helper not built in $HELPERS (run make)"

mkdir -p "$T/lower/d" "$T/lower/eiodir-bad" "$T/lower/eiodir-merged" "$T/lower/fresh/sub" "$T/layer"
echo "lower ok" >"$T/lower/ok"
for i in $(seq 20); do echo "file $i" >"$T/lower/d/f$i"; done
for f in eio-data eio-meta eio-full eiotail-read eiotail-copy eiotail-meta; do
	head -c 200k /dev/urandom >"$T/lower/$f"
done
echo a >"$T/lower/eiodir-bad/a"
echo b >"$T/lower/eiodir-bad/b"
echo c >"$T/lower/eiodir-merged/c"
for i in 1 2 3; do echo "fresh $i" >"$T/lower/fresh/f$i"; done
echo g >"$T/lower/fresh/sub/g"
CTL=$T/ctl
echo names >"$CTL"

# errfs in the foreground, so its end is ours to see; unmounted after strata-fs.
echo "$T/layer" >>"$T/.mounts"
"$HELPERS/errfs" -f -o "ctl=$CTL" "$T/lower" "$T/layer" 2>"$T/errfs.err" &
ERRFS=$!
echo "$ERRFS" >>"$T/.pids"
for _ in $(seq 200); do
	mountpoint -q "$T/layer" && break
	kill -0 "$ERRFS" 2>/dev/null || break
	sleep 0.05
done
mountpoint -q "$T/layer" || t_skip_all "errfs does not mount here: $(head -3 "$T/errfs.err")"

M=$T/mnt
# gone PID: waits up to a minute for PID to end, else shows where it is.
gone() {
	local t
	for _ in $(seq 600); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "pid $1 still runs: $(grep State /proc/"$1"/status)"
	for t in /proc/"$1"/task/*; do echo "$t: $(cat "$t/wchan")"; done
	return 1
}
# mount_fg OPTS: strata-fs on $M in the foreground, its pid in $SFS, so a
# test can see it live on and, after the unmount, end (and let go of errfs).
mount_fg() {
	mkdir -p "$M"
	echo "$M" >>"$T/.mounts"
	"$STRATA_FS" -f -o "$1" "$M" 2>>"$T/sfs.err" &
	SFS=$!
	echo "$SFS" >>"$T/.pids"
	for _ in $(seq 400); do
		mountpoint -q "$M" && return 0
		kill -0 "$SFS" 2>/dev/null || break
		sleep 0.05
	done
	tail -5 "$T/sfs.err"
	return 1
}
# umount_fg: unmounts $M and waits for the daemon to end (the machine may be
# loaded: up to a minute).
umount_fg() {
	t_umount "$M" && gone "$SFS"
}
# op ARGS...: fsop's verdict (OK or the errno name), HANG after 60 s.
op() {
	local r
	r=$(timeout 60 "$HELPERS/fsop" "$@")
	[ $? = 124 ] && r=HANG
	echo "$r"
}
# lsv DIR: OK, EIO when ls says "Input/output error", HANG, or ls's error.
lsv() {
	timeout 60 ls "$1" >"$T/ls.out" 2>"$T/ls.err"
	case $? in
	0) echo OK ;;
	124) echo HANG ;;
	*) grep -q "Input/output error" "$T/ls.err" && echo EIO || head -1 "$T/ls.err" ;;
	esac
}
work_empty() { [ -z "$(work_leftovers "$1")" ]; }
# no_partial PATH: nothing at PATH in the upper, or a metacopy file holding
# no data (its data still comes from the lower).
no_partial() {
	[ ! -e "$1" ] && [ ! -L "$1" ] && return 0
	getfattr -h -n "$(ovl_xattr_prefix)metacopy" "$1" >/dev/null 2>&1 && [ "$(blocks "$1")" -le 8 ]
}
has_metacopy() { getfattr -h -n "$(ovl_xattr_prefix)metacopy" "$1" >/dev/null 2>&1; }
heal() { echo off >"$CTL"; }
hurt() { echo "$1" >"$CTL"; }

mkdir -p "$T/upper" "$T/work"
OPTS=lowerdir=$T/layer,upperdir=$T/upper,workdir=$T/work
t_ok "mount strata-fs with errfs as the lower" mount_fg "$OPTS"

# Reads.
t_is "$(op read "$M/eio-data")" EIO "reading an eio- file: EIO"
t_is "$(op read "$M/eio-data")" EIO "and again EIO (no error cached as data)"
dd if="$M/eio-data" of=/dev/null bs=64k status=none 2>"$T/dd.err"
t_ok "dd of the eio- file reports an I/O error" grep -q "Input/output error" "$T/dd.err"
t_is "$(stat -c %s "$M/eio-data")" 204800 "its attributes read fine"
t_is "$(cat "$M/ok")" "lower ok" "another file reads fine"
t_is "$(cat "$M"/d/f* | md5sum)" "$(cat "$T"/lower/d/f* | md5sum)" "a directory of files reads fine"
t_ok "the daemon is alive" kill -0 "$SFS"
t_ok "and serves: stat of the mount" stat "$M"
# A read that fails part-way: the kernel takes a short FUSE reply for the end
# of the file, so the error must be the reply.
t_is "$(dd if="$M/eiotail-read" bs=4k count=16 status=none | md5sum)" "$(head -c 64k "$T/lower/eiotail-read" | md5sum)" "an eiotail- file: the data before the bad spot reads"
dd if="$M/eiotail-read" of=/dev/null bs=4k status=none 2>"$T/dd.err"
t_ok "reading it whole fails with an I/O error" grep -q "Input/output error" "$T/dd.err"
t_ok "and its size is still the lower's" test "$(stat -c %s "$M/eiotail-read")" = 204800
t_ok "statfs of the mount" stat -f "$M"

# Copy-up of a file whose data cannot be read.
t_is "$(op chmod "$M/eio-meta" 600)" OK "chmod of an eio- file (metadata-only copy-up) works"
t_is "$(stat -c %a "$M/eio-meta")" 600 "the new mode shows"
t_ok "the upper holds a metacopy file without data" has_metacopy "$T/upper/eio-meta"
t_is "$(op read "$M/eio-meta")" EIO "its data still comes from the lower: EIO"
t_is "$(op append "$M/eio-data" tail)" EIO "append to an eio- file: the data copy-up fails with EIO"
t_ok "the upper holds no partial file (a metacopy stub at most)" no_partial "$T/upper/eio-data"
t_ok "the workdir holds no temporary" work_empty "$T/work"
t_is "$(op read "$M/eio-data")" EIO "the file still reads from the lower: EIO"
t_is "$(stat -c %s "$M/eio-data")" 204800 "and keeps the lower size"
t_is "$(op append "$M/eiotail-copy" tail)" EIO "append to an eiotail- file: the data copy fails part-way with EIO"
t_ok "the upper holds no partial data (a metacopy stub at most)" no_partial "$T/upper/eiotail-copy"
t_ok "the workdir holds no temporary" work_empty "$T/work"
t_is "$(op trunc "$M/eio-full")" OK "truncating an eio- file needs no data: works"
t_is "$(stat -c %s "$M/eio-full")" 0 "it is empty"
heal
t_is "$(op append "$M/eio-data" tail)" OK "healed: the append is retried and works"
t_is "$(md5sum <"$M/eio-data")" "$( (cat "$T/lower/eio-data" && printf tail) | md5sum)" "with the lower data and the appended text"
t_ok "the upper is a full copy (no metacopy mark)" sh -c "[ -f '$T/upper/eio-data' ] && ! getfattr -h -n '$(ovl_xattr_prefix)metacopy' '$T/upper/eio-data' 2>/dev/null"
t_is "$(md5sum <"$M/eio-meta")" "$(md5sum <"$T/lower/eio-meta")" "healed: the chmodded file reads the lower data"
t_is "$(op append "$M/eiotail-copy" tail)" OK "healed: the append to the eiotail- file works"
t_is "$(md5sum <"$M/eiotail-copy")" "$( (cat "$T/lower/eiotail-copy" && printf tail) | md5sum)" "with the whole lower data and the appended text"
t_ok "the workdir holds nothing" work_empty "$T/work"
hurt names

# Listings.
t_is "$(lsv "$M/eiodir-bad")" EIO "listing an eiodir- directory: EIO"
t_is "$(op rmdir "$M/eiodir-bad")" EIO "rmdir of it: EIO (its emptiness is unknown)"
t_ok "it is still there" test -d "$M/eiodir-bad"
t_is "$(cat "$M/eiodir-bad/a")" a "a file in it reads by name"
t_is "$(op creat "$M/eiodir-merged/new")" OK "a file created in another eiodir- directory"
t_is "$(lsv "$M/eiodir-merged")" EIO "listing that merged directory: EIO, not the upper alone"
t_is "$(lsv "$M")" OK "the root lists"
t_is "$(LC_ALL=C ls "$M" | tr '\n' ' ')" "d eio-data eio-full eio-meta eiodir-bad eiodir-merged eiotail-copy eiotail-meta eiotail-read fresh ok " "with every entry"
t_is "$(ls "$M/d" | wc -l)" 20 "another directory lists fully"
heal
t_is "$(ls "$M/eiodir-bad" | tr '\n' ' ')" "a b " "healed: the eiodir- directory lists"
t_is "$(ls "$M/eiodir-merged" | tr '\n' ' ')" "c new " "and the merged one, both layers"
hurt names

# Every operation of the layer failing at run time.  The names used were
# never read or listed before, so the kernel's caches of strata-fs cannot
# answer in place of the layer.
echo upper-only >"$M/mine"
echo more >>"$M/d/f2"
stat "$M/fresh" >/dev/null
hurt all
t_is "$(op stat "$M/fresh/f1")" EIO "all failing: lookup of a lower file: EIO"
t_is "$(op read "$M/fresh/f2")" EIO "read of a lower file: EIO"
t_is "$(op read "$M/ok")" EIO "open of a looked-up lower file not read before: EIO"
t_is "$(lsv "$M/fresh")" EIO "listing a lower directory: EIO"
t_is "$(op append "$M/d/f1" x)" EIO "copy-up of a lower file: EIO"
t_ok "it left no partial file in the upper" no_partial "$T/upper/d/f1"
t_ok "and nothing in the workdir" work_empty "$T/work"
t_is "$(op read "$M/mine")" OK "an upper-only file still reads"
# Whether a whiteout is needed depends on the lower: unknown, nothing moves.
t_is "$(op rename "$M/d/f2" "$M/d/f2r")" EIO "rename of a copied-up file: EIO"
t_is "$(op unlink "$M/eio-data")" EIO "unlink of a copied-up file: EIO"
t_diag "creating a file while the lower fails: $(op creat "$M/fresh2")"
t_ok "the daemon is alive" kill -0 "$SFS"
t_ok "the mount is still served" stat -f "$M"
t_ok "errfs is alive" kill -0 "$ERRFS"
heal
t_is "$(cat "$M/fresh/f1")" "fresh 1" "healed: the lookup that failed works"
t_is "$(cat "$M/fresh/f2")" "fresh 2" "the read that failed works"
t_is "$(cat "$M/ok")" "lower ok" "the open that failed works"
t_is "$(ls "$M/fresh" | tr '\n' ' ')" "f1 f2 f3 sub " "the listing that failed works"
t_is "$(op append "$M/d/f1" x)" OK "the copy-up that failed works"
t_is "$(cat "$M/d/f1")" "$(printf 'file 1\nx')" "with the right content"
t_is "$(cat "$M/mine")" upper-only "the upper-only file is intact"
t_is "$(cat "$M/d/f2"; op stat "$M/d/f2r")" "$(printf 'file 2\nmore\nENOENT')" "the file whose rename failed is where it was"
t_is "$(md5sum <"$M/eio-data")" "$( (cat "$T/lower/eio-data" && printf tail) | md5sum)" "the file whose unlink failed is intact"
t_ok "strata-fs lived through it all" kill -0 "$SFS"
t_ok "unmount, the daemon ends" umount_fg
t_ok "the workdir holds nothing" work_empty "$T/work"

# Without metacopy a chmod copies the data too, and fails with it.
hurt names
mkdir -p "$T/upper2" "$T/work2"
OPTS2=lowerdir=$T/layer,upperdir=$T/upper2,workdir=$T/work2,metacopy=off
t_ok "metacopy=off: mount" mount_fg "$OPTS2"
t_is "$(op chmod "$M/eio-meta" 600)" EIO "metacopy=off: chmod of an eio- file copies data: EIO"
t_is "$(op append "$M/eio-data" x)" EIO "metacopy=off: append to an eio- file: EIO"
t_is "$(op chmod "$M/eiotail-meta" 600)" EIO "metacopy=off: chmod of an eiotail- file fails part-way: EIO"
t_is "$(ls -A "$T/upper2" | tr '\n' ' ')" "" "metacopy=off: nothing of them in the upper"
t_ok "metacopy=off: the workdir holds no temporary" work_empty "$T/work2"
t_is "$(stat -c %a "$M/eio-meta")" "$(stat -c %a "$T/lower/eio-meta")" "metacopy=off: the mode is unchanged"
heal
t_is "$(op chmod "$M/eio-meta" 600)" OK "metacopy=off: healed, the chmod works"
t_is "$(md5sum <"$M/eio-meta")" "$(md5sum <"$T/lower/eio-meta")" "metacopy=off: with the lower data"
t_is "$(op chmod "$M/eiotail-meta" 600)" OK "metacopy=off: healed, the chmod of the eiotail- file works"
t_is "$(md5sum <"$M/eiotail-meta")" "$(md5sum <"$T/lower/eiotail-meta")" "metacopy=off: with all the lower data"
t_ok "metacopy=off: the daemon is alive" kill -0 "$SFS"
t_ok "metacopy=off: unmount, the daemon ends" umount_fg
t_ok "metacopy=off: the workdir holds nothing" work_empty "$T/work2"

# A read-only mount (no upper): the lower's errors come back the same way.
hurt names
t_ok "read-only: mount" mount_fg "lowerdir=$T/layer"
t_is "$(op read "$M/eio-data")" EIO "read-only: reading an eio- file: EIO"
t_is "$(cat "$M/ok")" "lower ok" "read-only: another file reads fine"
t_is "$(lsv "$M/eiodir-bad")" EIO "read-only: listing an eiodir- directory: EIO"
hurt all
t_is "$(op read "$M/fresh/f3")" EIO "read-only: all failing: a read is EIO"
t_is "$(lsv "$M/fresh/sub")" EIO "read-only: all failing: a listing is EIO"
heal
t_is "$(cat "$M/eio-data" | md5sum)" "$(md5sum <"$T/lower/eio-data")" "read-only: healed, the eio- file reads"
t_is "$(ls "$M/fresh/sub")" g "read-only: healed, the listing works"
t_ok "read-only: the daemon is alive" kill -0 "$SFS"
t_ok "read-only: unmount, the daemon ends" umount_fg

t_ok "errfs unmounts" t_umount "$T/layer"
t_ok "and exits" gone "$ERRFS"
t_done
