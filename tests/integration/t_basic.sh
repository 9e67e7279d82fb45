# shellcheck shell=bash disable=SC2034
# cella run: output, exit codes, namespaces, PID 1, stdin, signals, --init, --dry-run.

test_echo_hello() {
	run_cella run busybox echo hello
	assert_rc 0
	assert_eq hello "$OUT" stdout
}

test_exit_code_0() {
	run_cella run busybox true
	assert_rc 0
}

test_exit_code_3() {
	run_cella run busybox sh -c 'exit 3'
	assert_rc 3
}

test_exit_code_false_is_1() {
	run_cella run busybox false
	assert_rc 1
}

test_command_not_found_127() {
	run_cella run busybox nosuchcmd-xyz
	assert_rc 127
	assert_contains "$ERR" nosuchcmd-xyz stderr
}

test_command_not_found_absolute_127() {
	run_cella run busybox /bin/nosuchcmd-xyz
	assert_rc 127
	assert_contains "$ERR" /bin/nosuchcmd-xyz stderr
}

test_not_executable_126() {
	run_cella run busybox /etc/passwd
	assert_rc 126
	assert_contains "$ERR" /etc/passwd stderr
}

test_killed_by_sigkill_137() {
	run_cella run --init busybox sh -c 'kill -9 $$'
	assert_rc 137
}

test_killed_by_sigterm_143() {
	run_cella run --init busybox sh -c 'kill -TERM $$'
	assert_rc 143
}

test_hostname_option() {
	run_cella run --hostname foo busybox hostname
	assert_rc 0
	assert_eq foo "$OUT" hostname
}

test_hostname_default_differs_from_host() {
	run_cella run busybox hostname
	assert_rc 0
	[ -n "$OUT" ] || fail "empty hostname"
	assert_ne "$(hostname)" "$OUT" "container hostname (host is $(hostname))"
}

test_sethostname_does_not_reach_host() {
	save_host_hostname
	run_cella run --cap-add SYS_ADMIN busybox sh -c 'hostname cella-should-not-leak && hostname'
	check_host_hostname
	assert_rc 0
	assert_eq cella-should-not-leak "$OUT" "hostname inside after sethostname"
}

test_sethostname_denied_by_default() {
	# CAP_SYS_ADMIN is not in the default set (docker: "sethostname: Operation not permitted").
	# The same command works with the capability: the refusal below is the missing capability's.
	save_host_hostname
	run_cella run --cap-add SYS_ADMIN busybox hostname cella-may
	check_host_hostname
	assert_ok "sethostname with CAP_SYS_ADMIN"
	run_cella run busybox hostname cella-should-fail
	check_host_hostname
	assert_rc 1 "sethostname without CAP_SYS_ADMIN"
	assert_eq "hostname: sethostname: Operation not permitted" "$ERR" "the workload's error"
}

test_workload_is_pid_1() {
	run_cella run busybox sh -c 'echo $$'
	assert_rc 0
	assert_eq 1 "$OUT" '$$ of the workload'
}

