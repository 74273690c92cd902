#!/bin/bash
# tests/fs/layering.t: lookup through the layers: the leftmost lower wins for
# files and directories, directories merge across three layers, a file hides a
# directory below it and the other way round, read-only mounts (no upperdir)
# refuse writes with EROFS, symlinks resolve across layers, deep paths, and
# missing names give ENOENT.  Every outcome is compared with kernel overlayfs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

# mk_layers ROOT: three lowers ROOT/l1 (top) .. ROOT/l3, an upper and a work dir.
mk_layers() {
	local r=$1
	mkdir -p "$r"/{l1,l2,l3,u,w}
	# l3: the bottom.
	(cd "$r/l3" && {
		echo a3 >a
		mkdir -p d deep/1/2/3/4/5/6/7/8/9 stack filedir/sub
		echo x3 >d/x3 && echo c3 >d/common && echo s3 >stack/s3
		echo deep3 >deep/1/2/3/4/5/6/7/8/9/file
		echo f3 >dirfile
		echo in3 >filedir/sub/inner
		echo only3 >only3
		ln -s a link3
		chmod 0700 d
	})
	# l2: a directory hides the file dirfile, a file hides the dir filedir.
	(cd "$r/l2" && {
		echo a2 >a
		mkdir -p d dirfile deep/1/2/3/other
		echo x2 >d/x2 && echo c2 >d/common
		echo g2 >dirfile/g2
		echo df2 >filedir
		echo st2 >stack
		echo o2 >deep/1/2/3/other/o2
		ln -s d/x3 tox3
		ln -s d dlink
		ln -s only1 toonly1
		chmod 0700 d
	})
	# l1: the top lower.
	(cd "$r/l1" && {
		echo a1 >a
		mkdir -p d stack deep/1/2/3/4
		echo x1 >d/x1 && echo c1 >d/common
		echo s1 >stack/s1
		echo only1 >only1
		mkdir empty
		echo four1 >deep/1/2/3/4/four1
		ln -s link3 link1
		chmod 0750 d
	})
}

mk_layers "$T/s"
mk_layers "$T/k"
S=$T/s/m K=$T/k/m

t_ok "strata-fs mounts three lowers and an upper" \
	sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2:$T/s/l3,upperdir=$T/s/u,workdir=$T/s/w"

t_is "$(cat_or "$S/a")" a1 "leftmost lower wins for a file in every layer"
t_is "$(stat -c %a "$S/d")" 750 "leftmost lower's directory gives the merged dir its mode"
t_is "$(ls "$S/d" | tr '\n' ' ')" "common x1 x2 x3 " "directory merges across three layers"
t_is "$(cat_or "$S/d/common")" c1 "leftmost lower wins inside a merged directory"
t_is "$(cat_or "$S/d/x3")" x3 "bottom layer's file visible through merged directory"
t_is "$(upper_type "$S/dirfile")" dir "directory in l2 hides file in l3"
t_is "$(ls -A "$S/dirfile" | tr '\n' ' ')" "g2 " "directory over a file shows only its own entries"
t_is "$(upper_type "$S/filedir")" file "file in l2 hides directory in l3"
t_is "$(cat_or "$S/filedir")" df2 "file over a directory reads the file"
t_is "$(fsop stat "$S/filedir/sub/inner")" ENOTDIR "path through a file hiding a directory is ENOTDIR"
t_is "$(ls -A "$S/stack" | tr '\n' ' ')" "s1 " "file in l2 stops merging of l1's dir with l3's dir"
t_is "$(cat_or "$S/deep/1/2/3/4/5/6/7/8/9/file")" deep3 "deep path from the bottom layer"
t_is "$(ls "$S/deep/1/2/3" | tr '\n' ' ')" "4 other " "deep directory merges entries of all layers"
t_is "$(cat_or "$S/deep/1/2/3/4/four1")" four1 "deep path from the top layer"
t_is "$(cat_or "$S/deep/1/2/3/other/o2")" o2 "deep path from the middle layer"
t_is "$(cat_or "$S/tox3")" x3 "symlink in l2 resolves to a file in l3 through the merge"
t_is "$(readlink "$S/tox3")" d/x3 "readlink returns the stored target"
t_is "$(ls "$S/dlink/" | tr '\n' ' ')" "common x1 x2 x3 " "symlink to a directory leads to the merged directory"
t_is "$(cat_or "$S/toonly1")" only1 "symlink in l2 resolves to a file only in l1"
t_is "$(cat_or "$S/link1")" a1 "chain of symlinks across layers (l1 -> l3 -> a)"
t_is "$(fsop stat "$S/nope")" ENOENT "missing name is ENOENT"
t_is "$(fsop stat "$S/d/nope")" ENOENT "missing name in merged dir is ENOENT"
t_is "$(fsop stat "$S/deep/1/2/nope/x")" ENOENT "missing intermediate dir is ENOENT"
t_is "$(fsop stat "$S/a/x")" ENOTDIR "lookup below a file is ENOTDIR"
t_is "$(fsop lstat "$S/d/.wh.x1")" ENOENT "OCI whiteout-like name does not exist"

