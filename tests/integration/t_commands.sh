# shellcheck shell=bash disable=SC2034
# Engine commands and run options that no other file runs (tests/option-coverage.py lists them):
# attach, start -i, rm -v, ps --filter id=, logs --until, streaming stats and -a, -e KEY, --mount,
# --restart unless-stopped, --net; and what a failed start leaves behind (nothing).
# Every test keeps its containers in its own data and run roots.

engine_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

field() { "$CELLA" inspect -f "$2" "$1" 2>/dev/null; }

# wait_file PATH: poll (up to 10 s) until PATH exists
wait_file() {
	local i
	for i in $(seq 100); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	fail "$1 never appeared"
}

test_attach_shows_output_and_returns_the_exit_code() {
	engine_env
	mkdir "$TEST_TMP/sig"
	# the output starts only once attach is there (the file /sig/go), so none of it is missed
	run_cella run -d --name at -v "$TEST_TMP/sig:/sig" busybox sh -c \
		'touch /sig/up; while [ ! -e /sig/go ]; do sleep 0.05; done; echo one; echo two >&2; echo three; exit 6'
	assert_ok
	wait_file "$TEST_TMP/sig/up"
	timeout 15 "$CELLA" attach at >"$TEST_TMP/out" 2>"$TEST_TMP/err" &
	local pid=$!
	sleep 0.5
	touch "$TEST_TMP/sig/go"
	wait "$pid"
	RC=$? OUT=$(cat "$TEST_TMP/out") ERR=$(cat "$TEST_TMP/err") LAST_CMD="cella attach at"
	assert_rc 6 "attach returns the container's exit code"
	assert_eq "one
three" "$OUT" "the container's stdout through attach"
	assert_eq "two" "$ERR" "the container's stderr through attach"
	run_cella attach at
	assert_cella_error 125 "\`at\` is not running"
	run_cella attach nosuch
	assert_cella_error 125 "no such container: \`nosuch\`"
}

test_attach_passes_stdin() {
	engine_env
	run_cella run -d -i --name ai busybox sh -c 'read l; echo got:$l; exit 3'
	assert_ok
	echo hello | timeout 15 "$CELLA" attach ai >"$TEST_TMP/out" 2>&1
	RC=$? OUT=$(cat "$TEST_TMP/out") LAST_CMD="echo hello | cella attach ai"
	assert_rc 3
	assert_eq "got:hello" "$OUT" "stdin through attach reaches a container run with -i"
}

test_start_interactive_passes_stdin() {
	engine_env
	run_cella create -i --name si busybox sh -c 'read l; echo got:$l; exit 2'
	assert_ok
	echo piped | timeout 15 "$CELLA" start -a -i si >"$TEST_TMP/out" 2>&1
	RC=$? OUT=$(cat "$TEST_TMP/out") LAST_CMD="echo piped | cella start -a -i si"
	assert_rc 2 "start -a -i returns the exit code"
	assert_eq "got:piped" "$OUT" "stdin through start -i"
	echo again | timeout 15 "$CELLA" start --attach --interactive si >"$TEST_TMP/out" 2>&1
	assert_eq "got:again" "$(cat "$TEST_TMP/out")" "the long forms"
	# a container created without -i has no input to give (docker's OpenStdin)
	run_cella create --name si2 busybox sh -c 'read l; echo got:$l; exit 2'
	assert_ok
	echo piped | timeout 15 "$CELLA" start -a -i si2 >"$TEST_TMP/out" 2>&1
	RC=$? OUT=$(cat "$TEST_TMP/out")
	assert_rc 2
	assert_eq "got:" "$OUT" "start -a -i of a container created without -i"
}

test_rm_volumes_flag() {
	engine_env
	run_cella run --name rv busybox true
	assert_ok
	run_cella run -d --name rv2 busybox sleep 30
	assert_ok
	# busybox declares no VOLUME: -v removes the containers like rm (t_volume.sh tests anonymous volumes)
	run_cella rm -v rv
	assert_ok
	assert_eq rv "$OUT"
	run_cella rm --volumes --force rv2
	assert_ok
	run_cella ps -a -q
	assert_eq "" "$OUT" "containers left"
}

