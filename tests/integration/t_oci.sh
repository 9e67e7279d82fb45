# shellcheck shell=bash
# The OCI runtime command line (runc's): create/start/state/kill/delete, run, list, ps, exec,
# console socket, --preserve-fds, --pid-file, spec, features, errors, and how OCI mode is chosen.
# Bundles are made here: the busybox tree, `cella spec`, then jq.

# oci ARGS...: cella with a state root of the test's own.
oci() { run_cella --root "$TEST_TMP/state" "$@"; }

# bundle DIR ARGS-JSON [JQ-FILTER]: a bundle whose process runs ARGS (no terminal, writable root).
bundle() {
	local dir=$1 args=$2 extra=${3:-.} rl=""
	require_cmd jq
	make_rootfs "$dir/rootfs"
	is_root || rl=--rootless
	(cd "$dir" && "$CELLA" spec $rl) || fail "cella spec"
	jq --argjson a "$args" ".process.terminal = false | .process.args = \$a | .root.readonly = false | $extra" \
		"$dir/config.json" >"$dir/c.json" && mv "$dir/c.json" "$dir/config.json" || fail "jq"
}

status_of() {
	oci state "$1"
	assert_rc 0
	jq -r .status <<<"$OUT"
}

test_oci_create_start_state_kill_delete() {
	bundle b '["sh","-c","touch /tmp/started; exec sleep 100"]'
	oci create --bundle b c1
	assert_rc 0
	oci state c1
	assert_rc 0
	assert_eq created "$(jq -r .status <<<"$OUT")" status
	assert_eq c1 "$(jq -r .id <<<"$OUT")" id
	assert_eq "$(cd b && pwd -P)" "$(jq -r .bundle <<<"$OUT")" bundle
	pid=$(jq -r .pid <<<"$OUT")
	[ -d "/proc/$pid" ] || fail "the container's init $pid is not alive after create"
	[ ! -e b/rootfs/tmp/started ] || fail "the workload ran before start"
	oci start c1
	assert_rc 0
	for _ in $(seq 50); do [ -e b/rootfs/tmp/started ] && break; sleep 0.05; done
	[ -e b/rootfs/tmp/started ] || fail "the workload did not run after start"
	assert_eq running "$(status_of c1)" status
	oci start c1
	assert_rc 1
	assert_contains "$ERR" "not created" stderr
	oci kill c1 KILL
	assert_rc 0
	for _ in $(seq 50); do [ "$(status_of c1)" = stopped ] && break; sleep 0.05; done
	assert_eq stopped "$(status_of c1)" status
	oci delete c1
	assert_rc 0
	oci state c1
	assert_rc 1
	assert_contains "$ERR" 'container `c1` does not exist' stderr
}

test_oci_run_foreground_exit_code() {
	bundle b '["sh","-c","echo out; echo err >&2; exit 7"]'
	oci run --bundle b r1
	assert_rc 7
	assert_eq out "$OUT" stdout
	assert_contains "$ERR" err stderr
	oci list -q
	assert_eq "" "$OUT" "list after run (removed without --keep)"
}

test_oci_run_keep() {
	bundle b '["true"]'
	oci run --keep --bundle b r2
	assert_rc 0
	assert_eq stopped "$(status_of r2)" status
	oci delete r2
	assert_rc 0
	# runc's default bundle: the current directory (explicit OCI forms)
	cd b || fail "cd"
	run_cella oci --root "$TEST_TMP/state" run r3
	assert_rc 0
	cd "$TEST_TMP" || fail "cd"
}

test_oci_run_detach_and_delete_force() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b d1
	assert_rc 0
	assert_eq running "$(status_of d1)" status
	oci delete d1
	assert_rc 1
	assert_contains "$ERR" "not stopped" stderr
	pid=$(jq -r .pid <<<"$(oci state d1; echo "$OUT")")
	oci delete --force d1
	assert_rc 0
	[ ! -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" || fail "the container's init $pid survived delete --force"
	oci list -q
	assert_eq "" "$OUT" list
	oci delete --force d1
	assert_rc 0
}

test_oci_list_formats() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b l1
	assert_rc 0
	oci list
	assert_rc 0
	assert_match "$OUT" '^ID +PID +STATUS' "table header"
	assert_match "$OUT" 'l1 +[0-9]+ +running' "table row"
	oci list --format json
	assert_rc 0
	assert_eq l1 "$(jq -r '.[0].id' <<<"$OUT")" "json id"
	assert_eq running "$(jq -r '.[0].status' <<<"$OUT")" "json status"
	oci list -q
	assert_eq l1 "$OUT" "-q"
	oci ps --format json l1
	assert_rc 0
	assert_eq 1 "$(jq length <<<"$OUT")" "ps json"
	oci ps l1
	assert_contains "$OUT" "sleep 100" "ps table"
	oci delete --force l1
	assert_rc 0
}

test_oci_exec_args_and_process_file() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b e1
	assert_rc 0
	oci exec e1 sh -c 'echo exec-$((6*7)); exit 3'
	assert_rc 3
	assert_eq exec-42 "$OUT" stdout
	oci exec --env FOO=bar --cwd /tmp e1 sh -c 'echo $FOO $(pwd)'
	assert_rc 0
	assert_eq "bar /tmp" "$OUT" "env and cwd"
	cat >proc.json <<-'EOF'
	{"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo from-file $X"],
	 "env": ["PATH=/bin", "X=yes"], "cwd": "/"}
	EOF
	oci exec --process proc.json e1
	assert_rc 0
	assert_eq "from-file yes" "$OUT" "--process"
	oci exec --detach --pid-file "$TEST_TMP/exec.pid" e1 sleep 50
	assert_rc 0
	epid=$(cat exec.pid)
	[ -d "/proc/$epid" ] || fail "the detached exec's pid $epid is not alive"
	oci ps --format json e1
	assert_eq 2 "$(jq length <<<"$OUT")" "ps after exec -d"
	oci delete --force e1
	assert_rc 0
	oci exec e1 true
	assert_rc 1
	assert_contains "$ERR" 'container `e1` does not exist' stderr
}

