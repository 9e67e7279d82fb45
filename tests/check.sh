#!/bin/sh
# Every test: the C unit tests (plain, then under ASan+UBSan), the fuzz corpora, then the integration tests
# against the real binary (as root and as an unprivileged user). Last line: "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 skipped=0
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT

count_tap() { # $1: label, rest: command
	label=$1; shift
	"$@" >"$log" 2>&1
	rc=$?
	sed "s/^/[$label] /" "$log"
	p=$(grep -c '^ok ' "$log" | tr -d ' ')
	s=$(grep -ci '^ok .*# skip' "$log" | tr -d ' ')
	f=$(grep -c '^not ok ' "$log" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - [$label] exited with status $rc"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

for t in build/unit/test_*; do
	count_tap "unit $(basename "$t")" "$t"
done
for t in build/unit-san/test_*; do
	count_tap "asan+ubsan $(basename "$t")" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 "$t"
done

# Fuzz corpora (fuzz/corpus/NAME/, docs/testing.md "Fuzzing"): every file once through its
# target, built with ASan+UBSan (build/fuzz-replay/, `make fuzz-replay`); one line per target.
for src in fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	corpus=fuzz/corpus/${name#fuzz_}
	bin=build/fuzz-replay/$name
	if [ ! -x "$bin" ]; then
		echo "not ok - [fuzz] $name: $bin is not built (make fuzz-replay)"
		failed=$((failed + 1))
		continue
	fi
	if env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 "$bin" "$corpus" >"$log" 2>&1; then
		echo "ok - [fuzz] $name: $(sed -n 's/^replayed //p' "$log") from $corpus"
		passed=$((passed + 1))
	else
		grep -v '^replay: fuzz/' "$log" | tail -20 | sed "s/^/[fuzz $name] /"
		echo "not ok - [fuzz] $name: the input above failed (last: $(grep '^replay: ' "$log" | tail -1 | cut -c9-))"
		failed=$((failed + 1))
	fi
done

# The integration runner prints its own TAP and a summary line; fold its counts into ours.
# As root it runs twice (root, then the unprivileged `cellatest`); a third run happens inside
# `unshare -r`, where cella is root of a user namespace that maps a single id (crun's CI does
# the same three).
integration() {
	bash tests/run-integration.sh
	if [ "$(id -u)" = 0 ] && unshare -r true 2>/dev/null; then
		unshare -r bash tests/run-integration.sh
	fi
}
integration >"$log" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
runs=$(grep -cE '^[0-9]+ passed, [0-9]+ failed' "$log")
if [ "$runs" -eq 0 ]; then
	echo "not ok - integration runner printed no summary (status $rc)"
	failed=$((failed + 1))
else
	if_total=0
	for summary in $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tr -d ' ' ); do
		ip=$(echo "$summary" | sed -E 's/^([0-9]+)passed.*/\1/')
		if_=$(echo "$summary" | sed -E 's/^[0-9]+passed,([0-9]+)failed.*/\1/')
		is=$(echo "$summary" | sed -nE 's/.*,([0-9]+)skipped.*/\1/p')
		passed=$((passed + ip)) failed=$((failed + if_)) skipped=$((skipped + ${is:-0}))
		if_total=$((if_total + if_))
	done
	if [ "$rc" -ne 0 ] && [ "$if_total" -eq 0 ]; then
		echo "not ok - integration runner exited with status $rc"
		failed=$((failed + 1))
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
