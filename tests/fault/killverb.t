#!/bin/bash
# tests/fault/killverb.t: verbs killed with SIGKILL part way.  `strata image
# import` of a ~64 MiB OCI archive, `strata volume create` and `strata volume
# rm` of a volume holding 1000 files run under tests/helpers/killat, which
# kills them at a chosen syscall stop: half the points uniformly at random,
# half at a rename, mkdir, unlink, link, fsync or flock.  `strata rm` (with
# and without -v) of a stopped container with 1000 files in its writable
# layer, a named and an anonymous volume runs under killat -f (the child
# that deletes the layer is killed too).  After each kill:
#   - every layer under layers/sha256/ is whole (same tree as a clean
#     import), every layers/tar/<diffid>.tar hashes to its name,
#   - `image ls` lists exactly the images on disk, and each one resolves,
#   - a volume is either listed and whole, or absent, and `volume ls` says so,
#   - rerunning the verb succeeds, gives the same image or volume, and the
#     leftovers of the killed run are gone,
#   - the container is listed whole (it starts and sees its layer and
#     volumes), listed dead (removal in progress), or not listed, and `ps`
#     works; rerunning rm succeeds, or when the container was no longer
#     listed says there is no such container; afterwards the named volume
#     is whole and unreferenced, the anonymous one is gone with -v (kept,
#     whole and unreferenced without), no process or mount is left, and
#     the next rm deletes what the killed one left.
# STRATA_KILL_ROUNDS (image rounds, default 6; a third as many uniform
# kill points for rm), STRATA_KILL_SEED.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../image/imglib.sh"

KA=$HELPERS/killat
[ -x "$KA" ] || t_skip_all "$KA is not built"
[ -x "$B/strata" ] || t_skip_all "$B/strata is not built"
t_need tar gzip sha256sum md5sum
ROUNDS=${STRATA_KILL_ROUNDS:-6}
SEED=${STRATA_KILL_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
t_diag "seed $SEED (STRATA_KILL_SEED=$SEED picks the same kill points)"
RANDOM=$SEED
R=$T/root
kills=0 checks=0

# A listing of DIR fast enough for thousands of files: names, types,
# modes, owners, sizes, link targets, then the content hashes.
dump() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r md5sum)
}

# pick ROUND LOG COUNT: a kill point, in turn uniform, at a logged rename,
# at another logged syscall.
pick() {
	local lines
	case $(($1 % 3)) in
	1) lines=$(grep ' rename$' "$2") ;;
	2) lines=$(grep -v ' rename$' "$2") ;;
	*) lines="" ;;
	esac
	if [ -z "$lines" ]; then
		echo $(((RANDOM * 32768 + RANDOM) % $3 + 1))
	else
		echo "$lines" | sed -n "$(((RANDOM * 32768 + RANDOM) % $(echo "$lines" | wc -l) + 1))p" |
			cut -d' ' -f1
	fi
}

# leftovers DIR...: names a finished writer should have removed.
leftovers() {
	local d
	for d in "$@"; do
		[ -d "$d" ] && ls -A "$d" | grep '^\.' | grep -vx '\.lock' | sed "s|^|$d/|"
	done
	return 0
}

# ---- the image ----

mkdir -p "$T/l0/big" "$T/l1" "$T/l2"
for i in $(seq 0 47); do head -c 1M /dev/urandom >"$T/l0/big/f$i"; done
echo base >"$T/l0/etc-file"
for d in $(seq 0 9); do
	mkdir -p "$T/l1/d$d"
	for f in $(seq 0 99); do echo "$d.$f" >"$T/l1/d$d/f$f"; done
done
ln -s ../etc-file "$T/l1/d0/link"
ln "$T/l1/d1/f1" "$T/l1/d1/hard"
mkdir -p "$T/l1/big" && : >"$T/l1/big/.wh.f0"
head -c 16M /dev/urandom >"$T/l2/blob"
mk_oci "$T/oci" gzip "$T/l0" "$T/l1" "$T/l2" >/dev/null
tar -C "$T/oci" -cf "$T/big.tar" .
t_diag "archive: $(($(stat -c %s "$T/big.tar") / 1048576)) MiB, 3 gzip layers (${SECONDS} s)"

