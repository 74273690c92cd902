#!/bin/bash
# tests/fs/hardlink.t: hard links stay one file after copy-up, as POSIX wants
# (kernel overlayfs needs index=on for this): writes through one name show
# through the others, nlink and st_ino agree, link/unlink of lower and upper
# files, and all of it survives a remount.  Every step is run on a plain
# directory too and the mount must answer the same.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"

L=$T/lower U=$T/upper W=$T/work M=$T/mnt R=$T/ref
mkdir -p "$L/dir" "$U" "$W"
echo one >"$L/a" && ln "$L/a" "$L/b"
echo cross >"$L/dir/c" && ln "$L/dir/c" "$L/c2"
echo pee >"$L/p"
echo ex >"$L/x" && ln "$L/x" "$L/y"
echo tri >"$L/t1" && ln "$L/t1" "$L/t2" && ln "$L/t1" "$L/dir/t3"
cp -a "$L" "$R"

mount_sfs() { sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"; }

# same_ino P1 P2...: "same" when every path has the st_ino of the first.
same_ino() {
	local i first
	first=$(stat -c %i "$1") || return
	for i in "$@"; do [ "$(stat -c %i "$i")" = "$first" ] || { echo differ; return; }; done
	echo same
}

# both DESC CMDS: runs CMDS (a string, $D is the directory) on the reference
# directory and on the mount; the outputs must be equal.
both() {
	local want got
	want=$(D=$R && eval "$2" 2>&1 | tr '\0' @)
	got=$(D=$M && eval "$2" 2>&1 | tr '\0' @)
	t_is "$got" "$want" "$1"
}

t_ok "mount" mount_sfs

both "nlink of a lower hard link before copy-up" 'stat -c %h $D/a $D/b'
both "one st_ino for both names before copy-up" 'same_ino $D/a $D/b'
both "write through one name, read through the other" 'echo two >>$D/a && cat $D/b'
both "nlink still 2 after copy-up" 'stat -c %h $D/a $D/b'
both "one st_ino for both names after copy-up" 'same_ino $D/a $D/b'
both "size agrees through both names" 'stat -c %s $D/a $D/b'
both "chmod through one name shows through the other" 'chmod 600 $D/c2 && stat -c %a $D/dir/c'
both "write across directories" 'echo more >>$D/c2 && cat $D/dir/c'
both "three names: truncate through one" 'echo new >$D/dir/t3 && cat $D/t1 $D/t2 && stat -c %h $D/t1'
both "three names: one st_ino" 'same_ino $D/t1 $D/t2 $D/dir/t3'

both "link(2) of a lower file to a new name" 'ln $D/p $D/q && stat -c %h $D/p $D/q'
both "write through the new link, read the old name" 'echo written >>$D/q && cat $D/p'
both "lower file and its new link share st_ino" 'same_ino $D/p $D/q'
both "link into a subdirectory" 'ln $D/p $D/dir/p3 && stat -c %h $D/p && cat $D/dir/p3'

both "unlink one name of a lower hard link" 'rm $D/x && cat $D/y && stat -c %h $D/y'
both "unlinked name is gone" 'ls $D | tr "\n" " "'
both "write after unlink" 'echo after >>$D/y && cat $D/y'

both "hard link to an upper file" 'echo up >$D/n && ln $D/n $D/n2 && stat -c %h $D/n $D/n2'
both "write through the upper link" 'echo down >>$D/n2 && cat $D/n'
both "upper links share st_ino" 'same_ino $D/n $D/n2'
both "unlink the first upper name" 'rm $D/n && cat $D/n2 && stat -c %h $D/n2'

# What must hold after a remount (compared with the reference, which keeps it).
after() {
	both "after remount: $1" "$2"
}
before_ino_a=$(stat -c %i "$M/a")
t_ok "unmount" t_umount "$M"
t_ok "remount" mount_sfs
after "content through both names" 'cat $D/a $D/b'
after "nlink of the copied-up link" 'stat -c %h $D/a $D/b'
after "one st_ino for both names" 'same_ino $D/a $D/b'
t_is "$(stat -c %i "$M/a")" "$before_ino_a" "after remount: st_ino of the link unchanged"
after "cross-directory link" 'cat $D/c2 $D/dir/c && stat -c %h $D/c2 && stat -c %a $D/c2'
after "three names" 'cat $D/t1 $D/t2 $D/dir/t3 && stat -c %h $D/t1 && same_ino $D/t1 $D/t2 $D/dir/t3'
after "lower file linked through the mount" 'cat $D/p $D/q $D/dir/p3 && stat -c %h $D/p && same_ino $D/p $D/q $D/dir/p3'
after "unlinked name" 'cat $D/y && stat -c %h $D/y'
after "upper link" 'cat $D/n2 && stat -c %h $D/n2'
after "write after remount reaches every name" 'echo three >>$D/b && cat $D/a && echo four >>$D/dir/t3 && cat $D/t1'
# directories: a merged directory reports nlink 1 (link count unknown, as on
# overlayfs and btrfs), so only the link counts of non-directories are compared
after "tree" 'cd $D && find . ! -type d -printf "%P %n %s\n" | LC_ALL=C sort'
t_ok "lower layer untouched" test "$(cat "$L/a")" = one
t_ok "unmount again" t_umount "$M"

# Kernel overlayfs with index=on follows hard links broken up by copy-up
# through workdir/index; the upper strata-fs wrote must read the same there.
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "kernel overlayfs index=on on the strata-fs upper" "index=on needs trusted.* xattrs (root)"
	t_skip "kernel overlayfs index=on: both names one inode" "root only"
else
	K=$T/kmnt
	if kovl_mount "$K" "lowerdir=$L,upperdir=$U,workdir=$W,index=on" 2>"$T/kerr"; then
		t_is "$(cat "$K/a" "$K/b" "$K/t1" "$K/t2" "$K/dir/t3" 2>&1)" \
			"$(cat "$R/a" "$R/b" "$R/t1" "$R/t2" "$R/dir/t3")" \
			"kernel overlayfs index=on on the strata-fs upper: every name shows the new content"
		t_is "$(same_ino "$K/a" "$K/b") $(same_ino "$K/t1" "$K/t2" "$K/dir/t3")" "same same" \
			"kernel overlayfs index=on: both names one inode"
		t_umount "$K"
	else
		t_is "$(cat "$T/kerr")" "" "kernel overlayfs index=on mounts the strata-fs upper"
		t_skip "kernel overlayfs index=on: both names one inode" "mount failed"
	fi
fi
t_done
