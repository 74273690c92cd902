#!/bin/bash
# tests/rootless.sh TEST.t: runs a shell test as an unprivileged user inside
# a new user and mount namespace where that user is mapped to root, the way
# rootless container tools run strata-fs.  Exits 77 when the machine cannot.
set -u
t=$1
user=strata-test
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP rootless runner needs root to create $user"; exit 77; }
if ! id "$user" >/dev/null 2>&1; then
	useradd --system --create-home --home-dir /var/lib/$user --shell /bin/bash "$user" 2>/dev/null ||
		{ echo "1..0 # SKIP cannot create user $user"; exit 77; }
fi
# Distributions ship /dev/fuse world-usable; some minimal machines do not.
[ -c /dev/fuse ] && chmod 0666 /dev/fuse
uid=$(id -u "$user")
tmp=$(mktemp -d /tmp/strata-rootless.XXXXXX)
chown "$user" "$tmp"
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$B" 2>/dev/null
export TMPDIR=$tmp
# setpriv drops to the user with no capabilities; unshare then makes a user
# namespace mapping it to root and a private mount namespace.
setpriv --reuid="$uid" --regid="$(id -g "$user")" --init-groups --inh-caps=-all \
	env HOME=/var/lib/$user TMPDIR="$tmp" B="$B" STRATA_SRC="$STRATA_SRC" STRATA_FS="$STRATA_FS" \
	STRATA_ROOTLESS=1 PATH="$PATH" \
	unshare --user --map-root-user --mount --propagation private bash "$t"
rc=$?
rm -rf "$tmp"
exit $rc
