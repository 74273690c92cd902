#!/bin/bash
# tests/launcher/config.t: an imported image's config applied as Docker
# applies it -- Entrypoint and Cmd (user args replace Cmd, --entrypoint
# drops it), Env under -e and --env-file, WorkingDir created when missing,
# User by name from the image's /etc/passwd or as uid:gid, and VOLUME paths
# made anonymous volumes unless a mount covers them, removed by rm -v and
# run --rm only.
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lch.sh"
. "$(dirname "$0")/../image/imglib.sh"

# mk_oci writes config_json's output as the image config; this test's
# images differ only in $CONFIG.
config_json() {
	local ids="" d
	for d in "$@"; do ids="$ids${ids:+,}\"sha256:$d\""; done
	printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$CONFIG" "$ids"
}
# image NAME CONFIG: builds an OCI layout of the built-in image with that
# config and imports it as NAME.
image() {
	local dir=$T/oci-${1//[:\/]/-}
	CONFIG=$2 mk_oci "$dir" none "$T/img/oci/l0" "$T/img/oci/l1" "$T/img/oci/l2" >/dev/null &&
		st image import -q --name "$1" "$dir" >/dev/null
}
mkimage "$T/img" oci >/dev/null || t_skip_all "cannot build the OCI layers"
# GNU tar names pax headers after its pid: tar each layer once, so every
# image of this test has the same diff_ids.
eval "$(declare -f layer_tar | sed '1s/layer_tar/tar_layer_once/')"
layer_tar() {
	local c=$T/tars/${1//\//_}
	[ -f "$c" ] || { mkdir -p "$T/tars" && tar_layer_once "$1" "$c"; } || return
	cp "$c" "$2"
}

# Rootless, only uid 0 is mapped: the image's user is root, by name.
if [ "$STRATA_ROOTLESS" = 1 ]; then IUSER=root IID="uid=0(root) gid=0(root) groups=0(root)" IHOME=/root
else IUSER=app IID="uid=1000(app) gid=1000(app) groups=1000(app)" IHOME=/home/app; fi
image cfg:full '{"Env":["PATH=/usr/bin:/bin","GREETING=hello from the image","MODE=image"],
 "Entrypoint":["/bin/echo","entry"],"Cmd":["default","cmd"],"WorkingDir":"/work/dir",
 "User":"'$IUSER'","Volumes":{"/var/lib/data":{},"/cache":{}}}'
t_is "$?" "0" "an OCI image with a config imports"
image cfg:cmd '{"Cmd":["sh","-c","echo cmd only; pwd; id -u"]}'
t_is "$(st image ls | grep -c '^cfg:')" "2" "and a second one, sharing its layers"
t_is "$(ls "$ROOT/layers/sha256" | wc -l)" "3" "three layer directories for both images"

# Entrypoint and Cmd
t_is "$(st run --rm cfg:full)" "entry default cmd" "run IMAGE: Entrypoint + Cmd"
t_is "$(st run --rm cfg:full a b)" "entry a b" "run IMAGE ARGS: Entrypoint + ARGS (Cmd replaced)"
t_is "$(st run --rm --entrypoint /bin/echo cfg:full)" "" "--entrypoint drops the image's Cmd"
t_is "$(st run --rm --entrypoint /bin/echo cfg:full x y)" "x y" "--entrypoint X IMAGE ARGS: X ARGS"
t_is "$(rc st run --rm --entrypoint '' cfg:full)" "125" "--entrypoint '' and no args: no command"
t_is "$(st run --rm --entrypoint '' cfg:full 2>&1)" "strata: no command specified" "with Docker's message"
t_is "$(st run --rm --entrypoint '' cfg:full echo z)" "z" "--entrypoint '' IMAGE CMD: CMD alone"
t_is "$(st run --rm cfg:cmd)" "$(printf 'cmd only\n/\n0')" \
	"no Entrypoint: Cmd runs, in / as root (no WorkingDir, no User)"
t_is "$(st run --rm cfg:cmd echo replaced)" "replaced" "no Entrypoint: ARGS replace Cmd"
t_is "$(st ps -a -q)" "" "every --rm container is gone"

# Env
env_of() { st run --rm --entrypoint env "$@" | sort; }
out=$(env_of cfg:full)
t_ok "the image's Env is set" grep -qx 'GREETING=hello from the image' <<<"$out"
t_ok "PATH is the image's" grep -qx 'PATH=/usr/bin:/bin' <<<"$out"
t_ok "HOME comes from the image user's passwd entry" grep -qx "HOME=$IHOME" <<<"$out"
out=$(env_of -e MODE=cli -e NEW=1 -e PATH=/bin cfg:full)
t_is "$(grep -E '^(MODE|NEW|PATH|GREETING)=' <<<"$out")" \
	"$(printf 'GREETING=hello from the image\nMODE=cli\nNEW=1\nPATH=/bin')" "-e wins over the image's Env; the rest is kept"
printf 'MODE=file\nFROMFILE=yes\n' >"$T/envfile"
out=$(env_of --env-file "$T/envfile" -e FROMFILE=flag cfg:full)
t_is "$(grep -E '^(MODE|FROMFILE)=' <<<"$out")" "$(printf 'FROMFILE=flag\nMODE=file')" \
	"--env-file over the image, -e over --env-file"
t_is "$(MODE=caller env_of -e MODE cfg:full | grep ^MODE=)" "MODE=caller" "-e KEY takes the caller's value"
t_is "$(env -u MODE "$S" --root "$ROOT" run --rm --entrypoint env -e MODE cfg:full | grep -c ^MODE=)" "0" \
	"-e KEY unset in the caller: the image's value is dropped too"
t_ok "no Env in the image: Docker's default PATH" grep -qx \
	'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' <<<"$(env_of cfg:cmd)"

# WorkingDir
t_is "$(st run --rm --entrypoint pwd cfg:full)" "/work/dir" "WorkingDir is the command's directory"
st run --name wd --entrypoint sh cfg:full -c 'ls -ld /work/dir | cut -c1-10' >"$T/wd.out"
t_is "$(cat "$T/wd.out")" "drwxr-xr-x" "and it was created, 0755"
t_ok "in the container's writable layer" test -d "$ROOT/containers/$(st ps -a --format json | jq -r .ID)/upper/work/dir"
st rm -v wd >/dev/null
t_is "$(st run --rm --entrypoint pwd -w /other cfg:full)" "/other" "-w replaces WorkingDir"

# User
t_is "$(st run --rm --entrypoint id cfg:full)" "$IID" "User by name, from the image's /etc/passwd"
t_is "$(st run --rm --entrypoint id -u 0 cfg:full)" "uid=0(root) gid=0(root) groups=0(root)" "-u replaces User"
if [ "$STRATA_ROOTLESS" = 1 ]; then
	image cfg:app '{"User":"app","Cmd":["id"]}'
	t_is "$(st run --rm cfg:app 2>&1)" \
		"strata: setgid 1000 (is it mapped in the user namespace?): Invalid argument" \
		"User app, rootless with one id mapped: a clear error (subuid.t maps a range)"
	t_skip "User uid:gid" "only uid 0 is mapped"
	t_skip "User uid without a passwd entry" "only uid 0 is mapped"
else
	image cfg:ids '{"User":"1000:65534","Cmd":["id"]}'
	t_is "$(st run --rm cfg:ids)" "uid=1000(app) gid=65534(nogroup)" \
		"User uid:gid (an explicit group: no supplementary groups)"
	image cfg:nouser '{"User":"4242","Cmd":["sh","-c","id; echo $HOME"]}'
	t_is "$(st run --rm cfg:nouser)" "$(printf 'uid=4242 gid=0(root)\n/')" \
		"User uid without a passwd entry: gid 0, HOME=/"
fi
image cfg:badgroup '{"User":"root:nosuchgroup","Cmd":["id"]}'
t_is "$(st run --rm cfg:badgroup 2>&1; echo "status $?")" \
	"$(printf 'strata: unable to find group nosuchgroup: no matching entries in group file\nstatus 125')" \
	"User with an unknown group: Docker's error, status 125"

# Volumes
vols() { st volume ls -q | sort; }
st run --name v1 --entrypoint sh cfg:full -c 'ls /var/lib/data; grep -c " /cache " /proc/mounts' >"$T/v1.out"
t_is "$(cat "$T/v1.out")" "$(printf 'nested\nrecords.csv\nseed.txt\n1')" \
	"each VOLUME is a mount, a new one filled from the image"
anon=$(vols)
t_is "$(wc -l <<<"$anon")" "2" "two anonymous volumes"
t_fail "with 64-hex names" grep -Evx '[0-9a-f]{64}' <<<"$anon"
t_is "$(st ps -a --format json | jq -r .Names)" "v1" "(v1 exited, kept)"
st rm v1 >/dev/null
t_is "$(vols)" "$anon" "rm without -v keeps the anonymous volumes (as Docker)"
for v in $anon; do st volume rm "$v" >/dev/null; done
st run --name v2 --entrypoint true cfg:full
t_is "$(vols | wc -l)" "2" "run again: two new anonymous volumes"
st rm -v v2 >/dev/null
t_is "$(vols)" "" "rm -v removes them"
st run --rm --entrypoint true cfg:full
t_is "$(vols)" "" "run --rm removes them"
st run --rm -v named:/var/lib/data --entrypoint sh cfg:full -c 'echo x >/var/lib/data/x'
t_is "$(vols)" "named" "-v NAME:/var/lib/data covers that VOLUME: only /cache was anonymous (and removed)"
t_is "$(st run --rm --tmpfs /cache -v named:/var/lib/data --entrypoint sh cfg:full \
	-c 'grep " /cache " /proc/mounts | cut -d" " -f3')" "tmpfs" "--tmpfs /cache covers the other one"
t_is "$(vols)" "named" "no anonymous volume then"
mkdir -p "$T/bind"
t_is "$(st run --rm -v "$T/bind:/cache/" -v named:/var/lib/data --entrypoint ls cfg:full /cache; vols)" "named" \
	"a bind on /cache/ (trailing slash) covers /cache"
st volume rm named >/dev/null

# The image a container came from
st create --name fromimg cfg:full >/dev/null
t_is "$(st ps -a --format json | jq -r '.Image + " " + .Command')" "cfg:full /bin/echo entry default cmd" \
	"ps shows the image and the command Docker would run"
t_is "$(st start -a fromimg)" "entry default cmd" "create, then start -a, runs it"
st rm -v fromimg >/dev/null
t_is "$(vols)$(st ps -a -q)" "" "nothing left"
t_done
