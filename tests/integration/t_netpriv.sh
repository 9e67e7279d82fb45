# shellcheck shell=bash disable=SC2034
# passes: root user
# passes-why: as root of a user namespace the networks are pasta's, as in the cellatest pass (CI time)
# Private networks (docs/network.md): an address of the container's own, published ports with
# real traffic over the host's loopback, and that nothing (rules, interfaces, helpers, leases) is
# left once a container stops or its monitor is killed. As root a bridge, veth pairs and nft
# DNAT; as the unprivileged user pasta (or slirp4netns). User-defined networks are root-only:
# those tests skip in the user pass.

. "$(dirname "${BASH_SOURCE[0]}")/netprobe_lib.sh"

np_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

# A port nothing uses (TCP or UDP), in a range no other test picks from.
free_port() {
	local p i hex
	for i in $(seq 100); do
		p=$((21000 + RANDOM % 20000))
		hex=$(printf ':%04X ' "$p")
		grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null ||
			{ echo "$p"; return 0; }
	done
	fail "no free port found"
}

# http_get PORT: the body busybox httpd serves on 127.0.0.1:PORT (retried while it starts)
http_get() {
	local i
	for i in $(seq 50); do
		OUT=$(wget -qO- -T 2 "http://127.0.0.1:$1/" 2>/dev/null) && return 0
		sleep 0.1
	done
	return 1
}

need_private() {
	if is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map; then
		require_cmd nft wget
	else
		require_cmd wget
		command -v pasta >/dev/null || command -v slirp4netns >/dev/null || skip "neither pasta nor slirp4netns installed"
	fi
}

real_root() { is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map; }

