# shellcheck shell=bash disable=SC2034
# The abstract unix socket probes shared by t_landlock.sh and t_podman.sh: abstract.c (built
# static: busybox cannot name abstract sockets), the host's listener, the kernel's Landlock ABI as
# the helper asks it. Sourced by those files:
#   . "$(dirname "${BASH_SOURCE[0]}")/abstract_lib.sh"

ABSTRACT_SRC=$(dirname "${BASH_SOURCE[0]}")/abstract.c

_build_abstract() {
	require_cmd cc
	ABSTRACT=$TEST_TMP/abstract
	cc -static -O -o "$ABSTRACT" "$ABSTRACT_SRC" 2>"$TEST_TMP/cc.err" ||
		skip "cannot build a static binary here: $(head -n1 "$TEST_TMP/cc.err")"
	chmod 755 "$TEST_TMP" "$ABSTRACT"
	ABS_NAME="cella-test-landlock-$$-$RANDOM"
}

# Skip unless the kernel's Landlock ABI has scopes (6, Linux 6.12).
_require_scoping() {
	local abi
	abi=$("$ABSTRACT" abi)
	case "$abi" in
	"abi none "*) skip "Landlock is not available here (landlock_create_ruleset: ${abi#abi none }; not built in, or not in the lsm= list)" ;;
	"abi "[0-9]*) [ "${abi#abi }" -ge 6 ] || skip "the kernel's Landlock ABI is ${abi#abi }; scoping needs ABI 6 (Linux 6.12)" ;;
	*) fail "unexpected answer of the Landlock probe: $abi" ;;
	esac
}

LISTENERS=""
_stop_listeners() {
	local pid
	for pid in $LISTENERS; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

# _listen FILE: the host's listener at @$ABS_NAME (stream) and @$ABS_NAME.dgram for 15 s, its
# lines in FILE; returns once it is bound.
_listen() {
	local i
	[ -n "$LISTENERS" ] || trap '_stop_listeners >/dev/null 2>&1' EXIT
	"$ABSTRACT" listen "$ABS_NAME" 15 >"$1" 2>&1 &
	LISTENERS="$LISTENERS $!"
	for i in $(seq 50); do
		grep -q '^ready$' "$1" && return 0
		sleep 0.1
	done
	fail "the abstract socket listener did not start: $(cat "$1")"
}

# _heard FILE: what the listener got (after a moment for the last datagram to be logged)
_heard() {
	sleep 0.2
	grep -E '^(conn|got )' "$1"
}

_probe_line() { printf '%s\n' "$OUT" | awk -v k="$1" '$1 == k { print $2 }'; }
