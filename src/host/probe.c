/* Probes of what this host can do. Each kernel feature is tried for real (an unshare, a mount,
 * an open) in a child that reports errno over a pipe, so that a refusal by seccomp, a security
 * module or a sysctl shows up the way a container start would meet it. Sysctls and
 * /proc/self/status are read only afterwards, to explain a refusal; they never decide. */
#define _GNU_SOURCE
#include "probe.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../util/paths.h"
#include "../util/util.h"
#include "landlock.h"

/* ---- a probe in a child ------------------------------------------------------------------------- */

/* What a probe child sends back: how far it got (a probe's own stage number) and the errno. */
struct probe_msg {
  int stage;
  int err;
};

typedef int (*probe_fn) (void *ud, int *stage);

struct probe_call {
  probe_fn fn;
  void *ud;
  int fd;
};

static int
probe_child_main (void *arg)
{
  struct probe_call *c = arg;
  struct probe_msg m = { 0, 0 };
  m.err = c->fn (c->ud, &m.stage);
  (void) write_all (c->fd, &m, sizeof m);
  return 0; /* clone's wrapper ends the child with exit(2): nothing of ours runs at exit */
}

/* Run fn (0 or an errno) in a child that reports over a pipe. The child shares our memory and we
 * wait while it runs (CLONE_VM | CLONE_VFORK, as posix_spawn does): no copy of the page tables,
 * about three times cheaper than fork here, which counts because every `cella run` that picks its
 * backend pays for one probe. It has its own stack, files, cwd and namespaces. stage -1: the child
 * could not be started (err says why) or died without an answer. */
