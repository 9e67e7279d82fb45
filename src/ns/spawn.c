/* The parent side of the ns backend: prepare the ops, clone the child into its namespaces,
 * write its id maps, then forward signals (and the terminal) until it exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backend/session.h"
#include "../net/net.h"
#include "../host/facts.h"
#include "../cgroup/cgroup.h"
#include "../util/execstub.h"
#include "../util/rawsys.h"
#include "../util/selfexec.h"
#include "internal.h"
#include "landlock.h"
#include "ns.h"

/* Signals `cella run` passes on to the workload, like docker's sig-proxy. */
static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT };

static unsigned long long
clone_flags (const struct plan *p)
{
  static const struct {
    unsigned ns;
    unsigned long long flag;
  } map[] = {
    { PLAN_NS_MNT, CLONE_NEWNS },    { PLAN_NS_PID, CLONE_NEWPID }, { PLAN_NS_UTS, CLONE_NEWUTS },
    { PLAN_NS_IPC, CLONE_NEWIPC },   { PLAN_NS_NET, CLONE_NEWNET }, { PLAN_NS_CGROUP, CLONE_NEWCGROUP },
    { PLAN_NS_USER, CLONE_NEWUSER },
  };
  unsigned long long f = 0;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (p->ns & map[i].ns)
      f |= map[i].flag;
  return f;
}

/* The namespaces an OCI config joined by path: exec enters them like the created ones. */
static unsigned long long
joined_flags (const struct plan *p)
{
  static const unsigned long long flag[PLAN_NS_COUNT]
      = { CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWUSER, 0 };
  unsigned long long f = 0;
  for (unsigned i = 0; i < PLAN_NS_COUNT; i++)
    if (p->ns_path[i])
      f |= flag[i];
  return f;
}

static int
write_proc_file (pid_t pid, const char *name, const char *text, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("/proc/%d/%s", (int) pid, name);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0)
    return cella_error (err, errno, "write `%s`", path);
  return 0;
}

/* posix_spawn (a vfork): no copy of our page tables, and none of our pages turns copy-on-write
 * (each such fault is 15-30 us on a VM that traps them). */
static pid_t
helper_start (char **argv, cella_error_t *err)
{
  extern char **environ;
  pid_t pid;
  int e = posix_spawn (&pid, argv[0], NULL, NULL, argv, environ);
  if (e != 0)
    return cella_error (err, e, "run %s", argv[0]);
  return pid;
}

static int
helper_wait (pid_t pid, const char *name, cella_error_t *err)
{
  int status;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for %s", name);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "%s failed (status %d): check /etc/subuid and /etc/subgid for your user", name,
                        WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
  return 0;
}

/* Root of the initial user namespace writes any map itself: newuidmap would want /etc/subuid
 * lines for root, and a "deny" in setgroups would take additionalGids from the container. */
static int
write_map_privileged (pid_t pid, const char *kind, const struct id_map *m, size_t n, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("/proc/%d", (int) pid);
  if (ns_write_id_map (dir, kind, m, n) < 0)
    return cella_error (err, errno, "write `%s/%s`", dir, kind);
  return 0;
}

/* The argv of newuidmap/newgidmap for map m (kind: "uid_map" or "gid_map") */
static char **
map_helper_argv (pid_t pid, const char *kind, const struct id_map *m, size_t n)
{
  char **argv = NULL;
  char buf[32];
  strv_push (&argv, strcmp (kind, "uid_map") == 0 ? "/usr/bin/newuidmap" : "/usr/bin/newgidmap");
  snprintf (buf, sizeof buf, "%d", (int) pid);
  strv_push (&argv, buf);
  for (size_t i = 0; i < n; i++)
    {
      snprintf (buf, sizeof buf, "%u", m[i].inside);
      strv_push (&argv, buf);
      snprintf (buf, sizeof buf, "%u", m[i].outside);
      strv_push (&argv, buf);
      snprintf (buf, sizeof buf, "%u", m[i].count);
      strv_push (&argv, buf);
    }
  return argv;
}

/* Write one map, or (ranges beyond our own id: shadow's set-uid newuidmap/newgidmap) start its
 * helper and leave its pid in *helper (0: none) for the caller to wait for. */
