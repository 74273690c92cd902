#!/bin/bash
# tests/fs/killpriv.t: set-id bits and file capabilities after writes,
# truncations and chowns.  strata-fs takes this job over from the kernel
# (FUSE_HANDLE_KILLPRIV_V2: no security.capability lookup before every
# write), so each case runs on a native directory and through the mount and
# both must end the same: a writer without CAP_FSETID loses setuid, and
# setgid when group execute is set; a writer holding it keeps them; a chown
# drops them; any write drops security.capability.  An open with O_TRUNC
# counts as a truncation (the kernel alone skips that one when the daemon
# truncates at open).  The daemon's debug log shows the kernel asks for
# security.capability at most once for four writes (before: every write).
# rootless: yes
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fslib.sh"
fs_need_sfs
t_need setpriv

L=$T/lower N=$T/native M=$T/mnt
mkdir -p "$L" "$N" "$T/upper" "$T/work" "$M"
# nocap CMD...: CMD as the same user with no capability at all
nocap() { setpriv --bounding-set=-all --inh-caps=-all "$@"; }

# Each case: a file made with MODE, then STEP run on it; in the lower (the
# step then copies it up) and natively.
cases=(
	"4777 nocap sh -c 'echo x >>\"\$1\"' _"
	"2777 nocap sh -c 'echo x >>\"\$1\"' _"
	"2767 nocap sh -c 'echo x >>\"\$1\"' _"
	"6777 nocap truncate -s 1"
	"4777 nocap sh -c ': >\"\$1\"' _"
	"4777 sh -c 'echo x >>\"\$1\"' _"
	"4755 chown 0:0"
	"2755 chown 0:0"
)
for i in "${!cases[@]}"; do
	set -- ${cases[$i]}
	for d in "$L" "$N"; do
		echo data >"$d/f$i" && chmod "$1" "$d/f$i"
	done
done
# a file created through the mount, written clean first, then made setuid
echo data >"$N/late" && echo x >>"$N/late" && chmod 4777 "$N/late"

t_ok "mount" sfs_mount "$M" "lowerdir=$L,upperdir=$T/upper,workdir=$T/work"
for i in "${!cases[@]}"; do
	c=${cases[$i]}
	mode=${c%% *}
	step=${c#* }
	eval "$step \"\$N/f$i\"" >/dev/null 2>&1
	eval "$step \"\$M/f$i\"" >/dev/null 2>&1
	want=$(stat -c %a "$N/f$i")
	t_is "$(stat -c %a "$M/f$i" 2>&1)" "$want" "mode $mode, then $step: $want as natively"
done
echo data >"$M/late" && echo x >>"$M/late" && chmod 4777 "$M/late"
nocap sh -c 'echo y >>"$1"' _ "$N/late"
nocap sh -c 'echo y >>"$1"' _ "$M/late"
t_is "$(stat -c %a "$M/late")" "$(stat -c %a "$N/late")" \
	"a file written clean, then made setuid: the next write clears it"
t_is "$(stat -c %a "$M/late")" 777 "(777)"
t_is "$(stat -c %a "$M/f0")" 777 "a writer without CAP_FSETID loses setuid"
t_is "$(stat -c %a "$M/f1")" 777 "and setgid with group execute"
if [ "$STRATA_ROOTLESS" = 1 ]; then
	# capable(CAP_FSETID) counts in the initial user namespace only
	t_is "$(stat -c %a "$M/f5")" 777 "root of a user namespace loses setuid too"
else
	t_is "$(stat -c %a "$M/f5")" 4777 "a writer holding CAP_FSETID keeps setuid"
fi
t_is "$(cat "$M/f0")" "data
x" "the write itself lands"
t_umount "$M"
t_is "$(stat -c %a "$T/upper/f0" "$T/upper/late" | tr '\n' ' ')" "777 777 " \
	"the upper files carry the cleared modes"

# File capabilities: setting security.capability needs real root.
if [ "$STRATA_ROOTLESS" = 1 ] || ! command -v setfattr >/dev/null; then
	t_skip "writes drop security.capability" "needs real root and setfattr"
else
	cap=0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=
	for d in "$L" "$N"; do
		echo prog >"$d/capped" && setfattr -n security.capability -v "$cap" "$d/capped"
		echo prog >"$d/capped2" && setfattr -n security.capability -v "$cap" "$d/capped2"
	done
	t_ok "mount again" sfs_mount "$M" "lowerdir=$L,upperdir=$T/upper,workdir=$T/work"
	t_ok "a lower file's capability shows through the mount" \
		getfattr -n security.capability "$M/capped"
	echo more >>"$N/capped" && echo more >>"$M/capped"
	nocap sh -c 'echo more >>"$1"' _ "$N/capped2"
	nocap sh -c 'echo more >>"$1"' _ "$M/capped2"
	t_fail "a write by root drops security.capability" getfattr -n security.capability "$M/capped"
	t_fail "(as natively)" getfattr -n security.capability "$N/capped"
	t_fail "a write without capabilities drops it too" getfattr -n security.capability "$M/capped2"
	t_umount "$M"
fi

# The kernel hands the job over: writes no longer ask for the capability
# each time.
t_ok "mount with debug output" start_debug "lowerdir=$L,upperdir=$T/upper,workdir=$T/work,passthrough=0"
stat "$M" >/dev/null # the INIT exchange is over once a request is answered
if grep -q "killpriv: the daemon clears set-id bits" "$T/d.log"; then
	g0=$(seen GETXATTR)
	w0=$(seen WRITE)
	for _ in 1 2 3 4; do echo x >>"$M/f7"; done
	t_is "$(($(seen WRITE) - w0))" 4 "four appends: four WRITEs"
	g=$(($(seen GETXATTR) - g0))
	t_ok "and at most one GETXATTR (got $g)" test "$g" -le 1
else
	t_skip "no GETXATTR on writes" "the kernel did not offer FUSE_HANDLE_KILLPRIV_V2"
fi
t_umount "$M"
t_done
