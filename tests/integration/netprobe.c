/* netprobe: the attacker's and the victim's side of the host-loopback tests (t_netpriv.sh).
 * Built static by the tests and bind-mounted into the container: busybox cannot forge frames.
 *
 *   netprobe listen udp|tcp PORT SECONDS [ADDR]
 *       on the host: bind ADDR (127.0.0.1) PORT, print "ready", then one line per datagram
 *       ("got FROM PAYLOAD") or accepted connection ("conn FROM") until SECONDS pass.
 *   netprobe send udp|syn PORT [DST]
 *       in a container: an Ethernet frame from eth0's address to the default gateway's MAC (asked
 *       with an ARP request of our own) carrying a UDP datagram ("netprobe-attack") or a TCP SYN
 *       for DST (127.0.0.1) PORT, through AF_PACKET sockets, so that the container's own routing
 *       (which keeps 127.0.0.1 on its lo) is bypassed; sent twice, through the qdisc and with
 *       PACKET_QDISC_BYPASS, each reported as "VARIANT sent" or "VARIANT not sent: WHY". For syn,
 *       then the answers within 2 s: "VARIANT reply SYN-ACK|RST|other" or "VARIANT no reply".
 *   netprobe send ifudp PORT [DST]
 *       in a container, without any capability: an ordinary UDP socket sends the datagram to DST
 *       (127.0.0.1) PORT out of the default route's device, named by IP_UNICAST_IF, then by
 *       IP_PKTINFO's ifindex (either makes the kernel route a loopback address out of that device);
 *       "unicast-if sent" or "pktinfo sent", or "... not sent: WHY".
 * Exit status 0 when the probe ran (whatever it observed), 2 for a usage error, 1 otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD "netprobe-attack"

static int
die (const char *what)
{
  fprintf (stderr, "netprobe: %s: %s\n", what, strerror (errno));
  return 1;
}

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- the host's side ---- */

static int
listen_mode (const char *proto, int port, int seconds, const char *addr)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) }, from;
  bool tcp = strcmp (proto, "tcp") == 0;
  int one = 1, s = socket (AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  long end = now_ms () + seconds * 1000L;
  if (s < 0)
    return die ("socket");
  inet_pton (AF_INET, addr, &sa.sin_addr);
  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (s, (struct sockaddr *) &sa, sizeof sa) < 0 || (tcp && listen (s, 16) < 0))
    return die ("bind");
  printf ("ready\n");
  fflush (stdout);
  for (long left; (left = end - now_ms ()) > 0;)
    {
      struct pollfd p = { .fd = s, .events = POLLIN };
      socklen_t fl = sizeof from;
      char buf[256], a[INET_ADDRSTRLEN];
      if (poll (&p, 1, (int) left) <= 0)
        continue;
      if (tcp)
        {
          int c = accept (s, (struct sockaddr *) &from, &fl);
          if (c < 0)
            continue;
          printf ("conn %s\n", inet_ntop (AF_INET, &from.sin_addr, a, sizeof a));
          close (c);
        }
      else
        {
          ssize_t n = recvfrom (s, buf, sizeof buf - 1, 0, (struct sockaddr *) &from, &fl);
          if (n < 0)
            continue;
          buf[n] = '\0';
          printf ("got %s %s\n", inet_ntop (AF_INET, &from.sin_addr, a, sizeof a), buf);
        }
      fflush (stdout);
    }
  return 0;
}

/* ---- the container's side ---- */

struct route {
  char dev[IFNAMSIZ];
  struct in_addr gw, src;
  unsigned char gw_mac[ETH_ALEN], src_mac[ETH_ALEN];
  int ifindex;
};

/* The default route's device and gateway, from /proc/net/route (hex, network order). */
static int
default_route (struct route *r)
{
  FILE *f = fopen ("/proc/net/route", "re");
  char line[256], dev[IFNAMSIZ];
  unsigned dst, gw, flags;
  int found = -1;
  if (f == NULL)
    return die ("/proc/net/route");
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "%15s %x %x %x", dev, &dst, &gw, &flags) == 4 && dst == 0 && gw != 0)
      {
        snprintf (r->dev, sizeof r->dev, "%s", dev);
        r->gw.s_addr = gw;
        found = 0;
        break;
      }
  fclose (f);
  if (found < 0)
    fprintf (stderr, "netprobe: no default route\n");
  return found;
}

