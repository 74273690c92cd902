#!/bin/bash
# tests/fs/special.t: special files and less common file operations through
# the mount: fifos, unix sockets, symlinks, device nodes (created and from a
# lower layer), statfs, fallocate and hole punching, SEEK_DATA/SEEK_HOLE on
# sparse lower and copied-up files, copy_file_range, truncate.  Each step is
# also run on a plain directory holding the same files; answers must match.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
[ -x "$STRATA_FS" ] || t_skip_all "no strata-fs at $STRATA_FS"
t_need python3 fallocate
for h in seekhole copyrange; do [ -x "$HELPERS/$h" ] || t_skip_all "no helper $HELPERS/$h (run make)"; done

L=$T/lower U=$T/upper W=$T/work M=$T/mnt R=$T/ref
mkdir -p "$L/dir" "$U" "$W"
mkfifo "$L/lfifo" && chmod 644 "$L/lfifo"
ln -s dir "$L/ldirlink" && ln -s nowhere "$L/ldangling" && echo in-dir >"$L/dir/f"
# A sparse file: data at 0, 256K and the last 4K of 1M.
sparse() {
	truncate -s 1M "$1"
	dd if=/dev/urandom of="$1" bs=4096 count=2 conv=notrunc status=none
	dd if=/dev/urandom of="$1" bs=4096 seek=64 count=4 conv=notrunc status=none
	dd if=/dev/urandom of="$1" bs=4096 seek=255 count=1 conv=notrunc status=none
}
sparse "$L/sparse" && cp --sparse=always "$L/sparse" "$L/sparse2" && cp "$L/sparse" "$L/sparse3"
seq 1 20000 >"$L/numbers"
head -c 100000 /dev/urandom >"$L/blob"
echo "short lower" >"$L/short"
if [ "$STRATA_ROOTLESS" != 1 ]; then
	mknod "$L/lchr" c 1 3 && mknod "$L/lblk" b 7 200 && chmod 640 "$L/lchr"
fi
cp -a "$L" "$R"
sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W" || t_skip_all "cannot mount strata-fs"

# both DESC CMDS: CMDS ($D is the directory) on the reference and the mount.
both() {
	local want got
	want=$(D=$R && eval "$2" 2>&1 | sed "s|$R|D|g")
	got=$(D=$M && eval "$2" 2>&1 | sed "s|$M|D|g")
	t_is "$got" "$want" "$1"
}

# fifos
both "mkfifo" 'mkfifo $D/fifo && stat -c "%F %a" $D/fifo'
both "data through a new fifo" '(echo through >$D/fifo &) && cat $D/fifo'
both "lower fifo type and mode" 'stat -c "%F %a" $D/lfifo'
both "data through a lower fifo" '(echo lower-pipe >$D/lfifo &) && cat $D/lfifo'
both "chmod of a lower fifo" 'chmod 600 $D/lfifo && stat -c "%F %a" $D/lfifo'
t_is "$(stat -c '%F %a' "$U/lfifo" 2>&1)" "fifo 600" "chmod copied the fifo up as a fifo"
t_is "$(stat -c '%a' "$L/lfifo")" 644 "lower fifo untouched"

# unix sockets
sock() {
	python3 - "$1" <<'PY'
import os, socket, stat, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p)
s.listen(1)
print("socket" if stat.S_ISSOCK(os.lstat(p).st_mode) else "not a socket")
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(p)
a, _ = s.accept()
c.sendall(b"hello over the mount")
print(a.recv(100).decode())
PY
}
both "unix socket bind, lstat and connect" 'sock $D/sock'
both "socket listed with its type" 'stat -c "%F" $D/sock && rm $D/sock && ls $D/sock'

# symlinks
both "readlink of a new symlink" 'ln -s target/x $D/sl && readlink $D/sl && stat -c "%F %s" $D/sl'
both "dangling symlink" 'ln -s missing $D/dang && readlink $D/dang; cat $D/dang; test -L $D/dang && echo is-link'
both "lower dangling symlink" 'readlink $D/ldangling; test -e $D/ldangling || echo dangling'
both "symlink to a directory (lower)" 'ls $D/ldirlink/ && cat $D/ldirlink/f && ls -d $D/ldirlink'
both "symlink to a directory (new)" 'ln -s dir $D/dl2 && ls $D/dl2/ && stat -L -c %F $D/dl2'
both "write through a symlink to a lower file" 'echo via >>$D/ldirlink/f && cat $D/dir/f'
both "long symlink target" 'ln -s "$(printf "%0200d" 0)/$(printf "%0200d" 1)" $D/longl && readlink $D/longl | wc -c'

