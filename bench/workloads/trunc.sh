# trunc: opens the large lower file with O_TRUNC (a copy-up that needs no data).
OWN=big/large.bin
wl_run() {
	: >big/large.bin
}
wl_check() {
	[ "$(stat -c %s big/large.bin)" -eq 0 ]
}