static int
write_map_start (pid_t pid, const char *kind, const struct id_map *m, size_t n, pid_t *helper, cella_error_t *err)
{
  *helper = 0;
  if (geteuid () == 0 && in_initial_userns ())
    return write_map_privileged (pid, kind, m, n, err);
  if (n > 1)
    {
      char **argv = map_helper_argv (pid, kind, m, n);
      pid_t h = helper_start (argv, err);
      strv_free (argv);
      if (h < 0)
        return -1;
      *helper = h;
      return 0;
    }
  else
    {
      char text[64];
      snprintf (text, sizeof text, "%u %u %u\n", m[0].inside, m[0].outside, m[0].count);
      /* an unprivileged writer must deny setgroups first; root of the machine maps any ids and
       * leaves setgroups to the container (a --userns=auto container's users have groups) */
      if (strcmp (kind, "gid_map") == 0 && !(geteuid () == 0 && in_initial_userns ())
          && write_proc_file (pid, "setgroups", "deny", err) < 0)
        return -1;
      return write_proc_file (pid, kind, text, err);
    }
}

/* Both maps; the two helpers, when needed, run at once (each is a whole start of a dynamically
 * linked program: one after the other they were most of a rootless start). */
static int
write_maps (const struct plan *p, pid_t pid, cella_error_t *err)
{
  pid_t uh = 0, gh = 0;
  int r = write_map_start (pid, "uid_map", p->uid_map, p->nuid_map, &uh, err);
  if (r == 0)
    r = write_map_start (pid, "gid_map", p->gid_map, p->ngid_map, &gh, err);
  if (uh > 0 && helper_wait (uh, "/usr/bin/newuidmap", r < 0 ? NULL : err) < 0)
    r = -1;
  if (gh > 0 && helper_wait (gh, "/usr/bin/newgidmap", r < 0 ? NULL : err) < 0)
    r = -1;
  return r;
}

static ssize_t
recv_msg (int sock, void *buf, size_t len, int *fd_out)
{
  char cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { .iov_base = buf, .iov_len = len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  ssize_t n;
  do
    n = recvmsg (sock, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n > 0 && fd_out)
    for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy (fd_out, CMSG_DATA (cm), sizeof (int));
  return n;
}

/* The container's process as the parent learns it during its setup. */
struct child {
  pid_t pid;
  int pidfd;
  int master;                    /* pty master, -1 without -t */
  unsigned long long root_mount; /* SYNC_ROOT_MOUNT */
};

/* Until it exits: the signals of `forwarded` passed on by its pidfd, the terminal relayed (with -t;
 * without, it has the caller's stdio itself). The mask was blocked by the caller (signals_for). */
static int
supervise (const struct child *c, const struct plan *p, const struct session *signals)
{
  struct session s = *signals;
  int status;
  s.pidfd = c->pidfd;
  if (c->master >= 0)
    {
      s.in = p->process.stdin_open ? 0 : -1;
      s.in_to = s.out_from = s.winsize_to = c->master;
      s.out = 1;
      s.raw = true;
      s.drain_ms = 100;
    }
  status = session_run (&s);
  return status < 0 ? EXIT_CELLA_ERROR : status;
}

/* The signals a foreground session takes over (blocked from before the clone). */
static void
signals_for (const struct plan *p, struct session *s)
{
  static const int more[] = { SIGCHLD, SIGWINCH };
  session_init (s);
  session_add_signals (s, forwarded, sizeof forwarded / sizeof forwarded[0]);
  session_add_signals (s, more, p->process.tty ? 2 : 1);
}

static void
child_close (struct child *c)
{
  if (c->master >= 0)
    close (c->master);
  if (c->pidfd >= 0)
    close (c->pidfd);
  c->master = c->pidfd = -1;
}

pid_t
ns_clone (unsigned long long flags, int cgfd, int *pidfd)
{
  struct clone_args args = { .flags = flags | CLONE_PIDFD | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0),
                             .pidfd = (uint64_t) (uintptr_t) pidfd,
                             .exit_signal = SIGCHLD,
                             .cgroup = cgfd >= 0 ? (uint64_t) cgfd : 0 };
  return (pid_t) syscall (SYS_clone3, &args, sizeof args);
}

/* OCI: a user namespace joined by path. The container's new namespaces must belong to it, so an
 * intermediate process joins it and clones the container as our child (CLONE_PARENT, as exec's
 * joiner does). Returns like ns_clone: 0 in the container's process, its pid here. */
