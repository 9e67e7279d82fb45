/* cella compose: load, merge and normalize compose files into the project model (compose.h).
 * Each service key is one row of svc_keys: how its value is normalized, or that cella does not
 * support it (an error naming the key); a key in no row is warned about and ignored. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compose.h"

extern char **environ;

/* ---- small readers ---- */

int
compose_env_file_read (const char *path, json_t *obj, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len;
  char *save = NULL;
  if (read_file (path, &text, &len, err) < 0)
    return -1;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *eq, *v;
      size_t vl;
      line += strspn (line, " \t");
      if (*line == '#' || *line == '\0' || *line == '\r')
        continue;
      if (has_prefix (line, "export "))
        line += 7;
      eq = strchr (line, '=');
      if (eq == NULL)
        continue;
      *eq = '\0';
      for (char *e = eq - 1; e >= line && (*e == ' ' || *e == '\t'); e--)
        *e = '\0';
      v = eq + 1;
      vl = strlen (v);
      while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
      if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0])
        {
          v[vl - 1] = '\0';
          v++;
        }
      json_object_set_new (obj, line, json_string (v));
    }
  return 0;
}

int
compose_shell_split (const char *s, json_t **out, cella_error_t *err)
{
  json_t *a = json_array ();
  cleanup_free char *w = xmalloc (strlen (s) + 1);
  size_t n = 0;
  bool in_word = false;
  char q = 0;
  for (const char *c = s;; c++)
    {
      if (*c == '\0')
        {
          if (q)
            {
              json_decref (a);
              return cella_error (err, 0, "unterminated quote in `%s`", s);
            }
          break;
        }
      if (q)
        {
          if (*c == q)
            q = 0;
          else if (q == '"' && *c == '\\' && c[1] && strchr ("\"\\$`", c[1]))
            w[n++] = *++c;
          else
            w[n++] = *c;
          continue;
        }
      if (*c == '\'' || *c == '"')
        q = *c, in_word = true;
      else if (*c == '\\' && c[1])
        w[n++] = *++c, in_word = true;
      else if (isspace ((unsigned char) *c))
        {
          if (in_word)
            {
              json_array_append_new (a, json_stringn (w, n));
              n = 0;
              in_word = false;
            }
        }
      else
        w[n++] = *c, in_word = true;
    }
  if (in_word)
    json_array_append_new (a, json_stringn (w, n));
  *out = a;
  return 0;
}

/* A scalar as a string (numbers and booleans as YAML writes them); NULL for others. */
static char *
scalar_str (json_t *v)
{
  if (json_is_string (v))
    return xstrdup (json_string_value (v));
  if (json_is_integer (v))
    return xasprintf ("%lld", (long long) json_integer_value (v));
  if (json_is_real (v))
    return xasprintf ("%g", json_real_value (v));
  if (json_is_boolean (v))
    return xstrdup (json_is_true (v) ? "true" : "false");
  return NULL;
}

/* A JSON string of s, which it frees. */
static json_t *
json_take (char *s)
{
  json_t *j = json_string (s);
  free (s);
  return j;
}

/* ---- service keys ---- */

struct norm_ctx {
  const char *svc, *key, *dir;
  struct compose_project *p;
};

typedef int (*norm_fn) (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err);

static int
bad_type (struct norm_ctx *c, const char *want, cella_error_t *err)
{
  return cella_error (err, 0, "service `%s`: `%s` must be %s", c->svc, c->key, want);
}

static int
n_string (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  cleanup_free char *s = scalar_str (v);
  if (s == NULL || json_is_boolean (v))
    return bad_type (c, "a string", err);
  *out = json_string (s);
  return 0;
}

static int
n_bool (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  if (!json_is_boolean (v))
    return bad_type (c, "true or false", err);
  *out = json_incref (v);
  return 0;
}

static int
n_strlist (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  size_t i;
  json_t *e, *a = json_array ();
  if (json_is_string (v))
    {
      json_array_append (a, v);
      *out = a;
      return 0;
    }
  if (!json_is_array (v))
    {
      json_decref (a);
      return bad_type (c, "a list of strings", err);
    }
  json_array_foreach (v, i, e)
    {
      char *s = scalar_str (e);
      if (s == NULL)
        {
          json_decref (a);
          return bad_type (c, "a list of strings", err);
        }
      json_array_append_new (a, json_string (s));
      free (s);
    }
  *out = a;
  return 0;
}

/* command/entrypoint: a string (split like a shell) or a list; null stays null (use the image's). */
static int
n_cmd (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  if (json_is_null (v))
    {
      *out = json_null ();
      return 0;
    }
  if (json_is_string (v))
    return compose_shell_split (json_string_value (v), out, err) < 0
               ? cella_error_wrap (err, "service `%s`: `%s`", c->svc, c->key)
               : 0;
  return n_strlist (c, v, out, err);
}

