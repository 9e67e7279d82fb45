/* The vm backend (vm.h): a plan → guest config, initramfs, root disk, QEMU; and the supervisor
 * that stands for the workload on the host. The supervisor is the process the CLI waits for (or
 * the monitor watches): it relays the workload's stdio to hvc0, turns signals into "signal N"
 * lines on cella.ctl, and exits with the code of the guest's "exit N" line. QEMU is its child in
 * a process group of its own (a terminal's ^C or stop's group SIGTERM reach the supervisor, which
 * forwards them to the guest's workload) and dies with it (PDEATHSIG); it runs in its jail (jail.c). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utmp.h>

#include "backend/session.h"
#include "util/paths.h"
#include "net/net.h"
#include "cgroup/cgroup.h"
#include "guest.h"
#include "vm.h"

#define VM_CMDLINE "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init"
#define VM_CMDLINE_DEBUG "console=ttyS0 panic=-1 reboot=t rdinit=/init"

/* Signals the supervisor forwards to the guest's workload. */
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
/* and taken over too: the caller's terminal resized (-t: "winsize R C" to the guest) */
static const int resized[] = { SIGWINCH };

static bool
on_path (const char *name)
{
  const char *pathv = getenv ("PATH");
  cleanup_free char *dirs = xstrdup (pathv && *pathv ? pathv : "/usr/local/bin:/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      cleanup_free char *full = xasprintf ("%s/%s", d, name);
      if (access (full, X_OK) == 0)
        return true;
    }
  return false;
}

int
vm_plan_prepare (struct plan *p, cella_error_t *err)
{
  cleanup_free char *qemu = NULL;
  if (p->vm_engine == NULL)
    p->vm_engine = xstrdup ("qemu");
  if (strcmp (p->vm_engine, "firecracker") == 0)
    {
      /* not shipped by Debian; its API-socket launch is not written yet */
      if (!on_path ("firecracker"))
        return cella_error (err, 0,
                            "--vm-engine firecracker: firecracker not found on PATH (it is not packaged by Debian; "
                            "use --vm-engine qemu)");
      return cella_error (err, 0, "--vm-engine firecracker: not supported by this build yet; use --vm-engine qemu");
    }
  if (strcmp (p->vm_engine, "qemu") != 0)
    return cella_error (err, 0, "--vm-engine `%s`: unknown (expected qemu or firecracker)", p->vm_engine);
  if (vm_qemu_find (&qemu, err) < 0)
    return -1;
  {
    char *path = NULL, *release = NULL;
    const char *kind = NULL;
    if (vm_kernel_find (p->vm_kernel, &path, &release, &kind, err) < 0)
      return -1;
    free (p->vm_kernel);
    p->vm_kernel = path;
    free (p->vm_kernel_release);
    p->vm_kernel_release = release;
    free (p->vm_kernel_kind);
    p->vm_kernel_kind = xstrdup (kind);
  }
  if (p->vm_memory_mib == 0)
    p->vm_memory_mib = 256;
  free (p->vm_accel);
  {
    cleanup_free char *dir = xasprintf ("%s/vm", paths_data_root ());
    cleanup_free char *why = vm_kvm_problem (dir);
    p->vm_accel = xstrdup (why ? "tcg" : "kvm");
    if (why)
      fprintf (stderr, "cella: no usable KVM (%s): the VM runs under TCG emulation (slow)\n", why);
  }
  return 0;
}

/* ---- what the guest gets ---- */

static bool
is_share (const struct op *op)
{
  return op->kind == OP_BIND && !op->skip;
}

/* The plan's process and binds as the guest config; the binds also as QEMU's 9p shares. Pointers
 * into p (freed by the caller: c->mounts and *shares arrays and their tags only). */
static void
guest_config (const struct plan *p, struct vm_guest_config *c, struct vm_share **shares, size_t *nshares)
{
  size_t n = 0;
  memset (c, 0, sizeof *c);
  c->argv = p->process.argv;
  c->env = p->process.env;
  c->cwd = p->process.cwd;
  c->uid = p->process.uid;
  c->gid = p->process.gid;
  c->groups = p->process.groups;
  c->ngroups = p->process.ngroups;
  c->hostname = p->hostname;
  c->root_dev = (char *) "/dev/vda";
  c->root_fstype = (char *) "ext4";
  c->root_ro = p->readonly;
  c->tty = p->process.tty;
  /* the container's capabilities (docker's defaults, --cap-add/--cap-drop) and no_new_privs,
   * applied by init to the workload and to each exec */
  c->caps_set = true;
  c->caps = p->process.caps;
  c->no_new_privs = p->process.no_new_privs;
  c->export_root = p->vm_export != NULL;
  if (p->net == NET_PRIVATE)
    {
      /* QEMU's user-mode network (vm_netdev_user); its DNS unless --dns */
      static char *slirp_dns[] = { (char *) VM_NET_DNS, NULL };
      c->net_ifname = (char *) "eth0";
      c->net_addr = (char *) VM_NET_GUEST_ADDR;
      c->net_gateway = (char *) VM_NET_GATEWAY;
      c->nameservers = p->dns && p->dns[0] ? p->dns : slirp_dns;
    }
  for (size_t i = 0; i < p->nops; i++)
    n += is_share (&p->ops[i]);
  c->mounts = n ? xzalloc (n * sizeof *c->mounts) : NULL;
  *shares = n ? xzalloc (n * sizeof **shares) : NULL;
  n = 0;
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      if (!is_share (op))
        continue;
      c->mounts[n].tag = xasprintf ("vol%zu", n);
      c->mounts[n].target = op->target;
      c->mounts[n].ro = !(op->flags & BIND_WRITABLE);
      (*shares)[n].host = op->resolved ? op->resolved : op->source;
      (*shares)[n].tag = c->mounts[n].tag;
      (*shares)[n].ro = c->mounts[n].ro;
      n++;
    }
  c->nmounts = n;
  *nshares = n;
  n = 0;
  for (size_t i = 0; i < p->nops; i++)
    n += p->ops[i].kind == OP_TMPFS && !p->ops[i].skip;
  c->tmpfs = n ? xzalloc (n * sizeof *c->tmpfs) : NULL;
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      if (op->kind != OP_TMPFS || op->skip)
        continue;
      c->tmpfs[c->ntmpfs++] = (struct vm_tmpfs){
        .target = op->target,
        .size = op->size > 0 ? (unsigned long long) op->size : 0,
        .mode = (unsigned) op->mode,
        .flags = (op->flags & REMOUNT_RDONLY ? MS_RDONLY : 0) | (op->flags & REMOUNT_NOSUID ? MS_NOSUID : 0)
                 | (op->flags & REMOUNT_NODEV ? MS_NODEV : 0) | (op->flags & REMOUNT_NOEXEC ? MS_NOEXEC : 0),
      };
    }
}

/* Where our guest init is: $CELLA_VMINIT (set by the CLI from its own directory), else the
 * installed one. */
static const char *
vminit_path (void)
{
  const char *e = getenv ("CELLA_VMINIT");
  if (e && *e)
    return e;
  return LIBEXECDIR "/cella/cella-vminit";
}

bool
vm_available (char **why)
{
  cella_error_t e = NULL;
  cleanup_free char *qemu = NULL, *kernel = NULL, *release = NULL;
  const char *kind = NULL;
  if (vm_qemu_find (&qemu, &e) < 0 || vm_kernel_find (NULL, &kernel, &release, &kind, &e) < 0)
    {
      if (why)
        *why = xstrdup (e->msg);
      cella_error_free (&e);
      return false;
    }
  if (access (vminit_path (), X_OK) != 0)
    {
      if (why)
        *why = xasprintf ("the guest init `%s` is missing (make builds cella-vminit next to cella)", vminit_path ());
      return false;
    }
  if (why)
    *why = xasprintf ("%s, kernel %s (%s%s)", qemu, kernel, kind,
                      strcmp (kind, VM_KERNEL_TUNED) == 0 ? ""
                                                          : "; make vm-kernel builds a tuned one that boots faster");
  return true;
}

