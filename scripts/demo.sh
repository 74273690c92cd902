#!/bin/bash
# scripts/demo.sh: a narrated tour of strata on the built-in image.  First
# strata-fs alone: the merged view, copy-up, whiteouts, the overlayfs on-disk
# format, persistence across remounts, kernel overlayfs reading the same
# upper directory.  Then containers (`strata run`), replaying the Docker
# storage stories: the writable layer across stop/start and rm, named
# volumes, bind mounts, tmpfs mounts, layers shared by two containers.
# Run by `make demo`, as root or not.  The containers run from the built-in
# image imported with `strata image import`, as a user's would.  STRATA_FS overrides the binary
# (default $B/strata-fs); everything happens in a temporary directory that is
# always removed.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${B:-$SRC/build}
STRATA_FS=${STRATA_FS:-$B/strata-fs}
export STRATA_FS
D=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
MNT=$D/merged
STEP=0

unmount() {
	mountpoint -q "$1" 2>/dev/null || return 0
	umount "$1" 2>/dev/null || fusermount3 -u "$1" 2>/dev/null ||
		umount -l "$1" 2>/dev/null || fusermount3 -uz "$1"
}

cleanup() {
	local rc=$?
	cd /
	if [ -x "$B/strata" ] && [ -d "$D/state" ]; then
		"$B/strata" --root "$D/state" rm -f -v $("$B/strata" --root "$D/state" ps -a -q) \
			>/dev/null 2>&1 || true
	fi
	unmount "$MNT" || true
	rm -rf "$D"
	if [ $rc -ne 0 ]; then echo "demo FAILED (status $rc)" >&2; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading() {
	STEP=$((STEP + 1))
	printf '\n=== %d. %s\n' "$STEP" "$*"
}

say() {
	printf '%s\n' "$*"
}

# show CMD...: prints the command as a shell would read it, with paths
# relative to the demo directory.
show() {
	local a words=()
	for a in "$@"; do
		a=${a//"$D/"/}
		if [[ -z $a || $a == *[^A-Za-z0-9_./:=,@%+-]* ]]; then
			a="'${a//\'/\'\\\'\'}'"
		fi
		words+=("$a")
	done
	printf '$ %s\n' "${words[*]}"
}

# run CMD...: shows the command, then its indented output; fails the demo
# when the command fails.
run() {
	local rc=0
	show "$@"
	"$@" >"$D/.out" 2>&1 || rc=$?
	sed -e 's/^/    /' -e "s|$D/||g" "$D/.out"
	if [ $rc -ne 0 ]; then
		say "    (failed with status $rc)"
		return $rc
	fi
}

# absent PATH: shows that PATH does not exist; fails the demo when it does.
absent() {
	show ls "$1"
	if [ -e "$1" ] || [ -L "$1" ]; then
		say "    still there: wrong"
		return 1
	fi
	say "    ls: ${1//"$D/"/}: No such file or directory   (as it should be)"
}

# True for root of the initial user namespace (trusted.overlay.* xattrs).
real_root() {
	local a b c
	[ "$EUID" = 0 ] || return 1
	read -r a b c </proc/self/uid_map && [ "$a $b $c" = "0 0 4294967295" ]
}

sfs_mount() {
	run "$STRATA_FS" -o "lowerdir=$LOWER,upperdir=$D/upper,workdir=$D/work" "$MNT"
	mountpoint -q "$MNT" || { say "strata-fs returned but $MNT is not mounted"; return 1; }
}

sfs_umount() {
	if [ "$EUID" = 0 ] && umount "$MNT" 2>/dev/null; then
		show umount "$MNT"
	else
		run fusermount3 -u "$MNT"
	fi
}

# tree DIR: one line per entry: path, type, mode, owner, size, link target or
# content hash.  Directory link counts are left out (overlayfs reports 1).
# An entry listed but not found shows up in find's complaint and in the diff.
tree() {
	(cd "$1" && { find . -mindepth 1 -printf '%p\t%y %m %u:%g\t%s\t%l\n' || true; } |
		LC_ALL=C sort |
		while IFS=$'\t' read -r p t s l; do
			case $t in
			f*) printf '%s %s %s %s\n' "$p" "$t" "$s" "$(md5sum <"$p" | cut -c1-32)" ;;
			l*) printf '%s %s -> %s\n' "$p" "$t" "$l" ;;
			d*) printf '%s %s\n' "$p" "$t" ;;
			*) printf '%s %s %s\n' "$p" "$t" "$s" ;;
			esac
		done)
}

if [ ! -x "$STRATA_FS" ]; then
	echo "demo.sh: $STRATA_FS not found; build it with make (or set STRATA_FS)" >&2
	exit 1
fi
cd "$D"
mkdir upper work merged