test_oci_pid_file() {
	bundle b '["sleep","100"]'
	oci create --bundle b --pid-file "$TEST_TMP/ctr.pid" p1
	assert_rc 0
	oci state p1
	assert_eq "$(jq -r .pid <<<"$OUT")" "$(cat ctr.pid)" "pid file"
	oci delete p1
	assert_rc 0
	oci list -q
	assert_eq "" "$OUT" "a created container is deleted without --force"
}

test_oci_kill_signal_names_and_numbers() {
	bundle b '["sh","-c","trap \"echo usr1 >> /tmp/sigs\" USR1; trap \"echo usr2 >> /tmp/sigs\" USR2; trap \"echo hup >> /tmp/sigs\" HUP; while :; do sleep 0.05; done"]'
	oci run -d --bundle b k1
	assert_rc 0
	sleep 0.2
	for s in USR1 SIGUSR2 1; do
		oci kill k1 "$s"
		assert_rc 0
		sleep 0.3
	done
	assert_eq "usr1 usr2 hup" "$(tr '\n' ' ' <b/rootfs/tmp/sigs | sed 's/ $//')" "signals received"
	oci kill k1 NOSUCHSIG
	assert_rc 1
	assert_contains "$ERR" "unknown signal" stderr
	oci kill --all k1 KILL
	assert_rc 0
	for _ in $(seq 50); do [ "$(status_of k1)" = stopped ] && break; sleep 0.05; done
	assert_eq stopped "$(status_of k1)" status
	oci kill k1 TERM
	assert_rc 1
	assert_contains "$ERR" "not running" stderr
	oci delete k1
	assert_rc 0
}

test_oci_preserve_fds() {
	bundle b '["sh","-c","cat <&3; cat <&4"]'
	echo three >f3
	echo four >f4
	run_cmd "$CELLA" --root "$TEST_TMP/state" run --preserve-fds 2 --bundle b pf 3<f3 4<f4
	assert_rc 0
	assert_eq "three
four" "$OUT" "fds 3 and 4 in the container"
	bundle b2 '["sh","-c","ls /proc/self/fd | wc -l"]'
	run_cmd "$CELLA" --root "$TEST_TMP/state" run --bundle b2 pf2 3<f3
	assert_rc 0
	# 0 1 2 and the fd of ls's own directory read: 3 is not passed without --preserve-fds
	assert_eq 4 "$(echo $OUT)" "fd count without --preserve-fds"
	# systemd's socket activation: LISTEN_FDS fds pass, the workload is told it is PID 1's
	bundle b3 '["sh","-c","echo $LISTEN_FDS $LISTEN_PID; cat <&3"]'
	run_cmd env LISTEN_FDS=1 "$CELLA" --root "$TEST_TMP/state" run --bundle b3 pf3 3<f3
	assert_rc 0
	assert_eq "1 1
three" "$OUT" "LISTEN_FDS"
}

# console_receiver SOCKET: a python3 listener on SOCKET (in the background, pid in RECV_PID) that
# takes the pty master runc's way, writes "hello" to it and prints "NAME-PAYLOAD|OUTPUT" to
# recv.out once the output holds got:hello.
console_receiver() {
	require_cmd python3
	cat >recv.py <<-'EOF'
	import os, socket, sys, time
	path = sys.argv[1]
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.bind(path); s.listen(1)
	open(path + ".ready", "w").close()
	c, _ = s.accept()
	msg, fds, _, _ = socket.recv_fds(c, 1024, 1)
	master = fds[0]
	os.write(master, b"hello\n")
	out = b""
	deadline = time.time() + 10
	while b"got:hello" not in out and time.time() < deadline:
	    try:
	        out += os.read(master, 1024)
	    except OSError:
	        break
	sys.stdout.write(msg.decode() + "|" + out.decode().replace("\r", ""))
	EOF
	rm -f "$1" "$1.ready"
	python3 recv.py "$1" >recv.out 2>recv.err &
	RECV_PID=$!
	for _ in $(seq 100); do [ -e "$1.ready" ] && break; sleep 0.05; done
}

test_oci_console_socket() {
	bundle b '["sh","-c","tty; read line; echo got:$line"]' '.process.terminal = true'
	console_receiver "$TEST_TMP/console.sock"
	oci create --bundle b --console-socket "$TEST_TMP/console.sock" t1
	assert_rc 0
	oci start t1
	assert_rc 0
	wait "$RECV_PID"
	out=$(cat recv.out)
	assert_contains "$out" "/dev/ptmx|" "the name payload"
	assert_contains "$out" "/dev/pts/0" "tty in the container"
	assert_contains "$out" "got:hello" "input through the pty"
	oci delete --force t1
	assert_rc 0
}

test_oci_terminal_needs_console_socket() {
	bundle b '["true"]' '.process.terminal = true'
	oci create --bundle b t2
	assert_rc 1
	assert_contains "$ERR" "--console-socket is required" stderr
	oci list -q
	assert_eq "" "$OUT" "nothing left"
}

test_oci_errors() {
	bundle b '["sleep","100"]'
	oci create --bundle "$TEST_TMP/nosuch" x1
	assert_rc 1
	assert_contains "$ERR" nosuch stderr
	oci state nosuch
	assert_rc 1
	assert_eq 'cella: container `nosuch` does not exist' "$ERR" stderr
	oci kill nosuch
	assert_rc 1
	assert_contains "$ERR" 'container `nosuch` does not exist' stderr
	oci delete nosuch
	assert_rc 1
	assert_contains "$ERR" 'container `nosuch` does not exist' stderr
	oci create --bundle b dup
	assert_rc 0
	oci create --bundle b dup
	assert_rc 1
	assert_contains "$ERR" 'container `dup` already exists' stderr
	oci create --bundle b '../evil'
	assert_rc 1
	assert_contains "$ERR" "invalid container id" stderr
	oci delete dup
	assert_rc 0
	bundle b2 '["/no/such/program"]'
	oci create --bundle b2 x2
	assert_rc 1
	assert_contains "$ERR" /no/such/program stderr
	oci list -q
	assert_eq "" "$OUT" "nothing left after failed creates"
	oci frobnicate
	assert_rc 1
	assert_contains "$ERR" "unknown command" stderr
}

