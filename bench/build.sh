#!/bin/bash
# Build benchmark (not a test; not part of make check).
#
#   sudo bash bench/build.sh
#   ROUNDS=5 bash bench/build.sh
#
# One Containerfile (2 stages: RUNs, COPYs of a context of FILES small files, config steps), built
# by `cella build` and by `buildah bud` over the same busybox image (made by cella from the embedded
# busybox, handed to buildah as an OCI archive: no network), ROUNDS times each, alternating:
#   cold    --no-cache (cella) / --layers --no-cache (buildah): every step runs
#   cached  the same file again, nothing changed: every step hits the cache
# Prints the median of each and the ratio cella/buildah. Everything is in a temp dir, removed on exit.
# buildah runs its RUN steps with --isolation chroot: its OCI runtime (crun) refuses a cgroup v1
# hybrid host; chroot isolation starts less than a container does, which favours buildah.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
FILES=${FILES:-200}
CELLA=${CELLA:-$REPO/build/cella}
case "$CELLA" in /*) ;; *) CELLA=$PWD/$CELLA ;; esac
[ -x "$CELLA" ] && [ -x "$(dirname "$CELLA")/cella-image" ] || { echo "bench: build first (make all)" >&2; exit 1; }
command -v buildah >/dev/null || { echo "bench: buildah is not installed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-build.XXXXXX)
export CELLA_ROOT=$WORK/cella CELLA_RUN_ROOT=$WORK/cella-run
BUILDAH=(buildah --root "$WORK/buildah" --runroot "$WORK/buildah-run" --storage-driver overlay)
cleanup() {
	"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
	"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
	umount -R -l "$WORK/buildah" 2>/dev/null || true
	rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

# the base: the embedded busybox as a store image, saved as an OCI archive for buildah
mkdir -p "$WORK/base"
printf 'FROM busybox\nLABEL bench=base\n' >"$WORK/base/Containerfile"
"$CELLA" build -q -t bench/bb "$WORK/base" >/dev/null
"$CELLA" save -o "$WORK/bb.tar" bench/bb >/dev/null

ctx() { # DIR FROM
	mkdir -p "$1/files"
	for i in $(seq "$FILES"); do echo "file $i" >"$1/files/f$i.txt"; done
	cat >"$1/Containerfile" <<EOT
FROM $2 AS builder
RUN mkdir -p /out && for i in 1 2 3 4 5; do echo \$i > /out/\$i; done
COPY files/ /src/
RUN cat /src/*.txt | wc -l > /out/count
FROM $2
ENV APP=bench
WORKDIR /app
COPY --from=builder /out/ /app/out/
COPY files/f1.txt /app/
RUN echo done > /app/done
LABEL bench=yes
CMD ["cat", "/app/out/count"]
EOT
}
ctx "$WORK/c-cella" bench/bb
ctx "$WORK/c-buildah" "oci-archive:$WORK/bb.tar"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$WORK/cc" >"$WORK/bc" >"$WORK/ch" >"$WORK/bh"
for r in $(seq "$ROUNDS"); do
	ms "$CELLA" build --no-cache -q -t bench/app "$WORK/c-cella" >>"$WORK/cc"
	ms "${BUILDAH[@]}" bud --isolation chroot --layers --no-cache -q -t bench/app "$WORK/c-buildah" >>"$WORK/bc"
	ms "$CELLA" build -q -t bench/app "$WORK/c-cella" >>"$WORK/ch"
	ms "${BUILDAH[@]}" bud --isolation chroot --layers -q -t bench/app "$WORK/c-buildah" >>"$WORK/bh"
	echo "round $r/$ROUNDS" >&2
done
cc=$(median <"$WORK/cc") bc=$(median <"$WORK/bc") ch=$(median <"$WORK/ch") bh=$(median <"$WORK/bh")
printf '%-28s %10s %10s %8s\n' "build (median of $ROUNDS)" cella buildah ratio
printf '%-28s %8s ms %8s ms %8s\n' "cold (--no-cache)" "$cc" "$bc" "$(awk "BEGIN {printf \"%.2f\", $cc/$bc}")"
printf '%-28s %8s ms %8s ms %8s\n' "cached (nothing changed)" "$ch" "$bh" "$(awk "BEGIN {printf \"%.2f\", $ch/$bh}")"
