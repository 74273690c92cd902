# untar: extracts a tarball of many small files (the top layer's usr/) into
# a new directory of the mount.
OWN=
wl_run() {
	mkdir untar && tar -C untar -xf "$IMG/small.tar"
}
wl_check() {
	[ "$(find untar -type f | wc -l)" -eq "$(tar -tvf "$IMG/small.tar" | grep -c '^[-h]')" ]
}