# The reference: a clean import, its id and each layer's tree.
"$B/strata" --root "$T/ref" image import -q --name big:1 "$T/big.tar" >/dev/null
ID=$("$B/strata" --root "$T/ref" image ls -q)
LAYERS=$(ls "$T/ref/layers/sha256")
for l in $LAYERS; do dump "$T/ref/layers/sha256/$l" >"$T/ref-$l.dump"; done
t_is "$(echo "$LAYERS" | wc -l)" 3 "reference import has three layers"

# check_images: prints what is wrong with the store under $R.
check_images() {
	local l t id listed ondisk
	for l in $(ls "$R/layers/sha256" 2>/dev/null); do
		if [ ! -f "$T/ref-$l.dump" ]; then
			echo "unknown layer $l"
		elif ! dump "$R/layers/sha256/$l" | cmp -s - "$T/ref-$l.dump"; then
			echo "layer $l is not whole"
		fi
	done
	for t in $(ls "$R/layers/tar" 2>/dev/null); do
		[ "$(sha "$R/layers/tar/$t").tar" = "$t" ] || echo "layer tar $t is not whole"
	done
	ondisk=$(ls "$R/images" 2>/dev/null | grep -E '^[0-9a-f]{64}$' | cut -c1-12 | sort)
	listed=$(S image ls -q 2>&1 | sort)
	[ "$listed" = "$ondisk" ] || echo "image ls shows '$listed', the disk holds '$ondisk'"
	for id in $ondisk; do
		[ "$id" = "${ID:0:12}" ] || echo "unexpected image $id"
		S image inspect "$id" >/dev/null 2>&1 || echo "image $id does not inspect"
		for l in $LAYERS; do
			[ -d "$R/layers/sha256/$l" ] || echo "image $id lacks layer $l"
		done
	done
	return 0
}

"$KA" -c "$T/icount" -l "$T/ilog" "$B/strata" --root "$T/cnt" image import -q --name big:1 \
	"$T/big.tar" >/dev/null
N=$(cat "$T/icount")
grep -v ' open$' "$T/ilog" >"$T/ipoints"
t_diag "image import: $N syscall stops, $(wc -l <"$T/ipoints") at renames, mkdirs, unlinks, links, fsyncs, locks"
t_diag "reference and count: ${SECONDS} s"
for round in $(seq 1 "$ROUNDS"); do
	k=$(pick "$round" "$T/ipoints" "$N")
	"$KA" -n "$k" "$B/strata" --root "$R" image import -q --name big:1 "$T/big.tar" \
		>/dev/null 2>&1
	rc=$?
	kills=$((kills + (rc == 137)))
	t_is "$(check_images)" "" "import killed at stop $k/$N (rc $rc): store consistent"
	checks=$((checks + 1))
	t_ok "import killed at stop $k: rerun succeeds" S image import -q --name big:1 "$T/big.tar"
	t_is "$(S image ls -q)" "${ID:0:12}" "import killed at stop $k: rerun gives the same image"
	t_is "$(check_images; leftovers "$R/images" "$R/layers/sha256" "$R/layers/tar")" "" \
		"import killed at stop $k: after the rerun, whole layers and no leftovers"
	t_ok "import killed at stop $k: the name is back" S image inspect big:1
	S image rm big:1 >/dev/null 2>&1
	checks=$((checks + 1))
done

t_diag "image rounds done: ${SECONDS} s"

# ---- volumes ----

V() { S volume "$@"; }

# check_volume NAME WANT: prints what is wrong; WANT is the listing of a
# whole volume's _data (or empty for an empty volume).
check_volume() {
	local name=$1 want=$2 listed ondisk
	listed=$(V ls -q 2>&1)
	ondisk=$(ls "$R/volumes" 2>/dev/null)
	[ "$listed" = "$ondisk" ] || echo "volume ls shows '$listed', the disk holds '$ondisk'"
	case $listed in
	"") ;;
	"$name")
		V inspect "$name" | grep -q '"k": "v"' || echo "volume $name: labels lost"
		[ "$(dump "$R/volumes/$name/_data")" = "$want" ] || echo "volume $name is not whole"
		;;
	*) echo "unexpected volumes: $listed" ;;
	esac
	return 0
}

mkdir -p "$T/vtmpl"
for f in $(seq 0 999); do echo "$f" >"$T/vtmpl/f$f"; done
VWANT=$(dump "$T/vtmpl")

