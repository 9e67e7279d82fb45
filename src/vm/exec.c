/* `cella exec` into a running VM (vm.h): the supervisor's router between callers and the guest's
 * cella.exec port, and the caller's side. The frames are src/vm/guest.h's; the guest is
 * untrusted: every frame from it is checked (type, size, session) before anything is done with
 * it, and the router's buffers are bounded by those checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "guest.h"
#include "vm.h"

/* A peer's queued output beyond this stops reading what would add to it (backpressure). */
#define QUEUE_CAP (1u << 20)
#define READ_CHUNK 65536

struct conn {
  int fd;
  unsigned char *r, *w;
  size_t rlen, rcap, wlen, wcap;
};

static void
conn_init (struct conn *c, int fd)
{
  memset (c, 0, sizeof *c);
  c->fd = fd;
}

static void
conn_clear (struct conn *c)
{
  if (c->fd >= 0)
    close (c->fd);
  free (c->r);
  free (c->w);
  conn_init (c, -1);
}

static void
conn_put (struct conn *c, unsigned type, unsigned id, const void *data, size_t len)
{
  if (c->wlen + EXEC_HDR + len > c->wcap)
    {
      c->wcap = (c->wlen + EXEC_HDR + len) * 2;
      c->w = xrealloc (c->w, c->wcap);
    }
  exec_hdr_put (c->w + c->wlen, type, id, len);
  if (len)
    memcpy (c->w + c->wlen + EXEC_HDR, data, len);
  c->wlen += EXEC_HDR + len;
}

/* Write what can be written now: false on a write error. */
static bool
conn_flush (struct conn *c)
{
  size_t off = 0;
  bool ok = true;
  while (off < c->wlen)
    {
      ssize_t n = write (c->fd, c->w + off, c->wlen - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          ok = errno == EAGAIN;
          break;
        }
      off += (size_t) n;
    }
  memmove (c->w, c->w + off, c->wlen - off);
  c->wlen -= off;
  return ok;
}

/* Read once (up to READ_CHUNK): 1 read, 0 nothing now, -1 end or error. */
static int
conn_read (struct conn *c)
{
  if (c->rlen + READ_CHUNK > c->rcap)
    {
      c->rcap = c->rlen + READ_CHUNK;
      c->r = xrealloc (c->r, c->rcap);
    }
  ssize_t n = read (c->fd, c->r + c->rlen, READ_CHUNK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n <= 0)
    return -1;
  c->rlen += (size_t) n;
  return 1;
}

/* The next whole frame in c's read buffer: 1 (type, id, payload, len set; consume with
 * conn_consume), 0 when incomplete, -1 when its header breaks limit(type). The read buffer holds at
 * most one incomplete frame (bounded by limit) and one chunk. */
static int
conn_frame (struct conn *c, long (*limit) (unsigned type), unsigned *type, unsigned *id, const unsigned char **payload,
            size_t *len)
{
  if (c->rlen < EXEC_HDR)
    return 0;
  size_t l = exec_u32 (c->r + 4);
  long max = limit (c->r[0]);
  if (max < 0 || l > (size_t) max)
    return -1;
  if (c->rlen < EXEC_HDR + l)
    return 0;
  *type = c->r[0];
  *id = (unsigned) (c->r[2] | c->r[3] << 8);
  *payload = c->r + EXEC_HDR;
  *len = l;
  return 1;
}

static void
conn_consume (struct conn *c, size_t len)
{
  size_t used = EXEC_HDR + len;
  memmove (c->r, c->r + used, c->rlen - used);
  c->rlen -= used;
}

static void
set_nonblock (int fd)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

/* ---- the router ---- */

/* What may come from the guest: output, ACK and EXIT (exactly 4 bytes, checked by the caller);
 * anything else is a broken guest. */
static long
guest_limit (unsigned type)
{
  switch (type)
    {
    case EXEC_STDOUT:
    case EXEC_STDERR:
      return EXEC_MAX_DATA;
    case EXEC_ACK:
    case EXEC_EXIT:
      return 4;
    default:
      return -1; /* refused */
    }
}