static pid_t
clone_in_userns (const struct plan *p, unsigned long long flags, int *pidfd)
{
  int pp[2], r = -EIO;
  pid_t mid;
  if (pipe2 (pp, O_CLOEXEC) < 0)
    return -1;
  mid = fork ();
  if (mid < 0)
    {
      close (pp[0]);
      close (pp[1]);
      return -1;
    }
  if (mid == 0)
    {
      struct clone_args args = { .flags = flags | CLONE_PARENT };
      int fd = open (p->ns_path[6], O_RDONLY | O_CLOEXEC);
      pid_t c;
      close (pp[0]);
      if (fd < 0 || setns (fd, CLONE_NEWUSER) < 0)
        c = -errno;
      else if ((c = (pid_t) syscall (SYS_clone3, &args, sizeof args)) == 0)
        {
          close (pp[1]);
          close (fd);
          return 0;
        }
      else if (c < 0)
        c = -errno;
      if (write (pp[1], &c, sizeof c) < 0)
        _exit (1);
      _exit (0);
    }
  close (pp[1]);
  if (read (pp[0], &r, sizeof r) != sizeof r)
    r = -EIO;
  close (pp[0]);
  while (waitpid (mid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (r < 0)
    {
      errno = -r;
      return -1;
    }
  *pidfd = (int) syscall (SYS_pidfd_open, r, 0);
  if (*pidfd < 0)
    {
      kill (r, SIGKILL);
      return -1;
    }
  return r;
}

/* SYNC_SECCOMP: the listener fd to the launch's agent, then the child's answer. */
static int
seccomp_handover (pid_t pid, int sock, const struct ns_launch *l, int fd, cella_error_t *err)
{
  int r, answer;
  if (fd < 0)
    r = cella_error (err, EIO, "seccomp listener: the container sent none");
  else if (l == NULL || l->seccomp_listener == NULL)
    r = cella_error (err, 0, "seccomp listener: nothing here to hand it to");
  else
    r = l->seccomp_listener (fd, pid, l->ud, err);
  if (fd >= 0)
    close (fd);
  answer = r < 0 ? ((*err)->errno_ ? (*err)->errno_ : EIO) : 0;
  if (send (sock, &answer, sizeof answer, MSG_NOSIGNAL) < 0 && r == 0)
    return cella_error (err, errno, "seccomp listener: answer the container");
  return r;
}

_Static_assert(SYNC_EXEC_FAILED == EXECSTUB_FAILED, "the exec stub reports with the sync protocol's number");

/* Wait for the child's setup to end: EOF (exec happened), a pty, or an error report. With an
 * exec fifo (OCI create) the end is SYNC_CREATED: EOF before it means the child died. */
static int
await_child (struct child *s, int sock, const struct ns_launch *l, const char *argv0, cella_error_t *err)
{
  int resets = 0;
  for (;;)
    {
      struct sync_error e;
      int fd = -1;
      ssize_t n = recv_msg (sock, &e, sizeof e, &fd);
      /* a child that failed with GO unread in its queue resets the socket on exit: the kernel reports
       * that once, before the messages the child sent, which are still there to read */
      if (n < 0 && errno == ECONNRESET && resets++ == 0)
        continue;
      if (n == 0 && l && l->exec_fifo >= 0)
        return cella_error (err, 0, "the container's init exited during its setup, before it was created");
      if (n == 0)
        return 0;
      if (n < 0)
        return cella_error (err, errno, "read from the container's setup");
      if (e.type == SYNC_PTY && fd >= 0)
        s->master = fd;
      else if (e.type == SYNC_PID)
        s->pid = e.status;
      else if (e.type == SYNC_ROOT_MOUNT)
        s->root_mount = strtoull (e.msg, NULL, 10);
      else if (e.type == SYNC_CREATED)
        return 0; /* OCI create: set up, waiting on the exec fifo */
      else if (e.type == SYNC_SECCOMP && seccomp_handover (s->pid, sock, l, fd, err) < 0)
        return -1;
      else if (e.type == SYNC_EXEC_FAILED)
        {
          struct execstub_failure f;
          memcpy (&f, &e, sizeof f);
          return ns_exec_error (err, argv0, f.errno_);
        }
      else if (e.type == SYNC_ERROR)
        {
          e.msg[sizeof e.msg - 1] = '\0';
          return cella_error_status (err, e.status, e.errno_, "%s", e.msg);
        }
    }
}

static int
prepare_plan (struct plan *p, cella_error_t *err)
{
  struct stat st;
  for (size_t i = 0; i < p->nops; i++)
    {
      free (p->ops[i].resolved); /* a restart prepares again */
      p->ops[i].resolved = NULL;
      if (mount_op_prepare (&p->ops[i], p, err) < 0)
        return -1;
    }
  p->landlock_now = landlock_scopes_for_start (p);
  if (stat (p->rootfs, &st) < 0)
    return cella_error (err, errno, "root `%s`", p->rootfs);
  if (!S_ISDIR (st.st_mode))
    return cella_error (err, ENOTDIR, "root `%s`", p->rootfs);
  if (ns_prepare_devices (p, err) < 0)
    return -1;
  if (ns_root_premount_wanted (p))
    {
      int fd = ns_root_premount (p, err);
      if (fd < 0)
        return -1;
      p->root_fd = fd;
      p->root_premounted = true;
      return 0;
    }
  return mount_root_prepare (p, err);
}

/* What prepare made on the host for the child (bind mounts, device nodes), once the child has
 * attached them or is gone. */
static void
release_prepared (struct plan *p)
{
  for (size_t i = 0; i < p->nops; i++)
    mount_op_release (&p->ops[i]);
  ns_release_devices (p);
  mount_root_release (p);
}

/* The premounted root is the child's now (it got the descriptor with clone). */
static void
root_release (struct plan *p)
{
  if (p->root_premounted)
    close (p->root_fd);
  p->root_premounted = false;
}

bool
ns_child_waits (const struct plan *p)
{
  return (p->ns & PLAN_NS_USER) || cgroup_wanted (p) || net_wanted (p);
}

/* The child must decide to wait as the parent did, but what it would probe itself (a cgroup it
 * can write) may differ in its namespaces (a joined user namespace): the parent decides before
 * clone and the child inherits the answer. */
static struct {
  const struct plan *p;
  const struct ns_launch *l;
  bool waits, late;
} launch_decision;

bool
ns_launch_waits (const struct plan *p, const struct ns_launch *l)
{
  if (launch_decision.p == p && launch_decision.l == l)
    return launch_decision.waits;
  return ns_child_waits (p) || (l && l->parent_hook);
}

/* Only the cgroup needs the parent (no user namespace, network, parent hook, nor a createContainer
 * hook that might look for the container's cgroup): the child builds
 * its root meanwhile and takes SYNC_GO just after. Moving a process into a cgroup waits for an
 * RCU grace period (milliseconds, more on a busy host); that wait and the root's mounts overlap. */
bool
ns_launch_go_late (const struct plan *p, const struct ns_launch *l)
{
  if (launch_decision.p == p && launch_decision.l == l)
    return launch_decision.late;
  return !(p->ns & PLAN_NS_USER) && !net_wanted (p) && !(l && l->parent_hook) && !p->nhooks[HOOK_CREATE_CONTAINER]
         && cgroup_wanted (p);
}

/* Between clone and the child's setup: what only the parent (in the host's namespaces) can do. cgfd >= 0:
 * clone put the child in its cgroup already; devices_later: whose device rules are still to apply (the child
 * builds its root meanwhile, and execs nothing before SYNC_GO). */
static int
parent_setup (struct plan *p, pid_t pid, int cgfd, bool devices_later, cella_error_t *err)
{
  if (p->ns & PLAN_NS_USER)
    {
      if (write_maps (p, pid, err) < 0)
        return -1;
    }
  if (cgfd >= 0 && devices_later && cgroup_devices_apply (p, cgfd, err) < 0)
    return -1;
  if (cgfd < 0 && cgroup_wanted (p) && cgroup_enter (p, pid, err) < 0)
    return -1;
  if (net_wanted (p) && net_attach (p, pid, err) < 0)
    return -1;
  return 0;
}

int
ns_start (struct plan *p, const sigset_t *child_mask, struct ns_proc *out, cella_error_t *err)
{
  return ns_start_launch (p, child_mask, NULL, out, err);
}

int
ns_start_launch (struct plan *p, const sigset_t *child_mask, const struct ns_launch *l, struct ns_proc *out,
                 cella_error_t *err)
{
  struct child s = { .pid = -1, .pidfd = -1, .master = -1 };
  int sv[2], go = SYNC_GO;
  cleanup_close int cgfd = -1;
  bool devices_later;

  out->pid = -1;
  out->pidfd = out->master = -1;
  out->root_mount = 0;
  /* The exec stub protects the workload's execve only; a process that stays in the container
   * running this binary (an --init, a PID namespace the container shares) needs the re-exec
   * (src/cli/run.c decides before anything happens; this is the guard). */
  if (selfexec_stub_armed () && (p->process.init || !(p->ns & PLAN_NS_PID) || p->ns_path[1] || l))
    return cella_error (err, 0, "internal: this container needs cella re-executed from a sealed copy, and it was not");
  /* the network first: it may turn /etc/hosts into a bind of a file it keeps up to date, or
   * name another container's namespace for the child to join (--network container:NAME) */
  if (net_join_resolve (p, err) < 0 || (net_wanted (p) && net_prepare (p, err) < 0))
    return -1;
  /* the cgroup before clone where the child can be born in it (a user namespace joined by path clones
   * from another process: cgroup_enter after). Its device program (eBPF: verified and compiled, ~0.9 ms
   * with the attach here) is loaded after clone where the child takes SYNC_GO late: while the child
   * builds its root, and before it may exec anything of the container's. */
  launch_decision.p = NULL;
  devices_later = ns_launch_waits (p, l) && ns_launch_go_late (p, l);
  if (prepare_plan (p, err) < 0
      || (!p->ns_path[6] && cgroup_wanted (p) && cgroup_create_for_clone (p, devices_later, &cgfd, err) < 0))
    {
      release_prepared (p);
      root_release (p);
      if (net_wanted (p))
        net_detach (p);
      return -1;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      cella_error (err, errno, "socketpair");
      goto undo;
    }
  fflush (NULL);
  {
    /* namespaces joined by path (OCI): pid and time around clone here, a user namespace by
     * clone_in_userns, the rest in the child */
    int saved[2];
    launch_decision.p = NULL;
    launch_decision.waits = ns_launch_waits (p, l);
    launch_decision.late = launch_decision.waits && ns_launch_go_late (p, l);
    launch_decision.p = p;
    launch_decision.l = l;
    if (ns_enter_for_children (p, saved, err) < 0)
      {
        ns_leave_for_children (saved);
        root_release (p);
        close (sv[0]);
        close (sv[1]);
        return -1;
      }
    /* the cgroup namespace after the move into the container's cgroup (SYNC_GO_CGROUPNS), so that
     * its root is that cgroup, as runc does */
    if (!p->ns_path[6] && (clone_flags (p) & CLONE_NEWCGROUP) && launch_decision.waits && cgroup_wanted (p))
      go = SYNC_GO_CGROUPNS;
    s.pid = p->ns_path[6]
                ? clone_in_userns (p, clone_flags (p), &s.pidfd)
                : ns_clone (clone_flags (p) & ~(go == SYNC_GO_CGROUPNS ? CLONE_NEWCGROUP : 0ULL), cgfd, &s.pidfd);
    if (s.pid != 0)
      {
        ns_leave_for_children (saved);
        root_release (p);
      }
  }
  if (s.pid < 0)
    {
      int e = errno;
      close (sv[0]);
      close (sv[1]);
      probe_ns_refused_at_start (e); /* a foreground run then plans again (cli/run.c) */
      if (e == EPERM || e == ENOSPC || e == EUSERS)
        cella_error (err, e,
                     "create the container's namespaces (is user namespace creation allowed? try `cella doctor`)");
      else
        cella_error (err, e, "clone");
      goto undo;
    }
  if (s.pid == 0)
    {
      sigset_t none;
      close (sv[0]);
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, child_mask ? child_mask : &none, NULL);
      ns_child_main (p, sv[1], l);
    }
  close (sv[1]);

  /* Only id maps, a cgroup or a network need the parent before the child may go on. Without
   * them the child starts at once (a round trip saved on every start). */
  if (ns_launch_waits (p, l))
    {
      if (parent_setup (p, s.pid, cgfd, devices_later, err) < 0)
        goto kill;
      if (l && l->parent_hook && l->parent_hook (s.pid, l->ud, err) < 0)
        goto kill;
      if (send (sv[0], &go, sizeof go, MSG_NOSIGNAL) < 0)
        {
          /* a child that takes GO late (while its root is built) may have failed and gone before GO:
           * its own error is still queued on the socket, and says more than EPIPE */
          int e = errno;
          if ((e == EPIPE || e == ECONNRESET) && await_child (&s, sv[0], l, p->process.argv[0], err) < 0)
            goto reap;
          cella_error (err, e, "start the container: its setup ended before it was told to go on");
          goto kill;
        }
    }
  if (await_child (&s, sv[0], l, p->process.argv[0], err) < 0)
    goto reap;
  release_prepared (p);
  close (sv[0]);
  out->pid = s.pid;
  out->pidfd = s.pidfd;
  out->master = s.master;
  out->root_mount = s.root_mount;
  return 0;

kill:
  syscall (SYS_pidfd_send_signal, s.pidfd, SIGKILL, NULL, 0);
reap:
  {
    siginfo_t si;
    waitid (P_PIDFD, s.pidfd, &si, WEXITED);
  }
  release_prepared (p);
  ns_host_root_release (p->rootfs, s.root_mount);
  if (net_wanted (p))
    net_detach (p);
  if (cgroup_wanted (p))
    cgroup_remove_plan (p);
  close (sv[0]);
  close (s.pidfd);
  if (s.master >= 0)
    close (s.master);
  return -1;

undo:
  release_prepared (p);
  root_release (p);
  if (net_wanted (p))
    net_detach (p);
  if (cgfd >= 0)
    cgroup_remove_plan (p);
  return -1;
}

/* ---- the container's teardown, after its exit is reported ------------------------------------------------
 * When a container's last process exits, the kernel tears its mount namespace down in that process's exit,
 * before the exit is reported: every mount goes, and an image's overlay root waits for RCU grace periods on
 * the way (the namespace's unmount, then overlayfs freeing its layers' private mounts), ~0.35 ms of waiting
 * on every `cella run busybox true` here (docs/benchmarks.md). A foreground run whose namespace holds nothing
 * of the user's (an ephemeral overlay of an image, no bind of a host path) keeps the namespace by an fd from
 * its start, and once the exit is known hands it to a small process that closes it: the teardown then runs
 * there, beside cella's report and exit, and is over within milliseconds. */
static bool
teardown_deferrable (const struct plan *p, const struct ns_launch *l)
{
  if (l != NULL || !p->root_overlay || p->root_upper != NULL || !(p->ns & PLAN_NS_MNT) || p->ns_path[0] != NULL)
    return false;
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_BIND || p->ops[i].kind == OP_OVERLAY || p->ops[i].kind == OP_MOUNT)
      return false;
  return true;
}

