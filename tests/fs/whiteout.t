#!/bin/bash
# tests/fs/whiteout.t: whiteouts and opaque directories in every format a layer
# may use (char 0/0 devices and the overlay opaque xattr; OCI ".wh.NAME" files
# and ".wh..wh..opq"; user.fuseoverlayfs.opaque), whiteout names never listed,
# and the whiteouts strata-fs writes: unlink and rm -rf of lower entries,
# recreating a deleted name, mkdir over a deleted dir (opaque), rmdir of and
# rename onto a directory whose lower entries are all whited out.  The
# overlayfs-format cases are compared with kernel overlayfs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

# mk_bottom DIR: the layer every stack here starts from.
mk_bottom() {
	mkdir -p "$1" && (cd "$1" && {
		echo a >a && echo b >b && echo c >c && echo keep >keep
		mkdir -p d e g/sub k n r
		echo x >d/x && echo y >d/y && echo p >e/p && echo q >e/q
		echo f >g/sub/f && echo h >g/h && echo m >k/m && echo o >n/o && echo s >r/s
	})
}

# mk_top_ovl DIR: overlayfs format: a and r whited out, d and e opaque.
mk_top_ovl() {
	mkdir -p "$1/d" "$1/e" && (cd "$1" && {
		mk_whiteout a && mk_whiteout r
		echo new >d/new && mk_opaque d
		echo new >e/new && mk_opaque e
	})
}

# mk_top_oci DIR: the same changes in OCI/AUFS format and fuse-overlayfs's xattr.
mk_top_oci() {
	mkdir -p "$1/d" "$1/e" && (cd "$1" && {
		: >.wh.a && : >.wh.r
		echo new >d/new && : >d/.wh..wh..opq
		echo new >e/new && setfattr -n user.fuseoverlayfs.opaque -v y e
	})
}

names() { ls -A "$1" | tr '\n' ' '; }

# ---- reading the formats
want_root="b c d e g k keep n "
for fmt in ovl oci; do
	r=$T/$fmt
	mk_bottom "$r/l2" && "mk_top_$fmt" "$r/l1" && mkdir -p "$r/u" "$r/w"
	sfs_mount "$r/m" "lowerdir=$r/l1:$r/l2,upperdir=$r/u,workdir=$r/w"
	t_is "$(names "$r/m")" "$want_root" "$fmt: whited-out names and whiteouts not listed"
	t_is "$(fsop stat "$r/m/a")" ENOENT "$fmt: whited-out file is ENOENT"
	t_is "$(fsop stat "$r/m/r")" ENOENT "$fmt: whited-out directory is ENOENT"
	t_is "$(fsop stat "$r/m/r/s")" ENOENT "$fmt: below a whited-out directory is ENOENT"
	t_is "$(names "$r/m/d")" "new " "$fmt: opaque dir shows only its own layer"
	t_is "$(fsop stat "$r/m/d/x")" ENOENT "$fmt: name below an opaque dir is ENOENT"
	t_is "$(fsop stat "$r/m/.wh.a")" ENOENT "$fmt: .wh. name is not looked up"
	t_is "$(fsop stat "$r/m/d/.wh..wh..opq")" ENOENT "$fmt: opaque marker is not looked up"
	t_is "$(find "$r/m" -name '.wh.*' -o -type c | wc -l)" 0 "$fmt: no whiteout anywhere in a walk"
done
# A lower directory whose listing held no .wh. name is not asked for an OCI
# whiteout again; the layers below it still are.
O=$T/oci3
mkdir -p "$O/l1/d" "$O/l2/d" "$O/l3/d" "$O/u" "$O/w"
echo t >"$O/l1/d/t" && echo m >"$O/l2/d/mid" && : >"$O/l2/d/.wh.gone"
echo g >"$O/l3/d/gone" && echo b >"$O/l3/d/b" && : >"$O/l3/d/.wh.t"
sfs_mount "$O/m" "lowerdir=$O/l1:$O/l2:$O/l3,upperdir=$O/u,workdir=$O/w"
before="$(fsop stat "$O/m/d/gone") $(fsop stat "$O/m/d/b")"
t_umount "$O/m"
sfs_mount "$O/m" "lowerdir=$O/l1:$O/l2:$O/l3,upperdir=$O/u,workdir=$O/w"
t_is "$(names "$O/m/d")" "b mid t " "oci, three layers: listed"
t_is "$before | $(fsop stat "$O/m/d/gone") $(fsop stat "$O/m/d/b") $(cat "$O/m/d/t")" \
	"ENOENT OK | ENOENT OK t" "oci, three layers: a middle whiteout hides, before and after a listing"
