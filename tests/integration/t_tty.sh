# shellcheck shell=bash disable=SC2034
# -t: a real pty for the workload, window size passed, the caller's terminal restored on exit.
# `script` gives cella a pty as its controlling terminal, like an interactive shell would.

# in_pty [< INPUT]: run the shell script read from stdin under script(1), in a fresh pty, with
# $C set to the cella binary. OUT has the pty's output without \r; RC is the script's status.
in_pty() {
	require_cmd script
	{
		printf 'C=%q\n' "$CELLA"
		cat
	} >"$TEST_TMP/pty.sh"
	run_cmd script -qec "sh $TEST_TMP/pty.sh" /dev/null </dev/null
	OUT=$(printf '%s\n' "$OUT" | tr -d '\r')
}

# The first and last `stty -g` lines of OUT (they contain ':'; nothing else printed here does).
_stty_lines() {
	FIRST=$(printf '%s\n' "$OUT" | grep -m1 ':[0-9a-f]*:')
	LAST=$(printf '%s\n' "$OUT" | grep ':[0-9a-f]*:' | tail -n1)
	[ -n "$FIRST" ] || fail "no stty -g output"
	[ "$(printf '%s\n' "$OUT" | grep -c ':[0-9a-f]*:')" -ge 2 ] || fail "only one stty -g line"
}

test_tty_is_a_pty() {
	in_pty <<<'$C run -t busybox tty'
	assert_rc 0
	assert_match "$OUT" '^/dev/pts/[0-9]+$' "tty inside"
}

test_tty_long_option() {
	in_pty <<<'$C run --tty busybox tty'
	assert_rc 0
	assert_match "$OUT" '^/dev/pts/[0-9]+$' "tty inside"
}

test_no_tty_without_t() {
	in_pty <<<'$C run busybox tty'
	assert_rc 1 "tty without -t"
	assert_contains "$OUT" "not a tty"
}

test_tty_stdin_stdout_are_terminals() {
	in_pty <<<'$C run -t busybox sh -c "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys"'
	assert_rc 0
	assert_contains "$OUT" all-ttys
}

test_tty_window_size() {
	in_pty <<<'stty rows 31 cols 97; $C run -t busybox stty size'
	assert_rc 0
	assert_match "$OUT" '^31 97$' "stty size inside"
}

test_tty_exit_code() {
	in_pty <<<'$C run -t busybox sh -c "exit 5"'
	assert_rc 5 "exit status through -t"
}

test_tty_mode_restored() {
	in_pty <<<'stty -g; $C run -t busybox true; stty -g'
	assert_rc 0
	_stty_lines
	assert_eq "$FIRST" "$LAST" "stty -g before and after cella run -t"
}

test_tty_mode_restored_after_error() {
	in_pty <<<'stty -g; $C run -t busybox nosuchcmd-xyz; echo rc=$?; stty -g'
	assert_contains "$OUT" rc=127 "exit status of a missing command under -t"
	_stty_lines
	assert_eq "$FIRST" "$LAST" "stty -g before and after a failed cella run -t"
}

test_tty_mode_restored_after_sigterm() {
	# The explicit </dev/tty: a background job of a non-interactive shell otherwise gets /dev/null.
	in_pty <<-'EOF'
		stty -g
		$C run -t busybox sh -c 'trap "exit 9" TERM; while :; do sleep 0.1; done' </dev/tty &
		p=$!
		sleep 1
		kill -TERM $p
		wait $p
		echo rc=$?
		stty -g
	EOF
	assert_contains "$OUT" rc=9 "exit status after SIGTERM to cella run -t"
	_stty_lines
	assert_eq "$FIRST" "$LAST" "stty -g before and after cella run -t was sent SIGTERM"
}

test_tty_interactive_input() {
	# Input typed on the terminal reaches the workload's shell through the pty.
	require_cmd script
	printf 'echo in-$((40+2))\nexit 6\n' >"$TEST_TMP/in"
	run_cmd script -qec "$(printf '%q' "$CELLA") run -i -t busybox sh" /dev/null <"$TEST_TMP/in"
	OUT=$(printf '%s\n' "$OUT" | tr -d '\r')
	assert_contains "$OUT" in-42 "output of the typed command"
	assert_rc 6 "exit status of the interactive shell"
}

# Without -t the workload writes to the caller's own terminal, as with runc's pass-through: it must
# not push input into it (TIOCSTI), which the caller's shell would read, and run as the caller, once
# cella exits. The container's processes (run, exec) are in a session of their own, where that
# terminal is not their controlling one; as with runc. Before the fix both pushes were read.
test_no_tty_workload_cannot_push_input_to_the_callers_terminal() {
	require_cmd script
	require_cmd cc
	cc -static -O -o "$TEST_TMP/tiocsti" "$(dirname "${BASH_SOURCE[0]}")/tiocsti.c" 2>"$TEST_TMP/cc.err" ||
		skip "cannot build a static binary here: $(head -n1 "$TEST_TMP/cc.err")"
	chmod 755 "$TEST_TMP" "$TEST_TMP/tiocsti"
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	run_cella run -d --network none --name "sti$$" -v "$TEST_TMP/tiocsti:/ti:ro" busybox sleep 30
	assert_ok
	trap '"$CELLA" rm -f "sti$$" >/dev/null 2>&1' EXIT
	{
		printf 'C=%q N=%q T=%q\n' "$CELLA" "sti$$" "$TEST_TMP/tiocsti"
		cat <<-'EOS'
			$C run -v "$T:/ti:ro" busybox /ti 'echo pushed-by-run
			' 1
			$C exec "$N" /ti 'echo pushed-by-exec
			' 2
			read l; echo "host-read:[$l]"
		EOS
	} >"$TEST_TMP/sti.sh"
	# the pipe keeps the terminal's input open for 4 s, then its end lets the read return
	run_cmd sh -c 'sleep 4 | script -qec "sh $1" /dev/null' _ "$TEST_TMP/sti.sh"
	OUT=$(printf '%s\n' "$OUT" | tr -d '\r')
	assert_match "$OUT" '^fd 1: ' "the run's probe"
	assert_match "$OUT" '^fd 2: ' "the exec's probe"
	assert_contains "$OUT" "host-read:" "the caller's read"
	assert_not_contains "$OUT" ": pushed" "TIOCSTI on the caller's terminal"
	assert_not_contains "$OUT" "host-read:[echo pushed" "what the caller's shell read after cella run and exec"
}
