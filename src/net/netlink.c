/* rtnetlink by hand: the few link, address and route requests a private network needs.
 * Each request is one message and one acknowledgement; the socket belongs to the network
 * namespace of the process that opened it, which is how the container's side is configured. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

struct nlreq {
  union {
    struct nlmsghdr h;
    char buf[1024];
  };
};

static void *
nl_begin (struct nlreq *r, int type, int flags, size_t body)
{
  memset (r, 0, sizeof *r);
  r->h.nlmsg_type = (unsigned short) type;
  r->h.nlmsg_flags = (unsigned short) (NLM_F_REQUEST | NLM_F_ACK | flags);
  r->h.nlmsg_len = NLMSG_LENGTH (body);
  return NLMSG_DATA (&r->h);
}

static struct rtattr *
nl_put (struct nlreq *r, int type, const void *data, size_t len)
{
  struct rtattr *a = (struct rtattr *) (r->buf + NLMSG_ALIGN (r->h.nlmsg_len));
  a->rta_type = (unsigned short) type;
  a->rta_len = (unsigned short) RTA_LENGTH (len);
  if (len)
    memcpy (RTA_DATA (a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN (r->h.nlmsg_len) + RTA_ALIGN (a->rta_len);
  return a;
}

static void
nl_put_str (struct nlreq *r, int type, const char *s)
{
  nl_put (r, type, s, strlen (s) + 1);
}

static void
nl_put_u32 (struct nlreq *r, int type, uint32_t v)
{
  nl_put (r, type, &v, sizeof v);
}

static struct rtattr *
nl_nest (struct nlreq *r, int type)
{
  return nl_put (r, type, NULL, 0);
}

static void
nl_nest_end (struct nlreq *r, struct rtattr *a)
{
  a->rta_len = (unsigned short) (r->buf + r->h.nlmsg_len - (char *) a);
}

int
nl_open (cella_error_t *err)
{
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  int fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0)
    return cella_error (err, errno, "open a netlink socket");
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      return cella_error (err, e, "bind a netlink socket");
    }
  return fd;
}

/* Send one request and read its acknowledgement: 0 or -errno. */
static int
nl_talk (int fd, struct nlreq *r)
{
  static unsigned seq;
  char buf[4096];
  struct sockaddr_nl to = { .nl_family = AF_NETLINK };
  r->h.nlmsg_seq = ++seq;
  if (sendto (fd, r->buf, r->h.nlmsg_len, 0, (struct sockaddr *) &to, sizeof to) < 0)
    return -errno;
  for (;;)
    {
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK (h, (size_t) n); h = NLMSG_NEXT (h, n))
        if (h->nlmsg_seq == r->h.nlmsg_seq && h->nlmsg_type == NLMSG_ERROR)
          return ((struct nlmsgerr *) NLMSG_DATA (h))->error;
    }
}

int
nl_bridge_add (int fd, const char *name)
{
  struct nlreq r;
  struct rtattr *info;
  nl_begin (&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof (struct ifinfomsg));
  nl_put_str (&r, IFLA_IFNAME, name);
  info = nl_nest (&r, IFLA_LINKINFO);
  nl_put_str (&r, IFLA_INFO_KIND, "bridge");
  nl_nest_end (&r, info);
  return nl_talk (fd, &r);
}

int
nl_veth_add (int fd, const char *host, unsigned master, const char *peer, const unsigned char *peer_mac,
             int peer_netns_fd)
{
  struct nlreq r;
  struct rtattr *info, *data, *p;
  struct ifinfomsg *pi;
  nl_begin (&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof (struct ifinfomsg));
  nl_put_str (&r, IFLA_IFNAME, host);
  if (master)
    nl_put_u32 (&r, IFLA_MASTER, master);
  info = nl_nest (&r, IFLA_LINKINFO);
  nl_put_str (&r, IFLA_INFO_KIND, "veth");
  data = nl_nest (&r, IFLA_INFO_DATA);
  p = nl_put (&r, VETH_INFO_PEER, NULL, 0);
  /* the peer's attributes follow its own ifinfomsg */
  pi = (struct ifinfomsg *) (r.buf + r.h.nlmsg_len);
  memset (pi, 0, sizeof *pi);
  r.h.nlmsg_len += NLMSG_ALIGN (sizeof *pi);
  nl_put_str (&r, IFLA_IFNAME, peer);
  if (peer_mac)
    nl_put (&r, IFLA_ADDRESS, peer_mac, 6);
  nl_put_u32 (&r, IFLA_NET_NS_FD, (uint32_t) peer_netns_fd);
  nl_nest_end (&r, p);
  nl_nest_end (&r, data);
  nl_nest_end (&r, info);
  return nl_talk (fd, &r);
}

int
nl_link_up (int fd, unsigned index)
{
  struct nlreq r;
  struct ifinfomsg *ifi = nl_begin (&r, RTM_NEWLINK, 0, sizeof (struct ifinfomsg));
  ifi->ifi_index = (int) index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return nl_talk (fd, &r);
}

int
nl_link_del (int fd, const char *name)
{
  struct nlreq r;
  nl_begin (&r, RTM_DELLINK, 0, sizeof (struct ifinfomsg));
  nl_put_str (&r, IFLA_IFNAME, name);
  return nl_talk (fd, &r);
}

int
nl_link_master (int fd, unsigned index, unsigned master)
{
  struct nlreq r;
  struct ifinfomsg *ifi = nl_begin (&r, RTM_NEWLINK, 0, sizeof (struct ifinfomsg));
  ifi->ifi_index = (int) index;
  nl_put_u32 (&r, IFLA_MASTER, master);
  return nl_talk (fd, &r);
}

int
nl_addr_add (int fd, unsigned index, uint32_t addr_be, int prefix)
{
  struct nlreq r;
  struct ifaddrmsg *ifa = nl_begin (&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof (struct ifaddrmsg));
  uint32_t bcast = prefix < 32 ? addr_be | htonl (0xffffffffu >> prefix) : addr_be;
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char) prefix;
  ifa->ifa_index = index;
  nl_put (&r, IFA_LOCAL, &addr_be, 4);
  nl_put (&r, IFA_ADDRESS, &addr_be, 4);
  nl_put (&r, IFA_BROADCAST, &bcast, 4);
  return nl_talk (fd, &r);
}

int
nl_route_default (int fd, unsigned index, uint32_t gw_be)
{
  struct nlreq r;
  struct rtmsg *rt = nl_begin (&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof (struct rtmsg));
  rt->rtm_family = AF_INET;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  nl_put (&r, RTA_GATEWAY, &gw_be, 4);
  nl_put_u32 (&r, RTA_OIF, index);
  return nl_talk (fd, &r);
}
