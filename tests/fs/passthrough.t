#!/bin/bash
# tests/fs/passthrough.t: FUSE passthrough (root only: registering a backing
# file needs CAP_SYS_ADMIN).  Reads and writes of files whose data is in the
# upper go straight to the upper file; the daemon's debug log shows which
# requests still reach it.  Checked: the kernel accepts it; the writes of a
# file just created bypass the daemon and land in the upper, and so do the
# writes and reads once it is reopened; setuid files, reopened or just
# created, stay with the daemon; a lower file is copied up through the
# daemon and passes through afterwards; a reader of a
# lower file opened before a copy-up sees the writes; two names of one
# hard-linked file share one backing file; a file unlinked while open stays
# usable; passthrough=0 sends every write to the daemon; mmap writes reach
# the upper; O_DIRECT reads and writes work in both modes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
[ "$(id -u)" = 0 ] && [ "$STRATA_ROOTLESS" != 1 ] ||
	t_skip_all "passthrough needs real root (CAP_SYS_ADMIN for backing files)"
t_need md5sum perl

mkdir -p "$T/lower" "$T/upper" "$T/work"
echo "lower data" >"$T/lower/small"
head -c 3M /dev/urandom >"$T/lower/big"
echo "to read" >"$T/lower/reader"
OPTS=lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work

t_ok "mount with debug output" start_debug "$OPTS"
if grep -q "passthrough: not offered" "$T/d.log"; then
	t_umount "$T/mnt"
	t_skip_all "this kernel does not offer FUSE passthrough"
fi
t_ok "the kernel accepted passthrough" grep -q "passthrough: accepted" "$T/d.log"

w0=$(seen WRITE)
head -c 4M /dev/urandom >"$T/new.src"
cp "$T/new.src" "$T/mnt/new"
t_is "$(seen WRITE)" "$w0" "a file just created is written without the daemon"
t_is "$(md5sum <"$T/upper/new")" "$(md5sum <"$T/new.src")" "the data is in the upper file"
w0=$(seen WRITE)
dd if="$T/new.src" of="$T/mnt/new" bs=1M conv=notrunc status=none
t_is "$(seen WRITE)" "$w0" "reopened, its writes pass through"
r0=$(seen READ)
t_is "$(md5sum <"$T/mnt/new")" "$(md5sum <"$T/new.src")" "reading it back gives the data"
t_is "$(seen READ)" "$r0" "and sends no READ to the daemon"

echo "appended" >>"$T/mnt/big"
t_is "$(md5sum <"$T/mnt/big")" "$(cat "$T/lower/big" <(echo appended) | md5sum)" \
	"append to a lower file: copied up, then appended"
t_is "$(md5sum <"$T/upper/big")" "$(md5sum <"$T/mnt/big")" "the upper holds the whole file"
w0=$(seen WRITE)
printf 'XYZ' | dd of="$T/mnt/big" bs=1 seek=1000 conv=notrunc status=none
t_is "$(seen WRITE)" "$w0" "once copied up, its writes pass through"
t_is "$(dd if="$T/mnt/big" bs=1 skip=1000 count=3 status=none)" "XYZ" "and read back"
t_is "$(dd if="$T/upper/big" bs=1 skip=1000 count=3 status=none)" "XYZ" "in the upper file"

# A reader of the lower file, open before the copy-up, sees the new data.
exec 3<"$T/mnt/reader"
echo "more" >>"$T/mnt/reader"
t_is "$(cat <&3)" "$(printf 'to read\nmore')" "a reader opened before the copy-up sees the write"
exec 3<&-
t_is "$(cat "$T/mnt/reader")" "$(printf 'to read\nmore')" "a new reader sees it too"

# Hard links: one node, one backing file for both names.
echo "linked" >"$T/mnt/a"
ln "$T/mnt/a" "$T/mnt/b"
exec 4<>"$T/mnt/a" 5<"$T/mnt/b"
printf 'LINKED' >&4
t_is "$(cat <&5)" "LINKED" "a write through one name is read through the other"
exec 4>&- 5<&-