# device nodes
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_skip "mknod character device" "needs real root"
	t_skip "mknod block device" "needs real root"
	t_skip "lower device nodes keep type and rdev" "needs real root"
	t_skip "chmod of a lower device node" "needs real root"
else
	both "mknod character device" 'mknod $D/chr c 1 5 && stat -c "%F %t:%T" $D/chr && head -c 4 $D/chr | od -An -tx1'
	both "mknod block device" 'mknod $D/blk b 7 201 && stat -c "%F %t:%T" $D/blk'
	both "lower device nodes keep type and rdev" 'stat -c "%n %F %t:%T %a" $D/lchr $D/lblk'
	both "chmod of a lower device node" 'chmod 600 $D/lchr && stat -c "%F %t:%T %a" $D/lchr'
fi

# statfs
read -r mb ms mn <<<"$(stat -f -c '%b %S %l' "$M")"
read -r ub us _ <<<"$(stat -f -c '%b %S %l' "$U")"
t_is "$((mb * ms))" "$((ub * us))" "statfs: total size is the upper filesystem's"
read -r b f a s c <<<"$(stat -f -c '%b %f %a %S %c' "$M")"
t_ok "statfs: free <= total, available <= free, block size > 0, files > 0 ($b $f $a $s $c)" \
	test "$b" -gt 0 -a "$f" -le "$b" -a "$a" -le "$f" -a "$s" -gt 0 -a "$c" -gt 0
t_is "$mn" 255 "statfs: name length 255, as kernel overlayfs reports"

# fallocate, hole punching, SEEK_DATA/SEEK_HOLE
both "SEEK_DATA/SEEK_HOLE map of a sparse lower file" '$HELPERS/seekhole $D/sparse'
both "fallocate on a new file" 'fallocate -l 1M $D/fa && stat -c %s $D/fa && md5sum <$D/fa'
both "fallocate -l on a lower file grows it" 'fallocate -l 200000 $D/short && stat -c %s $D/short && head -c 12 $D/short'
both "punch a hole in a copied-up sparse file" \
	'fallocate -p -o 0 -l 4096 $D/sparse && $HELPERS/seekhole $D/sparse && md5sum <$D/sparse'
both "write into a hole of a lower sparse file keeps the other holes" \
	'dd if=/dev/zero bs=1 count=10 seek=600000 of=$D/sparse2 conv=notrunc status=none &&
	 $HELPERS/seekhole $D/sparse2 && md5sum <$D/sparse2'
both "chmod of a sparse lower file keeps its holes" 'chmod 600 $D/sparse3 && $HELPERS/seekhole $D/sparse3'
both "punch a hole in a lower non-sparse file" 'fallocate -p -o 8192 -l 65536 $D/blob && stat -c %s $D/blob && md5sum <$D/blob'
both "zero-range on a new file" 'seq 1 30000 >$D/zr && fallocate -z -o 100 -l 1000 $D/zr && md5sum <$D/zr && stat -c %s $D/zr'

# copy_file_range
both "copy_file_range from a lower file to a new file" \
	'$HELPERS/copyrange $D/numbers 1000 $D/cfr 0 50000 && md5sum <$D/cfr'
both "copy_file_range into the middle of a lower file" \
	'$HELPERS/copyrange $D/numbers 0 $D/blob 4096 10000 && md5sum <$D/blob && stat -c %s $D/blob'
both "copy_file_range past end of the source" '$HELPERS/copyrange $D/short 5 $D/cfr2 0 1000000 && cat $D/cfr2 | wc -c'

# truncate
both "truncate a lower file down" 'truncate -s 10 $D/numbers && cat $D/numbers'
both "truncate it up again (zero-filled)" 'truncate -s 100000 $D/numbers && md5sum <$D/numbers && $HELPERS/seekhole $D/numbers'
both "truncate a new file to 0" 'truncate -s 0 $D/fa && stat -c %s $D/fa'
both "ftruncate through an open descriptor" \
	'python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.ftruncate(fd, 3); os.close(fd)" $D/dir/f && cat $D/dir/f'
t_is "$(cat "$L/numbers" | wc -l)" 20000 "lower file untouched by truncate"

# After a remount every change reads the same.
t_umount "$M"
t_ok "remount" sfs_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
both "after remount: holes of copied-up files" 'for f in sparse sparse2 sparse3 numbers; do $HELPERS/seekhole $D/$f; done'
both "after remount: tree" 'tree_dump $D'
t_done
