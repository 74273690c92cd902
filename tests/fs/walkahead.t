#!/bin/bash
# tests/fs/walkahead.t: reading a walk's next directories ahead
# (fs/ahead.c).  When a directory whose parent was listed is listed too,
# the daemon's walkahead threads read its lower subdirectories and stat
# their entries; each one read shows as a debug line "walkahead: PATH in
# layer N, K entries".  One listing alone reads nothing ahead, a symlink is
# neither a subdirectory to read nor followed where another layer has the
# directory, a FUSE layer is left alone, prefetch=0 turns it off, and an
# unmount with a long stack still ends the daemon.  The listings themselves are unchanged.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

# layers: upper is layer 0, then L1 (top lower) 1, L2 2
L1=$T/l1
L2=$T/l2
mkdir -p "$L2/a/b" "$L2/d/e/f" "$L1/a/b/c5" "$L2/wide" "$T/upper" "$T/work"
for c in c1 c2 c3 c4; do
	mkdir "$L2/a/b/$c"
	for f in f1 f2 f3; do echo "$c/$f" >"$L2/a/b/$c/$f"; done
done
echo x >"$L2/a/b/file"
ln -s /tmp "$L2/a/b/lnk"
# c5: a directory in L1 over a symlink out of the layer in L2
ln -s / "$L2/a/b/c5"
echo five >"$L1/a/b/c5/g"
for i in $(seq 1 600); do mkdir "$L2/wide/w$i" && touch "$L2/wide/w$i/"{a,b,c,d,e,f,g,h}; done
OPTS=lowerdir=$L1:$L2,upperdir=$T/upper,workdir=$T/work

# lines of the debug log about directories read ahead
ahead() { grep -c "walkahead: .* in layer" "$T/d.log"; }
# waits up to 10 s for process $1 to end
until_gone() {
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}

t_ok "mount with debug output" start_debug "$OPTS"
M=$T/mnt
ls "$M/d/e" >/dev/null
sleep 0.5
t_is "$(ahead)" 0 "one listing, its parent not listed: nothing read ahead"

ls "$M/a" >/dev/null
t_is "$(ls "$M/a/b" | tr '\n' ' ')" "c1 c2 c3 c4 c5 file lnk " "a/b lists as the layers merge"
for c in c1 c2 c3 c4; do
	t_ok "its parent listed: a/b/$c read ahead, 3 entries" logged "walkahead: a/b/$c in layer 2, 3 entries" 5
done
t_ok "a/b/c5 read ahead in the layer where it is a directory" logged "walkahead: a/b/c5 in layer 1, 1 entries" 5
sleep 0.3
t_is "$(grep -c "walkahead: a/b/c5 in layer 2" "$T/d.log")" 0 \
	"...and not through the symlink another layer has there"
t_is "$(grep -c "walkahead: a/b/lnk\|walkahead: a/b/file" "$T/d.log")" 0 "a symlink or a file is not read"
t_is "$(ahead)" 5 "five directories read, no more"

want="a a/b a/b/c1 a/b/c1/f1 a/b/c1/f2 a/b/c1/f3 a/b/c2 a/b/c2/f1 a/b/c2/f2 a/b/c2/f3 a/b/c3 a/b/c3/f1 a/b/c3/f2 a/b/c3/f3 a/b/c4 a/b/c4/f1 a/b/c4/f2 a/b/c4/f3 a/b/c5 a/b/c5/g a/b/file a/b/lnk "
t_is "$(cd "$M" && find a | LC_ALL=C sort | tr '\n' ' ')" "$want" "a walk of a/ finds every entry once"
t_is "$(cat "$M/a/b/c2/f3" "$M/a/b/c5/g" | tr '\n' ' ')" "c2/f3 five " "files read as their layer's"
t_ok "unmount" t_umount "$M"

t_ok "mount with prefetch=0" start_debug "$OPTS,prefetch=0"
ls "$M/a" >/dev/null
ls "$M/a/b" >/dev/null
sleep 0.5
t_is "$(ahead)" 0 "prefetch=0: a listing and its parent's read nothing ahead"
t_ok "unmount" t_umount "$M"

t_ok "mount again" start_debug "$OPTS"
pid=$(tail -n1 "$T/.pids")
ls "$M" >/dev/null
t_is "$(ls "$M/wide" | wc -l)" 600 "a directory of 600 subdirectories lists whole"
t_ok "unmount at once, 600 directories to read ahead" t_umount "$M"
t_ok "the daemon ends" until_gone "$pid"
t_ok "its read-ahead threads were stopped (the count it logs then)" grep -q "ahead: [0-9]* directories of walks" "$T/d.log"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"

# A lower on a FUSE filesystem (here another strata-fs) is not read ahead:
# each read there may be remote work.
t_ok "a strata-fs mount of the bottom lower" sfs_mount "$T/inner" "lowerdir=$L2"
mkdir -p "$T/upper2" "$T/work2"
t_ok "mount over it with debug output" start_debug "lowerdir=$T/inner,upperdir=$T/upper2,workdir=$T/work2"
pid=$(tail -n1 "$T/.pids")
ls "$M/a" >/dev/null
t_is "$(ls "$M/a/b" | tr '\n' ' ')" "c1 c2 c3 c4 c5 file lnk " "a/b lists as its layer"
sleep 0.5
t_is "$(ahead)" 0 "its subdirectories are not read ahead on the FUSE layer"
t_ok "unmount" t_umount "$M"
# (its daemon holds the lower's directories open until it ends)
t_ok "its daemon ends" until_gone "$pid"
t_ok "unmount the lower" t_umount "$T/inner"
t_done
