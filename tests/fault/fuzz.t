#!/bin/bash
# tests/fault/fuzz.t: the libFuzzer harnesses of tests/fuzz.  Builds them
# (make fuzz-build: clang, libFuzzer, ASan+UBSan under $B/fuzz), replays every
# seed and every saved crash (tests/fuzz/corpus/NAME, tests/fuzz/regress/NAME)
# and fuzzes each target for a short time (STRATA_FUZZ_SECONDS, default 8).
# The short run starts from a fixed seed (STRATA_FUZZ_SEED, default 1), so a
# failure here is one anyone can replay; finding new crashes at random is
# the job of the long run, `make fuzz FUZZ_SECONDS=600`.  A crash input is
# printed in base64, to be saved under tests/fuzz/regress/NAME.
# STRATA_FUZZ_TARGETS, a glob, picks the targets; by default all but img-*,
# which fuzz-image.t runs.
. "$(dirname "$0")/../lib.sh"

SECS=${STRATA_FUZZ_SECONDS:-8}
SEED=${STRATA_FUZZ_SEED:-1}
command -v clang >/dev/null || t_skip_all "clang is not installed"
rt=$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a
[ -f "$rt" ] || ls "$(clang -print-resource-dir 2>/dev/null)"/lib/*/libclang_rt.fuzzer*.a \
	>/dev/null 2>&1 || t_skip_all "clang's libFuzzer runtime is missing (libclang-rt-dev)"

if ! make -s -C "$STRATA_SRC" B="$B" fuzz-build >"$T/build.log" 2>&1; then
	t_is "$(tail -20 "$T/build.log")" "" "fuzz harnesses build"
	t_done
fi
t_ok "fuzz harnesses build" true

for src in "$STRATA_SRC"/tests/fuzz/fuzz-*.c; do
	n=$(basename "$src" .c)
	n=${n#fuzz-}
	if [ -n "${STRATA_FUZZ_TARGETS:-}" ]; then
		[[ $n == $STRATA_FUZZ_TARGETS ]] || continue
	else
		[[ $n == img-* ]] && continue
	fi
	bin=$B/fuzz/fuzz-$n
	seeds=$STRATA_SRC/tests/fuzz/corpus/$n
	t_ok "$n: has a seed corpus" test -n "$(ls -A "$seeds" 2>/dev/null)"
	# Replay: libFuzzer runs each file given as an argument once.
	files=("$seeds"/*)
	[ -d "$STRATA_SRC/tests/fuzz/regress/$n" ] && files+=("$STRATA_SRC/tests/fuzz/regress/$n"/*)
	t_ok "$n: replays ${#files[@]} seeds and saved crashes" "$bin" "${files[@]}"
	mkdir -p "$T/corpus-$n"
	"$bin" -seed="$SEED" -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$T/crash-$n-" \
		"$T/corpus-$n" "$seeds" >"$T/$n.log" 2>&1
	rc=$?
	t_is "$rc" 0 "$n: ${SECS} s of fuzzing from seed $SEED finds no crash"
	[ "$rc" = 0 ] || { grep -B2 -A30 'ERROR\|==[0-9]*==' "$T/$n.log" | head -40 | sed 's/^/#   /'
		# libFuzzer names them PREFIX{crash,leak,oom,timeout}-SHA1
		for c in "$T"/crash-"$n"-*; do
			[ -f "$c" ] && t_diag "input $(basename "$c") (base64): $(base64 -w0 "$c" | head -c 2000)"
		done; }
	t_diag "$n: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$T/$n.log" | awk '{print $2}') executions," \
		"$(grep -o 'DONE *cov: [0-9]* ft: [0-9]*' "$T/$n.log" | sed 's/DONE *//')"
done
t_done
