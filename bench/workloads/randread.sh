# randread: fio, 4 KiB random reads (psync, one job) of the large lower file,
# $RAND_MIB MiB in all; opened read-only so no copy-up happens.
OWN=
wl_run() {
	fio --name=randread --filename=big/large.bin --readonly --rw=randread --bs=4k \
		--ioengine=psync --size="${LARGE_MIB}M" --io_size="${RAND_MIB}M" \
		--randrepeat=1 --norandommap --output="$OUT"
}
wl_check() {
	grep -q 'read: IOPS=' "$OUT"
}
