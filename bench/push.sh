#!/bin/bash
# Push benchmark (not a test; not part of make check).
#
#   bash bench/push.sh
#   LAYERS=4 LAYER_MB=25 ROUNDS=5 bash bench/push.sh
#
# An image of LAYERS layers (LAYER_MB MB of random data each, gzip: ~LAYERS*LAYER_MB MB of blobs)
# is written as an OCI layout and imported into a cella store. Then, ROUNDS times each, alternating,
# each time into a freshly started, empty docker-registry on 127.0.0.1 (so neither tool finds a blob
# there or mounts one it saw before): `cella push IMAGE REG/bench/img:v1` against
# `skopeo copy oci:LAYOUT:v1 docker://REG/bench/img:v1` (same blobs, read from local disk by both).
# Ratio cella/skopeo, medians.
set -eu
[ -z "${BENCH_TRACE:-}" ] || set -x

REPO=$(cd "$(dirname "$0")/.." && pwd)
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-25}
ROUNDS=${ROUNDS:-5}
. "$REPO/bench/lib.sh"
bench_cella
bench_need docker-registry skopeo python3 gcc

WORK=$(mktemp -d /tmp/bench-push.XXXXXX)
export TEST_TMP=$WORK CELLA_ROOT=$WORK/store CELLA_RUN_ROOT=$WORK/run XDG_CONFIG_HOME=$WORK/config
cleanup() {
	registry_stop 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. "$REPO/tests/integration/registry_lib.sh"
bench_timeit "$WORK"

echo "== building a $LAYERS-layer image of ${LAYER_MB} MB random data per layer"
bench_random_layout "$WORK/layout" "$LAYERS" "$LAYER_MB"
du -sh "$WORK/layout/blobs" | awk '{ print "blobs: " $1 }'
"$CELLA" image import "$WORK/layout" local/bench:v1 >/dev/null

echo "== push: cella vs skopeo copy ($ROUNDS rounds each, alternating, a fresh registry each time)"
ctimes=() stimes=() cd="" sd=""
for r in $(seq "$ROUNDS"); do
	registry_start plain
	sync
	t=$(t1 "$CELLA" push -q local/bench:v1 "$REG_HOST/bench/img:v1")
	ctimes+=("$t")
	cd=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/bench/img:v1")
	registry_stop || true
	registry_start plain
	sync
	t=$(t1 skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:v1" "docker://$REG_HOST/bench/img:v1")
	stimes+=("$t")
	sd=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/bench/img:v1")
	registry_stop || true
done
[ "$cd" = "$sd" ] || echo "bench: the two pushes gave other digests: cella $cd, skopeo $sd" >&2
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cm=$(median "${ctimes[@]}") sm=$(median "${stimes[@]}")
printf 'cella push:   median %8.1f ms  (%s)\n' "$(echo "$cm / 1000" | bc -l)" "${ctimes[*]}"
printf 'skopeo copy:  median %8.1f ms  (%s)\n' "$(echo "$sm / 1000" | bc -l)" "${stimes[*]}"
printf 'ratio cella / skopeo: %.2f\n' "$(echo "$cm / $sm" | bc -l)"
