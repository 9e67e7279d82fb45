/* The foreground session (session.h): one poll loop over the signals, the pidfd, the workload's
 * output, a backend's own fd and the caller's input. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "util/util.h"
#include "session.h"

/* What the loop keeps between rounds. */
struct loop {
  bool out_open;         /* out_from still gives output */
  bool out_ok;           /* writes to out still work: once one fails, output is read and dropped, so
                            that the workload never blocks on a full pipe or terminal */
  bool err_open, err_ok; /* the same for err_from, err */
  bool extra_open;
  int raw_fd; /* the terminal put in raw mode (in may end before the session does) */
  struct sigaction ignored[SESSION_MAX_IGNORE];
  size_t nignored;
};

void
session_init (struct session *s)
{
  memset (s, 0, sizeof *s);
  s->pidfd = s->in = s->in_to = s->out_from = s->out = s->err_from = s->err = s->extra = s->winsize_to = s->sigfd = -1;
  sigemptyset (&s->signals);
}

void
session_add_signals (struct session *s, const int *list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sigaddset (&s->signals, list[i]);
}

void
session_block (const struct session *s, sigset_t *old)
{
  sigprocmask (SIG_BLOCK, &s->signals, old);
}

void
session_unblock (const sigset_t *old)
{
  sigprocmask (SIG_SETMASK, old, NULL);
}

int
session_exit_status (const siginfo_t *si)
{
  if (si->si_code == CLD_EXITED)
    return si->si_status;
  return 128 + si->si_status;
}

int
session_caller_winsize (struct winsize *ws)
{
  return ioctl (isatty (1) ? 1 : 0, TIOCGWINSZ, ws) < 0 ? -1 : 0;
}

static void
copy_winsize (int to)
{
  struct winsize ws;
  if (session_caller_winsize (&ws) == 0)
    ioctl (to, TIOCSWINSZ, &ws);
}

static void
terminal_start (struct session *s, struct loop *l)
{
  l->raw_fd = -1;
  if (s->raw && s->in >= 0 && isatty (s->in) && tcgetattr (s->in, &s->saved) == 0)
    {
      struct termios raw = s->saved;
      cfmakeraw (&raw);
      if (tcsetattr (s->in, TCSADRAIN, &raw) == 0)
        l->raw_fd = s->in;
    }
  s->is_raw = l->raw_fd >= 0;
  if (s->winsize_to >= 0)
    copy_winsize (s->winsize_to);
}

static void
terminal_restore (struct session *s, struct loop *l)
{
  if (l->raw_fd >= 0)
    tcsetattr (l->raw_fd, TCSADRAIN, &s->saved);
  l->raw_fd = -1;
  s->is_raw = false;
}

static void
ignore_start (const struct session *s, struct loop *l)
{
  struct sigaction ign = { .sa_handler = SIG_IGN };
  l->nignored = 0;
  for (size_t i = 0; s->ignore && i < SESSION_MAX_IGNORE && s->ignore[i]; i++)
    sigaction (s->ignore[i], &ign, &l->ignored[l->nignored++]);
}

static void
ignore_end (const struct session *s, struct loop *l)
{
  for (size_t i = 0; i < l->nignored; i++)
    sigaction (s->ignore[i], &l->ignored[i], NULL);
}

static void
deliver (struct session *s, int sig)
{
  if (sig == SIGWINCH)
    {
      if (s->winsize_to >= 0)
        copy_winsize (s->winsize_to);
      else if (s->ops && s->ops->resize)
        s->ops->resize (s->cookie);
    }
  else if (sig == SIGCHLD)
    ; /* ours (the workload, QEMU): its end comes by the pidfd */
  else if (s->ops && s->ops->signal)
    s->ops->signal (s->cookie, sig);
  else
    syscall (SYS_pidfd_send_signal, s->pidfd, sig, NULL, 0);
}

static void
read_signals (struct session *s)
{
  struct signalfd_siginfo ssi;
  while (read (s->sigfd, &ssi, sizeof ssi) == (ssize_t) sizeof ssi)
    deliver (s, (int) ssi.ssi_signo);
}

/* Copy what is readable from `from` to `to`: false at its end (EOF or a read error); *to_ok false
 * once a write to `to` failed; *count (when given) grows by what was read. */
