/* cella-monitor: the small monitor (build/cella-monitor, issue 18). The full monitor (`cella
 * __monitor`, src/engine/monitor.c) starts the workload, records it running and then execve()s
 * this program in the same process: the workload stays its child, the attach socket and the
 * attached clients stay open, and what it keeps resident is this small static binary instead of
 * the whole of cella. It moves the workload's output to the log and to the attached clients,
 * passes their input, terminal size and signals on, and waits for the workload's end; then it
 * execve()s the full binary again (`cella __monitor ID --resume ...`), which records the exit,
 * applies the restart policy and cleans up, as before. Health checks need the plan and the
 * backend: a container with one keeps the full monitor.
 *
 * argv: cella-monitor __monitor ID PIDFD OUT ERR IN MASTER LISTEN LOG-PATH LOG-MAX STARTED-NS
 *       DELAY-MS FULL-BINARY [CLIENT-FD...]   (an fd of -1: none; "__monitor ID" as the full
 *       monitor's, for whoever looks for a container's monitor by its command line) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "engine/attach_hub.h"
#include "engine/logfile.h"

struct small {
  int pidfd, out, errp, master, listen;
  struct att_hub hub; /* the clients, the log, the terminal (master) and the stdin pipe */
};

/* The loop of monitor.c's mon_loop, less the health checks: returns the docker-style status. */
static int
run (struct small *m)
{
  bool out_open = m->out >= 0, err_open = m->errp >= 0;
  siginfo_t si;
  for (;;)
    {
      struct pollfd fds[4 + ATT_MAX_CLIENTS] = {
        { .fd = m->pidfd, .events = POLLIN },
        { .fd = out_open ? m->out : -1, .events = POLLIN },
        { .fd = err_open ? m->errp : -1, .events = POLLIN },
        { .fd = m->listen, .events = POLLIN },
      };
      size_t nc = m->hub.nclients;
      for (size_t i = 0; i < nc; i++)
        fds[4 + i] = (struct pollfd){ .fd = m->hub.clients[i], .events = POLLIN };
      if (poll (fds, 4 + nc, -1) < 0 && errno != EINTR)
        break;
      if (out_open && fds[1].revents)
        out_open = att_hub_pump (&m->hub, m->out, LOG_STDOUT);
      if (err_open && fds[2].revents)
        err_open = att_hub_pump (&m->hub, m->errp, LOG_STDERR);
      if (fds[3].revents & POLLIN)
        /* cppcheck-suppress nullPointer ; accept4's addrlen may be NULL (accept4(2)) */
        att_hub_add (&m->hub, accept4 (m->listen, NULL, NULL, SOCK_CLOEXEC));
      for (size_t i = nc; i-- > 0;)
        if (fds[4 + i].revents)
          {
            int sig = att_hub_client_packet (&m->hub, i);
            if (sig > 0)
              syscall (SYS_pidfd_send_signal, m->pidfd, sig, NULL, 0);
          }
      if (fds[0].revents & POLLIN)
        break;
    }
  while (out_open || err_open)
    {
      struct pollfd fds[2]
          = { { .fd = out_open ? m->out : -1, .events = POLLIN }, { .fd = err_open ? m->errp : -1, .events = POLLIN } };
      if (poll (fds, 2, 100) <= 0)
        break;
      if (out_open && fds[0].revents)
        out_open = att_hub_pump (&m->hub, m->out, LOG_STDOUT);
      if (err_open && fds[1].revents)
        err_open = att_hub_pump (&m->hub, m->errp, LOG_STDERR);
    }
  log_writer_close (m->hub.log);
  m->hub.log = NULL;
  memset (&si, 0, sizeof si);
  while (waitid (P_PIDFD, m->pidfd, &si, WEXITED) < 0)
    if (errno != EINTR)
      return 255;
  return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

static int
fd_arg (const char *s)
{
  char *end;
  long v = strtol (s, &end, 10);
  if (*end || v < -1 || v > 65535)
    return -2;
  if (v >= 0)
    fcntl ((int) v, F_SETFD, FD_CLOEXEC);
  return (int) v;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

int
main (int argc, char **argv)
{
  extern char **environ;
  struct small m = { .hub = { .nclients = 0 } };
  cella_error_t err = NULL;
  int status, *fds[] = { &m.pidfd, &m.out, &m.errp, &m.hub.in, &m.master, &m.listen };
  char st[16], lst[16], *full[16 + ATT_MAX_CLIENTS];
  size_t k = 0;
  if (argc < 14 || argc > 14 + ATT_MAX_CLIENTS || strcmp (argv[1], "__monitor") != 0)
    {
      fprintf (stderr, "cella-monitor: started by cella itself\n");
      return 125;
    }
  for (int i = 0; i < 6; i++)
    if ((*fds[i] = fd_arg (argv[3 + i])) == -2)
      return 125;
  for (int i = 14; i < argc; i++)
    att_hub_add (&m.hub, fd_arg (argv[i]));
  m.hub.tty = m.master;
  m.hub.log = log_writer_open (argv[9], atoll (argv[10]), &err);
  if (m.hub.log == NULL)
    {
      cella_error_free (&err);
      return 125;
    }
  status = run (&m);
  /* the workload is reaped: the full binary records it, with the socket and the clients */
  close_fd (&m.pidfd);
  if (m.master >= 0)
    close_fd (&m.master);
  else
    close_fd (&m.out);
  close_fd (&m.errp);
  close_fd (&m.hub.in);
  snprintf (st, sizeof st, "%d", status);
  snprintf (lst, sizeof lst, "%d", m.listen);
  full[k++] = (char *) "cella";
  full[k++] = (char *) "__monitor";
  full[k++] = argv[2];
  full[k++] = (char *) "--resume";
  full[k++] = st;
  full[k++] = lst;
  full[k++] = argv[11];
  full[k++] = argv[12];
  if (m.listen >= 0)
    fcntl (m.listen, F_SETFD, 0);
  for (size_t i = 0; i < m.hub.nclients; i++)
    {
      char *s = NULL;
      if (asprintf (&s, "%d", m.hub.clients[i]) < 0)
        continue;
      fcntl (m.hub.clients[i], F_SETFD, 0);
      full[k++] = s;
    }
  full[k] = NULL;
  execve (argv[13], full, environ);
  /* nothing records the exit now: the state's dead monitor is what `cella ps` reconciles */
  perror ("cella-monitor: execve");
  return 125;
}
