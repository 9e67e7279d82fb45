/* The pure parts of src/net/: CIDR and address math, leases, published ports, resolv.conf and
 * hosts text, the nft rulesets. Nothing here touches the host's network. */
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"
#include "plan/build.h"
#include "tap.h"

static void
test_cidr (void)
{
  cella_error_t err = NULL;
  uint32_t a;
  int pl;
  char *s;
  CHECK (net_cidr_parse ("10.209.0.0/16", &a, &pl, &err) == 0 && a == 0x0ad10000u && pl == 16, "cidr 10.209.0.0/16");
  CHECK (net_cidr_parse ("10.209.0.1/16", &a, &pl, &err) < 0 && strstr (err->msg, "host bits"), "host bits refused");
  cella_error_free (&err);
  CHECK (net_cidr_parse ("10.209.0.0", &a, &pl, &err) < 0 && strstr (err->msg, "ADDRESS/PREFIX"), "no prefix refused");
  cella_error_free (&err);
  CHECK (net_cidr_parse ("10.0.0.0/31", &a, &pl, &err) < 0 && strstr (err->msg, "8 to 30"), "/31 refused");
  cella_error_free (&err);
  CHECK (net_cidr_parse ("300.0.0.0/8", &a, &pl, &err) < 0, "bad address refused");
  cella_error_free (&err);
  s = net_addr_str (0x0ad10002u);
  CHECK_STR (s, "10.209.0.2", "addr to text");
  free (s);
}

static void
test_ipam (void)
{
  struct net_def d = { .name = "t", .bridge = "cella9" };
  struct leases l = { 0 };
  char *text;
  net_cidr_parse ("192.168.77.0/30", &d.subnet, &d.prefix, NULL);
  d.gateway = d.subnet + 1;
  CHECK (ipam_pick (&d, &l) == d.subnet + 2, "first address after the gateway");
  leases_parse ("192.168.77.2 abc 12 34 tcp::8080:80\ngarbage line\n", &l);
  CHECK (l.n == 1 && l.v[0].owner == 12 && l.v[0].owner_start == 34 && strcmp (l.v[0].id, "abc") == 0,
         "lease parsed, garbage dropped");
  CHECK (ipam_pick (&d, &l) == 0, "a /30 with its one address taken is full");
  text = leases_format (&l);
  CHECK_STR (text, "192.168.77.2 abc 12 34 tcp::8080:80 -\n", "lease round trip");
  free (text);
  leases_clear (&l);
}

static void
test_ports (void)
{
  cella_error_t err = NULL;
  struct net_port pt;
  char *s = NULL;
  CHECK (net_port_parse (":8080:80/tcp", &pt, &err) == 0 && pt.host == 8080 && pt.ctr == 80 && !*pt.ip
             && strcmp (pt.proto, "tcp") == 0,
         "plan port without address");
  CHECK (net_port_parse ("127.0.0.1:53:5353/udp", &pt, &err) == 0 && pt.host == 53 && pt.ctr == 5353
             && strcmp (pt.ip, "127.0.0.1") == 0 && strcmp (pt.proto, "udp") == 0,
         "plan port with address and udp");
  CHECK (net_port_parse (":0:80/tcp", &pt, &err) == 0 && pt.host == 0, "random host port");
  CHECK (net_port_parse ("bad:1:2/tcp", &pt, &err) < 0, "bad address refused");
  cella_error_free (&err);
  /* the items of a lease's (or a rootless record's) ports string */
  CHECK (net_port_item_parse ("tcp::34999:80", &pt) == 0 && pt.host == 34999 && pt.ctr == 80 && !*pt.ip
             && strcmp (pt.proto, "tcp") == 0,
         "ports item without address");
  CHECK (net_port_item_parse ("udp:127.0.0.1:53:5353", &pt) == 0 && pt.host == 53 && pt.ctr == 5353
             && strcmp (pt.ip, "127.0.0.1") == 0 && strcmp (pt.proto, "udp") == 0,
         "ports item with address");
  CHECK (net_port_item_parse ("-", &pt) < 0, "no ports (\"-\") is no item");
  CHECK (parse_publish ("8080:80", &s, &err) == 0, "-p 8080:80");
  CHECK_STR (s, ":8080:80/tcp", "-p 8080:80 in the plan");
  free (s);
  CHECK (parse_publish ("80/udp", &s, &err) == 0, "-p 80/udp");
  CHECK_STR (s, ":0:80/udp", "-p CTR is a random host port");
  free (s);
  CHECK (parse_publish ("0", &s, &err) < 0, "-p 0 refused");
  cella_error_free (&err);
  /* found by fuzz/fuzz_options.c: an address the network code cannot read back is refused here,
   * not when the container starts */
  s = NULL;
  CHECK (parse_publish ("bad host:8080:80", &s, &err) < 0 && s == NULL && err
             && strstr (err->msg, "-p `bad host:8080:80`") && strstr (err->msg, "IPv4"),
         "-p with an address that is not IPv4 refused, naming -p");
  cella_error_free (&err);
  CHECK (parse_publish ("127.0.0.1:8080:80/udp", &s, &err) == 0, "-p 127.0.0.1:8080:80/udp");
  CHECK_STR (s, "127.0.0.1:8080:80/udp", "-p IP:HOST:CTR/PROTO in the plan");
  free (s);
}

