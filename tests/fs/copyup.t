#!/bin/bash
# tests/fs/copyup.t: copy-up of lower files: the lower stays untouched and the
# new content lands in upper; mode (with setuid/setgid), owner, atime/mtime and
# user.* xattrs are kept, missing parents are copied up with their attributes,
# holes stay holes, O_TRUNC copies no data, chmod/chown/touch/setfattr copy no
# data (metacopy), no temporaries remain in the workdir, and >> appends.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

root=1
[ "$STRATA_ROOTLESS" = 1 ] && root=0
MIB=1048576

# mk_lower L: the lower layer; times and owners set last.
mk_lower() {
	local l=$1
	mkdir -p "$l/p1/p2/p3" "$l/sub"
	echo hello >"$l/f"
	echo suid >"$l/suid" && chmod 6755 "$l/suid"
	echo sgid >"$l/sgid" && chmod 2711 "$l/sgid"
	echo owned >"$l/owned" && chmod 0640 "$l/owned"
	echo timed >"$l/timed"
	echo xa >"$l/xa" && setfattr -n user.one -v 1 "$l/xa" && setfattr -n user.two -v "two words" "$l/xa"
	echo deep >"$l/p1/p2/p3/file"
	printf 'line1\n' >"$l/app"
	echo trunc-me-please >"$l/tr"
	truncate -s 1G "$l/sparse"
	printf AAAA | dd of="$l/sparse" bs=1 seek=0 conv=notrunc status=none
	printf BBBB | dd of="$l/sparse" bs=1 seek=$((512 * MIB)) conv=notrunc status=none
	printf CCCC | dd of="$l/sparse" bs=1 seek=$((1024 * MIB - 4)) conv=notrunc status=none
	local f
	for f in big_chmod big_chown big_touch big_xattr big_trunc; do
		head -c $((8 * MIB)) /dev/urandom >"$l/$f"
	done
	chmod 0711 "$l/p1" && chmod 0750 "$l/p1/p2" && chmod 0705 "$l/p1/p2/p3"
	if [ $root = 1 ]; then
		chown 1234:2345 "$l/owned" "$l/p1/p2"
		chown 4321:5432 "$l/p1/p2/p3"
		chown 1234:2345 "$l/suid" && chmod 6755 "$l/suid"
	fi
	touch -m -d '2001-02-03 04:05:06' "$l/timed" "$l/p1/p2/p3/file" "$l/p1/p2/p3" "$l/p1/p2" "$l/p1"
	touch -a -d '2031-01-01 00:00:00' "$l/timed"
}

L=$T/l U=$T/u W=$T/w M=$T/m
mkdir -p "$U" "$W"
mk_lower "$L"
cp --sparse=always "$L/sparse" "$T/orig"
lower_sum=$(cd "$L" && find . -type f ! -name sparse -exec md5sum {} + | sort)
lower_meta=$(cd "$L" && find . -printf '%p %m %U:%G %T@\n' | sort)
t_ok "mount" sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"

# ---- data copy-up by writing
echo world >>"$M/f"
t_is "$(cat "$M/f")" "hello
world" "write through the mount reads back"
t_is "$(cat "$U/f" 2>&1)" "hello
world" "new content is in upper"
t_is "$(cat "$L/f")" hello "lower file untouched"
printf 'line2\n' >>"$M/app"
t_is "$(cat "$M/app")" "line1
line2" "append (>>) to a lower file keeps its content"

# ---- attributes kept by copy-up (opened for writing, nothing written)
for f in suid sgid owned timed xa; do fsop write "$M/$f" >/dev/null; done
t_is "$(upper_type "$U/suid") $(stat -c %a "$U/suid" 2>&1)" "file 6755" "setuid+setgid mode kept in upper"
t_is "$(stat -c %a "$M/suid")" 6755 "setuid+setgid mode kept through the mount"
t_is "$(stat -c %a "$U/sgid" 2>&1)" 2711 "setgid mode kept in upper"
t_is "$(stat -c %a "$U/owned" 2>&1)" 640 "mode kept"
if [ $root = 1 ]; then
	t_is "$(stat -c %u:%g "$U/owned" 2>&1)" 1234:2345 "owner of another uid kept in upper"
	t_is "$(stat -c %u:%g "$U/suid" 2>&1) $(stat -c %a "$U/suid" 2>&1)" "1234:2345 6755" "setuid file of another uid keeps owner and mode"
else
	t_skip "owner of another uid kept in upper" "needs real root for other uids"
	t_skip "setuid file of another uid keeps owner and mode" "needs real root for other uids"
fi
t_is "$(stat -c %Y "$U/timed" 2>&1)" "$(stat -c %Y "$L/timed")" "mtime kept in upper"
t_is "$(stat -c %X "$U/timed" 2>&1)" "$(stat -c %X "$L/timed")" "atime kept in upper"
t_is "$(stat -c '%X %Y' "$M/timed")" "$(stat -c '%X %Y' "$L/timed")" "atime and mtime kept through the mount"
xattrs() { getfattr -d -m '^user\.(one|two)$' --absolute-names "$1" 2>/dev/null | grep -v '^#'; }
t_is "$(xattrs "$U/xa")" "$(xattrs "$L/xa")" "user.* xattrs kept in upper"
t_is "$(getfattr --absolute-names --only-values -n user.two "$M/xa" 2>/dev/null)" "two words" "xattr read through the mount"

