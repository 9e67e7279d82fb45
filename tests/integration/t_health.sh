# shellcheck shell=bash disable=SC2034
# passes: root user
# passes-why: health checks run through the engine as in the root pass; root and cellatest cover both exec paths (CI time)
# Health checks of engine containers: run by the monitor through exec, their verdict in ps and
# inspect, the image's Healthcheck, --health-on-failure, wait --condition, healthcheck run.
# Each test keeps its containers in its own data and run roots (as t_engine.sh does).
# test-timeout: 60

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

# health_log_last NAME KEY: KEY of the newest State.Health.Log entry
health_log_last() {
	"$CELLA" inspect "$1" 2>/dev/null | jq -r ".[0].State.Health.Log[-1].$2"
}

# make_health_image NAME TEST-JSON: an OCI layout of a busybox root whose config has a
# Healthcheck (Test as given, Interval 200 ms, Retries 2), imported as NAME
# (one root for all: the same layer again is stored once, and imported fast)
make_health_image() {
	[ -d "$TEST_TMP/hroot" ] || make_rootfs "$TEST_TMP/hroot"
	rm -rf "$TEST_TMP/hlayout"
	python3 - "$TEST_TMP/hroot" "$TEST_TMP/hlayout" "$2" <<'EOF' || fail "make the OCI layout"
import hashlib, io, json, os, platform, sys, tarfile
root, out, test = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
def as_root(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(root, arcname=".", filter=as_root)
ld, ls = blob(buf.getvalue())
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
cfg = {"architecture": arch, "os": "linux",
       "config": {"Cmd": ["sleep", "1000"], "Healthcheck": {"Test": test, "Interval": 200000000, "Retries": 2}},
       "rootfs": {"type": "layers", "diff_ids": [ld]}}
cd, cs = blob(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}
md, ms = blob(json.dumps(man).encode())
with open(out + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": man["mediaType"], "digest": md, "size": ms}]}, f)
with open(out + "/oci-layout", "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
EOF
	run_cella image import "$TEST_TMP/hlayout" "$1"
	assert_ok
}

test_passing_check_makes_it_healthy() {
	engine_env
	run_cella run -d --name ok --health-cmd 'echo alive; echo also >&2' --health-interval 200ms busybox sleep 1000
	assert_ok
	run_cella run -d --name later --health-cmd true --health-interval 1h busybox sleep 1000
	assert_ok
	run_cella ps
	assert_match "$OUT" 'Up .*\(health: starting\) +later$' "ps before the first check"
	run_cella wait --condition healthy ok
	assert_ok
	assert_eq "" "$OUT" "wait --condition prints nothing"
	assert_eq healthy "$(field ok '{{.State.Health.Status}}')"
	assert_eq 0 "$(field ok '{{.State.Health.FailingStreak}}')"
	assert_eq 0 "$(health_log_last ok ExitCode)" "the result's exit code"
	assert_eq "alive
also" "$(health_log_last ok Output)" "stdout and stderr of the check"
	assert_eq '["CMD-SHELL","echo alive; echo also >&2"]' "$(field ok '{{.Config.Healthcheck.Test}}')"
	assert_eq 200000000 "$(field ok '{{.Config.Healthcheck.Interval}}')"
	assert_eq 30000000000 "$(field ok '{{.Config.Healthcheck.Timeout}}')" "default timeout"
	assert_eq 3 "$(field ok '{{.Config.Healthcheck.Retries}}')" "default retries"
	run_cella ps
	assert_match "$OUT" 'Up .*\(healthy\) +ok$' "ps shows the verdict"
	run_cella ps --filter health=healthy -q
	assert_ok
	assert_match "$OUT" '^[0-9a-f]{12}$' "only one is healthy"
	assert_eq "$(field ok '{{.Id}}' | cut -c1-12)" "$OUT" "ps --filter health="
	sleep 1.2
	n=$("$CELLA" inspect ok | jq '.[0].State.Health.Log | length')
	assert_eq 5 "$n" "the log keeps the last 5 results"
	run_cella rm -f ok later
	assert_ok
}

test_failing_check_makes_it_unhealthy() {
	engine_env
	run_cella run -d --name bad --health-cmd 'echo broken; exit 3' --health-interval 100ms --health-retries 2 \
		busybox sleep 1000
	assert_ok
	run_cella wait --condition unhealthy bad
	assert_ok
	assert_eq unhealthy "$(field bad '{{.State.Health.Status}}')"
	streak=$(field bad '{{.State.Health.FailingStreak}}')
	[ "$streak" -ge 2 ] || fail "FailingStreak $streak, expected at least the 2 retries"
	assert_eq 3 "$(health_log_last bad ExitCode)" "the check's exit code in the log"
	assert_eq broken "$(health_log_last bad Output)" "the check's output in the log"
	run_cella ps
	assert_match "$OUT" 'Up .*\(unhealthy\) +bad$'
	assert_eq running "$(field bad '{{.State.Status}}')" "on-failure none: it runs on"
	run_cella rm -f bad
	assert_ok
}

test_start_period_does_not_count_failures() {
	engine_env
	run_cella run -d --name slow --health-cmd 'exit 1' --health-interval 100ms --health-retries 1 \
		--health-start-period 1500ms busybox sleep 1000
	assert_ok
	sleep 0.8
	assert_eq starting "$(field slow '{{.State.Health.Status}}')" "failures in the start period"
	assert_eq 0 "$(field slow '{{.State.Health.FailingStreak}}')"
	assert_eq 1 "$(health_log_last slow ExitCode)" "they are in the log all the same"
	run_cella wait --condition unhealthy slow
	assert_ok
	assert_eq unhealthy "$(field slow '{{.State.Health.Status}}')" "after the start period"
	# a success in the start period counts at once
	run_cella run -d --name quick --health-cmd true --health-interval 100ms --health-start-period 1h busybox sleep 1000
	assert_ok
	run_cella wait --condition healthy quick
	assert_ok
	run_cella rm -f slow quick
	assert_ok
}

test_timeout_kills_a_hanging_check() {
	engine_env
	# each check notes its pid in the container, then hangs
	run_cella run -d --name hang --health-cmd 'echo $$ >>/pids; exec sleep 37' --health-timeout 300ms \
		--health-interval 1s --health-retries 1 busybox sleep 1000
	assert_ok
	run_cella wait --condition unhealthy hang
	assert_ok
	assert_eq -1 "$(health_log_last hang ExitCode)" "a check past its timeout"
	assert_eq "Health check exceeded timeout (300ms)" "$(health_log_last hang Output)"
	start=$("$CELLA" inspect hang | jq -r '.[0].State.Health.Log[0].Start')
	end=$("$CELLA" inspect hang | jq -r '.[0].State.Health.Log[0].End')
	ms=$(python3 -c 'import sys
from datetime import datetime
p = lambda s: datetime.fromisoformat(s[:26].rstrip("Z"))
print(int((p(sys.argv[2]) - p(sys.argv[1])).total_seconds() * 1000))' "$start" "$end")
	[ "$ms" -ge 290 ] && [ "$ms" -lt 5000 ] || fail "the check ran ${ms} ms: the 300 ms timeout did not end it"
	# kill -0 finds a zombie too: the first check is gone and reaped (later ones may be at work)
	run_cella exec hang sh -c 'kill -0 "$(head -n1 /pids)"'
	assert_rc 1 "the first check's process is gone from the container"
	run_cella exec hang head -n1 /pids
	assert_match "$OUT" '^[0-9]+$' "the check did run and note its pid"
	run_cella rm -f hang
	assert_ok
}

test_image_healthcheck_and_options_over_it() {
	engine_env
	make_health_image local/hc:v1 '["CMD-SHELL", "echo from-image"]'
	run_cella run -d --name img local/hc:v1
	assert_ok
	assert_eq '["CMD-SHELL","echo from-image"]' "$(field img '{{.Config.Healthcheck.Test}}')" "the image's check"
	assert_eq 200000000 "$(field img '{{.Config.Healthcheck.Interval}}')" "the image's interval"
	assert_eq 2 "$(field img '{{.Config.Healthcheck.Retries}}')" "the image's retries"
	run_cella wait --condition healthy img
	assert_ok
	assert_eq from-image "$(health_log_last img Output)"
	# the command line's options over the image's
	run_cella run -d --name over --health-retries 5 --health-cmd 'echo mine' local/hc:v1
	assert_ok
	assert_eq '["CMD-SHELL","echo mine"]' "$(field over '{{.Config.Healthcheck.Test}}')"
	assert_eq 5 "$(field over '{{.Config.Healthcheck.Retries}}')"
	assert_eq 200000000 "$(field over '{{.Config.Healthcheck.Interval}}')" "the image's interval stays"
	run_cella rm -f img over
	assert_ok
}

test_no_healthcheck_and_the_image_forms() {
	engine_env
	make_health_image local/hc:v1 '["CMD-SHELL", "echo from-image"]'
	run_cella run -d --name none --no-healthcheck local/hc:v1
	assert_ok
	assert_eq "<no value>" "$(field none '{{.State.Health}}')" "--no-healthcheck: no health"
	assert_eq "<no value>" "$(field none '{{.Config.Healthcheck}}')"
	run_cella ps
	assert_match "$OUT" 'Up [^(]* +none$' "ps without a health status"
	run_cella wait --condition healthy none
	assert_cella_error 125 "has no health check"
	run_cella rm -f none
	assert_ok
	# the exec form, and {"NONE"}
	make_health_image local/hc:exec '["CMD", "/bin/sh", "-c", "echo exec-form"]'
	run_cella run -d --name ex local/hc:exec
	assert_ok
	run_cella wait --condition healthy ex
	assert_ok
	assert_eq exec-form "$(health_log_last ex Output)"
	make_health_image local/hc:none '["NONE"]'
	run_cella run -d --name off local/hc:none
	assert_ok
	assert_eq "<no value>" "$(field off '{{.Config.Healthcheck}}')" 'Test {"NONE"}: no check'
	run_cella rm -f ex off
	assert_ok
}

test_on_failure_kill() {
	engine_env
	# --restart always: a kill for ill health is a stop, not a crash to restart
	run_cella run -d --name k --restart always --health-cmd false --health-interval 100ms --health-retries 2 \
		--health-on-failure kill busybox sleep 1000
	assert_ok
	wait_status k exited
	assert_eq 137 "$(field k '{{.State.ExitCode}}')" "killed"
	assert_eq unhealthy "$(field k '{{.State.Health.Status}}')"
	assert_eq kill "$(field k '{{.Config.HealthcheckOnFailureAction}}')"
	sleep 0.5
	assert_eq exited "$(field k '{{.State.Status}}')" "not restarted by the policy"
	assert_eq 0 "$(field k '{{.RestartCount}}')"
	run_cella rm k
	assert_ok
}

test_on_failure_restart() {
	engine_env
	# unhealthy on the first run; the second finds /ran and makes the check pass
	run_cella run -d --name r --health-cmd 'test -e /ok' --health-interval 100ms --health-retries 2 \
		--health-on-failure restart busybox sh -c '[ -e /ran ] && touch /ok; touch /ran; exec sleep 1000'
	assert_ok
	for _ in $(seq 100); do
		[ "$(field r '{{.RestartCount}}')" = 1 ] && break
		sleep 0.1
	done
	assert_eq 1 "$(field r '{{.RestartCount}}')" "restarted once when it turned unhealthy"
	run_cella wait --condition healthy r
	assert_ok
	assert_eq running "$(field r '{{.State.Status}}')"
	assert_eq 0 "$(field r '{{.State.Health.FailingStreak}}')"
	run_cella rm -f r
	assert_ok
}

test_wait_condition_errors() {
	engine_env
	run_cella run -d --name plain busybox sleep 1000
	assert_ok
	run_cella wait --condition healthy plain
	assert_cella_error 125 "has no health check"
	run_cella wait --condition sideways plain
	assert_cella_error 125 "--condition \`sideways\`"
	# stops before it is ever healthy
	run_cella run -d --name brief --health-cmd false --health-interval 100ms busybox sleep 0.5
	assert_ok
	run_cella wait --condition healthy brief
	assert_cella_error 125 "stopped before it was healthy"
	run_cella rm -f plain brief
	assert_ok
}

test_healthcheck_run() {
	engine_env
	# the monitor's first check is an hour away: only ours run
	run_cella run -d --name hr --health-cmd 'cat /ok' --health-interval 1h busybox sleep 1000
	assert_ok
	run_cella healthcheck run hr
	assert_rc 1 "the check fails"
	assert_eq unhealthy "$OUT"
	assert_eq 1 "$(field hr '{{.State.Health.FailingStreak}}')" "recorded"
	assert_match "$(health_log_last hr Output)" "No such file" "the check's error output"
	run_cella exec hr sh -c 'echo fine > /ok'
	assert_ok
	run_cella healthcheck run hr
	assert_ok
	assert_eq healthy "$OUT"
	assert_eq healthy "$(field hr '{{.State.Health.Status}}')"
	assert_eq fine "$(health_log_last hr Output)"
	assert_eq 2 "$("$CELLA" inspect hr | jq '.[0].State.Health.Log | length')"
	run_cella stop -t 0 hr
	run_cella healthcheck run hr
	assert_cella_error 125 "is not running"
	run_cella run -d --name plain busybox sleep 1000
	assert_ok
	run_cella healthcheck run plain
	assert_cella_error 125 "has no health check"
	run_cella healthcheck run
	assert_cella_error 125 "a container is required"
	run_cella healthcheck --help
	assert_ok
	assert_contains "$OUT" "run CONTAINER"
	run_cella rm -f hr plain
	assert_ok
}

test_bad_health_options() {
	engine_env
	run_cella run -d --health-cmd true --health-interval 5x busybox true
	assert_cella_error 125 "--health-interval \`5x\`"
	run_cella run -d --health-cmd true --health-timeout 0 busybox true
	assert_cella_error 125 "--health-timeout \`0\`"
	run_cella run -d --health-cmd true --health-retries many busybox true
	assert_cella_error 125 "--health-retries \`many\`"
	run_cella run -d --health-cmd true --health-on-failure explode busybox true
	assert_cella_error 125 "--health-on-failure \`explode\`"
	run_cella run -d --health-interval 1s busybox true
	assert_cella_error 125 "give --health-cmd"
	run_cella run --health-cmd true busybox true
	assert_cella_error 125 "need a container the engine keeps"
	run_cella ps -a -q
	assert_eq "" "$OUT" "nothing created by a refused run"
	# durations as docker writes them
	run_cella create --name d --health-cmd true --health-interval 1m30s --health-timeout 1.5s \
		--health-start-period 250ms busybox true
	assert_ok
	assert_eq 90000000000 "$(field d '{{.Config.Healthcheck.Interval}}')"
	assert_eq 1500000000 "$(field d '{{.Config.Healthcheck.Timeout}}')"
	assert_eq 250000000 "$(field d '{{.Config.Healthcheck.StartPeriod}}')"
	assert_eq starting "$(field d '{{.State.Health.Status}}')"
	run_cella rm d
	assert_ok
}

test_stop_during_a_check() {
	engine_env
	run_cella run -d --name busy --health-cmd 'sleep 29.7' --health-interval 100ms --health-timeout 20s \
		busybox sleep 1000
	assert_ok
	id=$OUT
	for _ in $(seq 50); do
		pgrep -f 'sleep 29.7' >/dev/null && break
		sleep 0.1
	done
	pgrep -f 'sleep 29.7' >/dev/null || fail "no check at work"
	start=$SECONDS
	run_cella stop -t 1 busy
	assert_ok
	[ $((SECONDS - start)) -le 4 ] || fail "stop took $((SECONDS - start)) s with a check at work"
	assert_eq exited "$(field busy '{{.State.Status}}')"
	assert_eq starting "$(field busy '{{.State.Health.Status}}')" "the check in flight was not recorded"
	assert_eq 0 "$("$CELLA" inspect busy | jq '.[0].State.Health.Log | length')"
	run_cella ps -a
	assert_match "$OUT" 'Exited \(137\) .* busy$' "no health status for a stopped container"
	# neither the check nor its probe (a fork of the monitor, its command line) is left
	assert_eq "" "$(pgrep -f 'sleep 29.7')" "the check's process"
	assert_eq "" "$(pgrep -f "__monitor $id")" "the monitor and its probe"
	run_cella rm busy
	assert_ok
}

# descendants PID: the processes below PID (children, their children...), one "COMM" a line, sorted
descendants() {
	local p
	for p in $(pgrep -P "$1"); do
		cat "/proc/$p/comm" 2>/dev/null
		descendants "$p"
	done | sort
}

# The checks run through exec from the monitor, one probe per check: between checks, a container
# with a health check has exactly the processes of one without (no resident helper).
test_no_resident_process_between_checks() {
	engine_env
	local m_plain m_hc i same=0 n
	run_cella run -d --name plain busybox sleep 1000
	assert_ok
	run_cella run -d --name hc --health-cmd 'true' --health-interval 1s busybox sleep 1000
	assert_ok
	run_cella wait --condition healthy hc
	assert_ok "healthy"
	m_plain=$(field plain '{{.State.MonitorPid}}')
	m_hc=$(field hc '{{.State.MonitorPid}}')
	assert_match "$m_hc" '^[0-9]+$' "hc's monitor pid"
	assert_match "$(descendants "$m_plain")" 'sleep' "plain's workload below its monitor"
	# sampled over 3 s (three checks): the probe and the check exist only while a check runs,
	# so samples between checks see exactly plain's tree (a resident helper would be in every one)
	for i in $(seq 15); do
		[ "$(descendants "$m_hc")" = "$(descendants "$m_plain")" ] && same=$((same + 1))
		sleep 0.2
	done
	[ "$same" -ge 3 ] || fail "hc's monitor had other processes than plain's in $((15 - same)) of 15 samples: $(descendants "$m_hc" | tr '\n' ' ') vs $(descendants "$m_plain" | tr '\n' ' ')"
	n=$("$CELLA" inspect hc | jq '.[0].State.Health.Log | length')
	[ "$n" -ge 3 ] || fail "only $n checks ran in those 3 s"
	run_cella rm -f plain hc
	assert_ok
}
