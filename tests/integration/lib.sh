# shellcheck shell=bash disable=SC2034
# Helpers for the integration tests; sourced by run-integration.sh into a fresh bash for each test.
#
# A test is a shell function named test_* in a tests/integration/t_*.sh file. It passes when it
# returns 0, fails when it returns non-zero (assertions print why and exit), and is skipped when it
# calls `skip "<reason>"` (only for what the machine lacks, never to hide a failure).
#
# Environment provided by the runner:
#   CELLA      the binary under test (absolute path)
#   TEST_TMP   an empty directory owned by the current user, the test's cwd, removed afterwards
#   CELLA_PASS root | user | userns-root (which pass of the suite is running)
#   T_SKIPFILE where skip() writes its reason
#   T_ASSERTS  where each assertion notes whether it was positive (+) or negative (-)
#
# Negative assertions (assert_rc_ne, assert_not_contains, assert_ne) hold just as well when cella
# fails before the workload runs. A test that makes only negative assertions therefore proves
# nothing, and the runner reports it as failed: show first, in the same setup, that the positive
# case works (assert_ok plus what the workload saw), or name the failure (assert_contains "$ERR").

: "${CELLA:=$PWD/build/cella}"
: "${TEST_TMP:=${TMPDIR:-/tmp}}"
: "${CELLA_PASS:=$( [ "$(id -u)" = 0 ] && echo root || echo user)}"
# Seconds one cella invocation may take inside a test (the whole test has 30 s).
: "${CMD_TIMEOUT:=20}"

OUT="" ERR="" RC="" LAST_CMD=""

# --- reporting --------------------------------------------------------------------------------

# Print the last command's result, so that a failure message says what was run and what it said.
_show_last() {
	[ -n "$LAST_CMD" ] || return 0
	printf 'command: %s\n' "$LAST_CMD"
	printf 'rc: %s\n' "$RC"
	printf 'stdout:\n%s\n' "$OUT" | sed -n '1,40p'
	printf 'stderr:\n%s\n' "$ERR" | sed -n '1,40p'
}

fail() {
	printf 'FAIL: %s\n' "$*"
	_show_last
	exit 1
}

skip() {
	if [ -n "${T_SKIPFILE:-}" ]; then
		printf '%s\n' "$*" >"$T_SKIPFILE"
	fi
	printf 'SKIP: %s\n' "$*"
	exit 0
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not installed"
	done
}

is_root() { [ "$EUID" = 0 ]; } # (bash's own: `id -u` was a fork per call, many a test)

# --- running cella ----------------------------------------------------------------------------

# run_cella ARGS...: run "$CELLA" ARGS... with the caller's stdin, under a timeout.
# Sets OUT (stdout), ERR (stderr), RC (exit status; 124 means it hung), LAST_CMD.
run_cella() {
	local o e
	o=$(mktemp "$TEST_TMP/.out.XXXXXX") || fail "mktemp"
	e=$(mktemp "$TEST_TMP/.err.XXXXXX") || fail "mktemp"
	LAST_CMD="cella $(_quote "$@")"
	timeout -k 2 "$CMD_TIMEOUT" "$CELLA" "$@" >"$o" 2>"$e"
	RC=$?
	OUT=$(cat "$o")
	ERR=$(cat "$e")
	rm -f "$o" "$e"
	if [ "$RC" = 124 ] || [ "$RC" = 137 ] && [ -z "$ERR$OUT" ]; then
		ERR="(killed by the test's ${CMD_TIMEOUT}s timeout?)"
	fi
	return 0
}

# run_cmd ARGS...: same as run_cella for any command (used for `script`, host tools, ...).
run_cmd() {
	local o e
	o=$(mktemp "$TEST_TMP/.out.XXXXXX") || fail "mktemp"
	e=$(mktemp "$TEST_TMP/.err.XXXXXX") || fail "mktemp"
	LAST_CMD=$(_quote "$@")
	timeout -k 2 "$CMD_TIMEOUT" "$@" >"$o" 2>"$e"
	RC=$?
	OUT=$(cat "$o")
	ERR=$(cat "$e")
	rm -f "$o" "$e"
	return 0
}

_quote() {
	local a s=""
	for a in "$@"; do
		case "$a" in
		*[!A-Za-z0-9_./:=,+@%-]* | "") s="$s $(printf '%q' "$a")" ;;
		*) s="$s $a" ;;
		esac
	done
	printf '%s' "${s# }"
}

