/* The container's first process: waits for the parent, builds the root, becomes the workload.
 * Runs after clone() with no one to return to: errors go back to the parent over the sync
 * socket (struct sync_error) and the process exits. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../plan/build.h"
#include "../util/caps.h"
#include "../util/selfexec.h"
#include "internal.h"
#include "landlock.h"
#include "ns.h"
#include "seccomp.h"

__attribute__ ((noreturn)) static void
child_fail (int syncfd, cella_error_t *err)
{
  struct sync_error e = { .type = SYNC_ERROR, .status = EXIT_CELLA_ERROR };
  if (err && *err)
    {
      e.status = (*err)->status;
      e.errno_ = (*err)->errno_;
      snprintf (e.msg, sizeof e.msg, "%s", (*err)->msg);
    }
  else
    snprintf (e.msg, sizeof e.msg, "container setup failed");
  if (send (syncfd, &e, sizeof e, MSG_NOSIGNAL) < 0) /* nobody listens (OCI: after create) */
    fprintf (stderr, "cella: %s%s%s\n", e.msg, e.errno_ ? ": " : "", e.errno_ ? strerror (e.errno_) : "");
  _exit (e.status);
}

static int
wait_go (int syncfd, cella_error_t *err)
{
  int msg = 0;
  ssize_t n;
  do
    n = recv (syncfd, &msg, sizeof msg, 0);
  while (n < 0 && errno == EINTR);
  if (n != sizeof msg || (msg != SYNC_GO && msg != SYNC_GO_CGROUPNS))
    _exit (EXIT_CELLA_ERROR); /* the parent is gone: nobody to report to */
  if (msg == SYNC_GO_CGROUPNS && unshare (CLONE_NEWCGROUP) < 0)
    return cella_error (err, errno, "create the cgroup namespace");
  return 0;
}

/* In a user namespace (new or joined) we still carry the ids we had on the host, which it may
 * not map (a root-run container whose map leaves out host uid 0): files we create would then
 * fail with EOVERFLOW. Become the namespace's root, as runc does; a namespace without a root
 * keeps us as we are. */
static int
become_userns_root (const struct plan *p, cella_error_t *err)
{
  if (!(p->ns & PLAN_NS_USER) && p->ns_path[6] == NULL)
    return 0;
  if (setresgid (0, 0, 0) < 0 && errno != EINVAL)
    return cella_error (err, errno, "become root (gid 0) in the user namespace");
  if (setresuid (0, 0, 0) < 0 && errno != EINVAL)
    return cella_error (err, errno, "become root (uid 0) in the user namespace");
  return 0;
}

/* No mount namespace: the parent learns which mount is the container's root bind, to detach it
 * when the container goes (or its setup fails). */
static void
report_root_mount (int syncfd)
{
  struct sync_error e = { .type = SYNC_ROOT_MOUNT };
  unsigned long long id;
  cella_error_t err = NULL;
  if (ns_mount_id (AT_FDCWD, "/", &id) < 0)
    {
      cella_error (&err, errno, "the id of the root mount");
      child_fail (syncfd, &err);
    }
  snprintf (e.msg, sizeof e.msg, "%llu", id);
  if (send (syncfd, &e, sizeof e, MSG_NOSIGNAL) < 0)
    _exit (EXIT_CELLA_ERROR);
}

/* SYNC_GO taken while the root is built (ns_launch_go_late): root_setup says when */
static int
wait_go_late (void *ud, cella_error_t *err)
{
  return wait_go (*(int *) ud, err);
}

