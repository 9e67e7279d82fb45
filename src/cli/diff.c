/* cella diff CONTAINER: the files a container added (A), changed (C) and deleted (D), read from its
 * overlay upper dir (src/image/changes.c), like `docker diff`. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/container.h"
#include "../image/changes.h"
#include "commands.h"
#include "../util/options.h"

struct diff_opts {
  char *format;
};

#define O(f) offsetof (struct diff_opts, f)
static const struct cli_option diff_table[] = {
  { "format", 0, OPT_STRING, O (format), "table|json", "Output format (json: an array of {\"Kind\", \"Path\"})" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

int
ctr_overlay_lowers (const char *ref, const struct plan *p, char ***lowers, cella_error_t *err)
{
  char **v = NULL;
  if (!p->root_overlay || p->root_upper == NULL)
    return cella_error (err, 0,
                        "container `%s`: its root is the directory `%s` itself, not an overlay over an image: cella "
                        "keeps no record of its changes",
                        ref, p->rootfs ? p->rootfs : "?");
  for (size_t i = 0; p->root_layers && p->root_layers[i]; i++)
    strv_push (&v, p->root_layers[i]);
  if (p->rootfs)
    strv_push (&v, p->rootfs);
  if (v == NULL)
    v = xzalloc (sizeof *v);
  *lowers = v;
  return 0;
}

int
cmd_diff (int argc, char **argv)
{
  struct diff_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  cleanup_strv char **lowers = NULL;
  struct plan *p = NULL;
  struct fs_change *v = NULL;
  size_t n = 0;
  int status,
      first = cli_parse_command (diff_table, &o, argc, argv, "cella diff [--format table|json] CONTAINER",
                                 "List the files a container added (A), changed (C) and deleted (D) in its root, "
                                 "against its image.",
                                 1, "a CONTAINER is required", &status);
  if (first <= 0)
    goto out;
  if (argc - first > 1)
    cella_error (&err, 0, "diff: one container at a time (usage: cella diff CONTAINER)");
  else if (o.format && strcmp (o.format, "table") != 0 && strcmp (o.format, "json") != 0)
    cella_error (&err, 0, "diff: unknown --format `%s` (table or json)", o.format);
  else if (ctr_lookup (argv[first], &id, &err) == 0 && ctr_plan_load (id, &p, &err) == 0
           && ctr_overlay_lowers (argv[first], p, &lowers, &err) == 0)
    {
      cleanup_strv char **targets = NULL;
      for (size_t i = 0; i < p->nops; i++)
        if (p->ops[i].target)
          strv_push (&targets, p->ops[i].target);
      overlay_changes (p->root_upper, lowers, targets, &v, &n, &err);
    }
  if (err)
    {
      status = cella_error_print (&err);
      goto out;
    }
  if (o.format && strcmp (o.format, "json") == 0)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < n; i++)
        json_array_append_new (a, json_pack ("{s:s#, s:s}", "Kind", &v[i].kind, (size_t) 1, "Path", v[i].path));
      json_dumpf (a, stdout, JSON_INDENT (2));
      putchar ('\n');
      json_decref (a);
    }
  else
    for (size_t i = 0; i < n; i++)
      printf ("%c %s\n", v[i].kind, v[i].path);
  status = 0;
out:
  fs_changes_free (v, n);
  plan_free (p);
  free (o.format);
  return status;
}
