# tests/image/imglib.sh: sourced by the image tests after tests/lib.sh.
# Builds image archives with tar and sha256sum only.
#
#   layer_tar DIR OUT            an uncompressed, owner-keeping tar of DIR
#   mk_oci OUT COMP L0 L1...     an OCI layout in OUT (layers bottom first,
#                                COMP none|gzip|zstd), prints the image id
#   mk_docker OUT STYLE L0...    a docker-save tree (STYLE old|blobs)
#   S                            strata with the test's own state root

S() { "$B/strata" --root "$T/root" "$@"; }

layer_tar() {
	tar -C "$1" --format=posix --xattrs --xattrs-include='*' --numeric-owner \
		--sort=name -cf "$2" .
}

sha() { sha256sum "$1" | cut -c1-64; }

# blob FILE DIR: moves FILE into DIR/blobs/sha256/, prints its digest.
blob() {
	local h
	h=$(sha "$1")
	mkdir -p "$2/blobs/sha256"
	mv "$1" "$2/blobs/sha256/$h"
	echo "$h"
}

# config DIFFID...: the image config JSON for these diff_ids.
config_json() {
	local ids="" d
	for d in "$@"; do ids="$ids${ids:+,}\"sha256:$d\""; done
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin:/usr/bin","A=1"],"Cmd":["/bin/sh"],"WorkingDir":"/root","User":"0","Volumes":{"/data":{}},"Labels":{"l":"v"}},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids"
}

mk_oci() {
	local out=$1 comp=$2 l n=0 diffs=() layers="" h size c m
	shift 2
	mkdir -p "$out"
	for l in "$@"; do
		layer_tar "$l" "$out/l$n.tar"
		diffs+=("$(sha "$out/l$n.tar")")
		case $comp in
		gzip) gzip -n "$out/l$n.tar" && mv "$out/l$n.tar.gz" "$out/l$n.tar" ;;
		zstd) zstd -q --rm "$out/l$n.tar" && mv "$out/l$n.tar.zst" "$out/l$n.tar" ;;
		esac
		size=$(stat -c %s "$out/l$n.tar")
		h=$(blob "$out/l$n.tar" "$out")
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$h\",\"size\":$size}"
		n=$((n + 1))
	done
	config_json "${diffs[@]}" >"$out/config"
	size=$(stat -c %s "$out/config")
	c=$(blob "$out/config" "$out")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
		"$c" "$size" "$layers" >"$out/manifest"
	size=$(stat -c %s "$out/manifest")
	m=$(blob "$out/manifest" "$out")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' \
		"$m" "$size" >"$out/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
	echo "$c"
}

mk_docker() {
	local out=$1 style=$2 l n=0 diffs=() layers="" h c
	shift 2
	mkdir -p "$out"
	for l in "$@"; do
		layer_tar "$l" "$out/l$n.tar"
		h=$(sha "$out/l$n.tar")
		diffs+=("$h")
		if [ "$style" = old ]; then
			mkdir -p "$out/$h"
			mv "$out/l$n.tar" "$out/$h/layer.tar"
			layers="$layers${layers:+,}\"$h/layer.tar\""
		else
			blob "$out/l$n.tar" "$out" >/dev/null
			layers="$layers${layers:+,}\"blobs/sha256/$h\""
		fi
		n=$((n + 1))
	done
	config_json "${diffs[@]}" >"$out/config"
	if [ "$style" = old ]; then
		c=$(sha "$out/config")
		mv "$out/config" "$out/$c.json"
		cfg="$c.json"
	else
		c=$(blob "$out/config" "$out")
		cfg="blobs/sha256/$c"
	fi
	printf '[{"Config":"%s","RepoTags":["docker/img:v1"],"Layers":[%s]}]' "$cfg" "$layers" \
		>"$out/manifest.json"
	echo "$c"
}
