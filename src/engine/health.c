/* Health checks: the configuration, the probe the monitor forks per check, the recorded verdict
 * (health.h says how they fit together). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "../backend/backend.h"
#include "health.h"

static const char *const health_names[] = { "none", "starting", "healthy", "unhealthy" };
static const char *const action_names[] = { "none", "kill", "restart" };

const char *
ctr_health_name (enum ctr_health h)
{
  return (unsigned) h < sizeof health_names / sizeof health_names[0] ? health_names[h] : "none";
}

const char *
health_action_name (enum health_action a)
{
  return (unsigned) a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "none";
}

int
health_action_parse (const char *s, enum health_action *a)
{
  for (size_t i = 0; s && i < sizeof action_names / sizeof action_names[0]; i++)
    if (strcmp (s, action_names[i]) == 0)
      {
        *a = (enum health_action) i;
        return 0;
      }
  return -1;
}

void
ctr_healthcheck_clear (struct ctr_healthcheck *hc)
{
  strv_free (hc->test);
  memset (hc, 0, sizeof *hc);
}

void
ctr_health_result_clear (struct ctr_health_result *r)
{
  free (r->output);
  memset (r, 0, sizeof *r);
}

/* ---- durations --------------------------------------------------------------------------------- */

long long
health_parse_duration (const char *s)
{
  static const struct {
    const char *unit;
    long long ns;
  } units[] = { { "ns", 1 },
                { "us", 1000 },
                { "µs", 1000 },
                { "ms", 1000000 },
                { "s", 1000000000LL },
                { "m", 60 * 1000000000LL },
                { "h", 3600 * 1000000000LL } };
  long double total = 0;
  if (s == NULL || *s == '\0')
    return -1;
  if (strcmp (s, "0") == 0)
    return 0;
  while (*s)
    {
      char *end;
      long double v;
      size_t best = 0, k = sizeof units / sizeof units[0];
      if (!(*s >= '0' && *s <= '9') && *s != '.')
        return -1;
      errno = 0;
      v = strtold (s, &end);
      if (end == s || errno || v < 0)
        return -1;
      s = end;
      /* the longest unit that matches: "ms" before "m" */
      for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strncmp (s, units[i].unit, strlen (units[i].unit)) == 0 && strlen (units[i].unit) > best)
          {
            best = strlen (units[i].unit);
            k = i;
          }
      if (best == 0)
        return -1;
      s += best;
      total += v * (long double) units[k].ns;
      if (total > 1e18L)
        return -1;
    }
  return (long long) total;
}

void
health_format_duration (long long ns, char *buf, size_t len)
{
  if (ns % 1000000000LL == 0)
    snprintf (buf, len, "%llds", ns / 1000000000LL);
  else if (ns < 1000000000LL && ns % 1000000LL == 0)
    snprintf (buf, len, "%lldms", ns / 1000000LL);
  else
    snprintf (buf, len, "%gs", (double) ns / 1e9);
}

/* ---- configuration ----------------------------------------------------------------------------- */

static int
option_duration (const char *name, const char *v, long long *ns, cella_error_t *err)
{
  long long d;
  if (v == NULL)
    return 0;
  d = health_parse_duration (v);
  if (d < 0)
    return cella_error (err, 0, "--%s `%s`: expected a duration like 500ms, 30s or 1m30s", name, v);
  *ns = d;
  return 0;
}

static bool
test_is_none (char *const *test)
{
  return test && test[0] && strcmp (test[0], "NONE") == 0;
}

