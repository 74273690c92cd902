#!/bin/bash
# tests/image/bad.t: bad input fails with a message naming the image and
# the entry, a non-zero exit, and nothing half-made in the store.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/imglib.sh"
t_need tar sha256sum gzip

# store_clean DESC: no layer, staging or tar left.
store_clean() {
	t_is "$(ls -A "$T/root/layers/sha256" "$T/root/layers/tar" 2>/dev/null | grep -v ':$' | grep -c .)" 0 \
		"$1: nothing left in the layer store"
	t_is "$(ls -A "$T/root/images" 2>/dev/null | grep -v '^.lock$' | grep -c .)" 0 \
		"$1: no image left"
}

# bad DESC PATTERN PATH: import fails, stderr matches PATTERN, store clean.
bad() {
	local desc=$1 pat=$2 path=$3
	t_fail "$desc: import fails" S image import -q --name bad "$path"
	S image import -q --name bad "$path" 2>"$T/err"
	t_ok "$desc: message ($(head -1 "$T/err"))" grep -q "import image \"bad\".*$pat" "$T/err"
	store_clean "$desc"
}

mkdir -p "$T/l0/etc" && echo hello >"$T/l0/etc/hello"
mkdir -p "$T/l1/etc" && echo top >"$T/l1/etc/top"

# blob digest mismatch
mk_oci "$T/o1" gzip "$T/l0" "$T/l1" >/dev/null
f=$(ls "$T/o1/blobs/sha256" | head -1)
for f in "$T"/o1/blobs/sha256/*; do
	if [ "$(stat -c %s "$f")" -gt 100 ] && ! grep -q schemaVersion "$f" && ! grep -q rootfs "$f"; then
		printf x >>"$f"
		break
	fi
done
bad "digest mismatch" "digest mismatch" "$T/o1"

# manifest pointing at a missing blob
mk_oci "$T/o2" none "$T/l0" "$T/l1" >/dev/null
for f in "$T"/o2/blobs/sha256/*; do
	if ! grep -q schemaVersion "$f" && ! grep -q rootfs "$f"; then rm "$f"; break; fi
done
bad "missing blob" "blob \"blobs/sha256/[0-9a-f]*\": No such file" "$T/o2"

# truncated archive
mk_oci "$T/o3" none "$T/l0" "$T/l1" >/dev/null
tar -C "$T/o3" -cf - . | gzip >"$T/o3.tgz"
head -c $(($(stat -c %s "$T/o3.tgz") / 2)) "$T/o3.tgz" >"$T/trunc.tgz"
bad "truncated archive" "runcated\|Damaged\|unexpected end\|rror" "$T/trunc.tgz"
layer_tar "$T/l0" "$T/l0.tar"
head -c 1600 "$T/l0.tar" >"$T/trunc.tar"
bad "truncated rootfs tar" "runcated\|premature" "$T/trunc.tar"

# entries with .. and absolute paths
mkdir -p "$T/dd/sub" && echo evil >"$T/dd/evil"
tar -C "$T/dd/sub" -P -cf "$T/dotdot.tar" ../evil
bad "entry with .." 'entry "../evil".*leaves the layer' "$T/dotdot.tar"
tar -P -cf "$T/abs.tar" "$T/dd/evil"
bad "absolute entry" 'entry "/.*evil".*absolute path' "$T/abs.tar"

# a symlink pointing outside the layer
mkdir -p "$T/sl/a" && ln -s ../../../etc/passwd "$T/sl/a/link"
layer_tar "$T/sl" "$T/sl.tar"
bad "escaping symlink" 'entry "./a/link".*leaves the layer' "$T/sl.tar"

# a hard link pointing outside the layer
mkdir -p "$T/hl" && echo x >"$T/hl/a" && ln "$T/hl/a" "$T/hl/b"
tar -C "$T/hl" -P --transform='flags=h;s,^a$,../a,' -cf "$T/hl.tar" a b
bad "escaping hard link" 'entry "b".*hard link target.*leaves the layer' "$T/hl.tar"

# a symlinked directory, then a file written through it (to a directory
# of this test's: a /tmp/pwned of someone else's proves nothing)
mkdir -p "$T/sd1" "$T/sd2/link" "$T/sdout" && ln -s "$T/sdout" "$T/sd1/link" && echo x >"$T/sd2/link/pwned"
tar -C "$T/sd1" -cf "$T/sd.tar" link
tar -C "$T/sd2" -rf "$T/sd.tar" link/pwned
bad "file through a symlinked directory" 'entry "link/pwned".*symlink "link' "$T/sd.tar"
t_ok "nothing written through the symlink" test ! -e "$T/sdout/pwned"

# device nodes
tar -C / -cf "$T/dev.tar" dev/null
if [ "$STRATA_ROOTLESS" = 1 ]; then
	bad "device node when unprivileged" 'entry "dev/null".*needs root' "$T/dev.tar"
else
	t_ok "device node as root" S image import -q --name dev "$T/dev.tar"
	d=$(ls "$T/root/layers/sha256")
	t_is "$(stat -c '%F %t:%T' "$T/root/layers/sha256/$d/dev/null")" "character special file 1:3" \
		"the device node is kept"
	S image rm dev >/dev/null
fi

# a layer larger than the free disk
mkdir -p "$T/small" "$T/big"
if mount -t tmpfs -o size=3m tmpfs "$T/small" 2>/dev/null; then
	echo "$T/small" >>"$T/.mounts"
	head -c 4000000 /dev/urandom >"$T/big/blob"
	layer_tar "$T/big" "$T/big.tar"
	gzip -1 -c "$T/big.tar" >"$T/big.tgz"
	t_fail "layer larger than the disk: import fails" \
		"$B/strata" --root "$T/small/root" image import -q --name big "$T/big.tgz"
	"$B/strata" --root "$T/small/root" image import -q --name big "$T/big.tgz" 2>"$T/err"
	t_ok "layer larger than the disk: message" grep -q 'import image "big".*No space left' "$T/err"
	t_is "$(ls -A "$T/small/root/layers/sha256" "$T/small/root/layers/tar" | grep -v ':$' | grep -c .)" 0 \
		"layer larger than the disk: nothing left"
else
	t_skip "layer larger than the disk" "cannot mount a tmpfs"
fi

# an interrupted import leaves staging entries the next import removes
mkdir -p "$T/root/layers/sha256/.tmp-deadbeef/x" "$T/root/images/.tmp-cafe"
mk_oci "$T/ok" none "$T/l0" >/dev/null
t_ok "a rerun import succeeds" S image import -q --name ok "$T/ok"
t_is "$(ls -A "$T/root/layers/sha256" | grep -c '^\.tmp')" 0 "leftovers removed"
t_is "$(ls -A "$T/root/images" | grep -c '^\.tmp')" 0 "from images/ too"
t_done
