#!/bin/bash
# tests/fs/copymode.t: copy-up and creation skip the calls that would change
# nothing -- an object made in the workdir already has its permissions and is
# its maker's, so only a different owner is set, and the mode only when the
# creation could not give it -- and the daemon remembers that a file it copied
# up or made has no set-id bits nor capabilities, so a later chown, write or
# getxattr need not look.  Each case ends as it does natively: the modes and
# owners of every kind of lower object once copied up (plain workdir,
# set-group-id workdir, workdir with a default ACL), objects made again over
# a whiteout (built in the workdir: neither its group, set-group-id bit nor
# ACL may stick), files made in a set-group-id directory, a capability set
# through the mount after that; and the kernel's question for a capability
# before a chown of a file known clean is answered without a call.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need setfacl

root=1
[ "$STRATA_ROOTLESS" = 1 ] && root=0

# mk_lower L: one object of each kind and mode worth telling apart
mk_lower() {
	local l=$1 m
	mkdir -p "$l"
	for m in 0000 0444 0600 0640 0644 0755 0777 4755 2755 2711 6755 1755; do
		echo "$m" >"$l/f$m" && chmod "$m" "$l/f$m"
	done
	for m in 0555 0700 0755 1777 2775 0000; do
		mkdir "$l/d$m" && echo in >"$l/d$m/in" && chmod "$m" "$l/d$m"
	done
	mkfifo -m 0620 "$l/fifo"
	ln -s f0644 "$l/link"
	if [ $root = 1 ]; then
		echo o >"$l/owned" && chown 1234:2345 "$l/owned" && chmod 0640 "$l/owned"
		echo o >"$l/ownsuid" && chown 1234:2345 "$l/ownsuid" && chmod 4750 "$l/ownsuid"
		echo o >"$l/grponly" && chgrp 2345 "$l/grponly" && chmod 2755 "$l/grponly"
		mkdir "$l/downed" && chown 1234:2345 "$l/downed" && chmod 0750 "$l/downed"
	fi
}

# meta DIR: what each object in DIR is, with mode and owner (not times: the
# copy-ups below change them)
meta() {
	(cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%p %y %m %U:%G\n' | sort)
}

# copy_all M: a copy-up of every object without changing its mode or owner
copy_all() {
	local m=$1 p
	for p in "$m"/f* "$m"/fifo "$m"/owned "$m"/ownsuid "$m"/grponly; do
		[ -e "$p" ] || [ -p "$p" ] || continue
		touch -a -d '2030-01-01 00:00:00' "$p"
	done
	touch -h -a -d '2030-01-01 00:00:00' "$m/link"
	for p in "$m"/d*; do
		touch -a -d '2030-01-01 00:00:00' "$p"
	done
}

L=$T/lower
mk_lower "$L"
want=$(meta "$L")

# workdir variants: plain, set-group-id (of another group when root), and
# with a default ACL that would mask the modes objects are made with
for variant in plain setgid acl; do
	U=$T/u-$variant W=$T/w-$variant M=$T/m-$variant
	mkdir -p "$U" "$W" "$M"
	case $variant in
	setgid)
		[ $root = 1 ] && chgrp 4242 "$W"
		chmod 2755 "$W"
		;;
	acl)
		# (a named entry: what is made below gets an extended ACL)
		setfacl -d -m u::rwx,u:0:rwx,g::---,m::rwx,o::--- "$W" 2>/dev/null ||
			{ t_skip "copy-up modes and owners: $variant workdir" "no ACLs on $T"; continue; }
		;;
	esac
	t_ok "mount ($variant workdir)" sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
	copy_all "$M"
	t_is "$(meta "$M")" "$want" "modes and owners through the mount after copy-up ($variant workdir)"
	t_is "$(meta "$U")" "$want" "the same in the upper ($variant workdir)"
	t_is "$(cat "$M/d0555/in" "$M/f0644")" "in
0644" "contents read back ($variant workdir)"
	# made again where a lower one was removed: built in the workdir,
	# still the caller's with the caller's mode
	rm -rf "$M/f0640" "$M/d0700"
	(umask 022 && echo new >"$M/f0640" && mkdir "$M/d0700")
	t_is "$(stat -c '%a %u:%g' "$M/f0640" "$M/d0700")" "644 0:0
755 0:0" "made again over a whiteout: the caller's owner and mode ($variant workdir)"
	# (nor is any ACL of the workdir handed on; -s: only what has more
	# than the entries its mode shows)
	t_is "$(cd "$U" && getfacl -R -s -p . 2>&1)" "" "no ACL in the upper ($variant workdir)"
	t_umount "$M"