# --- assertions -------------------------------------------------------------------------------

# _asserted +|-: note a positive or negative assertion for the runner's check (see the top).
_asserted() {
	[ -z "${T_ASSERTS:-}" ] || printf '%s' "$1" >>"$T_ASSERTS"
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	_asserted +
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_ne() {
	_asserted -
	[ "$1" != "$2" ] || fail "${3:-value}: expected something other than '$1'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
	_asserted +
	case "$1" in
	*"$2"*) ;;
	*) fail "${3:-output} does not contain '$2'" ;;
	esac
}

assert_not_contains() {
	_asserted -
	case "$1" in
	*"$2"*) fail "${3:-output} contains '$2'" ;;
	*) ;;
	esac
}

# assert_match HAYSTACK ERE [WHAT]: some line of HAYSTACK matches the extended regex.
assert_match() {
	_asserted +
	printf '%s\n' "$1" | grep -Eq -- "$2" || fail "${3:-output} has no line matching /$2/"
}

# assert_rc EXPECTED [WHAT]: the last run_cella/run_cmd exited with EXPECTED.
assert_rc() {
	_asserted +
	[ "$RC" = "$1" ] || fail "${2:-exit status}: expected $1, got $RC"
}

# assert_rc_ne NOT-EXPECTED [WHAT]
assert_rc_ne() {
	_asserted -
	[ "$RC" != "$1" ] || fail "${2:-exit status}: expected anything but $1"
}

# assert_ok: the last command ran and exited 0 (for the many "just run it" cases).
assert_ok() {
	_asserted +
	[ "$RC" = 0 ] || fail "${1:-command} failed with status $RC"
}

# assert_cella_error CODE NEEDLE: the docker-like error contract for bad input: exit CODE, and a
# stderr line that starts with "cella: " and names NEEDLE.
assert_cella_error() {
	_asserted +
	assert_rc "$1" "exit status for bad input"
	printf '%s\n' "$ERR" | grep -F -- "$2" | grep -q '^cella: ' ||
		fail "no stderr line starting 'cella: ' that names '$2'"
}

# --- leftovers --------------------------------------------------------------------------------
#
# What a cella command may leave behind once it has returned, snapshotted before and after:
#   mounts   the multiset of mount points (/proc/self/mountinfo)
#   procs    processes nobody waits for (their parent is PID 1, or another such process) that are
#            cella's (named cella, or a memfd copy), its helpers (qemu-system-*, pasta, passt,
#            slirp4netns, proot), or a workload (in a PID namespace other than ours); those whose
#            environment names another test's TEST_TMP are another run's, and as a user only
#            processes of this user or its subordinate ids count
#   tmp      /tmp, /var/tmp, /dev/shm entries named cella*
#   links    network interfaces (host veths, bridges, taps)
#   nft      nft tables named cella* and their chains; iptables chains and rules naming CELLA
#            (root of the machine only: nobody else can read them)
#   cgroups  empty container cgroups (cella/<ID>) of any hierarchy, where this user makes cgroups,
#            of the containers in the test's own data root or OCI state root (a foreground run's
#            cgroup cannot be told from another run's; one that still holds processes, or whose
#            container has a monitor, is a live container's; leaked processes are in procs)
#   leases   lines of the private networks' lease files, and rootless network helper records

# (mounts under another test's temp directory, of a concurrent run of the suite, are its own)
_snap_mounts() {
	awk -v mine="${TEST_TMP:-/nonexistent}/" '
		$5 !~ /^\/tmp\/itest-(root|user)\.[^\/]+\/t\.[^\/]+\// || index($5, mine) == 1 { print $5 }' /proc/self/mountinfo
}

# Subordinate uid range of this user: "START COUNT" (none: "0 0").
_subuid_range() {
	local me
	me=$(id -un)
	awk -F: -v u="$me" -v id="$(id -u)" '($1 == u || $1 == id) { print $2, $3; f = 1; exit } END { if (!f) print 0, 0 }' /etc/subuid 2>/dev/null || echo 0 0
}

