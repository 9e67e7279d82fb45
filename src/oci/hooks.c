/* OCI hooks (config.md "POSIX-platform Hooks"): a program run with the container's state on
 * its stdin, killed when it outlives its timeout; a failure is an error that names it. */
#define _GNU_SOURCE
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *
oci_state_json (const struct plan *p, const char *status, pid_t pid)
{
  json_t *o = json_pack ("{s:s, s:s, s:s}", "ociVersion", "1.2.0", "id", p->id ? p->id : "", "status", status);
  json_t *ann = json_object ();
  char *out;
  if (pid > 0)
    json_object_set_new (o, "pid", json_integer (pid));
  json_object_set_new (o, "bundle", json_string (p->bundle ? p->bundle : ""));
  for (size_t i = 0; p->annotations && p->annotations[i]; i++)
    {
      const char *eq = strchr (p->annotations[i], '=');
      cleanup_free char *k = eq ? strndup (p->annotations[i], (size_t) (eq - p->annotations[i])) : NULL;
      if (k)
        json_object_set_new (ann, k, json_string (eq + 1));
    }
  json_object_set_new (o, "annotations", ann);
  out = json_dumps (o, JSON_COMPACT);
  json_decref (o);
  return out;
}

__attribute__ ((noreturn)) static void
hook_child (const struct plan_hook *h, int in)
{
  char *fallback[] = { h->path, NULL };
  if (dup2 (in, 0) < 0)
    _exit (127);
  close_range (3, ~0U, 0);
  /* a hook without `env` gets the runtime's own environment, as with runc and crun */
  execve (h->path, h->args && h->args[0] ? h->args : fallback, h->env ? h->env : environ);
  fprintf (stderr, "cella: hook `%s`: %s\n", h->path, strerror (errno));
  _exit (127);
}

/* Wait for the hook's exit, at most timeout seconds (0: no limit). */
static int
hook_wait (const struct plan_hook *h, pid_t pid, int pidfd, int *status, cella_error_t *err)
{
  if (h->timeout > 0)
    {
      struct pollfd pf = { .fd = pidfd, .events = POLLIN };
      int r;
      do
        r = poll (&pf, 1, h->timeout * 1000);
      while (r < 0 && errno == EINTR);
      if (r == 0)
        {
          kill (pid, SIGKILL);
          while (waitpid (pid, status, 0) < 0 && errno == EINTR)
            ;
          return cella_error (err, 0, "hook `%s`: still running after its timeout of %d s: killed", h->path,
                              h->timeout);
        }
    }
  while (waitpid (pid, status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for hook `%s`", h->path);
  return 0;
}

int
oci_hook_run (const struct plan_hook *h, const char *state_json, cella_error_t *err)
{
  int pipefd[2], status = 0;
  cleanup_close int pidfd = -1;
  pid_t pid;
  struct sigaction ign = { .sa_handler = SIG_IGN }, old;
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return cella_error (err, errno, "hook `%s`: pipe", h->path);
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    {
      close (pipefd[0]);
      close (pipefd[1]);
      return cella_error (err, errno, "hook `%s`: fork", h->path);
    }
  if (pid == 0)
    {
      close (pipefd[1]);
      hook_child (h, pipefd[0]);
    }
  close (pipefd[0]);
  pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  /* a hook that does not read its stdin must not kill us with SIGPIPE */
  sigaction (SIGPIPE, &ign, &old);
  if (state_json)
    (void) write_all (pipefd[1], state_json, strlen (state_json));
  close (pipefd[1]);
  sigaction (SIGPIPE, &old, NULL);
  if (hook_wait (h, pid, pidfd, &status, err) < 0)
    return -1;
  if (WIFSIGNALED (status))
    return cella_error (err, 0, "hook `%s`: killed by signal %d", h->path, WTERMSIG (status));
  if (WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "hook `%s`: exited with status %d", h->path, WEXITSTATUS (status));
  return 0;
}

int
oci_hooks_run (const struct plan *p, enum plan_hook_kind kind, const char *state_json, cella_error_t *err)
{
  for (size_t i = 0; i < p->nhooks[kind]; i++)
    if (oci_hook_run (&p->hooks[kind][i], state_json, err) < 0)
      return cella_error_wrap (err, "%s hook %zu", plan_hook_name (kind), i);
  return 0;
}
