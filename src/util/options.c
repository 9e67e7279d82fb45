#define _GNU_SOURCE
#include "options.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

static int
set_value (const struct cli_option *o, void *opts, const char *val)
{
  char *base = opts;
  switch (o->type)
    {
    case OPT_FLAG:
      *(bool *) (base + o->offset) = true;
      return 0;
    case OPT_STRING:
      free (*(char **) (base + o->offset));
      *(char **) (base + o->offset) = xstrdup (val);
      return 0;
    case OPT_LIST:
      strv_push ((char ***) (base + o->offset), val);
      return 0;
    default:
      return -1;
    }
}

static const struct cli_option *
find_long (const struct cli_option *t, const char *name, size_t len)
{
  for (; t->long_name; t++)
    if (strlen (t->long_name) == len && strncmp (t->long_name, name, len) == 0)
      return t;
  return NULL;
}

static const struct cli_option *
find_short (const struct cli_option *t, char c)
{
  for (; t->long_name; t++)
    if (t->short_name == c)
      return t;
  return NULL;
}

int
cli_parse (const struct cli_option *table, void *opts, int argc, char **argv, int *help, cella_error_t *err)
{
  int i;
  *help = 0;
  for (i = 0; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--") == 0)
        return i + 1;
      if (a[0] != '-' || a[1] == '\0')
        return i;
      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          *help = 1;
          return i;
        }
      if (a[1] == '-')
        {
          const char *name = a + 2, *eq = strchr (name, '=');
          const struct cli_option *o = find_long (table, name, eq ? (size_t) (eq - name) : strlen (name));
          if (o == NULL)
            return cella_error (err, 0, "unknown option `%s` (see --help)", a);
          if (o->type == OPT_FLAG)
            {
              if (eq && strcmp (eq + 1, "true") != 0)
                {
                  if (strcmp (eq + 1, "false") == 0)
                    continue;
                  return cella_error (err, 0, "option `--%s` takes no value", o->long_name);
                }
              set_value (o, opts, NULL);
            }
          else if (eq)
            set_value (o, opts, eq + 1);
          else if (i + 1 < argc)
            set_value (o, opts, argv[++i]);
          else
            return cella_error (err, 0, "option `--%s` needs a value (%s)", o->long_name, o->arg);
          continue;
        }
      /* short options, possibly grouped: -it, -eK=V, -e K=V */
      for (const char *c = a + 1; *c; c++)
        {
          const struct cli_option *o = find_short (table, *c);
          if (o == NULL)
            return cella_error (err, 0, "unknown option `-%c` (see --help)", *c);
          if (o->type == OPT_FLAG)
            {
              set_value (o, opts, NULL);
              continue;
            }
          if (c[1])
            set_value (o, opts, c + 1);
          else if (i + 1 < argc)
            set_value (o, opts, argv[++i]);
          else
            return cella_error (err, 0, "option `-%c` needs a value (%s)", *c, o->arg);
          break;
        }
    }
  return i;
}

void
cli_print_help (const char *usage, const char *summary, const struct cli_option *t)
{
  printf ("Usage: %s\n\n%s\n\nOptions:\n", usage, summary);
  for (; t->long_name; t++)
    {
      char left[64];
      if (t->short_name)
        snprintf (left, sizeof left, "-%c, --%s%s%s", t->short_name, t->long_name, t->arg ? " " : "",
                  t->arg ? t->arg : "");
      else
        snprintf (left, sizeof left, "    --%s%s%s", t->long_name, t->arg ? " " : "", t->arg ? t->arg : "");
      printf ("  %-30s %s\n", left, t->help);
    }
  printf ("  %-30s %s\n", "-h, --help", "Show this help");
}

int
cli_parse_command (const struct cli_option *t, void *opts, int argc, char **argv, const char *usage,
                   const char *summary, int min_args, const char *what, int *status)
{
  cella_error_t err = NULL;
  int help, first = cli_parse (t, opts, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    {
      *status = cella_error_print (&err);
      return -1;
    }
  if (help)
    {
      cli_print_help (usage, summary, t);
      *status = 0;
      return 0;
    }
  first += 1;
  if (argc - first < min_args)
    {
      cella_error (&err, 0, "%s: %s (usage: %s)", argv[0], min_args > 1 ? "more arguments are required" : what, usage);
      *status = cella_error_print (&err);
      return -1;
    }
  *status = 0;
  return first;
}

void
cli_print_template (const char *tpl, json_t *o)
{
  const char *s = tpl;
  while (*s)
    {
      const char *open = strstr (s, "{{"), *close;
      if (open == NULL || (close = strstr (open, "}}")) == NULL)
        {
          fputs (s, stdout);
          break;
        }
      fwrite (s, 1, (size_t) (open - s), stdout);
      {
        cleanup_free char *path = strndup (open + 2, (size_t) (close - open - 2));
        char *p = path, *save = NULL;
        json_t *v = o;
        while (*p == ' ')
          p++;
        for (char *k = strtok_r (p, ". ", &save); k && v; k = strtok_r (NULL, ". ", &save))
          v = json_object_get (v, k);
        if (json_is_string (v))
          fputs (json_string_value (v), stdout);
        else if (v)
          {
            char *t = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
            fputs (t, stdout);
            free (t);
          }
        else
          fputs ("<no value>", stdout);
      }
      s = close + 2;
    }
  putchar ('\n');
}
