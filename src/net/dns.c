/* The embedded name server of a user-defined network (`cella __netdns NET`, docs/network.md
 * "Names"): on UDP port 53 of the network's gateway it answers A queries for the names of the
 * running members (from the leases) and forwards other names to the host's resolvers. One per
 * network (a flock'd pid file); it ends when the network has had no running member for a while.
 * The packet parser and writer are pure (test_net.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/proc.h"
#include "internal.h"

/* ---- packets ---- */

/* A name at off in pkt, as lower-case dotted text; compression pointers are followed (at most 16
 * jumps, each to an earlier offset past the header, so no loop). *end: the offset after the name where it sits. */
static int
dns_name_read (const uint8_t *pkt, size_t len, size_t off, char *out, size_t cap, size_t *end)
{
  size_t o = off, n = 0;
  int jumps = 0;
  bool jumped = false;
  for (;;)
    {
      uint8_t l;
      if (o >= len)
        return -1;
      l = pkt[o];
      if ((l & 0xc0) == 0xc0)
        {
          size_t to;
          if (o + 1 >= len || ++jumps > 16)
            return -1;
          to = ((size_t) (l & 0x3f) << 8) | pkt[o + 1];
          if (to >= o)
            return -1; /* forward or self: refuse (loops) */
          if (to < 12)
            return -1; /* into the header, which holds no name (and which a reply rewrites) */
          if (!jumped)
            *end = o + 2;
          jumped = true;
          o = to;
          continue;
        }
      if (l & 0xc0)
        return -1;
      if (l == 0)
        {
          if (!jumped)
            *end = o + 1;
          break;
        }
      if (o + 1 + l > len || n + l + 2 > cap || n + l + 1 > 254)
        return -1;
      if (n)
        out[n++] = '.';
      for (size_t i = 0; i < l; i++)
        {
          char c = (char) pkt[o + 1 + i];
          if (c == '.' || c == '\0')
            return -1;
          out[n++] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
        }
      o += 1 + l;
    }
  if (n == 0 && cap > 1)
    out[n++] = '.';
  out[n] = '\0';
  return 0;
}

int
dns_parse (const uint8_t *pkt, size_t len, struct dns_msg *m)
{
  memset (m, 0, sizeof *m);
  if (len < 12 || len > 65535)
    return -1;
  m->id = (uint16_t) (pkt[0] << 8 | pkt[1]);
  m->flags = (uint16_t) (pkt[2] << 8 | pkt[3]);
  m->qdcount = (uint16_t) (pkt[4] << 8 | pkt[5]);
  m->ancount = (uint16_t) (pkt[6] << 8 | pkt[7]);
  if (m->qdcount != 1)
    return -1;
  if (dns_name_read (pkt, len, 12, m->qname, sizeof m->qname, &m->qend) < 0 || m->qend + 4 > len)
    return -1;
  m->qtype = (uint16_t) (pkt[m->qend] << 8 | pkt[m->qend + 1]);
  m->qclass = (uint16_t) (pkt[m->qend + 2] << 8 | pkt[m->qend + 3]);
  m->qend += 4;
  m->first_a = 0;
  /* answers: the first A record's address (for tests and checks) */
  {
    size_t o = m->qend;
    for (unsigned i = 0; i < m->ancount; i++)
      {
        char name[256];
        size_t e = 0, rdlen;
        uint16_t type;
        if (dns_name_read (pkt, len, o, name, sizeof name, &e) < 0 || e + 10 > len)
          return -1;
        type = (uint16_t) (pkt[e] << 8 | pkt[e + 1]);
        rdlen = (size_t) (pkt[e + 8] << 8 | pkt[e + 9]);
        if (e + 10 + rdlen > len)
          return -1;
        if (type == 1 && rdlen == 4 && !m->first_a)
          m->first_a
              = (uint32_t) pkt[e + 10] << 24 | (uint32_t) pkt[e + 11] << 16 | (uint32_t) pkt[e + 12] << 8 | pkt[e + 13];
        o = e + 10 + rdlen;
      }
  }
  return 0;
}

