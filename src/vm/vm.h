/* The vm backend, host side: a plan run in a microVM (QEMU -M microvm; Firecracker when asked).
 * The guest side (our init, its config, the initramfs) is guest.h's contract.
 *
 *   disk.c     the root disk: an ext4 image of the container's root built without privileges,
 *              cached per image, cloned per container; the symlink- and mount-safe work dir removal
 *   kernel.c   which kernel boots the guest, and its release
 *   qemu.c     QEMU's command line, /dev/kvm, QMP
 *   snapstate.c  a snapshot's saved state without the guest RAM's zero pages
 *   jail.c     QEMU's jail: its namespaces, minimal root, uid, no_new_privs, cgroup
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
 * so concurrent runs build it once; *path (malloc'd). *held: that lock, shared, for the caller to
 * close once it has its copy (vm_disk_prune leaves a disk alone while one is held), -1 when none.
 * A plan with a plain root directory (not an image) gets a fresh disk at `fresh` instead, nothing
 * cached. */
int vm_disk_for_plan (const struct plan *p, const char *fresh, char **path, int *held, cella_error_t *err);

/* Remove the cached image disks ($data/vm/disks) of images not in keep_ids (image keys, what a plan's image_id holds:
 * "sha256:…") and those of root directories that changed or are gone, each under its lock (one being built or cloned is
 * left alone): what `system prune` frees. The bytes freed. */
uint64_t vm_disk_prune (char *const *keep_ids);
/* What the cached image disks hold (`system df`): how many, their bytes on disk, and how many of
 * them vm_disk_prune (keep_ids) would remove (stale) with their bytes (reclaimable). */
struct vm_disk_use {
  uint64_t count, size, stale, reclaimable;
};
void vm_disk_usage (char *const *keep_ids, struct vm_disk_use *use);

/* Copy the disk src to dst (must not exist): a reflink (FICLONE) where the file system can, else
 * a copy of the data that keeps holes. *method: "reflink" or "copy". */
int vm_disk_clone (const char *src, const char *dst, const char **method, cella_error_t *err);

/* Remove a VM's work directory, refusing (nothing removed) when path is a symbolic link or when a
 * mount (this process's /proc/self/mountinfo) is at or below it: a tree with a mount in it would
 * lose the mounted file system's contents. The directory is pinned by an fd once checked, and
 * emptied relative to it (remove_dir_contents): no symlink in it is followed, no mount that
 * appears under it later is entered. */
int vm_workdir_remove (const char *path, cella_error_t *err);

/* ---- kernel.c ---- */

/* What kind of kernel boots the guest (the plan's vm.kernel_kind): --kernel's, the tuned one
 * `make vm-kernel` built (everything built in: no modules in the initramfs; no ACPI: microvm runs
 * with acpi=off), or the host's. A --kernel PATH with scripts/vm-kernel.sh's `config` beside it
 * (no ACPI, no modules, command-line virtio-mmio devices) is "tuned" too. */
#define VM_KERNEL_GIVEN "given"
#define VM_KERNEL_TUNED "tuned"
#define VM_KERNEL_DISTRO "distro"

/* The guest kernel: `override` (--kernel) when given, else the tuned kernel cached in
 * vm_kernel_tuned_dir()/current/bzImage (scripts/vm-kernel.sh), else the newest readable
 * /boot/vmlinuz-*. *path and *release (malloc'd; release NULL when neither the file name nor the
 * bzImage header says it), *kind one of VM_KERNEL_* (static). Error naming the package to install
 * when there is none. */
int vm_kernel_find (const char *override, char **path, char **release, const char **kind, cella_error_t *err);

/* Where `make vm-kernel` caches tuned kernels for this user: DATA_ROOT/vm/kernels (malloc'd). */
char *vm_kernel_tuned_dir (void);

/* The tuned kernel cached in `dir` (DIR/current/bzImage; its release from DIR/current/release,
 * else its header): 0 with *path (real path) and *release (malloc'd, may be NULL) when there is a
 * readable one, -1 when not. */
int vm_kernel_tuned (const char *dir, char **path, char **release);