static bool
relay (int from, int to, bool *to_ok, unsigned long long *count)
{
  char buf[16384];
  ssize_t n = read (from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  if (count)
    *count += (unsigned long long) n;
  if (*to_ok && write_all (to, buf, (size_t) n) < 0)
    *to_ok = false;
  return true;
}

/* The pty's EOF character, as typing ^D would. */
static void
terminal_eof (int fd)
{
  struct termios t;
  char eof = tcgetattr (fd, &t) == 0 ? (char) t.c_cc[VEOF] : 4;
  write_all (fd, &eof, 1);
}

static void
relay_input (struct session *s)
{
  bool ok = true;
  if (relay (s->in, s->in_to, &ok, NULL) && ok)
    return;
  /* the end of input, or the workload's side takes no more */
  s->in = -1;
  if (s->ops && s->ops->input_end)
    s->ops->input_end (s->cookie);
  else
    terminal_eof (s->in_to);
}

/* What the workload's output still holds once its process is gone, and the backend's fd. */
static void
drain (struct session *s, struct loop *l)
{
  while (l->out_open)
    {
      struct pollfd f = { .fd = s->out_from, .events = POLLIN };
      if (poll (&f, 1, s->drain_ms) <= 0 || !relay (s->out_from, s->out, &l->out_ok, &s->out_bytes))
        break;
    }
  while (l->err_open)
    {
      struct pollfd f = { .fd = s->err_from, .events = POLLIN };
      if (poll (&f, 1, s->drain_ms) <= 0 || !relay (s->err_from, s->err, &l->err_ok, &s->err_bytes))
        break;
    }
  while (l->extra_open)
    {
      struct pollfd f = { .fd = s->extra, .events = POLLIN };
      if (poll (&f, 1, 0) <= 0)
        break;
      l->extra_open = s->ops->extra (s->cookie, s->extra);
    }
}

enum { F_SIGNALS, F_PID, F_OUT, F_ERR, F_EXTRA, F_IN, F__COUNT };

static void
loop (struct session *s, struct loop *l)
{
  int timeout = -1;
  for (;;)
    {
      struct pollfd f[F__COUNT] = {
        [F_SIGNALS] = { .fd = s->sigfd, .events = POLLIN },
        [F_PID] = { .fd = s->pidfd, .events = POLLIN },
        [F_OUT] = { .fd = l->out_open ? s->out_from : -1, .events = POLLIN },
        [F_ERR] = { .fd = l->err_open ? s->err_from : -1, .events = POLLIN },
        [F_EXTRA] = { .fd = l->extra_open ? s->extra : -1, .events = POLLIN },
        [F_IN] = { .fd = s->hold_input ? -1 : s->in, .events = POLLIN },
      };
      if (poll (f, F__COUNT, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }
      if (f[F_SIGNALS].revents)
        read_signals (s);
      if (f[F_OUT].revents && !relay (s->out_from, s->out, &l->out_ok, &s->out_bytes))
        l->out_open = false;
      if (f[F_ERR].revents && !relay (s->err_from, s->err, &l->err_ok, &s->err_bytes))
        l->err_open = false;
      if (f[F_EXTRA].revents)
        l->extra_open = s->ops->extra (s->cookie, s->extra);
      if (f[F_IN].revents && s->in >= 0)
        relay_input (s);
      if (f[F_PID].revents & POLLIN)
        return;
      if (s->ops && s->ops->tick)
        timeout = s->ops->tick (s->cookie);
    }
}

int
session_run (struct session *s)
{
  struct loop l = { .out_open = s->out_from >= 0,
                    .out_ok = true,
                    .err_open = s->err_from >= 0,
                    .err_ok = true,
                    .extra_open = s->extra >= 0 && s->ops && s->ops->extra };
  int r = 0;
  if (!sigisemptyset (&s->signals))
    s->sigfd = signalfd (-1, &s->signals, SFD_CLOEXEC | SFD_NONBLOCK);
  ignore_start (s, &l);
  terminal_start (s, &l);
  loop (s, &l);
  drain (s, &l);
  terminal_restore (s, &l);
  memset (&s->si, 0, sizeof s->si);
  while (waitid (P_PIDFD, s->pidfd, &s->si, WEXITED) < 0)
    if (errno != EINTR)
      {
        r = -1;
        break;
      }
  if (s->sigfd >= 0)
    {
      int e = errno;
      close (s->sigfd);
      errno = e;
    }
  s->sigfd = -1;
  ignore_end (s, &l);
  return r < 0 ? -1 : session_exit_status (&s->si);
}
