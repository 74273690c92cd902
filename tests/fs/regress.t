#!/bin/bash
# Regression tests for defects found in review: each point is a case that
# once went wrong (writeback appends, file capabilities lost at copy-up,
# renames of hard-linked names, redirects through opaque directories and
# symlinks in lowers, nested layers, unused index entries, renames over
# directories holding whiteouts, hard links with index=off, directory link
# counts), compared with kernel overlayfs where it runs (real root).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
X=$(ovl_xattr_prefix)

setup() {
	D=$T/$1
	mkdir -p "$D/l1" "$D/l2" "$D/u" "$D/w" "$D/m"
}
mnt() { sfs_mount "$D/m" "lowerdir=$D/l1:$D/l2,upperdir=$D/u,workdir=$D/w${1:+,$1}"; }
um() { t_umount "$D/m"; }
# The same with kernel overlayfs when KIND is k (KIND s: strata-fs).
mnt_as() {
	if [ "$1" = k ]; then
		kovl_mount "$D/m" "lowerdir=$D/l1:$D/l2,upperdir=$D/u,workdir=$D/w${2:+,$2}"
	else
		mnt "${2:-}"
	fi
}
# Whether kernel overlayfs can be the reference (index and redirects need
# trusted.* xattrs: real root).
have_kovl() { [ "$STRATA_ROOTLESS" != 1 ] && kovl_usable; }

# writeback=1: files created through the mount are written at their offsets
setup wb
mnt writeback=1
exec 3>>"$D/m/new"
echo hello >&3 && sync "$D/m/new"
echo world >&3 && sync "$D/m/new"
exec 3>&-
t_is "$(cat "$D/m/new")" "hello
world" "writeback: appends to a created file land once each"
head -c 16384 /dev/zero | tr '\0' A >"$D/m/pw"
sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
printf B | dd of="$D/m/pw" bs=1 seek=5000 conv=notrunc status=none
t_is "$(tr -d A <"$D/m/pw")" "B" "writeback: a partial-page write into a created write-only file"
um

# copy-up keeps security.capability (chown would drop it)
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "copy-up keeps file capabilities" "security.capability needs real root"
else
	setup cap
	echo prog >"$D/l1/prog"
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$D/l1/prog"
	mnt
	touch "$D/m/prog" && chmod 755 "$D/m/prog"
	t_is "$(getfattr -e base64 -n security.capability "$D/m/prog" 2>/dev/null | grep capability)" \
		"security.capability=0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=" "copy-up keeps file capabilities"
	um
fi

# renames of the names of a hard-linked lower file
setup hl
echo data >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b"
mnt
echo more >>"$D/m/a"
t_ok "rename the other name after copy-up through one" mv "$D/m/b" "$D/m/c"
t_is "$(cat "$D/m/c"; stat -c %h "$D/m/a" "$D/m/c")" "data
more
2
2" "both names still one file"
um
mnt
t_is "$(cat "$D/m/c"; stat -c %h "$D/m/c")" "data
more
2" "and after remount"
um
setup hl2
echo data >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b" && echo new >"$D/l1/c"
mnt
stat "$D/m/a" "$D/m/b" >/dev/null
t_ok "rename over one name of a lower hard link" mv "$D/m/c" "$D/m/b"
t_ok "the other name stays writable" bash -c "echo more >>'$D/m/a'"
t_is "$(cat "$D/m/a"; stat -c %h "$D/m/a"; cat "$D/m/b")" "data
more
1
new" "its link count drops to 1"
um

# an absolute redirect stops at an opaque directory part-way
setup rd
mkdir -p "$D/l1/d/e" "$D/l2/d/e"
echo visible >"$D/l1/d/e/top"
echo hidden >"$D/l2/d/e/hidden"
setfattr -n "${X}opaque" -v y "$D/l1/d"
mnt
mv "$D/m/d/e" "$D/m/f"
um
mnt
t_is "$(ls "$D/m/f")" "top" "redirect through an opaque directory shows no hidden entries"
um

# a symlink part-way in a lower does not make a renamed directory unreachable
setup rd2
mkdir -p "$D/l1/a/b" "$D/l2/target/b"
echo x >"$D/l1/a/b/file"
ln -s target "$D/l2/a"
mnt
mv "$D/m/a/b" "$D/m/c"
um
mnt
t_is "$(ls "$D/m/c" 2>&1)" "file" "redirect past a lower symlink"
um

# a symlink keeps its inode number when renamed after copy-up, and across
# a remount (rootless, user.* xattrs cannot be set on symlinks)
setup sym
ln -s target "$D/l1/sym"
mnt
before=$(stat -c %i "$D/m/sym")
mv "$D/m/sym" "$D/m/sym2"
um
mnt
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "renamed symlink keeps its inode number" "user.* xattrs cannot be set on symlinks"
else
	t_is "$(stat -c %i "$D/m/sym2")" "$before" "renamed symlink keeps its inode number"
