#!/bin/bash
# Scale benchmark (issue 18; not a test; not part of make check).
#
#   sudo bash bench/scale.sh                 # N=1000 containers, 8 started at a time
#   N=200 PAR=8 TOOLS="cella podman" bash bench/scale.sh
#
# For each tool (cella, then podman when installed), in a fresh data root under a temp dir:
#   1. starts N detached `busybox sleep` containers, PAR at a time (xargs -P), and times it
#      (containers per second);
#   2. memory per idle container, all included: MemAvailable of /proc/meminfo before and after
#      (page cache dropped both times), divided by N; and the mean Pss of the per-container
#      processes that are not the workload (cella: its monitor; podman: conmon);
#   3. `ps -a` (median of PS_ROUNDS) and `stats --no-stream` (one run) with N containers;
#   4. stop of all and rm of all (PAR at a time), timed;
#   5. afterwards: what is left (processes, mounts, container directories, cgroups, veths, nft
#      tables) — each should be 0.
# podman runs with its own --root/--runroot under the temp dir (runc on a hybrid cgroup host, where
# crun 1.8 refuses to run) and an image imported from the
# same busybox; on this host it needs `--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`
# (root lacks CAP_SYS_RESOURCE), given to it. Both use their default network for `run -d`
# (cella: a private network; podman: its bridge) unless NET=none.
# Prints a markdown table with the ratio of podman's figure to cella's.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/bench/lib.sh"
N=${N:-1000}
PAR=${PAR:-8}
PS_ROUNDS=${PS_ROUNDS:-5}
NET=${NET:-default}
TOOLS=${TOOLS:-cella podman}
CELLA_SRC=${CELLA:-$REPO/build/cella}
case "$CELLA_SRC" in /*) ;; *) CELLA_SRC=$PWD/$CELLA_SRC ;; esac
[ -x "$CELLA_SRC" ] || { echo "bench: $CELLA_SRC: not found (make all)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it drops the page cache to measure memory)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-scale.XXXXXX)
CELLA=$WORK/cella
export CELLA_ROOT=$WORK/cella-data CELLA_RUN_ROOT=$WORK/cella-run
PODMAN_ARGS=(--root "$WORK/podman-root" --runroot "$WORK/podman-run" --storage-driver overlay --cgroup-manager cgroupfs)
# crun 1.8 refuses a hybrid cgroup layout (this CI machine's): runc there, PODMAN_RUNTIME to choose
if [ -n "${PODMAN_RUNTIME:-}" ]; then
	PODMAN_ARGS+=(--runtime "$PODMAN_RUNTIME")
elif [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null; then
	PODMAN_ARGS+=(--runtime runc)
fi
PODMAN_RUN_ARGS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
[ "$NET" = none ] && PODMAN_RUN_ARGS+=(--network none)
CELLA_RUN_ARGS=()
[ "$NET" = none ] && CELLA_RUN_ARGS+=(--network none)
# the workload: `sleep TAG<i>`, a long duration whose digits name this run (pgrep finds them)
TAG=$((100000 + $$ % 100000))

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	"$CELLA" ps -aq --no-trunc 2>/dev/null | xargs -r -n 100 "$CELLA" rm -f >/dev/null 2>&1
	if command -v podman >/dev/null; then
		podman "${PODMAN_ARGS[@]}" rm -af -t 0 >/dev/null 2>&1
		podman "${PODMAN_ARGS[@]}" system reset -f >/dev/null 2>&1
	fi
	bench_unmount_under "$WORK"
	rm -rf "$WORK"
	exit "$rc"
}
bench_traps cleanup

cp "$CELLA_SRC" "$CELLA"
# the small monitor next to it (monitor/main.c); CELLA_MONITOR_BIN= (empty) keeps the full one
[ -x "$(dirname "$CELLA_SRC")/cella-monitor" ] && cp "$(dirname "$CELLA_SRC")/cella-monitor" "$WORK/cella-monitor"
mkdir -p "$CELLA_ROOT" "$CELLA_RUN_ROOT"

now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
avail_kb() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	awk '/^MemAvailable:/ { print $2 }' /proc/meminfo
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# mean Pss (kB) of the processes whose command line matches PATTERN
mean_pss() {
	local pat=$1 p sum=0 n=0 v
	for p in $(pgrep -f "$pat"); do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		[ -n "$v" ] || continue
		sum=$((sum + v))
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] && echo $((sum / n)) || echo -
}
# mean of FIELD (VmHWM, VmRSS: kB) in /proc/PID/status of the processes matching PATTERN
mean_status() {
	local pat=$1 field=$2 p sum=0 n=0 v
	for p in $(pgrep -f "$pat"); do
		v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
		[ -n "$v" ] || continue
		sum=$((sum + v))
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] && echo $((sum / n)) || echo -
}
leftovers() { # TOOL: processes, mounts, dirs, cgroups, veths, nft tables of this run
	local procs mounts dirs cgs veths nfts
	procs=$(pgrep -fc "sleep $TAG" || true)
	mounts=$(grep -c "$WORK" /proc/self/mountinfo || true)
	case $1 in
	cella)
		dirs=$(find "$CELLA_ROOT/containers" "$CELLA_RUN_ROOT/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		# this run's containers only, in every hierarchy (v1 controllers and the unified one): other
		# cella cgroups on the machine (another data root's containers, a VM's QEMU) are not leftovers
		cgs=$(find /sys/fs/cgroup -maxdepth 8 -type d -name '[0-9a-f]*' 2>/dev/null | grep -cFf "$WORK/cella.ids" || true)
		cgs="$cgs (recorded busy: $(cat "$CELLA_RUN_ROOT"/cgroup-leftover/* 2>/dev/null | grep -c . || true), rm said busy: $(grep -c 'still busy' "$WORK/cella.rm.err" 2>/dev/null || true))"
		cut -c1-12 "$WORK/cella.ids" >"$WORK/cella.short"
		veths=$(ip -o link show 2>/dev/null | grep -o ' vc[0-9a-f]\{12\}' | cut -c4- | grep -cFf "$WORK/cella.short" || true)
		nfts=$(nft list tables 2>/dev/null | grep -o 'cella_c_[0-9a-f]*' | cut -c9- | grep -cFf "$WORK/cella.short" || true)
		;;
	podman)
		dirs=$(find "$WORK/podman-root/overlay-containers" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
		cgs=$(find /sys/fs/cgroup -maxdepth 3 -type d -name 'libpod-*' 2>/dev/null | wc -l)
		veths=$(ip -o link show 2>/dev/null | grep -c ' veth' || true)
		nfts=-
		;;
	esac
	echo "processes $procs, mounts $mounts, container dirs $dirs, cgroups $cgs, veths $veths, nft tables $nfts"
}

# the image: the embedded busybox for cella; the same busybox binary imported for podman
"$CELLA" run --rm busybox true >/dev/null
BUSYBOX=$(command -v busybox)
mkdir -p "$WORK/bb/bin"
cp "$BUSYBOX" "$WORK/bb/bin/busybox"
ln -s busybox "$WORK/bb/bin/sh"
for a in sleep true; do ln -s busybox "$WORK/bb/bin/$a"; done

declare -A R

run_tool() { # TOOL
	local t=$1 s e before after i pat
	local -a run ps stats stop rm
	case $t in
	cella)
		run=("$CELLA" run -d "${CELLA_RUN_ARGS[@]}" busybox)
		ps=("$CELLA" ps -a)
		stats=("$CELLA" stats --no-stream)
		stop=("$CELLA" stop -t 2)
		rm=("$CELLA" rm)
		;;
	podman)
		tar -C "$WORK/bb" -cf "$WORK/bb.tar" .
		podman "${PODMAN_ARGS[@]}" import "$WORK/bb.tar" localhost/bench-busybox >/dev/null
		run=(podman "${PODMAN_ARGS[@]}" run -d "${PODMAN_RUN_ARGS[@]}" localhost/bench-busybox)
		ps=(podman "${PODMAN_ARGS[@]}" ps -a)
		stats=(podman "${PODMAN_ARGS[@]}" stats --no-stream)
		stop=(podman "${PODMAN_ARGS[@]}" stop -t 2)
		rm=(podman "${PODMAN_ARGS[@]}" rm)
		# podman's first run sets up its network and storage: not part of the figure
		podman "${PODMAN_ARGS[@]}" run --rm "${PODMAN_RUN_ARGS[@]}" localhost/bench-busybox true >/dev/null
		;;
	esac
	before=$(avail_kb)
	s=$(now)
	# shellcheck disable=SC2016
	seq "$N" | xargs -P "$PAR" -I{} sh -c '"$@" sleep "'"$TAG"'{}" >>"'"$WORK/$t.ids"'" 2>>"'"$WORK/$t.err"'"' _ \
		"${run[@]}" || true
	e=$(now)
	R[$t, start_ms]=$(ms "$s" "$e")
	R[$t, started]=$(grep -c . "$WORK/$t.ids" || true)
	after=$(avail_kb)
	R[$t, mem_kb]=$(((before - after) / (R[$t, started] > 0 ? R[$t, started] : 1)))
	case $t in
	cella) pat="__monitor" ;;
	podman) pat="^/usr/bin/conmon" ;;
	esac
	R[$t, helper_pss]=$(mean_pss "$pat")
	R[$t, helper_rss]=$(mean_status "$pat" VmRSS)
	R[$t, helper_hwm]=$(mean_status "$pat" VmHWM)
	for i in $(seq "$PS_ROUNDS"); do
		s=$(now)
		"${ps[@]}" >/dev/null
		e=$(now)
		ms "$s" "$e"
		echo
	done >"$WORK/$t.ps"
	R[$t, ps_ms]=$(median <"$WORK/$t.ps")
	s=$(now)
	"${stats[@]}" >/dev/null 2>&1 || true
	e=$(now)
	R[$t, stats_ms]=$(ms "$s" "$e")
	s=$(now)
	xargs -P "$PAR" -n 20 "${stop[@]}" <"$WORK/$t.ids" >/dev/null 2>&1 || true
	e=$(now)
	R[$t, stop_ms]=$(ms "$s" "$e")
	s=$(now)
	xargs -P "$PAR" -n 20 "${rm[@]}" <"$WORK/$t.ids" >/dev/null 2>"$WORK/$t.rm.err" || true
	e=$(now)
	R[$t, rm_ms]=$(ms "$s" "$e")
	sleep 2
	R[$t, left]=$(leftovers "$t")
	echo "bench: $t done: ${R[$t, started]}/$N started; errors: $(sort "$WORK/$t.err" 2>/dev/null | uniq -c | sort -rn | head -3 | tr '\n' ' ')" >&2
}

for t in $TOOLS; do
	case $t in
	podman) command -v podman >/dev/null || { echo "bench: podman not installed: skipped" >&2; continue; } ;;
	esac
	run_tool "$t"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b ~ /^[0-9.]+$/) printf "%.2f×", b / a; else print "-" }'; }
echo
echo "N=$N containers, $PAR started at a time, network: $NET, $(nproc) cores, kernel $(uname -r)"
echo
echo "| figure | cella | podman | podman / cella |"
echo "|---|---:|---:|---:|"
row() { # LABEL KEY UNIT
	local c=${R[cella, $2]:-} p=${R[podman, $2]:--}
	echo "| $1 | $c $3 | $p $3 | $(ratio "$c" "$p") |"
}
rate() { awk -v n="${R[$1, started]:-0}" -v ms="${R[$1, start_ms]:-0}" 'BEGIN { if (ms > 0) printf "%.1f", n * 1000 / ms; else print "-" }'; }
echo "| started | ${R[cella, started]:-} | ${R[podman, started]:--} | |"
row "start of all (wall)" start_ms ms
echo "| start rate | $(rate cella) /s | $(rate podman) /s | $(ratio "$(rate podman)" "$(rate cella)") (cella / podman) |"
row "memory per idle container (MemAvailable)" mem_kb kB
row "mean Pss of monitor / conmon" helper_pss kB
row "mean VmRSS of monitor / conmon" helper_rss kB
row "mean VmHWM of monitor / conmon" helper_hwm kB
row "\`ps -a\` (median of $PS_ROUNDS)" ps_ms ms
row "\`stats --no-stream\`" stats_ms ms
row "stop of all" stop_ms ms
row "rm of all" rm_ms ms
echo
echo "left after rm: cella: ${R[cella, left]:-}; podman: ${R[podman, left]:--}"
