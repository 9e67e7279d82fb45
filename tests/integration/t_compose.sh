# shellcheck shell=bash disable=SC2034
# passes: root user
# passes-why: compose drives the engine commands (run -d, networks, volumes) as the root and cellatest passes do
# cella compose: a three-service stack (busybox httpd, a client waiting for it to be healthy, a
# one-shot job writing into a named volume) up over real HTTP on a published port, ps, logs,
# scaled up and down, up again with a changed file, down -v leaving nothing (containers, networks,
# volumes, mounts, cgroups, nft rules); config's interpolation and warnings; kill -9 of `compose
# up` halfway, then up again converges; replicas (deploy.replicas, scale, up --scale down and up,
# exec --index, depends_on on every replica) and the refusals of a fixed host port or
# container_name above one replica; the service keys' effects in the container; pull from a real
# registry; every command's --help usage line.
# test-timeout: 300

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

compose_env() {
	engine_env
	mkdir -p "$TEST_TMP/app"
	cd "$TEST_TMP/app" || fail "cd"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_stack PORT [CLIENT-MESSAGE]: the three-service stack as compose.yaml
write_stack() {
	cat >compose.yaml <<EOF
name: stack
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
      - "127.0.0.1:\${WEB_PORT}:80"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 500ms
      retries: 40
    stop_grace_period: 2s
  job:
    image: busybox
    command: sh -c 'echo job-wrote-this > /data/out.txt'
    volumes:
      - data:/data
  client:
    image: busybox
    init: true
    environment:
      MSG: ${2:-first}
    command: sh -c 'echo "client \$\$MSG sees \$\$(cat /data/out.txt)"; while :; do wget -q -O - http://web/; sleep 1; done'
    volumes:
      - data:/data:ro
    depends_on:
      web:
        condition: service_healthy
      job:
        condition: service_completed_successfully
    stop_grace_period: 2s
volumes:
  data:
EOF
	printf 'WEB_PORT=%s\n' "$1" >.env
}

ctr_id() {
	"$CELLA" inspect -f '{{.Id}}' "$1" 2>/dev/null
}

# wait_logs SERVICE TEXT: poll `compose logs SERVICE` (10 s) until it contains TEXT
wait_logs() {
	local i
	for i in $(seq 50); do
		run_cella compose logs "$1"
		case "$OUT" in *"$2"*) return 0 ;; esac
		sleep 0.2
	done
	fail "compose logs $1 never showed '$2': $OUT"
}

test_config_interpolates_and_warns() {
	compose_env
	cat >compose.yaml <<'EOF'
services:
  app:
    image: busybox
    command: ["echo", "${FROM_ENV}", "${FROM_DOTENV}", "${UNSET:-dflt}", "${EMPTY:-empty-dflt}", "${EMPTY-kept}", "$$HOME"]
    environment:
      - A=1
      - B
    frobnicate: yes
volumes: {}
EOF
	printf 'FROM_DOTENV=dotenv-value\nEMPTY=\n' >.env
	FROM_ENV=env-value B=from-host run_cella compose config
	assert_ok "compose config"
	assert_eq 'echo env-value dotenv-value dflt empty-dflt  $HOME' "$(printf '%s' "$OUT" | jq -r '.services.app.command | join(" ")')" "interpolated command"
	assert_eq "from-host" "$(printf '%s' "$OUT" | jq -r '.services.app.environment.B')" "a bare environment key takes the host's value"
	assert_eq "app_default" "$(printf '%s' "$OUT" | jq -r '.networks.default.name')" "default network name"
	assert_contains "$ERR" "unknown key \`frobnicate\`" "the warning for an unknown key"
	# --env-file replaces .env; --profile enables a profile's services
	printf 'FROM_DOTENV=other-file\n' >other.env
	run_cella compose --env-file other.env config
	assert_eq "other-file" "$(printf '%s' "$OUT" | jq -r '.services.app.command[2]')" "--env-file"
	printf 'services:\n  a:\n    image: busybox\n  dbg:\n    image: busybox\n    profiles: [debug]\n' >p.yaml
	run_cella compose -f p.yaml config
	assert_eq "a" "$(printf '%s' "$OUT" | jq -r '.services | keys | join(" ")')" "a profile's service is off by default"
	run_cella compose -f p.yaml --profile debug config
	assert_eq "a dbg" "$(printf '%s' "$OUT" | jq -r '.services | keys | join(" ")')" "--profile debug"
	# several -f files merged in order: mappings key by key, the rest replaced
	printf 'services:\n  a:\n    image: busybox\n    command: ["echo", "base"]\n    environment: {X: "1", Y: "1"}\n' >base.yaml
	printf 'services:\n  a:\n    command: ["echo", "over"]\n    environment: {Y: "2"}\n  b:\n    image: busybox\n' >over.yaml
	run_cella compose -f base.yaml -f over.yaml config
	assert_ok "config of two files"
	assert_eq "echo over|X=1 Y=2|a b" "$(printf '%s' "$OUT" | jq -r '(.services.a.command | join(" ")) + "|" + (.services.a.environment | to_entries | map("\(.key)=\(.value)") | join(" ")) + "|" + (.services | keys | join(" "))')" "-f base.yaml -f over.yaml merged"
	# -p wins over the directory's name
	run_cella compose -p Other.Name config
	assert_eq "othername" "$(printf '%s' "$OUT" | jq -r '.name')" "normalized project name"
	# ${VAR:?err} fails with the message
	printf 'services:\n  a:\n    image: "${NEEDED:?set NEEDED please}"\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "set NEEDED please"
	# known but unsupported keys are errors naming the key
	printf 'services:\n  a:\n    image: busybox\n    secrets: [s]\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "\`secrets\` is not supported yet"
	printf 'services:\n  a:\n    image: busybox\n    build: {context: ., ssh: [default]}\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "build.ssh is not supported"
	printf 'services:\n  a:\n    image: busybox\n    volumes: [nothere:/x]\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "volume \`nothere\`"
	printf 'services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "cycle"
	printf 'services:\n  a: [\n' >compose.yaml
	run_cella compose config
	assert_cella_error 125 "compose.yaml: line"
}

