/* Start from a snapshot (docs/vm.md "Start from a snapshot"): the initramfs
 * of a snapshot holds no container config, only the marker SNAP_WAIT_MAGIC in
 * /cella/config. Init then says "waiting" on cella.ctl and blocks reading it;
 * the host saves the VM state there (QEMU migrate to a file) and every later
 * VM restored from it wakes up here with its own config on cella.ctl:
 *
 *   host -> guest  "restore SEED MAC\n"  SEED: 64 hex digits (32 bytes) of the
 *                                        host's randomness, credited to the
 *                                        guest's pool and its CRNG reseeded;
 *                                        MAC: eth0's address or "-"
 *                  "config LEN\n" + LEN bytes of guestcfg text
 *   guest -> host  "resumed\n"
 *   host -> guest  "clock SEC NSEC\n"    the host's CLOCK_REALTIME, set as the
 *                                        guest's (its clock stood still in the
 *                                        snapshot)
 *
 * Nothing read the kernel's boot_id before the snapshot (the kernel makes it
 * on its first read), so the first read after the reseed makes a fresh one per
 * VM. */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char rbuf[4096];
static size_t rlen, roff;

/* The next bytes from cella.ctl, waiting as long as it takes (the host ends
 * the VM when it gives up). */
static size_t
ctl_fill (void)
{
  if (roff < rlen)
    return rlen - roff;
  roff = rlen = 0;
  for (;;)
    {
      struct pollfd p = { .fd = guest_io.ctl, .events = POLLIN };
      ssize_t n = read (guest_io.ctl, rbuf, sizeof rbuf);
      if (n > 0)
        {
          rlen = (size_t) n;
          return rlen;
        }
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        fail ("snapshot: read " CTL_PORT_NAME ": %s", strerror (errno));
      /* a host end not connected (between save and restore) polls as POLLHUP */
      if (poll (&p, 1, 100) < 0 || (p.revents & POLLIN) == 0)
        {
          struct timespec ts = { 0, 2 * 1000 * 1000 };
          nanosleep (&ts, NULL);
        }
    }
}

static void
ctl_line (char *out, size_t cap)
{
  size_t n = 0;
  for (;;)
    {
      ctl_fill ();
      char ch = rbuf[roff++];
      if (ch == '\n')
        break;
      if (n + 1 >= cap)
        fail ("snapshot: a line on " CTL_PORT_NAME " over %zu bytes", cap);
      out[n++] = ch;
    }
  out[n] = '\0';
}

static void
ctl_bytes (char *out, size_t len)
{
  while (len > 0)
    {
      size_t n = ctl_fill ();
      if (n > len)
        n = len;
      memcpy (out, rbuf + roff, n);
      roff += n;
      out += n;
      len -= n;
    }
}

#define SEED_BYTES 32

/* The host's bytes into the input pool, credited, and the CRNG reseeded from
 * it now: every restored VM's random numbers (and boot_id) part from the
 * snapshot's. */