/* environment, labels: a mapping or a list of KEY=VALUE (KEY alone: null, taken from the host). */
static int
n_kvmap (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *m = json_object (), *e;
  size_t i;
  const char *k;
  if (json_is_object (v))
    json_object_foreach (v, k, e)
      {
        char *s = json_is_null (e) ? NULL : scalar_str (e);
        if (s == NULL && !json_is_null (e))
          {
            json_decref (m);
            return bad_type (c, "a mapping of strings", err);
          }
        json_object_set_new (m, k, s ? json_string (s) : json_null ());
        free (s);
      }
  else if (json_is_array (v))
    json_array_foreach (v, i, e)
      {
        const char *s = json_string_value (e), *eq;
        if (s == NULL)
          {
            json_decref (m);
            return bad_type (c, "a list of KEY=VALUE", err);
          }
        eq = strchr (s, '=');
        if (eq)
          {
            cleanup_free char *key = strndup (s, (size_t) (eq - s));
            json_object_set_new (m, key, json_string (eq + 1));
          }
        else
          json_object_set_new (m, s, json_null ());
      }
  else
    {
      json_decref (m);
      return bad_type (c, "a mapping or a list of KEY=VALUE", err);
    }
  *out = m;
  return 0;
}

/* ports: "[IP:][HOST:]CTR[/PROTO]" or {target, published, host_ip, protocol} → that long form. */
static int
n_ports (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *a = json_array (), *e;
  size_t i;
  if (!json_is_array (v))
    return bad_type (c, "a list", err);
  json_array_foreach (v, i, e)
    {
      json_t *o = json_object ();
      if (json_is_object (e))
        {
          json_t *t = json_object_get (e, "target");
          cleanup_free char *pub = scalar_str (json_object_get (e, "published"));
          const char *ip = json_string_value (json_object_get (e, "host_ip"));
          const char *proto = json_string_value (json_object_get (e, "protocol"));
          if (!json_is_integer (t))
            {
              json_decref (o);
              json_decref (a);
              return bad_type (c, "a list whose long entries have an integer `target`", err);
            }
          json_object_set (o, "target", t);
          if (pub)
            json_object_set_new (o, "published", json_string (pub));
          if (ip)
            json_object_set_new (o, "host_ip", json_string (ip));
          json_object_set_new (o, "protocol", json_string (proto ? proto : "tcp"));
        }
      else
        {
          cleanup_free char *s = scalar_str (e);
          char *slash, *parts[3];
          size_t np = 0;
          if (s == NULL)
            {
              json_decref (o);
              json_decref (a);
              return bad_type (c, "a list of port specs", err);
            }
          slash = strchr (s, '/');
          if (slash)
            *slash++ = '\0';
          /* [IP:]HOST:CTR with IP maybe containing ':' (IPv6 in brackets): split from the right */
          for (char *rest = s; rest && np < 3;)
            {
              char *colon = np < 2 ? strrchr (rest, ':') : NULL;
              if (colon == NULL)
                {
                  parts[np++] = rest;
                  break;
                }
              *colon = '\0';
              parts[np++] = colon + 1;
            }
          long long tgt = parse_uint (parts[0], 65535);
          if (tgt <= 0)
            {
              json_decref (o);
              json_decref (a);
              return cella_error (err, 0, "service `%s`: invalid port `%s`", c->svc, json_string_value (e) ?: "?");
            }
          json_object_set_new (o, "target", json_integer (tgt));
          if (np > 1 && *parts[1])
            json_object_set_new (o, "published", json_string (parts[1]));
          if (np > 2 && *parts[2])
            json_object_set_new (o, "host_ip", json_string (parts[2]));
          json_object_set_new (o, "protocol", json_string (slash ? slash : "tcp"));
        }
      json_array_append_new (a, o);
    }
  *out = a;
  return 0;
}

static bool
is_path_source (const char *s)
{
  return s[0] == '/' || s[0] == '.' || s[0] == '~';
}

static char *
resolve_path (struct norm_ctx *c, const char *s)
{
  if (s[0] == '/')
    return path_clean (s);
  if (s[0] == '~' && (s[1] == '/' || s[1] == '\0') && getenv ("HOME"))
    {
      cleanup_free char *j = xasprintf ("%s%s", getenv ("HOME"), s + 1);
      return path_clean (j);
    }
  cleanup_free char *j = xasprintf ("%s/%s", c->dir, s);
  return path_clean (j);
}

