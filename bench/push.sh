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
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
[ -x "$CELLA" ] && [ -x "$(dirname "$CELLA")/cella-image" ] || { echo "bench: build first (make all)" >&2; exit 1; }
for c in docker-registry skopeo python3 gcc; do
	command -v "$c" >/dev/null || { echo "bench: $c is not installed (sh scripts/deps.sh --bench)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/bench-push.XXXXXX)
export TEST_TMP=$WORK CELLA_ROOT=$WORK/store CELLA_RUN_ROOT=$WORK/run XDG_CONFIG_HOME=$WORK/config
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