/* The version string of a bzImage header (its first word: the release), or NULL. */
char *vm_kernel_release_of (const char *path);

/* ---- qemu.c ---- */

struct vm_share {
  const char *host; /* directory on the host */
  const char *tag;  /* 9p mount_tag */
  bool ro;
};

/* The paths of QEMU's view (its jail, jail.c): kernel, initramfs and volumes where the jail has
 * them; the disk and the console log are file descriptors QEMU gets with -add-fd. */
struct vm_launch {
  const char *qemu; /* the program (NULL: qemu-system-x86_64 on PATH) */
  const char *kernel, *initrd, *cmdline;
  int disk_fd, disk_ro_fd; /* the raw ext4 image, read-write and read-only (QEMU opens it both
                              ways); -1: no disk */
  bool kvm;
  bool no_acpi; /* -M microvm,acpi=off: a kernel without ACPI (the tuned one) finds the
                   virtio-mmio devices on its command line and the CPUs in an MP table */
  unsigned memory_mib, cpus;
  int console_fd; /* ttyS0 to this file (opened for writing) */
  int hvc_fd;     /* a connected socket: the workload's stdin, its terminal with tty (virtconsole hvc0) */
  int stdout_fd;  /* a connected socket: the cella.stdout port (the workload's stdout without tty) */
  int stderr_fd;  /* a connected socket: the cella.stderr port (its stderr without tty; init's messages) */
  int ctl_fd;     /* a connected socket: the cella.ctl port */
  int exec_fd;    /* a connected socket: the cella.exec port (-1: none, no exec) */
  int qmp_fd;     /* a listening socket: QMP */
  const struct vm_share *shares;
  size_t nshares;
  const char *netdev;          /* -netdev value of the NIC ("user,id=n0,..."), NULL: no NIC */
  const char *net_mac;         /* the NIC's MAC address (a tap on a bridge), NULL: QEMU's default */
  bool disk_nolock;            /* the disk without QEMU's file locks (file.locking=off): a VM that goes on
                                  after its state was saved (the save drops them, and QEMU's two fds of
                                  the disk then conflict when it takes them again) */
  int incoming_fd;             /* > 0: start from the VM state saved in this file (-incoming fd:N); 0: boot */
  int export_fd, export_ro_fd; /* a second raw disk (serial VM_EXPORT_SERIAL) the guest writes its
                                  root's tar stream to (plan vm_export); 0: none */
};

/* Can QEMU run a KVM guest here: /dev/kvm opens read-write and QEMU starts a paused microvm with
 * `-accel kvm -cpu host` (a nested hypervisor can offer a /dev/kvm that QEMU cannot use)? Never with
 * $CELLA_NO_KVM set (not "0"). vm_kvm_problem returns NULL for yes, else why not (malloc'd); the
 * QEMU probe's answer is kept in CACHE_DIR/kvm-probe (NULL or a missing dir: not kept) until the next boot or
 * another QEMU binary. */
char *vm_kvm_problem (const char *cache_dir);

/* What a probe found, kept in file until its key changes: "KEY\nVALUE". vm_cache_get: VALUE
 * (malloc'd) when the file's key is key, else NULL; vm_cache_put writes it (0600, atomically;
 * nothing when the directory is missing). file or key NULL: nothing kept. */
char *vm_cache_get (const char *file, const char *key);
void vm_cache_put (const char *file, const char *key, const char *value);

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

/* QEMU's argv for l (no shell). Always with QEMU's seccomp sandbox:
 * -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny. */
char **vm_qemu_argv (const struct vm_launch *l);

/* Under TCG, QEMU's translation cache is bounded to this (-accel tcg,tb-size=N; QEMU's default
 * is up to 1 GiB), so that the memory limit below holds. */