/* volumes: "SRC:DST[:ro|rw]", "DST" (anonymous) or the long form → {type, source, target, read_only}. */
static int
n_volume_one (struct norm_ctx *c, json_t *e, json_t **out, cella_error_t *err)
{
  json_t *o = json_object ();
  const char *type, *src, *tgt;
  if (json_is_string (e))
    {
      cleanup_free char *s = xstrdup (json_string_value (e));
      char *f[3] = { s, NULL, NULL };
      for (int k = 1; k < 3 && f[k - 1]; k++)
        if ((f[k] = strchr (f[k - 1], ':')))
          *f[k]++ = '\0';
      if (f[1] == NULL)
        {
          json_object_set_new (o, "type", json_string ("volume"));
          json_object_set_new (o, "target", json_string (f[0]));
        }
      else
        {
          bool bind = is_path_source (f[0]);
          json_object_set_new (o, "type", json_string (bind ? "bind" : "volume"));
          json_object_set_new (o, "source", bind ? json_take (resolve_path (c, f[0])) : json_string (f[0]));
          json_object_set_new (o, "target", json_string (f[1]));
          if (f[2] && strcmp (f[2], "ro") != 0 && strcmp (f[2], "rw") != 0 && strcmp (f[2], "z") != 0
              && strcmp (f[2], "Z") != 0)
            {
              json_decref (o);
              return cella_error (err, 0, "service `%s`: volume `%s`: unknown mode `%s`", c->svc, json_string_value (e),
                                  f[2]);
            }
          if (f[2] && strcmp (f[2], "ro") == 0)
            json_object_set_new (o, "read_only", json_true ());
        }
      *out = o;
      return 0;
    }
  if (!json_is_object (e))
    {
      json_decref (o);
      return bad_type (c, "a list of volume specs", err);
    }
  type = json_string_value (json_object_get (e, "type"));
  src = json_string_value (json_object_get (e, "source"));
  tgt = json_string_value (json_object_get (e, "target"));
  if (type == NULL)
    type = src && is_path_source (src) ? "bind" : "volume";
  if (tgt == NULL || (strcmp (type, "bind") == 0 && src == NULL))
    {
      json_decref (o);
      return cella_error (err, 0, "service `%s`: a volume's long form needs `target` (and `source` for a bind)",
                          c->svc);
    }
  if (strcmp (type, "bind") != 0 && strcmp (type, "volume") != 0 && strcmp (type, "tmpfs") != 0)
    {
      json_decref (o);
      return cella_error (err, 0, "service `%s`: volume type `%s` is not supported", c->svc, type);
    }
  json_object_set_new (o, "type", json_string (type));
  if (src && strcmp (type, "bind") == 0)
    json_object_set_new (o, "source", json_take (resolve_path (c, src)));
  else if (src)
    json_object_set_new (o, "source", json_string (src));
  json_object_set_new (o, "target", json_string (tgt));
  if (json_is_true (json_object_get (e, "read_only")))
    json_object_set_new (o, "read_only", json_true ());
  json_t *tm = json_object_get (e, "tmpfs");
  if (json_is_object (tm) && json_object_get (tm, "size"))
    json_object_set_new (o, "tmpfs", json_pack ("{s:O}", "size", json_object_get (tm, "size")));
  *out = o;
  return 0;
}

static int
n_volumes (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *a, *e, *o = NULL;
  size_t i;
  if (!json_is_array (v))
    return bad_type (c, "a list", err);
  a = json_array ();
  json_array_foreach (v, i, e)
    {
      if (n_volume_one (c, e, &o, err) < 0)
        {
          json_decref (a);
          return -1;
        }
      json_array_append_new (a, o);
    }
  *out = a;
  return 0;
}

/* networks: a list of names or a mapping name → null | {aliases: [...]}. */
static int
n_networks (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *m = json_object (), *e;
  size_t i;
  const char *k;
  if (json_is_array (v))
    json_array_foreach (v, i, e)
      {
        if (!json_is_string (e))
          {
            json_decref (m);
            return bad_type (c, "a list of network names", err);
          }
        json_object_set_new (m, json_string_value (e), json_null ());
      }
  else if (json_is_object (v))
    json_object_foreach (v, k, e)
      {
        if (!json_is_null (e) && !json_is_object (e))
          {
            json_decref (m);
            return bad_type (c, "a mapping of network names to null or {aliases}", err);
          }
        json_object_set (m, k, e);
      }
  else
    {
      json_decref (m);
      return bad_type (c, "a list or a mapping", err);
    }
  *out = m;
  return 0;
}

static int
n_depends_on (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  static const char *const conds[] = { "service_started", "service_healthy", "service_completed_successfully" };
  json_t *m = json_object (), *e;
  size_t i;
  const char *k;
  if (json_is_array (v))
    json_array_foreach (v, i, e)
      {
        if (!json_is_string (e))
          {
            json_decref (m);
            return bad_type (c, "a list of service names", err);
          }
        json_object_set_new (m, json_string_value (e), json_pack ("{s:s}", "condition", "service_started"));
      }
  else if (json_is_object (v))
    json_object_foreach (v, k, e)
      {
        const char *cond = json_string_value (json_object_get (e, "condition"));
        if (cond == NULL)
          cond = "service_started";
        if (str_index (conds, 3, cond) < 0)
          {
            json_decref (m);
            return cella_error (err, 0, "service `%s`: depends_on `%s`: unknown condition `%s`", c->svc, k, cond);
          }
        json_object_set_new (m, k, json_pack ("{s:s}", "condition", cond));
      }
  else
    {
      json_decref (m);
      return bad_type (c, "a list or a mapping", err);
    }
  *out = m;
  return 0;
}

static int
n_healthcheck (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  static const char *const keys[]
      = { "test", "interval", "timeout", "retries", "start_period", "disable", "start_interval" };
  json_t *o = json_object (), *e;
  const char *k;
  if (!json_is_object (v))
    return bad_type (c, "a mapping", err);
  json_object_foreach (v, k, e)
    {
      if (str_index (keys, 7, k) < 0)
        fprintf (stderr, "cella compose: warning: service `%s`: healthcheck: unknown key `%s` ignored\n", c->svc, k);
      else if (strcmp (k, "test") == 0)
        {
          json_t *t;
          if (json_is_string (e))
            t = json_pack ("[ss]", "CMD-SHELL", json_string_value (e));
          else if (json_is_array (e))
            t = json_incref (e);
          else
            {
              json_decref (o);
              return bad_type (c, "healthcheck.test: a string or a list", err);
            }
          json_object_set_new (o, "test", t);
        }
      else
        json_object_set (o, k, e);
    }
  *out = o;
  return 0;
}

