/* Private networks: as root a bridge per network, a veth pair per container, leases under a lock,
 * DNAT rules for published ports; rootless, pasta or slirp4netns (rootless.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/container.h"
#include "../backend/backend.h"
#include "internal.h"

bool
net_host_root (void)
{
  return geteuid () == 0 && in_initial_userns ();
}

/* Bridges and rules are host-wide, so is what describes them (not under $CELLA_ROOT). */
const char *
net_run_dir (void)
{
  const char *v = getenv ("CELLA_NET_RUN");
  return v && *v == '/' ? v : "/run/cella-net";
}

const char *
net_conf_dir (void)
{
  const char *v = getenv ("CELLA_NET_CONF");
  return v && *v == '/' ? v : "/var/lib/cella-net";
}

bool
net_wanted (const struct plan *p)
{
  return p->net == NET_PRIVATE && backend_can (p, BACKEND_CAP_NETNS);
}

static int
plan_ports (const struct plan *p, struct net_port **out, size_t *n, cella_error_t *err)
{
  *n = strv_len (p->ports);
  *out = xzalloc ((*n + 1) * sizeof **out);
  for (size_t i = 0; i < *n; i++)
    if (net_port_parse (p->ports[i], &(*out)[i], err) < 0)
      return -1;
  return 0;
}

/* ---- leases: one file per network, all under one host-wide lock ---- */

int
net_lock (cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/lock", net_run_dir ());
  int fd;
  if (mkdir_p (net_run_dir (), 0700, err) < 0)
    return -1;
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "open `%s`", path);
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        int e = errno;
        close (fd);
        return cella_error (err, e, "lock `%s`", path);
      }
  return fd;
}

static char *
leases_path (const char *net)
{
  return xasprintf ("%s/%s.leases", net_run_dir (), net);
}

void
leases_load (const char *net, struct leases *l)
{
  cleanup_free char *path = leases_path (net), *text = NULL;
  if (read_file (path, &text, NULL, NULL) < 0)
    text = NULL;
  leases_parse (text, l);
}

static int
leases_store (const char *net, const struct leases *l, cella_error_t *err)
{
  cleanup_free char *path = leases_path (net), *text = leases_format (l);
  if (l->n == 0)
    {
      unlink (path);
      return 0;
    }
  return write_file_atomic (path, text, strlen (text), 0600, err);
}

static void
lease_drop (struct leases *l, size_t i)
{
  free (l->v[i].ports);
  free (l->v[i].names);
  l->v[i] = l->v[--l->n];
}

/* The host side of a container's k-th veth (its eth<k>): vc<id:12>, then vc<id:12>1... */
static char *
veth_name (const char *id, unsigned k)
{
  return k == 0 ? xasprintf ("vc%.12s", id) : xasprintf ("vc%.12s%u", id, k);
}

/* What a dead lease leaves: its DNAT table and its host-side veth (on the lease's bridge). */
static void
lease_cleanup (const struct lease *le, const char *bridge)
{
  cleanup_free char *tap = xasprintf ("vt%.12s", le->id);
  int fd = nl_open (NULL);
  if (le->ports && strcmp (le->ports, "-") != 0)
    nat_container_delete (le->id);
  if (fd >= 0)
    {
      for (unsigned k = 0; k < NET_MAX_PER_CONTAINER; k++)
        {
          cleanup_free char *veth = veth_name (le->id, k);
          cleanup_free char *master = xasprintf ("/sys/class/net/%s/master", veth);
          char target[PATH_MAX];
          ssize_t n = readlink (master, target, sizeof target - 1);
          if (n < 0)
            continue; /* none (gone with the container's namespace), or not on a bridge */
          target[n] = '\0';
          if (strcmp (strrchr (target, '/') ? strrchr (target, '/') + 1 : target, bridge) == 0)
            nl_link_del (fd, veth);
        }
      nl_link_del (fd, tap); /* a vm's (tap.c), normally gone with QEMU */
      close (fd);
    }
}

/* ---- /etc/hosts of the members of a user-defined network ----
 * Each member's /etc/hosts is a bind of $net_run_dir/hosts/<id>: its own lines (<id>.base: the
 * address, --add-host) and one line per other member. It is rewritten in place, not replaced:
 * a rename would leave the container's bind on the old file. */

static char *
hosts_path (const char *id, const char *ext)
{
  return xasprintf ("%s/hosts/%.64s%s", net_run_dir (), id, ext);
}

/* Every network's leases (a container on several networks sees the members of each). */
struct net_all {
  struct net_def *defs;
  size_t n;
  struct leases *l;
};

static void
net_all_load (struct net_all *a)
{
  *a = (struct net_all){ 0 };
  if (net_def_list (&a->defs, &a->n, NULL) < 0)
    a->n = 0;
  a->l = xzalloc ((a->n + 1) * sizeof *a->l);
  for (size_t d = 0; d < a->n; d++)
    leases_load (a->defs[d].name, &a->l[d]);
}

static void
net_all_clear (struct net_all *a)
{
  for (size_t d = 0; d < a->n; d++)
    leases_clear (&a->l[d]);
  free (a->l);
  free (a->defs);
}

static bool
leases_have (const struct leases *l, const char *id)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp (l->v[i].id, id) == 0)
      return true;
  return false;
}

/* The /etc/hosts of member `id`: its own lines, then the other members of each user-defined
 * network it is on. */
