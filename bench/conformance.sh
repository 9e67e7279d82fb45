#!/bin/sh
# The OCI conformance suite (runtime-tools, tests/conformance.sh) for crun and cella in the same
# run, on the same machine, totals side by side (not a test; not part of make check).
#
#   sudo RUNTIME_TOOLS=../shared/conformance/runtime-tools-260e151.tar.gz bench/conformance.sh
#
# crun 1.8 refuses cgroup v1's hybrid layout (a cgroup2 mount at /sys/fs/cgroup/unified): it runs
# in a private mount namespace where that mount is hidden, as the snapshot's README does. cella
# runs as it is. Each runtime's TAP output stays in build/conformance/NAME.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
CELLA=${CELLA:-$REPO/build/cella}
CRUN=${CRUN:-$(command -v crun)}
[ "$(id -u)" = 0 ] || { echo "bench: run it as root (the suite makes cgroups)" >&2; exit 1; }
[ -n "$CRUN" ] || { echo "bench: needs crun (scripts/deps.sh --bench)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "bench: needs unshare (util-linux)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/bench-conformance.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT

# crun first: the build of the suite (when needed) happens there, outside the timed cella run
start=$(date +%s)
unshare -m --propagation private sh -c '
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi
	exec sh "$1/tests/conformance.sh" --runtime "$2" --expected none' sh "$REPO" "$CRUN" >"$WORK/crun" 2>&1
crun_s=$(($(date +%s) - start))
start=$(date +%s)
sh "$REPO/tests/conformance.sh" --runtime "$CELLA" >"$WORK/cella" 2>&1
cella_rc=$?
cella_s=$(($(date +%s) - start))

tally() { grep -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/$1" | tail -1; }
programs() { sed -n 's/^# [^:]*: \([0-9]*\) programs without a failure, \([0-9]*\) with one.*/\1 clean, \2 with a failure/p' "$WORK/$1"; }
[ -n "$(tally crun)" ] || { echo "bench: crun's run printed no tally:" >&2; tail -20 "$WORK/crun" >&2; exit 1; }
[ -n "$(tally cella)" ] || { echo "bench: cella's run printed no tally:" >&2; tail -20 "$WORK/cella" >&2; exit 1; }

echo "runtime-tools validation, $(ls "$REPO/build/runtime-tools/validation"/*/*.t | wc -l) programs ($(uname -r), $(nproc) CPUs, $(date -u +%F))"
echo
echo "| runtime | assertions (TAP) | programs | time |"
echo "|---|---|---|---|"
echo "| $("$CRUN" --version | head -1) | $(tally crun) | $(programs crun) | ${crun_s} s |"
echo "| cella $("$CELLA" --version | head -1 | sed 's/^cella version //') | $(tally cella) | $(programs cella) | ${cella_s} s |"
echo
# per program, where the two differ
echo "Programs where the tallies differ (crun | cella):"
for f in "$REPO"/build/conformance/crun/*.tap; do
	n=$(basename "$f" .tap)
	a=$(grep -E "^$n +[0-9]" "$WORK/crun" | sed -E "s/^$n +//; s/ skipped.*/ skipped/; s/  +/ /g")
	b=$(grep -E "^$n +[0-9]" "$WORK/cella" | sed -E "s/^$n +//; s/ skipped.*/ skipped/; s/  +/ /g")
	[ "$a" = "$b" ] || printf '  %-32s %s | %s\n' "$n" "$a" "$b"
done
grep -E '^# expected failed|UNEXPECTED' "$WORK/cella" | sed 's/^/cella: /'
exit "$cella_rc"