/* A replica count: an integer >= 0. */
static int
n_replicas (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  if (!json_is_integer (v) || json_integer_value (v) < 0 || json_integer_value (v) > COMPOSE_MAX_REPLICAS)
    return cella_error (err, 0, "service `%s`: `%s` must be an integer from 0 to %d", c->svc, c->key,
                        COMPOSE_MAX_REPLICAS);
  *out = json_incref (v);
  return 0;
}

/* deploy: resources.limits/reservations and replicas; the rest of deploy is swarm's. */
static int
n_deploy (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *o = json_object (), *e, *n = NULL;
  const char *k;
  if (!json_is_object (v))
    return bad_type (c, "a mapping", err);
  json_object_foreach (v, k, e)
    {
      if (strcmp (k, "replicas") == 0)
        {
          c->key = "deploy.replicas";
          if (n_replicas (c, e, &n, err) < 0)
            {
              json_decref (o);
              return -1;
            }
          json_object_set_new (o, k, n);
        }
      else if (strcmp (k, "resources") == 0 && json_is_object (e))
        json_object_set (o, k, e);
      else
        fprintf (stderr, "cella compose: warning: service `%s`: deploy.%s ignored\n", c->svc, k);
    }
  *out = o;
  return 0;
}

static int
n_xcella (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  static const char *const backends[] = { "ns", "proot", "vm" };
  const char *b = json_string_value (json_object_get (v, "backend"));
  if (!json_is_object (v))
    return bad_type (c, "a mapping", err);
  if (json_object_get (v, "backend") && (b == NULL || str_index (backends, 3, b) < 0))
    return cella_error (err, 0, "service `%s`: x-cella.backend must be ns, proot or vm", c->svc);
  *out = json_incref (v);
  return 0;
}

/* build: a context path, or {context, dockerfile, args, target, labels} → that long form with the
 * context an absolute path (relative to the project directory) and dockerfile as given (relative
 * to the context, as docker compose reads it). */
static int
n_build (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  static const char *const keys[] = { "context", "dockerfile", "args", "target", "labels" };
  json_t *o = json_object (), *e;
  const char *k, *ctx;
  if (json_is_string (v))
    {
      json_object_set_new (o, "context", json_take (resolve_path (c, json_string_value (v))));
      *out = o;
      return 0;
    }
  if (!json_is_object (v))
    {
      json_decref (o);
      return bad_type (c, "a context path or a mapping {context, dockerfile, args, target, labels}", err);
    }
  json_object_foreach (v, k, e)
    if (str_index (keys, 5, k) < 0 && strncmp (k, "x-", 2) != 0)
      {
        json_decref (o);
        return cella_error (
            err, 0, "service `%s`: build.%s is not supported (context, dockerfile, args, target, labels)", c->svc, k);
      }
  ctx = json_string_value (json_object_get (v, "context"));
  if (json_object_get (v, "context") && ctx == NULL)
    {
      json_decref (o);
      return bad_type (c, "a mapping whose context is a path", err);
    }
  json_object_set_new (o, "context", json_take (resolve_path (c, ctx ? ctx : ".")));
  for (size_t i = 1; i < 5; i++)
    {
      json_t *x = json_object_get (v, keys[i]), *n = NULL;
      if (x == NULL)
        continue;
      c->key = i == 2 || i == 4 ? (i == 2 ? "build.args" : "build.labels")
                                : (i == 1 ? "build.dockerfile" : "build.target");
      if ((i == 2 || i == 4 ? n_kvmap (c, x, &n, err) : n_string (c, x, &n, err)) < 0)
        {
          json_decref (o);
          return -1;
        }
      json_object_set_new (o, keys[i], n);
    }
  c->key = "build";
  *out = o;
  return 0;
}

static int
n_env_file (struct norm_ctx *c, json_t *v, json_t **out, cella_error_t *err)
{
  json_t *l = NULL, *e, *a = json_array ();
  size_t i;
  if (n_strlist (c, v, &l, err) < 0)
    {
      json_decref (a);
      return -1;
    }
  json_array_foreach (l, i, e)
    json_array_append_new (a, json_take (resolve_path (c, json_string_value (e))));
  json_decref (l);
  *out = a;
  return 0;
}

struct svc_key {
  const char *name;
  norm_fn fn; /* NULL: known to compose, not supported by cella */
};

