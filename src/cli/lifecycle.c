/* cella start | stop | restart | kill | rm | wait | rename, and the hidden __monitor. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/events.h"
#include "../engine/attach.h"
#include "../engine/container.h"
#include "../engine/health.h"
#include "commands.h"
#include "../util/options.h"

struct lc_opts {
  bool attach, interactive, force, volumes;
  char *timeout, *signal, *condition;
};

#define O(f) offsetof (struct lc_opts, f)
static const struct cli_option start_table[] = {
  { "attach", 'a', OPT_FLAG, O (attach), NULL, "Attach to the output and wait; exit with the container's status" },
  { "interactive", 'i', OPT_FLAG, O (interactive), NULL, "Also pass stdin (with -a)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option stop_table[] = {
  { "time", 't', OPT_STRING, O (timeout), "SECONDS", "Seconds to wait after SIGTERM before SIGKILL (default 10)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option kill_table[] = {
  { "signal", 's', OPT_STRING, O (signal), "SIGNAL", "Signal to send: name (TERM, SIGHUP) or number (default KILL)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option rm_table[] = {
  { "force", 'f', OPT_FLAG, O (force), NULL, "Kill a running container first" },
  { "volumes", 'v', OPT_FLAG, O (volumes), NULL,
    "Also remove the container's anonymous volumes (VOLUME, -v /path) no other container uses" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option wait_table[] = {
  { "condition", 0, OPT_STRING, O (condition), "COND",
    "stopped (default: until it stops; print the exit code), healthy or unhealthy (until its health check says so; "
    "print nothing)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_options[] = { { NULL, 0, 0, 0, NULL, NULL } };
#undef O

static void
lc_opts_free (struct lc_opts *o)
{
  free (o->timeout);
  free (o->signal);
  free (o->condition);
}

/* Parse; print help; check the operand count. Returns the first operand's index, 0 after
 * --help, -1 after an error (printed; *status set). */
static int
parse (const struct cli_option *t, struct lc_opts *o, int argc, char **argv, const char *usage, const char *summary,
       int min_args, int *status)
{
  return cli_parse_command (t, o, argc, argv, usage, summary, min_args, "a container is required", status);
}

/* Apply fn to each named container; report each failure; 125 if any failed. */
static int
each (int argc, char **argv, int first, bool print, int (*fn) (const char *id, void *ud, cella_error_t *err), void *ud)
{
  int status = 0;
  for (int i = first; i < argc; i++)
    {
      cella_error_t err = NULL;
      cleanup_free char *id = NULL;
      if (ctr_lookup (argv[i], &id, &err) < 0 || fn (id, ud, &err) < 0)
        {
          status = cella_error_print (&err);
          continue;
        }
      if (print)
        puts (argv[i]);
    }
  return status;
}

/* As each, with the containers handled at once (a child process each, at most EACH_AT_ONCE running):
 * stopping many containers whose workloads ignore SIGTERM takes one timeout, not one per container.
 * Errors are printed by the children as they come; the names, in the order given, at the end. */
#define EACH_AT_ONCE 64

static void
each_reap (const pid_t *pids, int *rc, int j)
{
  int ws;
  if (pids[j] <= 0)
    return;
  while (waitpid (pids[j], &ws, 0) < 0)
    if (errno != EINTR)
      {
        rc[j] = EXIT_CELLA_ERROR;
        return;
      }
  rc[j] = WIFEXITED (ws) ? WEXITSTATUS (ws) : EXIT_CELLA_ERROR;
}

static int
each_one (const char *ref, int (*fn) (const char *id, void *ud, cella_error_t *err), void *ud)
{
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  if (ctr_lookup (ref, &id, &err) < 0 || fn (id, ud, &err) < 0)
    return cella_error_print (&err);
  return 0;
}

static int
each_parallel (int argc, char **argv, int first, int (*fn) (const char *id, void *ud, cella_error_t *err), void *ud)
{
  int n = argc - first, status = 0;
  cleanup_free pid_t *pids = NULL;
  cleanup_free int *rc = NULL;
  if (n <= 1)
    return each (argc, argv, first, true, fn, ud);
  pids = xzalloc ((size_t) n * sizeof *pids);
  rc = xzalloc ((size_t) n * sizeof *rc);
  fflush (NULL);
  for (int i = 0; i < n; i++)
    {
      if (i >= EACH_AT_ONCE)
        each_reap (pids, rc, i - EACH_AT_ONCE);
      pids[i] = fork ();
      if (pids[i] == 0)
        {
          int r = each_one (argv[first + i], fn, ud);
          fflush (NULL);
          _exit (r);
        }
      if (pids[i] < 0) /* no process to spare: this one here */
        rc[i] = each_one (argv[first + i], fn, ud);
    }
  for (int j = n > EACH_AT_ONCE ? n - EACH_AT_ONCE : 0; j < n; j++)
    each_reap (pids, rc, j);
  for (int i = 0; i < n; i++)
    if (rc[i] == 0)
      puts (argv[first + i]);
    else
      status = rc[i];
  return status;
}