static void
hosts_write (const char *id, const struct net_all *a)
{
  cleanup_free char *path = hosts_path (id, ""), *base_path = hosts_path (id, ".base");
  cleanup_free char *base = NULL, *all = NULL;
  cleanup_close int fd = -1;
  if (read_file (base_path, &base, NULL, NULL) < 0)
    return;
  all = xstrdup (base);
  for (size_t d = 0; d < a->n; d++)
    {
      const struct leases *l = &a->l[d];
      if (strcmp (a->defs[d].name, NET_DEFAULT_NAME) == 0 || !leases_have (l, id))
        continue;
      for (size_t j = 0; j < l->n; j++)
        {
          cleanup_free char *addr = NULL;
          char *next, *names;
          if (strcmp (l->v[j].id, id) == 0 || !l->v[j].names || strcmp (l->v[j].names, "-") == 0)
            continue;
          addr = net_addr_str (l->v[j].addr);
          names = xstrdup (l->v[j].names);
          for (char *c = names; *c; c++)
            if (*c == ',')
              *c = ' ';
          next = xasprintf ("%s%s\t%s\n", all, addr, names);
          free (names);
          free (all);
          all = next;
        }
    }
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd >= 0)
    write_all (fd, all, strlen (all));
}

/* After network `net`'s leases (l, as stored) changed: the /etc/hosts of each of its members. */
static void
hosts_sync (const char *net, const struct leases *l)
{
  struct net_all a;
  if (strcmp (net, NET_DEFAULT_NAME) == 0 || l->n == 0)
    return; /* like docker's default bridge: no names */
  net_all_load (&a);
  for (size_t i = 0; i < l->n; i++)
    hosts_write (l->v[i].id, &a);
  net_all_clear (&a);
}

/* Is the lease's owner gone? thorough: by its start time (a pid taken again counts as gone); else
 * only when no process has its pid (one kill(2) a lease: what every start can afford with a
 * thousand members; the thorough pass runs in `cella doctor`, on `network rm`, and when a start
 * finds no free address). */
static bool
owner_gone (const struct lease *le, bool thorough)
{
  return thorough ? !proc_alive (le->owner, le->owner_start) : proc_surely_gone (le->owner);
}

/* Remove every lease matching (id, or a gone owner when id is NULL) from every network. */
static void
leases_reap (const char *id, bool thorough)
{
  struct net_def *defs = NULL;
  size_t ndefs = 0;
  struct leases dead = { 0 };
  cleanup_strv char **dead_bridge = NULL;
  cleanup_close int lock = net_lock (NULL);
  if (lock < 0 || net_def_list (&defs, &ndefs, NULL) < 0)
    return;
  for (size_t d = 0; d < ndefs; d++)
    {
      struct leases l;
      bool changed = false;
      leases_load (defs[d].name, &l);
      for (size_t i = 0; i < l.n;)
        if (id ? strcmp (l.v[i].id, id) == 0 : owner_gone (&l.v[i], thorough))
          {
            dead.v = xrealloc (dead.v, (dead.n + 1) * sizeof *dead.v);
            dead.v[dead.n++] = l.v[i];
            strv_push (&dead_bridge, defs[d].bridge);
            l.v[i].ports = l.v[i].names = NULL;
            lease_drop (&l, i);
            changed = true;
          }
        else
          i++;
      if (changed)
        {
          leases_store (defs[d].name, &l, NULL);
          hosts_sync (defs[d].name, &l);
        }
      leases_clear (&l);
    }
  free (defs);
  for (size_t i = 0; i < dead.n; i++)
    {
      cleanup_free char *h = hosts_path (dead.v[i].id, ""), *b = hosts_path (dead.v[i].id, ".base");
      unlink (h);
      unlink (b);
      lease_cleanup (&dead.v[i], dead_bridge[i]);
    }
  leases_clear (&dead);
}

void
net_gc (void)
{
  if (net_host_root ())
    leases_reap (NULL, true);
}

void
net_gc_quick (void)
{
  if (net_host_root ())
    leases_reap (NULL, false);
}

void
net_cleanup (const char *id)
{
  if (net_host_root ())
    leases_reap (id, false);
  else
    rootless_detach (id);
}

/* A host port must be free: no listening socket (bind succeeds) and no other container's rule. */
static int
port_check (const struct net_port *pt, struct net_def *defs, size_t ndefs, const char *id, cella_error_t *err)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (pt->host) };
  bool tcp = strcmp (pt->proto, "tcp") == 0;
  cleanup_close int s = socket (AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  int one = 1;
  char mine[80];
  snprintf (mine, sizeof mine, "%s:%u", pt->proto, pt->host);
  for (size_t d = 0; defs && d < ndefs; d++)
    {
      struct leases l;
      leases_load (defs[d].name, &l);
      for (size_t i = 0; i < l.n; i++)
        {
          char *copy, *save = NULL;
          bool clash = false;
          if (strcmp (l.v[i].id, id) == 0 || !l.v[i].ports)
            continue;
          copy = xstrdup (l.v[i].ports);
          for (char *t = strtok_r (copy, ",", &save); t && !clash; t = strtok_r (NULL, ",", &save))
            {
              char proto[4], ip[48] = "";
              unsigned host;
              if (sscanf (t, "%3[a-z]:%47[^:]:%u", proto, ip, &host) < 3 && sscanf (t, "%3[a-z]::%u", proto, &host) < 2)
                continue;
              clash = strcmp (proto, pt->proto) == 0 && host == pt->host
                      && (!*ip || !*pt->ip || strcmp (ip, pt->ip) == 0);
            }
          free (copy);
          if (clash && proc_alive (l.v[i].owner, l.v[i].owner_start)) /* /proc read only on a clash */
            {
              cella_error (err, 0, "-p %s%s%u:%u/%s: host port %u is published by container %.12s already", pt->ip,
                           *pt->ip ? ":" : "", pt->host, pt->ctr, pt->proto, pt->host, l.v[i].id);
              leases_clear (&l);
              return -1;
            }
        }
      leases_clear (&l);
    }
  if (s < 0)
    return cella_error (err, errno, "socket");
  if (*pt->ip)
    inet_pton (AF_INET, pt->ip, &sa.sin_addr);
  if (tcp)
    setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (s, (struct sockaddr *) &sa, sizeof sa) < 0)
    return cella_error (err, errno, "-p %s%s%u:%u/%s: host port %u is in use", pt->ip, *pt->ip ? ":" : "", pt->host,
                        pt->ctr, pt->proto, pt->host);
  return 0;
}