static int
teardown_hold (pid_t pid)
{
  char path[48];
  snprintf (path, sizeof path, "/proc/%d/ns/mnt", (int) pid);
  return open (path, O_RDONLY | O_CLOEXEC); /* -1 (the container is gone already): no hand-off */
}

/* The holder shares cella's memory (CLONE_VM: no copy of its page tables) and runs on a stack of its own;
 * it only makes raw system calls (nothing that writes errno, which it shares with cella, or cella's heap). It
 * has a copy of cella's fd table: it closes everything but the namespace first, so that a caller reading
 * cella's output is not kept waiting for its end; then (a plain run's) removes the run's own cgroup below
 * the shared device parent, asking again while the kernel still counts the exited tasks (EBUSY, for up to
 * ~2 s; one left after that is swept by the next `system prune`); then closes the namespace (the teardown
 * happens here) and exits. */
/* (static: cella's entry point populates its writable segment at every start, so these are kept small; the
 * holder's frames are a few hundred bytes, and it runs with cella's signals blocked: no handler frame lands
 * on its stack) */
static char teardown_stack[4096] __attribute__ ((aligned (16)));
static struct {
  unsigned fd;
  char cgroup[4096];
} teardown;

#if defined(RAW_SYS3)
static int
teardown_holder (void *arg)
{
  unsigned fd = teardown.fd;
  (void) arg;
  if (fd > 0)
    raw_sys3 (SYS_close_range, 0, fd - 1, 0);
  raw_sys3 (SYS_close_range, fd + 1, ~0U, 0);
  for (int i = 0; teardown.cgroup[0] && i < 150; i++)
    {
      struct timespec t = { 0, i < 50 ? 1000000L : 20000000L };
      if (raw_sys3 (SYS_rmdir, (long) teardown.cgroup, 0, 0) != -EBUSY)
        break;
      raw_sys3 (SYS_nanosleep, (long) &t, 0, 0);
    }
  raw_sys3 (SYS_close, fd, 0, 0);
  raw_sys3 (SYS_exit, 0, 0, 0);
  return 0;
}