fi
um

# layers inside one another are refused before mounting
setup ov
mkdir -p "$D/l2/sub"
t_fail "nested lower layers are refused" \
	"$STRATA_FS" -o "lowerdir=$D/l2/sub:$D/l2,upperdir=$D/u,workdir=$D/w" "$D/m"
mkdir -p "$D/l2/up"
t_fail "an upper inside a lower is refused" \
	"$STRATA_FS" -o "lowerdir=$D/l2,upperdir=$D/l2/up,workdir=$D/w" "$D/m"
t_ok "nothing was mounted" bash -c "! mountpoint -q '$D/m'"

# workdir/index: the last name of an indexed file takes its entry with it;
# a mount removes entries no name reaches (the upper name went while nothing
# ran) and keeps those lower names still reach, as overlayfs does.
index_orphans() {
	local k=$1
	setup ix$k
	echo data >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b"
	echo data >"$D/l1/c" && ln "$D/l1/c" "$D/l1/d" && ln "$D/l1/c" "$D/l1/e"
	echo data >"$D/l1/o" && ln "$D/l1/o" "$D/l1/p"
	mnt_as "$k" index=on
	echo more >>"$D/m/a" && echo more >>"$D/m/c" && echo more >>"$D/m/o"
	rm "$D/m/b" "$D/m/a" "$D/m/c" "$D/m/p"
	um
	echo "index after the removals: $(ls "$D/w/index" | wc -l)"
	mk_whiteout "$D/u/o"
	mnt_as "$k" index=on
	echo "index after a mount: $(ls "$D/w/index" | wc -l)"
	echo "names: $(ls "$D/m" | tr '\n' ' ')"
	echo "d e: $(cat "$D/m/d" "$D/m/e" | tr '\n' ' ')$(stat -c '%h %s' "$D/m/d")"
	um
}
want_ix="index after the removals: 2
index after a mount: 1
names: d e 
d e: data more data more 2 10"
t_is "$(index_orphans s)" "$want_ix" "index: entries no name reaches are removed, the others kept"
if have_kovl; then
	# (overlayfs may leave the first entry to the next mount)
	t_is "$(index_orphans k | tail -n +2)" "$(tail -n +2 <<<"$want_ix")" \
		"index: kernel overlayfs index=on does the same"
else
	t_skip "index: kernel overlayfs index=on does the same" "index=on needs trusted.* xattrs (real root)"
fi
# an entry whose lower origin is gone (removed while unmounted) backs no
# name.  Telling needs the origin's filesystem by its uuid (the lower on a
# tmpfs, which has one) and open_by_handle_at, which an unprivileged daemon
# cannot use: it keeps the entry.
setup ixgone
if mount -t tmpfs tmpfs "$D/l2" 2>/dev/null; then
	echo "$D/l2" >>"$T/.mounts"
	echo data >"$D/l2/f" && ln "$D/l2/f" "$D/l2/g"
	mnt
	echo more >>"$D/m/f" && rm "$D/m/f"
	t_is "$(cat "$D/m/g")" "data
more" "index: the other name of a removed one reads the copy"
	um
	kept=$(ls "$D/w/index" | wc -l)
	rm "$D/l2/f" "$D/l2/g"
	mnt
	if [ "$STRATA_ROOTLESS" = 1 ]; then
		t_is "$kept $(ls "$D/w/index" | wc -l)" "1 1" "index: an entry whose origin may be gone is kept (no handles rootless)"
	else
		t_is "$kept $(ls "$D/w/index" | wc -l)" "1 0" "index: an entry whose lower origin is gone is removed at mount"
	fi
	um
else
	t_skip "index: the other name of a removed one reads the copy" "cannot mount a tmpfs here"
	t_skip "index: an entry whose lower origin is gone is removed at mount" "cannot mount a tmpfs here"
fi

# rename over a lower name of an indexed file takes that name off its link count
rename_over_alias() {
	setup ra$1
	echo data >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b" && echo c >"$D/l1/c"
	mnt_as "$1" index=on
	echo more >>"$D/m/a"
	mv "$D/m/c" "$D/m/b"
	echo "$(stat -c '%h %s' "$D/m/a") $(cat "$D/m/b")"
	um
	mnt_as "$1" index=on
	echo "$(stat -c '%h %s' "$D/m/a") $(cat "$D/m/b")"
	um
}
t_is "$(rename_over_alias s)" "1 10 c
1 10 c" "rename over the lower name of a copied-up hard link: nlink 1, and after remount"
if have_kovl; then
	t_is "$(rename_over_alias k)" "1 10 c
