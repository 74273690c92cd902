#!/bin/bash
# tests/fs/rename.t: rename(2) and renameat2(2) of files and directories from
# the lower layers and upper: within and across directories, over existing
# entries, directories that exist in a lower (POSIX: no EXDEV), onto empty and
# non-empty directories, RENAME_NOREPLACE and RENAME_EXCHANGE.  Every step runs
# on a plain directory (the POSIX reference), on kernel overlayfs with
# redirect_dir=on and on strata-fs; the result survives remount and mounts
# under kernel overlayfs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

mk_layers() {
	local r=$1
	mkdir -p "$r"/{l1,l2,u,w}
	(cd "$r/l2" && {
		mkdir -p dir/sub ld/y ld2 ld3 full emptyl xd1 back deep/a/b
		echo a >dir/a && echo b >dir/sub/b
		echo lf >lf && echo lf3 >lf3 && echo lf4 >lf4
		echo x >ld/x && echo z >ld/y/z && echo q >ld2/q && echo r >ld3/r
		echo w >full/w && echo e1 >e1 && echo m1 >xd1/m1
		echo nr1 >nr1 && echo nr2 >nr2 && echo bb >back/bb && echo deep >deep/a/b/f
	})
	(cd "$r/l1" && {
		mkdir -p dir ld xd2
		echo c >dir/c && echo x1 >ld/x1 && echo e2 >e2 && echo m2 >xd2/m2
	})
}

# steps DIR: the same renames on any tree; prints each outcome.
steps() {
	local m=$1
	names() { ls -A "$1" 2>&1 | tr '\n' ' '; }
	echo "file in dir: $(fsop rename "$m/lf" "$m/lf2") $(cat "$m/lf2") $(fsop stat "$m/lf")"
	echo "file across dirs: $(fsop rename "$m/dir/a" "$m/ld/a2") [$(names "$m/dir")] [$(names "$m/ld")]"
	echo x >"$m/u1"
	echo "upper file across dirs: $(fsop rename "$m/u1" "$m/dir/u1") [$(names "$m/dir")]"
	echo "over existing file: $(fsop rename "$m/lf3" "$m/lf4") $(cat "$m/lf4") $(fsop stat "$m/lf3")"
	echo z2 >>"$m/ld/y/z"
	echo "lower dir: $(fsop rename "$m/ld" "$m/ldnew") $(fsop stat "$m/ld") [$(names "$m/ldnew")] [$(names "$m/ldnew/y")] $(cat "$m/ldnew/y/z" | tr '\n' ' ')"
	echo "mkdir at old name: $(fsop mkdir "$m/ld") [$(names "$m/ld")]"
	echo "rename back and forth: $(fsop rename "$m/ld2" "$m/ld2b") $(fsop rename "$m/ld2b" "$m/ld2") [$(names "$m/ld2")] $(fsop stat "$m/ld2b")"
	echo "dir onto empty lower dir: $(fsop rename "$m/ld3" "$m/emptyl") [$(names "$m/emptyl")] $(fsop stat "$m/ld3")"
	mkdir "$m/emptyu"
	echo "dir onto empty upper dir: $(fsop rename "$m/dir/sub" "$m/emptyu") [$(names "$m/emptyu")] [$(names "$m/dir")]"
	echo "dir onto non-empty dir: $(fsop rename "$m/xd1" "$m/full") [$(names "$m/full")] [$(names "$m/xd1")]"
	echo "dir onto file: $(fsop rename "$m/xd1" "$m/e1")"
	echo "file onto dir: $(fsop rename "$m/e1" "$m/xd1")"
	echo "dir into itself: $(fsop rename "$m/deep" "$m/deep/a/b/c")"
	echo "noreplace existing: $(fsop noreplace "$m/nr1" "$m/nr2") $(cat "$m/nr2")"
	echo "noreplace new: $(fsop noreplace "$m/nr1" "$m/nr3") $(cat "$m/nr3") $(fsop stat "$m/nr1")"
	echo "exchange lower files: $(fsop exchange "$m/e1" "$m/e2") $(cat "$m/e1") $(cat "$m/e2")"
	echo up >"$m/ue"
	echo "exchange upper and lower file: $(fsop exchange "$m/ue" "$m/lf4") $(cat "$m/ue") $(cat "$m/lf4")"
	echo "exchange lower dirs: $(fsop exchange "$m/xd1" "$m/xd2") [$(names "$m/xd1")] [$(names "$m/xd2")]"
	echo "exchange dir and file: $(fsop exchange "$m/xd1" "$m/e1") [$(names "$m/e1")] $(cat "$m/xd1")"
	echo "rename back, then add: $(fsop rename "$m/back" "$m/back2") $(echo n >"$m/back2/new") $(fsop rename "$m/back2" "$m/back") [$(names "$m/back")]"
	echo "deep dir: $(fsop rename "$m/deep/a" "$m/dira") $(cat "$m/dira/b/f") [$(names "$m/deep")]"
	echo "root: $(names "$m")"
}

mk_layers "$T/s"
mk_layers "$T/k"
mk_layers "$T/p"
# The POSIX reference: the merged view as one plain directory.
mkdir -p "$T/ref" && cp -a "$T/p/l2/." "$T/ref/" && cp -a "$T/p/l1/." "$T/ref/"
want_initial=$(tree_dump "$T/ref")
want=$(steps "$T/ref")
want_tree=$(tree_dump "$T/ref")

S=$T/s/m
t_ok "mount" sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2,upperdir=$T/s/u,workdir=$T/s/w"
before=$(tree_dump "$S")
t_is "$before" "$want_initial" "merged tree before the renames equals the plain directory's"
got=$(steps "$S")
t_is "$got" "$want" "every rename step behaves as on a plain directory"
t_is "$(tree_dump "$S")" "$want_tree" "tree after the renames equals the plain directory's"
if [ "$STRATA_ROOTLESS" != 1 ] && kovl_usable; then
	kovl_mount "$T/k/m" "lowerdir=$T/k/l1:$T/k/l2,upperdir=$T/k/u,workdir=$T/k/w,redirect_dir=on"
	t_is "$(steps "$T/k/m")" "$want" "kernel overlayfs (redirect_dir=on) agrees with the plain directory"
	t_umount "$T/k/m"
else
	t_skip "kernel overlayfs (redirect_dir=on) agrees with the plain directory" \
		"redirect_dir needs trusted xattrs (real root)"
fi
t_ok "unmount" t_umount "$S"
sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2,upperdir=$T/s/u,workdir=$T/s/w"
t_is "$(tree_dump "$S")" "$want_tree" "renamed tree the same after remount"
t_is "$(fsop mkdir "$S/ld/again") $(ls -A "$S/ld")" "OK again" "new dir at a renamed dir's old name stays separate after remount"
t_umount "$S"
if [ "$STRATA_ROOTLESS" != 1 ] && kovl_usable; then
	kovl_mount "$T/s/k" "lowerdir=$T/s/l1:$T/s/l2,upperdir=$T/s/u,workdir=$T/s/w,redirect_dir=on,metacopy=on"
	t_is "$(tree_dump "$T/s/k" | grep -v '^\./ld/again ')" "$want_tree" "kernel overlayfs (redirect_dir=on) shows the same tree from strata-fs's upper"
	t_umount "$T/s/k"
else
	t_skip "kernel overlayfs shows the same tree from strata-fs's upper" \
		"redirect_dir needs trusted xattrs (real root)"
fi
t_is "$(tree_dump "$T/s/l1")$(tree_dump "$T/s/l2")" "$(tree_dump "$T/p/l1")$(tree_dump "$T/p/l2")" "lower layers untouched"
t_done
