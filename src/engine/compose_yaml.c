/* cella compose: a compose file's YAML as a JSON tree (libyaml's document API; anchors and
 * aliases resolved by libyaml, `<<` merge keys here), with ${VAR} interpolation applied to every
 * scalar value as it is read (docs/compose.md "Interpolation"). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "compose.h"

/* ---- interpolation ---- */

struct sbuf {
  char *s;
  size_t len, cap;
};

static void
sb_add (struct sbuf *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      b->cap = (b->len + n + 1) * 2;
      b->s = xrealloc (b->s, b->cap);
    }
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static const char *
env_get (json_t *env, const char *name)
{
  return json_string_value (json_object_get (env, name));
}

/* The end of a ${...} that starts at s (just after "${"): the matching '}', nested ${} skipped. */
static const char *
brace_end (const char *s)
{
  int depth = 1;
  for (; *s; s++)
    {
      if (s[0] == '$' && s[1] == '{')
        depth++, s++;
      else if (*s == '}' && --depth == 0)
        return s;
    }
  return NULL;
}

static int interpolate_into (const char *in, size_t n, json_t *env, struct sbuf *b, cella_error_t *err);

/* One ${...} body (name, then an optional :-, -, :?, ?, :+ or + and its word). */
static int
expand_braced (const char *body, size_t n, json_t *env, struct sbuf *b, cella_error_t *err)
{
  size_t i = 0;
  cleanup_free char *name = NULL;
  const char *val;
  bool colon = false;
  char op = 0;
  while (i < n && (isalnum ((unsigned char) body[i]) || body[i] == '_'))
    i++;
  if (i == 0 || isdigit ((unsigned char) body[0]))
    return cella_error (err, 0, "invalid interpolation `${%.*s}`", (int) n, body);
  name = strndup (body, i);
  if (i < n && body[i] == ':')
    colon = true, i++;
  if (i < n && (body[i] == '-' || body[i] == '?' || body[i] == '+'))
    op = body[i++];
  else if (colon || i < n)
    return cella_error (err, 0, "invalid interpolation `${%.*s}`", (int) n, body);
  val = env_get (env, name);
  bool unset = val == NULL || (colon && *val == '\0');
  switch (op)
    {
    case '-':
      if (unset)
        return interpolate_into (body + i, n - i, env, b, err);
      break;
    case '?':
      if (unset)
        {
          struct sbuf m = { 0 };
          if (interpolate_into (body + i, n - i, env, &m, err) < 0)
            return -1;
          cella_error (err, 0, "required variable %s is missing a value%s%s", name, m.len ? ": " : "",
                       m.len ? m.s : "");
          free (m.s);
          return -1;
        }
      break;
    case '+':
      if (!unset)
        return interpolate_into (body + i, n - i, env, b, err);
      return 0;
    default:
      break;
    }
  if (val)
    sb_add (b, val, strlen (val));
  return 0;
}

static int
interpolate_into (const char *in, size_t n, json_t *env, struct sbuf *b, cella_error_t *err)
{
  size_t i = 0;
  sb_add (b, "", 0);
  while (i < n)
    {
      const char *dollar = memchr (in + i, '$', n - i);
      if (dollar == NULL)
        {
          sb_add (b, in + i, n - i);
          break;
        }
      sb_add (b, in + i, (size_t) (dollar - (in + i)));
      i = (size_t) (dollar - in);
      if (i + 1 < n && in[i + 1] == '$')
        {
          sb_add (b, "$", 1);
          i += 2;
        }
      else if (i + 1 < n && in[i + 1] == '{')
        {
          cleanup_free char *rest = strndup (in + i + 2, n - i - 2);
          const char *e = brace_end (rest);
          if (e == NULL)
            return cella_error (err, 0, "invalid interpolation `%.*s`: no closing }", (int) (n - i), in + i);
          if (expand_braced (rest, (size_t) (e - rest), env, b, err) < 0)
            return -1;
          i += 2 + (size_t) (e - rest) + 1;
        }
      else if (i + 1 < n && (isalpha ((unsigned char) in[i + 1]) || in[i + 1] == '_'))
        {
          size_t j = i + 1;
          while (j < n && (isalnum ((unsigned char) in[j]) || in[j] == '_'))
            j++;
          cleanup_free char *name = strndup (in + i + 1, j - i - 1);
          const char *val = env_get (env, name);
          if (val)
            sb_add (b, val, strlen (val));
          i = j;
        }
      else
        {
          sb_add (b, "$", 1);
          i++;
        }
    }
  return 0;
}

int
compose_interpolate (const char *in, json_t *env, char **out, cella_error_t *err)
{
  struct sbuf b = { 0 };
  if (interpolate_into (in, strlen (in), env, &b, err) < 0)
    {
      free (b.s);
      return -1;
    }
  *out = b.s ? b.s : xstrdup ("");
  return 0;
}

/* ---- YAML ---- */