# Each line: PID PPID COMM ARGV...
#
# Only what is this test's counts, on a machine where other runs start and stop containers too: a
# process whose environment has this test's TEST_TMP (cella and what it starts with its own
# environment); else (a workload, a helper that clears its environment) one that started after
# leftovers_snapshot. A process another run started is skipped; so is, as a user, one of other
# users, or one whose environment this user cannot read (another user namespace's).
_snap_procs() {
	# Builtins only in the loop (a fork per process makes this take seconds); one find for the
	# links of every process.
	local d pid ppid comm exe k v args uid mypidns me root realroot sub_lo sub_n env st t0=${_LEFTOVER_T0:-0} ours
	declare -A exes=() pidns=() parent=() line=() orphan=()
	me=$EUID
	root=0 realroot=0 sub_lo=0 sub_n=0
	is_root && root=1
	is_real_root && realroot=1
	[ "$root" = 1 ] || read -r sub_lo sub_n < <(_subuid_range)
	mypidns=$(readlink /proc/self/ns/pid)
	while read -r d exe; do
		case "$d" in
		*/exe) exes[${d%/exe}]=$exe ;;
		*/ns/pid) pidns[${d%/ns/pid}]=$exe ;;
		esac
	done < <(find /proc/[0-9]*/exe /proc/[0-9]*/ns/pid -maxdepth 0 -printf '%p %l\n' 2>/dev/null)
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = "$BASHPID" ] && continue
		read -r comm 2>/dev/null <"$d/comm" || continue
		read -r st 2>/dev/null <"$d/stat" || continue
		st=${st##*) }
		read -ra st <<<"$st" # state ppid pgrp ... (field 3 onwards): starttime is the 20th
		ppid=${st[1]:-}
		[ -n "$ppid" ] && [ "${st[0]}" != Z ] || continue # (a zombie holds nothing; PID 1 reaps it)
		args=()
		mapfile -d '' args 2>/dev/null <"$d/cmdline"
		exe=${exes[$d]:-}
		case "$comm|${args[0]##*/}|${exe##*/}" in
		cella\|* | *\|cella\|* | *\|cella | *\|cella\ * | *memfd:cella*) ;;
		qemu-system* | pasta* | passt* | slirp4netns* | proot*) ;;
		*)
			[ -n "${pidns[$d]:-}" ] && [ "${pidns[$d]}" != "$mypidns" ] || continue
			;;
		esac
		if [ "$root" = 0 ]; then
			uid=""
			while read -r k v; do
				[ "$k" = Uid: ] && { uid=${v%%[[:space:]]*}; break; }
			done 2>/dev/null <"$d/status"
			if [ "$uid" != "$me" ] && ! { [ "$uid" -ge "$sub_lo" ] && [ "$uid" -lt $((sub_lo + sub_n)) ]; } 2>/dev/null; then
				continue
			fi
		fi
		env="" ours=0
		if { mapfile -d '' -t env_a <"$d/environ"; } 2>/dev/null; then
			for env in "${env_a[@]}"; do
				case "$env" in TEST_TMP=*) break ;; esac
				env=""
			done
		elif [ "$realroot" = 0 ]; then
			continue # (a process of another user namespace, e.g. another `unshare -r` run's)
		fi
		unset env_a
		if [ -n "$env" ]; then
			[ "$env" = "TEST_TMP=${TEST_TMP:-}" ] || continue # another test's (a concurrent run of the suite)
			ours=1
		fi
		[ "$ours" = 1 ] || [ "${st[19]:-0}" -ge "$t0" ] || continue
		parent[$pid]=$ppid
		line[$pid]="$pid $ppid $comm ${args[*]}"
		[ "$ppid" = 1 ] && orphan[$pid]=1
	done
	# and the descendants of such an orphan (a workload under its leaked init)
	local changed=1
	while [ "$changed" = 1 ]; do
		changed=0
		for pid in "${!line[@]}"; do
			[ -z "${orphan[$pid]:-}" ] && [ -n "${orphan[${parent[$pid]}]:-}" ] && { orphan[$pid]=1; changed=1; }
		done
	done
	for pid in "${!orphan[@]}"; do
		printf '%s\n' "${line[$pid]}"
	done
}

_snap_tmp() {
	find /tmp /var/tmp /dev/shm -maxdepth 1 -name 'cella*' 2>/dev/null | sort
}

# Per-container network objects carry the container's short id (veth vc<ID>, nft table
# cella_c_<ID>, iptables chain CELLA-<ID>, a lease line): one whose container still has a monitor
# is a live container's (another test's, on a shared machine), not a leftover. Bridges and
# per-network tables belong to `network create`/`rm`, checked by t_netpriv.sh.
_live_ids() {
	pgrep -af '__monitor [0-9a-f]{64}' 2>/dev/null | grep -oE '[0-9a-f]{64}' | cut -c1-12
}

