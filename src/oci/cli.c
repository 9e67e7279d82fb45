/* The runc-compatible command line: global options, how `cella` knows it is driven as an OCI
 * runtime, and the lifecycle commands (create, start, run, state, kill, delete, list).
 * exec and ps: exec.c; pause, resume, update, events: ctl.c; spec, features: spec.c. docs/oci.md. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../util/options.h"
#include "../util/caps.h"
#include "../cgroup/cgroup.h"
#include "../ns/ns.h"
#include "../plan/build.h"
#include "../util/selfexec.h"
#include "oci.h"

#ifndef CELLA_VERSION
#define CELLA_VERSION "0.1.0"
#endif

/* ---- logging and errors ---- */

static void
now_rfc3339 (char *buf, size_t len)
{
  struct timespec ts;
  struct tm tm;
  char base[32];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf, len, "%s.%09ldZ", base, ts.tv_nsec);
}

static void
log_line (const struct oci_ctx *c, const char *level, const char *msg)
{
  char t[64];
  cleanup_free char *line = NULL;
  cleanup_close int fd = -1;
  if (c == NULL || c->log == NULL)
    return;
  now_rfc3339 (t, sizeof t);
  if (c->log_json)
    {
      json_t *o = json_pack ("{s:s, s:s, s:s}", "level", level, "msg", msg, "time", t);
      char *s = o ? json_dumps (o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
      json_decref (o);
      line = xasprintf ("%s\n", s ? s : "{}");
      free (s);
    }
  else
    line = xasprintf ("time=\"%s\" level=%s msg=\"%s\"\n", t, level, msg);
  fd = open (c->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    write_all (fd, line, strlen (line));
}

void
oci_log (const struct oci_ctx *c, const char *level, const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;
  if ((strcmp (level, "debug") == 0 && !c->debug) || (strcmp (level, "info") == 0 && !c->log))
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    return;
  if (c->log)
    log_line (c, level, msg);
  else
    fprintf (stderr, "cella: %s: %s\n", level, msg);
}

void
oci_log_warnings (const struct oci_ctx *c, struct plan_process *pr)
{
  for (size_t i = 0; pr->warnings && pr->warnings[i]; i++)
    oci_log (c, "warning", "%s", pr->warnings[i]);
  strv_free (pr->warnings);
  pr->warnings = NULL;
}

int
oci_fail (const struct oci_ctx *c, cella_error_t *err)
{
  if (err && *err)
    {
      cleanup_free char *msg
          = (*err)->errno_ ? xasprintf ("%s: %s", (*err)->msg, strerror ((*err)->errno_)) : xstrdup ((*err)->msg);
      log_line (c, "error", msg);
      fprintf (stderr, "cella: %s\n", msg);
      cella_error_free (err);
    }
  return 1;
}

/* ---- detection: is this invocation the OCI runtime's? ---- */

static const char *const global_value_flags[] = { "--root", "--log", "--log-format", "--rootless", "--criu", NULL };
static const char *const global_bool_flags[] = { "--debug", "--systemd-cgroup", NULL };
static const char *const oci_only[] = { "state", "delete", "list", "spec", "features", "resume", "oci", NULL };

static bool
in_list (const char *const *l, const char *s, size_t n)
{
  for (; l && *l; l++)
    if (strlen (*l) == n && strncmp (*l, s, n) == 0)
      return true;
  return false;
}

static bool
is_global_flag (const char *a)
{
  size_t n = strcspn (a, "=");
  return in_list (global_value_flags, a, n) || in_list (global_bool_flags, a, n);
}

/* The first operand of a command's argv (after its options), NULL when none. Options that take
 * a value are listed so that their value is not taken for the operand. */
static const char *
first_operand (int argc, char **argv, const char *const *value_opts)
{
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--") == 0)
        return i + 1 < argc ? argv[i + 1] : NULL;
      if (a[0] != '-' || a[1] == '\0')
        return a;
      if (strchr (a, '=') == NULL && in_list (value_opts, a, strlen (a)))
        i++;
    }
  return NULL;
}

/* One of `opts` among the options before the first operand; the values of `value_opts` (given
 * as a separate argument) are skipped, not taken for that operand. */
static bool
has_option (int argc, char **argv, const char *const *opts, const char *const *value_opts)
{
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--") == 0 || argv[i][0] != '-')
        return false;
      if (in_list (opts, argv[i], strcspn (argv[i], "=")))
        return true;
      if (strchr (argv[i], '=') == NULL && in_list (value_opts, argv[i], strlen (argv[i])))
        i++;
    }
  return false;
}

static bool
oci_container_exists (const char *id)
{
  cleanup_free char *root = oci_root_default (), *dir = NULL, *path = NULL;
  if (id == NULL || oci_dir (root, id, &dir, NULL) < 0)
    return false;
  path = xasprintf ("%s/state.json", dir);
  return access (path, F_OK) == 0;
}

