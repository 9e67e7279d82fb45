/* cella exec: run a command in a running container, and cella cp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/container.h"
#include "../engine/copy.h"
#include "../backend/backend.h"
#include "../plan/build.h"
#include "commands.h"
#include "../util/options.h"
#include "../util/proc.h"

struct exec_opts {
  bool interactive, tty, detach;
  char **env;
  char *workdir, *user;
};

#define O(f) offsetof (struct exec_opts, f)
static const struct cli_option exec_table[] = {
  { "detach", 'd', OPT_FLAG, O (detach), NULL,
    "Run the command in the background: return once it has started, its output discarded" },
  { "interactive", 'i', OPT_FLAG, O (interactive), NULL, "Keep stdin open and pass it to the command" },
  { "tty", 't', OPT_FLAG, O (tty), NULL, "Allocate a pseudo-terminal" },
  { "env", 'e', OPT_LIST, O (env), "KEY=VALUE", "Set an environment variable (on top of the container's)" },
  { "workdir", 'w', OPT_STRING, O (workdir), "DIR", "Working directory (default: the container's)" },
  { "user", 'u', OPT_STRING, O (user), "USER[:GROUP]", "Run as this user (default: the container's)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static const char exec_usage[] = "cella exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG...]";
static const char exec_summary[]
    = "Run a command in a running container: in all its namespaces, with its capabilities, seccomp\n"
      "filter and environment (a VM's: by its guest init, -u resolved in the guest). Exit status:\n"
      "the command's, or 125/126/127 as for `cella run`. With -d: 0 once the command has started in\n"
      "the background (stdin, stdout and stderr /dev/null; its exit status is not kept), or\n"
      "125/126/127 with the error when it could not be started (in a vm: 0 once it is sent).";

static void
exec_opts_free (struct exec_opts *o)
{
  strv_free (o->env);
  free (o->workdir);
  free (o->user);
}

/* The container's process, changed by the exec flags. */
static int
exec_process (struct plan *p, const struct exec_opts *o, char **argv, cella_error_t *err)
{
  struct plan_process *pr = &p->process;
  strv_free (pr->argv);
  pr->argv = strv_dup (argv);
  for (size_t i = 0; o->env && o->env[i]; i++)
    if (parse_env_line (o->env[i], &pr->env, err) < 0)
      return -1;
  if (o->workdir)
    {
      if (o->workdir[0] != '/')
        return cella_error (err, 0, "exec: -w `%s`: must be an absolute path", o->workdir);
      free (pr->cwd);
      pr->cwd = xstrdup (o->workdir);
    }
  if (o->user)
    {
      free (pr->user);
      pr->user = xstrdup (o->user);
    }
  else
    {
      /* already resolved at create: keep uid/gid/groups, no lookup */
      free (pr->user);
      pr->user = NULL;
    }
  pr->tty = o->tty;
  pr->stdin_open = o->interactive;
  pr->init = false;
  return 0;
}

/* What the daemon of exec -d reports when the command did not start (nothing: it started). */
struct detached_failure {
  int status, errno_;
  char msg[1024];
};

/* exec -d: the exec is run by a daemon of its own (proc_daemonize: a session of its own, stdio
 * /dev/null, not waited for). The caller waits only until the backend says the command runs
 * (backend_exec_started closes the report pipe: 0) or the daemon reports why it did not start
 * (-1 with *err and its status: 126/127 as the foreground exec gives them). */
static int
exec_detached (const struct backend *b, struct plan *p, const char *id, pid_t pid, cella_error_t *err)
{
  struct detached_failure f;
  int fds[2], wr, r;
  ssize_t n;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  /* above stdio, which the daemon's /dev/null replaces (a caller may have started us without) */
  wr = fcntl (fds[1], F_DUPFD_CLOEXEC, 3);
  close (fds[1]);
  if (wr < 0)
    {
      close (fds[0]);
      return cella_error (err, errno, "pipe");
    }
  r = proc_daemonize (err);
  if (r == 0)
    {
      cella_error_t e = NULL;
      close (fds[0]);
      p->exec_started_fd = wr;
      cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (b, dir);
      r = b->exec (p, pid, state, &e);
      if (r < 0 && p->exec_started_fd > 0)
        {
          memset (&f, 0, sizeof f);
          f.status = e ? e->status : EXIT_CELLA_ERROR;
          f.errno_ = e ? e->errno_ : 0;
          snprintf (f.msg, sizeof f.msg, "%s", e && e->msg ? e->msg : "exec: the command did not start");
          if (write_all (wr, &f, sizeof f) < 0) /* at most PIPE_BUF: in one piece */
            _exit (EXIT_CELLA_ERROR);
        }
      cella_error_free (&e);
      _exit (r < 0 ? EXIT_CELLA_ERROR : r);
    }
  close (wr);
  if (r < 0)
    {
      close (fds[0]);
      return -1;
    }
  do
    n = read (fds[0], &f, sizeof f);
  while (n < 0 && errno == EINTR);
  close (fds[0]);
  if (n != (ssize_t) sizeof f)
    return 0; /* closed: the command runs */
  f.msg[sizeof f.msg - 1] = '\0';
  return cella_error_status (err, f.status, f.errno_, "%s", f.msg);
}

