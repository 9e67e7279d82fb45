# shellcheck shell=bash disable=SC2034
# passes: root
# passes-why: self-tests of lib.sh and the runner with a fake cella: who runs them changes nothing
# Self-tests of lib.sh: an assertion or leftover check that cannot fail would hide bugs.
# These use a fake cella (a shell script), not the real binary.

# The leaks below carry the marker "harness-selftest", which other tests ignore (a concurrent run
# of the suite must not make them fail); here it must be seen.
LEFTOVER_IGNORE=""

_fake_cella() { # BODY: make $TEST_TMP/fake-cella run BODY (bash) and point CELLA at it
	printf '#!/bin/bash\n%s\n' "$1" >"$TEST_TMP/fake-cella"
	chmod +x "$TEST_TMP/fake-cella"
	CELLA=$TEST_TMP/fake-cella
}

test_assertions_fail_when_they_should() {
	(assert_eq a b) >/dev/null && fail "assert_eq a b passed"
	(assert_ne a a) >/dev/null && fail "assert_ne a a passed"
	(assert_contains "hello" "xyz") >/dev/null && fail "assert_contains passed on a missing needle"
	(assert_not_contains "hello" "ell") >/dev/null && fail "assert_not_contains passed on a present needle"
	(assert_match "abc" '^b') >/dev/null && fail "assert_match passed on a non-matching line"
	(RC=1; assert_rc 0) >/dev/null && fail "assert_rc 0 passed with RC=1"
	(RC=0; assert_rc_ne 0) >/dev/null && fail "assert_rc_ne 0 passed with RC=0"
	(RC=125 ERR="cella: something else"; assert_cella_error 125 needle) >/dev/null &&
		fail "assert_cella_error passed without the needle"
	(RC=125 ERR="error: needle"; assert_cella_error 125 needle) >/dev/null &&
		fail "assert_cella_error passed without the 'cella: ' prefix"
	(RC=1 ERR="cella: needle"; assert_cella_error 125 needle) >/dev/null &&
		fail "assert_cella_error passed with the wrong status"
	(RC=125 ERR="x
cella: bad needle: why"; assert_cella_error 125 needle) >/dev/null ||
		fail "assert_cella_error failed on a correct error"
	assert_eq a a
	assert_contains "hello" "ell"
	assert_match "x
abc" '^ab'
}

test_run_cella_captures_streams_and_status() {
	_fake_cella 'echo "out:$*"; echo err >&2; read -r l; echo "in:$l"; exit 7'
	run_cella a 'b c' <<<"line"
	assert_eq "out:a b c
in:line" "$OUT" stdout
	assert_eq err "$ERR" stderr
	assert_rc 7
}

test_run_cella_times_out() {
	_fake_cella 'exec sleep 30'
	CMD_TIMEOUT=1 run_cella
	assert_rc 124 "status of a command that outlives CMD_TIMEOUT"
}

test_leftovers_pass_when_clean() {
	_fake_cella 'echo fine'
	check_no_leftovers run_cella run x
	assert_eq fine "$OUT"
}

test_leftovers_detect_a_process() {
	_fake_cella "(exec -a /harness-selftest/cella sleep 25) </dev/null >/dev/null 2>&1 & echo \$! >$TEST_TMP/pid"
	_leak_reported "process named cella" "new processes of cella"
}

test_leftovers_detect_a_temp_dir() {
	leak=/tmp/cella-harness-selftest.$$
	_fake_cella "mkdir $leak"
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	rc=$?
	rmdir "$leak" 2>/dev/null
	[ "$rc" != 0 ] || fail "a leftover $leak went unnoticed"
	grep -q "$leak" "$TEST_TMP/log" || fail "report does not name $leak"
}

test_leftovers_detect_a_mount() {
	require_real_root
	local mnt=$TEST_TMP/harness-selftest-mnt
	mkdir "$mnt"
	_fake_cella "mount -t tmpfs cella-selftest $mnt"
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	rc=$?
	umount "$mnt" 2>/dev/null
	[ "$rc" != 0 ] || fail "a leftover mount went unnoticed"
	grep -q "$mnt" "$TEST_TMP/log" || fail "report does not name the mount"
}

test_leftovers_ignore_a_waited_for_cella_process() {
	# A cella process whose parent still waits for it is someone else's run, not a leak.
	(exec -a cella sleep 5) </dev/null >/dev/null 2>&1 &
	local pid=$!
	_fake_cella 'true'
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	rc=$?
	kill "$pid" 2>/dev/null
	[ "$rc" = 0 ] || fail "a cella process with a living parent was reported: $(cat "$TEST_TMP/log")"
}

test_skip_in_subshell_does_not_hide_failure() {
	# skip called from $(...) only leaves the subshell; the runner must then still see a failure
	# if the test goes on to fail. Checked here by running a miniature test the runner's way.
	printf 'test_x() { x=$(skip "inner"); fail "after"; }\n' >"$TEST_TMP/t_mini.sh"
	T_SKIPFILE=$TEST_TMP/mini.skip bash -c '. "$1"; . "$2"; test_x' _ "$(dirname "${BASH_SOURCE[0]}")/lib.sh" \
		"$TEST_TMP/t_mini.sh" >/dev/null 2>&1
	rc=$?
	[ "$rc" != 0 ] || fail "a failing test that called skip in a subshell returned 0"
}

# --- the runner and check.sh, driven over miniature test files and fake parts -------------------

_here() { cd "$(dirname "${BASH_SOURCE[0]}")" && pwd; }

# _mini_run FILE: run FILE's tests the way the runner does (one pass, as the current user), with
# the fake cella; OUT holds its report, COUNTS "passed failed skipped".
_mini_run() {
	local base
	base=$(mktemp -d "$TEST_TMP/mini.XXXXXX")
	run_cmd env COUNTS_FILE="$base/counts" CELLA="$CELLA" bash "$(_here)/../run-integration.sh" \
		--inner "$CELLA_PASS" --base "$base" "$1"
	COUNTS=$(cat "$base/counts" 2>/dev/null)
}

test_only_negative_assertions_fail_the_test() {
	# cella fails before the workload runs: negative assertions alone still hold
	_fake_cella 'echo "cella: broken" >&2; exit 125'
	cat >"$TEST_TMP/t_mini.sh" <<'EOT'
test_hollow() {
	run_cella run busybox sh -c 'echo SECRET; exit 3'
	assert_rc_ne 0
	assert_not_contains "$OUT" SECRET
}
test_shows_the_positive_case_first() {
	run_cella run busybox echo fine
	assert_rc 125
	assert_contains "$ERR" broken
	assert_not_contains "$OUT" SECRET
}
EOT
	_mini_run "$TEST_TMP/t_mini.sh"
	assert_contains "$OUT" "not ok - $CELLA_PASS: t_mini: hollow # only negative assertions" "the runner's report"
	assert_contains "$OUT" "ok - $CELLA_PASS: t_mini: shows_the_positive_case_first"
	assert_eq "1 1 0" "$COUNTS" "passed failed skipped"
}

# A fake runner for check.sh: PASS-BEHAVIOUR pairs in FAKE_PASSES, e.g. "root:die user:green".
_fake_runner() {
	cat >"$TEST_TMP/fake-runner" <<'EOR'
if [ "${1:-}" = --only ]; then pass=$2; elif [ "$(id -u)" = 0 ]; then pass=root; else pass=user; fi
# run under `unshare -r` by check.sh: a user namespace below the test's own
[ "$(readlink /proc/self/ns/user)" = "$FAKE_USERNS" ] || pass=userns-root
for pb in $FAKE_PASSES; do
	[ "${pb%%:*}" = "$pass" ] || continue
	case "${pb#*:}" in
	green) echo "ok - $pass: t_x: a"; echo "1 passed, 0 failed, 0 skipped"; exit 0 ;;
	die) echo "ok - $pass: t_x: a"; kill -9 $$ ;;
	esac
