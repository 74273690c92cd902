#!/bin/bash
# scripts/mkimage.sh: builds the small built-in test and demo image (three
# layers made from Debian's busybox-static) and its merged reference tree.
#
#   mkimage.sh DIR [ovl|oci]     builds DIR/FORMAT/l0 (base), l1, l2 (top) and
#                                prints the lowerdir= value: DIR/FORMAT/l2:l1:l0
#   mkimage.sh --expected DIR [ovl|oci]
#                                builds DIR/merged-ref, a plain directory holding
#                                the tree a union mount of the layers must show
#                                (l0, then l1 and l2 applied with whiteout and
#                                opaque semantics), and prints its path.  Uses
#                                the layers already in DIR (ovl preferred) and
#                                builds DIR/ovl when there are none.
#
# Both formats describe the same merged tree.  ovl: whiteouts are 0/0
# character devices; opaque directories carry user.overlay.opaque=y, and also
# trusted.overlay.opaque=y when run as real root in the initial user namespace.
# oci: whiteouts are empty ".wh.NAME" files, opaque directories hold an empty
# ".wh..wh..opq".  Works as root and as root of a user namespace (unshare -Ur);
# where uid 1000 is not mapped, the files meant for it keep the caller's owner.
#
# Every process costs about 10 ms on a small VM, so the layers are written
# with shell builtins and the rest is batched into a few commands per layer.
set -euo pipefail
umask 022

BUSYBOX=/bin/busybox
# Each layer has its own fixed time, so copies and merges can be checked.
STAMP_L0='2020-01-01 00:00:00 UTC'
STAMP_L1='2021-01-01 00:00:00 UTC'
STAMP_L2='2022-01-01 00:00:00 UTC'
APPLETS='sh ash ls cat echo printf mkdir rmdir rm mv cp ln readlink realpath stat
find sleep id env true false test [ touch chmod chown chgrp wc head tail grep
egrep sed awk sort uniq cut tr tee xargs md5sum sha256sum dd du df uname hostname
ps kill pwd basename dirname date whoami mkfifo mknod truncate cmp diff mount
umount sync seq yes od hexdump vi less tar gzip which timeout setpriv'

usage() {
	echo "usage: mkimage.sh DIR [ovl|oci]" >&2
	echo "       mkimage.sh --expected DIR [ovl|oci]" >&2
	exit 2
}

# True for root of the initial user namespace, where trusted.* is writable.
real_root() {
	local a b c
	[ "$EUID" = 0 ] || return 1
	read -r a b c </proc/self/uid_map && [ "$a $b $c" = "0 0 4294967295" ]
}

# --- writing a layer --------------------------------------------------------
# L is the layer directory, FMT its format.  Work that needs a process is
# queued and done by end_layer.

begin_layer() {
	L=$1
	FMT=$2
	Q_LINKS=()
	Q_OWN=()
	declare -gA Q_MODE=()
	mkdir -p "$L"
}

# mkdirs PATH...: the layer's directories, in one process.
mkdirs() {
	local p args=()
	for p in "$@"; do args+=("$L/$p"); done
	mkdir -p "${args[@]}"
}

# mode MODE PATH: queued chmod.
mode() {
	Q_MODE[$1]+="$L/$2"$'\n'
}

# put PATH [MODE] <CONTENT: a regular file (mode 0644 unless given); the
# parent directory must exist.
put() {
	local content
	IFS= read -r -d '' content || true
	printf '%s' "$content" >"$L/$1"
	if [ "${2:-0644}" != 0644 ]; then mode "$2" "$1"; fi
}

# symlink TARGET PATH, hardlink EXISTING PATH: queued.
symlink() {
	Q_LINKS+=(s "$1" "$L/$2")
}
hardlink() {
	Q_LINKS+=(h "$L/$1" "$L/$2")
}

# own UID:GID PATH: queued; skipped where the ids are not mapped (rootless).
own() {
	Q_OWN+=("$1" "$L/$2")
}

# whiteout PATH: hides PATH of the layers below.
whiteout() {
	local d=${1%/*} n=${1##*/}
	[ "$d" = "$1" ] && d=.
	case $FMT in
	ovl) mknod "$L/$1" c 0 0 ;;
	oci) : >"$L/$d/.wh.$n" ;;
	esac
}

# opaque PATH: the directory hides what the layers below hold there.
opaque() {
	case $FMT in
	ovl)
		setfattr -n user.overlay.opaque -v y "$L/$1"
		if real_root; then setfattr -n trusted.overlay.opaque -v y "$L/$1"; fi
		;;
	oci) : >"$L/$1/.wh..wh..opq" ;;
	esac
}

