/* cella-vminit: PID 1 in the microVM. Mounts the basics, loads the kernel
 * modules the host put in the initramfs, reads /cella/config, switches to the
 * container's root (the disk, or a tmpfs copy of the initramfs), runs the
 * workload (stdin on hvc0; stdout and stderr on the cella.stdout and
 * cella.stderr ports, or hvc0 with a tty) and reports its exit code on the
 * cella.ctl port, then reboots (the host's QEMU runs with -no-reboot, so the VM ends). */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

struct guest_io guest_io = { .hvc = -1, .ctl = -1, .exec = -1, .out = -1, .err = -1 };

static void
vsay (const char *prefix, const char *fmt, va_list ap)
{
  char buf[1024];
  int n = snprintf (buf, sizeof buf, "cella-init: %s", prefix);
  if (n < 0 || (size_t) n >= sizeof buf)
    n = 0;
  int m = vsnprintf (buf + n, sizeof buf - (size_t) n - 1, fmt, ap);
  if (m < 0)
    m = 0;
  n += m;
  if ((size_t) n > sizeof buf - 2)
    n = (int) sizeof buf - 2;
  buf[n++] = '\n';
  if (write (STDERR_FILENO, buf, (size_t) n) < 0)
    { /* no console: nothing else to tell */
    }
  if (guest_io.err >= 0)
    {
      /* behind the workload's stderr, maybe: wait a little for room */
      struct pollfd p = { .fd = guest_io.err, .events = POLLOUT };
      for (ssize_t off = 0; off < n;)
        {
          ssize_t w = port_write (guest_io.err, buf + off, (size_t) (n - off));
          if (w > 0)
            off += w;
          else if (w < 0 && errno == EAGAIN && poll (&p, 1, 1000) > 0)
            continue;
          else
            break;
        }
    }
  else if (guest_io.hvc >= 0 && write (guest_io.hvc, buf, (size_t) n) < 0)
    {
    }
}

/* "exit N OUT ERR" (guest.h) once the output is out; then the host's "drained". */
static void
report_exit (int code, int drain_ms)
{
  char line[96];
  snprintf (line, sizeof line, "exit %d %llu %llu\n", code, guest_io.out_sent, guest_io.err_sent);
  ctl_send (line);
  ctl_flush_wait (2000);
  ctl_wait_drained (drain_ms);
}

void
say (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsay ("", fmt, ap);
  va_end (ap);
}

void
power_off (void)
{
  if (guest_io.hvc >= 0)
    tcdrain (guest_io.hvc);
  sync ();
  /* Leave the root disk clean (no journal replay on the next boot); every
   * process is gone. */
  mount (NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
  reboot (RB_AUTOBOOT);
  /* Not reached; if it were, PID 1 exiting panics the kernel and panic=-1
   * reboots it. */
  _exit (1);
}

void
fail (const char *fmt, ...)
{
  va_list ap;
  cella_error_t ignored = NULL;
  /* The host learns of the failure on hvc0 (what the user sees) and cella.ctl
   * (the exit code). */
  if (guest_io.hvc < 0)
    find_hvc (&ignored);
  if (guest_io.ctl < 0)
    find_ctl (&ignored);
  cella_error_free (&ignored);
  if (guest_io.ctl >= 0 && (guest_io.out < 0 || guest_io.err < 0))
    find_stdio_ports (&ignored);
  cella_error_free (&ignored);
  va_start (ap, fmt);
  vsay ("", fmt, ap);
  va_end (ap);
  if (guest_io.ctl >= 0)
    report_exit (125, 10000);
  power_off ();
}

void
fail_err (cella_error_t *err)
{
  if ((*err)->errno_ > 0)
    fail ("%s: %s", (*err)->msg, strerror ((*err)->errno_));
  fail ("%s", (*err)->msg);
}

/* The kernel opens /dev/console for init when the initramfs has it; if it could
 * not, use the devtmpfs node once it is mounted. */
static void
console_stdio (void)
{
  if (fcntl (STDERR_FILENO, F_GETFD) >= 0)
    return;
  int fd = open ("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0)
    return;
  for (int i = 0; i < 3; i++)
    if (fd != i)
      dup2 (fd, i);
  if (fd > 2)
    close (fd);
}

static void
read_config (struct vm_guest_config *c)
{
  cella_error_t err = NULL;
  char buf[65536], *text = NULL;
  size_t len = 0;
  ssize_t n;
  int fd = open (CONFIG_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail ("open %s: %s", CONFIG_PATH, strerror (errno));
  while ((n = read (fd, buf, sizeof buf)) != 0)
    {
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          fail ("read %s: %s", CONFIG_PATH, strerror (errno));
        }
      text = realloc (text, len + (size_t) n + 1);
      if (text == NULL)
        fail ("read %s: out of memory", CONFIG_PATH);
      memcpy (text + len, buf, (size_t) n);
      len += (size_t) n;
    }
  close (fd);
  if (guestcfg_parse (text ? text : "", len, c, &err) < 0)
    fail_err (&err);
  free (text);
}

static void
block_signals (void)
{
  sigset_t set;
  sigemptyset (&set);
  for (int s = 1; s < SIGRTMIN; s++)
    if (s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS && s != SIGILL && s != SIGFPE)
      sigaddset (&set, s);
  sigprocmask (SIG_BLOCK, &set, NULL);
}

int
main (int argc, char **argv)
{
  struct vm_guest_config cfg;
  cella_error_t err = NULL;
  (void) argc;
  (void) argv;

  if (getpid () != 1)
    {
      fprintf (stderr, "cella-vminit: runs only as PID 1 inside a cella microVM\n");
      return 125;
    }
  /* Signals wait in the queue until the workload runs (workload.c reads them
   * with a signalfd); Ctrl-Alt-Del becomes a SIGINT to us instead of an
   * immediate reboot. */
  block_signals ();
  reboot (RB_DISABLE_CAD);
  umask (022);

  if (mount_basics (&err) < 0)
    {
      console_stdio ();
      fail_err (&err);
    }
  console_stdio ();
  modules_load (MODULES_ORDER_PATH);
  if (find_hvc (&err) < 0 || find_ctl (&err) < 0 || find_stdio_ports (&err) < 0)
    fail_err (&err);
  find_exec ();
  if (snap_waits ())
    snap_restore (&cfg);
  else
    read_config (&cfg);

  if (cfg.export_root && export_prepare (&cfg, &err) < 0)
    fail_err (&err);
  if (cfg.root_dev ? root_mount_disk (&cfg, &err) : root_copy_initramfs (&err))
    fail_err (&err);
  if (mount_volumes (&cfg, &err) < 0 || mount_tmpfs (&cfg, &err) < 0 || root_seal (&cfg, &err) < 0
      || switch_to_newroot (&err) < 0)
    fail_err (&err);
  if (net_setup (&cfg, &err) < 0 || net_write_resolv (&cfg, &err) < 0)
    fail_err (&err);
  if (cfg.hostname && sethostname (cfg.hostname, strlen (cfg.hostname)) < 0)
    fail ("sethostname `%s`: %s", cfg.hostname, strerror (errno));

  int code = workload_run (&cfg);
  if (code == 0 && cfg.export_root)
    {
      net_resolv_undo ();
      if (export_root (&err) < 0)
        fail_err (&err);
      ctl_send ("exported\n");
    }
  if (guest_io.hvc >= 0)
    tcdrain (guest_io.hvc);
  sync ();
  /* the workload's output is all in the ports' queues; the host may take its
   * time reading it (a slow reader), and the VM lives until it has */
  report_exit (code, -1);
  power_off ();
}
