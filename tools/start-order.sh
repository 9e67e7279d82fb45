#!/bin/bash
# Writes the link order of cella's start path (the Makefile's CELLA_ORDER; `make start-order`):
#
#   sudo bash tools/start-order.sh build/cella tools/start-order.txt
#
# Runs the commands whose start-up speed counts (a foreground `cella run` of the ns backend, of the
# proot backend, `version`) under gdb, with a one-shot breakpoint on every function of the binary,
# in the process and in the processes it forks up to their exec (tools/start-order.py), and writes
# the functions that ran, in the order they first ran, one a line. lld's --symbol-ordering-file puts
# them side by side; a name the binary no longer has is ignored, one missing only costs a fault.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
CELLA=$(realpath "$1")
ORDER_FILE=$2
[ "$(id -u)" = 0 ] || { echo "start-order: run it as root (the ns backend's root path is the one measured)" >&2; exit 1; }
command -v gdb >/dev/null || { echo "start-order: needs gdb (apt-get install gdb)" >&2; exit 1; }
SYMS=$CELLA.debug
[ -f "$SYMS" ] || SYMS=$CELLA
WORK=$(mktemp -d /tmp/start-order.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export CELLA_ROOT=$WORK/data CELLA_RUN_ROOT=$WORK/run
. "$REPO/tests/integration/lib.sh"
make_rootfs "$WORK/root"
"$CELLA" run busybox true # the embedded image's import is not the path measured
record() {
	ORDER_SYMS=$SYMS ORDER_OUT=$WORK/hits timeout 600 gdb -q -batch -x "$REPO/tools/start-order.py" --args "$CELLA" "$@" >/dev/null 2>&1 </dev/null
}
record run busybox true
record run "$WORK/root" true
record run --backend proot "$WORK/root" true
record version
awk '!seen[$0]++' "$WORK/hits" >"$ORDER_FILE.tmp"
mv "$ORDER_FILE.tmp" "$ORDER_FILE"
echo "start-order: $(wc -l <"$ORDER_FILE") functions in $ORDER_FILE"
