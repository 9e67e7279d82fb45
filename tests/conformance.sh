#!/bin/sh
# The OCI runtime conformance suite (opencontainers/runtime-tools' validation programs) against
# an OCI runtime, cella by default. Builds the suite once into build/runtime-tools (offline, from
# its vendored modules, with Debian's Go), runs every validation/*/*.t, tallies each program's
# TAP and the total, and checks each failure against the expected-failures file.
#
#   RUNTIME_TOOLS=../shared/conformance/runtime-tools-260e151.tar.gz sh tests/conformance.sh
#   sh tests/conformance.sh --runtime /usr/bin/crun --expected none default hooks
#
# RUNTIME_TOOLS names the suite's source: a .tar.gz snapshot or an unpacked directory (needed
# only for the first build; later runs use build/runtime-tools). Options:
#   --runtime PATH     the runtime to test (default build/cella)
#   --expected FILE    expected failures (default tests/conformance-expected.txt); `none`: any
#                      failure is only counted, the exit status then says nothing
#   --out DIR          where each program's TAP output goes (default build/conformance/NAME)
#   PROGRAM...         run only these programs (names under validation/, e.g. `default`)
# Last line: "N passed, N failed, N skipped" (assertions). Exit status 0 when every failure is an
# expected one and every program printed its TAP plan.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
B=$REPO/build
SUITE=$B/runtime-tools
runtime=$B/cella
expected=$REPO/tests/conformance-expected.txt
out=""
per_program_timeout=${CONFORMANCE_TIMEOUT:-300}

usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=${2:?--runtime needs a path}; shift 2 ;;
	--expected) expected=${2:?--expected needs a file or none}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-*) echo "conformance: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
case "$runtime" in
/*) ;;
*/*) runtime=$PWD/$runtime ;;
*) runtime=$(command -v "$runtime") || { echo "conformance: no runtime $runtime on PATH" >&2; exit 2; } ;;
esac
[ -x "$runtime" ] || { echo "conformance: $runtime is not an executable; build it first (make all)" >&2; exit 2; }
[ "$expected" = none ] || [ -r "$expected" ] || { echo "conformance: cannot read $expected" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "conformance: the suite needs root (it creates containers with cgroups)" >&2; exit 2; }
out=${out:-$B/conformance/$(basename "$runtime")}

# Build the suite once: the stamp holds what it was built from.
build_suite() {
	src=${RUNTIME_TOOLS:-}
	if [ -z "$src" ]; then
		[ -f "$SUITE/.cella-built" ] && return 0
		echo "conformance: set RUNTIME_TOOLS to the runtime-tools snapshot (.tar.gz or directory)" >&2
		return 1
	fi
	case "$src" in /*) ;; *) src=$PWD/$src ;; esac
	[ -e "$src" ] || { echo "conformance: RUNTIME_TOOLS=$src does not exist" >&2; return 1; }
	stamp="$src $(stat -c '%s %Y' "$src")"
	[ -f "$SUITE/.cella-built" ] && [ "$(cat "$SUITE/.cella-built")" = "$stamp" ] && return 0
	command -v go >/dev/null || { echo "conformance: needs Go (apt-get install golang-go; scripts/deps.sh)" >&2; return 1; }
	rm -rf "$SUITE" && mkdir -p "$SUITE" || return 1
	if [ -d "$src" ]; then
		cp -a "$src/." "$SUITE/" || return 1
	else
		# The snapshot unpacks to one top directory (runtime-tools/).
		tar -xzf "$src" -C "$SUITE" --strip-components=1 || return 1
	fi
	echo "conformance: building the suite in $SUITE (once)" >&2
	# Offline, from vendor/; the Go caches stay under build/ so that nothing is written to $HOME.
	(cd "$SUITE" && GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$B/go-cache" GOPATH="$B/go" \
		make runtimetest validation-executables) >"$B/runtime-tools-build.log" 2>&1 || {
		tail -20 "$B/runtime-tools-build.log" >&2
		echo "conformance: building the suite failed (log: $B/runtime-tools-build.log)" >&2
		return 1
	}
	echo "$stamp" >"$SUITE/.cella-built"
}
build_suite || exit 1

# Expected failures: "PROGRAM  ASSERTION  REASON", ASSERTION being the text after "not ok N - "
# (or `*` for every failure of the program, or `noplan` for a program that ends without a plan).
is_expected() { # PROGRAM WHAT
	[ "$expected" = none ] && return 0
	awk -v p="$1" -v w="$2" -F '\t' '
		/^#/ || NF < 3 { next }
		$1 == p && ($2 == w || $2 == "*") { found = 1 }
		END { exit !found }' "$expected"
}

mkdir -p "$out"
cd "$SUITE" || exit 1
if [ $# -gt 0 ]; then
	programs=""
	for p in "$@"; do
		[ -x "validation/$p/$p.t" ] || { echo "conformance: no program validation/$p/$p.t" >&2; exit 2; }
		programs="$programs validation/$p/$p.t"
	done
else
	programs=$(ls validation/*/*.t)
fi

passed=0 failed=0 skipped=0 unexpected=0
for t in $programs; do
	name=$(basename "$t" .t)
	log=$out/$name.tap
	RUNTIME=$runtime timeout -k 10 "$per_program_timeout" "$t" >"$log" 2>&1
	rc=$?
	# TAP at column 0 only: the YAML blocks and diagnostics are indented.
	p=$(grep -E '^ok [0-9]+' "$log" | grep -cviE '# skip')
	s=$(grep -E '^(not )?ok [0-9]+' "$log" | grep -ciE '# skip')
	f=$(grep -E '^not ok [0-9]+' "$log" | grep -cviE '# skip')
	plan=$(grep -cE '^1\.\.[0-9]+' "$log")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	note=""
	[ "$rc" = 124 ] || [ "$rc" = 137 ] && note=" (timed out after ${per_program_timeout}s)"
	if [ "$plan" -eq 0 ]; then
		note="$note (no TAP plan: the program stopped early, exit $rc)"
		is_expected "$name" noplan || { unexpected=$((unexpected + 1)); note="$note UNEXPECTED"; }
	fi
	grep -E '^not ok [0-9]+' "$log" | grep -viE '# skip' | sed -E 's/^not ok [0-9]+ - ?//' >"$out/$name.failed"
	while IFS= read -r what; do
		if is_expected "$name" "$what"; then
			echo "#   expected failure: $name: $what"
		else
			echo "#   UNEXPECTED failure: $name: $what"
			unexpected=$((unexpected + 1))
		fi
	done <"$out/$name.failed"
	printf '%-40s %4d passed, %3d failed, %3d skipped%s\n' "$name" "$p" "$f" "$s" "$note"
done
echo "# $(basename "$runtime"): TAP output in $out; $unexpected unexpected failure(s)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$unexpected" -eq 0 ]