/* What a caller may send. */
static long
caller_limit (unsigned type)
{
  switch (type)
    {
    case EXEC_OPEN:
      return EXEC_MAX_OPEN;
    case EXEC_STDIN:
      return EXEC_MAX_DATA;
    case EXEC_RESIZE:
    case EXEC_SIGNAL:
      return 4;
    default:
      return -1;
    }
}

struct caller {
  struct conn c;
  unsigned id;  /* its session (0: none yet, or ended) */
  bool opened;  /* its OPEN went to the guest */
  bool done;    /* the guest's EXIT is queued for it: close once written */
  bool dropped; /* broke the protocol or hung up */
};

struct router {
  struct conn port;
  int listen_fd;
  struct caller callers[EXEC_MAX_SESSIONS];
  /* the caller of each session id; a session whose caller went away stays taken (NULL caller,
   * busy set) until the guest's EXIT */
  struct caller *by_id[EXEC_MAX_SESSIONS + 1];
  bool busy[EXEC_MAX_SESSIONS + 1];
};

static unsigned
free_id (struct router *r)
{
  for (unsigned id = 1; id <= EXEC_MAX_SESSIONS; id++)
    if (!r->busy[id])
      return id;
  return 0;
}

static void
caller_drop (struct router *r, struct caller *k)
{
  if (k->id)
    {
      if (k->opened)
        conn_put (&r->port, EXEC_CLOSE, k->id, NULL, 0); /* its command is killed, its EXIT frees the id */
      else
        r->busy[k->id] = false;
      r->by_id[k->id] = NULL;
    }
  conn_clear (&k->c);
  memset (k, 0, sizeof *k);
  k->c.fd = -1;
}

