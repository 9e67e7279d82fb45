#!/bin/bash
# Run the integration tests (tests/integration/t_*.sh) against the real cella binary.
#
#   tests/run-integration.sh [--only root|user] [-k REGEX] [t_name ...]
#
#   CELLA=path/to/cella   binary under test (default: $PWD/build/cella)
#   TEST_TIMEOUT=30       seconds per test (a file may raise its own with a line "# test-timeout: N",
#                         and run_cella's CMD_TIMEOUT with "# cmd-timeout: N": VM boots under TCG)
#   CELLA_TEST_USER=cellatest  the unprivileged user (created when missing, as root)
#   CELLA_TEST_COPY=1     always copy the binary and the tests for the unprivileged pass
#   CELLA_TEST_USER_CGROUP=DIR  a cgroup v2 directory delegated to the user (as systemd's
#                         Delegate=yes makes user@UID.service): the unprivileged pass runs in
#                         DIR/tests.scope, so rootless limits can be applied (tests/v2/ sets it)
#   CELLA_TEST_VM_KERNEL=DIR  a tuned guest kernel (DIR/bzImage, release, config: scripts/vm-kernel.sh's
#                         output) for t_vm when the data root has none (default for the
#                         unprivileged pass: a copy of root's /var/lib/cella/vm/kernels/current)
#   CELLA_TEST_TIMES=FILE  append "SECONDS PASS: FILE: TEST" for every test run (where CI time goes:
#                         sort -rn FILE | head)
#
# As root, every file runs twice: as root, then as the unprivileged user (files with a line
# "# root-only" are not run the second time). As an ordinary user, only the unprivileged pass runs.
# Output is TAP-like ("ok - …", "not ok - …", "ok - … # skip why"); the last line is
# "N passed, N failed, N skipped"; the exit status is 1 when anything failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ITEST=$HERE/integration
RUNNER=$HERE/$(basename "$0")
TEST_TIMEOUT=${TEST_TIMEOUT:-30}
CMD_TIMEOUT=${CMD_TIMEOUT:-20}
TEST_USER=${CELLA_TEST_USER:-cellatest}
CELLA=${CELLA:-$PWD/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac

inner="" only="" kpat="" base="" files=()
while [ $# -gt 0 ]; do
	case "$1" in
	--inner) inner=$2; shift 2 ;;
	--base) base=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	-k) kpat=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-integration.sh: unknown option $1" >&2; exit 2 ;;
	*/*) files+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;; # a test file elsewhere (t_harness.sh's self-tests)
	*) files+=("$ITEST/$(basename "${1%.sh}").sh"); shift ;;
	esac
done
if [ ${#files[@]} = 0 ]; then
	for f in "$ITEST"/t_*.sh; do files+=("$f"); done
fi

passed=0 failed=0 skipped=0

# The names of the test functions of a file, in the order they are defined. Asked of bash itself
# (extdebug makes `declare -F NAME` print the line), so that any way of writing a function counts.
test_functions() {
	bash -c 'shopt -s extdebug; . "$1" >/dev/null 2>&1; . "$2" >/dev/null 2>&1 || exit 1
		for f in $(compgen -A function test_); do declare -F "$f"; done' _ "$ITEST/lib.sh" "$1" |
		sort -k2,2n | awk '{ print $1 }'
}

# reap_containers TMP: containers a test left in its own data root (CELLA_ROOT=$TEST_TMP/data) or
# OCI state root ($TEST_TMP/state) would outlive it, running, with their monitors: removed here,
# and named in the test's log.
reap_containers() {
	local tmp=$1 ids id
	if [ -d "$tmp/data/containers" ]; then
		ids=$(CELLA_ROOT=$tmp/data CELLA_RUN_ROOT=$tmp/run timeout 20 "$CELLA" ps -a -q --no-trunc 2>/dev/null)
		if [ -n "$ids" ]; then
			echo "# the test left containers in its data root: removed $(echo $ids | wc -w)"
			# shellcheck disable=SC2086
			CELLA_ROOT=$tmp/data CELLA_RUN_ROOT=$tmp/run timeout 30 "$CELLA" rm -f $ids >/dev/null 2>&1
		fi
	fi
	for id in $(ls "$tmp/state" 2>/dev/null); do
		[ -e "$tmp/state/$id/state.json" ] || continue
		echo "# the test left OCI container $id: deleted"
		timeout 20 "$CELLA" --root "$tmp/state" delete --force "$id" >/dev/null 2>&1
	done
}

# run_one PASS FILE FUNCTION
run_one() {
	local pass=$1 file=$2 fn=$3 tmp log skipf asserts rc name reason limit cmd_limit n t0
	limit=$TEST_TIMEOUT cmd_limit=$CMD_TIMEOUT
	n=$(sed -n 's/^# test-timeout: *\([0-9][0-9]*\) *$/\1/p' "$file" | head -n1)
	[ -n "$n" ] && [ "$n" -gt "$limit" ] && limit=$n
	n=$(sed -n 's/^# cmd-timeout: *\([0-9][0-9]*\) *$/\1/p' "$file" | head -n1)
	[ -n "$n" ] && [ "$n" -gt "$cmd_limit" ] && cmd_limit=$n
	name="$pass: $(basename "$file" .sh): ${fn#test_}"
	tmp=$(mktemp -d "$base/t.XXXXXX") || { echo "not ok - $name # cannot create temp dir"; failed=$((failed + 1)); return; }
	log=$tmp.log
	skipf=$tmp.skip
	asserts=$tmp.asserts
	t0=$SECONDS
	(
		cd "$tmp" || exit 1
		export CELLA TEST_TMP="$tmp" T_SKIPFILE="$skipf" T_ASSERTS="$asserts" CELLA_PASS="$pass" CMD_TIMEOUT="$cmd_limit"
		exec timeout -k 5 "$limit" bash -c '. "$1" && . "$2" && "$3"' _ "$ITEST/lib.sh" "$file" "$fn"
	) </dev/null >"$log" 2>&1
	rc=$?
	reap_containers "$tmp" >>"$log" 2>&1
	if [ -n "${CELLA_TEST_TIMES:-}" ]; then # (the root pass inside `unshare -r` named apart)
		grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map || [ "$pass" != root ] || name=userns-$name
		echo "$((SECONDS - t0)) $name" >>"$CELLA_TEST_TIMES"
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "not ok - $name # timed out after ${limit}s"
		sed 's/^/#   /' "$log"
		failed=$((failed + 1))
	elif [ -s "$skipf" ] && [ "$rc" = 0 ]; then
		reason=$(head -n1 "$skipf")
		echo "ok - $name # skip $reason"
		skipped=$((skipped + 1))
	elif [ "$rc" = 0 ] && grep -q -- - "$asserts" 2>/dev/null && ! grep -q + "$asserts"; then
		# (see lib.sh: such a test also passes when cella fails before the workload runs)
		echo "not ok - $name # only negative assertions: it cannot tell a working cella from a broken one"
		sed 's/^/#   /' "$log"
		failed=$((failed + 1))
	elif [ "$rc" = 0 ]; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name"
		grep -q '^FAIL: ' "$log" || echo "#   (test exited with status $rc)"
		sed 's/^/#   /' "$log"
		failed=$((failed + 1))
	fi
	rm -rf "$tmp" "$log" "$skipf" "$asserts" 2>/dev/null
}

# run_pass PASS: every selected test of every file, as the current user.
run_pass() {
	local pass=$1 f path fn fns
	for path in "${files[@]}"; do
		f=$(basename "$path")
		if [ ! -r "$path" ]; then
			echo "not ok - $pass: ${f%.sh} # no such test file $path"
			failed=$((failed + 1))
			continue
		fi
		if [ "$pass" = user ] && grep -q '^# root-only' "$path"; then
			echo "# $f is root-only: not run unprivileged"
			continue
		fi
		# "# passes: root user": the passes the file runs in (default: all), with the reason on
		# the next line "# passes-why: ..." (what the other passes would repeat)
		local want
		want=$(sed -n 's/^# passes: *//p' "$path" | head -n1)
		if [ -n "$want" ] && ! printf ' %s ' "$want" | grep -q " $pass "; then
			echo "# $f runs in the passes: $want, not $pass ($(sed -n 's/^# passes-why: *//p' "$path" | head -n1))"
			continue
		fi
		fns=$(test_functions "$path")
		if [ -z "$fns" ]; then
			echo "not ok - $pass: ${f%.sh} # no test_ functions found (does the file source cleanly?)"
			failed=$((failed + 1))
			continue
		fi
		for fn in $fns; do
			if [ -n "$kpat" ] && ! printf '%s\n' "${f%.sh}:${fn#test_}" | grep -Eq -- "$kpat"; then
				continue
			fi
			run_one "$pass" "$path" "$fn"
		done
	done
}