static void
test_files (void)
{
  cella_error_t err = NULL;
  char *dns[] = { (char *) "192.0.2.53", NULL };
  char *add[] = { (char *) "db:192.0.2.7", NULL };
  char *r = net_resolv_conf ("nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\n", NULL);
  CHECK (strstr (r, "127.0.0.53") == NULL && strstr (r, "nameserver 192.0.2.1\n") && strstr (r, "search example.org"),
         "loopback resolvers skipped, others and search kept");
  free (r);
  r = net_resolv_conf ("nameserver 127.0.0.53\nnameserver ::1\n", NULL);
  CHECK (strstr (r, "nameserver 8.8.8.8") != NULL, "only loopback resolvers: public fallback");
  free (r);
  r = net_resolv_conf ("nameserver 192.0.2.1\n", dns);
  CHECK (strstr (r, "192.0.2.53") && !strstr (r, "192.0.2.1\n"), "--dns replaces the host's servers");
  free (r);
  r = net_hosts ("10.209.0.2", "web", NULL, add);
  CHECK (strstr (r, "10.209.0.2\tweb\n") && strstr (r, "192.0.2.7\tdb\n") && strstr (r, "127.0.0.1\tlocalhost"),
         "hosts: own address and --add-host");
  free (r);
  CHECK (net_add_host_check ("db:192.0.2.7", &err) == 0, "--add-host NAME:IP");
  CHECK (net_add_host_check ("db", &err) < 0 && strstr (err->msg, "NAME:IP"), "--add-host without IP refused");
  cella_error_free (&err);
  CHECK (net_add_host_check ("db:nope", &err) < 0, "--add-host with a bad IP refused");
  cella_error_free (&err);
}

static void
test_rulesets (void)
{
  struct net_def d = { .name = "cella", .bridge = "cella0" };
  struct net_port p[2] = { { .ip = "", .host = 8080, .ctr = 80, .proto = "tcp" },
                           { .ip = "127.0.0.1", .host = 5353, .ctr = 53, .proto = "udp" } };
  char *r, *g;
  net_cidr_parse ("10.209.0.0/16", &d.subnet, &d.prefix, NULL);
  r = nat_network_ruleset (&d);
  CHECK (strstr (r, "ip saddr 10.209.0.0/16 oifname != \"cella0\" masquerade") != NULL, "network: masquerade out");
  CHECK (strstr (r, "add table ip cella_n_cella\ndelete table ip cella_n_cella\n") == r, "network: replaced whole");
  /* the loopback guard: before NAT and conntrack, both directions */
  g = strstr (r, "type filter hook prerouting priority raw;");
  CHECK (g != NULL && strstr (g, "iifname \"cella0\" ip daddr 127.0.0.0/8 drop") != NULL
             && strstr (g, "iifname \"cella0\" ip saddr 127.0.0.0/8 drop") != NULL,
         "network: loopback sources and destinations from the bridge dropped at priority raw");
  /* isolation: published ports (DNAT) first, then nothing to another cella bridge */
  g = strstr (r, "iifname \"cella0\" ct status dnat accept");
  CHECK (g != NULL && strstr (g, "iifname \"cella0\" oifname \"cella*\" oifname != \"cella0\" drop") != NULL
             && strstr (g, "iifname \"cella0\" accept") > strstr (g, "drop"),
         "network: no forwarding to other networks' bridges but to their published ports");
  free (r);
  r = nat_guard_ruleset ("eth0");
  CHECK (strstr (r, "table netdev cella_guard {") != NULL && strstr (r, "hook egress device \"eth0\"") != NULL,
         "rootless guard: the egress hook of the device");
  CHECK (strstr (r, "ip daddr { 0.0.0.0/8, 127.0.0.0/8 } drop") != NULL
             && strstr (r, "ip saddr 127.0.0.0/8 drop") != NULL
             && strstr (r, "ip6 daddr { ::, ::1, ::ffff:0.0.0.0/104, ::ffff:127.0.0.0/104 } drop") != NULL,
         "rootless guard: IPv4 and IPv6 loopback dropped");
  free (r);
  CHECK (nat_container_ruleset ("0123456789abcdef", p, 0, 0x0ad10002u) == NULL, "no ports, no table");
  r = nat_container_ruleset ("0123456789abcdef", p, 2, 0x0ad10002u);
  CHECK (strstr (r, "table ip cella_c_0123456789ab {") != NULL, "container table named by id");
  CHECK (strstr (r, "fib daddr type local tcp dport 8080 dnat to 10.209.0.2:80") != NULL,
         "DNAT on every local address");
  CHECK (strstr (r, "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.209.0.2:53") != NULL, "DNAT on one address");
  CHECK (strstr (r, "hook output") != NULL, "the host's own connections DNAT'd too");
  free (r);
}