1 10 c" "rename over the lower name of a copied-up hard link: kernel overlayfs agrees"
else
	t_skip "rename over the lower name of a copied-up hard link: kernel overlayfs agrees" "root only"
fi

# A directory whose upper holds whiteouts (hiding lower entries) is replaced
# by a rename, or removed, in one step: the whiteouts never leave it while it
# is visible, so a failure part-way shows nothing of the lower.
rename_over_whiteouts() {
	setup rw$1
	mkdir -p "$D/l1/d" "$D/l1/p/s" "$D/l1/r"
	echo x >"$D/l1/d/x" && echo y >"$D/l1/d/y" && echo z >"$D/l1/r/z"
	mnt_as "$1" redirect_dir=on
	rm "$D/m/d/x" "$D/m/d/y"
	touch "$D/m/p/s/f"
	mv "$D/m/r" "$D/m/r2" && rm "$D/m/r2/z"
	echo "rename over: $(fsop rename "$D/m/p/s" "$D/m/d") [$(ls -A "$D/m/d")] [$(ls -A "$D/m/p")]"
	echo "rmdir renamed: $(fsop rmdir "$D/m/r2") [$(ls "$D/m" | tr '\n' ' ')]"
	um
	mnt_as "$1" redirect_dir=on
	echo "after remount: [$(ls -A "$D/m/d")] [$(ls "$D/m" | tr '\n' ' ')] work: $(work_leftovers "$D/w" | wc -l)"
	um
}
want_rw="rename over: OK [f] []
rmdir renamed: OK [d p ]
after remount: [f] [d p ] work: 0"
t_is "$(rename_over_whiteouts s)" "$want_rw" "rename over and rmdir of directories holding whiteouts"
if have_kovl; then
	t_is "$(rename_over_whiteouts k)" "$want_rw" "rename over and rmdir of directories holding whiteouts: kernel overlayfs agrees"
else
	t_skip "rename over and rmdir of directories holding whiteouts: kernel overlayfs agrees" "root only"
fi
# failures injected with the immutable flag on the upper (real root only)
if [ "$STRATA_ROOTLESS" = 1 ] || ! command -v chattr >/dev/null; then
	t_skip "a failed rename over a directory holding whiteouts leaves it as it was" "chattr +i needs real root"
	t_skip "a failed rmdir of a directory holding whiteouts leaves it as it was" "chattr +i needs real root"
else
	setup rwf
	mkdir -p "$D/l1/d" "$D/l1/p/s" "$D/l1/r"
	echo x >"$D/l1/d/x" && echo y >"$D/l1/d/y" && echo z >"$D/l1/r/z"
	mnt
	rm "$D/m/d/x" "$D/m/d/y"
	touch "$D/m/p/s/f"
	mv "$D/m/r" "$D/m/r2" && rm "$D/m/r2/z"
	if chattr +i "$D/u/p" 2>/dev/null; then
		got="$(fsop rename "$D/m/p/s" "$D/m/d") [$(ls -A "$D/m/d")] $(ls -A "$D/u/d" | wc -l) [$(work_leftovers "$D/w")]"
		chattr -i "$D/u/p"
		t_is "$got" "EPERM [] 2 []" "a failed rename over a directory holding whiteouts leaves it as it was"
		chattr +i "$D/u"
		got="$(fsop rmdir "$D/m/r2") [$(ls -A "$D/m/r2")] [$(work_leftovers "$D/w")]"
		chattr -i "$D/u"
		t_is "$got" "EPERM [] []" "a failed rmdir of a directory holding whiteouts leaves it as it was"
	else
		t_skip "a failed rename over a directory holding whiteouts leaves it as it was" "no chattr +i on $T"
		t_skip "a failed rmdir of a directory holding whiteouts leaves it as it was" "no chattr +i on $T"
	fi
	t_is "$(fsop rename "$D/m/p/s" "$D/m/d") [$(ls -A "$D/m/d")] $(fsop rmdir "$D/m/r2")" "OK [f] OK" \
		"both work once the upper is writable again"
	um
fi