t_umount "$O/m"
t_is "$(names "$T/ovl/m/e")" "new " "ovl: opaque xattr on a second dir"
t_is "$(names "$T/oci/m/e")" "new " "oci: user.fuseoverlayfs.opaque makes a dir opaque"
t_is "$(tree_dump "$T/oci/m")" "$(tree_dump "$T/ovl/m")" "OCI-format layer shows the same tree as overlay format"
if kovl_usable; then
	mk_bottom "$T/k/l2" && mk_top_ovl "$T/k/l1" && mkdir -p "$T/k/u" "$T/k/w"
	kovl_mount "$T/k/m" "lowerdir=$T/k/l1:$T/k/l2,upperdir=$T/k/u,workdir=$T/k/w"
	t_is "$(tree_dump "$T/ovl/m")" "$(tree_dump "$T/k/m")" "overlay-format tree equals kernel overlayfs's"
else
	t_skip "overlay-format tree equals kernel overlayfs's" "kernel overlayfs cannot be mounted here"
fi

# ---- writing whiteouts.  steps MNT prints the outcome of each step.
steps() {
	local m=$1
	echo "unlink b: $(fsop unlink "$m/b") $(fsop stat "$m/b")"
	echo "unlink c: $(fsop unlink "$m/c") $(fsop stat "$m/c")"
	echo "rm -rf g: $(rm -rf "$m/g" && echo OK) $(fsop stat "$m/g")"
	echo "recreate c: $(echo again >"$m/c" && cat "$m/c")"
	echo "mkdir g: $(fsop mkdir "$m/g") [$(names "$m/g")]"
	echo "mkdir r: $(fsop mkdir "$m/r") [$(names "$m/r")]"
	echo "recreate a: $(echo again >"$m/a" && cat "$m/a")"
	echo "unlink k/m: $(fsop unlink "$m/k/m") [$(names "$m/k")]"
	echo "rmdir k: $(fsop rmdir "$m/k") $(fsop stat "$m/k")"
	echo "unlink n/o: $(fsop unlink "$m/n/o") [$(names "$m/n")]"
	mkdir "$m/src" && echo z >"$m/src/z"
	echo "rename src n: $(fsop rename "$m/src" "$m/n") [$(names "$m/n")]"
	echo "unlink d/new: $(fsop unlink "$m/d/new") [$(names "$m/d")]"
	echo "rmdir d: $(fsop rmdir "$m/d")"
	echo "rmdir e: $(fsop rmdir "$m/e")"
	echo "root: $(names "$m")"
}
want_steps="unlink b: OK ENOENT
unlink c: OK ENOENT
rm -rf g: OK ENOENT
recreate c: again
mkdir g: OK []
mkdir r: OK []
recreate a: again
unlink k/m: OK []
rmdir k: OK ENOENT
unlink n/o: OK []
rename src n: OK [z ]
unlink d/new: OK []
rmdir d: OK
rmdir e: ENOTEMPTY
root: a c e g keep n r "
# upper_state UPPER: the kind of each entry strata-fs left in upper (how a
# renamed-over or recreated directory hides its lower entries is left open).
upper_state() {
	local n
	for n in a b c d g k n r src n/z g/sub k/m; do
		echo "$n $(upper_type "$1/$n")"
	done
	echo "g opaque=$(getfattr --only-values -n "$(ovl_xattr_prefix)opaque" "$1/g" 2>/dev/null)"
}
want_upper="a file
b whiteout
c file
d whiteout
g dir
k whiteout
n dir
r dir
src none
n/z file
g/sub none
k/m none
g opaque=y"

S=$T/ovl
t_is "$(steps "$S/m")" "$want_steps" "ovl: whiteouts written by unlink, rm -rf, rmdir and rename"
t_is "$(upper_state "$S/u")" "$want_upper" "ovl: upper holds char 0/0 whiteouts and opaque dirs"
t_is "$(find "$S/m" -name '.wh.*' -o -type c | wc -l)" 0 "ovl: written whiteouts never listed"
t_is "$(find "$S/u" -name '.wh.*' | wc -l)" 0 "ovl: no .wh. files written to upper"
t_is "$(steps "$T/oci/m")" "$want_steps" "oci: whiteouts written over an OCI-format layer"
t_is "$(upper_state "$T/oci/u")" "$want_upper" "oci: upper holds overlay-format whiteouts"
if kovl_usable; then
	t_is "$(steps "$T/k/m")" "$want_steps" "kernel overlayfs gives the same step outcomes"
	t_is "$(tree_dump "$S/m")" "$(tree_dump "$T/k/m")" "tree after the steps equals kernel overlayfs's"
	t_is "$(upper_state "$S/u")" "$(upper_state "$T/k/u")" "upper entries' kinds equal kernel overlayfs's"
	t_umount "$T/k/m"
else
	for d in "same step outcomes" "same tree" "same upper"; do
		t_skip "kernel overlayfs: $d" "kernel overlayfs cannot be mounted here"
	done