done
echo "0 passed, 0 failed, 0 skipped"
EOR
}

# _check PASSES FAKE_PASSES [UNIT_SRC UNIT_DIR]: tests/check.sh with the fake runner; OUT, RC.
_check() {
	mkdir -p "$TEST_TMP/nosrc"
	_fake_runner
	run_cmd env CHECK_PASSES="$1" FAKE_PASSES="$2" FAKE_USERNS="$(readlink /proc/self/ns/user)" CHECK_RUNNER="$TEST_TMP/fake-runner" CHECK_COVERAGE="" CHECK_FUZZ="" CHECK_SOURCE="" CHECK_LAYERS="" \
		CHECK_UNIT_SRC="${3:-$TEST_TMP/nosrc}" CHECK_UNIT_DIRS="${4:-}" PATH="$TEST_TMP/bin:$PATH" \
		sh "$(_here)/../check.sh"
}

test_check_counts_a_pass_that_dies_without_its_summary() {
	# the root pass dies mid-way, the last pass is green: the old check.sh said "0 failed"
	_check "root user" "root:die user:green"
	assert_rc 1 "check.sh's status"
	assert_contains "$OUT" "not ok - integration pass root printed no summary"
	assert_eq "1 passed, 1 failed, 0 skipped" "$(printf '%s\n' "$OUT" | tail -n1)" "check.sh's last line"
	_check "root user" "root:green user:green"
	assert_rc 0
	assert_eq "2 passed, 0 failed, 0 skipped" "$(printf '%s\n' "$OUT" | tail -n1)"
}

