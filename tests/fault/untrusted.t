#!/bin/bash
# tests/fault/untrusted.t: lowers nobody checked.  A layer with AUFS
# whiteouts for ".", ".." and the empty name, names holding newlines, 255-byte
# names, a path of more than 4096 bytes, a million entries in one directory
# (each listed exactly once, a late one looked up; STRATA_HUGE_ENTRIES sets
# the count, 100,000 under `make asan`, which sets ASAN_OPTIONS), symlink
# loops, a redirect pointing out of the layers, and garbage in the metacopy
# and origin xattrs.  strata-fs serves what it can and refuses the rest with
# errors: every call returns, and the daemon is alive at the end.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fs/fslib.sh"
fs_need_sfs
X=$(ovl_xattr_prefix)
L1=$T/l1 L2=$T/l2
mkdir -p "$L1/wh" "$L2/wh" "$L1/nl" "$L1/long" "$L1/big" "$L1/loop" "$L1/redir" "$L1/meta"
# whiteouts for names that are no names
echo below >"$L2/wh/keep"
touch "$L1/wh/.wh.." "$L1/wh/.wh..." "$L1/wh/.wh." "$L1/wh/.wh.keep2"
echo other >"$L2/wh/keep2"
mknod "$L1/wh/.wh.x" c 0 0 2>/dev/null
# newlines and long names
printf 'one\n' >"$L1/nl/$(printf 'a\nb')"
printf 'two\n' >"$L1/nl/"$'\n'
n255=$(printf 'n%.0s' $(seq 255))
echo 255 >"$L1/long/$n255"
# a path longer than PATH_MAX: 22 levels of 200-byte names
seg=$(printf 'd%.0s' $(seq 200))
(cd "$L1/long" && for _ in $(seq 22); do mkdir "$seg" && cd "$seg" || exit 1; done && echo deep >leaf)
# HUGE entries, named e<zero-padded number> (so seq prints them sorted)
if [ -n "${ASAN_OPTIONS:-}" ]; then
	HUGE=${STRATA_HUGE_ENTRIES:-100000}
else
	HUGE=${STRATA_HUGE_ENTRIES:-1000000}
