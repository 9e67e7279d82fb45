#!/bin/bash
# Container start-up benchmark (not a test; not part of make check).
#
#   sudo bench/start.sh            # ROUNDS=200 by default
#   ROUNDS=50 CELLA=build/cella bench/start.sh
#
# Runs `true` in a busybox root file system with cella and with the tools it is compared to,
# interleaved round by round (each round starting one command later) on the same machine, and prints a markdown table: median and p90
# wall time per invocation, the ratio of each median to cella's, and the median CPU time (user +
# system of the command and its waited-for children: less sensitive to a shared machine's load).
# Timing is done by bench/timeit.c (compiled here): clock read right before posix_spawn and right
# after wait4.
# Tools that are missing are listed as "not installed"; ones that fail are listed with the error.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-200}
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac

[ "$(id -u)" = 0 ] || echo "bench: not root: runc (and cella as root) will not be measured as intended" >&2

WORK=$(mktemp -d /tmp/bench-start.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# --- the root file system ---------------------------------------------------------------------
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && LC_ALL=C ldd "$b" 2>&1 | grep -q 'not a dynamic'; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || { echo "bench: needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/bin "$ROOTFS"/etc "$ROOTFS"/proc "$ROOTFS"/dev "$ROOTFS"/sys "$ROOTFS"/tmp "$ROOTFS"/root
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in sh true ls cat echo; do ln -s busybox "$ROOTFS/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\n' >"$ROOTFS/etc/group"

# --- the timer --------------------------------------------------------------------------------
CC=${CC:-cc}
"$CC" -O2 -Wall -o "$WORK/timeit" "$REPO/bench/timeit.c"

# --- the contenders: name, then the command ----------------------------------------------------
names=() cmds=()
add() { # NAME CMD... (CMD's first word decides whether it is installed)
	local name=$1
	shift
	names+=("$name")
	local c
	c=$(printf '%q ' "$@")
	cmds+=("${c% }")
}

add "cella (busybox image)" "$CELLA" run busybox true
add "cella (rootfs dir)" "$CELLA" run "$ROOTFS" true
add "bwrap" bwrap --unshare-all --ro-bind "$ROOTFS" / --proc /proc --dev /dev true
add "unshare+chroot" unshare -Urmpf --mount-proc chroot "$ROOTFS" true
if command -v runc >/dev/null 2>&1; then
	mkdir -p "$WORK/bundle" "$WORK/runc-root"
	(cd "$WORK/bundle" && runc spec)
	python3 - "$WORK/bundle/config.json" "$ROOTFS" <<-'PY'
		import json, sys
		path, root = sys.argv[1], sys.argv[2]
		with open(path) as f:
		    spec = json.load(f)
		spec["root"]["path"] = root
		spec["process"]["args"] = ["true"]
		spec["process"]["terminal"] = False
		with open(path, "w") as f:
		    json.dump(spec, f, indent=2)
	PY
fi
add "runc" runc --root "$WORK/runc-root" run --bundle "$WORK/bundle" cella-bench
add "proot" proot -r "$ROOTFS" true
add "true" true

# A contender is measured when its program exists and one warm-up run of it succeeds.
status=() selected=()
for i in "${!names[@]}"; do
	eval "set -- ${cmds[$i]}"
	if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
		status[i]="not installed"
		continue
	fi
	if ! out=$(timeout 60 "$@" 2>&1 </dev/null); then
		status[i]="failed: $(printf '%s' "$out" | tail -n1 | cut -c1-80)"
		continue
	fi
	status[i]=ok
	selected+=("$i")
done

args=()
for i in "${selected[@]}"; do
	eval "set -- ${cmds[$i]}"
	args+=(-- "$i" "$@")
done

echo "bench: $ROUNDS rounds of ${#selected[@]} commands, interleaved…" >&2
"$WORK/timeit" "$ROUNDS" "${args[@]}" >"$WORK/times"

# --- statistics -------------------------------------------------------------------------------
stat_of() { # INDEX -> "median_ms p90_ms cpu_median_ms nonzero_exits"
	awk -v i="$1" '$1 == i { print $2 }' "$WORK/times" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { printf "- - "; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			k = int(0.9 * NR); if (k < 0.9 * NR) k++
			printf "%.2f %.2f ", m / 1e6, v[k] / 1e6
		}'
	# CPU time (user + system of the command and what it waited for: timeit's fourth column)
	awk -v i="$1" '$1 == i { print $4 }' "$WORK/times" | sort -n | awk '
		{ v[NR] = $1 }
		END { if (NR == 0) { printf "- "; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f ", m / 1e6 }'
	awk -v i="$1" '$1 == i && $3 != 0' "$WORK/times" | wc -l
}

declare -A median p90 cpu bad
for i in "${selected[@]}"; do
	read -r median[$i] p90[$i] cpu[$i] bad[$i] <<<"$(stat_of "$i")"
done
ref=""
for i in "${selected[@]}"; do
	case "${names[$i]}" in "cella (busybox image)") ref=${median[$i]} ;; esac
done

echo
echo "Start-up time, $ROUNDS runs each, interleaved ($(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%d), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| tool | median ms | p90 ms | ratio to cella median | median CPU ms (user+sys) |"
echo "|---|---:|---:|---:|---:|"
for i in "${!names[@]}"; do
	if [ "${status[$i]}" != ok ]; then
		echo "| ${names[$i]} | ${status[$i]} | | | |"
		continue
	fi
	ratio="-"
	[ -n "$ref" ] && ratio=$(awk -v a="${median[$i]}" -v b="$ref" 'BEGIN { printf "%.2f×", a / b }')
	note=""
	[ "${bad[$i]}" = 0 ] || note=" (${bad[$i]} runs exited non-zero)"
	echo "| ${names[$i]}$note | ${median[$i]} | ${p90[$i]} | $ratio | ${cpu[$i]} |"
done
echo
echo "Commands (ROOTFS = a static busybox tree in a temp dir):"
echo
for i in "${!names[@]}"; do
	echo "- ${names[$i]}: \`${cmds[$i]//$ROOTFS/ROOTFS}\`"
done
