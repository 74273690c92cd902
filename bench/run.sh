#!/bin/bash
# bench/run.sh: the benchmark driver.  Installs what it needs, builds (or
# reuses) the image, runs every workload on every filesystem round by round,
# and writes bench/results/<date>-<scale>.{md,csv,png}.  See bench/README.md.
set -u
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(dirname "$BENCH")
B=${B:-$SRC/build}
case $B in /*) ;; *) B=$SRC/$B ;; esac
STRATA_FS=${STRATA_FS:-$B/strata-fs}
WORKLOADS_ALL="walk readall seqread randread copyup trunc chmod chown rm untar seqwrite parmeta checksum"

usage() {
	cat <<EOF
usage: bench/run.sh [--quick] [--rounds N] [--only WORKLOAD[,..]] [--fs FS[,..]]
                    [--files N] [--large-mib N] [--timeout S] [--out DIR] [--no-uring]
  --quick        small scale: 3000 files, 64 MiB large file, 1 round
  --rounds N     rounds (default 5; 1 with --quick)
  --only LIST    workloads, from: ${WORKLOADS_ALL// /,}
  --fs LIST      filesystems, from: native,kovl,strata,fuse-ovl,unionfs
  --files N      files in the image (default 60000)
  --large-mib N  size of the large file and of the written file (default 1024)
  --timeout S    limit per run, in seconds (default 1800)
  --out DIR      where results go (default bench/results)
  --no-uring     leave the fuse module's enable_uring as it is (the run turns
                 it on, for strata-fs alone: the other daemons do not ask for it)
EOF
}

args="$*"
scale=full rounds= files= large_mib= only= fslist= tmo= out=$BENCH/results no_uring=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) scale=quick ;;
	--rounds) rounds=$2 && shift ;;
	--only) only=${2//,/ } && shift ;;
	--fs) fslist=${2//,/ } && shift ;;
	--files) files=$2 && shift ;;
	--large-mib) large_mib=$2 && shift ;;
	--timeout) tmo=$2 && shift ;;
	--out) out=$2 && shift ;;
	--no-uring) no_uring=1 ;;
	-h | --help) usage && exit 0 ;;
	*) usage >&2 && exit 2 ;;
	esac
	shift
done
if [ $scale = quick ]; then
	: "${rounds:=1}" "${files:=3000}" "${large_mib:=64}" "${tmo:=300}"
	export RAND_MIB=8 NCREATE=250
else
	: "${rounds:=5}" "${files:=60000}" "${large_mib:=1024}" "${tmo:=1800}"
	export RAND_MIB=64 NCREATE=2000
fi
export LARGE_MIB=$large_mib WRITE_MIB=$large_mib NPAR=4 BENCH
workloads=${only:-$WORKLOADS_ALL}

. "$BENCH/lib.sh"
fslist=${fslist:-$FS_ALL}
for w in $workloads; do
	[ -f "$BENCH/workloads/$w.sh" ] || { echo "bench: unknown workload $w" >&2 && exit 2; }
done
for f in $fslist; do
	case " $FS_ALL " in *" $f "*) ;; *) echo "bench: unknown filesystem $f" >&2 && exit 2 ;; esac
done

log() {
	printf '%s bench: %s\n' "$(date +%T)" "$*" >&2
}

[ "$(id -u)" = 0 ] || { echo "bench: run as root (mounts, drop_caches)" >&2 && exit 1; }

# --- what the run needs ------------------------------------------------------
need_pkgs() {
	local p missing=
	for p in fio fuse3 fuse-overlayfs unionfs-fuse gnuplot-nox python3 coreutils tar; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
need_pkgs || { echo "bench: could not install the packages it needs" >&2 && exit 1; }
if [ ! -x "$STRATA_FS" ]; then
	log "building strata-fs"
	make -s -C "$SRC" B="$B" || exit 1
fi
mkdir -p "$B/bench"
if [ ! -x "$B/bench/mono" ] || [ "$BENCH/mono.c" -nt "$B/bench/mono" ]; then
	cc -O2 -Wall -Wextra -Werror -o "$B/bench/mono" "$BENCH/mono.c" || exit 1
fi
modprobe overlay 2>/dev/null
modprobe fuse 2>/dev/null

# FUSE over io_uring (Linux 6.14 and later) is off unless the fuse module's
# enable_uring parameter is set.  strata-fs uses it when it is on; the other
# FUSE daemons here do not ask for it, so the run turns it on (and back off
# at the end) unless --no-uring, and the report says which it was.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
uring_was=
if [ -z "$no_uring" ] && [ -w "$URING_PARAM" ]; then
	uring_was=$(cat "$URING_PARAM")
	echo 1 >"$URING_PARAM" || uring_was=
fi
case $(cat "$URING_PARAM" 2>/dev/null) in
Y | 1) uring="on (fuse module parameter enable_uring)" ;;
N | 0) uring="off (fuse module parameter enable_uring)" ;;
*) uring="not offered by this kernel" ;;
esac

# --- the image -----------------------------------------------------------------
export IMG=$B/bench-image/$files-files-$large_mib-mib
if [ ! -f "$IMG/.done" ]; then
	log "building the image in $IMG (once)"
	bash "$BENCH/mkimage.sh" "$IMG" "$files" "$large_mib" || exit 1
fi
log "image: $(cat "$IMG/info.txt")"

# --- running -------------------------------------------------------------------
RUNS=$B/bench-run
cleanup() {
	fs_umount_all "$RUNS"
	rm -rf "$RUNS"
}
finish() {
	cleanup
	[ -z "$uring_was" ] || echo "$uring_was" >"$URING_PARAM" 2>/dev/null
}
trap finish EXIT
trap 'exit 130' INT TERM
cleanup
mkdir -p "$RUNS" "$out"

stamp=$(date +%Y-%m-%d-%H%M)
base=$out/$stamp-$scale
raw=$base.csv
echo "round,workload,fs,seconds,status,daemon_peak_rss_kib,daemon_cpu_s" >"$raw"
export OUT=$RUNS/out

# wl_own WORKLOAD: the paths it changes in place (its file's OWN).
wl_own() {
	bash -c '. "$0"; echo "$OWN"' "$BENCH/workloads/$1.sh"
}

# run_one ROUND WORKLOAD FS: fresh mount, cold caches, one timed run, a check.
run_one() {
	local r=$1 w=$2 fs=$3 run=$RUNS/$2-$3 t0 t1 rc status secs stats pid
	NATIVE_OWN=$(wl_own "$w")
	rm -f "$OUT"
	if ! fs_mount "$fs" "$run" 2>"$RUNS/mount.err"; then
		log "$w on $fs: mount failed: $(head -c 300 "$RUNS/mount.err")"
		fs_umount "$fs" "$run"
		echo "$r,$w,$fs,,mount-failed,," >>"$raw"
		return
	fi
	pid=$(fs_daemon_pid)
	drop_caches
	t0=$(now)
	(cd "$run/mnt" && timeout -k 10 "$tmo" bash -c \
		'set -eo pipefail; . "$0"; wl_run' "$BENCH/workloads/$w.sh") >"$RUNS/wl.log" 2>&1
	rc=$?
	t1=$(now)
	stats=$(fs_daemon_stats)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		status=crashed
	elif [ $rc = 124 ] || [ $rc = 137 ]; then
		status=timeout
	elif [ $rc != 0 ]; then
		status=failed
	elif ! (cd "$run/mnt" && bash -c '. "$0"; wl_check' "$BENCH/workloads/$w.sh") >>"$RUNS/wl.log" 2>&1; then
		status=wrong-result
	else
		status=ok
	fi
	if [ $status != ok ]; then
		log "$w on $fs: $status (exit $rc): $(tail -n 3 "$RUNS/wl.log" | tr '\n' ' ' | head -c 400)"
		secs=
	fi
	fs_umount "$fs" "$run"
	echo "$r,$w,$fs,$secs,$status,${stats// /,}" | sed 's/,-/,/g' >>"$raw"
	log "round $r $w $(fs_label "$fs"): ${secs:+${secs}s}${secs:-$status}"
}

start=$(now)
log "scale=$scale rounds=$rounds workloads=[$workloads] fs=[$fslist] caches=cold"
read -ra fsarr <<<"$fslist"
for ((r = 1; r <= rounds; r++)); do
	for w in $workloads; do
		# Rotate the order of the filesystems each round so none always goes first.
		for ((i = 0; i < ${#fsarr[@]}; i++)); do
			run_one "$r" "$w" "${fsarr[(i + r - 1) % ${#fsarr[@]}]}"
		done
	done
done
elapsed=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

# --- the report ----------------------------------------------------------------
ref=$(python3 "$BENCH/report.py" --raw "$raw" --base "$base" --scale "$scale" --rounds "$rounds" \
	--image "$(cat "$IMG/info.txt")" --elapsed "$elapsed" --uring "$uring" \
	--command "bench/run.sh $args" --strata "$(git -C "$SRC" describe --always --dirty 2>/dev/null)") || exit 1
gnuplot -e "datafile='$base.dat'; outfile='$base.png'; ref='$ref'; ncols=$((${#fsarr[@]} + 1))" \
	-e "subtitle='$stamp, $scale scale, $rounds round(s), cold caches'" \
	"$BENCH/plot.gp" || log "gnuplot failed; no chart"
log "done in ${elapsed}s: $base.md $base.csv $base-medians.csv $base.png"
cat "$base.md"