heading "The built-in image: three layers made from busybox"
say "l0 is a small rootfs, l1 changes and deletes files, l2 makes etc/app/conf.d"
say "opaque and adds /top.txt.  lowerdir= lists the top layer first."
LOWER=$(bash "$SRC/scripts/mkimage.sh" "$D/image")
say "lowerdir=${LOWER//"$D/"/}"
run ls -l image/ovl/l1/usr/share/doc image/ovl/l1/var/lib/data
run getfattr -d -m '' image/ovl/l2/etc/app/conf.d

heading "Mount it with $(basename "$STRATA_FS")"
sfs_mount
run findmnt -n -o FSTYPE,OPTIONS "$MNT"

heading "The merged view"
run ls -l "$MNT"
run cat "$MNT/etc/hostname"
say "(etc/hostname comes from l0)"
run cat "$MNT/etc/os-release"
say "(etc/os-release comes from l1, which replaced l0's VERSION=1)"
run cat "$MNT/top.txt"
say "(top.txt comes from l2)"
run ls "$MNT/etc/app" "$MNT/etc/app/conf.d"
say "(conf.d is opaque in l2: the files of l0 and l1 there are hidden)"
absent "$MNT/usr/share/doc/base.txt"
say "(base.txt is in l0, but l1 holds a whiteout for it)"
absent "$MNT/var/lib/data/old"
run "$MNT/bin/busybox" echo "busybox from the image runs"

heading "Writing to a file of a lower layer copies it up"
run sh -c "echo 'changed through the mount' >>'$MNT/etc/hostname'"
run cat "$MNT/etc/hostname"
run cat image/ovl/l0/etc/hostname
say "(the layer is unchanged; the new copy lives in upper/)"
run cat upper/etc/hostname

heading "Deleting a lower file leaves a whiteout in upper/"
run rm "$MNT/usr/share/doc/l1.txt"
absent "$MNT/usr/share/doc/l1.txt"
run stat -c '%n: %F %t:%T (major:minor)' upper/usr/share/doc/l1.txt
run ls -l image/ovl/l1/usr/share/doc/l1.txt

heading "Replacing a lower directory makes an opaque directory"
run rm -r "$MNT/var/lib/data/nested"
run mkdir "$MNT/var/lib/data/nested"
run sh -c "echo 'fresh' >'$MNT/var/lib/data/nested/new.txt'"
run ls -l "$MNT/var/lib/data/nested"

heading "upper/ is plain overlayfs format"
run find upper -printf '%y %M %u:%g %p\n'
if real_root; then
	say "(root: overlay xattrs are trusted.overlay.*)"
else
	say "(rootless: overlay xattrs are user.overlay.*)"
fi
run getfattr -R -P -d -m '' upper

heading "Unmount and mount again: the changes persist"
tree "$MNT" >"$D/tree-sfs"
sfs_umount
run ls upper
sfs_mount
run cat "$MNT/etc/hostname"
absent "$MNT/usr/share/doc/l1.txt"
run ls "$MNT/var/lib/data/nested"
tree "$MNT" >"$D/tree-sfs2"
run diff -u tree-sfs tree-sfs2
say "(no difference)"
sfs_umount

kernel_overlay() {
kopts="lowerdir=$LOWER,upperdir=$D/upper,workdir=$D/kwork"
mkdir kwork
if ! real_root; then
	kopts="$kopts,userxattr"
else
	# Only needed when strata-fs wrote such xattrs.
	if getfattr -R -P -m '^trusted\.overlay\.redirect$' upper 2>/dev/null | grep -q .; then
		kopts="$kopts,redirect_dir=on"
	fi
	if getfattr -R -P -m '^trusted\.overlay\.metacopy$' upper 2>/dev/null | grep -q .; then
		kopts="$kopts,metacopy=on"
	fi
fi
run mount -t overlay overlay -o "$kopts" "$MNT"
run cat "$MNT/etc/hostname"
tree "$MNT" >"$D/tree-kernel"
run umount "$MNT"
say "Listing of every entry (type, mode, owner, size, content hash) through"
say "strata-fs and through kernel overlayfs:"
run wc -l tree-sfs tree-kernel
run diff -u tree-sfs tree-kernel
say "(no difference)"
}

heading "Kernel overlayfs reads the same upper identically"
if [ "$EUID" != 0 ]; then
	say "skipped: mounting kernel overlayfs needs root or a user namespace"
else
	kernel_overlay
fi

# --- containers ---------------------------------------------------------------

if [ ! -x "$B/strata" ]; then
	say "(strata is not built: the container part is skipped)"
	printf '\ndemo finished: all steps passed\n'
	exit 0
fi
STATE=$D/state
# st ARGS...: the strata command on the demo's own state directory, shown
# as "strata ARGS".
st() {
	local rc=0
	show strata "$@"
	"$B/strata" --root "$STATE" "$@" >"$D/.out" 2>&1 || rc=$?
	sed -e 's/^/    /' -e "s|$D/||g" "$D/.out"
	if [ $rc -ne 0 ]; then
		say "    (exit status $rc)"
	fi
	return $rc
}
# stq ARGS...: the same, silent, printing only the output.
stq() {
	"$B/strata" --root "$STATE" "$@"
}

