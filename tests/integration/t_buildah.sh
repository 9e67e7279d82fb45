# shellcheck shell=bash
# root-only
# test-timeout: 90
# cmd-timeout: 60
# buildah with cella as the runtime of its RUN steps (`buildah --runtime $CELLA`, OCI isolation):
# a store of the test's own (--root/--runroot, vfs), the busybox root the other tests use as
# an OCI archive made by `cella save`, no network. buildah's RUN configs ask for ambient
# capabilities that are not inheritable: runc warns and leaves them out, and so must cella.

setup_buildah() {
	require_real_root # buildah as root mounts its storage for real: not under unshare -r
	require_cmd buildah
	S=$TEST_TMP/buildah
	mkdir -p "$S"
	trap teardown_buildah EXIT
	make_rootfs rootfs
	CELLA_ROOT=$S/cella CELLA_RUN_ROOT=$S/cella-run "$CELLA" image import rootfs localhost/cella-bh:1 >/dev/null ||
		fail "cella image import"
	CELLA_ROOT=$S/cella CELLA_RUN_ROOT=$S/cella-run "$CELLA" save -o "$S/image.tar" localhost/cella-bh:1 ||
		fail "cella save"
	bh pull -q "oci-archive:$S/image.tar" >/dev/null 2>&1 || fail "buildah pull of the OCI archive"
}

bh() { buildah --root "$S/graph" --runroot "$S/run" --storage-driver vfs "$@"; }

run_bh() { run_cmd buildah --root "$S/graph" --runroot "$S/run" --storage-driver vfs "$@"; }

teardown_buildah() {
	bh rm -a >/dev/null 2>&1
	bh rmi -a -f >/dev/null 2>&1
	rm -rf "$S" 2>/dev/null || true
}

# buildah bud: a RUN step writes a file, which is in the committed image.
test_buildah_bud_run_step() {
	setup_buildah
	local c mnt
	mkdir -p ctx
	printf 'FROM localhost/cella-bh:1\nRUN echo built-by-cella >/built.txt && id -u >>/built.txt\n' >ctx/Containerfile
	run_bh bud --runtime "$CELLA" --network none --pull-never -t localhost/cella-bh-built ctx
	assert_rc 0
	c=$(bh from --pull-never localhost/cella-bh-built) || fail "buildah from the built image"
	mnt=$(bh mount "$c") || fail "buildah mount"
	assert_eq "built-by-cella
0" "$(cat "$mnt/built.txt")" "the file the RUN step wrote, in the committed image"
	bh umount "$c" >/dev/null
}

# buildah from + run: the process, its environment and its capabilities (the ambient ones
# buildah asks for are left out with a warning, as runc does).
test_buildah_run() {
	setup_buildah
	local c
	c=$(bh from --pull-never localhost/cella-bh:1) || fail "buildah from"
	run_bh run --runtime "$CELLA" --network none "$c" -- sh -c 'echo HOME=$HOME; grep CapAmb /proc/self/status; exit 4'
	assert_rc 4
	assert_contains "$OUT" "HOME=/root"
	assert_match "$OUT" "^CapAmb:[[:space:]]+0+$" "no ambient capability"
	assert_contains "$ERR" "process.capabilities.ambient" "the warning for the ambient capabilities left out"
}
