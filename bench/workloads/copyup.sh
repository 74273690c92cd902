# copyup: appends one byte to the large lower file, which copies all of it up.
OWN=big/large.bin
wl_run() {
	printf x >>big/large.bin
}
wl_check() {
	[ "$(stat -c %s big/large.bin)" -eq $((LARGE_MIB * 1048576 + 1)) ]
}
