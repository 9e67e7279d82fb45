/* The contract between the host side of the vm backend (src/vm/) and our guest
 * init (guest/, built as cella-vminit; docs/vm.md "Guest init" has the tested
 * QEMU command line).
 *
 * Boot: the host builds an initramfs (newc cpio, uncompressed; initramfs_build)
 * holding /init (cella-vminit, static), /cella/config (vm_guest_config as text,
 * see guestcfg_format), and the kernel modules the guest kernel needs when they
 * are not built in, as /cella/modules/<name>.ko, loaded by init in the order of
 * /cella/modules.order (absolute paths, dependencies first).
 * `module.param=value` words of the kernel command line are passed to that
 * module (no modprobe). Kernel command line from the host: console=ttyS0 quiet
 * panic=-1 reboot=t rdinit=/init
 *   + under TCG: tsc_early_khz=<host TSC kHz> (else the PIT calibration can
 * fail on a busy host and the boot hangs after "tsc: Marking TSC unstable"),
 * with -M microvm,pit=on,pic=on,rtc=on. QEMU microvm describes its virtio-mmio
 * devices by ACPI (keep microvm's default acpi=on): the Debian kernel has no
 * VIRTIO_MMIO_CMDLINE_DEVICES, so virtio_mmio.device= would not work. Devices
 * (QEMU -M microvm, all virtio-mmio: -device virtio-serial-device,
 * virtio-blk-device, virtio-9p-device; Firecracker has the same
 * blk/vsock/serial): ttyS0                 kernel console -> the host's console
 * log (never the workload's output) /dev/vda              the root disk (ext4),
 * when config root_dev is set; mounted rw unless root_ro; left clean (remounted
 * ro before power off) hvc0 (the first -device virtconsole) the workload's
 * stdin, raw bytes (no echo, no \n -> \r\n): without tty init feeds it into a
 * pipe, closed when the host sends "eof" (a console has no end of file); the
 * host must send "eof" at once when the workload has no stdin (else a read of
 * stdin waits forever). With tty init feeds it into the master of a
 * pseudo-terminal it made (/dev/ptmx), the workload's stdio and controlling
 * terminal. The host must not write to hvc0 before "ready": hvc0 echoes input
 * until init has made it raw. (QEMU drops what a console's host end does not
 * take at once, hence the ports below for all output.)
 *   -device virtserialport,name=cella.stdout and name=cella.stderr (always
 * given, before cella.ctl): the workload's stdout and stderr are pipes init
 * relays to these ports, with tty its terminal's master to cella.stdout (a
 * port's data waits in QEMU until its host end takes it: backpressure, nothing
 * dropped); init's own messages ("cella-init: ...") go to cella.stderr. A port
 * has no end of file either: init counts the bytes it wrote to each.
 *   -device virtserialport,name=cella.ctl (init finds it via
 * /sys/class/virtio-ports/vportNpM/name and waits up to 5 s for it and for
 * hvc0; missing: the setup fails) guest -> host lines: "ready\n" once the
 * workload is forked, "exported\n" (export_root only) once the root's tar
 * stream is on the export disk, "exit N OUT ERR\n" when it has exited (N =
 * 0..255; 128+sig when killed; 125 setup failure in init or before exec, 126
 * cannot exec, 127 not found; OUT, ERR: the bytes init wrote to cella.stdout
 * and cella.stderr in all), written after sync and after the workload's output
 * is all written to the ports; init waits up to 2 s for the host to take it
 * (the port is not readable without a connected host end), then for
 * "drained\n" before it powers off. host -> guest lines: "signal N\n" (init
 * forwards signal N to the workload), "eof\n" (see hvc0), "winsize R C\n"
 * (with tty: the terminal's size, so SIGWINCH in the guest), "drained\n" once
 * the host has read OUT and ERR bytes from the two ports (or ends QEMU itself
 * then: a foreground run's disk is thrown away).
 * Other lines are ignored. virtio-9p devices with mount_tag = vm_mount.tag,
 * mounted by init at vm_mount.target
 *       (trans=virtio,version=9p2000.L,msize=262144,cache=none; ro when asked;
 * the mount point is created, no symlinks followed). Signals: init forwards
 * SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 it receives to the
 * workload; Ctrl-Alt-Del (Firecracker SendCtrlAltDel) reaches init as a kernel
 * SIGINT and is forwarded as SIGTERM. When the workload exits, whatever it left
 * is SIGKILLed. Setup failure: "cella-init: <what>: <why>" on ttyS0 and cella.stderr (hvc0 before it is found),
 * "exit 125" on cella.ctl. Power off: init calls reboot(RB_AUTOBOOT); the host
 * runs QEMU with -no-reboot so it exits. Network: lo is always brought up;
 * with a `net` config line, -device virtio-net-device (virtio_net and its
 * dependencies net_failover, failover in the initramfs when modules) is the
 * guest's eth0, which init waits up to 5 s for and configures with the static
 * address, netmask and default route given (QEMU user-mode networking:
 * 10.0.2.15/24 via 10.0.2.2, DNS 10.0.2.3); `nameserver` lines make init
 * write /etc/resolv.conf in the container's root (else init writes nothing
 * there). A failure to configure the network is a setup failure (exit 125).
 * Root without root_dev: the initramfs
 * holds the container's tree too (initramfs_build_with_tree); init copies it
 * into a tmpfs (RAM: give the VM enough -m) and runs the workload there.
 */
