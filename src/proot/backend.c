/* The proot backend (backend.h): the plan's ops as proot arguments, and running it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include "backend.h"
#include "backend/session.h"
#include "util/paths.h"
#include "image/flatten.h"

static void
push_bind (char ***argv, const char *src, const char *dst)
{
  cleanup_free char *b = xasprintf ("%s:%s", src, dst);
  strv_push (argv, "-b");
  strv_push (argv, b);
}

/* A file the plan places (hosts, hostname, resolv.conf): written into the state dir, bound. */
static int
place_file (const struct op *op, const char *state_dir, unsigned n, char ***argv, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/file%u", state_dir, n);
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, op->mode ? op->mode : 0644);
  if (fd < 0 || write_all (fd, op->data, op->data_len) < 0)
    return cella_error (err, errno, "proot: write `%s` for `%s`", path, op->target);
  push_bind (argv, path, op->target);
  return 0;
}

/* The files a plan places for the network and host name: proot shares the host's network and
 * UTS name, so the host's own files are the true ones (and binding them writes nothing). */
static bool
host_file (const struct op *op)
{
  static const char *const same[] = { "/etc/hostname", "/etc/hosts", "/etc/resolv.conf" };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
    if (strcmp (op->target, same[i]) == 0)
      return access (same[i], R_OK) == 0;
  return false;
}

/* Does running p need a state dir (files to write, tmpfs stand-ins)? */
static bool
needs_state (const struct plan *p)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_TMPFS || (p->ops[i].kind == OP_FILE && !host_file (&p->ops[i])))
      return true;
  return false;
}

/* An empty directory of the state dir stands in for a tmpfs. */
static int
place_tmpfs (const struct op *op, const char *state_dir, unsigned n, char ***argv, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/tmpfs%u", state_dir, n);
  if (mkdir (path, op->mode ? op->mode : 01777) < 0 && errno != EEXIST)
    return cella_error (err, errno, "proot: create `%s` for the tmpfs `%s`", path, op->target);
  chmod (path, op->mode ? op->mode : 01777);
  push_bind (argv, path, op->target);
  return 0;
}

/* mkdir -p inside the root without leaving it (the root is ours or the user's directory). */
static int
mkdir_in_root (const char *rootfs, const char *path, mode_t mode, cella_error_t *err)
{
  cleanup_close int dir = open (rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *copy = xstrdup (path);
  char *save = NULL;
  if (dir < 0)
    return cella_error (err, errno, "root `%s`", rootfs);
  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      struct open_how how
          = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
      int next;
      if (mkdirat (dir, c, mode) < 0 && errno != EEXIST)
        return cella_error (err, errno, "create `%s` in the root", path);
      next = (int) syscall (SYS_openat2, dir, c, &how, sizeof how);
      if (next < 0)
        return cella_error (err, errno, "create `%s` in the root", path);
      close (dir);
      dir = next;
    }
  return 0;
}

/* A bind's target missing from the root gets an empty one of the source's kind (a directory, or
 * an empty file), left there as the ns backend leaves its mount points (runc does the same).
 * Without it proot makes a stand-in in the root itself at start, removes it at exit and builds
 * a glue tree in PROOT_TMP_DIR for it: 0.5-0.8 ms a run for the three /etc files a busybox root
 * lacks (docs/benchmarks.md, "proot's stand-ins"). Best effort: where the root cannot be
 * written, or the target's directory is missing, proot makes its stand-in as before. */
static void
mountpoint_in_root (int root, const char *source, const char *target)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  const char *base = strrchr (target, '/');
  cleanup_free char *dir = NULL;
  cleanup_close int parent = -1;
  struct stat st;
  int fd;
  if (root < 0 || base == NULL || base[1] == '\0')
    return;
  fd = (int) syscall (SYS_openat2, root, target, &how, sizeof how);
  if (fd >= 0 || errno != ENOENT || stat (source, &st) < 0)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  dir = base == target ? xstrdup ("/") : xasprintf ("%.*s", (int) (base - target), target);
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  parent = (int) syscall (SYS_openat2, root, dir, &how, sizeof how);
  if (parent < 0)
    return;
  if (S_ISDIR (st.st_mode))
    (void) mkdirat (parent, base + 1, 0755);
  else if ((fd = openat (parent, base + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) >= 0)
    close (fd);
}