/* The gateway's MAC: an ARP request of our own (no IP packet leaves), its reply. */
struct arp_pkt {
  uint16_t htype, ptype;
  uint8_t hlen, plen;
  uint16_t op;
  uint8_t sha[ETH_ALEN], spa[4], tha[ETH_ALEN], tpa[4];
} __attribute__ ((packed));

static int
gateway_mac (struct route *r)
{
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ARP), .sll_ifindex = r->ifindex,
                            .sll_halen = ETH_ALEN, .sll_addr = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };
  struct arp_pkt req = { .htype = htons (1), .ptype = htons (ETH_P_IP), .hlen = ETH_ALEN, .plen = 4, .op = htons (1) };
  int s = socket (AF_PACKET, SOCK_DGRAM, htons (ETH_P_ARP));
  if (s < 0 || bind (s, (struct sockaddr *) &ll, sizeof ll) < 0)
    return die ("ARP socket");
  memcpy (req.sha, r->src_mac, ETH_ALEN);
  memcpy (req.spa, &r->src, 4);
  memcpy (req.tpa, &r->gw, 4);
  for (int tries = 0; tries < 3; tries++)
    {
      long end = now_ms () + 1000;
      if (sendto (s, &req, sizeof req, 0, (struct sockaddr *) &ll, sizeof ll) < 0)
        return die ("send an ARP request");
      for (long left; (left = end - now_ms ()) > 0;)
        {
          struct pollfd p = { .fd = s, .events = POLLIN };
          struct arp_pkt rep;
          if (poll (&p, 1, (int) left) <= 0)
            continue;
          if (recv (s, &rep, sizeof rep, 0) == (ssize_t) sizeof rep && rep.op == htons (2)
              && memcmp (rep.spa, &r->gw, 4) == 0)
            {
              memcpy (r->gw_mac, rep.sha, ETH_ALEN);
              close (s);
              return 0;
            }
        }
    }
  close (s);
  fprintf (stderr, "netprobe: no ARP reply from the gateway\n");
  return -1;
}

