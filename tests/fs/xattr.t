#!/bin/bash
# tests/fs/xattr.t: extended attributes through the mount: user.* xattrs of
# lower files, setfattr/removexattr copying up and leaving the lower alone,
# ENODATA for a missing name, security./trusted. as root, and listxattr never
# showing the filesystem's own xattrs (overlay.*, fuseoverlayfs.*).  Every
# step runs on kernel overlayfs too and must answer the same.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"
t_need getfattr setfattr python3 xargs

P=$(ovl_xattr_prefix)
L=$T/lower M=$T/mnt K=$T/kmnt
mkdir -p "$L/d" "$L/v" "$L/r/sub" "$L/gone/x" "$L/o" "$T/u" "$T/w" "$T/ku" "$T/kw"
echo f >"$L/f" && setfattr -n user.a -v 1 "$L/f" && setfattr -n user.b -v two "$L/f"
echo g >"$L/g" && setfattr -n user.g -v gee "$L/g"
echo h >"$L/h"
setfattr -n user.d -v dee "$L/d"
setfattr -n user.r -v are "$L/r" && echo s >"$L/r/sub/s"
echo x >"$L/o/lowerfile"
echo c >"$L/v/child"
# An upper that already holds an opaque directory, for both mounts.
mkdir -p "$T/u/o" "$T/ku/o"
setfattr -n "${P}opaque" -v y "$T/u/o" && setfattr -n user.o -v oh "$T/u/o" &&
	setfattr -n "${P}opaque" -v y "$T/ku/o" && setfattr -n user.o -v oh "$T/ku/o" ||
	t_skip_all "cannot set ${P}opaque here"

t_ok "mount strata-fs" sfs_mount "$M" "lowerdir=$L,upperdir=$T/u,workdir=$T/w"
t_ok "mount kernel overlayfs" kovl_mount "$K" "lowerdir=$L,upperdir=$T/ku,workdir=$T/kw"

# xattrs FILE: every xattr of FILE as name="value", sorted.
xattrs() {
	getfattr --absolute-names -h -d -m - "$1" 2>&1 | sed -e '/^# file:/d' -e '/^$/d' | LC_ALL=C sort
}
# getx FILE NAME: the value, or ENODATA.
getx() {
	local v
	v=$(getfattr --absolute-names -h --only-values -n "$2" "$1" 2>&1)
	case $v in
	*"No such attribute") echo ENODATA ;;
	*) echo "${v#"$1": }" ;;
	esac
}
# own DIR: "path: name" for every xattr under DIR that belongs to overlayfs.
own() {
	find "$1" -print0 | xargs -0 getfattr --absolute-names -h -m - 2>/dev/null |
		awk '/^# file: / { f = substr($0, 9); next }
		     /^(trusted|user)\.(overlay|fuseoverlayfs)\./ { print f ": " $0 }'
}

# both DESC CMDS: CMDS ($D is the mount) on kernel overlayfs and strata-fs.
both() {
	local want got
	want=$(D=$K && eval "$2" 2>&1)
	got=$(D=$M && eval "$2" 2>&1)
	t_is "$got" "$want" "$1"
}

t_is "$(xattrs "$M/f")" "$(printf 'user.a="1"\nuser.b="two"')" "user.* xattrs of a lower file"
both "user.* xattrs of a lower file (as kernel overlayfs)" 'xattrs $D/f'
both "xattr of a lower directory" 'xattrs $D/d'
both "getxattr of one name" 'getx $D/f user.b'
t_is "$(getx "$M/f" user.nope)" ENODATA "missing xattr: ENODATA"
both "missing xattr on a directory: ENODATA" 'getx $D/d user.nope'
t_fail "getfattr of a missing xattr fails" getfattr -n user.nope "$M/f"

