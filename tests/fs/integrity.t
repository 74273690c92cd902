#!/bin/bash
# tests/fs/integrity.t: data integrity of file I/O through the mount.  fsx
# runs thousands of random reads, writes, truncates, mmap, fallocate,
# copy_file_range and reopen cycles on files that start in the lower layers,
# then the mount is unmounted and remounted and every file is checked again;
# the lower layers must be left exactly as they were.  The same run on kernel
# overlayfs checks the exerciser itself.
#   STRATA_FSX_OPS   operations per run (default 20000)
#   STRATA_FSX_SEED  seed of the run (default random, printed)
# rootless: yes
. "$(dirname "$0")/../lib.sh"

FSX=$HELPERS/fsx
[ -x "$FSX" ] || t_skip_all "$FSX is not built"
[ -x "$STRATA_FS" ] || t_skip_all "$STRATA_FS is not built"
OPS=${STRATA_FSX_OPS:-20000}
SEED=${STRATA_FSX_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
t_diag "fsx seed $SEED, $OPS operations (STRATA_FSX_SEED=$SEED reproduces)"

# Two lower layers: fsx.00-03 in the top one, fsx.04-07 in the bottom one,
# which also holds different, shadowed files named fsx.00-03.
"$FSX" --prepare -i 7 "$T" >/dev/null || exit 1
mkdir -p "$T/lower1" "$T/lower2" "$T/decoy"
"$FSX" --prepare -i 99 "$T/decoy" || exit 1
for i in 00 01 02 03; do
	mv "$T/fsx.$i" "$T/lower1/"
	mv "$T/decoy/fsx.$i" "$T/lower2/"
done
mv "$T"/fsx.0[4-7] "$T/lower2/"
LOWERS=$T/lower1:$T/lower2

lower_state() {
	(cd "$T" && find lower1 lower2 -printf '%p %y %m %s %T@\n' | LC_ALL=C sort &&
		find lower1 lower2 -type f -exec md5sum {} + | LC_ALL=C sort -k2)
}
lower_before=$(lower_state)

# check KIND MOUNTFN [FSX-OPTION...]: one fsx run on a fresh upper, a
# remount, a verification.
check() {
	local kind=$1 mountfn=$2 d=$T/$1 rc start end
	shift 2
	mkdir -p "$d/upper" "$d/work"
	local opts=lowerdir=$LOWERS,upperdir=$d/upper,workdir=$d/work
	if ! $mountfn "$d/mnt" "$opts" 2>"$d/mount.err"; then
		t_skip "$kind: fsx" "cannot mount: $(head -1 "$d/mount.err")"
		return
	fi
	start=$(date +%s.%N)
	timeout "${STRATA_FSX_TIMEOUT:-300}" "$FSX" -s "$SEED" -i 7 -n "$OPS" "$@" \
		--model "$d/model" "$d/mnt" >"$d/fsx.log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	t_is "$rc" 0 "$kind: fsx $OPS operations, seed $SEED"
	[ "$rc" = 0 ] || tail -60 "$d/fsx.log" | sed 's/^/#   /'
	t_diag "$kind: $OPS operations in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"

	t_ok "$kind: unmount" t_umount "$d/mnt"
	t_ok "$kind: remount" $mountfn "$d/mnt" "$opts"
	t_ok "$kind: files persist across the remount" "$FSX" --verify-only --model "$d/model" "$d/mnt"
	# The verifier must notice a single changed byte.
	if [ -f "$d/model" ]; then
		printf '\x01' | dd of="$d/mnt/fsx.03" bs=1 seek=5 conv=notrunc status=none
		t_fail "$kind: verifier notices a changed byte" \
			"$FSX" --verify-only --model "$d/model" "$d/mnt"
	else
		t_skip "$kind: verifier notices a changed byte" "no model saved"
	fi
	t_ok "$kind: unmount again" t_umount "$d/mnt"
	t_is "$(find "$d/work" -mindepth 2 ! -path "$d/work/work/whiteout" -printf '%P\n' | LC_ALL=C sort)" "" \
		"$kind: nothing left in the workdir"
	t_is "$(lower_state)" "$lower_before" "$kind: lower layers unchanged"
}

check strata-fs sfs_mount
if [ "$STRATA_ROOTLESS" = 1 ] || [ "$(id -u)" = 0 ]; then
	# overlayfs maps the lower file through a descriptor opened before
	# copy-up (documented as non-standard there): -M keeps mmap off those.
	check overlayfs kovl_mount -M
else
	t_skip "overlayfs: fsx" "needs root or a user namespace"
fi
t_done
