#!/bin/bash
# tests/fs/prefetch.t: the readahead of a directory's small lower files
# (fs/file.c, sfs_dir_readahead).  A program that listed a directory and
# opens one small lower file in it, or opens a second one without listing
# it, makes the daemon start the reads of the directory's other lower files
# of at most 128 KiB into the page cache; larger files, other directories
# and a mount with prefetch=0 are left alone.  Which pages of a lower file
# are in memory is read with fincore; they are dropped first with
# posix_fadvise(DONTNEED) (dd iflag=nocache), which needs a layer on a disk
# filesystem (on tmpfs the pages are the data).  A directory read ahead
# to its end is marked free of OCI whiteouts only where it holds none.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need fincore dd cmp

L=$T/lower
for d in listed unlisted one off; do
	mkdir -p "$L/$d/sub"
	for i in $(seq -w 1 40); do head -c 6000 /dev/urandom >"$L/$d/f$i"; done
	head -c 300000 /dev/urandom >"$L/$d/large"
	head -c 6000 /dev/urandom >"$L/$d/sub/deep"
done
mkdir -p "$T/upper" "$T/work" "$T/upper2" "$T/work2"
sync

# resident bytes of a lower file
resident() { fincore --bytes --noheadings --output RES "$1" | tr -d ' '; }
drop() {
	local f
	for f in "$L"/*/f* "$L"/*/large "$L"/*/sub/deep; do
		dd if="$f" iflag=nocache count=0 status=none
	done
}
# waits up to 10 s for file $1 to be in memory
until_resident() {
	for _ in $(seq 100); do [ "$(resident "$1")" -gt 0 ] && return 0; sleep 0.1; done
	return 1
}
drop
[ "$(resident "$L/listed/f40")" = 0 ] ||
	t_skip_all "the lower's pages stay in memory after DONTNEED (a tmpfs?): cannot tell a readahead"

M=$T/mnt
t_ok "mount" sfs_mount "$M" "lowerdir=$L,upperdir=$T/upper,workdir=$T/work"
t_is "$(resident "$L/listed/f40"):$(resident "$L/one/f40")" "0:0" "no lower file is in memory before a read"

ls "$M/listed" >/dev/null
t_ok "a listed directory, one small file read: the lower's bytes" cmp "$M/listed/f01" "$L/listed/f01"
t_ok "its other small files are read ahead" until_resident "$L/listed/f40"
n=0
for f in "$L"/listed/f*; do [ "$(resident "$f")" -gt 0 ] && n=$((n + 1)); done
t_is "$n" 40 "all 40 of them"
t_is "$(resident "$L/listed/large")" 0 "not the file over 128 KiB"
t_is "$(resident "$L/listed/sub/deep")" 0 "nor a file in a subdirectory"
t_is "$(resident "$L/unlisted/f40"):$(resident "$L/one/f40")" "0:0" "nor one of another directory"

t_ok "an unlisted directory, one small file read" cmp "$M/one/f01" "$L/one/f01"
sleep 1
t_is "$(resident "$L/one/f40")" 0 "one open without a listing reads nothing ahead"
cat "$M/unlisted/f01" "$M/unlisted/f02" >/dev/null
t_ok "a second open in an unlisted directory reads ahead" until_resident "$L/unlisted/f40"

same=1
for d in listed unlisted one; do
	for f in "$L/$d"/f* "$L/$d/large" "$L/$d/sub/deep"; do
		cmp -s "$f" "$M/$d/${f#"$L/$d/"}" || same=0
	done
done
t_is "$same" 1 "every file reads as the lower's bytes"
t_ok "unmount" t_umount "$M"

drop
t_ok "mount with prefetch=0" sfs_mount "$M" "lowerdir=$L,upperdir=$T/upper2,workdir=$T/work2,prefetch=0"
ls "$M/off" >/dev/null
cat "$M/off/f01" "$M/off/f02" "$M/off/f03" >/dev/null
sleep 1
t_is "$(resident "$L/off/f40")" 0 "prefetch=0: a listing and three reads read nothing ahead"
t_ok "unmount" t_umount "$M"

# A read-ahead reads a lower directory to its end: one without a .wh. name
# spares later lookups their whiteout probes there, one with an OCI
# whiteout (.wh.NAME, an empty file) must not.  Here the top lower hides
# the bottom one's "gone".
L2=$T/lower2
mkdir -p "$L2/wh" "$L/wh" "$T/upper3" "$T/work3"
for i in $(seq -w 1 40); do head -c 6000 /dev/urandom >"$L2/wh/f$i"; done
: >"$L2/wh/.wh.gone"
echo below >"$L/wh/gone"
echo below >"$L/wh/kept"
sync
dd if="$L2/wh/f40" iflag=nocache count=0 status=none
t_ok "mount with an OCI whiteout in the top lower" \
	sfs_mount "$M" "lowerdir=$L2:$L,upperdir=$T/upper3,workdir=$T/work3"
cat "$M/wh/f01" "$M/wh/f02" >/dev/null
t_ok "two reads in it: the top lower's directory is read ahead" until_resident "$L2/wh/f40"
sleep 0.5 # (the read-ahead may have entries left to read after f40)
t_ok "the whited-out name stays hidden" test ! -e "$M/wh/gone"
t_is "$(cat "$M/wh/kept")" below "a name only the bottom lower has is found"
t_is "$(ls "$M/wh" | grep -c 'gone\|\.wh\.')" 0 "and the listing shows neither the name nor the whiteout"
t_ok "unmount" t_umount "$M"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
