/* Address management and the pure parsers of the network code (unit-tested in test_net.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
net_cidr_parse (const char *s, uint32_t *addr, int *prefix, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (s);
  char *slash = strchr (copy, '/');
  struct in_addr in;
  long long pl;
  if (slash == NULL)
    return cella_error (err, 0, "subnet `%s`: expected ADDRESS/PREFIX (like 10.210.0.0/24)", s);
  *slash = '\0';
  pl = parse_uint (slash + 1, 32);
  if (inet_pton (AF_INET, copy, &in) != 1 || pl < 0)
    return cella_error (err, 0, "subnet `%s`: expected an IPv4 ADDRESS/PREFIX (like 10.210.0.0/24)", s);
  if (pl < 8 || pl > 30)
    return cella_error (err, 0, "subnet `%s`: the prefix must be from 8 to 30", s);
  *prefix = (int) pl;
  *addr = ntohl (in.s_addr);
  if (*addr & (0xffffffffu >> pl))
    return cella_error (err, 0, "subnet `%s`: host bits are set (the network address is %s/%d)", s,
                        inet_ntoa ((struct in_addr){ htonl (*addr & ~(0xffffffffu >> pl)) }), *prefix);
  return 0;
}

char *
net_addr_str (uint32_t addr)
{
  char buf[INET_ADDRSTRLEN];
  struct in_addr in = { htonl (addr) };
  inet_ntop (AF_INET, &in, buf, sizeof buf);
  return xstrdup (buf);
}

int
net_port_parse (const char *s, struct net_port *out, cella_error_t *err)
{
  const char *c1, *c2, *slash;
  long long host, ctr;
  cleanup_free char *h = NULL, *c = NULL;
  memset (out, 0, sizeof *out);
  c2 = strrchr (s, ':');
  slash = strchr (s, '/');
  if (c2 == NULL || c2 == s + strlen (s) - 1)
    return cella_error (err, 0, "port `%s`: expected IP:HOST:CTR/PROTO", s);
  for (c1 = c2 - 1; c1 >= s && *c1 != ':'; c1--)
    ;
  if (c1 < s)
    return cella_error (err, 0, "port `%s`: expected IP:HOST:CTR/PROTO", s);
  if ((size_t) (c1 - s) >= sizeof out->ip)
    return cella_error (err, 0, "port `%s`: address too long", s);
  memcpy (out->ip, s, (size_t) (c1 - s));
  h = strndup (c1 + 1, (size_t) (c2 - c1 - 1));
  c = slash ? strndup (c2 + 1, (size_t) (slash - c2 - 1)) : xstrdup (c2 + 1);
  host = *h ? parse_uint (h, 65535) : 0;
  ctr = parse_uint (c, 65535);
  if (host < 0 || ctr <= 0)
    return cella_error (err, 0, "port `%s`: ports must be numbers from 1 to 65535", s);
  out->host = (unsigned) host;
  out->ctr = (unsigned) ctr;
  snprintf (out->proto, sizeof out->proto, "%s", slash ? slash + 1 : "tcp");
  if (strcmp (out->proto, "tcp") != 0 && strcmp (out->proto, "udp") != 0)
    return cella_error (err, 0, "port `%s`: the protocol must be tcp or udp", s);
  if (out->ip[0])
    {
      struct in_addr in;
      if (inet_pton (AF_INET, out->ip, &in) != 1)
        return cella_error (err, 0, "port `%s`: `%s` is not an IPv4 address", s, out->ip);
    }
  return 0;
}

void
leases_clear (struct leases *l)
{
  for (size_t i = 0; i < l->n; i++)
    {
      free (l->v[i].ports);
      free (l->v[i].names);
    }
  free (l->v);
  l->v = NULL;
  l->n = 0;
}

/* "ADDR ID OWNER OWNER_START PORTS NAMES\n" per lease; malformed lines are dropped (a torn write of an
 * older version cannot happen: the file is replaced by rename). */
int
leases_parse (const char *text, struct leases *out)
{
  cleanup_free char *copy = xstrdup (text ? text : "");
  char *save = NULL;
  memset (out, 0, sizeof *out);
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char addr[32], id[65], ports[1024], names[512] = "-";
      int owner;
      unsigned long long start;
      struct in_addr in;
      if (sscanf (line, "%31s %64s %d %llu %1023s %511s", addr, id, &owner, &start, ports, names) < 5
          || inet_pton (AF_INET, addr, &in) != 1)
        continue;
      out->v = xrealloc (out->v, (out->n + 1) * sizeof *out->v);
      out->v[out->n] = (struct lease){ .addr = ntohl (in.s_addr),
                                       .owner = owner,
                                       .owner_start = start,
                                       .ports = xstrdup (ports),
                                       .names = xstrdup (names) };
      snprintf (out->v[out->n].id, sizeof out->v[out->n].id, "%s", id);
      out->n++;
    }
  return 0;
}

char *
leases_format (const struct leases *l)
{
  char *out = xstrdup ("");
  for (size_t i = 0; i < l->n; i++)
    {
      cleanup_free char *a = net_addr_str (l->v[i].addr);
      char *next = xasprintf ("%s%s %s %d %llu %s %s\n", out, a, l->v[i].id, (int) l->v[i].owner, l->v[i].owner_start,
                              l->v[i].ports && *l->v[i].ports ? l->v[i].ports : "-",
                              l->v[i].names && *l->v[i].names ? l->v[i].names : "-");
      free (out);
      out = next;
    }
  return out;
}

uint32_t
ipam_pick (const struct net_def *d, const struct leases *l)
{
  uint32_t size = 1u << (32 - d->prefix);
  for (uint32_t off = 1; off + 1 < size; off++)
    {
      uint32_t a = d->subnet + off;
      bool used = a == d->gateway;
      for (size_t i = 0; !used && i < l->n; i++)
        used = l->v[i].addr == a;
      if (!used)
        return a;
    }
  return 0;
}