# index=off: copy-up parts the names of a lower hard link, as on overlayfs
# without index: a write through one name leaves the other as it was, and a
# name whose partner was removed stays writable.  Both names show the
# lower's inode number until copy-up gives the written one its own.
hardlink_noindex() {
	local ia ib
	setup hn$1
	echo one >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b"
	echo two >"$D/l1/c" && ln "$D/l1/c" "$D/l1/e"
	mnt_as "$1" index=off
	stat "$D/m/b" "$D/m/a" "$D/m/e" "$D/m/c" >/dev/null
	ia=$(stat -c '%s %i' "$D/m/a") ib=$(stat -c '%s %i' "$D/m/b")
	echo "before: $([ "${ia#* }" = "${ib#* }" ] && echo same || echo differ) inode number"
	echo more >>"$D/m/a"
	ia=$(stat -c '%s %i' "$D/m/a") ib=$(stat -c '%s %i' "$D/m/b")
	echo "after: $([ "${ia#* }" = "${ib#* }" ] && echo same || echo differ) inode number"
	echo "write a: $(cat "$D/m/a" | tr '\n' ' ')$(stat -c '%h %s' "$D/m/a"), b: $(cat "$D/m/b") $(stat -c '%h %s' "$D/m/b")"
	rm "$D/m/c"
	echo "rm c, append e: $(fsop append "$D/m/e" x) $(cat "$D/m/e" | tr '\n' ' ')$(stat -c '%h %s' "$D/m/e")"
	um
	mnt_as "$1" index=off
	echo "remount: $(cat "$D/m/a" "$D/m/b" "$D/m/e" | tr '\n' ' ')"
	um
}
want_hn="before: same inode number
after: differ inode number
write a: one more 1 9, b: one 2 4
rm c, append e: OK two x1 5
remount: one more one two x"
t_is "$(hardlink_noindex s)" "$want_hn" "index=off: names of a lower hard link part on copy-up"
if kovl_usable; then
	t_is "$(hardlink_noindex k)" "$want_hn" "index=off: kernel overlayfs agrees"
else
	t_skip "index=off: kernel overlayfs agrees" "kernel overlayfs does not mount here"
fi
# readdir's d_ino agrees with st_ino for such names, before and after copy-up
dino_mismatch() {
	python3 - "$1" <<'PY'
import os, sys
for e in os.scandir(sys.argv[1]):
    st = os.stat(e.path, follow_symlinks=False)
    if e.inode() != st.st_ino:
        print("%s: d_ino %d st_ino %d" % (e.name, e.inode(), st.st_ino))
PY
}
if command -v python3 >/dev/null; then
	setup hnd
	echo one >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b"
	mnt index=off
	got=$(dino_mismatch "$D/m")
	echo more >>"$D/m/a"
	t_is "$got$(dino_mismatch "$D/m")" "" "index=off: readdir's d_ino is st_ino for the names of a lower hard link"
	um
else
	t_skip "index=off: readdir's d_ino is st_ino for the names of a lower hard link" "no python3"
fi
# A lower file removed while open cannot be copied up by either: overlayfs
# fails with EEXIST (the whiteout holds its name), strata-fs with ENOENT.
setup hno
echo one >"$D/l1/a" && ln "$D/l1/a" "$D/l1/b"
mnt index=off
exec 3<"$D/m/a"
rm "$D/m/a"
t_is "$(fsop chmod /proc/self/fd/3 600) $(cat "$D/m/b") $(stat -c %a "$D/m/b")" "ENOENT one 644" \
	"index=off: metadata change of an open removed lower name fails, the other name untouched"
exec 3<&-
um

# st_nlink of a directory as overlayfs reports it: the real count when one
# layer holds it (upper only, opaque, or a single lower), 1 when merged
# (upper and lower, several lowers, renamed).  Read after a remount: a
# directory copied up during the mount keeps its cached count until the
# attribute timeout.
dir_nlink() {
	setup dn$1
	mkdir -p "$D/l1/one/s1" "$D/l1/one/s2" "$D/l1/two/a" "$D/l2/two/b" "$D/l1/cu/s" \
		"$D/l1/op/s1" "$D/l1/op/s2" "$D/l1/rd/s"
	mnt_as "$1" redirect_dir=on
	mkdir -p "$D/m/new/s1" "$D/m/new/s2" "$D/m/cu/x"
	rm -r "$D/m/op" && mkdir -p "$D/m/op/s"
	mv "$D/m/rd" "$D/m/rd2"
	um
	mnt_as "$1" redirect_dir=on
	for d in . one one/s1 two cu new op rd2; do echo "$d $(stat -c %h "$D/m/$d")"; done
	um
}
want_dn=". 1
one 4
one/s1 2
two 1
cu 1
new 4
op 3
rd2 1"
t_is "$(dir_nlink s)" "$want_dn" "directory st_nlink: real for one layer, 1 for merged"
if have_kovl; then
	t_is "$(dir_nlink k)" "$want_dn" "directory st_nlink: kernel overlayfs agrees"
else
	t_skip "directory st_nlink: kernel overlayfs agrees" "redirect_dir needs trusted.* xattrs (real root)"
fi
t_done
