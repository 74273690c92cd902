# seqwrite: fio, sequential write of a new $WRITE_MIB MiB file in 1 MiB
# writes, fsync at the end (counted).
OWN=
wl_run() {
	fio --name=seqwrite --filename=seqwrite.bin --rw=write --bs=1M --ioengine=psync \
		--size="${WRITE_MIB}M" --end_fsync=1 --output="$OUT"
}
wl_check() {
	[ "$(stat -c %s seqwrite.bin)" -eq $((WRITE_MIB * 1048576)) ]
}