test_stack_up_http_ps_logs_recreate_down() {
	require_cmd python3 curl jq
	compose_env
	local port web1 web2 job1 cl1 cl2
	port=$(free_port)
	write_stack "$port" first
	leftovers_snapshot
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "compose up -d"
	# the client started only after web was healthy and the job had completed
	assert_contains "$ERR" "Container stack-web-1  Healthy"
	assert_contains "$ERR" "Container stack-job-1  Exited"
	run_cmd curl -sf "http://127.0.0.1:$port/"
	assert_eq "hello-from-web" "$OUT" "HTTP through the published port"
	run_cella compose ps --format json
	assert_ok "compose ps"
	assert_eq "3" "$(printf '%s' "$OUT" | jq length)" "containers in compose ps"
	assert_eq "running" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="web") | .State')" "web's state"
	assert_eq "healthy" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="web") | .Health')" "web's health"
	assert_eq "exited" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="job") | .State')" "job's state"
	assert_eq "0" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="job") | .ExitCode')" "job's exit code"
	assert_eq "127.0.0.1:$port->80/tcp" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="web") | .Publishers[0]')" "web's port"
	run_cella compose ps
	assert_match "$OUT" "^stack-web-1 +web +Up"
	run_cella inspect -f '{{.Config.Labels}}' stack-web-1
	assert_eq "stack" "$(printf '%s' "$OUT" | jq -r '."com.docker.compose.project"')" "the project label"
	assert_eq "web" "$(printf '%s' "$OUT" | jq -r '."com.docker.compose.service"')" "the service label"
	assert_match "$OUT" '"com.docker.compose.config-hash":"[0-9a-f]{16}"'
	run_cella volume ls --filter label=com.docker.compose.project=stack -q
	assert_eq "stack_data" "$OUT" "the volume's project label"
	# the client read the job's file from the volume and (root: on the project network) reached
	# web by its service name; rootless cella has no user-defined networks, and says so
	wait_logs client "client-1 | client first sees job-wrote-this"
	if is_real_root; then
		wait_logs client "client-1 | hello-from-web"
	else
		run_cella compose up -d
		assert_contains "$ERR" "rootless: no project network" "the rootless warning"
	fi
	# exec in a service's container
	run_cella compose exec -T web cat /www/index.html
	assert_eq "hello-from-web" "$OUT" "compose exec"
	# run a one-off container of a service: its network and volume
	run_cella compose run -T client cat /data/out.txt
	assert_eq "job-wrote-this" "$OUT" "compose run"
	web1=$(ctr_id stack-web-1)
	cl1=$(ctr_id stack-client-1)
	# up again, unchanged: nothing recreated
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "second compose up"
	assert_eq "$web1" "$(ctr_id stack-web-1)" "web kept by an unchanged up"
	assert_eq "$cl1" "$(ctr_id stack-client-1)" "client kept by an unchanged up"
	# scaled up to two clients (the second reads the volume too), then down to one: client-2 goes,
	# client-1 and the rest stay
	CMD_TIMEOUT=60 run_cella compose up -d --scale client=2
	assert_ok "up --scale client=2"
	wait_logs client "client-2 | client first sees job-wrote-this"
	assert_eq "$cl1" "$(ctr_id stack-client-1)" "client-1 kept when scaling up"
	CMD_TIMEOUT=60 run_cella compose up -d --scale client=1
	assert_ok "up --scale client=1"
	assert_contains "$ERR" "Container stack-client-2  Removed"
	run_cella compose ps --format json
	assert_eq "stack-client-1 stack-job-1 stack-web-1" "$(printf '%s' "$OUT" | jq -r '[.[].Name] | sort | join(" ")')" "containers after scaling down"
	run_cella ps -a -q --filter name=stack-client-2
	assert_eq "" "$OUT" "stack-client-2 removed by scaling down"
	assert_eq "$web1" "$(ctr_id stack-web-1)" "web kept when the client scaled down"
	assert_eq "$cl1" "$(ctr_id stack-client-1)" "client-1 kept when scaling down"
	run_cmd curl -sf "http://127.0.0.1:$port/"
	assert_eq "hello-from-web" "$OUT" "HTTP after scaling down"
	# a changed client: only the client is recreated
	write_stack "$port" second
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "compose up with a changed file"
	assert_contains "$ERR" "Container stack-client-1  Recreate"
	assert_eq "$web1" "$(ctr_id stack-web-1)" "web kept when only the client changed"
	assert_ne "$cl1" "$(ctr_id stack-client-1)" "client recreated"
	wait_logs client "client second sees job-wrote-this"
	# stop and start
	CMD_TIMEOUT=60 run_cella compose stop
	assert_ok "compose stop"
	run_cella compose ps --format json
	assert_eq "exited exited exited" "$(printf '%s' "$OUT" | jq -r '[.[].State] | join(" ")')" "states after stop"
	CMD_TIMEOUT=60 run_cella compose start
	assert_ok "compose start"
	run_cmd curl -sf "http://127.0.0.1:$port/"
	assert_eq "hello-from-web" "$OUT" "HTTP after compose start"
	# down -v: nothing left
	CMD_TIMEOUT=60 run_cella compose down -v
	assert_ok "compose down -v"
	run_cella ps -a --format json
	assert_eq "0" "$(printf '%s' "$OUT" | jq length)" "containers after down"
	run_cella network ls --format json
	assert_eq "" "$(printf '%s' "$OUT" | jq -r '.[].name | select(startswith("stack"))')" "networks after down"
	run_cella volume ls --format json
	assert_eq "0" "$(printf '%s' "$OUT" | jq length)" "volumes after down -v"
	run_cmd curl -s -m 2 "http://127.0.0.1:$port/"
	assert_rc_ne 0 "HTTP after down"
	# nothing left on the host either: monitors, workloads, mounts, cgroups, veths, nft rules, leases
	assert_engine_empty
	assert_no_leftovers
}

# answers NSLOOKUP-OUTPUT: the addresses busybox nslookup printed for the name (after `Name:`)
answers() {
	printf '%s\n' "$1" | sed -n '/^Name:/,$p' | sed -n 's/^Address:[[:space:]]*\([0-9.]*\).*/\1/p' | sort -u
}

# ids_of NAME...: the containers' ids, one line
ids_of() {
	local n
	for n in "$@"; do printf '%s ' "$(ctr_id "$n")"; done
}

