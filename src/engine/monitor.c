/* The monitor: one small process per running container (`cella __monitor ID`, started by
 * ctr_start in its own session). It starts the workload, keeps its output (the log, attached
 * clients), waits for its exit, records it, applies the restart policy and removes --rm
 * containers. The workload dies with it (PDEATHSIG), so the state can never claim a container
 * runs when nobody watches it. While the workload runs, this process is the small monitor
 * (monitor/main.c, build/cella-monitor: mon_exec_small) and comes back here at its end
 * (monitor_main's resume); its peak RSS is measured by bench/engine.sh and bench/scale.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "../net/net.h"
#include "../backend/backend.h"
#include "attach_hub.h"
#include "container.h"
#include "health.h"
#include "volume.h"
#include "logfile.h"

struct mon {
  const char *id;
  struct plan *plan;
  struct ns_proc proc;
  int out, errp; /* read ends of the workload's stdout/stderr (or out = pty master) */
  int listen;    /* attach socket */
  int sigfd;
  struct att_hub hub; /* the attached clients, the log, the terminal and the stdin pipe's write end */
  bool oom_killed;    /* the last run's cgroup counted an OOM kill */
  /* health checks (health.h): the check, the one at work (probe.pid > 0), when the next is due */
  struct ctr_healthcheck hc;
  struct health_probe probe;
  long long run_started_ns, next_check_ns;
  bool health_restart; /* --health-on-failure restart struck: start again whatever the policy */
  long long log_max;   /* the state's log_max_size, for the small monitor */
};

