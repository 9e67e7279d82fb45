# shellcheck shell=bash disable=SC2034
# Networking: --network none (a new netns with only lo, up) and --network host.

_ifaces() { # interface names from /proc/net/dev text on stdin, sorted, one per line
	awk 'NR > 2 { sub(/:.*/, "", $1); print $1 }' | sort
}

test_network_none_only_lo() {
	run_cella run --network none busybox cat /proc/net/dev
	assert_rc 0
	assert_eq lo "$(printf '%s\n' "$OUT" | _ifaces | tr '\n' ' ' | sed 's/ $//')" "interfaces with --network none"
}

test_network_none_lo_up() {
	run_cella run --network none busybox ip link show lo
	assert_rc 0
	assert_match "$OUT" '<[^>]*\bUP\b' "flags of lo"
	run_cella run --network none busybox ping -c 1 -W 2 127.0.0.1
	assert_rc 0 "ping 127.0.0.1 over lo"
}

test_network_none_is_new_netns() {
	run_cella run --network none busybox readlink /proc/self/ns/net
	assert_rc 0
	assert_ne "$(readlink /proc/self/ns/net)" "$OUT" "net namespace"
}

test_network_none_no_host_interfaces() {
	local host
	host=$(_ifaces </proc/net/dev | grep -vx lo | head -n1)
	[ -n "$host" ] || skip "host has no interface besides lo"
	run_cella run --network none busybox ip link show "$host"
	assert_rc 2 "ip link show $host inside --network none"
	assert_contains "$ERR" "can't find device '$host'" "ip's error inside --network none"
	# the same command finds lo: the error above is about the host's interface only
	run_cella run --network none busybox ip link show lo
	assert_rc 0 "ip link show lo inside --network none"
}

test_network_host_same_interfaces() {
	run_cella run --network host busybox cat /proc/net/dev
	assert_rc 0
	assert_eq "$(_ifaces </proc/net/dev)" "$(printf '%s\n' "$OUT" | _ifaces)" "interfaces with --network host"
	run_cella run --network host busybox readlink /proc/self/ns/net
	assert_rc 0
	assert_eq "$(readlink /proc/self/ns/net)" "$OUT" "net namespace with --network host"
}

test_network_bad_mode() {
	run_cella run --network bogus-mode busybox true
	assert_cella_error 125 bogus-mode
}