/* Hands fd (and p's plain cgroup) to the holder; false when there is none: the caller removes the cgroup and
 * the teardown happens at this close, as it would have in the container. */
static bool
teardown_hand_off (const struct plan *p, int fd)
{
  bool handed;
  teardown.fd = (unsigned) fd;
  teardown.cgroup[0] = '\0';
  cgroup_plain_leaf (p, teardown.cgroup, sizeof teardown.cgroup);
  /* exit signal 0: no SIGCHLD for cella; once cella has exited, init reaps it */
  handed = clone (teardown_holder, teardown_stack + sizeof teardown_stack, CLONE_VM, NULL) >= 0;
  close (fd);
  return handed;
}
#else
static bool
teardown_hand_off (const struct plan *p, int fd)
{
  (void) p;
  close (fd); /* (no holder without raw system calls here) */
  return false;
}
#endif

int
ns_run (struct plan *p, cella_error_t *err)
{
  return ns_run_launch (p, NULL, err);
}

int
ns_run_launch (struct plan *p, const struct ns_launch *l, cella_error_t *err)
{
  struct child c = { .pid = -1, .pidfd = -1, .master = -1 };
  struct session signals;
  struct ns_proc proc;
  sigset_t old;
  int status = -1, held;
  bool handed;

  signals_for (p, &signals);
  session_block (&signals, &old);
  if (ns_start_launch (p, &old, l, &proc, err) < 0)
    goto out;
  if (l && l->started)
    l->started (&proc, l->ud);
  c.pid = proc.pid;
  c.pidfd = proc.pidfd;
  c.master = proc.master;
  held = teardown_deferrable (p, l) ? teardown_hold (proc.pid) : -1;
  status = supervise (&c, p, &signals);
  handed = held >= 0 && teardown_hand_off (p, held);
  if (net_wanted (p))
    net_detach (p);
  if (handed && teardown.cgroup[0])
    ; /* the holder removes it */
  else if (cgroup_finish (p) && status == 128 + SIGKILL)
    fprintf (stderr, "cella: the container was killed by the OOM killer (memory limit %lld bytes)\n", p->res.memory);

out:
  child_close (&c);
  session_unblock (&old);
  return status;
}