test_check_counts_a_pass_that_cannot_start() {
	# unshare -r cannot run: the pass is reported and counted, not dropped
	mkdir -p "$TEST_TMP/bin"
	printf '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted (selftest)" >&2\nexit 1\n' >"$TEST_TMP/bin/unshare"
	chmod +x "$TEST_TMP/bin/unshare"
	_check "root userns-root" "root:green userns-root:green"
	assert_rc 1 "check.sh's status"
	assert_contains "$OUT" "not ok - integration pass userns-root cannot start: unshare -r: unshare: unshare failed"
	assert_eq "1 passed, 1 failed, 0 skipped" "$(printf '%s\n' "$OUT" | tail -n1)"
	_check "user" "root:green"
	assert_contains "$OUT" "not ok - integration pass user ran no test"
	assert_rc 1
}

test_check_checks_unit_tap_plans() {
	local src=$TEST_TMP/usrc bin=$TEST_TMP/ubin
	mkdir -p "$src" "$bin"
	touch "$src/test_early.c" "$src/test_skipall.c" "$src/test_fine.c" "$src/test_missing.c" "$src/test_short.c"
	# exits 0 after one test, before its plan: its other tests are lost
	printf '#!/bin/sh\necho "ok 1 - first"\nexit 0\n' >"$bin/test_early"
	printf '#!/bin/sh\necho "1..0 # skip no frobnicator here"\n' >"$bin/test_skipall"
	printf '#!/bin/sh\necho "ok 1 - a"\necho "ok 2 - b # SKIP why"\necho "1..2"\n' >"$bin/test_fine"
	printf '#!/bin/sh\necho "1..3"\necho "ok 1 - a"\n' >"$bin/test_short"
	chmod +x "$bin"/*
	_check "" "" "$src" "$bin"
	assert_rc 1
	assert_contains "$OUT" "not ok - [unit test_early] printed 0 TAP plans"
	assert_contains "$OUT" "ok - [unit test_skipall] # skip no frobnicator here"
	assert_contains "$OUT" "not ok - [unit test_missing] no $bin/test_missing"
	assert_contains "$OUT" "not ok - [unit test_short] planned 3 tests, printed 1"
	assert_not_contains "$OUT" "not ok - [unit test_fine]"
	# passed: early's 1, fine's 1, short's 1; skipped: fine's 1, skipall's 1
	assert_eq "3 passed, 3 failed, 2 skipped" "$(printf '%s\n' "$OUT" | tail -n1)"
}

test_cgroup_skip_is_not_cellas_say() {
	# the old require_cgroups skipped whenever cella printed "no writable cgroup"; now the machine
	# is probed, and where this user can make cgroups, cella's notice does not turn into a skip
	_fake_cella 'echo "cella: no writable cgroup for this user: --pids-limit is not applied (selftest)" >&2; exit 0'
	if cgroup_probe; then
		(require_cgroups) >"$TEST_TMP/log" 2>&1
		assert_eq 0 "$?" "require_cgroups where cgroups are usable"
		[ ! -s "${T_SKIPFILE:-/nonexistent}" ] || fail "require_cgroups skipped: $(cat "$T_SKIPFILE")"
	else
		assert_match "$CGROUP_WHY" "v1|delegated|controller|no cgroup" "the reason is a fact about the machine"
		is_real_root && fail "the root of the machine cannot make cgroups? $CGROUP_WHY"
	fi
	assert_contains "$(declare -f require_cgroups)" cgroup_probe
	assert_not_contains "$(declare -f require_cgroups)" CELLA "require_cgroups asks cella"
}

test_no_skip_is_decided_by_cellas_output() {
	# a skip reason taken from what cella printed turns a regression into a skip: every skip of
	# every test file must come from a probe of the machine
	local bad
	bad=$(grep -nE '\bskip\b' "$(_here)"/t_*.sh | grep -v '^[^:]*t_harness.sh:' | grep -E '\$\{?(ERR|OUT|RC)\b' || true)
	assert_eq "" "$bad" "skips decided by \$ERR, \$OUT or \$RC"
	bad=$(awk 'FNR == 1 { c = 0 } /case "\$(ERR|OUT)"/ { c = 1 } c && /skip/ { print FILENAME ":" FNR ": " $0 } /esac/ { c = 0 }' "$(_here)"/t_*.sh | grep -v t_harness.sh || true)
	assert_eq "" "$bad" "skips inside a case on \$ERR or \$OUT"
}

test_helpers_are_next_to_the_binary() {
	# the user pass used to copy cella and cella-image only: every VM test then skipped
	[ -n "${CELLA_HELPERS+x}" ] || fail "the runner did not say which helpers were built (CELLA_HELPERS)"
	[ -n "$CELLA_HELPERS" ] || skip "no helper programs next to the binary under test (an installed cella?)"
	local h n=0
	for h in $CELLA_HELPERS; do
		[ -x "$(dirname "$CELLA")/$h" ] || fail "$h was built but is not next to $CELLA in the $CELLA_PASS pass"
		n=$((n + 1))
	done
	assert_eq "$n" "$(echo $CELLA_HELPERS | wc -w)" "helpers found next to $CELLA"
}

# _leak_reported WHAT NEEDLE: the fake cella leaked a process (its pid in $TEST_TMP/pid): the check
# around it must fail and name it; the process is killed either way.
_leak_reported() {
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	local rc=$?
	kill "$(cat "$TEST_TMP/pid")" 2>/dev/null
	assert_ne 0 "$rc" "a leaked $1 went unnoticed"
	assert_contains "$(cat "$TEST_TMP/log")" "$2"
}

test_leftovers_detect_a_helper_process() {
	# a leaked pasta (or qemu, slirp4netns, proot) is not named cella
	mkdir -p "$TEST_TMP/selftest"
	cp "$(command -v sleep)" "$TEST_TMP/selftest/pasta"
	_fake_cella "(exec $TEST_TMP/selftest/pasta 25) </dev/null >/dev/null 2>&1 & echo \$! >$TEST_TMP/pid"
	_leak_reported "helper process" "selftest/pasta 25"
}

test_leftovers_detect_a_workload() {
	# a workload whose cella is gone: in its own PID namespace, reparented to PID 1
	local u="unshare -p -f"
	is_real_root || u="unshare -r -p -f"
	$u true 2>/dev/null || skip "cannot make a PID namespace here (unshare -p fails)"
	_fake_cella "$u bash -c 'exec -a selftest-workload sleep 25' </dev/null >/dev/null 2>&1 & u=\$!; sleep 0.3; echo \$(pgrep -P \$u) >$TEST_TMP/pid; kill -9 \$u"
	_leak_reported workload "selftest-workload 25"
}

test_leftovers_detect_network_and_cgroup_remains() {
	mkdir -p "$TEST_TMP/run"
	export CELLA_RUN_ROOT=$TEST_TMP/run
	local cg="" link="" table=""
	if is_real_root; then
		# per-container names (a short id): a veth vc<ID>, a table cella_c_<ID>
		link=vc5e1f7e57$(printf '%04x' $((RANDOM % 65536)))
		table=cella_c_5e1f7e57$(printf '%04x' $((RANDOM % 65536)))
		local id
		id=5e1f7e57$(printf '%056x' $$)
		cg=/sys/fs/cgroup/cella/$id
		[ -d /sys/fs/cgroup/pids ] && cg=/sys/fs/cgroup/pids/cella/$id
	fi
	# the cgroup of a container of the test's own data root
	export CELLA_ROOT=$TEST_TMP/data
	_fake_cella "mkdir -p $CELLA_RUN_ROOT/net && echo 1 >$CELLA_RUN_ROOT/net/selftest.pid
		${link:+ip link add $link type bridge}
		${table:+nft add table ip $table}
		${cg:+mkdir -p $cg $CELLA_ROOT/containers/${cg##*/}}"
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	rc=$?
	[ -z "$link" ] || ip link del "$link" 2>/dev/null
	[ -z "$table" ] || nft delete table ip "$table" 2>/dev/null
	[ -z "$cg" ] || rmdir "$cg" 2>/dev/null
	assert_ne 0 "$rc" "leftovers went unnoticed"
	assert_contains "$(cat "$TEST_TMP/log")" "network helper record: $CELLA_RUN_ROOT/net/selftest.pid"
	if is_real_root; then
		assert_contains "$(cat "$TEST_TMP/log")" "new network interfaces:
$link"
		assert_contains "$(cat "$TEST_TMP/log")" "nft table ip $table"
		assert_contains "$(cat "$TEST_TMP/log")" "$cg"
	fi
}

test_leftovers_snapshot_before_a_kill_sweep() {
	# the leak happens during the sweep (a killed command), not during the rm after it: a check
	# around the rm alone misses it, a snapshot taken before the sweep sees it
	_fake_cella "[ \"\$1\" = leak ] && { (exec -a /selftest/cella sleep 25) </dev/null >/dev/null 2>&1 & echo \$! >$TEST_TMP/pid; }; exit 0"
	leftovers_snapshot
	run_cella leak
	(check_no_leftovers run_cella rm) >"$TEST_TMP/log1" 2>&1
	local around=$?
	(assert_no_leftovers) >"$TEST_TMP/log2" 2>&1
	local since=$?
	kill "$(cat "$TEST_TMP/pid")" 2>/dev/null
	# (the check around rm alone does not see it: why the snapshot comes first)
	assert_not_contains "$(cat "$TEST_TMP/log1")" "/selftest/cella 25" "the check around rm alone (status $around)"
	assert_ne 0 "$since" "a leak during the sweep went unnoticed"
	assert_contains "$(cat "$TEST_TMP/log2")" "/selftest/cella 25"
}

