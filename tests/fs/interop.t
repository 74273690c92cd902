#!/bin/bash
# tests/fs/interop.t: on-disk compatibility with kernel overlayfs.  strata-fs
# makes a mix of changes; kernel overlayfs mounted on the same layers, upper
# and workdir must show the same tree (and user xattrs) as a strata-fs
# remount.  Then the other way round: kernel overlayfs makes the changes and
# strata-fs must read its upper identically.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"
t_need getfattr setfattr

P=$(ovl_xattr_prefix)
L1=$T/l1 L2=$T/l2
mkdir -p "$L1/dir/deep" "$L2/dir" "$L2/gone/sub" "$L2/redo" "$L2/ldir/in" "$L1/keep"
echo a >"$L1/a" && echo b >"$L2/b" && echo c >"$L1/c" && echo d >"$L2/d" && echo e >"$L1/e"
echo bottom >"$L2/dir/bottom" && echo top >"$L1/dir/top" && echo deep >"$L1/dir/deep/x"
echo hidden >"$L2/a" && echo g >"$L2/gone/sub/g" && echo r >"$L2/redo/old"
echo in >"$L2/ldir/in/f" && echo k >"$L1/keep/k" && ln -s ../a "$L1/keep/rel"
head -c 300000 /dev/urandom >"$L2/big"
setfattr -n user.lower -v lv "$L1/c"
LOWER=$L1:$L2

# changes D: the same mix of changes, made through a mount at D.
changes() {
	local D=$1
	echo more >>"$D/a"                 # write a lower file (copy-up)
	echo x >>"$D/dir/bottom"          # ... in a merged directory
	truncate -s 1000 "$D/big"         # truncate a lower file
	echo new >"$D/new"                 # new file
	mkdir -p "$D/newdir/sub" && echo n >"$D/newdir/sub/n"
	rm "$D/b"                          # delete lower files (whiteouts)
	rm "$D/dir/deep/x"
	rm -r "$D/gone"                    # delete a lower directory
	rm -r "$D/redo" && mkdir "$D/redo" && echo fresh >"$D/redo/fresh" # opaque
	ln -s a "$D/sym" && ln -s /nonexistent "$D/dangling" && ln -s dir "$D/dirsym"
	chmod 700 "$D/keep"
	touch -d @1234567890 "$D/newdir"
	# Kernel overlayfs in userxattr mode follows neither metacopy nor
	# redirect, so rootless these lower files get their data copied first.
	if [ "$STRATA_ROOTLESS" = 1 ]; then
		echo w >>"$D/c" && echo w >>"$D/d" && echo w >>"$D/e" && echo w >>"$D/keep/k"
	fi
	chmod 600 "$D/c"                   # metadata only
	setfattr -n user.x -v 1 "$D/d"     # xattr only
	mv "$D/e" "$D/e-renamed"           # rename a lower file
	mv "$D/keep/k" "$D/dir/k-moved"
	if [ "$STRATA_ROOTLESS" != 1 ]; then
		mv "$D/ldir" "$D/ldir-renamed" # rename a lower directory (redirect)
		echo after >"$D/ldir-renamed/in/after"
	fi
}
# user_xattrs D: every user.* xattr under D.
user_xattrs() {
	(cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		xargs -0 getfattr -h -d -m '^user\.' --absolute-names 2>/dev/null | grep -v '^$')
}
# has_metacopy U: the upper holds a metacopy file.
has_metacopy() {
	find "$1" -type f -print0 | xargs -0 -r getfattr -h -m "${P//./\\.}metacopy" --absolute-names 2>/dev/null | grep -q metacopy
}

