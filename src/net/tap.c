/* The vm backend's NIC as root: a tap device on the network's bridge, an address leased like an
 * ns container's, published ports as the same DNAT rules (docs/vm.md "Networking"). The tap is
 * not persistent: it goes away when the last fd on it (QEMU's) is closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../backend/backend.h"
#include "internal.h"

bool
net_vm_tap_wanted (const struct plan *p)
{
  return backend_can (p, BACKEND_CAP_NET_TAP) && p->net == NET_PRIVATE && net_host_root ();
}

/* The container's ports as leased (random host ports resolved by net_prepare). */
static void
leased_ports (const char *net, const char *id, struct net_port **out, size_t *n)
{
  struct leases l;
  *out = NULL;
  *n = 0;
  leases_load (net, &l);
  for (size_t i = 0; i < l.n; i++)
    if (strcmp (l.v[i].id, id) == 0 && l.v[i].ports && strcmp (l.v[i].ports, "-") != 0)
      {
        char *copy = xstrdup (l.v[i].ports), *save = NULL;
        for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
          {
            struct net_port pt = { 0 };
            if (sscanf (t, "%3[a-z]:%47[^:]:%u:%u", pt.proto, pt.ip, &pt.host, &pt.ctr) < 4
                && (pt.ip[0] = '\0', sscanf (t, "%3[a-z]::%u:%u", pt.proto, &pt.host, &pt.ctr) < 3))
              continue;
            *out = xrealloc (*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = pt;
          }
        free (copy);
      }
  leases_clear (&l);
}

/* The name servers of the container's resolv.conf (--dns, else the host's without loopback). */
static char **
nameservers (const struct plan *p)
{
  cleanup_free char *host = NULL, *text = NULL;
  char **out = NULL, *save = NULL;
  if (read_file ("/etc/resolv.conf", &host, NULL, NULL) < 0)
    host = NULL;
  text = net_resolv_conf (host, p->dns);
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char addr[64];
      if (sscanf (line, "nameserver %63s", addr) == 1)
        strv_push (&out, addr);
    }
  return out;
}

static int
tap_open (const char *name, cella_error_t *err)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno,
                        "the vm's network: open `/dev/net/tun` (needed for a tap device as root; "
                        "modprobe tun, or use --network none)");
  /* what QEMU's -netdev tap expects of an fd: ethernet frames, no packet info, virtio-net headers */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    {
      int e = errno;
      close (fd);
      return cella_error (err, e, "the vm's network: create the tap device `%s`", name);
    }
  return fd;
}

int
net_vm_tap (struct plan *p, struct net_vm_nic *nic, cella_error_t *err)
{
  struct net_def d;
  struct in_addr in;
  cleanup_free char *tap = xasprintf ("vt%.12s", p->id);
  cleanup_free struct net_port *ports = NULL;
  cleanup_close int nl = -1;
  unsigned br, idx;
  size_t n = 0;
  int r;
  uint32_t a;
  memset (nic, 0, sizeof *nic);
  nic->fd = -1;
  if (net_prepare (p, err) < 0) /* the lease: address, host ports checked or picked */
    return -1;
  /* a user-defined network's /etc/hosts (a bind of a host file, hosts_attach): 9p shares
   * directories only, so the guest keeps the image's */
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_BIND && strcmp (p->ops[i].target, "/etc/hosts") == 0)
      p->ops[i].skip = true;
  if (p->net_addr == NULL || inet_pton (AF_INET, p->net_addr, &in) != 1)
    return cella_error (err, EINVAL, "the vm has no address on its network");
  a = ntohl (in.s_addr);
  if (net_def_load (p->network ? p->network : NET_DEFAULT_NAME, &d, err) < 0 || (nl = nl_open (err)) < 0
      || net_bridge_ensure (nl, &d, &br, err) < 0)
    goto fail;
  nl_link_del (nl, tap); /* left by a crash */
  nic->fd = tap_open (tap, err);
  if (nic->fd < 0)
    goto fail;
  idx = if_nametoindex (tap);
  if (idx == 0)
    {
      cella_error (err, errno, "tap device `%s`", tap);
      goto fail;
    }
  if ((r = nl_link_master (nl, idx, br)) < 0 || (r = nl_link_up (nl, idx)) < 0)
    {
      cella_error (err, -r, "attach the tap device `%s` to the bridge `%s`", tap, d.bridge);
      goto fail;
    }
  leased_ports (d.name, p->id, &ports, &n);
  if (n && nat_container_setup (p->id, ports, n, a, err) < 0)
    goto fail;
  {
    cleanup_free char *gw = net_addr_str (d.gateway);
    nic->cidr = xasprintf ("%s/%d", p->net_addr, d.prefix);
    nic->gateway = steal_pointer (&gw);
  }
  nic->mac = xasprintf ("02:42:%02x:%02x:%02x:%02x", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
  if (p->network && strcmp (p->network, NET_DEFAULT_NAME) != 0 && !(p->dns && p->dns[0]))
    {
      /* a user-defined network: its name server (on the gateway), as for an ns member: it answers
       * the members' names and forwards the rest to the host's resolvers */
      strv_push (&nic->nameservers, nic->gateway);
      net_dns_start (p->network); /* a no-op when the network's server runs already */
    }
  else
    nic->nameservers = nameservers (p);
  nic->port_lines = xstrdup ("");
  for (size_t i = 0; i < n; i++)
    {
      char *next = xasprintf ("%s%u/%s -> %s:%u\n", nic->port_lines, ports[i].ctr, ports[i].proto,
                              *ports[i].ip ? ports[i].ip : "0.0.0.0", ports[i].host);
      free (nic->port_lines);
      nic->port_lines = next;
    }
  return 0;
fail:
  net_vm_nic_clear (nic);
  net_detach (p);
  return -1;
}

void
net_vm_nic_clear (struct net_vm_nic *nic)
{
  if (nic->fd >= 0)
    close (nic->fd);
  free (nic->cidr);
  free (nic->gateway);
  free (nic->mac);
  free (nic->port_lines);
  strv_free (nic->nameservers);
  memset (nic, 0, sizeof *nic);
  nic->fd = -1;
}
