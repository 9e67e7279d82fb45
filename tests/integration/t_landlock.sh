# shellcheck shell=bash disable=SC2034
# Landlock scoping (docs/security.md "Landlock scoping"): a container in the host's network
# namespace cannot connect to the host's abstract unix sockets, one in the host's PID namespace
# (OCI, on request) cannot signal the host's processes. The attacker's side and the host's
# listener are abstract.c (built static here: busybox cannot name abstract sockets); whether the
# kernel can scope at all is asked of the kernel by that helper, never of cella.

. "$(dirname "${BASH_SOURCE[0]}")/abstract_lib.sh"

# The control: without scoping, the host's abstract sockets are the container's too.
test_host_network_reaches_host_abstract_socket_with_landlock_off() {
	_build_abstract
	_listen "$TEST_TMP/l.out"
	run_cella run --network host --security-opt landlock=off -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq ok "$(_probe_line stream)" "stream connect with landlock=off"
	assert_eq ok "$(_probe_line dgram)" "datagram with landlock=off"
	assert_eq "conn
got abstract-attack" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

# A foreground `cella run` shares the host's network namespace by default: it is scoped.
test_host_network_cannot_reach_host_abstract_socket() {
	_build_abstract
	_require_scoping
	_listen "$TEST_TMP/l.out"
	run_cella run -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect from a host-network container"
	assert_eq EPERM "$(_probe_line dgram)" "datagram from a host-network container"
	run_cella run --network host -u 1000 -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	if [ "$RC" != 0 ] && awk '{s += $3} END {exit (s > 1)}' /proc/self/uid_map; then
		: # one id mapped (unshare -r): no user 1000 in the container (t_process.sh tests that error)
	else
		assert_rc 0
		assert_eq EPERM "$(_probe_line stream)" "stream connect from a non-root user"
		assert_eq EPERM "$(_probe_line dgram)" "datagram from a non-root user"
	fi
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

# A container with a network namespace of its own has other abstract sockets: no scoping needed.
test_own_network_namespace_does_not_see_host_abstract_socket() {
	_build_abstract
	_listen "$TEST_TMP/l.out"
	run_cella run --network none -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq ECONNREFUSED "$(_probe_line stream)" "stream connect from --network none"
	assert_eq ECONNREFUSED "$(_probe_line dgram)" "datagram from --network none"
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

# A kernel without Landlock (here: the Landlock calls fail with ENOSYS under a seccomp filter of
# the test's): containers run as before, unscoped, with no word of it but under --debug, and
# doctor says why. The filter sets no_new_privs, under which the setuid newuidmap cannot map a
# rootless container's range: the user pass runs cella as root of a user namespace (unshare -r).
test_kernel_without_landlock_runs_unscoped() {
	_build_abstract
	local wrap=()
	is_root || { require_cmd unshare; wrap=(unshare -r); }
	_listen "$TEST_TMP/l.out"
	run_cmd "${wrap[@]}" "$ABSTRACT" nolandlock "$ABSTRACT" abi
	assert_eq "abi none ENOSYS" "$OUT" "the Landlock probe under the test's filter"
	run_cmd "${wrap[@]}" "$ABSTRACT" nolandlock "$CELLA" run -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq "" "$ERR" "what cella says without --debug"
	assert_eq ok "$(_probe_line stream)" "stream connect without Landlock"
	run_cmd "${wrap[@]}" "$ABSTRACT" nolandlock "$CELLA" run --debug busybox true
	assert_rc 0
	assert_contains "$ERR" "cella: debug: Landlock scoping skipped: this kernel has no Landlock"
	run_cmd "${wrap[@]}" "$ABSTRACT" nolandlock "$CELLA" doctor
	assert_match "$OUT" "^  Landlock scoping +no +this kernel has no Landlock .*\(ENOSYS\)"
}

# doctor's Landlock line agrees with the kernel, as the test's own helper asks it.
test_doctor_reports_the_landlock_abi() {
	_build_abstract
	require_cmd jq
	local abi
	abi=$("$ABSTRACT" abi)
	run_cella doctor --format json
	case "$abi" in
	"abi none "*) assert_eq "false null ${abi#abi none }" "$(printf '%s' "$OUT" | jq -r '.kernel.landlock | "\(.ok) \(.abi) \(.errno)"')" ;;
	*) assert_eq "$([ "${abi#abi }" -ge 6 ] && echo true || echo false) ${abi#abi }" \
		"$(printf '%s' "$OUT" | jq -r '.kernel.landlock | "\(.ok) \(.abi)"')" "doctor's Landlock ok and ABI (the kernel's: $abi)" ;;
	esac
}

_engine_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	CTR="ll-$$-$RANDOM"
	trap '"$CELLA" rm -f "$CTR" >/dev/null 2>&1; _stop_listeners >/dev/null 2>&1' EXIT
}

# `cella exec` into a host-network container is scoped too (the container's own program, run
# by exec, must not get what the container's processes cannot). A Landlock domain cannot be
# joined: an exec'd process gets a domain of its own, beside the container's, so it cannot reach
# the abstract sockets that the container's processes made either; within each domain they work,
# and the host (not scoped) reaches them.
test_exec_in_host_network_container_is_scoped() {
	_build_abstract
	_require_scoping
	_engine_env
	_listen "$TEST_TMP/l.out"
	run_cella run -d --name "$CTR" --network host -v "$ABSTRACT:/abstract:ro" busybox \
		sh -c "/abstract listen $ABS_NAME.ctr 20 >/tmp/l & sleep 1; /abstract connect $ABS_NAME.ctr >/tmp/c; sleep 30"
	assert_rc 0
	run_cella exec "$CTR" /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect to the host from cella exec"
	assert_eq EPERM "$(_probe_line dgram)" "datagram to the host from cella exec"
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
	sleep 1
	run_cella exec "$CTR" cat /tmp/c
	assert_eq "stream ok
dgram ok" "$OUT" "the container's processes, to their own socket"
	run_cella exec "$CTR" /abstract connect "$ABS_NAME.ctr"
	assert_eq EPERM "$(_probe_line stream)" "cella exec, to the container's own socket (a domain beside it)"
	run_cmd "$ABSTRACT" connect "$ABS_NAME.ctr"
	assert_eq ok "$(_probe_line stream)" "the host, to the container's socket"
	run_cella exec "$CTR" cat /tmp/l
	assert_eq "ready
conn
got abstract-attack
conn
got abstract-attack" "$OUT" "what the container's listener got (from its own process, then the host)"
}

# The same container with landlock=off: exec reaches both (the host's socket and the container's).
test_exec_with_landlock_off_is_not_scoped() {
	_build_abstract
	_engine_env
	_listen "$TEST_TMP/l.out"
	run_cella run -d --name "$CTR" --network host --security-opt landlock=off -v "$ABSTRACT:/abstract:ro" busybox \
		sh -c "/abstract listen $ABS_NAME.ctr 20 & sleep 30"
	assert_rc 0
	sleep 1
	run_cella exec "$CTR" /abstract connect "$ABS_NAME"
	assert_eq ok "$(_probe_line stream)" "cella exec, to the host's socket"
	run_cella exec "$CTR" /abstract connect "$ABS_NAME.ctr"
	assert_eq ok "$(_probe_line stream)" "cella exec, to the container's socket"
}

# --network container:NAME of a host-network container is the host's network too: scoped. (Its
# own domain, beside that container's: the two cannot reach each other's abstract sockets
# either, unlike two containers that share a private network.)
test_network_of_a_host_network_container_is_scoped() {
	_build_abstract
	_require_scoping
	_engine_env
	_listen "$TEST_TMP/l.out"
	run_cella run -d --name "$CTR" --network host busybox sleep 30
	assert_rc 0
	run_cella run --rm --network "container:$CTR" -v "$ABSTRACT:/abstract:ro" busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect to the host from --network container:(host network)"
	run_cella run -d --name "$CTR.b" --network "container:$CTR" -v "$ABSTRACT:/abstract:ro" busybox sleep 30
	assert_rc 0
	run_cella exec "$CTR.b" /abstract connect "$ABS_NAME"
	"$CELLA" rm -f "$CTR.b" >/dev/null 2>&1
	assert_rc 0 "cella exec in a container on a host-network container's network"
	assert_eq EPERM "$(_probe_line stream)" "stream connect to the host from cella exec there"
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

test_landlock_option_errors() {
	run_cella run --security-opt landlock=sometimes busybox true
	assert_cella_error 125 "landlock=sometimes"
	assert_contains "$ERR" "off, auto"
	run_cella run --security-opt landlock=signal,bogus busybox true
	assert_cella_error 125 "bogus"
	run_cella run --dry-run --network host busybox true
	assert_rc 0
	assert_contains "$OUT" '"landlock": "auto"'
	run_cella run --dry-run --security-opt landlock=abstract-unix-socket,signal busybox true
	assert_contains "$OUT" '"landlock": "abstract-unix-socket,signal"'
}

# An OCI bundle in the host's network and PID namespaces (no "network", no "pid" entry), with
# ANNOTATION (a JSON member, with a leading comma) or none. No /proc: as an ordinary user a proc
# of the host's PID namespace cannot be mounted. With OWN_PID set: a PID namespace of its own and
# its /proc (what `run -d`'s exec fifo needs).
_host_ns_bundle() {
	local dir=$1 args=$2 ann=${3:-} pidns="" mounts=""
	if [ -n "${OWN_PID:-}" ]; then
		pidns=', {"type": "pid"}'
		mounts='{"destination": "/proc", "type": "proc", "source": "proc"}'
	fi
	make_rootfs "$dir/rootfs"
	cp "$ABSTRACT" "$dir/rootfs/bin/abstract"
	ln -sf busybox "$dir/rootfs/bin/kill"
	oci_rootless_userns
	cat >"$dir/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs"},
  "process": {"args": $args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
              "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
  "mounts": [$mounts],
  "linux": {"namespaces": [$OCI_USERNS_ENTRY{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}$pidns] $OCI_USERNS_MAPS}
  $ann
}
EOF
}

# A process of the host's (the test's own sleep) that a container in the host's PID namespace
# can name: killed without scoping, and not with the annotation.
test_oci_annotation_scopes_signals_and_abstract_sockets() {
	_build_abstract
	_require_scoping
	local victim
	sleep 60 &
	victim=$!
	trap 'kill $victim 2>/dev/null; _stop_listeners >/dev/null 2>&1' EXIT
	_host_ns_bundle plain "[\"kill\", \"-TERM\", \"$victim\"]"
	run_cella run --bundle plain "oc-ll-$$-$RANDOM"
	assert_rc 0 "kill of a host process from an unscoped OCI container (the control)"
	sleep 0.2
	! kill -0 "$victim" 2>/dev/null || fail "the control's kill did not reach the host's process"
	wait "$victim" 2>/dev/null

	sleep 60 &
	victim=$!
	_host_ns_bundle scoped "[\"kill\", \"-TERM\", \"$victim\"]" ', "annotations": {"io.github.cella.landlock": "auto"}'
	run_cella run --bundle scoped "oc-ll-$$-$RANDOM"
	assert_rc_ne 0 "kill of a host process from a scoped OCI container"
	assert_contains "$ERR$OUT" "Operation not permitted"
	kill -0 "$victim" 2>/dev/null || fail "the host's process was killed from a scoped container"

	_listen "$TEST_TMP/l.out"
	_host_ns_bundle sock "[\"abstract\", \"connect\", \"$ABS_NAME\"]" ', "annotations": {"io.github.cella.landlock": "abstract-unix-socket"}'
	run_cella run --bundle sock "oc-ll-$$-$RANDOM"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect from an OCI container with the annotation"
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

# `exec` of the OCI command line into an annotated container (auto; the host's network, a PID
# namespace of its own): a domain of its own, with the container's scopes.
test_oci_exec_is_scoped() {
	_build_abstract
	_require_scoping
	local id="oc-ll-$$-$RANDOM"
	_listen "$TEST_TMP/l.out"
	trap "\"\$CELLA\" delete --force '$id' >/dev/null 2>&1; _stop_listeners >/dev/null 2>&1" EXIT # (id: local, expanded now)
	OWN_PID=1 _host_ns_bundle b '["sleep", "20"]' ', "annotations": {"io.github.cella.landlock": "auto"}'
	run_cella run -d --bundle b "$id" </dev/null
	assert_rc 0
	run_cella exec "$id" /bin/abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect to the host from an OCI exec"
	assert_eq "" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got"
}

test_oci_bad_annotation_refused() {
	_build_abstract
	_host_ns_bundle b '["true"]' ', "annotations": {"io.github.cella.landlock": "everything"}'
	run_cella run --bundle b "oc-ll-$$-$RANDOM"
	assert_rc_ne 0
	assert_contains "$ERR" "config.json: annotations.io.github.cella.landlock: unknown Landlock scope \`everything\`"
}
