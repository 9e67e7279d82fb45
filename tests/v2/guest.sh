#!/bin/sh
# The pure cgroup v2 lane, inside the VM (busybox sh; started by tests/v2/run.sh through
# `cella run --backend vm -v /:/host:ro`). Makes a machine that has only cgroup v2, the way a
# systemd host does: cgroup2 on /sys/fs/cgroup with every controller enabled, and a subtree
# delegated to the unprivileged test user (systemd's Delegate=yes: the directory and its
# cgroup.procs, cgroup.subtree_control and cgroup.threads owned by the user). The host's root is
# the lower layer of an overlay with a tmpfs upper, so the tests run the host's build and tools.
# The guest's mounts under the new root come along into the pivoted namespace.
#   guest.sh REPO [RUNNER-ARGS...]      guest.sh REPO --cmd 'SHELL COMMAND' (to look around)
set -eu
repo=$1
shift
kmod=/host/lib/modules/$(uname -r)/kernel
[ -d "$kmod" ] || { echo "not ok - v2 lane: the host has no modules for the guest kernel $(uname -r)"; exit 1; }
# The kernel loads what the tests need on demand (bridge, veth, nf_tables' expressions, overlay)
# with /sbin/modprobe as its root sees it: this disk's busybox, given the host's modules.
[ -e /lib/modules ] || { mkdir -p /lib && ln -s /host/lib/modules /lib/modules; }
grep -qw overlay /proc/filesystems || modprobe overlay
# /dev/net/tun (rootless pasta) exists only once tun is loaded (no udev or static nodes here)
[ -e /dev/net/tun ] || modprobe tun
chmod 0666 /dev/net/tun # as udev makes it
# loop devices (not loaded on demand without a node to open): t_devices.sh reads a host block device,
# a loop over a file, to show it stays out
grep -qw loop /proc/devices || modprobe loop || echo "# v2 lane: no loop module"

mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
ctl=""
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do ctl="$ctl +$c"; done
echo "$ctl" >/sys/fs/cgroup/cgroup.subtree_control

mkdir -p /lane/up /lane/root
mount -t tmpfs -o mode=0755 lane /lane/up
mkdir -p /lane/up/upper /lane/up/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/lane/up/upper,workdir=/lane/up/work /lane/root
r=/lane/root
# Fresh, empty state where cella and the tests keep theirs (not the host's, seen through the lower).
for d in /tmp /var/tmp /run /var/lib/cella /home /root; do
	mount -t tmpfs -o mode=0755 "lane${d%%/*}" "$r$d"
done
chmod 1777 "$r/tmp" "$r/var/tmp"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"

# The user's delegated subtree, as systemd makes user@UID.service.
user=${CELLA_TEST_USER:-cellatest}
if ! chroot "$r" id -u "$user" >/dev/null 2>&1; then
	chroot "$r" useradd -M -s /bin/bash "$user"
fi
uid=$(chroot "$r" id -u "$user")
gid=$(chroot "$r" id -g "$user")
mkdir -p "$r/home/$user" && chown "$uid:$gid" "$r/home/$user"
cg=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service
mkdir -p "$cg"
echo "+memory +pids +cpu +io +cpuset" >/sys/fs/cgroup/user.slice/cgroup.subtree_control
echo "+memory +pids +cpu +io +cpuset" >"/sys/fs/cgroup/user.slice/user-$uid.slice/cgroup.subtree_control"
for f in "$cg" "$cg/cgroup.procs" "$cg/cgroup.subtree_control" "$cg/cgroup.threads"; do
	chown "$uid:$gid" "$f"
done

echo "# v2 lane: kernel $(uname -r), cgroup2 only, controllers:$ctl; $user delegated $cg"
# pivot_root, not chroot: the kernel refuses a user namespace to a chrooted process.
mkdir -p "$r/.lane-old"
exec unshare -m sh -c '
	set -e
	mount --make-rprivate /
	cd "$1" && shift
	pivot_root . .lane-old
	cd /
	umount -l /.lane-old
	# A default route, as any machine has: rootless pasta copies the host'"'"'s routable interface.
	ip link add lane0 type dummy && ip addr add 10.254.0.2/24 dev lane0 && ip link set lane0 up &&
		ip route add default via 10.254.0.1
	exec "$@"' _ "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 TEST_TIMEOUT="${TEST_TIMEOUT:-180}" CMD_TIMEOUT="${CMD_TIMEOUT:-150}" \
	CELLA_TEST_USER="$user" CELLA_TEST_USER_CGROUP="$cg" CELLA_TEST_COPY=1 \
	bash -c 'cd "$1" && shift && if [ "${1:-}" = --cmd ]; then exec bash -c "$2"; fi; exec bash tests/run-integration.sh "$@"' \
	_ "$repo" "$@"