static const struct svc_key svc_keys[] = {
  { "image", n_string },
  { "command", n_cmd },
  { "entrypoint", n_cmd },
  { "environment", n_kvmap },
  { "env_file", n_env_file },
  { "ports", n_ports },
  { "expose", n_strlist },
  { "volumes", n_volumes },
  { "tmpfs", n_strlist },
  { "networks", n_networks },
  { "depends_on", n_depends_on },
  { "healthcheck", n_healthcheck },
  { "restart", n_string },
  { "user", n_string },
  { "working_dir", n_string },
  { "hostname", n_string },
  { "container_name", n_string },
  { "init", n_bool },
  { "read_only", n_bool },
  { "privileged", n_bool },
  { "cap_add", n_strlist },
  { "cap_drop", n_strlist },
  { "security_opt", n_strlist },
  { "dns", n_strlist },
  { "extra_hosts", n_strlist },
  { "mem_limit", n_string },
  { "mem_reservation", n_string },
  { "memswap_limit", n_string },
  { "cpus", n_string },
  { "cpu_shares", n_string },
  { "cpuset", n_string },
  { "pids_limit", n_string },
  { "deploy", n_deploy },
  { "scale", n_replicas },
  { "labels", n_kvmap },
  { "stop_signal", n_string },
  { "stop_grace_period", n_string },
  { "profiles", n_strlist },
  { "pull_policy", n_string },
  { "stdin_open", n_bool },
  { "tty", n_bool },
  { "x-cella", n_xcella },
  { "build", n_build },
  /* known, not supported by cella (yet) */
  { "secrets", NULL },
  { "configs", NULL },
  { "extends", NULL },
  { "links", NULL },
  { "external_links", NULL },
  { "ulimits", NULL },
  { "sysctls", NULL },
  { "pid", NULL },
  { "ipc", NULL },
  { "shm_size", NULL },
  { "devices", NULL },
  { "platform", NULL },
  { "logging", NULL },
  { "network_mode", NULL },
  { "volumes_from", NULL },
  { "cgroup_parent", NULL },
  { "userns_mode", NULL },
  { "group_add", NULL },
  { "runtime", NULL },
  { "domainname", NULL },
  { "mac_address", NULL },
  { "oom_kill_disable", NULL },
  { "oom_score_adj", NULL },
  { "develop", NULL },
  { "post_start", NULL },
  { "pre_stop", NULL },
  { NULL, NULL },
};

static int
normalize_service (struct compose_project *p, const char *svc, json_t *raw, json_t **out, cella_error_t *err)
{
  json_t *o = json_object (), *v;
  const char *k;
  if (!json_is_object (raw))
    {
      json_decref (o);
      return cella_error (err, 0, "service `%s` must be a mapping", svc);
    }
  json_object_foreach (raw, k, v)
    {
      const struct svc_key *sk = svc_keys;
      struct norm_ctx c = { svc, k, p->dir, p };
      json_t *nv = NULL;
      while (sk->name && strcmp (sk->name, k) != 0)
        sk++;
      if (sk->name == NULL)
        {
          if (!has_prefix (k, "x-"))
            fprintf (stderr, "cella compose: warning: service `%s`: unknown key `%s` ignored\n", svc, k);
          continue;
        }
      if (sk->fn == NULL)
        {
          json_decref (o);
          return cella_error (err, 0, "service `%s`: `%s` is not supported yet", svc, k);
        }
      if (sk->fn (&c, v, &nv, err) < 0)
        {
          json_decref (o);
          return -1;
        }
      json_object_set_new (o, k, nv);
    }
  *out = o;
  return 0;
}

/* env_file entries folded under environment (environment wins), then host values for bare keys. */
static int
resolve_environment (const char *svc, json_t *s, cella_error_t *err)
{
  json_t *env = json_object (), *files = json_object_get (s, "env_file"), *e,
         *mine = json_object_get (s, "environment");
  size_t i;
  const char *k;
  json_array_foreach (files, i, e)
    if (compose_env_file_read (json_string_value (e), env, err) < 0)
      {
        json_decref (env);
        return cella_error_wrap (err, "service `%s`: env_file", svc);
      }
  json_object_foreach (mine, k, e)
    {
      if (json_is_null (e))
        {
          const char *h = getenv (k);
          if (h)
            json_object_set_new (env, k, json_string (h));
          else
            json_object_del (env, k);
        }
      else
        json_object_set (env, k, e);
    }
  json_object_del (s, "env_file");
  if (json_object_size (env))
    json_object_set_new (s, "environment", env);
  else
    {
      json_object_del (s, "environment");
      json_decref (env);
    }
  return 0;
}

/* ---- merging ---- */

/* o2 over o1 for one service: mappings (environment, labels, networks, depends_on, healthcheck,
 * deploy, x-cella) merge key by key; ports and expose append; volumes merge by target; the rest
 * is replaced. */
static void
merge_service (json_t *base, json_t *over)
{
  const char *k;
  json_t *v;
  json_object_foreach (over, k, v)
    {
      json_t *b = json_object_get (base, k);
      if (json_is_object (b) && json_is_object (v))
        json_object_update (b, v);
      else if (json_is_array (b) && json_is_array (v) && strcmp (k, "volumes") == 0)
        {
          size_t i, j;
          json_t *nv, *bv;
          json_array_foreach (v, i, nv)
            {
              const char *t = json_string_value (json_object_get (nv, "target"));
              bool replaced = false;
              json_array_foreach (b, j, bv)
                if (t && strcmp (t, json_string_value (json_object_get (bv, "target")) ?: "") == 0)
                  {
                    json_array_set (b, j, nv);
                    replaced = true;
                    break;
                  }
              if (!replaced)
                json_array_append (b, nv);
            }
        }
      else if (json_is_array (b) && json_is_array (v)
               && (strcmp (k, "ports") == 0 || strcmp (k, "expose") == 0 || strcmp (k, "env_file") == 0
                   || strcmp (k, "cap_add") == 0 || strcmp (k, "cap_drop") == 0 || strcmp (k, "dns") == 0
                   || strcmp (k, "extra_hosts") == 0))
        json_array_extend (b, v);
      else
        json_object_set (base, k, v);
    }
}

