/* Run the workload as PID 1's only child: with a tty, a pseudo-terminal of
 * ours as its stdio (its controlling terminal; we relay hvc0 to the master
 * and the master to the cella.stdout port), else pipes we relay (stdin from
 * hvc0, stdout and stderr to the cella.stdout and cella.stderr ports); ids,
 * cwd, env; then supervise: reap every zombie, forward signals (ours and
 * "signal N" lines from the host), resize the terminal ("winsize R C"), tell
 * the host "ready", and end when the workload exits. */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void __attribute__ ((noreturn)) child_fail (int code, const char *what, const char *arg)
{
  char buf[512];
  int n = snprintf (buf, sizeof buf, "cella-init: %s `%s`: %s\n", what, arg, strerror (errno));
  if (n > 0 && write (STDERR_FILENO, buf, (size_t) n) < 0)
    {
    }
  _exit (code);
}

static void __attribute__ ((noreturn)) child_exec (const struct vm_guest_config *c, const int fds[3])
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;
  /* the defaults whatever PID 1 did with its own signals (a SIG_IGN survives execve) */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction (sig, &dfl, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  setsid ();
  for (int i = 0; i < 3; i++)
    if (dup2 (fds[i], i) < 0)
      child_fail (EXIT_CELLA_ERROR, "dup2", "stdio");
  if (c->tty && ioctl (STDIN_FILENO, TIOCSCTTY, 0) < 0)
    child_fail (EXIT_CELLA_ERROR, "make the controlling terminal", "/dev/pts");
  if (privs_before_ids (c) < 0)
    child_fail (EXIT_CELLA_ERROR, "drop capabilities", "");
  if (setgroups (c->ngroups, c->groups) < 0)
    child_fail (EXIT_CELLA_ERROR, "setgroups", "");
  if (setgid (c->gid) < 0)
    child_fail (EXIT_CELLA_ERROR, "setgid", "");
  if (setuid (c->uid) < 0)
    child_fail (EXIT_CELLA_ERROR, "setuid", "");
  if (privs_after_ids (c) < 0)
    child_fail (EXIT_CELLA_ERROR, "capabilities, no_new_privs", "");
  if (chdir (c->cwd ? c->cwd : "/") < 0)
    child_fail (EXIT_CELLA_ERROR, "chdir", c->cwd ? c->cwd : "/");
  /* execvp searches the PATH of environ: the workload's own. */
  environ = c->env;
  execvp (c->argv[0], c->argv);
  child_fail (errno == ENOENT || errno == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, "exec", c->argv[0]);
}

const struct vm_guest_config *boot_config;

