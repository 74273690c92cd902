#!/bin/bash
# tests/image/rm.t: `image rm` as Docker's rmi -- NAME[:TAG] of an image
# with other names only untags it (the image, its layers and its other names
# stay), its last name or an id removes the image and the layers no other
# image uses, an id of an image with several names is refused unless -f, a
# container's image is never removed, bad references fail clearly; `image
# ls` shows a row per name; an rm killed at any write leaves the store
# either as it was or as the rm leaves it.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/imglib.sh"
t_need tar sha256sum

mkimage "$T/img" oci >/dev/null || t_skip_all "cannot build the test image"
REF=$(mkimage --expected "$T/img" oci)
id=$(mk_oci "$T/oci" none "$T/img/oci/l0" "$T/img/oci/l1" "$T/img/oci/l2")
mkdir -p "$T/extra/etc" && echo extra >"$T/extra/etc/extra"
oid=$(mk_oci "$T/oci2" none "$T/img/oci/l0" "$T/extra")

nlayers() { ls "$T/root/layers/sha256" | wc -l; }
nimages() { ls "$T/root/images" | grep -cE '^[0-9a-f]{64}$'; }
tags() { S image inspect "$1" | sed -n '/"RepoTags"/,/\]/p' | grep -o '"[^"]*:[^"]*"' | tr -d '"'; }
two_names() { S image import -q --name one:1 "$T/oci" >/dev/null && S image import -q --name two:1 "$T/oci" >/dev/null; }

# ---- untag one of two names ----
t_ok "import as one:1" S image import -q --name one:1 "$T/oci"
t_ok "import again as two:1" S image import -q --name two:1 "$T/oci"
t_ok "import a second image sharing the bottom layer" S image import -q --name other "$T/oci2"
t_is "$(nlayers)" 4 "four layers on disk"
t_is "$(tags "$id")" "$(printf 'one:1\ntwo:1')" "inspect shows both RepoTags"
t_is "$(S image ls | grep -c "^[a-z].* ${id:0:12} ")" 2 "image ls shows a row per name"
t_is "$(S image ls | awk '{print $1}' | grep -c '^\(one\|two\):1$')" 2 "both names listed"
t_is "$(S image ls -q | grep -c "${id:0:12}")" 1 "image ls -q shows the id once"

t_is "$(S image rm one:1)" "Untagged: one:1" "rm one:1: Untagged, no Deleted"
t_is "$(nimages)" 2 "the image stays"
t_is "$(nlayers)" 4 "its layers stay"
t_fail "one:1 is gone" S image inspect one:1
t_is "$(tags two:1)" "two:1" "two:1 inspects, alone in RepoTags"
t_is "$(S image inspect two:1 | grep -c "\"Id\": \"sha256:$id\"")" 1 "two:1 is the same image"
t_is "$(S image ls | grep -c "${id:0:12}")" 1 "image ls: one row left"
m=$T/mnt && mkdir -p "$m" && echo "$m" >>"$T/.mounts"
if t_ok "two:1 mounts" S mount two:1 "$m"; then
	t_is "$(tree_dump "$m")" "$(tree_dump "$REF")" "two:1 shows the whole image"
	t_ok "umount" S umount "$m"
fi
if [ -c /dev/fuse ]; then
	t_is "$(S run --rm two:1 cat /top.txt 2>&1)" "$(cat "$REF/top.txt")" "two:1 runs"
else
	t_skip "two:1 runs" "no /dev/fuse"
fi

# ---- the last name ----
t_is "$(S image rm two:1)" "$(printf 'Untagged: two:1\nDeleted: sha256:%s' "$id")" \
	"rm of the last name: Untagged and Deleted"
t_fail "two:1 is gone" S image inspect two:1
t_fail "so is the id" S image inspect "$id"
t_is "$(nimages)" 1 "only the other image is left"
t_is "$(nlayers)" 2 "the layers only it used are removed, the shared one stays"
if t_ok "the other image still mounts" S mount other "$m"; then
	t_is "$(cat "$m/etc/extra")" extra "its top layer is there"
	t_ok "and its shared bottom layer" cmp "$m/etc/passwd" "$T/img/oci/l0/etc/passwd"
	t_ok "umount" S umount "$m"
fi

# A name without a tag is NAME:latest.
S image import -q --name plain "$T/oci" >/dev/null
S image import -q --name plain2 "$T/oci" >/dev/null
t_is "$(S image rm plain)" "Untagged: plain:latest" "rm NAME untags NAME:latest"
t_is "$(S image rm plain2:latest)" "$(printf 'Untagged: plain2:latest\nDeleted: sha256:%s' "$id")" \
	"rm NAME:latest of the last name deletes"

# ---- by id ----
two_names
for ref in "${id:0:12}" "$id" "sha256:$id"; do
	t_fail "rm $ref (two names) is refused" S image rm "$ref"
	S image rm "$ref" >"$T/out" 2>"$T/err"
	t_ok "rm $ref: Docker's conflict message" grep -q \
		"conflict: unable to delete ${id:0:12} (must be forced) - image is referenced in multiple repositories" \
		"$T/err"
	t_is "$(cat "$T/out")" "" "rm $ref: nothing untagged"
done
t_ok "the message names the names" grep -q 'one:1, two:1' "$T/err"
t_is "$(tags "$id")" "$(printf 'one:1\ntwo:1')" "both names kept"
t_is "$(nlayers)" 4 "all layers kept"
t_is "$(S image rm -f "${id:0:12}")" \
	"$(printf 'Untagged: one:1\nUntagged: two:1\nDeleted: sha256:%s' "$id")" \
	"rm -f ID untags both and deletes"
