/* `cella exec` inside the VM: the sessions of the cella.exec port (the frames
 * are src/vm/guest.h's). Each session is a command in a session of its own,
 * with a pty or three pipes; everything here is non-blocking and pumped from
 * workload.c's poll loop. */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Output is read from the commands only while less than this is queued for the
 * host. */
#define WQ_CAP (256 * 1024)
/* After a command exits, how long its output streams may stay open (a
 * background child holding them) before the session ends anyway. */
#define DRAIN_MS 500

struct xsess {
  unsigned id;
  pid_t pid;
  bool tty, exited, in_eof;
  int in;  /* the command's stdin (pipe, or a dup of the pty master), -1 once closed */
  int out; /* its stdout pipe or the pty master, -1 at its end */
  int err; /* its stderr pipe (-1 with a tty) */
  int code;
  long long exit_ms;
  size_t ilen;
  unsigned char ibuf[EXEC_WINDOW];
};

static struct xsess *sess[EXEC_MAX_SESSIONS + 1];
static unsigned char *rbuf;
static size_t rlen, rcap;
static unsigned char *wq;
static size_t wlen, wcap;
static bool port_hup;

static long long
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void
queue (unsigned type, unsigned id, const void *data, size_t len)
{
  if (wlen + EXEC_HDR + len > wcap)
    {
      size_t cap = (wlen + EXEC_HDR + len) * 2;
      unsigned char *n = realloc (wq, cap);
      if (n == NULL)
        return; /* out of memory: the frame is lost, the session's EXIT may still come */
      wq = n;
      wcap = cap;
    }
  exec_hdr_put (wq + wlen, type, id, len);
  if (len)
    memcpy (wq + wlen + EXEC_HDR, data, len);
  wlen += EXEC_HDR + len;
}

static void
queue_u32 (unsigned type, unsigned id, unsigned v)
{
  unsigned char b[4]
      = { (unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16), (unsigned char) (v >> 24) };
  queue (type, id, b, 4);
}

static void
flush (void)
{
  size_t off = 0;
  while (guest_io.exec >= 0 && off < wlen)
    {
      ssize_t n = write (guest_io.exec, wq + off, wlen - off);
      if (n <= 0)
        break;
      off += (size_t) n;
    }
  memmove (wq, wq + off, wlen - off);
  wlen -= off;
}

/* A session that never started: its reason on STDERR, then EXIT. */
static void __attribute__ ((format (printf, 3, 4))) reject (unsigned id, int code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n > 0)
    queue (EXEC_STDERR, id, msg, (size_t) n < sizeof msg ? (size_t) n : sizeof msg - 1);
  queue_u32 (EXEC_EXIT, id, (unsigned) code);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
sess_end (struct xsess *s)
{
  close_fd (&s->in);
  close_fd (&s->out);
  close_fd (&s->err);
  queue_u32 (EXEC_EXIT, s->id, (unsigned) s->code);
  sess[s->id] = NULL;
  free (s);
}

/* ---- the command's side ---- */

static void __attribute__ ((noreturn)) child_die (int code, const char *what, const char *arg, int e)
{
  char buf[512];
  int n = snprintf (buf, sizeof buf, "cella: exec in the vm: %s `%s`: %s\n", what, arg, e ? strerror (e) : "");
  if (n > 0 && write (STDERR_FILENO, buf, (size_t) n) < 0)
    {
    }
  _exit (code);
}