static int
enter_root_of (pid_t target)
{
  char path[64];
  cleanup_close int root = -1;
  snprintf (path, sizeof path, "/proc/%d/root", (int) target);
  root = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0 || fchdir (root) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    return -1;
  return 0;
}

/* The joiner (a fork of cella): enter the container's namespaces through its pidfd, then
 * start the process as a child of cella itself (CLONE_PARENT) inside the pid namespace, which
 * only a new child can enter; report its pid and go. */
__attribute__ ((noreturn)) static void
exec_joiner (struct plan *p, pid_t target, unsigned long long flags, int syncfd, const struct ns_launch *l)
{
  struct sync_error e = { .type = SYNC_ERROR, .status = EXIT_CELLA_ERROR };
  int pidfd = (int) syscall (SYS_pidfd_open, target, 0);
  struct clone_args args = { .flags = CLONE_PARENT, .exit_signal = 0 };
  pid_t pid;
  cella_error_t cgerr = NULL;
  /* the container's cgroup first, while still in the host's namespaces: the process cloned below
   * is born in it */
  if (!(l && l->cgroup_later) && cgroup_join_plan (p, getpid (), &cgerr) < 0)
    {
      e.errno_ = cgerr->errno_;
      snprintf (e.msg, sizeof e.msg, "exec: join the container's cgroup: %s", cgerr->msg);
      send (syncfd, &e, sizeof e, MSG_NOSIGNAL);
      _exit (EXIT_CELLA_ERROR);
    }
  if (pidfd < 0 || (flags && setns (pidfd, (int) flags) < 0))
    {
      e.errno_ = errno;
      snprintf (e.msg, sizeof e.msg, "join the namespaces of the container's process %d", (int) target);
      send (syncfd, &e, sizeof e, MSG_NOSIGNAL);
      _exit (EXIT_CELLA_ERROR);
    }
  /* no mount namespace of its own: the container's root is a chroot in ours */
  if (!(flags & CLONE_NEWNS) && enter_root_of (target) < 0)
    {
      e.errno_ = errno;
      snprintf (e.msg, sizeof e.msg, "enter the root of the container's process %d", (int) target);
      send (syncfd, &e, sizeof e, MSG_NOSIGNAL);
      _exit (EXIT_CELLA_ERROR);
    }
  pid = (pid_t) syscall (SYS_clone3, &args, sizeof args);
  if (pid == 0)
    ns_exec_child_main (p, syncfd, l);
  if (pid < 0)
    {
      e.errno_ = errno;
      snprintf (e.msg, sizeof e.msg, "start a process in the container");
      send (syncfd, &e, sizeof e, MSG_NOSIGNAL);
      _exit (EXIT_CELLA_ERROR);
    }
  e.type = SYNC_PID;
  e.status = pid;
  send (syncfd, &e, sizeof e, MSG_NOSIGNAL);
  _exit (0);
}