int
cmd_exec (int argc, char **argv)
{
  struct exec_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  cleanup_plan struct plan *p = NULL;
  struct ctr_state st = { 0 };
  int help, first, status = -1;
  const struct backend *b;

  first = cli_parse (exec_table, &o, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    goto out;
  if (help)
    {
      cli_print_help (exec_usage, exec_summary, exec_table);
      exec_opts_free (&o);
      return 0;
    }
  first += 1;
  if (argc - first < 2)
    {
      cella_error (&err, 0, "exec: a container and a command are required (usage: %s)", exec_usage);
      goto out;
    }
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
    goto out;
  if (st.status != CTR_RUNNING || !proc_alive (st.pid, st.pid_start))
    {
      cella_error (&err, 0, "container `%s` is not running (status: %s): start it first with `cella start %s`",
                   argv[first], ctr_status_name (st.status), argv[first]);
      goto out;
    }
  if (st.paused)
    {
      cella_error (&err, 0, "container `%s` is paused: unpause it first with `cella unpause %s`", argv[first],
                   argv[first]);
      goto out;
    }
  if (o.detach && (o.interactive || o.tty))
    {
      cella_error (&err, 0, "exec: -d cannot be used with -i or -t (a background command has no terminal or input)");
      goto out;
    }
  if (ctr_plan_load (id, &p, &err) < 0 || exec_process (p, &o, argv + first + 1, &err) < 0)
    goto out;
  b = backend_of (p);
  if (b->exec == NULL)
    cella_error (&err, 0, "exec is not supported by the %s backend yet", b->name);
  else if (o.detach)
    status = exec_detached (b, p, id, st.pid, &err);
  else
    {
      cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (b, dir);
      status = b->exec (p, st.pid, state, &err);
    }
out:
  ctr_state_clear (&st);
  exec_opts_free (&o);
  return status < 0 ? cella_error_print (&err) : status;
}

/* NAME:PATH names a container path when NAME is a container reference (no `/` before the
 * colon); anything else is a host path, like docker's rule. */
static char *
split_container (const char *arg, const char **path)
{
  const char *colon = strchr (arg, ':');
  const char *slash = strchr (arg, '/');
  if (colon == NULL || colon == arg || (slash && slash < colon))
    return NULL;
  *path = colon + 1;
  return strndup (arg, (size_t) (colon - arg));
}

int
cmd_cp (int argc, char **argv)
{
  static const struct cli_option no_options[] = { { NULL, 0, 0, 0, NULL, NULL } };
  static const char usage[] = "cella cp CONTAINER:SRC-PATH HOST-DEST | cella cp HOST-SRC CONTAINER:DEST-PATH";
  cella_error_t err = NULL;
  cleanup_free char *src_ref = NULL, *dst_ref = NULL, *id = NULL;
  const char *src_path = NULL, *dst_path = NULL;
  int help, first = cli_parse (no_options, NULL, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    return cella_error_print (&err);
  if (help)
    {
      cli_print_help (usage,
                      "Copy files between a container and the host (docker's rules for files, dirs and `dir/.`).\n"
                      "Works on running and stopped containers (a vm container: while it runs, through its guest);\n"
                      "never writes outside the container's root.",
                      no_options);
      return 0;
    }
  first += 1;
  if (argc - first != 2)
    {
      cella_error (&err, 0, "cp: a source and a destination are required (usage: %s)", usage);
      return cella_error_print (&err);
    }
  src_ref = split_container (argv[first], &src_path);
  dst_ref = split_container (argv[first + 1], &dst_path);
  if ((src_ref == NULL) == (dst_ref == NULL))
    {
      cella_error (&err, 0, "cp: exactly one of `%s` and `%s` must be CONTAINER:PATH", argv[first], argv[first + 1]);
      return cella_error_print (&err);
    }
  if (ctr_lookup (src_ref ? src_ref : dst_ref, &id, &err) < 0
      || ctr_copy (id, dst_ref != NULL, src_ref ? src_path : dst_path, src_ref ? argv[first + 1] : argv[first], &err)
             < 0)
    return cella_error_print (&err);
  return 0;
}