# Nothing of the container (by full id) left: its DNAT table, its veth, its lease, its helper.
assert_net_clean() {
	local id=$1 short=${1:0:12}
	if real_root; then
		nft list tables 2>/dev/null | grep -q "cella_c_$short" && fail "nft table cella_c_$short left"
		ip link show "vc$short" >/dev/null 2>&1 && fail "veth vc$short left"
		cat /run/cella-net/*.leases 2>/dev/null | grep -q "$id" && fail "lease of $short left"
	else
		[ ! -e "$CELLA_RUN_ROOT/net/$id.pid" ] || fail "network helper record of $short left"
		pgrep -u "$(id -u)" -f "(pasta|slirp4netns).*$id" >/dev/null && fail "network helper of $short left"
	fi
	return 0
}

httpd_cmd='mkdir -p /www && echo hello-from-cella > /www/index.html && exec httpd -f -p 80 -h /www'

test_private_address_and_route() {
	need_private
	np_env
	run_cella run --network private busybox sh -c 'ip -4 -o addr show; ip route'
	assert_ok
	assert_match "$OUT" '^default via ' "a default route"
	printf '%s\n' "$OUT" | grep -v ' lo ' | grep -q 'inet ' || fail "no address besides lo"
	if real_root; then
		assert_match "$OUT" 'eth0 +inet 10\.209\.' "eth0 in the default network's subnet"
		# docker's MAC, 02:42 + the address: a lease given again keeps its MAC, so the host's
		# neighbour entry of the previous holder stays right (a random MAC stalled connections ~30 s)
		run_cella run --network private busybox sh -c \
			'ip -4 -o addr show eth0 | awk "{ print \$4 }"; cat /sys/class/net/eth0/address'
		assert_ok
		local a mac
		a=$(printf '%s\n' "$OUT" | head -1 | cut -d/ -f1)
		mac=$(printf '02:42:%02x:%02x:%02x:%02x' ${a//./ })
		assert_eq "$mac" "$(printf '%s\n' "$OUT" | tail -1)" "eth0's MAC for $a"
	fi
}

test_private_hosts_and_resolv() {
	need_private
	np_env
	run_cella run --network private --hostname box --dns 192.0.2.53 --add-host db:192.0.2.7 busybox \
		cat /etc/hosts /etc/resolv.conf
	assert_ok
	assert_match "$OUT" '^192\.0\.2\.7[[:space:]]+db$' "--add-host line"
	assert_match "$OUT" '^nameserver 192\.0\.2\.53$' "--dns"
	assert_match "$OUT" '[[:space:]]box$' "own host name in /etc/hosts"
	assert_not_contains "$OUT" "nameserver 127." "loopback resolvers skipped"
}

test_publish_reaches_httpd_then_stop_frees_port() {
	need_private
	np_env
	local port id
	port=$(free_port)
	run_cella run -d --init --name web -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	id=$OUT
	http_get "$port" || fail "no answer on 127.0.0.1:$port"
	assert_eq hello-from-cella "$OUT" "page through the published port"
	run_cella port web
	assert_ok
	assert_contains "$OUT" "80/tcp -> 0.0.0.0:$port"
	run_cella stop -t 2 web
	assert_ok
	wget -qO- -T 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 && fail "port $port still answers after stop"
	assert_net_clean "$id"
	run_cella start web
	assert_ok
	http_get "$port" || fail "no answer on 127.0.0.1:$port after a restart"
	run_cella rm -f web
	assert_ok
	assert_net_clean "$id"
}

test_same_host_port_twice_fails() {
	need_private
	np_env
	local port
	port=$(free_port)
	run_cella run -d --init --name first -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	http_get "$port" || fail "the first container does not answer"
	run_cella run -d --name second -p "$port:80" busybox sleep 30
	assert_cella_error 125 "host port $port"
	run_cella rm -f first second
	assert_ok
}

test_port_taken_by_host_listener_fails() {
	need_private
	np_env
	find_host_busybox
	local port pid
	port=$(free_port)
	"$HOST_BUSYBOX" nc -l -p "$port" >/dev/null 2>&1 &
	pid=$!
	sleep 0.2
	run_cella run --network private -p "$port:80" busybox true
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	assert_cella_error 125 "host port $port is in use"
}

test_publish_needs_private_network() {
	np_env
	run_cella run --network host -p 8080:80 busybox true
	assert_cella_error 125 "are for private networks"
}

test_kill_9_monitor_then_rm_leaves_nothing() {
	need_private
	np_env
	local port id mon
	port=$(free_port)
	run_cella run -d --init --name crash -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	id=$OUT
	http_get "$port" || fail "no answer on 127.0.0.1:$port"
	mon=$(field crash '{{.State.MonitorPid}}')
	kill -9 "$mon"
	sleep 0.3
	run_cella rm -f crash
	assert_ok
	assert_net_clean "$id"
	# the port is free again: a new container can have it
	run_cella run -d --init --name again -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	http_get "$port" || fail "the port was not usable again"
	run_cella rm -f again
	assert_ok
}

test_engine_default_is_private() {
	need_private
	np_env
	run_cella run -d --name dflt busybox sleep 30
	assert_ok
	run_cella exec dflt readlink /proc/self/ns/net
	assert_ok
	assert_ne "$(readlink /proc/self/ns/net)" "$OUT" "an engine container has its own network namespace"
	run_cella rm -f dflt
	assert_ok
	run_cella run busybox readlink /proc/self/ns/net
	assert_eq "$(readlink /proc/self/ns/net)" "$OUT" "a foreground run keeps the host's network"
}

# random_port NAME CTR/PROTO: the host port `cella port NAME` lists for CTR/PROTO (0.0.0.0:N)
random_port() {
	run_cella port "$1"
	assert_ok
	PORT=$(printf '%s\n' "$OUT" | sed -n "s|^$2 -> 0\.0\.0\.0:\([0-9]*\)\$|\1|p")
	[ -n "$PORT" ] && [ "$PORT" != 0 ] || fail "no random port for $2 in \`cella port $1\`: $OUT"
}

# -p CTR: a free host port picked at start; as root a DNAT rule, rootless pasta's (or
# slirp4netns's) forward. rm -f frees it.
random_port_case() {
	local id
	run_cella run -d --init --name rnd -p 80 -p 53/udp busybox sh -c "$httpd_cmd"
	assert_ok
	id=$OUT
	random_port rnd 53/udp
	random_port rnd 80/tcp
	http_get "$PORT" || fail "no answer on the random port $PORT"
	assert_eq hello-from-cella "$OUT" "page through the random port"
	run_cella rm -f rnd
	assert_ok
	wget -qO- -T 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && fail "port $PORT still answers after rm -f"
	assert_net_clean "$id"
	[ ! -e "$CELLA_RUN_ROOT/net/$id.ports" ] || fail "the ports record of ${id:0:12} left"
}

test_random_host_port() {
	need_private
	np_env
	random_port_case
}

test_random_host_port_slirp4netns() {
	real_root && skip "slirp4netns is the rootless network (root uses a bridge)"
	need_private
	require_cmd slirp4netns
	np_env
	export CELLA_ROOTLESS_NET=slirp4netns
	random_port_case
}

# -P: every ExposedPorts entry of the image on a free host port. The image: a docker-archive
# directory (as `docker save` writes, unpacked) around a busybox rootfs that serves a page.
test_publish_all_exposed_ports() {
	need_private
	require_cmd python3
	np_env
	local d=$TEST_TMP/img id
	make_rootfs "$d/rootfs"
	mkdir -p "$d/rootfs/www" "$d/arch"
	echo hello-from-exposed >"$d/rootfs/www/index.html"
	tar -C "$d/rootfs" -cf "$d/arch/layer.tar" --owner=0 --group=0 .
	python3 - "$d/arch" <<'EOF2'
import hashlib, json, sys
d = sys.argv[1]
diff = "sha256:" + hashlib.sha256(open(d + "/layer.tar", "rb").read()).hexdigest()
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"ExposedPorts": {"80/tcp": {}}, "Cmd": ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]},
       "rootfs": {"type": "layers", "diff_ids": [diff]}}
json.dump(cfg, open(d + "/config.json", "w"))
json.dump([{"Config": "config.json", "RepoTags": ["local/web:exposed"], "Layers": ["layer.tar"]}],
          open(d + "/manifest.json", "w"))
EOF2
	run_cella image import "$d/arch"
	assert_ok
	run_cella image inspect -f '{{.Config.ExposedPorts}}' local/web:exposed
	assert_ok
	assert_contains "$OUT" "80/tcp"
	run_cella run -d --init --name pall -P local/web:exposed
	assert_ok
	id=$OUT
	random_port pall 80/tcp
	http_get "$PORT" || fail "no answer on the -P port $PORT"
	assert_eq hello-from-exposed "$OUT" "page through the port -P picked"
	run_cella rm -f pall
	assert_ok
	wget -qO- -T 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && fail "port $PORT still answers after rm -f"
	assert_net_clean "$id"
	[ ! -e "$CELLA_RUN_ROOT/net/$id.ports" ] || fail "the ports record of ${id:0:12} left"
}

test_user_network_by_name_and_none_isolated() {
	if ! real_root; then
		# rootless containers have no bridge to share: the error says so
		run_cella network create "tn$$"
		assert_cella_error 125 "networks are for root"
		return 0
	fi
	need_private
	np_env
	local net=tn$$ addr
	run_cella network create "$net"
	assert_ok
	run_cella run -d --init --name alpha$$ --network "$net" busybox sh -c "$httpd_cmd"
	assert_ok
	run_cella run -d --init --name beta$$ --network "$net" busybox sleep 30
	assert_ok
	run_cella exec "beta$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc alpha$$ 80"
	assert_ok
	assert_contains "$OUT" hello-from-cella "beta reaches alpha by name"
	addr=$("$CELLA" exec "alpha$$" hostname -i)
	assert_match "$addr" '^10\.[0-9]+\.[0-9]+\.[0-9]+$' "alpha's address (hostname -i)"
	# the same request by address, from a member: what fails below fails for --network none only
	run_cella exec "beta$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_ok
	assert_contains "$OUT" hello-from-cella "beta reaches alpha by address"
	run_cella run --network none busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_rc 1 "nc from --network none"
	assert_not_contains "$OUT" hello-from-cella "--network none reaches alpha"
	assert_contains "$ERR" "Network is unreachable" "nc's error in --network none"
	run_cella network rm "$net"
	assert_cella_error 125 "used by 2 running"
	run_cella rm -f "alpha$$" "beta$$"
	assert_ok
	run_cella network rm "$net"
	assert_ok
	ip link show | grep -q "cella[1-9].*" && ! "$CELLA" network ls | grep -q cella[1-9] && fail "bridge left"
	return 0
}

test_user_network_dns() {
	real_root || skip "user-defined networks need root"
	need_private
	np_env
	local net=td$$ gw addr i
	run_cella network create "$net"
	assert_ok
	gw=$("$CELLA" network inspect "$net" | sed -n 's/.*"gateway": *"\([0-9.]*\)".*/\1/p' | head -n1)
	[ -n "$gw" ] || fail "no gateway in network inspect: $("$CELLA" network inspect "$net")"
	run_cella run -d --init --name dnsa$$ --network "$net" busybox sleep 60
	assert_ok
	addr=$("$CELLA" exec "dnsa$$" hostname -i)
	run_cella run --rm --network "$net" busybox cat /etc/resolv.conf
	assert_ok
	assert_match "$OUT" "^nameserver $gw\$" "resolv.conf names the gateway"
	assert_not_contains "$OUT" "nameserver 8.8." "only the gateway"
	run_cella run --rm --network "$net" busybox nslookup "DNSA$$" "$gw"
	assert_ok
	assert_contains "$OUT" "Address: $addr" "the member's address by name over DNS (case-insensitive)"
	run_cella run --rm --network "$net" busybox nslookup "nosuch$$.invalid" "$gw"
	assert_rc 1
	assert_match "$OUT" "NXDOMAIN|can't find" "an unknown name fails"
	pgrep -f "__netdns $net\$" >/dev/null || fail "no __netdns for $net"
	run_cella rm -f "dnsa$$"
	assert_ok
	run_cella network rm "$net"
	assert_ok
	for i in $(seq 150); do
		pgrep -f "__netdns $net\$" >/dev/null || break
		sleep 0.1
	done
	pgrep -f "__netdns $net\$" >/dev/null && fail "__netdns of $net left"
	[ ! -e "/run/cella-net/$net.dns" ] || fail "pid file of $net's name server left"
	return 0
}