int
net_port_check (const struct net_port *pt, const char *id, cella_error_t *err)
{
  struct net_def *defs = NULL;
  size_t n = 0;
  int r;
  if (net_host_root () && net_def_list (&defs, &n, NULL) < 0)
    {
      free (defs);
      defs = NULL;
      n = 0;
    }
  r = port_check (pt, defs, n, id, err);
  free (defs);
  return r;
}

/* -p CTR: a free host port, chosen by the kernel for a socket bound to port 0. */
static int
port_pick (struct net_port *pt, cella_error_t *err)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t len = sizeof sa;
  cleanup_close int s = socket (AF_INET, (strcmp (pt->proto, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (s < 0 || bind (s, (struct sockaddr *) &sa, sizeof sa) < 0 || getsockname (s, (struct sockaddr *) &sa, &len) < 0)
    return cella_error (err, errno, "pick a free host port for %u/%s", pt->ctr, pt->proto);
  pt->host = ntohs (sa.sin_port);
  return 0;
}

int
net_port_item_parse (const char *item, struct net_port *pt)
{
  *pt = (struct net_port){ 0 };
  if (sscanf (item, "%3[a-z]:%47[^:]:%u:%u", pt->proto, pt->ip, &pt->host, &pt->ctr) == 4)
    return 0;
  pt->ip[0] = '\0';
  return sscanf (item, "%3[a-z]::%u:%u", pt->proto, &pt->host, &pt->ctr) == 3 ? 0 : -1;
}

static char *
ports_string (const struct net_port *v, size_t n)
{
  char *out = xstrdup (n ? "" : "-");
  for (size_t i = 0; i < n; i++)
    {
      char *next = xasprintf ("%s%s%s:%s:%u:%u", out, i ? "," : "", v[i].proto, v[i].ip, v[i].host, v[i].ctr);
      free (out);
      out = next;
    }
  return out;
}

static void
set_hosts_file (struct plan *p, const char *addr)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_FILE && strcmp (p->ops[i].target, "/etc/hosts") == 0)
      {
        free (p->ops[i].data);
        p->ops[i].data = net_hosts (addr, p->hostname, NULL, p->add_hosts);
        p->ops[i].data_len = strlen (p->ops[i].data);
      }
}

/* A member of a user-defined network asks the network's name server (the gateway) only, with
 * the host's search and options lines; --dns replaces it (those servers only, as elsewhere). */
static void
set_resolv_file (struct plan *p, char **dns)
{
  cleanup_free char *rc = NULL;
  if (p->dns && p->dns[0])
    return;
  if (read_file ("/run/systemd/resolve/resolv.conf", &rc, NULL, NULL) < 0
      && read_file ("/etc/resolv.conf", &rc, NULL, NULL) < 0)
    rc = NULL;
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_FILE && strcmp (p->ops[i].target, "/etc/resolv.conf") == 0)
      {
        free (p->ops[i].data);
        p->ops[i].data = net_resolv_conf (rc, dns);
        p->ops[i].data_len = strlen (p->ops[i].data);
      }
}

static const char *
plan_network (const struct plan *p)
{
  return p->network ? p->network : NET_DEFAULT_NAME;
}

/* The container's networks in order (eth0, eth1...): the first, then --network's others. */
static char **
plan_nets (const struct plan *p)
{
  char **v = NULL;
  strv_push (&v, plan_network (p));
  for (size_t i = 0; p->networks_extra && p->networks_extra[i]; i++)
    strv_push (&v, p->networks_extra[i]);
  return v;
}

static void
names_add (char **out, const char *name)
{
  char *n = strcmp (*out, "-") == 0 ? xstrdup (name) : xasprintf ("%s,%s", *out, name);
  free (*out);
  *out = n;
}

/* "name,hostname[,alias...]" of an engine container, "hostname[,alias...]" of a foreground one,
 * on network `net` (--network-alias on each, NET:alias=... on NET only). */
static char *
lease_names (const struct plan *p, const char *net)
{
  struct ctr_state st;
  char *out;
  if (ctr_state_read (p->id, &st, -1, NULL) < 0)
    out = xstrdup (p->hostname ? p->hostname : "-");
  else
    {
      out = st.name && p->hostname && strcmp (st.name, p->hostname) != 0 ? xasprintf ("%s,%s", st.name, p->hostname)
                                                                         : xstrdup (st.name ? st.name : p->hostname);
      ctr_state_clear (&st);
    }
  for (size_t i = 0; p->network && p->network_aliases && p->network_aliases[i]; i++)
    names_add (&out, p->network_aliases[i]);
  for (size_t i = 0; p->network && p->net_aliases_of && p->net_aliases_of[i]; i++)
    {
      size_t len = strlen (net);
      if (strncmp (p->net_aliases_of[i], net, len) == 0 && p->net_aliases_of[i][len] == ':')
        names_add (&out, p->net_aliases_of[i] + len + 1);
    }
  return out;
}

