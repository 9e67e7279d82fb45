#!/bin/bash
# OCI runtime benchmark (not a test; not part of make check): the create + start + delete loop of
# youki's and crun's READMEs, with hyperfine, for cella, crun and runc on the same bundle
# (`cella spec`, args `true`, no terminal), in the same run.
#
#   sudo bench/oci.sh                 # RUNS=100 by default
#   RUNS=30 CELLA=build/cella bench/oci.sh
#
# crun 1.8 refuses cgroup v1's hybrid layout (a cgroup2 mount at /sys/fs/cgroup/unified): the
# whole benchmark then runs in a private mount namespace where that mount is hidden, so that
# every runtime sees the same (pure v1) layout. Prints hyperfine's markdown table (mean ± σ,
# each mean relative to the fastest), then cella's mean over crun's and over runc's.
set -eu
if [ -z "${BENCH_OCI_PRIVATE:-}" ] && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && command -v unshare >/dev/null; then
	exec unshare -m --propagation private env BENCH_OCI_PRIVATE=1 bash "$0" "$@"
fi
if [ -n "${BENCH_OCI_PRIVATE:-}" ] && mountpoint -q /sys/fs/cgroup/unified; then
	umount /sys/fs/cgroup/unified
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-100}
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (scripts/deps.sh --bench)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run it as root (runc's bundle and cgroups)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-oci.XXXXXX)
cleanup() {
	for rt in cella runc crun; do
		[ -d "$WORK/$rt-root" ] || continue
		case $rt in cella) "$CELLA" --root "$WORK/$rt-root" delete --force bench >/dev/null 2>&1 ;;
		*) "$rt" --root "$WORK/$rt-root" delete --force bench >/dev/null 2>&1 ;; esac
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && LC_ALL=C ldd "$b" 2>&1 | grep -q 'not a dynamic'; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || { echo "bench: needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }
B=$WORK/bundle
mkdir -p "$B"/rootfs/bin "$B"/rootfs/proc "$B"/rootfs/dev "$B"/rootfs/sys "$B"/rootfs/tmp
cp "$BUSYBOX" "$B/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$B/rootfs/bin/$a"; done
(cd "$B" && "$CELLA" spec)
jq '.process.terminal = false | .process.args = ["true"]' "$B/config.json" >"$B/c.json" && mv "$B/c.json" "$B/config.json"

cmds=() names=()
add() { # NAME PROGRAM
	local root=$WORK/$1-root
	if ! "$2" --root "$root" run --bundle "$B" bench >/dev/null 2>"$WORK/$1.err"; then
		echo "bench: $1 fails here, left out: $(head -c 300 "$WORK/$1.err")" >&2
		"$2" --root "$root" delete --force bench >/dev/null 2>&1 || true
		return 0
	fi
	names+=("$1")
	cmds+=("$2 --root $root create --bundle $B bench && $2 --root $root start bench && $2 --root $root delete --force bench")
}
add cella "$CELLA"
command -v runc >/dev/null && add runc "$(command -v runc)"
command -v crun >/dev/null && add crun "$(command -v crun)"

args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
echo "create + start + delete of a busybox \`true\` bundle, $RUNS runs each ($(uname -r), $(nproc) CPUs, $(date -u +%F))"
hyperfine --warmup 5 --runs "$RUNS" --export-markdown "$WORK/table.md" --export-json "$WORK/times.json" "${args[@]}" >&2
cat "$WORK/table.md"
for other in crun runc; do
	jq -r --arg o "$other" '[.results[] | {(.command): .mean}] | add as $m
		| if $m.cella and $m[$o] then "cella / \($o) (means): \($m.cella / $m[$o] * 1000 | round / 1000)" else empty end' "$WORK/times.json"
done

# hyperfine runs one command's runs, then the next's: on a shared machine the load moves under
# it. The same loops again interleaved, round by round (bench/timeit.c, as bench/start.sh), and
# their medians, which a load spike moves less.
"${CC:-cc}" -O2 -Wall -o "$WORK/timeit" "$REPO/bench/timeit.c"
targs=()
for i in "${!cmds[@]}"; do targs+=(-- "${names[$i]}" sh -c "${cmds[$i]}"); done
"$WORK/timeit" "$RUNS" "${targs[@]}" >"$WORK/interleaved"
echo
echo "Interleaved, $RUNS rounds: median (p90) ms"
pct() { # NAME FRACTION: that percentile of NAME's times, in ms
	awk -v n="$1" '$1 == n { print $2 / 1e6 }' "$WORK/interleaved" | sort -n |
		awk -v f="$2" '{ t[NR] = $1 } END { i = int(NR * f + 0.5); if (i < 1) i = 1; printf "%.1f", t[i] }'
}
for n in "${names[@]}"; do
	bad=$(awk -v n="$n" '$1 == n && $3 != 0' "$WORK/interleaved" | wc -l)
	printf '  %-6s %6s (%s)%s\n' "$n" "$(pct "$n" 0.5)" "$(pct "$n" 0.9)" "$([ "$bad" = 0 ] || echo " FAILED $bad times")"
done
for other in crun runc; do
	printf '%s\n' "${names[@]}" | grep -qx "$other" || continue
	awk -v a="$(pct cella 0.5)" -v b="$(pct "$other" 0.5)" -v o="$other" \
		'BEGIN { printf "cella / %s (medians, interleaved): %.3f\n", o, a / b }'
done
