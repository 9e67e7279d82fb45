#!/bin/sh
# Install what cella needs to build, test and (with --bench) benchmark, on Debian 12.
# Idempotent: asks dpkg first and only runs apt-get for what is missing.
set -eu

PKGS="build-essential pkg-config libseccomp-dev libcap-dev libjansson-dev libyaml-dev busybox-static
uidmap util-linux procps bubblewrap runc proot strace jq
libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev libzstd-dev zstd xz-utils curl
docker-registry skopeo apache2-utils openssl python3
nftables iproute2 passt slirp4netns wget
qemu-system-x86 linux-image-amd64 e2fsprogs
podman conmon podman-compose containerd buildah debootstrap golang-go
clang libclang-rt-dev clang-format cppcheck clang-tidy lld gdb"
BENCH_PKGS="hyperfine umoci crun"
# --vm-kernel: what `make vm-kernel` needs to build the tuned guest kernel (not in the default set:
# the source alone is ~140 MB and the build takes a while)
VM_KERNEL_PKGS="linux-source-6.1 flex bison bc libelf-dev"

bench=0
vm_kernel=0
for arg in "$@"; do
	case "$arg" in
	--bench) bench=1 ;;
	--vm-kernel) vm_kernel=1 ;;
	-h|--help) echo "usage: $0 [--bench] [--vm-kernel]"; exit 0 ;;
	*) echo "deps.sh: unknown argument: $arg" >&2; exit 2 ;;
	esac
done

is_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# apt knows the package (some, like hyperfine, may be absent from a mirror or release).
is_available() {
	apt-cache show "$1" >/dev/null 2>&1
}

missing=""
for p in $PKGS; do
	is_installed "$p" || missing="$missing $p"
done

skipped=""
if [ "$bench" = 1 ]; then
	for p in $BENCH_PKGS; do
		is_installed "$p" && continue
		# The package index may be empty on a fresh image; the check happens again after update.
		missing="$missing $p"
	done
fi

if [ "$vm_kernel" = 1 ]; then
	for p in $VM_KERNEL_PKGS; do
		is_installed "$p" || missing="$missing $p"
	done
fi

if [ -z "$missing" ]; then
	echo "deps.sh: all dependencies present"
	exit 0
fi

if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps.sh: not root and no sudo; as root run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

$SUDO apt-get update -qq

# Bench-only tools are optional: drop those this apt does not know.
to_install=""
for p in $missing; do
	case " $BENCH_PKGS " in
	*" $p "*)
		if ! is_available "$p"; then
			skipped="$skipped $p"
			continue
		fi ;;
	esac
	to_install="$to_install $p"
done

if [ -n "$to_install" ]; then
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $to_install >/dev/null
fi

msg="deps.sh: installed:${to_install:- nothing}"
[ -n "$skipped" ] && msg="$msg (not available, skipped:$skipped)"
echo "$msg"