static bool
all_digits (const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/* The line of /etc/passwd or /etc/group whose name (field 0) or id (field 2)
 * is key: its fields split in place (at most 7). */
static bool
db_find (FILE *f, const char *key, bool by_id, char *line, size_t cap, char **fld)
{
  rewind (f);
  while (fgets (line, (int) cap, f))
    {
      size_t n = 0;
      line[strcspn (line, "\n")] = '\0';
      for (size_t i = 0; i < 7; i++)
        fld[i] = (char *) "";
      for (char *p = line, *c; n < 7 && p; p = c ? c + 1 : NULL)
        {
          c = strchr (p, ':');
          if (c)
            *c = '\0';
          fld[n++] = p;
        }
      if (n >= 3 && strcmp (fld[by_id ? 2 : 0], key) == 0)
        return true;
    }
  return false;
}

/* -u USER[:GROUP] against the guest's /etc/passwd and /etc/group (docker's
 * rules: a numeric user need not be listed, its group then 0). */
static void
resolve_user (const char *spec, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups)
{
  char *u = strdup (spec), *g = u ? strchr (u, ':') : NULL, line[1024], *fld[7], *name = NULL;
  FILE *pw = fopen ("/etc/passwd", "re"), *gr = fopen ("/etc/group", "re");
  static gid_t list[64];
  size_t n = 0;
  if (u == NULL)
    child_die (EXIT_CELLA_ERROR, "user", spec, ENOMEM);
  if (g)
    *g++ = '\0';
  *gid = 0;
  if (pw && db_find (pw, u, all_digits (u), line, sizeof line, fld))
    {
      *uid = (uid_t) strtoul (fld[2], NULL, 10);
      *gid = (gid_t) strtoul (fld[3], NULL, 10);
      name = strdup (fld[0]);
    }
  else if (all_digits (u))
    *uid = (uid_t) strtoul (u, NULL, 10);
  else
    child_die (EXIT_CELLA_ERROR, "unable to find user", u, ENOENT);
  if (g)
    {
      if (gr && db_find (gr, g, all_digits (g), line, sizeof line, fld))
        *gid = (gid_t) strtoul (fld[2], NULL, 10);
      else if (all_digits (g))
        *gid = (gid_t) strtoul (g, NULL, 10);
      else
        child_die (EXIT_CELLA_ERROR, "unable to find group", g, ENOENT);
    }
  list[n++] = *gid;
  /* supplementary groups: those of /etc/group that list the user */
  if (gr && name && !g)
    {
      rewind (gr);
      while (n < sizeof list / sizeof *list && fgets (line, sizeof line, gr))
        {
          char *p = line, *f[4] = { 0 };
          size_t k = 0;
          line[strcspn (line, "\n")] = '\0';
          for (char *c; k < 4 && p; p = c ? c + 1 : NULL)
            {
              c = k < 3 ? strchr (p, ':') : NULL;
              if (c)
                *c = '\0';
              f[k++] = p;
            }
          if (k < 4)
            continue;
          char *save = NULL;
          for (char *m = strtok_r (f[3], ",", &save); m; m = strtok_r (NULL, ",", &save))
            if (strcmp (m, name) == 0)
              {
                list[n++] = (gid_t) strtoul (f[2], NULL, 10);
                break;
              }
        }
    }
  *groups = list;
  *ngroups = n;
  if (pw)
    fclose (pw);
  if (gr)
    fclose (gr);
}

static void __attribute__ ((noreturn)) child_run (struct vm_guest_config *c, int fd0, int fd1, int fd2)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction (sig, &dfl, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  setsid ();
  if (dup2 (fd0, 0) < 0 || dup2 (fd1, 1) < 0 || dup2 (fd2, 2) < 0)
    _exit (EXIT_CELLA_ERROR);
  if (c->tty && ioctl (0, TIOCSCTTY, 0) < 0)
    child_die (EXIT_CELLA_ERROR, "make the controlling terminal", "pty", errno);
  guest_internal (c->argv); /* top, cp: as root, before the ids and capabilities change */
  if (c->user)
    resolve_user (c->user, &c->uid, &c->gid, &c->groups, &c->ngroups);
  /* the container's capabilities and no_new_privs, whatever the request says */
  if (boot_config && privs_before_ids (boot_config) < 0)
    child_die (EXIT_CELLA_ERROR, "drop capabilities", "", errno);
  if (setgroups (c->ngroups, c->groups) < 0 || setgid (c->gid) < 0 || setuid (c->uid) < 0)
    child_die (EXIT_CELLA_ERROR, "set the ids of user", c->user ? c->user : "(the container's)", errno);
  if (boot_config && privs_after_ids (boot_config) < 0)
    child_die (EXIT_CELLA_ERROR, "set capabilities, no_new_privs", "", errno);
  if (chdir (c->cwd ? c->cwd : "/") < 0)
    child_die (EXIT_CELLA_ERROR, "chdir", c->cwd ? c->cwd : "/", errno);
  environ = c->env;
  execvp (c->argv[0], c->argv);
  int e = errno;
  child_die (e == ENOENT || e == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, "exec", c->argv[0], e);
}

static void
sess_start (unsigned id, const char *text, size_t len)
{
  struct vm_guest_config c;
  cella_error_t err = NULL;
  int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 }, slave = -1, master = -1;
  if (sess[id])
    return; /* the host reuses a live id: not ours to guess which it meant */
  if (guestcfg_parse (text, len, &c, &err) < 0)
    {
      reject (id, EXIT_CELLA_ERROR, "cella: exec in the vm: bad request: %s\n", err->msg);
      cella_error_free (&err);
      return;
    }
  struct xsess *s = calloc (1, sizeof *s);
  if (s == NULL)
    {
      guestcfg_free (&c);
      reject (id, EXIT_CELLA_ERROR, "cella: exec in the vm: %s\n", "out of memory");
      return;
    }
  s->id = id;
  s->tty = c.tty;
  s->in = s->out = s->err = -1;
  if (c.tty)
    {
      char name[64];
      master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0 || ptsname_r (master, name, sizeof name) != 0
          || (slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
        goto fail;
    }
  else if (pipe2 (p_in, O_CLOEXEC) < 0 || pipe2 (p_out, O_CLOEXEC) < 0 || pipe2 (p_err, O_CLOEXEC) < 0)
    goto fail;
  pid_t pid = fork ();
  if (pid < 0)
    goto fail;
  if (pid == 0)
    {
      if (c.tty)
        child_run (&c, slave, slave, slave);
      child_run (&c, p_in[0], p_out[1], p_err[1]);
    }
  s->pid = pid;
  if (c.tty)
    {
      close (slave);
      s->out = master;
      s->in = fcntl (master, F_DUPFD_CLOEXEC, 3);
    }
  else
    {
      close (p_in[0]);
      close (p_out[1]);
      close (p_err[1]);
      s->in = p_in[1];
      s->out = p_out[0];
      s->err = p_err[0];
    }
  for (int *fd = &s->in; fd <= &s->err; fd++)
    if (*fd >= 0)
      fcntl (*fd, F_SETFL, O_NONBLOCK);
  sess[id] = s;
  guestcfg_free (&c);
  return;
fail:
  {
    int e = errno;
    int fds[] = { p_in[0], p_in[1], p_out[0], p_out[1], p_err[0], p_err[1], slave, master };
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
      if (fds[i] >= 0)
        close (fds[i]);
    free (s);
    guestcfg_free (&c);
    reject (id, EXIT_CELLA_ERROR, "cella: exec in the vm: start the command: %s\n", strerror (e));
  }
}

/* ---- frames from the host ---- */

static void
on_frame (unsigned type, unsigned id, const unsigned char *p, size_t len)
{
  struct xsess *s = id >= 1 && id <= EXEC_MAX_SESSIONS ? sess[id] : NULL;
  if (id < 1 || id > EXEC_MAX_SESSIONS)
    return;
  switch (type)
    {
    case EXEC_OPEN:
      sess_start (id, (const char *) p, len);
      break;
    case EXEC_STDIN:
      if (s == NULL || s->in < 0 || s->in_eof)
        {
          if (len)
            queue_u32 (EXEC_ACK, id, (unsigned) len); /* nowhere to go: taken */
          break;
        }
      if (len == 0)
        s->in_eof = true;
      else
        {
          size_t room = sizeof s->ibuf - s->ilen, take = len < room ? len : room;
          memcpy (s->ibuf + s->ilen, p, take);
          s->ilen += take;
          if (take < len)
            queue_u32 (EXEC_ACK, id, (unsigned) (len - take)); /* past the window: dropped */
        }
      break;
    case EXEC_RESIZE:
      if (s && s->tty && s->out >= 0 && len == 4)
        {
          struct winsize ws
              = { .ws_row = (unsigned short) (p[0] | p[1] << 8), .ws_col = (unsigned short) (p[2] | p[3] << 8) };
          ioctl (s->out, TIOCSWINSZ, &ws);
        }
      break;
    case EXEC_SIGNAL:
      if (s && !s->exited && len == 4 && exec_u32 (p) >= 1 && exec_u32 (p) < 65)
        kill (s->pid, (int) exec_u32 (p));
      break;
    case EXEC_CLOSE:
      if (s && !s->exited)
        {
          kill (-s->pid, SIGKILL);
          kill (s->pid, SIGKILL);
        }
      break;
    default:
      break;
    }
}

static void
port_read (void)
{
  while (guest_io.exec >= 0)
    {
      size_t need = EXEC_HDR;
      if (rlen >= EXEC_HDR)
        {
          size_t len = exec_u32 (rbuf + 4);
          if (len > (rbuf[0] == EXEC_OPEN ? (size_t) EXEC_MAX_OPEN : (size_t) EXEC_MAX_DATA))
            {
              say ("exec: a frame of %zu bytes from the host: the exec port is closed", len);
              close_fd (&guest_io.exec);
              return;
            }
          need += len;
        }
      if (need > rcap)
        {
          unsigned char *n = realloc (rbuf, need);
          if (n == NULL)
            return;
          rbuf = n;
          rcap = need;
        }
      if (rlen < need)
        {
          ssize_t n = read (guest_io.exec, rbuf + rlen, need - rlen);
          if (n == 0)
            port_hup = true; /* the host end is not connected */
          if (n <= 0)
            return;
          rlen += (size_t) n;
          continue;
        }
      if (rlen >= EXEC_HDR && rlen == need)
        {
          on_frame (rbuf[0], (unsigned) (rbuf[2] | rbuf[3] << 8), rbuf + EXEC_HDR, need - EXEC_HDR);
          rlen = 0;
        }
    }
}

/* ---- pumping ---- */

static void
sess_read (struct xsess *s, int *fd, unsigned type, bool drain)
{
  unsigned char buf[EXEC_MAX_DATA];
  size_t total = 0;
  while (*fd >= 0 && (wlen < WQ_CAP || (drain && total < (1u << 20))))
    {
      ssize_t n = read (*fd, buf, sizeof buf);
      if (n > 0)
        {
          queue (type, s->id, buf, (size_t) n);
          total += (size_t) n;
          continue;
        }
      if (n < 0 && errno == EAGAIN && !drain)
        return;
      if (n < 0 && errno == EINTR)
        continue;
      /* the end: EOF, or EIO from a pty master once no one holds the slave */
      close_fd (fd);
      queue (type, s->id, NULL, 0);
    }
}

static void
sess_write (struct xsess *s)
{
  while (s->in >= 0 && s->ilen > 0)
    {
      ssize_t n = write (s->in, s->ibuf, s->ilen);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          /* the command closed its stdin: what is left is taken */
          queue_u32 (EXEC_ACK, s->id, (unsigned) s->ilen);
          s->ilen = 0;
          close_fd (&s->in);
          return;
        }
      memmove (s->ibuf, s->ibuf + n, s->ilen - (size_t) n);
      s->ilen -= (size_t) n;
      queue_u32 (EXEC_ACK, s->id, (unsigned) n);
    }
  if (s->in >= 0 && s->in_eof && s->ilen == 0 && !s->tty)
    close_fd (&s->in);
}