_without_live() { # stdin: items; drops those naming the short id of a live container ($_LIVE)
	if [ -n "${_LIVE:-}" ]; then grep -vE -- "$_LIVE"; else cat; fi
}

# (only the root of the machine makes host interfaces: rootless networks live in user namespaces)
_snap_links() { is_real_root && ls /sys/class/net 2>/dev/null | grep -E '[0-9a-f]{12}' | _without_live; }

_snap_nft() {
	is_real_root || return 0
	{
		if command -v nft >/dev/null 2>&1; then
			nft list chains 2>/dev/null | awk '$1 == "table" { t = $2 " " $3; if ($3 ~ /^cella_c_/) print "nft table " t } $1 == "chain" && t ~ / cella_c_/ { print "nft table " t " chain " $2 }'
		fi
		local t
		for t in iptables ip6tables; do
			command -v "$t-save" >/dev/null 2>&1 || continue
			"$t-save" 2>/dev/null | grep -E 'CELLA-[0-9a-f]{12}' | sed "s/^/$t: /"
		done
	} | _without_live
}

# The containers of this test: those of its own data root and OCI state root (under TEST_TMP).
_snap_ids() {
	case "${CELLA_ROOT:-}" in "${TEST_TMP:-/nonexistent}"/*) ls "$CELLA_ROOT/containers" 2>/dev/null | sed 's/^\.rm-//' ;; esac
	ls "${TEST_TMP:-/nonexistent}/state" 2>/dev/null
}

_snap_cgroups() {
	local d
	cgroup_probe || return 0 # (this user makes none)
	# (not the parents of plain runs, cella/devices-KEY: made once, they stay for the next run by design)
	find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -path '*/cella/*' ! -regex '.*/cella/devices-[0-9a-f]*' 2>/dev/null |
		while read -r d; do
			[ -s "$d/cgroup.procs" ] || printf '%s\n' "$d"
		done | _without_live
}