int
health_config (const struct health_options *o, const struct ctr_healthcheck *image, struct ctr_healthcheck *out,
               cella_error_t *err)
{
  bool given = o->cmd || o->interval || o->timeout || o->retries || o->start_period;
  memset (out, 0, sizeof *out);
  if (o->none && o->cmd)
    return cella_error (err, 0, "--no-healthcheck and --health-cmd conflict");
  if (o->on_failure && health_action_parse (o->on_failure, &out->on_failure) < 0)
    return cella_error (err, 0, "--health-on-failure `%s`: expected none, kill or restart", o->on_failure);
  if (image)
    {
      out->interval_ns = image->interval_ns;
      out->timeout_ns = image->timeout_ns;
      out->start_period_ns = image->start_period_ns;
      out->retries = image->retries;
    }
  if (option_duration ("health-interval", o->interval, &out->interval_ns, err) < 0
      || option_duration ("health-timeout", o->timeout, &out->timeout_ns, err) < 0
      || option_duration ("health-start-period", o->start_period, &out->start_period_ns, err) < 0)
    return -1;
  if (o->retries)
    {
      long long r = parse_uint (o->retries, 1000000);
      if (r < 0)
        return cella_error (err, 0, "--health-retries `%s`: expected a number", o->retries);
      out->retries = (int) r;
    }
  if ((o->interval && out->interval_ns == 0) || (o->timeout && out->timeout_ns == 0))
    return cella_error (err, 0, "--health-%s `%s`: must be more than 0",
                        o->interval && out->interval_ns == 0 ? "interval" : "timeout",
                        o->interval && out->interval_ns == 0 ? o->interval : o->timeout);
  /* docker: 0 means the default */
  if (out->interval_ns <= 0)
    out->interval_ns = HEALTH_DEFAULT_INTERVAL_NS;
  if (out->timeout_ns <= 0)
    out->timeout_ns = HEALTH_DEFAULT_TIMEOUT_NS;
  if (out->retries <= 0)
    out->retries = HEALTH_DEFAULT_RETRIES;
  if (out->start_period_ns < 0)
    out->start_period_ns = 0;
  if (o->none)
    return 0;
  if (o->cmd)
    {
      if (*o->cmd == '\0')
        return cella_error (err, 0, "--health-cmd: the command is empty");
      strv_push (&out->test, "CMD-SHELL");
      strv_push (&out->test, o->cmd);
    }
  else if (image && image->test && !test_is_none (image->test))
    {
      /* the image's: {"CMD", argv...}, {"CMD-SHELL", line}; anything else is not a check */
      if (image->test[0] && image->test[1]
          && (strcmp (image->test[0], "CMD") == 0 || strcmp (image->test[0], "CMD-SHELL") == 0))
        out->test = strv_dup (image->test);
    }
  if (out->test == NULL && (given || o->on_failure))
    return cella_error (err, 0, "health options without a health check: give --health-cmd (the image has none)");
  return 0;
}

/* ---- the probe --------------------------------------------------------------------------------- */

/* The command the probe runs: CMD-SHELL through /bin/sh -c, CMD as given. */
static char **
probe_argv (char *const *test)
{
  char **argv = NULL;
  if (strcmp (test[0], "CMD-SHELL") == 0)
    {
      strv_push (&argv, "/bin/sh");
      strv_push (&argv, "-c");
      strv_push (&argv, test[1]);
    }
  else
    strv_append_all (&argv, test + 1);
  return argv;
}

/* In the probe (a fork): the container's process turned into the check, run as exec runs it. */
__attribute__ ((noreturn)) static void
probe_main (struct plan *p, pid_t target, const char *state_dir, char *const *test, int outfd)
{
  cella_error_t err = NULL;
  struct plan_process *pr = &p->process;
  int null = open ("/dev/null", O_RDONLY | O_CLOEXEC), status;
  /* its own process group, so a timeout kills what it started too (proot's tracer and such) */
  setpgid (0, 0);
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (null < 0 || dup2 (null, 0) < 0 || dup2 (outfd, 1) < 0 || dup2 (outfd, 2) < 0)
    _exit (125);
  close_range (3, ~0U, 0);
  signals_default ();
  strv_free (pr->argv);
  pr->argv = probe_argv (test);
  /* the user was resolved at create: keep uid/gid/groups, as exec without -u does */
  free (pr->user);
  pr->user = NULL;
  pr->tty = false;
  pr->stdin_open = false;
  pr->init = false;
  status = backend_of (p)->exec (p, target, state_dir, &err);
  if (status < 0)
    status = cella_error_print (&err);
  _exit (status);
}

int
health_probe_start (struct health_probe *h, struct plan *p, const char *id, pid_t target,
                    const struct ctr_healthcheck *hc, cella_error_t *err)
{
  const struct backend *b = backend_of (p);
  cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (b, dir);
  int pp[2];
  memset (h, 0, sizeof *h);
  h->pid = -1;
  h->pidfd = h->out = -1;
  if (b->exec == NULL)
    return cella_error (err, 0, "health check: exec is not supported by the %s backend", b->name);
  if (pipe2 (pp, O_CLOEXEC) < 0)
    return cella_error (err, errno, "health check: pipe");
  h->start_ns = now_ns ();
  h->deadline_ns = h->start_ns + hc->timeout_ns;
  fflush (NULL);
  h->pid = fork ();
  if (h->pid < 0)
    {
      close (pp[0]);
      close (pp[1]);
      return cella_error (err, errno, "health check: fork");
    }
  if (h->pid == 0)
    probe_main (p, target, state, hc->test, pp[1]);
  close (pp[1]);
  h->out = pp[0];
  h->out_open = true;
  fcntl (h->out, F_SETFL, O_NONBLOCK);
  h->pidfd = (int) syscall (SYS_pidfd_open, h->pid, 0);
  h->buf = xmalloc (HEALTH_OUTPUT_MAX);
  return 0;
}