static void
router_accept (struct router *r)
{
  struct sockaddr_un peer;
  socklen_t plen = sizeof peer;
  int fd = accept4 (r->listen_fd, (struct sockaddr *) &peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
  unsigned id = free_id (r);
  if (fd < 0)
    return;
  for (size_t i = 0; id && i < EXEC_MAX_SESSIONS; i++)
    if (r->callers[i].c.fd < 0)
      {
        struct caller *k = &r->callers[i];
        conn_init (&k->c, fd);
        k->id = id;
        r->busy[id] = true;
        r->by_id[id] = k;
        return;
      }
  /* as many execs as sessions are running: this one ends at once, with a reason */
  {
    static const char msg[] = "cella: exec: too many commands running in this VM at once\n";
    unsigned char f[EXEC_HDR + sizeof msg + EXEC_HDR + 4];
    exec_hdr_put (f, EXEC_STDERR, 0, sizeof msg - 1);
    memcpy (f + EXEC_HDR, msg, sizeof msg - 1);
    exec_hdr_put (f + EXEC_HDR + sizeof msg - 1, EXEC_EXIT, 0, 4);
    memcpy (f + 2 * EXEC_HDR + sizeof msg - 1, "\175\0\0\0", 4); /* 125 */
    if (write (fd, f, 2 * EXEC_HDR + sizeof msg - 1 + 4) < 0)
      {
      }
    close (fd);
  }
}

static void
caller_input (struct router *r, struct caller *k)
{
  int rd = conn_read (&k->c);
  unsigned type, id;
  const unsigned char *pl;
  size_t len;
  int f;
  if (rd < 0)
    {
      if (k->done)
        {
          conn_clear (&k->c);
          memset (k, 0, sizeof *k);
          k->c.fd = -1;
        }
      else
        caller_drop (r, k);
      return;
    }
  while (k->c.fd >= 0 && (f = conn_frame (&k->c, caller_limit, &type, &id, &pl, &len)) != 0)
    {
      if (f < 0 || k->done || (!k->opened && type != EXEC_OPEN) || (k->opened && type == EXEC_OPEN)
          || ((type == EXEC_RESIZE || type == EXEC_SIGNAL) && len != 4))
        {
          if (!k->done)
            caller_drop (r, k);
          return;
        }
      k->opened = true;
      conn_put (&r->port, type, k->id, pl, len);
      conn_consume (&k->c, len);
    }
}

/* Frames from the guest; false when it broke the protocol (the router ends). */
static bool
port_input (struct router *r)
{
  unsigned type, id;
  const unsigned char *pl;
  size_t len;
  int f;
  while ((f = conn_frame (&r->port, guest_limit, &type, &id, &pl, &len)) != 0)
    {
      if (f < 0 || ((type == EXEC_ACK || type == EXEC_EXIT) && len != 4))
        return false;
      if (id >= 1 && id <= EXEC_MAX_SESSIONS && r->busy[id])
        {
          struct caller *k = r->by_id[id];
          if (k && !k->dropped)
            conn_put (&k->c, type, 0, pl, len);
          if (type == EXEC_EXIT)
            {
              r->busy[id] = false;
              r->by_id[id] = NULL;
              if (k)
                {
                  k->done = true;
                  k->id = 0;
                }
            }
        }
      /* else: a session that is not (or no longer) there: dropped */
      conn_consume (&r->port, len);
    }
  return true;
}

static void __attribute__ ((noreturn)) router_main (struct router *r)
{
  for (;;)
    {
      struct pollfd p[2 + EXEC_MAX_SESSIONS];
      bool callers_full = false;
      for (size_t i = 0; i < EXEC_MAX_SESSIONS; i++)
        callers_full |= r->callers[i].c.fd >= 0 && r->callers[i].c.wlen > QUEUE_CAP;
      p[0] = (struct pollfd){ .fd = r->port.fd,
                              .events = (short) ((callers_full ? 0 : POLLIN) | (r->port.wlen ? POLLOUT : 0)) };
      p[1] = (struct pollfd){ .fd = r->listen_fd, .events = POLLIN };
      for (size_t i = 0; i < EXEC_MAX_SESSIONS; i++)
        {
          struct caller *k = &r->callers[i];
          short ev = (short) ((r->port.wlen < QUEUE_CAP ? POLLIN : 0) | (k->c.wlen ? POLLOUT : 0));
          p[2 + i] = (struct pollfd){ .fd = k->c.fd, .events = ev };
        }
      if (poll (p, 2 + EXEC_MAX_SESSIONS, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          _exit (1);
        }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          if (conn_read (&r->port) < 0 || !port_input (r))
            _exit (0); /* QEMU is gone, or the guest broke the protocol: no more exec */
        }
      if (p[1].revents & POLLIN)
        router_accept (r);
      for (size_t i = 0; i < EXEC_MAX_SESSIONS; i++)
        {
          struct caller *k = &r->callers[i];
          if (k->c.fd < 0 || p[2 + i].fd != k->c.fd)
            continue;
          if (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR))
            caller_input (r, k);
        }
      for (size_t i = 0; i < EXEC_MAX_SESSIONS; i++)
        {
          struct caller *k = &r->callers[i];
          if (k->c.fd >= 0 && k->c.wlen && !conn_flush (&k->c))
            {
              k->dropped = true;
              k->c.wlen = 0;
            }
        }
      if (r->port.wlen && !conn_flush (&r->port))
        _exit (0);
    }
}