done

# chmod and chown of the copies: the same as natively (a chown drops the
# set-id bits, setgid only with group execute, whoever makes it)
N=$T/native U=$T/u2 W=$T/w2 M=$T/m2
cp -a "$L" "$N"
mkdir -p "$U" "$W" "$M"
t_ok "mount" sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
for d in "$M" "$N"; do
	chmod g+w "$d/f0644" "$d/f4755" "$d/d0555"
	chown 0:0 "$d/f0600" "$d/f6755"
	setpriv --bounding-set=-all --inh-caps=-all chown 0:0 "$d/f2755" 2>/dev/null
	setpriv --bounding-set=-all --inh-caps=-all chmod 0644 "$d/f0777" 2>/dev/null
done
t_is "$(meta "$M")" "$(meta "$N")" "chmod and chown after copy-up end as natively"

# files and directories made in a set-group-id directory take its group
# (another group than the daemon's when root), and directories its bit
mkdir "$M/sg" "$N/sg"
for d in "$M" "$N"; do
	[ $root = 1 ] && chgrp 4242 "$d/sg"
	chmod 2775 "$d/sg"
	touch "$d/sg/file" && mkdir "$d/sg/dir" && mkfifo "$d/sg/fifo"
	install -m 4755 /dev/null "$d/sg/suid"
done
t_is "$(meta "$M/sg")" "$(meta "$N/sg")" "objects made in a set-group-id directory: group and bits as natively"

# A capability set through the mount on a file the daemon made, or copied
# up, shows: what the daemon remembers is forgotten when it changes.
if [ $root = 1 ] && command -v setcap >/dev/null; then
	echo prog >"$M/made"
	cat "$M/made" >/dev/null
	t_fail "a file made through the mount has no capability" getfattr -n security.capability "$M/made"
	setcap cap_net_raw+ep "$M/made"
	t_is "$(getcap "$M/made" | awk '{print $2}')" "cap_net_raw=ep" "a capability set on it then shows"
	setcap cap_net_raw+ep "$M/f0755"
	t_is "$(getcap "$M/f0755" | awk '{print $2}')" "cap_net_raw=ep" "and on a copied-up file"
	chown 1:1 "$M/made"
	t_fail "a chown then drops it" getfattr -n security.capability "$M/made"
	echo more >>"$M/f0755"
	t_fail "a write drops the copied-up file's" getfattr -n security.capability "$M/f0755"
else
	for _ in 1 2 3 4 5; do
		t_skip "capabilities set through the mount" "needs real root and setcap"
	done
fi
t_umount "$M"

# A second name for a file known clean, the first removed while open, the
# file made setuid through the second: a write through the first by a
# process without CAP_FSETID still drops the bit, as natively.  (Without
# passthrough, which would hand the write to the kernel as opened.)
mkdir -p "$T/u4" "$T/w4" "$T/m4"
t_ok "mount without passthrough" sfs_mount "$T/m4" \
	"lowerdir=$L,upperdir=$T/u4,workdir=$T/w4,passthrough=0"
for d in "$T/m4" "$N"; do
	echo a >"$d/la" && ln "$d/la" "$d/lb"
	exec 7>>"$d/la"
	rm "$d/la" && chmod 4777 "$d/lb"
	setpriv --bounding-set=-all --inh-caps=-all sh -c 'echo more >&7'
	exec 7>&-
done
t_is "$(stat -c %a "$T/m4/lb")" "$(stat -c %a "$N/lb")" \
	"a write through a removed name drops setuid set through another"
t_umount "$T/m4"

# What the daemon knows is asked of the layers no more: the kernel's
# getxattr(security.capability) before a chown of a file the daemon made,
# or copied up clean, is answered without a call on the upper.
mkdir -p "$T/u3" "$T/w3"
start_debug "lowerdir=$L,upperdir=$T/u3,workdir=$T/w3" || t_fail "debug mount" true
echo x >"$T/mnt/new" && chown 0:0 "$T/mnt/new" && touch -a "$T/mnt/f0644" && chown 0:0 "$T/mnt/f0644"
t_ok "the kernel asked for security.capability" [ "$(seen GETXATTR)" -ge 2 ]
t_is "$(grep -c 'getxattr([0-9]*, "security.capability")' "$T/d.log")" 0 \
	"and no call on the upper answered it"
t_umount "$T/mnt"
t_done
