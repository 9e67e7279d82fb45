/* `cella top` and `cella cp` on a running VM (vm.h): each one exec session (exec.c's
 * vm_exec_fds, no terminal) of a command the guest init runs with its own code (guest.h
 * GUEST_INTERNAL), its stdin or stdout a tar stream (tar.h) that this side writes or reads
 * while the session runs. The guest's stream is untrusted: tar.c extracts it into a directory
 * the caller chose, never through a symlink. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"
#include "tar.h"
#include "vm.h"

#define GUEST_ERR_MAX 4096

struct session {
  pid_t pid;
  int errfd; /* the command's stderr (a memfd), and the session's own failure */
};

/* Run argv in the VM from a child process: its stdin `in` (-1: none), its stdout `out`;
 * `other` (-1: none) is closed in the child (the caller's end of a pipe). */
static int
session_start (const char *state_dir, char **argv, int in, int out, int other, struct session *s, cella_error_t *err)
{
  s->errfd = memfd_create ("cella-vm-stderr", MFD_CLOEXEC);
  if (s->errfd < 0)
    return cella_error (err, errno, "memfd_create");
  fflush (NULL);
  s->pid = fork ();
  if (s->pid < 0)
    {
      close (s->errfd);
      return cella_error (err, errno, "fork");
    }
  if (s->pid == 0)
    {
      char *env[] = { NULL };
      struct vm_guest_config c = { .argv = argv, .env = env, .cwd = "/" };
      cella_error_t e = NULL;
      int code;
      if (other >= 0)
        close (other);
      signal (SIGPIPE, SIG_IGN);
      code = vm_exec_fds (&c, in >= 0, state_dir, in, out, s->errfd, NULL, &e);
      if (code < 0)
        {
          dprintf (s->errfd, "cella: %s%s%s\n", e->msg, e->errno_ > 0 ? ": " : "",
                   e->errno_ > 0 ? strerror (e->errno_) : "");
          _exit (255);
        }
      _exit (code);
    }
  return 0;
}

/* Wait for the session: 0 when its command exited 0, else -1 with its stderr as *err (the
 * guest's "cella: ..." line, or the exec's own failure). */
static int
session_end (struct session *s, const char *what, cella_error_t *err)
{
  int status, code;
  char msg[GUEST_ERR_MAX + 1];
  ssize_t n;
  while (waitpid (s->pid, &status, 0) < 0 && errno == EINTR)
    ;
  code = WIFEXITED (status) ? WEXITSTATUS (status) : 255;
  n = pread (s->errfd, msg, GUEST_ERR_MAX, 0);
  close (s->errfd);
  if (code == 0)
    return 0;
  if (n < 0)
    n = 0;
  msg[n] = '\0';
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  /* the guest's line is "cella: what: why"; the prefix comes again from cella_error_print */
  const char *text = strncmp (msg, "cella: ", 7) == 0 ? msg + 7 : msg;
  for (char *c = msg; *c; c++)
    if ((unsigned char) *c < 0x20 && *c != '\n')
      *c = '?'; /* the guest's bytes reach a terminal */
  if (*text == '\0')
    return cella_error (err, 0, "%s: the command in the vm exited with %d", what, code);
  return cella_error (err, 0, "%s", text);
}

int
vm_top (const char *state_dir, int out, cella_error_t *err)
{
  char *argv[] = { GUEST_INTERNAL, "__ps", NULL };
  struct session s;
  if (session_start (state_dir, argv, -1, out, -1, &s, err) < 0)
    return -1;
  return session_end (&s, "top", err);
}

/* The end of a cp session: the guest's reason first (a missing path ends its stream early),
 * then the stream's (r, terr: what tar_read or tar_write_tree said). */
static int
cp_end (struct session *s, int r, cella_error_t *terr, cella_error_t *err)
{
  if (session_end (s, "cp", err) < 0)
    {
      cella_error_free (terr);
      return -1;
    }
  if (r < 0)
    {
      cella_error_free (err);
      *err = *terr;
      *terr = NULL;
      return -1;
    }
  return 0;
}

struct out_ctx {
  const char *name;
  int destfd;
};

static int
out_first (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err)
{
  struct out_ctx *o = ctx;
  (void) is_dir;
  if (strcmp (top, o->name) != 0)
    return cella_error (err, 0, "cp: the vm sent `%s` for `%s`", top, o->name);
  d->dirfd = o->destfd;
  d->as = o->name;
  return 0;
}

int
vm_copy_out (const char *state_dir, const char *dir, const char *name, bool follow, int destfd, cella_error_t *err)
{
  char *argv[] = { GUEST_INTERNAL, "__tar-out", (char *) dir, (char *) name, follow ? "1" : "0", NULL };
  struct out_ctx ctx = { name, destfd };
  struct tar_read_opts o = { .no_setid = true, .first = out_first, .ctx = &ctx };
  cella_error_t terr = NULL;
  struct session s;
  int p[2], r;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  if (session_start (state_dir, argv, -1, p[1], p[0], &s, err) < 0)
    {
      close (p[0]);
      close (p[1]);
      return -1;
    }
  close (p[1]);
  r = tar_read (p[0], &o, &terr);
  close (p[0]);
  return cp_end (&s, r, &terr, err);
}

int
vm_copy_in (const char *state_dir, int srcdir, const char *name, bool contents, const char *ctr_dst, cella_error_t *err)
{
  char *argv[] = { GUEST_INTERNAL, "__tar-in", (char *) ctr_dst, contents ? "contents" : "whole", NULL };
  cella_error_t terr = NULL;
  struct session s;
  struct sigaction ign = { .sa_handler = SIG_IGN }, old;
  int p[2], r;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  if (session_start (state_dir, argv, p[0], -1, p[1], &s, err) < 0)
    {
      close (p[0]);
      close (p[1]);
      return -1;
    }
  close (p[0]);
  sigaction (SIGPIPE, &ign, &old); /* the guest may refuse (and stop reading) at the first entry */
  r = tar_write_tree (p[1], srcdir, name, name, true, true, false, &terr);
  close (p[1]);
  sigaction (SIGPIPE, &old, NULL);
  return cp_end (&s, r, &terr, err);
}