test_network_cli_errors() {
	np_env
	if real_root; then
		run_cella network rm cella
		# its bridge and rules go (they come back on the next private start), unless a
		# container of a concurrent run uses it
		[ "$RC" = 0 ] || assert_cella_error 125 "used by"
		run_cella network create 'bad name'
		assert_cella_error 125 "bad name"
	else
		run_cella network create somenet
		assert_cella_error 125 "networks are for root"
	fi
	run_cella run --network no-such-net busybox true
	assert_cella_error 125 no-such-net
	run_cella network ls --format json
	assert_ok
	assert_contains "$OUT" '"name":"cella"'
}

test_network_container_shares_netns() {
	need_private
	np_env
	run_cella run -d --init --name host$$ --network private busybox sh -c "$httpd_cmd"
	assert_ok
	run_cella run -d --name side$$ --network "container:host$$" busybox sleep 30
	# rootless too: the side container is made inside the other one's user namespace
	assert_ok
	run_cella exec "side$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc 127.0.0.1 80"
	assert_ok
	assert_contains "$OUT" hello-from-cella "the other container's httpd on the shared loopback"
	assert_eq "$("$CELLA" exec "host$$" readlink /proc/self/ns/net)" "$("$CELLA" exec "side$$" readlink /proc/self/ns/net)" \
		"one network namespace"
	run_cella run --network "container:side$$" -p 8080:80 busybox true
	assert_cella_error 125 "publish the port on"
	run_cella run --network container:no-such-ctr$$ busybox true
	assert_cella_error 125 "no-such-ctr$$"
	run_cella rm -f "host$$" "side$$"
	assert_ok
}