static int
iface_info (struct route *r)
{
  struct ifreq ifr = { 0 };
  int s = socket (AF_INET, SOCK_DGRAM, 0);
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", r->dev);
  if (s < 0 || ioctl (s, SIOCGIFADDR, &ifr) < 0)
    return die ("the device's address");
  r->src = ((struct sockaddr_in *) &ifr.ifr_addr)->sin_addr;
  if (ioctl (s, SIOCGIFHWADDR, &ifr) < 0)
    return die ("the device's MAC address");
  memcpy (r->src_mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
  close (s);
  r->ifindex = (int) if_nametoindex (r->dev);
  return 0;
}

static uint16_t
csum (const void *data, size_t len, uint32_t sum)
{
  const uint8_t *p = data;
  for (; len > 1; p += 2, len -= 2)
    sum += (uint32_t) (p[0] << 8 | p[1]);
  if (len)
    sum += (uint32_t) (p[0] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return htons ((uint16_t) ~sum);
}

/* The sum of the pseudo-header of a TCP or UDP checksum (not folded). */
static uint32_t
pseudo_sum (const struct iphdr *ip, size_t l4len)
{
  const uint8_t *s = (const uint8_t *) &ip->saddr, *d = (const uint8_t *) &ip->daddr;
  return (uint32_t) (s[0] << 8 | s[1]) + (uint32_t) (s[2] << 8 | s[3]) + (uint32_t) (d[0] << 8 | d[1])
         + (uint32_t) (d[2] << 8 | d[3]) + ip->protocol + (uint32_t) l4len;
}

/* One frame: Ethernet, IPv4, then UDP with PAYLOAD or a bare TCP SYN. Its length. */
static size_t
build_frame (uint8_t *buf, const struct route *r, struct in_addr dst, int port, int sport, bool syn)
{
  struct ether_header *eth = (struct ether_header *) buf;
  struct iphdr *ip = (struct iphdr *) (eth + 1);
  uint8_t *l4 = (uint8_t *) (ip + 1);
  size_t l4len = syn ? sizeof (struct tcphdr) : sizeof (struct udphdr) + strlen (PAYLOAD);
  memcpy (eth->ether_dhost, r->gw_mac, ETH_ALEN);
  memcpy (eth->ether_shost, r->src_mac, ETH_ALEN);
  eth->ether_type = htons (ETHERTYPE_IP);
  *ip = (struct iphdr) { .version = 4, .ihl = 5, .ttl = 64, .tot_len = htons ((uint16_t) (sizeof *ip + l4len)),
                         .id = htons ((uint16_t) getpid ()), .protocol = syn ? IPPROTO_TCP : IPPROTO_UDP,
                         .saddr = r->src.s_addr, .daddr = dst.s_addr };
  ip->check = csum (ip, sizeof *ip, 0);
  if (syn)
    {
      struct tcphdr *t = (struct tcphdr *) l4;
      *t = (struct tcphdr) { .source = htons ((uint16_t) sport), .dest = htons ((uint16_t) port),
                             .seq = htonl (0x12345678u), .doff = 5, .syn = 1, .window = htons (64240) };
      t->check = csum (t, l4len, pseudo_sum (ip, l4len));
    }
  else
    {
      struct udphdr *u = (struct udphdr *) l4;
      *u = (struct udphdr) { .source = htons ((uint16_t) sport), .dest = htons ((uint16_t) port),
                             .len = htons ((uint16_t) l4len) };
      memcpy (u + 1, PAYLOAD, strlen (PAYLOAD));
      u->check = csum (u, l4len, pseudo_sum (ip, l4len));
    }
  return sizeof *eth + sizeof *ip + l4len;
}

/* What comes back from dst:port to sport or sport + 1 within 2 s (TCP): one line per answer. */
static void
await_replies (int s, struct in_addr dst, int port, int sport)
{
  static const char *const variant[] = { "plain", "qdisc-bypass" };
  bool seen[2] = { false, false };
  long end = now_ms () + 2000;
  for (long left; (left = end - now_ms ()) > 0;)
    {
      struct pollfd p = { .fd = s, .events = POLLIN };
      uint8_t buf[2048];
      const struct iphdr *ip = (const struct iphdr *) buf;
      const struct tcphdr *t;
      ssize_t n;
      int v;
      if (poll (&p, 1, (int) left) <= 0)
        continue;
      n = recv (s, buf, sizeof buf, 0); /* SOCK_DGRAM: from the IP header on */
      if (n < (ssize_t) sizeof *ip || ip->protocol != IPPROTO_TCP || ip->saddr != dst.s_addr
          || n < (ssize_t) (ip->ihl * 4 + sizeof *t))
        continue;
      t = (const struct tcphdr *) (buf + ip->ihl * 4);
      v = ntohs (t->dest) - sport;
      if (ntohs (t->source) != port || v < 0 || v > 1 || seen[v])
        continue;
      seen[v] = true;
      printf ("%s reply %s\n", variant[v], t->rst ? "RST" : t->syn && t->ack ? "SYN-ACK" : "other");
    }
  for (int v = 0; v < 2; v++)
    if (!seen[v])
      printf ("%s no reply\n", variant[v]);
}

/* Send the frame twice: through the qdisc (netfilter's egress hook sees it), then with
 * PACKET_QDISC_BYPASS (the direct path to the driver). A send the kernel refuses is reported,
 * not an error: the frame did not leave. */
static void
send_twice (const struct route *r, struct in_addr dst, int port, int sport, bool syn)
{
  static const char *const variant[] = { "plain", "qdisc-bypass" };
  for (int v = 0; v < 2; v++)
    {
      struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_halen = ETH_ALEN, .sll_ifindex = r->ifindex };
      uint8_t frame[256];
      int one = 1, s = socket (AF_PACKET, SOCK_RAW, 0);
      size_t len = build_frame (frame, r, dst, port, sport + v, syn);
      memcpy (ll.sll_addr, r->gw_mac, ETH_ALEN);
      if (s < 0)
        {
          printf ("%s not sent: socket: %s\n", variant[v], strerror (errno));
          continue;
        }
      if (v == 1 && setsockopt (s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
        printf ("%s not sent: PACKET_QDISC_BYPASS: %s\n", variant[v], strerror (errno));
      else if (sendto (s, frame, len, 0, (struct sockaddr *) &ll, sizeof ll) != (ssize_t) len)
        printf ("%s not sent: %s\n", variant[v], strerror (errno));
      else
        printf ("%s sent\n", variant[v]);
      close (s);
    }
}

/* No capability needed: the device named by the socket option or the ancillary data wins over the
 * local route to 127.0.0.0/8, and the datagram leaves through it to the gateway. */
static int
send_ifudp (const struct route *r, struct in_addr dst, int port)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr = dst };
  uint32_t idx = htonl ((uint32_t) r->ifindex);
  char cbuf[CMSG_SPACE (sizeof (struct in_pktinfo))] = { 0 };
  struct iovec iov = { .iov_base = (void *) PAYLOAD, .iov_len = sizeof PAYLOAD - 1 };
  struct msghdr mh = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  struct in_pktinfo pi = { .ipi_ifindex = r->ifindex };
  int s = socket (AF_INET, SOCK_DGRAM, 0), s2 = socket (AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || s2 < 0)
    return die ("UDP socket");
  if (setsockopt (s, IPPROTO_IP, IP_UNICAST_IF, &idx, sizeof idx) < 0
      || sendto (s, PAYLOAD, sizeof PAYLOAD - 1, 0, (struct sockaddr *) &to, sizeof to) < 0)
    printf ("unicast-if not sent: %s\n", strerror (errno));
  else
    printf ("unicast-if sent\n");
  cm->cmsg_level = IPPROTO_IP;
  cm->cmsg_type = IP_PKTINFO;
  cm->cmsg_len = CMSG_LEN (sizeof pi);
  memcpy (CMSG_DATA (cm), &pi, sizeof pi);
  if (sendmsg (s2, &mh, 0) < 0)
    printf ("pktinfo not sent: %s\n", strerror (errno));
  else
    printf ("pktinfo sent\n");
  close (s);
  close (s2);
  fflush (stdout);
  return 0;
}

static int
send_mode (const char *what, int port, const char *dst_text)
{
  struct route r = { 0 };
  struct in_addr dst;
  bool syn = strcmp (what, "syn") == 0;
  int sport = 40000 + (getpid () % 10000) * 2, rx = -1;
  char gw[INET_ADDRSTRLEN];
  if (inet_pton (AF_INET, dst_text, &dst) != 1 || (!syn && strcmp (what, "udp") != 0 && strcmp (what, "ifudp") != 0))
    {
      fprintf (stderr, "netprobe: bad probe %s to %s\n", what, dst_text);
      return 2;
    }
  if (strcmp (what, "ifudp") == 0)
    return default_route (&r) != 0 || iface_info (&r) != 0 ? 1 : send_ifudp (&r, dst, port);
  if (default_route (&r) != 0 || iface_info (&r) != 0 || gateway_mac (&r) != 0)
    return 1;
  inet_ntop (AF_INET, &r.gw, gw, sizeof gw);
  fprintf (stderr, "netprobe: %s to %s:%d via %s (gateway %s %02x:%02x:%02x:%02x:%02x:%02x)\n", what, dst_text, port,
           r.dev, gw, r.gw_mac[0], r.gw_mac[1], r.gw_mac[2], r.gw_mac[3], r.gw_mac[4], r.gw_mac[5]);
  if (syn)
    {
      struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_IP), .sll_ifindex = r.ifindex };
      rx = socket (AF_PACKET, SOCK_DGRAM, htons (ETH_P_IP));
      if (rx < 0 || bind (rx, (struct sockaddr *) &ll, sizeof ll) < 0)
        return die ("AF_PACKET receive socket");
    }
  send_twice (&r, dst, port, sport, syn);
  if (syn)
    await_replies (rx, dst, port, sport);
  fflush (stdout);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc >= 5 && strcmp (argv[1], "listen") == 0)
    return listen_mode (argv[2], atoi (argv[3]), atoi (argv[4]), argc > 5 ? argv[5] : "127.0.0.1");
  if (argc >= 4 && strcmp (argv[1], "send") == 0)
    return send_mode (argv[2], atoi (argv[3]), argc > 4 ? argv[4] : "127.0.0.1");
  fprintf (stderr, "usage: netprobe listen udp|tcp PORT SECONDS [ADDR] | send udp|syn|ifudp PORT [DST]\n");
  return 2;
}
