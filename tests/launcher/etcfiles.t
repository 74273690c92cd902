#!/bin/bash
# tests/launcher/etcfiles.t: the container's own /etc/hosts, /etc/hostname
# and /etc/resolv.conf -- generated in its state directory and bound over
# the image's (never written into the layers), --hostname, --add-host and
# their errors, resolv.conf with the host's network and with --network none,
# a user's mount of one of them, and a read-only root.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

hosts_of() {
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
	printf '%s\n' "$@"
}

# Generated files
t_is "$(run -h box cat /etc/hosts)" "$(hosts_of "$(printf '127.0.0.1\tbox')")" \
	"/etc/hosts: localhost, ip6-localhost and the host name"
t_is "$(run -h box cat /etc/hostname)" "box" "/etc/hostname holds --hostname"
t_is "$(run sh -c '[ "$(cat /etc/hostname)" = "$(hostname)" ] && grep -c "	$(hostname)$" /etc/hosts')" \
	"1" "without --hostname: the generated name, in /etc/hostname and /etc/hosts"
t_is "$(run cat /etc/resolv.conf)" "$(cat /etc/resolv.conf 2>/dev/null)" \
	"host network: /etc/resolv.conf is the host's"
t_is "$(run sh -c 'ls -l /etc/hosts /etc/hostname /etc/resolv.conf | cut -c1-10 | sort -u')" \
	"-rw-r--r--" "the three files are 0644"
t_is "$(run sh -c 'echo "10.1.1.1 extra" >>/etc/hosts && tail -1 /etc/hosts')" "10.1.1.1 extra" \
	"root in the container can edit /etc/hosts"

# Where they live
id=$(st create -h box2 --rootfs-layers "$LAYERS" sh -c 'echo 1.2.3.4 x >>/etc/hosts; cat /etc/hostname')
t_is "$(st start -a "$id")" "box2" "create + start: the files are there"
cdir=$ROOT/containers/$id
t_is "$(cat "$cdir/hostname")" "box2" "they are kept in the container's directory"
t_ok "what the container wrote went there" grep -q "1.2.3.4 x" "$cdir/hosts"
t_fail "nothing in the writable layer" test -e "$cdir/upper/etc/hosts" -o -e "$cdir/upper/etc/hostname" \
	-o -e "$cdir/upper/etc/resolv.conf"
t_is "$(find ${LAYERS//:/ } -path '*/etc/hosts' -o -path '*/etc/resolv.conf' | wc -l)" "0" \
	"nothing in the image layers"
t_is "$(cat "${LAYERS%%:*}/../l0/etc/hostname")" "strata-test" "the image's /etc/hostname is untouched"
t_is "$(st start -a "$id")" "box2" "a second start"
t_is "$(grep -c "1.2.3.4 x" "$cdir/hosts")" "1" "makes /etc/hosts anew (one line appended, not two)"
st rm "$id" >/dev/null

# An image whose resolv.conf is a symlink leading nowhere (a systemd image):
# the container's file is there and nothing is made where the link points.
mkdir -p "$T/sym/etc"
ln -s ../run/systemd/resolve/stub-resolv.conf "$T/sym/etc/resolv.conf"
id=$(st create --rootfs-layers "$T/sym:$LAYERS" cat /etc/resolv.conf)
t_is "$(st start -a "$id")" "$(cat /etc/resolv.conf 2>/dev/null)" \
	"an image's resolv.conf symlink is covered, not followed"
t_fail "no directory made for the link's target" test -e "$ROOT/containers/$id/upper/run/systemd"
st rm "$id" >/dev/null

# --add-host
t_is "$(run -h box --add-host db:10.0.0.5 --add-host cache=10.0.0.6 --add-host v6:fd00::1 \
	--add-host 'b6=[fd00::2]' cat /etc/hosts)" \
	"$(hosts_of "$(printf '10.0.0.5\tdb\n10.0.0.6\tcache\nfd00::1\tv6\nfd00::2\tb6\n127.0.0.1\tbox')")" \
	"--add-host: name:ip, name=ip, IPv6 with and without brackets"
t_is "$(run -h box --add-host box:10.9.9.9 grep box /etc/hosts)" "$(printf '10.9.9.9\tbox')" \
	"--add-host of the host name replaces its line"
t_is "$(run --add-host gw:host-gateway grep gw /etc/hosts)" "$(printf '127.0.0.1\tgw')" \
	"host-gateway with the host's network: the loopback"
id=$(st create --add-host db:10.0.0.5 --rootfs-layers "$LAYERS" grep -w db /etc/hosts)
t_is "$(st start -a "$id")" "$(printf '10.0.0.5\tdb')" "create records --add-host for start"
t_ok "in config.json as ExtraHosts" grep -q '"db:10.0.0.5"' "$ROOT/containers/$id/config.json"
st rm "$id" >/dev/null
for bad in nocolon :1.2.3.4 'a b:1.2.3.4' db:1.2.3 db:foo 'db:[1.2.3.4'; do
	t_is "$(rc run --add-host "$bad" true)" "2" "--add-host '$bad' is a usage error"
