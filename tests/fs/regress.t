#!/bin/bash
# Regression tests for defects found in review: each point is a case that
# once went wrong (writeback appends, file capabilities lost at copy-up,
# renames of hard-linked names, redirects through opaque directories and
# symlinks in lowers, nested layers).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
X=$(ovl_xattr_prefix)

setup() {
	D=$T/$1
	mkdir -p "$D/l1" "$D/l2" "$D/u" "$D/w" "$D/m"
}
mnt() { sfs_mount "$D/m" "lowerdir=$D/l1:$D/l2,upperdir=$D/u,workdir=$D/w${1:+,$1}"; }
um() { t_umount "$D/m"; }

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
t_done
