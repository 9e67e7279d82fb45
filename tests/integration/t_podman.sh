# shellcheck shell=bash
# root-only
# test-timeout: 90
# podman (with conmon) driving cella as its OCI runtime: `podman --runtime $CELLA`. podman runs
# in a store of the test's own (--root/--runroot, containers.conf and storage.conf through
# CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), with cgroupfs, a file events log and no network,
# so the host's podman state is left alone. podman passes no --root: cella's state is under
# /run/cella-oci, which `podman rm` empties again.

# This host's root lacks CAP_SYS_RESOURCE, so podman's default rlimits (nofile 1048576, nproc
# 4194304: above the hard limits) cannot be set by any runtime (runc fails the same way): ask
# for limits below them.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

. "$(dirname "${BASH_SOURCE[0]}")/abstract_lib.sh"

setup_podman() {
	require_real_root # podman as root mounts and owns its storage for real: not under unshare -r
	require_cmd podman conmon jq
	S=$TEST_TMP/podman
	mkdir -p "$S"
	cat >"$S/storage.conf" <<-EOF
	[storage]
	driver = "vfs"
	runroot = "$S/run"
	graphroot = "$S/graph"
	EOF
	cat >"$S/containers.conf" <<-EOF
	[engine]
	cgroup_manager = "cgroupfs"
	events_logger = "file"
	events_logfile_path = "$S/events.log"
	tmp_dir = "$S/tmp"
	static_dir = "$S/static"
	volume_path = "$S/volumes"
	[containers]
	netns = "none"
	EOF
	export CONTAINERS_STORAGE_CONF=$S/storage.conf CONTAINERS_CONF=$S/containers.conf
	# podman's own parent cgroups (cgroupfs manager): removed at the end if this test made them
	PODMAN_CG_BEFORE=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | tr '\n' ' ')
	trap teardown_podman EXIT
	make_rootfs rootfs
	tar -C rootfs -c . | pm import - localhost/cella-busybox >/dev/null 2>&1 || fail "podman import failed"
}

pm() { podman --root "$S/graph" --runroot "$S/run" --storage-driver vfs --cgroup-manager cgroupfs \
	--events-backend file --runtime "$CELLA" "$@"; }

# run_pm ARGS...: podman under the test's timeout, OUT/ERR/RC like run_cella.
run_pm() { run_cmd podman --root "$S/graph" --runroot "$S/run" --storage-driver vfs --cgroup-manager cgroupfs \
	--events-backend file --runtime "$CELLA" "$@"; }

