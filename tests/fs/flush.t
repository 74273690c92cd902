#!/bin/bash
# tests/fs/flush.t: a close costs a FLUSH round trip only when the close
# could report something.  A file opened read-only never does; a file
# written on an upper filesystem whose close reports no error (ext4, xfs,
# tmpfs) neither; on other uppers (here a FUSE one: a second strata-fs)
# the kernel still sends FLUSH, and the daemon answers with what closing
# the upper file says.  The data is as written in every case.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs

mkdir -p "$T/lower" "$T/upper" "$T/work" "$T/inner" "$T/ilower" "$T/iupper" "$T/iwork"
echo low >"$T/lower/file"
case $(stat -f -c %T "$T/upper") in
ext2/ext3 | xfs | tmpfs) quiet=1 ;;
*) quiet= ;;
esac

# writes NAME through the mount: open, write, close, as a shell does
write_some() {
	echo "written $1" >"$T/mnt/$1"
}

if [ -n "$quiet" ]; then
	t_ok "mount with debug output" start_debug "lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work"
	f0=$(seen FLUSH)
	write_some new
	echo more >>"$T/mnt/file"
	cat "$T/mnt/file" "$T/mnt/new" >/dev/null
	perl -e 'open(my $f, "+<", $ARGV[0]) or die; print $f "x"; close($f) or die "close: $!"' \
		"$T/mnt/new"
	t_is "$(seen FLUSH)" "$f0" "$(stat -f -c %T "$T/upper") upper: a created, an appended, a read and a read-write file close without FLUSH"
	t_is "$(cat "$T/mnt/new")" "xritten new" "the data is as written"
	t_is "$(cat "$T/mnt/file")" "low
more" "and in the copied-up file"
	t_umount "$T/mnt"
	t_is "$(cat "$T/upper/new")" "xritten new" "and in the upper after the unmount"
else
	t_skip "no FLUSH on a quiet upper" "the test directory is on $(stat -f -c %T "$T/upper")"
fi

# a FUSE upper: the inner mount's close may report an error, so FLUSH comes
t_ok "inner mount (the upper filesystem)" sfs_mount "$T/inner" \
	"lowerdir=$T/ilower,upperdir=$T/iupper,workdir=$T/iwork"
mkdir -p "$T/inner/up" "$T/inner/wk"
t_ok "outer mount, its upper on the inner" start_debug \
	"lowerdir=$T/lower,upperdir=$T/inner/up,workdir=$T/inner/wk"
f0=$(seen FLUSH)
cat "$T/mnt/file" >/dev/null
t_is "$(seen FLUSH)" "$f0" "a FUSE upper: a read-only close sends no FLUSH"
write_some fused
t_ok "and a close after a write sends one" test "$(seen FLUSH)" -gt "$f0"
t_is "$(cat "$T/mnt/fused")" "written fused" "the data is as written"
t_umount "$T/mnt"
t_umount "$T/inner"
t_done
