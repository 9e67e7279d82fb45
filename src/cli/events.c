/* cella events: the event log (src/engine/events.c), replayed from --since and followed. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../engine/events.h"
#include "../engine/logfile.h"
#include "commands.h"
#include "../util/options.h"

struct ev_opts {
  char *since, *until, *format;
  char **filters;
};

#define O(f) offsetof (struct ev_opts, f)
static const struct cli_option ev_table[] = {
  { "since", 0, OPT_STRING, O (since), "TIME",
    "Replay the events from TIME (RFC3339, a date, unix seconds, or a duration back from now: 10m)" },
  { "until", 0, OPT_STRING, O (until), "TIME", "Stop at TIME (the same forms); without it, follow until interrupted" },
  { "filter", 'f', OPT_LIST, O (filters), "K=V",
    "type=container|image|volume|network, container=NAME|ID, image=, volume=, network=, event=ACTION, "
    "label=KEY[=VALUE]; values of one key: any of them, different keys: all" },
  { "format", 0, OPT_STRING, O (format), "FORMAT", "json: one JSON object per line (docker's fields)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static const char *const keys[] = { "type", "container", "image", "volume", "network", "event", "label" };
#define NKEYS (sizeof keys / sizeof keys[0])

struct ev_ctx {
  char **filters;
  bool json;
};

static const char *
attr (json_t *ev, const char *k)
{
  return json_string_value (json_object_get (json_object_get (json_object_get (ev, "Actor"), "Attributes"), k));
}

static bool
one_matches (json_t *ev, const char *key, const char *val)
{
  const char *type = json_string_value (json_object_get (ev, "Type"));
  const char *action = json_string_value (json_object_get (ev, "Action"));
  const char *id = json_string_value (json_object_get (json_object_get (ev, "Actor"), "ID"));
  const char *name = attr (ev, "name");
  type = type ? type : "";
  id = id ? id : "";
  if (strcmp (key, "type") == 0)
    return strcmp (type, val) == 0;
  if (strcmp (key, "event") == 0)
    {
      /* "health_status" matches "health_status: healthy" */
      size_t n = strlen (val);
      return action && strncmp (action, val, n) == 0 && (action[n] == '\0' || action[n] == ':');
    }
  if (strcmp (key, "label") == 0)
    {
      const char *eq = strchr (val, '=');
      cleanup_free char *k = eq ? strndup (val, (size_t) (eq - val)) : xstrdup (val);
      const char *v = attr (ev, k);
      return v && (eq == NULL || strcmp (v, eq + 1) == 0);
    }
  if (strcmp (key, "image") == 0)
    {
      const char *img = attr (ev, "image");
      if (strcmp (type, "image") == 0)
        return strcmp (id, val) == 0 || (name && strcmp (name, val) == 0);
      return img && strcmp (img, val) == 0;
    }
  /* container, volume, network: that type, by name or id (of a container, also its first 12+ digits) */
  return strcmp (type, key) == 0
         && ((name && strcmp (name, val) == 0) || strcmp (id, val) == 0
             || (strcmp (key, "container") == 0 && strlen (val) >= 12 && strncmp (id, val, strlen (val)) == 0));
}

static bool
keep (json_t *ev, void *ud)
{
  const struct ev_ctx *c = ud;
  for (size_t k = 0; k < NKEYS; k++)
    {
      bool any = false, hit = false;
      size_t kl = strlen (keys[k]);
      for (size_t i = 0; c->filters && c->filters[i]; i++)
        if (strncmp (c->filters[i], keys[k], kl) == 0 && c->filters[i][kl] == '=')
          {
            any = true;
            hit = hit || one_matches (ev, keys[k], c->filters[i] + kl + 1);
          }
      if (any && !hit)
        return false;
    }
  return true;
}

static void
print (json_t *ev, void *ud)
{
  const struct ev_ctx *c = ud;
  if (c->json)
    {
      char *t = json_dumps (ev, JSON_COMPACT);
      if (t)
        puts (t);
      free (t);
    }
  else
    {
      /* docker's line: TIME TYPE ACTION ID (k=v, ...) */
      char when[48];
      json_t *at = json_object_get (json_object_get (ev, "Actor"), "Attributes");
      const char *k;
      json_t *v;
      bool first = true;
      log_format_time ((long long) json_integer_value (json_object_get (ev, "timeNano")), when, sizeof when);
      printf ("%s %s %s %s", when, json_string_value (json_object_get (ev, "Type")),
              json_string_value (json_object_get (ev, "Action")),
              json_string_value (json_object_get (json_object_get (ev, "Actor"), "ID")));
      json_object_foreach (at, k, v)
        {
          printf ("%s%s=%s", first ? " (" : ", ", k, json_string_value (v) ? json_string_value (v) : "");
          first = false;
        }
      puts (first ? "" : ")");
    }
  fflush (stdout);
}

static int
check_filters (char **filters, cella_error_t *err)
{
  static const char *const types[] = { "container", "image", "volume", "network" };
  for (size_t i = 0; filters && filters[i]; i++)
    {
      const char *eq = strchr (filters[i], '=');
      bool ok = false;
      for (size_t k = 0; eq && k < NKEYS && !ok; k++)
        ok = strlen (keys[k]) == (size_t) (eq - filters[i]) && strncmp (filters[i], keys[k], strlen (keys[k])) == 0;
      if (ok && strncmp (filters[i], "type=", 5) == 0)
        ok = str_index (types, 4, eq + 1) >= 0;
      if (!ok || eq[1] == '\0')
        return cella_error (err, 0,
                            "events: filter `%s`: expected type=container|image|volume|network, container=, image=, "
                            "volume=, network=, event= or label= with a value",
                            filters[i]);
    }
  return 0;
}

int
cmd_events (int argc, char **argv)
{
  struct ev_opts o = { 0 };
  struct ev_ctx c = { 0 };
  cella_error_t err = NULL;
  long long since = 0, until = 0, now = now_ns ();
  int status,
      first = cli_parse_command (
          ev_table, &o, argc, argv, "cella events [--since TIME] [--until TIME] [--filter K=V]... [--format json]",
          "Show what happens to containers, images, volumes and networks: the events from --since, then "
          "the new ones as they come, until --until or an interrupt.",
          0, NULL, &status);
  if (first <= 0)
    goto out;
  status = 0;
  if (first < argc)
    cella_error (&err, 0, "events: unexpected argument `%s`", argv[first]);
  else if (o.format && strcmp (o.format, "json") != 0)
    cella_error (&err, 0, "events: --format `%s`: only json", o.format);
  else if (check_filters (o.filters, &err) == 0 && (o.since == NULL || log_parse_time (o.since, now, &since, &err) == 0)
           && (o.until == NULL || log_parse_time (o.until, now, &until, &err) == 0))
    {
      c.filters = o.filters;
      c.json = o.format != NULL;
      if (since <= 0 && (o.since || o.until))
        since = 1; /* from the first event kept */
      events_read (since, until, until == 0 || until > now, keep, print, &c, &err);
    }
  if (err)
    status = cella_error_print (&err);
out:
  free (o.since);
  free (o.until);
  free (o.format);
  strv_free (o.filters);
  return status;
}
