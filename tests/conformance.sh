#!/bin/sh
# The OCI runtime conformance suite (opencontainers/runtime-tools' validation programs) against
# an OCI runtime, cella by default. Builds the suite once into build/runtime-tools (offline, from
# its vendored modules, with Debian's Go), runs every validation/*/*.t, tallies each program's
# TAP and the total, and checks every failure against the expected-failures file.
#
#   RUNTIME_TOOLS=../shared/conformance/runtime-tools-260e151.tar.gz sh tests/conformance.sh
#   sh tests/conformance.sh --runtime /usr/bin/crun --expected none default hooks
#
# RUNTIME_TOOLS names the suite's source, a .tar.gz snapshot or an unpacked directory; it is
# needed for the first build only (a changed one is built again). Options:
#   --runtime PATH   the runtime to test (default build/cella)
#   --expected FILE  expected failures (default tests/conformance-expected.txt); `none`: every
#                    failure is counted, none fails the run
#   --out DIR        each program's TAP output and exit status (default build/conformance/NAME)
#   --no-run         judge the output already in --out again (after editing the expected file)
#   PROGRAM...       only these programs (names under validation/, e.g. `default`)
# A program fails the run with a `not ok` line, an error the suite reports outside TAP (a YAML
# block of its own), no TAP plan (it stopped early: runtimetest panics so), or a non-zero exit
# status, unless the expected file lists it. Last lines: "# expected failed assertions: N;
# unexpected problems: N", then "N passed, N failed, N skipped" (all TAP assertions, as the
# suite's own tally); exit status 0 when nothing unexpected happened.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
B=$REPO/build
SUITE=$B/runtime-tools
runtime=$B/cella
expected=$REPO/tests/conformance-expected.txt
out=""
run=1
per_program_timeout=${CONFORMANCE_TIMEOUT:-300}

usage() { sed -n '2,23s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=${2:?--runtime needs a path}; shift 2 ;;
	--expected) expected=${2:?--expected needs a file or none}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--no-run) run=0; shift ;;
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
		# the snapshot unpacks to one top directory (runtime-tools/)
		tar -xzf "$src" -C "$SUITE" --strip-components=1 || return 1
	fi
	echo "conformance: building the suite in $SUITE (once)" >&2
	# offline, from vendor/; Go's caches stay under build/, nothing is written to $HOME
	(cd "$SUITE" && GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$B/go-cache" GOPATH="$B/go" \
		make runtimetest validation-executables) >"$B/runtime-tools-build.log" 2>&1 || {
		tail -20 "$B/runtime-tools-build.log" >&2
		echo "conformance: building the suite failed (log: $B/runtime-tools-build.log)" >&2
		return 1
	}
	echo "$stamp" >"$SUITE/.cella-built"
}
[ "$run" = 0 ] || build_suite || exit 1

# The expected file: "PROGRAM<TAB>WHAT<TAB>KIND<TAB>REASON" lines; WHAT is the text after
# "not ok N - ", or "error: TEXT" (the first line of an error the suite reports outside TAP),
# "noplan" or "exit" (a non-zero exit status).
is_expected() { # PROGRAM WHAT
	[ "$expected" = none ] && return 0
	awk -F '\t' -v p="$1" -v w="$2" '!/^#/ && NF >= 4 && $1 == p && $2 == w { found = 1 } END { exit !found }' "$expected"
}