static int
mon_listen (const char *id)
{
  cleanup_free char *dir = ctr_run_dir (id);
  cleanup_free char *path = xasprintf ("%s/attach.sock", dir);
  cleanup_close int dfd = -1;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd;
  if (mkdir_p (dir, 0700, NULL) < 0 || (dfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
    return -1;
  /* through the directory's fd: the full path may pass sun_path's 108 bytes */
  snprintf (sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/attach.sock", dfd);
  unlink (path);
  fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod (path, 0600) < 0 || listen (fd, 8) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* How long poll may sleep before a health check is due or overdue (-1: none). */
static int
mon_health_wait_ms (const struct mon *m)
{
  long long due, left;
  if (m->hc.test == NULL)
    return -1;
  due = m->probe.pid > 0 ? m->probe.deadline_ns : m->next_check_ns;
  left = due - now_ns ();
  return left <= 0 ? 0 : (int) (left / 1000000 + 1);
}

/* A check ended (or ran out of time): record it, act on a turn to unhealthy. */
static void
mon_health_done (struct mon *m, bool timed_out)
{
  struct ctr_health_result r;
  cella_error_t err = NULL;
  bool turned = false;
  health_probe_finish (&m->probe, timed_out, m->hc.timeout_ns, &r);
  if (health_record (m->id, &r, m->run_started_ns, &turned, &err) < 0)
    cella_error_free (&err);
  ctr_health_result_clear (&r);
  m->next_check_ns = now_ns () + m->hc.interval_ns;
  if (turned && m->hc.on_failure != HEALTH_ACT_NONE)
    {
      m->health_restart = m->hc.on_failure == HEALTH_ACT_RESTART;
      backend_signal (&m->proc, SIGKILL);
    }
}

/* Is the workload on its way out? When PID 1 of a PID namespace exits, the kernel kills the rest
 * (a check at work too) and PID 1's own end shows only once they are reaped: the check's end
 * comes first, and is not a verdict on the container. PF_EXITING (0x4) in /proc/PID/stat's flags
 * says so early; a zombie or a readable pidfd says so late. */
static bool
mon_workload_ending (const struct mon *m)
{
  char path[64], buf[512], state = 0, *p;
  unsigned long flags = 0;
  struct pollfd pf = { .fd = m->proc.pidfd, .events = POLLIN };
  ssize_t n;
  int fd;
  if (poll (&pf, 1, 0) > 0)
    return true;
  snprintf (path, sizeof path, "/proc/%d/stat", (int) m->proc.pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return true;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return true;
  buf[n] = '\0';
  p = strrchr (buf, ')');
  /* ") S ppid pgrp session tty_nr tpgid flags" */
  if (p == NULL || sscanf (p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
    return false;
  return state == 'Z' || state == 'X' || (flags & 0x4) != 0;
}

/* After each poll: the probe's output and end, its deadline, the next check. */
static void
mon_health_step (struct mon *m, const struct pollfd *out, const struct pollfd *end)
{
  if (m->hc.test == NULL)
    return;
  if (m->probe.pid > 0)
    {
      if (out->revents)
        health_probe_read (&m->probe);
      if ((end->revents & POLLIN) && mon_workload_ending (m))
        {
          health_probe_cancel (&m->probe);
          m->next_check_ns = now_ns () + m->hc.interval_ns;
        }
      else if (end->revents & POLLIN)
        mon_health_done (m, false);
      else if (now_ns () >= m->probe.deadline_ns)
        mon_health_done (m, true);
    }
  else if (now_ns () >= m->next_check_ns && !ctr_is_paused (m->id)) /* docker: no checks while paused */
    {
      cella_error_t err = NULL;
      if (health_probe_start (&m->probe, m->plan, m->id, m->proc.pid, &m->hc, &err) < 0)
        {
          /* recorded as a failed check, like a command that cannot run */
          struct ctr_health_result r
              = { .start_ns = now_ns (), .end_ns = now_ns (), .exit_code = -1, .output = err->msg };
          bool turned;
          health_record (m->id, &r, m->run_started_ns, &turned, NULL);
          cella_error_free (&err);
          m->probe.pid = -1;
          m->next_check_ns = now_ns () + m->hc.interval_ns;
        }
    }
}

/* Wait for the workload, moving its output and running its health checks; returns its
 * docker-style exit status. */
static int
mon_loop (struct mon *m)
{
  bool out_open = m->out >= 0, err_open = m->errp >= 0;
  siginfo_t si;
  m->next_check_ns = now_ns () + m->hc.interval_ns;
  for (;;)
    {
      struct pollfd fds[6 + ATT_MAX_CLIENTS] = {
        { .fd = m->proc.pidfd, .events = POLLIN },
        { .fd = out_open ? m->out : -1, .events = POLLIN },
        { .fd = err_open ? m->errp : -1, .events = POLLIN },
        { .fd = m->listen, .events = POLLIN },
        { .fd = m->probe.pid > 0 && m->probe.out_open ? m->probe.out : -1, .events = POLLIN },
        { .fd = m->probe.pid > 0 ? m->probe.pidfd : -1, .events = POLLIN },
      };
      size_t nc = m->hub.nclients;
      for (size_t i = 0; i < nc; i++)
        fds[6 + i] = (struct pollfd){ .fd = m->hub.clients[i], .events = POLLIN };
      if (poll (fds, 6 + nc, mon_health_wait_ms (m)) < 0 && errno != EINTR)
        break;
      mon_health_step (m, &fds[4], &fds[5]);
      if (out_open && fds[1].revents)
        out_open = att_hub_pump (&m->hub, m->out, LOG_STDOUT);
      if (err_open && fds[2].revents)
        err_open = att_hub_pump (&m->hub, m->errp, LOG_STDERR);
      if (fds[3].revents & POLLIN)
        /* cppcheck-suppress nullPointer ; gnu.cfg wants accept4's addrlen, which may be NULL (accept4(2)) */
        att_hub_add (&m->hub, accept4 (m->listen, NULL, NULL, SOCK_CLOEXEC));
      for (size_t i = nc; i-- > 0;)
        if (fds[6 + i].revents)
          {
            int sig = att_hub_client_packet (&m->hub, i);
            if (sig > 0)
              backend_signal (&m->proc, sig);
          }
      if (fds[0].revents & POLLIN)
        break;
    }
  health_probe_cancel (&m->probe); /* a check of a container that stopped has no verdict */
  /* what the pipes (or the terminal) still hold */
  while (out_open || err_open)
    {
      struct pollfd fds[2]
          = { { .fd = out_open ? m->out : -1, .events = POLLIN }, { .fd = err_open ? m->errp : -1, .events = POLLIN } };
      if (poll (fds, 2, 100) <= 0)
        break;
      if (out_open && fds[0].revents)
        out_open = att_hub_pump (&m->hub, m->out, LOG_STDOUT);
      if (err_open && fds[1].revents)
        err_open = att_hub_pump (&m->hub, m->errp, LOG_STDERR);
    }
  log_writer_flush (m->hub.log);
  memset (&si, 0, sizeof si);
  while (waitid (P_PIDFD, m->proc.pidfd, &si, WEXITED) < 0)
    if (errno != EINTR)
      return 255;
  return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Give the workload pipes (or, with -t, let ns_start make its terminal) as fds 0-2. */
static int
mon_spawn (struct mon *m, cella_error_t *err)
{
  int o[2] = { -1, -1 }, e[2] = { -1, -1 }, i[2] = { -1, -1 };
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC), r;
  bool tty = m->plan->process.tty;
  const char *failed = NULL;
  if (!tty && (pipe2 (o, O_CLOEXEC) < 0 || pipe2 (e, O_CLOEXEC) < 0))
    failed = "pipes for the container's output";
  else if (m->plan->process.stdin_open && !tty && pipe2 (i, O_CLOEXEC) < 0)
    failed = "pipe for the container's input";
  if (failed)
    {
      /* /dev/null and the pipes made before the one that failed stay open otherwise */
      int saved = errno, *fds[] = { &null, &o[0], &o[1], &e[0], &e[1], &i[0], &i[1] };
      for (size_t k = 0; k < sizeof fds / sizeof fds[0]; k++)
        close_fd (fds[k]);
      return cella_error (err, saved, "%s", failed);
    }
  dup2 (i[0] >= 0 ? i[0] : null, 0);
  dup2 (o[1] >= 0 ? o[1] : null, 1);
  dup2 (e[1] >= 0 ? e[1] : null, 2);
  {
    /* what the backend keeps (a VM's disk and console log) stays in the container's directory
     * between starts */
    const struct backend *b = backend_of (m->plan);
    cleanup_free char *dir = ctr_dir (m->id), *state = backend_state_dir (b, dir);
    r = b->start (m->plan, state, &m->proc, err);
  }
  dup2 (null, 0);
  dup2 (null, 1);
  dup2 (null, 2);
  close (null);
  close_fd (&o[1]);
  close_fd (&e[1]);
  close_fd (&i[0]);
  m->out = tty ? m->proc.master : o[0];
  m->errp = e[0];
  m->hub.in = i[1];
  m->hub.tty = tty ? m->proc.master : -1;
  if (r < 0)
    {
      close_fd (&o[0]);
      close_fd (&e[0]);
      close_fd (&i[1]);
      m->out = m->errp = m->hub.in = -1;
    }
  return r;
}

static void
mon_release (struct mon *m)
{
  if (m->proc.master >= 0)
    close (m->proc.master);
  else
    close_fd (&m->out);
  m->proc.master = m->hub.tty = -1;
  m->out = -1;
  close_fd (&m->errp);
  close_fd (&m->hub.in);
  close_fd (&m->proc.pidfd);
}

static void
report (int *ready_fd, int status, cella_error_t *err)
{
  struct monitor_ready r = { .status = status };
  if (*ready_fd < 0)
    return;
  if (err && *err)
    {
      r.errno_ = (*err)->errno_;
      snprintf (r.msg, sizeof r.msg, "%s", (*err)->msg);
    }
  send (*ready_fd, &r, sizeof r, MSG_NOSIGNAL);
  close (*ready_fd);
  *ready_fd = -1;
}

/* After an exit: record it and say whether to start again. */
static bool
mon_record_exit (struct mon *m, int status, long long ran_ns)
{
  cella_error_t err = NULL;
  struct ctr_state st;
  bool again = false;
  int lock = ctr_lock (m->id, &err);
  if (lock < 0 || ctr_state_read (m->id, &st, -1, &err) < 0)
    {
      cella_error_free (&err);
      if (lock >= 0)
        close (lock);
      return false;
    }
  if (!st.stop_requested && m->health_restart)
    again = true;
  else if (!st.stop_requested)
    switch (st.restart)
      {
      case RESTART_ON_FAILURE:
        again = status != 0 && (st.restart_max == 0 || st.restart_count < st.restart_max);
        break;
      case RESTART_ALWAYS:
      case RESTART_UNLESS_STOPPED:
        again = true;
        break;
      case RESTART_NO:
      default:
        break;
      }
  (void) ran_ns;
  st.exit_code = status;
  st.oom_killed = m->oom_killed;
  st.finished_ns = now_ns ();
  st.pid = 0;
  st.pid_start = 0;
  st.status = again ? CTR_RESTARTING : CTR_EXITED;
  if (!again)
    {
      st.monitor_pid = 0;
      st.monitor_start = 0;
    }
  ctr_state_write (&st, NULL);
  event_ctr ("die", &st);
  ctr_state_clear (&st);
  close (lock);
  return again;
}

/* docker's back-off: 100 ms doubling up to a minute, back to 100 ms after 10 s of running.
 * Sleeps in short steps so a stop during the back-off is seen at once. */
static bool
mon_backoff (struct mon *m, long long *delay_ms)
{
  for (long long slept = 0; slept < *delay_ms; slept += 50)
    {
      struct ctr_state st;
      struct timespec ts = { 0, 50 * 1000000L };
      bool stop;
      if (ctr_state_read (m->id, &st, -1, NULL) < 0)
        return false;
      stop = st.stop_requested || st.status == CTR_REMOVING;
      ctr_state_clear (&st);
      if (stop)
        return false;
      nanosleep (&ts, NULL);
    }
  *delay_ms = *delay_ms * 2 > 60000 ? 60000 : *delay_ms * 2;
  return true;
}

static int
mon_mark_running (struct mon *m, bool first, cella_error_t *err)
{
  struct ctr_state st;
  int r, lock = -1;
  /* the first start runs under the lock the starting CLI took and handed down */
  if (!first && (lock = ctr_lock (m->id, err)) < 0)
    return -1;
  if (ctr_state_read (m->id, &st, -1, err) < 0)
    {
      if (lock >= 0)
        close (lock);
      return -1;
    }
  st.status = CTR_RUNNING;
  st.pid = m->proc.pid;
  st.pid_start = proc_start_time (m->proc.pid);
  st.monitor_pid = getpid ();
  st.monitor_start = proc_start_time (getpid ());
  st.started_ns = now_ns ();
  st.exit_code = -1;
  st.oom_killed = false;
  free (st.error);
  st.error = NULL;
  if (first)
    st.stop_requested = false;
  else
    st.restart_count++;
  if (st.hc.test)
    {
      /* each run starts its health afresh; the log of the last ones stays */
      st.health = HEALTH_STARTING;
      st.failing_streak = 0;
    }
  r = ctr_state_write (&st, err);
  event_ctr ("start", &st);
  ctr_state_clear (&st);
  if (lock >= 0)
    close (lock);
  return r;
}

/* A failed start: the first one leaves the container created with the error (docker's way);
 * a failed restart leaves it exited. */
static void
mon_record_failure (struct mon *m, bool first, cella_error_t *err)
{
  struct ctr_state st;
  if (ctr_state_read (m->id, &st, -1, NULL) < 0)
    return;
  st.status = first ? CTR_CREATED : CTR_EXITED;
  st.exit_code = (*err)->status;
  free (st.error);
  st.error = xstrdup ((*err)->msg);
  st.pid = 0;
  st.monitor_pid = 0;
  st.monitor_start = 0;
  st.finished_ns = now_ns ();
  ctr_state_write (&st, NULL);
  ctr_state_clear (&st);
}

static int
mon_init (struct mon *m, const char *id, int listen_fd, cella_error_t *err)
{
  struct ctr_state st;
  cleanup_free char *log = ctr_log_path (id);
  long long max = 0;
  memset (m, 0, sizeof *m);
  m->id = id;
  m->out = m->errp = m->hub.in = m->hub.tty = -1;
  m->proc.pidfd = m->proc.master = -1;
  if (ctr_plan_load (id, &m->plan, err) < 0 || ctr_state_read (id, &st, -1, err) < 0)
    return -1;
  max = m->log_max = st.log_max_size;
  m->hc = st.hc;
  memset (&st.hc, 0, sizeof st.hc);
  ctr_state_clear (&st);
  m->probe.pid = -1;
  m->probe.pidfd = m->probe.out = -1;
  m->hub.log = log_writer_open (log, max, err);
  if (m->hub.log == NULL)
    return -1;
  m->listen = listen_fd >= 0 ? listen_fd : mon_listen (id);
  return 0;
}

/* Where the small monitor and the full binary are: $CELLA_MONITOR_BIN and $CELLA_FULL_BIN (set
 * by main from the path of the cella that started us; $CELLA_MONITOR_BIN set empty keeps the
 * full monitor), else the installed ones. NULL: keep the full monitor. */
static const char *
mon_small_path (const char **full)
{
  const char *small = getenv ("CELLA_MONITOR_BIN");
  *full = getenv ("CELLA_FULL_BIN");
  if (small == NULL && access (LIBEXECDIR "/cella/cella-monitor", X_OK) == 0)
    small = LIBEXECDIR "/cella/cella-monitor";
  if (small == NULL || *small == '\0' || *full == NULL || **full != '/')
    return NULL;
  return small;
}

static void
push_num (char ***argv, long long v)
{
  char s[24];
  snprintf (s, sizeof s, "%lld", v);
  strv_push (argv, s);
}

/* an fd the small monitor keeps: open across the execve */
static void
push_fd (char ***argv, int fd)
{
  if (fd >= 0)
    fcntl (fd, F_SETFD, 0);
  push_num (argv, fd);
}

/* The workload runs: become the small monitor (monitor/main.c) in this same process, the
 * workload still our child, for as long as it runs. A container with health checks keeps the
 * full monitor (the checks need the plan and the backend). Returns only when that cannot be
 * (then this process goes on as the full monitor). */
static void
mon_exec_small (struct mon *m, long long started, long long delay_ms)
{
  extern char **environ;
  const char *full, *small = mon_small_path (&full);
  cleanup_free char *log = NULL;
  char **argv = NULL;
  cella_error_t err = NULL;
  int keep[6 + ATT_MAX_CLIENTS];
  size_t nkeep = 0;
  if (small == NULL || m->hc.test != NULL)
    return;
  log = ctr_log_path (m->id);
  log_writer_close (m->hub.log); /* nothing was written yet: no output was read */
  m->hub.log = NULL;
  strv_push (&argv, "cella-monitor");
  strv_push (&argv, "__monitor");
  strv_push (&argv, m->id);
  {
    int fds[] = { m->proc.pidfd, m->out, m->errp, m->hub.in, m->proc.master, m->listen };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
      {
        push_fd (&argv, fds[i]);
        if (fds[i] >= 0)
          keep[nkeep++] = fds[i];
      }
  }
  strv_push (&argv, log);
  push_num (&argv, m->log_max);
  push_num (&argv, started);
  push_num (&argv, delay_ms);
  strv_push (&argv, full);
  for (size_t i = 0; i < m->hub.nclients; i++)
    {
      push_fd (&argv, m->hub.clients[i]);
      keep[nkeep++] = m->hub.clients[i];
    }
  execve (small, argv, environ);
  /* not there after all: go on here, as before */
  for (size_t i = 0; i < nkeep; i++)
    fcntl (keep[i], F_SETFD, FD_CLOEXEC);
  strv_free (argv);
  m->hub.log = log_writer_open (log, m->log_max, &err);
  cella_error_free (&err);
}

int
monitor_main (const char *id, int ready_fd, int attach_fd, int lock_fd, const struct monitor_resume *resume)
{
  struct mon m;
  cella_error_t err = NULL;
  long long delay_ms = resume ? resume->delay_ms : 100;
  bool first = resume == NULL, again, auto_remove = false;
  int status = 0;

  prctl (PR_SET_NAME, "cella-monitor", 0, 0, 0); /* started as /proc/self/exe: comm would be "exe" */
  /* the monitor's own: every backend starts its workload with the defaults (signals_default) */
  signal (SIGPIPE, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGINT, SIG_IGN);
  if (mon_init (&m, id, resume ? resume->listen : -1, &err) < 0)
    {
      report (&ready_fd, 125, &err);
      return 125;
    }
  att_hub_add (&m.hub, attach_fd);
  for (size_t i = 0; resume && i < resume->nclients; i++)
    att_hub_add (&m.hub, resume->clients[i]);
  do
    {
      long long started;
      if (resume)
        {
          /* back from the small monitor: its workload ended with this status */
          status = resume->status;
          started = resume->started_ns;
          resume = NULL;
          goto ended;
        }
      if (mon_spawn (&m, &err) < 0)
        {
          mon_record_failure (&m, first, &err);
          report (&ready_fd, err->status ? err->status : 125, &err);
          status = err->status;
          att_hub_broadcast (&m.hub, ATT_EXIT, &status, sizeof status);
          cella_error_free (&err);
          break;
        }
      if (mon_mark_running (&m, first, &err) < 0)
        {
          backend_signal (&m.proc, SIGKILL);
          report (&ready_fd, 125, &err);
          cella_error_free (&err);
          break;
        }
      if (first)
        {
          report (&ready_fd, 0, NULL);
          if (lock_fd >= 0)
            {
              flock (lock_fd, LOCK_UN);
              close (lock_fd);
              lock_fd = -1;
            }
        }
      first = false;
      started = m.run_started_ns = now_ns ();
      m.health_restart = false;
      mon_exec_small (&m, started, delay_ms);
      status = mon_loop (&m);
    ended:
      mon_release (&m);
      m.oom_killed = backend_of (m.plan)->finish && backend_of (m.plan)->finish (m.plan);
      if (net_wanted (m.plan) || net_vm_tap_wanted (m.plan))
        net_detach (m.plan); /* the published ports are free once the container stopped */
      again = mon_record_exit (&m, status, now_ns () - started);
      att_hub_broadcast (&m.hub, ATT_EXIT, &status, sizeof status);
      if (now_ns () - started > 10 * 1000000000LL)
        delay_ms = 100;
    }
  while (again && mon_backoff (&m, &delay_ms));

  {
    struct ctr_state st;
    if (ctr_state_read (id, &st, -1, NULL) == 0)
      {
        auto_remove = st.auto_remove;
        /* stopped during the back-off: say so */
        if (st.status == CTR_RESTARTING)
          {
            st.status = CTR_EXITED;
            st.monitor_pid = 0;
            st.monitor_start = 0;
            ctr_state_write (&st, NULL);
          }
        if (auto_remove)
          {
            /* a first start that failed still holds the lock the CLI handed down: taking it
             * again (another open file) would wait for ourselves forever */
            int lock = lock_fd >= 0 ? steal_fd (&lock_fd) : ctr_lock (id, NULL);
            int removed = ctr_remove_files (id, st.name, NULL);
            if (lock >= 0)
              close (lock);
            if (removed == 0) /* docker's --rm takes the anonymous volumes along */
              volume_remove_anonymous (st.volumes, st.nvolumes);
          }
        ctr_state_clear (&st);
      }
  }
  if (m.listen >= 0)
    {
      cleanup_free char *dir = ctr_run_dir (id);
      cleanup_free char *path = xasprintf ("%s/attach.sock", dir);
      unlink (path);
      rmdir (dir);
    }
  if (lock_fd >= 0)
    close (lock_fd);
  log_writer_close (m.hub.log);
  plan_free (m.plan);
  ctr_healthcheck_clear (&m.hc);
  att_hub_close_all (&m.hub);
  return 0;
}