size_t
dns_reply (const uint8_t *query, const struct dns_msg *q, int rcode, uint32_t addr, unsigned ttl, uint8_t *out,
           size_t cap)
{
  size_t n = q->qend;
  if (n > cap || n < 12)
    return 0;
  memcpy (out, query, n);
  /* QR, opcode kept, AA, RD kept, RA, rcode */
  out[2] = (uint8_t) (0x80 | (query[2] & 0x79) | 0x04);
  out[3] = (uint8_t) (0x80 | (rcode & 0x0f));
  out[4] = 0, out[5] = 1;
  out[6] = 0, out[7] = addr ? 1 : 0;
  memset (out + 8, 0, 4);
  if (addr)
    {
      if (n + 16 > cap)
        return 0;
      const uint8_t rr[16] = { 0xc0,
                               0x0c,
                               0,
                               1,
                               0,
                               1,
                               (uint8_t) (ttl >> 24),
                               (uint8_t) (ttl >> 16),
                               (uint8_t) (ttl >> 8),
                               (uint8_t) ttl,
                               0,
                               4,
                               (uint8_t) (addr >> 24),
                               (uint8_t) (addr >> 16),
                               (uint8_t) (addr >> 8),
                               (uint8_t) addr };
      memcpy (out + n, rr, sizeof rr);
      n += sizeof rr;
    }
  return n;
}

/* ---- the server ---- */

static char *
dns_pid_path (const char *net)
{
  return xasprintf ("%s/%s.dns", net_run_dir (), net);
}

/* A member's address by name (name, hostname, short or full id), case-insensitive; whether any
 * member runs at all in *alive. */
static uint32_t
member_lookup (const char *net, const char *qname, bool *alive)
{
  struct leases l;
  uint32_t found = 0;
  *alive = false;
  leases_load (net, &l);
  for (size_t i = 0; i < l.n; i++)
    {
      char *copy, *save = NULL;
      if (!proc_alive (l.v[i].owner, l.v[i].owner_start))
        continue;
      *alive = true;
      if (qname == NULL || found)
        continue;
      if (strcasecmp (qname, l.v[i].id) == 0 || (strlen (qname) == 12 && strncasecmp (qname, l.v[i].id, 12) == 0))
        found = l.v[i].addr;
      copy = xstrdup (l.v[i].names ? l.v[i].names : "-");
      for (char *t = strtok_r (copy, ",", &save); t && !found; t = strtok_r (NULL, ",", &save))
        if (strcmp (t, "-") != 0 && strcasecmp (t, qname) == 0)
          found = l.v[i].addr;
      free (copy);
    }
  leases_clear (&l);
  return found;
}

/* A name on the client's other networks: the client is the member of `net` at address `from`
 * (host order); a container on several networks resolves the members of each through the name
 * server its resolv.conf names first (the address is the one on that other network). */
static uint32_t
member_lookup_other (const char *net, uint32_t from, const char *qname)
{
  struct leases l;
  struct net_def *defs = NULL;
  size_t n = 0;
  char id[65] = "";
  uint32_t found = 0;
  bool alive;
  leases_load (net, &l);
  for (size_t i = 0; i < l.n && !*id; i++)
    if (l.v[i].addr == from && proc_alive (l.v[i].owner, l.v[i].owner_start))
      snprintf (id, sizeof id, "%s", l.v[i].id);
  leases_clear (&l);
  if (!*id || net_def_list (&defs, &n, NULL) < 0)
    {
      free (defs);
      return 0;
    }
  for (size_t d = 0; d < n && !found; d++)
    {
      bool member = false;
      if (strcmp (defs[d].name, net) == 0 || strcmp (defs[d].name, NET_DEFAULT_NAME) == 0)
        continue;
      leases_load (defs[d].name, &l);
      for (size_t i = 0; i < l.n && !member; i++)
        member = strcmp (l.v[i].id, id) == 0;
      leases_clear (&l);
      if (member)
        found = member_lookup (defs[d].name, qname, &alive);
    }
  free (defs);
  return found;
}