/* ---- one VM ---- */

struct vm_session {
  struct plan *p;
  char *work; /* its directory: initramfs, disk, console log, QMP socket */
  int work_fd;
  char *disk, *initrd, *console, *qemu_log, *qmp_path;
  char *netdev;          /* -netdev user,... or tap,... (NULL: no NIC) */
  struct net_vm_nic nic; /* as root: the tap on the network's bridge (nic.fd -1: none) */
  const char *disk_method;
  char **argv;
  int hvc[2], ctl[2]; /* [0] ours, [1] QEMU's */
  int out[2], err[2]; /* the cella.stdout and cella.stderr ports, the same way */
  int exec[2];        /* the cella.exec port (-1: no exec): [0] the router's, [1] QEMU's */
  int exec_listen;    /* VM_EXEC_SOCKET in the work dir, listening (the router's) */
  int qmp;            /* listening socket, QEMU's */
  int disk_fd[2];     /* the disk read-write and read-only, QEMU's (its jail has no path to it) */
  int export_fd[2];   /* plan vm_export: the export disk, the same way (-1: none) */
  int console_fd;     /* the console log, QEMU's */
  struct vm_jail jail;
  char *disk_src; /* the image's cached disk the container's was cloned from (NULL: kept, built) */
  char *cfg_text; /* the guest config (sent on cella.ctl when started from a snapshot) */
  size_t cfg_len;
  /* Start from a snapshot (docs/vm.md): NONE boots cold; BUILD boots the snapshot's initramfs,
   * saves the VM when the guest waits, and goes on as a restored VM; RESTORE starts from the
   * saved state (-incoming). */
  enum { SNAP_NONE, SNAP_BUILD, SNAP_RESTORE } snap;
  char *snap_dir; /* $data/vm/snapshots/<hash of the key> */
  char *snap_key; /* what the snapshot is valid for (snap_key) */
  char *snap_why; /* NONE for want of share slots: why, for --debug (NULL: not that) */
  char *noshare;  /* BUILD/RESTORE: the empty directory behind the unused share slots */
  int snap_lock;  /* BUILD: its lock, held until saved */
  int snap_state; /* RESTORE: the saved state, QEMU's -incoming fd */
  long long snap_save_ms;
  bool ephemeral;                   /* a foreground run: its disk goes with its work dir once QEMU is gone */
  struct vm_state_stats snap_stats; /* BUILD: what the saved state became (snapstate.c) */
  bool snap_compacted;
};

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
vm_session_init (struct vm_session *s)
{
  memset (s, 0, sizeof *s);
  s->hvc[0] = s->hvc[1] = s->ctl[0] = s->ctl[1] = s->qmp = s->work_fd = s->nic.fd = -1;
  s->out[0] = s->out[1] = s->err[0] = s->err[1] = -1;
  s->exec[0] = s->exec[1] = s->exec_listen = -1;
  s->disk_fd[0] = s->disk_fd[1] = s->console_fd = s->jail.uid_lock = -1;
  s->export_fd[0] = s->export_fd[1] = -1;
  s->snap_lock = s->snap_state = -1;
}

static void
vm_session_clear (struct vm_session *s)
{
  free (s->work);
  free (s->disk);
  free (s->initrd);
  free (s->console);
  free (s->qemu_log);
  free (s->qmp_path);
  free (s->netdev);
  free (s->disk_src);
  free (s->cfg_text);
  free (s->snap_dir);
  free (s->snap_key);
  free (s->snap_why);
  free (s->noshare);
  close_fd (&s->snap_lock);
  close_fd (&s->snap_state);
  net_vm_nic_clear (&s->nic);
  strv_free (s->argv);
  vm_jail_clear (&s->jail);
  for (int i = 0; i < 2; i++)
    {
      close_fd (&s->hvc[i]);
      close_fd (&s->ctl[i]);
      close_fd (&s->out[i]);
      close_fd (&s->err[i]);
      close_fd (&s->exec[i]);
      close_fd (&s->disk_fd[i]);
      close_fd (&s->export_fd[i]);
    }
  close_fd (&s->qmp);
  close_fd (&s->exec_listen);
  close_fd (&s->console_fd);
  close_fd (&s->work_fd);
  vm_session_init (s);
}

static int
make_initramfs (struct vm_session *s, cella_error_t *err)
{
  struct vm_guest_config c;
  struct vm_share *shares = NULL;
  size_t nshares = 0, len = 0;
  cleanup_free char *text = NULL;
  int r;
  guest_config (s->p, &c, &shares, &nshares);
  if (s->nic.fd >= 0)
    {
      /* the tap: the leased address on the network's bridge, the bridge as gateway */
      c.net_addr = s->nic.cidr;
      c.net_gateway = s->nic.gateway;
      c.nameservers = s->nic.nameservers;
    }
  text = guestcfg_format (&c, &len);
  /* the tuned kernel has all it needs built in: no modules to look for */
  bool tuned = s->p->vm_kernel_kind && strcmp (s->p->vm_kernel_kind, VM_KERNEL_TUNED) == 0;
  if (s->snap == SNAP_RESTORE)
    {
      /* Empty: the restored guest's memory holds what it unpacked; QEMU only hands an initrd to
       * the firmware at a boot, which a restored VM does not make (-no-reboot ends it). */
      cleanup_close int fd = open (s->initrd, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
      r = fd < 0 ? cella_error (err, errno, "create `%s`", s->initrd) : 0;
    }
  else if (s->snap == SNAP_BUILD)
    /* no container in it: init waits for its config on cella.ctl */
    r = initramfs_build (s->initrd, vminit_path (), tuned ? NULL : s->p->vm_kernel_release, SNAP_WAIT_MAGIC,
                         strlen (SNAP_WAIT_MAGIC), err);
  else
    r = initramfs_build (s->initrd, vminit_path (), tuned ? NULL : s->p->vm_kernel_release, text, len, err);
  s->cfg_text = steal_pointer (&text);
  s->cfg_len = len;
  for (size_t i = 0; i < c.nmounts; i++)
    free (c.mounts[i].tag);
  free (c.mounts);
  free (c.tmpfs);
  free (shares);
  if (r < 0)
    return cella_error_wrap (err, "the vm's initramfs");
  return 0;
}

/* The container's disk: kept in the work dir (a restarted container keeps its writes), else a
 * clone of the image's cached disk (or a fresh one for a plain root directory). */
static int
make_disk (struct vm_session *s, cella_error_t *err)
{
  cleanup_free char *src = NULL;
  cleanup_close int held = -1;
  s->disk = xasprintf ("%s/disk.ext4", s->work);
  if (access (s->disk, R_OK | W_OK) == 0)
    {
      s->disk_method = "kept";
      return 0;
    }
  if (vm_disk_for_plan (s->p, s->disk, &src, &held, err) < 0)
    return -1;
  if (strcmp (src, s->disk) == 0)
    {
      s->disk_method = "built";
      return 0;
    }
  if (vm_disk_clone (src, s->disk, &s->disk_method, err) < 0)
    return -1;
  s->disk_src = steal_pointer (&src);
  return 0;
}

/* The NIC: as root (initial user namespace) a tap on the network's bridge with a leased address
 * and the ports as DNAT rules (src/net/tap.c); otherwise QEMU's user-mode network, the published
 * ports as its hostfwd rules (host ports checked free before QEMU starts). Either way listed in
 * <work>/ports for `cella port`. --network none: no NIC. */
static int
make_net (struct vm_session *s, cella_error_t *err)
{
  cleanup_free char *lines = NULL, *path = xasprintf ("%s/ports", s->work);
  unlink (path);
  if (s->p->net != NET_PRIVATE)
    return 0;
  if (net_vm_tap_wanted (s->p))
    {
      if (net_vm_tap (s->p, &s->nic, err) < 0)
        return -1;
      s->netdev = xasprintf ("tap,id=n0,fd=%d", s->nic.fd);
      return write_file_atomic (path, s->nic.port_lines, strlen (s->nic.port_lines), 0644, err);
    }
  if (vm_netdev_user (s->p->ports, s->p->id, &s->netdev, &lines, err) < 0)
    return -1;
  return write_file_atomic (path, lines, strlen (lines), 0644, err);
}

/* QEMU's QMP socket, bound by us through the work dir's fd (the full path may pass sun_path's
 * 108 bytes) and handed to QEMU listening. */
static int
make_qmp (struct vm_session *s, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  s->qmp_path = xasprintf ("/proc/self/fd/%d/qmp.sock", s->work_fd);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", s->qmp_path);
  unlinkat (s->work_fd, "qmp.sock", 0);
  s->qmp = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->qmp < 0 || bind (s->qmp, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (s->qmp, 4) < 0)
    return cella_error (err, errno, "QMP socket in `%s`", s->work);
  return 0;
}

/* `cella exec`'s way in: the cella.exec port's socket pair and VM_EXEC_SOCKET in the work dir
 * (bound through the work dir's fd, like QMP's), for the router (vm_exec_router_start). */
static int
make_exec (struct vm_session *s, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/" VM_EXEC_SOCKET, s->work_fd);
  unlinkat (s->work_fd, VM_EXEC_SOCKET, 0);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->exec) < 0)
    return cella_error (err, errno, "socketpair");
  s->exec_listen = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->exec_listen < 0 || bind (s->exec_listen, (struct sockaddr *) &sa, sizeof sa) < 0
      || listen (s->exec_listen, 16) < 0)
    return cella_error (err, errno, "exec socket in `%s`", s->work);
  return 0;
}