#ifndef CELLA_VM_GUEST_H
#define CELLA_VM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../util/util.h"

struct vm_mount {
  char *tag;    /* 9p mount_tag */
  char *target; /* absolute path in the container */
  bool ro;
};

struct vm_tmpfs {
  char *target;            /* absolute path in the container */
  unsigned long long size; /* bytes; 0: the kernel's default (half the RAM) */
  unsigned mode;           /* 0: 01777 */
  unsigned long flags;     /* MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC only */
};

struct vm_guest_config {
  char **argv; /* NULL-terminated */
  char **env;  /* KEY=VALUE, NULL-terminated */
  char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
  char *hostname;
  /* exec requests only: -u USER[:GROUP] (names or ids), resolved by init
   * against the guest's /etc/passwd and /etc/group; NULL: uid/gid/groups */
  char *user;
  char *root_dev;    /* "/dev/vda"; NULL: the initramfs itself holds the root (copy
                        to tmpfs) */
  char *root_fstype; /* "ext4" */
  bool root_ro;
  /* cella build's RUN (plan vm_export): once the workload exited 0, init writes
   * the root disk's tree (no other mount) as a tar stream (src/vm/tar.h) to the
   * virtio-blk disk whose serial is VM_EXPORT_SERIAL and says "exported" on
   * cella.ctl before its "exit 0"; /etc/resolv.conf, when init gives one, is
   * a bind mount then, never written to the root. */
  bool export_root;
  struct vm_mount *mounts;
  size_t nmounts;
  bool tty;
  /* --tmpfs: mounted by init in the container's root (after the volumes) */
  struct vm_tmpfs *tmpfs;
  size_t ntmpfs;
  /* with caps_set: the workload's (and each exec's) bounding set, and its
   * effective/permitted/inheritable sets when it runs as uid 0 (--cap-add,
   * --cap-drop: docker's defaults changed); without: all of them */
  bool caps_set;
  unsigned long long caps;
  bool no_new_privs; /* --security-opt no-new-privileges */
  /* Network (additive): with net_addr, init configures net_ifname (default
   * eth0, the virtio-net device) with it and a default route via net_gateway;
   * lo is brought up always. nameservers (NULL-terminated, NULL: none): init
   * writes /etc/resolv.conf in the container's root with them, and writes it
   * only then. */
  char *net_ifname;  /* "eth0" */
  char *net_addr;    /* "10.0.2.15/24" (IPv4 address/prefix length) */
  char *net_gateway; /* "10.0.2.2"; NULL: no default route */
  char **nameservers;
};

/* Start from a snapshot: an initramfs whose /cella/config is this line (and
 * nothing else) holds no container: init says "waiting" on cella.ctl and reads
 * its seed, MAC, config and clock from there (guest/snap.c has the lines). */
#define VM_EXPORT_SERIAL "cella-export"

#define SNAP_WAIT_MAGIC "cella-vm-wait 1\n"

/* Limits guestcfg_parse enforces (the format itself is described in
 * guestcfg.c). */
#define GUESTCFG_MAX_BYTES (4 << 20)
#define GUESTCFG_MAX_STRINGS 65536 /* argv entries, env entries (each) */
#define GUESTCFG_MAX_GROUPS 65536  /* NGROUPS_MAX */
#define GUESTCFG_MAX_MOUNTS 256
#define GUESTCFG_MAX_HOSTNAME 64 /* HOST_NAME_MAX */
#define GUESTCFG_MAX_NAMESERVERS 8
#define GUESTCFG_MAX_IFNAME 15 /* IFNAMSIZ - 1 */

/* ---- cella exec: the cella.exec port ----
 * A second virtserialport, name=cella.exec (optional: without it, no exec).
 * Both ways a stream of frames: an 8-byte header, u8 type, u8 0, u16 session
 * id, u32 payload length (little-endian), then the payload. Each `cella exec`
 * is one session; the host picks its id (1..EXEC_MAX_SESSIONS) and does not
 * reuse it before the guest's EXIT for it. Host -> guest:
 *   OPEN    a guest config text (guestcfg_format: argv, env, cwd, uid, gid,
 *           groups, tty, user), at most EXEC_MAX_OPEN bytes; init forks the
 *           command (a session of its own; with tty a pty, else pipes)
 *   STDIN   bytes for its stdin (empty: end of input). The host keeps at most
 *           EXEC_WINDOW bytes unacknowledged per session (see ACK)
 *   RESIZE  u16 rows, u16 cols: the pty's window size
 *   SIGNAL  u32 signal number, sent to the command
 *   CLOSE   the caller went away: the command's session is SIGKILLed
 * Guest -> host:
 *   STDOUT, STDERR  output (at most EXEC_MAX_DATA bytes each; with a tty all
 *           output is STDOUT); empty: that stream ended
 *   ACK     u32: that many STDIN bytes were written to the command
 *   EXIT    u32 exit status (0..255, 128+signal; 126/127 exec failed, the
 *           reason on STDERR), the last frame of a session, after its output.
 * The host reads guest frames as untrusted: lengths are checked against these
 * limits and frames for unknown sessions are dropped. */
