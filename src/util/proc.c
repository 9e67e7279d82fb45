/* Processes by /proc (see proc.h). */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

int
proc_stat_read (pid_t pid, struct proc_stat *st)
{
  char path[64], buf[1024], *p;
  cleanup_close int fd = -1;
  ssize_t n;
  int ppid;
  if (pid <= 0)
    return -1;
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || (n = read (fd, buf, sizeof buf - 1)) <= 0)
    return -1;
  buf[n] = '\0';
  /* the command name may hold spaces and parentheses: fields restart after the last ')' */
  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ')
    return -1;
  if (sscanf (p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &st->state,
              &ppid, &st->start_time)
      != 3)
    return -1;
  st->ppid = (pid_t) ppid;
  return 0;
}

unsigned long long
proc_start_time (pid_t pid)
{
  struct proc_stat st;
  if (proc_stat_read (pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
    return 0;
  return st.start_time;
}

bool
proc_alive (pid_t pid, unsigned long long start)
{
  return pid > 0 && start != 0 && proc_start_time (pid) == start;
}

bool
proc_surely_gone (pid_t pid)
{
  return pid <= 0 || (kill (pid, 0) < 0 && errno == ESRCH);
}

int
proc_daemonize (cella_error_t *err)
{
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC), status = 0;
  pid_t child;
  if (null < 0)
    return cella_error (err, errno, "open /dev/null");
  fflush (NULL);
  child = fork ();
  if (child < 0)
    {
      int e = errno;
      close (null);
      return cella_error (err, e, "fork");
    }
  if (child == 0)
    {
      pid_t daemon;
      if (setsid () < 0)
        _exit (1);
      daemon = fork ();
      if (daemon != 0)
        _exit (daemon < 0 ? 2 : 0);
      /* dup2 clears close-on-exec on the copies: the daemon's stdio stays across its exec */
      if (dup2 (null, 0) < 0 || dup2 (null, 1) < 0 || dup2 (null, 2) < 0)
        _exit (125);
      if (null > 2)
        close (null);
      return 0;
    }
  close (null);
  while (waitpid (child, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for the daemon's parent");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "start a daemon: %s failed in its parent",
                        WIFEXITED (status) && WEXITSTATUS (status) == 1 ? "setsid" : "fork");
  return 1;
}
