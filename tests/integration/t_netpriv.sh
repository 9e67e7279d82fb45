# shellcheck shell=bash disable=SC2034
# Private networks (docs/network.md): an address of the container's own, published ports with
# real traffic over the host's loopback, and that nothing (rules, interfaces, helpers, leases) is
# left once a container stops or its monitor is killed. As root a bridge, veth pairs and nft
# DNAT; as the unprivileged user pasta (or slirp4netns). User-defined networks are root-only:
# those tests skip in the user pass.

np_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

field() { "$CELLA" inspect -f "$2" "$1" 2>/dev/null; }

# A TCP port nothing listens on, in a range no other test picks from.
free_port() {
	local p i hex
	for i in $(seq 100); do
		p=$((21000 + RANDOM % 20000))
		hex=$(printf ':%04X ' "$p")
		grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return 0; }
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
	run_cella run --network none busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $addr 80"
	assert_not_contains "$OUT" hello-from-cella "--network none reaches alpha"
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
