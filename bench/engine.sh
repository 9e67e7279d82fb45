#!/bin/bash
# Container engine benchmark (not a test; not part of make check).
#
#   sudo bash bench/engine.sh
#   COUNT=200 PS_ROUNDS=10 CELLA=build/cella bash bench/engine.sh
#
# 1. Scale: creates COUNT (500) containers (`cella create busybox true`, not running), then times
#    `cella ps -a` (PS_ROUNDS times; also with no container, for reference) and `cella create`
#    with 0 and with COUNT containers present (CREATE_ROUNDS times each, alternating; every
#    timed container is removed again, so the counts stay exactly 0 and COUNT).
# 2. Monitor memory: starts MONITORS (5) detached `sleep 600` containers and reads VmHWM and
#    VmRSS of each one's monitor (`cella __monitor ID`) from /proc/PID/status; then one container
#    that prints LOG_LINES (10000) lines, and its monitor's VmHWM once they are all in the log;
#    then one with a health check every 100 ms (HEALTH_SECONDS, 5, of them), its monitor's VmHWM.
#    conmon, when installed, is measured the same way (under runc) for comparison.
# Timing is done by bench/timeit.c (compiled here): the clock is read right before posix_spawn
# and right after waitpid; the command's output goes to /dev/null.
# Everything lives in a fresh temp dir (CELLA_ROOT and CELLA_RUN_ROOT point into it), so the
# user's containers are never touched; it is all removed on exit, failure or interrupt.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/bench/lib.sh"
COUNT=${COUNT:-500}
PS_ROUNDS=${PS_ROUNDS:-20}
CREATE_ROUNDS=${CREATE_ROUNDS:-30}
MONITORS=${MONITORS:-5}
LOG_LINES=${LOG_LINES:-10000}
CELLA_SRC=${CELLA:-$REPO/build/cella}
case "$CELLA_SRC" in /*) ;; *) CELLA_SRC=$PWD/$CELLA_SRC ;; esac
[ -x "$CELLA_SRC" ] || { echo "bench: $CELLA_SRC: not found (make all)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || echo "bench: not root: cella runs rootless, not as measured in docs/benchmarks.md" >&2

WORK=$(mktemp -d /tmp/bench-engine.XXXXXX)
ROOTS=("$WORK/empty" "$WORK/full") # data roots: no container / COUNT containers
export CELLA_RUN_ROOT=$WORK/run
export CELLA_ROOT=${ROOTS[1]}
CELLA=$WORK/cella # a private copy (below): a rebuild of build/cella during the run changes nothing
CONMON_PID="" CONMON_RUNC_ROOT="" WATCH_PIDS=()

cleanup() {
	local rc=$? root pid
	trap - EXIT INT TERM HUP
	set +e
	for root in "${ROOTS[@]}"; do
		[ -d "$root" ] || continue
		CELLA_ROOT=$root "$CELLA" ps -aq --no-trunc 2>/dev/null |
			CELLA_ROOT=$root xargs -r -n 100 "$CELLA" rm -f >/dev/null 2>&1
	done
	# Should rm have failed: the monitors we started (their workloads die with them, PDEATHSIG).
	for pid in "${WATCH_PIDS[@]}"; do
		grep -q __monitor "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	if [ -n "$CONMON_PID" ]; then
		kill -TERM "$CONMON_PID" 2>/dev/null
		runc --root "$CONMON_RUNC_ROOT" delete -f bench-conmon >/dev/null 2>&1
	fi
	bench_unmount_under "$WORK"
	rm -rf "$WORK"
	exit "$rc"
}
bench_traps cleanup

cp "$CELLA_SRC" "$CELLA"
CC=${CC:-cc}
"$CC" -O2 -Wall -o "$WORK/timeit" "$REPO/bench/timeit.c"
mkdir -p "${ROOTS[@]}" "$CELLA_RUN_ROOT"

# stats FILE -> "median min" in ms of the successful runs, from timeit's lines (NAME NANOSECONDS STATUS)
stats() {
	awk '$3 == 0 { print $2 }' "$1" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- -"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f\n", m / 1e6, v[1] / 1e6
		}'
}
# failures FILE -> " (N runs failed)" or nothing
failures() {
	local n
	n=$(awk '$3 != 0' "$1" | wc -l)
	[ "$n" = 0 ] || echo " ($n of them failed: not counted)"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
rollup() { # PID -> "Rss R kB: file-backed F kB, anonymous A kB (Pss P kB)"
	awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 }
		END { printf "Rss %d kB: file-backed (text, data of the binary) %d kB, anonymous %d kB (Pss %d kB)", r, r - a, a, p }' \
		"/proc/$1/smaps_rollup"
}
verdict() { # CONDITION(awk expr on a, b) A B
	awk -v a="$2" -v b="$3" "BEGIN { exit !($1) }" && echo met || echo MISSED
}
# ids_in ROOT -> sorted full ids
ids_in() { CELLA_ROOT=$1 "$CELLA" ps -aq --no-trunc | sort; }

echo "Container engine benchmark ($(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
echo "cella: $CELLA_SRC ($(stat -c %s "$CELLA_SRC") bytes, $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown))"
echo

# --- 1. scale -------------------------------------------------------------------------------
# Warm-up: the embedded busybox image is built on first use, once per data root.
for root in "${ROOTS[@]}"; do
	id=$(CELLA_ROOT=$root "$CELLA" create busybox true)
	CELLA_ROOT=$root "$CELLA" rm "$id" >/dev/null
done

echo "bench: creating $COUNT containers…" >&2
# A failed create is tried again (up to 5 times), and counted: a generated name can collide with
# an existing container's (16 × 16 × 256 names), which cella reports as an error.
failed=0 last_err=""
t0=$(date +%s%N)
for ((i = 0; i < COUNT; i++)); do
	for ((try = 0; try < 5; try++)); do
		err=$("$CELLA" create busybox true 2>&1 >/dev/null) && break
		failed=$((failed + 1)) last_err=$err
	done
done
t1=$(date +%s%N)
n=$("$CELLA" ps -aq | wc -l)
[ "$n" = "$COUNT" ] || { echo "bench: $n containers after creating $COUNT: $last_err" >&2; exit 1; }
awk -v n="$COUNT" -v t="$((t1 - t0))" 'BEGIN { printf "create %d containers (sequential shell loop): %.2f s, %.1f ms each\n", n, t / 1e9, t / 1e6 / n }'
[ "$failed" = 0 ] || echo "create failures while creating $COUNT (tried again): $failed, the last: $last_err"

"$WORK/timeit" "$PS_ROUNDS" -- ps "$CELLA" ps -a >"$WORK/ps.full"
CELLA_ROOT=${ROOTS[0]} "$WORK/timeit" "$PS_ROUNDS" -- ps "$CELLA" ps -a >"$WORK/ps.empty"
read -r ps_med ps_min <<<"$(stats "$WORK/ps.full")"
read -r ps0_med ps0_min <<<"$(stats "$WORK/ps.empty")"
echo "ps -a with $COUNT containers: median $ps_med ms (min $ps_min), $PS_ROUNDS runs$(failures "$WORK/ps.full"); goal < 100 ms: $(verdict 'a < 100' "$ps_med" 0)"
echo "ps -a with 0 containers: median $ps0_med ms (min $ps0_min)$(failures "$WORK/ps.empty")"

# create at 0 and at COUNT present, alternating which goes first; each new one removed again.
ids_in "${ROOTS[1]}" >"$WORK/base.full"
: >"$WORK/create.empty"
: >"$WORK/create.full"
for ((r = 0; r < CREATE_ROUNDS; r++)); do
	order=(0 1)
	((r % 2 == 0)) || order=(1 0)
	for k in "${order[@]}"; do
		root=${ROOTS[$k]}
		out=$WORK/create.$([ "$k" = 0 ] && echo empty || echo full)
		CELLA_ROOT=$root "$WORK/timeit" 1 -- create "$CELLA" create busybox true >>"$out"
		if [ "$k" = 0 ]; then
			new=$(ids_in "$root")
		else
			new=$(ids_in "$root" | comm -13 "$WORK/base.full" -)
		fi
		[ -z "$new" ] || CELLA_ROOT=$root xargs "$CELLA" rm >/dev/null <<<"$new"
	done
done
read -r c0_med c0_min <<<"$(stats "$WORK/create.empty")"
read -r cn_med cn_min <<<"$(stats "$WORK/create.full")"
ratio=$(awk -v a="$cn_med" -v b="$c0_med" 'BEGIN { printf "%.2f", a / b }')
ratio_min=$(awk -v a="$cn_min" -v b="$c0_min" 'BEGIN { printf "%.2f", a / b }')
echo "create with 0 containers present (the 1st): median $c0_med ms (min $c0_min), $CREATE_ROUNDS runs$(failures "$WORK/create.empty")"
echo "create with $COUNT present (container $((COUNT + 1))): median $cn_med ms (min $cn_min), $CREATE_ROUNDS runs$(failures "$WORK/create.full")"
echo "create ${COUNT}+1 / 1st: ${ratio}× (medians), ${ratio_min}× (minima); goal <= 1.20×: $(verdict 'a <= 1.20' "$ratio" 0)"
n=$("$CELLA" ps -aq | wc -l)
[ "$n" = "$COUNT" ] || echo "bench: warning: $n containers left after the create runs (expected $COUNT)" >&2
echo

# --- 2. monitor memory ------------------------------------------------------------------------
echo "bench: starting $MONITORS detached containers…" >&2
for ((i = 1; i <= MONITORS; i++)); do
	"$CELLA" run -d --name "bench-mon-$i" busybox sleep 600 >/dev/null
	WATCH_PIDS+=("$("$CELLA" inspect -f '{{.State.MonitorPid}}' "bench-mon-$i")")
done
sleep 1 # let every monitor settle in its loop
hwm=() rss=()
for pid in "${WATCH_PIDS[@]}"; do
	hwm+=("$(kb "$pid" VmHWM)")
	rss+=("$(kb "$pid" VmRSS)")
done
hwm_max=$(printf '%s\n' "${hwm[@]}" | sort -n | tail -n1)
hwm_med=$(printf '%s\n' "${hwm[@]}" | median)
rss_max=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n1)
rss_med=$(printf '%s\n' "${rss[@]}" | median)
echo "monitor VmHWM ($MONITORS idle monitors, sleep 600): max $hwm_max kB, median $hwm_med kB; goal <= 1024 kB: $(verdict 'a <= 1024' "$hwm_max" 0)"
echo "monitor VmRSS ($MONITORS idle monitors): max $rss_max kB, median $rss_med kB"
echo "monitor memory (bench-mon-1, smaps_rollup): $(rollup "${WATCH_PIDS[0]}")"

# log traffic: LOG_LINES lines of 64 bytes, then the container stays up so its monitor does too.
"$CELLA" run -d --name bench-log busybox sh -c \
	"i=0; while [ \$i -lt $LOG_LINES ]; do echo \"line \$i 0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH\"; i=\$((i + 1)); done; exec sleep 600" >/dev/null
pid=$("$CELLA" inspect -f '{{.State.MonitorPid}}' bench-log)
WATCH_PIDS+=("$pid")
lines=0
for ((t = 0; t < 300; t++)); do
	lines=$("$CELLA" logs bench-log 2>/dev/null | wc -l)
	[ "$lines" -lt "$LOG_LINES" ] || break
	sleep 0.1
done
[ "$lines" -ge "$LOG_LINES" ] || echo "bench: warning: only $lines of $LOG_LINES lines in the log after 30 s" >&2
echo "monitor after $lines log lines ($(stat -c %s "$("$CELLA" inspect -f '{{.LogPath}}' bench-log)") bytes of log): VmHWM $(kb "$pid" VmHWM) kB, VmRSS $(kb "$pid" VmRSS) kB; goal <= 1024 kB: $(verdict 'a <= 1024' "$(kb "$pid" VmHWM)" 0)"
echo "monitor memory (bench-log, smaps_rollup): $(rollup "$pid")"

# health checks: one every 100 ms, each printing 10 KB (4 KiB of it kept), for HEALTH_SECONDS
"$CELLA" run -d --name bench-health --health-interval 100ms \
	--health-cmd 'head -c 10000 /dev/zero | tr "\\0" x' busybox sleep 600 >/dev/null
pid=$("$CELLA" inspect -f '{{.State.MonitorPid}}' bench-health)
WATCH_PIDS+=("$pid")
sleep "${HEALTH_SECONDS:-5}"
echo "monitor with health checks (every 100 ms for ${HEALTH_SECONDS:-5} s, status $("$CELLA" inspect -f '{{.State.Health.Status}}' bench-health)): VmHWM $(kb "$pid" VmHWM) kB, VmRSS $(kb "$pid" VmRSS) kB; goal <= 1024 kB: $(verdict 'a <= 1024' "$(kb "$pid" VmHWM)" 0)"

# --- conmon, for comparison ------------------------------------------------------------------
if ! command -v conmon >/dev/null 2>&1; then
	echo "conmon: not installed"
elif ! command -v runc >/dev/null 2>&1; then
	echo "conmon: installed, but runc (its runtime here) is not"
else
	# The same busybox image as cella's, as a runc bundle running `sleep 600`.
	B=$WORK/conmon
	CONMON_RUNC_ROOT=$B/runc-root
	mkdir -p "$B/bundle" "$B/exits" "$B/sockets" "$CONMON_RUNC_ROOT"
	(cd "$B/bundle" && runc spec)
	python3 - "$B/bundle/config.json" "${ROOTS[1]}/images/busybox/rootfs" <<-'PY'
		import json, sys
		path, root = sys.argv[1], sys.argv[2]
		with open(path) as f:
		    spec = json.load(f)
		spec["root"] = {"path": root, "readonly": True}
		spec["process"]["args"] = ["sleep", "600"]
		spec["process"]["terminal"] = False
		with open(path, "w") as f:
		    json.dump(spec, f, indent=2)
	PY
	if out=$(timeout 30 conmon --api-version 1 -c bench-conmon -u bench-conmon -n bench-conmon \
		-r "$(command -v runc)" --runtime-arg "--root=$CONMON_RUNC_ROOT" -b "$B/bundle" \
		-p "$B/pid" -P "$B/conmon.pid" -l "k8s-file:$B/ctr.log" --exit-dir "$B/exits" \
		--socket-dir-path "$B/sockets" --log-level error 2>&1 </dev/null) &&
		CONMON_PID=$(cat "$B/conmon.pid" 2>/dev/null) && [ -r "/proc/$CONMON_PID/status" ]; then
		sleep 1
		echo "conmon ($(conmon --version 2>/dev/null | head -n1), one runc container, sleep 600): VmHWM $(kb "$CONMON_PID" VmHWM) kB, VmRSS $(kb "$CONMON_PID" VmRSS) kB"
		echo "conmon memory (smaps_rollup): $(rollup "$CONMON_PID")"
	else
		echo "conmon: installed, but failed to start a container: $(printf '%s' "$out" | tail -n1 | cut -c1-100)"
	fi
fi
