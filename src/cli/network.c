/* cella network create|ls|rm|inspect: user-defined networks (src/net/netdef.c). */
#define _GNU_SOURCE
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../engine/container.h"
#include "../engine/events.h"
#include "../net/net.h"
#include "commands.h"
#include "../util/options.h"

struct net_opts {
  char **aliases;
  char *subnet;
  char *format;
  bool force;
};

#define O(f) offsetof (struct net_opts, f)
static const struct cli_option create_table[] = {
  { "subnet", 0, OPT_STRING, O (subnet), "CIDR", "The network's IPv4 subnet (default: the first free 10.210.N.0/24)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option ls_table[] = {
  { "format", 0, OPT_STRING, O (format), "FORMAT", "json: one JSON array" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option prune_table[] = {
  { "force", 'f', OPT_FLAG, offsetof (struct net_opts, force), NULL, "Accepted for docker: prune never asks" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option connect_table[] = {
  { "alias", 0, OPT_LIST, O (aliases), "NAME", "Another name of the container on that network (repeatable)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_table[] = {
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static json_t *
def_json (const struct net_def *d, bool members)
{
  cleanup_free char *sub = net_addr_str (d->subnet), *gw = net_addr_str (d->gateway);
  cleanup_free char *cidr = xasprintf ("%s/%d", sub, d->prefix);
  json_t *o = json_pack ("{s:s, s:s, s:s, s:s}", "name", d->name, "subnet", cidr, "gateway", gw, "bridge", d->bridge);
  if (members)
    {
      cleanup_strv char **m = net_def_members (d->name);
      json_t *a = json_array ();
      for (size_t i = 0; m && m[i]; i++)
        {
          char id[65], addr[32];
          if (sscanf (m[i], "%64s %31s", id, addr) == 2)
            json_array_append_new (a, json_pack ("{s:s, s:s}", "id", id, "address", addr));
        }
      json_object_set_new (o, "containers", a);
    }
  return o;
}

static int
need_root (void)
{
  if (geteuid () == 0 && in_initial_userns ())
    return 0;
  fprintf (stderr, "cella: user-defined networks are for root (of the initial user namespace): a rootless "
                   "container's private network is pasta's or slirp4netns's (--network private)\n");
  return EXIT_CELLA_ERROR;
}

static int
net_create (int argc, char **argv)
{
  struct net_opts o = { 0 };
  struct net_def d;
  cella_error_t err = NULL;
  int status, first = cli_parse_command (create_table, &o, argc, argv, "cella network create [--subnet CIDR] NAME",
                                         "Create a network: a bridge of its own when a container first uses it.", 1,
                                         "NAME", &status);
  if (first <= 0)
    return status;
  if ((status = need_root ()) != 0)
    return status;
  status = net_def_create (argv[first], o.subnet, &d, &err);
  free (o.subnet);
  if (status < 0)
    return cella_error_print (&err);
  event_emit ("network", "create", d.name, d.name, NULL);
  puts (d.name);
  return 0;
}

static int
net_ls (int argc, char **argv)
{
  struct net_opts o = { 0 };
  struct net_def *defs = NULL;
  size_t n = 0;
  cella_error_t err = NULL;
  int status, first = cli_parse_command (ls_table, &o, argc, argv, "cella network ls [--format json]", "List networks.",
                                         0, NULL, &status);
  if (first <= 0)
    return status;
  if (net_def_list (&defs, &n, &err) < 0)
    return cella_error_print (&err);
  if (o.format && strcmp (o.format, "json") == 0)
    {
      json_t *a = json_array ();
      char *s;
      for (size_t i = 0; i < n; i++)
        json_array_append_new (a, def_json (&defs[i], false));
      s = json_dumps (a, JSON_COMPACT);
      puts (s);
      free (s);
      json_decref (a);
    }
  else
    {
      printf ("%-20s %-18s %-16s %s\n", "NAME", "SUBNET", "GATEWAY", "BRIDGE");
      for (size_t i = 0; i < n; i++)
        {
          cleanup_free char *sub = net_addr_str (defs[i].subnet), *gw = net_addr_str (defs[i].gateway);
          cleanup_free char *cidr = xasprintf ("%s/%d", sub, defs[i].prefix);
          printf ("%-20s %-18s %-16s %s\n", defs[i].name, cidr, gw, defs[i].bridge);
        }
    }
  free (o.format);
  free (defs);
  return 0;
}

static int
net_rm (int argc, char **argv)
{
  struct net_opts o = { 0 };
  int status,
      first = cli_parse_command (no_table, &o, argc, argv, "cella network rm NAME...",
                                 "Remove networks no running container uses.", 1, "NAME", &status),
      rc = 0;
  if (first <= 0)
    return status;
  if ((status = need_root ()) != 0)
    return status;
  for (int i = first; i < argc; i++)
    {
      cella_error_t err = NULL;
      if (net_def_remove (argv[i], &err) < 0)
        rc = cella_error_print (&err);
      else
        {
          event_emit ("network", "destroy", argv[i], argv[i], NULL);
          puts (argv[i]);
        }
    }
  return rc;
}

/* Whether any container (running or not) names network `name` in its plan. */
static bool
net_used_by_container (const char *name)
{
  struct ctr_state *v = NULL;
  size_t n = 0;
  bool used = false;
  if (ctr_list (&v, &n, NULL) < 0)
    return true; /* when in doubt, keep it */
  for (size_t i = 0; i < n && !used; i++)
    {
      struct plan *p = NULL;
      if (ctr_plan_load (v[i].id, &p, NULL) == 0 && p->network && strcmp (p->network, name) == 0)
        used = true;
      for (size_t k = 0; p && p->networks_extra && p->networks_extra[k]; k++)
        used |= strcmp (p->networks_extra[k], name) == 0;
      plan_free (p);
    }
  ctr_list_free (v, n);
  return used;
}

static int
net_prune (int argc, char **argv)
{
  struct net_opts o = { 0 };
  struct net_def *defs = NULL;
  size_t n = 0;
  bool header = false;
  int status = 0, rc = 0,
      first = cli_parse_command (prune_table, &o, argc, argv, "cella network prune [-f]",
                                 "Remove the user-defined networks no container (running or stopped) uses.", 0, NULL,
                                 &status);
  cella_error_t err = NULL;
  if (first <= 0)
    return status;
  if (first < argc)
    {
      fprintf (stderr, "cella: network prune: unexpected argument `%s`\n", argv[first]);
      return EXIT_CELLA_ERROR;
    }
  if (geteuid () != 0 || !in_initial_userns ())
    return 0; /* rootless: there are no user-defined networks to prune */
  if (net_def_list (&defs, &n, &err) < 0)
    return cella_error_print (&err);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_strv char **members = net_def_members (defs[i].name);
      if (strcmp (defs[i].name, "cella") == 0 || (members && members[0]) || net_used_by_container (defs[i].name))
        continue;
      if (net_def_remove (defs[i].name, &err) < 0)
        {
          rc = cella_error_print (&err);
          continue;
        }
      event_emit ("network", "destroy", defs[i].name, defs[i].name, NULL);
      if (!header)
        puts ("Deleted Networks:");
      header = true;
      puts (defs[i].name);
    }
  free (defs);
  return rc;
}

static int
net_inspect (int argc, char **argv)
{
  struct net_opts o = { 0 };
  json_t *a = json_array ();
  char *s;
  int status,
      first = cli_parse_command (no_table, &o, argc, argv, "cella network inspect NAME...",
                                 "Show networks and their running containers (JSON).", 1, "NAME", &status),
      rc = 0;
  if (first <= 0)
    {
      json_decref (a);
      return status;
    }
  for (int i = first; i < argc; i++)
    {
      struct net_def d;
      cella_error_t err = NULL;
      if (net_def_load (argv[i], &d, &err) < 0)
        rc = cella_error_print (&err);
      else
        json_array_append_new (a, def_json (&d, true));
    }
  s = json_dumps (a, JSON_INDENT (2));
  puts (s);
  free (s);
  json_decref (a);
  return rc;
}

/* connect / disconnect: the running container's plan and pid. */
static int
connect_target (const char *ref, struct plan **p, pid_t *pid, cella_error_t *err)
{
  cleanup_free char *id = NULL;
  struct ctr_state st;
  bool running;
  if (ctr_lookup (ref, &id, err) < 0 || ctr_state_read (id, &st, -1, err) < 0)
    return -1;
  running = st.status == CTR_RUNNING && st.pid > 0;
  *pid = st.pid;
  ctr_state_clear (&st);
  if (!running)
    return cella_error (err, 0,
                        "container `%s` is not running: connect and disconnect change a running container's "
                        "networks (start it with --network NET1 --network NET2 for several)",
                        ref);
  return ctr_plan_load (id, p, err);
}

static int
net_connect_cmd (int argc, char **argv, bool connect)
{
  struct net_opts o = { 0 };
  cleanup_plan struct plan *p = NULL;
  cella_error_t err = NULL;
  pid_t pid = 0;
  int status,
      first = cli_parse_command (connect ? connect_table : no_table, &o, argc, argv,
                                 connect ? "cella network connect [--alias NAME] NETWORK CONTAINER"
                                         : "cella network disconnect NETWORK CONTAINER",
                                 connect ? "Connect a running container (root, on a user-defined network) to another "
                                           "user-defined network: an interface, an address and its names there, "
                                           "until it stops."
                                         : "Disconnect a running container from a network it was connected to (not "
                                           "its first one).",
                                 2, "NETWORK CONTAINER", &status);
  if (first <= 0)
    return status;
  if (first + 2 != argc)
    {
      fprintf (stderr, "cella: network %s: expected NETWORK CONTAINER\n", connect ? "connect" : "disconnect");
      strv_free (o.aliases);
      return EXIT_CELLA_ERROR;
    }
  if ((status = need_root ()) != 0)
    {
      strv_free (o.aliases);
      return status;
    }
  if (connect_target (argv[first + 1], &p, &pid, &err) < 0
      || (connect ? net_connect (p, pid, argv[first], o.aliases, &err) : net_disconnect (p, argv[first], &err)) < 0)
    {
      strv_free (o.aliases);
      return cella_error_print (&err);
    }
  strv_free (o.aliases);
  event_emit ("network", connect ? "connect" : "disconnect", argv[first], argv[first], NULL);
  return 0;
}

static int
net_connect_main (int argc, char **argv)
{
  return net_connect_cmd (argc, argv, true);
}

static int
net_disconnect_main (int argc, char **argv)
{
  return net_connect_cmd (argc, argv, false);
}

int
cmd_network (int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn) (int, char **);
  } subs[] = { { "create", net_create },
               { "ls", net_ls },
               { "list", net_ls },
               { "rm", net_rm },
               { "remove", net_rm },
               { "inspect", net_inspect },
               { "prune", net_prune },
               { "connect", net_connect_main },
               { "disconnect", net_disconnect_main } };
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      printf ("Usage: cella network COMMAND\n\nCommands:\n  create [--subnet CIDR] NAME\n  ls [--format json]\n"
              "  rm NAME...\n  inspect NAME...\n  prune [-f]\n  connect [--alias NAME] NETWORK CONTAINER\n"
              "  disconnect NETWORK CONTAINER\n");
      return argc < 2 ? EXIT_CELLA_ERROR : 0;
    }
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "cella: network %s: unknown command (create, ls, rm, inspect, prune, connect, disconnect)\n",
           argv[1]);
  return EXIT_CELLA_ERROR;
}

int
cmd_netdns (int argc, char **argv)
{
  if (argc != 2)
    return 125;
  return net_dns_main (argv[1]);
}