/* A plain scalar's YAML 1.2 core-schema type: null, bool, integer, float, else a string. */
static json_t *
plain_scalar (const char *s)
{
  static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
  static const char *const trues[] = { "true", "True", "TRUE" };
  static const char *const falses[] = { "false", "False", "FALSE" };
  char *end;
  for (size_t i = 0; i < 5; i++)
    if (strcmp (s, nulls[i]) == 0)
      return json_null ();
  for (size_t i = 0; i < 3; i++)
    {
      if (strcmp (s, trues[i]) == 0)
        return json_true ();
      if (strcmp (s, falses[i]) == 0)
        return json_false ();
    }
  if (*s && strspn (s + (*s == '-' || *s == '+'), "0123456789") == strlen (s + (*s == '-' || *s == '+'))
      && s[*s == '-' || *s == '+'] != '\0')
    {
      errno = 0;
      long long v = strtoll (s, &end, 10);
      if (errno == 0 && *end == '\0')
        return json_integer (v);
    }
  if (*s && strchr ("+-.0123456789", *s) && strpbrk (s, "0123456789") && strchr (s, '.'))
    {
      double d = strtod (s, &end);
      if (*end == '\0')
        return json_real (d);
    }
  return json_string (s);
}

struct yconv {
  yaml_document_t *doc;
  json_t *env;
  const char *file;
  int depth;
};

static int node_to_json (struct yconv *c, yaml_node_t *n, json_t **out, cella_error_t *err);

static int
merge_into (struct yconv *c, json_t *obj, yaml_node_t *v, cella_error_t *err)
{
  json_t *src = NULL;
  if (node_to_json (c, v, &src, err) < 0)
    return -1;
  if (json_is_array (src))
    {
      size_t i;
      json_t *e;
      json_array_foreach (src, i, e)
        if (json_is_object (e))
          json_object_update_missing (obj, e);
    }
  else if (json_is_object (src))
    json_object_update_missing (obj, src);
  else
    {
      json_decref (src);
      return cella_error (err, 0, "%s: line %lu: `<<` merges a mapping", c->file,
                          (unsigned long) v->start_mark.line + 1);
    }
  json_decref (src);
  return 0;
}

static int
mapping_to_json (struct yconv *c, yaml_node_t *n, json_t **out, cella_error_t *err)
{
  json_t *obj = json_object ();
  yaml_node_pair_t *merge = NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
    {
      yaml_node_t *k = yaml_document_get_node (c->doc, p->key), *v = yaml_document_get_node (c->doc, p->value);
      json_t *jv = NULL;
      if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
        {
          json_decref (obj);
          return cella_error (err, 0, "%s: line %lu: a mapping key must be a scalar", c->file,
                              (unsigned long) (k ? k->start_mark.line + 1 : 0));
        }
      const char *key = (const char *) k->data.scalar.value;
      if (strcmp (key, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        {
          merge = p;
          continue;
        }
      if (json_object_get (obj, key))
        {
          json_decref (obj);
          return cella_error (err, 0, "%s: line %lu: key `%s` appears twice", c->file,
                              (unsigned long) k->start_mark.line + 1, key);
        }
      if (node_to_json (c, v, &jv, err) < 0)
        {
          json_decref (obj);
          return -1;
        }
      json_object_set_new (obj, key, jv);
    }
  if (merge && merge_into (c, obj, yaml_document_get_node (c->doc, merge->value), err) < 0)
    {
      json_decref (obj);
      return -1;
    }
  *out = obj;
  return 0;
}

static int
node_to_json (struct yconv *c, yaml_node_t *n, json_t **out, cella_error_t *err)
{
  if (n == NULL)
    {
      *out = json_null ();
      return 0;
    }
  if (++c->depth > 64)
    return cella_error (err, 0, "%s: nested too deeply", c->file);
  switch (n->type)
    {
    case YAML_SCALAR_NODE:
      {
        cleanup_free char *s = NULL;
        if (compose_interpolate ((const char *) n->data.scalar.value, c->env, &s, err) < 0)
          return cella_error_wrap (err, "%s: line %lu", c->file, (unsigned long) n->start_mark.line + 1);
        *out = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar (s) : json_string (s);
        if (*out == NULL) /* not UTF-8 */
          return cella_error (err, 0, "%s: line %lu: not UTF-8", c->file, (unsigned long) n->start_mark.line + 1);
        break;
      }
    case YAML_SEQUENCE_NODE:
      {
        json_t *a = json_array ();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
          {
            json_t *e = NULL;
            if (node_to_json (c, yaml_document_get_node (c->doc, *it), &e, err) < 0)
              {
                json_decref (a);
                return -1;
              }
            json_array_append_new (a, e);
          }
        *out = a;
        break;
      }
    case YAML_MAPPING_NODE:
      if (mapping_to_json (c, n, out, err) < 0)
        return -1;
      break;
    case YAML_NO_NODE:
    default:
      *out = json_null ();
      break;
    }
  c->depth--;
  return 0;
}

int
compose_yaml_parse (const char *file, const char *text, size_t len, json_t *env, json_t **out, cella_error_t *err)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  int ret;
  if (!yaml_parser_initialize (&parser))
    return cella_error (err, ENOMEM, "%s: YAML parser", file);
  yaml_parser_set_input_string (&parser, (const unsigned char *) text, len);
  if (!yaml_parser_load (&parser, &doc))
    {
      ret = cella_error (err, 0, "%s: line %lu: %s", file, (unsigned long) parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "invalid YAML");
      yaml_parser_delete (&parser);
      return ret;
    }
  struct yconv c = { &doc, env, file, 0 };
  yaml_node_t *root = yaml_document_get_root_node (&doc);
  if (root == NULL)
    *out = json_object ();
  ret = root ? node_to_json (&c, root, out, err) : 0;
  yaml_document_delete (&doc);
  yaml_parser_delete (&parser);
  if (ret == 0 && !json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      return cella_error (err, 0, "%s: the top level is not a mapping", file);
    }
  return ret;
}