/* A member of a user-defined network: its /etc/hosts becomes a bind of the file kept in sync. */
static int
hosts_attach (struct plan *p, uint32_t addr, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/hosts", net_run_dir ()), *path = hosts_path (p->id, "");
  cleanup_free char *base_path = hosts_path (p->id, ".base"), *a = net_addr_str (addr), *base = NULL;
  cleanup_free char *names = lease_names (p, plan_network (p)), *alias = NULL;
  char *comma = strchr (names, ',');
  if (comma)
    *comma = '\0';
  alias = xstrdup (names);
  base = net_hosts (a, p->hostname, alias, p->add_hosts);
  if (mkdir_p (dir, 0755, err) < 0 || write_file_atomic (base_path, base, strlen (base), 0644, err) < 0)
    return -1;
  {
    cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      return cella_error (err, errno, "create `%s`", path);
  }
  for (size_t i = 0; i < p->nops; i++)
    if (strcmp (p->ops[i].target, "/etc/hosts") == 0)
      {
        struct op *op = &p->ops[i];
        free (op->data);
        op->data = NULL;
        op->data_len = 0;
        free (op->source);
        op->kind = OP_BIND;
        op->source = xstrdup (path);
        op->flags = 0; /* read-only */
      }
  return 0;
}

/* Remove the lease of `id` on network `net` (under the lock); whether there was one. */
static bool
lease_remove (const char *net, const char *id)
{
  struct leases l;
  bool found = false;
  leases_load (net, &l);
  for (size_t i = 0; i < l.n;)
    if (strcmp (l.v[i].id, id) == 0)
      {
        lease_drop (&l, i);
        found = true;
      }
    else
      i++;
  if (found)
    {
      leases_store (net, &l, NULL);
      hosts_sync (net, &l);
    }
  leases_clear (&l);
  return found;
}

/* Under the lock: drop leases of gone owners, check the ports, take an address on each of the
 * container's networks (*full: none left); the ports are the first network's. */
static int
lease_take (struct plan *p, struct net_port *ports, size_t nports, uint32_t *addr, bool *full, cella_error_t *err)
{
  struct net_def *defs = NULL, d;
  size_t ndefs = 0, k;
  cleanup_strv char **nets = plan_nets (p), **dns = NULL;
  int r = -1;
  if (net_def_list (&defs, &ndefs, err) < 0)
    return -1;
  for (k = 0; nets[k]; k++)
    {
      struct leases l;
      uint32_t a;
      cleanup_free char *ps = NULL;
      if (net_def_load (nets[k], &d, err) < 0)
        goto out;
      leases_load (d.name, &l);
      for (size_t i = 0; i < l.n;)
        if (strcmp (l.v[i].id, p->id) == 0)
          lease_drop (&l, i); /* a restart: the old lease is ours */
        else
          i++;
      for (size_t i = 0; k == 0 && i < nports; i++)
        if ((ports[i].host == 0 ? port_pick (&ports[i], err) : port_check (&ports[i], defs, ndefs, p->id, err)) < 0)
          {
            leases_clear (&l);
            goto out;
          }
      for (size_t i = 0; i < l.n;)
        if (proc_surely_gone (l.v[i].owner))
          lease_drop (&l, i); /* died since net_gc_quick: its rules go in the next one */
        else
          i++;
      a = ipam_pick (&d, &l);
      if (a == 0)
        {
          /* the subnet may be held by owners whose pid was taken again: the caller reaps thoroughly
           * and tries once more */
          *full = true;
          cella_error (err, 0, "network `%s`: no free address left in its subnet", d.name);
          leases_clear (&l);
          goto out;
        }
      if (k == 0)
        *addr = a;
      ps = k == 0 ? ports_string (ports, nports) : xstrdup ("-");
      l.v = xrealloc (l.v, (l.n + 1) * sizeof *l.v);
      l.v[l.n] = (struct lease){ .addr = a,
                                 .owner = getpid (),
                                 .owner_start = proc_start_time (getpid ()),
                                 .ports = xstrdup (ps),
                                 .names = lease_names (p, d.name) };
      snprintf (l.v[l.n].id, sizeof l.v[l.n].id, "%s", p->id);
      l.n++;
      r = leases_store (d.name, &l, err);
      leases_clear (&l);
      if (r < 0)
        goto out;
      r = -1;
      if (strcmp (d.name, NET_DEFAULT_NAME) != 0)
        {
          cleanup_free char *gw = net_addr_str (d.gateway);
          strv_push (&dns, gw);
        }
    }
  r = 0;
  if (p->network)
    r = hosts_attach (p, *addr, err);
  for (k = 0; r == 0 && p->network && nets[k]; k++)
    {
      struct leases l;
      leases_load (nets[k], &l);
      hosts_sync (nets[k], &l);
      leases_clear (&l);
    }
  if (r == 0 && dns)
    set_resolv_file (p, dns);
out:
  if (r < 0)
    for (size_t j = 0; j < k; j++)
      lease_remove (nets[j], p->id); /* nothing half-taken */
  free (defs);
  return r;
}

