# shellcheck shell=bash
# passes: root
# passes-why: the event log is the data root's, written by the same CLI and monitor code for any user; one pass (CI time)
# cella events: the event log written where containers, volumes and images change, replayed with
# --since/--until, followed, filtered, and printed as JSON lines.
# test-timeout: 60

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

# ev_json ARGS...: `cella events --since 1h --until now-ish --format json ARGS...` into OUT
ev_json() {
	run_cella events --since 1h --until "$(date +%s.%N)" --format json "$@"
	assert_ok "events"
}

# actions: the Action of each line of $OUT for container $1, space-separated
actions() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
name = sys.argv[1]
out = []
for l in sys.stdin:
    l = l.strip()
    if not l:
        continue
    e = json.loads(l)
    if e["Actor"]["Attributes"].get("name") == name:
        out.append(e["Action"])
print(" ".join(out))' "$1"
}

test_run_stop_rm_cycle_events() {
	engine_env
	require_cmd python3
	run_cella run -d --name ev1 busybox sleep 1000
	assert_ok
	id=$OUT
	run_cella stop -t 1 ev1
	assert_ok
	run_cella inspect -f '{{.State.ExitCode}}' ev1
	assert_ok
	code=$OUT
	[ "$code" -gt 128 ] || fail "stop: exit code $code"
	run_cella rm ev1
	assert_ok
	ev_json
	assert_eq "$(actions ev1)" "create start die stop destroy" "the cycle's events, in order"
	# the die event carries the exit code (what inspect said) and docker's fields
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
evs = [json.loads(l) for l in sys.stdin if l.strip()]
die = [e for e in evs if e["Action"] == "die" and e["Actor"]["Attributes"]["name"] == "ev1"][0]
assert die["Type"] == "container", die
assert die["Actor"]["ID"] == sys.argv[1], die
assert die["Actor"]["Attributes"]["exitCode"] == sys.argv[2], die
assert die["Actor"]["Attributes"]["image"] == "busybox", die
assert die["status"] == "die" and die["id"] == sys.argv[1] and die["scope"] == "local", die
assert die["timeNano"] // 10**9 == die["time"], die
' "$id" "$code" || fail "die event: $OUT"
	# by a 12-digit id prefix too
	ev_json --filter "container=${id:0:12}"
	assert_eq "$(actions ev1)" "create start die stop destroy" "container=<short id>"
	# a non-zero exit of its own
	run_cella run --name ev2 busybox sh -c 'exit 3'
	assert_rc 3
	ev_json --filter container=ev2 --filter event=die
	assert_contains "$OUT" '"exitCode":"3"' "ev2's die event"
	assert_eq "$(printf '%s\n' "$OUT" | grep -c .)" 1 "only ev2's die event"
}

test_text_format_is_dockers_line() {
	engine_env
	run_cella run --name evt busybox true
	assert_ok
	run_cella events --since 1m --until "$(date +%s.%N)" --filter container=evt --filter event=die
	assert_ok
	assert_match "$OUT" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z container die [0-9a-f]{64} \(name=evt, image=busybox, exitCode=0\)$' "text line"
}

test_since_until_window() {
	engine_env
	run_cella run --name early busybox true
	assert_ok
	sleep 1.2
	mid=$(date +%s.%N)
	sleep 0.2
	run_cella run --name late busybox true
	assert_ok
	run_cella events --since 1h --until "$mid" --format json
	assert_ok
	assert_contains "$OUT" '"name":"early"' "before --until"
	assert_not_contains "$OUT" '"name":"late"' "after --until"
	run_cella events --since "$mid" --until "$(date +%s.%N)" --format json
	assert_ok
	assert_not_contains "$OUT" '"name":"early"' "before --since"
	assert_contains "$OUT" '"name":"late"' "after --since"
	# an RFC 3339 --since works too
	since=$(date -u -d "@${mid%.*}" +%Y-%m-%dT%H:%M:%SZ)
	run_cella events --since "$since" --until 0s --format json --filter event=create
	assert_ok
	assert_contains "$OUT" '"name":"late"' "RFC 3339 --since"
}

test_filters() {
	engine_env
	run_cella volume create evvol
	assert_ok
	run_cella run --name fa busybox true
	assert_ok
	run_cella run --name fb busybox true
	assert_ok
	run_cella volume rm evvol
	assert_ok
	ev_json --filter type=volume
	assert_eq "$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print(" ".join(json.loads(l)["Action"] + ":" + json.loads(l)["Actor"]["ID"] for l in sys.stdin if l.strip()))')" \
		"create:evvol destroy:evvol" "volume events"
	ev_json --filter volume=evvo
	assert_eq "$OUT" "" "volume= is a whole name"
	ev_json --filter container=fa
	assert_eq "$(actions fa)" "create start die" "fa's events"
	assert_eq "$(actions fb)" "" "container=fa keeps fb out"
	# two values of one key: either; different keys: both
	ev_json --filter container=fa --filter container=fb --filter event=start
	assert_eq "$(actions fa) $(actions fb)" "start start" "start of fa or fb"
	run_cella events --filter colour=red --until 0s
	assert_cella_error 125 "colour=red"
	run_cella events --filter type=planet --until 0s
	assert_cella_error 125 "type=planet"
	run_cella events --since yesterday-ish --until 0s
	assert_cella_error 125 "yesterday-ish"
	run_cella events --format yaml --until 0s
	assert_cella_error 125 "yaml"
}