static const char *const top_keys[]
    = { "version", "name", "services", "networks", "volumes", "secrets", "configs", "include" };

static int
merge_file (struct compose_project *p, json_t *doc, const char *file, cella_error_t *err)
{
  const char *k;
  json_t *v, *model = p->model;
  json_object_foreach (doc, k, v)
    {
      int idx = str_index (top_keys, 8, k);
      if (idx < 0)
        {
          if (!has_prefix (k, "x-"))
            fprintf (stderr, "cella compose: warning: %s: unknown top-level key `%s` ignored\n", file, k);
          continue;
        }
      if (idx >= 5)
        return cella_error (err, 0, "%s: top-level `%s` is not supported yet", file, k);
      if (idx == 0)
        continue;
      if (idx == 1)
        {
          if (json_is_string (v))
            json_object_set (model, "name", v);
          continue;
        }
      if (!json_is_object (v) && !json_is_null (v))
        return cella_error (err, 0, "%s: `%s` must be a mapping", file, k);
      json_t *dst = json_object_get (model, k);
      const char *name;
      json_t *e;
      json_object_foreach (v, name, e)
        {
          if (idx == 2)
            {
              json_t *ns = NULL, *cur = json_object_get (dst, name);
              if (normalize_service (p, name, e, &ns, err) < 0)
                return cella_error_wrap (err, "%s", file);
              if (cur)
                {
                  merge_service (cur, ns);
                  json_decref (ns);
                }
              else
                json_object_set_new (dst, name, ns);
            }
          else
            {
              json_t *cur = json_object_get (dst, name);
              if (!json_is_null (e) && !json_is_object (e))
                return cella_error (err, 0, "%s: %s `%s` must be a mapping", file, k, name);
              if (cur && json_is_object (e))
                json_object_update (cur, e);
              else if (!cur)
                json_object_set_new (dst, name, json_is_object (e) ? json_deep_copy (e) : json_object ());
            }
        }
    }
  return 0;
}

/* ---- the project ---- */

static char *
normalize_project_name (const char *s)
{
  char *n = xmalloc (strlen (s) + 1), *w = n;
  for (; *s; s++)
    {
      char ch = (char) tolower ((unsigned char) *s);
      if (isalnum ((unsigned char) ch) || ch == '_' || ch == '-')
        *w++ = ch;
    }
  *w = '\0';
  return n;
}

static json_t *
environment_for (const char *env_file, cella_error_t *err, int *rc)
{
  json_t *env = json_object ();
  *rc = 0;
  if (access (env_file, F_OK) == 0 && compose_env_file_read (env_file, env, err) < 0)
    *rc = -1;
  for (char **e = environ; *e; e++)
    {
      char *eq = strchr (*e, '=');
      if (eq)
        {
          cleanup_free char *k = strndup (*e, (size_t) (eq - *e));
          json_object_set_new (env, k, json_string (eq + 1));
        }
    }
  return env;
}

static bool
profile_active (json_t *s, char **profiles)
{
  json_t *ps = json_object_get (s, "profiles"), *e;
  size_t i;
  if (json_array_size (ps) == 0)
    return true;
  json_array_foreach (ps, i, e)
    for (char **q = profiles; q && *q; q++)
      if (strcmp (*q, json_string_value (e)) == 0 || strcmp (*q, "*") == 0)
        return true;
  return false;
}

static int
visit (struct compose_project *p, json_t *services, const char *name, json_t *state, cella_error_t *err)
{
  json_int_t st = json_integer_value (json_object_get (state, name));
  json_t *deps = json_object_get (json_object_get (services, name), "depends_on"), *e;
  const char *d;
  if (st == 2)
    return 0;
  if (st == 1)
    return cella_error (err, 0, "service `%s`: depends_on forms a cycle", name);
  json_object_set_new (state, name, json_integer (1));
  json_object_foreach (deps, d, e)
    {
      if (json_object_get (services, d) == NULL)
        return cella_error (err, 0, "service `%s` depends on `%s`, which is not a service (or its profile is off)",
                            name, d);
      if (visit (p, services, d, state, err) < 0)
        return -1;
    }
  json_object_set_new (state, name, json_integer (2));
  strv_push (&p->order, name);
  return 0;
}