void
exec_pump (void)
{
  if (guest_io.exec < 0)
    return;
  port_read ();
  long long now = mono_ms ();
  for (unsigned id = 1; id <= EXEC_MAX_SESSIONS; id++)
    {
      struct xsess *s = sess[id];
      if (s == NULL)
        continue;
      bool late = s->exited && now - s->exit_ms >= DRAIN_MS;
      sess_write (s);
      sess_read (s, &s->out, EXEC_STDOUT, late);
      sess_read (s, &s->err, EXEC_STDERR, late);
      if (s->exited && (late || (s->out < 0 && s->err < 0)))
        sess_end (s);
    }
  flush ();
}

size_t
exec_pollfds (struct pollfd *p, size_t max)
{
  size_t n = 0;
  if (guest_io.exec < 0 || max < 1)
    return 0;
  p[n++] = (struct pollfd){ .fd = port_hup ? -1 : guest_io.exec, .events = POLLIN | (wlen ? POLLOUT : 0) };
  for (unsigned id = 1; id <= EXEC_MAX_SESSIONS && n + 3 <= max; id++)
    {
      struct xsess *s = sess[id];
      if (s == NULL)
        continue;
      short rd = wlen < WQ_CAP ? POLLIN : 0;
      p[n++] = (struct pollfd){ .fd = rd ? s->out : -1, .events = rd };
      p[n++] = (struct pollfd){ .fd = rd ? s->err : -1, .events = rd };
      p[n++] = (struct pollfd){ .fd = s->ilen ? s->in : -1, .events = POLLOUT };
    }
  return n;
}

int
exec_timeout (void)
{
  long long now = mono_ms (), next = -1;
  if (guest_io.exec < 0)
    return -1;
  if (port_hup)
    {
      port_hup = false; /* look again (the host end may connect) */
      return 100;
    }
  for (unsigned id = 1; id <= EXEC_MAX_SESSIONS; id++)
    if (sess[id] && sess[id]->exited)
      {
        long long left = sess[id]->exit_ms + DRAIN_MS - now;
        if (left < 0)
          left = 0;
        if (next < 0 || left < next)
          next = left;
      }
  return (int) next;
}

bool
exec_reaped (pid_t pid, int code)
{
  for (unsigned id = 1; id <= EXEC_MAX_SESSIONS; id++)
    if (sess[id] && sess[id]->pid == pid && !sess[id]->exited)
      {
        sess[id]->exited = true;
        sess[id]->code = code;
        sess[id]->exit_ms = mono_ms ();
        return true;
      }
  return false;
}