bool
oci_cli_wanted (int argc, char **argv)
{
  static const char *const bundle_opts[] = { "--bundle", "-b", NULL };
  static const char *const create_values[] = { "--pid-file", "--console-socket", "--preserve-fds", NULL };
  /* (not --detach/-d: the engine's exec has it too; runc's callers pass --process or --pid-file
   * with it, or name an OCI container) */
  static const char *const exec_only[] = { "--process",
                                           "-p",
                                           "--pid-file",
                                           "--console-socket",
                                           "--preserve-fds",
                                           "--cwd",
                                           "--cap",
                                           "-c",
                                           "--no-new-privs",
                                           "--additional-gids",
                                           "-g",
                                           "--process-label",
                                           "--apparmor",
                                           NULL };
  static const char *const exec_values[] = { "--process",
                                             "-p",
                                             "--pid-file",
                                             "--console-socket",
                                             "--preserve-fds",
                                             "--cwd",
                                             "--cap",
                                             "-c",
                                             "--env",
                                             "-e",
                                             "--user",
                                             "-u",
                                             "--additional-gids",
                                             "-g",
                                             "--process-label",
                                             "--apparmor",
                                             "--cgroup",
                                             "-w",
                                             "--workdir",
                                             NULL };
  static const char *const kill_values[] = { "-s", "--signal", NULL };
  static const char *const kill_all[] = { "--all", "-a", NULL };
  static const char *const ps_values[] = { "--format", "-f", NULL };
  static const char *const update_only[]
      = { "--resources",       "-r", "--cpu-period", "--cpu-quota", "--cpuset-cpus", "--cpuset-mems", "--blkio-weight",
          "--l3-cache-schema", NULL };
  static const char *const events_only[] = { "--stats", "--interval", NULL };
  const char *base = strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
  size_t blen = strlen (base);
  const char *cmd;

  /* (b) installed under a runc-like name: runc, cella-runc, anything-runc */
  if (strcmp (base, "runc") == 0 || (blen > 5 && strcmp (base + blen - 5, "-runc") == 0))
    return true;
  if (argc < 2)
    return false;
  cmd = argv[1];
  /* (a) a runc global option before the command */
  if (cmd[0] == '-')
    return is_global_flag (cmd);
  /* (c) a command only the OCI command line has */
  if (in_list (oci_only, cmd, strlen (cmd)))
    return true;
  /* (d) create/run with a bundle; exec with options only runc's exec has; or the operand names
   * a container in the default OCI state root */
  if (strcmp (cmd, "create") == 0 || strcmp (cmd, "run") == 0)
    return has_option (argc - 1, argv + 1, bundle_opts, create_values);
  if (strcmp (cmd, "exec") == 0)
    return has_option (argc - 1, argv + 1, exec_only, exec_values)
           || oci_container_exists (first_operand (argc - 1, argv + 1, exec_values));
  if (strcmp (cmd, "kill") == 0)
    return has_option (argc - 1, argv + 1, kill_all, kill_values)
           || oci_container_exists (first_operand (argc - 1, argv + 1, kill_values));
  if (strcmp (cmd, "start") == 0)
    return oci_container_exists (first_operand (argc - 1, argv + 1, NULL));
  if (strcmp (cmd, "ps") == 0)
    return oci_container_exists (first_operand (argc - 1, argv + 1, ps_values));
  /* pause, update, events: the engine's too (docs/engine.md); the OCI one's when its own options
   * are given or the last argument names a container in the default OCI state root */
  if (strcmp (cmd, "update") == 0)
    return has_option (argc - 1, argv + 1, update_only, NULL) || oci_container_exists (argv[argc - 1]);
  if (strcmp (cmd, "events") == 0)
    return has_option (argc - 1, argv + 1, events_only, NULL)
           || (argc > 2 && argv[argc - 1][0] != '-' && oci_container_exists (argv[argc - 1]));
  if (strcmp (cmd, "pause") == 0)
    return argc == 3 && oci_container_exists (argv[2]);
  return false;
}

/* ---- shared helpers ---- */

int
oci_load (const struct oci_ctx *c, const char *id, struct oci_state *st, cella_error_t *err)
{
  if (id == NULL)
    return cella_error (err, 0, "a container id is required");
  return oci_state_read (c->root, id, st, err);
}

int
oci_load_plan (const struct oci_ctx *c, const char *id, struct plan **p, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/%s/plan.json", c->root, id), *text = NULL;
  if (read_file (path, &text, NULL, err) < 0)
    return -1;
  return plan_from_json (text, p, err);
}

int
oci_pidfd (const struct oci_state *st, cella_error_t *err)
{
  bool zombie;
  int fd = st->pid > 0 ? (int) syscall (SYS_pidfd_open, st->pid, 0) : -1;
  /* the start time checked after the pidfd is held: the pid cannot be reused in between */
  unsigned long long t = oci_proc_start_time (st->pid, &zombie);
  if (fd < 0 || t == 0 || zombie || (st->start_time && t != st->start_time))
    {
      if (fd >= 0)
        close (fd);
      return cella_error (err, 0, "container `%s` is not running", st->id);
    }
  return fd;
}

int
oci_write_pid_file (const char *file, pid_t pid, cella_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", (int) pid);
  cleanup_free char *abs = NULL;
  if (file[0] != '/')
    {
      cleanup_free char *cwd = getcwd (NULL, 0);
      abs = xasprintf ("%s/%s", cwd ? cwd : ".", file);
      file = abs;
    }
  return write_file_volatile (file, buf, (size_t) n, 0644, err);
}

int
oci_pid_file_check (const char *file, cella_error_t *err)
{
  cleanup_free char *dir = NULL;
  const char *slash = file ? strrchr (file, '/') : NULL;
  struct stat st;
  if (file == NULL)
    return 0;
  dir = slash == NULL ? xstrdup (".") : slash == file ? xstrdup ("/") : strndup (file, (size_t) (slash - file));
  if (dir == NULL)
    abort ();
  if (stat (dir, &st) < 0)
    return cella_error (err, errno, "--pid-file `%s`: directory `%s`", file, dir);
  if (!S_ISDIR (st.st_mode))
    return cella_error (err, ENOTDIR, "--pid-file `%s`: `%s`", file, dir);
  return 0;
}

int
oci_parse_count (const char *opt, const char *v, unsigned *out, cella_error_t *err)
{
  long long n = parse_uint (v, 65536);
  if (n < 0)
    return cella_error (err, 0, "%s `%s`: not a number", opt, v);
  *out = (unsigned) n;
  return 0;
}

void
oci_listen_fds (struct plan_process *pr, unsigned *preserve)
{
  const char *v = getenv ("LISTEN_FDS");
  long long n = v ? parse_uint (v, 65536) : -1;
  cleanup_free char *kv = NULL;
  if (n <= 0)
    return;
  kv = xasprintf ("LISTEN_FDS=%lld", n);
  env_set (&pr->env, kv);
  env_set (&pr->env, "LISTEN_PID=1");
  *preserve += (unsigned) n;
}

void
oci_plug_fds (unsigned n)
{
  for (unsigned fd = 3; fd < 3 + n; fd++)
    if (fcntl ((int) fd, F_GETFD) < 0)
      {
        int null = open ("/dev/null", O_RDWR);
        if (null >= 0 && null != (int) fd)
          {
            dup2 (null, (int) fd);
            close (null);
          }
      }
}

int
oci_connect_console (const char *path, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strlen (path) >= sizeof sa.sun_path)
    return cella_error (err, ENAMETOOLONG, "console socket `%s`", path);
  strcpy (sa.sun_path, path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return cella_error (err, errno, "connect to the console socket `%s`", path);
  return steal_fd (&fd);
}

/* ---- loading a bundle ---- */

/* A capability the container asks for and cella does not hold (without a user namespace of its
 * own the container gets at most what cella holds; this test host's bounding set lacks
 * CAP_SYS_RESOURCE) fails create and exec, before anything is made, as runc and crun fail (capset
 * EPERM): runtime-spec 1.1's "SHOULD NOT fail" is for names the runtime does not know, which stay
 * warnings (config.c). A container silently weaker than its config is not what its author asked. */
