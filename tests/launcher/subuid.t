#!/bin/bash
# tests/launcher/subuid.t: a rootless container of a user with subordinate
# ids (/etc/subuid, /etc/subgid): newuidmap/newgidmap map the user to root
# and the range to 1..N, so `-u 1000` and an image User work, and what uid
# 1000 writes lands on disk owned by the mapped host id (start + 999) -- in
# the writable layer and in volumes -- and reads back as 1000 from a new
# mount and from another container.  Creates its own user and range and
# removes both on exit.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"
. "$(dirname "$0")/../image/imglib.sh"

read -r a b c </proc/self/uid_map
[ "$a $b $c" = "0 0 4294967295" ] || t_skip_all "needs real root (creates a user)"
for p in newuidmap newgidmap setpriv useradd userdel; do
	command -v "$p" >/dev/null || t_skip_all "$p is missing"
done

U=strata-subid
START=427680 # 0x68690: far from the ranges useradd hands out (100000+)
COUNT=65536
MAPPED=$((START + 999)) # uid 1000 in the container
subid_cleanup() {
	# Containers first (their processes run as the user), then the ids.
	lch_cleanup
	sed -i "/^$U:/d" /etc/subuid /etc/subgid 2>/dev/null
	userdel "$U" >/dev/null 2>&1
	return 0
}
trap 'subid_cleanup; _t_cleanup' EXIT
userdel "$U" >/dev/null 2>&1 # left by a run that was killed
sed -i "/^$U:/d" /etc/subuid /etc/subgid 2>/dev/null
useradd --system --no-create-home --home-dir "$T/home" --shell /bin/sh "$U" ||
	t_skip_all "cannot create user $U"
echo "$U:$START:$COUNT" >>/etc/subuid
echo "$U:$START:$COUNT" >>/etc/subgid
uid=$(id -u "$U") gid=$(id -g "$U")
chmod 0666 /dev/fuse
chmod 0755 "$T" "$B"
mkdir -p "$T/home"
chown "$U:" "$T/home"
ROOT=$T/home/state # lch.sh's cleanup removes the user's containers too

# as_user CMD...: CMD as the user, no capabilities, no user namespace of
# ours (strata makes one with newuidmap).
as_user() {
	setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all \
		env -i HOME="$T/home" PATH="$PATH" STRATA_FS="$STRATA_FS" "$@"
}
ust() { as_user "$S" --root "$ROOT" "$@"; }

# An image whose User is app (1000:1000 in its /etc/passwd), imported by
# the user.
config_json() {
	local ids="" d
	for d in "$@"; do ids="$ids${ids:+,}\"sha256:$d\""; done
	printf '{"architecture":"amd64","os":"linux","config":{"User":"app","Cmd":["id"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids"
}
mkimage "$T/img" oci >/dev/null || t_skip_all "cannot build the test image"
mk_oci "$T/oci" none "$T/img/oci/l0" "$T/img/oci/l1" "$T/img/oci/l2" >/dev/null
chmod -R a+rX "$T/oci"
t_ok "the user imports the image" ust image import -q --name subid:1 "$T/oci"

t_is "$(ust run --rm subid:1 cat /proc/self/uid_map | awk '{print $1, $2, $3}')" \
	"$(printf '0 %s 1\n1 %s %s' "$uid" "$START" "$COUNT")" \
	"the container's uid map: the user as root, the subordinate range as 1..N"
t_is "$(ust run --rm subid:1 awk '{print $1, $2, $3}' /proc/self/gid_map)" \
	"$(printf '0 %s 1\n1 %s %s' "$gid" "$START" "$COUNT")" "and the gid map"
t_is "$(ust run --rm subid:1)" "uid=1000(app) gid=1000(app) groups=1000(app)" \
	"the image's User app runs as 1000, with its groups"
t_is "$(ust run --rm -u 1000 subid:1 id -u)" "1000" "-u 1000 works"
t_is "$(ust run --rm -u 0 subid:1 id -u)" "0" "-u 0 is the user itself"

# The writable layer
ust run -d --name w1 -u 1000 subid:1 sleep 1000 >/dev/null
id_w=$(ust ps --format json | jq -r .ID)
t_is "$(ust exec w1 sh -c 'echo hi >/tmp/f; mkdir /tmp/d; ln -s f /tmp/l; stat -c %u:%g /tmp/f /tmp/d')" \
	"$(printf '1000:1000\n1000:1000')" "files made by uid 1000 are 1000:1000 in the container"
upper=$ROOT/containers/$id_w/upper
t_is "$(stat -c %u:%g "$upper/tmp/f" "$upper/tmp/d")" "$(printf '%s\n' "$MAPPED:$MAPPED" "$MAPPED:$MAPPED")" \
	"on disk they belong to the mapped host id ($MAPPED)"
t_is "$(stat -c %u:%g "$upper/tmp/l")" "$MAPPED:$MAPPED" "a symlink too"
t_is "$(stat -c %u "$upper/tmp")" "$uid" "a copied-up directory of root's is the user's own uid"
ust exec -u 0 w1 sh -c 'touch /etc/os-release; chown 1000:1000 /etc/os-release' >/dev/null
t_is "$(stat -c %u:%g "$upper/etc/os-release")" "$MAPPED:$MAPPED" "chown to 1000 in the container: the mapped id on disk"
ust stop -t 1 w1 >/dev/null
ust start w1 >/dev/null
t_is "$(ust exec w1 stat -c %u:%g /tmp/f /etc/os-release)" "$(printf '1000:1000\n1000:1000')" \
	"after stop and start (a new strata-fs) they read back as 1000:1000"
t_is "$(ust exec w1 sh -c 'echo more >>/tmp/f && cat /tmp/f')" "$(printf 'hi\nmore')" \
	"and uid 1000 still writes them"
t_is "$(ust run --rm -u 0 -v "$upper/tmp:/other:ro" subid:1 stat -c %u:%g /other/f)" "1000:1000" \
	"another container sees them as 1000:1000 too"

# Volumes
ust run --rm -u 0 -v vol:/data subid:1 sh -c 'touch /data/.keep; chown 1000:1000 /data'
ust run --rm -u 1000 -v vol:/data subid:1 sh -c 'echo v >/data/v'
t_is "$(stat -c %u:%g "$ROOT/volumes/vol/_data/v")" "$MAPPED:$MAPPED" "a volume file of uid 1000: the mapped id on disk"
t_is "$(ust run --rm -v vol:/data subid:1 stat -c %u:%g /data/v)" "1000:1000" "and 1000:1000 in the next container"

# rm, as the user, removes files owned by the range.
t_is "$(ust rm -f w1)" "w1" "rm -f of the container"
t_fail "its writable layer is gone" test -e "$ROOT/containers/$id_w"
t_is "$(ust volume rm vol 2>/dev/null)" "vol" "volume rm"
# Known gap: `volume rm` deletes outside the user namespace, where files of
# the subordinate range are not the user's to delete (volumes/store.c).
left=$(find "$ROOT" -user "$MAPPED" | head -3)
_t_n=$((_t_n + 1))
if [ -z "$left" ]; then echo "ok $_t_n - nothing of the range is left in the state"
else echo "not ok $_t_n - nothing of the range is left in the state # TODO volume rm of range-owned files"; fi
t_done