t_is "$(fsop stat "$S/only3")" OK "bottom-only file visible"

if kovl_usable; then
	kovl_mount "$K" "lowerdir=$T/k/l1:$T/k/l2:$T/k/l3,upperdir=$T/k/u,workdir=$T/k/w"
	t_is "$(tree_dump "$S")" "$(tree_dump "$K")" "merged tree equals kernel overlayfs's"
	for p in nope d/nope deep/1/2/nope/x a/x filedir/sub/inner dlink/x2 tox3 link1; do
		printf '%s %s\n' "$p" "$(fsop stat "$S/$p")" >>"$T/s.err"
		printf '%s %s\n' "$p" "$(fsop stat "$K/$p")" >>"$T/k.err"
	done
	t_is "$(cat "$T/s.err")" "$(cat "$T/k.err")" "lookup results equal kernel overlayfs's"
	t_umount "$K"
else
	t_skip "merged tree equals kernel overlayfs's" "kernel overlayfs cannot be mounted here"
	t_skip "lookup results equal kernel overlayfs's" "kernel overlayfs cannot be mounted here"
fi
t_ok "strata-fs unmounts" t_umount "$S"

# An upper entry wins over the lowers (upper written while unmounted).
echo aU >"$T/s/u/a"
mkdir -p "$T/s/u/d" && echo xU >"$T/s/u/d/xU" && chmod 0750 "$T/s/u/d"
sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2:$T/s/l3,upperdir=$T/s/u,workdir=$T/s/w"
t_is "$(cat_or "$S/a")" aU "upper wins over every lower"
t_is "$(ls "$S/d" | tr '\n' ' ')" "common x1 x2 x3 xU " "upper directory merges with three lowers"
t_umount "$S"

# Read-only: no upperdir.
R=$T/s/ro
t_ok "strata-fs mounts read-only without upperdir" sfs_mount "$R" "lowerdir=$T/s/l1:$T/s/l2:$T/s/l3"
ro_ops() {
	local m=$1
	echo "creat $(fsop creat "$m/new")"
	echo "write $(fsop write "$m/a")"
	echo "trunc $(fsop trunc "$m/a")"
	echo "append $(fsop append "$m/d/x3" more)"
	echo "mkdir $(fsop mkdir "$m/newdir")"
	echo "unlink $(fsop unlink "$m/a")"
	echo "rmdir $(fsop rmdir "$m/empty")"
	echo "rename $(fsop rename "$m/a" "$m/b")"
	echo "chmod $(fsop chmod "$m/a" 600)"
	echo "symlink $(fsop symlink a "$m/sl")"
	echo "read $(fsop read "$m/a")"
}
want_ro="creat EROFS
write EROFS
trunc EROFS
append EROFS
mkdir EROFS
unlink EROFS
rmdir EROFS
rename EROFS
chmod EROFS
symlink EROFS
read OK"
t_is "$(ro_ops "$R")" "$want_ro" "read-only mount refuses every write with EROFS"
t_is "$(cat_or "$R/a")" a1 "read-only mount reads the top lower"
t_is "$(ls "$R/d" | tr '\n' ' ')" "common x1 x2 x3 " "read-only mount merges directories"
t_fail "setfattr on read-only mount fails" setfattr -n user.x -v 1 "$R/a"
if kovl_usable; then
	KR=$T/k/ro
	kovl_mount "$KR" "lowerdir=$T/k/l1:$T/k/l2:$T/k/l3"
	t_is "$(tree_dump "$R")" "$(tree_dump "$KR")" "read-only tree equals kernel overlayfs's"
	t_is "$(ro_ops "$R")" "$(ro_ops "$KR")" "read-only errors equal kernel overlayfs's"
	t_umount "$KR"
else
	t_skip "read-only tree equals kernel overlayfs's" "kernel overlayfs cannot be mounted here"
	t_skip "read-only errors equal kernel overlayfs's" "kernel overlayfs cannot be mounted here"
fi
t_ok "read-only mount unmounts" t_umount "$R"
t_is "$(cat "$T/s/l1/a")" a1 "lower untouched by the read-only mount"
t_done