int
oci_check_grantable_caps (const struct plan *p, const struct plan_process *pr, cella_error_t *err)
{
  const struct plan_capsets *s = &pr->capsets;
  uint64_t missing;
  cleanup_free char *names = NULL;
  if (!s->set || (p->ns & PLAN_NS_USER) || p->ns_path[6])
    return 0;
  missing = (s->effective | s->permitted | s->inheritable | s->ambient | s->bounding) & ~caps_held ();
  if (missing == 0)
    return 0;
  names = caps_to_string (missing);
  return cella_error (err, 0,
                      "process.capabilities: %s cannot be granted: cella does not hold it (the host's bounding set "
                      "lacks it); leave it out of the config, or give the container a user namespace",
                      names);
}

static int
load_bundle (const struct oci_ctx *c, const char *bundle_arg, const char *id, char **bundle, struct plan **out,
             cella_error_t *err)
{
  cleanup_free char *cwd = getcwd (NULL, 0);
  char *abs = realpath (bundle_arg ? bundle_arg : (cwd ? cwd : "."), NULL);
  struct plan *p = NULL;
  if (abs == NULL)
    return cella_error (err, errno, "bundle `%s`", bundle_arg ? bundle_arg : ".");
  *bundle = abs;
  if (oci_config_load (abs, &p, err) < 0)
    return -1;
  if (oci_check_grantable_caps (p, &p->process, err) < 0)
    {
      plan_free (p);
      return -1;
    }
  oci_log_warnings (c, &p->process);
  free (p->id);
  p->id = xstrdup (id);
  p->debug = c->debug;
  p->res.want = true; /* a cgroup of its own when one can be made: ps, kill --all, pause, update */
  if (!p->process.tty)
    p->process.stdin_open = true; /* the runtime's stdio is the container's (conmon's pipes) */
  if (c->rootless && strcmp (c->rootless, "false") == 0 && geteuid () != 0)
    {
      plan_free (p);
      return cella_error (err, EPERM, "--rootless false: cella is not running as root");
    }
  *out = p;
  return 0;
}

static char *
annotations_of (const char *bundle)
{
  cleanup_free char *path = xasprintf ("%s/config.json", bundle);
  json_t *o = json_load_file (path, 0, NULL), *a = json_object_get (o, "annotations");
  char *text = json_is_object (a) ? json_dumps (a, JSON_COMPACT | JSON_PRESERVE_ORDER) : xstrdup ("{}");
  json_decref (o);
  return text;
}

/* ---- create / start / run ---- */

