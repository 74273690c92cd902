#!/bin/bash
# tests/fs/fdlimit.t: a tree larger than the daemon's fd limit.  Nodes of
# directories and of upper objects hold O_PATH fds; a lower file's node
# holds none (it is opened by its path when needed), so under `prlimit
# --nofile=512` a walk and a read of 3,000 lower files keep the daemon's fds
# down to its directories.  chmod -R and chown -R then copy every file up
# without EMFILE (each node now holds its upper's fd: the daemon has the
# kernel forget idle entries, except those a file is mounted on), files held
# open stay usable, the daemon never reaches its limit, and its fds and
# memory go back down when the kernel drops its caches (a walk of 100,000
# files peaked at 15 MiB and went back to 7 MiB).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need prlimit md5sum

LIMIT=512
mkdir -p "$T/lower" "$T/upper" "$T/work" "$T/mnt"
for d in $(seq 1 30); do
	mkdir "$T/lower/d$d"
	(cd "$T/lower/d$d" && for f in $(seq 1 100); do echo "$d/$f" >"f$f"; done)
done
NFILES=3000
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work

mount_limited $LIMIT "$OPTS"
t_ok "mount under prlimit --nofile=$LIMIT" mountpoint -q "$T/mnt"

fds() {
	ls "/proc/$D/fd" | wc -l
}
maxfds=0
note_fds() {
	local n
	n=$(fds)
	[ "$n" -gt "$maxfds" ] && maxfds=$n
}

# Two files held open across the walk.
exec 3<"$T/mnt/d1/f1"
echo "kept" >"$T/mnt/d2/new"
exec 4<>"$T/mnt/d2/new"

find "$T/mnt" -type f -printf '%s %p\n' >"$T/walk" 2>"$T/walk.err"
note_fds
t_is "$(grep -c /f "$T/walk")" "$NFILES" "a walk stats all $NFILES lower files"
t_is "$(cat "$T/walk.err")" "" "with no error"
t_is "$(find "$T/mnt" -type f -printf '%s\n' 2>&1 | wc -l)" "$((NFILES + 1))" "a second walk too"
note_fds
# sum DIR: the content of every lower-named file, in name order
sum() {
	(cd "$1" && find . -type f -name 'f*' -print0 | LC_ALL=C sort -z | xargs -0 cat | md5sum)
}
sum "$T/mnt" >"$T/sum.mnt" 2>"$T/read.err"
note_fds
# 30 directories and the daemon's own: no fd per lower file
t_ok "walking and reading $NFILES lower files holds no fd per file ($maxfds fds at most)" \
	test "$maxfds" -lt 120
sum "$T/lower" >"$T/sum.low"
t_is "$(cat "$T/sum.mnt")" "$(cat "$T/sum.low")" "reading every file gives the lower content"
t_is "$(cat "$T/read.err")" "" "with no error"
ls -l "$T/mnt"/d*/ >/dev/null 2>"$T/ls.err"
t_is "$(cat "$T/ls.err")" "" "ls -l of every directory works"
note_fds
t_is "$(cat <&3)" "1/1" "a file held open during the walk still reads"
printf 'KEPT' >&4
t_is "$(cat "$T/mnt/d2/new")" "KEPT" "another still writes"
exec 3<&- 4>&-
# chmod -R and chown -R copy every file up: each node then holds an upper
# fd as well, which the pruning must count.
chmod -R g+w "$T/mnt"/d[1-9] "$T/mnt"/d1[0-5] 2>"$T/chmod.err"
note_fds
t_is "$(head -3 "$T/chmod.err")" "" "chmod -R of 1,500 lower files (a copy-up each): no error"
chown -R -h 0:0 "$T/mnt"/d1[6-9] "$T/mnt"/d2* "$T/mnt"/d30 2>"$T/chown.err"
note_fds
t_is "$(head -3 "$T/chown.err")" "" "chown -R of the other 1,500: no error"
t_is "$(find "$T/upper" -type f -name 'f*' | wc -l)" "$NFILES" "every file is in the upper"
t_is "$(find "$T/upper"/d[1-9] "$T/upper"/d1[0-5] -type f -name "f*" -perm -g+w | wc -l)" 1500 \
	"with the new mode where chmod ran"
t_ok "walks, reads and copy-ups never took it to its limit ($maxfds fds seen)" \
	test "$maxfds" -lt $LIMIT

# Having the kernel forget an entry detaches what is mounted on it, in any
# mount namespace: files bind-mounted over (a container's /etc/hosts) must
# be spared by the pruning, over a lower file, an upper file, and in a
# namespace of its own.  (A mount made while a pruning round is under way
# can still lose that race: the mounts are made once the daemon has settled
# below its high mark, the limit less 128 + 1/8.)
for _ in $(seq 100); do [ "$(fds)" -lt $((LIMIT - 128 - LIMIT / 8)) ] && break; sleep 0.1; done
sleep 0.5
echo "from the host" >"$T/host.txt"
echo made >"$T/mnt/d4/made"
mount --bind "$T/host.txt" "$T/mnt/d3/f7" && mount --bind "$T/host.txt" "$T/mnt/d4/made"
unshare --mount --propagation private sh -c \
	"mount --bind '$T/host.txt' '$T/mnt/d5/f9' && : >'$T/ns.ready' &&
	 while [ ! -e '$T/ns.go' ]; do sleep 0.1; done; cat '$T/mnt/d5/f9'" >"$T/ns.out" 2>&1 &
ns=$!
for _ in $(seq 100); do [ -e "$T/ns.ready" ] && break; sleep 0.1; done
t_ok "files bind-mounted over a lower and an upper file, and in another namespace" \
	test -e "$T/ns.ready" -a "$(cat "$T/mnt/d4/made")" = "from the host"
sum "$T/mnt" >/dev/null 2>&1
sum "$T/mnt" >/dev/null 2>&1
note_fds
: >"$T/ns.go"
wait $ns
t_is "$(cat "$T/mnt/d3/f7" "$T/mnt/d4/made" "$T/ns.out")" \
	"$(printf 'from the host\nfrom the host\nfrom the host')" \
	"after reading every file twice, all three mounts are still there"
umount "$T/mnt/d3/f7" "$T/mnt/d4/made"
t_is "$(cat "$T/mnt/d3/f7" "$T/mnt/d4/made")" "$(printf '3/7\nmade')" "and come off cleanly"
t_ok "the daemon is alive" kill -0 $D
t_diag "daemon: $maxfds fds at most, $(grep VmHWM "/proc/$D/status" | tr -s ' \t' ' ')"

# Once the kernel forgets, the nodes and their fds go.
if [ "$STRATA_ROOTLESS" != 1 ] && echo 2 >/proc/sys/vm/drop_caches 2>/dev/null; then
	rss_before=$(awk '/VmRSS/ { print $2 }' "/proc/$D/status")
	# the kernel's forgets reach the daemon in their own time
	for _ in $(seq 300); do [ "$(fds)" -lt 80 ] && break; sleep 0.1; done
	t_ok "fds drop after the kernel drops its caches ($(fds) left)" test "$(fds)" -lt 80
	rss_after=$(awk '/VmRSS/ { print $2 }' "/proc/$D/status")
	t_diag "daemon RSS $rss_before kB before, $rss_after kB after (too small here to assert)"
else
	t_skip "fds drop after the kernel drops its caches" "cannot write /proc/sys/vm/drop_caches"
fi
t_ok "unmount" t_umount "$T/mnt"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
