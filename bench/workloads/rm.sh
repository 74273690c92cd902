# rm: rm -rf of the lower usr/share tree (a whiteout or removal per entry).
OWN=usr/share
wl_run() {
	rm -rf usr/share
}
wl_check() {
	[ ! -e usr/share ] && [ -d usr/lib ]
}
