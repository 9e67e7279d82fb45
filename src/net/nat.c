/* Firewall rules through nft, fed a ruleset on its stdin (argv only, no shell).
 * One table per network (the loopback guard, masquerade out, forwarding and isolation) and one
 * per container that publishes ports (its DNAT rules): removing a container's rules is deleting
 * its table, which also works after a crash, knowing only the container's id. Rootless, a guard
 * table inside the container's own network namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

char *
net_find_program (const char *name)
{
  static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin" };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      char *p = xasprintf ("%s/%s", dirs[i], name);
      if (access (p, X_OK) == 0)
        return p;
      free (p);
    }
  return NULL;
}

static void __attribute__ ((noreturn)) child_die (const char *what)
{
  dprintf (2, "%s: %s\n", what, strerror (errno));
  _exit (127);
}

/* argv with `input` on its stdin, its stderr kept for the error; inside the namespaces given as
 * fds (-1: ours): a user namespace first (as its root, so that exec keeps the capabilities it
 * gives), then a network namespace. */
static int
run_program (char *const argv[], const char *input, int userfd, int netfd, cella_error_t *err)
{
  /* stderr goes to a memfd, not a pipe: a helper that daemonizes (pasta) keeps it open */
  cleanup_close int errfd = memfd_create ("cella-helper-stderr", MFD_CLOEXEC);
  int in[2], status;
  char msg[512] = "";
  ssize_t len;
  pid_t pid;
  if (errfd < 0 || pipe2 (in, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork %s", argv[0]);
  if (pid == 0)
    {
      int null = open ("/dev/null", O_WRONLY);
      dup2 (in[0], 0);
      dup2 (null >= 0 ? null : errfd, 1);
      dup2 (errfd, 2);
      signal (SIGPIPE, SIG_DFL);
      if (userfd >= 0 && setns (userfd, CLONE_NEWUSER) < 0)
        child_die ("enter the container's user namespace");
      if (userfd >= 0 && (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0))
        child_die ("become root of the container's user namespace");
      if (netfd >= 0 && setns (netfd, CLONE_NEWNET) < 0)
        child_die ("enter the container's network namespace");
      execv (argv[0], argv);
      child_die ("exec");
    }
  close (in[0]);
  if (input)
    {
      void (*old) (int) = signal (SIGPIPE, SIG_IGN);
      write_all (in[1], input, strlen (input));
      signal (SIGPIPE, old);
    }
  close (in[1]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for %s", argv[0]);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  len = pread (errfd, msg, sizeof msg - 1, 0);
  msg[len > 0 ? len : 0] = '\0';
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
    msg[--len] = '\0';
  return cella_error (err, 0, "%s failed (status %d)%s%s", argv[0], WIFEXITED (status) ? WEXITSTATUS (status) : 128,
                      *msg ? ": " : "", msg);
}

int
net_run_program (char *const argv[], const char *input, cella_error_t *err)
{
  return run_program (argv, input, -1, -1, err);
}

char *
nat_container_table (const char *id)
{
  return xasprintf ("cella_c_%.12s", id);
}

/* route_localnet on the bridge (net.c) lets the host's own connections to 127.0.0.1:PORT be
 * DNAT'd to a container, and would as well let a container address the host's loopback services
 * (a frame for 127.0.0.1 sent to the gateway's MAC, CVE-2020-8558): the guard chain drops what
 * comes in on the bridge with a loopback source or destination before any NAT (priority raw; the
 * replies to the host's DNAT'd connections are addressed to the gateway until conntrack undoes
 * the masquerade, after this hook). The forward chain keeps the networks apart: nothing from this
 * bridge is routed to another cella bridge, except to the ports that one's containers publish. */
char *
nat_network_ruleset (const struct net_def *d)
{
  cleanup_free char *sub = net_addr_str (d->subnet);
  const char *br = d->bridge;
  /* add + delete + define in one transaction: the table is replaced whole, never doubled */
  return xasprintf ("add table ip cella_n_%s\n"
                    "delete table ip cella_n_%s\n"
                    "table ip cella_n_%s {\n"
                    "  chain guard {\n"
                    "    type filter hook prerouting priority raw; policy accept;\n"
                    "    iifname \"%s\" ip daddr 127.0.0.0/8 drop\n"
                    "    iifname \"%s\" ip saddr 127.0.0.0/8 drop\n"
                    "  }\n"
                    "  chain postrouting {\n"
                    "    type nat hook postrouting priority srcnat; policy accept;\n"
                    "    ip saddr %s/%d oifname != \"%s\" masquerade\n"
                    /* the host's own connections to 127.0.0.1:PORT, DNAT'd onto the bridge */
                    "    oifname \"%s\" ip saddr 127.0.0.0/8 masquerade\n"
                    "  }\n"
                    "  chain forward {\n"
                    "    type filter hook forward priority filter; policy accept;\n"
                    "    iifname \"%s\" ct status dnat accept\n"
                    "    iifname \"%s\" oifname \"" NET_BRIDGE_PREFIX "*\" oifname != \"%s\" drop\n"
                    "    iifname \"%s\" accept\n"
                    "    oifname \"%s\" ct state established,related accept\n"
                    "    oifname \"%s\" ct status dnat accept\n"
                    "  }\n"
                    "}\n",
                    d->name, d->name, d->name, br, br, sub, d->prefix, br, br, br, br, br, br, br, br);
}

char *
nat_container_ruleset (const char *id, const struct net_port *ports, size_t n, uint32_t addr)
{
  cleanup_free char *table = nat_container_table (id), *a = net_addr_str (addr), *rules = xstrdup ("");
  if (n == 0)
    return NULL;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *match
          = ports[i].ip[0] ? xasprintf ("ip daddr %s", ports[i].ip) : xstrdup ("fib daddr type local");
      char *next = xasprintf ("%s    %s %s dport %u dnat to %s:%u\n", rules, match, ports[i].proto, ports[i].host, a,
                              ports[i].ctr);
      free (rules);
      rules = next;
    }
  return xasprintf ("add table ip %s\n"
                    "delete table ip %s\n"
                    "table ip %s {\n"
                    "  chain prerouting {\n"
                    "    type nat hook prerouting priority dstnat; policy accept;\n%s"
                    "  }\n"
                    "  chain output {\n"
                    "    type nat hook output priority -100; policy accept;\n%s"
                    "  }\n"
                    "}\n",
                    table, table, table, rules, rules);
}

int
nat_apply (const char *ruleset, cella_error_t *err)
{
  cleanup_free char *nft = net_find_program ("nft");
  char *argv[] = { nft, (char *) "-f", (char *) "-", NULL };
  if (nft == NULL)
    return cella_error (err, ENOENT, "nft (nftables) is needed for private networks as root: install nftables");
  if (net_run_program (argv, ruleset, err) < 0)
    return cella_error_wrap (err, "set the firewall rules");
  return 0;
}

int
nat_delete_table (const char *table, cella_error_t *err)
{
  /* add first: deleting a table that is not there is then not an error */
  cleanup_free char *rs = xasprintf ("add table ip %s\ndelete table ip %s\n", table, table);
  return nat_apply (rs, err);
}

/* ---- rootless: the guard inside the container's own network namespace ----
 * pasta and slirp4netns turn what the container sends into the host's own sockets: a packet for
 * 127.0.0.1 (or ::1) that leaves the container's interface, whether forged with CAP_NET_RAW on an
 * AF_PACKET socket or sent by any process from a UDP socket whose IP_UNICAST_IF or IP_PKTINFO names
 * that interface, reaches the host's loopback services through them (both forward it, whatever
 * --no-map-gw or --disable-host-loopback say of the gateway). So does a packet for 0.0.0.0 (or ::):
 * the helper's socket connects there, which Linux reads as the local host, 127.0.0.1 (or ::1).
 * The egress hook of the device the helper made sees every frame that leaves it, AF_PACKET's
 * included (with PACKET_QDISC_BYPASS too); the container cannot remove the table without
 * CAP_NET_ADMIN. */

char *
nat_guard_ruleset (const char *dev)
{
  return xasprintf ("table netdev cella_guard {\n"
                    "  chain egress {\n"
                    "    type filter hook egress device \"%s\" priority filter; policy accept;\n"
                    "    ip daddr { 0.0.0.0/8, 127.0.0.0/8 } drop\n"
                    "    ip saddr 127.0.0.0/8 drop\n"
                    "    ip6 daddr { ::, ::1, ::ffff:0.0.0.0/104, ::ffff:127.0.0.0/104 } drop\n"
                    "    ip6 saddr { ::1, ::ffff:127.0.0.0/104 } drop\n"
                    "  }\n"
                    "}\n",
                    dev);
}

int
nat_guard_apply (int userfd, int netfd, const char *dev, cella_error_t *err)
{
  cleanup_free char *nft = net_find_program ("nft"), *rules = nat_guard_ruleset (dev);
  char *argv[] = { nft, (char *) "-f", (char *) "-", NULL };
  if (nft == NULL)
    return cella_error (err, ENOENT,
                        "nft (nftables) is needed to keep the host's loopback services out of the "
                        "container's reach: install nftables, or use --network host|none");
  if (run_program (argv, rules, userfd, netfd, err) < 0)
    return cella_error_wrap (err, "guard the host's loopback from the container (nft egress hook on %s)", dev);
  return 0;
}

/* ---- the firewall in use: nft, else iptables (CELLA_FIREWALL=nft|iptables picks one) ---- */

static char *
firewall (bool *nft)
{
  const char *want = getenv ("CELLA_FIREWALL");
  char *p = NULL;
  if (want == NULL || strcmp (want, "iptables") != 0)
    p = net_find_program ("nft");
  *nft = p != NULL;
  if (p == NULL && (want == NULL || strcmp (want, "nft") != 0))
    p = net_find_program ("iptables");
  return p;
}

/* iptables ARGS... (table first); errors only when `err` is given. */
static int
ipt (const char *prog, cella_error_t *err, const char *table, ...)
{
  char *argv[24] = { (char *) prog, (char *) "-w", (char *) "-t", (char *) table };
  size_t n = 4;
  va_list ap;
  cella_error_t e = NULL;
  int r;
  va_start (ap, table);
  for (char *a; n < 23 && (a = va_arg (ap, char *)); n++)
    argv[n] = a;
  va_end (ap);
  argv[n] = NULL;
  r = net_run_program (argv, NULL, err ? err : &e);
  cella_error_free (&e);
  return r;
}

/* A chain of our own, emptied, with one jump to it from `from` (not doubled). */
static int
ipt_chain (const char *prog, const char *table, const char *chain, const char *from, cella_error_t *err)
{
  ipt (prog, NULL, table, "-N", chain, NULL);
  if (ipt (prog, err, table, "-F", chain, NULL) < 0)
    return -1;
  if (ipt (prog, NULL, table, "-C", from, "-j", chain, NULL) < 0)
    return ipt (prog, err, table, "-I", from, "-j", chain, NULL);
  return 0;
}

static void
ipt_chain_delete (const char *prog, const char *table, const char *chain, const char *const *froms)
{
  if (ipt (prog, NULL, table, "-S", chain, NULL) < 0)
    return; /* not there */
  for (size_t i = 0; froms[i]; i++)
    while (ipt (prog, NULL, table, "-D", froms[i], "-j", chain, NULL) == 0)
      ;
  ipt (prog, NULL, table, "-F", chain, NULL);
  ipt (prog, NULL, table, "-X", chain, NULL);
}

/* iptables: the chains of nat_network_ruleset, in the same order. */
static int
ipt_network_setup (const char *prog, const struct net_def *d, cella_error_t *err)
{
  cleanup_free char *sub = net_addr_str (d->subnet), *cidr = xasprintf ("%s/%d", sub, d->prefix);
  cleanup_free char *guard = xasprintf ("CELLA-R-%s", d->bridge), *nat = xasprintf ("CELLA-N-%s", d->bridge);
  cleanup_free char *fwd = xasprintf ("CELLA-F-%s", d->bridge);
  const char *br = d->bridge;
  if (ipt_chain (prog, "raw", guard, "PREROUTING", err) < 0
      || ipt (prog, err, "raw", "-A", guard, "-i", br, "-d", "127.0.0.0/8", "-j", "DROP", NULL) < 0
      || ipt (prog, err, "raw", "-A", guard, "-i", br, "-s", "127.0.0.0/8", "-j", "DROP", NULL) < 0
      || ipt_chain (prog, "nat", nat, "POSTROUTING", err) < 0
      || ipt (prog, err, "nat", "-A", nat, "-s", cidr, "!", "-o", br, "-j", "MASQUERADE", NULL) < 0
      || ipt (prog, err, "nat", "-A", nat, "-o", br, "-s", "127.0.0.0/8", "-j", "MASQUERADE", NULL) < 0
      || ipt_chain (prog, "filter", fwd, "FORWARD", err) < 0
      || ipt (prog, err, "filter", "-A", fwd, "-i", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT", NULL)
             < 0
      || ipt (prog, err, "filter", "-A", fwd, "-i", br, "-o", br, "-j", "ACCEPT", NULL) < 0
      || ipt (prog, err, "filter", "-A", fwd, "-i", br, "-o", NET_BRIDGE_PREFIX "+", "-j", "DROP", NULL) < 0
      || ipt (prog, err, "filter", "-A", fwd, "-i", br, "-j", "ACCEPT", NULL) < 0
      || ipt (prog, err, "filter", "-A", fwd, "-o", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED,DNAT",
              "-j", "ACCEPT", NULL)
             < 0)
    return cella_error_wrap (err, "set the firewall rules of network `%s` (iptables)", d->name);
  return 0;
}

int
nat_network_setup (const struct net_def *d, cella_error_t *err)
{
  bool nft;
  cleanup_free char *prog = firewall (&nft);
  if (prog == NULL)
    return cella_error (err, ENOENT,
                        "nft (nftables) or iptables is needed for private networks as root: install nftables");
  if (nft)
    {
      cleanup_free char *rules = nat_network_ruleset (d);
      return nat_apply (rules, err);
    }
  return ipt_network_setup (prog, d, err);
}

/* Both kinds: the network's rules may have been made under the other CELLA_FIREWALL. */
void
nat_network_delete (const struct net_def *d)
{
  cleanup_free char *nft = net_find_program ("nft"), *ipt_prog = net_find_program ("iptables");
  if (nft)
    {
      cleanup_free char *table = xasprintf ("cella_n_%s", d->name);
      cella_error_t e = NULL;
      nat_delete_table (table, &e);
      cella_error_free (&e);
    }
  if (ipt_prog)
    {
      static const char *const pre[] = { "PREROUTING", NULL }, *const post[] = { "POSTROUTING", NULL },
                               *const forward[] = { "FORWARD", NULL };
      cleanup_free char *guard = xasprintf ("CELLA-R-%s", d->bridge), *nat = xasprintf ("CELLA-N-%s", d->bridge);
      cleanup_free char *fwd = xasprintf ("CELLA-F-%s", d->bridge);
      ipt_chain_delete (ipt_prog, "raw", guard, pre);
      ipt_chain_delete (ipt_prog, "nat", nat, post);
      ipt_chain_delete (ipt_prog, "filter", fwd, forward);
    }
}

int
nat_container_setup (const char *id, const struct net_port *ports, size_t n, uint32_t addr, cella_error_t *err)
{
  bool nft;
  cleanup_free char *prog = firewall (&nft), *chain = NULL, *a = NULL;
  if (n == 0)
    return 0;
  if (prog == NULL)
    return cella_error (err, ENOENT, "nft (nftables) or iptables is needed for published ports: install nftables");
  if (nft)
    {
      cleanup_free char *rules = nat_container_ruleset (id, ports, n, addr);
      return nat_apply (rules, err);
    }
  chain = xasprintf ("CELLA-%.12s", id);
  a = net_addr_str (addr);
  if (ipt_chain (prog, "nat", chain, "PREROUTING", err) < 0 || ipt_chain (prog, "nat", chain, "OUTPUT", err) < 0)
    return cella_error_wrap (err, "publish the container's ports (iptables)");
  for (size_t i = 0; i < n; i++)
    {
      char host[8];
      cleanup_free char *to = xasprintf ("%s:%u", a, ports[i].ctr);
      snprintf (host, sizeof host, "%u", ports[i].host);
      if ((ports[i].ip[0] ? ipt (prog, err, "nat", "-A", chain, "-p", ports[i].proto, "-d", ports[i].ip, "--dport",
                                 host, "-j", "DNAT", "--to-destination", to, NULL)
                          : ipt (prog, err, "nat", "-A", chain, "-p", ports[i].proto, "-m", "addrtype", "--dst-type",
                                 "LOCAL", "--dport", host, "-j", "DNAT", "--to-destination", to, NULL))
          < 0)
        return cella_error_wrap (err, "publish port %u (iptables)", ports[i].host);
    }
  return 0;
}

void
nat_container_delete (const char *id)
{
  bool nft;
  cleanup_free char *prog = firewall (&nft), *chain = NULL;
  static const char *const froms[] = { "PREROUTING", "OUTPUT", NULL };
  if (prog == NULL)
    return;
  if (nft)
    {
      cleanup_free char *table = nat_container_table (id);
      cella_error_t e = NULL;
      nat_delete_table (table, &e);
      cella_error_free (&e);
      return;
    }
  chain = xasprintf ("CELLA-%.12s", id);
  ipt_chain_delete (prog, "nat", chain, froms);
}