/* The host's IPv4 name servers (loopback ones too: we run in the host's namespace). */
static size_t
upstreams (struct sockaddr_in *out, size_t max)
{
  cleanup_free char *text = NULL;
  char *save = NULL;
  size_t n = 0;
  if (read_file ("/etc/resolv.conf", &text, NULL, NULL) < 0)
    text = NULL;
  for (char *line = text ? strtok_r (text, "\n", &save) : NULL; line && n < max; line = strtok_r (NULL, "\n", &save))
    {
      char val[64];
      struct in_addr in;
      if (sscanf (line, "nameserver %63s", val) == 1 && inet_pton (AF_INET, val, &in) == 1)
        out[n++] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons (53), .sin_addr = in };
    }
  if (n == 0)
    {
      out[0] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons (53) };
      inet_pton (AF_INET, "8.8.8.8", &out[0].sin_addr);
      n = 1;
    }
  return n;
}

#define INFLIGHT 64

struct inflight {
  bool used;
  uint16_t id, orig_id;
  struct sockaddr_in client;
  uint8_t query[512]; /* the question, for a SERVFAIL when no answer comes */
  size_t qlen;
  time_t sent;
};

static volatile sig_atomic_t stopping;
static void
on_term (int sig)
{
  (void) sig;
  stopping = 1;
}

