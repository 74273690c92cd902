#!/bin/bash
# tests/fs/inode.t: inode numbers: st_ino of a lower file survives copy-up
# and remount, st_ino of an upper file survives remount, no two files of a
# ~2000-file tree over 3 layers + upper share an st_ino, a directory keeps
# its st_ino across rename and remount, and readdir's d_ino equals st_ino.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"
t_need python3

L1=$T/l1 L2=$T/l2 L3=$T/l3 U=$T/u W=$T/w M=$T/mnt
mkdir -p "$L1" "$L2" "$L3" "$U" "$W"
# Bottom: 20 dirs x 30 files; middle: overlapping dirs, hiding some files;
# top: its own dirs; upper: files of its own and some that hide lower ones.
(cd "$L3" && mkdir d{0..19} && touch d{0..19}/f{0..29} && echo data >hl1 && ln hl1 hl2 &&
	mkdir -p ren/sub && echo r >ren/sub/file && echo lower >lf && echo lower >lc && echo lower >lt)
(cd "$L2" && mkdir d{10..29} && touch d{10..29}/f{20..49} && echo middle >mid)
(cd "$L1" && mkdir e{0..9} && touch e{0..9}/g{0..59} && ln -s d0 link)
(cd "$U" && mkdir up && touch up/u{0..299} && mkdir d5 && touch d5/f{0..9} && echo u >uf)
LOWER=$L1:$L2:$L3
mount_sfs() { sfs_mount "$M" "lowerdir=$LOWER,upperdir=$U,workdir=$W"; }
ino() { stat -c %i "$M/$1"; }

# dino_check DIR...: every entry whose readdir d_ino differs from lstat's st_ino.
dino_check() {
	python3 - "$@" <<'PY'
import os, sys
for d in sys.argv[1:]:
    with os.scandir(d) as it:
        for e in it:
            st = os.stat(e.path, follow_symlinks=False)
            if e.inode() != st.st_ino:
                print("%s: d_ino %d st_ino %d" % (e.path, e.inode(), st.st_ino))
PY
}
# dups DIR: st_ino shared by different paths (the lower hard link hl1/hl2 excepted).
dups() {
	find "$1" -mindepth 1 -printf '%i %P\n' | sort -n |
		awk '$1 == prev { print pline; print } { prev = $1; pline = $0 }' |
		grep -vE '^[0-9]+ hl[12]$' | sort -u
}

t_ok "mount" mount_sfs
n=$(find "$M" -mindepth 1 | wc -l)
t_ok "the tree has at least 2000 entries (found $n)" test "$n" -ge 2000
t_is "$(dups "$M")" "" "no two files share an st_ino"
t_is "$(ino hl1)" "$(ino hl2)" "the lower hard link shares one st_ino"
t_is "$(find "$M" -mindepth 1 -printf '%i\n' | sort -u | wc -l)" "$((n - 1))" \
	"distinct st_ino count is entries minus the one hard link"

# Record st_ino before any change.
declare -A before
for p in lf lc lt uf mid d0 d0/f0 d12 d12/f25 e3/g7 up/u5 d5 d5/f3 link ren ren/sub ren/sub/file; do
	before[$p]=$(ino "$p")
done
t_is "$(dino_check "$M" "$M/d0" "$M/d12" "$M/e3" "$M/up" "$M/d5" "$M/ren")" "" \
	"readdir d_ino equals st_ino (lower, merged and upper directories)"

echo more >>"$M/lf"
chmod 600 "$M/lc"
touch -d @1000000 "$M/lt"
echo more >>"$M/d12/f25"
echo x >"$M/new"
mkdir "$M/newdir"
before[new]=$(ino new)
before[newdir]=$(ino newdir)
t_is "$(ino lf)" "${before[lf]}" "st_ino of a lower file unchanged after write (copy-up)"
t_is "$(ino lc)" "${before[lc]}" "st_ino of a lower file unchanged after chmod"
t_is "$(ino lt)" "${before[lt]}" "st_ino of a lower file unchanged after utimes"
t_is "$(ino d12/f25)" "${before[d12/f25]}" "st_ino of a middle-layer file unchanged after write"
t_is "$(ino d12)" "${before[d12]}" "st_ino of its merged parent unchanged after copy-up"
t_is "$(dino_check "$M" "$M/d12")" "" "readdir d_ino equals st_ino for copied-up entries"
t_is "$(ls -i "$M/lf" | cut -d' ' -f1)" "${before[lf]}" "ls -i agrees after copy-up"

mv "$M/ren" "$M/renamed"
t_is "$(ino renamed)" "${before[ren]}" "directory st_ino unchanged by rename of a lower directory"
t_is "$(ino renamed/sub/file)" "${before[ren/sub/file]}" "st_ino of a file in the renamed directory unchanged"
t_is "$(dino_check "$M" "$M/renamed")" "" "readdir d_ino equals st_ino after directory rename"
mv "$M/lc" "$M/d0/lc-moved"
t_is "$(ino d0/lc-moved)" "${before[lc]}" "st_ino unchanged by rename of a copied-up file"
t_is "$(dups "$M")" "" "still no two files share an st_ino after changes"

t_ok "unmount" t_umount "$M"
t_ok "remount" mount_sfs
t_is "$(ino lf)" "${before[lf]}" "after remount: st_ino of the written lower file"
t_is "$(ino d0/lc-moved)" "${before[lc]}" "after remount: st_ino of the chmod-ed and moved lower file"
t_is "$(ino lt)" "${before[lt]}" "after remount: st_ino of the touched lower file"
t_is "$(ino d12/f25)" "${before[d12/f25]}" "after remount: st_ino of the middle-layer file"
t_is "$(ino new)" "${before[new]}" "after remount: st_ino of a new upper file"
t_is "$(ino newdir)" "${before[newdir]}" "after remount: st_ino of a new upper directory"
t_is "$(ino uf)" "${before[uf]}" "after remount: st_ino of an upper file"
t_is "$(ino renamed)" "${before[ren]}" "after remount: st_ino of the renamed directory"
t_is "$(ino renamed/sub/file)" "${before[ren/sub/file]}" "after remount: st_ino inside the renamed directory"
got= want=
for p in mid d0 d0/f0 d12 e3/g7 up/u5 d5 d5/f3 link; do
	got="$got $p=$(ino "$p")"
	want="$want $p=${before[$p]}"
done
t_is "$got" "$want" "after remount: st_ino of untouched files and directories"
t_is "$(dups "$M")" "" "after remount: no two files share an st_ino"
t_is "$(dino_check "$M" "$M/d0" "$M/d12" "$M/renamed" "$M/up")" "" "after remount: readdir d_ino equals st_ino"
t_done
