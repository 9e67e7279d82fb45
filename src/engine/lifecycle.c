/* Container transitions: start (hand the container to a new monitor), stop, kill, rm, wait,
 * rename. Each takes the container's lock, reads the reconciled state, checks the transition
 * is allowed (a one-line error naming the container otherwise) and writes the new state. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "../backend/backend.h"
#include "../net/net.h"
#include "../cgroup/cgroup.h"
#include "container.h"
#include "volume.h"
#include "../util/paths.h"

static const char *
label (const struct ctr_state *st)
{
  return st->name ? st->name : st->id;
}

/* A pidfd for pid, only if it is still the process that started at `start`. */
static int
pidfd_for (pid_t pid, unsigned long long start)
{
  int fd;
  if (pid <= 0)
    return -1;
  fd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (fd >= 0 && !proc_alive (pid, start))
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* Wait up to timeout_ms (-1: for ever) for the process behind pidfd to end. */
static bool
wait_pidfd (int pidfd, int timeout_ms)
{
  struct pollfd pf = { .fd = pidfd, .events = POLLIN };
  int r;
  if (pidfd < 0)
    return true;
  do
    r = poll (&pf, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

static void
move_fd (int *fd, int to)
{
  if (*fd == to)
    {
      fcntl (to, F_SETFD, 0);
      return;
    }
  dup2 (*fd, to);
  *fd = to;
}

/* The monitor: cella re-executed, in its own session, not our child (double fork), with the
 * ready socket as fd 3, the attach socket as fd 4 and the lock as fd 5. */
__attribute__ ((noreturn)) static void
exec_monitor (const char *id, int ready, int attach, int lock)
{
  extern char **environ;
  char *argv[] = { (char *) "cella", (char *) "__monitor", (char *) id, NULL };
  int null = open ("/dev/null", O_RDWR);
  int fds[3];
  setsid ();
  if (fork () != 0)
    _exit (0);
  /* out of the way of 3, 4, 5 first */
  fds[0] = fcntl (ready, F_DUPFD, 10);
  fds[1] = attach >= 0 ? fcntl (attach, F_DUPFD, 10) : open ("/dev/null", O_RDWR);
  fds[2] = fcntl (lock, F_DUPFD, 10);
  for (int i = 0; i < 3; i++)
    move_fd (&fds[i], 3 + i);
  dup2 (null, 0);
  dup2 (null, 1);
  dup2 (null, 2);
  close_range (6, ~0U, 0);
  execve ("/proc/self/exe", argv, environ);
  _exit (125);
}

static int
start_locked (const char *id, struct ctr_state *st, int lock, const struct ctr_start_opts *o, cella_error_t *err)
{
  struct monitor_ready r = { 0 };
  int sv[2];
  pid_t pid;
  ssize_t n;
  if (st->status == CTR_RUNNING || st->status == CTR_RESTARTING)
    return cella_error (err, 0, "container `%s` is already running", label (st));
  if (st->status == CTR_REMOVING)
    return cella_error (err, 0, "container `%s` is being removed", label (st));
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return cella_error (err, errno, "fork the monitor");
    }
  if (pid == 0)
    exec_monitor (id, sv[1], o ? o->attach_fd : -1, lock);
  close (sv[1]);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  do
    n = recv (sv[0], &r, sizeof r, 0);
  while (n < 0 && errno == EINTR);
  close (sv[0]);
  if (n != (ssize_t) sizeof r)
    return cella_error (err, 0, "container `%s`: its monitor exited before the container started", label (st));
  if (r.status != 0)
    {
      r.msg[sizeof r.msg - 1] = '\0';
      return cella_error_status (err, r.status, r.errno_, "%s", r.msg);
    }
  return 0;
}

int
ctr_start (const char *id, const struct ctr_start_opts *o, cella_error_t *err)
{
  struct ctr_state st;
  int lock, r;
  cgroup_sweep (false, NULL, NULL); /* what an earlier removal recorded as still busy (cheap when none) */
  lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  r = start_locked (id, &st, lock, o, err);
  ctr_state_clear (&st);
  close (lock);
  return r;
}

/* Mark a stop as asked for (no restart), under the lock. */
static int
request_stop (const char *id, struct ctr_state *st, cella_error_t *err)
{
  int lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  if (st->status == CTR_RUNNING || st->status == CTR_RESTARTING)
    {
      st->stop_requested = true;
      if (ctr_state_write (st, err) < 0)
        {
          close (lock);
          return -1;
        }
    }
  close (lock);
  return 0;
}

/* Wait for the monitor to record the exit (it exits then); if it is gone, the reconciling
 * read records it. */
static void
await_monitor (const char *id, const struct ctr_state *st)
{
  int mfd = pidfd_for (st->monitor_pid, st->monitor_start);
  if (mfd >= 0)
    {
      wait_pidfd (mfd, 30000);
      close (mfd);
    }
  {
    struct ctr_state now;
    int lock = ctr_lock (id, NULL);
    if (ctr_state_read (id, &now, lock, NULL) == 0)
      ctr_state_clear (&now);
    if (lock >= 0)
      close (lock);
  }
}

/* Signal the workload; when it leads a process group of its own (the proot backend runs proot so,
 * and proot itself ignores SIGTERM), the whole group. The pidfd pins the pid against reuse. */
static int
signal_workload (int pfd, pid_t pid, int sig)
{
  int r = (int) syscall (SYS_pidfd_send_signal, pfd, sig, NULL, 0);
  if (r == 0 && getpgid (pid) == pid)
    kill (-pid, sig);
  return r;
}

int
ctr_stop (const char *id, int timeout_s, cella_error_t *err)
{
  struct ctr_state st;
  int pfd;
  if (request_stop (id, &st, err) < 0)
    return -1;
  if (st.status != CTR_RUNNING && st.status != CTR_RESTARTING)
    {
      ctr_state_clear (&st);
      return 0; /* docker: stopping a stopped container is not an error */
    }
  ctr_thaw_for_signal (&st); /* a frozen workload would not see the signal */
  pfd = pidfd_for (st.pid, st.pid_start);
  if (pfd >= 0)
    {
      signal_workload (pfd, st.pid, SIGTERM);
      if (!wait_pidfd (pfd, timeout_s * 1000))
        {
          signal_workload (pfd, st.pid, SIGKILL);
          wait_pidfd (pfd, 10000);
        }
      close (pfd);
    }
  await_monitor (id, &st);
  event_ctr ("stop", &st);
  ctr_state_clear (&st);
  return 0;
}

int
ctr_kill (const char *id, int sig, cella_error_t *err)
{
  struct ctr_state st;
  int pfd, lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  if (st.status != CTR_RUNNING)
    {
      cella_error (err, 0, "container `%s` is not running (status: %s)", label (&st), ctr_status_name (st.status));
      goto out;
    }
  if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
    ctr_thaw_for_signal (&st);
  pfd = pidfd_for (st.pid, st.pid_start);
  if (pfd < 0 || signal_workload (pfd, st.pid, sig) < 0)
    cella_error (err, errno, "signal %d to container `%s`", sig, label (&st));
  else if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
    {
      /* like docker: a container killed by hand is not restarted by its policy */
      st.stop_requested = true;
      ctr_state_write (&st, NULL);
    }
  if (*err == NULL)
    {
      char signo[16];
      snprintf (signo, sizeof signo, "%d", sig);
      event_emit ("container", "kill", st.id, st.name, (const char *[]){ "image", st.image, "signal", signo, NULL });
    }
  if (pfd >= 0)
    close (pfd);
out:
  close (lock);
  ctr_state_clear (&st);
  return *err ? -1 : 0;
}

int
ctr_rm (const char *id, bool force, bool volumes, cella_error_t *err)
{
  struct ctr_state st;
  int lock, r;
  if (request_stop (id, &st, err) < 0)
    return -1;
  if (st.status == CTR_RUNNING || st.status == CTR_RESTARTING)
    {
      int pfd;
      if (!force)
        {
          cella_error (err, 0, "container `%s` is running: stop it first, or use `cella rm -f`", label (&st));
          /* undo the stop request: nothing changes on a refused rm */
          lock = ctr_lock (id, NULL);
          ctr_state_clear (&st);
          if (lock >= 0 && ctr_state_read (id, &st, lock, NULL) == 0)
            {
              st.stop_requested = false;
              ctr_state_write (&st, NULL);
            }
          if (lock >= 0)
            close (lock);
          ctr_state_clear (&st);
          return -1;
        }
      ctr_thaw_for_signal (&st);
      pfd = pidfd_for (st.pid, st.pid_start);
      if (pfd >= 0)
        {
          signal_workload (pfd, st.pid, SIGKILL);
          wait_pidfd (pfd, 10000);
          close (pfd);
        }
      await_monitor (id, &st);
    }
  ctr_state_clear (&st);
  lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, NULL) == 0)
    {
      st.status = CTR_REMOVING;
      ctr_state_write (&st, NULL);
    }
  net_cleanup (id); /* what a crashed monitor left: rules, interfaces, a network helper */
  {
    /* and its cgroup (normally gone with the workload, via the monitor; when the monitor found it still busy
     * it recorded it: try again, and say so when it still is) */
    struct plan *p = NULL;
    struct cgroup_dirs d;
    cella_error_t ce = NULL;
    if (ctr_plan_load (id, &p, NULL) == 0 && backend_can (p, BACKEND_CAP_CGROUP) && cgroup_path_of (p, &d, NULL) == 0)
      {
        if (cgroup_remove_patient (&d, 3000, &ce) < 0)
          {
            fprintf (stderr,
                     "cella: rm %s: %s; it stays recorded, and the next start or `cella system prune` removes it "
                     "once empty\n",
                     st.name ? st.name : id, ce ? ce->msg : "its cgroup is still busy");
            cella_error_free (&ce);
          }
        cgroup_dirs_clear (&d);
      }
    plan_free (p);
  }
  r = ctr_remove_files (id, st.name, err);
  if (r == 0)
    event_ctr ("destroy", &st);
  close (lock);
  if (r == 0 && volumes)
    volume_remove_anonymous (st.volumes, st.nvolumes);
  ctr_state_clear (&st);
  return r;
}