int
ns_exec (struct plan *p, pid_t target, cella_error_t *err)
{
  return ns_exec_launch (p, target, NULL, NULL, err);
}

int
ns_exec_launch (struct plan *p, pid_t target, const struct ns_launch *l, pid_t *pid, cella_error_t *err)
{
  struct child s = { .pid = -1, .pidfd = -1, .master = -1 };
  struct session signals;
  /* --network container:NAME: the workload's network namespace is that container's */
  unsigned long long flags = clone_flags (p) | joined_flags (p) | (p->net == NET_CONTAINER ? CLONE_NEWNET : 0);
  sigset_t old;
  int sv[2], status = -1, r;
  pid_t joiner;
  char netns[64];

  /* on the host's network after all (--network container: of a host-network container): stay in
   * it, as the container did; a rootless one could not join it from the container's user namespace */
  snprintf (netns, sizeof netns, "/proc/%d/ns/net", (int) target);
  if ((flags & CLONE_NEWNET) && same_file (netns, "/proc/self/ns/net") == 1)
    flags &= ~(unsigned long long) CLONE_NEWNET;

  signals_for (p, &signals);
  /* the container's processes were scoped as their namespaces asked: so is this one */
  p->landlock_now = landlock_scopes_for_exec (p, target);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  session_block (&signals, &old);
  fflush (NULL);
  joiner = fork ();
  if (joiner < 0)
    {
      close (sv[0]);
      close (sv[1]);
      sigprocmask (SIG_SETMASK, &old, NULL);
      return cella_error (err, errno, "fork");
    }
  if (joiner == 0)
    {
      close (sv[0]);
      sigprocmask (SIG_SETMASK, &old, NULL);
      exec_joiner (p, target, flags, sv[1], l);
    }
  close (sv[1]);
  r = await_child (&s, sv[0], l, p->process.argv[0], err);
  close (sv[0]);
  while (waitpid (joiner, NULL, 0) < 0 && errno == EINTR)
    ;
  if (s.pid > 0)
    s.pidfd = (int) syscall (SYS_pidfd_open, s.pid, 0);
  if (r < 0)
    {
      /* reap the process that failed to exec (it is our child) */
      if (s.pid > 0)
        while (waitpid (s.pid, NULL, __WALL) < 0 && errno == EINTR)
          ;
      goto out;
    }
  if (s.pidfd < 0)
    {
      cella_error (err, errno, "exec in the container: no process was started");
      goto out;
    }
  if (pid)
    *pid = s.pid;
  backend_exec_started (p);
  if (l && l->started)
    {
      struct ns_proc started = { .pid = s.pid, .pidfd = s.pidfd, .master = s.master };
      l->started (&started, l->ud);
    }
  if (l && l->detached)
    {
      status = 0; /* it runs on; whoever reaps our orphans (conmon) waits for it */
      goto out;
    }
  status = supervise (&s, p, &signals);
out:
  child_close (&s);
  session_unblock (&old);
  return status;
}