static struct probe_msg
run_probe (probe_fn fn, void *ud)
{
  enum { STACK_SIZE = 64 * 1024 };
  struct probe_msg m = { -1, EIO };
  struct probe_call c = { fn, ud, -1 };
  cleanup_free char *stack = NULL;
  int p[2];
  pid_t pid;
  ssize_t n;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return (struct probe_msg){ -1, errno };
  stack = xmalloc (STACK_SIZE);
  c.fd = p[1];
  pid = clone (probe_child_main, stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
  if (pid < 0)
    m.err = errno;
  close (p[1]);
  if (pid > 0)
    {
      do
        n = read (p[0], &m, sizeof m);
      while (n < 0 && errno == EINTR);
      if (n != (ssize_t) sizeof m)
        m = (struct probe_msg){ -1, EIO };
      while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  close (p[0]);
  return m;
}

static const char *
errname (int e)
{
  const char *s = strerrorname_np (e);
  return s ? s : "unknown errno";
}

static long
sysctl_long (const char *name)
{
  cleanup_free char *path = xasprintf ("/proc/sys/%s", name), *text = NULL;
  if (read_file (path, &text, NULL, NULL) < 0)
    return -1;
  return strtol (text, NULL, 10);
}

/* "Seccomp:" of /proc/self/status: 0 none, 1 strict, 2 filter; -1 unknown. */
static int
seccomp_mode (void)
{
  cleanup_free char *text = NULL;
  const char *s;
  if (read_file ("/proc/self/status", &text, NULL, NULL) < 0 || (s = strstr (text, "\nSeccomp:")) == NULL)
    return -1;
  return atoi (s + strlen ("\nSeccomp:"));
}

/* Does this process need a user namespace for a container? The same rule as the plan builder's
 * (plan.rootless): any uid but 0. Root of a user namespace (`unshare -r`) makes the other
 * namespaces in its own. */
static bool
needs_userns (void)
{
  return geteuid () != 0;
}

/* ---- why a namespace is refused, and the fix ---------------------------------------------------- */

static const char *const ns_limits[] = { "user/max_user_namespaces",
                                         "user/max_mnt_namespaces",
                                         "user/max_pid_namespaces",
                                         "user/max_uts_namespaces",
                                         "user/max_ipc_namespaces",
                                         "user/max_net_namespaces",
                                         NULL };

static void
explain_limit (char **cause, char **fix)
{
  for (size_t i = 0; ns_limits[i]; i++)
    if (sysctl_long (ns_limits[i]) == 0)
      {
        cleanup_free char *dotted = xstrdup (ns_limits[i]);
        *strchr (dotted, '/') = '.';
        *cause = xasprintf ("%s is 0", dotted);
        *fix = xasprintf ("`sysctl -w %s=15000`", dotted);
        return;
      }
  *cause = xasprintf ("the namespace limit is used up (user.max_user_namespaces is %ld here; an outer "
                      "user namespace may have a lower one)",
                      sysctl_long ("user/max_user_namespaces"));
  *fix = xstrdup ("raise it: `sysctl -w user.max_user_namespaces=15000`");
}

/* cause and fix of a refused unshare (e: its errno; userns: it asked for a user namespace). */
static void
explain_refusal (int e, bool userns, char **cause, char **fix)
{
  if (e == ENOSPC || e == EUSERS || (userns && e == EPERM && sysctl_long ("user/max_user_namespaces") == 0))
    explain_limit (cause, fix);
  else if ((e == EPERM || e == EACCES) && seccomp_mode () == 2)
    {
      *cause = xstrdup ("a seccomp filter denies unshare (this process runs under one: `Seccomp: 2` in "
                        "/proc/self/status)");
      *fix = xstrdup ("run cella outside the sandbox that installs the filter (a container's seccomp profile, "
                      "systemd's RestrictNamespaces=), or use the proot backend");
    }
  else if ((e == EPERM || e == EACCES) && userns && sysctl_long ("kernel/apparmor_restrict_unprivileged_userns") == 1)
    {
      *cause = xstrdup ("kernel.apparmor_restrict_unprivileged_userns is 1 (AppArmor takes the capabilities of "
                        "an unprivileged user namespace away)");
      *fix = xstrdup ("`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile for "
                      "cella that allows `userns,`");
    }
  else if ((e == EPERM || e == EACCES) && userns && sysctl_long ("kernel/unprivileged_userns_clone") == 0)
    {
      *cause = xstrdup ("kernel.unprivileged_userns_clone is 0");
      *fix = xstrdup ("`sysctl -w kernel.unprivileged_userns_clone=1`");
    }
  else if (e == EPERM || e == EACCES)
    {
      *cause = xstrdup ("no known cause (no seccomp filter here, and the user namespace sysctls allow it): a "
                        "security module (SELinux, AppArmor), a chroot, or a missing capability refuses it");
      *fix = xstrdup ("check the audit log (`journalctl -k | grep -i denied`), or use the proot backend");
    }
  else if (e == EINVAL || e == ENOSYS)
    {
      *cause = xstrdup ("the kernel lacks it (built without CONFIG_NAMESPACES, CONFIG_USER_NS, CONFIG_PID_NS…)");
      *fix = xstrdup ("boot a kernel with namespace support, or use the proot backend");
    }
  else
    {
      *cause = xstrdup (strerror (e));
      *fix = xstrdup ("use the proot backend");
    }
}

static const char *
refusal_verb (int e)
{
  if (e == EINVAL || e == ENOSYS)
    return "is not supported";
  if (e == ENOSPC || e == EUSERS)
    return "hits a limit";
  return "is refused";
}

/* ---- the ns backend's probe ----------------------------------------------------------------------- */

#define CONTAINER_NS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)

static int
try_unshare (void *ud, int *stage)
{
  int flags = *(int *) ud;
  *stage = 1;
  return unshare (flags) < 0 ? errno : 0;
}

/* ---- the ns probe's answer kept for the boot ------------------------------------------------------ */

/* Who asks, in a few system calls (no /proc/sys reads: this is on every start's path): the boot
 * (a new kernel is a new boot), the ids, the user namespace, the effective capabilities, the
 * seccomp mode and no_new_privs. What it leaves out (a namespace sysctl lowered since, another
 * filter in the same seccomp state) shows up when the start's own clone is refused:
 * probe_ns_refused_at_start drops the kept answer and the run plans again. */
static char *
ns_cache_key (void)
{
  cleanup_free char *boot = NULL;
  char userns[64] = "";
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct caps[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
  if (read_file ("/proc/sys/kernel/random/boot_id", &boot, NULL, NULL) < 0
      || readlink ("/proc/self/ns/user", userns, sizeof userns - 1) < 0 || syscall (SYS_capget, &h, caps) < 0)
    return NULL;
  return xasprintf ("v2 boot=%.36s euid=%u egid=%u userns=%s capeff=%08x%08x seccomp=%d nnp=%d\n", boot,
                    (unsigned) geteuid (), (unsigned) getegid (), userns, caps[1].effective, caps[0].effective,
                    prctl (PR_GET_SECCOMP, 0, 0, 0, 0), prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

/* The run root, when it is this user's own directory that nobody else can write: only there is a
 * kept answer trusted (and only a positive one is kept, so that a stale answer can never send a
 * host that could run namespaces to another backend, and a fixed host is seen at once). */
static char *
ns_cache_path (void)
{
  struct stat st;
  const char *root = paths_run_root ();
  if (lstat (root, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 022))
    return NULL;
  return xasprintf ("%s/probe-ns", root);
}

static bool
ns_cache_says_usable (const char *key)
{
  cleanup_free char *path = ns_cache_path (), *text = NULL;
  return path && key && read_file (path, &text, NULL, NULL) == 0 && strcmp (text, key) == 0;
}

static void
ns_cache_keep (const char *key)
{
  cella_error_t err = NULL;
  cleanup_free char *path = ns_cache_path ();
  if (path && key && write_file_atomic (path, key, strlen (key), 0644, &err) < 0)
    cella_error_free (&err); /* only a cache: the next start probes again */
}

/* This process's answer: -1 not asked yet, else 0/1; from_kept: it came from the kept file;
 * kept_wrong: the start's clone met a refusal after that (probe_ns_refused_at_start). */
static struct {
  bool boot_cache; /* may use and keep the answer kept for the boot */
  int answer;
  bool from_kept, kept_wrong;
  char *reason, *fix;
} ns_probe = { .boot_cache = true, .answer = -1 };

void
probe_ns_backend_fresh (void)
{
  ns_probe.boot_cache = false;
  ns_probe.answer = -1;
  ns_probe.from_kept = ns_probe.kept_wrong = false;
  free (ns_probe.reason);
  free (ns_probe.fix);
  ns_probe.reason = ns_probe.fix = NULL;
}

void
probe_ns_refused_at_start (int e)
{
  cleanup_free char *path = NULL;
  bool was_kept = ns_probe.from_kept;
  if (!(e == EPERM || e == EACCES || e == ENOSPC || e == EUSERS || e == EINVAL || e == ENOSYS))
    return;
  /* whoever clones (also an engine monitor, which did not plan and cannot know where the plan's
   * answer came from): the next start probes for real */
  if ((path = ns_cache_path ()) != NULL)
    (void) unlink (path);
  ns_probe.from_kept = false;
  ns_probe.kept_wrong = was_kept;
}

bool
probe_ns_kept_answer_was_wrong (void)
{
  return ns_probe.kept_wrong;
}

bool
probe_ns_backend (char **reason, char **fix)
{
  *reason = *fix = NULL;
  if (ns_probe.answer < 0 && ns_probe.boot_cache)
    {
      cleanup_free char *key = ns_cache_key ();
      if (ns_cache_says_usable (key))
        {
          ns_probe.answer = 1;
          ns_probe.from_kept = true;
          return true;
        }
    }
  if (ns_probe.answer < 0)
    {
      bool userns = needs_userns ();
      int flags = CONTAINER_NS | (userns ? CLONE_NEWUSER : 0);
      struct probe_msg m = run_probe (try_unshare, &flags);
      ns_probe.answer = m.stage == 1 && m.err == 0;
      if (ns_probe.answer && ns_probe.boot_cache)
        {
          cleanup_free char *key = ns_cache_key ();
          ns_cache_keep (key);
        }
      if (m.stage < 0)
        {
          ns_probe.reason = xasprintf ("the namespace probe could not run (%s)", strerror (m.err));
          ns_probe.fix = xstrdup ("try again; if it persists, use the proot backend");
        }
      else if (m.err)
        {
          cleanup_free char *cause = NULL;
          explain_refusal (m.err, userns, &cause, &ns_probe.fix);
          ns_probe.reason = xasprintf ("creating %s %s (%s): %s",
                                       userns ? "a user namespace (with mount, PID, UTS and IPC namespaces)"
                                              : "mount, PID, UTS and IPC namespaces",
                                       refusal_verb (m.err), errname (m.err), cause);
        }
    }
  if (!ns_probe.answer)
    {
      *reason = xstrdup (ns_probe.reason);
      *fix = xstrdup (ns_probe.fix);
    }
  return ns_probe.answer;
}

bool
ns_available (char **why)
{
  cleanup_free char *reason = NULL, *fix = NULL;
  bool ok = probe_ns_backend (&reason, &fix);
  if (why)
    *why = ok ? NULL : xasprintf ("%s — %s", reason, fix);
  return ok;
}

/* ---- the overlay probe ---------------------------------------------------------------------------- */

enum overlay_stage { OV_DIRS = 1, OV_UNSHARE, OV_MAP, OV_PRIVATE, OV_MOUNT, OV_WRITE, OV_WHITEOUT };

static const char *const overlay_stages[] = {
  [OV_DIRS] = "making its directories",
  [OV_UNSHARE] = "unshare",
  [OV_MAP] = "mapping the own id in the user namespace",
  [OV_PRIVATE] = "making the mounts private",
  [OV_MOUNT] = "mount",
  [OV_WRITE] = "writing a file through it",
  [OV_WHITEOUT] = "removing a lower file (a whiteout)",
};

struct overlay_probe {
  const char *dir; /* empty, ours, made by the parent, removed by it */
  bool real_root;  /* as the initial namespace's root: trusted.* xattrs, no user namespace */
  uid_t uid;
  gid_t gid;
};

static int
write_proc (const char *file, const char *text)
{
  cleanup_close int fd = open (file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0)
    return -1;
  return 0;
}

static int
map_own_ids (uid_t uid, gid_t gid)
{
  char line[64];
  if (write_proc ("/proc/self/setgroups", "deny") < 0)
    return -1;
  snprintf (line, sizeof line, "0 %u 1", (unsigned) uid);
  if (write_proc ("/proc/self/uid_map", line) < 0)
    return -1;
  snprintf (line, sizeof line, "0 %u 1", (unsigned) gid);
  return write_proc ("/proc/self/gid_map", line);
}

static int
try_overlay (void *ud, int *stage)
{
  struct overlay_probe *o = ud;
  int fd;
  *stage = OV_DIRS;
  if (chdir (o->dir) < 0 || mkdir ("l", 0755) < 0 || mkdir ("u", 0755) < 0 || mkdir ("w", 0755) < 0
      || mkdir ("m", 0755) < 0 || (fd = open ("l/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
    return errno;
  close (fd);
  *stage = OV_UNSHARE;
  if (unshare (CLONE_NEWNS | (geteuid () != 0 ? CLONE_NEWUSER : 0)) < 0)
    return errno;
  *stage = OV_MAP;
  if (o->uid != 0 && map_own_ids (o->uid, o->gid) < 0)
    return errno;
  *stage = OV_PRIVATE;
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return errno;
  /* relative paths: overlayfs resolves them from our cwd, and no path needs escaping */
  *stage = OV_MOUNT;
  if (mount ("overlay", "m", "overlay", 0,
             o->real_root ? "lowerdir=l,upperdir=u,workdir=w" : "lowerdir=l,upperdir=u,workdir=w,userxattr")
      < 0)
    return errno;
  *stage = OV_WRITE;
  if ((fd = open ("m/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
    return errno;
  close (fd);
  *stage = OV_WHITEOUT;
  if (unlink ("m/f") < 0)
    return errno;
  return 0;
}

static void
overlay_result (const struct overlay_probe *o, struct probe_msg m, struct probe_result *r)
{
  const char *how
      = o->real_root ? "a kernel overlay (trusted.* xattrs)" : "an overlay with userxattr in a user namespace";
  r->ok = m.stage == OV_WHITEOUT && m.err == 0;
  r->errno_ = r->ok ? 0 : m.err;
  if (r->ok)
    r->detail = xasprintf ("mounted %s and wrote and removed files through it", how);
  else if (m.stage <= 0 || m.stage > OV_WHITEOUT)
    r->detail = xasprintf ("the probe could not run (%s)", strerror (m.err));
  else
    r->detail
        = xasprintf ("%s: %s%s failed (%s)%s", how, overlay_stages[m.stage],
                     m.stage != OV_UNSHARE ? ""
                     : o->uid              ? "(CLONE_NEWUSER|CLONE_NEWNS)"
                                           : "(CLONE_NEWNS)",
                     errname (m.err),
                     m.stage == OV_MOUNT && !o->real_root ? ": the kernel needs 5.11+ for overlay in a user "
                                                            "namespace, and a file system that keeps user.* xattrs"
                                                          : "");
}

static void
probe_overlay (const char *scratch, struct probe_result *r)
{
  struct overlay_probe o
      = { .real_root = geteuid () == 0 && in_initial_userns (), .uid = geteuid (), .gid = getegid () };
  cleanup_free char *dir = xasprintf ("%s/cella-doctor-XXXXXX", scratch ? scratch : "/tmp");
  if (mkdtemp (dir) == NULL)
    {
      r->errno_ = errno;
      r->detail
          = xasprintf ("cannot make a temporary directory in %s (%s)", scratch ? scratch : "/tmp", errname (errno));
      return;
    }
  o.dir = dir;
  overlay_result (&o, run_probe (try_overlay, &o), r);
  remove_tree (dir);
}

bool
probe_overlay_upper (const char *dir, char **detail)
{
  struct probe_result r = { 0 };
  probe_overlay (dir, &r);
  if (detail)
    *detail = r.ok ? NULL : steal_pointer (&r.detail);
  free (r.detail);
  return r.ok;
}

/* ---- the other kernel probes --------------------------------------------------------------------- */

static int
try_mount_api (void *ud, int *stage)
{
  int fd;
  (void) ud;
  *stage = 1;
  /* fsopen needs CAP_SYS_ADMIN over the user namespace that owns our mount namespace: try it in a
   * mount namespace of our own (in a user namespace of our own when not root) */
  (void) unshare (CLONE_NEWNS | (geteuid () != 0 ? CLONE_NEWUSER : 0));
  *stage = 2;
  fd = (int) syscall (SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fd < 0)
    return errno;
  close (fd);
  return 0;
}

static void
probe_seccomp (struct probe_result *r)
{
  unsigned action = SECCOMP_RET_ERRNO;
  int mode = prctl (PR_GET_SECCOMP, 0, 0, 0, 0);
  if (mode < 0)
    {
      r->errno_ = errno;
      r->detail = xasprintf ("prctl(PR_GET_SECCOMP) fails (%s): the kernel has no seccomp (CONFIG_SECCOMP); "
                             "containers run without a syscall filter",
                             errname (errno));
      return;
    }
  if (syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0)
    {
      r->errno_ = errno;
      r->detail = xasprintf ("seccomp(SECCOMP_GET_ACTION_AVAIL) fails (%s): the kernel has no seccomp filters "
                             "(CONFIG_SECCOMP_FILTER)",
                             errname (errno));
      return;
    }
  r->ok = true;
  r->detail = mode == 2 ? xstrdup ("filters work; this process already runs under one (Seccomp: 2 in "
                                   "/proc/self/status), which also binds every container")
                        : xstrdup ("filters work; this process runs under none");
}

static void
probe_pidfd (struct probe_result *r)
{
  int fd = (int) syscall (SYS_pidfd_open, getpid (), 0);
  if (fd < 0)
    {
      r->errno_ = errno;
      r->detail = xasprintf ("pidfd_open(self) fails (%s): the kernel needs 5.3+", errname (errno));
      return;
    }
  close (fd);
  r->ok = true;
  r->detail = xstrdup ("pidfd_open(self) works");
}

static void
probe_openat2 (struct probe_result *r)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH };
  int fd = (int) syscall (SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
  if (fd < 0)
    {
      r->errno_ = errno;
      r->detail = xasprintf ("openat2(RESOLVE_BENEATH) fails (%s): the kernel needs 5.6+", errname (errno));
      return;
    }
  close (fd);
  r->ok = true;
  r->detail = xstrdup ("openat2(RESOLVE_BENEATH) works");
}

static void
probe_landlock (struct probe_result *r)
{
  int abi = landlock_abi (), made;
  if (abi == -ENOSYS || abi == -EOPNOTSUPP)
    {
      r->errno_ = -abi;
      r->detail = xasprintf ("%s (%s): containers that share the host's network namespace can reach its abstract unix "
                             "sockets",
                             abi == -ENOSYS ? "this kernel has no Landlock (CONFIG_SECURITY_LANDLOCK)"
                                            : "Landlock is built in but not enabled: add landlock to the lsm= "
                                              "boot parameter",
                             errname (-abi));
      return;
    }
  if (abi < 0)
    {
      r->errno_ = -abi;
      r->detail = xasprintf ("landlock_create_ruleset(VERSION) fails (%s)", errname (-abi));
      return;
    }
  if (abi < LANDLOCK_ABI_SCOPES)
    {
      r->detail = xasprintf ("ABI %d has no scopes (ABI %d, Linux 6.12+): containers that share the host's network "
                             "namespace can reach its abstract unix sockets",
                             abi, LANDLOCK_ABI_SCOPES);
      return;
    }
  if ((made = landlock_try_scopes ()) < 0)
    {
      r->errno_ = -made;
      r->detail = xasprintf ("ABI %d, but a ruleset of scopes is refused (%s)", abi, errname (-made));
      return;
    }
  r->ok = true;
  r->detail = xasprintf ("ABI %d: a container in the host's network namespace cannot reach its abstract unix "
                         "sockets (opt out: --security-opt landlock=off)",
                         abi);
}

static void
probe_kvm (struct probe_result *r)
{
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0)
    {
      close (fd);
      r->ok = true;
      r->detail = xstrdup ("/dev/kvm opens read-write");
      return;
    }
  r->errno_ = errno;
  if (errno == ENOENT)
    r->detail = xstrdup ("no /dev/kvm: virtualization is off in the firmware, kvm_intel/kvm_amd is not loaded, "
                         "or this is a VM without nested virtualization");
  else if (errno == EACCES || errno == EPERM)
    r->detail = xasprintf ("/dev/kvm cannot be opened read-write (%s): join its group (`usermod -aG kvm $USER`, "
                           "then log in again)",
                           errname (errno));
  else
    r->detail = xasprintf ("/dev/kvm cannot be opened read-write (%s)", errname (errno));
}

/* ---- all of them -------------------------------------------------------------------------------- */

static const struct {
  const char *key, *title;
} probe_names[PROBE_COUNT] = {
  [PROBE_MOUNT_NS] = { "mount_ns", "mount namespace" },
  [PROBE_PID_NS] = { "pid_ns", "PID namespace" },
  [PROBE_NET_NS] = { "net_ns", "network namespace" },
  [PROBE_USER_NS] = { "user_ns", "user namespace" },
  [PROBE_OVERLAY] = { "overlay_userns", "overlay mount" },
  [PROBE_SECCOMP] = { "seccomp", "seccomp" },
  [PROBE_PIDFD] = { "pidfd_open", "pidfd_open" },
  [PROBE_OPENAT2] = { "openat2", "openat2" },
  [PROBE_MOUNT_API] = { "mount_api", "new mount API" },
  [PROBE_LANDLOCK] = { "landlock", "Landlock scoping" },
  [PROBE_KVM] = { "kvm", "/dev/kvm" },
};

static void
ns_result (int flag, bool in_userns, struct probe_msg m, struct probe_result *r)
{
  static const struct {
    int flag;
    const char *name;
  } names[] = { { CLONE_NEWNS, "CLONE_NEWNS" },
                { CLONE_NEWPID, "CLONE_NEWPID" },
                { CLONE_NEWNET, "CLONE_NEWNET" },
                { CLONE_NEWUSER, "CLONE_NEWUSER" } };
  const char *name = "";
  const char *where = in_userns ? " in a new user namespace" : "";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].flag == flag)
      name = names[i].name;
  r->ok = m.stage == 1 && m.err == 0;
  r->errno_ = r->ok ? 0 : m.err;
  if (r->ok)
    r->detail = xasprintf ("unshare(%s) works%s", name, where);
  else if (m.stage != 1)
    r->detail = xasprintf ("the probe could not run (%s)", strerror (m.err));
  else
    {
      cleanup_free char *cause = NULL, *fix = NULL;
      explain_refusal (m.err, in_userns || flag == CLONE_NEWUSER, &cause, &fix);
      r->detail = xasprintf ("unshare(%s)%s %s (%s): %s — %s", name, where, refusal_verb (m.err), errname (m.err),
                             cause, fix);
    }
}

static void
probe_mount_api (struct probe_result *r)
{
  struct probe_msg m = run_probe (try_mount_api, NULL);
  r->ok = m.stage == 2 && m.err == 0;
  r->errno_ = r->ok ? 0 : m.err;
  if (r->ok)
    r->detail = xstrdup ("fsopen(\"tmpfs\") works");
  else if (m.stage == 2 && m.err == EPERM)
    r->detail = xstrdup ("fsopen(\"tmpfs\") exists but is refused (EPERM): no mount namespace of our own could be "
                         "made to try it in");
  else if (m.stage == 2)
    r->detail = xasprintf ("fsopen(\"tmpfs\") fails (%s): the kernel needs 5.2+", errname (m.err));
  else
    r->detail = xasprintf ("the probe could not run (%s)", strerror (m.err));
}

void
probe_kernel (const char *scratch, struct probe_result res[PROBE_COUNT])
{
  static const int ns_flags[] = { CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUSER };
  bool userns = needs_userns ();
  memset (res, 0, PROBE_COUNT * sizeof *res);
  for (int i = 0; i < PROBE_COUNT; i++)
    {
      res[i].key = probe_names[i].key;
      res[i].title = probe_names[i].title;
    }
  for (int i = 0; i < 4; i++)
    {
      int flags = ns_flags[i] | (userns ? CLONE_NEWUSER : 0);
      ns_result (ns_flags[i], userns && ns_flags[i] != CLONE_NEWUSER, run_probe (try_unshare, &flags),
                 &res[PROBE_MOUNT_NS + i]);
    }
  probe_overlay (scratch, &res[PROBE_OVERLAY]);
  probe_seccomp (&res[PROBE_SECCOMP]);
  probe_pidfd (&res[PROBE_PIDFD]);
  probe_openat2 (&res[PROBE_OPENAT2]);
  probe_mount_api (&res[PROBE_MOUNT_API]);
  probe_landlock (&res[PROBE_LANDLOCK]);
  probe_kvm (&res[PROBE_KVM]);
}

void
probe_results_free (struct probe_result *res, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (res[i].detail);
      res[i].detail = NULL;
    }
}

/* ---- cgroups ------------------------------------------------------------------------------------- */

static bool
is_cgroup2 (const char *path)
{
  struct statfs s;
  return statfs (path, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

/* /proc/cgroups: "#subsys_name hierarchy num_cgroups enabled" */
static char **
v1_controllers (void)
{
  cleanup_free char *text = NULL;
  char **v = xzalloc (sizeof *v), *save = NULL;
  if (read_file ("/proc/cgroups", &text, NULL, NULL) < 0)
    return v;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char name[64];
      unsigned hier, num, enabled;
      if (line[0] != '#' && sscanf (line, "%63s %u %u %u", name, &hier, &num, &enabled) == 4 && enabled && hier)
        strv_push (&v, name);
    }
  return v;
}

static char **
v2_controllers (const char *mnt)
{
  cleanup_free char *path = xasprintf ("%s/cgroup.controllers", mnt), *text = NULL;
  char **v = xzalloc (sizeof *v), *save = NULL;
  if (read_file (path, &text, NULL, NULL) < 0)
    return v;
  for (char *w = strtok_r (text, " \n", &save); w; w = strtok_r (NULL, " \n", &save))
    strv_push (&v, w);
  return v;
}

/* This process's cgroup2 directory: the "0::" line of /proc/self/cgroup under the mount. */
static char *
own_cgroup (const char *mnt)
{
  cleanup_free char *text = NULL;
  char *line, *nl;
  if (read_file ("/proc/self/cgroup", &text, NULL, NULL) < 0)
    return NULL;
  for (line = text; line && *line; line = nl ? nl + 1 : NULL)
    {
      nl = strchr (line, '\n');
      if (nl)
        *nl = '\0';
      if (has_prefix (line, "0::"))
        return xasprintf ("%s%s", mnt, strcmp (line + 3, "/") == 0 ? "" : line + 3);
    }
  return NULL;
}

void
probe_cgroups (struct probe_cgroups *cg)
{
  memset (cg, 0, sizeof *cg);
  if (is_cgroup2 ("/sys/fs/cgroup"))
    {
      cg->version = "v2";
      cg->v2_mount = xstrdup ("/sys/fs/cgroup");
    }
  else if (is_cgroup2 ("/sys/fs/cgroup/unified"))
    {
      cg->version = "hybrid";
      cg->v2_mount = xstrdup ("/sys/fs/cgroup/unified");
    }
  cg->v1_controllers = v1_controllers ();
  if (cg->v2_mount == NULL)
    cg->version = cg->v1_controllers[0] ? "v1" : "none";
  cg->v2_controllers = cg->v2_mount ? v2_controllers (cg->v2_mount) : xzalloc (sizeof (char *));
  if (cg->v2_mount && (cg->own = own_cgroup (cg->v2_mount)) != NULL)
    {
      cleanup_free char *procs = xasprintf ("%s/cgroup.procs", cg->own);
      cg->delegated = access (cg->own, W_OK) == 0 && access (procs, W_OK) == 0;
    }
}

void
probe_cgroups_free (struct probe_cgroups *cg)
{
  free (cg->v2_mount);
  free (cg->own);
  strv_free (cg->v1_controllers);
  strv_free (cg->v2_controllers);
  memset (cg, 0, sizeof *cg);
}

/* ---- helper programs ----------------------------------------------------------------------------- */

static bool
is_executable (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode) && access (path, X_OK) == 0;
}

char *
probe_find_program (const char *name)
{
  const char *path = getenv ("PATH");
  cleanup_free char *dirs = NULL;
  char *save = NULL;
  if (strchr (name, '/'))
    return is_executable (name) ? xstrdup (name) : NULL;
  dirs = xasprintf ("%s:/usr/local/sbin:/usr/sbin:/sbin", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = xasprintf ("%s/%s", *d ? d : ".", name);
      if (is_executable (p))
        return p;
      free (p);
    }
  return NULL;
}

char *
probe_version_line (const char *output)
{
  const char *line = output;
  while (line && *line)
    {
      const char *end = strchrnul (line, '\n'), *s = line, *d;
      for (d = line; d < end && !isdigit ((unsigned char) *d); d++)
        ;
      if (d < end)
        {
          while (s < end && isspace ((unsigned char) *s))
            s++;
          if (!isalnum ((unsigned char) *s))
            {
              /* from the first word that starts with a digit */
              for (s = d; s > line && !isspace ((unsigned char) s[-1]); s--)
                ;
              while (s < end && !isdigit ((unsigned char) *s))
                s++;
            }
          while (end > s && isspace ((unsigned char) end[-1]))
            end--;
          return strndup (s, (size_t) (end - s > 200 ? 200 : end - s));
        }
      line = *end ? end + 1 : NULL;
    }
  return NULL;
}

struct version_run {
  pid_t pid;
  int fd;
  char buf[4096];
  size_t len;
};

static void
version_start (const struct probe_program *pr, int devnull, struct version_run *r)
{
  int p[2];
  r->pid = -1;
  r->fd = -1;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return;
  r->pid = fork ();
  if (r->pid == 0)
    {
      sigset_t none;
      char *argv[] = { (char *) pr->name, (char *) pr->version_arg, NULL };
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      signal (SIGPIPE, SIG_DFL);
      setsid (); /* no controlling terminal: a program that opens /dev/tty gets ENXIO, not our user */
      if (dup2 (devnull, 0) < 0 || dup2 (p[1], 1) < 0 || dup2 (p[1], 2) < 0)
        _exit (127);
      execv (pr->path, argv);
      _exit (127);
    }
  close (p[1]);
  if (r->pid < 0)
    close (p[0]);
  else
    r->fd = p[0];
}

static long long
now_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (long long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Read every pipe until EOF or the deadline. */
static void
version_collect (struct version_run *runs, size_t n, long long deadline)
{
  cleanup_free struct pollfd *fds = xzalloc ((n ? n : 1) * sizeof *fds);
  cleanup_free size_t *which = xzalloc ((n ? n : 1) * sizeof *which);
  for (;;)
    {
      size_t k = 0;
      long long left = deadline - now_ms ();
      for (size_t i = 0; i < n; i++)
        if (runs[i].fd >= 0)
          {
            fds[k] = (struct pollfd){ .fd = runs[i].fd, .events = POLLIN };
            which[k++] = i;
          }
      if (k == 0 || left <= 0)
        return;
      if (poll (fds, k, (int) left) < 0 && errno != EINTR)
        return;
      for (size_t j = 0; j < k; j++)
        if (fds[j].revents)
          {
            struct version_run *r = &runs[which[j]];
            char tmp[4096];
            ssize_t got = read (r->fd, tmp, sizeof tmp);
            if (got < 0 && errno == EINTR)
              continue;
            if (got <= 0)
              {
                close (r->fd);
                r->fd = -1;
                continue;
              }
            if ((size_t) got > sizeof r->buf - 1 - r->len)
              got = (ssize_t) (sizeof r->buf - 1 - r->len); /* the rest is not read for a version */
            memcpy (r->buf + r->len, tmp, (size_t) got);
            r->len += (size_t) got;
          }
    }
}

void
probe_program_versions (struct probe_program *progs, size_t n, int timeout_ms)
{
  cleanup_free struct version_run *runs = xzalloc ((n ? n : 1) * sizeof *runs);
  cleanup_close int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  for (size_t i = 0; i < n; i++)
    {
      runs[i].pid = runs[i].fd = -1;
      if (progs[i].path == NULL)
        progs[i].path = probe_find_program (progs[i].name);
      if (progs[i].path && devnull >= 0)
        version_start (&progs[i], devnull, &runs[i]);
    }
  version_collect (runs, n, now_ms () + timeout_ms);
  for (size_t i = 0; i < n; i++)
    {
      if (runs[i].pid < 0)
        continue;
      if (runs[i].fd >= 0)
        {
          progs[i].timed_out = true;
          kill (-runs[i].pid, SIGKILL);
          kill (runs[i].pid, SIGKILL); /* in case it had no time to call setsid */
          close (runs[i].fd);
        }
      while (waitpid (runs[i].pid, NULL, 0) < 0 && errno == EINTR)
        ;
      runs[i].buf[runs[i].len] = '\0';
      if (!progs[i].timed_out)
        progs[i].version = probe_version_line (runs[i].buf);
    }
}

void
probe_programs_free (struct probe_program *progs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (progs[i].path);
      free (progs[i].version);
      progs[i].path = progs[i].version = NULL;
    }
}
