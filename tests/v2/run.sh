#!/bin/bash
# The pure cgroup v2 lane (`make check-v2`): boots the Debian kernel in a microVM with cella's own
# vm backend (KVM where QEMU can use it, else TCG) and runs cgroup tests there, on a machine with
# cgroup v2 only and a subtree delegated to the unprivileged test user (tests/v2/guest.sh). The
# host's root is shared read-only (9p) as the lower layer of the guest's root, so the tests run
# this tree's build and the host's tools.
#   tests/v2/run.sh [RUNNER-ARGS...]    default: the files in V2_FILES
#   tests/v2/run.sh --cmd 'COMMAND'     run a shell command there instead (in the tree's root)
# Output: the runner's TAP lines and its last line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
CELLA=${CELLA:-$repo/build/cella}
V2_FILES=${V2_FILES:-"t_cgroup t_devices"}
V2_MEMORY=${V2_MEMORY:-3g}
V2_CPUS=${V2_CPUS:-2}
for f in "$CELLA" "$(dirname "$CELLA")/cella-vminit"; do
	[ -x "$f" ] || { echo "not ok - v2 lane: $f is missing (make all)"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
	echo "not ok - v2 lane: needs root (the lane makes a test user and delegates a cgroup to it)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
args=("$@")
if [ ${#args[@]} = 0 ]; then
	for f in $V2_FILES; do
		[ -r "tests/integration/$f.sh" ] && args+=("$f")
	done
fi
# The lane loads modules from the host's /lib/modules, so the guest runs a distro kernel that has
# them (the newest /boot/vmlinuz-* with its modules), not the tuned one `make vm-kernel` caches
# (built without modules), which cella would pick by default.
V2_KERNEL=${V2_KERNEL:-}
if [ -z "$V2_KERNEL" ]; then
	for k in $(ls -v /boot/vmlinuz-* 2>/dev/null); do
		[ -r "$k" ] && [ -d "/lib/modules/${k#/boot/vmlinuz-}/kernel" ] && V2_KERNEL=$k
	done
fi
if [ -z "$V2_KERNEL" ]; then
	echo "not ok - v2 lane: no readable /boot/vmlinuz-* with its modules in /lib/modules (install linux-image-amd64)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
# A VM of our own: root in the guest with every capability (--cap-add ALL: the lane loads modules and
# mounts; a VM workload gets docker's default capabilities otherwise), every controller of cgroup v2.
"$CELLA" run --rm --backend vm --kernel "$V2_KERNEL" --cap-add ALL --vm-memory "$V2_MEMORY" --vm-cpus "$V2_CPUS" --network none -v /:/host:ro busybox \
	sh "/host$repo/tests/v2/guest.sh" "$repo" "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "${1:-}" = --cmd ] && exit "$rc"
if ! grep -qE '^[0-9]+ passed, [0-9]+ failed' "$log"; then
	echo "not ok - v2 lane: the guest printed no summary (cella exited with status $rc)"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
exit "$rc"