static void
reseed (const char *hex)
{
  struct {
    struct rand_pool_info info;
    unsigned char buf[SEED_BYTES];
  } s;
  if (strlen (hex) != 2 * SEED_BYTES)
    fail ("snapshot: seed: expected %d hex digits", 2 * SEED_BYTES);
  for (int i = 0; i < SEED_BYTES; i++)
    {
      int hi = guestcfg_hexval (hex[2 * i]), lo = guestcfg_hexval (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        fail ("snapshot: seed: not hex");
      s.buf[i] = (unsigned char) (hi << 4 | lo);
    }
  s.info.entropy_count = SEED_BYTES * 8;
  s.info.buf_size = SEED_BYTES;
  int fd = open ("/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl (fd, RNDADDENTROPY, &s) < 0 || ioctl (fd, RNDRESEEDCRNG) < 0)
    fail ("snapshot: reseed the guest's random numbers: %s", strerror (errno));
  close (fd);
  explicit_bzero (&s, sizeof s);
}

/* eth0's MAC (it is down: nothing brought it up before the snapshot). */
static void
set_mac (const char *mac)
{
  struct ifreq ifr;
  unsigned v[6];
  if (sscanf (mac, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    fail ("snapshot: MAC `%s`: expected xx:xx:xx:xx:xx:xx", mac);
  memset (&ifr, 0, sizeof ifr);
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  for (int i = 0; i < 6; i++)
    ifr.ifr_hwaddr.sa_data[i] = (char) v[i];
  int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl (s, SIOCSIFHWADDR, &ifr) < 0)
    fail ("snapshot: set eth0's MAC %s: %s", mac, strerror (errno));
  close (s);
}

/* "NAME: N kB" of /proc/meminfo in bytes, 0 when it is not there. */
static unsigned long long
meminfo_bytes (const char *name)
{
  char buf[4096];
  int fd = open ("/proc/meminfo", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  size_t len = strlen (name);
  for (char *l = buf; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strncmp (l, name, len) == 0 && l[len] == ':')
      return strtoull (l + len + 1, NULL, 10) * 1024ULL;
  return 0;
}

/* Before the save: the guest's free memory zeroed, so that the saved state holds only the pages
 * in use (QEMU writes a zero page as a few bytes, and a restore need not touch it). The kernel
 * leaves freed pages as they were (the unpacked initramfs' source, pages of the boot); pages it
 * gives to a process are zeroed first, so taking nearly all free memory once and giving it back
 * zeroes it. The clean page cache goes first (dropped, its pages freed); SNAP_ZERO_RESERVE and a
 * sixteenth of the free memory stay free so that nothing comes near the out-of-memory killer (PID 1
 * is the only process, which it cannot kill: the kernel panics). The share grows with the memory:
 * the zone watermarks and the page tables of the mapping do (a fixed 8 MiB left a 3 GiB guest
 * out of memory). Costs the snapshot's build only, never a workload. */
#define SNAP_ZERO_RESERVE (16ULL << 20)
static void
zero_free_memory (void)
{
  int fd = open ("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      if (write (fd, "3\n", 2) < 0)
        { /* only a smaller saving */
        }
      close (fd);
    }
  unsigned long long avail = meminfo_bytes ("MemFree");
  unsigned long long keep = SNAP_ZERO_RESERVE + avail / 16;
  if (avail <= 2 * keep)
    return;
  size_t len = (size_t) (avail - keep) & ~(size_t) 0xfffff;
  void *p = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED)
    munmap (p, len);
}

bool
snap_waits (void)
{
  char buf[sizeof SNAP_WAIT_MAGIC] = "";
  int fd = open (CONFIG_PATH, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  return n == (ssize_t) sizeof buf - 1 && memcmp (buf, SNAP_WAIT_MAGIC, sizeof buf - 1) == 0;
}

void
snap_restore (struct vm_guest_config *c)
{
  cella_error_t err = NULL;
  char line[256], seed[160], mac[40];
  unsigned long len;
  long long sec, nsec;
  char *text;
  zero_free_memory ();
  ctl_send ("waiting\n");
  ctl_flush_wait (5000);
  /* here the host saves the VM; a restored one goes on from this read */
  ctl_line (line, sizeof line);
  /* another host from here on: it counts our output ports' bytes from 0 */
  guest_io.out_sent = guest_io.err_sent = 0;
  if (sscanf (line, "restore %150s %39s", seed, mac) != 2)
    fail ("snapshot: expected `restore SEED MAC` on " CTL_PORT_NAME ", got `%.60s`", line);
  reseed (seed);
  explicit_bzero (seed, sizeof seed);
  if (strcmp (mac, "-") != 0)
    set_mac (mac);
  ctl_line (line, sizeof line);
  if (sscanf (line, "config %lu", &len) != 1 || len > GUESTCFG_MAX_BYTES)
    fail ("snapshot: expected `config LEN` on " CTL_PORT_NAME ", got `%.60s`", line);
  text = malloc (len + 1);
  if (text == NULL)
    fail ("snapshot: config: out of memory");
  ctl_bytes (text, len);
  text[len] = '\0';
  if (guestcfg_parse (text, len, c, &err) < 0)
    fail_err (&err);
  free (text);
  ctl_send ("resumed\n");
  ctl_flush_wait (5000);
  ctl_line (line, sizeof line);
  if (sscanf (line, "clock %lld %lld", &sec, &nsec) != 2 || sec < 0 || nsec < 0 || nsec >= 1000000000)
    fail ("snapshot: expected `clock SEC NSEC` on " CTL_PORT_NAME ", got `%.60s`", line);
  struct timespec ts = { .tv_sec = (time_t) sec, .tv_nsec = (long) nsec };
  if (clock_settime (CLOCK_REALTIME, &ts) < 0)
    fail ("snapshot: set the clock: %s", strerror (errno));
}
