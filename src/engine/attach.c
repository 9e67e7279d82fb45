/* The attach protocol's client side (attach.h); the monitor side lives in monitor.c. */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../backend/session.h"
#include "container.h"

int
attach_connect (const char *id, cella_error_t *err)
{
  cleanup_free char *dir = ctr_run_dir (id);
  cleanup_close int dfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd;
  if (dfd < 0)
    return cella_error (err, errno, "attach to container %.12s (is it running?)", id);
  /* through the directory's fd: the full path may pass sun_path's 108 bytes */
  snprintf (sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/attach.sock", dfd);
  fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cella_error (err, errno, "socket");
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      return cella_error (err, e, "attach to container %.12s (is it running?)", id);
    }
  return fd;
}

static void
send_winsize (int sock)
{
  struct winsize ws;
  unsigned short rc[2];
  if (session_caller_winsize (&ws) < 0)
    return;
  rc[0] = ws.ws_row;
  rc[1] = ws.ws_col;
  attach_send (sock, ATT_RESIZE, rc, sizeof rc);
}

struct client {
  int sock;
  int sigfd;
  bool tty, stdin_open;
  int status;
};

/* One packet from the monitor; false when the connection is over. */
static bool
client_recv (struct client *c)
{
  char pkt[1 + ATT_MAX_PAYLOAD];
  ssize_t n = recv (c->sock, pkt, sizeof pkt, 0);
  if (n < 0 && errno == EINTR)
    return true;
  if (n <= 0)
    return false;
  switch (pkt[0])
    {
    case ATT_STDOUT:
      write_all (1, pkt + 1, n - 1);
      return true;
    case ATT_STDERR:
      write_all (2, pkt + 1, n - 1);
      return true;
    case ATT_EXIT:
      if (n >= 1 + (ssize_t) sizeof (int))
        memcpy (&c->status, pkt + 1, sizeof (int));
      return false;
    default:
      return true;
    }
}

static void
client_stdin (struct client *c)
{
  char buf[ATT_MAX_PAYLOAD];
  ssize_t n = read (0, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0)
    {
      attach_send (c->sock, ATT_STDIN_EOF, NULL, 0);
      c->stdin_open = false;
      return;
    }
  attach_send (c->sock, ATT_STDIN, buf, (size_t) n);
}

static void
client_signal (struct client *c)
{
  struct signalfd_siginfo si;
  int sig;
  if (read (c->sigfd, &si, sizeof si) != sizeof si)
    return;
  sig = (int) si.ssi_signo;
  if (sig == SIGWINCH)
    send_winsize (c->sock);
  else if (!c->tty)
    attach_send (c->sock, ATT_SIGNAL, &sig, sizeof sig);
}

int
attach_client (int sock, bool tty, bool stdin_open)
{
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  struct client c = { .sock = sock, .tty = tty, .stdin_open = stdin_open, .status = -1 };
  struct termios saved, raw;
  bool restored = true;
  sigset_t mask, old;

  sigemptyset (&mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaddset (&mask, sigs[i]);
  sigprocmask (SIG_BLOCK, &mask, &old);
  c.sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (tty && stdin_open && isatty (0) && tcgetattr (0, &saved) == 0)
    {
      raw = saved;
      cfmakeraw (&raw);
      restored = tcsetattr (0, TCSADRAIN, &raw) != 0;
    }
  if (tty)
    send_winsize (sock);
  for (;;)
    {
      struct pollfd fds[3] = {
        { .fd = sock, .events = POLLIN },
        { .fd = c.sigfd, .events = POLLIN },
        { .fd = c.stdin_open ? 0 : -1, .events = POLLIN },
      };
      if (poll (fds, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[0].revents && !client_recv (&c))
        break;
      if (fds[1].revents & POLLIN)
        client_signal (&c);
      if (fds[2].revents)
        client_stdin (&c);
    }
  if (!restored)
    tcsetattr (0, TCSADRAIN, &saved);
  close (c.sigfd);
  sigprocmask (SIG_SETMASK, &old, NULL);
  return c.status;
}