fi
huge_name() { printf "e%0${#HUGE}d" "$1"; }
huge_names() { seq -f "e%0${#HUGE}.0f" "$HUGE"; }
start=$SECONDS
if command -v python3 >/dev/null; then
	# One mknod per empty file: several times quicker than touch's
	# open, utimensat, close.
	(cd "$L1/big" && python3 -c 'import os, stat, sys
w = len(sys.argv[1])
for i in range(1, int(sys.argv[1]) + 1):
    os.mknod("e%0*d" % (w, i), 0o644 | stat.S_IFREG)' "$HUGE")
else
	(cd "$L1/big" && huge_names | xargs touch)
fi
t_diag "creating $HUGE entries took $((SECONDS - start)) s"
# symlink loops
ln -s . "$L1/loop/self"
ln -s b "$L1/loop/a"
ln -s a "$L1/loop/b"
ln -s ../loop "$L1/loop/up"
# hostile xattrs
echo mine >"$L1/redir/file"
setfattr -n "${X}redirect" -v "../../../../../../etc" "$L1/redir" 2>/dev/null
mkdir -p "$L1/redir2" && setfattr -n "${X}redirect" -v "/etc" "$L1/redir2" 2>/dev/null
echo data >"$L1/meta/m"
setfattr -n "${X}metacopy" -v "" "$L1/meta/m" 2>/dev/null
echo data2 >"$L1/meta/o"
setfattr -n "${X}origin" -v 0xdeadbeef00 "$L1/meta/o" 2>/dev/null

echo old >"$L1/chg"
echo kept >"$L1/chg2"

mkdir -p "$T/upper" "$T/work"
M=$T/mnt
t_ok "mount the untrusted layers" sfs_mount "$M" "lowerdir=$L1:$L2,upperdir=$T/upper,workdir=$T/work"
call() { timeout $((60 + HUGE / 10000)) "$@"; }
# sfs_rss MNT: the peak resident size of the strata-fs serving MNT.
sfs_rss() {
	local f
	for f in $(grep -l -- "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
		[ "$(cat "${f%cmdline}comm" 2>/dev/null)" = strata-fs ] &&
			awk '/^VmHWM/ { printf "%d MiB", $2 / 1024 }' "${f%cmdline}status"
	done
	return 0
}

t_is "$(cd "$M/wh" && ls -A | LC_ALL=C sort | tr '\n' ' ')" "keep " \
	"AUFS whiteouts of '.', '..' and '' hide nothing and do not show"
t_is "$(cat "$M/wh/../wh/keep")" below "'..' still leads to the parent"
t_is "$(fsop stat "$M/wh/keep2")" ENOENT "a real .wh. whiteout hides its name"
t_is "$(cat "$M/nl/$(printf 'a\nb')")" one "a name with a newline reads"
t_is "$(cat "$M/nl/"$'\n')" two "a name that is a newline reads"
t_is "$(find "$M/nl" -mindepth 1 -printf x)" xx "and both are listed"
t_is "$(cat "$M/long/$n255")" 255 "a 255-byte name reads"
t_is "$(fsop creat "$M/long/${n255}x")" ENAMETOOLONG "a 256-byte name is refused"
t_is "$(cd "$M/long" && for _ in $(seq 22); do cd "$seg" || exit 1; done && cat leaf)" deep \
	"a file under a path of $((22 * 201 + 5)) bytes reads (walked relatively)"
t_ok "and can be written there (copy-up of 22 levels)" \
	bash -c "cd '$M/long' && for i in \$(seq 22); do cd '$seg' || exit 1; done && echo more >>leaf"
t_is "$(fsop stat "$M/long/$(printf "$seg/%.0s" $(seq 22))leaf")" ENAMETOOLONG \
	"the same file by its full path: ENAMETOOLONG from the kernel"
start=$SECONDS
call ls -f "$M/big" >"$T/big.ls"
t_is "$(wc -l <"$T/big.ls")" $((HUGE + 2)) "$HUGE entries are listed (with . and ..)"
t_diag "listing $HUGE entries took $((SECONDS - start)) s"
{ printf '.\n..\n' && huge_names; } >"$T/big.want"
t_ok "each of them exactly once" sh -c "LC_ALL=C sort '$T/big.ls' | cmp - '$T/big.want'"
start=$SECONDS
t_is "$(call stat -c %s "$M/big/$(huge_name $((HUGE - 1)))")" 0 "a late one is looked up"
t_diag "looking it up took $((SECONDS - start)) s; the daemon's peak RSS: $(sfs_rss "$M")"
t_ok "one of them is removed" rm "$M/big/$(huge_name $((HUGE / 2)))"
t_is "$(call ls -f "$M/big" | awk -v gone="$(huge_name $((HUGE / 2)))" \
	'$0 == gone { shown = 1 } END { print shown ? "still listed" : NR }')" $((HUGE + 1)) \
	"and the listing has one less"
rm -f "$T/big.ls" "$T/big.want"
t_is "$(fsop read "$M/loop/a")" ELOOP "a two-link symlink loop: ELOOP"
t_is "$(fsop stat "$M/loop/self/self/self/self/a")" ELOOP "through a directory self-link: ELOOP"
t_ok "find -L over a directory loop ends" sh -c "timeout 30 find -L '$M/loop' >/dev/null 2>&1; [ \$? != 124 ]"
t_ok "du over the loops ends" sh -c "timeout 30 du -L '$M/loop' >/dev/null 2>&1; [ \$? != 124 ]"
r=$(ls "$M/redir" 2>&1)
t_ok "a redirect out of the layers does not show the host's /etc" sh -c "! ls '$M/redir' 2>/dev/null | grep -qx passwd"
t_ok "nor an absolute one" sh -c "! ls '$M/redir2' 2>/dev/null | grep -qx passwd"
t_diag "redir lists: $(echo "$r" | tr '\n' ' ' | head -c 100)"
r=$(fsop read "$M/meta/m")
t_ok "a lower claiming metacopy with no data below: an answer ($r)" test -n "$r"
t_is "$(cat "$M/meta/o")" data2 "a garbage origin xattr is harmless"
t_ok "copy-up of it works" sh -c "echo x >>'$M/meta/o'"
t_ok "copy-up of the metacopy claimer: an answer, no hang" sh -c "timeout 30 sh -c \"echo x >>'$M/meta/m'\"; [ \$? != 124 ]"
# A lower file replaced under the mount (overlayfs leaves that undefined):
# a lower file's node holds no fd and is opened by its path, which must
# still lead to the inode the lookup found; the kernel then looks the
# name up again.  Old or new content, never an error, never a mix.
t_is "$(cat "$M/chg" "$M/chg2")" "$(printf 'old\nkept')" "lower files looked up"
mv "$L1/chg" "$L1/chg.gone" && echo new >"$L1/chg"
r=$(cat "$M/chg" 2>&1)
t_ok "one replaced under the mount reads whole, old or new ($r)" test "$r" = old -o "$r" = new
t_is "$(cat "$M/chg2")" kept "its neighbour is untouched"
t_ok "the daemon is alive" stat "$M/wh/keep"
t_ok "unmount" t_umount "$M"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
