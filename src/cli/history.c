/* cella image history IMAGE (and `cella history`): an image's layers and its config's history
 * entries, newest first, like `docker history`. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../image/default_image.h"
#include "../image/store.h"
#include "commands.h"
#include "../util/options.h"

struct hist_opts {
  bool no_trunc, quiet;
  char *format;
};

#define O(f) offsetof (struct hist_opts, f)
static const struct cli_option hist_table[] = {
  { "no-trunc", 0, OPT_FLAG, O (no_trunc), NULL, "Print whole ids, commands and exact creation times" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Only print the ids" },
  { "format", 0, OPT_STRING, O (format), "table|json", "Output format (json: one array of objects, newest first)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

struct hist_row {
  const char *id; /* "sha256:…" or "<missing>" */
  const char *created, *created_by, *comment;
  int64_t size;
  bool empty_layer;
};

long long
rfc3339_seconds (const char *s)
{
  struct tm tm = { 0 };
  const char *rest = s ? strptime (s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  long long t;
  if (rest == NULL)
    return -1;
  t = (long long) timegm (&tm);
  if (*rest == '.')
    for (rest++; *rest >= '0' && *rest <= '9'; rest++)
      ;
  if ((*rest == '+' || *rest == '-') && strlen (rest) >= 6)
    {
      long long off = ((rest[1] - '0') * 10 + (rest[2] - '0')) * 3600 + ((rest[4] - '0') * 10 + (rest[5] - '0')) * 60;
      t += *rest == '+' ? -off : off;
    }
  return t;
}

static void
human_created (const char *created, char *buf, size_t len)
{
  long long t = rfc3339_seconds (created), d;
  if (t < 0)
    {
      snprintf (buf, len, "%s", created && *created ? created : "N/A");
      return;
    }
  d = (long long) time (NULL) - t;
  if (d < 0)
    d = 0;
  if (d < 60)
    snprintf (buf, len, "%lld seconds ago", d);
  else if (d < 3600)
    snprintf (buf, len, "%lld minutes ago", d / 60);
  else if (d < 86400 * 2)
    snprintf (buf, len, "%lld hours ago", d / 3600);
  else if (d < 86400 * 365 * 2)
    snprintf (buf, len, "%lld days ago", d / 86400);
  else
    snprintf (buf, len, "%lld years ago", d / (86400 * 365));
}

/* docker's sizes: 3 significant digits, decimal units ("4.26MB", "0B"). */
static void
human_bytes (int64_t b, char *buf, size_t len)
{
  static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
  double v = (double) b;
  size_t u = 0;
  while (v >= 1000 && u + 1 < sizeof units / sizeof units[0])
    {
      v /= 1000;
      u++;
    }
  snprintf (buf, len, "%.3g%s", v, units[u]);
}

/* One line of CREATED BY: newlines and tabs as spaces, cut to 45 columns unless whole. */
static char *
created_by_cell (const char *s, bool whole)
{
  char *c = xstrdup (s ? s : "");
  for (char *q = c; *q; q++)
    if (*q == '\n' || *q == '\t')
      *q = ' ';
  if (!whole && strlen (c) > 45)
    strcpy (c + 42, "...");
  return c;
}

static void
print_rows (const struct hist_row *rows, size_t n, const struct hist_opts *o)
{
  if (o->format && strcmp (o->format, "json") == 0)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < n; i++)
        json_array_append_new (
            a, json_pack ("{s:s, s:s, s:s, s:I, s:s, s:b}", "Id", rows[i].id, "Created",
                          rows[i].created ? rows[i].created : "", "CreatedBy",
                          rows[i].created_by ? rows[i].created_by : "", "Size", (json_int_t) rows[i].size, "Comment",
                          rows[i].comment ? rows[i].comment : "", "EmptyLayer", rows[i].empty_layer));
      json_dumpf (a, stdout, JSON_INDENT (2));
      putchar ('\n');
      json_decref (a);
      return;
    }
  if (!o->quiet)
    printf ("%-14s %-20s %-45s %-9s %s\n", "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
  for (size_t i = 0; i < n; i++)
    {
      char id[80], created[64], size[32];
      cleanup_free char *by = created_by_cell (rows[i].created_by, o->no_trunc);
      if (strcmp (rows[i].id, "<missing>") == 0 || o->no_trunc)
        snprintf (id, sizeof id, "%s", rows[i].id);
      else
        snprintf (id, sizeof id, "%.12s", rows[i].id + (strncmp (rows[i].id, "sha256:", 7) == 0 ? 7 : 0));
      if (o->quiet)
        {
          puts (id);
          continue;
        }
      if (o->no_trunc)
        snprintf (created, sizeof created, "%s", rows[i].created && *rows[i].created ? rows[i].created : "N/A");
      else
        human_created (rows[i].created, created, sizeof created);
      human_bytes (rows[i].size, size, sizeof size);
      printf ("%-14s %-20s %-45s %-9s %s\n", id, created, by, size, rows[i].comment ? rows[i].comment : "");
    }
}

