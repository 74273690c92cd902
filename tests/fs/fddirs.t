#!/bin/bash
# tests/fs/fddirs.t: more merged directories than the daemon has fds.  A
# directory's node holds an O_PATH fd of each of its lowers while it is in
# use; 300 directories in each of 3 layers are 900 such fds, under `prlimit
# --nofile=256`.  The pruner takes the fds of the least recently used
# directories away (the kernel keeps the directories) and a request that
# needs one opens it again by its path, so walks, reads, lookups through
# whiteouts, creates and removals work, give the merged view, and never take
# the daemon to its limit.  (A directory in the upper still holds its upper
# fd for good: the creates and removals copy up 40 of the 150 directories.)
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need prlimit

LIMIT=256
NDIRS=150
mkdir -p "$T/upper" "$T/work" "$T/mnt"
# d$i/ and d$i/sub/ in all three layers: a, b, c from l1, l2, l3; the top
# layer whites out c (an OCI .wh. file) in the even directories, and l2's
# d$i/sub is opaque in every third one (hiding l3's sub/z).
for l in 1 2 3; do
	for i in $(seq 1 $NDIRS); do
		mkdir -p "$T/l$l/d$i/sub"
	done
done
for i in $(seq 1 $NDIRS); do
	echo "a$i" >"$T/l1/d$i/a"
	echo "b$i" >"$T/l2/d$i/b"
	echo "c$i" >"$T/l3/d$i/c"
	echo "x$i" >"$T/l1/d$i/sub/x"
	echo "y$i" >"$T/l2/d$i/sub/y"
	echo "z$i" >"$T/l3/d$i/sub/z"
	[ $((i % 2)) = 0 ] && : >"$T/l1/d$i/.wh.c"
	[ $((i % 3)) = 0 ] && : >"$T/l2/d$i/sub/.wh..wh..opq"
done
# what the merged tree must hold, as "path content"
for i in $(seq 1 $NDIRS); do
	echo "d$i/a a$i"
	echo "d$i/b b$i"
	[ $((i % 2)) = 1 ] && echo "d$i/c c$i"
	echo "d$i/sub/x x$i"
	echo "d$i/sub/y y$i"
	[ $((i % 3)) != 0 ] && echo "d$i/sub/z z$i"
done | LC_ALL=C sort >"$T/want"

OPTS=lowerdir=$T/l1:$T/l2:$T/l3,upperdir=$T/upper,workdir=$T/work
mount_limited $LIMIT "$OPTS"
t_ok "mount under prlimit --nofile=$LIMIT" mountpoint -q "$T/mnt"

fds_watch

# merged DIR: "path content" of every file below DIR
merged() {
	(cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | while read -r p; do
		echo "$p $(cat "$p")"
	done)
}
merged "$T/mnt" >"$T/got" 2>"$T/walk.err"
t_is "$(diff "$T/want" "$T/got")" "" "a walk and read of $NDIRS x 2 merged directories give the merged view"
t_is "$(cat "$T/walk.err")" "" "with no error"
merged "$T/mnt" >"$T/got2" 2>&1
t_is "$(diff "$T/want" "$T/got2")" "" "so does a second one"
t_is "$(cat "$T/mnt/d2/c" 2>&1)" "cat: $T/mnt/d2/c: No such file or directory" \
	"a whited-out name stays hidden when looked up on its own"
# lookups of names absent everywhere go through every layer
for i in $(seq 1 $NDIRS); do
	stat "$T/mnt/d$i/sub/nothing" 2>&1
done | grep -c 'No such file or directory' >"$T/enoent"
t_is "$(cat "$T/enoent")" "$NDIRS" "names that are nowhere are not found"

# A create in 40 directories spread over the tree (each parent copied up),
# then a removal of a lower file in each (a whiteout each), walking the
# whole tree in between.
NW=40
for i in $(seq 1 $NW); do
	echo "new$i" >"$T/mnt/d$((i * 3))/sub/new" || echo "create d$i" >>"$T/rw.err"
done
merged "$T/mnt" >/dev/null 2>>"$T/rw.err"
for i in $(seq 1 $NW); do
	rm "$T/mnt/d$((i * 3))/b" || echo "rm d$i" >>"$T/rw.err"
done
t_is "$(cat "$T/rw.err" 2>/dev/null)" "" "a create and a removal in $NW directories: no error"
for i in $(seq 1 $NDIRS); do
	echo "d$i/a a$i"
	[ $((i % 3)) != 0 ] || [ $i -gt $((NW * 3)) ] && echo "d$i/b b$i"
	[ $((i % 2)) = 1 ] && echo "d$i/c c$i"
	[ $((i % 3)) = 0 ] && [ $i -le $((NW * 3)) ] && echo "d$i/sub/new new$((i / 3))"
	echo "d$i/sub/x x$i"
	echo "d$i/sub/y y$i"
	[ $((i % 3)) != 0 ] && echo "d$i/sub/z z$i"
done | LC_ALL=C sort >"$T/want2"
merged "$T/mnt" >"$T/got3" 2>&1
t_is "$(diff "$T/want2" "$T/got3")" "" "the merged view shows both"
t_is "$(find "$T/upper" -name b | wc -l)" "$NW" "each removal left a whiteout in the upper"
t_is "$(ls "$T/mnt/d9")" "$(printf 'a\nc\nsub')" "a listing of a directory shows the same"
t_ok "the daemon is alive" kill -0 $D
maxfds=$(fds_max)
t_ok "it never reached its limit of $LIMIT fds ($maxfds seen)" test "$maxfds" -lt $LIMIT
t_ok "unmount" t_umount "$T/mnt"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