int
net_prepare (struct plan *p, cella_error_t *err)
{
  cleanup_free struct net_port *ports = NULL;
  cleanup_free char *a = NULL;
  size_t n;
  uint32_t addr = 0;
  int lock;
  if (plan_ports (p, &ports, &n, err) < 0)
    return -1;
  free (p->net_addr);
  p->net_addr = NULL;
  if (!net_host_root ())
    {
      /* rootless: the same checks, a random host port picked the same way (-p CTR, -P), and a
       * record of them for pasta / slirp4netns (rootless_attach) and `cella port` */
      cleanup_free char *ps = NULL;
      for (size_t i = 0; i < n; i++)
        {
          if (ports[i].host)
            {
              if (port_check (&ports[i], NULL, 0, p->id, err) < 0)
                return -1;
              continue;
            }
          for (int tries = 0;; tries++)
            {
              bool dup = false;
              if (port_pick (&ports[i], err) < 0)
                return -1;
              for (size_t j = 0; j < i; j++)
                dup |= ports[j].host == ports[i].host && strcmp (ports[j].proto, ports[i].proto) == 0;
              if (!dup || tries == 20)
                break;
            }
        }
      ps = ports_string (ports, n);
      return rootless_ports_save (p->id, ps, err);
    }
  net_gc_quick ();
  for (int tries = 0;; tries++)
    {
      bool full = false;
      int r;
      lock = net_lock (err);
      if (lock < 0)
        return -1;
      r = lease_take (p, ports, n, &addr, &full, err);
      close (lock);
      if (r == 0)
        break;
      if (!full || tries == 1)
        return -1;
      cella_error_free (err);
      net_gc ();
    }
  a = net_addr_str (addr);
  set_hosts_file (p, a);
  p->net_addr = steal_pointer (&a);
  return 0;
}

/* ---- bridges and their rules ---- */

/* The version of a network's rules (nat.c): a bridge whose rules an older cella made (without
 * the loopback guard), or a bridge made again since, gets them anew. The stamp,
 * $net_run_dir/NAME.rules, names the version and the bridge's index. */
#define NET_RULES_VERSION 2

static char *
rules_stamp_path (const char *net)
{
  return xasprintf ("%s/%s.rules", net_run_dir (), net);
}

static char *
rules_stamp (unsigned index)
{
  return xasprintf ("v%d %u\n", NET_RULES_VERSION, index);
}

static bool
rules_current (const struct net_def *d, unsigned index)
{
  cleanup_free char *path = rules_stamp_path (d->name), *want = rules_stamp (index), *have = NULL;
  return read_file (path, &have, NULL, NULL) == 0 && strcmp (have, want) == 0;
}

void
net_rules_forget (const char *net)
{
  cleanup_free char *path = rules_stamp_path (net);
  unlink (path);
}

static int
write_sysctl (const char *path, const char *value, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, value, strlen (value)) != (ssize_t) strlen (value))
    return cella_error (err, errno, "write `%s`", path);
  return 0;
}

/* A new bridge with the gateway's address, up. */
static int
bridge_make (int nl, const struct net_def *d, unsigned *index, cella_error_t *err)
{
  int r = nl_bridge_add (nl, d->bridge);
  if (r < 0 && r != -EEXIST)
    return cella_error (err, -r, "create the bridge `%s`", d->bridge);
  *index = if_nametoindex (d->bridge);
  if (*index == 0)
    return cella_error (err, errno, "bridge `%s`", d->bridge);
  if ((r = nl_addr_add (nl, *index, htonl (d->gateway), d->prefix)) < 0 && r != -EEXIST)
    return cella_error (err, -r, "give the bridge `%s` its address", d->bridge);
  if ((r = nl_link_up (nl, *index)) < 0)
    return cella_error (err, -r, "bring the bridge `%s` up", d->bridge);
  return 0;
}

/* The bridge of the network with its rules: made when missing, the rules written again when
 * their stamp is not current (under the host-wide lock: one writer at a time). */
static int
bridge_ensure (int nl, const struct net_def *d, unsigned *index, cella_error_t *err)
{
  cleanup_free char *localnet = xasprintf ("/proc/sys/net/ipv4/conf/%s/route_localnet", d->bridge);
  cleanup_free char *stamp_path = rules_stamp_path (d->name), *stamp = NULL;
  cleanup_close int lock = -1;
  *index = if_nametoindex (d->bridge);
  if (*index && rules_current (d, *index))
    return 0;
  if ((lock = net_lock (err)) < 0)
    return -1;
  *index = if_nametoindex (d->bridge);
  if (*index && rules_current (d, *index))
    return 0; /* made meanwhile */
  if (*index == 0 && bridge_make (nl, d, index, err) < 0)
    return -1;
  /* forwarding for the way out. route_localnet lets the host's own 127.0.0.1:PORT be DNAT'd
   * here, and would let the containers reach the host's loopback: it is on only while the
   * network's rules (their guard, nat.c) are there, so off while they are written (again). */
  if (write_sysctl (localnet, "0", err) < 0)
    return -1;
  if (write_sysctl ("/proc/sys/net/ipv4/ip_forward", "1", err) < 0)
    return cella_error_wrap (err, "turn IP forwarding on");
  if (nat_network_setup (d, err) < 0 || write_sysctl (localnet, "1", err) < 0)
    return -1;
  stamp = rules_stamp (*index);
  return write_file_atomic (stamp_path, stamp, strlen (stamp), 0600, err);
}

int
net_bridge_ensure (int nl, const struct net_def *d, unsigned *index, cella_error_t *err)
{
  return bridge_ensure (nl, d, index, err);
}

/* eth<k> in the child's namespace: up, its address, the default route through the gateway (the
 * first network's only). */
static int
configure_inside (int nsfd, const char *ifname, const struct net_def *d, uint32_t addr, bool route, cella_error_t *err)
{
  cleanup_close int self = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), nl = -1;
  unsigned idx;
  int r;
  if (self < 0 || setns (nsfd, CLONE_NEWNET) < 0)
    return cella_error (err, errno, "enter the container's network namespace");
  /* a netlink socket stays in the namespace it was opened in */
  nl = nl_open (err);
  idx = if_nametoindex (ifname);
  if (setns (self, CLONE_NEWNET) < 0)
    return cella_error (err, errno, "return to the host's network namespace");
  if (nl < 0)
    return -1;
  if (idx == 0)
    return cella_error (err, ENODEV, "%s in the container", ifname);
  if ((r = nl_addr_add (nl, idx, htonl (addr), d->prefix)) < 0)
    return cella_error (err, -r, "give %s its address", ifname);
  if ((r = nl_link_up (nl, idx)) < 0)
    return cella_error (err, -r, "bring %s up", ifname);
  if (route && (r = nl_route_default (nl, idx, htonl (d->gateway))) < 0)
    return cella_error (err, -r, "add the default route of the container");
  return 0;
}

