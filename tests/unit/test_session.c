/* Unit tests for the foreground session (src/backend/session.c): a child driven through pipes
 * (input relayed, its end told, output relayed, exit status), signals through the callback and
 * by default through the pidfd, a backend's own fd that releases held input, a pty's EOF
 * character, and the caller's terminal in raw mode while it runs and restored after. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "backend/session.h"
#include "util/util.h"
#include "tap.h"

enum child_kind { CHILD_ECHO, CHILD_WAIT, CHILD_COUNT, CHILD_SIGNAL_PARENT };

/* A child with stdin and stdout at the given fds: CHILD_ECHO copies its input to its output and
 * exits 3; CHILD_WAIT waits for a signal; CHILD_COUNT exits with the number of bytes it read;
 * CHILD_SIGNAL_PARENT sends its parent SIGUSR2 (once the session runs) and exits 0. */
static int
spawn (enum child_kind kind, int in, int out, const int *close_fds, size_t nclose)
{
  pid_t pid;
  int pidfd;
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    abort ();
  if (pid == 0)
    {
      char buf[256];
      ssize_t n;
      int total = 0;
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0)
        _exit (100);
      for (size_t i = 0; i < nclose; i++)
        close (close_fds[i]);
      if (kind == CHILD_WAIT)
        for (;;)
          pause ();
      if (kind == CHILD_SIGNAL_PARENT)
        {
          usleep (200000);
          kill (getppid (), SIGUSR2);
          usleep (100000);
          _exit (0);
        }
      while ((n = read (0, buf, sizeof buf)) > 0)
        {
          total += (int) n;
          if (kind == CHILD_ECHO && write_all (1, buf, (size_t) n) < 0)
            _exit (101);
        }
      _exit (kind == CHILD_ECHO ? 3 : total);
    }
  pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    abort ();
  return pidfd;
}

static void
xpipe (int p[2])
{
  if (pipe2 (p, O_CLOEXEC) < 0)
    abort ();
}

static char *
read_all (int fd)
{
  char *s = xzalloc (4096);
  size_t len = 0;
  ssize_t n;
  while (len < 4095 && (n = read (fd, s + len, 4095 - len)) > 0)
    len += (size_t) n;
  return s;
}

struct seen {
  struct session *s;
  int eofs;
  int sig;
  int forward_as; /* what the signal callback sends the child */
  int close_on_eof;
  char extra[64];
  size_t extra_len;
  int ticks;
  bool raw_during; /* `in` was in raw mode when the extra fd was read */
};

static void
seen_input_end (void *cookie)
{
  struct seen *v = cookie;
  v->eofs++;
  if (v->close_on_eof >= 0)
    close (v->close_on_eof); /* a pipe's end of file: the writer closes it */
  v->close_on_eof = -1;
}

static void
seen_signal (void *cookie, int sig)
{
  struct seen *v = cookie;
  v->sig = sig;
  syscall (SYS_pidfd_send_signal, v->s->pidfd, v->forward_as, NULL, 0);
}

static bool
seen_extra (void *cookie, int fd)
{
  struct seen *v = cookie;
  struct termios t;
  ssize_t n = read (fd, v->extra + v->extra_len, sizeof v->extra - 1 - v->extra_len);
  if (n <= 0)
    return false;
  v->extra_len += (size_t) n;
  if (strstr (v->extra, "ready"))
    v->s->hold_input = false;
  if (v->s->in >= 0 && isatty (v->s->in) && tcgetattr (v->s->in, &t) == 0)
    v->raw_during = !(t.c_lflag & ICANON);
  return true;
}

static int
seen_tick (void *cookie)
{
  struct seen *v = cookie;
  v->ticks++;
  return -1;
}

static const struct session_ops seen_ops = {
  .signal = seen_signal,
  .input_end = seen_input_end,
  .extra = seen_extra,
  .tick = seen_tick,
};