done
t_ok "with a clear message" grep -q 'invalid IP address in add-host: "1.2.3"' \
	<(run --add-host db:1.2.3 true 2>&1)
t_ok "and for a bad format" grep -q 'bad format for add-host: "nocolon"' \
	<(run --add-host nocolon true 2>&1)
t_is "$(rc run --network none --add-host gw:host-gateway true)" "2" \
	"host-gateway without the host's network: an error"

# --hostname
t_is "$(run --hostname web-1.example hostname)" "web-1.example" "--hostname with dots and dashes"
t_is "$(run -h "$(printf 'a%.0s' $(seq 64))" hostname | wc -c)" "65" "a 64-byte host name"
for bad in "$(printf 'a%.0s' $(seq 65))" "two words" "-lead" "a/b" "a#b"; do
	t_is "$(rc run -h "$bad" true)" "2" "--hostname '$bad' is a usage error"
done
t_ok "with a clear message" grep -q 'invalid host name "two words"' <(run -h "two words" true 2>&1)

# resolv.conf in a network namespace of its own (podman's rules), with the
# host's resolv.conf replaced in a private mount namespace.
# with_host_resolv FILE CMD...
with_host_resolv() {
	unshare --mount --propagation private sh -c \
		'mount -t tmpfs tmpfs /run && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
		sh "$@"
}
printf 'search example.com\nnameserver 127.0.0.1\nnameserver 10.0.0.53\nnameserver ::1\nnameserver fd00::53\noptions ndots:2\n' \
	>"$T/r1"
if with_host_resolv "$T/r1" true 2>/dev/null; then
	t_is "$(with_host_resolv "$T/r1" "$S" --root "$ROOT" run --rootfs-layers "$LAYERS" --network none \
		cat /etc/resolv.conf)" \
		"$(printf 'search example.com\nnameserver 10.0.0.53\noptions ndots:2')" \
		"--network none: loopback and IPv6 nameservers are dropped"
	t_is "$(with_host_resolv "$T/r1" "$S" --root "$ROOT" run --rootfs-layers "$LAYERS" cat /etc/resolv.conf)" \
		"$(cat "$T/r1")" "host network: the host's file as it is, loopback included"
	printf 'nameserver 127.0.0.2\n' >"$T/r2"
	t_is "$(with_host_resolv "$T/r2" "$S" --root "$ROOT" run --rootfs-layers "$LAYERS" --network none \
		cat /etc/resolv.conf)" "$(printf 'nameserver 8.8.8.8\nnameserver 8.8.4.4')" \
		"--network none, no nameserver left: Google's"
	printf 'nameserver 127.0.0.53\noptions edns0\n' >"$T/r3"
	t_is "$(with_host_resolv "$T/r3" sh -c 'mkdir -p /run/systemd/resolve &&
		echo "nameserver 192.0.2.1" >/run/systemd/resolve/resolv.conf && exec "$@"' sh \
		"$S" --root "$ROOT" run --rootfs-layers "$LAYERS" --network none cat /etc/resolv.conf)" \
		"nameserver 192.0.2.1" "--network none, systemd-resolved's stub: its upstream servers"
else
	for d in "loopback and IPv6 dropped" "host's file as it is" "Google's" "systemd-resolved"; do
		t_skip "resolv.conf: $d" "cannot replace /etc/resolv.conf in a mount namespace"
	done
fi

# The user's mounts win
printf 'mine\n' >"$T/myhosts"
t_is "$(run -v "$T/myhosts:/etc/hosts:ro" cat /etc/hosts)" "mine" "a bind of /etc/hosts wins"
t_is "$(run --mount "type=bind,src=$T/myhosts,dst=/etc/resolv.conf" -h box \
	sh -c 'cat /etc/resolv.conf /etc/hostname')" "$(printf 'mine\nbox')" \
	"--mount of /etc/resolv.conf wins; the others are still generated"
mkdir -p "$T/etcdir"
printf 'host file\n' >"$T/etcdir/hosts"
t_is "$(run -h box -v "$T/etcdir:/etc" sh -c 'grep -c box /etc/hosts; ls /etc')" "$(printf '1\nhosts')" \
	"a bind of /etc: its hosts is covered, nothing else is created in it"
t_is "$(cat "$T/etcdir/hosts"; ls "$T/etcdir")" "$(printf 'host file\nhosts')" \
	"and the host's files are untouched"

# A read-only root
t_is "$(run --read-only -h ro cat /etc/hostname)" "ro" "--read-only: the files are there"
t_is "$(run --read-only sh -c 'echo x >>/etc/hosts' 2>&1)" \
	"sh: can't create /etc/hosts: Read-only file system" "--read-only: and read-only, as with Docker"
t_done
