# tests/launcher/lch.sh: sourced by the launcher tests after lib.sh: the
# strata command on a private state root, the built-in image's layers, and
# removal of every container at exit (lib.sh then removes $T).
S=$B/strata
[ -x "$S" ] || t_skip_all "strata is not built"
[ -c /dev/fuse ] || t_skip_all "no /dev/fuse"
ROOT=$T/root
st() { "$S" --root "$ROOT" "$@"; }
# rc CMD...: prints the exit status of CMD
rc() { "$@" >/dev/null 2>&1; echo $?; }
LAYERS=$(mkimage "$T/img") || t_skip_all "cannot build the test image"
run() { st run --rootfs-layers "$LAYERS" "$@"; }
lch_cleanup() {
	local ids
	ids=$(st ps -a -q 2>/dev/null)
	[ -n "$ids" ] && st rm -f -v $ids >/dev/null 2>&1
	return 0
}
trap 'lch_cleanup; _t_cleanup' EXIT
# procs_of ROOT: pids of processes whose command line names ROOT
procs_of() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$1" && echo "${p#/proc/}"
	done
	return 0
}
# wait_for CMD...: retries CMD for up to 30 s (a loaded machine, ASan)
wait_for() {
	local i
	for i in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
