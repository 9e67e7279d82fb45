#!/bin/bash
# proot backend benchmark (not a test; not part of make check).
#
#   bash bench/proot.sh            ROUNDS=20 FILES=20000 bash bench/proot.sh
#
# Start-to-exit of `true` and of a syscall-heavy workload (`ls -lR` over a tree of FILES files: one
# lstat each) in the same busybox root, ROUNDS times each, interleaved:
#   ns      cella run ROOTFS ...                   (namespaces)
#   cella   cella run --backend proot ROOTFS ...   (the proot backend)
#   proot   proot -v -1 -r ROOTFS -0 -b /proc -b /dev -b /sys -w / ...  (plain proot)
# Medians and the ratio cella/proot (goal: at most 1.10).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-20}
FILES=${FILES:-20000}
CELLA=${CELLA:-$REPO/build/cella}
WORK=$(mktemp -d /tmp/bench-proot.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
export CELLA_ROOT=$WORK/data CELLA_RUN_ROOT=$WORK/run
gcc -O2 -o "$WORK/timeit" "$REPO/bench/timeit.c"
. "$REPO/tests/integration/lib.sh"
make_rootfs "$WORK/root"
mkdir -p "$WORK/root/tree"
( cd "$WORK/root/tree" && for d in $(seq 0 99); do mkdir "d$d"; for f in $(seq 1 $((FILES / 100))); do : >"d$d/f$f"; done; done )
PROOT="proot -v -1 -r $WORK/root -0 -b /proc -b /dev -b /sys -w /"
for w in true ls-lR; do
	if [ "$w" = true ]; then cmd="true"; else cmd="ls -lR /tree"; fi
	# shellcheck disable=SC2086
	"$WORK/timeit" "$ROUNDS" -- ns "$CELLA" run "$WORK/root" $cmd -- cella "$CELLA" run --backend proot "$WORK/root" $cmd \
		-- proot $PROOT $cmd >"$WORK/$w.txt"
	echo "== $w ($ROUNDS rounds, load $(cut -d' ' -f1-3 /proc/loadavg))"
	for n in ns cella proot; do
		cpu=$(awk -v n="$n" '$1 == n { print $4 }' "$WORK/$w.txt" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1e6 }')
		awk -v n="$n" '$1 == n { print $2 }' "$WORK/$w.txt" | sort -n | awk -v n="$n" -v cpu="$cpu" '{ a[NR] = $1 } END { printf "%-6s median %8.2f ms  (CPU, user+sys: median %s ms)\n", n, a[int((NR + 1) / 2)] / 1e6, cpu }'
	done
	c=$(awk '$1 == "cella" { print $2 }' "$WORK/$w.txt" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	p=$(awk '$1 == "proot" { print $2 }' "$WORK/$w.txt" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	echo "ratio cella proot backend / plain proot: $(echo "scale=3; $c / $p" | bc)"
done