/* -b SRC:DST, with DST made in the root where it is missing (mountpoint_in_root). */
static void
push_root_bind (char ***argv, int root, const char *src, const char *dst)
{
  mountpoint_in_root (root, src, dst);
  push_bind (argv, src, dst);
}

/* Published ports. proot shares the host's network: a port published as itself needs nothing; an
 * nginx container (the detected entrypoint /usr/sbin/nginx) gets its `listen CTR;` lines rewritten
 * to the host port before nginx starts, as Android's container engines do; anything else cannot
 * be remapped by Debian's proot (5.1 has no port option) and is refused. Appends the command. */
static int
port_command (const struct plan *p, const struct plan_process *pr, char ***argv, cella_error_t *err)
{
  cleanup_free char *script = xstrdup ("");
  bool nginx = pr->argv && pr->argv[0] && strcmp (pr->argv[0], "/usr/sbin/nginx") == 0;
  for (size_t i = 0; p->ports && p->ports[i]; i++)
    {
      unsigned host, ctr;
      char *s;
      const char *hp = strchr (p->ports[i], ':');
      if (hp == NULL || sscanf (hp + 1, "%u:%u", &host, &ctr) != 2)
        return cella_error (err, 0, "port `%s`: malformed", p->ports[i]);
      if (host == ctr)
        continue;
      if (!nginx)
        return cella_error (err, 0,
                            "-p %u:%u: the proot backend shares the host's network and this proot cannot remap "
                            "ports: publish the port the container listens on (-p %u:%u), or use --backend ns",
                            host, ctr, ctr, ctr);
      s = xasprintf (
          "%ssed -i 's/listen[[:space:]]*%u;/listen %u;/g; s/listen[[:space:]]*\\[::\\]:%u;/listen [::]:%u;/g' "
          "/etc/nginx/conf.d/*.conf /etc/nginx/nginx.conf 2>/dev/null; ",
          script, ctr, host, ctr, host);
      free (script);
      script = s;
    }
  if (*script == '\0')
    {
      strv_append_all (argv, pr->argv);
      return 0;
    }
  {
    cleanup_free char *cmd = xasprintf ("%sexec \"$0\" \"$@\"", script);
    strv_push (argv, "/bin/sh");
    strv_push (argv, "-c");
    strv_push (argv, cmd);
    strv_append_all (argv, pr->argv);
  }
  return 0;
}

int
proot_command (const struct plan *p, const struct plan_process *pr, const char *state_dir, bool main_process,
               char ***argv_out, cella_error_t *err)
{
  char **argv = NULL;
  unsigned n = 0;
  cleanup_close int root = open (p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  strv_push (&argv, p->proot_path ? p->proot_path : "proot");
  strv_push (&argv, "-v"); /* quiet: proot's own notes would land in the container's output */
  strv_push (&argv, "-1");
  strv_push (&argv, "-r");
  strv_push (&argv, p->rootfs);
  if (pr->uid == 0)
    strv_push (&argv, "-0");
  else
    {
      cleanup_free char *ids = xasprintf ("%u:%u", (unsigned) pr->uid, (unsigned) pr->gid);
      strv_push (&argv, "-i");
      strv_push (&argv, ids);
    }
  if (p->kernel_release)
    {
      strv_push (&argv, "-k");
      strv_push (&argv, p->kernel_release);
    }
  strv_push (&argv, "-w");
  strv_push (&argv, pr->cwd ? pr->cwd : "/");
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      int r = 0;
      switch (op->kind)
        {
        case OP_PROC:
          push_root_bind (&argv, root, "/proc", op->target);
          break;
        case OP_SYSFS:
          push_root_bind (&argv, root, "/sys", op->target);
          break;
        case OP_DEV:
          push_root_bind (&argv, root, "/dev", op->target);
          /* what the ns backend gives: a random that never blocks */
          push_bind (&argv, "/dev/urandom", "/dev/random");
          break;
        case OP_BIND:
          push_root_bind (&argv, root, op->resolved ? op->resolved : op->source, op->target);
          break;
        case OP_FILE:
          if (host_file (op))
            push_root_bind (&argv, root, op->target, op->target);
          else
            r = place_file (op, state_dir, n++, &argv, err);
          break;
        case OP_TMPFS:
          r = place_tmpfs (op, state_dir, n++, &argv, err);
          break;
        case OP_MKDIR:
          r = mkdir_in_root (p->rootfs, op->target, op->mode ? op->mode : 0755, err);
          break;
        case OP_MASK:
        case OP_READONLY:
          /* the ns backend's hardening of /proc and /sys: proot has no way to give it */
          break;
        case OP_OVERLAY:
        case OP_SYMLINK:
        case OP_REMOUNT:
        case OP__COUNT:
        default:
          r = cella_error (err, 0, "the proot backend cannot apply a %s mount at `%s`",
                           op->kind == OP_OVERLAY ? "overlay" : "special", op->target);
          break;
        }
      if (r < 0)
        {
          strv_free (argv);
          return -1;
        }
    }
  if (!main_process)
    strv_append_all (&argv, pr->argv);
  else if (port_command (p, pr, &argv, err) < 0)
    {
      strv_free (argv);
      return -1;
    }
  *argv_out = argv;
  return 0;
}