/* The embedded name server's packets (dns.c): a query as busybox nslookup sends it. */
static void
test_dns (void)
{
  /* id 0x1234, RD, one question: Alpha.Example A IN */
  static const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0,   0,   0, 0, 5, 'A', 'l', 'p',
                               'h',  'a',  7,    'E',  'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0,   1 };
  uint8_t out[512], bad[64];
  struct dns_msg m, a;
  size_t n;
  CHECK (dns_parse (q, sizeof q, &m) == 0, "a query parses");
  CHECK (m.id == 0x1234 && m.qtype == 1 && m.qclass == 1 && m.qend == sizeof q, "id, type, class, end");
  CHECK_STR (m.qname, "alpha.example", "the name, lower-cased");
  n = dns_reply (q, &m, 0, 0x0ad20002u, 5, out, sizeof out);
  CHECK (n == sizeof q + 16, "an answer with one A record");
  CHECK (dns_parse (out, n, &a) == 0 && a.id == 0x1234 && (a.flags & 0x8000) && (a.flags & 0x0f) == 0 && a.ancount == 1
             && a.first_a == 0x0ad20002u && strcmp (a.qname, "alpha.example") == 0,
         "the answer parses back: id, QR, NOERROR, the address");
  n = dns_reply (q, &m, 3, 0, 0, out, sizeof out);
  CHECK (dns_parse (out, n, &a) == 0 && (a.flags & 0x0f) == 3 && a.ancount == 0, "NXDOMAIN, no answer");
  CHECK (dns_reply (q, &m, 0, 1, 5, out, sizeof q + 4) == 0, "an answer that does not fit: none");
  for (size_t len = 0; len < sizeof q; len++)
    CHECK (dns_parse (q, len, &m) < 0, "truncated at %zu: refused", len);
  memcpy (bad, q, sizeof q);
  bad[5] = 2;
  CHECK (dns_parse (bad, sizeof q, &m) < 0, "two questions: refused");
  memcpy (bad, q, sizeof q);
  bad[12] = 0x45; /* label type 01 */
  CHECK (dns_parse (bad, sizeof q, &m) < 0, "a reserved label type: refused");
  memcpy (bad, q, sizeof q);
  bad[12] = 60; /* a label past the end */
  CHECK (dns_parse (bad, sizeof q, &m) < 0, "a label past the end: refused");
  /* compression: a pointer to itself, a pointer loop through an earlier name, a forward one */
  memcpy (bad, q, 12);
  bad[12] = 0xc0, bad[13] = 12, bad[14] = 0, bad[15] = 1, bad[16] = 0, bad[17] = 1;
  CHECK (dns_parse (bad, 18, &m) < 0, "a pointer to itself: refused");
  bad[12] = 1, bad[13] = 'x', bad[14] = 0xc0, bad[15] = 12, bad[16] = 0, bad[17] = 1, bad[18] = 0, bad[19] = 1;
  CHECK (dns_parse (bad, 20, &m) < 0, "a compression loop: refused");
  bad[12] = 0xc0, bad[13] = 16, bad[14] = 0, bad[15] = 1, bad[16] = 1, bad[17] = 'x', bad[18] = 0, bad[19] = 1,
  bad[20] = 0, bad[21] = 1;
  CHECK (dns_parse (bad, 22, &m) < 0, "a forward pointer: refused");
  /* found by fuzz/fuzz_dns.c: a pointer into the header read the header's bytes as a name, and
   * the reply (whose header differs) asked another question */
  memcpy (bad, q, 12);
  bad[1] = 1, bad[2] = 'h', bad[3] = 0;
  bad[12] = 0xc0, bad[13] = 1, bad[14] = 0, bad[15] = 1, bad[16] = 0, bad[17] = 1;
  CHECK (dns_parse (bad, 18, &m) < 0, "a pointer into the header: refused");
  /* a good pointer in an answer: the reply's own 0xc00c parses (above); the root name */
  memcpy (bad, q, 12);
  bad[12] = 0, bad[13] = 0, bad[14] = 1, bad[15] = 0, bad[16] = 1;
  CHECK (dns_parse (bad, 17, &m) == 0 && strcmp (m.qname, ".") == 0, "the root name");
}

int
main (void)
{
  test_cidr ();
  test_ipam ();
  test_dns ();
  test_ports ();
  test_files ();
  test_rulesets ();
  return tap_done ();
}
