#!/bin/bash
# Image benchmark (not a test; not part of make check).
#
#   sudo bash bench/image.sh
#   LAYERS=3 LAYER_MB=30 ROUNDS=5 bash bench/image.sh
#
# 1. Pull: an image of LAYERS layers (LAYER_MB MB of random data each, gzip) is pushed to Debian's
#    docker-registry on 127.0.0.1; then, ROUNDS times each, alternating, into fresh empty dirs:
#    `cella pull` (download, verify, unpack every layer) against `skopeo copy docker://… oci:DIR`
#    followed by `umoci unpack` (the same work done by the two usual tools). Ratio cella/(skopeo+umoci).
# 2. Create: `cella create IMAGE true` from a 20 MB and from a 1 GB image (imported once), CREATE_ROUNDS
#    times each: the container root is an overlay of the image's layers, so the size does not matter.
# 3. Disk: du of the store after 10 containers of the 20 MB image were created, against the image alone.
# Everything is in a temp dir, removed on exit.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
LAYERS=${LAYERS:-3}
LAYER_MB=${LAYER_MB:-30}
ROUNDS=${ROUNDS:-5}
CREATE_ROUNDS=${CREATE_ROUNDS:-20}
. "$REPO/bench/lib.sh"
bench_cella
bench_need docker-registry skopeo umoci python3 gcc

WORK=$(mktemp -d /tmp/bench-image.XXXXXX)
export TEST_TMP=$WORK
cleanup() {
	registry_stop 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. "$REPO/tests/integration/registry_lib.sh"
bench_timeit "$WORK"

echo "== building a $LAYERS-layer image of ${LAYER_MB} MB random data per layer"
bench_random_layout "$WORK/layout" "$LAYERS" "$LAYER_MB"
registry_start plain
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:v1" "docker://$REG_HOST/bench/img:v1"

echo "== pull: cella vs skopeo copy + umoci unpack ($ROUNDS rounds each, alternating)"
ctimes=() stimes=()
for r in $(seq "$ROUNDS"); do
	rm -rf "$WORK/c" "$WORK/s"
	mkdir -p "$WORK/s"
	sync
	t=$(t1 env CELLA_ROOT="$WORK/c" "$CELLA" pull -q "$REG_HOST/bench/img:v1")
	ctimes+=("$t")
	sync
	t=$(sh -c "start=\$(date +%s%N); skopeo copy -q --src-tls-verify=false docker://$REG_HOST/bench/img:v1 oci:$WORK/s/oci:v1 &&
		umoci unpack --image $WORK/s/oci:v1 $WORK/s/bundle >/dev/null && echo \$(( (\$(date +%s%N) - start) / 1000 ))")
	stimes+=("$t")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cm=$(median "${ctimes[@]}") sm=$(median "${stimes[@]}")
printf 'cella pull:              median %8.1f ms  (%s)\n' "$(echo "$cm / 1000" | bc -l)" "${ctimes[*]}"
printf 'skopeo copy+umoci unpack: median %8.1f ms  (%s)\n' "$(echo "$sm / 1000" | bc -l)" "${stimes[*]}"
printf 'ratio cella / (skopeo+umoci): %.2f\n' "$(echo "$cm / $sm" | bc -l)"

echo "== create from a 20 MB and a 1 GB image ($CREATE_ROUNDS rounds each)"
export CELLA_ROOT=$WORK/store CELLA_RUN_ROOT=$WORK/run
for size in 20 1024; do
	d=$WORK/rootfs-$size
	mkdir -p "$d/bin" "$d/data"
	cp "$(command -v busybox)" "$d/bin/busybox"
	ln -s busybox "$d/bin/sh"
	ln -s busybox "$d/bin/true"
	head -c $((size << 20)) /dev/urandom >"$d/data/blob"
	"$CELLA" image import "$d" "local/size:$size" >/dev/null
	rm -rf "$d"
	times=()
	for r in $(seq "$CREATE_ROUNDS"); do
		times+=("$(t1 "$CELLA" create "local/size:$size" true)")
	done
	printf 'create from a %4d MB image: median %6.2f ms  (min %6.2f)\n' "$size" \
		"$(echo "$(median "${times[@]}") / 1000" | bc -l)" "$(echo "$(printf '%s\n' "${times[@]}" | sort -n | head -1) / 1000" | bc -l)"
	"$CELLA" ps -aq | xargs -r "$CELLA" rm >/dev/null
done

echo "== disk: 10 containers of the 20 MB image"
before=$(du -sk "$CELLA_ROOT" | cut -f1)
for i in $(seq 10); do "$CELLA" create local/size:20 true >/dev/null; done
after=$(du -sk "$CELLA_ROOT" | cut -f1)
echo "store before: ${before} kB, after 10 containers: ${after} kB (+$((after - before)) kB)"