# ---- the host's loopback services (CVE-2020-8558 pattern) and isolation between networks ----

# A container on the default private network forges frames to the gateway's MAC: a UDP datagram
# and a TCP SYN for 127.0.0.1, each through the qdisc and with PACKET_QDISC_BYPASS. Host
# listeners on 127.0.0.1 must hear nothing and no answer may come back; the same frames for a
# host address (the control) arrive, so the probe works and only loopback is refused. The same
# for 0.0.0.0, which a helper's socket connects to the host's own loopback (Linux reads a connect to
# 0.0.0.0 as one to 127.0.0.1: pasta and slirp4netns delivered it there). Then a
# container without any capability sends UDP datagrams out of eth0 with IP_UNICAST_IF and
# IP_PKTINFO (no raw socket needed): the same holds.
crafted_frames_case() {
	local u t c host
	host=$(host_address)
	[ -n "$host" ] || skip "the host has no global IPv4 address for the control probe"
	u=$(free_port) t=$(free_port) c=$(free_port)
	listen lo-udp udp "$u"
	listen lo-tcp tcp "$t"
	listen ctl udp "$c" 0.0.0.0
	run_cella run --rm --network private -v "$NETPROBE:/np:ro" busybox \
		sh -c "/np send udp $u && /np send syn $t && /np send udp $u 0.0.0.0 && /np send syn $t 0.0.0.0 && /np send udp $c $host"
	assert_ok
	# without any capability: a UDP socket whose IP_UNICAST_IF / IP_PKTINFO names eth0 (no guard
	# was applied rootless under --cap-drop NET_RAW, and these reached 127.0.0.1 through the helper)
	local first=$OUT want=4
	# (pasta gives the container the host's own address: a datagram to it stays in the container)
	run_cella run --rm --network private --cap-drop ALL -v "$NETPROBE:/np:ro" busybox \
		sh -c "/np send ifudp $u; ip -4 -o addr | grep -q ' $host/' && echo host-address-is-ours || /np send ifudp $c $host"
	stop_listeners
	assert_ok
	assert_contains "$OUT" "unicast-if sent" "the capability-less probe"
	case $OUT in *host-address-is-ours*) want=2 ;; esac
	OUT="$first
$OUT"
	assert_eq "$want" "$(heard ctl | grep -c netprobe-attack)" \
		"control: datagrams to the host's $host:$c heard (crafted plain and qdisc-bypass, then by IP_UNICAST_IF and IP_PKTINFO); listener: $(cat ctl.out)"
	[ -z "$(heard lo-udp)" ] || fail "a host service on 127.0.0.1:$u (udp) received a container's datagram: $(heard lo-udp)"
	[ -z "$(heard lo-tcp)" ] || fail "a host service on 127.0.0.1:$t (tcp) accepted a container's connection: $(heard lo-tcp)"
	no_reply "$t"
	assert_match "$OUT" '^plain no reply$' "the probe waited for the SYN's answer"
}

test_crafted_frames_do_not_reach_host_loopback() {
	need_private
	np_env
	build_netprobe
	crafted_frames_case
}

test_crafted_frames_do_not_reach_host_loopback_slirp4netns() {
	real_root && skip "slirp4netns is the rootless network (root uses a bridge)"
	need_private
	require_cmd slirp4netns
	np_env
	build_netprobe
	export CELLA_ROOTLESS_NET=slirp4netns
	crafted_frames_case
}

