#!/bin/bash
# tests/fs/readdir.t: directory listing of merged directories: every name once
# across layers, whiteouts hidden, "." and ".." present once, 5000 entries
# spread over upper and two lowers listed exactly once, telldir/seekdir
# positions stable, entries created and removed during iteration never
# duplicated, opaque directories list only their own layer.  Listings are
# compared with kernel overlayfs.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need python3
[ -x "$HELPERS/seekdir" ] || t_skip_all "helper $HELPERS/seekdir not built (run make)"

# seqnames PREFIX FROM TO: PREFIX0000 .. PREFIXnnnn, one a line.
seqnames() { seq -f "$1%04g" "$2" "$3"; }
touch_all() { (cd "$1" && xargs touch); }
# wh_all DIR: whiteouts (char 0/0) for the names on stdin, in one process.
wh_all() {
	(cd "$1" && python3 -c 'import os, stat, sys
for n in sys.stdin.read().split():
    os.mknod(n, stat.S_IFCHR, 0)')
}

mk_layers() {
	local r=$1
	mkdir -p "$r"/{l1,l2,u,w} "$r"/l1/{big,mix,od,mut} "$r"/l2/{big,mix,od,od2,mut} "$r"/u/{big,mix}
	# big: f0100..f4999 and h0000..h0099 visible, 5000 entries.
	seqnames f 0 2999 | touch_all "$r/l2/big"
	seqnames h 0 99 | touch_all "$r/l2/big"
	seqnames g 0 199 | touch_all "$r/l2/big"
	seqnames f 2000 3999 | touch_all "$r/l1/big"
	seqnames f 0 99 | wh_all "$r/l1/big"
	seqnames f 3500 4999 | touch_all "$r/u/big"
	seqnames g 0 199 | wh_all "$r/u/big"
	# mix: the same names in every layer, one whited out in upper.
	local l
	for l in l1 l2 u; do (cd "$r/$l/mix" && : >a && : >b && : >c); done
	rm "$r/u/mix/b" && mknod "$r/u/mix/b" c 0 0
	echo c >"$r/l1/od/c" && mk_opaque "$r/l1/od"
	echo a >"$r/l2/od/a" && echo b >"$r/l2/od/b" && echo z >"$r/l2/od2/z"
	seqnames m 0 299 | touch_all "$r/l2/mut"
	seqnames m 200 499 | touch_all "$r/l1/mut"
}

listing() { ls -aU1 "$1" | LC_ALL=C sort; }
mk_layers "$T/s"
S=$T/s/m
t_ok "mount" sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2,upperdir=$T/s/u,workdir=$T/s/w"

want_big=$( (printf '.\n..\n'; seqnames f 100 4999; seqnames h 0 99) | LC_ALL=C sort)
got_big=$(listing "$S/big")
t_is "$(echo "$got_big" | wc -l)" 5002 "5000 entries plus . and .. listed"
t_is "$(echo "$got_big" | uniq -d)" "" "no name listed twice in the big dir"
t_is "$got_big" "$want_big" "big dir lists exactly the expected names"
t_is "$(listing "$S/mix" | tr '\n' ' ')" ". .. a c " "same names in three layers listed once, whiteout hidden"
t_is "$(listing "$S" | uniq -d)" "" "root lists each name once"
t_is "$(ls -aU1 "$S" | grep -cxF -e . -e ..)" 2 "root lists . and .. once each"
t_is "$(ls -ai "$S/mix" | awk '$2 == "." {print $1}')" "$(stat -c %i "$S/mix")" ". has the dir's inode number"
t_is "$(listing "$S/od" | tr '\n' ' ')" ". .. c " "opaque lower dir lists only its own layer"
rm -rf "$S/od2" && mkdir "$S/od2" && : >"$S/od2/new"
t_is "$(listing "$S/od2" | tr '\n' ' ')" ". .. new " "dir recreated over a deleted one lists only new entries"
t_ok "telldir/seekdir/rewinddir stable on the big dir" "$HELPERS/seekdir" "$S/big"
t_ok "telldir/seekdir stable on the root dir" "$HELPERS/seekdir" "$S"
t_ok "creating and removing during iteration: no duplicates, no losses" "$HELPERS/seekdir" "$S/mut" mutate
after_mut=$(listing "$S/mut")
t_is "$(echo "$after_mut" | grep -c '^added-')" 100 "entries created during iteration listed afterwards"
t_is "$(echo "$after_mut" | uniq -d)" "" "no name twice after the mutation"
# Changes made through the mount show in the next listing.
: >"$S/big/new1" && rm "$S/big/f0200" "$S/big/f3700" "$S/big/h0005" && mkdir "$S/big/f0100.d"
want_big2=$( (echo "$want_big"; echo new1; echo f0100.d) | grep -vx -e f0200 -e f3700 -e h0005 | LC_ALL=C sort)
t_is "$(listing "$S/big")" "$want_big2" "listing follows creates and deletes in every layer"
t_ok "seekdir stable after the changes" "$HELPERS/seekdir" "$S/big"

if kovl_usable; then
	mk_layers "$T/k"
	K=$T/k/m
	kovl_mount "$K" "lowerdir=$T/k/l1:$T/k/l2,upperdir=$T/k/u,workdir=$T/k/w"
	rm -rf "$K/od2" && mkdir "$K/od2" && : >"$K/od2/new"
	: >"$K/big/new1" && rm "$K/big/f0200" "$K/big/f3700" "$K/big/h0005" && mkdir "$K/big/f0100.d"
	for d in big mix od od2 .; do
		t_is "$(listing "$S/$d")" "$(listing "$K/$d")" "listing of $d equals kernel overlayfs's"
	done
	t_umount "$K"
else
	t_skip "listings equal kernel overlayfs's" "kernel overlayfs cannot be mounted here"
fi
t_ok "unmount" t_umount "$S"
sfs_mount "$S" "lowerdir=$T/s/l1:$T/s/l2,upperdir=$T/s/u,workdir=$T/s/w"
t_is "$(listing "$S/big")" "$want_big2" "big dir listing the same after remount"
t_umount "$S"
t_done