int
vm_exec_router_start (int port_fd, int listen_fd, cella_error_t *err)
{
  pid_t pid = fork ();
  if (pid < 0)
    {
      close (port_fd);
      close (listen_fd);
      return cella_error (err, errno, "fork the vm's exec router");
    }
  if (pid > 0)
    {
      close (port_fd);
      close (listen_fd);
      return 0;
    }
  {
    static struct router r;
    int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    prctl (PR_SET_NAME, "cella-vm-exec", 0, 0, 0);
    /* only its two fds (and /dev/null as stdio): the supervisor's others are not its to hold */
    int a = fcntl (port_fd, F_DUPFD_CLOEXEC, 100), b = fcntl (listen_fd, F_DUPFD_CLOEXEC, 100);
    if (a < 0 || b < 0 || null < 0 || dup2 (null, 0) < 0 || dup2 (null, 1) < 0 || dup2 (null, 2) < 0 || dup2 (a, 3) < 0
        || dup2 (b, 4) < 0)
      _exit (1);
    syscall (SYS_close_range, 5, ~0U, 0);
    signal (SIGPIPE, SIG_IGN);
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
    }
    conn_init (&r.port, 3);
    r.listen_fd = 4;
    set_nonblock (3);
    set_nonblock (4);
    for (size_t i = 0; i < EXEC_MAX_SESSIONS; i++)
      conn_init (&r.callers[i].c, -1);
    router_main (&r);
  }
}

/* ---- the caller ---- */

static const int exec_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static void
send_frame (int fd, unsigned type, const void *data, size_t len, bool *broken)
{
  unsigned char h[EXEC_HDR];
  exec_hdr_put (h, type, 0, len);
  if (*broken || write_all (fd, h, sizeof h) < 0 || (len && write_all (fd, data, len) < 0))
    *broken = true;
}

static void
send_u32 (int fd, unsigned type, unsigned v, bool *broken)
{
  unsigned char b[4]
      = { (unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16), (unsigned char) (v >> 24) };
  send_frame (fd, type, b, 4, broken);
}

static void
send_winsize (int fd, int tty, bool *broken)
{
  struct winsize ws;
  if (tty < 0 || ioctl (tty, TIOCGWINSZ, &ws) < 0)
    return;
  unsigned char b[4] = { (unsigned char) ws.ws_row, (unsigned char) (ws.ws_row >> 8), (unsigned char) ws.ws_col,
                         (unsigned char) (ws.ws_col >> 8) };
  send_frame (fd, EXEC_RESIZE, b, 4, broken);
}

