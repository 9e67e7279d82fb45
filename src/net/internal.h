/* Inside src/net/: rtnetlink requests, address management, firewall rules, rootless helpers. */
#ifndef CELLA_NET_INTERNAL_H
#define CELLA_NET_INTERNAL_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net.h"

/* netlink.c: each returns 0 or -errno (nl_open: an fd or -1 with *err). */
int nl_open (cella_error_t *err);
int nl_bridge_add (int fd, const char *name);
/* peer_mac: 6 bytes, or NULL for a random address */
int nl_veth_add (int fd, const char *host, unsigned master, const char *peer, const unsigned char *peer_mac,
                 int peer_netns_fd);
int nl_link_up (int fd, unsigned index);
int nl_link_del (int fd, const char *name);
int nl_link_master (int fd, unsigned index, unsigned master);
int nl_addr_add (int fd, unsigned index, uint32_t addr_be, int prefix);
int nl_route_default (int fd, unsigned index, uint32_t gw_be);

/* ipam.c: the leases of one network, in a file under a lock. */
struct lease {
  uint32_t addr; /* host order */
  char id[65];
  pid_t owner; /* the cella process that runs the container (foreground or monitor) */
  unsigned long long owner_start;
  char *ports; /* "tcp:IP:HOST:CTR,udp::HOST:CTR" or "-" */
  char *names; /* "name,hostname": how the other members of the network call it */
};

struct leases {
  struct lease *v;
  size_t n;
};

void leases_clear (struct leases *l);
/* Parse / print the lease file's text (one lease a line). */
int leases_parse (const char *text, struct leases *out);
char *leases_format (const struct leases *l);
/* The host-wide lock of networks and leases (an fd to close); a network's leases. */
int net_lock (cella_error_t *err);
void leases_load (const char *net, struct leases *l);
/* The lowest free address of the subnet (not the network, gateway or broadcast); 0 when full. */
uint32_t ipam_pick (const struct net_def *d, const struct leases *l);

/* nat.c */
/* nft input: the network's table (loopback guard, masquerade out, forwarding, isolation). */
char *nat_network_ruleset (const struct net_def *d);
/* nft input: the container's table of DNAT rules; NULL when it publishes nothing. */
char *nat_container_ruleset (const char *id, const struct net_port *ports, size_t n, uint32_t addr);
char *nat_container_table (const char *id); /* its table's name */
/* Feed `ruleset` to nft; with delete_table: delete that table (missing is fine). */
int nat_apply (const char *ruleset, cella_error_t *err);
int nat_delete_table (const char *table, cella_error_t *err);
/* What the rest of src/net/ calls: nft when installed, else iptables (chains CELLA-R-<bridge>,
 * CELLA-N-<bridge>, CELLA-F-<bridge>, CELLA-<id:12> with jumps from the built-in chains).
 * nat_network_delete removes both kinds. */
int nat_network_setup (const struct net_def *d, cella_error_t *err);
void nat_network_delete (const struct net_def *d);
int nat_container_setup (const char *id, const struct net_port *ports, size_t n, uint32_t addr, cella_error_t *err);
void nat_container_delete (const char *id);
/* Rootless: nft input for the egress guard of the device `dev` (drops loopback sources and
 * destinations), and nft run with it in the namespaces userfd (-1: none) and netfd. */
char *nat_guard_ruleset (const char *dev);
int nat_guard_apply (int userfd, int netfd, const char *dev, cella_error_t *err);

/* rootless.c */
int rootless_attach (struct plan *p, pid_t pid, cella_error_t *err);
void rootless_detach (const char *id);
/* The host ports a rootless container publishes (random ones resolved by net_prepare), as a
 * lease's "tcp:IP:HOST:CTR,..." string, kept in $run/net/<id>.ports with its owner (this
 * process); _load gives NULL when there is none or its owner is gone. */
int rootless_ports_save (const char *id, const char *ports, cella_error_t *err);
char *rootless_ports_load (const char *id);
/* One "tcp:IP:HOST:CTR" item of a ports string (lease or record); -1 when malformed. */
int net_port_item_parse (const char *item, struct net_port *pt);

/* dns.c: the embedded name server of a user-defined network. A message's header and its one
 * question (the name lower-cased, dotted; "." for the root), the first A answer's address. */
struct dns_msg {
  uint16_t id, flags, qdcount, ancount, qtype, qclass;
  char qname[256];
  size_t qend;      /* the offset after the question */
  uint32_t first_a; /* host order; 0 when none */
};
/* 0, or -1 for a malformed message (truncated, not one question, a bad label, a compression loop). */
int dns_parse (const uint8_t *pkt, size_t len, struct dns_msg *m);
/* The answer to `query` (parsed in q): its question, rcode, an A record when addr; its length, 0
 * when it does not fit in cap. */
size_t dns_reply (const uint8_t *query, const struct dns_msg *q, int rcode, uint32_t addr, unsigned ttl, uint8_t *out,
                  size_t cap);

/* net.c: the bridge of a network, made (address, sysctls, rules) when missing, its rules made
 * again when an older cella (or the other firewall) wrote them (tap.c). */
int net_bridge_ensure (int nl, const struct net_def *d, unsigned *index, cella_error_t *err);
/* Forget that the network's rules were written (network rm: its bridge and rules are gone). */
void net_rules_forget (const char *net);

/* Run argv with `input` on its stdin; its stderr is kept for the error. */
int net_run_program (char *const argv[], const char *input, cella_error_t *err);
/* The first of the usual sbin/bin directories that has `name`, or NULL (malloc'd). */
char *net_find_program (const char *name);
/* Whether this process can make bridges: root of the initial user namespace. */
bool net_host_root (void);
/* Host-wide state: /run/cella-net (leases, helper pids), /var/lib/cella-net (networks). */
const char *net_run_dir (void);
const char *net_conf_dir (void);

#endif
