/* Networks: the default one (NET_DEFAULT_*) and user-defined ones, one small file each in
 * net_conf_dir: "subnet=A.B.C.D/N\nbridge=cellaN\n". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/proc.h"
#include "internal.h"

static void
def_default (struct net_def *d)
{
  memset (d, 0, sizeof *d);
  snprintf (d->name, sizeof d->name, "%s", NET_DEFAULT_NAME);
  snprintf (d->bridge, sizeof d->bridge, "%s", NET_DEFAULT_BRIDGE);
  net_cidr_parse (NET_DEFAULT_SUBNET, &d->subnet, &d->prefix, NULL);
  d->gateway = d->subnet + 1;
}

static bool
name_valid (const char *name)
{
  return ctr_name_valid (name) && strlen (name) < 40;
}

int
net_def_load (const char *name, struct net_def *d, cella_error_t *err)
{
  cleanup_free char *path = NULL, *text = NULL;
  char subnet[64] = "", bridge[16] = "";
  if (strcmp (name, NET_DEFAULT_NAME) == 0)
    {
      def_default (d);
      return 0;
    }
  if (!name_valid (name))
    return cella_error (err, 0, "network `%s`: invalid name", name);
  path = xasprintf ("%s/%s.conf", net_conf_dir (), name);
  if (read_file (path, &text, NULL, NULL) < 0)
    return cella_error (err, 0, "network `%s`: no such network (see `cella network ls`)", name);
  memset (d, 0, sizeof *d);
  if (sscanf (text, "subnet=%63s bridge=%15s", subnet, bridge) != 2
      || net_cidr_parse (subnet, &d->subnet, &d->prefix, err) < 0)
    return cella_error (err, 0, "network `%s`: `%s` is damaged", name, path);
  snprintf (d->name, sizeof d->name, "%s", name);
  snprintf (d->bridge, sizeof d->bridge, "%s", bridge);
  d->gateway = d->subnet + 1;
  return 0;
}

int
net_def_list (struct net_def **out, size_t *n, cella_error_t *err)
{
  DIR *dir = opendir (net_conf_dir ());
  struct dirent *de;
  *out = xmalloc (sizeof **out);
  *n = 1;
  def_default (&(*out)[0]);
  if (dir == NULL)
    return 0;
  while ((de = readdir (dir)))
    {
      size_t len = strlen (de->d_name);
      cleanup_free char *name = NULL;
      struct net_def d;
      if (len <= 5 || strcmp (de->d_name + len - 5, ".conf") != 0)
        continue;
      name = strndup (de->d_name, len - 5);
      if (net_def_load (name, &d, NULL) < 0)
        continue;
      *out = xrealloc (*out, (*n + 1) * sizeof **out);
      (*out)[(*n)++] = d;
    }
  closedir (dir);
  (void) err;
  return 0;
}

static bool
overlaps (uint32_t a, int pa, uint32_t b, int pb)
{
  int p = pa < pb ? pa : pb;
  uint32_t mask = p ? 0xffffffffu << (32 - p) : 0;
  return (a & mask) == (b & mask);
}

int
net_def_create (const char *name, const char *subnet, struct net_def *out, cella_error_t *err)
{
  struct net_def *defs = NULL, d;
  size_t n = 0;
  cleanup_free char *path = NULL, *text = NULL;
  cleanup_close int lock = -1;
  int r = -1;
  if (!name_valid (name) || strcmp (name, "none") == 0 || strcmp (name, "host") == 0 || strcmp (name, "private") == 0
      || has_prefix (name, "container"))
    return cella_error (err, 0,
                        "network name `%s`: use letters, digits and _ . - (at most 39; not none, host, "
                        "private or container...)",
                        name);
  if ((lock = net_lock (err)) < 0 || net_def_list (&defs, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp (defs[i].name, name) == 0)
      {
        cella_error (err, 0, "network `%s` exists already", name);
        goto out;
      }
  memset (&d, 0, sizeof d);
  snprintf (d.name, sizeof d.name, "%s", name);
  if (subnet)
    {
      if (net_cidr_parse (subnet, &d.subnet, &d.prefix, err) < 0)
        goto out;
      for (size_t i = 0; i < n; i++)
        if (overlaps (d.subnet, d.prefix, defs[i].subnet, defs[i].prefix))
          {
            cella_error (err, 0, "--subnet %s overlaps the subnet of network `%s`", subnet, defs[i].name);
            goto out;
          }
    }
  else
    {
      /* the first free 10.210.N.0/24 */
      bool found = false;
      for (uint32_t k = 0; k < 256 && !found; k++)
        {
          d.subnet = (10u << 24) | (210u << 16) | (k << 8);
          d.prefix = 24;
          found = true;
          for (size_t i = 0; i < n && found; i++)
            found = !overlaps (d.subnet, d.prefix, defs[i].subnet, defs[i].prefix);
        }
      if (!found)
        {
          cella_error (err, 0, "no free subnet in 10.210.0.0/16: give one with --subnet");
          goto out;
        }
    }
  d.gateway = d.subnet + 1;
  for (unsigned k = 1; k < 100000; k++)
    {
      bool used = false;
      snprintf (d.bridge, sizeof d.bridge, NET_BRIDGE_PREFIX "%u", k);
      for (size_t i = 0; i < n && !used; i++)
        used = strcmp (defs[i].bridge, d.bridge) == 0;
      if (!used)
        break;
    }
  {
    cleanup_free char *s = net_addr_str (d.subnet);
    text = xasprintf ("subnet=%s/%d\nbridge=%s\n", s, d.prefix, d.bridge);
  }
  path = xasprintf ("%s/%s.conf", net_conf_dir (), name);
  if (mkdir_p (net_conf_dir (), 0755, err) < 0 || write_file_atomic (path, text, strlen (text), 0644, err) < 0)
    goto out;
  if (out)
    *out = d;
  r = 0;
