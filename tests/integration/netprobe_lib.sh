# shellcheck shell=bash
# The host-loopback probes shared by t_netpriv.sh and t_vm.sh: netprobe.c (built static: it forges
# frames in a container or a VM, and listens on the host; busybox does neither), listeners on the
# host, and clean-up at the test's end. Sourced by those files:
#   . "$(dirname "${BASH_SOURCE[0]}")/netprobe_lib.sh"

NETPROBE_SRC=$(dirname "${BASH_SOURCE[0]}")/netprobe.c
# ip (host_address, the tests' own namespaces) is in sbin, which an ordinary user's PATH may lack
PATH=$PATH:/usr/sbin:/sbin

# build_netprobe [DIR]: NETPROBE=DIR/netprobe ($TEST_TMP by default; a VM shares directories
# only), readable by every container user.
build_netprobe() {
	local dir=${1:-$TEST_TMP}
	require_cmd cc
	mkdir -p "$dir"
	NETPROBE=$dir/netprobe
	cc -static -O -o "$NETPROBE" "$NETPROBE_SRC" 2>"$TEST_TMP/cc.err" ||
		skip "cannot build a static binary here: $(head -n1 "$TEST_TMP/cc.err")"
	chmod 755 "$TEST_TMP" "$dir" "$NETPROBE"
}

# at_end CMD: run CMD (eval'd) when the test ends, passed or failed, so that a failed assertion
# leaves no network, running container or listener on the host.
AT_END=""
at_end() {
	AT_END="$1; $AT_END"
	trap 'eval "$AT_END" >/dev/null 2>&1' EXIT
}

# listen NAME udp|tcp PORT [ADDR]: netprobe listening on ADDR (127.0.0.1) for LISTEN_SECONDS (20), in the
# background; its lines go to $TEST_TMP/NAME.out. Returns once it is bound.
LISTENERS=""
listen() {
	local name=$1 i
	shift
	[ -n "$LISTENERS" ] || at_end stop_listeners
	"$NETPROBE" listen "$1" "$2" "${LISTEN_SECONDS:-20}" "${3:-127.0.0.1}" >"$TEST_TMP/$name.out" 2>&1 &
	LISTENERS="$LISTENERS $!"
	for i in $(seq 50); do
		grep -q '^ready$' "$TEST_TMP/$name.out" && return 0
		sleep 0.1
	done
	fail "listener $name did not start: $(cat "$TEST_TMP/$name.out")"
}

stop_listeners() {
	local pid
	for pid in $LISTENERS; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	LISTENERS=""
}

# What a listener received: its "got"/"conn" lines.
heard() { grep -E '^(got|conn) ' "$TEST_TMP/$1.out"; }

# no_reply PORT: the probe's SYNs for 127.0.0.1:PORT (in OUT) got no answer (SYN-ACK, RST) back.
no_reply() {
	printf '%s\n' "$OUT" | grep -Eq ' reply (SYN-ACK|RST|other)$' &&
		fail "an answer from the host's 127.0.0.1:$1 came back to the container"
	return 0
}

# An IPv4 address of the host that is not loopback and not a cella bridge's (the control probes').
host_address() {
	ip -4 -o addr show scope global 2>/dev/null | awk '$2 !~ /^cella/ { sub(/\/.*/, "", $4); print $4; exit }'
}
