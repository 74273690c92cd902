#!/bin/bash
# tests/fs/options.t: the strata-fs command line (fuse-overlayfs compatible):
# bad options fail with a message and mount nothing, unknown options only
# warn, read-only mounts, silence on success, returning only once mounted,
# the positional SOURCE, -f, -V/-h, squash_to_root, uid/gid mapping,
# static_nlink, and mount -t fuse.strata-fs when installed.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"

L=$T/lower L2=$T/lower2 U=$T/upper W=$T/work M=$T/mnt
mkdir -p "$L/dir/sub" "$L2" "$U" "$W" "$M"
echo top >"$L/f" && echo bottom >"$L2/g" && echo hidden >"$L2/f"
OK="lowerdir=$L:$L2,upperdir=$U,workdir=$W"
echo "$M" >>"$T/.mounts"

# run ARGS...: strata-fs with ARGS (10 s limit); sets rc, out, err.
run() {
	timeout 10 "$STRATA_FS" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	out=$(cat "$T/stdout") err=$(cat "$T/stderr")
}
msg_matches() { cat "$T/stderr" && grep -qiE "$1" "$T/stderr"; }
unmount() { mountpoint -q "$1" && t_umount "$1"; }

# bad DESC REGEX ARGS...: strata-fs ARGS must fail, say something matching
# REGEX (case-insensitive) on stderr, and leave $M unmounted.
bad() {
	local desc=$1 re=$2
	shift 2
	run "$@"
	t_ok "$desc: non-zero exit (got $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	t_ok "$desc: a message on stderr matching /$re/" msg_matches "$re"
	t_fail "$desc: nothing mounted" mountpoint -q "$M"
	unmount "$M" 2>/dev/null
}

bad "missing lowerdir" 'lower' -o "upperdir=$U,workdir=$W" "$M"
bad "nonexistent lowerdir" 'lower|nope' -o "lowerdir=$T/nope,upperdir=$U,workdir=$W" "$M"
bad "nonexistent second lowerdir" 'lower|nope' -o "lowerdir=$L:$T/nope,upperdir=$U,workdir=$W" "$M"
bad "upperdir without workdir" 'workdir' -o "lowerdir=$L,upperdir=$U" "$M"
bad "nonexistent upperdir" 'upper|nope' -o "lowerdir=$L,upperdir=$T/nope,workdir=$W" "$M"
bad "mountpoint missing" 'mount ?point|usage' -o "$OK"
bad "nonexistent mountpoint" 'nomnt|mount ?point' -o "$OK" "$T/nomnt"
bad "uidmapping=garbage" 'garbage|mapping' -o "$OK,uidmapping=garbage" "$M"
bad "gidmapping=1:2" '1:2|mapping' -o "$OK,gidmapping=1:2" "$M"

# workdir on another filesystem than upperdir: may be refused, else must work.
mkdir -p "$T/tmpfs"
if mount -t tmpfs tmpfs "$T/tmpfs" 2>/dev/null; then
	echo "$T/tmpfs" >>"$T/.mounts"
	mkdir "$T/tmpfs/w"
	run -o "lowerdir=$L,upperdir=$U,workdir=$T/tmpfs/w" "$M"
	if [ "$rc" -ne 0 ]; then
		t_ok "workdir on another filesystem refused with a message" test -n "$err"
		t_fail "workdir on another filesystem: nothing mounted" mountpoint -q "$M"
	else
		t_ok "workdir on another filesystem accepted: mounted" mountpoint -q "$M"
		t_ok "workdir on another filesystem accepted: copy-up works" \
			bash -c "echo more >>'$M/f' && grep -q more '$U/f'"
		unmount "$M"
		rm -f "$U/f"
	fi
else
	t_skip "workdir on another filesystem" "cannot mount a tmpfs here"
fi

# A good mount: silent, ready on return.
run -o "$OK" "$M"
t_is "$rc" 0 "plain mount exits 0"
t_ok "mounted when the command returns" mountpoint -q "$M"
t_is "$out" "" "nothing on stdout"
t_is "$err" "" "nothing on stderr"
t_is "$(cat "$M/f" "$M/g" 2>&1)" "top
bottom" "leftmost lowerdir is the top layer"
unmount "$M"

run -o "$OK,foo=bar" "$M"
t_is "$rc" 0 "unknown option foo=bar: exits 0"
t_ok "unknown option foo=bar: mounted" mountpoint -q "$M"
t_ok "unknown option foo=bar: a warning names it" msg_matches foo
unmount "$M"

# An escaped comma stays inside its option's value: it may not smuggle a
# second FUSE option (here a subtype) into the mount.
run -o "$OK,fsname=a\\,subtype=evil" "$M"
t_is "$rc" 0 "fsname with an escaped comma: mounts"
t_is "$(awk -v m="$M" '$2 == m {print $1, $3}' /proc/self/mounts)" 'a,subtype=evil fuse.strata-fs' \
	"fsname with an escaped comma: the whole value is the source, no subtype passed on"
unmount "$M"

# Read-only mounts.
run -o "lowerdir=$L:$L2" "$M"
t_is "$rc" 0 "no upperdir: mounts"
t_is "$(cat "$M/f" "$M/g" 2>&1)" "top
bottom" "no upperdir: layers merged"
t_fail "no upperdir: creating a file fails" touch "$M/new"
t_fail "no upperdir: writing a file fails" bash -c "echo x >>'$M/f'"
t_is "$(bash -c "echo x >>'$M/f'" 2>&1 | grep -c 'Read-only file system')" 1 "no upperdir: EROFS"
unmount "$M"
run -o "$OK,ro" "$M"
t_is "$rc" 0 "-o ro: mounts"
t_fail "-o ro: creating a file fails" touch "$M/new"
t_fail "-o ro: mkdir fails" mkdir "$M/newdir"
t_is "$(cat "$M/f")" top "-o ro: reads work"
unmount "$M"
t_is "$(ls -A "$U")" "" "read-only mounts left the upper empty"