test_proc_shows_only_container_pids() {
	run_cella run busybox sh -c 'cd /proc && echo [0-9]*'
	assert_rc 0
	local n
	n=$(printf '%s\n' "$OUT" | wc -w)
	[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "expected 1-3 pids in /proc, got $n: $OUT"
	assert_match "$(printf '%s\n' $OUT)" '^1$' "pids in /proc"
}

test_ps_shows_few_processes() {
	run_cella run busybox ps
	assert_rc 0
	local n
	n=$(printf '%s\n' "$OUT" | sed 1d | grep -c .)
	[ "$n" -le 3 ] || fail "ps lists $n processes"
}

test_ipc_namespace_isolated() {
	require_cmd ipcmk ipcrm
	[ -r /proc/sysvipc/shm ] || skip "kernel without SysV IPC (/proc/sysvipc/shm)"
	local id
	id=$(ipcmk -M 4096 2>/dev/null | grep -oE '[0-9]+$')
	[ -n "$id" ] || skip "ipcmk cannot create a shared memory segment here"
	trap "ipcrm -m '$id' 2>/dev/null" EXIT # ($id expanded now: it is local, gone when the trap runs)
	awk -v id="$id" 'NR > 1 && $2 == id { f = 1 } END { exit !f }' /proc/sysvipc/shm ||
		fail "the host segment $id is not in the host's /proc/sysvipc/shm"
	run_cella run busybox cat /proc/sysvipc/shm
	assert_rc 0
	local n
	n=$(printf '%s\n' "$OUT" | sed 1d | grep -c .)
	assert_eq 0 "$n" "segments visible in the container (host has $id)"
}

test_uts_and_pid_namespaces_differ_from_host() {
	run_cella run busybox sh -c 'for n in uts pid ipc mnt; do readlink /proc/self/ns/$n; done'
	assert_rc 0
	local ns
	[ "$(printf '%s\n' "$OUT" | grep -c .)" = 4 ] || fail "expected 4 namespace links"
	for ns in uts pid ipc mnt; do
		assert_not_contains "$OUT" "$(readlink /proc/self/ns/$ns)" "$ns namespace (host's is $(readlink /proc/self/ns/$ns))"
	done
}

test_cgroup_namespace() {
	[ -e /proc/self/ns/cgroup ] || skip "kernel without cgroup namespaces"
	run_cella run busybox readlink /proc/self/ns/cgroup
	assert_rc 0
	assert_ne "$(readlink /proc/self/ns/cgroup)" "$OUT" "cgroup namespace"
}

test_pid1_is_workload_without_init() {
	run_cella run busybox cat /proc/1/comm
	assert_rc 0
	assert_eq cat "$OUT" "/proc/1/comm without --init"
}

test_init_is_pid1_not_workload() {
	run_cella run --init busybox cat /proc/1/comm
	assert_rc 0
	[ -n "$OUT" ] || fail "empty /proc/1/comm"
	assert_ne cat "$OUT" "/proc/1/comm with --init"
	run_cella run --init busybox sh -c 'echo $$ $PPID'
	assert_rc 0
	assert_ne 1 "${OUT% *}" '$$ of the workload with --init'
	assert_eq 1 "${OUT#* }" 'parent of the workload with --init (the init, PID 1)'
}

test_init_reaps_zombies() {
	# An orphan whose parent exits becomes a child of PID 1; with --init it must be reaped.
	run_cella run --init busybox sh -c '(sleep 0.2 &); sleep 1
		for f in /proc/[0-9]*/stat; do read -r a b c rest <"$f"; echo "$c"; done | grep -c Z || true'
	assert_rc 0
	assert_eq 0 "$OUT" "zombie processes"
}

test_stdin_pipe_with_i() {
	run_cella run -i busybox cat <<<"hi"
	assert_rc 0
	assert_eq hi "$OUT" stdout
}

test_stdin_multiline_with_interactive_long_option() {
	printf 'a\nb\nc\n' >"$TEST_TMP/in"
	run_cella run --interactive busybox wc -l <"$TEST_TMP/in"
	assert_rc 0
	assert_eq 3 "$(echo $OUT)" "lines read"
}

test_stdin_empty_without_i() {
	run_cella run busybox cat <<<"should-not-arrive"
	assert_rc 0
	assert_eq "" "$OUT" "stdout of cat without -i"
}

# Start cella in the background with default signal dispositions (bash ignores SIGINT for
# background jobs, and an ignored signal would stay ignored in the container), send SIG, and
# expect the workload's trap exit code.
_signal_forwarding() { # SIGNAL EXPECTED-RC [cella args...]
	local sig=$1 want=$2 pid rc i
	shift 2
	env --default-signal=INT,TERM,HUP,QUIT "$CELLA" "$@" >"$TEST_TMP/sig.out" 2>"$TEST_TMP/sig.err" </dev/null &
	pid=$!
	# Wait until the workload runs (it prints "ready"), at most 10 s.
	for i in $(seq 100); do
		grep -q ready "$TEST_TMP/sig.out" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q ready "$TEST_TMP/sig.out" || {
		kill -KILL "$pid" 2>/dev/null
		fail "workload never became ready: $(cat "$TEST_TMP/sig.out" "$TEST_TMP/sig.err")"
	}
	kill -"$sig" "$pid"
	(sleep 10; kill -KILL "$pid" 2>/dev/null) &
	local watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	LAST_CMD="cella $* (then kill -$sig)" RC=$rc OUT=$(cat "$TEST_TMP/sig.out") ERR=$(cat "$TEST_TMP/sig.err")
	[ "$rc" != 137 ] || fail "cella had to be SIGKILLed: SIG$sig did not end the workload within 10 s"
	assert_rc "$want" "exit status after SIG$sig"
}

_trap_script() { # SIGNAL CODE
	printf 'trap "exit %s" %s; echo ready; while :; do sleep 0.1; done' "$2" "$1"
}

test_signal_forwarding_term() {
	_signal_forwarding TERM 42 run busybox sh -c "$(_trap_script TERM 42)"
}

test_signal_forwarding_int() {
	_signal_forwarding INT 43 run busybox sh -c "$(_trap_script INT 43)"
}

test_signal_forwarding_hup() {
	_signal_forwarding HUP 44 run busybox sh -c "$(_trap_script HUP 44)"
}

test_signal_forwarding_through_init() {
	_signal_forwarding TERM 45 run --init busybox sh -c "$(_trap_script TERM 45)"
}

test_init_forwards_term_to_untrapped_workload_143() {
	_signal_forwarding TERM 143 run --init busybox sh -c 'echo ready; exec sleep 60'
}

_json_ok() { # validates stdin as JSON
	if command -v jq >/dev/null 2>&1; then
		jq -e . >/dev/null
	elif command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool >/dev/null
	else
		skip "neither jq nor python3 to validate JSON"
	fi
}

test_dry_run_prints_json_and_runs_nothing() {
	mkdir "$TEST_TMP/vol"
	run_cella run --dry-run -v "$TEST_TMP/vol:/vol" busybox touch /vol/marker
	assert_rc 0
	[ ! -e "$TEST_TMP/vol/marker" ] || fail "--dry-run ran the workload (marker was created)"
	printf '%s\n' "$OUT" | _json_ok || fail "--dry-run output is not valid JSON"
	assert_contains "$OUT" '"/vol' "plan (volume target)"
	assert_contains "$OUT" "$TEST_TMP/vol" "plan (volume source)"
	assert_contains "$OUT" '"touch"' "plan (argv)"
	assert_contains "$OUT" '"ops"' "plan (ops list)"
	assert_contains "$OUT" proc "plan (proc op)"
}

test_dry_run_includes_options() {
	run_cella run --dry-run --hostname dryhost -e DRY=1 -w /tmp --tmpfs /scratch:size=1m busybox true
	assert_rc 0
	printf '%s\n' "$OUT" | _json_ok || fail "--dry-run output is not valid JSON"
	assert_contains "$OUT" dryhost "plan (hostname)"
	assert_contains "$OUT" DRY=1 "plan (env)"
	assert_contains "$OUT" /scratch "plan (tmpfs)"
}

test_debug_describes_ops() {
	run_cella run --debug busybox true
	assert_rc 0
	assert_contains "$OUT$ERR" proc "--debug output (the proc op)"
}

test_rm_accepted() {
	run_cella run --rm busybox echo ok
	assert_rc 0
	assert_eq ok "$OUT"
}

test_backend_ns_accepted() {
	run_cella run --backend ns busybox echo ok
	assert_rc 0
	assert_eq ok "$OUT"
}

test_no_host_fd_leaks() {
	# Only 0, 1, 2 (and the fd ls itself opens for /proc/self/fd) may be open in the workload.
	exec 7</dev/null
	run_cella run busybox ls /proc/self/fd
	exec 7<&-
	assert_rc 0
	local extra
	extra=$(printf '%s\n' $OUT | grep -vxE '0|1|2|3')
	assert_eq "" "$extra" "extra fds in the container"
}

test_cella_binary_not_writable_from_inside() {
	# CVE-2019-5736 class: with --init, PID 1 is cella's own code; /proc/1/exe must not open for
	# writing the host's binary. Opened for append without writing: nothing is changed even if
	# the open succeeds.
	local before
	before=$(sha256sum "$CELLA" | cut -d' ' -f1)
	run_cella run --init busybox sh -c 'readlink /proc/1/exe; if (: >>/proc/1/exe) 2>/dev/null; then echo OPENED; fi; true'
	assert_rc 0
	assert_eq "$before" "$(sha256sum "$CELLA" | cut -d' ' -f1)" "sha256 of the cella binary"
	assert_not_contains "$OUT" OPENED "open of /proc/1/exe for writing"
}
