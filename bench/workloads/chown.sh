# chown: chown -R (of links themselves, not their targets) of the lower usr/share tree.
OWN=usr/share
wl_run() {
	chown -R -h 4242:4242 usr/share
}
wl_check() {
	local f
	f=$(grep -m1 '^usr/share/' "$IMG/files.txt")
	[ "$(stat -c %u:%g "$f")" = 4242:4242 ]
}
