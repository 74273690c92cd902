#!/bin/bash
# tests/image/import.t: imports the built-in image as an OCI layout (plain,
# gzip, zstd), an OCI archive, docker-save archives (old and blobs layouts)
# and a rootfs tar; checks the merged view against mkimage's reference,
# layer sharing, ls/inspect/rm/prune, mount and the export round trip
# (rm's rules for names and ids: rm.t).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/imglib.sh"
t_need tar sha256sum gzip

mkimage "$T/img" oci >/dev/null
REF=$(mkimage --expected "$T/img" oci)
L="$T/img/oci/l0 $T/img/oci/l1 $T/img/oci/l2"
WANT=$(tree_dump "$REF")

# check_merged IMAGE DESC: the image mounted read-only shows the reference tree.
check_merged() {
	local m=$T/mnt.$RANDOM
	mkdir -p "$m"
	echo "$m" >>"$T/.mounts"
	if ! S mount "$1" "$m" >"$T/.mout" 2>&1; then
		t_ok "$2: mount" false
		cat "$T/.mout" | sed 's/^/# /'
		return
	fi
	t_is "$(tree_dump "$m")" "$WANT" "$2: merged view matches the reference"
	t_ok "$2: umount" S umount "$m"
}

id=$(mk_oci "$T/oci" none $L)
t_ok "import OCI layout" S image import -q --name busy:1 "$T/oci"
t_is "$(S image ls -q)" "${id:0:12}" "image ls -q shows the id"
check_merged busy:1 "OCI layout"
t_is "$(ls "$T/root/layers/sha256" | wc -l)" 3 "three layers on disk"
t_ok "mount with no argument lists nothing afterwards" test -z "$(S mount)"

# The same image again: every layer reused.
S image import --name again "$T/oci" 2>"$T/err" >/dev/null
t_is "$(grep -c 'reusing' "$T/err")" 3 "a second import reuses all three layers"

# gzip and zstd layers give the same diff_ids, hence no new layer dirs.
mk_oci "$T/ocigz" gzip $L >/dev/null
t_ok "import gzip layers" S image import -q --name gz "$T/ocigz"
if command -v zstd >/dev/null; then
	mk_oci "$T/ocizst" zstd $L >/dev/null
	t_ok "import zstd layers" S image import -q --name zst "$T/ocizst"
else
	t_skip "import zstd layers" "no zstd"
fi
t_is "$(ls "$T/root/layers/sha256" | wc -l)" 3 "compressed layers share the store"

# An image sharing the two bottom layers adds only its new one.
mkdir -p "$T/extra/etc" && echo extra >"$T/extra/etc/extra"
mk_oci "$T/oci2" gzip "$T/img/oci/l0" "$T/img/oci/l1" "$T/extra" >/dev/null
t_ok "import a second image" S image import -q --name second "$T/oci2"
t_is "$(ls "$T/root/layers/sha256" | wc -l)" 4 "the second image adds one layer"

# OCI archive (tar of the layout, gzipped) and from stdin.
tar -C "$T/oci" -cf "$T/oci.tar" .
t_ok "import OCI archive" S image import -q --name ociar "$T/oci.tar"
gzip -c "$T/oci.tar" >"$T/oci.tar.gz"
t_ok "import gzipped OCI archive from stdin" sh -c "'$B/strata' --root '$T/root' image import -q --name stdin - <'$T/oci.tar.gz'"
check_merged stdin "OCI archive from stdin"

# docker save, both layouts.
for style in old blobs; do
	did=$(mk_docker "$T/d-$style" $style $L)
	tar -C "$T/d-$style" -cf "$T/d-$style.tar" .
	t_ok "import docker-save ($style)" S image import -q "$T/d-$style.tar"
	t_is "$(S image inspect docker/img:v1 | grep -c "\"Id\": \"sha256:$did\"")" 1 \
		"docker-save ($style) keeps its RepoTag and id"
	check_merged "$did" "docker-save ($style)"
done

# A plain rootfs tar is one layer.
layer_tar "$REF" "$T/rootfs.tar"
t_ok "import a rootfs tar" S image import -q --name rootfs "$T/rootfs.tar"
check_merged rootfs "rootfs tar"

# inspect
S image inspect busy:1 >"$T/insp"
t_ok "inspect shows Cmd" grep -q '"/bin/sh"' "$T/insp"
t_ok "inspect shows WorkingDir" grep -q '"WorkingDir": "/root"' "$T/insp"
t_ok "inspect shows Labels" grep -q '"l": "v"' "$T/insp"
t_is "$(grep -c '"DiffID"' "$T/insp")" 3 "inspect lists three layers"
t_ok "ls --format json" sh -c "'$B/strata' --root '$T/root' image ls --format json | grep -q busy:1"

# export round trip
t_ok "export" S image export busy:1 -o "$T/exp.tar"
R2=$T/root2
t_ok "import the export into a fresh store" "$B/strata" --root "$R2" image import -q "$T/exp.tar"
t_is "$("$B/strata" --root "$R2" image ls -q)" "${id:0:12}" "the round trip keeps the image id"
norm() { sed '/"RepoTags"/,/\]/d; s/"\(Created\|Imported\)".*//; s|root2/|root/|'; }
t_is "$("$B/strata" --root "$R2" image inspect busy:1 | norm)" \
	"$(S image inspect busy:1 | norm)" "the round trip keeps inspect's output"
t_is "$(ls "$R2/layers/sha256" | sort)" \
	"$(S image inspect busy:1 | grep -o '"DiffID": "sha256:[0-9a-f]*' | cut -d: -f3 | sort)" \
	"the round trip keeps the layers"
for f in $(ls "$R2/layers/sha256"); do
	t_is "$(tree_dump "$R2/layers/sha256/$f")" "$(tree_dump "$T/root/layers/sha256/$f")" \
		"layer ${f:0:12} unpacks identically after the round trip"
done

# mount --writable and diff
m=$T/wm && mkdir -p "$m" && echo "$m" >>"$T/.mounts"
t_ok "mount --writable" S mount busy:1 "$m" --writable
echo new >"$m/newfile"
rm -f "$m/bin/ls"
echo changed >>"$m/etc/passwd" 2>/dev/null || true
t_ok "mount lists the mount" sh -c "'$B/strata' --root '$T/root' mount | grep -q '$m busy:1'"
up=$(ls -d "$T"/root/mounts/*/upper)
S diff "$up" --image busy:1 >"$T/diff"
t_ok "diff: A /newfile" grep -qx 'A /newfile' "$T/diff"
t_ok "diff: D /bin/ls" grep -qx 'D /bin/ls' "$T/diff"
t_ok "diff: C /bin" grep -qx 'C /bin' "$T/diff"
t_ok "umount" S umount "$m"

# rm and prune
mkdir -p "$T/root/containers/c1"
echo "{\"ImageID\": \"$id\"}" >"$T/root/containers/c1/config.json"
t_fail "rm -f refuses an image a container uses" S image rm -f "$id"
S image rm -f "$id" 2>"$T/rmerr"
t_ok "rm names the container" grep -q 'in use by container(s): c1' "$T/rmerr"
rm -rf "$T/root/containers/c1"
for n in busy:1 again gz zst ociar stdin rootfs docker/img:v1; do S image rm -f "$n" >/dev/null; done
t_is "$(ls "$T/root/layers/sha256" | wc -l)" 3 "rm keeps layers the remaining image uses"
t_ok "prune -a" S image prune -a
t_is "$(ls "$T/root/layers/sha256" | wc -l)" 0 "prune removes the layers"
t_is "$(ls "$T/root/images" | wc -l)" 0 "no image left"
t_done