int
net_dns_main (const char *net)
{
  struct net_def d;
  cleanup_free char *pid_path = dns_pid_path (net);
  cleanup_close int pidfd = -1, srv = -1, up = -1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (53) };
  struct sockaddr_in ups[3];
  struct inflight fl[INFLIGHT] = { 0 };
  size_t nups;
  time_t last_alive = time (NULL);
  int one = 1;
  char pidtext[32];
  if (net_def_load (net, &d, NULL) < 0 || strcmp (net, NET_DEFAULT_NAME) == 0)
    return 1;
  if (mkdir_p (net_run_dir (), 0700, NULL) < 0)
    return 1;
  pidfd = open (pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (pidfd < 0 || flock (pidfd, LOCK_EX | LOCK_NB) < 0)
    return 0; /* one runs already */
  snprintf (pidtext, sizeof pidtext, "%d\n", (int) getpid ());
  if (ftruncate (pidfd, 0) < 0 || pwrite (pidfd, pidtext, strlen (pidtext), 0) < 0)
    return 1;
  signal (SIGTERM, on_term);
  signal (SIGINT, on_term);
  signal (SIGPIPE, SIG_IGN);
  sa.sin_addr.s_addr = htonl (d.gateway);
  srv = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  up = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (srv < 0 || up < 0)
    goto out;
  setsockopt (srv, SOL_IP, IP_FREEBIND, &one, sizeof one);
  if (bind (srv, (struct sockaddr *) &sa, sizeof sa) < 0)
    goto out;
  nups = upstreams (ups, 3);
  while (!stopping)
    {
      struct pollfd pf[2] = { { .fd = srv, .events = POLLIN }, { .fd = up, .events = POLLIN } };
      uint8_t buf[4096], out[4096];
      time_t now;
      bool alive;
      int r = poll (pf, 2, 1000);
      now = time (NULL);
      member_lookup (net, NULL, &alive);
      if (alive)
        last_alive = now;
      else if (now - last_alive >= 10)
        break;
      if (access (net_conf_dir (), F_OK) == 0 && net_def_load (net, &d, NULL) < 0)
        break; /* the network was removed */
      for (size_t i = 0; i < INFLIGHT; i++)
        if (fl[i].used && now - fl[i].sent >= 3)
          {
            struct dns_msg q;
            size_t len;
            fl[i].used = false;
            fl[i].query[0] = (uint8_t) (fl[i].orig_id >> 8), fl[i].query[1] = (uint8_t) fl[i].orig_id;
            if (dns_parse (fl[i].query, fl[i].qlen, &q) == 0
                && (len = dns_reply (fl[i].query, &q, 2, 0, 0, out, sizeof out)))
              sendto (srv, out, len, 0, (struct sockaddr *) &fl[i].client, sizeof fl[i].client);
          }
      if (r <= 0)
        continue;
      if (pf[0].revents & POLLIN)
        {
          struct sockaddr_in from;
          socklen_t fl_len = sizeof from;
          ssize_t n = recvfrom (srv, buf, sizeof buf, 0, (struct sockaddr *) &from, &fl_len);
          struct dns_msg q;
          uint32_t mask = 0xffffffffu << (32 - d.prefix);
          if (n > 0 && (ntohl (from.sin_addr.s_addr) & mask) == d.subnet /* the members only */
              && dns_parse (buf, (size_t) n, &q) == 0 && !(q.flags & 0x8000) && ((q.flags >> 11) & 0xf) == 0)
            {
              uint32_t a = q.qclass == 1 ? member_lookup (net, q.qname, &alive) : 0;
              if (a == 0 && q.qclass == 1)
                a = member_lookup_other (net, ntohl (from.sin_addr.s_addr), q.qname);
              if (a || (q.qclass == 1 && strchr (q.qname, '.') == NULL))
                {
                  /* a member: its address for A (and ANY), an empty answer for other types (AAAA);
                   * a single-label name that is no member: NXDOMAIN here, not forwarded */
                  size_t len = dns_reply (buf, &q, a ? 0 : 3, a && (q.qtype == 1 || q.qtype == 255) ? a : 0, 5, out,
                                          sizeof out);
                  if (len)
                    sendto (srv, out, len, 0, (struct sockaddr *) &from, fl_len);
                }
              else
                {
                  /* forwarded with an id of ours; the answer goes back with the client's */
                  size_t slot = INFLIGHT;
                  uint16_t nid;
                  for (size_t i = 0; i < INFLIGHT && slot == INFLIGHT; i++)
                    if (!fl[i].used)
                      slot = i;
                  if (slot < INFLIGHT && getrandom (&nid, sizeof nid, 0) == sizeof nid)
                    {
                      fl[slot] = (struct inflight){ .used = true,
                                                    .id = nid,
                                                    .orig_id = q.id,
                                                    .client = from,
                                                    .sent = now,
                                                    .qlen = q.qend < 512 ? q.qend : 0 };
                      memcpy (fl[slot].query, buf, fl[slot].qlen);
                      buf[0] = (uint8_t) (nid >> 8), buf[1] = (uint8_t) nid;
                      for (size_t s = 0; s < nups; s++)
                        sendto (up, buf, (size_t) n, 0, (struct sockaddr *) &ups[s], sizeof ups[s]);
                    }
                }
            }
        }
      if (pf[1].revents & POLLIN)
        {
          struct sockaddr_in from;
          socklen_t fl_len = sizeof from;
          ssize_t n = recvfrom (up, buf, sizeof buf, 0, (struct sockaddr *) &from, &fl_len);
          bool known = false;
          if (n < 12)
            continue;
          for (size_t s = 0; s < nups; s++)
            known |= from.sin_addr.s_addr == ups[s].sin_addr.s_addr && from.sin_port == ups[s].sin_port;
          if (!known)
            continue;
          for (size_t i = 0; i < INFLIGHT; i++)
            if (fl[i].used && fl[i].id == (uint16_t) (buf[0] << 8 | buf[1]))
              {
                buf[0] = (uint8_t) (fl[i].orig_id >> 8), buf[1] = (uint8_t) fl[i].orig_id;
                sendto (srv, buf, (size_t) n, 0, (struct sockaddr *) &fl[i].client, sizeof fl[i].client);
                fl[i].used = false;
                break;
              }
        }
    }
out:
  unlink (pid_path);
  return 0;
}

void
net_dns_start (const char *net)
{
  extern char **environ;
  char *argv[] = { (char *) "cella", (char *) "__netdns", (char *) net, NULL };
  cella_error_t err = NULL;
  if (proc_daemonize (&err) == 0)
    {
      close_range (3, ~0U, 0);
      execve ("/proc/self/exe", argv, environ);
      _exit (125);
    }
  cella_error_free (&err); /* best effort, as before: without a server the names do not resolve */
}

void
net_dns_stop (const char *net)
{
  cleanup_free char *path = dns_pid_path (net), *text = NULL;
  cleanup_close int fd = open (path, O_RDWR | O_CLOEXEC);
  int pid;
  if (fd < 0)
    return;
  /* held: a server runs; its pid is in the file */
  if (flock (fd, LOCK_EX | LOCK_NB) == 0)
    {
      unlink (path);
      return;
    }
  if (read_file (path, &text, NULL, NULL) == 0 && sscanf (text, "%d", &pid) == 1 && pid > 1)
    {
      kill (pid, SIGTERM);
      for (int i = 0; i < 50; i++)
        {
          if (flock (fd, LOCK_EX | LOCK_NB) == 0)
            return;
          usleep (20000);
        }
      kill (pid, SIGKILL);
    }
}