struct create_opts {
  char *bundle, *pid_file, *console_socket, *preserve_fds;
  bool no_pivot, no_new_keyring, detach, keep, no_subreaper;
};
#define CO(f) offsetof (struct create_opts, f)
static const struct cli_option create_table[] = {
  { "bundle", 'b', OPT_STRING, CO (bundle), "DIR", "The bundle: config.json and the root it names (default: .)" },
  { "pid-file", 0, OPT_STRING, CO (pid_file), "FILE", "Write the container's pid there" },
  { "console-socket", 0, OPT_STRING, CO (console_socket), "SOCKET", "Send the pty master there (process.terminal)" },
  { "preserve-fds", 0, OPT_STRING, CO (preserve_fds), "N", "Pass fds 3 .. 3+N-1 into the container" },
  { "no-pivot", 0, OPT_FLAG, CO (no_pivot), NULL, "Accepted (cella always pivots into the root)" },
  { "no-new-keyring", 0, OPT_FLAG, CO (no_new_keyring), NULL, "Accepted (no session keyring is made)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};
static const struct cli_option run_table[] = {
  { "bundle", 'b', OPT_STRING, CO (bundle), "DIR", "The bundle: config.json and the root it names (default: .)" },
  { "pid-file", 0, OPT_STRING, CO (pid_file), "FILE", "Write the container's pid there" },
  { "console-socket", 0, OPT_STRING, CO (console_socket), "SOCKET", "Send the pty master there (process.terminal)" },
  { "preserve-fds", 0, OPT_STRING, CO (preserve_fds), "N", "Pass fds 3 .. 3+N-1 into the container" },
  { "detach", 'd', OPT_FLAG, CO (detach), NULL, "Start it and return at once" },
  { "keep", 0, OPT_FLAG, CO (keep), NULL, "Keep the container's state after it exits (foreground)" },
  { "no-pivot", 0, OPT_FLAG, CO (no_pivot), NULL, "Accepted (cella always pivots into the root)" },
  { "no-new-keyring", 0, OPT_FLAG, CO (no_new_keyring), NULL, "Accepted (no session keyring is made)" },
  { "no-subreaper", 0, OPT_FLAG, CO (no_subreaper), NULL, "Accepted" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static void
create_opts_free (struct create_opts *o)
{
  free (o->bundle);
  free (o->pid_file);
  free (o->console_socket);
  free (o->preserve_fds);
}

/* What the launch's callbacks need: the parent hook (createRuntime, prestart) and, for a
 * foreground run, `started` (the record and the pid file, then poststart). */
struct hook_ctx {
  const struct oci_ctx *c;
  struct plan *p;
  struct oci_state *st;
  const char *pid_file;
  int notify; /* foreground run: the NOTIFY_SOCKET listener, -1 none */
};

static int
parent_hooks (pid_t pid, void *ud, cella_error_t *err)
{
  struct hook_ctx *h = ud;
  /* the (deprecated) prestart hooks see the status crun gives them, and runtime-tools expects */
  cleanup_free char *created = oci_state_json (h->p, "created", pid),
                    *creating = oci_state_json (h->p, "creating", pid);
  if (oci_hooks_run (h->p, HOOK_PRESTART, created, err) < 0
      || oci_hooks_run (h->p, HOOK_CREATE_RUNTIME, creating, err) < 0)
    return -1;
  return 0;
}

static int
init_listener (int fd, pid_t pid, void *ud, cella_error_t *err)
{
  struct hook_ctx *h = ud;
  return oci_seccomp_listener_send (h->p, "creating", pid, fd, pid, err);
}

static bool
has_hooks (const struct plan *p, enum plan_hook_kind k)
{
  return p->nhooks[k] > 0;
}

static void
run_hooks_warn (const struct oci_ctx *c, struct plan *p, enum plan_hook_kind k, const char *status, pid_t pid)
{
  cella_error_t err = NULL;
  cleanup_free char *state = NULL;
  if (!has_hooks (p, k))
    return;
  state = oci_state_json (p, status, pid);
  /* runtime.md: a failed poststart or poststop hook is a warning, and the others still run */
  for (size_t i = 0; i < p->nhooks[k]; i++)
    if (oci_hook_run (&p->hooks[k][i], state, &err) < 0)
      {
        oci_log (c, "warning", "%s hook %zu: %s", plan_hook_name (k), i, err->msg);
        cella_error_free (&err);
      }
}

/* The record of a container being made: written before anything runs, so that `delete` can
 * clean up after a create that died half-way. */
static int
record_new (const struct oci_ctx *c, const char *id, const char *bundle, const struct plan *p, struct oci_state *st,
            cella_error_t *err)
{
  char t[64];
  cleanup_free char *plan_json = plan_to_json (p), *path = xasprintf ("%s/%s/plan.json", c->root, id);
  now_rfc3339 (t, sizeof t);
  st->id = xstrdup (id);
  st->bundle = xstrdup (bundle);
  st->rootfs = xstrdup (p->rootfs);
  st->created = xstrdup (t);
  st->annotations = annotations_of (bundle);
  st->owner = geteuid ();
  if (write_file_volatile (path, plan_json, strlen (plan_json), 0600, err) < 0)
    return -1;
  return oci_state_write (c->root, st, err);
}

/* The container's init runs (or waits on the fifo): its pid into the record and the pid file. */
static int
record_started (const struct oci_ctx *c, struct oci_state *st, pid_t pid, const char *pid_file, cella_error_t *err)
{
  st->pid = pid;
  st->start_time = oci_proc_start_time (pid, NULL);
  if (oci_state_write (c->root, st, err) < 0)
    return -1;
  if (pid_file && oci_write_pid_file (pid_file, pid, err) < 0)
    return -1;
  return 0;
}

static void
cleanup_failed (const struct oci_ctx *c, const char *id, const struct plan *p)
{
  if (p)
    cgroup_remove_plan (p);
  oci_dir_remove (c->root, id, NULL);
}

/* The exec fifo, 0622 whatever our umask, owned by the container's root as the host sees it
 * (runc's way): the init opens it for write once it is the workload's user, which need not be
 * ours nor root (it reaches the fifo only through its O_PATH fd: the state directory stays
 * closed to it). */
static int
make_exec_fifo (const char *fifo, const struct plan *p, cella_error_t *err)
{
  cleanup_close int fd = -1;
  if (mkfifo (fifo, 0622) < 0 || chmod (fifo, 0622) < 0)
    return cella_error (err, errno, "make the exec fifo `%s`", fifo);
  if ((p->ns & PLAN_NS_USER) && geteuid () == 0)
    for (size_t i = 0; i < p->nuid_map; i++)
      if (p->uid_map[i].inside == 0)
        {
          gid_t g = 0;
          for (size_t j = 0; j < p->ngid_map; j++)
            if (p->gid_map[j].inside == 0)
              g = p->gid_map[j].outside;
          if (chown (fifo, p->uid_map[i].outside, g) < 0)
            return cella_error (err, errno, "chown the exec fifo `%s`", fifo);
        }
  fd = open (fifo, O_PATH | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "open the exec fifo `%s`", fifo);
  return steal_fd (&fd);
}

/* create, and run -d: the container's init set up and blocked on the exec fifo; this process
 * then exits, leaving it to whoever reaps our orphans (conmon, a subreaper, or init). */
static int
do_create (struct oci_ctx *c, const struct create_opts *o, const char *id, cella_error_t *err)
{
  cleanup_free char *dir = NULL, *bundle = NULL, *fifo = NULL;
  cleanup_plan struct plan *p = NULL;
  cleanup_close int fifo_fd = -1, console = -1, lock = -1;
  struct oci_state st = { 0 };
  struct ns_launch l = NS_LAUNCH_INIT;
  struct hook_ctx hc;
  struct ns_proc proc;
  int r = -1;

  if (o->preserve_fds && oci_parse_count ("--preserve-fds", o->preserve_fds, &l.preserve_fds, err) < 0)
    return -1;
  if (oci_pid_file_check (o->pid_file, err) < 0)
    return -1;
  oci_plug_fds (l.preserve_fds);
  if (load_bundle (c, o->bundle, id, &bundle, &p, err) < 0)
    return -1;
  oci_listen_fds (&p->process, &l.preserve_fds);
  if (p->process.tty && o->console_socket == NULL)
    return cella_error (err, 0, "process.terminal is true: --console-socket is required (the pty master goes there)");
  if (o->console_socket && (console = oci_connect_console (o->console_socket, err)) < 0)
    return -1;
  if (oci_dir_create (c->root, id, &dir, err) < 0)
    return -1;
  lock = oci_lock (dir, err);
  if (lock < 0 || oci_notify_prepare (dir, p, err) < 0 || record_new (c, id, bundle, p, &st, err) < 0)
    goto fail;
  l.console_socket = console;
  hc.c = c;
  hc.p = p;
  hc.st = &st;
  hc.pid_file = o->pid_file;
  hc.notify = -1;
  l.ud = &hc;
  l.seccomp_listener = init_listener;
  if (has_hooks (p, HOOK_PRESTART) || has_hooks (p, HOOK_CREATE_RUNTIME))
    l.parent_hook = parent_hooks;
  fifo = xasprintf ("%s/exec.fifo", dir);
  if ((fifo_fd = make_exec_fifo (fifo, p, err)) < 0)
    goto fail;
  l.exec_fifo = fifo_fd;
  l.detached = true;
  if (ns_start_launch (p, NULL, &l, &proc, err) < 0)
    goto fail;
  close (proc.pidfd);
  st.root_mount = proc.root_mount;
  if (record_started (c, &st, proc.pid, o->pid_file, err) < 0)
    {
      kill (proc.pid, SIGKILL);
      ns_host_root_release (p->rootfs, proc.root_mount);
      goto fail;
    }
  oci_log (c, "debug", "container `%s` created, pid %d", id, (int) proc.pid);
  r = 0;
  goto out;
fail:
  cleanup_failed (c, id, p);
out:
  oci_state_clear (&st);
  return r;
}

/* Open the exec fifo for read and take the byte the container's init writes once it opens it,
 * then wait for the init to close its end, which it does at execve: the program runs when this
 * returns (poststart hooks follow). Waits only while the init lives (start must not hang on a
 * dead container). */
static int
release_fifo (const struct oci_state *st, const char *fifo, cella_error_t *err)
{
  /* the pidfd first: once the fifo is open, the init may run and exit at once */
  cleanup_close int pidfd = oci_pidfd (st, err);
  cleanup_close int fd = -1;
  bool got = false;
  if (pidfd < 0)
    return -1;
  fd = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "open the exec fifo `%s`", fifo);
  for (;;)
    {
      struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
      char b;
      if (poll (pf, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return cella_error (err, errno, "wait on the exec fifo");
        }
      if (pf[0].revents & POLLIN)
        {
          ssize_t n = read (fd, &b, 1);
          if (n == 1 && !got)
            {
              got = true;
              continue;
            }
          if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        }
      if (got && (pf[0].revents & (POLLHUP | POLLERR) || pf[1].revents & POLLIN))
        break; /* the program was executed (or the init is gone: then it is stopped) */
      if (pf[1].revents & POLLIN)
        return cella_error (err, 0, "container `%s` exited before it was started", st->id);
      if (pf[0].revents & (POLLHUP | POLLERR))
        return cella_error (err, 0, "container `%s`: its init closed the exec fifo without starting", st->id);
    }
  if (unlink (fifo) < 0)
    return cella_error (err, errno, "remove `%s`", fifo);
  return 0;
}

static int
do_start (struct oci_ctx *c, const char *id, cella_error_t *err)
{
  struct oci_state st;
  cleanup_free char *dir = NULL, *fifo = NULL;
  cleanup_close int lock = -1, notify = -1;
  cleanup_plan struct plan *p = NULL;
  const char *status;
  int r = -1;
  if (oci_load (c, id, &st, err) < 0)
    return -1;
  status = oci_state_status (c->root, &st);
  if (strcmp (status, "created") != 0)
    {
      cella_error (err, 0, "cannot start container `%s`: it is %s, not created", id, status);
      goto out;
    }
  dir = xasprintf ("%s/%s", c->root, id);
  fifo = xasprintf ("%s/exec.fifo", dir);
  if ((lock = oci_lock (dir, err)) < 0 || oci_notify_listen (dir, &notify, err) < 0
      || release_fifo (&st, fifo, err) < 0)
    goto out;
  if (oci_load_plan (c, id, &p, NULL) == 0)
    run_hooks_warn (c, p, HOOK_POSTSTART, "running", st.pid);
  /* as runc: start returns once the container says READY (sd_notify), without holding the lock */
  close (steal_fd (&lock));
  if (notify >= 0 && oci_notify_relay (notify, st.pid, err) < 0)
    goto out;
  r = 0;
out:
  oci_state_clear (&st);
  return r;
}

static int
parse_or_help (const struct cli_option *t, void *opts, int argc, char **argv, const char *usage, const char *summary,
               int *first, cella_error_t *err)
{
  int help = 0;
  *first = cli_parse (t, opts, argc - 1, argv + 1, &help, err);
  if (*first < 0)
    return -1;
  *first += 1;
  if (help)
    {
      cli_print_help (usage, summary, t);
      return 1;
    }
  return 0;
}

static const struct cli_option no_options[] = { { NULL, 0, OPT_FLAG, 0, NULL, NULL } };

/* One operand, ID, and no options: the parse shared by start, state, pause, resume. */
static int
id_only (int argc, char **argv, const char *usage, const char *summary, const char **id, cella_error_t *err)
{
  int first, r = parse_or_help (no_options, NULL, argc, argv, usage, summary, &first, err);
  if (r != 0)
    return r;
  if (first >= argc)
    return cella_error (err, 0, "%s: a container id is required (usage: %s)", argv[0], usage);
  if (first + 1 < argc)
    return cella_error (err, 0, "%s: one container id expected, got `%s` too (usage: %s)", argv[0], argv[first + 1],
                        usage);
  *id = argv[first];
  return 0;
}

static int
cmd_create_ (struct oci_ctx *c, int argc, char **argv)
{
  struct create_opts o = { 0 };
  cella_error_t err = NULL;
  int first, r = parse_or_help (create_table, &o, argc, argv, "cella create [OPTIONS] ID",
                                "Create a container from a bundle; it waits, set up, until `start`.", &first, &err);
  if (r == 0 && first >= argc)
    r = cella_error (&err, 0, "create: a container id is required (usage: cella create --bundle DIR ID)");
  if (r == 0)
    r = do_create (c, &o, argv[first], &err);
  create_opts_free (&o);
  return r < 0 ? oci_fail (c, &err) : 0;
}

static int
cmd_start_ (struct oci_ctx *c, int argc, char **argv)
{
  cella_error_t err = NULL;
  const char *id;
  int r = id_only (argc, argv, "cella start ID", "Run the user process of a created container.", &id, &err);
  if (r == 0)
    r = do_start (c, id, &err);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- delete ---- */

/* Wait for pid (not our child) to be gone, up to ms milliseconds. */
static bool
wait_gone (const struct oci_state *st, int ms)
{
  for (int i = 0; i < ms / 10; i++)
    {
      bool zombie;
      unsigned long long t = oci_proc_start_time (st->pid, &zombie);
      if (t == 0 || zombie || (st->start_time && t != st->start_time))
        return true;
      usleep (10000);
    }
  return false;
}

static int
kill_all (const struct oci_ctx *c, const struct oci_state *st, int sig, cella_error_t *err)
{
  cleanup_free pid_t *pids = NULL;
  cleanup_plan struct plan *p = NULL;
  struct cgroup_dirs cg = { 0 };
  size_t n = 0;
  /* the cgroup's own way first (v2 cgroup.kill; every process, forks in flight included) */
  if (oci_load_plan (c, st->id, &p, NULL) == 0 && cgroup_path_of (p, &cg, NULL) == 0
      && cgroup_signal_all (&cg, sig, NULL) == 0)
    {
      cgroup_dirs_clear (&cg);
      return 0;
    }
  cgroup_dirs_clear (&cg);
  if (oci_container_pids (c, st, &pids, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    kill (pids[i], sig);
  return 0;
}

static int
do_delete (struct oci_ctx *c, const char *id, bool force, cella_error_t *err)
{
  struct oci_state st;
  cleanup_plan struct plan *p = NULL;
  cleanup_free char *dir = NULL;
  cleanup_close int lock = -1;
  const char *status;
  int r = -1;
  if (oci_load (c, id, &st, err) < 0)
    {
      /* a create that died before its record: nothing to run, remove what is there */
      if (oci_dir (c->root, id, &dir, NULL) == 0 && access (dir, F_OK) == 0)
        {
          cella_error_free (err);
          return oci_dir_remove (c->root, id, err);
        }
      if (force && *err && strstr ((*err)->msg, "does not exist"))
        {
          cella_error_free (err);
          return 0; /* runc: delete --force of a container that is not there succeeds */
        }
      return -1;
    }
  dir = xasprintf ("%s/%s", c->root, id);
  if ((lock = oci_lock (dir, err)) < 0)
    goto out;
  oci_load_plan (c, id, &p, NULL);
  status = oci_state_status (c->root, &st);
  if (strcmp (status, "stopped") != 0 && strcmp (status, "creating") != 0)
    {
      if (!force && strcmp (status, "created") != 0)
        {
          cella_error (err, 0, "cannot delete container `%s` that is not stopped: %s (use --force)", id, status);
          goto out;
        }
      kill_all (c, &st, SIGKILL, NULL);
      kill (st.pid, SIGKILL);
      /* a frozen process dies of SIGKILL only once thawed, whoever froze it (`pause`, or the
       * freezer written directly): thawed whatever the recorded status says */
      if (p)
        {
          struct cgroup_dirs cg = { 0 };
          if (cgroup_path_of (p, &cg, NULL) == 0)
            cgroup_freeze (&cg, false, NULL);
          cgroup_dirs_clear (&cg);
        }
      if (!wait_gone (&st, 5000))
        {
          cella_error (err, 0, "container `%s`: its init %d did not die on SIGKILL", id, (int) st.pid);
          goto out;
        }
    }
  ns_host_root_release (st.rootfs, st.root_mount);
  if (p)
    {
      cgroup_remove_plan (p);
      run_hooks_warn (c, p, HOOK_POSTSTOP, "stopped", 0);
    }
  r = oci_dir_remove (c->root, id, err);
out:
  oci_state_clear (&st);
  return r;
}

struct delete_opts {
  bool force;
};
static const struct cli_option delete_table[] = {
  { "force", 'f', OPT_FLAG, offsetof (struct delete_opts, force), NULL, "Kill a running container first" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static int
cmd_delete_ (struct oci_ctx *c, int argc, char **argv)
{
  struct delete_opts o = { 0 };
  cella_error_t err = NULL;
  int first, r = parse_or_help (delete_table, &o, argc, argv, "cella delete [--force] ID",
                                "Remove a stopped container (with --force, kill it first).", &first, &err);
  if (r == 0 && first >= argc)
    r = cella_error (&err, 0, "delete: a container id is required (usage: cella delete [--force] ID)");
  if (r == 0)
    r = do_delete (c, argv[first], o.force, &err);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- run ---- */

/* Foreground run with NOTIFY_SOCKET: a child of ours waits for the container's READY and passes
 * it on, while this process supervises the container. */
static void
notify_relay_child (const struct oci_ctx *c, int notify, pid_t pid)
{
  pid_t relay;
  fflush (NULL);
  relay = fork ();
  if (relay == 0)
    {
      cella_error_t err = NULL;
      if (oci_notify_relay (notify, pid, &err) < 0)
        oci_fail (c, &err);
      _exit (0);
    }
  if (relay < 0)
    oci_log (c, "warning", "NOTIFY_SOCKET: fork the relay: %s", strerror (errno));
}

static void
run_started (const struct ns_proc *proc, void *ud)
{
  struct hook_ctx *rc = ud;
  cella_error_t err = NULL;
  rc->st->root_mount = proc->root_mount;
  if (record_started (rc->c, rc->st, proc->pid, rc->pid_file, &err) < 0)
    {
      oci_log (rc->c, "warning", "%s", err->msg);
      cella_error_free (&err);
    }
  run_hooks_warn (rc->c, rc->p, HOOK_POSTSTART, "running", proc->pid);
  if (rc->notify >= 0)
    notify_relay_child (rc->c, rc->notify, proc->pid);
}

static int
do_run_foreground (struct oci_ctx *c, const struct create_opts *o, const char *id, cella_error_t *err)
{
  cleanup_free char *bundle = NULL, *dir = NULL;
  cleanup_plan struct plan *p = NULL;
  cleanup_close int console = -1, notify = -1;
  struct oci_state st = { 0 };
  struct ns_launch l = NS_LAUNCH_INIT;
  struct hook_ctx hc;
  int status;

  if (o->preserve_fds && oci_parse_count ("--preserve-fds", o->preserve_fds, &l.preserve_fds, err) < 0)
    return -1;
  if (oci_pid_file_check (o->pid_file, err) < 0)
    return -1;
  oci_plug_fds (l.preserve_fds);
  if (load_bundle (c, o->bundle, id, &bundle, &p, err) < 0)
    return -1;
  oci_listen_fds (&p->process, &l.preserve_fds);
  if (o->console_socket && (console = oci_connect_console (o->console_socket, err)) < 0)
    return -1;
  if (oci_dir_create (c->root, id, &dir, err) < 0)
    return -1;
  if (oci_notify_prepare (dir, p, err) < 0 || oci_notify_listen (dir, &notify, err) < 0
      || record_new (c, id, bundle, p, &st, err) < 0)
    {
      cleanup_failed (c, id, p);
      oci_state_clear (&st);
      return -1;
    }
  l.console_socket = console;
  hc.c = c;
  hc.p = p;
  hc.st = &st;
  hc.pid_file = o->pid_file;
  hc.notify = notify;
  if (has_hooks (p, HOOK_PRESTART) || has_hooks (p, HOOK_CREATE_RUNTIME))
    l.parent_hook = parent_hooks;
  l.started = run_started;
  l.seccomp_listener = init_listener;
  l.ud = &hc;
  status = ns_run_launch (p, &l, err);
  if (status < 0)
    {
      cleanup_failed (c, id, p);
      oci_state_clear (&st);
      return -1;
    }
  if (!o->keep)
    {
      cella_error_t e2 = NULL;
      if (do_delete (c, id, true, &e2) < 0)
        oci_fail (c, &e2);
    }
  oci_state_clear (&st);
  return status;
}

static int
cmd_run_ (struct oci_ctx *c, int argc, char **argv)
{
  struct create_opts o = { 0 };
  cella_error_t err = NULL;
  int first, r = parse_or_help (run_table, &o, argc, argv, "cella run [OPTIONS] ID",
                                "Create and start a container from a bundle; without -d, wait for it and "
                                "return its exit status (and delete it unless --keep).",
                                &first, &err);
  if (r == 0 && first >= argc)
    r = cella_error (&err, 0, "run: a container id is required (usage: cella run --bundle DIR ID)");
  if (r == 0 && o.detach)
    {
      r = do_create (c, &o, argv[first], &err);
      if (r == 0)
        r = do_start (c, argv[first], &err);
    }
  else if (r == 0)
    {
      r = do_run_foreground (c, &o, argv[first], &err);
      if (r >= 0)
        {
          create_opts_free (&o);
          return r;
        }
    }
  create_opts_free (&o);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- state, kill, list ---- */

static int
cmd_state_ (struct oci_ctx *c, int argc, char **argv)
{
  cella_error_t err = NULL;
  struct oci_state st;
  const char *id;
  int r = id_only (argc, argv, "cella state ID", "Print the state of a container (JSON).", &id, &err);
  if (r == 0 && (r = oci_load (c, id, &st, &err)) == 0)
    {
      char *text = oci_state_text (c->root, &st, 2);
      printf ("%s\n", text);
      free (text);
      oci_state_clear (&st);
    }
  return r < 0 ? oci_fail (c, &err) : 0;
}

struct kill_opts {
  bool all;
  char *signal;
};
static const struct cli_option kill_table[] = {
  { "all", 'a', OPT_FLAG, offsetof (struct kill_opts, all), NULL, "Send the signal to every process of the container" },
  { "signal", 's', OPT_STRING, offsetof (struct kill_opts, signal), "SIGNAL",
    "The signal (also the operand after ID)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static int
do_kill (struct oci_ctx *c, const char *id, const char *signame, bool all, cella_error_t *err)
{
  struct oci_state st;
  cleanup_close int pidfd = -1;
  int sig = signal_parse (signame);
  const char *status;
  int r = -1;
  if (sig <= 0 || sig >= NSIG)
    return cella_error (err, 0, "kill: unknown signal `%s` (a name like TERM, SIGTERM, or a number)", signame);
  if (oci_load (c, id, &st, err) < 0)
    return -1;
  status = oci_state_status (c->root, &st);
  if (strcmp (status, "stopped") == 0 || strcmp (status, "creating") == 0)
    {
      cella_error (err, 0, "container `%s` is not running", id);
      goto out;
    }
  if ((pidfd = oci_pidfd (&st, err)) < 0)
    goto out;
  if (all && kill_all (c, &st, sig, err) < 0)
    goto out;
  if (syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 && !(all && errno == ESRCH))
    {
      cella_error (err, errno, "send signal %d to container `%s`", sig, id);
      goto out;
    }
  r = 0;
out:
  oci_state_clear (&st);
  return r;
}

static int
cmd_kill_ (struct oci_ctx *c, int argc, char **argv)
{
  struct kill_opts o = { 0 };
  cella_error_t err = NULL;
  int first, r = parse_or_help (kill_table, &o, argc, argv, "cella kill [--all] ID [SIGNAL]",
                                "Send a signal (default SIGTERM) to a container's init.", &first, &err);
  if (r == 0 && first >= argc)
    r = cella_error (&err, 0, "kill: a container id is required (usage: cella kill [--all] ID [SIGNAL])");
  if (r == 0)
    r = do_kill (c, argv[first], first + 1 < argc ? argv[first + 1] : o.signal ? o.signal : "TERM", o.all, &err);
  free (o.signal);
  return r < 0 ? oci_fail (c, &err) : 0;
}

struct list_opts {
  char *format;
  bool quiet;
};
static const struct cli_option list_table[] = {
  { "format", 'f', OPT_STRING, offsetof (struct list_opts, format), "table|json", "Output format (default table)" },
  { "quiet", 'q', OPT_FLAG, offsetof (struct list_opts, quiet), NULL, "Only the ids" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static int
id_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static char **
list_ids (const char *root)
{
  char **ids = NULL;
  DIR *d = opendir (root);
  struct dirent *e;
  if (d == NULL)
    return NULL;
  while ((e = readdir (d)))
    if (e->d_name[0] != '.')
      strv_push (&ids, e->d_name);
  closedir (d);
  if (ids)
    qsort (ids, strv_len (ids), sizeof *ids, id_cmp);
  return ids;
}

static int
cmd_list_ (struct oci_ctx *c, int argc, char **argv)
{
  struct list_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_strv char **ids = NULL;
  bool json = false;
  json_t *arr = json_array ();
  int first, r = parse_or_help (list_table, &o, argc, argv, "cella list [--format table|json] [-q]",
                                "List the containers of the state root.", &first, &err);
  if (r == 0 && o.format && strcmp (o.format, "json") != 0 && strcmp (o.format, "table") != 0)
    r = cella_error (&err, 0, "list: --format `%s`: expected table or json", o.format);
  json = o.format && strcmp (o.format, "json") == 0;
  if (r == 0)
    {
      ids = list_ids (c->root);
      if (!json && !o.quiet)
        printf ("%-20s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
      for (size_t i = 0; ids && ids[i]; i++)
        {
          struct oci_state st;
          const char *status;
          cleanup_free char *owner = NULL;
          if (oci_state_read (c->root, ids[i], &st, NULL) < 0)
            continue;
          status = oci_state_status (c->root, &st);
          owner = host_passwd_field (st.owner, 0);
          if (owner == NULL)
            owner = xasprintf ("#%u", (unsigned) st.owner);
          if (o.quiet)
            printf ("%s\n", st.id);
          else if (json)
            {
              cleanup_free char *text = oci_state_text (c->root, &st, 0);
              json_t *one = json_loads (text, 0, NULL);
              if (one)
                {
                  json_object_set_new (one, "owner", json_string (owner));
                  json_array_append_new (arr, one);
                }
            }
          else
            printf ("%-20s %-8d %-10s %-40s %-30s %s\n", st.id, strcmp (status, "stopped") == 0 ? 0 : (int) st.pid,
                    status, st.bundle, st.created ? st.created : "", owner);
          oci_state_clear (&st);
        }
      if (json && !o.quiet)
        {
          char *text = json_dumps (arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
          printf ("%s\n", text);
          free (text);
        }
    }
  json_decref (arr);
  free (o.format);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- the dispatcher ---- */

struct oci_command {
  const char *name;
  int (*fn) (struct oci_ctx *c, int argc, char **argv);
  bool starts_containers; /* re-exec from a sealed copy first (src/util/selfexec.c) */
  const char *help;
};

static const struct oci_command oci_commands[] = {
  { "create", cmd_create_, true, "Create a container from a bundle (it waits for `start`)" },
  { "start", cmd_start_, false, "Run the user process of a created container" },
  { "run", cmd_run_, true, "Create and start a container" },
  { "state", cmd_state_, false, "Print a container's state (JSON)" },
  { "kill", cmd_kill_, false, "Send a signal to a container's init (or --all)" },
  { "delete", cmd_delete_, false, "Remove a container" },
  { "list", cmd_list_, false, "List containers" },
  { "ps", oci_cmd_ps, false, "List a container's processes" },
  { "exec", oci_cmd_exec, true, "Run a process in a running container" },
  { "pause", oci_cmd_pause, false, "Freeze every process of a container" },
  { "resume", oci_cmd_resume, false, "Thaw a paused container" },
  { "update", oci_cmd_update, false, "Change a container's resource limits" },
  { "events", oci_cmd_events, false, "Print a container's resource usage (JSON lines)" },
  { "spec", oci_cmd_spec, false, "Write a default config.json" },
  { "features", oci_cmd_features, false, "Print what this runtime supports (JSON)" },
  { NULL, NULL, false, NULL },
};

static void
oci_usage (FILE *f)
{
  fprintf (f, "Usage: cella [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n\n"
              "cella as an OCI runtime (runc's command line; also `cella oci COMMAND`).\n\nCommands:\n");
  for (const struct oci_command *c = oci_commands; c->name; c++)
    fprintf (f, "  %-10s %s\n", c->name, c->help);
  fprintf (f,
           "\nGlobal options:\n"
           "  --root DIR                 State root (default /run/cella-oci; rootless $XDG_RUNTIME_DIR/cella-oci)\n"
           "  --log FILE                 Write errors (and --debug lines) to FILE\n"
           "  --log-format text|json     Format of the --log lines (json: {\"level\",\"msg\",\"time\"})\n"
           "  --debug                    Debug lines\n"
           "  --systemd-cgroup           Accepted; cella drives cgroupfs (cgroupsPath slice:prefix:name understood)\n"
           "  --rootless auto|true|false Accepted; cella decides from its effective uid\n"
           "  -v, --version              Print the version\n");
}

void
oci_print_version (void)
{
  printf ("cella version %s\nspec: 1.1.0\nfeatures: ns-backend, cgroupfs (v1, v2, hybrid), seccomp, console-socket, "
          "preserve-fds\n",
          CELLA_VERSION);
}

static int
parse_globals (struct oci_ctx *c, int argc, char **argv, int *i, cella_error_t *err)
{
  for (; *i < argc && argv[*i][0] == '-'; (*i)++)
    {
      const char *a = argv[*i], *eq = strchr (a, '=');
      size_t n = eq ? (size_t) (eq - a) : strlen (a);
      const char *val = NULL;
      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        return 1;
      if (strcmp (a, "--version") == 0 || strcmp (a, "-v") == 0)
        return 2;
      if (in_list (global_value_flags, a, n))
        {
          if (eq)
            val = eq + 1;
          else if (*i + 1 < argc)
            val = argv[++*i];
          else
            return cella_error (err, 0, "option `%.*s` needs a value", (int) n, a);
        }
      else if (!in_list (global_bool_flags, a, n))
        return cella_error (err, 0, "unknown global option `%s` (see cella oci --help)", a);
      if (strncmp (a, "--root", n) == 0 && n == 6)
        {
          free (c->root);
          c->root = xstrdup (val);
        }
      else if (strncmp (a, "--log", n) == 0 && n == 5)
        {
          free (c->log);
          c->log = xstrdup (val);
        }
      else if (strncmp (a, "--log-format", n) == 0 && n == 12)
        {
          if (strcmp (val, "json") != 0 && strcmp (val, "text") != 0)
            return cella_error (err, 0, "--log-format `%s`: expected text or json", val);
          c->log_json = strcmp (val, "json") == 0;
        }
      else if (strncmp (a, "--rootless", n) == 0 && n == 10)
        {
          if (strcmp (val, "auto") != 0 && strcmp (val, "true") != 0 && strcmp (val, "false") != 0)
            return cella_error (err, 0, "--rootless `%s`: expected auto, true or false", val);
          free (c->rootless);
          c->rootless = xstrdup (val);
        }
      else if (strncmp (a, "--debug", n) == 0 && n == 7)
        c->debug = !eq || strcmp (eq + 1, "false") != 0;
      else if (strncmp (a, "--systemd-cgroup", n) == 0 && n == 16)
        c->systemd_cgroup = !eq || strcmp (eq + 1, "false") != 0;
    }
  return 0;
}

int
oci_main (int argc, char **argv, char **full_argv)
{
  struct oci_ctx c = { 0 };
  cella_error_t err = NULL;
  int i = 1, r, status = 1;
  r = parse_globals (&c, argc, argv, &i, &err);
  if (r < 0)
    return oci_fail (&c, &err);
  if (r == 2)
    {
      oci_print_version ();
      return 0;
    }
  if (r == 1 || i >= argc || strcmp (argv[i], "help") == 0)
    {
      oci_usage (i >= argc && r != 1 ? stderr : stdout);
      return i >= argc && r != 1 ? 1 : 0;
    }
  if (c.root == NULL)
    c.root = oci_root_default ();
  if (c.systemd_cgroup)
    oci_log (&c, "info",
             "--systemd-cgroup: cella drives cgroupfs directly, not systemd (a slice:prefix:name "
             "cgroupsPath becomes the cgroupfs path systemd would use)");
  for (const struct oci_command *cmd = oci_commands; cmd->name; cmd++)
    if (strcmp (argv[i], cmd->name) == 0)
      {
        if (cmd->starts_containers && selfexec_sealed (full_argv) < 0)
          {
            cella_error (&err, errno, "re-execute from a sealed copy of the binary");
            return oci_fail (&c, &err);
          }
        /* the state root is checked before anything in it is read: spec and features use none */
        if (cmd->fn != oci_cmd_spec && cmd->fn != oci_cmd_features && state_dir_ensure (c.root, &err) < 0)
          {
            status = oci_fail (&c, &err);
            goto out;
          }
        status = cmd->fn (&c, argc - i, argv + i);
        goto out;
      }
  cella_error (&err, 0, "unknown command `%s` (see cella oci --help)", argv[i]);
  status = oci_fail (&c, &err);
out:
  free (c.root);
  free (c.log);
  free (c.rootless);
  return status;
}