# Replicas: deploy.replicas 3 gives PROJECT-SERVICE-1..3 (numbered, labelled); a dependent waits
# for every replica of a one-shot job; up --scale removes the highest numbers and adds the missing
# ones, keeping the rest; an unchanged up keeps them all; exec --index picks one; down removes all.
test_scale_replicas() {
	require_cmd jq
	compose_env
	cat >compose.yaml <<'EOF'
name: scale
services:
  web:
    image: busybox
    init: true
    command: sh -c 'echo web-started; exec httpd -f -p 80 -h /'
    ports: ["80"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
  job:
    image: busybox
    command: "true"
    scale: 2
  after:
    image: busybox
    init: true
    command: sleep 300
    stop_grace_period: 1s
    depends_on:
      job:
        condition: service_completed_successfully
EOF
	leftovers_snapshot
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "compose up -d with replicas"
	# the dependent waited for both replicas of the job
	assert_contains "$ERR" "Container scale-job-1  Exited"
	assert_contains "$ERR" "Container scale-job-2  Exited"
	run_cella compose ps --format json web
	assert_ok "compose ps"
	assert_eq "scale-web-1 scale-web-2 scale-web-3" "$(printf '%s' "$OUT" | jq -r '[.[].Name] | join(" ")')" "web's replicas"
	assert_eq "running running running" "$(printf '%s' "$OUT" | jq -r '[.[].State] | join(" ")')" "replicas' states"
	run_cella inspect -f '{{.Config.Labels}}' scale-web-3
	assert_eq "3" "$(printf '%s' "$OUT" | jq -r '."com.docker.compose.container-number"')" "the container-number label"
	wait_logs web "web-3 | web-started"
	assert_contains "$OUT" "web-1 | web-started" "logs of replica 1"
	# exec --index: replica 2 and no other
	run_cella compose exec -T --index 2 web touch /tmp/mark
	assert_ok "exec --index 2"
	run_cella exec scale-web-2 test -e /tmp/mark
	assert_ok "exec --index 2 ran in scale-web-2"
	run_cella exec scale-web-1 test -e /tmp/mark
	assert_rc_ne 0 "not in scale-web-1"
	# exec -d: in the background (cella exec -d), back before the command is done: it waits for
	# /tmp/go (at most 30 s), which only comes after exec -d returned, so no timing is assumed
	run_cella compose exec -d --index 3 web sh -c \
		'i=0; while [ ! -e /tmp/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; touch /tmp/bgmark'
	assert_ok "compose exec -d"
	run_cella exec scale-web-3 test -e /tmp/bgmark
	assert_rc_ne 0 "exec -d returned before its command was done"
	run_cella exec scale-web-3 touch /tmp/go
	assert_ok
	for _ in $(seq 50); do "$CELLA" exec scale-web-3 test -e /tmp/bgmark && break; sleep 0.1; done
	run_cella exec scale-web-3 test -e /tmp/bgmark
	assert_ok "the background command ran in scale-web-3"
	if is_real_root; then
		# on the project network a replica's container name is its address, and the service name
		# one of the replicas' (the name server answers with the first live one)
		local ip2 ips a
		run_cella exec scale-web-2 ip -4 addr show eth0
		ip2=$(printf '%s\n' "$OUT" | sed -n 's|.*inet \([0-9.]*\)/.*|\1|p')
		assert_match "$ip2" '^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$' "scale-web-2's address"
		run_cella compose exec -T after nslookup scale-web-2
		assert_eq "$ip2" "$(answers "$OUT")" "scale-web-2 resolves to replica 2"
		ips=$(for i in 1 2 3; do "$CELLA" exec "scale-web-$i" ip -4 addr show eth0 | sed -n 's|.*inet \([0-9.]*\)/.*|\1|p'; done)
		run_cella compose exec -T after nslookup web
		assert_ok "nslookup web"
		a=$(answers "$OUT")
		assert_match "$a" '^[0-9.]+$' "web resolves to one address"
		printf '%s\n' "$ips" | grep -qxF "$a" || fail "web resolves to $a, none of the replicas ($ips)"
	fi
	local before w1
	before=$(ids_of scale-web-1 scale-web-2 scale-web-3)
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "up again, unchanged"
	assert_eq "$before" "$(ids_of scale-web-1 scale-web-2 scale-web-3)" "an unchanged up keeps every replica"
	# scale down: 3 and 2 go, 1 stays
	w1=$(ctr_id scale-web-1)
	CMD_TIMEOUT=60 run_cella compose up -d --scale web=1
	assert_ok "up --scale web=1"
	assert_contains "$ERR" "Container scale-web-3  Removed"
	assert_contains "$ERR" "Container scale-web-2  Removed"
	run_cella compose ps --format json web
	assert_eq "scale-web-1" "$(printf '%s' "$OUT" | jq -r '[.[].Name] | join(" ")')" "web after --scale web=1"
	run_cella ps -a --format json
	assert_eq "" "$(printf '%s' "$OUT" | jq -r '.[].Names | select(test("^scale-web-[23]$"))')" "containers 2 and 3 gone"
	assert_eq "$w1" "$(ctr_id scale-web-1)" "scale-web-1 kept"
	# scale up: 2 comes back, 1 kept
	CMD_TIMEOUT=60 run_cella compose up -d --scale web=2
	assert_ok "up --scale web=2"
	run_cella compose ps --format json web
	assert_eq "scale-web-1 scale-web-2" "$(printf '%s' "$OUT" | jq -r '[.[].Name] | join(" ")')" "web after --scale web=2"
	assert_eq "$w1" "$(ctr_id scale-web-1)" "scale-web-1 kept when scaling up"
	# stop and start act on every replica
	CMD_TIMEOUT=60 run_cella compose stop web
	assert_ok "compose stop web"
	run_cella compose ps --format json web
	assert_eq "exited exited" "$(printf '%s' "$OUT" | jq -r '[.[].State] | join(" ")')" "replicas after stop"
	CMD_TIMEOUT=60 run_cella compose start web
	assert_ok "compose start web"
	run_cella compose ps --format json web
	assert_eq "running running" "$(printf '%s' "$OUT" | jq -r '[.[].State] | join(" ")')" "replicas after start"
	CMD_TIMEOUT=60 run_cella compose down -t 1
	assert_ok "compose down"
	assert_contains "$ERR" "Container scale-web-2  Removed"
	assert_engine_empty
	assert_no_leftovers
}

# More than one replica of a service that publishes a fixed host port, or that has container_name:
# an error naming it, before anything is created.
test_scale_fixed_port_and_container_name_refused() {
	require_cmd jq
	compose_env
	local port
	port=$(free_port)
	cat >compose.yaml <<EOF
services:
  web:
    image: busybox
    command: sleep 300
    ports: ["127.0.0.1:$port:80"]
  solo:
    image: busybox
    command: sleep 300
    container_name: only-one
EOF
	run_cella compose -p fixed config -q
	assert_ok "the file is valid at one replica"
	run_cella compose -p fixed up -d --scale web=2
	assert_cella_error 125 "service \`web\` publishes fixed host port $port"
	run_cella compose -p fixed up -d --scale solo=3
	assert_cella_error 125 "service \`solo\` has container_name \`only-one\`"
	run_cella compose -p fixed up -d --scale web=x
	assert_cella_error 125 "--scale \`web=x\`"
	run_cella ps -a -q
	assert_eq "" "$OUT" "nothing created"
	run_cella network ls --format json
	assert_eq "" "$(printf '%s' "$OUT" | jq -r '.[].name | select(startswith("fixed"))')" "no network created"
}

test_killed_up_then_up_converges() {
	require_cmd python3 curl jq
	compose_env
	local port pid i
	port=$(free_port)
	write_stack "$port" first
	# kill -9 while it waits for web to be healthy (after web, before the client)
	"$CELLA" compose up -d >"$TEST_TMP/up.log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		grep -q "stack-web-1  Waiting\|stack-web-1  Healthy" "$TEST_TMP/up.log" && break
		sleep 0.1
	done
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "compose up after a killed one"
	run_cella compose ps --format json
	assert_eq "3" "$(printf '%s' "$OUT" | jq length)" "containers after the second up"
	assert_eq "running" "$(printf '%s' "$OUT" | jq -r '.[] | select(.Service=="client") | .State')" "client's state"
	run_cmd curl -sf "http://127.0.0.1:$port/"
	assert_eq "hello-from-web" "$OUT" "HTTP after converging"
	run_cella ps -a -q
	assert_eq "3" "$(printf '%s\n' "$OUT" | grep -c .)" "no stray containers"
	CMD_TIMEOUT=60 run_cella compose down -v
	assert_ok "compose down -v"
	run_cella ps -a -q
	assert_eq "" "$OUT" "containers after down"
	run_cella volume ls -q
	assert_eq "" "$OUT" "volumes after down"
}

test_foreground_up_follows_logs_and_ctrl_c_stops() {
	require_cmd jq
	compose_env
	local pid i
	cat >compose.yaml <<'EOF'
services:
  ticker:
    image: busybox
    init: true
    command: sh -c 'while :; do echo tick; sleep 0.3; done'
EOF
	"$CELLA" compose -p fg up >"$TEST_TMP/fg.log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		grep -q "ticker-1 | tick" "$TEST_TMP/fg.log" && break
		sleep 0.1
	done
	assert_contains "$(cat "$TEST_TMP/fg.log")" "ticker-1 | tick" "foreground up's output"
	kill -INT "$pid"
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "compose up still running after SIGINT"
	run_cella compose -p fg ps --format json
	assert_eq "exited" "$(printf '%s' "$OUT" | jq -r '.[0].State')" "state after Ctrl-C"
	run_cella compose -p fg down
	assert_ok "compose down"
	run_cella ps -a -q
	assert_eq "" "$OUT" "containers after down"
}

test_command_options() {
	require_cmd jq script
	compose_env
	local a1
	cat >compose.yaml <<'EOF2'
services:
  a:
    image: busybox
    init: true
    command: sh -c 'echo line-one; echo line-two; exec sleep 300'
  b:
    image: busybox
    init: true
    command: sleep 300
    depends_on: [a]
EOF2
	run_cella compose config --format json
	assert_eq "a b" "$(printf '%s' "$OUT" | jq -r '.services | keys | join(" ")')" "config --format json"
	run_cella compose config -q
	assert_ok "config -q"
	assert_eq "" "$OUT" "config -q prints nothing"
	# --no-deps: b alone
	CMD_TIMEOUT=60 run_cella compose up -d --no-deps b
	assert_ok "up --no-deps b"
	run_cella compose ps -q
	assert_eq "app-b-1" "$OUT" "ps -q after up --no-deps b"
	CMD_TIMEOUT=60 run_cella compose up -d
	run_cella compose ps -q
	assert_eq "app-a-1 app-b-1" "$(printf '%s' "$OUT" | tr '\n' ' ' | sed 's/ $//')" "ps -q after up"
	a1=$("$CELLA" inspect -f '{{.Id}}' app-a-1)
	CMD_TIMEOUT=60 run_cella compose up -d --force-recreate a
	assert_ok "up --force-recreate"
	assert_ne "$a1" "$("$CELLA" inspect -f '{{.Id}}' app-a-1)" "a recreated by --force-recreate"
	# logs --tail, --timestamps, -f (ended by the container's stop)
	run_cella compose logs --tail 1 a
	assert_eq "a-1 | line-two" "$OUT" "logs --tail 1"
	# on a terminal the prefix is coloured (here: not, above)
	run_cmd script -qec "$CELLA compose logs --tail 1 a" /dev/null
	assert_contains "$OUT" $'\033[36ma-1 |\033[0m line-two' "logs on a terminal: the coloured prefix"
	run_cella compose logs --timestamps a
	assert_match "$OUT" "^a-1 \| [0-9]{4}-[0-9]{2}-[0-9]{2}T.* line-one$"
	(sleep 1 && "$CELLA" stop -t 1 app-a-1 >/dev/null 2>&1) &
	CMD_TIMEOUT=30 run_cella compose logs -f a
	wait
	assert_contains "$OUT" "a-1 | line-one" "logs -f"
	# exec -e -u -w, and with -d in the background (its output in a file of the container)
	CMD_TIMEOUT=60 run_cella compose restart -t 1
	assert_ok "restart -t"
	run_cella compose exec -e FOO=bar -u 1:2 -w /tmp a sh -c 'echo $FOO $(id -u):$(id -g) $PWD'
	assert_eq "bar 1:2 /tmp" "$OUT" "exec -e -u -w"
	run_cella compose exec -d -e FOO=bg -w /tmp a sh -c 'echo $FOO $PWD >/tmp/bg.out'
	assert_ok "exec -d"
	assert_eq "" "$OUT" "exec -d prints nothing"
	for _ in $(seq 50); do "$CELLA" exec app-a-1 test -s /tmp/bg.out && break; sleep 0.1; done
	run_cella exec app-a-1 cat /tmp/bg.out
	assert_eq "bg /tmp" "$OUT" "exec -d -e -w: the background command's environment and directory"
	# run --rm --name -e
	run_cella compose run --rm --name one-off -e X=y b sh -c 'echo $X $(hostname)'
	assert_eq "y b" "$OUT" "run --name -e"
	run_cella ps -a -q --filter name=one-off
	assert_eq "" "$OUT" "the run container is removed"
	CMD_TIMEOUT=60 run_cella compose stop -t 1 b
	assert_ok "stop -t"
	# an orphan: b left the file
	printf 'services:\n  a:\n    image: busybox\n    init: true\n    command: sleep 300\n' >compose.yaml
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_contains "$ERR" "orphan container app-b-1"
	CMD_TIMEOUT=60 run_cella compose up -d --remove-orphans
	assert_contains "$ERR" "Container app-b-1  Removed"
	CMD_TIMEOUT=60 run_cella compose down --remove-orphans -t 1
	assert_ok "down --remove-orphans -t 1"
	run_cella ps -a -q
	assert_eq "" "$OUT" "containers after down"
}

test_build_services() {
	require_cmd jq
	compose_env
	local id1 c1
	mkdir -p web ctx2
	printf 'FROM busybox\nARG GREETING=none\nRUN echo "$GREETING" >/greeting\nCMD ["cat", "/greeting"]\n' >web/Containerfile
	printf 'FROM busybox AS base\nRUN echo base >/stage\nFROM base AS final\nRUN echo final >/stage\n' >ctx2/Other.df
	printf 'FROM busybox\nRUN echo v1 >/v\n' >ctx2/Containerfile
	cat >compose.yaml <<'EOF2'
services:
  web:
    build: ./web
    command: sh -c 'cat /greeting; exec sleep 300'
    init: true
  tool:
    image: localhost/tool:1
    build:
      context: ctx2
      dockerfile: Other.df
      target: base
      args: {UNUSED: x}
      labels: {org.example.k: v}
    command: cat /stage
EOF2
	# up builds the missing images: web as PROJECT-SERVICE, tool as its image:
	CMD_TIMEOUT=120 run_cella compose up -d
	assert_ok "compose up builds missing images"
	assert_contains "$ERR" "Image app-web  Built"
	assert_contains "$ERR" "Image localhost/tool:1  Built"
	run_cella image inspect app-web
	assert_ok "the image app-web exists"
	assert_eq "app" "$(printf '%s' "$OUT" | jq -r '.[0].Config.Labels."com.docker.compose.project"')" "the built image's project label"
	run_cella image inspect localhost/tool:1
	assert_eq "v" "$(printf '%s' "$OUT" | jq -r '.[0].Config.Labels."org.example.k"')" "build.labels on the image"
	run_cella wait app-tool-1
	run_cella logs app-tool-1
	assert_eq "base" "$OUT" "build.target: the base stage, from build.dockerfile"
	wait_logs web "web-1 | none"
	run_cella inspect -f '{{.Image}}' app-web-1
	assert_contains "$OUT" "app-web" "the service runs the built image"
	# up again: present images are not built again, containers kept
	c1=$(ctr_id app-web-1)
	id1=$("$CELLA" image inspect app-web | jq -r '.[0].Id')
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "second up"
	assert_not_contains "$ERR" "Building" "no build when the images are present"
	assert_eq "$c1" "$(ctr_id app-web-1)" "web kept"
	# build.args changed, `compose build web`: a new image; up (no --build) recreates web on it
	sed -i 's|build: ./web|build: {context: ./web, args: {GREETING: hello-built}}|' compose.yaml
	CMD_TIMEOUT=120 run_cella compose build web
	assert_ok "compose build web"
	assert_contains "$ERR" "Image app-web  Built"
	assert_not_contains "$ERR" "localhost/tool" "compose build SERVICE builds only that service"
	assert_ne "$id1" "$("$CELLA" image inspect app-web | jq -r '.[0].Id')" "a new image"
	CMD_TIMEOUT=60 run_cella compose up -d web
	assert_contains "$ERR" "Container app-web-1  Recreate"
	wait_logs web "web-1 | hello-built"
	# up --build: every built image again (the cache makes it quick), the containers kept when
	# the image is the same
	c1=$(ctr_id app-web-1)
	CMD_TIMEOUT=120 run_cella compose up -d --build web
	assert_ok "up --build"
	assert_contains "$ERR" "Image app-web  Built"
	assert_eq "$c1" "$(ctr_id app-web-1)" "an unchanged rebuild keeps the container"
	# compose build again: every step from the cache, the same image; --no-cache -q: the steps run
	# again (a new image: the new layer's file times differ) and build's own lines are not shown
	id1=$("$CELLA" image inspect app-web | jq -r '.[0].Id')
	CMD_TIMEOUT=120 run_cella compose build web
	assert_ok "compose build web, cached"
	assert_contains "$OUT$ERR" "Using cache" "a rebuild takes its steps from the cache"
	assert_eq "$id1" "$("$CELLA" image inspect app-web | jq -r '.[0].Id')" "a cached rebuild is the same image"
	# (times are kept in whole seconds: a rebuild within the same second as the first build is
	# the same image, byte for byte)
	sleep 1.1
	CMD_TIMEOUT=120 run_cella compose build --no-cache -q web
	assert_ok "compose build --no-cache -q web"
	assert_not_contains "$OUT$ERR" "Using cache" "--no-cache: no step from the cache"
	assert_not_contains "$OUT$ERR" "STEP" "-q: build's step lines are not shown"
	assert_contains "$ERR" "Image app-web  Built"
	assert_ne "$id1" "$("$CELLA" image inspect app-web | jq -r '.[0].Id')" "--no-cache built a new image"
	# pull skips services that are built; a failing build is an error naming the service
	run_cella compose pull web
	assert_ok "pull skips built services"
	printf 'FROM busybox\nRUN exit 3\n' >web/Containerfile
	CMD_TIMEOUT=60 run_cella compose build
	assert_rc_ne 0 "a failing build"
	assert_contains "$ERR" "service \`web\`: could not build image \`app-web\`"
	CMD_TIMEOUT=60 run_cella compose down -t 1
	assert_ok "down"
	run_cella ps -a -q
	assert_eq "" "$OUT" "containers after down"
}

test_network_aliases() {
	compose_env
	if ! is_real_root; then
		# rootless: no user-defined networks, so no aliases; cella run says so
		run_cella run --rm --network-alias x busybox true
		assert_rc_ne 0 "--network-alias without a user-defined network"
		assert_contains "$ERR" "--network-alias x: only on a user-defined network"
		return 0
	fi
	cat >compose.yaml <<'EOF2'
services:
  db:
    image: busybox
    init: true
    command: sleep 300
    networks:
      back:
        aliases: [database, db.internal]
  probe:
    image: busybox
    command: sleep 300
    init: true
    networks: [back]
networks:
  back:
EOF2
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "up with network aliases"
	local ip
	run_cella compose exec -T db ip -4 addr show eth0
	ip=$(printf '%s\n' "$OUT" | sed -n 's|.*inet \([0-9.]*\)/.*|\1|p')
	assert_match "$ip" '^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$' "db's address"
	for name in database db.internal db; do
		# shellcheck disable=SC2016
		run_cella compose exec -T probe awk -v n="$name" '{ for (i = 2; i <= NF; i++) if ($i == n) print $1 }' /etc/hosts
		assert_eq "$ip" "$OUT" "$name is db's address in probe's /etc/hosts"
		run_cella compose exec -T probe nslookup "$name"
		assert_contains "$OUT" "$ip" "$name answered by the network's name server"
	done
	# not on the network: no such name
	run_cella run --rm --network private busybox nslookup database
	assert_rc_ne 0 "an alias does not resolve off its network"
	CMD_TIMEOUT=60 run_cella compose down -t 1
	assert_ok "down"
}

# A service on two networks: proxy (on front and back) reaches web (front) and db (back) by name
# and by its per-network alias over real TCP; web (front only) cannot reach db.
test_service_on_two_networks() {
	is_real_root || skip "user-defined networks (a project's networks) need root"
	compose_env
	cat >compose.yaml <<'EOF2'
services:
  web:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /w && echo from-web > /w/index.html && exec httpd -f -p 80 -h /w'
    networks: [front]
  db:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /w && echo from-db > /w/index.html && exec httpd -f -p 80 -h /w'
    networks:
      back:
        aliases: [database]
  proxy:
    image: busybox
    init: true
    command: sleep 300
    networks:
      front:
      back:
        aliases: [gateway-svc]
networks:
  front:
  back:
EOF2
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "up with a service on two networks"
	run_cella compose exec -T proxy sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 database 80"
	assert_contains "$OUT" from-web "proxy reaches web on front"
	assert_contains "$OUT" from-db "proxy reaches db (alias database) on back"
	local dbip
	dbip=$("$CELLA" compose exec -T db hostname -i)
	assert_match "$dbip" '^10[.][0-9.]+$' "db's address"
	run_cella compose exec -T web sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $dbip 80"
	assert_not_contains "$OUT" from-db "web (front only) reached db on back"
	run_cella compose exec -T db grep -c gateway-svc /etc/hosts
	assert_eq 1 "$OUT" "proxy's alias on back in db's /etc/hosts"
	run_cella compose exec -T web grep -c gateway-svc /etc/hosts
	assert_eq 0 "$OUT" "proxy's alias on back in web's /etc/hosts"
	local proxy
	proxy=$("$CELLA" inspect -f '{{.Id}}' app-proxy-1)
	assert_match "$proxy" '^[0-9a-f]{64}$' "proxy's id"
	ip link show "vc${proxy:0:12}1" >/dev/null 2>&1 || fail "proxy's second veth (vc${proxy:0:12}1) missing while up"
	CMD_TIMEOUT=60 run_cella compose down -t 1
	assert_ok "down"
	ip link show "vc${proxy:0:12}1" >/dev/null 2>&1 && fail "proxy's second veth left after down"
	grep -qs "$proxy" /run/cella-net/*.leases && fail "a lease of proxy left after down"
	[ ! -e "/run/cella-net/hosts/$proxy" ] || fail "proxy's hosts file left after down"
	return 0
}

# The same compose file under `podman-compose` (Debian's 1.0.3; podman 4.3 with its own runtime,
# runc where crun refuses the hybrid cgroup layout) and under cella compose: what a user observes
# is the same: the HTTP body on the published port, the one-shot job's exit code, the named
# volume's content, the client's output (it read the volume after web started), the services ps
# lists. podman runs in a store, network config dir and containers.conf of the test's own. Root
# only: rootful podman's CNI bridge is what podman-compose's project network needs; Debian ships
# no dnsname plugin, so the stack does not rely on names between services (the other tests
# check those under cella).
test_same_as_podman_compose() {
	require_real_root
	require_cmd podman podman-compose jq curl python3 busybox
	compose_env
	local S=$TEST_TMP/podman port1 port2 rt="" pc_rc=0 c_rc=0
	mkdir -p "$S/bb/bin" "$S/cni" "$S/tmp"
	cp "$(command -v busybox)" "$S/bb/bin/busybox"
	for a in sh cat echo sleep httpd mkdir test; do ln -s busybox "$S/bb/bin/$a"; done
	tar -C "$S/bb" -cf "$S/bb.tar" .
	# the same image in both stores: the host's busybox
	run_cella image import "$S/bb.tar" localhost/cmp-busybox:1
	assert_ok "cella image import"
	[ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null && rt="--runtime runc"
	# this host's root lacks CAP_SYS_RESOURCE: podman's default rlimits (above the hard limits)
	# cannot be set, so containers.conf asks for lower ones
	cat >"$S/containers.conf" <<-EOF2
	[containers]
	default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
	[engine]
	cgroup_manager = "cgroupfs"
	events_logger = "file"
	events_logfile_path = "$S/events.log"
	tmp_dir = "$S/tmp"
	volume_path = "$S/volumes"
	[network]
	network_config_dir = "$S/cni"
	EOF2
	cat >"$S/podman" <<-EOF2
	#!/bin/sh
	exec podman --root "$S/graph" --runroot "$S/run" --storage-driver vfs --cgroup-manager cgroupfs \
		--events-backend file --network-config-dir "$S/cni" $rt "\$@"
	EOF2
	chmod +x "$S/podman"
	export CONTAINERS_CONF=$S/containers.conf
	# shellcheck disable=SC2064
	trap "cd '$TEST_TMP/app' 2>/dev/null && timeout 120 podman-compose --podman-path '$S/podman' -p cmp down -v >/dev/null 2>&1; '$S/podman' rm -af -t 0 >/dev/null 2>&1; '$S/podman' volume prune -f >/dev/null 2>&1; '$S/podman' network prune -f >/dev/null 2>&1; '$S/podman' rmi -af >/dev/null 2>&1" EXIT
	CMD_TIMEOUT=120 run_cmd "$S/podman" import "$S/bb.tar" localhost/cmp-busybox:1
	assert_ok "podman import"
	cat >compose.yaml <<'EOF2'
services:
  web:
    image: localhost/cmp-busybox:1
    command: ["sh", "-c", "mkdir -p /www && echo served-by-web >/www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
      - "127.0.0.1:${WEB_PORT}:80"
  job:
    image: localhost/cmp-busybox:1
    command: ["sh", "-c", "echo job-output >/data/out.txt; exit 3"]
    volumes:
      - data:/data
  client:
    image: localhost/cmp-busybox:1
    command: ["sh", "-c", "while ! test -s /data/out.txt; do sleep 0.2; done; echo client-read $$(cat /data/out.txt); exec sleep 300"]
    volumes:
      - data:/data:ro
    depends_on:
      web:
        condition: service_started
volumes:
  data:
EOF2
	port1=$(free_port)
	port2=$(free_port)
	# podman-compose
	CMD_TIMEOUT=240 run_cmd env WEB_PORT="$port1" podman-compose --podman-path "$S/podman" -p cmp up -d
	pc_rc=$RC
	assert_eq 0 "$pc_rc" "podman-compose up -d (stderr: $ERR)"
	local p_http p_job p_vol p_cl p_svcs
	p_http=$(curl -s --retry 20 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$port1/")
	"$S/podman" wait cmp_job_1 >/dev/null 2>&1
	p_job=$("$S/podman" inspect -f '{{.State.ExitCode}}' cmp_job_1)
	p_vol=$("$S/podman" run --rm -v cmp_data:/d localhost/cmp-busybox:1 cat /d/out.txt)
	for _ in $(seq 50); do
		p_cl=$("$S/podman" logs cmp_client_1 2>&1)
		[ -n "$p_cl" ] && break
		sleep 0.2
	done
	p_svcs=$("$S/podman" ps -a --filter label=io.podman.compose.project=cmp --format '{{index .Labels "com.docker.compose.service"}}' | sort | tr '\n' ' ')
	CMD_TIMEOUT=240 run_cmd env WEB_PORT="$port1" podman-compose --podman-path "$S/podman" -p cmp down -v
	# cella compose, the same file
	CMD_TIMEOUT=120 run_cmd env WEB_PORT="$port2" "$CELLA" compose -p cmp up -d
	assert_ok "cella compose up -d"
	local c_http c_job c_vol c_cl c_svcs
	c_http=$(curl -s --retry 20 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$port2/")
	c_job=$("$CELLA" wait cmp-job-1)
	c_vol=$("$CELLA" run --rm -v cmp_data:/d localhost/cmp-busybox:1 cat /d/out.txt)
	for _ in $(seq 50); do
		c_cl=$("$CELLA" logs cmp-client-1 2>&1)
		[ -n "$c_cl" ] && break
		sleep 0.2
	done
	c_svcs=$(WEB_PORT=$port2 "$CELLA" compose -p cmp ps --format json | jq -r '.[].Service' | sort | tr '\n' ' ')
	CMD_TIMEOUT=60 run_cmd env WEB_PORT="$port2" "$CELLA" compose -p cmp down -v -t 1
	assert_ok "cella compose down -v"
	# what podman-compose gave is what was expected, and cella gives the same
	assert_eq "served-by-web" "$p_http" "podman-compose: HTTP body"
	assert_eq "3" "$p_job" "podman-compose: the job's exit code"
	assert_eq "job-output" "$p_vol" "podman-compose: the volume's content"
	assert_eq "client-read job-output" "$p_cl" "podman-compose: the client's output"
	assert_eq "client job web " "$p_svcs" "podman-compose: the services in ps"
	assert_eq "$p_http" "$c_http" "HTTP body: cella as podman-compose"
	assert_eq "$p_job" "$c_job" "job's exit code: cella as podman-compose"
	assert_eq "$p_vol" "$c_vol" "volume content: cella as podman-compose"
	assert_eq "$p_cl" "$c_cl" "client's output: cella as podman-compose"
	assert_eq "$p_svcs" "$c_svcs" "services in ps: cella as podman-compose"
}

# A service on the vm backend (QEMU; TCG here) on the project network reaches an ns service by its
# service name: the guest's resolv.conf names the network's name server (src/net/tap.c). The
# guest resolves with busybox's nslookup and connects with nc: the image's busybox wget segfaulted
# in the guest here (under TCG; not looked into).
test_vm_service_reaches_ns_service_by_name() {
	require_real_root # the vm's tap on the project network's bridge (rootless: QEMU's user-mode network, no project network)
	command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
	[ -x "$(dirname "$CELLA")/cella-vminit" ] || fail "no cella-vminit next to $CELLA (make builds it)"
	compose_env
	cat >compose.yaml <<'EOF2'
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-ns-web >/www/index.html && exec httpd -f -p 80 -h /www"]
  guest:
    image: busybox
    x-cella:
      backend: vm
    command:
      - sh
      - -c
      - |
        cat /etc/resolv.conf
        for i in $$(seq 30); do
          a=$$(nslookup web 2>/dev/null | awk '/^Address/ && !/:53$$/ { print $$2 }' | tail -n 1)
          echo "web is $$a"
          [ -n "$$a" ] && printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 "$$a" 80 && exit 0
          sleep 1
        done
        exit 1
    depends_on: [web]
EOF2
	CMD_TIMEOUT=120 run_cella compose up -d
	assert_ok "up with a vm service"
	CMD_TIMEOUT=150 run_cella wait app-guest-1
	local code=$OUT
	run_cella logs app-guest-1
	assert_eq "0" "$code" "the vm's wget of http://web/ (output: $OUT)"
	assert_contains "$OUT" "hello-ns-web" "the vm reached the ns service by its name"
	assert_match "$OUT" "nameserver 10\.[0-9.]+\.1" "the guest asks the network's name server"
	CMD_TIMEOUT=60 run_cella compose down -t 1
	assert_ok "down"
}

# Every option a compose command's --help lists is in its usage line too (and the top level's).
test_help_usage_lines_name_every_option() {
	local s usage opt short long missing=""
	for s in "" config up down ps logs start stop restart exec run pull build; do
		# shellcheck disable=SC2086
		run_cella compose $s --help
		assert_ok "compose $s --help"
		usage=$(printf '%s\n' "$OUT" | sed -n '1s/^Usage: //p')
		assert_match "$usage" "^cella compose" "compose $s --help's usage line"
		while read -r opt; do
			short=$(printf '%s' "$opt" | sed -n 's/^-\([A-Za-z]\),.*/\1/p')
			long=$(printf '%s' "$opt" | sed -n 's/^\(-[A-Za-z], \)\{0,1\}--\([A-Za-z-]*\).*/\2/p')
			[ "$long" = help ] && continue
			[ -n "$long" ] || fail "compose $s --help: an option line without a long name: $opt"
			printf '%s\n' "$usage" | grep -qE -- "\[(--$long${short:+|-$short})[] ]" || missing="$missing compose $s: --$long;"
		done < <(printf '%s\n' "$OUT" | sed -n '/^Options:/,$p' | sed -n 's/^ \{1,\}\(-.*\)/\1/p')
	done
	assert_eq "" "$missing" "options missing from their usage line"
}

# The service keys that map onto run options reach the container: entrypoint and command, init,
# env_file under environment, user, working_dir, hostname, read_only, cap_drop/cap_add, tmpfs and
# bind volumes, labels, restart, mem_limit/cpus/pids_limit and deploy.resources.limits; and
# stop_signal is what `down` sends first (the workload's trap exits at once, well inside
# stop_grace_period).
test_service_keys_reach_the_container() {
	require_cmd jq
	compose_env
	local id
	mkdir -p out
	chmod 777 out
	printf 'A=from-file\nB=from-file\n' >vars.env
	cat >compose.yaml <<'EOF2'
services:
  keys:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: ['trap "echo got-usr1 >/mnt/out/signal; exit 0" USR1; echo keys-started; while :; do sleep 0.2; done']
    env_file: [vars.env]
    environment:
      B: from-env
    user: "1000:1000"
    working_dir: /scratch
    hostname: keys-host
    read_only: true
    cap_drop: [ALL]
    cap_add: [NET_RAW]
    tmpfs: [/other]
    volumes:
      - ./out:/mnt/out
      - type: tmpfs
        target: /scratch
    labels:
      org.example.tier: backend
    restart: on-failure:3
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 50
    stop_signal: SIGUSR1
    stop_grace_period: 20s
  limits:
    image: busybox
    init: true
    command: sleep 300
    stop_grace_period: 1s
    deploy:
      resources:
        limits: {cpus: "0.25", memory: 32M, pids: 20}
EOF2
	leftovers_snapshot
	CMD_TIMEOUT=60 run_cella compose up -d
	assert_ok "compose up -d"
	wait_logs keys "keys-1 | keys-started"
	run_cella compose exec -T keys sh -c 'echo "$(id -u):$(id -g) $(pwd) $(hostname) $A $B"'
	assert_eq "1000:1000 /scratch keys-host from-file from-env" "$OUT" "user, working_dir, hostname, env_file, environment"
	run_cella compose exec -T keys sh -c 'touch /x 2>/dev/null && echo root-writable; touch /scratch/y /other/z && echo tmpfs-writable'
	assert_eq "tmpfs-writable" "$OUT" "read_only root, writable tmpfs (volumes and tmpfs keys)"
	run_cella compose exec -T keys sh -c 'grep -E " /(scratch|other) " /proc/mounts | cut -d" " -f2,3 | sort | tr "\n" " "'
	assert_eq "/other tmpfs /scratch tmpfs " "$OUT" "the tmpfs mounts"
	run_cella compose exec -T keys sh -c 'grep CapBnd /proc/self/status | cut -f2'
	assert_eq "0000000000002000" "$OUT" "cap_drop ALL, cap_add NET_RAW: the bounding set"
	run_cella compose exec -T keys sh -c 'tr "\0" " " </proc/1/cmdline'
	assert_match "$OUT" '^sh -c trap ' "entrypoint and command: PID 1"
	id=$(ctr_id app-keys-1)
	run_cella inspect app-keys-1
	assert_ok "inspect app-keys-1"
	assert_eq "backend" "$(printf '%s' "$OUT" | jq -r '.[0].Config.Labels."org.example.tier"')" "labels"
	assert_eq "on-failure 3" "$(printf '%s' "$OUT" | jq -r '.[0].HostConfig.RestartPolicy | "\(.Name) \(.MaximumRetryCount)"')" "restart"
	assert_eq "67108864 500000000 50" "$(printf '%s' "$OUT" | jq -r '.[0].HostConfig | "\(.Memory) \(.NanoCpus) \(.PidsLimit)"')" "mem_limit, cpus, pids_limit"
	run_cella compose exec -T limits cat /proc/1/comm
	assert_ok "exec in limits"
	assert_ne "sleep" "$OUT" "init: true puts an init, not the command, at PID 1"
	run_cella compose exec -T limits sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sleep ] && cut -d" " -f4 $p/stat; done'
	assert_eq "1" "$OUT" "the command runs below the init"
	run_cella inspect app-limits-1
	assert_eq "33554432 250000000 20" "$(printf '%s' "$OUT" | jq -r '.[0].HostConfig | "\(.Memory) \(.NanoCpus) \(.PidsLimit)"')" "deploy.resources.limits"
	if is_real_root; then
		# the limits in the container's cgroups (this host: cgroup v1)
		local d
		d=$(find /sys/fs/cgroup/memory -type d -name "$id" 2>/dev/null | head -1)
		[ -n "$d" ] || fail "no memory cgroup of app-keys-1 ($id)"
		assert_eq 67108864 "$(cat "$d/memory.limit_in_bytes")" "mem_limit in memory.limit_in_bytes"
		d=$(find /sys/fs/cgroup/pids -type d -name "$id" 2>/dev/null | head -1)
		[ -n "$d" ] || fail "no pids cgroup of app-keys-1 ($id)"
		assert_eq 50 "$(cat "$d/pids.max")" "pids_limit in pids.max"
	fi
	# down: SIGUSR1 first, the trap exits, no 20 s wait
	local t0=$SECONDS
	CMD_TIMEOUT=60 run_cella compose down
	assert_ok "compose down"
	[ $((SECONDS - t0)) -lt 12 ] || fail "down took $((SECONDS - t0)) s: stop_signal not sent first?"
	assert_eq "got-usr1" "$(cat out/signal 2>/dev/null)" "stop_signal SIGUSR1 reached the workload"
	assert_engine_empty
	assert_no_leftovers
}