# end_layer TIME: does the queued work, then gives every entry TIME
# (children first: naming a child changes its directory's mtime).
end_layer() {
	local m i paths
	if [ ${#Q_LINKS[@]} -gt 0 ]; then
		perl -e 'while (my ($k, $t, $n) = splice(@ARGV, 0, 3)) {
			($k eq "s" ? symlink($t, $n) : link($t, $n)) or die "mkimage.sh: $n: $!\n";
		}' "${Q_LINKS[@]}"
	fi
	for ((i = 0; i < ${#Q_OWN[@]}; i += 2)); do
		chown -h "${Q_OWN[i]}" "${Q_OWN[i + 1]}" 2>/dev/null || break
	done
	# After chown, which would clear setuid bits.
	for m in "${!Q_MODE[@]}"; do
		mapfile -t paths < <(printf '%s' "${Q_MODE[$m]}")
		chmod "$m" "${paths[@]}"
	done
	find "$L" -depth -exec touch -h -d "$1" {} +
}

build_l0() {
	local a
	declare -A have
	for a in $("$BUSYBOX" --list); do have[$a]=1; done

	mkdirs bin etc/app/conf.d root tmp srv opt home/app run var/lib/data/nested \
		var/lib/data/old/sub var/lib/shared usr/bin usr/lib usr/share/doc
	cp "$BUSYBOX" "$L/bin/busybox"
	mode 0755 bin/busybox
	for a in $APPLETS; do
		if [ -n "${have[$a]:-}" ]; then symlink busybox "bin/$a"; fi
	done
	symlink usr/lib lib

	put etc/passwd <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
		app:x:1000:1000:app:/home/app:/bin/sh
	EOF
	put etc/group <<-'EOF'
		root:x:0:
		nogroup:x:65534:
		app:x:1000:
	EOF
	put etc/hostname <<<'strata-test'
	put etc/os-release <<-'EOF'
		NAME="strata test image"
		ID=strata-test
		VERSION=1
		PRETTY_NAME="strata test image 1"
	EOF
	put etc/app/main.conf <<-'EOF'
		# main configuration (l0)
		listen = 8080
		workers = 2
	EOF
	put etc/app/log.conf <<<'level = info'
	put etc/app/old.conf <<<'obsolete = true'
	put etc/app/secret.key 0600 <<<'not-a-real-secret'
	put etc/app/conf.d/10-default.conf <<<'default = l0'

	# Directories with various modes.
	mode 0700 root
	put root/.profile <<<'PS1="strata# "'
	mode 1777 tmp
	mode 0555 srv
	mode 0711 opt
	put opt/tool.sh 0755 <<-'EOF'
		#!/bin/sh
		echo tool from l0
	EOF
	mode 2775 var/lib/shared

	# The home of user app (1000:1000 where that id is mapped).
	mode 0750 home/app
	put home/app/notes.txt 0640 <<<'notes of user app'
	own 1000:1000 home/app
	own 1000:1000 home/app/notes.txt

	mkfifo -m 0644 "$L/run/app.fifo"
	symlink ../run var/run

	# Seed data for volume population tests.
	put var/lib/data/seed.txt <<<'seed data from the image'
	put var/lib/data/records.csv <<-'EOF'
		id,name
		1,alpha
		2,beta
		3,gamma
	EOF
	put var/lib/data/nested/deep.txt 0600 <<<'deep seed file'
	put var/lib/data/old/stale.txt <<<'stale, deleted by l1'
	put var/lib/data/old/sub/x.txt <<<'also deleted by l1'

	# 8 MiB with data only in the first and the last 4 KiB.
	printf 'START OF SPARSE FILE\n' >"$L/var/lib/sparse.img"
	truncate -s 8M "$L/var/lib/sparse.img"
	printf 'END OF SPARSE FILE\n' |
		dd of="$L/var/lib/sparse.img" bs=4096 seek=2047 conv=notrunc status=none

	put usr/bin/suid-helper 4755 <<-'EOF'
		#!/bin/sh
		id
	EOF
	put usr/lib/hl-a <<<'one inode, two names'
	hardlink usr/lib/hl-a usr/lib/hl-b
	put usr/share/doc/base.txt <<<'base layer document, deleted by l1'
	put usr/share/doc/revived.txt <<<'l0 version, deleted by l1'
	put usr/share/doc/README <<<'a file in l0, a directory in l1'
	put usr/share/doc/xattr.txt <<<'this file carries user.strata.note'
	setfattr -n user.strata.note -v 'from l0' "$L/usr/share/doc/xattr.txt"
}

build_l1() {
	mkdirs etc/app/conf.d usr/share/doc/README var/lib/data
	put etc/os-release <<-'EOF'
		NAME="strata test image"
		ID=strata-test
		VERSION=2
		PRETTY_NAME="strata test image 2"
	EOF
	put etc/app/main.conf <<-'EOF'
		# main configuration (changed by l1)
		listen = 9090
		workers = 4
	EOF
	put etc/app/new.conf <<<'added = l1'
	whiteout etc/app/old.conf
	put etc/app/conf.d/20-l1.conf <<<'hidden by the opaque directory of l2'
	put usr/share/doc/l1.txt <<<'added by l1'
	whiteout usr/share/doc/base.txt
	whiteout usr/share/doc/revived.txt
	# A file of l0 becomes a directory.
	put usr/share/doc/README/index.txt <<<'README became a directory in l1'
	# A whole directory of l0 goes.
	whiteout var/lib/data/old
}

build_l2() {
	mkdirs etc/app/conf.d usr/share/doc
	opaque etc/app/conf.d
	put etc/app/conf.d/99-l2.conf <<<'only file of the opaque conf.d (l2)'
	put usr/share/doc/revived.txt <<<'revived by l2 above the whiteout of l1'
	put top.txt <<<'top-level file added by l2'
}

# build DIR FORMAT: writes the three layers of FORMAT under DIR/FORMAT.
build() {
	local base=$1/$2
	rm -rf "$base"
	# One statement each: set -e does not reach into a function run by &&.
	begin_layer "$base/l0" "$2"
	build_l0
	end_layer "$STAMP_L0"
	begin_layer "$base/l1" "$2"
	build_l1
	end_layer "$STAMP_L1"
	begin_layer "$base/l2" "$2"
	build_l2
	end_layer "$STAMP_L2"
}

# --- the merged reference ---------------------------------------------------

# apply LAYER REF: lays one layer over the plain directory REF.  First removes
# from REF what the layer hides (whiteouts, opaque directories, entries the
# layer replaces by one of another type), then copies the layer's content in
# with tar, which keeps owners, modes, times, xattrs, holes and hard links.
apply() {
	local layer=$1 ref=$2 t p n chars=() gone=() keep=()
	declare -A white=() opq=()
	# Character devices 0/0 and opaque xattrs, both in one process each.
	while IFS= read -r -d '' p; do chars+=("$p"); done \
		< <(cd "$layer" && find . -mindepth 1 -type c -print0)
	if [ ${#chars[@]} -gt 0 ]; then
		while read -r t p; do
			[ "$t" = 0:0 ] && white[${p#./}]=1
		done < <(cd "$layer" && stat -c '%t:%T %n' -- "${chars[@]}")
	fi
	while IFS= read -r p; do
		case $p in "# file: "*) opq[${p#"# file: $layer/"}]=1 ;; esac
	done < <(getfattr -R -P --absolute-names -d \
		-m '^(trusted|user)\.overlay\.opaque$' "$layer" 2>/dev/null)

	while IFS= read -r -d '' p; do
		t=${p%% *} p=${p#* }
		n=${p##*/}
		if [ -n "${white[$p]:-}" ]; then
			gone+=("$ref/$p")
		elif [ "$n" = .wh..wh..opq ]; then
			:
		elif [[ $n == .wh.* ]]; then
			if [ "$n" = "$p" ]; then gone+=("$ref/${n#.wh.}"); else gone+=("$ref/${p%/*}/${n#.wh.}"); fi
		elif [ "$t" = d ]; then
			if [ -n "${opq[$p]:-}" ] || [ -e "$layer/$p/.wh..wh..opq" ] ||
				[ -L "$ref/$p" ] || { [ -e "$ref/$p" ] && [ ! -d "$ref/$p" ]; }; then
				gone+=("$ref/$p")
			fi
			keep+=("./$p")
		else
			if [ -e "$ref/$p" ] || [ -L "$ref/$p" ]; then gone+=("$ref/$p"); fi
			keep+=("./$p")
		fi
	done < <(cd "$layer" && find . -mindepth 1 -printf '%y %P\0')

	if [ ${#gone[@]} -gt 0 ]; then rm -rf -- "${gone[@]}"; fi
	[ ${#keep[@]} -gt 0 ] || return 0
	printf '%s\0' "${keep[@]}" |
		tar -C "$layer" --null --no-recursion -T - --format=posix --sparse \
			--xattrs --xattrs-include='*' -cf - |
		tar -C "$ref" --xattrs --xattrs-include='*' \
			--xattrs-exclude='trusted.overlay.*' --xattrs-exclude='user.overlay.*' \
			--same-permissions --same-owner -xf -
}

expected() {
	local dir=$1 fmt=${2:-} ref=$1/merged-ref
	if [ -z "$fmt" ]; then
		fmt=ovl
		if [ ! -d "$dir/ovl/l0" ] && [ -d "$dir/oci/l0" ]; then fmt=oci; fi
	fi
	[ -d "$dir/$fmt/l0" ] || build "$dir" "$fmt"
	rm -rf "$ref"
	cp -a "$dir/$fmt/l0" "$ref"
	apply "$dir/$fmt/l1" "$ref"
	apply "$dir/$fmt/l2" "$ref"
	echo "$ref"
}

main() {
	local expect=0 dir fmt
	if [ "${1:-}" = --expected ]; then
		expect=1
		shift
	fi
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
	fmt=${2:-}
	case $fmt in "" | ovl | oci) ;; *) usage ;; esac
	case $1 in *:* | *,*)
		echo "mkimage.sh: DIR must not contain ':' or ','" >&2
		exit 2
		;;
	esac
	if [ ! -x "$BUSYBOX" ]; then
		echo "mkimage.sh: $BUSYBOX is missing (apt-get install busybox-static)" >&2
		exit 1
	fi
	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	if [ $expect = 1 ]; then
		expected "$dir" "$fmt"
	else
		fmt=${fmt:-ovl}
		build "$dir" "$fmt"
		echo "$dir/$fmt/l2:$dir/$fmt/l1:$dir/$fmt/l0"
	fi
}

main "$@"