# ---- parents copied up with their attributes
echo more >>"$M/p1/p2/p3/file"
pmeta() { (cd "$1" && stat -c '%n %a %u:%g %Y' p1 p1/p2 p1/p2/p3 2>&1); }
t_is "$(pmeta "$U")" "$(pmeta "$L")" "missing parents copied up with mode, owner and mtime"
t_is "$(stat -c %Y "$U/p1/p2/p3/file" 2>&1)" "$(stat -c %Y "$M/p1/p2/p3/file")" "copied-up file's new mtime agrees"

# ---- sparse copy-up
printf DDDD | dd of="$M/sparse" bs=1 seek=$((100 * MIB)) conv=notrunc status=none
cp --sparse=always "$L/sparse" "$T/ref"
printf DDDD | dd of="$T/ref" bs=1 seek=$((100 * MIB)) conv=notrunc status=none
# regions FILE: the size, and md5s of 1 MiB at a few offsets given in MiB.
regions() {
	local o
	stat -c %s "$1"
	for o in 0 99 100 511 512 700 1023; do
		dd if="$1" bs=64K skip=$((o * 16)) count=16 status=none | md5sum | cut -c1-32
	done
}
t_is "$(regions "$M/sparse")" "$(regions "$T/ref")" "sparse file content right after copy-up"
t_is "$(upper_type "$U/sparse")" file "sparse file copied up"
kb=$(du -k "$U/sparse" 2>/dev/null | cut -f1)
t_ok "sparse file copied up sparse (upper uses ${kb:-?} KiB)" test "${kb:-999999}" -lt 8192
t_is "$(regions "$L/sparse")" "$(regions "$T/orig")" "lower sparse file untouched"

# ---- O_TRUNC: an empty upper, no data copied
t_is "$(fsop trunc "$M/big_trunc")" OK "O_TRUNC open of a lower file"
t_is "$(stat -c %s "$M/big_trunc") $(stat -c %s "$U/big_trunc" 2>&1)" "0 0" "O_TRUNC gives an empty upper"
t_ok "O_TRUNC upper holds no blocks" test "$(blocks "$U/big_trunc")" -le 8
echo x >"$M/tr"
t_is "$(cat "$M/tr") $(cat "$L/tr")" "x trunc-me-please" "> on a lower file writes upper only"

# ---- metadata-only changes copy no data
chmod 0600 "$M/big_chmod"
[ $root = 1 ] && chown 77:88 "$M/big_chown" || chown 0:0 "$M/big_chown"
touch -m -d '2010-01-01' "$M/big_touch"
setfattr -n user.meta -v 1 "$M/big_xattr"
for f in big_chmod big_chown big_touch big_xattr; do
	t_is "$(upper_type "$U/$f")" file "$f: an upper entry exists"
	b=$(blocks "$U/$f" 2>/dev/null)
	t_ok "$f: upper holds no data (${b:-?} blocks of 512)" test "${b:-999999}" -le 64
	t_is "$(md5sum <"$M/$f")" "$(md5sum <"$L/$f")" "$f: content unchanged through the mount"
done
t_is "$(stat -c %a "$M/big_chmod")" 600 "chmod visible"
[ $root = 1 ] && want_own=77:88 || want_own=0:0
t_is "$(stat -c %u:%g "$M/big_chown")" "$want_own" "chown visible"
t_is "$(stat -c %Y "$M/big_touch")" "$(date -d 2010-01-01 +%s)" "touch visible"
t_is "$(getfattr --absolute-names --only-values -n user.meta "$M/big_xattr" 2>/dev/null)" 1 "setfattr visible"
# A write after a metadata-only copy-up brings the data in.
printf ZZZZ | dd of="$M/big_chmod" bs=1 seek=$MIB conv=notrunc status=none
cp "$L/big_chmod" "$T/refc" && printf ZZZZ | dd of="$T/refc" bs=1 seek=$MIB conv=notrunc status=none
t_is "$(md5sum <"$M/big_chmod")" "$(md5sum <"$T/refc")" "write after metadata copy-up: whole content right"
t_is "$(stat -c %a "$M/big_chmod")" 600 "write after metadata copy-up keeps the new mode"

# ---- no temporaries left in the workdir
t_is "$(find "$W" -mindepth 1 ! -type d ! -path "$W/work/whiteout" | wc -l)" 0 "no files left in workdir"
t_is "$(work_leftovers "$W" | wc -l)" 0 "workdir/work is empty"

before=$(tree_dump "$M")
t_ok "unmount" t_umount "$M"
t_is "$(cd "$L" && find . -type f ! -name sparse -exec md5sum {} + | sort)" "$lower_sum" "lower contents untouched"
t_is "$(cd "$L" && find . -printf '%p %m %U:%G %T@\n' | sort)" "$lower_meta" "lower modes, owners and mtimes untouched"
sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
t_is "$(tree_dump "$M")" "$before" "tree the same after remount (metacopy files followed)"
t_umount "$M"
if [ $root = 1 ] && kovl_usable; then
	kovl_mount "$T/k" "lowerdir=$L,upperdir=$U,workdir=$W,redirect_dir=on,metacopy=on"
	t_is "$(tree_dump "$T/k")" "$before" "kernel overlayfs (metacopy=on) shows the same tree"
	t_umount "$T/k"
else
	t_skip "kernel overlayfs (metacopy=on) shows the same tree" "metacopy needs trusted xattrs (real root)"
fi
t_done
