/* cella volume create|ls|inspect|rm|prune: named volumes (src/engine/volume.c). */
#define _GNU_SOURCE
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../engine/volume.h"
#include "commands.h"
#include "../util/options.h"

struct vol_opts {
  char **labels, **opts, **filters;
  char *format, *driver;
  bool quiet, force;
};

#define O(f) offsetof (struct vol_opts, f)
static const struct cli_option create_table[] = {
  { "label", 'l', OPT_LIST, O (labels), "KEY=VALUE", "Set a label on the volume" },
  { "opt", 'o', OPT_LIST, O (opts), "KEY=VALUE",
    "type=tmpfs (each container gets a tmpfs; o=size=64m,mode=1777) or type=bind with device=HOST-DIR" },
  { "driver", 'd', OPT_STRING, O (driver), "NAME", "Only `local`" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option ls_table[] = {
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Only the names" },
  { "format", 0, OPT_STRING, O (format), "FORMAT", "json: one JSON array" },
  { "filter", 'f', OPT_LIST, O (filters), "FILTER",
    "label=KEY, label=KEY=VALUE, name=SUBSTRING, dangling=true|false (used by no container)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option rm_table[] = {
  { "force", 'f', OPT_FLAG, O (force), NULL, "Remove even when containers use it; no error for a missing one" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option prune_table[] = {
  { "force", 'f', OPT_FLAG, O (force), NULL, "Accepted for docker: prune never asks" },
  { "filter", 0, OPT_LIST, O (filters), "FILTER", "label=KEY[=VALUE]: only the volumes that have it" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_table[] = {
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static void
opts_free (struct vol_opts *o)
{
  strv_free (o->labels);
  strv_free (o->opts);
  strv_free (o->filters);
  free (o->format);
  free (o->driver);
}

static void
print_json (json_t *j, size_t flags)
{
  char *s = json_dumps (j, flags);
  puts (s);
  free (s);
  json_decref (j);
}

static int
vol_create (int argc, char **argv)
{
  struct vol_opts o = { 0 };
  struct volume v;
  cella_error_t err = NULL;
  int status, first = cli_parse_command (create_table, &o, argc, argv,
                                         "cella volume create [--label K=V]... [--opt K=V]... [NAME]",
                                         "Create a volume (no NAME: a random one).", 0, NULL, &status);
  if (first <= 0)
    return status;
  if (o.driver && strcmp (o.driver, "local") != 0)
    {
      cella_error (&err, 0, "--driver `%s`: only the local driver exists here", o.driver);
      opts_free (&o);
      return cella_error_print (&err);
    }
  if (argc - first > 1)
    {
      cella_error (&err, 0, "volume create: one NAME at most (usage: cella volume create [OPTIONS] [NAME])");
      opts_free (&o);
      return cella_error_print (&err);
    }
  {
    int lock = volume_lock (&err);
    status = lock < 0
                 ? -1
                 : volume_create (first < argc ? argv[first] : NULL, o.labels, o.opts, false, false, &v, NULL, &err);
    if (lock >= 0)
      close (lock);
  }
  opts_free (&o);
  if (status < 0)
    return cella_error_print (&err);
  puts (v.name);
  volume_clear (&v);
  return 0;
}

/* Does v pass every filter? Unknown filters are an error the caller reports. */
static int
filter_match (const struct volume *v, char *const *filters, cella_error_t *err)
{
  for (size_t i = 0; filters && filters[i]; i++)
    {
      const char *f = filters[i];
      if (has_prefix (f, "label="))
        {
          const char *want = f + 6;
          const char *eq = strchr (want, '=');
          size_t kl = eq ? (size_t) (eq - want) : strlen (want);
          bool found = false;
          for (size_t j = 0; v->labels && v->labels[j]; j++)
            if (strncmp (v->labels[j], want, kl) == 0 && v->labels[j][kl] == '='
                && (!eq || strcmp (v->labels[j] + kl + 1, eq + 1) == 0))
              found = true;
          if (!found)
            return 0;
        }
      else if (has_prefix (f, "name="))
        {
          if (strstr (v->name, f + 5) == NULL)
            return 0;
        }
      else if (strcmp (f, "dangling=true") == 0 || strcmp (f, "dangling=1") == 0 || strcmp (f, "dangling=false") == 0
               || strcmp (f, "dangling=0") == 0)
        {
          cleanup_strv char **users = volume_users (v->name);
          bool want = strcmp (f, "dangling=true") == 0 || strcmp (f, "dangling=1") == 0;
          if ((users == NULL) != want)
            return 0;
        }
      else
        return cella_error (err, 0, "--filter `%s`: expected label=KEY[=VALUE], name=TEXT or dangling=true|false", f);
    }
  return 1;
}

static int
vol_ls (int argc, char **argv)
{
  struct vol_opts o = { 0 };
  struct volume *v = NULL;
  size_t n = 0;
  cella_error_t err = NULL;
  json_t *a = json_array ();
  bool json;
  int status,
      first = cli_parse_command (ls_table, &o, argc, argv, "cella volume ls [-q] [--format json] [--filter FILTER]...",
                                 "List volumes.", 0, NULL, &status);
  if (first <= 0)
    {
      json_decref (a);
      return status;
    }
  json = o.format && strcmp (o.format, "json") == 0;
  if (o.format && !json)
    cella_error (&err, 0, "--format `%s`: only json", o.format);
  else if (volume_list (&v, &n, &err) == 0 && !json && !o.quiet)
    printf ("%-8s %s\n", "DRIVER", "VOLUME NAME");
  for (size_t i = 0; err == NULL && i < n; i++)
    {
      int m = filter_match (&v[i], o.filters, &err);
      if (m <= 0)
        continue;
      if (json)
        json_array_append_new (a, volume_json (&v[i]));
      else if (o.quiet)
        puts (v[i].name);
      else
        printf ("%-8s %s\n", "local", v[i].name);
    }
  volume_list_free (v, n);
  opts_free (&o);
  if (err)
    {
      json_decref (a);
      return cella_error_print (&err);
    }
  if (json)
    print_json (a, JSON_COMPACT);
  else
    json_decref (a);
  return 0;
}

static int
vol_inspect (int argc, char **argv)
{
  struct vol_opts o = { 0 };
  json_t *a = json_array ();
  int rc = 0, status,
      first = cli_parse_command (no_table, &o, argc, argv, "cella volume inspect NAME...", "Show volumes (JSON).", 1,
                                 "NAME", &status);
  if (first <= 0)
    {
      json_decref (a);
      return status;
    }
  for (int i = first; i < argc; i++)
    {
      struct volume v;
      cella_error_t err = NULL;
      if (volume_load (argv[i], &v, &err) < 0)
        {
          rc = cella_error_print (&err);
          continue;
        }
      json_array_append_new (a, volume_json (&v));
      volume_clear (&v);
    }
  print_json (a, JSON_INDENT (4) | JSON_PRESERVE_ORDER);
  return rc;
}

static int
vol_rm (int argc, char **argv)
{
  struct vol_opts o = { 0 };
  int lock, rc = 0, status,
            first = cli_parse_command (rm_table, &o, argc, argv, "cella volume rm [-f] NAME...",
                                       "Remove volumes no container uses.", 1, "NAME", &status);
  cella_error_t err = NULL;
  if (first <= 0)
    return status;
  if ((lock = volume_lock (&err)) < 0)
    return cella_error_print (&err);
  for (int i = first; i < argc; i++)
    {
      struct volume v;
      if (o.force && volume_name_valid (argv[i]) && volume_load (argv[i], &v, NULL) < 0)
        continue; /* docker: -f and a missing volume is no error */
      if (o.force)
        volume_clear (&v);
      if (volume_remove (argv[i], o.force, &err) < 0)
        rc = cella_error_print (&err);
      else
        puts (argv[i]);
    }
  close (lock);
  opts_free (&o);
  return rc;
}

static int
vol_prune (int argc, char **argv)
{
  struct vol_opts o = { 0 };
  struct volume *v = NULL;
  size_t n = 0;
  cella_error_t err = NULL;
  int lock, status,
      first = cli_parse_command (prune_table, &o, argc, argv, "cella volume prune [-f] [--filter F]",
                                 "Remove every volume no container uses.", 0, NULL, &status);
  if (first <= 0)
    return status;
  for (size_t i = 0; o.filters && o.filters[i]; i++)
    if (!has_prefix (o.filters[i], "label="))
      {
        cella_error (&err, 0, "--filter `%s`: prune takes label=KEY[=VALUE]", o.filters[i]);
        opts_free (&o);
        return cella_error_print (&err);
      }
  if ((lock = volume_lock (&err)) < 0 || volume_list (&v, &n, &err) < 0)
    {
      if (lock >= 0)
        close (lock);
      opts_free (&o);
      return cella_error_print (&err);
    }
  status = 0;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_strv char **users = NULL;
      if (filter_match (&v[i], o.filters, NULL) <= 0 || (users = volume_users (v[i].name)) != NULL)
        continue;
      if (volume_remove (v[i].name, false, &err) < 0)
        status = cella_error_print (&err);
      else
        puts (v[i].name);
    }
  close (lock);
  volume_list_free (v, n);
  opts_free (&o);
  return status;
}

int
cmd_volume (int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn) (int, char **);
  } subs[] = { { "create", vol_create }, { "ls", vol_ls },     { "list", vol_ls },    { "inspect", vol_inspect },
               { "rm", vol_rm },         { "remove", vol_rm }, { "prune", vol_prune } };
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      printf ("Usage: cella volume COMMAND\n\nCommands:\n"
              "  create [--label K=V]... [--opt type=tmpfs|bind,device=..,o=..]... [NAME]\n"
              "  ls [-q] [--format json] [--filter label=..|name=..|dangling=true]\n"
              "  inspect NAME...\n  rm [-f] NAME...\n  prune [-f] [--filter label=..]\n");
      return argc < 2 ? EXIT_CELLA_ERROR : 0;
    }
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "cella: volume %s: unknown command (create, ls, inspect, rm, prune)\n", argv[1]);
  return EXIT_CELLA_ERROR;
}