#define VM_TCG_TB_MIB 256
/* QEMU's own memory beside the guest's RAM, in its cgroup's limit (vm_memory_limit) */
#define VM_QEMU_OVERHEAD_MIB 256
/* The memory limit of QEMU's cgroup: the guest's RAM + VM_QEMU_OVERHEAD_MIB (QEMU's program, libraries,
 * heap, device and I/O buffers: ~90 MiB measured for a 256 MiB TCG guest that filled its RAM, 119 MiB for a
 * 3 GiB one with 9p shares) + VM_TCG_TB_MIB under TCG. Bytes. */
long long vm_memory_limit (unsigned memory_mib, bool kvm);

/* The QEMU program: $CELLA_QEMU, else qemu-system-x86_64 on PATH; error naming the package. */
int vm_qemu_find (char **path, cella_error_t *err);

/* Send one QMP command (after the handshake) to the listening socket at qmp_path, e.g.
 * "system_powerdown" or "quit". */
int vm_qmp (const char *qmp_path, const char *command, cella_error_t *err);

/* Save the running VM's state into state_fd (QMP getfd + migrate fd:, polled until done; the VM
 * keeps running: cont), for a snapshot (backend.c). *ms: how long it took. 0; -1 with *err when
 * the save failed (the VM goes on); -2 with *err when the VM could not go on. */
int vm_qmp_save (const char *qmp_path, int state_fd, long long *ms, cella_error_t *err);

/* ---- snapstate.c ---- */

/* The guest RAM's block in QEMU's migration stream (-M microvm without a memory backend). */
#define VM_STATE_RAM_BLOCK "microvm.ram"

struct vm_state_stats {
  size_t zero_dropped; /* zero pages of VM_STATE_RAM_BLOCK left out */
  size_t pages_kept;   /* RAM records kept (pages with data, zero pages of other blocks) */
  size_t bytes;        /* written */
};

/* Write QEMU's saved state (state, len bytes: a migration stream, format version 3) to out_fd
 * without the zero pages of the guest's RAM, which a restore into fresh memory need not load
 * (snapstate.c says why it matters). 0; 1 when the stream is not one we rewrite (compressed pages,
 * another layout): what was written to out_fd is to be thrown away and the state kept as it was;
 * -1 with *err when writing failed. */
int vm_state_compact (const void *state, size_t len, int out_fd, struct vm_state_stats *st, cella_error_t *err);

/* ---- jail.c ---- */

enum vm_jail_kind {
  VM_JAIL_RO,    /* bound read-only (a directory with its submounts); copied in when QEMU's uid
                    could not read it (a kernel of mode 0600) */
  VM_JAIL_OWNED, /* a file cella made for QEMU to read (the initramfs): read-only, given to
                    QEMU's uid (mode 0400) */
  VM_JAIL_RW,    /* bound read-write (a writable volume) */
  VM_JAIL_DEV,   /* a device node, bound read-write */
};

struct vm_jail_entry {
  char *host; /* where it is on the host */
  char *path; /* where QEMU finds it (absolute, in its root) */
  enum vm_jail_kind kind;
};

/* Where QEMU finds the guest's kernel, initramfs and volumes (VM_JAIL_VOLUMES/N) in its jail. */
#define VM_JAIL_KERNEL "/vm/kernel"
#define VM_JAIL_INITRD "/vm/initrd"
#define VM_JAIL_VOLUMES "/vm/vol"

/* What QEMU's jail holds and how QEMU runs in it (src/vm/jail.c's top comment). */
struct vm_jail {
  struct vm_jail_entry *entries;
  size_t nentries;
  char *qemu;    /* its program: the real path, the same in the jail */
  char *ld_path; /* LD_LIBRARY_PATH for it (the jail has no ld.so.cache) */
  bool userns;   /* not real root: a user namespace of its own (its ids ours) */
  bool drop_uid; /* real root: QEMU runs as uid:gid, from a dedicated range */
  uid_t uid;     /* (with userns: the caller's ids, mapped to themselves) */
  gid_t gid;
  bool kvm, kvm_group; /* /dev/kvm used; its group given to QEMU */
  gid_t kvm_gid;
  uint64_t caps;                  /* capabilities QEMU keeps (as real root: 9p's, with volumes) */
  bool new_net;                   /* a network namespace of its own (no user-mode network) */
  bool proc;                      /* a procfs of its pid namespace, subset=pid (9p needs
                                     /proc/self/fd) */
  int uid_lock;                   /* the claimed uid's lock, held while the VM runs; -1 */
  const struct plan *cgroup_plan; /* QEMU in this container's cgroup (NULL: none) */
  long long memory_limit;         /* its memory limit, bytes */
};