# As root, the bridge's gateway is the host: a service bound to 127.0.0.1 only is not behind it
# (one bound to every address is: the control).
test_bridge_gateway_is_not_host_loopback() {
	real_root || skip "root's bridge (rootless: test_rootless_gateway_is_not_host_loopback)"
	need_private
	np_env
	build_netprobe
	local p c
	p=$(free_port) c=$(free_port)
	listen lo tcp "$p"
	listen ctl tcp "$c" 0.0.0.0
	run_cella run --rm --network private busybox sh -c \
		"gw=\$(ip route | awk '/^default/ { print \$3 }'); echo x | nc -w 2 \$gw $c && echo control-ok; echo x | nc -w 2 \$gw $p && echo LOOPBACK-REACHED"
	stop_listeners
	assert_contains "$OUT" control-ok "control: the host's service on every address, through the gateway"
	assert_not_contains "$OUT" LOOPBACK-REACHED "the host's 127.0.0.1:$p through the gateway"
	[ -z "$(heard lo)" ] || fail "the host's 127.0.0.1:$p accepted a container's connection: $(heard lo)"
}

# Rootless (pasta, slirp4netns), in a network namespace of the test's own: a veth pair stands
# for the host's network (198.51.100.2, and .3 for the control; the default gateway .1 answers
# nothing), so that nothing the container sends leaves the test. The container tries the
# gateway, crafted frames to 127.0.0.1 and to 0.0.0.0, and (with no capability at all) UDP datagrams sent out of
# its interface by IP_UNICAST_IF and IP_PKTINFO, for host services bound to 127.0.0.1.
rootless_netns_case() {
	local p c script=$TEST_TMP/inner.sh
	require_cmd ip unshare
	p=$(free_port) c=$(free_port)
	cat >"$script" <<EOS
set -e
PATH=\$PATH:/usr/sbin:/sbin
ip link add cnv0 type veth peer name cnv1
ip addr add 198.51.100.2/24 dev cnv0
ip addr add 198.51.100.3/24 dev cnv0
ip link set lo up
ip link set cnv0 up
ip link set cnv1 up
ip route add default via 198.51.100.1 dev cnv0
set +e
"$NETPROBE" listen tcp $p 20 127.0.0.1 >"$TEST_TMP/lo.out" 2>&1 &
"$NETPROBE" listen udp $p 20 127.0.0.1 >"$TEST_TMP/lo-udp.out" 2>&1 &
"$NETPROBE" listen tcp $c 20 198.51.100.3 >"$TEST_TMP/ctl.out" 2>&1 &
sleep 0.5
timeout 20 "$CELLA" run --rm --network private -v "$NETPROBE:/np:ro" busybox sh -c \\
	"ip route; gw=\\\$(ip route | awk '/^default/ { print \\\$3 }'); echo x | nc -w 2 198.51.100.3 $c && echo control-ok
	echo x | nc -w 2 \\\$gw $p && echo GATEWAY-REACHED-LOOPBACK; /np send syn $p; /np send udp $p
	/np send syn $p 0.0.0.0; /np send udp $p 0.0.0.0"
echo "cella rc=\$?"
timeout 20 "$CELLA" run --rm --network private --cap-drop ALL -v "$NETPROBE:/np:ro" busybox /np send ifudp $p
echo "cella capless rc=\$?"
kill %1 %2 %3
wait
EOS
	run_cmd unshare -rn bash "$script"
	assert_contains "$OUT" "cella rc=0"
	assert_contains "$OUT" "cella capless rc=0"
	assert_contains "$OUT" "unicast-if sent" "the capability-less probe (IP_UNICAST_IF, IP_PKTINFO)"
	assert_contains "$OUT" control-ok "control: a host service on 198.51.100.3, from the container"
	assert_not_contains "$OUT" GATEWAY-REACHED-LOOPBACK "the host's 127.0.0.1:$p through the gateway"
	no_reply "$p"
	[ -z "$(heard lo)" ] || fail "the host's 127.0.0.1:$p (tcp) accepted a container's connection: $(heard lo)"
	[ -z "$(heard lo-udp)" ] || fail "the host's 127.0.0.1:$p (udp) received a container's datagram: $(heard lo-udp)"
}

test_rootless_gateway_is_not_host_loopback() {
	need_private
	command -v pasta >/dev/null || skip "pasta not installed"
	np_env
	build_netprobe
	export CELLA_ROOTLESS_NET=pasta
	rootless_netns_case
}

test_rootless_gateway_is_not_host_loopback_slirp4netns() {
	need_private
	require_cmd slirp4netns
	np_env
	build_netprobe
	export CELLA_ROOTLESS_NET=slirp4netns
	rootless_netns_case
}

