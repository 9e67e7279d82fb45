# shellcheck shell=bash
# root-only
# test-timeout: 90
# cmd-timeout: 30
# containerd (the Kubernetes path) driving cella through its runc shim: `ctr run --runc-binary
# $CELLA`, so containerd-shim-runc-v2 calls cella with runc's command line (--root, --log,
# --log-format json, create --bundle --pid-file [--console-socket], start, state, kill, delete,
# exec --process --detach --pid-file, pause, resume). Each test starts a containerd of its own
# (root, state, sockets and runtime root under its temp dir, no CRI plugin), imports an OCI
# archive made by `cella save` from the busybox root the other tests use, and stops it all at
# the end: no task, shim, mount, cgroup or state is left.

setup_containerd() {
	require_real_root # containerd mounts its snapshots and makes cgroups for real
	require_cmd containerd ctr containerd-shim-runc-v2 script jq
	D=$TEST_TMP/ctrd
	NS=cella$$
	mkdir -p "$D"
	CTRD_RUN_BEFORE=$(ls -A /run/containerd 2>/dev/null | tr '\n' ' ')
	CTRD_RUN_EXISTED=$([ -d /run/containerd ] && echo 1)
	cat >"$D/config.toml" <<-EOF
	version = 2
	root = "$D/root"
	state = "$D/state"
	disabled_plugins = ["io.containerd.grpc.v1.cri"]
	[grpc]
	  address = "$D/c.sock"
	[ttrpc]
	  address = "$D/c.sock.ttrpc"
	EOF
	containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
	CTRD_PID=$!
	trap teardown_containerd EXIT
	local i
	for i in $(seq 100); do
		[ -S "$D/c.sock" ] && ctr --address "$D/c.sock" version >/dev/null 2>&1 && break
		kill -0 "$CTRD_PID" 2>/dev/null || fail "containerd exited: $(tail -n 5 "$D/containerd.log")"
		sleep 0.1
	done
	[ -S "$D/c.sock" ] || fail "containerd did not start: $(tail -n 5 "$D/containerd.log")"
	# the image: the busybox root as a store image, saved as an OCI archive, imported
	make_rootfs rootfs
	CELLA_ROOT=$D/cella CELLA_RUN_ROOT=$D/cella-run "$CELLA" image import rootfs localhost/cella-ctrd:1 >/dev/null ||
		fail "cella image import"
	CELLA_ROOT=$D/cella CELLA_RUN_ROOT=$D/cella-run "$CELLA" save -o "$D/image.tar" localhost/cella-ctrd:1 ||
		fail "cella save"
	c images import "$D/image.tar" >/dev/null || fail "ctr images import"
}

# c ARGS: ctr on our containerd, in our namespace
c() { ctr --address "$D/c.sock" -n "$NS" "$@"; }

# run_c ARGS: ctr under the test's timeout, OUT/ERR/RC as run_cella
run_c() { run_cmd ctr --address "$D/c.sock" -n "$NS" "$@"; }

# ctr run with cella as the runtime, its state root and fifos under the test's directory
RUNC_OPTS=()
cella_run_opts() { RUNC_OPTS=(--runc-binary "$CELLA" --runc-root "$D/runc" --fifo-dir "$D/fifo"); }

teardown_containerd() {
	local t pid d
	if [ -S "$D/c.sock" ]; then
		for t in $(c task ls -q 2>/dev/null); do
			c task kill -s KILL "$t" >/dev/null 2>&1
		done
		sleep 0.3
		for t in $(c task ls -q 2>/dev/null); do c task delete -f "$t" >/dev/null 2>&1; done
		for t in $(c containers ls -q 2>/dev/null); do c containers delete "$t" >/dev/null 2>&1; done
		c images rm localhost/cella-ctrd:1 >/dev/null 2>&1
	fi
	kill "$CTRD_PID" 2>/dev/null
	wait "$CTRD_PID" 2>/dev/null
	# shims of ours that outlived containerd (found by our socket's address in their argv)
	for pid in $(grep -lF -- "$D/c.sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
		kill -9 "$pid" 2>/dev/null
	done
	while read -r d; do umount -l "$d" 2>/dev/null; done < <(awk -v p="$D/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	# what the shim makes in /run/containerd when it was not there before us
	for d in s fifo runc; do
		case " $CTRD_RUN_BEFORE " in *" $d "*) ;; *) rmdir "/run/containerd/$d" 2>/dev/null ;; esac
	done
	[ -n "$CTRD_RUN_EXISTED" ] || rmdir /run/containerd 2>/dev/null
	rm -rf "$D" 2>/dev/null || true
}