fi
before=$(tree_dump "$S/m")
t_umount "$S/m"
sfs_mount "$S/m" "lowerdir=$S/l1:$S/l2,upperdir=$S/u,workdir=$S/w"
t_is "$(tree_dump "$S/m")" "$before" "whiteouts and opaque dirs persist across remount"
t_umount "$S/m"
if kovl_usable; then
	kovl_mount "$S/k" "lowerdir=$S/l1:$S/l2,upperdir=$S/u,workdir=$S/w"
	t_is "$(tree_dump "$S/k")" "$before" "kernel overlayfs reads strata-fs's whiteouts the same"
	t_umount "$S/k"
else
	t_skip "kernel overlayfs reads strata-fs's whiteouts the same" "kernel overlayfs cannot be mounted here"
fi
t_is "$(cat "$S/l2/c") $(cat "$S/l2/k/m") $(names "$S/l2/g")" "c m h sub " "lower layer untouched"
t_umount "$T/oci/m"
# The whiteouts strata-fs makes are links to one shared whiteout in the
# workdir, as overlayfs makes them: a removal costs no inode.  One removed
# behind the daemon's back is made again.
W=$T/shared
mkdir -p "$W/l/dir/sub" "$W/u" "$W/w"
for i in 1 2 3 4 5 6 7 8 9; do echo "$i" >"$W/l/f$i"; done
echo z >"$W/l/dir/sub/z"
mkdir "$W/l/imm" && echo a >"$W/l/imm/a"
mkdir "$W/l/devs" && echo w >"$W/l/devs/w"
sfs_mount "$W/m" "lowerdir=$W/l,upperdir=$W/u,workdir=$W/w"
rm "$W/m/f1" "$W/m/f2" "$W/m/f3"
t_is "$(stat -c %i "$W/u/f1" "$W/u/f2" "$W/u/f3" | sort -u | wc -l) $(stat -c '%h %t:%T %F' "$W/u/f1")" \
	"1 4 0:0 character special file" "three whiteouts are one 0/0 device, linked from the workdir too"
rm -rf "$W/m/dir"
t_is "$(stat -c '%h %i' "$W/u/dir")" "5 $(stat -c %i "$W/u/f1")" "a removed directory is whited out by the same inode"
echo more >>"$W/m/f5" && rm "$W/m/f5"
t_is "$(stat -c '%h %i' "$W/u/f5")" "6 $(stat -c %i "$W/u/f1")" "so is a removed file that had been copied up"
rm "$W/w/work/whiteout"
rm "$W/m/f4"
t_is "$(stat -c '%h %t:%T %F' "$W/u/f4") $(ls "$W/m" | tr '\n' ' ')" "2 0:0 character special file devs f6 f7 f8 f9 imm " \
	"with the shared whiteout gone, the next removal makes another"
# a link refused in one directory (immutable here) fails that removal only:
# whiteouts elsewhere still share the inode
touch "$W/m/imm/b"
if chattr +i "$W/u/imm" 2>/dev/null; then
	rm "$W/m/imm/a" 2>/dev/null
	got="$? $(ls "$W/m/imm" | tr '\n' ' ')"
	chattr -i "$W/u/imm"
	rm "$W/m/f7" "$W/m/f8"
	t_is "$got$(stat -c '%h %i' "$W/u/f7" "$W/u/f8" | sort -u | tr '\n' ' ')" \
		"1 a b 4 $(stat -c %i "$W/u/f4") " "a removal refused in an immutable directory leaves sharing on"
else
	rm "$W/m/f7" "$W/m/f8"
	t_skip "a removal refused in an immutable directory leaves sharing on" "chattr +i is refused here"
fi
# A listing takes a link to the shared whiteout for a whiteout by its inode
# number, without a stat: a device beside such links is still listed and
# keeps its directory from being removed.
if mknod "$W/m/devs/null" c 1 3 2>/dev/null; then
	rm "$W/m/devs/w"
	t_is "$(ls -A "$W/m/devs" | tr '\n' ' ')$(fsop rmdir "$W/m/devs")" "null ENOTEMPTY" \
		"a device beside a shared whiteout is listed and keeps its directory"
	rm "$W/m/devs/null"
	t_is "$(ls -A "$W/m/devs" | wc -l) $(fsop rmdir "$W/m/devs")" "0 OK" \
		"without it the directory is empty and goes"
else
	t_skip "a device beside a shared whiteout is listed and keeps its directory" \
		"mknod of a character device is refused here (rootless)"
	t_skip "without it the directory is empty and goes" "mknod is refused here (rootless)"
	rm -rf "$W/m/devs"
fi
t_is "$(work_leftovers "$W/w")" "" "nothing else in the workdir"
t_umount "$W/m"
if kovl_usable; then
	kovl_mount "$W/k" "lowerdir=$W/l,upperdir=$W/u,workdir=$W/w"
	t_is "$(ls -A "$W/k" | tr '\n' ' ')" "f6 f9 imm " "kernel overlayfs reads the linked whiteouts"
	t_umount "$W/k"
else
	t_skip "kernel overlayfs reads the linked whiteouts" "kernel overlayfs cannot be mounted here"
fi
t_done