# volume create: every logged point (not opens) and as many random ones.
"$KA" -c "$T/ccount" -l "$T/clog" "$B/strata" --root "$T/cnt" volume create --label k=v vc \
	>/dev/null
N=$(cat "$T/ccount")
points=$(grep -v ' open$' "$T/clog" | cut -d' ' -f1)
for i in $(seq 1 "$(echo "$points" | wc -w)"); do points="$points $((RANDOM % N + 1))"; done
t_diag "volume create: $N syscall stops, kills at $(echo "$points" | wc -w) of them"
bad=0 rerun=0 n=0
for k in $points; do
	"$KA" -n "$k" "$B/strata" --root "$R" volume create --label k=v vc >/dev/null 2>&1
	kills=$((kills + ($? == 137)))
	n=$((n + 1))
	out=$(check_volume vc "")
	[ -z "$out" ] || { bad=$((bad + 1)); t_diag "create killed at $k: $out"; }
	if ! V create --label k=v vc >/dev/null 2>&1 || [ -n "$(check_volume vc "")" ] ||
		[ "$(V ls -q)" != vc ] || [ -n "$(leftovers "$R/volumes")" ]; then
		rerun=$((rerun + 1))
		t_diag "create killed at $k: rerun: $(check_volume vc ""; leftovers "$R/volumes")"
	fi
	V rm vc >/dev/null 2>&1
	checks=$((checks + 2))
done
t_is "$bad" 0 "volume create killed at $n points: each volume whole or absent"
t_is "$rerun" 0 "volume create killed at $n points: each rerun succeeds, no leftovers"

# volume rm of 1000 files: the logged renames and fsyncs, and random points.
fill() { V create --label k=v vr >/dev/null && cp -a "$T/vtmpl/." "$R/volumes/vr/_data/"; }
fill
"$KA" -c "$T/rcount" -l "$T/rlog" "$B/strata" --root "$R" volume rm vr >/dev/null
N=$(cat "$T/rcount")
points=$(grep -E ' (rename|fsync|flock|mkdir|link)$' "$T/rlog" | cut -d' ' -f1)
for i in $(seq 1 12); do points="$points $(((RANDOM * 32768 + RANDOM) % N + 1))"; done
t_diag "volume rm: $N syscall stops, kills at $(echo "$points" | wc -w) of them"
bad=0 rerun=0 n=0
for k in $points; do
	fill
	"$KA" -n "$k" "$B/strata" --root "$R" volume rm vr >/dev/null 2>&1
	kills=$((kills + ($? == 137)))
	n=$((n + 1))
	out=$(check_volume vr "$VWANT")
	[ -z "$out" ] || { bad=$((bad + 1)); t_diag "rm killed at $k: $out"; }
	if ! V rm -f vr >/dev/null 2>&1 || [ -n "$(V ls -q)" ] || [ -n "$(leftovers "$R/volumes")" ] ||
		[ -n "$(ls "$R/volumes")" ]; then
		rerun=$((rerun + 1))
		t_diag "rm killed at $k: rerun: $(V ls -q; leftovers "$R/volumes")"
	fi
	checks=$((checks + 2))
done
t_is "$bad" 0 "volume rm killed at $n points: each volume whole or absent"
t_is "$rerun" 0 "volume rm killed at $n points: each rerun succeeds, no leftovers"

t_diag "volume rounds done: ${SECONDS} s"

# ---- container rm ----

CR=$T/c
C() { "$B/strata" --root "$CR" "$@"; }
# The command of every container here: fills its writable layer and its
# two volumes the first time, then prints what it finds.
CCMD='[ -d /w ] || { mkdir /w && i=0 &&
while [ $i -lt 1000 ]; do echo $i >/w/f$i; i=$((i + 1)); done &&
echo named >/data/n && echo anon >/anon/a; }
ls /w | wc -l; cat /data/n /anon/a'
CWANT=$(printf '1000\nnamed\nanon')