test_layer_check_fails_on_an_include_against_the_order() {
	# tools/check-layers.py on a tree of its own: util includes plan (up), ns includes vm
	# (sideways), plan includes util (fine); then each violation listed, then a stale line
	local t=$TEST_TMP/layers check
	check="$(_here)/../../tools/check-layers.py"
	mkdir -p "$t/src/util" "$t/src/plan" "$t/src/ns" "$t/src/vm" "$t/tools"
	printf '#include "../plan/plan.h"\n' >"$t/src/util/util.c"
	printf '#include "util/util.h"\n' >"$t/src/plan/plan.h"
	printf '/* util */\n' >"$t/src/util/util.h"
	printf '#include <stdio.h>\n\n#include "../vm/vm.h"\n' >"$t/src/ns/spawn.c"
	printf '/* vm */\n' >"$t/src/vm/vm.h"
	run_cmd python3 "$check" --root "$t"
	assert_rc 1 "the check with two unlisted violations"
	assert_contains "$OUT" "not ok - src/util/util.c:1: folder util includes plan (layer 1 above 0): not in tools/layer-exceptions.txt"
	assert_contains "$OUT" "not ok - src/ns/spawn.c:3: folder ns includes vm (same layer 4: siblings)"
	assert_contains "$OUT" "not ok - cycle plan <-> util"
	printf 'src/util/util.c -> src/plan/plan.h  # test\nsrc/ns/spawn.c -> src/vm/vm.h  # test\n' >"$t/tools/layer-exceptions.txt"
	run_cmd python3 "$check" --root "$t"
	assert_rc 0 "the check with both listed"
	assert_contains "$OUT" "ok - layers: 2 includes against the order, 2 listed"
	printf '/* no include */\n' >"$t/src/ns/spawn.c"
	run_cmd python3 "$check" --root "$t"
	assert_rc 1 "the check with a stale exception"
	assert_contains "$OUT" "tools/layer-exceptions.txt:2: \`src/ns/spawn.c -> src/vm/vm.h\` is no longer a violating include"
}
