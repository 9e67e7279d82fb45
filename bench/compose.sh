#!/bin/bash
# compose benchmark (issue 21; not a test; not part of make check).
#
#   sudo bash bench/compose.sh            # ROUNDS=5 rounds of up -d / down of a 5-service stack
#   SERVICES=5 ROUNDS=3 bash bench/compose.sh
#   sudo MODE=ps bash bench/compose.sh    # `compose ps` of PS_SERVICES=50 running services
#
# The same compose file (SERVICES busybox `sleep` services on the project's default network,
# one of them with a named volume) brought up with `up -d` and taken down with `down -v` by
# `cella compose` and by `podman-compose` (Debian's), each in a fresh data root under a temp
# dir; prints the median wall time of each and podman-compose's time over cella's. podman runs
# with its own --root/--runroot, runc where crun refuses the hybrid cgroup layout, and
# `--ulimit nofile=1024:1024 --ulimit nproc=4096:4096` on this host (root lacks
# CAP_SYS_RESOURCE), through a wrapper given as --podman-path.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
SERVICES=${SERVICES:-5}
ROUNDS=${ROUNDS:-5}
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
[ -x "$CELLA" ] || { echo "bench: $CELLA: not found (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (cella's project network is root's)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-compose.XXXXXX)
export CELLA_ROOT=$WORK/cella-data CELLA_RUN_ROOT=$WORK/cella-run
PODMAN_GLOBAL="--root $WORK/podman-root --runroot $WORK/podman-run --storage-driver overlay --cgroup-manager cgroupfs"
if [ -n "${PODMAN_RUNTIME:-}" ]; then
	PODMAN_GLOBAL="$PODMAN_GLOBAL --runtime $PODMAN_RUNTIME"
elif [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null; then
	PODMAN_GLOBAL="$PODMAN_GLOBAL --runtime runc"
fi

cleanup() {
	set +e
	(cd "$WORK/app" && "$CELLA" compose -p benchc down -v -t 1 >/dev/null 2>&1)
	[ -d "$WORK/ps" ] && (cd "$WORK/ps" && "$CELLA" compose -p benchps down -t 1 >/dev/null 2>&1)
	if command -v podman >/dev/null; then
		"$WORK/podman" rm -af -t 0 >/dev/null 2>&1
		"$WORK/podman" system reset -f >/dev/null 2>&1
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

mkdir -p "$WORK/app"
{
	echo "services:"
	for i in $(seq "$SERVICES"); do
		echo "  s$i:"
		echo "    image: \${IMAGE}"
		echo "    command: [\"sleep\", \"3600\"]"
		[ "$i" = 1 ] && printf '    volumes:\n      - data:/data\n'
		[ "$i" -gt 1 ] && printf '    depends_on:\n      - s%d\n' $((i - 1))
	done
	printf 'volumes:\n  data:\n'
} >"$WORK/app/compose.yaml"

# podman's wrapper: its own storage, the runtime, and the ulimits for run/create
cat >"$WORK/podman" <<WRAP
#!/bin/sh
sub=\$1
[ \$# -gt 0 ] && shift
case "\$sub" in
run | create) exec podman $PODMAN_GLOBAL "\$sub" --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "\$@" ;;
*) exec podman $PODMAN_GLOBAL "\$sub" "\$@" ;;
esac
WRAP
chmod +x "$WORK/podman"

declare -A R
round() { # TOOL: one up -d and one down -v, their times appended to WORK/TOOL.up and .down
	local t=$1 s e
	cd "$WORK/app"
	case $t in
	cella) up=("$CELLA" compose -p benchc up -d) down=("$CELLA" compose -p benchc down -v -t 1) ;;
	podman-compose) up=(podman-compose --podman-path "$WORK/podman" -p benchp up -d)
		down=(podman-compose --podman-path "$WORK/podman" -p benchp down -v -t 1) ;;
	esac
	s=$(now)
	"${up[@]}" >>"$WORK/$t.log" 2>&1 || { echo "bench: $t up failed (see below)" >&2; tail -20 "$WORK/$t.log" >&2; exit 1; }
	e=$(now)
	ms "$s" "$e" >>"$WORK/$t.up"
	s=$(now)
	"${up[@]:0:${#up[@]}-2}" ps >>"$WORK/$t.log" 2>&1 || true
	s=$(now)
	"${down[@]}" >>"$WORK/$t.log" 2>&1 || { echo "bench: $t down failed" >&2; tail -20 "$WORK/$t.log" >&2; exit 1; }
	e=$(now)
	ms "$s" "$e" >>"$WORK/$t.down"
}