/* Input → the child → output; the end of input told once; the child's exit code. */
static void
test_pipes (bool held)
{
  struct session s;
  struct seen v = { .s = &s, .close_on_eof = -1 };
  int caller[2], to_child[2], from_child[2], out[2], extra[2], status;
  cleanup_free char *got = NULL;
  xpipe (caller);
  xpipe (to_child);
  xpipe (from_child);
  xpipe (out);
  xpipe (extra);
  if (write_all (caller[1], "hello\n", 6) < 0 || (held && write_all (extra[1], "ready\n", 6) < 0))
    abort ();
  close (caller[1]);
  session_init (&s);
  s.ops = &seen_ops;
  s.cookie = &v;
  {
    int others[] = { to_child[1], from_child[0], caller[0], out[0], out[1], extra[0], extra[1] };
    s.pidfd = spawn (CHILD_ECHO, to_child[0], from_child[1], others, sizeof others / sizeof others[0]);
  }
  close (to_child[0]);
  close (from_child[1]);
  s.in = caller[0];
  s.in_to = v.close_on_eof = to_child[1];
  s.out_from = from_child[0];
  s.out = out[1];
  s.drain_ms = 100;
  if (held)
    {
      s.extra = extra[0];
      s.hold_input = true;
    }
  status = session_run (&s);
  close (out[1]);
  got = read_all (out[0]);
  CHECK (status == 3, "%s: the child's exit code (%d)", held ? "held input" : "pipes", status);
  CHECK_STR (got, "hello\n",
             held ? "held input: relayed once released" : "pipes: the input relayed and the output back");
  CHECK (v.eofs == 1 && s.in == -1, "%s: the end of input told once (%d)", held ? "held input" : "pipes", v.eofs);
  if (held)
    CHECK (strcmp (v.extra, "ready\n") == 0, "held input: the extra fd read by the backend's callback");
  if (!held)
    CHECK (v.ticks > 0, "pipes: the tick called after a round (%d)", v.ticks);
  CHECK (s.si.si_code == CLD_EXITED && s.si.si_status == 3, "%s: how the child ended in si",
         held ? "held input" : "pipes");
  close (caller[0]);
  close (from_child[0]);
  close (out[0]);
  close (extra[0]);
  close (extra[1]);
  close (s.pidfd);
}

/* Two output streams (the vm's stdout and stderr ports): each to its own fd, never mixed, and
 * what was read from each counted; also what the loop or the drain after the end took. */
static void
test_two_outputs (void)
{
  struct session s;
  int nothing[2], o[2], e[2], to_o[2], to_e[2];
  cleanup_free char *got_o = NULL, *got_e = NULL;
  xpipe (nothing);
  xpipe (o);
  xpipe (e);
  xpipe (to_o);
  xpipe (to_e);
  if (write_all (o[1], "out\n", 4) < 0 || write_all (e[1], "error\n", 6) < 0)
    abort ();
  close (o[1]);
  close (e[1]);
  close (nothing[1]);
  session_init (&s);
  {
    int others[] = { o[0], e[0], to_o[0], to_o[1], to_e[0], to_e[1] };
    s.pidfd = spawn (CHILD_COUNT, nothing[0], nothing[0], others, sizeof others / sizeof others[0]);
  }
  close (nothing[0]);
  s.out_from = o[0];
  s.out = to_o[1];
  s.err_from = e[0];
  s.err = to_e[1];
  s.drain_ms = 100;
  CHECK (session_run (&s) == 0, "two outputs: the child's exit code");
  close (to_o[1]);
  close (to_e[1]);
  got_o = read_all (to_o[0]);
  got_e = read_all (to_e[0]);
  CHECK_STR (got_o, "out\n", "two outputs: the first to out");
  CHECK_STR (got_e, "error\n", "two outputs: the second to err, apart");
  CHECK (s.out_bytes == 4 && s.err_bytes == 6, "two outputs: bytes counted per stream (%llu, %llu)", s.out_bytes,
         s.err_bytes);
  close (o[0]);
  close (e[0]);
  close (to_o[0]);
  close (to_e[0]);
  close (s.pidfd);
}