teardown_podman() {
	local d
	pm rm -af -t 0 >/dev/null 2>&1
	pm rmi -af >/dev/null 2>&1
	for d in /sys/fs/cgroup/*/libpod_parent; do
		[ -d "$d" ] || continue
		case " $PODMAN_CG_BEFORE " in *" $d "*) continue ;; esac
		rmdir "$d"/conmon "$d" 2>/dev/null
	done
	rm -rf "$S" 2>/dev/null || true
}

test_podman_run_rm_echo() {
	setup_podman
	run_pm run --rm --network none "${ULIMITS[@]}" localhost/cella-busybox echo hi
	assert_rc 0
	assert_eq hi "$OUT" stdout
	run_pm run --rm --network none "${ULIMITS[@]}" localhost/cella-busybox sh -c 'exit 5'
	assert_rc 5
	run_pm run --rm --network none "${ULIMITS[@]}" localhost/cella-busybox nosuchcmd
	assert_rc 127
	assert_contains "$ERR" "nosuchcmd" stderr
	run_cmd sh -c 'echo piped | "$@"' sh podman --root "$S/graph" --runroot "$S/run" --storage-driver vfs \
		--cgroup-manager cgroupfs --events-backend file --runtime "$CELLA" run --rm -i --network none \
		"${ULIMITS[@]}" localhost/cella-busybox cat
	assert_rc 0
	assert_eq piped "$OUT" "stdin through conmon"
	run_pm ps -aq
	assert_eq "" "$OUT" "podman ps -a after --rm"
}

test_podman_detach_exec_stop_rm() {
	setup_podman
	run_pm run -d --network none "${ULIMITS[@]}" localhost/cella-busybox sleep 1000
	assert_rc 0
	id=$OUT
	run_cmd "$CELLA" state "$id"
	assert_rc 0
	assert_eq running "$(jq -r .status <<<"$OUT")" "cella state of podman's container"
	run_pm exec "$id" sh -c 'echo exec-$((40+2))'
	assert_rc 0
	assert_eq exec-42 "$OUT" "podman exec"
	run_pm stop -t 1 "$id"
	assert_rc 0
	run_pm inspect -f '{{.State.Status}}' "$id"
	assert_eq exited "$OUT" "status after stop"
	run_pm rm "$id"
	assert_rc 0
	[ ! -e "/run/cella-oci/$id" ] || fail "cella's state of $id is left after podman rm"
}

test_podman_memory_limit() {
	setup_podman
	run_pm run -d --network none --memory 64m "${ULIMITS[@]}" localhost/cella-busybox sleep 1000
	assert_rc 0
	id=$OUT
	cg=$(jq -r .linux.cgroupsPath "$S/graph/vfs-containers/$id/userdata/config.json")
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		lim=$(cat "/sys/fs/cgroup$cg/memory.max")
	else
		lim=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
	fi
	assert_eq 67108864 "$lim" "the container's memory limit"
	run_pm rm -f -t 0 "$id"
	assert_rc 0
	[ ! -e "/sys/fs/cgroup/memory$cg" ] || fail "the container's cgroup $cg is left after podman rm"
}

# podman's --annotation reaches cella's config: io.github.cella.landlock=auto scopes a host-network
# container from the host's abstract unix sockets (docs/security.md); without it, as with runc,
# the container connects.
test_podman_landlock_annotation() {
	setup_podman
	_build_abstract
	_require_scoping
	_listen "$TEST_TMP/l.out"
	trap 'teardown_podman; _stop_listeners >/dev/null 2>&1' EXIT
	run_pm run --rm --network host -v "$ABSTRACT:/abstract:ro" "${ULIMITS[@]}" localhost/cella-busybox \
		/abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq ok "$(_probe_line stream)" "stream connect from podman's host-network container without the annotation"
	run_pm run --rm --network host --annotation io.github.cella.landlock=auto -v "$ABSTRACT:/abstract:ro" \
		"${ULIMITS[@]}" localhost/cella-busybox /abstract connect "$ABS_NAME"
	assert_rc 0
	assert_eq EPERM "$(_probe_line stream)" "stream connect with io.github.cella.landlock=auto"
	assert_eq EPERM "$(_probe_line dgram)" "datagram with io.github.cella.landlock=auto"
	assert_eq "conn
got abstract-attack" "$(_heard "$TEST_TMP/l.out")" "what the host's listener got (the first container only)"
}

# --- issue 15 (2b): podman's own tests that failed with cella and passed with runc -------------

# --privileged copies every host device with its whole st_mode into linux.devices (0o20666).
test_podman_privileged() {
	setup_podman
	run_pm run --rm --network none --privileged "${ULIMITS[@]}" localhost/cella-busybox sh -c 'ls /dev/null /dev/zero && echo privileged'
	assert_rc 0
	assert_contains "$OUT" privileged
}

# podman build: each RUN step is a buildah container whose config asks for ambient capabilities
# that are not inheritable (runc warns and leaves them out).
test_podman_build_run_step() {
	setup_podman
	mkdir -p ctx
	printf 'FROM localhost/cella-busybox\nRUN echo built-by-cella >/built.txt\n' >ctx/Containerfile
	CMD_TIMEOUT=60 run_pm build "${ULIMITS[@]}" -t localhost/cella-built ctx
	assert_rc 0
	run_pm run --rm --network none "${ULIMITS[@]}" localhost/cella-built cat /built.txt
	assert_rc 0
	assert_eq built-by-cella "$OUT" "the file the RUN step wrote, in the image"
}

# --timeout: conmon kills the container's process group; the container must lead its own, or
# conmon kills itself (no exit file: podman said the container still ran, 127, cgroup left).
test_podman_timeout() {
	setup_podman
	local id s
	run_pm run -d --network none --timeout 2 "${ULIMITS[@]}" localhost/cella-busybox sleep 30
	assert_rc 0
	id=$OUT
	s=$SECONDS
	run_pm wait "$id"
	assert_rc 0
	[ $((SECONDS - s)) -lt 15 ] || fail "the container outlived --timeout 2 by far ($((SECONDS - s)) s)"
	run_pm inspect -f '{{.State.Status}}' "$id"
	assert_eq exited "$OUT" "status after the timeout"
	run_pm rm "$id"
	assert_rc 0
	[ -z "$(ls -d /sys/fs/cgroup/*/libpod_parent/libpod-"$id" /sys/fs/cgroup/libpod_parent/libpod-"$id" 2>/dev/null)" ] ||
		fail "the container's cgroup is left after podman rm"
	[ ! -e "/run/cella-oci/$id" ] || fail "cella's state of $id is left"
}

