/* cella compose: several containers' logs at once, each line prefixed with its service
 * ("web-1  | "), coloured when stdout is a terminal. One `cella logs [-f]` child per container,
 * its output read through a pipe; lines are written whole, so two services never interleave
 * within a line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compose_cli.h"

struct follower {
  pid_t pid;
  int fd;
  char *buf;
  size_t len;
};

static pid_t
spawn_logs (const char *ctr, bool follow, char **extra, int *fd)
{
  int p[2];
  pid_t pid;
  cleanup_strv char **args = NULL;
  char self[4096];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || pipe2 (p, O_CLOEXEC) < 0)
    return -1;
  self[n] = '\0';
  strv_push (&args, "cella");
  strv_push (&args, "logs");
  if (follow)
    strv_push (&args, "--follow");
  strv_append_all (&args, extra);
  strv_push (&args, ctr);
  pid = fork ();
  if (pid < 0)
    {
      close (p[0]);
      close (p[1]);
      return -1;
    }
  if (pid == 0)
    {
      dup2 (p[1], 1);
      dup2 (p[1], 2);
      signal (SIGINT, SIG_IGN); /* the parent decides when to stop following */
      execv (self, args);
      _exit (127);
    }
  close (p[1]);
  *fd = p[0];
  return pid;
}

static void
emit (const char *label, int width, int colour, const char *line, size_t n)
{
  if (colour)
    printf ("\033[%dm%-*s |\033[0m ", colour, width, label);
  else
    printf ("%-*s | ", width, label);
  fwrite (line, 1, n, stdout);
  putchar ('\n');
  fflush (stdout);
}

int
compose_logs_follow (const struct compose_log_src *srcs, size_t n, bool follow, char **extra_args, volatile int *stop)
{
  static const int colours[] = { 36, 33, 32, 35, 34, 96, 93, 92, 95, 94 };
  struct follower *f = xzalloc (sizeof *f * (n ? n : 1));
  struct pollfd *pfd = xzalloc (sizeof *pfd * (n ? n : 1));
  bool tty = isatty (STDOUT_FILENO);
  int width = 0, rc = 0;
  size_t open_n = 0;
  for (size_t i = 0; i < n; i++)
    {
      int w = (int) strlen (srcs[i].label);
      width = w > width ? w : width;
      f[i].fd = -1;
      f[i].pid = spawn_logs (srcs[i].container, follow, extra_args, &f[i].fd);
      if (f[i].pid > 0)
        open_n++;
    }
  while (open_n > 0 && !(stop && *stop))
    {
      for (size_t i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = f[i].fd, .events = POLLIN };
      if (poll (pfd, n, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          rc = -1;
          break;
        }
      for (size_t i = 0; i < n; i++)
        {
          char chunk[8192];
          ssize_t r;
          if (f[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          r = read (f[i].fd, chunk, sizeof chunk);
          if (r < 0 && errno == EINTR)
            continue;
          int colour = tty ? colours[i % (sizeof colours / sizeof *colours)] : 0;
          if (r <= 0)
            {
              if (f[i].len)
                emit (srcs[i].label, width, colour, f[i].buf, f[i].len);
              close (f[i].fd);
              f[i].fd = -1;
              f[i].len = 0;
              open_n--;
              continue;
            }
          f[i].buf = xrealloc (f[i].buf, f[i].len + (size_t) r);
          memcpy (f[i].buf + f[i].len, chunk, (size_t) r);
          f[i].len += (size_t) r;
          char *start = f[i].buf, *nl;
          while ((nl = memchr (start, '\n', f[i].len - (size_t) (start - f[i].buf))))
            {
              emit (srcs[i].label, width, colour, start, (size_t) (nl - start));
              start = nl + 1;
            }
          f[i].len -= (size_t) (start - f[i].buf);
          memmove (f[i].buf, start, f[i].len);
        }
    }
  for (size_t i = 0; i < n; i++)
    {
      if (f[i].fd >= 0)
        close (f[i].fd);
      if (f[i].pid > 0)
        {
          kill (f[i].pid, SIGTERM);
          waitpid (f[i].pid, NULL, 0);
        }
      free (f[i].buf);
    }
  free (f);
  free (pfd);
  return rc;
}