static int
do_start (const char *id, void *ud, cella_error_t *err)
{
  (void) ud;
  return ctr_start (id, NULL, err);
}

static int
start_attached (const char *ref, bool interactive)
{
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  struct ctr_state st;
  int sv[2], status;
  if (ctr_lookup (ref, &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
    return cella_error_print (&err);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      ctr_state_clear (&st);
      cella_error (&err, errno, "socketpair");
      return cella_error_print (&err);
    }
  {
    struct ctr_start_opts so = { .attach_fd = sv[1] };
    int r = ctr_start (id, &so, &err);
    close (sv[1]);
    if (r < 0)
      {
        close (sv[0]);
        ctr_state_clear (&st);
        return cella_error_print (&err);
      }
  }
  status = attach_client (sv[0], st.tty, interactive);
  ctr_state_clear (&st);
  close (sv[0]);
  if (status < 0 && (status = ctr_wait (id, &err)) < 0)
    return cella_error_print (&err);
  return status;
}

int
cmd_start (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  int status, first = parse (start_table, &o, argc, argv, "cella start [-a [-i]] CONTAINER...",
                             "Start created or stopped containers (each under a new monitor).", 1, &status);
  if (first > 0)
    {
      if (o.attach)
        {
          if (argc - first != 1)
            {
              fprintf (stderr, "cella: start -a: give exactly one container\n");
              status = EXIT_CELLA_ERROR;
            }
          else
            status = start_attached (argv[first], o.interactive);
        }
      else
        status = each (argc, argv, first, true, do_start, NULL);
    }
  lc_opts_free (&o);
  return status;
}

static int
parse_timeout (const char *s, int *t, cella_error_t *err)
{
  long long v = s ? parse_uint (s, 1000000) : 10;
  if (v < 0)
    return cella_error (err, 0, "stop: -t `%s`: not a number of seconds", s);
  *t = (int) v;
  return 0;
}

static int
do_stop (const char *id, void *ud, cella_error_t *err)
{
  return ctr_stop (id, *(int *) ud, err);
}

static int
do_restart (const char *id, void *ud, cella_error_t *err)
{
  struct ctr_state st;
  if (ctr_stop (id, *(int *) ud, err) < 0 || ctr_start (id, NULL, err) < 0)
    return -1;
  if (ctr_state_read (id, &st, -1, NULL) == 0)
    {
      event_ctr ("restart", &st);
      ctr_state_clear (&st);
    }
  return 0;
}

static int
stop_or_restart (int argc, char **argv, bool restart)
{
  struct lc_opts o = { 0 };
  cella_error_t err = NULL;
  int t, status,
      first
      = parse (stop_table, &o, argc, argv,
               restart ? "cella restart [-t SECONDS] CONTAINER..." : "cella stop [-t SECONDS] CONTAINER...",
               restart ? "Stop, then start again, each container."
                       : "Stop containers: SIGTERM, then SIGKILL after the timeout. The restart policy is not applied.",
               1, &status);
  if (first > 0)
    {
      if (parse_timeout (o.timeout, &t, &err) < 0)
        status = cella_error_print (&err);
      else
        status = each_parallel (argc, argv, first, restart ? do_restart : do_stop, &t);
    }
  lc_opts_free (&o);
  return status;
}

int
cmd_stop (int argc, char **argv)
{
  return stop_or_restart (argc, argv, false);
}

int
cmd_restart (int argc, char **argv)
{
  return stop_or_restart (argc, argv, true);
}

static int
do_kill (const char *id, void *ud, cella_error_t *err)
{
  return ctr_kill (id, *(int *) ud, err);
}

int
cmd_kill (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  int sig, status = 0,
           first = parse (kill_table, &o, argc, argv, "cella kill [-s SIGNAL] CONTAINER...",
                          "Send a signal (default KILL) to the main process of running containers.", 1, &status);
  if (first > 0)
    {
      sig = signal_parse (o.signal ? o.signal : "KILL");
      if (sig < 0)
        {
          fprintf (stderr, "cella: kill: unknown signal `%s` (a name like TERM or a number)\n", o.signal);
          status = EXIT_CELLA_ERROR;
        }
      else
        status = each (argc, argv, first, true, do_kill, &sig);
    }
  lc_opts_free (&o);
  return status;
}

static int
do_rm (const char *id, void *ud, cella_error_t *err)
{
  const struct lc_opts *o = ud;
  return ctr_rm (id, o->force, o->volumes, err);
}

int
cmd_rm (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  int status, first = parse (rm_table, &o, argc, argv, "cella rm [-f] [-v] CONTAINER...",
                             "Remove containers: their record, writable layer and log.", 1, &status);
  if (first > 0)
    status = each (argc, argv, first, true, do_rm, &o);
  lc_opts_free (&o);
  return status;
}

static int
do_wait (const char *id, void *ud, cella_error_t *err)
{
  int code = ctr_wait (id, err);
  (void) ud;
  if (code < 0)
    return -1;
  printf ("%d\n", code);
  fflush (stdout);
  return 0;
}

static int
do_wait_health (const char *id, void *ud, cella_error_t *err)
{
  return ctr_wait_health (id, *(enum ctr_health *) ud, err);
}

int
cmd_wait (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  int status, first = parse (wait_table, &o, argc, argv, "cella wait [--condition COND] CONTAINER...",
                             "Wait until containers stop; print each exit code. With --condition healthy or\n"
                             "unhealthy: until their health check says so (an error if one stops first).",
                             1, &status);
  if (first > 0)
    {
      const char *c = o.condition ? o.condition : "stopped";
      enum ctr_health want = strcmp (c, "healthy") == 0 ? HEALTH_HEALTHY : HEALTH_UNHEALTHY;
      if (strcmp (c, "stopped") == 0 || strcmp (c, "not-running") == 0 || strcmp (c, "exited") == 0)
        status = each (argc, argv, first, false, do_wait, NULL);
      else if (strcmp (c, "healthy") == 0 || strcmp (c, "unhealthy") == 0)
        status = each (argc, argv, first, false, do_wait_health, &want);
      else
        {
          fprintf (stderr, "cella: wait: --condition `%s`: expected stopped, healthy or unhealthy\n", c);
          status = EXIT_CELLA_ERROR;
        }
    }
  lc_opts_free (&o);
  return status;
}

int
cmd_rename (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  int status,
      first = parse (no_options, &o, argc, argv, "cella rename CONTAINER NEW-NAME", "Rename a container.", 2, &status);
  if (first <= 0)
    return status;
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_rename (id, argv[first + 1], &err) < 0)
    return cella_error_print (&err);
  return 0;
}