test_oci_spec_and_features() {
	require_cmd jq
	mkdir s
	oci spec --bundle s
	assert_rc 0
	jq -e '.ociVersion and .process.args == ["sh"] and .root.path == "rootfs"' s/config.json >/dev/null || fail "spec: $(cat s/config.json)"
	oci spec --bundle s
	assert_rc 1
	assert_contains "$ERR" exists stderr
	mkdir s2
	oci spec --rootless --bundle s2
	assert_rc 0
	jq -e '[.linux.namespaces[].type] | index("user")' s2/config.json >/dev/null || fail "spec --rootless has no user namespace"
	oci features
	assert_rc 0
	jq -e '.ociVersionMax and (.hooks | index("poststop")) and (.linux.namespaces | index("pid")) and .linux.seccomp.enabled' <<<"$OUT" >/dev/null ||
		fail "features: $OUT"
}

test_oci_version_and_mode() {
	run_cella --version
	assert_rc 0
	assert_match "$OUT" '^cella version ' "first line"
	assert_contains "$OUT" "spec: 1." "spec line"
	# an OCI-only command, a global option first, `cella oci`, a runc-like name: all OCI
	run_cella --root "$TEST_TMP/state" list -q
	assert_rc 0
	run_cella oci --root "$TEST_TMP/state" list -q
	assert_rc 0
	ln -s "$CELLA" cella-runc
	run_cmd ./cella-runc --root "$TEST_TMP/state" list --format json
	assert_rc 0
	assert_eq "[]" "$OUT" "list through cella-runc"
	for c in create start run state kill delete list ps exec pause resume update events spec features; do
		run_cella oci "$c" --help
		assert_rc 0
		assert_match "$OUT" "^Usage: cella $c" "$c --help"
	done
	# the engine's commands stay the engine's
	run_cella ps --help
	assert_contains "$OUT" "--all" "engine ps help"
}

test_oci_hooks_poststart_poststop() {
	bundle b '["sleep","100"]' '.hooks = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > '"$TEST_TMP"'/poststart.json"]}], "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "echo stopped > '"$TEST_TMP"'/poststop"]}]}'
	oci run -d --bundle b h1
	assert_rc 0
	[ -s poststart.json ] || fail "poststart hook did not run"
	assert_eq h1 "$(jq -r .id poststart.json)" "poststart state id"
	oci delete --force h1
	assert_rc 0
	[ -s poststop ] || fail "poststop hook did not run"
}


