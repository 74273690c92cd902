#!/bin/bash
# tests/volumes/cli.t: `strata volume create|ls|inspect|rm|prune` end to
# end, plus the strata command's global behaviour (root, help, errors).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
S=$B/strata
[ -x "$S" ] || t_skip_all "strata is not built"
st() { "$S" --root "$T/root" "$@"; }
# rc CMD...: prints the exit status of CMD
rc() { "$@" >/dev/null 2>&1; echo $?; }

t_is "$(st volume create data --label app=db --label tier)" "data" "create prints the name"
t_is "$(st volume create data --label app=other)" "data" "create of an existing name returns it"
t_is "$(st volume inspect data | jq -r '.[0].Labels.app')" "db" "the existing volume is unchanged"
anon=$(st volume create)
t_ok "create without a name makes a 64-hex anonymous volume" grep -Eqx '[0-9a-f]{64}' <<<"$anon"
t_is "$(st volume create --opt type=tmpfs -o device=tmpfs opts)" "opts" "create with --opt and -o"

sorted=$(printf '%s\n' "$anon" data opts | LC_ALL=C sort)
t_is "$(st volume ls)" "$(echo 'DRIVER    VOLUME NAME'; sed 's/^/local     /' <<<"$sorted")" \
	"ls prints Docker's columns, sorted by name"
t_is "$(st volume ls -q)" "$sorted" "ls -q prints names only"
t_is "$(st volume ls -q --filter label=app)" "data" "ls --filter label=app"
t_is "$(st volume ls -q --filter label=app=db --filter label=tier)" "data" "ls --filter label=k=v and label=k"
t_is "$(st volume ls -q --filter label=app=nope)" "" "ls --filter label with another value"
t_is "$(st volume ls -q --filter name=^op)" "opts" "ls --filter name"
t_is "$(st volume ls -q --filter dangling=true | wc -l)" "3" "ls --filter dangling=true: all unused"
t_is "$(st volume ls --format json | jq -r 'select(.Name=="data") | .Driver + " " + .Labels')" \
	"local app=db,tier=" "ls --format json"
t_is "$(rc st volume ls --filter bogus=1)" "2" "ls --filter with an unknown key is a usage error"

t_ok "inspect prints a JSON array" jq -e 'length == 2' < <(st volume inspect data opts)
t_is "$(st volume inspect data | jq -r '.[0] | keys | join(",")')" \
	"CreatedAt,Driver,Labels,Mountpoint,Name,Options,Scope" "inspect has Docker's keys"
t_is "$(st volume inspect data | jq -r '.[0].Mountpoint')" "$T/root/volumes/data/_data" "Mountpoint"
t_ok "the Mountpoint is a directory" test -d "$T/root/volumes/data/_data"
t_ok "CreatedAt is RFC 3339" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(Z|[+-][0-9:]{5})$' \
	<<<"$(st volume inspect data | jq -r '.[0].CreatedAt')"
t_is "$(st volume inspect opts | jq -c '.[0].Options')" '{"device":"tmpfs","type":"tmpfs"}' "Options"
t_is "$(st volume inspect data nope 2>"$T/err" | jq -r '.[].Name'; echo "rc=${PIPESTATUS[0]}")" \
	"$(printf 'data\nrc=1')" "inspect of a missing volume prints the others and fails"
t_is "$(cat "$T/err")" "strata: no such volume: nope" "the error is printed once"

t_is "$(rc st volume create 'b@d')" "1" "create refuses an invalid name"
t_is "$(rc st volume create --opt foo=bar x1)" "1" "create refuses an unknown option"
t_is "$(st volume create --opt foo=bar x1 2>&1)" 'strata: create x1: invalid option: "foo"' \
	"unknown option message"
t_is "$(rc st volume create a1 a2)" "2" "create with two names is a usage error"
t_is "$(rc st volume create --bogus)" "2" "an unknown flag is a usage error"
t_is "$(rc st volume frob)" "2" "an unknown verb is a usage error"