# Two user-defined networks: a container of one reaches no container of the other (the
# control: a member of the same network does), but a port the other publishes, like any client.
test_networks_are_isolated_from_each_other() {
	real_root || skip "user-defined networks need root"
	need_private
	np_env
	local a=tia$$ b=tib$$ addr port host
	host=$(host_address)
	port=$(free_port)
	at_end "\"\$CELLA\" network rm $a $b"
	at_end "\"\$CELLA\" rm -f web$$"
	run_cella network create "$a"
	assert_ok
	run_cella network create "$b"
	assert_ok
	run_cella run -d --init --name web$$ --network "$b" -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	addr=$("$CELLA" exec "web$$" hostname -i)
	assert_match "$addr" '^10\.[0-9]+\.[0-9]+\.[0-9]+$' "the address on $b"
	run_cella run --rm --network "$b" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_contains "$OUT" hello-from-cella "control: a member of $b reaches $addr:80"
	run_cella run --rm --network "$a" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_not_contains "$OUT" hello-from-cella "a container of $a reached $addr:80 on $b"
	if [ -n "$host" ]; then
		run_cella run --rm --network "$a" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $host $port"
		assert_contains "$OUT" hello-from-cella "a container of $a reaches the port $b's container publishes ($host:$port)"
	fi
	run_cella rm -f "web$$"
	assert_ok
	run_cella network rm "$a" "$b"
	assert_ok
}

# -p 127.0.0.1:HOST:CTR: on 127.0.0.1 only, not on another address of the host (127.0.0.2, and
# as root the bridge's gateway); -p HOST:CTR (the control) on every address, 127.0.0.2 included.
publish_loopback_only_case() {
	local only all gw
	only=$(free_port) all=$(free_port)
	at_end "\"\$CELLA\" rm -f lo$$ any$$"
	run_cella run -d --init --name lo$$ -p "127.0.0.1:$only:80" busybox sh -c "$httpd_cmd"
	assert_ok
	run_cella run -d --init --name any$$ -p "$all:80" busybox sh -c "$httpd_cmd"
	assert_ok
	http_get "$only" || fail "no answer on 127.0.0.1:$only"
	assert_eq hello-from-cella "$OUT" "page through 127.0.0.1:$only"
	run_cella port "lo$$"
	assert_contains "$OUT" "80/tcp -> 127.0.0.1:$only"
	OUT=$(wget -qO- -T 3 "http://127.0.0.2:$all/" 2>&1)
	assert_eq hello-from-cella "$OUT" "control: -p $all:80 answers on 127.0.0.2"
	wget -qO- -T 2 "http://127.0.0.2:$only/" >/dev/null 2>&1 && fail "-p 127.0.0.1:$only:80 answers on 127.0.0.2"
	if real_root; then
		gw=10.209.0.1
		OUT=$(wget -qO- -T 3 "http://$gw:$all/" 2>&1)
		assert_eq hello-from-cella "$OUT" "control: -p $all:80 answers on the gateway $gw"
		wget -qO- -T 2 "http://$gw:$only/" >/dev/null 2>&1 && fail "-p 127.0.0.1:$only:80 answers on $gw"
	fi
	run_cella rm -f "lo$$" "any$$"
	assert_ok
}

test_publish_on_loopback_only() {
	need_private
	np_env
	publish_loopback_only_case
}

test_publish_on_loopback_only_slirp4netns() {
	real_root && skip "slirp4netns is the rootless network (root uses a bridge)"
	need_private
	require_cmd slirp4netns
	np_env
	export CELLA_ROOTLESS_NET=slirp4netns
	publish_loopback_only_case
}

# network create --subnet: the bridge gets the gateway (.1), members their addresses in it;
# overlapping or malformed subnets are refused.
test_network_create_subnet() {
	real_root || skip "user-defined networks need root"
	need_private
	np_env
	local net=tsn$$ k sub
	for k in $(seq 20); do
		sub=10.251.$((RANDOM % 250)).0
		ip -4 route show | grep -q "^$sub/" || break
	done
	at_end "\"\$CELLA\" network rm $net"
	run_cella network create --subnet "$sub/24" "$net"
	assert_ok
	run_cella network inspect "$net"
	assert_ok
	assert_match "$OUT" "\"subnet\": *\"$sub/24\"" "the subnet in network inspect"
	assert_match "$OUT" "\"gateway\": *\"${sub%.0}.1\"" "the gateway in network inspect"
	run_cella run --rm --network "$net" busybox sh -c 'ip -4 -o addr show eth0; ip route'
	assert_ok
	assert_match "$OUT" "inet ${sub%.0}\.[0-9]+/24" "the member's address in $sub/24"
	assert_match "$OUT" "^default via ${sub%.0}\.1 " "the member's default route"
	ip -4 -o addr show | grep -q "inet ${sub%.0}.1/24" || fail "no bridge holds ${sub%.0}.1/24"
	run_cella network create --subnet "${sub%.0}.128/25" "x$net"
	assert_cella_error 125 "overlaps the subnet of network \`$net\`"
	run_cella network create --subnet 10.252.0.1/24 "x$net"
	assert_cella_error 125 "host bits"
	run_cella network create --subnet 10.252.0.0 "x$net"
	assert_cella_error 125 "ADDRESS/PREFIX"
	run_cella network rm "$net"
	assert_ok
	ip -4 -o addr show | grep -q "inet ${sub%.0}.1/24" && fail "the bridge of $net left"
	return 0
}

