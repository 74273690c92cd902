# seqread: sequential read of the large lower file in 1 MiB reads.
OWN=
wl_run() {
	dd if=big/large.bin of=/dev/null bs=1M 2>"$OUT"
}
# dd's count: every MiB of the file was read, in whole reads.
wl_check() {
	grep -q "^$LARGE_MIB+0 records in" "$OUT"
}