TOOLS="cella"
"$CELLA" run --rm busybox true >/dev/null

# MODE=ps: PS_SERVICES running busybox services, then the median of PS_ROUNDS `compose ps`
# (table and --format json) and of the `cella ps -a --format json` it runs; cella only.
if [ "${MODE:-}" = ps ]; then
	N=${PS_SERVICES:-50}
	mkdir -p "$WORK/ps"
	{
		echo "services:"
		for i in $(seq "$N"); do
			printf '  s%d:\n    image: busybox\n    init: true\n    command: ["sleep", "3600"]\n' "$i"
			printf '    environment: {INDEX: "%d"}\n    labels: {bench: ps}\n' "$i"
		done
	} >"$WORK/ps/compose.yaml"
	cd "$WORK/ps"
	s=$(now)
	"$CELLA" compose -p benchps up -d >"$WORK/ps.log" 2>&1 || { tail -20 "$WORK/ps.log" >&2; exit 1; }
	echo "up -d of $N services: $(ms "$s" "$(now)") ms"
	n=$("$CELLA" compose -p benchps ps -q | wc -l)
	[ "$n" = "$N" ] || { echo "bench: compose ps lists $n containers, not $N" >&2; exit 1; }
	for what in table json engine; do
		: >"$WORK/ps.$what"
		for _ in $(seq "${PS_ROUNDS:-21}"); do
			s=$(now)
			case $what in
			table) "$CELLA" compose -p benchps ps >/dev/null ;;
			json) "$CELLA" compose -p benchps ps --format json >/dev/null ;;
			engine) "$CELLA" ps -a --format json >/dev/null ;;
			esac
			ms "$s" "$(now)" >>"$WORK/ps.$what"
		done
	done
	echo "median of ${PS_ROUNDS:-21} runs, $N running services, ms:"
	echo "| \`compose ps\` | \`compose ps --format json\` | \`cella ps -a --format json\` |"
	echo "|---|---|---|"
	echo "| $(median <"$WORK/ps.table") | $(median <"$WORK/ps.json") | $(median <"$WORK/ps.engine") |"
	"$CELLA" compose -p benchps down -t 1 >/dev/null 2>&1
	exit 0
fi
if command -v podman-compose >/dev/null && command -v podman >/dev/null; then
	mkdir -p "$WORK/bb/bin"
	cp "$(command -v busybox)" "$WORK/bb/bin/busybox"
	for a in sh sleep true; do ln -s busybox "$WORK/bb/bin/$a"; done
	tar -C "$WORK/bb" -cf "$WORK/bb.tar" .
	"$WORK/podman" import "$WORK/bb.tar" localhost/bench-busybox >/dev/null
	TOOLS="cella podman-compose"
else
	echo "bench: podman-compose not installed: cella only" >&2
fi

for t in $TOOLS; do
	case $t in cella) export IMAGE=busybox ;; *) export IMAGE=localhost/bench-busybox ;; esac
	round "$t" # warm-up: first network and storage set-up, not counted
	: >"$WORK/$t.up"
	: >"$WORK/$t.down"
	for _ in $(seq "$ROUNDS"); do round "$t"; done
	R[$t, up]=$(median <"$WORK/$t.up")
	R[$t, down]=$(median <"$WORK/$t.down")
done

echo "compose stack of $SERVICES services (depends_on chain, one named volume), median of $ROUNDS rounds, ms"
echo
printf '| | %s |%s\n' "$(echo "$TOOLS" | sed 's/ / | /g')" "$([ "$TOOLS" != cella ] && echo ' cella / podman-compose |')"
printf '|---|%s\n' "$(for _ in $TOOLS; do printf -- '---|'; done)$([ "$TOOLS" != cella ] && echo '---|')"
for m in up down; do
	line="| \`$m\` |"
	for t in $TOOLS; do line="$line ${R[$t, $m]} |"; done
	if [ "$TOOLS" != cella ]; then
		line="$line $(awk -v a="${R[cella, $m]}" -v b="${R[podman-compose, $m]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}') |"
	fi
	echo "$line"
done
