#!/bin/bash
# Boot an initramfs made by initramfs_build under QEMU microvm the way the host side must, for
# testing the guest init by hand (docs/vm.md, "Guest init"). The workload's output goes to stdout
# and stderr (the cella.stdout and cella.stderr ports; hvc0 to stdout too), the
# cella.ctl lines to stderr as "ctl: ...", the kernel console to the -c file; the script exits with
# the code of the "exit N OUT ERR" line (or 125 when none came), once OUT and ERR bytes were read.
#   vm-boot-guest.sh [-k KERNEL] [-d DISK.img] [-v TAG=DIR[:ro]]... [-s SIGNAL] [-c CONSOLE.log]
#                    [-a kvm|tcg] [-m MEM-MiB] [-i STDIN-FILE] INITRAMFS
# -s sends "signal N" 0.5 s after "ready"; -i sends the file to hvc0 after "ready", then "eof".
# CELLA_VM_EARLY_EOF=1 with -i: send the input and "eof" at once, before "ready" (the input is
# then echoed: the tty is not raw yet).
# CELLA_VM_KARGS replaces `quiet` on the kernel command line (CELLA_VM_KARGS= shows the boot).
set -euo pipefail

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
disk="" sig="" console=/dev/null accel="" mem=256 input="" eof=""
vols=()
while getopts "k:d:v:s:c:a:m:i:" opt; do
	case "$opt" in
	k) kernel=$OPTARG ;;
	d) disk=$OPTARG ;;
	v) vols+=("$OPTARG") ;;
	s) sig=$OPTARG ;;
	c) console=$OPTARG ;;
	a) accel=$OPTARG ;;
	m) mem=$OPTARG ;;
	i) input=$OPTARG eof=1 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || { echo "usage: see the head of $0" >&2; exit 2; }
initrd=$1
if [ -z "$accel" ]; then
	accel=tcg # KVM only where QEMU can start a guest on it (a nested /dev/kvm can refuse QEMU)
	if [ -w /dev/kvm ] && echo quit | qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 64M -nodefaults \
		-no-user-config -display none -S -monitor stdio >/dev/null 2>&1; then accel=kvm; fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# microvm: the virtio-mmio devices are described by ACPI (Debian's kernel has no
# VIRTIO_MMIO_CMDLINE_DEVICES). The kernel calibrates the TSC against the PIT; under TCG on a
# busy host that fails and the boot hangs, so TCG gets the PIT and the TSC rate on the command line.
machine="microvm,accel=$accel"
kargs="console=ttyS0 ${CELLA_VM_KARGS-quiet} panic=-1 reboot=t rdinit=/init"
if [ "$accel" = tcg ]; then
	machine="$machine,pit=on,pic=on,rtc=on"
	kargs="$kargs tsc_early_khz=2000000"
fi
args=(-M "$machine" -m "$mem" -no-reboot -nodefaults -no-user-config -nographic
	-kernel "$kernel" -initrd "$initrd" -append "$kargs"
	-serial "file:$console"
	-device virtio-serial-device
	-chardev "socket,id=hvc,path=$tmp/hvc.sock,server=on,wait=off" -device virtconsole,chardev=hvc
	-chardev "socket,id=out,path=$tmp/out.sock,server=on,wait=off" -device virtserialport,chardev=out,name=cella.stdout
	-chardev "socket,id=err,path=$tmp/err.sock,server=on,wait=off" -device virtserialport,chardev=err,name=cella.stderr
	-chardev "socket,id=ctl,path=$tmp/ctl.sock,server=on,wait=off" -device virtserialport,chardev=ctl,name=cella.ctl)
[ "$accel" = kvm ] && args+=(-cpu host)
if [ -n "$disk" ]; then
	args+=(-drive "id=root,file=$disk,format=raw,if=none" -device virtio-blk-device,drive=root)
fi
i=0
for v in "${vols[@]}"; do
	tag=${v%%=*} dir=${v#*=} ro=""
	case "$dir" in *:ro) dir=${dir%:ro} ro=",readonly=on" ;; esac
	args+=(-fsdev "local,id=fs$i,path=$dir,security_model=none$ro" -device "virtio-9p-device,fsdev=fs$i,mount_tag=$tag")
	i=$((i + 1))
done

qemu-system-x86_64 "${args[@]}" </dev/null &
qpid=$!
cat >"$tmp/host.py" <<'PY'
# The host's part: relay hvc0 and cella.stdout to stdout (fd 3), cella.stderr to stderr, send
# stdin only after "ready" (input that reaches hvc0 before the guest init has made it raw would be
# echoed by the tty), then "eof"; read "exit N OUT ERR", answer "drained" once that much was read.
import os, select, socket, sys, time
tmp, sig, inp, eof = sys.argv[1:5]
def connect(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(3000):
        try:
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.01)
    return None
ctl, hvc = connect(tmp + "/ctl.sock"), connect(tmp + "/hvc.sock")
out, err = connect(tmp + "/out.sock"), connect(tmp + "/err.sock")
if ctl is None or hvc is None or out is None or err is None:
    print(125)
    sys.exit(0)
code, buf, live = 125, b"", {ctl, hvc, out, err}
got, want = {out: 0, err: 0}, None
if eof and os.environ.get("CELLA_VM_EARLY_EOF"):
    hvc.sendall(open(inp, "rb").read())  # a host that sends stdin and "eof" before "ready"
    ctl.sendall(b"eof\n")
    eof = ""
while ctl in live:
    for f in select.select(list(live), [], [])[0]:
        data = f.recv(65536)
        if not data:
            live.discard(f)
        elif f is hvc or f is out:
            os.write(3, data)
            got[out] += len(data) if f is out else 0
        elif f is err:
            os.write(2, data)
            got[err] += len(data)
        else:
            buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        sys.stderr.write("ctl: %s\n" % line.decode(errors="replace"))
        if line == b"ready" and sig:
            time.sleep(0.5)
            ctl.sendall(b"signal %s\n" % sig.encode())
        if line == b"ready" and eof:
            hvc.sendall(open(inp, "rb").read())
            ctl.sendall(b"eof\n")
        if line.startswith(b"exit "):
            words = line.split()
            code = int(words[1])
            want = (int(words[2]), int(words[3])) if len(words) == 4 else (0, 0)
    if want and got[out] >= want[0] and got[err] >= want[1]:
        ctl.sendall(b"drained\n")
        want = None
# what hvc0 still holds: until QEMU closes it
for f, fd in ((hvc, 3), (out, 3), (err, 2)):
    while f in live:
        data = f.recv(65536)
        if not data:
            break
        os.write(fd, data)
print(code)
PY
exec 3>&1
code=$(python3 "$tmp/host.py" "$tmp" "$sig" "$input" "$eof")
wait "$qpid" || true
exit "$code"