/* The config's history entries matched to the layers bottom-up (an entry with empty_layer has
 * none), then the layers no entry speaks of; printed newest first. */
static void
history_of_record (const struct image_record *r, json_t *config, const struct hist_opts *o)
{
  json_t *hist = json_object_get (config, "history"), *h;
  size_t nh = json_array_size (hist), li = 0, n = 0, i;
  struct hist_row *rows = xzalloc ((nh + r->nlayers + 1) * sizeof *rows);
  json_array_foreach (hist, i, h)
    {
      struct hist_row *row = &rows[n++];
      row->id = "<missing>";
      row->created = json_string_value (json_object_get (h, "created"));
      row->created_by = json_string_value (json_object_get (h, "created_by"));
      row->comment = json_string_value (json_object_get (h, "comment"));
      row->empty_layer = json_is_true (json_object_get (h, "empty_layer"));
      if (!row->empty_layer && li < r->nlayers)
        row->size = r->layers[li++].size;
    }
  for (; li < r->nlayers; li++)
    {
      struct hist_row *row = &rows[n++];
      row->id = "<missing>";
      row->created = json_string_value (json_object_get (config, "created"));
      row->size = r->layers[li].size;
    }
  /* newest first: the top row is the image itself */
  for (i = 0; i < n / 2; i++)
    {
      struct hist_row t = rows[i];
      rows[i] = rows[n - 1 - i];
      rows[n - 1 - i] = t;
    }
  if (n)
    rows[0].id = r->id;
  print_rows (rows, n, o);
  free (rows);
}

/* The embedded busybox: one layer, the rootfs cella built from the host's busybox-static. */
static void
history_of_embedded (const char *rootfs, const struct hist_opts *o)
{
  cleanup_free char *bin = xasprintf ("%s/bin/busybox", rootfs);
  struct stat st;
  char created[64] = "";
  struct hist_row row = { .id = "<missing>",
                          .created = created,
                          .created_by = "cella: the embedded busybox image (the host's busybox-static)" };
  if (stat (rootfs, &st) == 0)
    {
      struct tm tm;
      time_t t = st.st_mtime;
      gmtime_r (&t, &tm);
      strftime (created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
  if (stat (bin, &st) == 0)
    row.size = st.st_size;
  print_rows (&row, 1, o);
}

int
cmd_history (int argc, char **argv)
{
  struct hist_opts o = { 0 };
  cella_error_t err = NULL;
  struct image_record *r = NULL;
  cleanup_free char *rootfs = NULL;
  int status, rc,
      first
      = cli_parse_command (hist_table, &o, argc, argv, "cella image history [--no-trunc] [--format table|json] IMAGE",
                           "Show an image's layers, newest first: when and by what each was made, its size "
                           "(compressed) and comment.",
                           1, "an IMAGE is required", &status);
  if (first <= 0)
    goto out;
  if (argc - first > 1)
    cella_error (&err, 0, "history: one image at a time (usage: cella image history IMAGE)");
  else if (o.format && strcmp (o.format, "table") != 0 && strcmp (o.format, "json") != 0)
    cella_error (&err, 0, "history: unknown --format `%s` (table or json)", o.format);
  else if ((rc = image_lookup (argv[first], &r, &err)) == 0)
    {
      cleanup_free char *path = store_blob_path (r->id);
      json_error_t je;
      json_t *config = json_load_file (path, 0, &je);
      if (config == NULL)
        cella_error (&err, 0, "image `%s`: its config %s: %s", argv[first], r->id, je.text);
      else
        history_of_record (r, config, &o);
      json_decref (config);
    }
  else if (rc > 0 && default_image_ensure (argv[first], &rootfs, &err) == 0)
    history_of_embedded (rootfs, &o);
  else if (rc > 0 && err == NULL)
    cella_error (&err, 0, "image `%s`: not found (see `cella images`)", argv[first]);
  status = err ? cella_error_print (&err) : 0;
out:
  image_record_free (r);
  free (o.format);
  return status;
}
