#!/bin/bash
# tests/fs/fdupper.t: more directories in the upper than the daemon has
# fds.  A directory's node holds an O_PATH fd of its upper while in use;
# the pruner takes it away from the least recently used ones (the kernel
# keeps the directories, with what may be mounted on them) and a request
# that needs it opens it again by the directory's path, which renames keep
# up to date.  Under `prlimit --nofile=256`, a chmod -R copies 330 lower
# directories up, 200 more are made in the upper, and then walks, creates,
# renames of directories and of their parents, removals, and work inside a
# directory whose parent is renamed meanwhile all give what the same steps
# give on a plain directory, and the daemon never reaches its limit.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need prlimit

LIMIT=256
mkdir -p "$T/l1" "$T/upper" "$T/work" "$T/mnt"
# t1..t30, each with s1..s10, each with a file
for i in $(seq 1 30); do
	for j in $(seq 1 10); do
		mkdir -p "$T/l1/t$i/s$j"
		echo "f$i.$j" >"$T/l1/t$i/s$j/f"
	done
done
# the reference: the same steps on a plain copy
cp -a "$T/l1" "$T/ref"
# listing DIR: each object's path, type, mode, link target and size, and
# each file's checksum
listing() {
	(cd "$1" && find . -printf '%P %y %M %l %s\n' | LC_ALL=C sort &&
		find . -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}

OPTS=lowerdir=$T/l1,upperdir=$T/upper,workdir=$T/work
mount_limited $LIMIT "$OPTS"
t_ok "mount under prlimit --nofile=$LIMIT" mountpoint -q "$T/mnt"

fds_watch

# steps DIR: what is done to both trees
steps1() {
	chmod -R g+w "$1" &&
		for i in $(seq 1 200); do mkdir -p "$1/new/n$((i % 20))/m$i"; done
}
steps1 "$T/ref"
steps1 "$T/mnt" 2>"$T/s1.err"
t_is "$(cat "$T/s1.err")" "" "chmod -R of 330 lower directories and 220 new ones: no error"
t_is "$(find "$T/upper" -type d | wc -l)" "$(find "$T/ref" -type d | wc -l)" \
	"every directory is in the upper"
listing "$T/ref" >"$T/ref.dump"
t_is "$(listing "$T/mnt" | diff "$T/ref.dump" - | head -5)" "" "the tree is the plain directory's"

# a create in every directory, walking the tree in between; then renames
# of directories into other parents, and of parents whose children have
# lost their fds
steps2() {
	find "$1" -type d | while read -r d; do echo x >"$d/c"; done &&
		find "$1" -type f | wc -l >/dev/null &&
		for i in $(seq 1 20); do mv "$1/t$i/s1" "$1/t$((i + 1))/moved$i"; done &&
		for i in $(seq 21 30); do mv "$1/t$i" "$1/r$i"; done &&
		mv "$1/new" "$1/t1/s2/deep" &&
		for i in $(seq 21 30); do
			echo y >"$1/r$i/s5/d" && mkdir "$1/r$i/s6/e" && rm "$1/r$i/s7/f"
		done &&
		for i in $(seq 1 200); do
			rm "$1/t1/s2/deep/n$((i % 20))/m$i/c" && rmdir "$1/t1/s2/deep/n$((i % 20))/m$i"
		done
}
steps2 "$T/ref"
steps2 "$T/mnt" 2>"$T/s2.err"
t_is "$(cat "$T/s2.err")" "" "creates in 550 directories, renames of directories and parents, removals: no error"
listing "$T/ref" >"$T/ref.dump"
t_is "$(listing "$T/mnt" | diff "$T/ref.dump" - | head -5)" "" "the tree is the plain directory's"

# Work inside t3/s4 (relative names: its own fd) while its parent is
# renamed back and forth and walkers keep the pruner busy.  The worker
# enters the directory before the renames start: a cd during one would
# find no t3.
(
	cd "$T/mnt/t3/s4" || exit 1
	(
		for i in $(seq 1 60); do
			mv "$T/mnt/t3" "$T/mnt/t3x" && mv "$T/mnt/t3x" "$T/mnt/t3" || echo "rename $i"
		done
	) >"$T/ren.err" 2>&1 &
	R=$!
	for k in 1 2; do
		(for i in $(seq 1 6); do find "$T/mnt/t2" "$T/mnt/r25" "$T/mnt/t1" -type d -exec stat -c %n {} + >/dev/null; done) 2>"$T/walk$k.err" &
		eval "W$k=\$!"
	done
	for i in $(seq 1 300); do
		echo "$i" >"w$i" && [ "$(cat "w$i")" = "$i" ] && mkdir "d$i" && rmdir "d$i" &&
			rm "w$i" || echo "step $i"
	done
	ls -A | LC_ALL=C sort | tr '\n' ' '
	wait $R $W1 $W2
) >"$T/work.out" 2>&1
t_is "$(cat "$T/work.out")" "c f " "300 creates, reads and removals inside a directory whose parent moves"
t_is "$(cat "$T/ren.err")" "" "60 renames of its parent back and forth"
t_is "$(cat "$T/walk1.err" "$T/walk2.err")" "" "walks of other directories meanwhile"

# A directory removed while a process is in it.
t_is "$(cd "$T/mnt/t9/s3" && find "$T/mnt/t1" -type d >/dev/null &&
	rm -r "$T/mnt/t9/s3" && echo "$(stat -c %F .) $(ls -A . | wc -l)")" "directory 0" \
	"a directory removed while a process is in it still answers a stat"

mkdir "$T/mnt/t10/e"
t_is "$(cd "$T/mnt/t10/e" && find "$T/mnt/t1" -type d >/dev/null &&
	mv -T "$T/mnt/t10/s5" "$T/mnt/t10/e" && echo "$(stat -c %F .) $(ls -A . | wc -l)")" "directory 0" \
	"so does one a rename replaced"
t_ok "the daemon is alive" kill -0 $D
maxfds=$(fds_max)
t_ok "it never reached its limit of $LIMIT fds ($maxfds seen)" test "$maxfds" -lt $LIMIT
t_ok "unmount" t_umount "$T/mnt"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
# a fresh mount (fds for all) sees the same
mount_limited 4096 "$OPTS"
rm -r "$T/ref/t9/s3"
mv -T "$T/ref/t10/s5" "$T/ref/t10/e"
listing "$T/ref" >"$T/ref.dump"
t_is "$(listing "$T/mnt" | diff "$T/ref.dump" - | head -5)" "" "a new mount shows the same tree"
t_done