summary() {
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
}

# --- the unprivileged pass, run as root ---------------------------------------------------------

# The helper programs built next to the binary under test (cella-image, cella-vminit, cella-monitor): each pass
# must find them next to its cella (t_harness.sh checks, through CELLA_HELPERS).
cella_helpers() {
	local h
	for h in "$(dirname "$CELLA")"/cella-*; do
		[ -f "$h" ] && [ -x "$h" ] && basename "$h"
	done | tr '\n' ' '
}

# Creates the user, its subordinate ids and runtime dir; runs this script as that user.
run_user_pass() {
	local uid gid home rundir datadir src ubase ucella urunner counts p f s h helpers ufiles
	if ! id -u "$TEST_USER" >/dev/null 2>&1; then
		useradd -m -s /bin/bash "$TEST_USER" || { echo "not ok - create user $TEST_USER"; failed=$((failed + 1)); return; }
	fi
	for s in /etc/subuid /etc/subgid; do
		grep -q "^$TEST_USER:" "$s" 2>/dev/null || echo "$TEST_USER:200000:65536" >>"$s"
	done
	uid=$(id -u "$TEST_USER")
	gid=$(id -g "$TEST_USER")
	home=$(getent passwd "$TEST_USER" | cut -d: -f6)
	rundir=/tmp/cellatest-run-$uid
	if [ -L "$rundir" ] || { [ -e "$rundir" ] && [ ! -d "$rundir" ]; }; then
		echo "not ok - $rundir is not a directory (refusing to use it)"
		failed=$((failed + 1))
		return
	fi
	mkdir -p "$rundir" && chown "$uid:$gid" "$rundir" && chmod 0700 "$rundir"
	datadir=$home/.local/share
	runuser -u "$TEST_USER" -- mkdir -p "$datadir"

	ucella=$CELLA urunner=$RUNNER src="" helpers=$(cella_helpers)
	ufiles=()
	for f in "${files[@]}"; do
		case "$f" in "$ITEST"/*) ufiles+=("$(basename "$f")") ;; *) ufiles+=("$f") ;; esac
	done
	if [ "${CELLA_TEST_COPY:-0}" = 1 ] ||
		! runuser -u "$TEST_USER" -- sh -c 'test -x "$1" && test -r "$2" && test -r "$3/lib.sh"' _ \
			"$CELLA" "$RUNNER" "$ITEST"; then
		# The checkout (e.g. under /work or /root) is not reachable by the user: copy what it runs.
		src=$(mktemp -d /tmp/itest-src.XXXXXX)
		mkdir -p "$src/integration" "$src/bin"
		cp "$RUNNER" "$src/run-integration.sh"
		cp "$ITEST"/*.sh "$ITEST"/*.c "$ITEST"/*.py "$src/integration/"
		cp "$CELLA" "$src/bin/cella"
		# the helpers cella finds next to itself (cella-image, cella-vminit, cella-monitor): without them every
		# image or VM test of this pass would fail, or worse, skip
		for h in $helpers; do cp "$(dirname "$CELLA")/$h" "$src/bin/" || { echo "not ok - copy $h for the unprivileged pass"; failed=$((failed + 1)); }; done
		chmod -R a+rX "$src"
		ucella=$src/bin/cella urunner=$src/run-integration.sh
		echo "# unprivileged pass uses a copy of the binary and tests in $src"
	fi

	ubase=$(mktemp -d /tmp/itest-user.XXXXXX)
	chown "$uid:$gid" "$ubase"
	# the tuned guest kernel (CELLA_TEST_VM_KERNEL, else the one root's `make vm-kernel` built), in a
	# copy the user can read: t_vm boots it with --kernel (the user's own data root has none)
	local vmk="" d
	for d in "${CELLA_TEST_VM_KERNEL:-}" /var/lib/cella/vm/kernels/current; do
		[ -n "$d" ] && [ -r "$d/bzImage" ] && [ -r "$d/release" ] && [ -r "$d/config" ] || continue
		mkdir -p "$ubase/vm-kernel" && cp "$d/bzImage" "$d/release" "$d/config" "$ubase/vm-kernel/" &&
			chmod -R a+rX "$ubase/vm-kernel" && vmk=$ubase/vm-kernel
		break
	done
	counts=$ubase/counts
	p=()
	[ -n "$kpat" ] && p=(-k "$kpat")
	# In a delegated cgroup (DIR/tests.scope, so that DIR holds no process and can hand its
	# controllers down), else where the runner is. setpriv, not runuser, there: runuser stays as a
	# root parent in the subtree, and the kernel refuses the user to move a root process when it
	# enables cpuset (cap_safe_nice) -- as systemd keeps login sessions out of user@UID.service.
	local asuser=(runuser -u "$TEST_USER" --)
	if [ -n "${CELLA_TEST_USER_CGROUP:-}" ]; then
		# made by the user, as a delegated subtree's owner makes its own children
		{ [ -d "$CELLA_TEST_USER_CGROUP/tests.scope" ] || runuser -u "$TEST_USER" -- mkdir "$CELLA_TEST_USER_CGROUP/tests.scope"; } ||
			{ echo "not ok - delegate $CELLA_TEST_USER_CGROUP/tests.scope to $TEST_USER"; failed=$((failed + 1)); return; }
		asuser=(sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CELLA_TEST_USER_CGROUP/tests.scope"
			setpriv --reuid="$uid" --regid="$gid" --init-groups)
	fi
	(
		cd "$ubase" &&
			"${asuser[@]}" env -i \
				PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
				HOME="$home" USER="$TEST_USER" LOGNAME="$TEST_USER" LANG=C.UTF-8 \
				XDG_DATA_HOME="$datadir" XDG_RUNTIME_DIR="$rundir" \
				CELLA="$ucella" CELLA_HELPERS="$helpers" TEST_TIMEOUT="$TEST_TIMEOUT" CMD_TIMEOUT="$CMD_TIMEOUT" \
				COUNTS_FILE="$counts" CELLA_TEST_VM_KERNEL="$vmk" CELLA_TEST_TIMES="${CELLA_TEST_TIMES:+$ubase/times}" \
				bash "$urunner" --inner user --base "$ubase" "${p[@]}" "${ufiles[@]}"
	) </dev/null
	[ -z "${CELLA_TEST_TIMES:-}" ] || cat "$ubase/times" >>"$CELLA_TEST_TIMES" 2>/dev/null
	if [ -r "$counts" ]; then
		read -r p f s <"$counts"
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	else
		echo "not ok - unprivileged pass as $TEST_USER did not report its results"
		failed=$((failed + 1))
	fi
	rm -rf "$ubase" 2>/dev/null
	[ -z "$src" ] || rm -rf "$src"
}

# --- main ---------------------------------------------------------------------------------------

if [ -n "$inner" ]; then
	run_pass "$inner"
	echo "$passed $failed $skipped" >"${COUNTS_FILE:-/dev/null}"
	exit 0
fi

if [ ! -x "$CELLA" ]; then
	echo "not ok - cella binary at $CELLA (build it with make, or set CELLA)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
echo "# cella: $CELLA"
: "${CELLA_HELPERS:=$(cella_helpers)}"
export CELLA_HELPERS

real_root=1
[ "$(awk '{ print $1, $2, $3 }' /proc/self/uid_map)" = "0 0 4294967295" ] || real_root=0
if [ "$(id -u)" = 0 ]; then
	if [ "$only" != user ]; then
		base=$(mktemp -d /tmp/itest-root.XXXXXX)
		if [ "$real_root" = 1 ]; then run_pass root; else run_pass userns-root; fi
		rm -rf "$base"
	fi
	if [ "$only" != root ]; then
		if [ "$real_root" = 0 ]; then
			# e.g. under `unshare -r`: root in name only, cannot create users or switch to them.
			echo "# root in a user namespace: the unprivileged pass needs real root, not run"
		else
			run_user_pass
		fi
	fi
else
	echo "# not root: running the unprivileged pass only, as $(id -un)"
	base=$(mktemp -d /tmp/itest-user.XXXXXX)
	run_pass user
	rm -rf "$base" 2>/dev/null
fi
summary
