/* cella system df|prune, cella container prune|ls|..., and the disk use behind them. */
#define _GNU_SOURCE
#include <ftw.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../engine/container.h"
#include "../engine/events.h"
#include "../engine/logfile.h"
#include "../engine/volume.h"
#include "../image/store.h"
#include "commands.h"
#include "../util/json.h"
#include "../util/options.h"
#include "../util/paths.h"
#include "../vm/vm.h"

/* ---- disk use ------------------------------------------------------------------------------------ */

static long long du_total;

static int
du_one (const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
  (void) path;
  (void) ftw;
  if (type == FTW_F && S_ISREG (sb->st_mode))
    du_total += sb->st_size;
  return 0;
}

/* Bytes in the regular files under path (not across mounts; unreadable parts count 0). */
static long long
du (const char *path)
{
  du_total = 0;
  nftw (path, du_one, 32, FTW_PHYS | FTW_MOUNT);
  return du_total;
}

static void
fmt_size (long long b, char *buf, size_t len)
{
  static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
  double v = (double) b;
  int u = 0;
  while (v >= 1000 && u < 4)
    v /= 1000, u++;
  if (u == 0)
    snprintf (buf, len, "%lldB", b);
  else
    snprintf (buf, len, "%.3g%s", v, units[u]);
}

static bool
strv_contains (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

struct df_row {
  const char *type;
  long long total, active, size, reclaimable;
  json_t *items; /* -v */
};

static void
df_images (struct df_row *r, bool verbose)
{
  struct image_record **v = NULL;
  size_t n = 0;
  cleanup_strv char **used = image_ids_in_use ();
  json_t *layers = json_object (); /* digest → {"size", "used"} */
  const char *k;
  json_t *l;
  r->type = "Images";
  if (image_list (&v, &n, NULL) < 0)
    {
      json_decref (layers);
      return;
    }
  for (size_t i = 0; i < n; i++)
    {
      bool in_use = strv_contains (used, v[i]->key) || strv_contains (used, v[i]->id);
      long long size = 0;
      r->total++;
      if (in_use)
        r->active++;
      for (size_t j = 0; j < v[i]->nlayers; j++)
        {
          json_t *e = json_object_get (layers, v[i]->layers[j].digest);
          if (e == NULL)
            {
              cleanup_free char *dir = store_layer_path (v[i]->layers[j].digest);
              e = json_pack ("{s:I, s:b}", "size", (json_int_t) du (dir), "used", false);
              json_object_set_new (layers, v[i]->layers[j].digest, e);
            }
          if (in_use)
            json_object_set_new (e, "used", json_true ());
          size += (long long) json_integer_value (json_object_get (e, "size"));
        }
      if (verbose)
        json_array_append_new (r->items,
                               json_pack ("{s:s, s:o, s:I, s:i}", "ID", v[i]->id, "Names", json_strv (v[i]->names),
                                          "Size", (json_int_t) size, "Containers", in_use ? 1 : 0));
    }
  json_object_foreach (layers, k, l)
    {
      long long s = (long long) json_integer_value (json_object_get (l, "size"));
      r->size += s;
      if (!json_is_true (json_object_get (l, "used")))
        r->reclaimable += s;
    }
  json_decref (layers);
  image_list_free (v, n);
}

static void
df_containers (struct df_row *r, bool verbose)
{
  struct ctr_state *v = NULL;
  size_t n = 0;
  r->type = "Containers";
  if (ctr_list (&v, &n, NULL) < 0)
    return;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *dir = ctr_dir (v[i].id);
      bool active = v[i].status == CTR_RUNNING || v[i].status == CTR_RESTARTING;
      long long s = du (dir);
      r->total++;
      r->size += s;
      if (active)
        r->active++;
      else
        r->reclaimable += s;
      if (verbose)
        json_array_append_new (r->items, json_pack ("{s:s, s:s, s:s, s:I, s:s}", "ID", v[i].id, "Names",
                                                    v[i].name ? v[i].name : "", "Image", v[i].image ? v[i].image : "",
                                                    "Size", (json_int_t) s, "State", ctr_status_name (v[i].status)));
    }
  ctr_list_free (v, n);
}

static void
df_volumes (struct df_row *r, bool verbose)
{
  struct volume *v = NULL;
  size_t n = 0;
  r->type = "Local Volumes";
  if (volume_list (&v, &n, NULL) < 0)
    return;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_strv char **users = volume_users (v[i].name);
      long long s = du (v[i].mountpoint);
      r->total++;
      r->size += s;
      if (users)
        r->active++;
      else
        r->reclaimable += s;
      if (verbose)
        json_array_append_new (r->items, json_pack ("{s:s, s:I, s:i}", "Name", v[i].name, "Size", (json_int_t) s,
                                                    "Links", (int) strv_len (users)));
    }
  volume_list_free (v, n);
}

