/* The guest's channels to the host: hvc0 (the workload's stdin), the
 * cella.stdout and cella.stderr ports (its output; with a tty, its terminal's)
 * and the cella.ctl virtio serial port (line protocol, see src/vm/guest.h). Device
 * nodes and port names appear a little after the virtio_console driver binds,
 * so both are polled for briefly. */
#define _GNU_SOURCE
#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEVICE_WAIT_MS 5000

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void
sleep_ms (int ms)
{
  struct timespec ts = { 0, ms * 1000000L };
  nanosleep (&ts, NULL);
}

/* Raw for good: input the host sends must not be echoed back or line-edited
 * (a tty workload gets a terminal of our own, see workload.c). */
static void
hvc_raw (int fd)
{
  struct termios t;
  if (tcgetattr (fd, &t) < 0)
    return;
  cfmakeraw (&t);
  tcsetattr (fd, TCSANOW, &t);
}

int
find_hvc (cella_error_t *err)
{
  long long deadline = now_ms () + DEVICE_WAIT_MS;
  for (;;)
    {
      int fd = open ("/dev/hvc0", O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (fd >= 0)
        {
          hvc_raw (fd);
          guest_io.hvc = fd;
          return 0;
        }
      if ((errno != ENOENT && errno != ENODEV && errno != ENXIO) || now_ms () > deadline)
        return cella_error (err, errno, "open /dev/hvc0 (the workload's console: -device virtconsole)");
      sleep_ms (5);
    }
}

/* The vportNpM whose name is `want`, or "" when none has that name (yet). */
static void
find_vport (const char *want, char *out, size_t outlen)
{
  size_t wl = strlen (want);
  DIR *d = opendir ("/sys/class/virtio-ports");
  struct dirent *de;
  out[0] = '\0';
  if (d == NULL)
    return;
  while ((de = readdir (d)) != NULL)
    {
      char path[512], name[64] = "";
      if (de->d_name[0] == '.')
        continue;
      snprintf (path, sizeof path, "/sys/class/virtio-ports/%s/name", de->d_name);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      ssize_t n = read (fd, name, sizeof name - 1);
      close (fd);
      if (n > 0 && (size_t) n > wl && strncmp (name, want, wl) == 0 && name[wl] == '\n')
        {
          snprintf (out, outlen, "/dev/%s", de->d_name);
          break;
        }
    }
  closedir (d);
}

int
find_ctl (cella_error_t *err)
{
  long long deadline = now_ms () + DEVICE_WAIT_MS;
  char dev[300];
  for (;;)
    {
      find_vport (CTL_PORT_NAME, dev, sizeof dev);
      if (dev[0])
        {
          /* Non-blocking: a write waits for the host end to be connected, and we
           * never hang on it. */
          int fd = open (dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
          if (fd >= 0)
            {
              guest_io.ctl = fd;
              return 0;
            }
          if (errno != ENOENT || now_ms () > deadline)
            return cella_error (err, errno, "open %s (virtio port " CTL_PORT_NAME ")", dev);
        }
      else if (now_ms () > deadline)
        return cella_error (
            err, 0, "no virtio serial port named " CTL_PORT_NAME " (-device virtserialport,name=" CTL_PORT_NAME ")");
      sleep_ms (5);
    }
}

void
find_exec (void)
{
  char dev[300];
  /* the ports are probed together: cella.ctl is there, so is cella.exec if given */
  find_vport (EXEC_PORT_NAME, dev, sizeof dev);
  if (dev[0])
    guest_io.exec = open (dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
}

int
find_stdio_ports (cella_error_t *err)
{
  long long deadline = now_ms () + 1000;
  char dev[300];
  for (;;)
    {
      if (guest_io.out < 0)
        {
          find_vport (STDOUT_PORT_NAME, dev, sizeof dev);
          if (dev[0])
            guest_io.out = open (dev, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        }
      if (guest_io.err < 0)
        {
          find_vport (STDERR_PORT_NAME, dev, sizeof dev);
          if (dev[0])
            guest_io.err = open (dev, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        }
      if (guest_io.out >= 0 && guest_io.err >= 0)
        return 0;
      if (now_ms () > deadline)
        return cella_error (err, 0,
                            "no virtio serial ports named " STDOUT_PORT_NAME " and " STDERR_PORT_NAME
                            " (-device virtserialport,name=...)");
      sleep_ms (5);
    }
}

ssize_t
port_write (int fd, const void *buf, size_t len)
{
  ssize_t n = write (fd, buf, len);
  if (n > 0 && fd == guest_io.out)
    guest_io.out_sent += (unsigned long long) n;
  else if (n > 0 && fd == guest_io.err)
    guest_io.err_sent += (unsigned long long) n;
  return n;
}

void
ctl_wait_drained (int timeout_ms)
{
  long long deadline = now_ms () + timeout_ms;
  char line[64];
  size_t len = 0;
  while (guest_io.ctl >= 0 && (timeout_ms < 0 || now_ms () < deadline))
    {
      char in[64];
      struct pollfd p = { .fd = guest_io.ctl, .events = POLLIN };
      ctl_flush (); /* the "exit" line itself, if the port had no room for it yet */
      if (poll (&p, 1, 100) < 0 && errno != EINTR)
        return;
      ssize_t n = read (guest_io.ctl, in, sizeof in);
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        return;
      if (n <= 0)
        {
          /* 0: the host end is not connected (it polls as POLLHUP): no spinning */
          if (n == 0 || (p.revents & POLLIN) == 0)
            sleep_ms (10);
          continue;
        }
      for (ssize_t i = 0; i < n; i++)
        {
          if (in[i] != '\n')
            {
              if (len + 1 < sizeof line)
                line[len++] = in[i];
              continue;
            }
          line[len] = '\0';
          len = 0;
          if (strcmp (line, "drained") == 0)
            return;
        }
    }
}

static char outq[256];
static size_t outq_len;

void
ctl_send (const char *line)
{
  size_t n = strlen (line);
  if (outq_len + n > sizeof outq)
    return; /* the host is not reading; only "ready" and one "exit" are ever
               queued */
  memcpy (outq + outq_len, line, n);
  outq_len += n;
  ctl_flush ();
}

bool
ctl_pending (void)
{
  return outq_len > 0;
}

void
ctl_flush (void)
{
  while (guest_io.ctl >= 0 && outq_len > 0)
    {
      ssize_t n = write (guest_io.ctl, outq, outq_len);
      if (n <= 0)
        return;
      memmove (outq, outq + n, outq_len - (size_t) n);
      outq_len -= (size_t) n;
    }
}

void
ctl_flush_wait (int timeout_ms)
{
  long long deadline = now_ms () + timeout_ms;
  ctl_flush ();
  while (guest_io.ctl >= 0 && outq_len > 0 && now_ms () < deadline)
    {
      struct pollfd p = { .fd = guest_io.ctl, .events = POLLOUT };
      /* With the host end unconnected the port polls as POLLHUP: sleep instead of
       * spinning. */
      if (poll (&p, 1, 50) < 0 || (p.revents & POLLOUT) == 0)
        sleep_ms (10);
      ctl_flush ();
    }
}
