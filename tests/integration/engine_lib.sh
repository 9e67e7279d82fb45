# shellcheck shell=bash
# Sourced by the engine's test files (t_engine, t_health, ...): each test keeps its containers in its
# own data and run roots (engine_env), so none sees another's; what they poll and check alike.

engine_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

# field NAME TEMPLATE: one value from `cella inspect -f`
field() {
	"$CELLA" inspect -f "$2" "$1" 2>/dev/null
}

# wait_status NAME STATUS: poll (up to 10 s) until the container has that status
wait_status() {
	local i
	for i in $(seq 100); do
		[ "$(field "$1" '{{.State.Status}}')" = "$2" ] && return 0
		sleep 0.1
	done
	fail "container $1 never reached status $2 (now: $(field "$1" '{{.State.Status}}'))"
}

# no container's monitor or workload left: nothing in the run root, no monitor process
assert_engine_empty() {
	run_cella ps -a -q
	assert_ok
	assert_eq "" "$OUT" "containers left"
	local left
	left=$(find "$CELLA_ROOT/containers" -mindepth 1 -maxdepth 1 2>/dev/null)
	assert_eq "" "$left" "container directories left"
	[ -z "$(ls "$CELLA_RUN_ROOT/containers" 2>/dev/null)" ] || fail "run directories left: $(ls "$CELLA_RUN_ROOT/containers")"
	# a monitor ends with its container (rm waits for it, but give it a moment to be reaped)
	local end=$((SECONDS + 2))
	while [ "$(monitor_count)" != 0 ] && [ "$SECONDS" -le "$end" ]; do
		sleep 0.1
	done
	assert_eq 0 "$(monitor_count)" "monitors of this data root still running ($(monitor_pids | tr '\n' ' '))"
}

monitor_pids() { # monitors whose environment names our data root
	local p
	for p in $(pgrep -f '__monitor' 2>/dev/null); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "CELLA_ROOT=$CELLA_ROOT" && echo "$p"
	done
}

monitor_count() { monitor_pids | grep -c . ; }