int
privs_before_ids (const struct vm_guest_config *c)
{
  if (!c->caps_set)
    return 0;
  for (int cap = 0; cap < 64; cap++)
    if (!(c->caps & (1ULL << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return -1;
  return 0;
}

int
privs_after_ids (const struct vm_guest_config *c)
{
  if (c->caps_set && getuid () == 0)
    {
      struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
      struct __user_cap_data_struct d[2];
      for (int i = 0; i < 2; i++)
        d[i].effective = d[i].permitted = d[i].inheritable = (unsigned) (c->caps >> (32 * i));
      if (syscall (SYS_capset, &h, d) < 0)
        return -1;
    }
  if (c->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -1;
  return 0;
}

static void
forward (pid_t pid, int sig)
{
  if (pid > 0 && sig > 0 && sig < 65)
    kill (pid, sig);
}

/* The workload's stdin is fed from hvc0: without a tty into a pipe, so that
 * the host's "eof" line can end it (a console has no end of file); with one
 * into the terminal's master (its line discipline echoes and edits). */
struct stdin_relay {
  int in;  /* hvc0, a second non-blocking open */
  int out; /* the pipe's write end or the master, -1 once closed */
  bool eof;
  size_t len;
  char buf[4096];
};

static void
relay_close (struct stdin_relay *r)
{
  if (r->out >= 0)
    close (r->out);
  if (r->in >= 0)
    close (r->in);
  r->in = r->out = -1;
}

static void
relay_pump (struct stdin_relay *r)
{
  if (r->out < 0)
    return;
  if (r->in >= 0 && r->len < sizeof r->buf)
    {
      ssize_t n = read (r->in, r->buf + r->len, sizeof r->buf - r->len);
      if (n > 0)
        r->len += (size_t) n;
      else if (n == 0)
        {
          close (r->in); /* a hung-up console: nothing more will come (the pipe waits
                            for "eof") */
          r->in = -1;
        }
    }
  if (r->len > 0)
    {
      ssize_t n = write (r->out, r->buf, r->len);
      if (n < 0 && errno == EPIPE)
        {
          relay_close (r); /* the workload closed its stdin */
          return;
        }
      if (n > 0)
        {
          memmove (r->buf, r->buf + n, r->len - (size_t) n);
          r->len -= (size_t) n;
        }
    }
  if (r->eof && r->len == 0)
    relay_close (r);
}

/* The workload's stdout and stderr (pipes), or its terminal's master with a
 * tty, are relayed to the cella.stdout and cella.stderr ports: a port holds
 * back (its data waits in QEMU until the host takes it), so a slow reader on
 * the host slows the workload down instead of losing its output (hvc0, a
 * console, drops what the host does not take at once); the bytes are counted
 * (port_write) for the host's "exit N OUT ERR". */
struct out_relay {
  int in;   /* the pipe's read end or the master (non-blocking), -1 at its end
               (a master reads EIO once no process holds the terminal) */
  int port; /* guest_io.out or guest_io.err */
  size_t len;
  char buf[16384];
};

static void
out_pump (struct out_relay *r)
{
  if (r->in >= 0 && r->len < sizeof r->buf)
    {
      ssize_t n = read (r->in, r->buf + r->len, sizeof r->buf - r->len);
      if (n > 0)
        r->len += (size_t) n;
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        {
          close (r->in);
          r->in = -1;
        }
    }
  if (r->len > 0)
    {
      ssize_t n = port_write (r->port, r->buf, r->len);
      if (n > 0)
        {
          memmove (r->buf, r->buf + n, r->len - (size_t) n);
          r->len -= (size_t) n;
        }
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        r->len = 0; /* the port fails: dropped, so that the workload never waits on it */
    }
}

static void
out_pollfds (const struct out_relay *r, struct pollfd *p)
{
  p[0] = (struct pollfd){ .fd = r->in >= 0 && r->len < sizeof r->buf ? r->in : -1, .events = POLLIN };
  p[1] = (struct pollfd){ .fd = r->len > 0 ? r->port : -1, .events = POLLOUT };
}

/* Once the workload is gone (and what it left, kill_rest): what its pipes
 * still hold, all written to the ports, as long as the host takes to read it.
 * A pipe that stays open (a writer kill_rest could not end) and quiet for 1 s
 * ends the wait. */
static void
out_drain (struct out_relay *r, size_t n)
{
  for (;;)
    {
      struct pollfd p[4];
      bool pending = false, open = false;
      for (size_t i = 0; i < n; i++)
        {
          out_pollfds (&r[i], p + 2 * i);
          pending |= r[i].len > 0;
          open |= r[i].in >= 0;
        }
      if (!pending && !open)
        break;
      int rc = poll (p, 2 * n, pending ? -1 : 1000);
      if (rc == 0 || (rc < 0 && errno != EINTR))
        break;
      for (size_t i = 0; i < n; i++)
        if (p[2 * i].revents | p[2 * i + 1].revents)
          out_pump (&r[i]);
    }
  for (size_t i = 0; i < n; i++)
    if (r[i].in >= 0)
      {
        close (r[i].in);
        r[i].in = -1;
      }
}

/* The workload's terminal (its master), -1 without a tty. */
static int tty_master = -1;

/* "signal N\n", "eof\n" and "winsize ROWS COLS\n" lines from the host; anything
 * else is ignored. */
static void
ctl_read (pid_t pid, bool *hup, struct stdin_relay *relay)
{
  static char in[256];
  static size_t len;
  ssize_t n = read (guest_io.ctl, in + len, sizeof in - 1 - len);
  if (n <= 0)
    {
      /* 0: the host end is not connected (yet, or any more). */
      *hup = n == 0 || (errno != EAGAIN && errno != EINTR);
      return;
    }
  len += (size_t) n;
  in[len] = '\0';
  char *nl;
  while ((nl = memchr (in, '\n', len)) != NULL)
    {
      *nl = '\0';
      int sig;
      unsigned rows, cols;
      char extra;
      if (sscanf (in, "signal %d%c", &sig, &extra) == 1)
        forward (pid, sig);
      else if (sscanf (in, "winsize %u %u%c", &rows, &cols, &extra) == 2 && tty_master >= 0 && rows < 65536
               && cols < 65536)
        {
          /* the kernel tells the terminal's foreground process group (SIGWINCH) */
          struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };
          ioctl (tty_master, TIOCSWINSZ, &ws);
        }
      else if (strcmp (in, "eof") == 0)
        {
          relay->eof = true;
          relay_pump (relay);
        }
      size_t used = (size_t) (nl - in) + 1;
      memmove (in, nl + 1, len - used);
      len -= used;
    }
  if (len == sizeof in - 1)
    len = 0; /* an overlong line: drop it */
}

static int
status_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return EXIT_CELLA_ERROR;
}

/* After the workload: kill what it left behind and reap it, for a bounded time.
 */
static void
kill_rest (void)
{
  kill (-1, SIGKILL);
  for (int i = 0; i < 200; i++)
    {
      pid_t p = waitpid (-1, NULL, WNOHANG);
      if (p < 0)
        return;
      if (p == 0)
        usleep (5000);
    }
}

int
workload_run (const struct vm_guest_config *c)
{
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
    sigaddset (&set, forwarded[i]);
  boot_config = c;
  int sfd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    fail ("signalfd: %s", strerror (errno));
  struct stdin_relay relay = { .in = -1, .out = -1 };
  static struct out_relay outs[2] = { { .in = -1, .port = -1 }, { .in = -1, .port = -1 } };
  int pipefd[2] = { -1, -1 }, outfd[2] = { -1, -1 }, errfd[2] = { -1, -1 }, slave = -1;
  relay.in = open ("/dev/hvc0", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (relay.in < 0)
    fail ("stdin relay (/dev/hvc0): %s", strerror (errno));
  if (c->tty)
    {
      /* hvc0 stays raw: the terminal is ours (a console drops what the host
       * does not take at once, a port waits) */
      char name[64];
      tty_master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (tty_master < 0 || grantpt (tty_master) < 0 || unlockpt (tty_master) < 0
          || ptsname_r (tty_master, name, sizeof name) != 0 || (slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
        fail ("the workload's terminal (/dev/ptmx): %s", strerror (errno));
      relay.out = fcntl (tty_master, F_DUPFD_CLOEXEC, 3);
      outs[0] = (struct out_relay){ .in = tty_master, .port = guest_io.out };
      if (relay.out < 0)
        fail ("the workload's terminal: %s", strerror (errno));
      fcntl (relay.out, F_SETFL, O_NONBLOCK);
      fcntl (tty_master, F_SETFL, O_NONBLOCK);
    }
  else
    {
      if (pipe2 (pipefd, O_CLOEXEC) < 0)
        fail ("stdin relay (pipe): %s", strerror (errno));
      relay.out = pipefd[1];
      fcntl (relay.out, F_SETFL, O_NONBLOCK);
      if (pipe2 (outfd, O_CLOEXEC) < 0 || pipe2 (errfd, O_CLOEXEC) < 0)
        fail ("stdout/stderr relay (pipe): %s", strerror (errno));
      outs[0] = (struct out_relay){ .in = outfd[0], .port = guest_io.out };
      outs[1] = (struct out_relay){ .in = errfd[0], .port = guest_io.err };
      fcntl (outfd[0], F_SETFL, O_NONBLOCK);
      fcntl (errfd[0], F_SETFL, O_NONBLOCK);
    }

  pid_t pid = fork ();
  if (pid < 0)
    fail ("fork: %s", strerror (errno));
  if (pid == 0)
    child_exec (c, c->tty ? (const int[3]){ slave, slave, slave } : (const int[3]){ pipefd[0], outfd[1], errfd[1] });
  if (slave >= 0)
    close (slave);
  if (pipefd[0] >= 0)
    close (pipefd[0]);
  if (outfd[1] >= 0)
    close (outfd[1]);
  if (errfd[1] >= 0)
    close (errfd[1]);
  ctl_send ("ready\n");

  int code = -1;
  bool hup = false;
  while (code < 0)
    {
      struct pollfd p[8 + 1 + 3 * EXEC_MAX_SESSIONS] = {
        { .fd = sfd, .events = POLLIN },
        { .fd = hup ? -1 : guest_io.ctl, .events = POLLIN | (ctl_pending () ? POLLOUT : 0) },
        { .fd = relay.out >= 0 && relay.len < sizeof relay.buf ? relay.in : -1, .events = POLLIN },
        { .fd = relay.len > 0 ? relay.out : -1, .events = POLLOUT },
      };
      out_pollfds (&outs[0], p + 4);
      out_pollfds (&outs[1], p + 6);
      size_t np = 8 + exec_pollfds (p + 8, sizeof p / sizeof *p - 8);
      /* While the host end of cella.ctl is away, look again every 100 ms instead
       * of spinning. */
      int timeout = hup ? 100 : -1, xt = exec_timeout ();
      if (xt >= 0 && (timeout < 0 || xt < timeout))
        timeout = xt;
      int r = poll (p, np, timeout);
      if (r < 0 && errno != EINTR)
        fail ("poll: %s", strerror (errno));
      if (hup && r == 0)
        hup = false;
      if (p[1].revents & POLLOUT)
        ctl_flush ();
      if (p[1].revents & POLLIN)
        ctl_read (pid, &hup, &relay);
      else if (p[1].revents & (POLLHUP | POLLERR))
        hup = true;
      if ((p[2].revents | p[3].revents) & (POLLIN | POLLOUT | POLLHUP | POLLERR))
        relay_pump (&relay);
      for (int i = 0; i < 2; i++)
        if (p[4 + 2 * i].revents | p[5 + 2 * i].revents)
          out_pump (&outs[i]);
      struct signalfd_siginfo si;
      while (read (sfd, &si, sizeof si) == (ssize_t) sizeof si)
        {
          if (si.ssi_signo != SIGCHLD)
            /* From the kernel, SIGINT means Ctrl-Alt-Del (the VMM's graceful stop):
             * a SIGTERM. */
            forward (pid, si.ssi_signo == SIGINT && si.ssi_code == SI_KERNEL ? SIGTERM : (int) si.ssi_signo);
        }
      /* reap every child: the workload, an exec'd command, or an orphan */
      int status;
      pid_t w;
      while ((w = waitpid (-1, &status, WNOHANG)) > 0)
        if (w == pid)
          code = status_code (status);
        else
          exec_reaped (w, status_code (status));
      exec_pump ();
    }
  close (sfd);
  relay_close (&relay);
  kill_rest ();
  out_drain (outs, 2);
  return code;
}
