#!/bin/bash
# tests/fault/enospc.t: resource exhaustion.  The upper on an 8 MiB tmpfs:
# copy-ups and writes that run out of space fail with ENOSPC, leave the lower
# and the earlier upper content intact and nothing in the workdir, and the
# mount works again once space is freed.  The daemon under a limit of 64
# open files: it has the kernel forget idle inodes (fs/prune.c) to stay
# within it, anything it still cannot serve fails with EMFILE, the daemon
# lives on and serves every file again once the kernel forgets inodes.  EIO from a layer
# is tests/fault/eio.t.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fs/fslib.sh"
fs_need_sfs
t_need prlimit

mkdir -p "$T/lower/d" "$T/small"
head -c 16M /dev/urandom >"$T/lower/big16"
head -c 3M /dev/urandom >"$T/lower/mid"
echo lower-small >"$T/lower/small"
for i in $(seq 300); do echo "file $i" >"$T/lower/d/f$i"; done
lower_state() {
	(cd "$T/lower" && find . -printf '%p %y %m %s %T@\n' | LC_ALL=C sort &&
		find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}
lower_before=$(lower_state)
mount -t tmpfs -o size=8m tmpfs "$T/small" 2>"$T/err" ||
	t_skip_all "cannot mount a tmpfs: $(cat "$T/err")"
echo "$T/small" >>"$T/.mounts"
M=$T/mnt
used_kb() { df -k --output=used "$T/small" | tail -1 | tr -d ' '; }
work_empty() { [ -z "$(work_leftovers "$T/small/work")" ]; }

# full_disk MODE EXTRA-OPTIONS: the whole ENOSPC sequence on an empty tmpfs.
full_disk() {
	local mode=$1 r base
	rm -rf "$T/small/upper" "$T/small/work"
	mkdir -p "$T/small/upper" "$T/small/work"
	OPTS=lowerdir=$T/lower,upperdir=$T/small/upper,workdir=$T/small/work$2
	t_ok "$mode: mount with the upper on an 8 MiB tmpfs" sfs_mount "$M" "$OPTS"
	echo kept >"$M/prev"
	base=$(used_kb)
	t_is "$(fsop append "$M/big16" x)" ENOSPC "$mode: append to a 16 MiB lower file: copy-up fails with ENOSPC"
	t_is "$(md5sum <"$M/big16")" "$(md5sum <"$T/lower/big16")" "$mode: the 16 MiB file still reads as the lower"
	t_ok "$mode: the failed copy-up left nothing in the workdir" work_empty
	t_ok "$mode: nor data in the upper (a metacopy stub at most)" sh -c "[ ! -e '$T/small/upper/big16' ] || [ \$(stat -c %b '$T/small/upper/big16') -le 16 ]"
	t_ok "$mode: and its space is free again ($(used_kb) KiB used, $base before)" test "$(used_kb)" -le $((base + 64))

	dd if=/dev/zero of="$M/fill" bs=64k 2>"$T/dd.err" status=none
	t_ok "$mode: filling the upper ends with ENOSPC" grep -q "No space left on device" "$T/dd.err"
	t_ok "$mode: the daemon is alive" stat "$M/prev"
	r=$(fsop append "$M/small" more)
	t_ok "$mode: copy-up of a small file when full: ENOSPC or done ($r)" test "$r" = ENOSPC -o "$r" = OK
	if [ "$r" = ENOSPC ]; then
		t_is "$(cat "$M/small")" lower-small "$mode: the small file keeps its lower content"
	else
		t_is "$(cat "$M/small")" lower-smallmore "$mode: the small file has the appended text"
	fi
	r=$(fsop chmod "$M/mid" 600)
	t_ok "$mode: chmod of a lower file when full: ENOSPC or done ($r)" test "$r" = ENOSPC -o "$r" = OK
	t_is "$(md5sum <"$M/mid")" "$(md5sum <"$T/lower/mid")" "$mode: the chmodded file keeps its data"
	head -c 200k /dev/urandom >"$T/chunk"
	cat "$T/chunk" >>"$M/prev" 2>/dev/null
	t_is "$(head -c 5 "$M/prev")" kept "$mode: a write that ran out of space left the earlier content"
	t_ok "$mode: the workdir holds nothing" work_empty

	t_ok "$mode: freeing space" rm "$M/fill"
	t_is "$(fsop append "$M/mid" tail)" OK "$mode: copy-up of a 3 MiB file works again"
	t_is "$( (cat "$T/lower/mid"; printf tail) | md5sum)" "$(md5sum <"$M/mid")" "$mode: with the right content"
	head -c 1M /dev/urandom >"$T/one"
	t_ok "$mode: a new 1 MiB file can be written" cp "$T/one" "$M/one"
	t_ok "$mode: and read back" cmp "$T/one" "$M/one"
	t_ok "$mode: unmount" t_umount "$M"
	t_ok "$mode: remount" sfs_mount "$M" "$OPTS"
	t_is "$(head -c 5 "$M/prev")" kept "$mode: the earlier upper content persisted"
	t_is "$(md5sum <"$M/big16")" "$(md5sum <"$T/lower/big16")" "$mode: the 16 MiB file is the lower one"
	t_ok "$mode: unmount again" t_umount "$M"
	t_ok "$mode: the workdir holds nothing" work_empty

}
full_disk metacopy ""
full_disk metacopy=off ,metacopy=off

# EMFILE: the daemon in the foreground under prlimit --nofile=64.
mkdir -p "$T/u2" "$T/w2"
OPTS2=lowerdir=$T/lower,upperdir=$T/u2,workdir=$T/w2
mkdir -p "$T/m2"
echo "$T/m2" >>"$T/.mounts"
prlimit --nofile=64 "$STRATA_FS" -f -o "$OPTS2" "$T/m2" 2>"$T/d2.err" &
D2=$!
echo $D2 >>"$T/.pids"
for _ in $(seq 400); do mountpoint -q "$T/m2" && break; sleep 0.05; done
t_ok "mount under prlimit --nofile=64" mountpoint -q "$T/m2"
for i in $(seq 300); do fsop read "$T/m2/d/f$i"; done | sort | uniq -c >"$T/emfile.out"
t_diag "reading 300 files with 64 descriptors: $(tr -s ' \n' ' ' <"$T/emfile.out")"
t_ok "every failure is EMFILE or ENFILE" sh -c "! grep -v ' OK$\| EMFILE$\| ENFILE$' '$T/emfile.out'"
t_ok "the daemon survives running out of descriptors" kill -0 $D2
# Copy-up needs descriptors too: out of them it fails cleanly.
r=$(fsop append "$T/m2/small" x)
t_diag "append under the limit: $r"
t_ok "a copy-up out of descriptors left nothing in the workdir" \
	sh -c "[ -z \"\$(find '$T/w2/work' -mindepth 1 ! -path '$T/w2/work/whiteout')\" ] || [ $r = OK ]"
if [ "$(id -u)" = 0 ] && [ "$STRATA_ROOTLESS" != 1 ] && echo 2 >/proc/sys/vm/drop_caches 2>/dev/null; then
	# the kernel's forgets reach the daemon in their own time
	for _ in $(seq 100); do [ "$(ls "/proc/$D2/fd" | wc -l)" -lt 48 ] && break; sleep 0.1; done
	bad=0
	for i in $(seq 1 300); do
		[ "$(cat "$T/m2/d/f$i" 2>/dev/null)" = "file $i" ] || bad=$((bad + 1))
		# the kernel keeps only what it uses: forget as we go
		[ $((i % 40)) = 0 ] && echo 2 >/proc/sys/vm/drop_caches
	done
	t_is "$bad" 0 "after the kernel forgot the inodes every file reads again"
else
	t_skip "after the kernel forgot the inodes every file reads again" "needs root for drop_caches"
fi
t_ok "unmount the limited daemon" t_umount "$T/m2"
t_is "$(lower_state)" "$lower_before" "lower layer unchanged"

t_done
