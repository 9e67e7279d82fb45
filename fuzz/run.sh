#!/bin/sh
# Run the libFuzzer targets (make fuzz) or merge what they found into the corpus (make fuzz-merge).
#   sh fuzz/run.sh [NAME...]           each target FUZZ_SECONDS (default 60) seconds
#   sh fuzz/run.sh --merge [NAME...]   add to fuzz/corpus/NAME/ the inputs of build/fuzz/work/NAME/
#                                      that reach coverage the corpus does not
# New inputs go to build/fuzz/work/NAME/corpus/, crashes to build/fuzz/work/NAME/ (crash-*, leak-*,
# timeout-*, oom-*); the repository's corpus is only read. Extra libFuzzer flags: FUZZ_ARGS.
cd "$(dirname "$0")/.." || exit 1
merge=0
if [ "${1:-}" = "--merge" ]; then
	merge=1
	shift
fi
names=$*
[ -n "$names" ] || names=$(for f in fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)
seconds=${FUZZ_SECONDS:-60}
status=0
for name in $names; do
	bin=build/fuzz/fuzz_$name
	work=build/fuzz/work/$name
	corpus=fuzz/corpus/$name
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is not built (make fuzz-build)" >&2
		exit 2
	fi
	mkdir -p "$work/corpus" "$corpus"
	dict=""
	[ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
	if [ "$merge" = 1 ]; then
		echo "== $name: merging $work/corpus into $corpus"
		# shellcheck disable=SC2086 # FUZZ_ARGS and dict are lists of flags
		"$bin" -merge=1 $dict ${FUZZ_ARGS:-} "$corpus" "$work/corpus" 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' ||
			status=1
		continue
	fi
	echo "== $name: $seconds s"
	# The first directory receives new inputs; the repository's corpus after it is only read.
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/" $dict ${FUZZ_ARGS:-} "$work/corpus" "$corpus" >"$work/log" 2>&1
	rc=$?
	grep -aE '^#[0-9]+[[:space:]]+(DONE|INITED)' "$work/log" | tail -1
	grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$work/log"
	if [ "$rc" -ne 0 ]; then
		echo "== $name: FAILED (status $rc); see $work/log and $work/crash-* $work/leak-*" >&2
		grep -aE '^(==[0-9]+==ERROR|SUMMARY|fuzz check failed)' "$work/log" | head -5 >&2
		status=1
	fi
done
exit $status