/* ---- running a function as root of a user namespace with the container's id maps ---- */

int
ns_run_mapped (int (*fn) (void *ud, cella_error_t *err), void *ud, cella_error_t *err)
{
  cleanup_plan struct plan *p = plan_new ();
  int sv[2], ready[2], go[2], status;
  char c = 0;
  pid_t pid;
  p->rootless = true;
  if (geteuid () == 0 || idmap_default (p, NULL) < 0 || p->nuid_map < 2 || p->ngid_map < 2)
    return fn (ud, err); /* nothing to map beyond our own id: as we are */
  /* sv: the child's error (error_send), ready: it has unshared, go: its maps are written */
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  if (pipe2 (ready, O_CLOEXEC) < 0 || pipe2 (go, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    {
      cella_error_t e = NULL;
      close (sv[0]);
      close (ready[0]);
      close (go[1]);
      if (unshare (CLONE_NEWUSER) < 0)
        cella_error (&e, errno, "create a user namespace");
      else if (write (ready[1], "r", 1) != 1 || read (go[0], &c, 1) != 1 || setresgid (0, 0, 0) < 0
               || setresuid (0, 0, 0) < 0)
        cella_error (&e, errno, "become root of the user namespace");
      else
        fn (ud, &e);
      if (e)
        {
          error_send (sv[1], e);
          _exit (1);
        }
      _exit (0);
    }
  close (sv[1]);
  close (ready[1]);
  close (go[0]);
  if (read (ready[0], &c, 1) == 1)
    {
      cella_error_t me = NULL;
      if (write_maps (p, pid, &me) < 0)
        {
          kill (pid, SIGKILL);
          *err = me;
        }
      else if (write (go[1], "g", 1) != 1)
        cella_error (err, errno, "start the mapped child");
    }
  close (ready[0]);
  close (go[1]);
  if (*err == NULL)
    error_recv (sv[0], err); /* nothing comes when the child had no error */
  close (sv[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for the mapped child");
  if (*err)
    return -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "the mapped child failed (status %d)",
                        WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
  return 0;
}

static int
remove_fn (void *ud, cella_error_t *err)
{
  const char *path = ud;
  if (remove_tree (path) < 0)
    return cella_error (err, errno, "remove `%s`", path);
  return 0;
}

int
remove_tree_mapped (const char *path)
{
  cella_error_t err = NULL;
  int r;
  if (remove_tree (path) == 0)
    return 0;
  if (geteuid () == 0)
    return -1;
  /* files of the container's other ids (subordinate ids on the host): remove them as those ids */
  r = ns_run_mapped (remove_fn, (void *) path, &err);
  cella_error_free (&err);
  return r;
}