static int
finish_model (struct compose_project *p, char **profiles, cella_error_t *err)
{
  json_t *services = json_object_get (p->model, "services"), *s, *nets = json_object_get (p->model, "networks"),
         *vols = json_object_get (p->model, "volumes"), *e;
  const char *name, *k;
  void *tmp;
  json_object_foreach_safe (services, tmp, name, s)
    {
      if (!profile_active (s, profiles))
        {
          json_object_del (services, name);
          continue;
        }
      if (!json_is_string (json_object_get (s, "image")) && json_object_get (s, "build") == NULL)
        return cella_error (err, 0, "service `%s` has neither `image` nor `build`", name);
      if (!json_is_string (json_object_get (s, "image")))
        {
          /* docker compose's name for a built image: PROJECT-SERVICE */
          cleanup_free char *img = xasprintf ("%s-%s", p->name, name);
          json_object_set_new (s, "image", json_string (img));
        }
      if (resolve_environment (name, s, err) < 0)
        return -1;
      if (json_object_get (s, "networks") == NULL)
        json_object_set_new (s, "networks", json_pack ("{s:n}", "default"));
      if (json_object_size (json_object_get (s, "networks")) > 1
          && json_is_string (json_object_get (json_object_get (s, "x-cella"), "backend"))
          && strcmp (json_string_value (json_object_get (json_object_get (s, "x-cella"), "backend")), "ns") != 0)
        return cella_error (err, 0,
                            "service `%s`: several networks are for the ns backend (x-cella.backend `%s` gives one)",
                            name, json_string_value (json_object_get (json_object_get (s, "x-cella"), "backend")));
      json_object_foreach (json_object_get (s, "networks"), k, e)
        {
          if (json_object_get (nets, k) == NULL && strcmp (k, "default") != 0)
            return cella_error (err, 0, "service `%s` uses network `%s`, which is not declared", name, k);
          if (json_object_get (nets, k) == NULL)
            json_object_set_new (nets, k, json_object ());
          size_t j;
          json_t *al;
          json_array_foreach (json_object_get (e, "aliases"), j, al)
            if (!json_is_string (al))
              return cella_error (err, 0, "service `%s`: networks.%s.aliases must be a list of names", name, k);
        }
      size_t i;
      json_array_foreach (json_object_get (s, "volumes"), i, e)
        {
          const char *src = json_string_value (json_object_get (e, "source"));
          if (strcmp (json_string_value (json_object_get (e, "type")), "volume") == 0 && src
              && json_object_get (vols, src) == NULL)
            return cella_error (err, 0, "service `%s` uses volume `%s`, which is not declared in the top-level volumes",
                                name, src);
        }
    }
  /* resource names: PROJECT_NET, PROJECT_VOL unless `name:` or external */
  json_t *groups[2] = { nets, vols };
  for (int g = 0; g < 2; g++)
    json_object_foreach (groups[g], k, e)
      {
        if (json_is_true (json_object_get (e, "external")))
          {
            if (!json_object_get (e, "name"))
              json_object_set_new (e, "name", json_string (k));
          }
        else if (!json_is_string (json_object_get (e, "name")))
          json_object_set_new (e, "name", json_take (xasprintf ("%s_%s", p->name, k)));
        if (g == 0 && json_object_get (e, "driver")
            && strcmp (json_string_value (json_object_get (e, "driver")) ?: "", "bridge") != 0)
          return cella_error (err, 0, "network `%s`: driver `%s` is not supported", k,
                              json_string_value (json_object_get (e, "driver")) ?: "?");
      }
  json_t *state = json_object ();
  int rc = 0;
  json_object_foreach (services, name, s)
    if ((rc = visit (p, services, name, state, err)) < 0)
      break;
  json_decref (state);
  return rc;
}

static const char *const default_files[]
    = { "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml" };

int
compose_load (const struct compose_load_opts *o, struct compose_project *p, cella_error_t *err)
{
  cleanup_strv char **files = NULL;
  cleanup_strv char **profiles = NULL;
  cleanup_free char *envpath = NULL;
  json_t *env;
  int rc;
  memset (p, 0, sizeof *p);
  if (o->files && o->files[0])
    files = strv_dup (o->files);
  else
    for (size_t i = 0; i < 4 && files == NULL; i++)
      if (access (default_files[i], F_OK) == 0)
        strv_push (&files, default_files[i]);
  if (files == NULL)
    return cella_error (err, ENOENT, "no compose file here (compose.yaml, docker-compose.yml; or -f FILE)");
  {
    cleanup_free char *abs = realpath (files[0], NULL);
    if (abs == NULL)
      return cella_error (err, errno, "%s", files[0]);
    p->dir = xstrdup (dirname (abs));
  }
  envpath = o->env_file ? xstrdup (o->env_file) : xasprintf ("%s/.env", p->dir);
  env = environment_for (envpath, err, &rc);
  if (rc < 0)
    {
      json_decref (env);
      return -1;
    }
  profiles = strv_dup (o->profiles);
  if (json_string_value (json_object_get (env, "COMPOSE_PROFILES")))
    {
      cleanup_free char *ps = xstrdup (json_string_value (json_object_get (env, "COMPOSE_PROFILES")));
      char *save = NULL;
      for (char *t = strtok_r (ps, ",", &save); t; t = strtok_r (NULL, ",", &save))
        strv_push (&profiles, t);
    }
  p->model = json_pack ("{s:{},s:{},s:{}}", "services", "networks", "volumes");
  for (char **f = files; *f; f++)
    {
      cleanup_free char *text = NULL;
      size_t len;
      json_t *doc = NULL;
      if (read_file (*f, &text, &len, err) < 0 || compose_yaml_parse (*f, text, len, env, &doc, err) < 0)
        {
          json_decref (env);
          return -1;
        }
      rc = merge_file (p, doc, *f, err);
      json_decref (doc);
      if (rc < 0)
        {
          json_decref (env);
          return -1;
        }
    }
  {
    const char *n = o->project ? o->project : json_string_value (json_object_get (env, "COMPOSE_PROJECT_NAME"));
    cleanup_free char *base = NULL;
    if (n == NULL)
      n = json_string_value (json_object_get (p->model, "name"));
    if (n == NULL)
      n = (base = xstrdup (p->dir)) ? basename (base) : "default";
    p->name = normalize_project_name (n);
    if (p->name[0] == '\0' || !isalnum ((unsigned char) p->name[0]))
      {
        json_decref (env);
        return cella_error (err, 0, "project name `%s` must start with a letter or digit (use -p NAME)", n);
      }
    json_object_set_new (p->model, "name", json_string (p->name));
  }
  json_decref (env);
  return finish_model (p, profiles, err);
}