test_containerd_run_echo_exit_stdin_tty() {
	setup_containerd
	cella_run_opts
	run_c run --rm "${RUNC_OPTS[@]}" localhost/cella-ctrd:1 echo1 echo hello from cella
	assert_rc 0
	assert_eq "hello from cella" "$OUT" "ctr run echo"
	run_c run --rm "${RUNC_OPTS[@]}" localhost/cella-ctrd:1 exit7 sh -c 'exit 7'
	assert_rc 7
	run_cmd sh -c 'echo through-the-shim | "$@"' sh ctr --address "$D/c.sock" -n "$NS" run --rm "${RUNC_OPTS[@]}" \
		localhost/cella-ctrd:1 stdin1 sh -c 'read -r line; echo "$line"'
	assert_rc 0
	assert_eq through-the-shim "$OUT" "stdin through the shim's fifo"
	# -t: the shim gives cella a console socket; the process gets the pty as its terminal
	run_cmd script -qec "ctr --address $D/c.sock -n $NS run --rm -t ${RUNC_OPTS[*]} localhost/cella-ctrd:1 tty1 sh -c 'tty; exit 3'" /dev/null
	assert_rc 3
	assert_contains "$OUT" "/dev/pts/0" "tty in the container"
	run_c containers ls -q
	assert_eq "" "$OUT" "no container left after --rm"
	[ -z "$(ls -A "$D/runc/$NS" 2>/dev/null)" ] || fail "cella's state is left under --runc-root: $(ls "$D/runc/$NS")"
}

test_containerd_detach_exec_pause_kill_metrics() {
	setup_containerd
	cella_run_opts
	local cg pid
	run_c run -d --memory-limit 67108864 "${RUNC_OPTS[@]}" localhost/cella-ctrd:1 bg1 sleep 1000
	assert_rc 0
	run_c task ls
	assert_match "$OUT" "^bg1 +[0-9]+ +RUNNING" "task ls after run -d"
	pid=$(awk '$1 == "bg1" { print $2 }' <<<"$OUT")
	run_cmd "$CELLA" --root "$D/runc/$NS" state bg1
	assert_rc 0
	assert_eq running "$(jq -r .status <<<"$OUT")" "cella's own state of the task"
	assert_eq "$pid" "$(jq -r .pid <<<"$OUT")" "the task's pid"
	# --memory-limit, in the container's cgroup (cgroupsPath /NS/ID)
	cg=$(jq -r .linux.cgroupsPath "$D/state/io.containerd.runtime.v2.task/$NS/bg1/config.json")
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		assert_eq 67108864 "$(cat "/sys/fs/cgroup$cg/memory.max")" "memory.max"
	else
		assert_eq 67108864 "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")" "memory.limit_in_bytes"
	fi
	run_c task exec --exec-id ex1 bg1 sh -c 'echo exec-$((6*7))'
	assert_rc 0
	assert_eq exec-42 "$OUT" "task exec"
	run_c task pause bg1
	assert_rc 0
	run_c task ls
	assert_match "$OUT" "^bg1 +[0-9]+ +PAUSED" "task ls after pause"
	run_c task resume bg1
	assert_rc 0
	run_c task ls
	assert_match "$OUT" "^bg1 +[0-9]+ +RUNNING" "task ls after resume"
	run_c task metrics bg1
	assert_rc 0
	assert_match "$OUT" "^memory.limit_in_bytes +67108864|^memory.max +67108864" "task metrics: the limit"
	assert_match "$OUT" "^pids.current +1" "task metrics: one process"
	run_c task kill -s KILL bg1
	assert_rc 0
	local i
	for i in $(seq 50); do
		run_c task ls
		[[ "$OUT" == *STOPPED* ]] && break
		sleep 0.1
	done
	assert_match "$OUT" "^bg1 +[0-9]+ +STOPPED" "task ls after kill"
	run_c task delete bg1
	assert_rc 0
	run_c containers delete bg1
	assert_rc 0
	[ ! -d "/proc/$pid" ] || fail "the container's process $pid is alive after task delete"
	[ ! -e "$D/runc/$NS/bg1" ] || fail "cella's state of bg1 is left after task delete"
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		[ ! -e "/sys/fs/cgroup$cg" ] || fail "the container's cgroup $cg is left"
	else
		[ ! -e "/sys/fs/cgroup/memory$cg" ] || fail "the container's cgroup $cg is left"
	fi
}
