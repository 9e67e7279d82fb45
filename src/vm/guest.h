/* The contract between the host side of the vm backend (src/vm/) and our guest init (guest/init.c).
 *
 * Boot: the host builds an initramfs (newc cpio, uncompressed) holding /init (guest/init, static),
 * /cella/config (vm_guest_config as text, see guestcfg_format) and the kernel modules the guest
 * kernel needs when they are not built in (/lib/modules/<release>/..., loaded by init in order
 * from /cella/modules.order). Kernel command line from the host:
 *   console=ttyS0 quiet panic=-1 reboot=t rdinit=/init   (+ QEMU microvm's virtio_mmio.device=...)
 * Devices (QEMU -M microvm, all virtio-mmio; Firecracker has the same blk/vsock/serial):
 *   ttyS0                 kernel console -> the host's console log (never the workload's output)
 *   /dev/vda              the root disk (ext4), when config root_dev is set
 *   hvc0 (virtconsole 0)  the workload's stdin/stdout/stderr
 *   virtserialport named "cella.ctl" (found via /sys/class/virtio-ports/vport*/name)
 *       guest -> host lines: "ready\n" once the workload runs, "exit N\n" (N = 0..255, 128+sig)
 *       host -> guest lines: "signal N\n" (init forwards signal N to the workload)
 *   virtio-9p devices with mount_tag = vm_mount.tag, mounted by init at vm_mount.target.
 * Power off: init calls reboot(RB_AUTOBOOT); the host runs QEMU with -no-reboot so it exits.
 */
#ifndef CELLA_VM_GUEST_H
#define CELLA_VM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../util/util.h"

struct vm_mount {
  char *tag;     /* 9p mount_tag */
  char *target;  /* absolute path in the container */
  bool ro;
};

struct vm_guest_config {
  char **argv;        /* NULL-terminated */
  char **env;         /* KEY=VALUE, NULL-terminated */
  char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
  char *hostname;
  char *root_dev;     /* "/dev/vda"; NULL: the initramfs itself holds the root (copy to tmpfs) */
  char *root_fstype;  /* "ext4" */
  bool root_ro;
  struct vm_mount *mounts;
  size_t nmounts;
  bool tty;
};

/* The config as text (malloc'd, *len set); guestcfg_parse reads it back. */
char *guestcfg_format (const struct vm_guest_config *c, size_t *len);
int guestcfg_parse (const char *text, size_t len, struct vm_guest_config *c, cella_error_t *err);
void guestcfg_free (struct vm_guest_config *c);

/* Write the initramfs to `out` (created 0600, replaced atomically): /init from init_path,
 * /cella/config, and the modules kernel_release needs for virtio-mmio, virtio-blk, virtio-console,
 * 9p over virtio, vsock and ext4 (none when they are built in or kernel_release is NULL). */
int initramfs_build (const char *out, const char *init_path, const char *kernel_release, const char *config,
                     size_t config_len, cella_error_t *err);

#endif
