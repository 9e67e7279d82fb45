# shellcheck shell=bash
# Sourced by the benchmarks in bench/ (after REPO is set): what several of them do alike.

# bench_cella: CELLA made absolute (default: build/cella of this checkout); stops the benchmark if
# it or the image tool next to it is not built.
bench_cella() {
	CELLA=${CELLA:-$REPO/build/cella}
	case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
	[ -x "$CELLA" ] && [ -x "$(dirname "$CELLA")/cella-image" ] || { echo "bench: build first (make all)" >&2; exit 1; }
}

# bench_need CMD...: stops the benchmark naming the first command that is not installed.
bench_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "bench: $c is not installed (sh scripts/deps.sh --bench)" >&2; exit 1; }
	done
}

# bench_timeit DIR: bench/timeit.c compiled to DIR/timeit; t1 CMD... then prints the wall time of one
# run of CMD in microseconds.
bench_timeit() {
	TIMEIT=$1/timeit
	"${CC:-gcc}" -O2 -Wall -o "$TIMEIT" "$REPO/bench/timeit.c"
}
t1() { "$TIMEIT" 1 -- x "$@" | awk '{ print int($2 / 1000) }'; }

# bench_random_layout DIR LAYERS MB: an OCI image layout in DIR, tagged v1, of LAYERS gzip layers of
# MB files of 1 MiB random data each.
bench_random_layout() {
	python3 "$REPO/bench/random_layout.py" "$@"
}

# bench_unmount_under DIR: what is mounted below DIR unmounted (lazily, deepest first), so that DIR
# can be removed after a benchmark of containers.
bench_unmount_under() {
	awk -v w="$1/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
}

# bench_traps FN: FN runs on exit, and INT/TERM/HUP exit with 128+signal (so FN runs then too).
bench_traps() {
	trap "$1" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# bench_median N...: the median of the numbers
bench_median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# bench_ratio WHAT A_NAME A_TIMES B_NAME B_TIMES: the medians (times in microseconds, space separated)
# in ms and the ratio A/B, as the benchmarks print them.
bench_ratio() {
	local am bm
	# shellcheck disable=SC2086
	am=$(bench_median $3) bm=$(bench_median $5)
	printf '%-28s %-10s median %9.1f ms  (%s)\n' "$1" "$2:" "$(echo "$am / 1000" | bc -l)" "$3"
	printf '%-28s %-10s median %9.1f ms  (%s)\n' "$1" "$4:" "$(echo "$bm / 1000" | bc -l)" "$5"
	printf '%-28s ratio %s / %s: %.3f\n' "$1" "$2" "$4" "$(echo "$am / $bm" | bc -l)"
}
