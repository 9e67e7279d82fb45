#!/bin/bash
# Build benchmark (not a test; not part of make check): `cella build` beside `buildah bud`.
#
#   bash bench/build.sh
#   ROUNDS=5 FILES=200 bash bench/build.sh
#
# One Containerfile of 3 stages and 17 instructions (4 RUN, 5 COPY; bench/build.Containerfile)
# over the same local base image (a busybox root, imported into both stores), the same context
# (FILES small files and a config file), storage of their own in a temp dir for both:
#   cold    --no-cache: every step runs (buildah: --layers --no-cache)
#   rebuild nothing changed since the last build: every step a cache hit (buildah: --layers)
#   edit    one context file changed: the steps from its COPY on run again
# ROUNDS of each, alternating cella and buildah; medians and the ratio cella / buildah.
# buildah runs its RUN steps with runc (crun 1.8 refuses this host's hybrid cgroup layout) and
# the rlimits this host allows (root here lacks CAP_SYS_RESOURCE).
set -eu
[ -z "${BENCH_TRACE:-}" ] || set -x

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-100}
. "$REPO/bench/lib.sh"
bench_cella
bench_need buildah runc busybox gcc bc
"$CELLA" build --help >/dev/null 2>&1 || { echo "bench: this cella has no build command" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-build.XXXXXX)
export CELLA_ROOT=$WORK/cella-root CELLA_RUN_ROOT=$WORK/cella-run
BUILDAH=(buildah --root "$WORK/buildah-root" --runroot "$WORK/buildah-run" --storage-driver overlay)
BUD=(bud --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 -q)
cleanup() {
	"${BUILDAH[@]}" rm -a >/dev/null 2>&1 || true
	"${BUILDAH[@]}" rmi -af >/dev/null 2>&1 || true
	bench_unmount_under "$WORK"
	rm -rf "$WORK"
}
bench_traps cleanup
bench_timeit "$WORK"

echo "== the base image (busybox root) in both stores, the context ($FILES files)"
mkdir -p "$WORK/base/bin" "$WORK/base/tmp" "$WORK/base/etc" "$WORK/ctx/data"
cp "$(command -v busybox)" "$WORK/base/bin/busybox"
for a in sh echo cat ls mkdir dd cp wc chmod head; do ln -s busybox "$WORK/base/bin/$a"; done
"$CELLA" import "$WORK/base" localhost/base:latest >/dev/null
"$CELLA" save -o "$WORK/base.tar" localhost/base:latest
"${BUILDAH[@]}" pull -q "oci-archive:$WORK/base.tar" >/dev/null
for i in $(seq "$FILES"); do echo "line $i of the context" >"$WORK/ctx/data/f$i.txt"; done
echo "port=8080" >"$WORK/ctx/app.conf"
cp "$REPO/bench/build.Containerfile" "$WORK/ctx/Containerfile"

cella_build() { t1 "$CELLA" build -q "$@" -t bench/app "$WORK/ctx"; }
buildah_build() { t1 "${BUILDAH[@]}" "${BUD[@]}" --layers "$@" -t bench/app "$WORK/ctx"; }

# the first build of each fills its cache (not timed)
"$CELLA" build -q -t bench/app "$WORK/ctx" >/dev/null
"${BUILDAH[@]}" "${BUD[@]}" --layers -t bench/app "$WORK/ctx" >/dev/null

cold_c="" cold_b="" re_c="" re_b="" ed_c="" ed_b=""
for r in $(seq "$ROUNDS"); do
	echo "port=$r" >"$WORK/ctx/app.conf"
	cold_c+=" $(cella_build --no-cache)"
	cold_b+=" $(buildah_build --no-cache)"
	cella_build >/dev/null # (each has this content in its cache now, whatever --no-cache kept)
	buildah_build >/dev/null
	re_c+=" $(cella_build)"
	re_b+=" $(buildah_build)"
	echo "port=$r-cella" >"$WORK/ctx/app.conf" # content neither has seen
	ed_c+=" $(cella_build)"
	echo "port=$r-buildah" >"$WORK/ctx/app.conf"
	ed_b+=" $(buildah_build)"
done
echo "== $ROUNDS rounds (times in microseconds)"
bench_ratio "cold (--no-cache)" cella "${cold_c# }" buildah "${cold_b# }"
bench_ratio "rebuild, nothing changed" cella "${re_c# }" buildah "${re_b# }"
bench_ratio "rebuild, one COPY changed" cella "${ed_c# }" buildah "${ed_b# }"
"$CELLA" run --rm bench/app sh -c 'cat /app/size.txt /app/app.conf; id -u' | tr '\n' ' ' | sed 's/^/cella image runs: /; s/$/\n/'