void
compose_project_free (struct compose_project *p)
{
  free (p->name);
  free (p->dir);
  json_decref (p->model);
  strv_free (p->order);
  memset (p, 0, sizeof *p);
}

json_t *
compose_service (const struct compose_project *p, const char *name)
{
  return json_object_get (json_object_get (p->model, "services"), name);
}

char *
compose_service_hash (const struct compose_project *p, const char *name)
{
  /* FNV-1a 64 over the service's canonical JSON (sorted keys) and its networks' and volumes'
   * resolved names: enough to tell a changed config from an unchanged one. The replica count is
   * left out: scaling adds or removes containers, it does not recreate the others. */
  json_t *svc = json_deep_copy (compose_service (p, name));
  json_object_del (svc, "scale");
  json_object_del (json_object_get (svc, "deploy"), "replicas");
  if (json_object_size (json_object_get (svc, "deploy")) == 0)
    json_object_del (svc, "deploy");
  cleanup_free char *s = json_dumps (svc, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref (svc);
  unsigned long long h = 1469598103934665603ULL;
  for (const char *c = s ? s : ""; *c; c++)
    h = (h ^ (unsigned char) *c) * 1099511628211ULL;
  return xasprintf ("%016llx", h);
}

/* ---- replicas ---- */

int
compose_service_replicas (const struct compose_project *p, const char *name)
{
  json_t *s = compose_service (p, name);
  json_t *n = json_object_get (s, "scale");
  if (!json_is_integer (n))
    n = json_object_get (json_object_get (s, "deploy"), "replicas");
  return json_is_integer (n) ? (int) json_integer_value (n) : 1;
}

int
compose_scale_parse (const char *spec, char **svc, int *n, cella_error_t *err)
{
  const char *eq = strchr (spec, '=');
  long long v;
  if (eq == NULL || eq == spec)
    return cella_error (err, 0, "--scale `%s`: SERVICE=NUMBER (e.g. --scale web=3)", spec);
  v = parse_uint (eq + 1, COMPOSE_MAX_REPLICAS);
  if (v < 0)
    return cella_error (err, 0, "--scale `%s`: the number must be an integer from 0 to %d", spec, COMPOSE_MAX_REPLICAS);
  *svc = strndup (spec, (size_t) (eq - spec));
  *n = (int) v;
  return 0;
}

int
compose_set_replicas (struct compose_project *p, const char *name, int n, cella_error_t *err)
{
  json_t *s = compose_service (p, name), *d;
  if (s == NULL)
    return cella_error (err, 0, "--scale: no such service: %s", name);
  json_object_del (s, "scale");
  d = json_object_get (s, "deploy");
  if (!json_is_object (d))
    {
      d = json_object ();
      json_object_set_new (s, "deploy", d);
    }
  json_object_set_new (d, "replicas", json_integer (n));
  return 0;
}

int
compose_check_replicas (const struct compose_project *p, const char *name, cella_error_t *err)
{
  json_t *s = compose_service (p, name), *e;
  int n = compose_service_replicas (p, name);
  size_t i;
  if (n <= 1)
    return 0;
  if (json_is_string (json_object_get (s, "container_name")))
    return cella_error (err, 0,
                        "service `%s` has container_name `%s`: it cannot have %d replicas (a name is unique; drop "
                        "container_name to scale)",
                        name, json_string_value (json_object_get (s, "container_name")), n);
  json_array_foreach (json_object_get (s, "ports"), i, e)
    {
      const char *pub = json_string_value (json_object_get (e, "published"));
      if (pub && *pub)
        return cella_error (err, 0,
                            "service `%s` publishes fixed host port %s (to %lld/%s): only one of its %d replicas could "
                            "bind it; publish an ephemeral port (\"%lld\") to scale",
                            name, pub, (long long) json_integer_value (json_object_get (e, "target")),
                            json_string_value (json_object_get (e, "protocol")) ?: "tcp", n,
                            (long long) json_integer_value (json_object_get (e, "target")));
    }
  return 0;
}
