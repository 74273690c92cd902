#!/bin/bash
# tests/run.sh: runs every unit test binary and shell test, as root and (for
# tests marked "# rootless: yes") again rootless, and ends with the line
# "N passed, N failed, N skipped".  Usage: B=build tests/run.sh [PATTERN...]
set -u
cd "$(dirname "$0")/.."
B=${B:-$PWD/build}
export B STRATA_SRC=$PWD STRATA_FS=${STRATA_FS:-$B/strata-fs}
pass=0 fail=0 skip=0 failed_files=()
# what failing tests printed, repeated before the summary: a log read from
# its end (a CI page) then shows why
failed_log=$(mktemp)
trap 'rm -f "$failed_log"' EXIT
patterns=("$@")

selected() {
	[ ${#patterns[@]} -eq 0 ] && return 0
	local p
	for p in "${patterns[@]}"; do [[ $1 == *$p* ]] && return 0; done
	return 1
}

# run_one LABEL CMD...: runs one TAP producer and adds its points to the totals.
run_one() {
	local label=$1 out rc p=0 f=0 s=0 line
	shift
	out=$(mktemp)
	timeout --kill-after=10 "${STRATA_TEST_TIMEOUT:-600}" "$@" >"$out" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "*"# SKIP"* | "ok "*"# skip"*) s=$((s + 1)) ;;
		"ok "*) p=$((p + 1)) ;;
		"not ok "*"# TODO"*) ;;
		"not ok "*) f=$((f + 1)) ;;
		esac
	done <"$out"
	if [ $rc -eq 77 ] && [ $f -eq 0 ]; then
		[ $p -eq 0 ] && [ $s -eq 0 ] && s=1
	elif [ $rc -ne 0 ] && [ $f -eq 0 ]; then
		f=1
		echo "not ok - $label exited with status $rc" >>"$out"
	fi
	if [ $f -gt 0 ] || [ -n "${VERBOSE:-}" ]; then
		sed "s|^|[$label] |" "$out"
	fi
	if [ $f -gt 0 ]; then
		grep -v '^ok ' "$out" | tail -60 | sed "s|^|[$label] |" >>"$failed_log"
	fi
	printf '%-44s %3d passed %3d failed %3d skipped\n' "$label" $p $f $s
	[ $f -gt 0 ] && failed_files+=("$label")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	rm -f "$out"
}

for t in "$B"/tests/test-*; do
	[ -x "$t" ] || continue
	selected "$t" || continue
	run_one "unit/$(basename "$t")" "$t"
done

# run_file FILE [TAG]: a shell test as root and, if marked, rootless; TAG
# goes into the labels.
run_file() {
	local t=$1 tag=${2:+$2, }
	run_one "${t#tests/}${2:+ ($2)}" bash "$t"
	if grep -q '^# rootless: yes' "$t"; then
		run_one "${t#tests/} (${tag}rootless)" bash tests/rootless.sh "$t"
	fi
}

for t in tests/*/*.t; do
	[ -f "$t" ] || continue
	selected "$t" || continue
	run_file "$t"
done

# FUSE over io_uring: the filesystem tests once more with the fuse module's
# enable_uring on, so that strata-fs takes its requests from its per-CPU
# rings (fs/uring.c); the parameter is put back as it was.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
uring_tests=()
for t in tests/fs/*.t; do
	[ "$t" != tests/fs/uring.t ] && selected "$t (io_uring)" && uring_tests+=("$t")
done
if [ ${#uring_tests[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && [ -w "$URING_PARAM" ]; then
		uring_was=$(cat "$URING_PARAM")
		trap 'echo "$uring_was" >"$URING_PARAM"; rm -f "$failed_log"' EXIT
		echo 1 >"$URING_PARAM"
		for t in "${uring_tests[@]}"; do run_file "$t" io_uring; done
		echo "$uring_was" >"$URING_PARAM"
	else
		why="no $URING_PARAM to turn on (a kernel before 6.14, or not root)"
		run_one "fs (io_uring)" echo "ok 1 - the filesystem tests over io_uring # SKIP $why"
	fi
fi

if [ ${#failed_files[@]} -gt 0 ]; then
	echo "---- what the failing tests printed (repeated; not-ok points and diagnostics) ----"
	cat "$failed_log"
	echo "failed: ${failed_files[*]}"
fi
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
