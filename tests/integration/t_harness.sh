# shellcheck shell=bash disable=SC2034
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
	(check_no_leftovers run_cella) >"$TEST_TMP/log" 2>&1
	rc=$?
	kill "$(cat "$TEST_TMP/pid")" 2>/dev/null
	[ "$rc" != 0 ] || fail "a leftover process named cella went unnoticed"
	grep -q 'new cella processes' "$TEST_TMP/log" || fail "report does not name the process: $(cat "$TEST_TMP/log")"
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
