#!/bin/sh
# Installs every build and test dependency from Debian's registry.
# Idempotent and silent when everything is already present.
set -e
PKGS="build-essential pkg-config clang libfuse3-dev fuse3 libxxhash-dev uthash-dev liburing-dev
libarchive-dev libssl-dev libjansson-dev fuse-overlayfs unionfs-fuse fio
busybox-static valgrind attr acl uidmap util-linux e2fsprogs xfsprogs
libclang-rt-14-dev gnuplot-nox python3 kmod jq passwd"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root: sh scripts/deps.sh)" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $missing >/dev/null
