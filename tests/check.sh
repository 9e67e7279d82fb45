#!/bin/sh
# Every test: the source checks (formatting, static analysis), the C unit tests (plain, then under
# ASan+UBSan), the fuzz corpora, then the integration tests against the real binary (as root, as an
# unprivileged user, and as root of a user namespace), then the option coverage check and the layer
# check (tools/check-layers.py). Last line: "N passed, N failed, N skipped".
#
# Nothing may vanish without a word: a unit program whose TAP plan does not match what it printed,
# an integration pass that does not print its summary, a pass that cannot start: each counts as
# failed. (For t_harness.sh's self-tests the parts can be replaced: CHECK_UNIT_SRC,
# CHECK_UNIT_DIRS, CHECK_FUZZ, CHECK_RUNNER, CHECK_PASSES, CHECK_COVERAGE, CHECK_SOURCE, CHECK_LAYERS.)
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 skipped=0
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT

UNIT_SRC=${CHECK_UNIT_SRC:-tests/unit}
UNIT_DIRS=${CHECK_UNIT_DIRS-build/unit build/unit-san}
FUZZ=${CHECK_FUZZ-fuzz}
RUNNER=${CHECK_RUNNER:-tests/run-integration.sh}
COVERAGE=${CHECK_COVERAGE-tests/option-coverage.py}
SOURCE_CHECKS=${CHECK_SOURCE-format-check analyze}
LAYERS=${CHECK_LAYERS-tools/check-layers.py}

# tap_counts LABEL RC: fold the TAP in $log into the totals. The plan ("1..N", first or last) must be
# there once and match the tests printed; "1..0 # skip WHY" is one skip.
tap_counts() {
	label=$1 rc=$2
	sed "s/^/[$label] /" "$log"
	p=$(grep -c '^ok ' "$log" | tr -d ' ')
	s=$(grep -ci '^ok .*# skip' "$log" | tr -d ' ')
	f=$(grep -c '^not ok ' "$log" | tr -d ' ')
	p=$((p - s))
	plans=$(grep -cE '^1\.\.[0-9]+' "$log" | tr -d ' ')
	plan=$(grep -E '^1\.\.[0-9]+' "$log" | head -n1)
	n=$(printf '%s\n' "$plan" | sed -nE 's/^1\.\.([0-9]+).*/\1/p')
	if [ "$plans" -ne 1 ]; then
		echo "not ok - [$label] printed $plans TAP plans (want one): it ended early or is not TAP"
		f=$((f + 1))
	elif [ "$n" = 0 ]; then
		if printf '%s\n' "$plan" | grep -qiE '^1\.\.0 *# *skip'; then
			echo "ok - [$label] # skip $(printf '%s\n' "$plan" | sed -E 's/^1\.\.0 *# *[sS][kK][iI][pP] *//')"
			s=$((s + 1))
		else
			echo "not ok - [$label] plans no tests (1..0) without a skip reason"
			f=$((f + 1))
		fi
	elif [ "$n" -ne $((p + s + f)) ]; then
		echo "not ok - [$label] planned $n tests, printed $((p + s + f)): some were lost"
		f=$((f + 1))
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - [$label] exited with status $rc"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# The source checks (Makefile: `make format-check`, `make analyze`), one line each.
source_checks() {
	for target in $SOURCE_CHECKS; do
		if make --no-print-directory -s "$target" >"$log" 2>&1; then
			echo "ok - [source] make $target: $(tail -n1 "$log")"
			passed=$((passed + 1))
		else
			tail -40 "$log" | sed "s/^/[$target] /"
			echo "not ok - [source] make $target: see above"
			failed=$((failed + 1))
		fi
	done
}

unit_tests() {
	for src in "$UNIT_SRC"/test_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		for dir in $UNIT_DIRS; do
			label="unit $name"
			case "$dir" in *-san) label="asan+ubsan $name" ;; esac
			if [ ! -x "$dir/$name" ]; then
				echo "not ok - [$label] no $dir/$name (build it: make unit)"
				failed=$((failed + 1))
				continue
			fi
			ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
				"$dir/$name" >"$log" 2>&1
			tap_counts "$label" $?
		done
	done
}