/* The container's k-th interface: a veth pair from the network's bridge to eth<k> in the
 * namespace nsfd, with the address leased there. */
static int
attach_one (int nl, int nsfd, const char *id, const struct net_def *d, unsigned k, uint32_t a, cella_error_t *err)
{
  cleanup_free char *veth = veth_name (id, k);
  char ifname[16];
  unsigned br, vidx;
  int r;
  /* docker's 02:42 + the address: a lease given again keeps its MAC, so the host's neighbour
   * entry for it (a container just removed) stays right; a random one left new connections to
   * the reused address waiting for that entry to expire, up to ~30 s */
  const unsigned char mac[6] = {
    0x02, 0x42, (unsigned char) (a >> 24), (unsigned char) (a >> 16), (unsigned char) (a >> 8), (unsigned char) a
  };
  snprintf (ifname, sizeof ifname, "eth%u", k);
  if (bridge_ensure (nl, d, &br, err) < 0)
    return -1;
  r = nl_veth_add (nl, veth, br, ifname, mac, nsfd);
  if (r == -EEXIST)
    {
      nl_link_del (nl, veth); /* left by a crash */
      r = nl_veth_add (nl, veth, br, ifname, mac, nsfd);
    }
  if (r < 0)
    return cella_error (err, -r, "create the veth pair `%s`", veth);
  vidx = if_nametoindex (veth);
  if (vidx == 0 || (r = nl_link_up (nl, vidx)) < 0)
    return cella_error (err, vidx ? -r : errno, "bring `%s` up", veth);
  return configure_inside (nsfd, ifname, d, a, k == 0, err);
}

/* The lease of `id` on network `net`: its address (0: none). */
static uint32_t
lease_addr (const char *net, const char *id)
{
  struct leases l;
  uint32_t a = 0;
  leases_load (net, &l);
  for (size_t i = 0; i < l.n && !a; i++)
    if (strcmp (l.v[i].id, id) == 0)
      a = l.v[i].addr;
  leases_clear (&l);
  return a;
}

