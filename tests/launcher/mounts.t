#!/bin/bash
# tests/launcher/mounts.t: the container's mounts -- bind, named and
# anonymous volumes, tmpfs, read-only mounts (recursively) and root, /proc
# /dev /sys and the masked paths, and symlinks of the image that try to
# send a mount outside the container.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"

mkdir -p "$T/host"
echo "from the host" >"$T/host/h.txt"
t_is "$(run -v "$T/host:/var/lib/data" ls /var/lib/data)" "h.txt" \
	"a bind mount shows host files and conceals the image's"
t_is "$(run -v "$T/host:/srv/x" sh -c 'echo new >/srv/x/w.txt' && cat "$T/host/w.txt")" "new" \
	"writes through a bind mount reach the host"
t_is "$(run -v "$T/host:/srv/x:ro" sh -c 'echo no >/srv/x/ro.txt' 2>&1)" \
	"sh: can't create /srv/x/ro.txt: Read-only file system" "a :ro bind refuses writes"
t_fail "nothing was written" test -e "$T/host/ro.txt"
t_is "$(run --mount "type=bind,src=$T/host/h.txt,dst=/etc/hostname,readonly" cat /etc/hostname)" \
	"from the host" "--mount binds a single file"

# A read-only bind is read-only all the way down, as with Docker 25:
# mount_setattr(AT_RECURSIVE) over what the source has mounted below it.
mkdir -p "$T/rsrc/sub"
echo "$T/rsrc/sub" >>"$T/.mounts"
if mount -t tmpfs tmpfs "$T/rsrc/sub" 2>/dev/null; then
	echo in >"$T/rsrc/sub/f"
	t_is "$(run -v "$T/rsrc:/r:ro" sh -c 'cat /r/sub/f; touch /r/sub/x' 2>&1)" \
		"$(printf 'in\ntouch: /r/sub/x: Read-only file system')" \
		"-v :ro of a tree with a submount: the submount is read-only too"
	t_is "$(run --mount "type=bind,src=$T/rsrc,dst=/r,readonly" \
		sh -c 'touch /r/sub/x; grep -c " /r/sub ro," /proc/self/mountinfo' 2>&1)" \
		"$(printf 'touch: /r/sub/x: Read-only file system\n1')" "--mount readonly: the same"
	t_is "$(run -v "$T/rsrc:/r" sh -c 'touch /r/sub/x && echo ok')" "ok" \
		"a rw bind leaves its submount writable"
	t_ok "the host's submount stays writable" touch "$T/rsrc/sub/y"
else
	t_skip "read-only submounts" "cannot mount a tmpfs here"
fi

t_is "$(run -v data:/var/lib/data ls /var/lib/data)" "$(printf 'nested\nrecords.csv\nseed.txt')" \
	"a new named volume is populated from the image"
run -v data:/var/lib/data sh -c 'echo kept >/var/lib/data/mine'
t_is "$(run -v data:/srv/d cat /srv/d/mine)" "kept" "a named volume keeps its data for the next container"
t_is "$(run -v data:/srv/d:ro sh -c 'touch /srv/d/x' 2>&1)" "touch: /srv/d/x: Read-only file system" \
	"a :ro volume refuses writes"
t_is "$(run --tmpfs /scratch:size=1m sh -c 'grep " /scratch " /proc/mounts | cut -d" " -f1,3; ls -ld /scratch | cut -c1-10')" \
	"$(printf 'tmpfs tmpfs\ndrwxrwxrwt')" "--tmpfs mounts a 1777 tmpfs"
t_is "$(run --mount type=tmpfs,dst=/ro,readonly sh -c 'touch /ro/x' 2>&1)" \
	"touch: /ro/x: Read-only file system" "a read-only tmpfs refuses writes"
t_is "$(run --read-only sh -c 'touch /x' 2>&1)" "touch: /x: Read-only file system" \
	"--read-only: the root refuses writes"
t_is "$(run --read-only --tmpfs /tmp sh -c 'touch /tmp/x && echo ok')" "ok" \
	"--read-only with a tmpfs: that mount is writable"
t_is "$(rc run --read-only -v "$T/host:/h" touch /h/rw)" "0" "--read-only keeps a rw bind writable"
t_is "$(run -v "$T/host:/a" -v "$T/host:/a/b/c" sh -c 'ls /a/b/c/h.txt')" "/a/b/c/h.txt" \
	"nested mounts are mounted parent first"

# /proc, /dev, /sys
t_is "$(run sh -c 'ls /dev | sort | tr "\n" " "')" \
	"core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " "/dev holds Docker's set" ||
	true
t_is "$(run sh -c 'echo 1 >/proc/sys/kernel/domainname' 2>&1)" \
	"sh: can't create /proc/sys/kernel/domainname: Read-only file system" "/proc/sys is read-only"
t_is "$(run sh -c 'wc -c </proc/timer_list')" "0" "/proc/timer_list is masked"
t_is "$(run sh -c 'ls /sys/firmware | wc -l')" "0" "/sys/firmware is masked"
t_is "$(run sh -c 'touch /sys/x' 2>&1)" "touch: /sys/x: Read-only file system" "/sys is read-only"
t_is "$(run sh -c 'head -c 4 /dev/zero | od -An -tx1 | tr -d " "')" "00000000" "/dev/zero works"
t_is "$(run sh -c 'ls -ld /dev/shm | cut -c1-10')" "drwxrwxrwt" "/dev/shm is a 1777 tmpfs"

# Symlinks in the image that point out of the container.
mkdir -p "$T/outside" "$T/evil/l3/etc"
ln -s "$T/outside" "$T/evil/l3/abs"
ln -s ../../../../../../../../../..$T/outside "$T/evil/l3/rel"
ln -s / "$T/evil/l3/toroot"
EL="$T/evil/l3:$LAYERS"
t_is "$(rc st run --rootfs-layers "$EL" -v "$T/host:/abs/x" true)" "125" \
	"an absolute symlink to a host path: the mount fails"
t_ok "a ../.. symlink: fails with a clean message" grep -q \
	": mount /rel/x: /rel/x: /rel is a symlink that leads outside the container or nowhere" \
	<(st run --rootfs-layers "$EL" -v "$T/host:/rel/x" true 2>&1)
t_is "$(ls -A "$T/outside")" "" "nothing was created or mounted outside"
t_fail "no mount outside" grep -q "$T/outside" /proc/self/mountinfo
# A name of this run's own, so that a /tmp/in of someone else's is no failure.
in=in-${T##*/}
t_is "$(st run --rootfs-layers "$EL" -v "$T/host:/toroot/tmp/$in" sh -c "ls /tmp/$in/h.txt")" "/tmp/$in/h.txt" \
	"a symlink to / resolves to the container's root"
t_fail "the host's /tmp/$in was not touched" test -e "/tmp/$in"
t_done