test_oci_pause_resume() {
	require_cgroups # (pause needs the freezer of the container's own cgroup)
	bundle b '["sh","-c","while :; do echo x >> /tmp/ticks; sleep 0.05; done"]'
	oci run -d --bundle b pr
	assert_rc 0
	sleep 0.3
	oci pause pr
	assert_rc 0
	assert_eq paused "$(status_of pr)" status
	a=$(wc -l <b/rootfs/tmp/ticks)
	sleep 0.4
	b=$(wc -l <b/rootfs/tmp/ticks)
	assert_eq "$a" "$b" "no tick while paused"
	oci pause pr
	assert_rc 1
	assert_contains "$ERR" "it is paused" stderr
	oci resume pr
	assert_rc 0
	assert_eq running "$(status_of pr)" status
	sleep 0.4
	c=$(wc -l <b/rootfs/tmp/ticks)
	[ "$c" -gt "$b" ] || fail "no tick after resume ($b then $c)"
	oci pause pr
	assert_rc 0
	pid=$(jq -r .pid <<<"$(oci state pr; echo "$OUT")")
	oci delete --force pr
	assert_rc 0
	[ ! -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" || fail "a paused container survived delete --force"
}

test_oci_update_and_events() {
	require_cgroups
	bundle b '["sleep","100"]'
	oci run -d --bundle b up
	assert_rc 0
	oci update --memory 32m --pids-limit 20 up
	assert_rc 0
	oci events --stats up
	assert_rc 0
	assert_eq stats "$(jq -r .type <<<"$OUT")" "event type"
	assert_eq 20 "$(jq -r .data.pids.limit <<<"$OUT")" "pids limit after update"
	assert_eq 33554432 "$(jq -r .data.memory.usage.limit <<<"$OUT")" "memory limit after update"
	echo '{"memory": {"limit": 50331648}}' >res.json
	oci update --resources res.json up
	assert_rc 0
	oci events --stats up
	assert_eq 50331648 "$(jq -r .data.memory.usage.limit <<<"$OUT")" "memory limit after --resources"
	oci update --memory lots up
	assert_rc 1
	assert_contains "$ERR" "--memory" stderr
	oci delete --force up
	assert_rc 0
}

test_oci_log_json() {
	run_cella --root "$TEST_TMP/state" --log "$TEST_TMP/log.json" --log-format json state nosuch
	assert_rc 1
	jq -e 'select(.level == "error" and (.msg | contains("does not exist")) and .time)' log.json >/dev/null ||
		fail "log: $(cat log.json)"
	run_cella --root "$TEST_TMP/state" --log-format yaml list
	assert_rc 1
	assert_contains "$ERR" "--log-format" stderr
}

# runc's exec options, each against what the process sees: --cap, --no-new-privs, -u, -g, --cwd,
# -e, --preserve-fds, -d with --pid-file, and the accepted-only --process-label, --apparmor,
# --cgroup.
test_oci_exec_options() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b xo
	assert_rc 0
	oci exec xo grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
	assert_rc 0
	local eff
	eff=$(status_field "$OUT" CapEff)
	[ $((0x$eff & 0x1000)) = 0 ] || fail "CAP_NET_ADMIN without --cap: $eff"
	oci exec --cap CAP_NET_ADMIN -c NET_RAW xo grep -E '^CapEff' /proc/self/status
	assert_rc 0
	eff=$(status_field "$OUT" CapEff)
	[ $((0x$eff & 0x3000)) = $((0x3000)) ] || fail "--cap CAP_NET_ADMIN -c NET_RAW: CapEff $eff"
	# the default spec sets noNewPrivileges: without it, --no-new-privs is what sets it
	jq '.process.noNewPrivileges = false' b/config.json >c.json && mv c.json b/config.json
	oci run -d --bundle b xn
	assert_rc 0
	oci exec xn grep NoNewPrivs /proc/self/status
	assert_eq 0 "$(status_field "$OUT" NoNewPrivs)" "NoNewPrivs without --no-new-privs"
	oci exec --no-new-privs xn grep NoNewPrivs /proc/self/status
	assert_eq 1 "$(status_field "$OUT" NoNewPrivs)" "NoNewPrivs with --no-new-privs"
	oci exec --cwd /tmp -e X=1 --env Y=2 xo sh -c 'pwd; echo $X$Y'
	assert_eq "/tmp
12" "$OUT" "--cwd, -e, --env"
	if awk '{s += $3} END {exit !(s > 1)}' /proc/self/uid_map && is_root; then
		oci exec -u 1000:1000 -g 10 --additional-gids 20 xo id
		assert_rc 0
		assert_eq "uid=1000 gid=1000 groups=10,20" "$OUT" "-u, -g, --additional-gids"
		oci exec --user 1000 xo id -u
		assert_eq 1000 "$OUT" "--user"
	else # one id mapped (the rootless bundle, unshare -r): no other user or group exists
		oci exec -u 0:0 xo id -u
		assert_eq 0 "$OUT" "-u 0:0"
		oci exec -u 1000 xo id
		assert_rc_ne 0 "-u of an id the namespace does not map"
	fi
	echo from-fd-3 >f3
	run_cmd "$CELLA" --root "$TEST_TMP/state" exec --preserve-fds 1 xo sh -c 'cat <&3' 3<f3
	assert_ok
	assert_eq from-fd-3 "$OUT" "--preserve-fds 1 passes fd 3"
	run_cmd "$CELLA" --root "$TEST_TMP/state" exec xo sh -c 'cat <&3' 3<f3
	assert_rc 1 "fd 3 without --preserve-fds"
	oci exec -d --pid-file "$TEST_TMP/x.pid" xo sh -c 'sleep 0.3; touch /tmp/detached'
	assert_ok
	[ -s x.pid ] || fail "no --pid-file"
	for _ in $(seq 50); do [ -e b/rootfs/tmp/detached ] && break; sleep 0.1; done
	[ -e b/rootfs/tmp/detached ] || fail "the detached process did not run"
	oci exec --process-label system_u:system_r:container_t:s0 --apparmor unconfined --cgroup / xo echo accepted
	assert_ok
	assert_eq accepted "$OUT" "--process-label, --apparmor, --cgroup are accepted"
	oci delete --force xo
	oci delete --force xn
}

test_oci_exec_tty_console_socket() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b xt
	assert_rc 0
	console_receiver "$TEST_TMP/exec.sock"
	oci exec -t -d --console-socket "$TEST_TMP/exec.sock" xt sh -c 'tty; read line; echo got:$line'
	assert_rc 0
	wait "$RECV_PID"
	out=$(cat recv.out)
	assert_contains "$out" "/dev/ptmx|" "the name payload"
	assert_contains "$out" "/dev/pts/" "tty of the exec'd process (the receiver got: $out)"
	assert_contains "$out" "got:hello" "input through the exec's pty"
	oci exec --tty --detach xt true
	assert_rc 1
	assert_contains "$ERR" "--console-socket is required"
	oci delete --force xt
}

# --ignore-paused: the process starts (exec -d returns), joins the frozen cgroup, runs on resume.
test_oci_exec_ignore_paused() {
	require_cgroups
	bundle b '["sleep","100"]'
	oci run -d --bundle b xp
	assert_rc 0
	oci pause xp
	assert_rc 0
	oci exec xp true
	assert_rc 1
	assert_contains "$ERR" "cannot exec in container \`xp\`: it is paused"
	oci exec -d --ignore-paused --pid-file "$TEST_TMP/p.pid" xp sh -c 'sleep 1; touch /tmp/ran'
	assert_rc 0 "exec --ignore-paused returns"
	local pid init
	pid=$(cat p.pid)
	init=$(jq -r .pid <<<"$(oci state xp; echo "$OUT")")
	assert_eq "$(grep -E ':freezer:|^0::' "/proc/$init/cgroup")" "$(grep -E ':freezer:|^0::' "/proc/$pid/cgroup")" \
		"the exec'd process is in the container's (frozen) cgroup"
	oci resume xp
	assert_rc 0
	for _ in $(seq 50); do [ -e b/rootfs/tmp/ran ] && break; sleep 0.1; done
	[ -e b/rootfs/tmp/ran ] || fail "the process did not run after resume"
	oci delete --force xp
	assert_rc 0
}

test_oci_events_streams() {
	require_cgroups
	bundle b '["sleep","100"]'
	oci run -d --bundle b ev
	assert_rc 0
	timeout 2 "$CELLA" --root "$TEST_TMP/state" events --interval 300ms ev >ev.out 2>ev.err
	RC=$? OUT=$(cat ev.out) ERR=$(cat ev.err) LAST_CMD="cella events --interval 300ms ev (for 2 s)"
	assert_rc 124 "events streams until stopped"
	local n
	n=$(jq -r .type ev.out | grep -c stats)
	[ "$n" -ge 3 ] || fail "$n stats events in 2 s at --interval 300ms"
	assert_eq ev "$(jq -r .id ev.out | sort -u)" "the events' id"
	oci events --interval soon ev
	assert_rc 1
	assert_contains "$ERR" "--interval"
	# the stream ends when the container does
	timeout 10 "$CELLA" --root "$TEST_TMP/state" events --interval 200ms ev >ev2.out 2>&1 &
	local epid=$!
	sleep 0.5
	oci kill ev KILL
	wait "$epid"
	RC=$?
	[ "$RC" != 124 ] || fail "events went on after the container stopped"
	oci delete --force ev
}