# Positional SOURCE.
run overlay "$M" -o "$OK"
t_ok "SOURCE MNT -o OPTS: exits 0 and mounted" bash -c "[ $rc = 0 ] && mountpoint -q '$M'"
unmount "$M"
run -o "$OK" overlay "$M"
t_ok "-o OPTS SOURCE MNT: exits 0 and mounted" bash -c "[ $rc = 0 ] && mountpoint -q '$M'"
t_is "$(cat "$M/f")" top "-o OPTS SOURCE MNT: the mount works"
unmount "$M"

# -f: stays in the foreground until unmounted, then exits 0.
"$STRATA_FS" -f -o "$OK" "$M" >"$T/fg.out" 2>&1 &
fg=$!
echo $fg >>"$T/.pids"
for _ in $(seq 100); do mountpoint -q "$M" && break; sleep 0.05; done
t_ok "-f: mounted" mountpoint -q "$M"
sleep 0.3
t_ok "-f: process still running" kill -0 $fg
t_ok "-f: unmount" t_umount "$M"
for _ in $(seq 100); do kill -0 $fg 2>/dev/null || break; sleep 0.05; done
wait $fg
t_is "$?" 0 "-f: exits 0 after unmount"

run -V
t_ok "-V exits 0 and prints a version" bash -c "[ $rc = 0 ] && grep -qi version '$T/stdout' '$T/stderr'"
run --version
t_is "$rc" 0 "--version exits 0"
run -h
t_ok "-h exits 0 and prints usage" bash -c "[ $rc = 0 ] && grep -qi usage '$T/stdout' '$T/stderr'"
t_fail "-h mounts nothing" mountpoint -q "$M"

# static_nlink
run -o "$OK,static_nlink" "$M"
t_is "$(stat -c %h "$M/dir" "$M" 2>&1)" "1
1" "static_nlink: directories report nlink 1"
t_is "$(stat -c %h "$M/f")" 1 "static_nlink: files keep their nlink"
unmount "$M"
run -o "$OK" "$M"
t_is "$(stat -c %h "$M/dir")" 3 "without static_nlink: directory nlink counts subdirectories"
unmount "$M"

# Ownership: squash_to_root, uidmapping/gidmapping (need several uids).
# uidmapping=FROM:TO:LEN is fuse-overlayfs': an owner FROM on disk is shown
# as TO (so a user namespace mapping TO back to FROM sees the disk's ids),
# and TO writing through the mount stores FROM.
if [ "$STRATA_ROOTLESS" = 1 ]; then
	for p in "squash_to_root" "uidmapping: disk owner 0 appears as 1000" \
		"uidmapping: unmapped disk owner appears as the overflow id" \
		"uidmapping: a file created by 1000 is owned by 0 in upper" \
		"uidmapping: and appears as 1000 through the mount"; do
		t_skip "$p" "only uid 0 is mapped in the rootless user namespace"
	done
else
	chown 1000:1000 "$L/f" && chown 1234:1234 "$L2/g" && chown 0:0 "$L/dir"
	run -o "$OK,squash_to_root" "$M"
	t_is "$(find "$M" -printf '%U:%G\n' | sort -u)" "0:0" "squash_to_root: every file appears 0:0"
	unmount "$M"
	run -o "$OK,uidmapping=0:1000:1,gidmapping=0:1000:1" "$M"
	t_is "$(stat -c %u:%g "$M/dir" "$M" 2>&1)" "1000:1000
1000:1000" "uidmapping: disk owner 0 appears as 1000"
	t_is "$(stat -c %u:%g "$M/f" "$M/g" 2>&1)" "65534:65534
65534:65534" "uidmapping: unmapped disk owner appears as the overflow id"
	chmod 755 "$T"
	setpriv --reuid=1000 --regid=1000 --clear-groups bash -c "echo new >'$M/created'"
	t_is "$(stat -c %u:%g "$U/created" 2>&1)" "0:0" "uidmapping: a file created by 1000 is owned by 0 in upper"
	t_is "$(stat -c %u:%g "$M/created" 2>&1)" "1000:1000" "uidmapping: and appears as 1000 through the mount"
	unmount "$M"
fi

if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "mount -t fuse.strata-fs" "needs real root"
elif [ -x /sbin/mount.fuse3 ]; then
	# mount(8) hands fuse.TYPE to mount.fuse, which runs TYPE from
	# /usr/bin; a private mount namespace shows the build there without
	# installing anything on the machine.
	mkdir -p "$T/bin" && ln -sf "$STRATA_FS" "$T/bin/strata-fs"
	out=$(unshare -m --propagation private bash -c '
		mount -t overlay overlay -o "lowerdir=$1:/usr/bin" /usr/bin || exit 3
		mount -t fuse.strata-fs strata-fs "$2" -o "$3" || exit 4
		mountpoint -q "$2" && cat "$2/g"; umount "$2"' _ "$T/bin" "$M" "$OK" 2>&1)
	t_is "$out" bottom "mount -t fuse.strata-fs mounts and serves the layers"
else
	t_skip "mount -t fuse.strata-fs" "mount.fuse3 (Debian fuse3) is not installed"
fi
t_done