# Unlinked while open: the open file still reads and writes.
echo "doomed" >"$T/mnt/doomed"
exec 6<>"$T/mnt/doomed"
rm "$T/mnt/doomed"
printf 'still' >&6
t_ok "an unlinked open file is gone from the directory" test ! -e "$T/mnt/doomed"
t_is "$(cat /dev/fd/6)" "stilld" "and stays usable through its fd"
exec 6>&-

head -c 65536 /dev/zero >"$T/mnt/mapped"
t_is "$("$HELPERS/mmaptest" shared "$T/mnt/mapped" 4096 MAPPED)" "read: MAPPED" \
	"an mmap write of a passthrough file is read back"
t_is "$(dd if="$T/upper/mapped" bs=1 skip=4096 count=6 status=none)" "MAPPED" \
	"from the upper file"
t_is "$("$HELPERS/mmaptest" coherent "$T/mnt/mapped" 8192 PWRITE | grep after)" \
	"map after: PWRITE" \
	"a mapping sees a pwrite through another fd"
# Set-id files stay with the daemon, so an unprivileged write clears the bits.
chmod o+x "$T"
echo "#!/bin/sh" >"$T/mnt/suid"
chmod 4777 "$T/mnt/suid"
w0=$(seen WRITE)
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo more >>'$T/mnt/suid'"
t_ok "a write to a setuid file reaches the daemon" test "$(seen WRITE)" -gt "$w0"
t_is "$(stat -c %a "$T/mnt/suid")" 777 "and clears the setuid bit, as on any filesystem"
# A file created set-id: its creator's own writes clear the bit.
mkdir -m 1777 "$T/mnt/shared"
w0=$(seen WRITE)
setpriv --reuid=65534 --regid=65534 --clear-groups perl -MFcntl -e '
	sysopen(my $f, $ARGV[0], O_WRONLY | O_CREAT | O_EXCL, 06755) or die "$!";
	syswrite($f, "data") == 4 or die "$!";' "$T/mnt/shared/newsuid"
t_ok "a write to a file created setuid reaches the daemon" test "$(seen WRITE)" -gt "$w0"
t_is "$(stat -c %a "$T/mnt/shared/newsuid")" 755 "and clears its set-id bits"

# O_DIRECT: a lower file is read through the daemon, an upper one passes.
t_is "$(dd if="$T/mnt/reader" bs=4k iflag=direct status=none | md5sum)" \
	"$(md5sum <"$T/upper/reader")" "O_DIRECT read of a copied-up file"
t_is "$(dd if="$T/mnt/small" bs=4k iflag=direct status=none)" "lower data" \
	"O_DIRECT read of a lower file, through the daemon"
dd if="$T/new.src" of="$T/mnt/direct" bs=64k oflag=direct status=none
t_is "$(md5sum <"$T/upper/direct")" "$(md5sum <"$T/new.src")" "O_DIRECT write of a new file"
t_ok "the daemon logged passthrough opens" grep -q "passthrough: 0x" "$T/d.log"
t_ok "unmount" t_umount "$T/mnt"

# passthrough=0: every write reaches the daemon.
rm -rf "$T/upper" "$T/work"
mkdir -p "$T/upper" "$T/work"
t_ok "mount with passthrough=0" start_debug "$OPTS,passthrough=0"
w0=$(seen WRITE)
cp "$T/new.src" "$T/mnt/new"
t_ok "writes reach the daemon" test "$(seen WRITE)" -gt "$w0"
t_is "$(md5sum <"$T/mnt/new")" "$(md5sum <"$T/new.src")" "and the data is right"
t_fail "no passthrough opens" grep -q "passthrough: 0x" "$T/d.log"
t_ok "unmount" t_umount "$T/mnt"
t_is "$(work_leftovers "$T/work" | wc -l)" 0 "workdir clean"
t_done
