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
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
[ -x "$CELLA" ] && [ -x "$(dirname "$CELLA")/cella-image" ] || { echo "bench: build first (make all)" >&2; exit 1; }
for c in docker-registry skopeo umoci python3 gcc; do
	command -v "$c" >/dev/null || { echo "bench: $c is not installed (sh scripts/deps.sh --bench)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/bench-image.XXXXXX)
export TEST_TMP=$WORK
cleanup() {
	registry_stop 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. "$REPO/tests/integration/registry_lib.sh"
gcc -O2 -o "$WORK/timeit" "$REPO/bench/timeit.c"
# microseconds of one run of a command
t1() { "$WORK/timeit" 1 -- x "$@" | awk '{ print int($2 / 1000) }'; }

echo "== building a $LAYERS-layer image of ${LAYER_MB} MB random data per layer"
python3 - "$WORK/layout" "$LAYERS" "$LAYER_MB" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
out, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs = [], []
for i in range(n):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for j in range(mb):
            data = os.urandom(1 << 20)
            ti = tarfile.TarInfo(f"layer{i}/file{j}"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    r = raw.getvalue()
    diffs.append("sha256:" + hashlib.sha256(r).hexdigest())
    d, s = blob(gzip.compress(r, 1))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
           "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
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