_snap_leases() {
	local run f l
	# (builtins: a fork each for cat, sed and find made this the dearest kind after nft)
	if is_real_root; then
		for f in /run/cella-net/*.leases; do
			[ -f "$f" ] || continue
			while IFS= read -r l || [ -n "$l" ]; do printf 'lease: %s\n' "$l"; done <"$f"
		done | _without_live
	fi
	run=${CELLA_RUN_ROOT:-}
	if [ -z "$run" ]; then
		if is_root; then run=/run/cella; else run=${XDG_RUNTIME_DIR:-/tmp/cella-run-$EUID}/cella; fi
		[ -n "${XDG_RUNTIME_DIR:-}" ] || run=/tmp/cella-run-$EUID
	fi
	for f in "$run"/net/*.pid; do
		[ -e "$f" ] && printf 'network helper record: %s\n' "$f"
	done
}

_LEFTOVER_KINDS="mounts procs tmp links nft cgroups leases ids"

# What the harness's own self-tests leak on purpose (t_harness.sh: every name holds "selftest"),
# possibly from a concurrent run of the suite: ignored, except by the self-tests, which clear it.
LEFTOVER_IGNORE=${LEFTOVER_IGNORE-selftest}

_snap_all() { # DIR
	local what pids=()
	_LIVE=$(_live_ids | paste -sd'|')
	# (the kinds side by side: each is a few forks; one after the other they were ~1 s a test on
	# two idle cores, twice a check. `wait` names them: the test may have jobs of its own.)
	for what in $_LEFTOVER_KINDS; do
		{ "_snap_$what" | LC_ALL=C sort >"$1/$what"; } &
		pids+=($!)
	done
	wait "${pids[@]}"
}

_leftovers() { # BEFORE-DIR AFTER-DIR
	local b=$1 a=$2 new what ids
	ids=$(cat "$b/ids" "$a/ids" | sort -u | paste -sd'|')
	for what in $_LEFTOVER_KINDS; do
		[ "$what" != ids ] || continue
		new=$(LC_ALL=C comm -13 "$b/$what" "$a/$what")
		# (a cgroup of another run's container: only the cgroups of this test's containers count,
		# where it keeps them in roots of its own)
		[ "$what" != cgroups ] || new=$(printf '%s\n' "$new" | grep -E -- "/(${ids:-^\$})\$")
		if [ -n "$LEFTOVER_IGNORE" ]; then
			new=$(printf '%s\n' "$new" | grep -v -- "$LEFTOVER_IGNORE")
		fi
		[ -z "$new" ] || case $what in
			mounts) printf 'new mounts:\n%s\n' "$new" ;;
			procs) printf 'new processes of cella, its helpers or a workload, waited for by nobody (PID PPID COMM ARGV):\n%s\n' "$new" ;;
			tmp) printf 'new temp entries:\n%s\n' "$new" ;;
			links) printf 'new network interfaces:\n%s\n' "$new" ;;
			nft) printf 'new firewall tables, chains or rules:\n%s\n' "$new" ;;
			cgroups) printf 'new empty cgroups:\n%s\n' "$new" ;;
			leases) printf 'new leases or network helper records:\n%s\n' "$new" ;;
		esac
	done
}

# leftovers_snapshot: remember what exists now (before a command, or before a whole sequence such
# as a kill -9 sweep, whose own leftovers must not end up in the "before" picture).
leftovers_snapshot() {
	local up
	read -r up _ </proc/uptime
	# (clock ticks since boot, as /proc/PID/stat counts a process's start; a second of slack)
	_LEFTOVER_T0=$(( (${up%.*} - 1) * $(getconf CLK_TCK) ))
	_LEFTOVER_SNAP="$TEST_TMP/.snap.$BASHPID.$RANDOM"
	mkdir -p "$_LEFTOVER_SNAP/before" "$_LEFTOVER_SNAP/after"
	_snap_all "$_LEFTOVER_SNAP/before"
}

# assert_no_leftovers: fail if anything of the kinds above appeared since leftovers_snapshot.
# What is only transient (another test run on the machine) is filtered by re-checking for ~3 s.
assert_no_leftovers() {
	local snap=${_LEFTOVER_SNAP:?leftovers_snapshot was not called} report end=$((SECONDS + 3))
	while :; do
		_snap_all "$snap/after"
		report=$(_leftovers "$snap/before" "$snap/after")
		[ -n "$report" ] && [ "$SECONDS" -lt "$end" ] || break
		sleep 0.3
	done
	rm -rf "$snap"
	_LEFTOVER_SNAP=""
	[ -z "$report" ] || fail "left behind:
$report"
	return 0
}

# check_no_leftovers CMD ARGS...: run CMD (usually run_cella …, in this shell so that OUT, ERR
# and RC stay set) between leftovers_snapshot and assert_no_leftovers.
check_no_leftovers() {
	leftovers_snapshot
	"$@"
	assert_no_leftovers
}

# --- host protection --------------------------------------------------------------------------

# For tests whose failure would change the host: call save_host_hostname before running cella and
# check_host_hostname after it; a changed hostname is put back (as root) and fails the test.
save_host_hostname() { _HOST_HOSTNAME=$(hostname); }

check_host_hostname() {
	local now
	now=$(hostname)
	[ "$now" = "$_HOST_HOSTNAME" ] && return 0
	is_root && hostname "$_HOST_HOSTNAME"
	fail "the host's hostname was changed from '$_HOST_HOSTNAME' to '$now'"
}

# --- fixtures ---------------------------------------------------------------------------------

# find_host_busybox: set HOST_BUSYBOX to a static busybox on the host, or skip the test.
# (Not a $(...) function: skip must exit the test's shell, not a subshell.)
find_host_busybox() {
	local b
	for b in /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && LC_ALL=C ldd "$b" 2>&1 | grep -q 'not a dynamic'; then
			HOST_BUSYBOX=$b
			return 0
		fi
	done
	skip "no static busybox on the host (Debian package busybox-static)"
}

# make_rootfs DIR: a minimal busybox root file system, like a user would unpack one.
make_rootfs() {
	local dir=$1 a
	find_host_busybox
	mkdir -p "$dir"/bin "$dir"/etc "$dir"/proc "$dir"/dev "$dir"/sys "$dir"/tmp "$dir"/root
	cp "$HOST_BUSYBOX" "$dir/bin/busybox"
	for a in sh ls cat echo true false id hostname mkdir touch pwd sleep stat grep wc tr ps; do
		ln -sf busybox "$dir/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
	chmod 1777 "$dir/tmp"
}

# oci_rootless_userns: what an OCI bundle needs as an ordinary user (a user namespace mapping the
# caller to root, as `cella spec --rootless` writes): OCI_USERNS_ENTRY, a linux.namespaces entry
# with a trailing comma, and OCI_USERNS_MAPS, the linux mappings with a leading comma; both empty
# as root.
oci_rootless_userns() {
	OCI_USERNS_ENTRY="" OCI_USERNS_MAPS=""
	is_root && return 0
	OCI_USERNS_ENTRY='{"type": "user"}, '
	OCI_USERNS_MAPS=", \"uidMappings\": [{\"containerID\": 0, \"hostID\": $(id -u), \"size\": 1}],
	 \"gidMappings\": [{\"containerID\": 0, \"hostID\": $(id -g), \"size\": 1}]"
}

# The value of a "Key:" line of /proc/self/status as seen inside a container: status_field OUT Key
status_field() {
	printf '%s\n' "$1" | awk -v k="$2:" '$1 == k { print $2; exit }'
}

# Skip when cella itself runs inside a user namespace that maps a single id (`unshare -r`):
# container users other than root cannot exist there, and cella says so (tested elsewhere).
require_id_range() {
	awk '{s += $3} END {exit !(s > 1)}' /proc/self/uid_map ||
		skip "only one id is mapped in the user namespace cella runs in (unshare -r)"
}

# Skip what needs the real root of the machine (the initial user namespace).
require_real_root() {
	is_real_root || skip "needs root in the initial user namespace"
}

is_real_root() {
	local a b c
	is_root && read -r a b c </proc/self/uid_map && [ "$a $b $c" = "0 0 4294967295" ]
}

# --- facts about the machine, probed here (never taken from cella's own output) ----------------

# cgroup_probe: can this user make cgroups with memory and pids limits? 0 if so; else 1 with the
# reason in CGROUP_WHY. The root of the machine can, wherever a cgroup file system is mounted;
# anyone else only in a cgroup v2 subtree delegated to them (systemd's Delegate=yes) that has the
# memory and pids controllers and holds no process of its own (or already hands them down).
cgroup_probe() {
	local fs own cur best="" dir ctl
	CGROUP_WHY=""
	fs=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)
	if is_real_root; then
		grep -qE ' - cgroup2? ' /proc/self/mountinfo && return 0
		CGROUP_WHY="no cgroup file system is mounted"
		return 1
	fi
	if [ "$fs" != cgroup2fs ]; then
		if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
			ctl=$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)
			CGROUP_WHY="this host's cgroups are v1 with a hybrid cgroup2 at /sys/fs/cgroup/unified (its controllers: ${ctl:-none}); only a v2 subtree with memory and pids can be delegated to $(id -un)"
		else
			CGROUP_WHY="this host's cgroups are v1; only a v2 subtree can be delegated to $(id -un)"
		fi
		return 1
	fi
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	cur=$own
	while [ -n "$cur" ] && [ "$cur" != / ]; do
		dir=/sys/fs/cgroup$cur
		[ -w "$dir" ] && [ -w "$dir/cgroup.procs" ] && [ -w "$dir/cgroup.subtree_control" ] || break
		best=$cur
		cur=${cur%/*}
	done
	if [ -z "$best" ]; then
		CGROUP_WHY="no cgroup v2 subtree is delegated to $(id -un) (its cgroup ${own:-?} is not writable; systemd's Delegate=yes would make one)"
		return 1
	fi
	ctl=$(cat "/sys/fs/cgroup$best/cgroup.controllers" 2>/dev/null)
	case " $ctl " in *" memory "*) ;; *) CGROUP_WHY="the cgroup $best delegated to $(id -un) has no memory controller (it has: ${ctl:-none})"; return 1 ;; esac
	case " $ctl " in *" pids "*) ;; *) CGROUP_WHY="the cgroup $best delegated to $(id -un) has no pids controller (it has: ${ctl:-none})"; return 1 ;; esac
	if [ -s "/sys/fs/cgroup$best/cgroup.procs" ] && ! grep -qw memory "/sys/fs/cgroup$best/cgroup.subtree_control"; then
		CGROUP_WHY="the cgroup $best delegated to $(id -un) holds processes, so it cannot hand controllers down"
		return 1
	fi
	return 0
}

# require_cgroups: skip unless cgroup_probe says this user can make cgroups (then a limit that is
# not applied is a failure of the test, not a skip).
require_cgroups() {
	cgroup_probe || skip "no cgroup for containers: $CGROUP_WHY"
}

# wait_log NAME TEXT: poll (up to 10 s) until the container's log shows TEXT
wait_log() {
	local i
	for i in $(seq 100); do
		case "$("$CELLA" logs "$1" 2>&1)" in *"$2"*) return 0 ;; esac
		sleep 0.1
	done
	fail "log of $1 never showed '$2'"
}
