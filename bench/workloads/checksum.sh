# checksum: a real program, md5sum -c of every file of usr/ against the list
# made from the image (what dpkg --verify does for a package's files).
OWN=
wl_run() {
	md5sum -c "$IMG/md5sums" >"$OUT"
}
# md5sum fails on a wrong sum; every file of the list was also read and found.
wl_check() {
	[ "$(grep -c ': OK$' "$OUT")" -eq "$(wc -l <"$IMG/md5sums")" ]
}
