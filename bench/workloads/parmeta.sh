# parmeta: $NPAR processes at once, each lstat-ing its share of the lower
# files, then creating, stat-ing and removing files in its own new directory.
OWN=
wl_run() {
	python3 "$BENCH/workloads/parmeta.py" "$NPAR" "$NCREATE" "$IMG/files.txt" >"$OUT"
}
wl_check() {
	[ "$(find par -type f | wc -l)" -eq "$(cat "$OUT")" ]
}