void
health_probe_read (struct health_probe *h)
{
  /* a bounded number of reads: a check that writes without end (`yes`) must not keep the
   * monitor from its poll loop, its deadline included */
  for (int k = 0; k < 32; k++)
    {
      char drop[512];
      bool keep = h->len < HEALTH_OUTPUT_MAX;
      ssize_t n = keep ? read (h->out, h->buf + h->len, HEALTH_OUTPUT_MAX - h->len) : read (h->out, drop, sizeof drop);
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0 || (n < 0 && errno != EAGAIN))
        h->out_open = false;
      if (n <= 0)
        return;
      if (keep)
        h->len += (size_t) n;
    }
}

/* The children of pid (/proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN: scan instead);
 * fn on each. Only at a timeout, so the scan's cost does not matter. */
static void
each_child (pid_t pid, void (*fn) (pid_t))
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL)
    {
      char path[300], buf[512], *close_paren;
      long ppid = 0;
      ssize_t n;
      int fd;
      if (e->d_name[0] < '1' || e->d_name[0] > '9')
        continue;
      snprintf (path, sizeof path, "/proc/%s/stat", e->d_name);
      fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      n = read (fd, buf, sizeof buf - 1);
      close (fd);
      if (n <= 0)
        continue;
      buf[n] = '\0';
      /* "pid (comm) S ppid ...": comm may hold anything, so from the last ')' */
      close_paren = strrchr (buf, ')');
      if (close_paren && sscanf (close_paren + 1, " %*c %ld", &ppid) == 1 && ppid == pid)
        fn ((pid_t) atol (e->d_name));
    }
  if (d)
    closedir (d);
}

static void
kill_group (pid_t c)
{
  kill (-c, SIGKILL);
  kill (c, SIGKILL);
}

/* The command is the probe's child (exec's joiner clones it as ours, CLONE_PARENT) and leads a
 * session of its own in the container: kill that process group, give the probe a moment to reap
 * the command (killed first, the command would be left a zombie under the container's init),
 * then kill the probe's own group. */
static void
probe_kill (struct health_probe *h)
{
  each_child (h->pid, kill_group);
  if (h->pidfd >= 0)
    {
      struct pollfd pf = { .fd = h->pidfd, .events = POLLIN };
      while (poll (&pf, 1, 250) < 0 && errno == EINTR)
        ;
    }
  kill (-h->pid, SIGKILL);
  kill (h->pid, SIGKILL);
}

static int
probe_reap (struct health_probe *h)
{
  siginfo_t si;
  int status = -1;
  memset (&si, 0, sizeof si);
  while (waitid (P_PID, (id_t) h->pid, &si, WEXITED) < 0)
    if (errno != EINTR)
      break;
  if (si.si_pid == h->pid)
    status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
  if (h->pidfd >= 0)
    close (h->pidfd);
  if (h->out >= 0)
    close (h->out);
  h->pidfd = h->out = -1;
  h->pid = -1;
  return status;
}

void
health_probe_finish (struct health_probe *h, bool timed_out, long long timeout_ns, struct ctr_health_result *r)
{
  int status;
  if (timed_out)
    probe_kill (h);
  else if (h->out_open)
    health_probe_read (h); /* what the pipe still holds: non-blocking, so a process the check left
                              behind with the pipe open does not hold us */
  status = probe_reap (h);
  memset (r, 0, sizeof *r);
  r->start_ns = h->start_ns;
  r->end_ns = now_ns ();
  if (timed_out)
    {
      char d[32];
      health_format_duration (timeout_ns, d, sizeof d);
      r->exit_code = -1;
      r->output = xasprintf ("Health check exceeded timeout (%s)", d);
    }
  else
    {
      r->exit_code = status;
      r->output = xzalloc (h->len + 1);
      memcpy (r->output, h->buf, h->len);
    }
  free (h->buf);
  h->buf = NULL;
  h->len = 0;
}

void
health_probe_cancel (struct health_probe *h)
{
  if (h->pid <= 0)
    return;
  probe_kill (h);
  probe_reap (h);
  free (h->buf);
  h->buf = NULL;
}

/* ---- the record -------------------------------------------------------------------------------- */