# oci_layout OUT LAYER...: an OCI image layout of the layer directories
# (bottom first), each an uncompressed tar, with a small image config.
oci_layout() {
	local out=$1 l n=0 h size diffs="" layers="" cfg
	shift
	mkdir -p "$out/blobs/sha256"
	for l in "$@"; do
		tar -C "$l" --format=posix --xattrs --xattrs-include='*' --numeric-owner \
			--sort=name -cf "$out/layer$n.tar" .
		h=$(sha256sum "$out/layer$n.tar" | cut -c1-64)
		size=$(stat -c %s "$out/layer$n.tar")
		mv "$out/layer$n.tar" "$out/blobs/sha256/$h"
		diffs="$diffs${diffs:+,}\"sha256:$h\""
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$h\",\"size\":$size}"
		n=$((n + 1))
	done
	blob() { # blob TEXT: stores TEXT, prints "sha256:HEX",\"size\":N"
		local h
		h=$(printf '%s' "$1" | sha256sum | cut -c1-64)
		printf '%s' "$1" >"$out/blobs/sha256/$h"
		printf 'sha256:%s","size":%s' "$h" "${#1}"
	}
	cfg=$(blob '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":['"$diffs"']}}')
	h=$(blob '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'"$cfg"'},"layers":['"$layers"']}')
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s}]}' \
		"$h" >"$out/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
}

heading "Import the built-in image into strata's layer store"
say "The same three layers as tars with .wh. whiteouts (OCI format), in an OCI image"
say "layout, imported under a name: each layer is unpacked once, under its diff_id."
bash "$SRC/scripts/mkimage.sh" "$D/image" oci >/dev/null
oci_layout "$D/demo-oci" "$D/image/oci/l0" "$D/image/oci/l1" "$D/image/oci/l2"
run ls demo-oci demo-oci/blobs/sha256
st image import --name demo:latest "$D/demo-oci"
st image ls
run ls state/layers/sha256
IMG=demo:latest

heading "Containers: a file written in a container lives in its writable layer"
say "strata run mounts strata-fs over the image's layers with the container's own"
say "upper directory, in its own namespaces$([ "$EUID" != 0 ] && echo ' (rootless: a user namespace)')."
st run -d --name app "$IMG" sleep 1000
st exec app sh -c 'echo "written in the container" >/notes.txt; cat /notes.txt'
st ps
st stop -t 1 app
st start app
st exec app cat /notes.txt
say "(the file survived stop and start: the writable layer is kept)"
APP=$(stq ps -a --format json | jq -r 'select(.Names=="app") | .ID')
run ls "state/containers/$APP/upper"
st rm -f app
st run --rm "$IMG" sh -c 'cat /notes.txt 2>&1 || true'
say "(rm deleted the writable layer; a new container starts from the image)"
run ls state/containers

heading "A named volume outlives its containers"
st run --rm -v dbdata:/var/lib/data "$IMG" sh -c \
	'ls /var/lib/data; echo "4,delta" >>/var/lib/data/records.csv'
say "(a new volume is filled from the image's /var/lib/data first)"
st volume ls
st run --rm -v dbdata:/srv/db "$IMG" tail -2 /srv/db/records.csv
say "(another container, the same data; rm never deletes a named volume)"

heading "A bind mount shows host files and conceals the image's"
mkdir -p "$D/host-conf"
echo "from the host" >"$D/host-conf/host.conf"
st run --rm "$IMG" sh -c 'ls /etc/app'
st run --rm -v "$D/host-conf:/etc/app:ro" "$IMG" sh -c \
	'ls /etc/app; cat /etc/app/host.conf; echo x >/etc/app/new 2>&1 || true'
say "(the image's files are hidden while the mount is there, and :ro refuses writes)"

heading "A tmpfs mount is empty on each start"
st create --name scratch --tmpfs /scratch "$IMG" \
	sh -c 'echo "in /scratch: $(ls /scratch)"; touch /scratch/file-$$; echo "/keep: $(cat /keep 2>/dev/null)"; date +%T >>/keep'
st start -a scratch
st start -a scratch
say "(/scratch starts empty each time; /keep, in the writable layer, grows)"
st rm scratch

heading "Two containers from one image share its layers on disk"
A=$(stq create --name one "$IMG" sh -c 'echo one >/one.txt')
Bc=$(stq create --name two "$IMG" sh -c 'echo two >/two.txt')
stq start -a one >/dev/null
stq start -a two >/dev/null
run jq -c '.Layers | map(sub(".*/layers/"; "layers/"))' \
	"state/containers/$A/config.json" "state/containers/$Bc/config.json"
run du -sh state/layers "state/containers/$A/upper" "state/containers/$Bc/upper"
run ls "state/containers/$A/upper" "state/containers/$Bc/upper"
say "(both name the same layers/sha256/<diff_id> directories, stored once; each"
say "container has only its own small upper)"
st rm one two
st ps -a

printf '\ndemo finished: all steps passed\n'
