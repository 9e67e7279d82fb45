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
#   CELLA_PASS root | user (which pass of the suite is running)
#   T_SKIPFILE where skip() writes its reason

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

is_root() { [ "$(id -u)" = 0 ]; }

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

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_ne() {
	[ "$1" != "$2" ] || fail "${3:-value}: expected something other than '$1'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
	case "$1" in
	*"$2"*) ;;
	*) fail "${3:-output} does not contain '$2'" ;;
	esac
}

assert_not_contains() {
	case "$1" in
	*"$2"*) fail "${3:-output} contains '$2'" ;;
	*) ;;
	esac
}

# assert_match HAYSTACK ERE [WHAT]: some line of HAYSTACK matches the extended regex.
assert_match() {
	printf '%s\n' "$1" | grep -Eq -- "$2" || fail "${3:-output} has no line matching /$2/"
}

# assert_rc EXPECTED [WHAT]: the last run_cella/run_cmd exited with EXPECTED.
assert_rc() {
	[ "$RC" = "$1" ] || fail "${2:-exit status}: expected $1, got $RC"
}

# assert_rc_ne NOT-EXPECTED [WHAT]
assert_rc_ne() {
	[ "$RC" != "$1" ] || fail "${2:-exit status}: expected anything but $1"
}

# assert_ok: the last command ran and exited 0 (for the many "just run it" cases).
assert_ok() {
	[ "$RC" = 0 ] || fail "${1:-command} failed with status $RC"
}

# assert_cella_error CODE NEEDLE: the docker-like error contract for bad input: exit CODE, and a
# stderr line that starts with "cella: " and names NEEDLE.
assert_cella_error() {
	assert_rc "$1" "exit status for bad input"
	printf '%s\n' "$ERR" | grep -F -- "$2" | grep -q '^cella: ' ||
		fail "no stderr line starting 'cella: ' that names '$2'"
}

# --- leftovers --------------------------------------------------------------------------------

_snap_mounts() { awk '{ print $5 }' /proc/self/mountinfo | sort; }

# Processes that look like cella (comm, argv[0] or executable named cella; a re-exec from a memfd
# shows as "memfd:cella…") and that nobody waits for: their parent is PID 1 (a leftover is
# reparented there once cella exits) or another such process. That leaves out the cella
# processes of test runs that other sessions may be doing at the same time.
# Each line: PID PPID COMM ARGV...
_snap_procs() {
	# Builtins only in the loop (a fork per process makes this take seconds); one find for exe.
	local d pid ppid comm exe k v args
	declare -A exes=() parent=() line=()
	while read -r d exe; do
		exes[${d#/proc/}]=$exe
	done < <(find /proc -mindepth 2 -maxdepth 2 -name exe -printf '%h %l\n' 2>/dev/null)
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = "$BASHPID" ] && continue
		read -r comm 2>/dev/null <"$d/comm" || continue
		args=()
		mapfile -d '' args 2>/dev/null <"$d/cmdline"
		exe=${exes[$pid]:-}
		case "$comm|${args[0]##*/}|${exe##*/}" in
		cella\|* | *\|cella\|* | *\|cella | *\|cella\ * | *memfd:cella*) ;;
		*) continue ;;
		esac
		ppid=""
		while read -r k v; do
			[ "$k" = PPid: ] && { ppid=$v; break; }
		done 2>/dev/null <"$d/status"
		parent[$pid]=$ppid
		line[$pid]="$pid $ppid $comm ${args[*]}"
	done
	for pid in "${!line[@]}"; do
		ppid=${parent[$pid]}
		if [ "$ppid" = 1 ] || [ -n "${line[$ppid]:-}" ]; then
			printf '%s\n' "${line[$pid]}"
		fi
	done | sort
}

_snap_tmp() {
	find /tmp /var/tmp /dev/shm -maxdepth 1 -name 'cella*' 2>/dev/null | sort
}

# What the harness's own self-tests leak on purpose (t_harness.sh), possibly from a concurrent run
# of the suite: ignored, except by the self-tests, which clear it.
LEFTOVER_IGNORE=${LEFTOVER_IGNORE-harness-selftest}

_leftovers() { # BEFORE-DIR AFTER-DIR
	local b=$1 a=$2 new what
	for what in mounts procs tmp; do
		new=$(comm -13 "$b/$what" "$a/$what")
		if [ -n "$LEFTOVER_IGNORE" ]; then
			new=$(printf '%s\n' "$new" | grep -v -- "$LEFTOVER_IGNORE")
		fi
		[ -z "$new" ] || case $what in
			mounts) printf 'new mounts:\n%s\n' "$new" ;;
			procs) printf 'new cella processes (PID PPID COMM ARGV):\n%s\n' "$new" ;;
			tmp) printf 'new temp entries:\n%s\n' "$new" ;;
		esac
	done
}

# check_no_leftovers CMD ARGS...: run CMD (usually run_cella …, in this shell so that OUT, ERR
# and RC stay set), then fail if it left behind a mount (the mountinfo multiset of mountpoints
# grew), a process named cella, or a /tmp, /var/tmp or /dev/shm entry named cella*. What is
# only transient (another test run on the machine) is filtered by re-checking for ~1.5 s.
check_no_leftovers() {
	local snap="$TEST_TMP/.snap.$$" i report
	mkdir -p "$snap/before" "$snap/after"
	_snap_mounts >"$snap/before/mounts"
	_snap_procs >"$snap/before/procs"
	_snap_tmp >"$snap/before/tmp"
	"$@"
	for i in 1 2 3 4 5 6; do
		[ "$i" = 1 ] || sleep 0.3
		_snap_mounts >"$snap/after/mounts"
		_snap_procs >"$snap/after/procs"
		_snap_tmp >"$snap/after/tmp"
		report=$(_leftovers "$snap/before" "$snap/after")
		[ -n "$report" ] || break
	done
	rm -rf "$snap"
	[ -z "$report" ] || fail "left behind after the command:
$report"
	return 0
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
	is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map || skip "needs root in the initial user namespace"
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