/* Is argv[0] an executable of the root (by PATH when it has no slash)? 0, or 127/126 with *err,
 * as docker reports it: proot would say so only in its own words and exit 1. */
static int
check_command (const struct plan *p, const struct plan_process *pr, cella_error_t *err)
{
  const char *cmd = pr->argv && pr->argv[0] ? pr->argv[0] : NULL;
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  cleanup_close int root = open (p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *dirs = NULL;
  char *save = NULL;
  if (cmd == NULL)
    return cella_error_status (err, 125, 0, "no command to run");
  if (root < 0)
    return cella_error (err, errno, "root `%s`", p->rootfs);
  for (size_t i = 0; pr->env && pr->env[i]; i++)
    if (has_prefix (pr->env[i], "PATH="))
      path = pr->env[i] + 5;
  if (strchr (cmd, '/'))
    dirs = xstrdup ("");
  else
    dirs = xstrdup (path);
  for (char *d = strchr (cmd, '/') ? dirs : strtok_r (dirs, ":", &save); d;
       d = strchr (cmd, '/') ? NULL : strtok_r (NULL, ":", &save))
    {
      cleanup_free char *full = strchr (cmd, '/') ? xstrdup (cmd) : xasprintf ("%s/%s", d, cmd);
      struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
      struct stat st;
      int fd = (int) syscall (SYS_openat2, root, full, &how, sizeof how);
      if (fd < 0)
        continue;
      if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode))
        {
          close (fd);
          if (!(st.st_mode & 0111))
            return cella_error_status (err, 126, EACCES, "exec `%s`", cmd);
          return 0;
        }
      close (fd);
    }
  if (strchr (cmd, '/'))
    return cella_error_status (err, 127, ENOENT, "exec `%s`", cmd);
  return cella_error_status (err, 127, 0, "exec `%s`: executable file not found in $PATH", cmd);
}

static void
child_exec (char **argv, char **env, const char *proot_tmp)
{
  char **e = strv_dup (env);
  cleanup_free char *t = xasprintf ("PROOT_TMP_DIR=%s", proot_tmp);
  strv_push (&e, t);
  signals_default (); /* proot passes what it inherits on to the workload */
  execve (argv[0], argv, e);
  fprintf (stderr, "cella: run `%s`: %s\n", argv[0], strerror (errno));
  _exit (127);
}

static char *
proot_tmp_dir (void)
{
  char *d = xasprintf ("%s/proot-tmp", paths_data_root ());
  mkdir_p (d, 0700, NULL);
  return d;
}

static int
make_state_dir (char **out, cella_error_t *err)
{
  /* the run root: a tmpfs where there is one, and cleaned at boot */
  char *d = xasprintf ("%s/proot-run-XXXXXX", paths_run_root ());
  mkdir_p (paths_run_root (), 0700, NULL);
  if (mkdtemp (d) == NULL)
    {
      int e = errno;
      free (d);
      return cella_error (err, e, "create a state dir under `%s`", paths_run_root ());
    }
  *out = d;
  return 0;
}

/* proot's exit status is the workload's, as docker gives it; a guest killed by a signal is 255
 * from proot, the caller knows no better (see docs/proot.md). */