echo hello >"$T/root/volumes/data/_data/f"
t_is "$(st volume rm data opts)" "$(printf 'data\nopts')" "rm prints what it removed"
t_fail "the volume directory is gone" test -e "$T/root/volumes/data"
t_is "$(st volume rm data 2>&1; echo "rc=$?")" "$(printf 'strata: no such volume: data\nrc=1')" \
	"rm of a missing volume fails"
t_is "$(rc st volume rm -f data)" "0" "rm -f of a missing volume succeeds"
t_is "$(rc st volume rm)" "2" "rm without a name is a usage error"

st volume create named >/dev/null
head -c 3000 /dev/zero >"$T/root/volumes/$anon/_data/zeros"
t_is "$(st volume prune -f)" "$(printf 'Deleted Volumes:\n%s\n\nTotal reclaimed space: 3kB' "$anon")" \
	"prune removes anonymous volumes and prints the space"
t_is "$(st volume ls -q)" "named" "prune keeps named volumes"
t_is "$(echo n | st volume prune -a)" \
	"$(printf 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ')" \
	"prune asks first; 'n' keeps everything"
t_is "$(st volume ls -q)" "named" "nothing was removed"
t_is "$(echo y | st volume prune -a | tail -1)" "Total reclaimed space: 0B" "prune -a after 'y'"
t_is "$(st volume ls -q)" "" "prune -a removed the named volume"

# Concurrent strata processes creating and removing volumes.
for i in 1 2 3 4 5 6; do
	(for j in 1 2 3 4 5; do st volume create "v$i-$j" >/dev/null; st volume create shared >/dev/null; done) &
done
wait
t_is "$(st volume ls -q | wc -l)" "31" "30 volumes and one shared, from 6 processes at once"
t_ok "every volume's metadata is whole" bash -c "for f in '$T'/root/volumes/*/meta.json; do jq -e .Name \"\$f\" >/dev/null || exit 1; done"
for i in 1 2 3 4 5 6; do st volume rm "v$i-1" "v$i-2" >/dev/null & done
wait
t_is "$(st volume ls -q | wc -l)" "19" "concurrent rm"

# The strata command itself.
t_is "$("$S" version)" "strata version 0.1.0" "strata version"
t_ok "strata --help lists the volume command" grep -q '^  volume' < <("$S" --help)
t_is "$(rc "$S" --bogus version)" "2" "an unknown global option is a usage error"
t_is "$(STRATA_ROOT=$T/envroot "$S" volume create e1 && ls "$T/envroot/volumes")" "$(printf 'e1\ne1')" \
	"STRATA_ROOT selects the root"
t_is "$(cd "$T" && "$S" --root rel volume create r1 >/dev/null && "$S" --root "$T/rel" volume inspect r1 | jq -r '.[0].Mountpoint')" \
	"$T/rel/volumes/r1/_data" "a relative --root is made absolute"
if [ "$STRATA_ROOTLESS" = 1 ]; then
	t_is "$(env -u STRATA_ROOT XDG_DATA_HOME="$T/xdg" "$S" volume create x1 >/dev/null &&
		env -u STRATA_ROOT XDG_DATA_HOME="$T/xdg" "$S" volume inspect x1 | jq -r '.[0].Mountpoint')" \
		"$T/xdg/strata/volumes/x1/_data" "rootless default root is \$XDG_DATA_HOME/strata"
	t_is "$(env -u STRATA_ROOT -u XDG_DATA_HOME HOME="$T/home" "$S" volume create h1 >/dev/null &&
		ls "$T/home/.local/share/strata/volumes")" "h1" "otherwise ~/.local/share/strata"
else
	t_skip "rootless default root" "runs rootless only"
	t_skip "rootless default root (HOME)" "runs rootless only"
fi
t_done