# CELLA_FIREWALL=iptables: the same rules as chains. Two new networks (their bridges and chains
# made by these starts), a published port that answers, the loopback guard against crafted
# frames, the isolation of the networks, and every chain gone after rm and network rm.
test_firewall_iptables() {
	real_root || skip "root's firewall"
	need_private
	require_cmd iptables
	np_env
	build_netprobe
	export CELLA_FIREWALL=iptables
	local net=tip$$ other=tiq$$ port id br br2 u c host addr t ch
	host=$(host_address)
	port=$(free_port) u=$(free_port) c=$(free_port)
	at_end "\"\$CELLA\" network rm $net $other"
	at_end "\"\$CELLA\" rm -f ipt$$ iq$$"
	run_cella network create "$net"
	assert_ok
	run_cella network create "$other"
	assert_ok
	br=$("$CELLA" network inspect "$net" | sed -n 's/.*"bridge": *"\([^"]*\)".*/\1/p' | head -n1)
	br2=$("$CELLA" network inspect "$other" | sed -n 's/.*"bridge": *"\([^"]*\)".*/\1/p' | head -n1)
	[ -n "$br" ] && [ -n "$br2" ] || fail "no bridge in network inspect"
	run_cella run -d --init --name ipt$$ --network "$net" -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	id=$OUT
	http_get "$port" || fail "no answer on 127.0.0.1:$port (iptables)"
	assert_eq hello-from-cella "$OUT" "page through the published port (iptables)"
	iptables -w -t nat -S "CELLA-${id:0:12}" | grep -q -- "--to-destination" || fail "no DNAT chain CELLA-${id:0:12}"
	iptables -w -t raw -S "CELLA-R-$br" | grep -q -- "-d 127.0.0.0/8 .*-j DROP" || fail "no loopback guard in raw CELLA-R-$br"
	nft list tables 2>/dev/null | grep -q "cella_n_$net\$" && fail "nft table cella_n_$net made under CELLA_FIREWALL=iptables"
	# isolation: a member of the other network does not reach ipt's address (a member of its own does)
	addr=$("$CELLA" exec "ipt$$" hostname -i)
	run_cella run -d --init --name iq$$ --network "$other" busybox sleep 30
	assert_ok
	run_cella exec "iq$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_not_contains "$OUT" hello-from-cella "a container of $other reached $addr:80 on $net (iptables)"
	listen lo-udp udp "$u"
	listen ctl udp "$c" 0.0.0.0
	run_cella run --rm --network "$net" -v "$NETPROBE:/np:ro" busybox \
		sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80; /np send udp $u && /np send udp $c $host"
	stop_listeners
	assert_ok
	assert_contains "$OUT" hello-from-cella "control: a member of $net reaches $addr:80 (iptables)"
	assert_eq 2 "$(heard ctl | grep -c netprobe-attack)" "control: crafted datagrams to $host:$c heard"
	[ -z "$(heard lo-udp)" ] || fail "127.0.0.1:$u (udp) received a container's datagram (iptables): $(heard lo-udp)"
	run_cella rm -f "ipt$$" "iq$$"
	assert_ok
	iptables -w -t nat -S "CELLA-${id:0:12}" >/dev/null 2>&1 && fail "chain CELLA-${id:0:12} left"
	run_cella network rm "$net" "$other"
	assert_ok
	for t in raw:CELLA-R-$br nat:CELLA-N-$br filter:CELLA-F-$br raw:CELLA-R-$br2 filter:CELLA-F-$br2; do
		ch=${t#*:}
		iptables -w -t "${t%%:*}" -S "$ch" >/dev/null 2>&1 && fail "chain $ch (${t%%:*}) left"
	done
	return 0
}

# two_networks_setup: networks A=tma$$ and B=tmb$$, busybox httpd members wa$$ (on A) and wb$$
# (on B); $ab: wb's address.
two_networks_setup() {
	real_root || skip "user-defined networks need root"
	need_private
	np_env
	a=tma$$ b=tmb$$
	at_end "\"\$CELLA\" rm -f wa$$ wb$$ both$$ >/dev/null 2>&1; \"\$CELLA\" network rm $a $b >/dev/null 2>&1"
	run_cella network create "$a"
	assert_ok
	run_cella network create "$b"
	assert_ok
	run_cella run -d --init --name wa$$ --network "$a" busybox sh -c "$httpd_cmd"
	assert_ok
	id_wa=$OUT
	run_cella run -d --init --name wb$$ --network "$b" busybox sh -c "$httpd_cmd"
	assert_ok
	ab=$("$CELLA" exec "wb$$" hostname -i)
	assert_match "$ab" '^10\.[0-9.]+$' "wb's address"
}

# A container on two user-defined networks (eth0 on A, eth1 on B): it reaches a member of each by
# name over real TCP, the members of A still cannot reach B's, a per-network alias resolves on its
# network only, -p goes to its address on A; rm leaves no veth, lease, rule or hosts file.
test_container_on_two_networks() {
	local a b ab id_wa id_both port
	two_networks_setup
	port=$(free_port)
	run_cella run -d --init --name both$$ --network "$a" --network "$b:alias=bee$$" -p "$port:80" busybox sh -c "$httpd_cmd"
	assert_ok
	id_both=$OUT
	run_cella exec "both$$" sh -c "ip -o -4 addr; ip route"
	assert_match "$OUT" "eth0 +inet 10\.[0-9.]+/" "eth0 on $a"
	assert_match "$OUT" "eth1 +inet 10\.[0-9.]+/" "eth1 on $b"
	assert_match "$OUT" "^default via [0-9.]+ dev eth0" "the default route through the first network"
	run_cella exec "both$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 wa$$ 80 && printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 wb$$ 80"
	assert_ok "both reaches wa ($a) and wb ($b) by name"
	assert_eq 2 "$(printf '%s\n' "$OUT" | grep -c hello-from-cella)" "two answers"
	run_cella exec "both$$" nslookup "wb$$"
	assert_contains "$OUT" "Address: $ab" "wb (on $b) answered by the name server resolv.conf names first ($a's)"
	# isolation kept: wa (on A only) neither knows nor reaches wb
	run_cella exec "wa$$" sh -c "grep -c 'wb$$\|bee$$' /etc/hosts; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $ab 80"
	assert_eq 0 "$OUT" "wb or both's alias on $b in wa's /etc/hosts, or wa ($a) reached wb's $ab on $b"
	# the alias given on B: B's members resolve it
	run_cella exec "wb$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 bee$$ 80"
	assert_contains "$OUT" hello-from-cella "wb reaches both by its alias on $b"
	http_get "$port" || fail "no answer on the published port $port"
	assert_eq hello-from-cella "$OUT" "-p through the first network"
	run_cella inspect "both$$"
	OUT=$(printf '%s' "$OUT" | tr -d ' \n')
	assert_contains "$OUT" "\"$a\":{\"IPAddress\":\"10." "inspect: NetworkSettings.Networks.$a"
	assert_contains "$OUT" "\"$b\":{\"IPAddress\":\"$(printf '%s' "$ab" | sed 's/\.[0-9]*$//')." "inspect: Networks.$b, its address there"
	run_cella run --rm --network "$a" --network host busybox true
	assert_cella_error 125 "only user-defined networks"
	run_cella rm -f "wa$$" "wb$$" "both$$"
	assert_ok
	for i in "$id_wa" "$id_both"; do
		assert_net_clean "$i"
		ip link show "vc${i:0:12}1" >/dev/null 2>&1 && fail "veth vc${i:0:12}1 left"
		[ ! -e "/run/cella-net/hosts/$i" ] || fail "hosts file of ${i:0:12} left"
	done
	run_cella network rm "$a" "$b"
	assert_ok
}

# `network connect` / `disconnect` of a running container: an interface, an address and names on
# the other network, then none; `network rm` refuses while a container is connected.
test_network_connect_disconnect() {
	local a b ab id_wa
	two_networks_setup
	run_cella network connect --alias wee$$ "$b" "wa$$"
	assert_ok "network connect"
	run_cella exec "wa$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 wb$$ 80"
	assert_contains "$OUT" hello-from-cella "wa reaches wb by name once connected to $b"
	run_cella exec "wb$$" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 wee$$ 80"
	assert_contains "$OUT" hello-from-cella "wb reaches wa by the alias connect gave"
	run_cella network connect "$b" "wa$$"
	assert_cella_error 125 "on that network already"
	run_cella network disconnect "$a" "wa$$"
	assert_cella_error 125 "first network"
	run_cella network rm "$b"
	assert_cella_error 125 "used by 2 running"
	run_cella network disconnect "$b" "wa$$"
	assert_ok "network disconnect"
	run_cella exec "wa$$" sh -c "ip -o link | grep -c eth1; grep -c wb$$ /etc/hosts; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $ab 80"
	assert_eq "$(printf '0\n0')" "$OUT" "eth1, wb's hosts line, or a reply from wb after the disconnect"
	ip link show "vc${id_wa:0:12}1" >/dev/null 2>&1 && fail "the host side of wa's eth1 left"
	grep -qs "$id_wa" "/run/cella-net/$b.leases" && fail "wa's lease on $b left"
	run_cella exec "wb$$" grep -c "wee$$" /etc/hosts
	assert_eq 0 "$OUT" "wa's alias in wb's /etc/hosts after the disconnect"
	run_cella rm -f "wa$$" "wb$$"
	assert_ok
	assert_net_clean "$id_wa"
	run_cella network rm "$a" "$b"
	assert_ok
}