static int
loopback_up (cella_error_t *err)
{
  struct ifreq ifr = { 0 };
  cleanup_close int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return cella_error (err, errno, "socket for the loopback interface");
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
    return cella_error (err, errno, "get flags of lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (s, SIOCSIFFLAGS, &ifr) < 0)
    return cella_error (err, errno, "bring lo up");
  return 0;
}

/* One message: `payload` with fd attached as SCM_RIGHTS. */
int
send_fd_with (int sock, void *payload, size_t len, int fd)
{
  char cbuf[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { .iov_base = payload, .iov_len = len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &fd, sizeof fd);
  return sendmsg (sock, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int
send_fd (int sock, int type, int fd)
{
  return send_fd_with (sock, &type, sizeof type, fd);
}

/* runc's console-socket protocol: one message, the pty master as SCM_RIGHTS, its name as payload. */
static int
send_console (int sock, int fd)
{
  char name[] = "/dev/ptmx";
  return send_fd_with (sock, name, sizeof name - 1, fd);
}

/* A pty from the container's own devpts instance; the master goes to the parent, or to the
 * console socket when the launch has one. */
static int
setup_tty (int syncfd, const struct ns_launch *l, int host_tty, cella_error_t *err)
{
  struct winsize ws;
  cleanup_close int master = open ("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  cleanup_close int slave = -1;
  int unlock = 0;
  if (master < 0)
    return cella_error (err, errno, "open /dev/pts/ptmx");
  if (ioctl (master, TIOCSPTLCK, &unlock) < 0)
    return cella_error (err, errno, "unlock the pty");
  slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0)
    return cella_error (err, errno, "open the pty peer");
  if (host_tty >= 0 && ioctl (host_tty, TIOCGWINSZ, &ws) == 0)
    ioctl (slave, TIOCSWINSZ, &ws);
  if (l && l->console_socket >= 0)
    {
      if (send_console (l->console_socket, master) < 0)
        return cella_error (err, errno, "send the pty master to the console socket");
    }
  else if (send_fd (syncfd, SYNC_PTY, master) < 0)
    return cella_error (err, errno, "send the pty to cella");
  if (setsid () < 0 || ioctl (slave, TIOCSCTTY, 0) < 0)
    return cella_error (err, errno, "make the pty the controlling terminal");
  if (dup2 (slave, 0) < 0 || dup2 (slave, 1) < 0 || dup2 (slave, 2) < 0)
    return cella_error (err, errno, "attach the pty");
  return 0;
}

/* Without -t: a session of its own, so that the caller's terminal, which stdout and stderr may be,
 * is not the container's controlling terminal: no TIOCSTI pushing input into the caller's shell
 * (runc and crun do the same). With -t setup_tty makes the session around the container's pty. */
static int
own_session (cella_error_t *err)
{
  if (setsid () < 0)
    return cella_error (err, errno, "start a session of the container's own");
  return 0;
}

static int
switch_user (const struct plan *p, bool pdeathsig, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  bool can_setgroups = !p->rootless || p->ngid_map > 1;
  /* setgroups is denied in a user namespace whose gid map was written without the helper
   * (ours with one id, or `unshare -r` around cella): only an error when groups were asked for */
  if (can_setgroups && setgroups (pr->ngroups, pr->groups) < 0 && !(errno == EPERM && pr->ngroups == 0))
    {
      if (errno == EPERM && !in_initial_userns ())
        return cella_error (err, errno,
                            "setgroups for user `%s`: cella runs in a user namespace that denies "
                            "supplementary groups (like `unshare -r`); drop additionalGids/--group-add",
                            pr->user ? pr->user : "0");
      return cella_error (err, errno, "setgroups for user `%s`", pr->user ? pr->user : "0");
    }
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "keep capabilities");
  if (setresgid (pr->gid, pr->gid, pr->gid) < 0)
    return cella_error (err, errno == EINVAL ? 0 : errno, "group %u of user `%s`: %s", (unsigned) pr->gid,
                        pr->user ? pr->user : "0",
                        errno == EINVAL ? "not mapped in the user namespace (give your user a range in /etc/subgid)"
                                        : "setresgid failed");
  if (setresuid (pr->uid, pr->uid, pr->uid) < 0)
    return cella_error (err, errno == EINVAL ? 0 : errno, "user `%s` (uid %u): %s", pr->user ? pr->user : "0",
                        (unsigned) pr->uid,
                        errno == EINVAL ? "not mapped in the user namespace (give your user a range in /etc/subuid)"
                                        : "setresuid failed");
  /* a credential change clears the parent-death signal */
  if (pdeathsig)
    prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  return 0;
}

int
ns_exec_error (cella_error_t *err, const char *argv0, int saved)
{
  if (saved == ENOENT || saved == ENOTDIR)
    return cella_error_status (err, EXIT_NOT_FOUND, 0, "exec `%s`: %s", argv0,
                               strchr (argv0, '/') ? "no such file or directory in the container"
                                                   : "executable file not found in $PATH");
  return cella_error_status (err, EXIT_CANNOT_EXEC, saved, "exec `%s`", argv0);
}

/* execvpe with the container's PATH (glibc's would use ours). Returns only on failure. */
static void
exec_workload (const struct plan *p, int syncfd, char *const *env, cella_error_t *err)
{
  char *const *argv = p->process.argv;
  const char *path = env_get (env, "PATH");
  int saved = ENOENT;

  signals_default (); /* a SIG_IGN of our caller's or the monitor's survives execve */
  if (selfexec_stub_armed ())
    {
      /* this process runs the host's cella binary: the workload's execve must not start from it */
      selfexec_stub_exec (syncfd, path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", argv,
                          env);
      cella_error (err, errno, "exec the sealed exec stub");
      return;
    }
  if (strchr (argv[0], '/'))
    {
      execve (argv[0], argv, env);
      saved = errno;
    }
  else
    {
      cleanup_free char *dirs = xstrdup (path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
      char *save = NULL;
      for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
        {
          cleanup_free char *full = xasprintf ("%s/%s", *d ? d : ".", argv[0]);
          execve (full, argv, env);
          if (errno != ENOENT && errno != ENOTDIR)
            saved = errno;
        }
    }
  ns_exec_error (err, argv[0], saved);
}

/* A filter with SCMP_ACT_NOTIFY rules: its listener goes to the agent at listenerPath through
 * cella (a host path out of our reach now); we wait for cella's answer, so that a failed
 * handover fails the container (runtime-spec). */
static int
load_profile (const struct plan_seccomp *prof, int syncfd, cella_error_t *err)
{
  int fd, answer = EIO;
  ssize_t n;
  if (seccomp_load_profile (prof, &fd, err) < 0)
    return -1;
  if (fd < 0)
    return 0;
  n = send_fd (syncfd, SYNC_SECCOMP, fd);
  close (fd);
  if (n < 0)
    return cella_error (err, errno, "seccomp listener: send it to cella");
  do
    n = recv (syncfd, &answer, sizeof answer, 0);
  while (n < 0 && errno == EINTR);
  if (n != sizeof answer)
    return cella_error (err, n < 0 ? errno : 0, "seccomp listener: no answer from cella");
  return answer ? cella_error (err, answer, "seccomp listener: hand it to the agent at `%s`", prof->listener_path) : 0;
}

/* OCI: five capability sets and/or a seccomp profile. Without no_new_privs the filter is
 * loaded, and the Landlock domain made, while CAP_SYS_ADMIN is still held (caps.h). */
static int
lock_down_oci (const struct plan *p, int syncfd, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  struct plan_capsets s = pr->capsets;
  bool filter = pr->seccomp_profile || pr->seccomp, keep_admin = (filter || p->landlock_now) && !pr->no_new_privs;
  if (!s.set)
    {
      s.bounding = pr->caps;
      s.effective = s.permitted = pr->uid == 0 ? pr->caps : 0;
    }
  if (caps_apply_sets (s.bounding, s.effective, s.permitted, s.inheritable, s.ambient, keep_admin, err) < 0)
    return -1;
  if (pr->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "set no_new_privs");
  /* before the filter, which may refuse the landlock calls (an OCI profile can) */
  if (landlock_restrict (p->landlock_now, p->debug, err) < 0)
    return -1;
  if (pr->seccomp_profile && load_profile (pr->seccomp_profile, syncfd, err) < 0)
    return -1;
  if (!pr->seccomp_profile && pr->seccomp && seccomp_load_default (s.bounding, err) < 0)
    return -1;
  return keep_admin ? caps_drop_admin_if_absent (s.permitted, err) : 0;
}

static int
lock_down (const struct plan *p, int syncfd, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  if (pr->capsets.set || pr->seccomp_profile)
    return lock_down_oci (p, syncfd, err);
  if (caps_apply_keep_admin (pr->caps, pr->uid == 0, err) < 0)
    return -1;
  if (pr->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "set no_new_privs");
  if (landlock_restrict (p->landlock_now, p->debug, err) < 0)
    return -1;
  if (pr->seccomp && seccomp_load_default (pr->caps, err) < 0)
    return -1;
  return caps_drop_admin_if_absent (pr->uid == 0 ? pr->caps : 0, err);
}

/* Every fd from 3 up closes at exec, but the launch's preserved ones (3 .. 3+n-1). */
static void
keep_fds (const struct ns_launch *l)
{
  unsigned n = l ? l->preserve_fds : 0;
  close_range (3 + n, ~0U, CLOSE_RANGE_CLOEXEC);
  for (unsigned fd = 3; fd < 3 + n; fd++)
    {
      int fl = fcntl ((int) fd, F_GETFD);
      if (fl >= 0)
        fcntl ((int) fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
}

/* 0 when exec could run path, else why not (ENOENT, EISDIR, EACCES) */
static int
exec_candidate (const char *path)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return errno == ENOTDIR ? ENOENT : errno;
  if (S_ISDIR (st.st_mode))
    return EISDIR;
  if (!S_ISREG (st.st_mode) || access (path, X_OK) < 0)
    return EACCES;
  return 0;
}

/* The program exec will run: found and runnable now, so that `create` reports a missing or
 * non-executable command (runc does) instead of the container failing at `start`. */
static int
exec_precheck (const struct plan *p, cella_error_t *err)
{
  const char *a0 = p->process.argv[0];
  const char *path = env_get (p->process.env, "PATH");
  cleanup_free char *dirs = NULL;
  char *save = NULL;
  int why = ENOENT;
  if (strchr (a0, '/'))
    why = exec_candidate (a0);
  else
    {
      dirs = xstrdup (path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
      for (char *d = strtok_r (dirs, ":", &save); d && why; d = strtok_r (NULL, ":", &save))
        {
          cleanup_free char *full = xasprintf ("%s/%s", *d ? d : ".", a0);
          int w = exec_candidate (full);
          /* as execvp: the first runnable one wins; a non-runnable match is remembered */
          if (w == 0 || why == ENOENT)
            why = w == EISDIR ? EACCES : w;
        }
    }
  if (why == 0)
    return 0;
  if (why == ENOENT)
    return cella_error_status (err, EXIT_NOT_FOUND, 0, "exec `%s`: %s", a0,
                               strchr (a0, '/') ? "no such file or directory in the container"
                                                : "executable file not found in $PATH");
  return cella_error_status (err, EXIT_CANNOT_EXEC, why, "exec `%s`", a0);
}

/* Close now what exec would close (fds from 3 + preserved, but the sync socket and the fifo):
 * the container waits long before it execs, and must not hold the creating command's fds
 * (its lock, its caller's pipes) while it does. */
static void
close_inherited (int syncfd, int fifo, unsigned preserve)
{
  int fds[256];
  size_t n = 0;
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) && n < sizeof fds / sizeof fds[0])
    {
      int fd = atoi (e->d_name);
      if (e->d_name[0] != '.' && fd >= 3 + (int) preserve && fd != syncfd && fd != fifo && fd != dirfd (d))
        fds[n++] = fd;
    }
  closedir (d);
  for (size_t i = 0; i < n; i++)
    close (fds[i]);
}

/* OCI create: tell the parent the container is created, then block until `start` opens the
 * exec fifo for read (the O_PATH fd reopened through /proc: the fifo is outside our root now).
 * Runs with the workload's credentials: `create` made the fifo writable by anyone (it is
 * reachable only through this fd) and /proc lets a process reopen its own fds. Returns the
 * fifo's write end, left open: it closes at execve (O_CLOEXEC), which is how `start` knows the
 * program runs (poststart hooks come after that). */
static int
wait_start (const struct plan *p, int syncfd, int fifo, unsigned preserve)
{
  cella_error_t err = NULL;
  struct sync_error e = { .type = SYNC_CREATED };
  char path[64];
  int fd;
  if (exec_precheck (p, &err) < 0)
    child_fail (syncfd, &err);
  snprintf (path, sizeof path, "/proc/self/fd/%d", fifo);
  if (access (path, F_OK) < 0)
    {
      cella_error (&err, errno, "reopen the exec fifo through `%s` (the container needs /proc)", path);
      child_fail (syncfd, &err);
    }
  close_inherited (syncfd, fifo, preserve);
  if (send (syncfd, &e, sizeof e, MSG_NOSIGNAL) < 0)
    _exit (EXIT_CELLA_ERROR);
  do
    fd = open (path, O_WRONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0 || write (fd, "0", 1) != 1)
    {
      cella_error (&err, errno, "open the exec fifo");
      child_fail (syncfd, &err);
    }
  close (fifo);
  return fd;
}

__attribute__ ((noreturn)) void
ns_child_main (const struct plan *p, int syncfd, const struct ns_launch *l)
{
  cella_error_t err = NULL;
  struct op_rt *rts = xzalloc ((p->nops + 1) * sizeof *rts);
  int host_tty = -1, null = -1, started = -1;
  pid_t host_pid = 0;
  sigset_t none;
  char **env;
  struct root_go late = { .wait = wait_go_late, .ud = &syncfd };

  if (!(l && l->detached))
    prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* Until the exec stub, this process runs the host's cella binary. A process of another
   * container that shares the host's PID namespace (OCI) with capabilities no fewer than ours
   * could open our /proc/PID/exe; non-dumpable, it needs CAP_SYS_PTRACE over the host's user
   * namespace, with which it already reaches the host's root through /proc/1/root. (In a user
   * namespace it needs CAP_SYS_PTRACE over ours anyway.) The stub's exec makes it dumpable again. */
  if (selfexec_stub_armed () && !(p->ns & PLAN_NS_USER) && !p->ns_path[6])
    prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (ns_launch_waits (p, l) && !ns_launch_go_late (p, l) && wait_go (syncfd, &err) < 0)
    child_fail (syncfd, &err);
  if (become_userns_root (p, &err) < 0 || ns_join_paths (p, &err) < 0 || ns_oci_before_root (p, &err) < 0)
    child_fail (syncfd, &err);
  if (p->nhooks[HOOK_START_CONTAINER])
    host_pid = ns_host_pid ();

  if (p->process.tty)
    host_tty = isatty (1) ? 1 : isatty (0) ? 0 : -1;
  if (!p->process.stdin_open && !p->process.tty)
    null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  if (root_setup (p, rts, ns_launch_waits (p, l) && ns_launch_go_late (p, l) ? &late : NULL, &err) < 0)
    child_fail (syncfd, &err);
  free (rts);
  if (!(p->ns & PLAN_NS_MNT) && !p->ns_path[0])
    report_root_mount (syncfd);
  if ((p->ns & PLAN_NS_UTS) && p->hostname && sethostname (p->hostname, strlen (p->hostname)) < 0)
    {
      cella_error (&err, errno, "set hostname `%s`", p->hostname);
      child_fail (syncfd, &err);
    }
  if ((p->ns & PLAN_NS_NET) && loopback_up (&err) < 0)
    child_fail (syncfd, &err);
  if (null >= 0 && (dup2 (null, 0) < 0 || close (null) < 0))
    {
      cella_error (&err, errno, "stdin");
      child_fail (syncfd, &err);
    }
  if (p->process.tty ? setup_tty (syncfd, l, host_tty, &err) < 0 : own_session (&err) < 0)
    child_fail (syncfd, &err);
  if (ns_oci_session (p, &err) < 0 || ns_oci_make_cwd (p, &err) < 0)
    child_fail (syncfd, &err);
  if (chdir (p->process.cwd) < 0)
    {
      cella_error (&err, errno, "working directory `%s`", p->process.cwd);
      child_fail (syncfd, &err);
    }
  if (ns_oci_process (p, &err) < 0)
    child_fail (syncfd, &err);
  env = ns_process_env (p);
  if (switch_user (p, !(l && l->detached), &err) < 0 || lock_down (p, syncfd, &err) < 0)
    child_fail (syncfd, &err);
  /* OCI create: every step above (the user, capabilities and seccomp included) is done before
   * `create` returns, so that its errors fail `create`; the exec fifo is the last wait before
   * execve (runc's order), so that a signal sent right after `start` finds the program. */
  if (l && l->exec_fifo >= 0)
    started = wait_start (p, syncfd, l->exec_fifo, l->preserve_fds);
  /* OCI startContainer: after `start`, in the container, before the user's program, with its
   * credentials (as runc) */
  if (ns_oci_hooks (p, HOOK_START_CONTAINER, "created", host_pid, &err) < 0)
    child_fail (syncfd, &err);

  /* No descriptor of the host survives exec (but --preserve-fds); the sync socket closes
   * itself on success. */
  keep_fds (l);
  sigemptyset (&none);

  if (p->process.init)
    {
      sigset_t all;
      pid_t pid;
      signals_default (); /* the init too: a signal it ignores is never forwarded */
      sigfillset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      pid = fork ();
      if (pid < 0)
        {
          cella_error (&err, errno, "fork the workload under --init");
          child_fail (syncfd, &err);
        }
      if (pid > 0)
        {
          close (syncfd);
          if (started >= 0)
            close (started); /* the workload's copy closes at its execve */
          if (p->process.tty)
            tcsetpgrp (0, pid);
          _exit (ns_init_run (pid));
        }
      setpgid (0, 0);
    }
  sigprocmask (SIG_SETMASK, &none, NULL);
  exec_workload (p, syncfd, env, &err);
  child_fail (syncfd, &err);
}

/* An exec'd process resolves -u against the container's own passwd now that "/" is its root. */
static int
exec_resolve_user (struct plan *p, cella_error_t *err)
{
  struct plan_process *pr = &p->process;
  cleanup_close int rootfd = -1;
  cleanup_free char *home = NULL;
  if (pr->user == NULL)
    return 0;
  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  free (pr->groups);
  pr->groups = NULL;
  pr->ngroups = 0;
  if (rootfd < 0 || user_resolve (rootfd, pr->user, &pr->uid, &pr->gid, &pr->groups, &pr->ngroups, &home, err) < 0)
    return rootfd < 0 ? cella_error (err, errno, "open the container's root") : -1;
  return 0;
}

__attribute__ ((noreturn)) void
ns_exec_child_main (struct plan *p, int syncfd, const struct ns_launch *l)
{
  cella_error_t err = NULL;
  int host_tty = p->process.tty ? (isatty (1) ? 1 : isatty (0) ? 0 : -1) : -1;
  sigset_t none;
  char **env;

  if (!p->process.stdin_open && !p->process.tty)
    {
      int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null >= 0)
        {
          dup2 (null, 0);
          close (null);
        }
    }
  if (exec_resolve_user (p, &err) < 0)
    child_fail (syncfd, &err);
  if (p->process.tty ? setup_tty (syncfd, l, host_tty, &err) < 0 : own_session (&err) < 0)
    child_fail (syncfd, &err);
  if (ns_oci_session (p, &err) < 0)
    child_fail (syncfd, &err);
  if (chdir (p->process.cwd) < 0)
    {
      cella_error (&err, errno, "working directory `%s`", p->process.cwd);
      child_fail (syncfd, &err);
    }
  if (ns_oci_exec_process (p, &err) < 0)
    child_fail (syncfd, &err);
  env = ns_process_env (p);
  if (switch_user (p, !(l && l->detached), &err) < 0 || lock_down (p, syncfd, &err) < 0)
    child_fail (syncfd, &err);
  keep_fds (l);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  exec_workload (p, syncfd, env, &err);
  child_fail (syncfd, &err);
}
