/* Networking for the ns backend: private networks, published ports, resolv.conf/hosts.
 * docs/network.md describes what a user sees. */
#ifndef CELLA_NET_H
#define CELLA_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../plan/etcfiles.h"
#include "../plan/plan.h"

/* Every network's bridge is NET_BRIDGE_PREFIX + a number (the firewall matches them by it). */
#define NET_BRIDGE_PREFIX "cella"
#define NET_DEFAULT_BRIDGE NET_BRIDGE_PREFIX "0"
#define NET_DEFAULT_SUBNET "10.209.0.0/16"
/* A container's networks at most (eth0..eth7; its host-side veths vc<id:12>, vc<id:12>1...) */
#define NET_MAX_PER_CONTAINER 8

/* A network: a bridge with the first address of its subnet (the gateway). Addresses in host order. */
struct net_def {
  char name[64];
  uint32_t subnet;
  int prefix;
  uint32_t gateway;
  char bridge[16];
};

/* A published port, from the plan's "IP:HOST:CTR/PROTO". */
struct net_port {
  char ip[48]; /* "" for every address */
  unsigned host, ctr;
  char proto[4]; /* tcp | udp */
};

/* Pure parsers (unit tests). */
int net_cidr_parse (const char *s, uint32_t *addr, int *prefix, cella_error_t *err);
char *net_addr_str (uint32_t addr); /* dotted quad, malloc'd */
int net_port_parse (const char *plan_port, struct net_port *out, cella_error_t *err);

/* --network container:NAME: the running container's network namespace becomes the one the child
 * joins (plan.ns_path, by /proc/PID/ns/net); nothing for other modes. Root (or unshare -r) only. */
int net_join_resolve (struct plan *p, cella_error_t *err);

/* Whether the parent must set up the network of the child (a private network). */
bool net_wanted (const struct plan *p);
/* Before clone: the address (a lease), the host ports (free?), the container's /etc/hosts. */
int net_prepare (struct plan *p, cella_error_t *err);
/* After clone, before the child goes on: give the child's network namespace its interfaces. */
int net_attach (struct plan *p, pid_t pid, cella_error_t *err);
/* After the workload exited (or a failed start): rules, interfaces, helpers and lease gone. */
void net_detach (const struct plan *p);
/* What a crash left of a container (by id): `rm -f`, and net_gc for every dead owner. */
void net_cleanup (const char *id);
/* Leases whose owner died: their rules and helpers removed, addresses freed. */
void net_gc (void);
/* The same for owners whose pid no process has (one kill(2) a lease, no /proc read): what every
 * start runs; an owner whose pid was taken again waits for net_gc (doctor, network rm, a full
 * subnet). */
void net_gc_quick (void);

/* Is the host port of pt free (no listening socket, no other container's published port)? An
 * error naming the port when not; id: the asking container (its own lease is not a clash). For
 * backends that publish ports without a lease (the vm backend's QEMU hostfwd). */
int net_port_check (const struct net_port *pt, const char *id, cella_error_t *err);

/* A running container's published ports as leased, or rootless as recorded (random ones
 * resolved): "80/tcp -> 0.0.0.0:8080" lines; NULL when it has none (or is stopped). */
char **net_ports_of (const char *id);

/* Networks (root): the default one always exists; user-defined ones in net_conf_dir. */
int net_def_load (const char *name, struct net_def *d, cella_error_t *err);
int net_def_create (const char *name, const char *subnet, struct net_def *out, cella_error_t *err);
int net_def_remove (const char *name, cella_error_t *err);
/* Every network, the default first. */
int net_def_list (struct net_def **out, size_t *n, cella_error_t *err);
/* Containers with a lease on the network: "id addr" strings. */
char **net_def_members (const char *name);

/* `cella network connect|disconnect` (root, ns backend): a running container on a user-defined
 * network (plan p, its workload's pid) gets an interface (eth<k>), a lease, /etc/hosts lines and
 * name-server membership on `net`, with more names (aliases); disconnect takes them back (not
 * from its first network). Until the container stops: the plan is not changed. */
int net_connect (const struct plan *p, pid_t pid, const char *net, char *const *aliases, cella_error_t *err);
int net_disconnect (const struct plan *p, const char *net, cella_error_t *err);

/* The networks a running container is on (root), from the leases: inspect's NetworkSettings. */
struct net_membership {
  char net[64];
  uint32_t addr, gateway; /* host order */
  int prefix;
  char *names; /* "name,hostname,alias..." */
};
int net_memberships (const char *id, struct net_membership **out, size_t *n);

/* The vm backend as root (net_vm_tap_wanted): a tap device on the network's bridge (named
 * vt<id:12>), attached and up, an address leased (net_prepare), the published ports as DNAT rules.
 * The tap goes away with the last fd on it (QEMU's); the lease and rules with net_detach. */
struct net_vm_nic {
  int fd;             /* the tap (O_CLOEXEC): QEMU's -netdev tap,fd=N */
  char *cidr;         /* the guest's "10.209.0.2/16" */
  char *gateway;      /* the bridge's address */
  char *mac;          /* 02:42:<address> */
  char **nameservers; /* --dns, else the host's without loopback ones */
  char *port_lines;   /* "80/tcp -> 0.0.0.0:8080\n" per published port ("" when none) */
};
bool net_vm_tap_wanted (const struct plan *p);
int net_vm_tap (struct plan *p, struct net_vm_nic *nic, cella_error_t *err);
void net_vm_nic_clear (struct net_vm_nic *nic);

/* The name server of a user-defined network (dns.c): `cella __netdns NET` runs net_dns_main (one
 * per network, it ends when no member ran for 10 s); _start re-executes cella as that daemon,
 * _stop kills it (network rm). */
int net_dns_main (const char *net);
void net_dns_start (const char *net);
void net_dns_stop (const char *net);

/* Rootless: which helper runs (pasta or slirp4netns) and its path; NULL when none is installed. */
const char *net_rootless_tool (char **path);

#endif
