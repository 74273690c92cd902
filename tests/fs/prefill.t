#!/bin/bash
# tests/fs/prefill.t: a small lower file opened alone for reading has its
# data stored into the kernel's page cache with the open (fs/file.c,
# sfs_prefill), so reading it sends no READ.  What is read is the lower's
# data to the byte, at any size around a page, and a write through another
# handle, a truncation, a metadata copy-up, a passthrough write or a
# remount is seen by the next read as it would be without the prefill.
# Files over the limit are read as before.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need perl cmp

mkdir -p "$T/lower" "$T/upper" "$T/work"
L=$T/lower
printf abc >"$L/small"
head -c 4096 /dev/urandom >"$L/page"
head -c 4097 /dev/urandom >"$L/page1"
head -c 102400 /dev/urandom >"$L/mid"
head -c 131072 /dev/urandom >"$L/limit"
head -c 204800 /dev/urandom >"$L/big"
: >"$L/empty"
# (printable: the reader below prints what it reads, a line each time)
for f in held trunc meta pt again; do head -c 9000 /dev/urandom | base64 -w0 | head -c 9000 >"$L/$f"; done
cp -a "$L" "$T/ref"
OPTS=lowerdir=$L,upperdir=$T/upper,workdir=$T/work

t_ok "mount with debug output" start_debug "$OPTS"
M=$T/mnt
ls -l "$M" >/dev/null
r0=$(seen READ)
same=1
for f in small page page1 mid limit empty; do cmp -s "$M/$f" "$L/$f" || same=0; done
t_is "$same" 1 "3 bytes, a page, a page and a byte, 100 KiB, 128 KiB, empty: the lower's bytes"
t_is "$(($(seen READ) - r0))" 0 "read whole, without a READ request"
r0=$(seen READ)
same=1
for f in small page1 mid; do cmp -s "$M/$f" "$L/$f" || same=0; done
t_is "$same:$(($(seen READ) - r0))" "1:0" "read again: the same bytes, still no READ"
r0=$(seen READ)
t_ok "200 KiB, over the limit: the lower's bytes" cmp "$M/big" "$L/big"
t_ok "read with READ requests" test "$(seen READ)" -gt "$r0"
t_is "$(dd if="$M/mid" bs=1 skip=50000 count=16 status=none | od -An -tx1)" \
	"$(dd if="$L/mid" bs=1 skip=50000 count=16 status=none | od -An -tx1)" \
	"a read in the middle of a file"

# A reader that opened the file before a writer: it sees the write, the
# size it made, and a truncation.  (perl: open, read, wait for a marker,
# read again from the start.)
reader() {
	perl -e '
		open(my $f, "<", $ARGV[0]) or die "open: $!";
		sysread($f, my $b, 3);
		print "$b\n";
		open(my $r, ">", $ARGV[1]) or die; close($r);
		sleep 0.05 until -e $ARGV[2];
		sysseek($f, 0, 0);
		my $n = sysread($f, $b, 65536);
		print substr($b, 0, 3), " ", $n, "\n";
		' "$@"
}
head3() { head -c 3 "$1"; }
reader "$M/held" "$T/r1.ready" "$T/r1.go" >"$T/r1.out" &
rp=$!
for _ in $(seq 200); do [ -e "$T/r1.ready" ] && break; sleep 0.05; done
printf XYZ | dd of="$M/held" conv=notrunc status=none
echo tail >>"$M/held"
: >"$T/r1.go"
wait $rp
t_is "$(cat "$T/r1.out")" "$(head3 "$L/held")
XYZ 9005" "a reader open across a write and an append by another handle sees both"

reader "$M/trunc" "$T/r2.ready" "$T/r2.go" >"$T/r2.out" &
rp=$!
for _ in $(seq 200); do [ -e "$T/r2.ready" ] && break; sleep 0.05; done
echo new >"$M/trunc"
: >"$T/r2.go"
wait $rp
t_is "$(tail -n 1 "$T/r2.out")" "new 4" "and a truncation and a rewrite by another"

# read (stored), closed; then a change by another route, then read again
cat "$M/meta" >/dev/null
chmod 600 "$M/meta"
echo more >>"$M/meta"
t_is "$(tail -c 5 "$M/meta"):$(stat -c %s "$M/meta")" "more:9005" "a file read, then chmodded (metadata copy-up) and appended: the new end"
t_ok "and its first 9000 bytes are the lower's" cmp -n 9000 "$M/meta" "$L/meta"
cat "$M/pt" >/dev/null
printf QQ | dd of="$M/pt" conv=notrunc status=none
t_is "$(head -c 2 "$M/pt")" "QQ" "a file read, then written in place by a new handle (passthrough as root): the write"
t_ok "the rest is the lower's" cmp -i 2 "$M/pt" "$L/pt"
# Readers opening files while writers truncate, rewrite or append to
# them: once the writers are done, every file reads as they left it.
for i in $(seq 40); do head -c 5000 /dev/urandom >"$T/ref/c$i"; done
t_umount "$M"
cp "$T/ref"/c* "$L/"
t_ok "mount again" start_debug "$OPTS"
pids=
for i in $(seq 40); do
	(for _ in 1 2 3 4 5 6; do cat "$M/c$i" >/dev/null; done) &
	pids="$pids $!"
	case $((i % 3)) in
	0) echo "new $i" >"$M/c$i" ;;
	1) echo "end $i" >>"$M/c$i" ;;
	2) truncate -s 100 "$M/c$i" ;;
	esac
done
wait $pids
bad=0
for i in $(seq 40); do
	case $((i % 3)) in
	0) [ "$(cat "$M/c$i")" = "new $i" ] || bad=$((bad + 1)) ;;
	1) [ "$(tail -c $((${#i} + 5)) "$M/c$i"):$(stat -c %s "$M/c$i")" = "end $i:$((5005 + ${#i}))" ] &&
		cmp -s -n 5000 "$M/c$i" "$T/ref/c$i" || bad=$((bad + 1)) ;;
	2) cmp -s -n 100 "$M/c$i" "$T/ref/c$i" && [ "$(stat -c %s "$M/c$i")" = 100 ] || bad=$((bad + 1)) ;;
	esac
done
t_is "$bad" 0 "40 files read while written, truncated or appended to: each as its writer left it"
t_ok "the daemon is alive" pkill -0 -f "$T/mnt"
t_ok "unmount" t_umount "$M"

# after a remount the changed files are the upper's, the rest the lower's
t_ok "mount again" start_debug "$OPTS"
t_is "$(head -c 3 "$M/held"):$(head -c 2 "$M/pt"):$(cat "$M/trunc")" "XYZ:QQ:new" \
	"after a remount: what was written"
same=1
for f in small page page1 mid limit big empty again; do cmp -s "$M/$f" "$T/ref/$f" || same=0; done
t_is "$same" 1 "and what was not"
t_ok "unmount" t_umount "$M"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
