#!/bin/bash
# tests/fault/lostdaemon.t: when strata-fs dies (SIGKILL), the processes using
# the mount get errors (ENOTCONN), none hangs: a reader in the middle of a
# large file, a writer in the middle of a large write, a process whose cwd is
# in the mount, one holding an open descriptor, one listing a directory, and
# new calls made afterwards.  A writer whose file passes through to the upper
# (fs/passthrough.c, as root) needs no daemon: it may instead finish, and
# then every byte it wrote is in the upper.  The dead mount is then detached and the same
# upper mounts again with what was written before the kill.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fs/fslib.sh"
fs_need_sfs

mkdir -p "$T/lower/d" "$T/upper" "$T/work" "$T/mnt"
head -c 256M /dev/urandom >"$T/lower/big"
for i in $(seq 200); do echo "$i" >"$T/lower/d/f$i"; done
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work
echo "$T/mnt" >>"$T/.mounts"

mount_fg() {
	"$STRATA_FS" -f -o "$OPTS" "$T/mnt" 2>>"$T/daemon.err" &
	DAEMON=$!
	echo "$DAEMON" >>"$T/.pids"
	for _ in $(seq 200); do
		mountpoint -q "$T/mnt" && return 0
		kill -0 "$DAEMON" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

t_ok "mount in the foreground" mount_fg
echo before >"$T/mnt/kept"
# The users, each leaving its exit status and stderr in $T/u.NAME.
user() {
	local name=$1
	shift
	(
		"$@" >/dev/null 2>"$T/u.$name.err"
		echo $? >"$T/u.$name.rc"
	) &
	echo $! >>"$T/.pids"
}
# The reader and the holder are still at it when the daemon dies, however
# quick or slow the machine: the reader reads the file over and over, the
# holder reads only after the kill.  Each user leaves $T/u.NAME.up once it
# is at work (the writer: once its file is in the upper), and the kill
# waits for all of them.
user reader2 sh -c "dd if='$T/mnt/big' of=/dev/null bs=4k count=1 status=none iflag=direct && touch '$T/u.reader2.up' && while dd if='$T/mnt/big' of=/dev/null bs=4k status=none iflag=direct; do :; done; exit 1"
WRITE_BYTES=$((64 * 1024 * 32000))
user writer dd if=/dev/zero of="$T/mnt/new" bs=64k count=32000 status=none
user cwd sh -c "cd '$T/mnt/d' && ls >/dev/null && touch '$T/u.cwd.up' && while ls >/dev/null && cat f1 >/dev/null; do :; done; exit 1"
user heldfd sh -c "exec 3<'$T/mnt/d/f2' && touch '$T/u.heldfd.up'; while [ ! -e '$T/killed' ]; do sleep 0.05; done; cat <&3 && cat '$T/mnt/d/f3'"
user lister sh -c "ls -l '$T/mnt/d' >/dev/null && touch '$T/u.lister.up' && while ls -l '$T/mnt/d' >/dev/null; do :; done; exit 1"
for _ in $(seq 600); do
	[ -s "$T/upper/new" ] && touch "$T/u.writer.up"
	n=0
	for u in reader2 writer cwd heldfd lister; do [ -e "$T/u.$u.up" ] && n=$((n + 1)); done
	[ $n = 5 ] && break
	sleep 0.05
done
t_is "$(ls "$T" | grep -c '^u\..*\.up$')" 5 "the five users are at work"
t_ok "the daemon is alive with five users" kill -0 "$DAEMON"
kill -9 "$DAEMON"
wait "$DAEMON" 2>/dev/null
touch "$T/killed"
start=$SECONDS
for _ in $(seq 300); do
	n=0
	for u in reader2 writer cwd heldfd lister; do [ -f "$T/u.$u.rc" ] && n=$((n + 1)); done
	[ $n = 5 ] && break
	sleep 0.1
done
t_diag "all users ended within $((SECONDS - start)) s of the kill"
for u in reader2 writer cwd heldfd lister; do
	rc=$(cat "$T/u.$u.rc" 2>/dev/null || echo hung)
	if [ $u = writer ] && [ "$rc" = 0 ]; then
		t_ok "writer: finished through passthrough, does not hang" true
		t_is "$(stat -c %s "$T/upper/new")" "$WRITE_BYTES" "writer: every byte is in the upper"
		continue
	fi
	t_ok "$u: fails (status $rc), does not hang" test "$rc" != hung -a "$rc" != 0
	t_ok "$u: the error is ENOTCONN" grep "Transport endpoint is not connected\|Software caused connection abort" "$T/u.$u.err"
done
t_is "$(timeout 5 "$HELPERS/fsop" stat "$T/mnt/kept")" ENOTCONN "stat after the kill: ENOTCONN"
t_is "$(timeout 5 "$HELPERS/fsop" creat "$T/mnt/x")" ENOTCONN "create after the kill: ENOTCONN"
t_is "$(timeout 5 "$HELPERS/fsop" opendir "$T/mnt")" ENOTCONN "opendir after the kill: ENOTCONN"
t_ok "the dead mount detaches" sh -c "umount -l '$T/mnt' 2>/dev/null || fusermount3 -uz '$T/mnt'"
t_ok "the same upper and workdir mount again" mount_fg
t_is "$(cat "$T/mnt/kept")" before "a file written before the kill is there"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_is "$(md5sum <"$T/mnt/big")" "$(md5sum <"$T/lower/big")" "the big file reads as the lower"
t_ok "unmount" t_umount "$T/mnt"
t_done
