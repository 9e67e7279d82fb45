/* The guest's network (src/vm/guest.h): lo up always; with a `net` config
 * line, the virtio-net interface up with its static IPv4 address, netmask and
 * default route (ioctl: no netlink library, no busybox); with `nameserver`
 * lines, /etc/resolv.conf in the container's root. */
#define _GNU_SOURCE
#include "init.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
if_up (int s, const char *name, cella_error_t *err)
{
  struct ifreq ifr;
  memset (&ifr, 0, sizeof ifr);
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
    return cella_error (err, errno, "network: interface %s", name);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (s, SIOCSIFFLAGS, &ifr) < 0)
    return cella_error (err, errno, "network: bring %s up", name);
  return 0;
}

static void
set_sin (struct sockaddr *sa, in_addr_t a)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  sin.sin_addr.s_addr = a;
  memcpy (sa, &sin, sizeof sin);
}

/* The interface appears when virtio_net probes the device: wait up to 5 s. */
static int
wait_if (const char *name, cella_error_t *err)
{
  for (int i = 0; i < 500; i++)
    {
      if (if_nametoindex (name) != 0)
        return 0;
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  return cella_error (err, ENODEV,
                      "network: no interface %s after 5 s (virtio_net "
                      "missing from the guest kernel?)",
                      name);
}

int
net_setup (const struct vm_guest_config *c, cella_error_t *err)
{
  int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  in_addr_t addr, mask;
  long prefix;
  int r = -1;
  if (s < 0)
    return cella_error (err, errno, "network: socket");
  if (if_up (s, "lo", err) < 0)
    goto out;
  if (c->net_addr == NULL)
    {
      r = 0;
      goto out;
    }
  const char *ifname = c->net_ifname ? c->net_ifname : "eth0";
  char a[64];
  snprintf (a, sizeof a, "%s", c->net_addr);
  char *slash = strchr (a, '/');
  if (slash == NULL)
    {
      cella_error (err, 0, "network: address `%s` without a prefix", c->net_addr);
      goto out;
    }
  *slash = '\0';
  prefix = strtol (slash + 1, NULL, 10);
  if (inet_pton (AF_INET, a, &addr) != 1)
    {
      cella_error (err, 0, "network: bad address `%s`", c->net_addr);
      goto out;
    }
  mask = prefix ? htonl (0xffffffffu << (32 - prefix)) : 0;
  if (wait_if (ifname, err) < 0)
    goto out;
  memset (&ifr, 0, sizeof ifr);
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  set_sin (&ifr.ifr_addr, addr);
  if (ioctl (s, SIOCSIFADDR, &ifr) < 0)
    {
      cella_error (err, errno, "network: give %s the address %s", ifname, c->net_addr);
      goto out;
    }
  set_sin (&ifr.ifr_netmask, mask);
  if (ioctl (s, SIOCSIFNETMASK, &ifr) < 0)
    {
      cella_error (err, errno, "network: netmask of %s", ifname);
      goto out;
    }
  if (if_up (s, ifname, err) < 0)
    goto out;
  if (c->net_gateway)
    {
      struct rtentry rt;
      in_addr_t gw;
      if (inet_pton (AF_INET, c->net_gateway, &gw) != 1)
        {
          cella_error (err, 0, "network: bad gateway `%s`", c->net_gateway);
          goto out;
        }
      memset (&rt, 0, sizeof rt);
      set_sin (&rt.rt_dst, 0);
      set_sin (&rt.rt_genmask, 0);
      set_sin (&rt.rt_gateway, gw);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      rt.rt_dev = (char *) ifname;
      if (ioctl (s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
        {
          cella_error (err, errno, "network: default route via %s", c->net_gateway);
          goto out;
        }
    }
  r = 0;
out:
  close (s);
  return r;
}

static int
write_all_fd (int fd, const char *p, size_t n)
{
  while (n)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      p += w;
      n -= (size_t) w;
    }
  return 0;
}

/* /etc/resolv.conf in the (new) root, only when the host gave name servers:
 * replaced (a symlink there is replaced, not followed). On a read-only root the
 * text goes to a file on /dev/shm bind-mounted over an existing
 * /etc/resolv.conf. Called after the switch to the container's root. */
static bool resolv_stub; /* export_root: /etc/resolv.conf is our empty stub */

void
net_resolv_undo (void)
{
  struct stat st;
  if (!resolv_stub)
    return;
  umount2 ("/etc/resolv.conf", MNT_DETACH);
  if (lstat ("/etc/resolv.conf", &st) == 0 && S_ISREG (st.st_mode) && st.st_size == 0)
    unlink ("/etc/resolv.conf");
}

int
net_write_resolv (const struct vm_guest_config *c, cella_error_t *err)
{
  char text[1024];
  size_t n = 0;
  static const char tmp[] = "/etc/.resolv.conf.cella";
  if (c->nameservers == NULL || c->nameservers[0] == NULL)
    return 0;
  n = (size_t) snprintf (text, sizeof text, "# written by cella-init\n");
  for (size_t i = 0; c->nameservers[i] && n < sizeof text; i++)
    n += (size_t) snprintf (text + n, sizeof text - n, "nameserver %s\n", c->nameservers[i]);
  if (n >= sizeof text)
    n = sizeof text - 1;
  if (mkdir ("/etc", 0755) < 0 && errno != EEXIST && errno != EROFS)
    return cella_error (err, errno, "network: mkdir /etc");
  struct stat st;
  if (c->export_root)
    {
      /* a build's RUN: the root's files are the layer; ours is bound over it (an empty stub,
       * removed after, where the image has none) */
      if (lstat ("/etc/resolv.conf", &st) < 0 && errno == ENOENT)
        {
          int stub = open ("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
          if (stub < 0)
            return cella_error (err, errno, "network: create /etc/resolv.conf");
          close (stub);
          resolv_stub = true;
        }
      errno = EROFS;
    }
  int fd = c->export_root ? -1 : open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0)
    {
      int bad = write_all_fd (fd, text, n) < 0 || fsync (fd) < 0;
      int e = errno;
      close (fd);
      if (bad || rename (tmp, "/etc/resolv.conf") < 0)
        {
          e = bad ? e : errno;
          unlink (tmp);
          return cella_error (err, e, "network: write /etc/resolv.conf");
        }
      return 0;
    }
  if (errno != EROFS)
    return cella_error (err, errno, "network: write /etc/resolv.conf");
  /* read-only root: a bind of a tmpfs file over the image's resolv.conf */
  static const char shm[] = "/dev/shm/.cella-resolv.conf";
  if (lstat ("/etc/resolv.conf", &st) < 0 || !S_ISREG (st.st_mode))
    {
      /* nothing to cover: the workload runs without one (names do not
       * resolve), as it would on the host */
      say ("network: read-only root without a /etc/resolv.conf file: "
           "none written");
      return 0;
    }
  fd = open (shm, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 || write_all_fd (fd, text, n) < 0)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      return cella_error (err, e, "network: write %s", shm);
    }
  close (fd);
  if (mount (shm, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0
      || mount (NULL, "/etc/resolv.conf", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
    return cella_error (err, errno, "network: bind %s on /etc/resolv.conf", shm);
  return 0;
}