# update beyond --memory and --pids-limit: each value in the container's cgroup files.
test_oci_update_every_limit() {
	require_cgroups
	bundle b '["sleep","100"]'
	oci run -d --bundle b ul
	assert_rc 0
	oci update --memory 64m --memory-reservation 16m --memory-swap 128m --kernel-memory 8m --cpu-shares 300 \
		--cpu-quota 20000 --cpu-period 40000 --cpuset-cpus 0 --cpuset-mems 0 ul
	assert_rc 0
	local pid cg
	pid=$(jq -r .pid <<<"$(oci state ul; echo "$OUT")")
	cg() { # CONTROLLER FILE
		local line
		line=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" "/proc/$pid/cgroup")
		cat "/sys/fs/cgroup/$1${line##*:}/$2"
	}
	if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
		local d
		d=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
		assert_eq "16777216 20000 40000 0 0" "$(cat "$d/memory.low" "$d/cpu.max" "$d/cpuset.cpus" "$d/cpuset.mems" | tr '\n' ' ' | sed 's/ $//')"
	else
		assert_eq 16777216 "$(cg memory memory.soft_limit_in_bytes)" "--memory-reservation"
		[ -e "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes" ] &&
			assert_eq 134217728 "$(cg memory memory.memsw.limit_in_bytes)" "--memory-swap"
		assert_eq 300 "$(cg cpu cpu.shares)" "--cpu-shares"
		assert_eq 20000 "$(cg cpu cpu.cfs_quota_us)" "--cpu-quota"
		assert_eq 40000 "$(cg cpu cpu.cfs_period_us)" "--cpu-period"
		assert_eq 0 "$(cg cpuset cpuset.cpus)" "--cpuset-cpus"
		assert_eq 0 "$(cg cpuset cpuset.mems)" "--cpuset-mems"
	fi
	oci update --blkio-weight 300 ul
	if [ "$RC" = 0 ]; then
		assert_match "$(cg blkio blkio.bfq.weight 2>/dev/null || cg blkio blkio.weight)" '(^|default )300$' "--blkio-weight"
	else
		assert_contains "$ERR" "has no weight file" "--blkio-weight where the I/O controller has no weights"
	fi
	oci update --cpu-shares many ul
	assert_rc 1
	assert_contains "$ERR" "--cpu-shares"
	oci delete --force ul
}

# runc's global options: --debug says what it does, --systemd-cgroup is accepted (and says so),
# --criu is accepted, --rootless false is refused to an ordinary user.
test_oci_global_options() {
	bundle b '["true"]'
	oci --debug run --bundle b g1
	assert_rc 0
	assert_contains "$ERR" "proc" "--debug describes the setup steps"
	run_cella --root "$TEST_TMP/state" --log "$TEST_TMP/g.log" --systemd-cgroup run --bundle b g2
	assert_rc 0
	assert_contains "$(cat g.log)" "--systemd-cgroup: cella drives cgroupfs directly" "--systemd-cgroup"
	oci --criu /usr/sbin/criu run --bundle b g3
	assert_rc 0 "--criu is accepted"
	oci --rootless true run --bundle b g4
	assert_rc 0 "--rootless true"
	oci --rootless maybe list
	assert_rc 1
	assert_contains "$ERR" "--rootless \`maybe\`: expected auto, true or false"
	if ! is_root; then
		oci --rootless false run --bundle b g5
		assert_rc 1
		assert_contains "$ERR" "--rootless false: cella is not running as root"
	fi
}

# create and run options runc has that change nothing here are accepted; --preserve-fds,
# --pid-file and --console-socket work on create and run both.
test_oci_create_and_run_flags() {
	bundle b '["sh","-c","cat <&3; echo $$"]'
	echo fd3 >f3
	run_cmd "$CELLA" --root "$TEST_TMP/state" create --no-pivot --no-new-keyring --preserve-fds 1 --pid-file c.pid --bundle b cf 3<f3
	assert_ok
	[ -s c.pid ] || fail "create --pid-file"
	oci start cf
	assert_ok
	for _ in $(seq 50); do [ "$(status_of cf)" = stopped ] && break; sleep 0.1; done
	oci delete cf
	assert_ok
	run_cmd "$CELLA" --root "$TEST_TMP/state" run --no-pivot --no-new-keyring --no-subreaper --preserve-fds 1 --pid-file r.pid --bundle b rf 3<f3
	assert_ok
	assert_eq "fd3
1" "$OUT" "run with --preserve-fds: fd 3, and the workload is PID 1"
	[ -s r.pid ] || fail "run --pid-file"
	bundle t '["sh","-c","tty; read line; echo got:$line"]' '.process.terminal = true'
	console_receiver "$TEST_TMP/run.sock"
	oci run -d --console-socket "$TEST_TMP/run.sock" --bundle t rt
	assert_rc 0
	wait "$RECV_PID"
	assert_contains "$(cat recv.out)" "got:hello" "run --console-socket"
	oci delete --force rt
}

# A create that fails (a createRuntime hook, a missing cwd) leaves no state, process, cgroup,
# mount or temp entry, and no container in list.
test_oci_create_failure_leaves_nothing() {
	bundle b '["true"]' '.hooks = {"createRuntime": [{"path": "/bin/false"}]}'
	check_no_leftovers oci create --bundle b bad1
	assert_rc 1
	assert_contains "$ERR" "createRuntime hook 0"
	bundle c '["true"]' '.process.cwd = "/no/such/dir"'
	jq '.root.readonly = true' c/config.json >c.json && mv c.json c/config.json
	check_no_leftovers oci create --bundle c bad2
	assert_rc 1
	assert_contains "$ERR" "/no/such/dir"
	oci list -q
	assert_ok
	assert_eq "" "$OUT" "no container after the failed creates"
	assert_eq "" "$(ls -A state 2>/dev/null)" "nothing in the state root"
}

