# walk: metadata walk, find + lstat of every entry of the merged tree.
OWN=
wl_run() {
	find . -printf '%y %i %n %s %m %U %G %T@ %p\n' >"$OUT"
}
# Every regular file of the image (and the large file) was seen.
wl_check() {
	[ "$(grep -c '^f ' "$OUT")" -eq "$(($(wc -l <"$IMG/files.txt") + 1))" ]
}