t_is "$(nimages)" 1 "the image is gone"
t_is "$(nlayers)" 2 "with its own layers"
S image import -q --name solo:1 "$T/oci" >/dev/null
t_is "$(S image rm "${id:0:12}")" "$(printf 'Untagged: solo:1\nDeleted: sha256:%s' "$id")" \
	"rm ID of an image with one name deletes without -f"
S image import -q "$T/oci" >/dev/null
t_is "$(S image rm --force "$id")" "Deleted: sha256:$id" "rm ID of an image without names"
two_names
t_is "$(S image rm one:1 two:1)" \
	"$(printf 'Untagged: one:1\nUntagged: two:1\nDeleted: sha256:%s' "$id")" \
	"rm of both names in one command"
t_is "$(nimages)" 1 "deletes the image"

# ---- bad references ----
t_fail "rm of an unknown name fails" S image rm nosuch:1
t_is "$(S image rm nosuch:1 2>&1)" "strata: no such image: nosuch:1" "and says so"
t_ok "rm -f of an unknown name succeeds" S image rm -f nosuch:1
t_is "$(S image rm -f nosuch:1 2>&1)" "" "silently"
t_fail "rm of an invalid reference fails" S image rm 'Bad Name!'
t_is "$(S image rm -f 'Bad Name!' 2>&1)" \
	'strata: remove image "Bad Name!": invalid reference format' "with a clear message, -f or not"
t_fail "rm with no IMAGE is a usage error" S image rm
t_fail "rm with an unknown option fails" S image rm --bogus other
t_is "$(nimages)" 1 "bad references change nothing"
t_is "$(nlayers)" 2 "no layer either"
S image rm other nosuch:2 >"$T/out" 2>"$T/err"
t_is "$?" 1 "rm of several, one unknown: exit status 1"
t_is "$(cat "$T/out")" "$(printf 'Untagged: other:latest\nDeleted: sha256:%s' "$oid")" \
	"the known one is removed"
t_is "$(nlayers)" 0 "no layer left"

# ---- a container's image ----
two_names
mkdir -p "$T/root/containers/c1"
echo "{\"ImageID\": \"sha256:$id\"}" >"$T/root/containers/c1/config.json"
t_is "$(S image rm one:1)" "Untagged: one:1" "untagging a container's image is allowed"
t_fail "removing its last name is refused" S image rm two:1
t_ok "naming the container" sh -c "'$B/strata' --root '$T/root' image rm two:1 2>&1 | grep -q 'in use by container(s): c1'"
t_fail "rm -f ID is refused too" S image rm -f "$id"
t_is "$(tags "$id")" "two:1" "the name is kept"
t_is "$(nlayers)" 3 "and the layers"
rm -rf "$T/root/containers/c1"
t_is "$(S image rm two:1)" "$(printf 'Untagged: two:1\nDeleted: sha256:%s' "$id")" \
	"without the container the last name deletes"

# ---- killed part way ----
KA=$HELPERS/killat
mkdir -p "$T/k0/etc" "$T/k1/etc" && echo a >"$T/k0/etc/a" && echo b >"$T/k1/etc/b"
kid=$(mk_oci "$T/koci" none "$T/k0" "$T/k1")
knames() { S image ls --format json | grep -o '"Names":\[[^]]*\]'; }
# leftovers: what a finished writer would have removed.
leftovers() {
	local d
	for d in "$T/root/images" "$T/root/layers/sha256" "$T/root/layers/tar"; do
		ls -A "$d" | grep '^\.' | grep -vx '\.lock' | sed "s|^|$d/|"
	done
	return 0
}
if [ -x "$KA" ] && "$KA" true 2>/dev/null; then
	bad=""
	for verb in "one:1" "-f $kid"; do
		S image import -q --name one:1 "$T/koci" >/dev/null
		S image import -q --name two:1 "$T/koci" >/dev/null
		"$KA" -l "$T/klog" "$B/strata" --root "$T/root" image rm $verb >/dev/null
		points=$(grep -v ' open$' "$T/klog" | cut -d' ' -f1)
		S image rm -f "$kid" >/dev/null 2>&1
		n=0
		for k in $points; do
			n=$((n + 1))
			S image import -q --name one:1 "$T/koci" >/dev/null
			S image import -q --name two:1 "$T/koci" >/dev/null
			"$KA" -n "$k" "$B/strata" --root "$T/root" image rm $verb >/dev/null 2>&1
			got=$(knames)
			case "$verb:$got" in
			"one:1:"'"Names":["one:1","two:1"]' | "one:1:"'"Names":["two:1"]') ;;
			"-f $kid:"'"Names":["one:1","two:1"]' | "-f $kid:") ;;
			*) bad="$bad; rm $verb killed at $k: names $got" ;;
			esac
			if [ -n "$got" ]; then
				[ "$(nlayers)" = 2 ] || bad="$bad; rm $verb killed at $k: $(nlayers) layers"
				S image inspect two:1 >/dev/null 2>&1 ||
					bad="$bad; rm $verb killed at $k: two:1 does not inspect"
			fi
			S image rm -f "$kid" >/dev/null 2>&1
			S image prune >/dev/null 2>&1
			[ "$(nlayers):$(nimages):$(leftovers)" = "0:0:" ] ||
				bad="$bad; rm $verb killed at $k: not clean after rm -f and prune"
		done
		t_ok "rm ${verb/$kid/ID} killed at each of its $n writes: store consistent" test -z "$bad"
		[ -z "$bad" ] || t_diag "${bad#; }"
		bad=""
	done
else
	t_skip "rm killed part way" "killat is not built or ptrace is not allowed"
fi
t_done
