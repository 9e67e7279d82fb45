#!/bin/sh
# Build cella's guest kernel for the vm backend (docs/vm.md, "The tuned guest kernel") from
# Debian's linux-source-6.1 and vm/kernel.config, and cache it under
#   OUT/KEY/{bzImage,config,release}   with OUT/current -> KEY
# where OUT is DATA_ROOT/vm/kernels (the data root as cella computes it: $CELLA_ROOT, else
# /var/lib/cella for root, else $XDG_DATA_HOME/cella or ~/.local/share/cella) and KEY the first
# 16 hex digits of the sha256 of the source package's version, the config fragment and this
# script's recipe revision. A cached KEY is not built again.
set -eu

RECIPE=1 # bump when the recipe below changes what gets built
SRC_PKG=linux-source-6.1
SRC_TAR=/usr/src/linux-source-6.1.tar.xz
here=$(cd "$(dirname "$0")/.." && pwd)
fragment=$here/vm/kernel.config
jobs=2
out=""
keep=0
print_key=0

usage() {
	cat <<USAGE
usage: $0 [--out DIR] [--jobs N] [--keep-build] [--print-key]
Build the tuned guest kernel (vm/kernel.config over allnoconfig, from $SRC_PKG) into
DIR/KEY/bzImage (DIR: the data root's vm/kernels) and point DIR/current at it.
  --out DIR      where the kernels are cached (default: DATA_ROOT/vm/kernels)
  --jobs N       make -jN (default 2), run under nice -n 15
  --keep-build   keep the build tree (default: removed after a successful build)
  --print-key    print the cache key and exit
Needs $SRC_PKG (scripts/deps.sh --vm-kernel) and the kernel's build tools (flex, bison, bc,
libelf-dev, libssl-dev).
USAGE
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	--jobs=*) jobs=${1#--jobs=}; shift ;;
	--keep-build) keep=1; shift ;;
	--print-key) print_key=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "vm-kernel.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() { echo "vm-kernel.sh: $*" >&2; exit 1; }

version=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null) || version=""
if [ -z "$version" ] || [ ! -r "$SRC_TAR" ]; then
	die "$SRC_PKG is not installed ($SRC_TAR): run scripts/deps.sh --vm-kernel (or apt-get install $SRC_PKG)"
fi
[ -r "$fragment" ] || die "$fragment: missing"
key=$( { printf '%s %s recipe %s\n' "$SRC_PKG" "$version" "$RECIPE"; cat "$fragment"; } | sha256sum | cut -c1-16)
if [ "$print_key" = 1 ]; then
	echo "$key"
	exit 0
fi

if [ -z "$out" ]; then
	if [ -n "${CELLA_ROOT:-}" ] && [ "${CELLA_ROOT#/}" != "$CELLA_ROOT" ]; then
		root=$CELLA_ROOT
	elif [ "$(id -u)" = 0 ]; then
		root=/var/lib/cella
	elif [ -n "${XDG_DATA_HOME:-}" ] && [ "${XDG_DATA_HOME#/}" != "$XDG_DATA_HOME" ]; then
		root=$XDG_DATA_HOME/cella
	else
		root=$HOME/.local/share/cella
	fi
	out=$root/vm/kernels
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# one build at a time per cache (they share the unpacked source)
exec 9>"$out/.lock"
flock 9

set_current() {
	ln -sfn "$key" "$out/.current.tmp"
	mv -T "$out/.current.tmp" "$out/current"
}

if [ -r "$out/$key/bzImage" ]; then
	set_current
	echo "vm-kernel.sh: cached: $out/$key/bzImage ($(cat "$out/$key/release"))"
	exit 0
fi

for tool in make gcc flex bison bc; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/deps.sh --vm-kernel installs the kernel's build tools)"
done

# the unpacked source is kept across config changes with --keep-build (its version checked)
build=$out/.build
start=$(date +%s)
if [ "$(cat "$build/unpacked" 2>/dev/null)" != "$version" ]; then
	rm -rf "$build"
	mkdir -p "$build"
	echo "vm-kernel.sh: unpacking $SRC_TAR ($version) into $build"
	tar -xJf "$SRC_TAR" -C "$build"
	printf '%s\n' "$version" >"$build/unpacked"
fi
tree=$build/linux-source-6.1
cd "$tree"
nice -n 15 make -s ARCH=x86_64 KCONFIG_ALLCONFIG="$fragment" allnoconfig
# every line the fragment asks for must have held (a typo or an unmet dependency would not)
missing=$(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$fragment" | while IFS= read -r line; do
	grep -qxF "$line" .config || echo "$line"
done)
[ -z "$missing" ] || die "the kernel config did not take (unknown option or unmet dependency):
$missing"
echo "vm-kernel.sh: building (make -j$jobs bzImage under nice -n 15)"
nice -n 15 make -s ARCH=x86_64 -j"$jobs" bzImage
release=$(make -s ARCH=x86_64 kernelrelease)
stage=$out/.stage-$key
rm -rf "$stage"
mkdir -p "$stage"
cp arch/x86/boot/bzImage "$stage/bzImage"
cp .config "$stage/config"
printf '%s\n' "$release" >"$stage/release"
printf 'source %s %s\nfragment sha256 %s\nrecipe %s\nbuilt in %s s with make -j%s\n' "$SRC_PKG" "$version" \
	"$(sha256sum "$fragment" | cut -d' ' -f1)" "$RECIPE" "$(($(date +%s) - start))" "$jobs" >"$stage/info"
chmod 0644 "$stage"/*
chmod 0755 "$stage"
rm -rf "${out:?}/${key:?}"
mv -T "$stage" "$out/$key"
set_current
cd /
[ "$keep" = 1 ] || rm -rf "$build"
echo "vm-kernel.sh: built $out/$key/bzImage ($release) in $(($(date +%s) - start)) s"
