/* cella-vminit: our PID 1 inside the microVM (see src/vm/guest.h for the host
 * contract). */
#ifndef CELLA_GUEST_INIT_H
#define CELLA_GUEST_INIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "vm/guest.h"

#define CONFIG_PATH "/cella/config"
#define MODULES_ORDER_PATH "/cella/modules.order"
#define NEWROOT "/newroot"
#define CTL_PORT_NAME "cella.ctl"

/* The two channels to the host, kept open across the switch to the new root
 * (O_CLOEXEC). */
struct guest_io {
  int hvc;                               /* /dev/hvc0: the workload's stdin (its terminal with tty), -1 until found */
  int ctl;                               /* the cella.ctl virtio port, -1 until found */
  int exec;                              /* the cella.exec virtio port, -1: none (no exec) */
  int out, err;                          /* the cella.stdout, cella.stderr ports (non-blocking), -1 until found */
  unsigned long long out_sent, err_sent; /* bytes written to them (port_write) */
};
extern struct guest_io guest_io;

/* "cella-init: ..." on the kernel console and on cella.stderr (hvc0 until that
 * port is found). */
void say (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Report a setup failure (console, hvc0, "exit 125" on cella.ctl) and power
 * off. */
void fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2), noreturn));
/* fail() with the cella_error's message (and strerror). */
void fail_err (cella_error_t *err) __attribute__ ((noreturn));
/* Flush, sync and reboot(RB_AUTOBOOT): the host runs QEMU with -no-reboot, so
 * the VM ends. */
void power_off (void) __attribute__ ((noreturn));

/* snap.c: start from a snapshot (src/vm/guest.h, SNAP_WAIT_MAGIC): does
 * /cella/config hold the marker? snap_restore says "waiting" on cella.ctl, and
 * (once restored) takes the seed, MAC, config and clock from there. */
bool snap_waits (void);
void snap_restore (struct vm_guest_config *c);

/* modules.c */
void modules_load (const char *order_path);

/* root.c */
int mount_basics (cella_error_t *err);
int root_mount_disk (const struct vm_guest_config *c, cella_error_t *err);
int root_copy_initramfs (cella_error_t *err);
int mount_volumes (const struct vm_guest_config *c, cella_error_t *err);
int mount_tmpfs (const struct vm_guest_config *c, cella_error_t *err);
/* --read-only with volumes or tmpfs: the root made read-only once their mount
 * points exist. */
int root_seal (const struct vm_guest_config *c, cella_error_t *err);
int switch_to_newroot (cella_error_t *err);

/* io.c */
int find_hvc (cella_error_t *err); /* opens it raw */
int find_ctl (cella_error_t *err);
/* The cella.exec port when the host gave one (looked for once cella.ctl is
 * there); -1 in guest_io.exec when not. */
void find_exec (void);
/* The cella.stdout and cella.stderr ports (given before cella.ctl: there once
 * it is, looked for up to 1 s more). */
int find_stdio_ports (cella_error_t *err);
/* Write what the port fd (guest_io.out or .err) takes now, counted in
 * guest_io.out_sent / err_sent: write's result. */
ssize_t port_write (int fd, const void *buf, size_t len);
/* After "exit N OUT ERR": wait for the host's "drained" line on cella.ctl
 * (all our output read), up to timeout_ms (< 0: as long as it takes). */
void ctl_wait_drained (int timeout_ms);
/* Queue a line for the host on cella.ctl; ctl_flush writes what it can without
 * blocking. */
void ctl_send (const char *line);
void ctl_flush (void);
bool ctl_pending (void);
/* Write everything queued, waiting up to timeout_ms for the host to read it. */
void ctl_flush_wait (int timeout_ms);

/* net.c: lo up, and the `net` interface configured (before the workload);
 * /etc/resolv.conf from `nameserver` lines (after the switch to the root). */
int net_setup (const struct vm_guest_config *c, cella_error_t *err);
int net_write_resolv (const struct vm_guest_config *c, cella_error_t *err);
/* export_root: the stub /etc/resolv.conf net_write_resolv made (none in the
 * image) unmounted and removed again. */
void net_resolv_undo (void);

/* export.c (export_root): export_prepare before the root is mounted (finds the
 * export disk, sets c->root_dev to the other one); export_root after the
 * workload. */
int export_prepare (struct vm_guest_config *c, cella_error_t *err);
int export_root (cella_error_t *err);

/* exec.c: the cella.exec sessions (guest.h). exec_pollfds fills at most max
 * entries (call it before exec_timeout); exec_pump does what can be done
 * without blocking; exec_timeout: ms until exec_pump has work without an
 * event (-1: none); exec_reaped takes a reaped child that was an exec's. */
struct pollfd;
size_t exec_pollfds (struct pollfd *p, size_t max);
void exec_pump (void);
int exec_timeout (void);
bool exec_reaped (pid_t pid, int code);

/* workload.c: the config's capabilities (bounding set before the ids change;
 * root's effective/permitted/inheritable sets after) and no_new_privs, for the
 * workload and each exec'd command; -1 with errno set. */
int privs_before_ids (const struct vm_guest_config *c);
int privs_after_ids (const struct vm_guest_config *c);
/* The boot config (the container's), once workload_run has it. */
extern const struct vm_guest_config *boot_config;

/* internal.c: when argv is a GUEST_INTERNAL command (src/vm/guest.h), run it
 * and _exit; else return. */
void guest_internal (char **argv);

/* workload.c: run the workload to its end; returns its exit code (0..255,
 * 128+signal). */
int workload_run (const struct vm_guest_config *c);

#endif
