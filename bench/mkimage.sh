#!/bin/bash
# bench/mkimage.sh: builds the benchmark image from this machine's own files
# (/usr/share and /usr/lib), no download.  Usage: mkimage.sh DIR FILES LARGE_MIB
#
# DIR/l1 (bottom) l2 l3 (top)  three layers of plain files, dirs and symlinks;
#                              no whiteouts or opaque dirs, so unionfs-fuse sees
#                              the same tree as the overlay implementations
# DIR/native                   the three layers flattened (top wins)
# DIR/files.txt                regular files of the merged tree, relative paths
# DIR/md5sums                  md5sum list of usr/ in the merged tree
# DIR/small.tar                the top layer's usr/ as a tarball (untar workload)
# DIR/.done                    written last; the image is rebuilt when missing
set -eu
dir=$1 nfiles=$2 large_mib=$3
src_roots="usr/share usr/lib"
max_kib=4096 # larger files are left out; the large file stands for big data

rm -rf "$dir"
mkdir -p "$dir/l1" "$dir/l2" "$dir/l3"
cd "$dir"

# Every regular file and symlink below the roots, in a stable order.
(cd / && find $src_roots -xdev \( -type f -size -${max_kib}k -o -type l \) 2>/dev/null) |
	LC_ALL=C sort >all.txt
total=$(wc -l <all.txt)
[ "$total" -gt 0 ] || {
	echo "mkimage: no files below /$src_roots" >&2
	exit 1
}

# Keep runs of 64 neighbours so directories stay populated as in a real tree,
# then skip ahead; stride chosen so about $nfiles entries are kept.
stride=$(((total + nfiles - 1) / nfiles))
[ "$stride" -ge 1 ] || stride=1
awk -v s="$stride" 'int((NR - 1) / 64) % s == 0' all.txt | head -n "$nfiles" >picked.txt

# Split: about 60% bottom, 30% middle, 10% top, and one entry in 40 also
# placed in the top layer over its lower copy (a shadowed file).
awk '{ k = (NR * 7 + length($0)) % 10
       l = (k < 6) ? 1 : (k < 9) ? 2 : 3
       print > ("layer" l ".txt")
       if (l != 3 && NR % 40 == 0) print > "layer3.txt" }' picked.txt
for l in 1 2 3; do
	touch "layer$l.txt"
	tar -C / --no-recursion -cf - -T "layer$l.txt" | tar -C "l$l" -xpf -
done

# The large file lives in the bottom layer, as a database or a model would.
mkdir -p l1/big
head -c "$((large_mib * 1024 * 1024))" /dev/urandom >l1/big/large.bin

mkdir native
for l in 1 2 3; do
	cp -a "l$l/." native/
done

(cd native && find . -type f ! -path ./big/large.bin | sed 's|^\./||' | LC_ALL=C sort) >files.txt
(cd native && grep '^usr/' ../files.txt | tr '\n' '\0' | xargs -0 md5sum) >md5sums
tar -C l3 -cf small.tar usr

echo "files=$(wc -l <files.txt) layer1=$(wc -l <layer1.txt) layer2=$(wc -l <layer2.txt)" \
	"layer3=$(wc -l <layer3.txt) large_mib=$large_mib" \
	"size=$(du -sh native | cut -f1) built=$(date -u +%FT%TZ)" >info.txt
rm -f all.txt
touch .done
