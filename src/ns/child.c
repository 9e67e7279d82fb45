/* The container's first process: waits for the parent, builds the root, becomes the workload.
 * Runs after clone() with no one to return to: errors go back to the parent over the sync
 * socket (struct sync_error) and the process exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../plan/build.h"
#include "caps.h"
#include "internal.h"
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
  if (send (syncfd, &e, sizeof e, MSG_NOSIGNAL) < 0)
    fprintf (stderr, "cella: %s\n", e.msg);
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
  if (n != sizeof msg || msg != SYNC_GO)
    _exit (EXIT_CELLA_ERROR); /* the parent is gone: nobody to report to */
  (void) err;
  return 0;
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

static int
send_fd (int sock, int type, int fd)
{
  char cbuf[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { .iov_base = &type, .iov_len = sizeof type };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &fd, sizeof fd);
  return sendmsg (sock, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* A pty from the container's own devpts instance; the master goes to the parent. */
static int
setup_tty (int syncfd, int host_tty, cella_error_t *err)
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
  if (send_fd (syncfd, SYNC_PTY, master) < 0)
    return cella_error (err, errno, "send the pty to cella");
  if (setsid () < 0 || ioctl (slave, TIOCSCTTY, 0) < 0)
    return cella_error (err, errno, "make the pty the controlling terminal");
  if (dup2 (slave, 0) < 0 || dup2 (slave, 1) < 0 || dup2 (slave, 2) < 0)
    return cella_error (err, errno, "attach the pty");
  return 0;
}

static int
switch_user (const struct plan *p, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  bool can_setgroups = !p->rootless || p->ngid_map > 1;
  /* setgroups is denied in a user namespace whose gid map was written without the helper
   * (ours with one id, or `unshare -r` around cella): only an error when groups were asked for */
  if (can_setgroups && setgroups (pr->ngroups, pr->groups) < 0 && !(errno == EPERM && pr->ngroups == 0))
    return cella_error (err, errno, "setgroups for user `%s`", pr->user ? pr->user : "0");
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "keep capabilities");
  if (setresgid (pr->gid, pr->gid, pr->gid) < 0)
    return cella_error (err, errno == EINVAL ? 0 : errno,
                        "group %u of user `%s`: %s", (unsigned) pr->gid, pr->user ? pr->user : "0",
                        errno == EINVAL ? "not mapped in the user namespace (give your user a range in /etc/subgid)"
                                        : "setresgid failed");
  if (setresuid (pr->uid, pr->uid, pr->uid) < 0)
    return cella_error (err, errno == EINVAL ? 0 : errno,
                        "user `%s` (uid %u): %s", pr->user ? pr->user : "0", (unsigned) pr->uid,
                        errno == EINVAL ? "not mapped in the user namespace (give your user a range in /etc/subuid)"
                                        : "setresuid failed");
  /* a credential change clears the parent-death signal */
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  return 0;
}

/* execvpe with the container's PATH (glibc's would use ours). Returns only on failure. */
static void
exec_workload (const struct plan *p, cella_error_t *err)
{
  char *const *argv = p->process.argv;
  char *const *env = p->process.env;
  const char *path = env_get (env, "PATH");
  int saved = ENOENT;

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
  if (saved == ENOENT || saved == ENOTDIR)
    cella_error_status (err, EXIT_NOT_FOUND, 0, "exec `%s`: %s", argv[0],
                        strchr (argv[0], '/') ? "no such file or directory in the container"
                                              : "executable file not found in $PATH");
  else
    cella_error_status (err, EXIT_CANNOT_EXEC, saved, "exec `%s`", argv[0]);
}

static int
lock_down (const struct plan *p, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  if (caps_apply_keep_admin (pr->caps, pr->uid == 0, err) < 0)
    return -1;
  if (pr->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "set no_new_privs");
  if (pr->seccomp && seccomp_load_default (pr->caps, err) < 0)
    return -1;
  return caps_drop_admin_if_absent (pr->uid == 0 ? pr->caps : 0, err);
}

__attribute__ ((noreturn)) void
ns_child_main (const struct plan *p, int syncfd)
{
  cella_error_t err = NULL;
  struct op_rt *rts = xzalloc ((p->nops + 1) * sizeof *rts);
  int host_tty = -1, null = -1;
  sigset_t none;

  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (ns_child_waits (p))
    wait_go (syncfd, &err);

  if (p->process.tty)
    host_tty = isatty (1) ? 1 : isatty (0) ? 0 : -1;
  if (!p->process.stdin_open && !p->process.tty)
    null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  if (root_setup (p, rts, &err) < 0)
    child_fail (syncfd, &err);
  free (rts);
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
  if (p->process.tty && setup_tty (syncfd, host_tty, &err) < 0)
    child_fail (syncfd, &err);
  if (chdir (p->process.cwd) < 0)
    {
      cella_error (&err, errno, "working directory `%s`", p->process.cwd);
      child_fail (syncfd, &err);
    }
  if (switch_user (p, &err) < 0 || lock_down (p, &err) < 0)
    child_fail (syncfd, &err);

  /* No descriptor of the host survives exec; the sync socket closes itself on success. */
  close_range (3, ~0U, CLOSE_RANGE_CLOEXEC);
  sigemptyset (&none);

  if (p->process.init)
    {
      sigset_t all;
      pid_t pid;
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
          if (p->process.tty)
            tcsetpgrp (0, pid);
          _exit (ns_init_run (pid));
        }
      setpgid (0, 0);
    }
  sigprocmask (SIG_SETMASK, &none, NULL);
  exec_workload (p, &err);
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
ns_exec_child_main (struct plan *p, int syncfd)
{
  cella_error_t err = NULL;
  int host_tty = p->process.tty ? (isatty (1) ? 1 : isatty (0) ? 0 : -1) : -1;
  sigset_t none;

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
  if (p->process.tty && setup_tty (syncfd, host_tty, &err) < 0)
    child_fail (syncfd, &err);
  if (chdir (p->process.cwd) < 0)
    {
      cella_error (&err, errno, "working directory `%s`", p->process.cwd);
      child_fail (syncfd, &err);
    }
  if (switch_user (p, &err) < 0 || lock_down (p, &err) < 0)
    child_fail (syncfd, &err);
  close_range (3, ~0U, CLOSE_RANGE_CLOEXEC);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  exec_workload (p, &err);
  child_fail (syncfd, &err);
}
