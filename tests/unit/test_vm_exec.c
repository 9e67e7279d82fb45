/* Unit tests for the vm backend's exec router (vm_exec_router_start, src/vm/exec.c) with this
 * test playing both the guest (the cella.exec port's other end) and the callers: frames routed
 * by session, a caller's oversized frame refused, and a guest's oversized frame ending the router
 * (the guest is untrusted). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tap.h"
#include "vm/guest.h"
#include "vm/vm.h"

/* n bytes within 5 s: n, or fewer at EOF/timeout. */
static size_t
read_n (int fd, unsigned char *buf, size_t n)
{
  size_t got = 0;
  while (got < n)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      if (poll (&p, 1, 5000) <= 0)
        break;
      ssize_t r = read (fd, buf + got, n - got);
      if (r <= 0)
        break;
      got += (size_t) r;
    }
  return got;
}

static void
put (int fd, unsigned type, unsigned id, const void *data, size_t len)
{
  unsigned char h[EXEC_HDR];
  exec_hdr_put (h, type, id, len);
  if (write (fd, h, sizeof h) != (ssize_t) sizeof h || (len && write (fd, data, len) != (ssize_t) len))
    abort ();
}

static int
dial (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

int
main (void)
{
  char dir[] = "/tmp/cella-vmexec-XXXXXX", path[64];
  int port[2], lfd, c;
  unsigned char buf[256];
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cella_error_t err = NULL;

  signal (SIGPIPE, SIG_IGN);
  if (mkdtemp (dir) == NULL || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, port) < 0)
    abort ();
  snprintf (path, sizeof path, "%s/exec.sock", dir);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind (lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (lfd, 4) < 0)
    abort ();
  CHECK (vm_exec_router_start (port[1], lfd, &err) == 0, "the router starts");

  /* a caller's OPEN reaches the guest with a session id of the router's */
  c = dial (path);
  put (c, EXEC_OPEN, 0, "req", 3);
  size_t n = read_n (port[0], buf, EXEC_HDR + 3);
  unsigned id = (unsigned) (buf[2] | buf[3] << 8);
  CHECK (n == EXEC_HDR + 3 && buf[0] == EXEC_OPEN && id >= 1 && id <= EXEC_MAX_SESSIONS
             && memcmp (buf + EXEC_HDR, "req", 3) == 0,
         "OPEN routed to the guest as session %u", id);

  /* the guest's frames for that session reach its caller; another session's are dropped */
  put (port[0], EXEC_STDOUT, id == 9 ? 10 : 9, "no", 2);
  put (port[0], EXEC_STDOUT, id, "hi", 2);
  put (port[0], EXEC_EXIT, id, "\3\0\0\0", 4);
  n = read_n (c, buf, 2 * EXEC_HDR + 2 + 4);
  CHECK (n == 2 * EXEC_HDR + 6 && buf[0] == EXEC_STDOUT && memcmp (buf + EXEC_HDR, "hi", 2) == 0
             && buf[EXEC_HDR + 2] == EXEC_EXIT && exec_u32 (buf + 2 * EXEC_HDR + 2) == 3,
         "STDOUT then EXIT 3 to the caller, nothing of another session");
  close (c);

  /* a caller's oversized frame: refused, nothing reaches the guest */
  c = dial (path);
  put (c, EXEC_OPEN, 0, NULL, 0);
  n = read_n (port[0], buf, EXEC_HDR);
  unsigned id2 = (unsigned) (buf[2] | buf[3] << 8);
  {
    unsigned char h[EXEC_HDR];
    exec_hdr_put (h, EXEC_STDIN, 0, EXEC_MAX_DATA + 1);
    if (write (c, h, sizeof h) != (ssize_t) sizeof h)
      abort ();
  }
  n = read_n (c, buf, 1);
  CHECK (n == 0, "a caller's STDIN frame over %d bytes: the caller is dropped", EXEC_MAX_DATA);
  n = read_n (port[0], buf, EXEC_HDR);
  CHECK (n == EXEC_HDR && buf[0] == EXEC_CLOSE && (unsigned) (buf[2] | buf[3] << 8) == id2,
         "its session is closed in the guest, no data passed on");
  close (c);

  /* the guest's oversized frame ends the router: no more exec into that VM */
  c = dial (path);
  {
    unsigned char h[EXEC_HDR];
    exec_hdr_put (h, EXEC_STDOUT, id, 0x7fffffff);
    if (write (port[0], h, sizeof h) != (ssize_t) sizeof h)
      abort ();
  }
  n = read_n (port[0], buf, sizeof buf);
  CHECK (n == 0 || buf[0] == EXEC_OPEN || buf[0] == EXEC_CLOSE, "the port closed by the router");
  while (n > 0)
    n = read_n (port[0], buf, sizeof buf);
  CHECK (read_n (c, buf, 1) == 0, "its callers see the end");
  close (c);
  c = dial (path);
  CHECK (c < 0, "nothing listens any more (%s)", c < 0 ? strerror (errno) : "connected");
  if (c >= 0)
    close (c);

  unlink (path);
  rmdir (dir);
  return tap_done ();
}