int
cmd_monitor (int argc, char **argv)
{
  if (argc >= 7 && argc <= 7 + 16 && strcmp (argv[2], "--resume") == 0)
    {
      struct monitor_resume r = {
        .status = atoi (argv[3]), .listen = atoi (argv[4]), .started_ns = atoll (argv[5]), .delay_ms = atoll (argv[6])
      };
      for (int i = 7; i < argc; i++)
        r.clients[r.nclients++] = atoi (argv[i]);
      if (r.listen >= 0)
        fcntl (r.listen, F_SETFD, FD_CLOEXEC);
      for (size_t i = 0; i < r.nclients; i++)
        fcntl (r.clients[i], F_SETFD, FD_CLOEXEC);
      return monitor_main (argv[1], -1, -1, -1, &r);
    }
  if (argc != 2)
    {
      fprintf (stderr, "cella: __monitor is started by cella itself\n");
      return EXIT_CELLA_ERROR;
    }
  {
    struct stat st;
    bool attached = fstat (4, &st) == 0 && S_ISSOCK (st.st_mode);
    return monitor_main (argv[1], 3, attached ? 4 : -1, 5, NULL);
  }
}

int
cmd_attach (int argc, char **argv)
{
  struct lc_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  struct ctr_state st;
  int fd, status,
      first = parse (no_options, &o, argc, argv, "cella attach CONTAINER",
                     "Attach to a running container's output (and input, and terminal with -t).", 1, &status);
  if (first <= 0)
    return status;
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
    return cella_error_print (&err);
  if (st.status != CTR_RUNNING)
    {
      cella_error (&err, 0, "container `%s` is not running (status: %s)", argv[first], ctr_status_name (st.status));
      ctr_state_clear (&st);
      return cella_error_print (&err);
    }
  fd = attach_connect (id, &err);
  if (fd < 0)
    {
      ctr_state_clear (&st);
      return cella_error_print (&err);
    }
  status = attach_client (fd, st.tty, true);
  ctr_state_clear (&st);
  close (fd);
  if (status < 0 && (status = ctr_wait (id, &err)) < 0)
    return cella_error_print (&err);
  return status;
}
