# seqread: sequential read of the large lower file in 1 MiB reads.
OWN=
wl_run() {
	dd if=big/large.bin of=/dev/null bs=1M status=none
}
wl_check() {
	:
}