# --user: the process's uid/gid/groups; HOME from the image's /etc/passwd for exec too (podman
# passes an empty HOME for a user without a passwd line: runc then sets /).
test_podman_user() {
	setup_podman
	run_pm run --rm --network none --user 65534:65534 --group-add 10 "${ULIMITS[@]}" localhost/cella-busybox sh -c 'id -u; id -g; id -G; echo HOME=$HOME'
	assert_rc 0
	assert_eq "65534
65534
65534 10
HOME=/" "$OUT" "uid, gid, groups, HOME"
	run_pm run -d --network none "${ULIMITS[@]}" localhost/cella-busybox sleep 100
	assert_rc 0
	local id=$OUT
	run_pm exec --user 4321 "$id" sh -c 'id -u; echo HOME=$HOME'
	local rc=$RC out=$OUT
	run_pm exec --user root "$id" sh -c 'echo HOME=$HOME'
	local out2=$OUT
	pm rm -f -t 0 "$id" >/dev/null 2>&1
	RC=$rc
	assert_rc 0
	assert_eq "4321
HOME=/" "$out" "exec --user without a passwd line"
	assert_eq "HOME=/root" "$out2" "exec --user root"
}

# podman update changes the container's cgroup; the container sees it at /sys/fs/cgroup (its own
# cgroups are mounted there, not the root of the host's hierarchies).
test_podman_update_seen_inside() {
	setup_podman
	local file
	run_pm run -d --network none --memory 64m "${ULIMITS[@]}" localhost/cella-busybox sleep 100
	assert_rc 0
	local id=$OUT
	run_pm update --memory 128m "$id"
	assert_rc 0
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then file=/sys/fs/cgroup/memory.max; else file=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
	run_pm exec "$id" cat "$file"
	local rc=$RC out=$OUT
	pm rm -f -t 0 "$id" >/dev/null 2>&1
	RC=$rc
	assert_rc 0
	assert_eq 134217728 "$out" "$file in the container after podman update"
}

# --ipc=none: no /dev/shm at all; --mount type=image: an overlay mount in the config.
test_podman_ipc_none_and_image_mount() {
	setup_podman
	run_pm run --rm --network none --ipc=none "${ULIMITS[@]}" localhost/cella-busybox sh -c 'ls /dev/shm 2>&1'
	assert_contains "$OUT" "No such file or directory" "/dev/shm with --ipc=none"
	run_pm run --rm --network none --mount type=image,source=localhost/cella-busybox,target=/img "${ULIMITS[@]}" \
		localhost/cella-busybox sh -c 'ls /img/bin/busybox && touch /img/x 2>/dev/null || echo ro'
	assert_rc 0
	assert_eq "/img/bin/busybox
ro" "$OUT" "the image mounted read-only at /img"
}

# kill -s PIPE: conmon ignores SIGPIPE; the container must start with every signal at its default
# (runc resets them), or its shell cannot trap SIGPIPE (a signal ignored on entry stays ignored)
# and podman's signal tests see nothing. (A pid 1 without a handler never gets it from outside.)
test_podman_kill_sigpipe() {
	setup_podman
	local id i logs=""
	run_pm run -d --network none "${ULIMITS[@]}" localhost/cella-busybox \
		sh -c 'trap "echo got-PIPE" PIPE; echo ready; while :; do sleep 0.1; done'
	assert_rc 0
	id=$OUT
	for i in $(seq 50); do
		logs=$(pm logs "$id" 2>&1)
		[[ "$logs" == *ready* ]] && break
		sleep 0.1
	done
	run_pm kill -s PIPE "$id"
	assert_rc 0
	for i in $(seq 50); do
		logs=$(pm logs "$id" 2>&1)
		[[ "$logs" == *got-PIPE* ]] && break
		sleep 0.1
	done
	pm rm -f -t 0 "$id" >/dev/null 2>&1
	assert_contains "$logs" got-PIPE "the container's trap on SIGPIPE"
}