# --- issue 15 (2b): what podman and conmon need ------------------------------------------------

# A program that cannot run (a directory, a file without x) fails `create` with the runtime's
# error, as runc's does, not the container at `start`.
test_oci_create_fails_on_non_executable() {
	bundle b '["/etc"]'
	oci create --bundle b nx1
	assert_rc_ne 0
	assert_contains "$ERR" "exec \`/etc\`: Is a directory"
	bundle c '["/etc/passwd"]'
	oci create --bundle c nx2
	assert_rc_ne 0
	assert_contains "$ERR" "exec \`/etc/passwd\`: Permission denied"
	oci list -q
	assert_eq "" "$OUT" "nothing was left created"
}

# A container frozen behind the runtime's back (the freezer written directly, its status still
# `running`): delete --force thaws it so that SIGKILL can end it.
test_oci_delete_force_frozen() {
	require_cgroups
	bundle b '["sleep","100"]'
	oci run -d --bundle b fz
	assert_rc 0
	local pid cg f
	pid=$(jq -r .pid <<<"$(oci state fz; echo "$OUT")")
	if cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$pid/cgroup") && [ -n "$cg" ]; then
		f=/sys/fs/cgroup/freezer$cg/freezer.state
		echo FROZEN >"$f"
	else
		cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")
		f=/sys/fs/cgroup$cg/cgroup.freeze
		echo 1 >"$f"
	fi
	sleep 0.2
	oci delete --force fz
	assert_rc 0
	[ ! -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" || fail "a frozen container survived delete --force"
	oci list -q
	assert_eq "" "$OUT" list
}

# exec'd processes lead their own session (runc's nsexec does setsid for every process) and get
# HOME from the container's /etc/passwd; an unknown --cap is a warning (runtime-spec 1.1).
test_oci_exec_session_home_and_unknown_cap() {
	bundle b '["sleep","100"]'
	oci run -d --bundle b es
	assert_rc 0
	oci exec --cap CAP_TELEPORT es sh -c 'read -r pid comm state ppid pgrp session rest </proc/self/stat; [ "$pid" = "$pgrp" ] && [ "$pid" = "$session" ] && echo leader; echo HOME=$HOME'
	local rc=$RC out=$OUT err=$ERR
	oci delete --force es
	RC=$rc OUT=$out ERR=$err
	assert_rc 0
	assert_eq "leader
HOME=/root" "$OUT" "the exec'd process: session leader, HOME"
	assert_contains "$ERR" "exec --cap \`CAP_TELEPORT\`"
	assert_contains "$ERR" "ignored"
}

# sdnotify (static, built here): busybox has no systemd-notify.
_build_sdnotify() {
	require_cmd cc python3
	cc -static -O -o "$TEST_TMP/sdnotify" "$(dirname "${BASH_SOURCE[0]}")/sdnotify.c" 2>"$TEST_TMP/cc.err" ||
		skip "cannot build a static binary here: $(head -n1 "$TEST_TMP/cc.err")"
}

# _notify_receiver SOCKET OUT: a datagram socket standing in for systemd's NOTIFY_SOCKET; what it
# receives goes to OUT, one message a line (a passed fd, BARRIER's pipe, is closed at once).
_notify_receiver() {
	python3 - "$1" "$2" <<'EOP' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_LEN(4))
            for _, kind, payload in anc:
                if kind == socket.SCM_RIGHTS:
                    os.close(int.from_bytes(payload[:4], sys.byteorder))
            out.write(data.decode().strip() + "\n")
            out.flush()
            if data.startswith(b"BARRIER"):
                break
    except socket.timeout:
        pass
EOP
	NOTIFY_PID=$!
	for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.05; done
	fail "the NOTIFY_SOCKET receiver did not start"
}

# NOTIFY_SOCKET (runc's protocol): the container gets /run/notify/notify.sock; `start` returns
# once it says READY=1, which goes on to the host's socket with MAINPID and a barrier.
test_oci_notify_socket() {
	_build_sdnotify
	bundle b '["sh","-c","sleep 1; touch /tmp/before-ready; sdnotify \"STATUS=almost\nREADY=1\"; exec sleep 100"]'
	cp "$TEST_TMP/sdnotify" b/rootfs/bin/sdnotify
	_notify_receiver "$TEST_TMP/n.sock" "$TEST_TMP/n.out"
	NOTIFY_SOCKET=$TEST_TMP/n.sock oci create --bundle b ns1 </dev/null
	assert_rc 0
	NOTIFY_SOCKET=$TEST_TMP/n.sock oci start ns1
	assert_rc 0
	[ -e b/rootfs/tmp/before-ready ] || fail "start returned before the container said READY"
	wait "$NOTIFY_PID"
	local pid
	pid=$(jq -r .pid <<<"$(oci state ns1; echo "$OUT")")
	oci delete --force ns1
	assert_eq "READY=1
MAINPID=$pid
BARRIER=1" "$(cat "$TEST_TMP/n.out")" "what the host's NOTIFY_SOCKET got"
}

