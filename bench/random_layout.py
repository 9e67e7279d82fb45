#!/usr/bin/env python3
"""bench/random_layout.py DIR LAYERS MB: an OCI image layout in DIR (tag v1) of LAYERS gzip
layers, each of MB files of 1 MiB random data (for the image and push benchmarks)."""
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