test_ps_filter_id() {
	engine_env
	local a b
	run_cella run -d --name fa busybox sleep 30
	assert_ok
	a=$OUT
	run_cella create --name fb busybox true
	assert_ok
	b=$OUT
	run_cella ps -a -q --no-trunc --filter "id=${a:0:8}"
	assert_eq "$a" "$OUT" "ps --filter id=PREFIX"
	run_cella ps -a -q --no-trunc --filter "id=$b"
	assert_eq "$b" "$OUT" "a whole id"
	run_cella ps -q --filter "id=$b"
	assert_eq "" "$OUT" "a created container without -a"
	run_cella ps -a -q --filter id=ffffffffffff
	assert_ok
	assert_eq "" "$OUT" "an id nobody has"
	run_cella ps -a -q --no-trunc -f "id=${a:0:8}" -f name=fa
	assert_eq "$a" "$OUT" "id and name filters together"
	run_cella ps -a -q -f "id=${a:0:8}" -f name=fb
	assert_eq "" "$OUT" "filters that exclude each other"
	run_cella rm -f fa fb
	assert_ok
}

test_logs_until() {
	engine_env
	run_cella run --name lu busybox sh -c 'echo early; sleep 1.5; echo late'
	assert_ok
	run_cella logs -t lu
	assert_ok
	local first until
	first=$(printf '%s\n' "$OUT" | head -n1 | cut -d' ' -f1)
	until=$(date -u -d "@$(($(date -u -d "$first" +%s) + 1))" +%Y-%m-%dT%H:%M:%SZ)
	run_cella logs --until "$until" lu
	assert_ok
	assert_eq early "$OUT" "logs --until between the two lines"
	run_cella logs --since "$until" lu
	assert_eq late "$OUT" "and --since the same time"
	run_cella logs --until 1h lu
	assert_eq "" "$OUT" "--until an hour ago"
	run_cella logs --until 0s lu
	assert_eq "early
late" "$OUT" "--until now"
	run_cella logs --until yesterday-ish lu
	assert_cella_error 125 "time \`yesterday-ish\`"
}

test_stats_streams_and_all() {
	engine_env
	run_cella run -d --name sr busybox sleep 30
	assert_ok
	run_cella run --name sx busybox true
	assert_ok
	# streaming (the default) refreshes every second until stopped
	timeout 3.5 "$CELLA" stats sr >"$TEST_TMP/out" 2>"$TEST_TMP/err"
	RC=$? OUT=$(cat "$TEST_TMP/out") ERR=$(cat "$TEST_TMP/err") LAST_CMD="cella stats sr (for 3.5 s)"
	assert_rc 124 "stats streams until it is stopped"
	local n
	n=$(printf '%s\n' "$OUT" | grep -c 'CONTAINER ID')
	[ "$n" -ge 2 ] || fail "stats printed $n tables in 3.5 s: $OUT"
	assert_match "$OUT" "^[0-9a-f]{12} +sr +" "a row for the container"
	run_cella stats --no-stream
	assert_ok
	assert_match "$OUT" " sr +"
	assert_not_contains "$OUT" " sx " "a stopped container without -a"
	run_cella stats -a --no-stream
	assert_ok
	assert_match "$OUT" "^[0-9a-f]{12} +sx +-- +-- / -- " "-a lists a stopped one, without numbers"
	if cgroup_probe; then
		assert_match "$OUT" " sr +[0-9.]+% " "the running one's numbers"
	else # (no cgroup to read them from: $CGROUP_WHY)
		assert_match "$OUT" " sr +-- " "the running one, without a cgroup"
	fi
	run_cella stats --all --no-stream --format json
	assert_ok
	assert_eq 2 "$(printf '%s\n' "$OUT" | grep -c '"Name"')" "--all --format json: one object per container"
	run_cella rm -f sr sx
	assert_ok
}

test_env_key_without_value_takes_the_callers() {
	FROM_CALLER=caller-value run_cella run -e FROM_CALLER -e CELLA_UNSET_$$ busybox sh -c \
		"echo \"\$FROM_CALLER\"; env | grep -c '^CELLA_UNSET_$$='"
	assert_rc 1 "grep -c finds nothing"
	assert_eq "caller-value
0" "$OUT" "-e KEY passes the caller's value; a KEY the caller has not set is left out"
	run_cella run --env FROM_CALLER=given busybox sh -c 'echo $FROM_CALLER'
	assert_eq given "$OUT" "--env KEY=VALUE"
}