int
ctr_wait (const char *id, cella_error_t *err)
{
  for (;;)
    {
      struct ctr_state st;
      struct timespec ts = { 0, 50 * 1000000L };
      int mfd, code;
      if (ctr_state_read (id, &st, -1, err) < 0)
        {
          /* removed meanwhile (--rm): docker's wait then reports what it saw last */
          return -1;
        }
      if (st.status == CTR_EXITED || (st.status == CTR_CREATED && st.exit_code >= 0))
        {
          code = st.exit_code;
          ctr_state_clear (&st);
          return code;
        }
      mfd = st.status == CTR_RUNNING || st.status == CTR_RESTARTING ? pidfd_for (st.monitor_pid, st.monitor_start) : -1;
      ctr_state_clear (&st);
      if (mfd >= 0)
        {
          wait_pidfd (mfd, 200);
          close (mfd);
        }
      else
        nanosleep (&ts, NULL);
    }
}

int
ctr_rename (const char *id, const char *new_name, cella_error_t *err)
{
  cleanup_free char *link = xasprintf ("%s/names/%s", paths_data_root (), new_name);
  struct ctr_state st;
  int lock;
  if (!ctr_name_valid (new_name))
    return cella_error (err, 0,
                        "invalid container name `%s`: use letters, digits and _ . - (starting with a letter or digit)",
                        new_name);
  lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  if (symlink (id, link) < 0)
    {
      if (errno == EEXIST)
        cella_error (err, 0, "the name `%s` is already in use (remove that container or choose another name)",
                     new_name);
      else
        cella_error (err, errno, "claim the name `%s`", new_name);
    }
  else
    {
      cleanup_free char *old = st.name ? xasprintf ("%s/names/%s", paths_data_root (), st.name) : NULL;
      free (st.name);
      st.name = xstrdup (new_name);
      if (ctr_state_write (&st, err) < 0)
        unlink (link);
      else if (old)
        unlink (old);
    }
  ctr_state_clear (&st);
  close (lock);
  return *err ? -1 : 0;
}

static bool
is_a_container (const char *id, void *ud)
{
  cleanup_free char *dir = ctr_dir (id);
  (void) ud;
  return access (dir, F_OK) == 0;
}

size_t
ctr_sweep_cgroups (void)
{
  return cgroup_sweep (true, is_a_container, NULL);
}