static void
log_append (struct ctr_state *st, const struct ctr_health_result *r)
{
  if (st->health_nlog == HEALTH_LOG_MAX)
    {
      ctr_health_result_clear (&st->health_log[0]);
      memmove (&st->health_log[0], &st->health_log[1], (HEALTH_LOG_MAX - 1) * sizeof st->health_log[0]);
      memset (&st->health_log[HEALTH_LOG_MAX - 1], 0, sizeof st->health_log[0]);
      st->health_nlog--;
    }
  st->health_log[st->health_nlog] = *r;
  st->health_log[st->health_nlog].output = xstrdup (r->output ? r->output : "");
  st->health_nlog++;
}

int
health_record (const char *id, const struct ctr_health_result *r, long long run_started_ns, bool *turned_unhealthy,
               cella_error_t *err)
{
  struct ctr_state st;
  int lock = ctr_lock (id, err), ret;
  enum ctr_health was;
  *turned_unhealthy = false;
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  log_append (&st, r);
  was = st.health;
  if (st.status == CTR_RUNNING && st.hc.test)
    {
      if (r->exit_code == 0)
        {
          st.failing_streak = 0;
          st.health = HEALTH_HEALTHY;
        }
      else if (!(st.health == HEALTH_STARTING && r->start_ns < run_started_ns + st.hc.start_period_ns))
        {
          /* docker: a failure in the start period does not count until the first success */
          st.failing_streak++;
          if (st.failing_streak >= st.hc.retries && st.health != HEALTH_UNHEALTHY)
            {
              st.health = HEALTH_UNHEALTHY;
              *turned_unhealthy = true;
              if (st.hc.on_failure == HEALTH_ACT_KILL)
                st.stop_requested = true;
            }
        }
    }
  ret = ctr_state_write (&st, err);
  if (ret == 0 && st.health != was)
    event_ctr ("health_status", &st);
  ctr_state_clear (&st);
  close (lock);
  return ret;
}

/* ---- on demand: healthcheck run, wait --condition ---------------------------------------------- */

int
ctr_health_run (const char *id, bool *healthy, cella_error_t *err)
{
  struct ctr_state st;
  struct plan *p = NULL;
  struct health_probe h;
  struct ctr_health_result r = { 0 };
  bool turned, timed_out = false;
  int ret = -1;
  if (ctr_state_read (id, &st, -1, err) < 0)
    return -1;
  if (st.hc.test == NULL)
    {
      cella_error (err, 0, "container `%s` has no health check", st.name ? st.name : id);
      goto out;
    }
  if (st.status != CTR_RUNNING || !proc_alive (st.pid, st.pid_start))
    {
      cella_error (err, 0, "container `%s` is not running (status: %s)", st.name ? st.name : id,
                   ctr_status_name (st.status));
      goto out;
    }
  if (ctr_plan_load (id, &p, err) < 0 || health_probe_start (&h, p, id, st.pid, &st.hc, err) < 0)
    goto out;
  for (;;)
    {
      long long left = h.deadline_ns - now_ns ();
      struct pollfd fds[2]
          = { { .fd = h.out_open ? h.out : -1, .events = POLLIN }, { .fd = h.pidfd, .events = POLLIN } };
      if (left <= 0)
        {
          timed_out = true;
          break;
        }
      if (poll (fds, 2, (int) (left / 1000000 + 1)) < 0 && errno != EINTR)
        break;
      if (fds[0].revents)
        health_probe_read (&h);
      if (fds[1].revents)
        {
          health_probe_read (&h);
          break;
        }
    }
  health_probe_finish (&h, timed_out, st.hc.timeout_ns, &r);
  *healthy = r.exit_code == 0;
  ret = health_record (id, &r, st.started_ns, &turned, err);
  ctr_health_result_clear (&r);
out:
  plan_free (p);
  ctr_state_clear (&st);
  return ret;
}

int
ctr_wait_health (const char *id, enum ctr_health want, cella_error_t *err)
{
  for (;;)
    {
      struct ctr_state st;
      struct timespec ts = { 0, 50 * 1000000L };
      bool done, stopped;
      if (ctr_state_read (id, &st, -1, err) < 0)
        return -1;
      if (st.hc.test == NULL)
        {
          cella_error (err, 0, "container `%s` has no health check", st.name ? st.name : id);
          ctr_state_clear (&st);
          return -1;
        }
      done = st.status == CTR_RUNNING && st.health == want;
      stopped = st.status == CTR_EXITED || st.status == CTR_CREATED || st.status == CTR_REMOVING;
      if (stopped)
        cella_error (err, 0, "container `%s` stopped before it was %s (status: %s)", st.name ? st.name : id,
                     ctr_health_name (want), ctr_status_name (st.status));
      ctr_state_clear (&st);
      if (done)
        return 0;
      if (stopped)
        return -1;
      nanosleep (&ts, NULL);
    }
}