# The cgroup mount shows the container's own cgroups (runc, crun), with or without a cgroup
# namespace: a limit `update` sets is what the container reads at /sys/fs/cgroup, not the root of
# the host's hierarchy (which also showed every other container).
test_oci_cgroup_mount_is_the_containers_own() {
	require_cgroups
	local ns file mnt='if any(.mounts[]; .type == "cgroup") then . else .mounts += [{"destination": "/sys/fs/cgroup",
		"type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}] end'
	for ns in with-cgroupns without-cgroupns; do
		if [ "$ns" = with-cgroupns ]; then
			bundle "b-$ns" '["sleep","100"]' "$mnt | .linux.namespaces |= (map(select(.type != \"cgroup\")) + [{\"type\": \"cgroup\"}])"
		else
			bundle "b-$ns" '["sleep","100"]' "$mnt | del(.linux.namespaces[] | select(.type == \"cgroup\"))"
		fi
		oci run -d --bundle "b-$ns" "cg-$ns"
		assert_rc 0
		oci update --memory 33554432 "cg-$ns"
		assert_rc 0
		if [ -e /sys/fs/cgroup/cgroup.controllers ]; then file=/sys/fs/cgroup/memory.max; else file=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
		oci exec "cg-$ns" cat "$file"
		local rc=$RC out=$OUT
		oci delete --force "cg-$ns"
		RC=$rc OUT=$out
		assert_rc 0
		assert_eq 33554432 "$OUT" "$file in the container ($ns)"
	done
}

# --pid-file in a directory another user (daemon) can write: that user sprays symlinks at every
# temp name cella could pick next (the old PATH.tmp.PID), pointing at a root-owned file. Root's
# pid file must be written without following any of them.
test_oci_pid_file_temp_name_not_predictable() {
	require_real_root
	require_cmd runuser python3
	id -u daemon >/dev/null 2>&1 || skip "needs the account daemon"
	local dir last
	dir=$(mktemp -d /tmp/itest-pid.XXXXXX) || fail mktemp
	# shellcheck disable=SC2064
	trap "rm -rf '$dir'; '$CELLA' --root '$TEST_TMP/state' delete --force sp2 >/dev/null 2>&1" EXIT
	chmod 0755 "$dir"
	chown daemon "$dir"
	echo precious >"$TEST_TMP/victim"
	bundle b '["true"]'
	last=$(cat /proc/sys/kernel/ns_last_pid)
	runuser -u daemon -- python3 -c '
import os, sys
d, target, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
for pid in range(first, first + 6000):
    os.symlink(target, "%s/pid.tmp.%d" % (d, pid))
' "$dir" "$TEST_TMP/victim" "$((last + 1))" || fail "spray the symlinks as daemon"
	oci run --bundle b --pid-file "$dir/pid" sp1
	assert_rc 0
	assert_eq precious "$(cat "$TEST_TMP/victim")" "the root-owned file the symlinks point at"
	[ -f "$dir/pid" ] && [ ! -L "$dir/pid" ] || fail "the pid file is not a regular file"
	oci create --bundle b --pid-file "$dir/pid2" sp2
	assert_rc 0
	assert_eq precious "$(cat "$TEST_TMP/victim")" "the root-owned file after create"
	oci delete --force sp2
}

# --pid-file in a directory that does not exist: an error before anything runs, for exec as for create.
test_oci_pid_file_missing_directory() {
	trap '"$CELLA" --root "$TEST_TMP/state" delete --force pm2 >/dev/null 2>&1' EXIT
	bundle b '["sleep","100"]'
	oci create --bundle b --pid-file "$TEST_TMP/nosuch/ctr.pid" pm1
	assert_rc 1
	assert_contains "$ERR" "$TEST_TMP/nosuch"
	oci list -q
	assert_eq "" "$OUT" "nothing is left of the refused create"
	oci run -d --bundle b pm2
	assert_rc 0
	oci exec --pid-file "$TEST_TMP/nosuch/exec.pid" pm2 touch /exec-ran
	assert_rc 1
	assert_contains "$ERR" "$TEST_TMP/nosuch"
	[ ! -e b/rootfs/exec-ran ] || fail "the exec ran although its pid file cannot be written"
	oci delete --force pm2
}

# root.path that is a symlink (here to the host's /) is refused, as runc does: it used to be
# followed, and the workload ran on the host's root.
test_oci_root_path_symlink_refused() {
	local mark=/tmp/itest-rootlink.$$.$RANDOM
	bundle b "[\"/bin/sh\",\"-c\",\"echo ESCAPED >$mark\"]"
	rm -rf b/rootfs
	ln -s / b/rootfs
	oci run --bundle b rl1
	[ ! -e "$mark" ] || { rm -f "$mark"; fail "the workload ran on the host's root"; }
	assert_rc_ne 0 "run with a symlinked root.path"
	assert_contains "$ERR" "root.path"
	# a symlink in the middle of the path is refused as well
	mkdir -p real
	make_rootfs real/rootfs
	ln -s real link
	jq '.root.path = "link/rootfs"' b/config.json >c.json && mv c.json b/config.json
	oci run --bundle b rl2
	assert_rc_ne 0 "run with a symlink inside root.path"
	assert_contains "$ERR" "root.path"
	oci list -q
	assert_eq "" "$OUT" "nothing is left of the refused runs"
}

# OCI run and exec: the process starts with default signal dispositions and an empty mask,
# whatever its caller ignored.
test_oci_processes_start_with_default_signals() {
	trap '"$CELLA" --root "$TEST_TMP/state" delete --force sg1 >/dev/null 2>&1' EXIT
	bundle b '["sh","-c","grep -E \"^Sig(Ign|Blk)\" /proc/self/status; exec sleep 100"]'
	trap '' HUP INT PIPE QUIT TERM USR1
	oci run -d --bundle b sg1
	assert_rc 0
	oci exec sg1 grep -E '^Sig(Ign|Blk)' /proc/self/status
	assert_rc 0
	trap - HUP INT PIPE QUIT TERM USR1
	assert_eq "SigBlk:0000000000000000 SigIgn:0000000000000000 " \
		"$(printf '%s\n' "$OUT" | awk '$1 == "SigIgn:" || $1 == "SigBlk:" { printf "%s%s ", $1, $2 }')" "oci exec"
	bundle b2 '["grep","-E","^Sig(Ign|Blk)","/proc/self/status"]'
	trap '' HUP INT PIPE QUIT TERM USR1
	oci run --bundle b2 sg2
	assert_rc 0
	trap - HUP INT PIPE QUIT TERM USR1
	assert_eq "SigBlk:0000000000000000 SigIgn:0000000000000000 " \
		"$(printf '%s\n' "$OUT" | awk '$1 == "SigIgn:" || $1 == "SigBlk:" { printf "%s%s ", $1, $2 }')" "oci run"
	oci delete --force sg1
}