# Fuzz corpora (fuzz/corpus/NAME/, docs/testing.md "Fuzzing"): every file once through its
# target, built with ASan+UBSan (build/fuzz-replay/, `make fuzz-replay`); one line per target.
fuzz_corpora() {
	[ -n "$FUZZ" ] || return 0
	for src in "$FUZZ"/fuzz_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		corpus=$FUZZ/corpus/${name#fuzz_}
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
}

# integration_pass NAME COMMAND...: one pass of the integration runner. Its last line must be its
# summary; a pass that dies before it, or exits non-zero with 0 failed, counts as failed.
integration_pass() {
	name=$1
	shift
	"$@" >"$log" 2>&1
	rc=$?
	integration_tally
}

# integration_pass_start NAME COMMAND...: the same pass, started in the background (its output in
# a log of its own); integration_pass_end NAME waits for it and counts it as integration_pass does.
integration_pass_start() {
	name=$1
	shift
	("$@" >"$log.$name" 2>&1; echo $? >"$log.$name.rc") &
	eval "bg_$(echo "$name" | tr -c 'a-z0-9\n' _)=\$!"
}
integration_pass_end() {
	name=$1
	eval "wait \$bg_$(echo "$name" | tr -c 'a-z0-9\n' _)"
	mv "$log.$name" "$log"
	rc=$(cat "$log.$name.rc" 2>/dev/null || echo 1)
	rm -f "$log.$name.rc"
	integration_tally
}

integration_tally() {
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
	grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
	if [ -z "$summary" ]; then
		echo "not ok - integration pass $name printed no summary (exit status $rc)"
		failed=$((failed + 1))
		return
	fi
	ip=$(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
	if_=$(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
	is=$(echo "$summary" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
	echo "# integration pass $name: $summary"
	passed=$((passed + ip)) failed=$((failed + if_)) skipped=$((skipped + ${is:-0}))
	if [ "$rc" -ne 0 ] && [ "$if_" -eq 0 ]; then
		echo "not ok - integration pass $name exited with status $rc"
		failed=$((failed + 1))
	fi
	if [ "$ip" -eq 0 ] && [ "$if_" -eq 0 ] && [ "${is:-0}" -eq 0 ]; then
		echo "not ok - integration pass $name ran no test"
		failed=$((failed + 1))
	fi
}

# As root three passes, each its own run: root, the unprivileged `cellatest`, and root of a user
# namespace that maps a single id (`unshare -r`; crun's CI does the same three). As a user, one.
if [ -n "${CHECK_PASSES+x}" ]; then
	passes=$CHECK_PASSES
elif [ "$(id -u)" = 0 ]; then
	passes="root user userns-root"
else
	passes="user"
fi

source_checks
unit_tests
fuzz_corpora
# CHECK_PARALLEL=1 runs the two passes that are not real root side by side (each its own user,
# data and run roots, and temp dirs). Not the default: on 2 cores the load made a 50-container test
# time out, and the passes' temp-dir checks saw each other's files.
together=""
case " $passes " in *" user "*) case " $passes " in *" userns-root "*) [ -n "${CHECK_PARALLEL:-}" ] && together=1 ;; esac ;; esac
for pass in $passes; do
	case "$pass" in
	root) integration_pass root bash "$RUNNER" --only root ;;
	user)
		if [ "$(id -u)" != 0 ]; then
			integration_pass user bash "$RUNNER"
		elif [ -n "$together" ]; then
			integration_pass_start user bash "$RUNNER" --only user
		else
			integration_pass user bash "$RUNNER" --only user
		fi
		;;
	userns-root)
		if why=$(unshare -r true 2>&1); then
			integration_pass userns-root unshare -r bash "$RUNNER" --only root
			[ -n "$together" ] && integration_pass_end user
		else
			[ -n "$together" ] && integration_pass_end user
			echo "not ok - integration pass userns-root cannot start: unshare -r: ${why:-failed}"
			failed=$((failed + 1))
		fi
		;;
	*)
		echo "not ok - unknown integration pass $pass"
		failed=$((failed + 1))
		;;
	esac
done

# Every option of every command is named by some test (tests/option-coverage.py).
if [ -n "$COVERAGE" ]; then
	python3 "$COVERAGE" >"$log" 2>&1
	tap_counts "option coverage" $?
fi

# No include goes up or sideways against the layers, beyond tools/layer-exceptions.txt
# (docs/architecture.md "Layers").
if [ -n "$LAYERS" ]; then
	python3 "$LAYERS" >"$log" 2>&1
	tap_counts "layers" $?
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