#define EXEC_PORT_NAME "cella.exec"
/* The workload's stdout and stderr without tty (above). */
#define STDOUT_PORT_NAME "cella.stdout"
#define STDERR_PORT_NAME "cella.stderr"
#define EXEC_HDR 8
#define EXEC_MAX_DATA 32768
#define EXEC_MAX_OPEN (1 << 20)
#define EXEC_MAX_SESSIONS 64
#define EXEC_WINDOW 65536
enum exec_frame {
  EXEC_OPEN = 1,
  EXEC_STDIN = 2,
  EXEC_RESIZE = 3,
  EXEC_SIGNAL = 4,
  EXEC_CLOSE = 5,
  EXEC_STDOUT = 16,
  EXEC_STDERR = 17,
  EXEC_ACK = 18,
  EXEC_EXIT = 19,
};
/* `cella top` and `cella cp` on a running VM are exec sessions whose argv[0] is
 * GUEST_INTERNAL (guest/internal.c): init runs them with its own code in the
 * session's child, as root with every capability, in the container's root
 * (whatever the container's user and capabilities), never exec'ing:
 *   __ps                    the process table (PID UID CMD, a header first; init
 *                           and kernel threads left out) on stdout
 *   __tar-out DIR NAME 0|1  DIR/NAME as a tar stream (src/vm/tar.h) on stdout,
 *                           its top entry NAME; 1: NAME may be a symlink to follow
 *   __tar-in DST whole|contents  a tar stream on stdin put at DST by docker's cp
 *                           rules (tar.h's first entry is the source; contents:
 *                           its directory's contents, `SRC/.`)
 * Exit 0, else 1 with "cella: ..." on stderr. */
#define GUEST_INTERNAL "/proc/1/exe"

static inline void
exec_hdr_put (unsigned char *h, unsigned type, unsigned id, size_t len)
{
  h[0] = (unsigned char) type;
  h[1] = 0;
  h[2] = (unsigned char) (id & 0xff);
  h[3] = (unsigned char) (id >> 8);
  for (int i = 0; i < 4; i++)
    h[4 + i] = (unsigned char) (len >> (8 * i));
}

static inline unsigned
exec_u32 (const unsigned char *p)
{
  return (unsigned) p[0] | (unsigned) p[1] << 8 | (unsigned) p[2] << 16 | (unsigned) p[3] << 24;
}

/* The config as text (malloc'd, *len set); guestcfg_parse reads it back.
 * guestcfg_parse checks: argv non-empty, env entries KEY=VALUE, cwd and mount
 * targets absolute without `..` components, ids below 2^32-1, hostname 1..64
 * bytes, modes ro|rw, the limits above, a final `end` line (truncation). On
 * success c->env is never NULL (maybe empty); a `root` line sets
 * root_dev/root_fstype/root_ro together; a `net` line (IFNAME ADDR/PREFIX
 * GATEWAY|-, IPv4) sets net_ifname/net_addr/net_gateway together;
 * `nameserver` lines (IPv4 or IPv6 addresses) fill nameservers. On error *c is
 * left zeroed. */
char *guestcfg_format (const struct vm_guest_config *c, size_t *len);
int guestcfg_parse (const char *text, size_t len, struct vm_guest_config *c, cella_error_t *err);
void guestcfg_free (struct vm_guest_config *c);
/* The value of one hex digit (either case), -1 for anything else. */
int guestcfg_hexval (char ch);

/* Write the initramfs to `out` (created 0600, replaced atomically): /init from
 * init_path, /cella/config, and the modules kernel_release needs for
 * virtio-mmio, virtio-blk, virtio-console, 9p over virtio, vsock, ext4 and
 * virtio-net (none
 * when they are built in or kernel_release is NULL). */
int initramfs_build (const char *out, const char *init_path, const char *kernel_release, const char *config,
                     size_t config_len, cella_error_t *err);
/* The same, plus the whole tree at `tree` (entries owned by root, modes and
 * times kept, sockets left out; top-level `init` and `cella` skipped): for a
 * config without root_dev, the guest init copies this tree into a tmpfs and
 * runs the workload there. */
int initramfs_build_with_tree (const char *out, const char *init_path, const char *kernel_release, const char *config,
                               size_t config_len, const char *tree, cella_error_t *err);
/* The modules under `moddir` (/lib/modules/<release>) the guest needs,
 * dependencies first, as absolute paths (*out NULL-terminated, NULL when none
 * are needed or moddir does not exist). Fails on a required module that is
 * neither built in nor listed, and on compressed modules. */
int initramfs_modules (const char *moddir, char ***out, cella_error_t *err);

#endif