# `create` does all of the setup and the container then waits on the exec fifo as its very last
# step before execve (runc's order): the created init already has the config's user,
# capabilities, no_new_privs and seccomp filter, so a signal sent right after `start` reaches
# the program, not the runtime's setup.
test_oci_create_leaves_the_init_fully_set_up() {
	require_id_range
	is_root || skip "the rootless bundle maps one id"
	bundle b '["sleep","100"]' '.process.user = {"uid": 1000, "gid": 1000} | .process.noNewPrivileges = true
		| .process.capabilities = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
		| .linux.seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]}'
	oci create --bundle b su
	assert_rc 0
	pid=$(jq -r .pid <<<"$(oci state su; echo "$OUT")")
	local st
	st=$(cat "/proc/$pid/status")
	oci delete --force su
	assert_match "$st" "^Uid:[[:space:]]+1000[[:space:]]+1000[[:space:]]+1000[[:space:]]+1000$" "the created init's uid"
	assert_eq 0000000000000020 "$(status_field "$st" CapBnd)" "the created init's bounding set"
	assert_eq 1 "$(status_field "$st" NoNewPrivs)" "the created init's no_new_privs"
	assert_eq 2 "$(status_field "$st" Seccomp)" "the created init's seccomp mode"
}

# `start` returns once the program runs (the init's end of the exec fifo closes at its execve):
# a signal sent right after it (runtime-tools' killsig) reaches the program, not cella's setup,
# and poststart hooks come after the program's execve, as the spec says.
test_oci_start_returns_once_the_program_runs() {
	local i pid comm
	# a startContainer hook that takes a while: it runs between the fifo and the execve
	bundle b '["sleep","100"]' '.hooks = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 0.3"]}]}'
	for i in 1 2; do
		oci create --bundle b ks
		assert_rc 0
		pid=$(jq -r .pid <<<"$(oci state ks; echo "$OUT")")
		oci start ks
		assert_rc 0
		comm=$(cat "/proc/$pid/comm")
		oci delete --force ks
		assert_rc 0
		assert_eq sleep "$comm" "the init's program when start returned (try $i)"
	done
}

# A setup error in the container's init fails `create` with the error on its stderr, and nothing
# is left (here a user the user namespace does not map).
test_oci_setup_error_fails_create() {
	bundle b '["true"]' '.process.user = {"uid": 4242, "gid": 0}
		| .linux.namespaces += (if any(.linux.namespaces[]; .type == "user") then [] else [{"type": "user"}] end)
		| .linux.uidMappings = [{"containerID": 0, "hostID": '"$(id -u)"', "size": 1}]
		| .linux.gidMappings = [{"containerID": 0, "hostID": '"$(id -g)"', "size": 1}]'
	oci create --bundle b se
	assert_rc 1
	assert_contains "$ERR" "uid 4242" "create's stderr names the unmapped user"
	oci list -q
	assert_eq "" "$OUT" "nothing left after the failed create"
}

# A capability cella does not hold (the host's bounding set lacks it) cannot be granted: create
# fails, naming it, and leaves nothing behind (runc and crun fail too); with the same config minus
# that capability the container runs with what it asked for.
test_oci_ungrantable_capability_fails_create() {
	local capbnd missing="" n name
	is_root || skip "as a user the container gets a user namespace, which holds every capability"
	capbnd=$((0x$(awk '/^CapBnd/ { print $2 }' /proc/self/status)))
	for n in $(seq 0 "$(cat /proc/sys/kernel/cap_last_cap)"); do
		(((capbnd >> n) & 1)) || { missing=$n; break; }
	done
	[ -n "$missing" ] || skip "this host's bounding set has every capability"
	name=$(capsh --decode="$(printf '%x' $((1 << missing)))" 2>/dev/null | sed 's/.*=//' | tr a-z A-Z)
	[ -n "$name" ] || fail "capsh cannot name capability $missing"
	bundle b '["grep", "CapEff", "/proc/self/status"]' '.process.capabilities = {"bounding": ["CAP_KILL"],
		"effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}'
	oci run --bundle b ok
	assert_rc 0
	assert_eq 0000000000000020 "$(status_field "$OUT" CapEff)" "CapEff: CAP_KILL only"
	oci delete --force ok
	rm -rf b
	bundle b '["grep", "CapEff", "/proc/self/status"]' ".process.capabilities = {\"bounding\": [\"$name\", \"CAP_KILL\"],
		\"effective\": [\"$name\", \"CAP_KILL\"], \"permitted\": [\"$name\", \"CAP_KILL\"]}"
	oci create --bundle b ug
	assert_rc 1
	assert_contains "$ERR" "process.capabilities: $name cannot be granted" "the error names the capability"
	oci list -q
	assert_eq "" "$OUT" "nothing left after the failed create"
}

# Every mount option `features` advertises is one config.json takes.
test_oci_features_mount_options_are_accepted() {
	oci features
	assert_rc 0
	local opts o
	opts=$(jq -r '.mountOptions[]' <<<"$OUT")
	[ -n "$opts" ] || fail "features lists no mount options"
	bundle b '["true"]'
	cp b/config.json base.json
	for o in $opts; do
		jq ".mounts += [{\"destination\": \"/mnt\", \"type\": \"tmpfs\", \"source\": \"tmpfs\", \"options\": [\"$o\"]}]" \
			base.json >b/config.json || fail jq
		oci run --bundle b mo
		case "$ERR" in *"unknown option"*) fail "advertised mount option \`$o\` is refused: $ERR" ;; esac
		oci delete --force mo
	done
}