# compose pull fetches the services' images from a real registry (docker-registry on 127.0.0.1),
# skipping services that build theirs; up then runs the pulled image.
test_pull_from_a_registry() {
	require_cmd jq
	compose_env
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
	registry_start plain
	registry_push_busybox cmp/pulled v1 gzip >/dev/null
	mkdir -p ctx
	printf 'FROM busybox\n' >ctx/Containerfile
	cat >compose.yaml <<EOF2
services:
  one:
    image: $REG_HOST/cmp/pulled:v1
  two:
    image: $REG_HOST/cmp/pulled:v1
    command: ["sh", "-c", "echo two-runs; exec sleep 300"]
    stop_grace_period: 1s
  built:
    build: ./ctx
EOF2
	run_cella image inspect "$REG_HOST/cmp/pulled:v1"
	assert_rc_ne 0 "the image is not there before compose pull"
	CMD_TIMEOUT=60 run_cella compose pull
	assert_ok "compose pull"
	run_cella image inspect "$REG_HOST/cmp/pulled:v1"
	assert_ok "compose pull stored the image"
	assert_contains "$(printf '%s' "$OUT" | jq -r '.[0].RepoDigests | join(" ")')" "$REG_DIGEST" "the pushed manifest pulled"
	run_cella image inspect app-built
	assert_rc_ne 0 "compose pull builds nothing"
	CMD_TIMEOUT=60 run_cella compose up -d two
	assert_ok "up two"
	wait_logs two "two-1 | two-runs"
	CMD_TIMEOUT=60 run_cella compose down
	assert_ok "down"
}