/* Start j with QEMU's program, the ELF loader and the libraries the host's loader resolves for
 * it (`LOADER --list`), its TCG module and the firmware microvm loads (bios-microvm.bin,
 * linuxboot_dma.bin from <prefix>/share/qemu); each at its host path. The list is kept in
 * CACHE_DIR/jail-files (NULL: not kept) until QEMU's program or /etc/ld.so.cache changes. */
int vm_jail_init (struct vm_jail *j, const char *qemu, const char *cache_dir, cella_error_t *err);
/* Add host at path (absolute) in the jail; a path already there is kept as it is. */
void vm_jail_add (struct vm_jail *j, const char *host, const char *path, enum vm_jail_kind kind);
/* Start QEMU (argv, with argv[0] j->qemu) in the jail, with in as stdin, out as stdout and
 * stderr, and the fds keep[0..nkeep) open at their numbers. Returns once QEMU has exec'd (*pid,
 * *pidfd), or -1 with *err (the jail's step that failed) and nothing left running. */
int vm_jail_spawn (struct vm_jail *j, char *const *argv, const int *keep, size_t nkeep, int in, int out, pid_t *pid,
                   int *pidfd, cella_error_t *err);
/* Once QEMU is gone: its cgroup removed, its uid free again. */
void vm_jail_release (struct vm_jail *j);
void vm_jail_clear (struct vm_jail *j);

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

/* ---- exec.c: `cella exec` into a running VM (the cella.exec port, src/vm/guest.h) ---- */

/* The supervisor's exec router: a process of its own (PDEATHSIG) that accepts `cella exec`
 * callers on the listening socket `listen_fd` (VM_EXEC_SOCKET in the work dir) and routes their
 * frames to the guest over port_fd (QEMU's cella.exec chardev), giving each caller a session id;
 * it checks every frame from the guest (sizes, ids) and ends when the port closes (QEMU gone).
 * The fds are the router's from then on (closed in the caller). 0, or -1 with *err. */
#define VM_EXEC_SOCKET "exec.sock"
int vm_exec_router_start (int port_fd, int listen_fd, cella_error_t *err);

/* p's process (argv, env, cwd, ids or process.user, tty, stdin_open) run in the running VM whose
 * work dir is state_dir, with the caller's stdio: its exit status, or -1 with *err. */
int vm_exec (struct plan *p, pid_t target, const char *state_dir, cella_error_t *err);
/* The same for the command c (guest.h) with its stdin read from `in` (stdin_open; else none) and
 * its output written to out and errfd: its exit status, or -1 with *err. started: the plan whose
 * backend_exec_started is called once the command is sent to the guest (NULL: none). */
struct vm_guest_config;
int vm_exec_fds (const struct vm_guest_config *c, bool stdin_open, const char *state_dir, int in, int out, int errfd,
                 struct plan *started, cella_error_t *err);

/* ---- copy.c: `cella top` and `cella cp` on a running VM (guest.h GUEST_INTERNAL, tar.h) ---- */

/* The guest's process table (PID UID CMD) written to out. */
int vm_top (const char *state_dir, int out, cella_error_t *err);
/* The VM's dir/name (name: one component; follow: it may be a symlink to follow) extracted into
 * the host directory destfd as destfd/name (no set-id bits, owners not kept). */
int vm_copy_out (const char *state_dir, const char *dir, const char *name, bool follow, int destfd, cella_error_t *err);
/* The host's srcdir/name (symlinks in name followed) put at ctr_dst in the VM by docker's cp
 * rules (contents: only the directory's contents, `SRC/.`), owned by root. */
int vm_copy_in (const char *state_dir, int srcdir, const char *name, bool contents, const char *ctr_dst,
                cella_error_t *err);

#endif