test_mount_bind_and_tmpfs() {
	mkdir -p "$TEST_TMP/src"
	echo from-host >"$TEST_TMP/src/f"
	run_cella run --mount "type=bind,source=$TEST_TMP/src,target=/m" --mount type=tmpfs,target=/t busybox sh -c \
		'cat /m/f; echo from-ctr >/m/g; echo x >/t/x; grep " /t " /proc/self/mountinfo | sed "s/.* - //"'
	assert_ok
	assert_eq "from-host
from-ctr" "$(printf '%s\n' "$OUT" | head -n1; cat "$TEST_TMP/src/g")" "a bind mount, both ways"
	assert_match "$OUT" '^tmpfs ' "type=tmpfs is a tmpfs"
	[ ! -e "$TEST_TMP/src/x" ] || fail "the tmpfs write reached the host"
	run_cella run --mount "type=bind,src=$TEST_TMP/src,dst=/m,readonly" busybox sh -c 'cat /m/f; echo y >/m/h'
	assert_rc 1 "a write to a readonly bind"
	assert_eq from-host "$OUT"
	assert_contains "$ERR" "Read-only file system"
	[ ! -e "$TEST_TMP/src/h" ] || fail "a readonly bind mount was written"
	run_cella run --mount "type=npipe,target=/v" busybox true
	assert_cella_error 125 "unknown type \`npipe\` (expected bind, volume, tmpfs or overlay)"
	run_cella run --mount "type=bind,target=/m" busybox true
	assert_cella_error 125 "source"
}

test_restart_unless_stopped() {
	engine_env
	run_cella run -d --name us --restart unless-stopped busybox sh -c 'sleep 0.2; exit 3'
	assert_ok
	local i n=0
	for i in $(seq 50); do
		n=$(field us '{{.RestartCount}}')
		[ "$n" -ge 2 ] && break
		sleep 0.1
	done
	[ "$n" -ge 2 ] || fail "an unless-stopped container that exits 3 was not restarted (count $n)"
	assert_eq unless-stopped "$(field us '{{.HostConfig.RestartPolicy.Name}}')" "inspect's restart policy"
	run_cella stop -t 1 us
	assert_ok
	n=$(field us '{{.RestartCount}}')
	sleep 0.8
	assert_eq "$n" "$(field us '{{.RestartCount}}')" "no restart after stop"
	assert_eq exited "$(field us '{{.State.Status}}')"
}

test_net_is_network() {
	run_cella run --net none busybox cat /proc/net/dev
	assert_ok
	assert_eq lo "$(printf '%s\n' "$OUT" | awk 'NR > 2 { sub(/:.*/, "", $1); print $1 }')" "--net none: lo only"
	run_cella run --net bogus-mode busybox true
	assert_cella_error 125 bogus-mode
}

# A detached run whose command is missing: 127, the container stays created, and nothing of it
# runs or remains (monitor, cgroup, network objects, mounts).
test_run_detached_missing_command_leaves_nothing() {
	engine_env
	"$CELLA" run busybox true >/dev/null # the image, once
	check_no_leftovers run_cella run -d --name nf -m 64m busybox nosuchcmd
	assert_rc 127
	assert_contains "$ERR" nosuchcmd
	assert_eq created "$(field nf '{{.State.Status}}')" "a failed start leaves the container created"
	assert_eq 0 "$(field nf '{{.State.Pid}}')" "no process"
	run_cella start nf
	assert_rc 127 "and start fails the same way"
	check_no_leftovers run_cella rm nf
	assert_ok
}

# A failed network setup (the host port is taken) leaves no veth, rule, lease, helper or container.
test_failed_network_setup_leaves_nothing() {
	engine_env
	find_host_busybox
	if is_real_root; then
		require_cmd nft
	else
		command -v pasta >/dev/null || command -v slirp4netns >/dev/null || skip "neither pasta nor slirp4netns installed"
	fi
	"$CELLA" run busybox true >/dev/null
	local port pid i
	for i in $(seq 50); do
		port=$((21000 + RANDOM % 20000))
		grep -qi ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 2>/dev/null || break
	done
	"$HOST_BUSYBOX" nc -l -p "$port" >/dev/null 2>&1 &
	pid=$!
	sleep 0.2
	check_no_leftovers run_cella run -d --name np -p "$port:80" busybox sleep 30
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	assert_cella_error 125 "host port $port is in use"
	assert_eq created "$(field np '{{.State.Status}}')" "the container is not running"
	run_cella rm np
	assert_ok
}