# mkvictim: a stopped container "victim" (id VID) using the named volume
# cvol and an anonymous volume (VANON), its writable layer linked from the
# template's (so making one is quick and rm deletes 1000 files).
mkvictim() {
	VID=$(C create --name victim -v cvol:/data -v /anon --rootfs-layers "$CLAYERS" \
		sh -c "$CCMD") || return 1
	VANON=$(C volume ls -q | grep -vx cvol)
	mkdir -p "$CR/containers/$VID/upper" &&
		cp -al "$T/upper-tmpl/." "$CR/containers/$VID/upper/" &&
		echo anon >"$CR/volumes/$VANON/_data/a"
}

# after_kill: prints what is wrong with the store right after a kill and
# sets VSTATE to the victim's state in `ps -a` ("" when not listed), so
# it runs outside $(...).  A listed container is either untouched
# (created or exited, and it starts with its layer and volumes whole) or
# marked dead (a removal to finish).
after_kill() {
	local ps
	VSTATE=""
	if ! ps=$(C ps -a --format json 2>&1); then
		echo "ps -a fails: $ps"
		return 0
	fi
	[ -z "$ps" ] || jq -e . <<<"$ps" >/dev/null 2>&1 || echo "ps -a prints '$ps'"
	VSTATE=$(jq -r --arg id "$VID" 'select(.ID == $id) | .State' <<<"$ps" 2>/dev/null)
	case $VSTATE in
	"" | dead) ;;
	created | exited)
		[ -e "$CR/volumes/cvol/refs/$VID" ] && [ -e "$CR/volumes/$VANON/refs/$VID" ] ||
			echo "listed as $VSTATE, a volume reference is gone"
		[ "$(C start -a victim 2>&1)" = "$CWANT" ] || echo "listed as $VSTATE, not whole"
		;;
	*) echo "listed as $VSTATE" ;;
	esac
	return 0
}

# after_rerun FLAG: reruns `rm FLAG victim` and prints what is wrong.  The
# rerun succeeds when the victim was listed; when it was not, the rm had
# committed and the rerun says so, and what it left is only a .rm-<id>
# tree that the next rm deletes.  Either way: the named volume is whole
# and unreferenced (volume rm works), the anonymous one is gone with -v
# and whole and unreferenced without, nothing runs and nothing is mounted.
after_rerun() {
	local out rc left
	out=$(C rm $1 victim 2>&1)
	rc=$?
	if [ -n "$VSTATE" ] && [ $rc != 0 ]; then
		echo "rerun fails: $out"
	elif [ -z "$VSTATE" ] && { [ $rc = 0 ] || ! grep -q 'no such container' <<<"$out"; }; then
		echo "rerun of a committed rm: rc $rc: $out"
	fi
	left=$(ls -A "$CR/containers" | grep -vx "\.rm-[0-9a-f]*" | tr '\n' ' ')
	[ -z "$left" ] || echo "left in containers/: $left"
	left=$(ls -A "$CR/containers")
	[ $rc != 0 ] || [ -z "$left" ] || echo "a finished rm left $left"
	[ "$(cat "$CR/volumes/cvol/_data/n" 2>&1)" = named ] || echo "cvol lost its content"
	out=$(C volume rm cvol 2>&1) || echo "volume rm cvol: $out"
	if [ "$1" = -v ]; then
		[ ! -e "$CR/volumes/$VANON" ] || echo "rm -v left the anonymous volume"
	else
		[ "$(cat "$CR/volumes/$VANON/_data/a" 2>&1)" = anon ] ||
			echo "the anonymous volume lost its content"
		out=$(C volume rm "$VANON" 2>&1) || echo "volume rm of the anonymous volume: $out"
	fi
	out=$(C volume ls -q; leftovers "$CR/volumes")
	[ -z "$out" ] || echo "volumes left: $out"
	out=$(procs_of "$CR")
	[ -z "$out" ] || echo "processes left: $out"
	out=$(grep -l -- "$CR/" /proc/[0-9]*/mountinfo 2>/dev/null)
	[ -z "$out" ] || echo "mounts left in $out"
	# A fresh cvol, and nothing else, for the next round even when this
	# one failed.
	find "$CR/volumes" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
	C volume create cvol >/dev/null && echo named >"$CR/volumes/cvol/_data/n"
	return 0
}

# procs_of DIR: processes whose command line names a path under DIR.
procs_of() {
	grep -l -- "$1/" /proc/[0-9]*/cmdline 2>/dev/null
	return 0
}

# one_of LINES: one of them, at random.
one_of() {
	sed -n "$((RANDOM % $(wc -l <<<"$1") + 1))p" <<<"$1"
}

