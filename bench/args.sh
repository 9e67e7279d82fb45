#!/bin/bash
# Long argument vectors (not a test; not part of make check): how the time to start a container
# grows with its number of arguments. Every vector used to be grown one string at a time (each
# append walked the whole vector) and the engine joined the command line with strcat: quadratic.
#
#   bash bench/args.sh                      # build/cella
#   CELLA=/path/to/other/cella bash bench/args.sh
#
# Measures, with arguments "1" (the stack limit is raised so that the kernel takes them):
#   - `cella run busybox true ARGS` (foreground, ns) for N in $SIZES;
#   - `cella run -d` with the largest N, until the log shows the workload ran;
#   - `cella oci run` of a bundle whose process.args has $OCI_ARGS entries (parsing and the plan;
#     past ~500,000 the kernel refuses the exec with E2BIG, which is the expected end);
#   - an image whose Cmd has $IMAGE_ARGS entries (an OCI layout made here, imported), run with
#     no command.
# Prints one line per case: the case and the wall time in seconds (a case that takes more than
# $LIMIT seconds is cut off and shown as ">LIMIT").
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
SIZES=${SIZES:-"20000 80000 200000"}
OCI_ARGS=${OCI_ARGS:-1000000}
IMAGE_ARGS=${IMAGE_ARGS:-100000}
LIMIT=${LIMIT:-120}
command -v jq >/dev/null && command -v python3 >/dev/null || { echo "bench: needs jq and python3" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-args.XXXXXX)
export CELLA_ROOT=$WORK/data CELLA_RUN_ROOT=$WORK/run
cleanup() { "$CELLA" rm -f many >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
ulimit -s unlimited 2>/dev/null || ulimit -s "$(ulimit -H -s)"

# timed WHAT CMD...: wall time of CMD (its output dropped), cut off after LIMIT seconds
timed() {
	local what=$1 t0 t1 rc=0
	shift
	t0=$(date +%s.%N)
	timeout "$LIMIT" "$@" >/dev/null 2>&1 || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" = 124 ]; then
		printf '%-44s >%s s\n' "$what" "$LIMIT"
	else
		printf '%-44s %6.2f s%s\n' "$what" "$(echo "$t1 - $t0" | bc)" "$([ "$rc" = 0 ] || echo " (exit $rc)")"
	fi
}

echo "cella: $CELLA ($(nproc) CPUs, $(uname -r))"
"$CELLA" run busybox true >/dev/null # the embedded image in place before anything is timed
for n in $SIZES; do
	mapfile -t args < <(yes 1 | head -n "$n")
	timed "run busybox true, $n args" "$CELLA" run busybox true "${args[@]}"
done
timed "run -d busybox true, $n args" "$CELLA" run -d --name many busybox true "${args[@]}"
"$CELLA" rm -f many >/dev/null 2>&1 || true

# an OCI bundle: the busybox tree of the embedded image, process.args of OCI_ARGS entries
mkdir -p "$WORK/b/rootfs"
"$CELLA" run -v "$WORK/b/rootfs:/out" busybox sh -c 'cp -a /bin /etc /out/' >/dev/null
(cd "$WORK/b" && "$CELLA" spec $([ "$(id -u)" = 0 ] || echo --rootless))
python3 - "$WORK/b/config.json" "$OCI_ARGS" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["true"] + ["1"] * int(sys.argv[2])
c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))
EOF
timed "oci run, process.args of $OCI_ARGS" "$CELLA" --root "$WORK/oci" run --bundle "$WORK/b" big

# an OCI image layout whose config's Cmd has IMAGE_ARGS entries (one layer: the same tree)
python3 - "$WORK/b/rootfs" "$WORK/layout" "$IMAGE_ARGS" <<'EOF'
import hashlib, io, json, os, sys, tarfile
root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (out, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(root, arcname=".")
layer = dict(blob(buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar")
diff = layer["digest"]
cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]},
       "config": {"Cmd": ["/bin/true"] + ["1"] * n}}
config = dict(blob(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]}
m = dict(blob(json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "bigcmd"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
EOF
"$CELLA" import "$WORK/layout" bigcmd:1 >/dev/null
timed "run an image with a Cmd of $IMAGE_ARGS" "$CELLA" run bigcmd:1
