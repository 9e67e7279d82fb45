#!/bin/bash
# vm backend benchmark (not a test; not part of make check).
#
#   bash bench/vm.sh            ROUNDS=10 bash bench/vm.sh
#
# Boot-to-exit of busybox `true`: from `cella run --backend vm busybox true` to its exit, ROUNDS
# times each, a cold boot (--vm-snapshot=off) and a start from the snapshot, interleaved, under KVM when /dev/kvm is usable and always under TCG (CELLA's kvm detection is forced
# off for that series by hiding /dev/kvm with CELLA_NO_KVM=1); the image's disk is built once
# before the rounds (cached). Each series with the distro kernel (the newest /boot/vmlinuz-*) and,
# when `make vm-kernel` built one, the tuned kernel (VM_KERNEL=DIR, default root's
# /var/lib/cella/vm/kernels/current or the user's ~/.local/share/cella/vm/kernels/current), both
# given with --kernel (the tuned one's config beside it makes it "tuned": docs/vm.md). The same
# pair again with a volume (`-v DIR:/data`, `cat` of a file in it): before the snapshot's share
# slots a VM with a volume always booted cold.
# Then the memory of a running VM: QEMU's RSS and the supervisor's.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
CELLA=${CELLA:-$REPO/build/cella}
WORK=$(mktemp -d /tmp/bench-vm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir "$WORK/vol" && echo hi >"$WORK/vol/f"
export CELLA_ROOT=$WORK/data CELLA_RUN_ROOT=$WORK/run
gcc -O2 -o "$WORK/timeit" "$REPO/bench/timeit.c"

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1e6 }'; }
min() { sort -n | awk 'NR == 1 { printf "%.1f", $1 / 1e6 }'; }

DISTRO=$(ls /boot/vmlinuz-* | sort -V | tail -1)
kernels=("distro:$DISTRO")
for d in "${VM_KERNEL:-}" /var/lib/cella/vm/kernels/current "${XDG_DATA_HOME:-$HOME/.local/share}/cella/vm/kernels/current"; do
	if [ -n "$d" ] && [ -r "$d/bzImage" ] && [ -r "$d/config" ]; then
		kernels+=("tuned:$(readlink -f "$d/bzImage")")
		break
	fi
done
"$CELLA" run --backend vm --kernel "$DISTRO" busybox true 2>/dev/null # builds and caches the disk
series=()
# KVM counts only where QEMU can start a guest on it (a nested /dev/kvm can refuse QEMU: docs/vm.md)
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && echo quit | timeout 20 qemu-system-x86_64 -M microvm -accel kvm -cpu host \
	-m 64M -nodefaults -no-user-config -display none -S -monitor stdio >/dev/null 2>&1; then series+=(kvm); fi
series+=(tcg)
for s in "${series[@]}"; do
	if [ "$s" = tcg ]; then export CELLA_NO_KVM=1; else unset CELLA_NO_KVM; fi
	for k in "${kernels[@]}"; do
		kind=${k%%:*} path=${k#*:}
		# the snapshot of this kernel made before the rounds (its first run boots and saves it)
		"$CELLA" run --backend vm --kernel "$path" busybox true 2>/dev/null
		# cold boots and starts from the snapshot, interleaved round by round
		"$WORK/timeit" "$ROUNDS" -- cold "$CELLA" run --backend vm --vm-snapshot=off --kernel "$path" busybox true \
			-- snap "$CELLA" run --backend vm --kernel "$path" busybox true \
			-- coldvol "$CELLA" run --backend vm --vm-snapshot=off --kernel "$path" -v "$WORK/vol:/data" busybox cat /data/f \
			-- snapvol "$CELLA" run --backend vm --kernel "$path" -v "$WORK/vol:/data" busybox cat /data/f \
			>"$WORK/$s-$kind.txt"
		for m in cold snap coldvol snapvol; do
			bad=$(awk -v m=$m '$1 == m && $3 != 0' "$WORK/$s-$kind.txt" | wc -l)
			echo "boot-to-exit $s, $kind kernel $path, $(case $m in cold*) echo "cold boot" ;; *) echo "from the snapshot" ;; esac)$(case $m in *vol) echo ", a volume" ;; esac)" \
				"($ROUNDS rounds, $bad failed): median $(awk -v m=$m '$1 == m { print $2 }' "$WORK/$s-$kind.txt" | median) ms," \
				"min $(awk -v m=$m '$1 == m { print $2 }' "$WORK/$s-$kind.txt" | min) ms"
		done
	done
done
unset CELLA_NO_KVM

# memory: a VM that sleeps, its QEMU (child of the cella-vm supervisor) measured once booted
id=$("$CELLA" run -d --backend vm busybox sh -c 'echo up; exec sleep 100' 2>/dev/null)
for _ in $(seq 240); do
	case "$("$CELLA" logs "$id" 2>&1)" in *up*) break ;; esac
	sleep 0.5
done
sup=$("$CELLA" inspect -f '{{.State.Pid}}' "$id")
qemu=$(pgrep -P "$sup" qemu-system || true)
mem=$("$CELLA" inspect -f '{{.VM.MemoryMiB}}' "$id")
if [ -n "$qemu" ]; then
	echo "guest RAM ${mem} MiB; QEMU VmRSS $(awk '/^VmRSS/ { print $2 / 1024 }' "/proc/$qemu/status") MiB," \
		"VmHWM $(awk '/^VmHWM/ { print $2 / 1024 }' "/proc/$qemu/status") MiB; supervisor VmRSS" \
		"$(awk '/^VmRSS/ { print $2 / 1024 }' "/proc/$sup/status") MiB"
	# QEMU's own memory: its RSS less what the guest touched of its RAM (anonymous guest pages)
	echo "QEMU RssAnon $(awk '/^RssAnon/ { print $2 / 1024 }' "/proc/$qemu/status") MiB, RssFile" \
		"$(awk '/^RssFile/ { print $2 / 1024 }' "/proc/$qemu/status") MiB"
fi
"$CELLA" rm -f "$id" >/dev/null
