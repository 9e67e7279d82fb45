#!/bin/bash
# Network benchmark (not a test): throughput through a published port and the start-time cost of a
# private network, for the host network, the root bridge, pasta and slirp4netns, in one run.
#
#   sudo bench/net.sh                 # SIZE_MB=1024 ROUNDS=20; the rootless rows run as cellatest
#   SIZE_MB=256 CELLA=build/cella BENCH_USER=someone sudo -E bench/net.sh
#
# Throughput: a container serves a SIZE_MB MiB file from a tmpfs with busybox httpd (sendfile); the
# host downloads it with curl from 127.0.0.1:PORT (the published port; with --network host the
# container's own port); curl's time_total. (busybox nc is the bottleneck at ~40 MiB/s: not used.)
# Start time: ROUNDS runs of `busybox true` with --network none, then private; mean per run.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-20}
BENCH_USER=${BENCH_USER:-cellatest}
[ "$(id -u)" = 0 ] || { echo "bench/net.sh: run as root (the rootless rows use su $BENCH_USER)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-net.XXXXXX)
chmod 755 "$WORK"
cp "$CELLA" "$WORK/cella"
[ -e "${CELLA%/*}/cella-image" ] && cp "${CELLA%/*}/cella-image" "$WORK/" || true
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

free_port() {
	local p
	while :; do
		p=$((42000 + RANDOM % 10000))
		grep -qi "$(printf ':%04X ' "$p")" /proc/net/tcp /proc/net/tcp6 || { echo "$p"; return; }
	done
}

# as WHO ENV... -- CMD...: run as root (WHO=root) or as the bench user with its own roots
as() {
	local who=$1
	shift
	if [ "$who" = root ]; then
		env CELLA_ROOT="$WORK/data" CELLA_RUN_ROOT="$WORK/run" "$@"
	else
		mkdir -p "$WORK/urun" "$WORK/udata" && chown "$BENCH_USER" "$WORK/urun" "$WORK/udata"
		su "$BENCH_USER" -s /bin/bash -c "$(printf '%q ' env XDG_DATA_HOME="$WORK/udata" XDG_RUNTIME_DIR="$WORK/urun" "$@")"
	fi
}

now_ms() { date +%s%3N; }

# throughput LABEL WHO NETWORK [ENV...]
throughput() {
	local label=$1 who=$2 net=$3 port name=bn$$ lport=8000 pub out i
	shift 3
	port=$(free_port)
	pub="-p $port:8000"
	[ "$net" = host ] && { lport=$port; pub=""; }
	# shellcheck disable=SC2086
	as "$who" "$@" "$WORK/cella" run -d --init --name "$name" --network "$net" $pub --tmpfs "/www:size=$((SIZE_MB + 16))m" \
		busybox sh -c "dd if=/dev/zero of=/www/big bs=1M count=$SIZE_MB 2>/dev/null && echo ok >/www/ready && exec httpd -f -p $lport -h /www" >/dev/null
	for i in $(seq 300); do
		curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
		sleep 0.1
	done
	out=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' "http://127.0.0.1:$port/big" || true)
	as "$who" "$@" "$WORK/cella" rm -f "$name" >/dev/null
	set -- $out
	if [ "${1:-0}" != $((SIZE_MB * 1048576)) ]; then
		echo "| $label | failed: got '${1:-0}' bytes |  |  |"
		return
	fi
	awk -v l="$label" -v mb="$SIZE_MB" -v s="$2" 'BEGIN { printf "| %s | %d MiB | %.2f s | %.0f MiB/s |\n", l, mb, s, mb / s }'
}

# start_cost LABEL WHO [ENV...]
start_cost() {
	local label=$1 who=$2 t0 t1 t2 i
	shift 2
	as "$who" "$@" "$WORK/cella" run --network none busybox true
	t0=$(now_ms)
	for i in $(seq "$ROUNDS"); do as "$who" "$@" "$WORK/cella" run --network none busybox true; done
	t1=$(now_ms)
	for i in $(seq "$ROUNDS"); do as "$who" "$@" "$WORK/cella" run --network private busybox true; done
	t2=$(now_ms)
	awk -v l="$label" -v a=$((t1 - t0)) -v b=$((t2 - t1)) -v n="$ROUNDS" \
		'BEGIN { printf "| %s | %.1f ms | %.1f ms | +%.1f ms |\n", l, a / n, b / n, (b - a) / n }'
}

echo "Throughput through a published port (${SIZE_MB} MiB, container → host: busybox httpd (sendfile from a tmpfs) to curl)"
echo
echo "| network | size | time | rate |"
echo "|---|---|---|---|"
throughput "host network (root)" root host
throughput "root bridge (veth + nft DNAT)" root private
throughput "rootless pasta" user private CELLA_ROOTLESS_NET=pasta
throughput "rootless slirp4netns" user private CELLA_ROOTLESS_NET=slirp4netns
echo
echo "Start time of \`cella run busybox true\` (mean of $ROUNDS, su included for the rootless rows)"
echo
echo "| who | --network none | --network private | private costs |"
echo "|---|---|---|---|"
start_cost "root (bridge)" root
start_cost "rootless, pasta" user CELLA_ROOTLESS_NET=pasta
start_cost "rootless, slirp4netns" user CELLA_ROOTLESS_NET=slirp4netns