both "setfattr on a lower file" 'setfattr -n user.c -v three $D/f && xattrs $D/f'
both "content unchanged by setfattr" 'cat $D/f && stat -c "%s %a" $D/f'
t_is "$(xattrs "$L/f")" "$(printf 'user.a="1"\nuser.b="two"')" "lower file untouched by setfattr"
t_ok "setfattr copied the file up" test -f "$T/u/f"
both "replace a value" 'setfattr -n user.a -v one $D/f && getx $D/f user.a'
both "removexattr on a copied-up file" 'setfattr -x user.b $D/f && xattrs $D/f && getx $D/f user.b'
both "removexattr on a lower file" 'setfattr -x user.g $D/g && xattrs $D/g && getx $D/g user.g && cat $D/g'
t_is "$(getx "$L/g" user.g)" gee "lower file untouched by removexattr"
both "removexattr of a missing name fails with ENODATA" \
	'python3 -c "import os,sys
try: os.removexattr(sys.argv[1], \"user.nope\")
except OSError as e: print(e.errno)" $D/h'
both "setfattr on a lower directory" 'setfattr -n user.e -v ee $D/d && xattrs $D/d'
t_is "$(getx "$L/d" user.e)" ENODATA "lower directory untouched"
both "xattr on a new file" 'echo n >$D/new && setfattr -n user.n -v en $D/new && xattrs $D/new'
both "xattr survives a write (copy-up keeps xattrs)" 'echo more >>$D/g && xattrs $D/g && cat $D/g'
both "large value" 'setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr "\0" z)" $D/h && getx $D/h user.big | wc -c'
both "symlink: user xattr refused" 'ln -s f $D/ln && setfattr -h -n user.l -v l $D/ln 2>&1 | sed "s/^.*: //"'

# The filesystem's own xattrs: present on disk, never visible through the mount.
both "opaque directory lists only its user xattr" 'xattrs $D/o && ls $D/o'
both "deleted and recreated directory (opaque)" 'rm -rf $D/gone && mkdir $D/gone && xattrs $D/gone && ls -A $D/gone'
both "renamed lower directory" 'mv $D/r $D/r2 && xattrs $D/r2 && ls $D/r2'
both "copied-up file" 'xattrs $D/f'
both "whiteout left by unlink" 'rm $D/h && ls $D | tr "\n" " "'
t_is "$(own "$M")" "" "no overlay xattr listed anywhere in the strata-fs mount"
t_is "$(own "$K")" "" "no overlay xattr listed anywhere in the kernel mount"
t_ok "the strata-fs upper does hold overlay xattrs (so the check above means something)" \
	bash -c "getfattr --absolute-names -d -m - '$T/u/gone' | grep -q '^${P//./\\.}opaque'"
# Kernel overlayfs stores such a name escaped (overlay.overlay.*) or refuses
# it; either way the directory must not become opaque.
both "an overlay xattr set through the mount does not make a directory opaque" \
	'setfattr -n ${P}opaque -v y $D/v 2>/dev/null; ls $D/v'
both "getxattr of an overlay xattr through the mount" 'getx $D/o ${P}opaque'

if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "trusted.* xattr" "needs real root"
	t_skip "trusted.* xattr on a lower file" "needs real root"
else
	both "trusted.* xattr" 'setfattr -n trusted.t -v tee $D/new && getx $D/new trusted.t'
	setfattr -n trusted.lt -v ltv "$L/d"
	both "trusted.* xattr on a lower directory" 'getx $D/d trusted.lt'
fi
both "security.* xattr" 'setfattr -n security.strata -v sec $D/new 2>&1 | sed "s/^.*: //"; getx $D/new security.strata'

# After a remount the changes are still there.
t_umount "$M"
t_ok "remount strata-fs" sfs_mount "$M" "lowerdir=$L,upperdir=$T/u,workdir=$T/w"
both "after remount: xattrs of every file" 'cd $D && for p in f g new d o gone r2; do echo "$p: $(xattrs $p | tr "\n" " ")"; done'
both "after remount: the directory is still not opaque" 'ls $D/v'
# (kernel overlayfs lists the name set on v above: it stored it escaped)
t_is "$(own "$M" | grep -v "^$M/v: ")" "" "after remount: no overlay xattr listed"
t_done
