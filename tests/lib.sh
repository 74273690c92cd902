# tests/lib.sh: sourced by every shell test.  TAP output, a private
# temporary directory that is always cleaned up (mounts undone, daemons
# killed), and helpers to mount strata-fs and kernel overlayfs side by side.
#
#   t_ok DESC CMD...        passes when CMD exits 0
#   t_is GOT WANT DESC      passes when the strings are equal (shows a diff)
#   t_fail DESC CMD...      passes when CMD exits non-zero
#   t_skip DESC REASON      records a skipped point
#   t_skip_all REASON       skips the whole file (exit 77)
#   t_done                  prints the plan and exits with the right status
#   T                       the test's temporary directory
#   sfs_mount MNT OPTS      strata-fs -o OPTS MNT (recorded for cleanup)
#   kovl_mount MNT OPTS     kernel overlayfs with the same -o OPTS
#                           (userxattr added when rootless)
#   t_umount MNT            unmounts either kind
#   mkimage DIR [FORMAT]    builds the built-in image's layers in DIR
#                           (FORMAT ovl or oci; prints the lowerdir= value)
#   tree_dump DIR           a canonical listing: path, type, mode, owner,
#                           size, link target, content hash
#   STRATA_ROOTLESS         1 when running rootless (in a user namespace)

set -u
: "${B:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}"
: "${STRATA_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${STRATA_FS:=$B/strata-fs}"
: "${STRATA_ROOTLESS:=0}"
HELPERS=$B/tests/helpers
_t_n=0
_t_failed=0
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-t.XXXXXX")
: >"$T/.mounts"

_t_cleanup() {
	local m
	if [ -f "$T/.mounts" ]; then
		tac "$T/.mounts" | while read -r m; do
			mountpoint -q "$m" 2>/dev/null || continue
			umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		done
	fi
	if [ -f "$T/.pids" ]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$T/.pids"
	fi
	rm -rf "$T" 2>/dev/null
}
trap _t_cleanup EXIT
trap 'exit 130' INT TERM

t_ok() {
	local desc=$1
	shift
	_t_n=$((_t_n + 1))
	if "$@" >"$T/.out" 2>&1; then
		echo "ok $_t_n - $desc"
	else
		echo "not ok $_t_n - $desc"
		echo "#   command: $*"
		sed 's/^/#   /' "$T/.out" | head -30
		_t_failed=$((_t_failed + 1))
	fi
}

t_fail() {
	local desc=$1
	shift
	_t_n=$((_t_n + 1))
	if "$@" >"$T/.out" 2>&1; then
		echo "not ok $_t_n - $desc"
		echo "#   command succeeded but should have failed: $*"
		_t_failed=$((_t_failed + 1))
	else
		echo "ok $_t_n - $desc"
	fi
}

t_is() {
	_t_n=$((_t_n + 1))
	if [ "$1" == "$2" ]; then
		echo "ok $_t_n - $3"
	else
		echo "not ok $_t_n - $3"
		diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$1") | sed 's/^/#   /' | head -40
		_t_failed=$((_t_failed + 1))
	fi
}

t_skip() {
	_t_n=$((_t_n + 1))
	echo "ok $_t_n - $1 # SKIP $2"
}

t_skip_all() {
	echo "1..0 # SKIP $1"
	exit 77
}

t_diag() {
	echo "# $*"
}

t_done() {
	echo "1..$_t_n"
	[ $_t_failed -eq 0 ] && exit 0
	exit 1
}

t_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || t_skip_all "$c is not installed"
	done
}

sfs_mount() {
	local mnt=$1 opts=$2
	shift 2
	mkdir -p "$mnt"
	echo "$mnt" >>"$T/.mounts"
	"$STRATA_FS" -o "$opts" "$@" "$mnt"
}

kovl_mount() {
	local mnt=$1 opts=$2
	mkdir -p "$mnt"
	[ "$STRATA_ROOTLESS" = 1 ] && opts="$opts,userxattr"
	echo "$mnt" >>"$T/.mounts"
	mount -t overlay overlay -o "$opts" "$mnt"
}

# work_leftovers WORKDIR: what a mount left in WORKDIR/work, one name a line,
# but the shared whiteout every whiteout of the upper is a link to.
work_leftovers() {
	[ -d "$1/work" ] || {
		echo "no $1/work"
		return
	}
	find "$1/work" -mindepth 1 ! -path "$1/work/whiteout" -printf '%P\n'
}

t_umount() {
	umount "$1" 2>/dev/null || fusermount3 -u "$1"
}

# Prints the xattr name prefix strata-fs writes in this mode.
ovl_xattr_prefix() {
	if [ "$STRATA_ROOTLESS" = 1 ]; then echo user.overlay.; else echo trusted.overlay.; fi
}

mkimage() {
	bash "$STRATA_SRC/scripts/mkimage.sh" "$@"
}

tree_dump() {
	(cd "$1" && find . -mindepth 1 -not -path './.strata*' -printf '%p\n' | LC_ALL=C sort |
		while IFS= read -r p; do
			local st h=""
			st=$(stat -c '%F %a %u:%g %s' -- "$p")
			if [ -L "$p" ]; then
				h="-> $(readlink -- "$p")"
				st=$(stat -c '%F %u:%g' -- "$p")
			elif [ -f "$p" ]; then
				h=$(md5sum <"$p" | cut -c1-32)
			elif [ -d "$p" ]; then
				st=$(stat -c '%F %a %u:%g' -- "$p")
			fi
			echo "$p $st $h"
		done)
}