/* A blocked signal taken over by the session: to the callback, or by default to the pidfd. */
static void
test_signal (bool callback)
{
  static const int list[] = { SIGUSR1, SIGCHLD };
  struct session s;
  struct seen v = { .s = &s, .close_on_eof = -1, .forward_as = SIGTERM };
  sigset_t old;
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC), status;
  session_init (&s);
  if (callback)
    {
      s.ops = &seen_ops;
      s.cookie = &v;
    }
  session_add_signals (&s, list, 2);
  session_block (&s, &old);
  s.pidfd = spawn (CHILD_WAIT, null, null, NULL, 0);
  kill (getpid (), SIGUSR1);
  status = session_run (&s);
  session_unblock (&old);
  if (callback)
    {
      CHECK (v.sig == SIGUSR1, "signal: the callback got SIGUSR1 (%d)", v.sig);
      CHECK (status == 128 + SIGTERM, "signal: the child ended by what the callback sent: %d", status);
    }
  else
    CHECK (status == 128 + SIGUSR1, "signal: by default through the pidfd: %d", status);
  close (null);
  close (s.pidfd);
}

/* Without an input_end callback the end of input is the pty's EOF character: the child reads its
 * line and then end of file. The caller's terminal (here another pty) is raw while it runs. */
static void
test_pty (void)
{
  struct session s;
  struct seen v = { .s = &s, .close_on_eof = -1 };
  static const struct session_ops extra_only = { .extra = seen_extra };
  int master, slave, cmaster, cslave, caller[2], extra[2], sink, status;
  struct termios before, after;
  if (openpty (&master, &slave, NULL, NULL, NULL) < 0 || openpty (&cmaster, &cslave, NULL, NULL, NULL) < 0)
    {
      tap_skip ("no pty", "pty: EOF character and raw mode");
      return;
    }
  xpipe (caller);
  xpipe (extra);
  sink = open ("/dev/null", O_RDWR | O_CLOEXEC);
  tcgetattr (cslave, &before);
  session_init (&s);
  s.ops = &extra_only;
  s.cookie = &v;
  /* a child that ends at once: the extra fd, written before, is read in the same round */
  s.pidfd = spawn (CHILD_COUNT, sink, sink, NULL, 0);
  if (write_all (caller[1], "abc\n", 4) < 0 || write_all (extra[1], "x", 1) < 0)
    abort ();
  close (caller[1]);
  /* the caller's terminal: raw while the session runs; our input comes from the pipe */
  s.in = cslave;
  s.raw = true;
  s.extra = extra[0];
  s.hold_input = true;
  session_run (&s);
  tcgetattr (cslave, &after);
  CHECK (v.raw_during, "pty: the caller's terminal raw while it runs");
  CHECK (memcmp (&before, &after, sizeof before) == 0, "pty: the caller's terminal restored");
  close (extra[1]);
  close (extra[0]);

  /* now the input from the pipe to the pty the child reads */
  close (s.pidfd);
  session_init (&s);
  {
    int others[] = { master, slave, cmaster, cslave, caller[0] };
    s.pidfd = spawn (CHILD_COUNT, slave, slave, others, sizeof others / sizeof others[0]);
  }
  close (slave);
  s.in = caller[0];
  s.in_to = s.out_from = s.winsize_to = master;
  s.out = sink;
  s.drain_ms = 100;
  status = session_run (&s);
  CHECK (status == 4, "pty: the line, then the EOF character as end of file (%d)", status);
  close (s.pidfd);
  close (master);
  close (cmaster);
  close (cslave);
  close (caller[0]);
  close (sink);
}

/* A signal in `ignore` is SIG_IGN while it runs (the child sends it to us) and as before after. */
static void
test_ignore (void)
{
  static const int ignore[] = { SIGUSR2, 0 };
  struct sigaction after;
  struct session s;
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC), status;
  session_init (&s);
  s.ignore = ignore;
  s.pidfd = spawn (CHILD_SIGNAL_PARENT, null, null, NULL, 0);
  status = session_run (&s);
  sigaction (SIGUSR2, NULL, &after);
  CHECK (status == 0, "ignore: SIGUSR2 ignored while it runs (%d)", status);
  CHECK (after.sa_handler == SIG_DFL, "ignore: the disposition as before after the session");
  close (s.pidfd);
  close (null);
}

int
main (void)
{
  test_pipes (false);
  test_pipes (true);
  test_two_outputs ();
  test_signal (true);
  test_signal (false);
  test_pty ();
  test_ignore ();
  return tap_done ();
}