test_follow_sees_new_events() {
	engine_env
	require_cmd python3
	mkdir -p "$CELLA_ROOT"
	"$CELLA" events --format json --filter container=fol >"$TEST_TMP/follow.out" 2>&1 &
	pid=$!
	sleep 0.5
	run_cella run --name fol busybox sh -c 'exit 7'
	assert_rc 7
	for _ in $(seq 50); do
		grep -q '"die"' "$TEST_TMP/follow.out" && break
		sleep 0.1
	done
	kill "$pid"
	wait "$pid" 2>/dev/null
	OUT=$(cat "$TEST_TMP/follow.out")
	assert_eq "$(actions fol)" "create start die" "followed events"
	assert_contains "$OUT" '"exitCode":"7"' "the exit code"
	# --until in the future (2 s from now; a duration such as 1s would mean 1 s ago, as docker
	# reads it): follows, then ends by itself
	run_cella events --since 1h --until "$(date -d '+2 seconds' +%s.%N)" --filter container=fol --format json
	assert_ok
	assert_eq "$(actions fol)" "create start die" "--until ends the follow"
}

test_health_and_pause_events() {
	engine_env
	run_cella run -d --name evh --health-cmd 'true' --health-interval 200ms busybox sleep 1000
	assert_ok
	for _ in $(seq 50); do
		run_cella events --since 1m --until 0s --filter container=evh --filter event=health_status
		case "$OUT" in *"health_status: healthy"*) break ;; esac
		sleep 0.2
	done
	assert_contains "$OUT" "health_status: healthy" "health_status event"
	run_cella rm -f evh
	assert_ok
	ev_json --filter container=evh
	assert_match "$(actions evh)" "die destroy$" "rm -f kills, then destroys"
}

test_log_rotates_at_its_cap() {
	engine_env
	mkdir -p "$CELLA_ROOT"
	# a log just under the cap: the next event moves it to events.log.1 and starts a new one
	python3 -c '
import json, sys, time
line = json.dumps({"Type": "volume", "Action": "create", "Actor": {"ID": "old", "Attributes": {}}, "scope": "local",
                   "time": int(time.time()) - 60, "timeNano": (int(time.time()) - 60) * 10**9}) + "\n"
with open(sys.argv[1], "w") as f:
    f.write(line * (1024 * 1024 // len(line)))
' "$CELLA_ROOT/events.log"
	run_cella volume create rotvol
	assert_ok
	[ -s "$CELLA_ROOT/events.log.1" ] || fail "no events.log.1 after the cap"
	[ "$(stat -c %s "$CELLA_ROOT/events.log")" -lt 4096 ] || fail "events.log was not started afresh"
	run_cella events --since 1h --until "$(date +%s.%N)" --filter type=volume --format json
	assert_ok
	assert_contains "$OUT" '"ID":"old"' "the rotated part is replayed"
	assert_contains "$OUT" '"ID":"rotvol"' "and the new part"
}

test_oom_event_before_die() {
	engine_env
	require_cgroups
	run_cella run -d --name evoom -m 32m busybox sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived'
	assert_ok
	run_cella wait evoom
	assert_eq "$OUT" 137 "OOM-killed"
	ev_json --filter container=evoom
	assert_eq "$(actions evoom)" "create start oom die" "oom, then die"
}

test_image_events() {
	engine_env
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/evimg:v1
	assert_ok
	run_cella tag local/evimg:v1 local/evimg:v2
	assert_ok
	run_cella rmi local/evimg:v2
	assert_ok
	ev_json --filter type=image
	assert_eq "$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print(" ".join(json.loads(l)["Action"] + ":" + json.loads(l)["Actor"]["Attributes"]["name"] for l in sys.stdin if l.strip()))')" \
		"import:local/evimg:v1 tag:docker.io/local/evimg:v2 delete:local/evimg:v2" "image events"
	ev_json --filter type=image --filter image=local/evimg:v1
	assert_contains "$OUT" '"Action":"import"' "image= by name"
}

test_kill_event_names_the_signal() {
	engine_env
	run_cella run -d --name evk busybox sleep 1000
	assert_ok
	run_cella kill -s KILL evk
	assert_ok
	run_cella wait evk
	ev_json --filter container=evk --filter event=kill
	assert_contains "$OUT" '"signal":"9"' "kill's signal"
	run_cella rm evk
	assert_ok
}