static void
df_cache (struct df_row *r)
{
  cleanup_free char *dir = xasprintf ("%s/build-cache", paths_data_root ());
  r->type = "Build Cache";
  r->size = r->reclaimable = du (dir);
}

/* The vm backend's cached root disks of images ($data/vm/disks): reclaimable are those `system
 * prune` removes (of images that are gone, of root directories that changed). */
static void
df_vm_disks (struct df_row *r)
{
  struct image_record **v = NULL;
  struct vm_disk_use use;
  size_t n = 0;
  cleanup_strv char **ids = NULL;
  r->type = "VM Disks";
  if (image_list (&v, &n, NULL) < 0)
    return;
  for (size_t i = 0; i < n; i++)
    strv_push (&ids, v[i]->key);
  image_list_free (v, n);
  vm_disk_usage (ids ? ids : (char *[]){ NULL }, &use);
  r->total = (long long) use.count;
  r->active = (long long) (use.count - use.stale);
  r->size = (long long) use.size;
  r->reclaimable = (long long) use.reclaimable;
}

struct sys_opts {
  bool verbose, all, volumes, force;
  char *format;
  char **filters;
};

#define O(f) offsetof (struct sys_opts, f)
static const struct cli_option df_table[] = {
  { "verbose", 'v', OPT_FLAG, O (verbose), NULL, "Each image, container and volume too" },
  { "format", 0, OPT_STRING, O (format), "FORMAT", "json: one JSON object per type (docker's fields)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option prune_table[] = {
  { "all", 'a', OPT_FLAG, O (all), NULL, "Every image no container uses, not only the unnamed ones" },
  { "volumes", 0, OPT_FLAG, O (volumes), NULL, "Volumes no container uses too" },
  { "force", 'f', OPT_FLAG, O (force), NULL, "Accepted for docker: prune never asks" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option cprune_table[] = {
  { "force", 'f', OPT_FLAG, O (force), NULL, "Accepted for docker: prune never asks" },
  { "filter", 0, OPT_LIST, O (filters), "FILTER",
    "until=TIME (created before; RFC3339, unix seconds or a duration: 24h), label=KEY[=VALUE] (the image's)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static void
sys_opts_free (struct sys_opts *o)
{
  free (o->format);
  strv_free (o->filters);
}

static int
sys_df (int argc, char **argv)
{
  struct sys_opts o = { 0 };
  struct df_row rows[5] = { { 0 } };
  int status, first = cli_parse_command (df_table, &o, argc, argv, "cella system df [-v] [--format json]",
                                         "Show the disk space images, containers, volumes, the build cache and the vm "
                                         "backend's cached image disks use, and how much of it nothing uses "
                                         "(reclaimable).",
                                         0, NULL, &status);
  bool json;
  if (first <= 0)
    goto out;
  status = 0;
  json = o.format && strcmp (o.format, "json") == 0;
  if (o.format && !json)
    {
      fprintf (stderr, "cella: system df: --format `%s`: only json\n", o.format);
      status = EXIT_CELLA_ERROR;
      goto out;
    }
  if (first < argc)
    {
      fprintf (stderr, "cella: system df: unexpected argument `%s`\n", argv[first]);
      status = EXIT_CELLA_ERROR;
      goto out;
    }
  for (int i = 0; i < 5; i++)
    rows[i].items = json_array ();
  df_images (&rows[0], o.verbose);
  df_containers (&rows[1], o.verbose);
  df_volumes (&rows[2], o.verbose);
  df_cache (&rows[3]);
  df_vm_disks (&rows[4]);
  if (json)
    for (int i = 0; i < 5; i++)
      {
        json_t *j = json_pack ("{s:s, s:I, s:I, s:I, s:I}", "Type", rows[i].type, "TotalCount",
                               (json_int_t) rows[i].total, "Active", (json_int_t) rows[i].active, "Size",
                               (json_int_t) rows[i].size, "Reclaimable", (json_int_t) rows[i].reclaimable);
        char *t;
        if (o.verbose && i < 3)
          json_object_set (j, "Items", rows[i].items);
        t = json_dumps (j, JSON_COMPACT);
        puts (t);
        free (t);
        json_decref (j);
      }
  else
    {
      printf ("%-15s %-8s %-8s %-10s %s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
      for (int i = 0; i < 5; i++)
        {
          char sz[32], rc[32];
          fmt_size (rows[i].size, sz, sizeof sz);
          fmt_size (rows[i].reclaimable, rc, sizeof rc);
          printf ("%-15s %-8lld %-8lld %-10s %s (%lld%%)\n", rows[i].type, rows[i].total, rows[i].active, sz, rc,
                  rows[i].size ? rows[i].reclaimable * 100 / rows[i].size : 0);
        }
      if (o.verbose)
        for (int i = 0; i < 3; i++)
          {
            size_t k;
            json_t *it;
            printf ("\n%s:\n", rows[i].type);
            json_array_foreach (rows[i].items, k, it)
              {
                char sz[32];
                json_t *name = json_object_get (it, i == 0 ? "ID" : i == 1 ? "Names" : "Name");
                fmt_size ((long long) json_integer_value (json_object_get (it, "Size")), sz, sizeof sz);
                printf ("  %-40.40s %s\n", json_string_value (name), sz);
              }
          }
    }
  for (int i = 0; i < 5; i++)
    json_decref (rows[i].items);
out:
  sys_opts_free (&o);
  return status;
}

/* ---- container prune ----------------------------------------------------------------------------- */

static bool
has_label (char *const *labels, const char *want)
{
  const char *eq = strchr (want, '=');
  size_t kl = eq ? (size_t) (eq - want) : strlen (want);
  for (size_t i = 0; labels && labels[i]; i++)
    if (strncmp (labels[i], want, kl) == 0 && (labels[i][kl] == '=' || labels[i][kl] == '\0'))
      {
        const char *v = labels[i][kl] == '=' ? labels[i] + kl + 1 : "";
        if (eq == NULL || strcmp (v, eq + 1) == 0)
          return true;
      }
  return false;
}

/* Remove the stopped containers (exited, created) the filters keep; adds to *freed. */
static int
prune_containers (char *const *filters, long long *freed, bool quiet_header, cella_error_t *err)
{
  struct ctr_state *v = NULL;
  size_t n = 0;
  long long until = 0;
  bool header = false;
  int rc = 0;
  for (size_t i = 0; filters && filters[i]; i++)
    if (has_prefix (filters[i], "until="))
      {
        if (log_parse_time (filters[i] + 6, now_ns (), &until, err) < 0)
          return cella_error_wrap (err, "container prune: --filter");
      }
    else if (!has_prefix (filters[i], "label=") || filters[i][6] == '\0')
      return cella_error (err, 0, "container prune: --filter `%s`: expected until=TIME or label=KEY[=VALUE]",
                          filters[i]);
  if (ctr_list (&v, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      cella_error_t e = NULL;
      bool keep = v[i].status != CTR_EXITED && v[i].status != CTR_CREATED;
      if (!keep && until && v[i].created_ns >= until)
        keep = true;
      if (!keep)
        for (size_t k = 0; filters && filters[k]; k++)
          if (has_prefix (filters[k], "label="))
            {
              struct plan *p = NULL;
              bool hit = ctr_plan_load (v[i].id, &p, NULL) == 0 && has_label (p->labels, filters[k] + 6);
              plan_free (p);
              if (!hit)
                keep = true;
            }
      if (keep)
        continue;
      {
        cleanup_free char *dir = ctr_dir (v[i].id);
        long long s = du (dir);
        if (ctr_rm (v[i].id, false, false, &e) < 0)
          {
            rc = cella_error_print (&e);
            continue;
          }
        *freed += s;
      }
      if (!header && !quiet_header)
        puts ("Deleted Containers:");
      header = true;
      puts (v[i].id);
    }
  ctr_list_free (v, n);
  return rc ? -1 : 0;
}

static void
print_reclaimed (long long freed)
{
  char sz[32];
  fmt_size (freed, sz, sizeof sz);
  printf ("Total reclaimed space: %s\n", sz);
}

static int
ctr_prune_cmd (int argc, char **argv)
{
  struct sys_opts o = { 0 };
  cella_error_t err = NULL;
  long long freed = 0;
  int status, first = cli_parse_command (cprune_table, &o, argc, argv, "cella container prune [-f] [--filter F]...",
                                         "Remove every stopped container (exited or created).", 0, NULL, &status);
  if (first > 0)
    {
      status = 0;
      if (prune_containers (o.filters, &freed, false, &err) < 0)
        status = err ? cella_error_print (&err) : EXIT_CELLA_ERROR;
      print_reclaimed (freed);
    }
  sys_opts_free (&o);
  return status;
}

static int
sys_prune (int argc, char **argv)
{
  struct sys_opts o = { 0 };
  cella_error_t err = NULL;
  long long freed = 0;
  int status, first = cli_parse_command (
                  prune_table, &o, argc, argv, "cella system prune [-a] [--volumes] [-f]",
                  "Remove stopped containers, networks no container uses, unnamed images (-a: every image no "
                  "container uses), the build cache and leftover cgroups (empty ones of containers that "
                  "are gone), the cached VM disks of images that are gone; with --volumes, volumes no container uses.",
                  0, NULL, &status);
  if (first <= 0)
    goto out;
  status = 0;
  if (first < argc)
    {
      fprintf (stderr, "cella: system prune: unexpected argument `%s`\n", argv[first]);
      status = EXIT_CELLA_ERROR;
      goto out;
    }
  if (prune_containers (NULL, &freed, false, &err) < 0)
    status = err ? cella_error_print (&err) : EXIT_CELLA_ERROR;
  {
    size_t cgs = ctr_sweep_cgroups ();
    if (cgs)
      printf ("Removed %zu leftover cgroup director%s\n", cgs, cgs == 1 ? "y" : "ies");
  }
  {
    char *nargv[] = { "network", "prune", "-f", NULL };
    if (cmd_network (3, nargv) != 0)
      status = EXIT_CELLA_ERROR;
  }
  if (o.volumes)
    {
      char *vargv[] = { "volume", "prune", "-f", NULL };
      if (cmd_volume (3, vargv) != 0)
        status = EXIT_CELLA_ERROR;
    }
  {
    /* the cache first: image prune keeps the images it names */
    cleanup_free char *cache = xasprintf ("%s/build-cache", paths_data_root ());
    long long s = du (cache);
    if (s > 0 && remove_tree (cache) == 0)
      freed += s;
  }
  {
    char *iargv[] = { "image", "prune", o.all ? "-a" : "-f", NULL };
    if (cmd_image (3, iargv) != 0)
      status = EXIT_CELLA_ERROR;
  }
  {
    /* the VM disks of images that are gone now (and the rebuildable ones of root directories) */
    struct image_record **v = NULL;
    size_t n = 0;
    cleanup_strv char **ids = NULL;
    if (image_list (&v, &n, &err) == 0)
      {
        for (size_t i = 0; i < n; i++)
          strv_push (&ids, v[i]->key);
        image_list_free (v, n);
        freed += (long long) vm_disk_prune (ids ? ids : (char *[]){ NULL });
      }
    else
      status = cella_error_print (&err);
  }
  printf ("Containers, build cache and VM disks: ");
  print_reclaimed (freed);
out:
  sys_opts_free (&o);
  return status;
}

struct sub {
  const char *name;
  int (*fn) (int argc, char **argv);
};

static int
dispatch (const char *family, const struct sub *subs, size_t n, const char *help, int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      fprintf (argc < 2 ? stderr : stdout, "Usage: cella %s COMMAND\n\n%s", family, help);
      return argc < 2 ? EXIT_CELLA_ERROR : 0;
    }
  for (size_t i = 0; i < n; i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "cella: %s %s: unknown command (see cella %s --help)\n", family, argv[1], family);
  return EXIT_CELLA_ERROR;
}

int
cmd_system (int argc, char **argv)
{
  static const struct sub subs[] = { { "df", sys_df }, { "prune", sys_prune } };
  return dispatch ("system", subs, 2, "Commands:\n  df [-v] [--format json]\n  prune [-a] [--volumes] [-f]\n", argc,
                   argv);
}

int
cmd_container (int argc, char **argv)
{
  static const struct sub subs[]
      = { { "prune", ctr_prune_cmd }, { "ls", cmd_ps },           { "ps", cmd_ps },           { "list", cmd_ps },
          { "rm", cmd_rm },           { "inspect", cmd_inspect }, { "stop", cmd_stop },       { "kill", cmd_kill },
          { "logs", cmd_logs },       { "pause", cmd_pause },     { "unpause", cmd_unpause }, { "update", cmd_update },
          { "create", cmd_create },   { "rename", cmd_rename },   { "wait", cmd_wait },       { "top", cmd_top },
          { "stats", cmd_stats },     { "port", cmd_port } };
  return dispatch (
      "container", subs, sizeof subs / sizeof subs[0],
      "Commands:\n  prune [-f] [--filter until=TIME|label=K[=V]]\n  ls, rm, inspect, stop, kill, logs, pause, unpause, update, create, rename, wait, top, stats, port: as `cella COMMAND`\n",
      argc, argv);
}
