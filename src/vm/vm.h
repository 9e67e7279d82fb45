/* The vm backend, host side: a plan run in a microVM (QEMU -M microvm; Firecracker when asked).
 * The guest side (our init, its config, the initramfs) is guest.h's contract.
 *
 *   disk.c     the root disk: an ext4 image of the container's root built without privileges,
 *              cached per image, cloned per container; the symlink- and mount-safe work dir removal
 *   kernel.c   which kernel boots the guest, and its release
 *   qemu.c     QEMU's command line, /dev/kvm, QMP
 *   backend.c  running a plan: foreground (vm_run) and under the engine's monitor (vm_start) */
#ifndef CELLA_VM_H
#define CELLA_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "ns/ns.h"
#include "plan/plan.h"
#include "util/util.h"

/* ---- disk.c ---- */

/* The size of a disk for `used` bytes of files: 2 × used + 32 MiB, rounded up to 16 MiB, at
 * least 64 MiB. */
uint64_t vm_disk_size (uint64_t used);

/* Build an ext4 image at `out` (replaced atomically; created 0600) holding the tree `dir`, with
 * mkfs.ext4 -d on a truncated file: no mount, no privileges. As an unprivileged user mkfs runs
 * inside the user namespace of rootless containers (ns_run_mapped), where the files of the
 * container's root appear with their container owners (the caller's own files as root), so the
 * image records those; as root the owners are the host's. Modes, times, xattrs, hard links,
 * symlinks and device nodes are mkfs's copy. */
int vm_disk_build (const char *dir, const char *out, cella_error_t *err);

/* The root disk of p's image (its layers merged): built once into
 * $data/vm/disks/<key>.ext4 (key: the image id, else the root directory's identity), under a lock
 * so concurrent runs build it once; *path (malloc'd). A plan with a plain root directory (not an
 * image) gets a fresh disk at `fresh` instead, nothing cached. */
int vm_disk_for_plan (const struct plan *p, const char *fresh, char **path, cella_error_t *err);

/* Copy the disk src to dst (must not exist): a reflink (FICLONE) where the file system can, else
 * a copy of the data that keeps holes. *method: "reflink" or "copy". */
int vm_disk_clone (const char *src, const char *dst, const char **method, cella_error_t *err);

/* Remove a VM's work directory, refusing (nothing removed) when path is a symbolic link or when a
 * mount (this process's /proc/self/mountinfo) is at or below it: a tree with a mount in it would
 * lose the mounted file system's contents. */
int vm_workdir_remove (const char *path, cella_error_t *err);

/* ---- kernel.c ---- */

/* The guest kernel: `override` (--kernel) when given, else the newest readable /boot/vmlinuz-*.
 * *path and *release (malloc'd; release NULL when neither the file name nor the bzImage header
 * says it). Error naming the package to install when there is none. */
int vm_kernel_find (const char *override, char **path, char **release, cella_error_t *err);

/* The version string of a bzImage header (its first word: the release), or NULL. */
char *vm_kernel_release_of (const char *path);

/* ---- qemu.c ---- */

struct vm_share {
  const char *host;  /* directory on the host */
  const char *tag;   /* 9p mount_tag */
  bool ro;
};

struct vm_launch {
  const char *qemu;        /* the program (NULL: qemu-system-x86_64 on PATH) */
  const char *kernel, *initrd, *cmdline;
  const char *disk;        /* raw ext4 image, NULL for none */
  bool kvm;
  unsigned memory_mib, cpus;
  const char *console_log; /* ttyS0 to this file */
  int hvc_fd;              /* a connected socket: the workload's stdio (virtconsole hvc0) */
  int ctl_fd;              /* a connected socket: the cella.ctl port */
  int qmp_fd;              /* a listening socket: QMP */
  const struct vm_share *shares;
  size_t nshares;
  const char *netdev;      /* -netdev value of the NIC ("user,id=n0,..."), NULL: no NIC */
  const char *net_mac;     /* the NIC's MAC address (a tap on a bridge), NULL: QEMU's default */
};

/* Can QEMU run a KVM guest here: /dev/kvm opens read-write and QEMU starts a paused microvm with
 * `-accel kvm -cpu host` (a nested hypervisor can offer a /dev/kvm that QEMU cannot use)? Never with
 * $CELLA_NO_KVM set (not "0"). vm_kvm_problem returns NULL for yes, else why not (malloc'd); the
 * QEMU probe's answer is kept in CACHE_DIR/kvm-probe (NULL or a missing dir: not kept) until the next boot or
 * another QEMU binary. */
char *vm_kvm_problem (const char *cache_dir);

/* Kernel arguments a guest under TCG needs: the TSC's rate (the host's, which TCG's rdtsc
 * returns), so that the guest need not calibrate it against the emulated PIT, which fails on a
 * busy host and stalls the boot ("tsc: Unable to calibrate against PIT"). "" when unknown. */
char *vm_tcg_cmdline (void);

/* The guest's user-mode network (QEMU's slirp): the guest 10.0.2.15/24, gateway 10.0.2.2, DNS
 * 10.0.2.3 (QEMU's defaults, given explicitly). */
#define VM_NET_GUEST_ADDR "10.0.2.15/24"
#define VM_NET_GATEWAY "10.0.2.2"
#define VM_NET_DNS "10.0.2.3"

/* The -netdev value for user-mode networking with ports published: plan ports
 * ("IP:HOST:CTR/PROTO", HOST 0 for any) → hostfwd=PROTO:IP:HOST-:CTR. Random host ports are
 * picked, every host port checked free (net_port_check). *lines: "80/tcp -> 0.0.0.0:8080\n" per
 * port (malloc'd, "" when none). */
int vm_netdev_user (char *const *ports, const char *id, char **netdev, char **lines, cella_error_t *err);

/* QEMU's argv for l (no shell). */
char **vm_qemu_argv (const struct vm_launch *l);

/* The QEMU program: $CELLA_QEMU, else qemu-system-x86_64 on PATH; error naming the package. */
int vm_qemu_find (char **path, cella_error_t *err);

/* Send one QMP command (after the handshake) to the listening socket at qmp_path, e.g.
 * "system_powerdown" or "quit". */
int vm_qmp (const char *qmp_path, const char *command, cella_error_t *err);

/* ---- backend.c ---- */

/* Resolve what the plan's VM needs that the host decides (kernel, engine program, accel) and
 * record it in p; run at plan time so errors come before anything starts. */
int vm_plan_prepare (struct plan *p, cella_error_t *err);

/* Can a VM run here (QEMU, a guest kernel, our guest init)? *why (malloc'd, when given): what is
 * missing and how to get it, or what would be used. */
bool vm_available (char **why);

/* Run p in a VM in the foreground: the workload's exit status, or -1 with *err. */
int vm_run (struct plan *p, cella_error_t *err);

/* Start p's VM for the monitor: a supervisor process (its own process group: stop's SIGTERM goes
 * to the guest's workload as "signal 15") with the caller's stdio, whose exit status is the
 * workload's. work_dir keeps the container's disk and console log between starts. */
int vm_start (struct plan *p, const char *work_dir, struct ns_proc *out, cella_error_t *err);

#endif
