/* OCI exec (a process joins a running container) and ps (its processes). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../util/options.h"
#include "../util/caps.h"
#include "../cgroup/cgroup.h"
#include "../ns/ns.h"
#include "../plan/build.h"
#include "../util/proc.h"
#include "cli.h"
#include "oci.h"

/* ---- the container's processes ---- */

static bool
same_pidns (pid_t pid, const struct stat *ns)
{
  char path[64];
  struct stat st;
  snprintf (path, sizeof path, "/proc/%d/ns/pid", (int) pid);
  return stat (path, &st) == 0 && st.st_ino == ns->st_ino && st.st_dev == ns->st_dev;
}

static pid_t
parent_of (pid_t pid)
{
  struct proc_stat st;
  return proc_stat_read (pid, &st) < 0 ? -1 : st.ppid;
}

/* Without a cgroup: the processes in the init's pid namespace when it has its own, else the
 * init and its descendants. */
static int
pids_from_proc (const struct oci_state *st, bool own_pidns, pid_t **pids, size_t *n, cella_error_t *err)
{
  char path[64];
  struct stat ns;
  DIR *d = opendir ("/proc");
  struct dirent *e;
  size_t cap = 16;
  if (d == NULL)
    return cella_error (err, errno, "read /proc");
  snprintf (path, sizeof path, "/proc/%d/ns/pid", (int) st->pid);
  if (stat (path, &ns) < 0)
    {
      closedir (d);
      return cella_error (err, errno, "container `%s` is not running", st->id);
    }
  *pids = xmalloc (cap * sizeof **pids);
  *n = 0;
  (*pids)[(*n)++] = st->pid;
  while ((e = readdir (d)))
    {
      long long v = parse_uint (e->d_name, 1u << 30);
      pid_t pid = (pid_t) v, q = pid;
      bool in = false;
      if (v <= 0 || pid == st->pid)
        continue;
      if (own_pidns)
        in = same_pidns (pid, &ns);
      else
        for (int depth = 0; depth < 64 && q > 1 && !in; depth++)
          in = (q = parent_of (q)) == st->pid;
      if (!in)
        continue;
      if (*n == cap)
        *pids = xrealloc (*pids, (cap *= 2) * sizeof **pids);
      (*pids)[(*n)++] = pid;
    }
  closedir (d);
  return 0;
}

int
oci_container_pids (const struct oci_ctx *c, const struct oci_state *st, pid_t **pids, size_t *n, cella_error_t *err)
{
  cleanup_plan struct plan *p = NULL;
  struct cgroup_dirs cg = { 0 };
  bool own_pidns = true;
  *pids = NULL;
  *n = 0;
  if (oci_load_plan (c, st->id, &p, NULL) == 0)
    {
      own_pidns = (p->ns & PLAN_NS_PID) != 0;
      if (cgroup_path_of (p, &cg, NULL) == 0 && cgroup_pids (&cg, pids, n, NULL) == 0 && *n > 0)
        {
          cgroup_dirs_clear (&cg);
          return 0;
        }
      cgroup_dirs_clear (&cg);
      free (*pids);
      *pids = NULL;
      *n = 0;
    }
  return pids_from_proc (st, own_pidns, pids, n, err);
}

/* ---- ps ---- */