out:
  free (defs);
  return r;
}

char **
net_def_members (const char *name)
{
  struct leases l;
  char **out = NULL;
  leases_load (name, &l);
  for (size_t i = 0; i < l.n; i++)
    if (proc_alive (l.v[i].owner, l.v[i].owner_start))
      {
        cleanup_free char *a = net_addr_str (l.v[i].addr);
        cleanup_free char *s = xasprintf ("%s %s", l.v[i].id, a);
        strv_push (&out, s);
      }
  leases_clear (&l);
  return out;
}

int
net_def_remove (const char *name, cella_error_t *err)
{
  struct net_def d;
  cleanup_free char *path = NULL;
  cleanup_strv char **members = NULL;
  cleanup_close int lock = -1;
  bool dflt = strcmp (name, NET_DEFAULT_NAME) == 0;
  if (net_def_load (name, &d, err) < 0)
    return -1;
  /* the leases of dead members, their rules and veths with them: once the network is gone no
   * later start would reap them (net_gc looks at the networks defined) */
  net_gc ();
  if ((lock = net_lock (err)) < 0)
    return -1;
  members = net_def_members (name);
  if (members)
    return cella_error (err, 0, "network `%s` is used by %zu running container(s), like %.12s", name,
                        strv_len (members), members[0]);
  path = xasprintf ("%s/%s.conf", net_conf_dir (), name);
  if (!dflt)
    net_dns_stop (name);
  if (net_host_root ())
    {
      int fd = nl_open (NULL);
      if (fd >= 0)
        {
          nl_link_del (fd, d.bridge);
          close (fd);
        }
      nat_network_delete (&d);
      net_rules_forget (name);
    }
  /* the default network stays defined: its bridge and rules come back on its next use */
  if (!dflt && unlink (path) < 0)
    return cella_error (err, errno, "remove `%s`", path);
  return 0;
}