# strata-fs writes, kernel overlayfs reads.
mkdir -p "$T/su" "$T/sw"
t_ok "strata-fs: mount" sfs_mount "$T/s" "lowerdir=$LOWER,upperdir=$T/su,workdir=$T/sw"
t_ok "strata-fs: make the changes" changes "$T/s"
live=$(tree_dump "$T/s") && live_x=$(user_xattrs "$T/s")
t_ok "strata-fs: unmount" t_umount "$T/s"
kopts=
if [ "$STRATA_ROOTLESS" != 1 ] && has_metacopy "$T/su"; then
	kopts=,redirect_dir=on,metacopy=on
	t_diag "the strata-fs upper holds metacopy files: kernel overlayfs mounted with$kopts"
fi
t_ok "kernel overlayfs mounts the strata-fs upper" \
	kovl_mount "$T/k" "lowerdir=$LOWER,upperdir=$T/su,workdir=$T/sw$kopts"
t_is "$(tree_dump "$T/k")" "$live" "kernel overlayfs shows the tree strata-fs made"
t_is "$(user_xattrs "$T/k")" "$live_x" "kernel overlayfs shows the same user xattrs"
t_is "$(cat "$T/k/a" "$T/k/redo/fresh" 2>&1)" "a
more
fresh" "kernel overlayfs: contents of written files"
t_is "$(ls "$T/k/redo")" fresh "kernel overlayfs: recreated directory is opaque"
t_ok "kernel overlayfs: unmount" t_umount "$T/k"
t_ok "strata-fs: remount" sfs_mount "$T/s" "lowerdir=$LOWER,upperdir=$T/su,workdir=$T/sw"
t_is "$(tree_dump "$T/s")" "$live" "strata-fs remount shows the same tree"
t_is "$(user_xattrs "$T/s")" "$live_x" "strata-fs remount shows the same user xattrs"
t_ok "strata-fs: unmount" t_umount "$T/s"

# Kernel overlayfs writes, strata-fs reads; with redirect_dir and metacopy
# too as root, so strata-fs must follow both.
modes=plain
[ "$STRATA_ROOTLESS" != 1 ] && modes="plain redirect_dir=on,metacopy=on"
for mode in $modes; do
	ku=$T/ku-${mode%%,*} kw=$T/kw-${mode%%,*}
	extra=
	[ "$mode" != plain ] && extra=,$mode
	mkdir -p "$ku" "$kw"
	t_ok "kernel overlayfs ($mode): mount" kovl_mount "$T/k" "lowerdir=$LOWER,upperdir=$ku,workdir=$kw$extra"
	t_ok "kernel overlayfs ($mode): make the changes" changes "$T/k"
	klive=$(tree_dump "$T/k") && klive_x=$(user_xattrs "$T/k")
	t_is "$klive" "$live" "kernel overlayfs ($mode) and strata-fs made the same tree"
	t_ok "kernel overlayfs ($mode): unmount" t_umount "$T/k"
	t_ok "strata-fs mounts the upper kernel overlayfs ($mode) wrote" \
		sfs_mount "$T/s" "lowerdir=$LOWER,upperdir=$ku,workdir=$kw"
	t_is "$(tree_dump "$T/s")" "$klive" "strata-fs shows the tree kernel overlayfs ($mode) made"
	t_is "$(user_xattrs "$T/s")" "$klive_x" "strata-fs shows the user xattrs kernel overlayfs ($mode) set"
	t_is "$(ls "$T/s/redo")" fresh "strata-fs: directory recreated by kernel overlayfs ($mode) is opaque"
	t_ok "strata-fs: changes on top of the kernel's upper ($mode)" \
		bash -c "echo again >>'$T/s/a' && rm '$T/s/new' && mkdir '$T/s/gone'"
	after=$(tree_dump "$T/s")
	t_ok "strata-fs: unmount" t_umount "$T/s"
	t_ok "kernel overlayfs ($mode): remount" kovl_mount "$T/k" "lowerdir=$LOWER,upperdir=$ku,workdir=$kw$extra"
	t_is "$(tree_dump "$T/k")" "$after" "kernel overlayfs ($mode) reads those changes back"
	t_ok "kernel overlayfs ($mode): unmount" t_umount "$T/k"
done
t_done