static int
connect_exec (const char *state_dir, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int dir = open (state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd;
  if (dir < 0)
    return cella_error (err, errno, "exec: the vm's directory `%s`", state_dir);
  snprintf (sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/" VM_EXEC_SOCKET, dir);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cella_error (err, errno, "exec: socket");
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      return cella_error (err, e, "exec: the vm's exec channel `%s/" VM_EXEC_SOCKET "` (is the VM running?)",
                          state_dir);
    }
  return fd;
}

/* The process as a guest config (guest.h), its strings p's. */
static struct vm_guest_config
exec_config (const struct plan *p)
{
  const struct plan_process *pr = &p->process;
  struct vm_guest_config c = { 0 };
  c.argv = pr->argv;
  c.env = pr->env;
  c.cwd = pr->cwd;
  c.uid = pr->uid;
  c.gid = pr->gid;
  c.groups = pr->groups;
  c.ngroups = pr->ngroups;
  c.tty = pr->tty;
  c.user = pr->user;
  return c;
}

int
vm_exec (struct plan *p, pid_t target, const char *state_dir, cella_error_t *err)
{
  struct vm_guest_config c = exec_config (p);
  (void) target;
  return vm_exec_fds (&c, p->process.stdin_open, state_dir, 0, 1, 2, p, err);
}

int
vm_exec_fds (const struct vm_guest_config *c, bool stdin_open, const char *state_dir, int in, int out, int errfd,
             struct plan *started, cella_error_t *err)
{
  cleanup_close int fd = -1, sfd = -1;
  cleanup_free char *req = NULL;
  unsigned char *buf = NULL;
  size_t len = 0, blen = 0, bcap = 0, inflight = 0;
  bool broken = false, in_open = stdin_open, raw = false;
  int tty = -1, code = -1;
  struct termios saved;
  sigset_t set, old;

  req = guestcfg_format (c, &len);
  if (len > EXEC_MAX_OPEN)
    return cella_error (err, E2BIG, "exec: the command and its environment are %zu bytes (at most %d in a vm)", len,
                        EXEC_MAX_OPEN);
  fd = connect_exec (state_dir, err);
  if (fd < 0)
    return -1;
  sigemptyset (&set);
  for (size_t i = 0; i < sizeof exec_signals / sizeof *exec_signals; i++)
    sigaddset (&set, exec_signals[i]);
  sigprocmask (SIG_BLOCK, &set, &old);
  sfd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  signal (SIGPIPE, SIG_IGN);

  send_frame (fd, EXEC_OPEN, req, len, &broken);
  /* the guest's init reports a command it cannot start only by its exit status, as if it ran */
  if (started && !broken)
    backend_exec_started (started);
  if (c->tty)
    {
      tty = isatty (in) ? in : isatty (out) ? out : -1;
      send_winsize (fd, tty, &broken);
      if (tty == in && in_open && tcgetattr (in, &saved) == 0)
        {
          struct termios t = saved;
          cfmakeraw (&t);
          raw = tcsetattr (in, TCSANOW, &t) == 0;
        }
    }
  if (!in_open)
    send_frame (fd, EXEC_STDIN, NULL, 0, &broken);

  while (!broken && code < 0)
    {
      struct pollfd pf[3] = {
        { .fd = fd, .events = POLLIN },
        { .fd = sfd, .events = POLLIN },
        { .fd = in_open && inflight < EXEC_WINDOW ? in : -1, .events = POLLIN },
      };
      if (poll (pf, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (pf[2].revents & (POLLIN | POLLHUP | POLLERR))
        {
          unsigned char data[EXEC_MAX_DATA];
          size_t want = EXEC_WINDOW - inflight < sizeof data ? EXEC_WINDOW - inflight : sizeof data;
          ssize_t n = read (in, data, want);
          if (n > 0)
            {
              send_frame (fd, EXEC_STDIN, data, (size_t) n, &broken);
              inflight += (size_t) n;
            }
          else if (n == 0 || (errno != EINTR && errno != EAGAIN))
            {
              send_frame (fd, EXEC_STDIN, NULL, 0, &broken);
              in_open = false;
            }
        }
      if (pf[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof si) == (ssize_t) sizeof si)
            if (si.ssi_signo == SIGWINCH)
              send_winsize (fd, tty, &broken);
            else
              send_u32 (fd, EXEC_SIGNAL, si.ssi_signo, &broken);
        }
      if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          if (blen + READ_CHUNK > bcap)
            {
              bcap = blen + READ_CHUNK;
              buf = xrealloc (buf, bcap);
            }
          ssize_t n = read (fd, buf + blen, READ_CHUNK);
          if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
          if (n > 0)
            blen += (size_t) n;
          /* the router's frames: the guest's, checked there; checked again here all the same */
          while (blen >= EXEC_HDR && code < 0)
            {
              size_t l = exec_u32 (buf + 4);
              unsigned type = buf[0];
              if (l > EXEC_MAX_DATA)
                {
                  broken = true;
                  break;
                }
              if (blen < EXEC_HDR + l)
                break;
              if (type == EXEC_STDOUT || type == EXEC_STDERR)
                {
                  if (l && write_all (type == EXEC_STDOUT ? out : errfd, buf + EXEC_HDR, l) < 0 && errno != EPIPE)
                    broken = true;
                }
              else if (type == EXEC_ACK && l == 4)
                {
                  size_t a = exec_u32 (buf + EXEC_HDR);
                  inflight = a > inflight ? 0 : inflight - a;
                }
              else if (type == EXEC_EXIT && l == 4)
                code = (int) (exec_u32 (buf + EXEC_HDR) & 0xff);
              memmove (buf, buf + EXEC_HDR + l, blen - EXEC_HDR - l);
              blen -= EXEC_HDR + l;
            }
        }
    }
  free (buf);
  if (raw)
    tcsetattr (in, TCSANOW, &saved);
  sigprocmask (SIG_SETMASK, &old, NULL);
  if (code < 0)
    return cella_error (err, 0, "exec: the vm ended (or closed its exec channel) before `%s` exited", c->argv[0]);
  return code;
}