static int
run_foreground (struct plan *p, const struct plan_process *pr, const char *state_dir, bool main_process,
                cella_error_t *err)
{
  /* ^C reaches the container (same terminal process group); we wait for it */
  static const int ignore[] = { SIGINT, SIGQUIT, 0 };
  cleanup_strv char **argv = NULL;
  cleanup_free char *tmp = proot_tmp_dir ();
  struct session fg;
  pid_t pid;
  int status;
  if (check_command (p, pr, err) < 0 || proot_command (p, pr, state_dir, main_process, &argv, err) < 0)
    return -1;
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    child_exec (argv, pr->env, tmp);
  backend_exec_started (p); /* the command was checked: proot runs it */
  session_init (&fg);
  fg.ignore = ignore;
  fg.pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (fg.pidfd < 0)
    {
      int e = errno;
      kill (pid, SIGKILL);
      while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
      return cella_error (err, e, "pidfd_open");
    }
  status = session_run (&fg);
  close (fg.pidfd);
  return status < 0 ? EXIT_CELLA_ERROR : status;
}

int
proot_run (struct plan *p, bool may_exec, cella_error_t *err)
{
  cleanup_free char *state = NULL;
  int status;
  if (may_exec && !needs_state (p))
    {
      /* nothing to clean up afterwards: become proot (no fork, no wait) */
      cleanup_strv char **argv = NULL;
      cleanup_free char *tmp = proot_tmp_dir ();
      if (check_command (p, &p->process, err) < 0 || proot_command (p, &p->process, NULL, true, &argv, err) < 0)
        return -1;
      fflush (NULL);
      child_exec (argv, p->process.env, tmp);
    }
  if (make_state_dir (&state, err) < 0)
    return -1;
  status = run_foreground (p, &p->process, state, true, err);
  remove_tree (state);
  return status;
}

int
proot_exec (struct plan *p, const char *state_dir, cella_error_t *err)
{
  cleanup_free char *sub = xasprintf ("%s/exec-XXXXXX", state_dir);
  int status;
  if (mkdtemp (sub) == NULL)
    return cella_error (err, errno, "create `%s`", sub);
  status = run_foreground (p, &p->process, sub, false, err);
  remove_tree (sub);
  return status;
}

int
proot_start (struct plan *p, const char *state_dir, struct ns_proc *out, cella_error_t *err)
{
  cleanup_strv char **argv = NULL;
  cleanup_free char *tmp = proot_tmp_dir ();
  int master = -1, slave = -1;
  pid_t pid;
  if (mkdir (state_dir, 0700) < 0 && errno != EEXIST)
    return cella_error (err, errno, "create `%s`", state_dir);
  if (check_command (p, &p->process, err) < 0 || proot_command (p, &p->process, state_dir, true, &argv, err) < 0)
    return -1;
  if (p->process.tty && openpty (&master, &slave, NULL, NULL, NULL) < 0)
    return cella_error (err, errno, "open a pseudo-terminal");
  if (master >= 0)
    fcntl (master, F_SETFD, FD_CLOEXEC);
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    {
      if (slave >= 0)
        {
          if (login_tty (slave) < 0)
            _exit (125);
        }
      else
        setsid (); /* its own process group: stop signals all of it */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      child_exec (argv, p->process.env, tmp);
    }
  if (slave >= 0)
    close (slave);
  out->pid = pid;
  out->master = master;
  out->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (out->pidfd < 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      if (master >= 0)
        close (master);
      return cella_error (err, errno, "pidfd_open");
    }
  return 0;
}

int
proot_prepare_root (struct plan *p, const char *dest, cella_error_t *err)
{
  struct flatten_stats st = { 0 };
  cleanup_strv char **layers = NULL;
  if (!p->root_overlay)
    return 0;
  layers = strv_dup (p->root_layers);
  strv_push (&layers, p->rootfs);
  if (image_flatten (layers, dest, &st, err) < 0)
    return cella_error_wrap (err, "copy the image for the proot backend");
  free (p->rootfs);
  p->rootfs = xstrdup (dest);
  strv_free (p->root_layers);
  p->root_layers = NULL;
  p->root_overlay = false;
  free (p->root_copy);
  p->root_copy = xstrdup (copy_method_name (st.method));
  return 0;
}