struct ps_opts {
  char *format;
};
static const struct cli_option ps_table[] = {
  { "format", 'f', OPT_STRING, offsetof (struct ps_opts, format), "table|json", "Output format (default table)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static char *
cmdline_of (pid_t pid)
{
  char path[64];
  char *text = NULL;
  size_t len = 0;
  snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
  if (read_file (path, &text, &len, NULL) < 0 || len == 0)
    {
      free (text);
      return xstrdup ("?");
    }
  for (size_t i = 0; i + 1 < len; i++)
    if (text[i] == '\0')
      text[i] = ' ';
  return text;
}

int
oci_cmd_ps (struct oci_ctx *c, int argc, char **argv)
{
  struct ps_opts o = { 0 };
  cella_error_t err = NULL;
  struct oci_state st = { 0 };
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  int help = 0, first = cli_parse (ps_table, &o, argc - 1, argv + 1, &help, &err), r = 0;
  bool json;
  if (first < 0)
    return oci_fail (c, &err);
  first++;
  if (help)
    {
      cli_print_help ("cella ps [--format table|json] ID", "List the processes of a container.", ps_table);
      free (o.format);
      return 0;
    }
  json = o.format && strcmp (o.format, "json") == 0;
  if (o.format && !json && strcmp (o.format, "table") != 0)
    r = cella_error (&err, 0, "ps: --format `%s`: expected table or json", o.format);
  else if (first >= argc)
    r = cella_error (&err, 0, "ps: a container id is required (usage: cella ps [--format json] ID)");
  else if ((r = oci_load (c, argv[first], &st, &err)) == 0)
    {
      if (strcmp (oci_state_status (c->root, &st), "stopped") == 0)
        r = cella_error (&err, 0, "container `%s` is not running", st.id);
      else
        r = oci_container_pids (c, &st, &pids, &n, &err);
    }
  if (r == 0 && json)
    {
      printf ("[");
      for (size_t i = 0; i < n; i++)
        printf ("%s%d", i ? "," : "", (int) pids[i]);
      printf ("]\n");
    }
  else if (r == 0)
    {
      printf ("%-8s %-8s %s\n", "PID", "PPID", "CMD");
      for (size_t i = 0; i < n; i++)
        {
          cleanup_free char *cmd = cmdline_of (pids[i]);
          printf ("%-8d %-8d %s\n", (int) pids[i], (int) parent_of (pids[i]), cmd);
        }
    }
  oci_state_clear (&st);
  free (o.format);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- exec ---- */

struct exec_opts {
  char *process, *console_socket, *cwd, *user, *pid_file, *preserve_fds, *process_label, *apparmor, *cgroup;
  char **env, **caps, **gids;
  bool tty, detach, no_new_privs, ignore_paused;
};
#define EO(f) offsetof (struct exec_opts, f)
static const struct cli_option exec_table[] = {
  { "process", 'p', OPT_STRING, EO (process), "FILE", "The process, as config.json's `process` object" },
  { "tty", 't', OPT_FLAG, EO (tty), NULL, "Give it a terminal (the master goes to --console-socket)" },
  { "console-socket", 0, OPT_STRING, EO (console_socket), "SOCKET", "Send the pty master there" },
  { "cwd", 0, OPT_STRING, EO (cwd), "DIR", "Working directory" },
  { "env", 'e', OPT_LIST, EO (env), "KEY=VALUE", "Set an environment variable" },
  { "user", 'u', OPT_STRING, EO (user), "UID[:GID]", "Run as this user" },
  { "additional-gids", 'g', OPT_LIST, EO (gids), "GID", "A supplementary group" },
  { "cap", 'c', OPT_LIST, EO (caps), "CAP", "Add a capability (CAP_NET_ADMIN or NET_ADMIN)" },
  { "no-new-privs", 0, OPT_FLAG, EO (no_new_privs), NULL, "Set no_new_privs" },
  { "detach", 'd', OPT_FLAG, EO (detach), NULL, "Return once it runs" },
  { "pid-file", 0, OPT_STRING, EO (pid_file), "FILE", "Write its pid there" },
  { "preserve-fds", 0, OPT_STRING, EO (preserve_fds), "N", "Pass fds 3 .. 3+N-1 into it" },
  { "process-label", 0, OPT_STRING, EO (process_label), "LABEL", "Accepted (no SELinux here)" },
  { "apparmor", 0, OPT_STRING, EO (apparmor), "PROFILE", "Accepted (not applied)" },
  { "cgroup", 0, OPT_STRING, EO (cgroup), "PATH", "Accepted (it joins the container's cgroup)" },
  { "ignore-paused", 0, OPT_FLAG, EO (ignore_paused), NULL, "Allow exec in a paused container" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static void
exec_opts_free (struct exec_opts *o)
{
  free (o->process);
  free (o->console_socket);
  free (o->cwd);
  free (o->user);
  free (o->pid_file);
  free (o->preserve_fds);
  free (o->process_label);
  free (o->apparmor);
  free (o->cgroup);
  strv_free (o->env);
  strv_free (o->caps);
  strv_free (o->gids);
}

static int
parse_id (const char *what, const char *s, unsigned *out, cella_error_t *err)
{
  long long v = parse_uint (s, 0xfffffffeu);
  if (v < 0)
    return cella_error (err, 0, "%s `%s`: not a number", what, s);
  *out = (unsigned) v;
  return 0;
}

/* The process from the command line: COMMAND ARGS with the container's env, cwd and caps. */
static int
process_from_args (const struct oci_ctx *c, const struct exec_opts *o, char **args, struct plan *p, cella_error_t *err)
{
  struct plan_process *pr = &p->process;
  strv_free (pr->argv);
  pr->argv = strv_dup (args);
  for (size_t i = 0; o->env && o->env[i]; i++)
    env_set (&pr->env, o->env[i]);
  if (o->cwd)
    {
      free (pr->cwd);
      pr->cwd = xstrdup (o->cwd);
    }
  free (pr->user);
  pr->user = NULL;
  if (o->user)
    {
      cleanup_free char *u = xstrdup (o->user);
      char *colon = strchr (u, ':');
      unsigned uid = 0, gid = 0;
      if (colon)
        *colon = '\0';
      if (parse_id ("--user", u, &uid, err) < 0 || (colon && parse_id ("--user", colon + 1, &gid, err) < 0))
        return -1;
      pr->uid = uid;
      pr->gid = gid;
    }
  if (o->gids)
    {
      free (pr->groups);
      pr->ngroups = strv_len (o->gids);
      pr->groups = xmalloc (pr->ngroups * sizeof *pr->groups);
      for (size_t i = 0; i < pr->ngroups; i++)
        {
          unsigned g = 0;
          if (parse_id ("--additional-gids", o->gids[i], &g, err) < 0)
            return -1;
          pr->groups[i] = g;
        }
    }
  for (size_t i = 0; o->caps && o->caps[i]; i++)
    {
      const char *name = strncasecmp (o->caps[i], "CAP_", 4) == 0 ? o->caps[i] + 4 : o->caps[i];
      cella_error_t unknown = NULL;
      /* runtime-spec 1.1: an unknown capability is logged and ignored */
      if (caps_modify (&pr->caps, name, true, &unknown) < 0)
        {
          oci_log (c, "warning", "exec --cap `%s`: %s: ignored", o->caps[i], unknown->msg);
          cella_error_free (&unknown);
          continue;
        }
      if (pr->capsets.set)
        {
          uint64_t one = 0;
          caps_modify (&one, name, true, NULL);
          pr->capsets.bounding |= one;
          pr->capsets.effective |= one;
          pr->capsets.permitted |= one;
        }
    }
  pr->tty = o->tty;
  return 0;
}

static int
process_from_file (const struct oci_ctx *c, const char *file, struct plan *p, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  struct plan_process pr;
  if (read_file (file, &text, NULL, err) < 0)
    return -1;
  if (oci_process_parse (text, file, &pr, err) < 0)
    return -1;
  if (oci_check_grantable_caps (p, &pr, err) < 0)
    {
      oci_process_clear (&pr);
      return -1;
    }
  oci_log_warnings (c, &pr);
  /* user.uid, gid and additionalGids are the whole answer: not looked up in the container's
   * /etc/passwd and /etc/group as a name given to `exec --user` would be */
  free (pr.user);
  pr.user = NULL;
  oci_process_clear (&p->process);
  p->process = pr;
  return 0;
}

struct exec_started {
  const struct oci_ctx *c;
  const char *pid_file;
  struct cgroup_dirs *late_cgroup; /* --ignore-paused: joined by the started process, not by us */
  const struct plan *p;
  pid_t init_pid;
};

static int
exec_listener (int fd, pid_t pid, void *ud, cella_error_t *err)
{
  struct exec_started *es = ud;
  return oci_seccomp_listener_send (es->p, "running", es->init_pid, fd, pid, err);
}

static void
exec_started_cb (const struct ns_proc *proc, void *ud)
{
  struct exec_started *es = ud;
  cella_error_t err = NULL;
  if (es->late_cgroup && cgroup_join (es->late_cgroup, proc->pid, &err) < 0)
    {
      oci_log (es->c, "warning", "exec: not in the container's cgroup: %s", err->msg);
      cella_error_free (&err);
    }
  if (es->pid_file && oci_write_pid_file (es->pid_file, proc->pid, &err) < 0)
    {
      oci_log (es->c, "warning", "%s", err->msg);
      cella_error_free (&err);
    }
}

static int
do_exec (struct oci_ctx *c, const struct exec_opts *o, const char *id, char **args, cella_error_t *err)
{
  struct oci_state st = { 0 };
  cleanup_plan struct plan *p = NULL;
  cleanup_close int console = -1;
  struct ns_launch l = NS_LAUNCH_INIT;
  struct exec_started es = { c, o->pid_file, NULL, NULL, 0 };
  struct cgroup_dirs cg = { 0 };
  const char *status;
  pid_t pid = -1;
  int r = -1;

  if (o->preserve_fds && oci_parse_count ("--preserve-fds", o->preserve_fds, &l.preserve_fds, err) < 0)
    return -1;
  if (oci_pid_file_check (o->pid_file, err) < 0)
    return -1;
  oci_plug_fds (l.preserve_fds);
  if (oci_load (c, id, &st, err) < 0)
    return -1;
  status = oci_state_status (c->root, &st);
  if (strcmp (status, "running") != 0 && strcmp (status, "created") != 0
      && !(strcmp (status, "paused") == 0 && o->ignore_paused))
    {
      cella_error (err, 0, "cannot exec in container `%s`: it is %s", id, status);
      goto out;
    }
  if (oci_load_plan (c, id, &p, err) < 0)
    goto out;
  if (o->process ? process_from_file (c, o->process, p, err) < 0 : process_from_args (c, o, args, p, err) < 0)
    goto out;
  if (p->process.argv == NULL || p->process.argv[0] == NULL)
    {
      cella_error (err, 0, "exec: no command (give --process FILE or COMMAND [ARG...])");
      goto out;
    }
  if (o->process && o->tty)
    p->process.tty = true;
  if (o->no_new_privs)
    p->process.no_new_privs = true;
  if (p->process.cwd == NULL)
    p->process.cwd = xstrdup ("/");
  if (!p->process.tty)
    p->process.stdin_open = true;
  if (p->process.tty && o->detach && o->console_socket == NULL)
    {
      cella_error (err, 0, "exec --tty --detach: --console-socket is required (the pty master goes there)");
      goto out;
    }
  oci_listen_fds (&p->process, &l.preserve_fds);
  if (o->console_socket && (console = oci_connect_console (o->console_socket, err)) < 0)
    goto out;
  l.console_socket = console;
  l.detached = o->detach;
  l.started = exec_started_cb;
  l.seccomp_listener = exec_listener;
  es.p = p;
  es.init_pid = st.pid;
  l.ud = &es;
  /* the new process is a child of this one: joining the cgroup here puts it there too. Not in a
   * paused container (--ignore-paused): its frozen cgroup would freeze this process, which must
   * start the new one and return; that one joins once it runs, and is frozen with the rest. */
  l.cgroup_later = strcmp (status, "paused") == 0;
  if (l.cgroup_later && cgroup_path_of (p, &cg, NULL) == 0)
    es.late_cgroup = &cg;
  else if (!l.cgroup_later && cgroup_path_of (p, &cg, NULL) == 0)
    {
      cella_error_t e2 = NULL;
      if (cgroup_join (&cg, 0, &e2) < 0)
        {
          oci_log (c, "debug", "exec: not in the container's cgroup: %s", e2->msg);
          cella_error_free (&e2);
        }
    }
  if (es.late_cgroup == NULL)
    cgroup_dirs_clear (&cg);
  r = ns_exec_launch (p, st.pid, &l, &pid, err);
  cgroup_dirs_clear (&cg);
out:
  oci_state_clear (&st);
  return r;
}

int
oci_cmd_exec (struct oci_ctx *c, int argc, char **argv)
{
  struct exec_opts o = { 0 };
  cella_error_t err = NULL;
  int help = 0, first = cli_parse (exec_table, &o, argc - 1, argv + 1, &help, &err), r = -1;
  if (first < 0)
    goto out;
  first++;
  if (help)
    {
      cli_print_help ("cella exec [OPTIONS] ID [COMMAND [ARG...]]",
                      "Run a process in a running container (--process FILE, or COMMAND); without -d, wait for it "
                      "and return its exit status.",
                      exec_table);
      exec_opts_free (&o);
      return 0;
    }
  if (first >= argc)
    cella_error (&err, 0, "exec: a container id is required (usage: cella exec [OPTIONS] ID COMMAND...)");
  else if (o.process == NULL && first + 1 >= argc)
    cella_error (&err, 0, "exec: give --process FILE or a COMMAND after the container id");
  else
    r = do_exec (c, &o, argv[first], argv + first + 1, &err);
out:
  exec_opts_free (&o);
  if (r < 0)
    return oci_fail (c, &err);
  return r;
}
