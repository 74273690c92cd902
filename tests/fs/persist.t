#!/bin/bash
# tests/fs/persist.t: persistence of the upper layer across remount: after
# creates, writes, deletes of lower entries, renames, chmod, symlinks, mkdir
# and rmdir, a new strata-fs mount of the same dirs shows the identical tree,
# and so does kernel overlayfs mounted on the same upper and work dirs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

root=1
[ "$STRATA_ROOTLESS" = 1 ] && root=0
L1=$T/l1 L2=$T/l2 U=$T/u W=$T/w M=$T/m
mkdir -p "$L1/etc" "$L2/etc" "$L2/var/log" "$L2/usr/lib" "$L2/gone/deep" "$L2/empty" "$L2/ldir/sub" "$U" "$W"
echo passwd >"$L2/etc/passwd" && echo group >"$L2/etc/group" && echo hosts1 >"$L1/etc/hosts"
echo log >"$L2/var/log/old.log" && echo lib >"$L2/usr/lib/libx.so" && echo g >"$L2/gone/deep/f"
echo s >"$L2/ldir/sub/s" && echo t >"$L2/ldir/t" && echo mv >"$L2/tomove" && echo m >"$L2/mode"
ln -s etc/passwd "$L2/lpw"
opts="lowerdir=$L1:$L2,upperdir=$U,workdir=$W"

# changes_plain MNT: changes kernel overlayfs can read in every mode: no
# metadata-only copy-up, no rename of a lower entry.
changes_plain() {
	local m=$1
	echo new >"$m/newfile" &&
		mkdir -p "$m/newdir/a/b" && echo deep >"$m/newdir/a/b/f" &&
		echo more >>"$m/etc/passwd" &&
		echo hosts2 >"$m/etc/hosts" &&
		rm "$m/etc/group" "$m/lpw" &&
		rm -rf "$m/gone" &&
		rmdir "$m/empty" &&
		ln -s ../etc/hosts "$m/newdir/hosts" && ln -s /nowhere "$m/dangling" &&
		mkdir "$m/gone" && echo back >"$m/gone/again" &&
		mkdir "$m/udir" && echo u >"$m/udir/u" && mv "$m/udir" "$m/udir2" &&
		mkfifo "$m/fifo" &&
		touch -m -d 2005-05-05 "$m/newfile"
}

# changes_meta MNT: renames of lower entries and metadata-only changes, which
# overlayfs records with redirect and metacopy xattrs.
changes_meta() {
	local m=$1
	mv "$m/tomove" "$m/moved" &&
		mv "$m/var/log/old.log" "$m/etc/old.log" &&
		chmod 0600 "$m/mode" && chmod 0700 "$m/usr/lib" &&
		if [ $root = 1 ]; then
			# Renaming a lower dir needs redirect xattrs, trusted.* for the kernel.
			mv "$m/ldir" "$m/ldir2" && chown 123:456 "$m/etc/hosts" &&
				mknod "$m/cdev" c 1 3
		fi
}

changes() { changes_plain "$1" && changes_meta "$1"; }

# fresh DIR: a copy of the pristine layers with an empty upper and work dir.
fresh() {
	mkdir -p "$1" && cp -a "$T/p/l1" "$T/p/l2" "$1/" && mkdir -p "$1/u" "$1/w"
	echo "lowerdir=$1/l1:$1/l2,upperdir=$1/u,workdir=$1/w"
}

mkdir -p "$T/p" && cp -a "$L1" "$L2" "$T/p/"
# Kernel overlayfs follows redirect and metacopy xattrs only when told to,
# and never with userxattr (rootless).
kmeta=""
[ $root = 1 ] && kmeta=",redirect_dir=on,metacopy=on"

t_ok "mount" sfs_mount "$M" "$opts"
t_ok "changes through strata-fs" changes "$M"
before=$(tree_dump "$M")
mtime=$(stat -c %Y "$M/newfile")
t_ok "unmount" t_umount "$M"
t_ok "mount again with the same dirs" sfs_mount "$M" "$opts"
t_is "$(tree_dump "$M")" "$before" "tree identical after remount"
t_is "$(stat -c %Y "$M/newfile")" "$mtime" "mtime identical after remount"
t_is "$(fsop stat "$M/gone/deep") $(fsop stat "$M/etc/group") $(fsop stat "$M/empty")" \
	"ENOENT ENOENT ENOENT" "deleted lower entries stay deleted"
# A second round of changes on the remounted tree persists too.
echo third >>"$M/etc/passwd" && rm "$M/moved" && mkdir "$M/empty"
before2=$(tree_dump "$M")
t_umount "$M"
sfs_mount "$M" "$opts"
t_is "$(tree_dump "$M")" "$before2" "second round of changes persists"
t_umount "$M"

if ! kovl_usable; then
	t_skip "kernel overlayfs comparisons" "kernel overlayfs cannot be mounted here"
	t_done
fi
if [ $root = 1 ]; then
	t_ok "kernel overlayfs mounts strata-fs's upper and work" kovl_mount "$T/k" "$opts$kmeta"
	t_is "$(tree_dump "$T/k")" "$before2" "kernel overlayfs (redirect_dir, metacopy) shows the identical tree"
	t_umount "$T/k"
else
	t_skip "kernel overlayfs mounts strata-fs's upper and work" "userxattr excludes redirect_dir and metacopy"
	t_skip "kernel overlayfs shows the identical tree" "userxattr excludes redirect_dir and metacopy"
fi
# Changes without redirects or metacopy: kernel overlayfs reads them in every mode.
popts=$(fresh "$T/plain")
sfs_mount "$T/plain/m" "$popts" && changes_plain "$T/plain/m"
pbefore=$(tree_dump "$T/plain/m")
t_umount "$T/plain/m"
t_ok "kernel overlayfs mounts strata-fs's upper (plain changes)" kovl_mount "$T/plain/k" "$popts"
t_is "$(tree_dump "$T/plain/k")" "$pbefore" "kernel overlayfs shows the identical tree (plain changes)"
t_umount "$T/plain/k"
# The reverse: the same changes made by kernel overlayfs, read by strata-fs.
ropts=$(fresh "$T/r")
kovl_mount "$T/rk" "$ropts$kmeta" && changes "$T/rk"
kbefore=$(tree_dump "$T/rk")
t_umount "$T/rk"
t_is "$kbefore" "$before" "kernel overlayfs's changes give the same tree as strata-fs's"
sfs_mount "$T/rm" "$ropts"
t_is "$(tree_dump "$T/rm")" "$kbefore" "strata-fs shows kernel overlayfs's upper identically"
t_umount "$T/rm"
t_done