# rm_points LOG N FLAG: kill points for `rm FLAG`: before and after each
# rename and the fork of the child that deletes the layer, after some
# unlinks before it (references, the anonymous volume), at one unlink of
# the layer, and uniformly at random.
rm_points() {
	local fork pre bulk k n=$((ROUNDS / 3 + 1)) i
	fork=$(grep -m1 ' fork$' "$1" | cut -d' ' -f1)
	pre=$(awk -v f="$fork" '$1 < f' "$1")
	bulk=$(awk -v f="$fork" '$1 > f && $2 == "unlink" { print $1 }' "$1")
	for k in $(grep ' rename$' <<<"$pre" | cut -d' ' -f1) $fork; do echo "$k $((k + 1))"; done
	k=$(grep ' unlink$' <<<"$pre" | cut -d' ' -f1)
	for i in $(seq "$([ "$3" = -v ] && echo 3 || echo 1)"); do
		[ -z "$k" ] || echo $(($(one_of "$k") + 1))
	done
	[ -z "$bulk" ] || one_of "$bulk"
	for i in $(seq "$n"); do echo $(((RANDOM * 32768 + RANDOM) % $2 + 1)); done
}

# rm_rounds FLAG: `rm FLAG victim` to the end, then killed at each point.
rm_rounds() {
	local flag=$1 k n=0 bad=0 rerun=0 points states=""
	mkvictim
	"$KA" -f -c "$T/rmcount" -l "$T/rmlog" "$B/strata" --root "$CR" rm $flag victim >/dev/null
	N=$(cat "$T/rmcount")
	after_kill >"$T/killed"
	t_is "$(cat "$T/killed"; after_rerun "$flag")" "" "rm ${flag:+$flag }to the end: clean"
	points=$(rm_points "$T/rmlog" "$N" "$flag")
	t_diag "rm ${flag:-without -v}: $N syscall stops, $(grep -c ' unlink$' "$T/rmlog")" \
		"unlinks, kills at $(echo $points)"
	for k in $points; do
		mkvictim
		"$KA" -f -n "$k" "$B/strata" --root "$CR" rm $flag victim >/dev/null 2>&1
		kills=$((kills + ($? == 137)))
		n=$((n + 1))
		after_kill >"$T/killed"
		states="$states ${VSTATE:-gone}"
		out=$(cat "$T/killed")
		[ -z "$out" ] || { bad=$((bad + 1)) && t_diag "rm $flag killed at $k: $out"; }
		out=$(after_rerun "$flag")
		[ -z "$out" ] ||
			{ rerun=$((rerun + 1)) && t_diag "rm $flag killed at $k (${VSTATE:-gone}): rerun: $out"; }
		checks=$((checks + 2))
	done
	t_diag "rm ${flag:-without -v}: after the kills:" \
		"$(echo $states | tr ' ' '\n' | sort | uniq -c | xargs)"
	t_is "$bad" 0 "rm ${flag:+$flag }killed at $n points: each container whole, marked dead or gone"
	t_is "$rerun" 0 \
		"rm ${flag:+$flag }killed at $n points: after the rerun no container, process, mount or reference"
	mkvictim
	C rm victim >/dev/null
	C volume rm "$VANON" >/dev/null
	t_is "$(ls -A "$CR/containers")" "" "rm${flag:+ $flag}: the next rm deletes what killed ones left"
}

if [ ! -c /dev/fuse ]; then
	t_skip "container rm killed part way" "no /dev/fuse"
elif ! command -v jq >/dev/null; then
	t_skip "container rm killed part way" "jq is not installed"
elif ! CLAYERS=$(mkimage "$T/img"); then
	t_skip "container rm killed part way" "cannot build the test image"
else
	t_is "$(C run --name tmpl -v cvol:/data -v /anon --rootfs-layers "$CLAYERS" sh -c "$CCMD")" \
		"$CWANT" "the template container fills its layer and its volumes"
	cp -a "$CR/containers/$(C ps -a --format json | jq -r .ID)/upper" "$T/upper-tmpl"
	C rm -v tmpl >/dev/null
	rm_rounds -v
	rm_rounds ""
fi

t_diag "$kills kills injected, $checks store states checked (${SECONDS} s)"
t_done