/* The export disk (plan vm_export): a new sparse file twice the root disk's size and 64 MiB more
 * (a tar stream of the root: its files, a header and padding each), which bounds what the guest
 * can write, and so what the host reads back. */
static int
make_export (struct vm_session *s, cella_error_t *err)
{
  struct stat st;
  const char *path = s->p->vm_export;
  if (fstat (s->disk_fd[0], &st) < 0)
    return cella_error (err, errno, "stat the disk `%s`", s->disk);
  s->export_fd[0] = open (path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->export_fd[0] < 0)
    return cella_error (err, errno, "create the export disk `%s`", path);
  if (ftruncate (s->export_fd[0], 2 * st.st_size + (64LL << 20)) < 0)
    return cella_error (err, errno, "size the export disk `%s`", path);
  s->export_fd[1] = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (s->export_fd[1] < 0)
    return cella_error (err, errno, "open the export disk `%s`", path);
  return 0;
}

/* The files QEMU writes, opened here for it: the disk (both ways: QEMU opens it read-only first)
 * and the console log. */
static int
open_for_qemu (struct vm_session *s, cella_error_t *err)
{
  s->disk_fd[0] = open (s->disk, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  s->disk_fd[1] = open (s->disk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (s->disk_fd[0] < 0 || s->disk_fd[1] < 0)
    return cella_error (err, errno, "open the disk `%s`", s->disk);
  s->console_fd = open (s->console, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->console_fd < 0)
    return cella_error (err, errno, "create `%s`", s->console);
  return s->p->vm_export ? make_export (s, err) : 0;
}

/* 9p's security_model=none as QEMU's uid: the guest's root reads and writes volumes as root did,
 * and chown sets the guest's owners; no CAP_MKNOD (a guest's device node on a host directory) and
 * no CAP_DAC_READ_SEARCH (open_by_handle_at reaches any file of the volume's file system). */
#define VM_9P_CAPS ((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID))

/* QEMU's jail (jail.c): the kernel, the initramfs, the shares at /vm/vol/N (the first nvolumes
 * the volumes, the others a snapshot's unused slots), the device nodes; /etc/resolv.conf for the
 * user-mode network's DNS. */
static int
make_jail (struct vm_session *s, const char *qemu, const struct vm_share *shares, size_t nshares, size_t nvolumes,
           bool kvm, cella_error_t *err)
{
  struct vm_jail *j = &s->jail;
  bool real_root = geteuid () == 0 && in_initial_userns ();
  cleanup_free char *cache = xasprintf ("%s/vm", paths_data_root ());
  if (vm_jail_init (j, qemu, cache, err) < 0)
    return -1;
  vm_jail_add (j, s->p->vm_kernel, VM_JAIL_KERNEL, VM_JAIL_RO);
  vm_jail_add (j, s->initrd, VM_JAIL_INITRD, VM_JAIL_OWNED);
  for (size_t i = 0; i < nshares; i++)
    {
      cleanup_free char *at = xasprintf (VM_JAIL_VOLUMES "/%zu", i);
      vm_jail_add (j, shares[i].host, at, shares[i].ro ? VM_JAIL_RO : VM_JAIL_RW);
    }
  vm_jail_add (j, "/dev/null", "/dev/null", VM_JAIL_DEV);
  vm_jail_add (j, "/dev/urandom", "/dev/urandom", VM_JAIL_DEV);
  if (kvm)
    vm_jail_add (j, "/dev/kvm", "/dev/kvm", VM_JAIL_DEV);
  j->new_net = s->netdev == NULL || s->nic.fd >= 0;
  if (!j->new_net && access ("/etc/resolv.conf", R_OK) == 0)
    vm_jail_add (j, "/etc/resolv.conf", "/etc/resolv.conf", VM_JAIL_RO);
  j->kvm = kvm;
  j->drop_uid = real_root;
  j->userns = !real_root;
  j->caps = real_root && nvolumes ? VM_9P_CAPS : 0; /* not for a snapshot's empty slots */
  j->proc = nshares > 0;
  j->cgroup_plan = cgroup_usable (NULL) ? s->p : NULL;
  j->memory_limit = vm_memory_limit (s->p->vm_memory_mib ? s->p->vm_memory_mib : 256, kvm);
  return 0;
}

/* QEMU's command line, with the paths of its jail: volume N at VM_JAIL_VOLUMES/N. */
static void
make_argv (struct vm_session *s, struct vm_share *shares, size_t nshares, bool kvm)
{
  cleanup_strv char **vols = NULL;
  cleanup_free char *extra = kvm ? xstrdup ("") : vm_tcg_cmdline ();
  cleanup_free char *cmdline = xasprintf ("%s%s", s->p->debug ? VM_CMDLINE_DEBUG : VM_CMDLINE, extra);
  struct vm_launch l = {
    .qemu = s->jail.qemu,
    .kernel = VM_JAIL_KERNEL,
    .initrd = VM_JAIL_INITRD,
    .cmdline = cmdline,
    .disk_fd = s->disk_fd[0],
    .disk_ro_fd = s->disk_fd[1],
    .kvm = kvm,
    .no_acpi = s->p->vm_kernel_kind && strcmp (s->p->vm_kernel_kind, VM_KERNEL_TUNED) == 0,
    .memory_mib = s->p->vm_memory_mib ? s->p->vm_memory_mib : 256,
    .cpus = s->p->vm_cpus ? s->p->vm_cpus : 1,
    .console_fd = s->console_fd,
    .hvc_fd = s->hvc[1],
    .stdout_fd = s->out[1],
    .stderr_fd = s->err[1],
    .ctl_fd = s->ctl[1],
    .exec_fd = s->exec[1],
    .qmp_fd = s->qmp,
    .shares = shares,
    .nshares = nshares,
    .netdev = s->netdev,
    .net_mac = s->nic.mac,
    .incoming_fd = s->snap == SNAP_RESTORE ? s->snap_state : 0,
    .disk_nolock = s->snap == SNAP_BUILD,
    .export_fd = s->export_fd[0] > 0 ? s->export_fd[0] : 0,
    .export_ro_fd = s->export_fd[1],
  };
  for (size_t i = 0; i < nshares; i++)
    {
      cleanup_free char *at = xasprintf (VM_JAIL_VOLUMES "/%zu", i);
      strv_push (&vols, at);
      shares[i].host = vols[i]; /* the string, not the array, which strv_push may move */
    }
  s->argv = vm_qemu_argv (&l);
}

/* ---- start from a snapshot (docs/vm.md "Start from a snapshot") ---- */

/* "dev:ino:size:mtime" of a file: a changed file is another key. */
static char *
file_id (const char *path)
{
  struct stat st;
  if (path == NULL || stat (path, &st) < 0)
    return NULL;
  return xasprintf ("%s %lu:%lu:%lld:%lld.%09ld", path, (unsigned long) st.st_dev, (unsigned long) st.st_ino,
                    (long long) st.st_size, (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* A snapshot's VM has this many 9p devices, whatever its volumes (the device set is part of the
 * saved state): tags vol0..vol3, none mounted when it is saved (QEMU blocks the save of a mounted
 * export, and keeps no path of one in the state), each restored VM's QEMU given its own volumes in
 * the first ones and an empty read-only directory in the others (snap_slots). QEMU 7.2's microvm
 * has 8 virtio-mmio transports: with the console, disk and NIC, 4 slots leave one spare. */
#define VM_SNAP_SLOTS 4

/* Everything the saved VM depends on: QEMU, the kernel, our init (the initramfs), the image's
 * cached disk (the guest's kernel has probed it), the memory, CPUs, accelerator, command line and
 * the devices (NIC, exec port, VM_SNAP_SLOTS share slots). Format 4: the cella.stdout and
 * cella.stderr ports (max_ports=8) and the share slots, which the device sets of formats 2 and 3
 * lack. NULL when a file cannot be named. */
static char *
snap_key (const struct vm_session *s, const char *qemu, bool kvm, bool exec)
{
  cleanup_free char *q = file_id (qemu), *k = file_id (s->p->vm_kernel), *i = file_id (vminit_path ()),
                    *d = file_id (s->disk_src);
  if (q == NULL || k == NULL || i == NULL || d == NULL)
    return NULL;
  return xasprintf ("cella-vm-snapshot 4\nqemu %s\nkernel %s\nrelease %s\nkind %s\ninit %s\ndisk %s\nmemory "
                    "%u\ncpus %u\naccel %s\ncmdline %s\nnic %s\nexec %s\nshares %d\n",
                    q, k, s->p->vm_kernel_release ? s->p->vm_kernel_release : "-",
                    s->p->vm_kernel_kind ? s->p->vm_kernel_kind : "-", i, d,
                    s->p->vm_memory_mib ? s->p->vm_memory_mib : 256, s->p->vm_cpus ? s->p->vm_cpus : 1,
                    kvm ? "kvm" : "tcg", s->p->debug ? "debug" : "quiet",
                    s->netdev == NULL ? "none"
                    : s->nic.fd >= 0  ? "tap"
                                      : "user",
                    exec ? "yes" : "no", VM_SNAP_SLOTS);
}

/* The saved state in dir when its key is key: its fd, else -1. */
static int
snap_open (const char *dir, const char *key)
{
  cleanup_free char *kp = xasprintf ("%s/key", dir), *sp = xasprintf ("%s/state", dir), *have = NULL;
  if (read_file (kp, &have, NULL, NULL) < 0 || strcmp (have, key) != 0)
    return -1;
  return open (sp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

/* 64-bit FNV-1a: the snapshot's directory name (the key itself is checked in it). */
static unsigned long long
fnv1a (const char *text)
{
  unsigned long long h = 14695981039346656037ULL;
  for (const unsigned char *c = (const unsigned char *) text; *c; c++)
    h = (h ^ *c) * 1099511628211ULL;
  return h;
}

/* initramfs.cpio: snapshots of format 1 kept the initramfs they booted (gone with their dir) */
static const char *const snap_files[] = { "state", "initramfs.cpio", "initramfs.cpio.tmp", "key", NULL };

/* Does a key still hold: every file it names (qemu, kernel, init, disk lines: "NAME PATH ID") has
 * that identity now? */
static bool
snap_key_holds (char *key)
{
  char *save = NULL;
  for (char *line = strtok_r (key, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *path = strchr (line, ' '), *id;
      if (path == NULL
          || !(has_prefix (line, "qemu ") || has_prefix (line, "kernel ") || has_prefix (line, "init ")
               || has_prefix (line, "disk ")))
        continue;
      path++;
      id = strrchr (path, ' ');
      if (id == NULL)
        return false;
      *id = '\0';
      cleanup_free char *now = file_id (path);
      *id = ' ';
      if (now == NULL || strcmp (now, path) != 0)
        return false;
    }
  return true;
}

/* Remove the snapshot dir (its lock held by the caller). */
static void
snap_remove (const char *dir, const char *lockp)
{
  for (size_t i = 0; snap_files[i]; i++)
    {
      cleanup_free char *p = xasprintf ("%s/%s", dir, snap_files[i]);
      unlink (p);
    }
  if (rmdir (dir) == 0)
    unlink (lockp);
}

/* How many snapshots a data root keeps (each ~90 MB): the least recently used beyond it go. */
#define SNAP_KEEP 6

struct snap_use {
  char *dir;
  time_t used; /* the state's mtime: set at each restore */
};

static int
snap_use_cmp (const void *a, const void *b)
{
  const struct snap_use *x = a, *y = b;
  return x->used < y->used ? -1 : x->used > y->used;
}

/* Snapshots whose inputs changed (another kernel, image disk, QEMU or init) are no use any more:
 * removed, each under its lock (one being built is left alone); of the others, the least recently
 * used beyond SNAP_KEEP (with the one being built) go too. */
static void
snap_sweep (const char *base, const char *keep)
{
  DIR *d = opendir (base);
  struct dirent *de;
  struct snap_use *live = NULL;
  size_t nlive = 0;
  while (d && (de = readdir (d)) != NULL)
    {
      struct stat st;
      cleanup_free char *dir = xasprintf ("%s/%s", base, de->d_name), *lockp = xasprintf ("%s.lock", dir);
      cleanup_free char *kp = xasprintf ("%s/key", dir), *key = NULL;
      if (de->d_name[0] == '.' || strchr (de->d_name, '.') || strcmp (dir, keep) == 0)
        continue;
      cleanup_close int lock = open (lockp, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
      if (lock < 0 || flock (lock, LOCK_EX | LOCK_NB) < 0)
        continue;
      if (read_file (kp, &key, NULL, NULL) == 0 && snap_key_holds (key))
        {
          cleanup_free char *sp = xasprintf ("%s/state", dir);
          live = xrealloc (live, (nlive + 1) * sizeof *live);
          live[nlive].dir = steal_pointer (&dir);
          live[nlive++].used = stat (sp, &st) == 0 ? st.st_mtime : 0;
          continue;
        }
      snap_remove (dir, lockp);
    }
  if (d)
    closedir (d);
  if (nlive > 0)
    qsort (live, nlive, sizeof *live, snap_use_cmp);
  for (size_t i = 0; i < nlive; i++)
    {
      cleanup_free char *lockp = xasprintf ("%s.lock", live[i].dir);
      if (i + SNAP_KEEP <= nlive)
        {
          cleanup_close int lock = open (lockp, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
          if (lock >= 0 && flock (lock, LOCK_EX | LOCK_NB) == 0)
            snap_remove (live[i].dir, lockp);
        }
      free (live[i].dir);
    }
  free (live);
}

/* Restore from the snapshot for this VM when there is one; else build it (this VM boots the
 * snapshot's initramfs and is saved when its init waits), under a lock so that concurrent runs
 * build it once. Not for more volumes than VM_SNAP_SLOTS, a kept disk (a restarted container's),
 * a plain root directory's disk (nothing cached) or an export, nor with --vm-snapshot=off: a cold
 * boot. */
static int
snap_choose (struct vm_session *s, size_t nshares, const char *qemu, bool kvm, bool exec, cella_error_t *err)
{
  cleanup_free char *base = xasprintf ("%s/vm/snapshots", paths_data_root ()), *lockp = NULL;
  if (s->p->vm_snapshot_off || s->disk_src == NULL || s->p->vm_export)
    return 0;
  if (nshares > VM_SNAP_SLOTS)
    {
      s->snap_why = xasprintf ("a cold boot (no snapshot: %zu volumes, more than a snapshot's %d slots)", nshares,
                               VM_SNAP_SLOTS);
      return 0;
    }
  s->snap_key = snap_key (s, qemu, kvm, exec);
  if (s->snap_key == NULL)
    return 0;
  if (mkdir_p (base, 0700, err) < 0)
    return -1;
  s->snap_dir = xasprintf ("%s/%016llx", base, fnv1a (s->snap_key));
  lockp = xasprintf ("%s.lock", s->snap_dir);
  if ((s->snap_state = snap_open (s->snap_dir, s->snap_key)) >= 0)
    {
      futimens (s->snap_state, NULL); /* used now (snap_sweep keeps the recently used) */
      s->snap = SNAP_RESTORE;
      return 0;
    }
  s->snap_lock = open (lockp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->snap_lock < 0)
    return cella_error (err, errno, "the vm snapshot's lock `%s`", lockp);
  while (flock (s->snap_lock, LOCK_EX) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "lock `%s`", lockp);
  if ((s->snap_state = snap_open (s->snap_dir, s->snap_key)) >= 0)
    {
      /* another run built it while we waited */
      close_fd (&s->snap_lock);
      s->snap = SNAP_RESTORE;
      return 0;
    }
  /* an old one under this name (another key, or a save that was cut short) goes */
  if (mkdir (s->snap_dir, 0700) < 0 && errno != EEXIST)
    return cella_error (err, errno, "create `%s`", s->snap_dir);
  for (size_t i = 0; snap_files[i]; i++)
    {
      cleanup_free char *p = xasprintf ("%s/%s", s->snap_dir, snap_files[i]);
      unlink (p);
    }
  snap_sweep (base, s->snap_dir);
  {
    cleanup_free char *kp = xasprintf ("%s/key", s->snap_dir);
    if (write_file_atomic (kp, s->snap_key, strlen (s->snap_key), 0600, err) < 0)
      return -1;
  }
  s->snap = SNAP_BUILD;
  return 0;
}

/* BUILD and RESTORE: the shares (the volumes) filled up to VM_SNAP_SLOTS with an empty directory
 * of the work dir's, read-only, under the slots' fixed tags. Per container, so a guest that
 * mounts an unused slot finds nothing, of its own or of another container. */
static int
snap_slots (struct vm_session *s, struct vm_share **shares, size_t *nshares, cella_error_t *err)
{
  static const char *const tags[] = { "vol0", "vol1", "vol2", "vol3" };
  _Static_assert(sizeof tags / sizeof *tags == VM_SNAP_SLOTS, "a tag per slot");
  if (s->snap == SNAP_NONE)
    return 0;
  if (mkdirat (s->work_fd, "noshare", 0555) < 0 && errno != EEXIST)
    return cella_error (err, errno, "create `%s/noshare`", s->work);
  s->noshare = xasprintf ("%s/noshare", s->work);
  *shares = xrealloc (*shares, VM_SNAP_SLOTS * sizeof **shares);
  for (size_t i = *nshares; i < VM_SNAP_SLOTS; i++)
    (*shares)[i] = (struct vm_share){ .host = s->noshare, .tag = tags[i], .ro = true };
  *nshares = VM_SNAP_SLOTS;
  return 0;
}

/* The saved state in *fd without the guest RAM's zero pages (snapstate.c): *fd becomes another
 * unnamed file in the snapshot's directory holding it. A stream we do not rewrite stays as it
 * was. */
static int
snap_compact (struct vm_session *s, int *fd, cella_error_t *err)
{
  struct stat st;
  void *map;
  int r;
  if (fstat (*fd, &st) < 0)
    return cella_error (err, errno, "the snapshot's state in `%s`", s->snap_dir);
  if (st.st_size == 0)
    return 0;
  map = mmap (NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, *fd, 0);
  if (map == MAP_FAILED)
    return cella_error (err, errno, "read the snapshot's state in `%s`", s->snap_dir);
  cleanup_close int out = open (s->snap_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (out < 0)
    r = cella_error (err, errno, "create the snapshot's state in `%s`", s->snap_dir);
  else
    r = vm_state_compact (map, (size_t) st.st_size, out, &s->snap_stats, err);
  munmap (map, (size_t) st.st_size);
  if (r == 1)
    s->snap_stats.bytes = (size_t) st.st_size;
  if (r == 0)
    {
      close (*fd);
      *fd = steal_fd (&out);
      s->snap_compacted = true;
    }
  return r < 0 ? -1 : 0;
}

/* BUILD, once the guest waits: its state into an unnamed file, named `state` only once complete
 * (written, its zero pages left out, synced), so that a save cut short (kill -9) leaves nothing a
 * restore would take. A failure is a warning: this VM goes on, the next run builds again. */
static int
snap_save (struct vm_session *s)
{
  int r = 0;
  cella_error_t e = NULL;
  cleanup_close int fd = open (s->snap_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  cleanup_free char *sp = xasprintf ("%s/state", s->snap_dir);
  char proc[64];
  s->snap_save_ms = -1;
  if (fd < 0)
    cella_error (&e, errno, "create the snapshot's state in `%s`", s->snap_dir);
  else if ((r = vm_qmp_save (s->qmp_path, fd, &s->snap_save_ms, &e)) < 0)
    s->snap_save_ms = -1;
  else if (snap_compact (s, &fd, &e) < 0)
    ;
  else if (fdatasync (fd) < 0)
    cella_error (&e, errno, "write the snapshot's state in `%s`", s->snap_dir);
  else
    {
      snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
      if (linkat (AT_FDCWD, proc, AT_FDCWD, sp, AT_SYMLINK_FOLLOW) < 0)
        cella_error (&e, errno, "name the snapshot's state `%s`", sp);
    }
  if (e)
    {
      fprintf (stderr, "cella: %sthe vm snapshot was not saved (the next run tries again): %s\n",
               r == -2 ? "" : "warning: ", e->msg);
      cella_error_free (&e);
      s->snap_save_ms = -1;
    }
  close_fd (&s->snap_lock);
  return r == -2 ? -1 : 0;
}

/* The guest's own randomness, NIC address, and config, read by its init after the restore
 * (guest/snap.c): a restored VM shares nothing of the snapshot's but what every container of
 * that image and kernel has in common. */
static int
snap_send_config (struct vm_session *s)
{
  unsigned char rnd[32 + 5];
  char hex[2 * 32 + 1], mac[32];
  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
    {
      /* no randomness: the guest must not go on with the snapshot's (the caller ends it) */
      fprintf (stderr, "cella: the vm snapshot: getrandom: %s\n", strerror (errno));
      return -1;
    }
  for (int i = 0; i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", rnd[i]);
  if (s->netdev == NULL)
    snprintf (mac, sizeof mac, "-");
  else if (s->nic.mac)
    snprintf (mac, sizeof mac, "%s", s->nic.mac); /* the tap's: from its lease */
  else
    /* user-mode network: a locally administered unicast address of its own */
    snprintf (mac, sizeof mac, "02:%02x:%02x:%02x:%02x:%02x", rnd[32], rnd[33], rnd[34], rnd[35], rnd[36]);
  cleanup_free char *head = xasprintf ("restore %s %s\nconfig %zu\n", hex, mac, s->cfg_len);
  explicit_bzero (rnd, sizeof rnd);
  explicit_bzero (hex, sizeof hex);
  if (write_all (s->ctl[0], head, strlen (head)) < 0 || write_all (s->ctl[0], s->cfg_text, s->cfg_len) < 0)
    return -1; /* QEMU is gone: the supervisor sees it end */
  return 0;
}

static int
vm_session_prepare (struct plan *p, const char *work, bool exec, struct vm_session *s, cella_error_t *err)
{
  cleanup_free char *qemu = NULL;
  struct vm_guest_config c;
  struct vm_share *shares = NULL;
  size_t nshares = 0, nvolumes;
  bool kvm = p->vm_accel && strcmp (p->vm_accel, "kvm") == 0;
  long long t_jail;
  int r;
  vm_session_init (s);
  s->p = p;
  s->work = xstrdup (work);
  if (mkdir (work, 0700) < 0 && errno != EEXIST)
    return cella_error (err, errno, "create the vm work dir `%s`", work);
  s->work_fd = open (work, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->work_fd < 0)
    return cella_error (err, errno, "vm work dir `%s`", work);
  if (p->vm_kernel == NULL && vm_plan_prepare (p, err) < 0)
    return -1;
  if (vm_qemu_find (&qemu, err) < 0)
    return -1;
  s->initrd = xasprintf ("%s/initramfs.cpio", work);
  s->console = xasprintf ("%s/console.log", work);
  s->qemu_log = xasprintf ("%s/qemu.log", work);
  guest_config (p, &c, &shares, &nshares);
  nvolumes = nshares;
  r = make_net (s, err) < 0 || make_disk (s, err) < 0 || snap_choose (s, nshares, qemu, kvm, exec, err) < 0
              || snap_slots (s, &shares, &nshares, err) < 0 || make_initramfs (s, err) < 0 || make_qmp (s, err) < 0
              || open_for_qemu (s, err) < 0 || (exec && make_exec (s, err) < 0)
          ? -1
          : 0;
  if (r == 0
      && (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->hvc) < 0
          || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->ctl) < 0
          || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->out) < 0
          || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->err) < 0))
    r = cella_error (err, errno, "socketpair");
  if (r < 0)
    {
      for (size_t i = 0; i < c.nmounts; i++)
        free (c.mounts[i].tag);
      free (c.mounts);
      free (c.tmpfs);
      free (shares);
      return -1;
    }
  t_jail = now_ns ();
  r = make_jail (s, qemu, shares, nshares, nvolumes, kvm, err);
  t_jail = now_ns () - t_jail;
  if (r == 0)
    make_argv (s, shares, nshares, kvm);
  for (size_t i = 0; i < c.nmounts; i++)
    free (c.mounts[i].tag);
  free (c.mounts);
  free (c.tmpfs);
  free (shares);
  if (r < 0)
    return -1;
  if (p->debug)
    {
      fprintf (stderr,
               "cella: vm: disk %s (%s), kernel %s, %s\ncella: vm: QEMU's jail: %zu entries (found in %.1f ms), "
               "%s\ncella: vm:",
               s->disk, s->disk_method, p->vm_kernel,
               s->snap == SNAP_RESTORE ? "started from the snapshot"
               : s->snap == SNAP_BUILD ? "booted to make the snapshot"
               : s->snap_why           ? s->snap_why
                                       : "a cold boot (no snapshot)",
               s->jail.nentries, (double) t_jail / 1e6,
               s->jail.drop_uid ? "an unprivileged uid of its own" : "the caller's ids in a user namespace");
      for (size_t i = 0; s->argv[i]; i++)
        fprintf (stderr, " %s", s->argv[i]);
      fputc ('\n', stderr);
    }
  return 0;
}

/* ---- the supervisor ---- */

struct sup {
  struct vm_session *s;
  struct session fg; /* the workload's stdio relayed (hvc0, cella.stdout, cella.stderr), until QEMU
                        exits */
  int qemu_pidfd;
  pid_t qemu;
  bool ready, have_exit, eof_sent, exported;
  bool drained;                  /* all the guest's output read (its "exit" counts) */
  unsigned long long seen_bytes; /* output read at the last tick, and when it grew */
  long long seen_at;
  unsigned long long out_expect, err_expect; /* the "exit N OUT ERR" counts */
  long long exit_seen;                       /* when the guest said its exit (0: not yet) */
  int exit_code;
  int signalled;   /* a terminating signal that made us end the VM ourselves */
  int pending_sig; /* came before "ready" */
  unsigned terms;
  long long t_start, t_jailed, t_resumed, t_ready, t_exit; /* for --debug */
  char line[256];
  size_t linelen;
};

static int
qemu_spawn (struct sup *u, cella_error_t *err)
{
  struct vm_session *s = u->s;
  int keep[14] = { s->hvc[1], s->ctl[1], s->out[1], s->err[1], s->qmp, s->disk_fd[0], s->disk_fd[1], s->console_fd };
  size_t nkeep = 8;
  if (s->export_fd[0] >= 0)
    {
      keep[nkeep++] = s->export_fd[0];
      keep[nkeep++] = s->export_fd[1];
    }
  if (s->snap == SNAP_RESTORE)
    keep[nkeep++] = s->snap_state; /* -incoming fd:N */
  if (s->nic.fd >= 0)
    keep[nkeep++] = s->nic.fd; /* -netdev tap,fd=N */
  if (s->exec[1] >= 0)
    keep[nkeep++] = s->exec[1];
  cleanup_close int logfd = open (s->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  cleanup_close int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0)
    return cella_error (err, errno, "create `%s`", s->qemu_log);
  if (null < 0)
    return cella_error (err, errno, "open /dev/null");
  if (vm_jail_spawn (&s->jail, s->argv, keep, nkeep, null, logfd, &u->qemu, &u->qemu_pidfd, err) < 0)
    return -1;
  u->t_jailed = now_ns (); /* its jail built and QEMU exec'd */
  /* QEMU holds these now (the tap goes away with it) */
  close_fd (&s->hvc[1]);
  close_fd (&s->ctl[1]);
  close_fd (&s->out[1]);
  close_fd (&s->err[1]);
  close_fd (&s->exec[1]);
  close_fd (&s->nic.fd);
  close_fd (&s->disk_fd[0]);
  close_fd (&s->disk_fd[1]);
  close_fd (&s->export_fd[0]);
  close_fd (&s->export_fd[1]);
  close_fd (&s->console_fd);
  close_fd (&s->snap_state);
  if (s->snap == SNAP_RESTORE && snap_send_config (s) < 0) /* read by the guest once restored */
    kill (u->qemu, SIGKILL);
  return 0;
}

static void
send_signal (struct sup *u, int sig)
{
  char msg[32];
  int n = snprintf (msg, sizeof msg, "signal %d\n", sig);
  write_all (u->s->ctl[0], msg, (size_t) n);
}

/* Ask QEMU to end the VM now: QMP quit, else SIGKILL. */
static void
qemu_quit (struct sup *u)
{
  cella_error_t e = NULL;
  if (vm_qmp (u->s->qmp_path, "quit", &e) < 0)
    {
      cella_error_free (&e);
      kill (u->qemu, SIGKILL);
    }
}

static void
on_signal (struct sup *u, int sig)
{
  bool terminating = sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
  if (terminating)
    u->terms++;
  if (!u->ready)
    {
      /* nothing runs yet: a stop ends the VM; other signals wait for the workload */
      if (terminating)
        {
          u->signalled = sig;
          qemu_quit (u);
        }
      else
        u->pending_sig = sig;
      return;
    }
  if (terminating && u->terms >= 3)
    {
      /* asked three times: the guest does not answer */
      u->signalled = sig;
      qemu_quit (u);
      return;
    }
  send_signal (u, sig);
}

/* -t: the caller's terminal's size to the guest's terminal of the workload (its foreground process
 * group gets SIGWINCH there). Only once the guest said "ready": it has the terminal then. */
static void
send_winsize (struct sup *u)
{
  struct winsize ws;
  char msg[48];
  if (!u->s->p->process.tty || !u->ready || session_caller_winsize (&ws) < 0)
    return;
  int n = snprintf (msg, sizeof msg, "winsize %u %u\n", (unsigned) ws.ws_row, (unsigned) ws.ws_col);
  write_all (u->s->ctl[0], msg, (size_t) n);
}

/* A console has no end of file to pass on: say it on cella.ctl (see src/vm/guest.h). */
static void
send_eof (struct sup *u)
{
  static const char eof[] = "eof\n";
  if (u->eof_sent)
    return;
  write_all (u->s->ctl[0], eof, sizeof eof - 1);
  u->eof_sent = true;
}

/* Once the guest said its exit and every byte it counted on the output ports has been read (its
 * data waits in QEMU's queues until we take it, and a port has no end of file): the guest may
 * power off. The guest synced its disk before it said its exit; for a disk that nobody keeps, what
 * is left is its power-off, a remount and QEMU's own exit, so QEMU is ended at once. */
static void
sup_drained (struct sup *u)
{
  static const char drained[] = "drained\n";
  if (!u->have_exit || u->drained || u->fg.out_bytes < u->out_expect || u->fg.err_bytes < u->err_expect)
    return;
  u->drained = true;
  u->exit_seen = now_ns ();
  if (u->s->ephemeral)
    kill (u->qemu, SIGKILL);
  else
    write_all (u->s->ctl[0], drained, sizeof drained - 1);
}

static void
on_ctl_line (struct sup *u, const char *line)
{
  int code;
  if (strcmp (line, "waiting") == 0 && u->s->snap == SNAP_BUILD)
    {
      /* a VM that cannot go on after the save is ended (its error said so) */
      if (snap_save (u->s) < 0 || snap_send_config (u->s) < 0)
        kill (u->qemu, SIGKILL);
    }
  else if (strcmp (line, "resumed") == 0 && u->s->snap != SNAP_NONE)
    {
      /* the guest's clock stood still in the snapshot */
      struct timespec ts;
      char msg[64];
      clock_gettime (CLOCK_REALTIME, &ts);
      int n = snprintf (msg, sizeof msg, "clock %lld %ld\n", (long long) ts.tv_sec, ts.tv_nsec);
      write_all (u->s->ctl[0], msg, (size_t) n);
      u->t_resumed = now_ns ();
    }
  else if (strcmp (line, "ready") == 0)
    {
      u->ready = true;
      u->fg.hold_input = false;
      u->t_ready = now_ns ();
      send_winsize (u);
      if (u->pending_sig)
        send_signal (u, u->pending_sig);
      u->pending_sig = 0;
      if (u->fg.in < 0)
        send_eof (u); /* no stdin: the workload's reads end at once, as with </dev/null */
    }
  else if (strcmp (line, "exported") == 0)
    u->exported = true;
  else if (sscanf (line, "exit %d %llu %llu", &code, &u->out_expect, &u->err_expect) >= 1 && code >= 0 && code <= 255)
    {
      u->have_exit = true;
      u->exit_code = code;
      u->t_exit = now_ns ();
      sup_drained (u);
    }
}

static bool
read_ctl (void *cookie, int fd)
{
  struct sup *u = cookie;
  char buf[256];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  for (ssize_t i = 0; i < n; i++)
    {
      if (buf[i] == '\n' || u->linelen == sizeof u->line - 1)
        {
          u->line[u->linelen] = '\0';
          on_ctl_line (u, u->line);
          u->linelen = 0;
        }
      else if (buf[i] != '\r')
        u->line[u->linelen++] = buf[i];
    }
  return true;
}

/* The guest said its exit and, once its output is read, powers off; a VM that does not is ended
 * 5 s after. */
static int
sup_tick (void *cookie)
{
  struct sup *u = cookie;
  if (!u->have_exit)
    return -1;
  sup_drained (u);
  if (!u->drained)
    {
      /* each piece of output read is a round of the loop; a blocked write to a slow reader
       * holds the loop, not this clock. Output that stopped short for 10 s will not come. */
      unsigned long long seen = u->fg.out_bytes + u->fg.err_bytes;
      if (u->seen_at == 0 || seen != u->seen_bytes)
        {
          u->seen_bytes = seen;
          u->seen_at = now_ns ();
        }
      else if (now_ns () - u->seen_at > 10000000000LL)
        {
          fprintf (stderr, "cella: warning: the vm's output ended short of what the guest wrote (%llu of %llu bytes)\n",
                   seen, u->out_expect + u->err_expect);
          u->out_expect = u->err_expect = 0;
          sup_drained (u);
        }
      return 1000;
    }
  if (now_ns () - u->exit_seen > 5000000000LL)
    {
      qemu_quit (u);
      u->exit_seen = now_ns ();
    }
  return 1000;
}

static void
sup_signal (void *cookie, int sig)
{
  on_signal (cookie, sig);
}

static void
sup_input_end (void *cookie)
{
  send_eof (cookie);
}

static void
sup_resize (void *cookie)
{
  send_winsize (cookie);
}

static const struct session_ops sup_ops = {
  .signal = sup_signal,
  .input_end = sup_input_end,
  .extra = read_ctl,
  .tick = sup_tick,
  .resize = sup_resize,
};

/* The last lines of a file, for an error. */
static char *
tail_of (const char *path, size_t max)
{
  cleanup_free char *buf = NULL;
  size_t len = 0;
  if (read_file (path, &buf, &len, NULL) < 0 || len == 0)
    return NULL;
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    buf[--len] = '\0';
  return xstrdup (len > max ? buf + len - max : buf);
}

/* Run the VM of s to its end with the workload's stdio at in/out/out_err: the workload's exit status,
 * or -1 with *err. Signals in `forwarded` must be blocked by the caller. */
static int
supervise (struct vm_session *s, int in, int out, int out_err, cella_error_t *err)
{
  struct sup u = { .s = s, .qemu_pidfd = -1 };
  const siginfo_t *si = &u.fg.si;
  session_init (&u.fg);
  session_add_signals (&u.fg, forwarded, sizeof forwarded / sizeof forwarded[0]);
  session_add_signals (&u.fg, resized, sizeof resized / sizeof resized[0]);
  u.t_start = now_ns ();
  if (qemu_spawn (&u, err) < 0)
    {
      vm_jail_release (&s->jail);
      return -1;
    }
  if (s->exec[0] >= 0)
    {
      cella_error_t e = NULL;
      int r = vm_exec_router_start (s->exec[0], s->exec_listen, &e);
      s->exec[0] = s->exec_listen = -1;
      if (r < 0)
        {
          /* the VM runs on without exec */
          fprintf (stderr, "cella: warning: %s\n", e->msg);
          cella_error_free (&e);
        }
    }
  u.fg.ops = &sup_ops;
  u.fg.cookie = &u;
  u.fg.pidfd = u.qemu_pidfd;
  u.fg.in = in;
  u.fg.in_to = s->hvc[0];
  /* the workload's stdout and stderr come on the ports; with -t its terminal (a pseudo-terminal
   * in the guest) on cella.stdout. hvc0 only takes its input. A port holds back where a console
   * would drop: a slow reader here slows the workload down and loses nothing. cella.stderr also
   * carries init's own messages. */
  u.fg.out_from = s->out[0];
  u.fg.err_from = s->err[0];
  u.fg.extra = s->ctl[0];
  u.fg.out = out;
  u.fg.err = out_err;
  /* the guest's terminal echoes and edits: ours passes bytes through */
  u.fg.raw = s->p->process.tty;
  /* stdin only once the guest's hvc0 is in raw mode ("ready"): earlier input is echoed */
  u.fg.hold_input = true;
  u.fg.drain_ms = 200;
  session_run (&u.fg); /* QEMU's status: the workload's comes on cella.ctl */
  close (u.qemu_pidfd);
  vm_jail_release (&s->jail);
  if (s->p->debug && s->snap != SNAP_NONE)
    fprintf (stderr, "cella: vm: snapshot %s%s; the guest had its config %.1f ms after QEMU's start\n", s->snap_dir,
             s->snap == SNAP_BUILD ? (s->snap_save_ms >= 0 ? " saved" : " not saved") : "",
             u.t_resumed ? (double) (u.t_resumed - u.t_start) / 1e6 : -1.0);
  if (s->p->debug && s->snap == SNAP_BUILD)
    fprintf (stderr, "cella: vm: saving the snapshot took %lld ms; its state %zu bytes (%s)\n", s->snap_save_ms,
             s->snap_stats.bytes, s->snap_compacted ? "the guest RAM's zero pages left out" : "as QEMU wrote it");
  if (s->p->debug)
    fprintf (stderr,
             "cella: vm: QEMU jailed and exec'd after %.1f ms, workload ready %.1f ms after QEMU's start, exit "
             "reported at %.1f ms, QEMU gone at %.1f ms\n",
             (double) (u.t_jailed - u.t_start) / 1e6, u.t_ready ? (double) (u.t_ready - u.t_start) / 1e6 : -1.0,
             u.t_exit ? (double) (u.t_exit - u.t_start) / 1e6 : -1.0, (double) (now_ns () - u.t_start) / 1e6);
  if (u.have_exit && u.exit_code == 0 && s->p->vm_export && !u.exported)
    return cella_error (err, 0, "the vm exited 0 without writing its root to the export disk");
  if (u.have_exit)
    return u.exit_code;
  if (u.signalled)
    return 128 + u.signalled;
  {
    cleanup_free char *q = tail_of (s->qemu_log, 600), *c = tail_of (s->console, 1500);
    return cella_error (err, 0, "the vm ended without reporting the workload's exit (QEMU %s %d)%s%s%s%s",
                        si->si_code == CLD_EXITED ? "exit status" : "killed by signal", si->si_status,
                        q ? "; QEMU said: " : "", q ? q : "", c ? "\n--- kernel console (last lines) ---\n" : "",
                        c ? c : "");
  }
}

static void
block_forwarded (sigset_t *old)
{
  struct session fg;
  session_init (&fg);
  session_add_signals (&fg, forwarded, sizeof forwarded / sizeof forwarded[0]);
  session_add_signals (&fg, resized, sizeof resized / sizeof resized[0]);
  session_block (&fg, old);
}

/* The work dirs of foreground runs that were killed (kill -9: nothing of theirs ran; their QEMU
 * died with them, PDEATHSIG): each run holds a lock on its dir while it lives, so a dir that is
 * unlocked and was not touched for a minute is no live run's. Removed as vm_workdir_remove does. */
static void
sweep_killed_runs (const char *base)
{
  DIR *d = opendir (base);
  struct dirent *de;
  while (d && (de = readdir (d)) != NULL)
    {
      struct stat st;
      if (!has_prefix (de->d_name, "run-") || fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
          || !S_ISDIR (st.st_mode) || time (NULL) - st.st_mtime < 60)
        continue;
      cleanup_close int fd = openat (dirfd (d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || flock (fd, LOCK_EX | LOCK_NB) < 0)
        continue;
      cleanup_free char *path = xasprintf ("%s/%s", base, de->d_name);
      cella_error_t e = NULL;
      if (vm_workdir_remove (path, &e) < 0)
        cella_error_free (&e);
    }
  if (d)
    closedir (d);
}

int
vm_run (struct plan *p, cella_error_t *err)
{
  cleanup_free char *base = xasprintf ("%s/vm", paths_data_root ());
  cleanup_free char *work = xasprintf ("%s/run-XXXXXX", base);
  struct vm_session s = { 0 };
  sigset_t old;
  int status;
  if (mkdir_p (base, 0700, err) < 0)
    return -1;
  sweep_killed_runs (base);
  if (mkdtemp (work) == NULL)
    return cella_error (err, errno, "create `%s`", work);
  /* held while this run lives (sweep_killed_runs) */
  cleanup_close int alive = open (work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (alive >= 0)
    flock (alive, LOCK_EX);
  /* from here a ^C or a TERM is the VM's to handle (before the boot: it ends the VM), so that
   * the work dir is always removed */
  block_forwarded (&old);
  if (vm_session_prepare (p, work, false, &s, err) < 0)
    status = -1;
  else
    {
      s.ephemeral = true; /* its work dir is removed below */
      status = supervise (&s, p->process.stdin_open || p->process.tty ? 0 : -1, 1, 2, err);
    }
  vm_session_clear (&s);
  if (net_vm_tap_wanted (p))
    net_detach (p); /* the lease and the DNAT rules (the tap went with QEMU) */
  {
    cella_error_t e = NULL;
    if (vm_workdir_remove (work, &e) < 0)
      {
        fprintf (stderr, "cella: warning: %s\n", e->msg);
        cella_error_free (&e);
      }
  }
  sigprocmask (SIG_SETMASK, &old, NULL);
  return status;
}

/* In the supervisor forked from an engine monitor: the write ends of its stdin's pipe that the fork
 * copied (the monitor's, which it closes once the caller's input ends). Held here too, the pipe
 * would never end and the guest never get its eof (`printf x | cella run -i --backend vm ... cat`
 * would hang). */
static void
close_inherited_stdin_writers (void)
{
  struct stat in, st;
  struct dirent *e;
  DIR *d;
  if (fstat (0, &in) < 0 || !S_ISFIFO (in.st_mode) || (d = opendir ("/proc/self/fd")) == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      int fd = atoi (e->d_name);
      if (fd <= 2 || fd == dirfd (d))
        continue;
      if (fstat (fd, &st) == 0 && S_ISFIFO (st.st_mode) && st.st_ino == in.st_ino && st.st_dev == in.st_dev
          && (fcntl (fd, F_GETFL) & O_ACCMODE) == O_WRONLY)
        close (fd);
    }
  closedir (d);
}

int
vm_start (struct plan *p, const char *work_dir, struct ns_proc *out, cella_error_t *err)
{
  struct vm_session s = { 0 };
  int master = -1, slave = -1;
  pid_t pid;
  if (vm_session_prepare (p, work_dir, true, &s, err) < 0)
    {
      vm_session_clear (&s);
      if (net_vm_tap_wanted (p))
        net_detach (p);
      return -1;
    }
  if (p->process.tty && openpty (&master, &slave, NULL, NULL, NULL) < 0)
    {
      vm_session_clear (&s);
      return cella_error (err, errno, "open a pseudo-terminal");
    }
  if (master >= 0)
    fcntl (master, F_SETFD, FD_CLOEXEC);
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    {
      vm_session_clear (&s);
      return cella_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      cella_error_t e = NULL;
      int status;
      if (slave >= 0)
        {
          if (login_tty (slave) < 0)
            _exit (125);
        }
      else
        setsid (); /* a process group of its own: stop signals it, not QEMU's */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      prctl (PR_SET_NAME, "cella-vm", 0, 0, 0);
      close_inherited_stdin_writers ();
      block_forwarded (NULL);
      for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        signal (forwarded[i], SIG_DFL);
      status = supervise (&s, p->process.stdin_open || p->process.tty ? 0 : -1, 1, 2, &e);
      {
        /* the VM is gone: its ports are published no more */
        cleanup_free char *ports = xasprintf ("%s/ports", work_dir);
        cleanup_free char *sock = xasprintf ("%s/" VM_EXEC_SOCKET, work_dir);
        unlink (ports);
        unlink (sock);
      }
      if (status < 0)
        {
          dprintf (2, "cella: %s\n", e->msg);
          status = 125;
        }
      _exit (status);
    }
  if (slave >= 0)
    close (slave);
  vm_session_clear (&s);
  out->pid = pid;
  out->master = master;
  out->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (out->pidfd < 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      if (master >= 0)
        close (master);
      return cella_error (err, errno, "pidfd_open");
    }
  return 0;
}
