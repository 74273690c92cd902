#!/bin/bash
# strata-fs run by a plain unprivileged user, without a user namespace: it
# mounts through fusermount3, copies up, whites out and renames with the
# user's own permissions (user.overlay.* xattrs), and unmounts.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || t_skip_all "needs root to create the test user"
[ "$STRATA_ROOTLESS" = 1 ] && t_skip_all "already rootless"
t_need fusermount3 setpriv
user=strata-test
id "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/$user \
	--shell /bin/bash "$user" 2>/dev/null || t_skip_all "cannot create user $user"
chmod 0666 /dev/fuse 2>/dev/null
chmod 0755 "$T"
D=$T/u
mkdir -p "$D/l/dir" "$D/up" "$D/w" "$D/m"
echo lower >"$D/l/file"
echo x >"$D/l/dir/x"
chown -R "$user" "$D"
as_user() {
	setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups env -i PATH="$PATH" \
		bash -c "cd / && $1"
}
t_ok "mounts as a plain user" as_user "'$STRATA_FS' -o lowerdir=$D/l,upperdir=$D/up,workdir=$D/w $D/m"
echo "$D/m" >>"$T/.mounts"
t_ok "append to a lower file" as_user "echo more >>$D/m/file"
# (only the user may look: a user's FUSE mount excludes others, root too)
t_is "$(as_user "cat $D/m/file")" "lower
more" "the copy-up holds both"
t_is "$(cat "$D/l/file")" "lower" "the lower is untouched"
t_ok "rm -r of a lower dir and mkdir over it" as_user "rm -r $D/m/dir && mkdir $D/m/dir && mv $D/m/file $D/m/file2"
t_is "$(stat -c %F "$D/up/dir" "$D/up/file" 2>&1)" "directory
character special file" "upper: an opaque dir and a whiteout"
t_is "$(getfattr --only-values -n user.overlay.opaque "$D/up/dir" 2>/dev/null)" "y" \
	"user.overlay.opaque marks the new dir"
t_is "$(as_user "ls -A $D/m/dir")" "" "the new dir is empty"
t_ok "unmount as the user" as_user "fusermount3 -u $D/m"
t_done