static int
root_attach (struct plan *p, pid_t pid, cella_error_t *err)
{
  struct net_def d;
  struct in_addr in;
  cleanup_free char *nspath = xasprintf ("/proc/%d/ns/net", (int) pid);
  cleanup_free struct net_port *ports = NULL;
  cleanup_strv char **nets = plan_nets (p);
  cleanup_close int nl = -1, nsfd = -1;
  size_t n;
  if (p->net_addr == NULL || inet_pton (AF_INET, p->net_addr, &in) != 1)
    return cella_error (err, EINVAL, "the container has no address (net_prepare was not called)");
  if ((nl = nl_open (err)) < 0)
    return -1;
  nsfd = open (nspath, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return cella_error (err, errno, "open `%s`", nspath);
  for (unsigned k = 0; nets[k]; k++)
    {
      uint32_t a = k == 0 ? ntohl (in.s_addr) : lease_addr (nets[k], p->id);
      if (net_def_load (nets[k], &d, err) < 0)
        return -1;
      if (a == 0)
        return cella_error (err, EINVAL, "the container has no address on network `%s`", nets[k]);
      if (attach_one (nl, nsfd, p->id, &d, k, a, err) < 0)
        return -1;
    }
  if (net_def_load (nets[0], &d, err) < 0)
    return -1;
  {
    /* the ports as leased (the first network's): a random host port (-p CTR) was chosen by
     * net_prepare */
    struct leases l;
    leases_load (d.name, &l);
    for (size_t i = 0; i < l.n; i++)
      if (strcmp (l.v[i].id, p->id) == 0 && strcmp (l.v[i].ports, "-") != 0)
        {
          char *copy = xstrdup (l.v[i].ports), *save = NULL;
          n = 0;
          for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
            {
              struct net_port pt = { 0 };
              if (sscanf (t, "%3[a-z]:%47[^:]:%u:%u", pt.proto, pt.ip, &pt.host, &pt.ctr) < 4
                  && (pt.ip[0] = '\0', sscanf (t, "%3[a-z]::%u:%u", pt.proto, &pt.host, &pt.ctr) < 3))
                continue;
              ports = xrealloc (ports, (n + 1) * sizeof *ports);
              ports[n++] = pt;
            }
          free (copy);
          if (nat_container_setup (p->id, ports, n, ntohl (in.s_addr), err) < 0)
            {
              leases_clear (&l);
              return -1;
            }
        }
    leases_clear (&l);
  }
  return 0;
}

int
net_attach (struct plan *p, pid_t pid, cella_error_t *err)
{
  if (net_host_root ())
    {
      cleanup_strv char **nets = plan_nets (p);
      if (root_attach (p, pid, err) < 0)
        return -1;
      for (size_t k = 0; p->network && nets[k]; k++)
        if (strcmp (nets[k], NET_DEFAULT_NAME) != 0)
          net_dns_start (nets[k]); /* a no-op when the network's server runs already */
      return 0;
    }
  return rootless_attach (p, pid, err);
}

void
net_detach (const struct plan *p)
{
  net_cleanup (p->id);
}

char **
net_ports_of (const char *id)
{
  struct net_def *defs = NULL;
  size_t n = 0;
  char **out = NULL;
  if (!net_host_root ())
    {
      /* rootless: the record net_prepare wrote, while the cella process that runs it lives */
      cleanup_free char *ps = rootless_ports_load (id);
      char *save = NULL;
      for (char *t = ps ? strtok_r (ps, ",", &save) : NULL; t; t = strtok_r (NULL, ",", &save))
        {
          struct net_port pt;
          cleanup_free char *line = NULL;
          if (net_port_item_parse (t, &pt) < 0)
            continue;
          line = xasprintf ("%u/%s -> %s:%u", pt.ctr, pt.proto, *pt.ip ? pt.ip : "0.0.0.0", pt.host);
          strv_push (&out, line);
        }
      return out;
    }
  if (net_def_list (&defs, &n, NULL) < 0)
    return NULL;
  for (size_t d = 0; d < n; d++)
    {
      struct leases l;
      leases_load (defs[d].name, &l);
      for (size_t i = 0; i < l.n; i++)
        {
          char *copy, *save = NULL;
          if (strcmp (l.v[i].id, id) != 0 || !proc_alive (l.v[i].owner, l.v[i].owner_start))
            continue;
          copy = xstrdup (l.v[i].ports);
          for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
            {
              struct net_port pt = { 0 };
              cleanup_free char *line = NULL;
              if (sscanf (t, "%3[a-z]:%47[^:]:%u:%u", pt.proto, pt.ip, &pt.host, &pt.ctr) < 4
                  && (pt.ip[0] = '\0', sscanf (t, "%3[a-z]::%u:%u", pt.proto, &pt.host, &pt.ctr) < 3))
                continue;
              line = xasprintf ("%u/%s -> %s:%u", pt.ctr, pt.proto, *pt.ip ? pt.ip : "0.0.0.0", pt.host);
              strv_push (&out, line);
            }
          free (copy);
        }
      leases_clear (&l);
    }
  free (defs);
  return out;
}

int
net_join_resolve (struct plan *p, cella_error_t *err)
{
  cleanup_free char *id = NULL;
  struct ctr_state st;
  pid_t pid;
  bool running;
  if (p->net != NET_CONTAINER)
    return 0;
  if (ctr_lookup (p->network, &id, err) < 0)
    return cella_error_wrap (err, "--network container:%s", p->network);
  if (ctr_state_read (id, &st, -1, err) < 0)
    return -1;
  running = st.status == CTR_RUNNING && st.pid > 0;
  pid = st.pid;
  ctr_state_clear (&st);
  if (!running)
    return cella_error (err, 0, "--network container:%s: that container is not running", p->network);
  /* the child joins it first thing (ns_join_paths), as an OCI config's path would be */
  free (p->ns_path[4]);
  p->ns_path[4] = xasprintf ("/proc/%d/ns/net", (int) pid);
  if (same_file (p->ns_path[4], "/proc/self/ns/net") == 1)
    {
      /* that container is on the host's network: so is this one, by staying in it (from another
       * container's user namespace the host's network namespace could not be joined: EPERM) */
      free (p->ns_path[4]);
      p->ns_path[4] = NULL;
      return 0;
    }
  if (p->ns & PLAN_NS_USER)
    {
      /* rootless: that network namespace belongs to the other container's user namespace, which
       * maps ids as ours would; the container is made inside it (spawn.c clone_in_userns) instead
       * of in a new one, so there are no id maps to write */
      free (p->ns_path[6]);
      p->ns_path[6] = xasprintf ("/proc/%d/ns/user", (int) pid);
      p->ns &= ~PLAN_NS_USER;
    }
  return 0;
}

/* ---- network connect / disconnect of a running container ---- */

/* The container's lease on its first network (the owner that runs it); false when none runs. */
static bool
first_lease (const struct plan *p, struct lease *out)
{
  struct leases l;
  bool found = false;
  leases_load (plan_network (p), &l);
  for (size_t i = 0; i < l.n && !found; i++)
    if (strcmp (l.v[i].id, p->id) == 0 && proc_alive (l.v[i].owner, l.v[i].owner_start))
      {
        *out = l.v[i];
        out->ports = out->names = NULL;
        found = true;
      }
  leases_clear (&l);
  return found;
}

static int
connect_check (const struct plan *p, const char *what, const char *net, cella_error_t *err)
{
  if (!net_host_root ())
    return cella_error (err, 0, "network %s %s: user-defined networks are for root (of the initial user namespace)",
                        what, net);
  if (p->backend != BACKEND_NS)
    return cella_error (err, 0,
                        "network %s %s %.12s: the container runs on the %s backend; several networks are for the "
                        "ns backend",
                        what, net, p->id, p->backend == BACKEND_VM ? "vm" : "proot");
  if (p->net != NET_PRIVATE || p->network == NULL)
    return cella_error (err, 0,
                        "network %s %s %.12s: the container is not on a user-defined network (it runs with "
                        "--network %s); connect works for a container started with --network NAME",
                        what, net, p->id,
                        p->net == NET_HOST        ? "host"
                        : p->net == NET_NONE      ? "none"
                        : p->net == NET_CONTAINER ? "container:..."
                                                  : "private");
  if (strcmp (net, NET_DEFAULT_NAME) == 0)
    return cella_error (err, 0, "network %s %s: the default network has no names; give a user-defined network", what,
                        net);
  return 0;
}

int
net_connect (const struct plan *p, pid_t pid, const char *net, char *const *aliases, cella_error_t *err)
{
  struct net_def d;
  struct leases l;
  struct lease first;
  cleanup_strv char **nets = plan_nets (p);
  cleanup_free char *names = NULL, *nspath = xasprintf ("/proc/%d/ns/net", (int) pid);
  cleanup_close int lock = -1, nl = -1, nsfd = -1;
  unsigned k = 0;
  uint32_t a;
  if (connect_check (p, "connect", net, err) < 0 || net_def_load (net, &d, err) < 0)
    return -1;
  for (size_t i = 0; aliases && aliases[i]; i++)
    if (!*aliases[i] || strlen (aliases[i]) > 253
        || strspn (aliases[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
               != strlen (aliases[i]))
      return cella_error (err, 0, "--alias `%s`: a host name (letters, digits, `.`, `-`, `_`)", aliases[i]);
  if ((lock = net_lock (err)) < 0)
    return -1;
  if (!first_lease (p, &first))
    return cella_error (err, 0, "network connect %s %.12s: the container is not running", net, p->id);
  if (lease_addr (net, p->id) != 0)
    return cella_error (err, 0, "network connect %s %.12s: the container is on that network already", net, p->id);
  /* its interface: the first eth<k> whose host side is free */
  for (k = 1; k < NET_MAX_PER_CONTAINER; k++)
    {
      cleanup_free char *veth = veth_name (p->id, k), *sys = xasprintf ("/sys/class/net/%s", veth);
      if (access (sys, F_OK) < 0)
        break;
    }
  if (k == NET_MAX_PER_CONTAINER)
    return cella_error (err, 0, "network connect %s %.12s: a container is on %d networks at most", net, p->id,
                        NET_MAX_PER_CONTAINER);
  leases_load (d.name, &l);
  for (size_t i = 0; i < l.n;)
    if (proc_surely_gone (l.v[i].owner))
      lease_drop (&l, i);
    else
      i++;
  a = ipam_pick (&d, &l);
  if (a == 0)
    {
      leases_clear (&l);
      return cella_error (err, 0, "network `%s`: no free address left in its subnet", d.name);
    }
  names = lease_names (p, d.name);
  for (size_t i = 0; aliases && aliases[i]; i++)
    names_add (&names, aliases[i]);
  l.v = xrealloc (l.v, (l.n + 1) * sizeof *l.v);
  l.v[l.n] = (struct lease){
    .addr = a, .owner = first.owner, .owner_start = first.owner_start, .ports = xstrdup ("-"), .names = xstrdup (names)
  };
  snprintf (l.v[l.n].id, sizeof l.v[l.n].id, "%s", p->id);
  l.n++;
  if (leases_store (d.name, &l, err) < 0)
    {
      leases_clear (&l);
      return -1;
    }
  hosts_sync (d.name, &l);
  leases_clear (&l);
  close (lock);
  lock = -1;
  nsfd = open (nspath, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    cella_error (err, errno, "open `%s`", nspath);
  if (nsfd < 0 || (nl = nl_open (err)) < 0 || attach_one (nl, nsfd, p->id, &d, k, a, err) < 0)
    {
      /* nothing half-made: the lease, the hosts lines and the veth go */
      cleanup_close int relock = net_lock (NULL);
      cleanup_free char *veth = veth_name (p->id, k);
      if (nl >= 0)
        nl_link_del (nl, veth);
      lease_remove (d.name, p->id);
      return -1;
    }
  net_dns_start (d.name);
  return 0;
}

int
net_disconnect (const struct plan *p, const char *net, cella_error_t *err)
{
  struct net_def d;
  struct lease first;
  struct leases l;
  cleanup_close int lock = -1;
  if (connect_check (p, "disconnect", net, err) < 0 || net_def_load (net, &d, err) < 0)
    return -1;
  if (strcmp (net, plan_network (p)) == 0)
    return cella_error (err, 0,
                        "network disconnect %s %.12s: that is the container's first network (its eth0, default "
                        "route, published ports and name server); only the networks after it can be disconnected",
                        net, p->id);
  if ((lock = net_lock (err)) < 0)
    return -1;
  if (!first_lease (p, &first))
    return cella_error (err, 0, "network disconnect %s %.12s: the container is not running", net, p->id);
  leases_load (d.name, &l);
  if (!leases_have (&l, p->id))
    {
      leases_clear (&l);
      return cella_error (err, 0, "network disconnect %s %.12s: the container is not on that network", net, p->id);
    }
  for (size_t i = 0; i < l.n; i++)
    if (strcmp (l.v[i].id, p->id) == 0)
      {
        lease_cleanup (&l.v[i], d.bridge); /* its veth on that bridge, and so its eth<k> */
        break;
      }
  leases_clear (&l);
  lease_remove (d.name, p->id);
  {
    /* its own /etc/hosts loses that network's members */
    struct net_all all;
    net_all_load (&all);
    hosts_write (p->id, &all);
    net_all_clear (&all);
  }
  return 0;
}

int
net_memberships (const char *id, struct net_membership **out, size_t *n)
{
  struct net_all a;
  *out = NULL;
  *n = 0;
  if (!net_host_root ())
    return 0;
  net_all_load (&a);
  for (size_t d = 0; d < a.n; d++)
    for (size_t i = 0; i < a.l[d].n; i++)
      {
        const struct lease *le = &a.l[d].v[i];
        struct net_membership *m;
        if (strcmp (le->id, id) != 0 || !proc_alive (le->owner, le->owner_start))
          continue;
        *out = xrealloc (*out, (*n + 1) * sizeof **out);
        m = &(*out)[(*n)++];
        memset (m, 0, sizeof *m);
        snprintf (m->net, sizeof m->net, "%s", a.defs[d].name);
        m->addr = le->addr;
        m->prefix = a.defs[d].prefix;
        m->gateway = a.defs[d].gateway;
        m->names = xstrdup (le->names ? le->names : "-");
      }
  net_all_clear (&a);
  return 0;
}