# One program's TAP: "COUNTS passed failed skipped plan any-result" first, then a "FAIL text"
# per failed assertion and an "ERROR text" per error block that belongs to no TAP line.
judge_tap() {
	awk '
		function flush_err() { if (err != "") print "ERROR\t" err; err = "" }
		/^(not )?ok [0-9]+/ {
			any = 1; last = "tap"
			if ($0 ~ /# [Ss][Kk][Ii][Pp]/) { s++; next }
			if ($0 ~ /^ok/) { p++; next }
			f++; d = $0; sub(/^not ok [0-9]+( - )?/, "", d); fails[f] = d; next
		}
		/^1\.\.[0-9]+/ { plan = 1; last = "plan"; next }
		/^  ---$/ { inyaml = 1; attached = (last == "tap"); next }
		/^  \.\.\.$/ { inyaml = 0; last = "yaml"; flush_err(); next }
		inyaml && /^    "error": "/ {
			if (!attached) { e = $0; sub(/^    "error": "/, "", e); sub(/\\n.*/, "", e); sub(/",?$/, "", e); err = e }
			next
		}
		# other text (the suite prints "Refer to: ..." between a TAP line and its YAML) leaves the
		# context as it was
		{ next }
		END {
			printf "COUNTS\t%d\t%d\t%d\t%d\t%d\n", p, f, s, plan, any
			for (i = 1; i <= f; i++) print "FAIL\t" fails[i]
		}' "$1"
}

mkdir -p "$out"
cd "$SUITE" 2>/dev/null || [ "$run" = 0 ] || { echo "conformance: no suite in $SUITE" >&2; exit 1; }
if [ $# -gt 0 ]; then
	programs=""
	for p in "$@"; do programs="$programs $p"; done
elif [ "$run" = 1 ]; then
	programs=$(for t in validation/*/*.t; do basename "$t" .t; done)
else
	programs=$(for t in "$out"/*.tap; do basename "$t" .tap; done)
fi

passed=0 failed=0 skipped=0 unexpected=0 prog_ok=0 prog_bad=0 expected_fails=0
verdicts=$(mktemp) || exit 1
trap 'rm -f "$verdicts"' EXIT
for name in $programs; do
	log=$out/$name.tap
	if [ "$run" = 1 ]; then
		[ -x "validation/$name/$name.t" ] || { echo "conformance: no program validation/$name/$name.t" >&2; exit 2; }
		RUNTIME=$runtime timeout -k 10 "$per_program_timeout" "validation/$name/$name.t" >"$log" 2>&1
		echo $? >"$out/$name.rc"
	fi
	rc=$(cat "$out/$name.rc" 2>/dev/null || echo 0)
	judge_tap "$log" >"$verdicts"
	set -- $(sed -n 's/^COUNTS\t//p' "$verdicts")
	p=$1 f=$2 s=$3 plan=$4 any=$5
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	# what needs the expected file: failed assertions, errors outside TAP, no plan, an exit status
	problems=$(sed -n 's/^FAIL\t//p; s/^ERROR\t/error: /p' "$verdicts")
	note=""
	if [ "$plan" = 0 ] && [ "$any" = 0 ] && [ "$rc" = 0 ]; then
		# the *_fail programs print nothing when the runtime refuses what they give it: their pass
		note=" (no TAP: the runtime refused the config, as the program wants)"
	elif [ "$plan" = 0 ]; then
		problems=$(printf '%s\nnoplan' "$problems")
		note=" (no TAP plan: the program stopped early)"
	fi
	if [ "$rc" != 0 ]; then
		problems=$(printf '%s\nexit' "$problems")
		note="$note (exit status $rc)"
	fi
	bad=0
	while IFS= read -r what; do
		[ -n "$what" ] || continue
		if is_expected "$name" "$what"; then
			echo "#   expected: $name: $what"
			case "$what" in noplan|exit|"error: "*) ;; *) expected_fails=$((expected_fails + 1)) ;; esac
		else
			echo "#   UNEXPECTED: $name: $what"
			unexpected=$((unexpected + 1)) bad=1
		fi
	done <<-EOF
	$problems
	EOF
	[ -z "$(printf '%s' "$problems" | tr -d '\n')" ] && prog_ok=$((prog_ok + 1)) || prog_bad=$((prog_bad + 1))
	[ "$bad" = 0 ] || note="$note UNEXPECTED"
	printf '%-34s %4d passed, %3d failed, %3d skipped%s\n' "$name" "$p" "$f" "$s" "$note"
done
echo "# $(basename "$runtime"): $prog_ok programs without a failure, $prog_bad with one; TAP output in $out"
echo "# expected failed assertions: $expected_fails; unexpected problems: $unexpected"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$unexpected" -eq 0 ]
