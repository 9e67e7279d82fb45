# shellcheck shell=bash
# root-only
# podman (with conmon) driving cella as its OCI runtime: `podman --runtime $CELLA`. podman runs
# in a store of the test's own (--root/--runroot, containers.conf and storage.conf through
# CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), with cgroupfs, a file events log and no network,
# so the host's podman state is left alone. podman passes no --root: cella's state is under
# /run/cella-oci, which `podman rm` empties again.

# This host's root lacks CAP_SYS_RESOURCE, so podman's default rlimits (nofile 1048576, nproc
# 4194304: above the hard limits) cannot be set by any runtime (runc fails the same way): ask
# for limits below them.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

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
	local dir=/sys/fs/cgroup/memory$cg
	[ -e /sys/fs/cgroup/cgroup.controllers ] && dir=/sys/fs/cgroup$cg
	[ -d "$dir" ] || fail "the container's cgroup $dir does not exist while it runs"
	run_pm rm -f -t 0 "$id"
	assert_rc 0
	[ ! -e "$dir" ] || fail "the container's cgroup $dir is left after podman rm"
}
