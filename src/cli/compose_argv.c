/* cella compose: a service's normalized config (src/engine/compose.c) as `cella run` arguments.
 * One row per service key that maps onto a plain run flag; the rest are handled below it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compose_cli.h"

bool
compose_networks_supported (void)
{
  return geteuid () == 0 && in_initial_userns ();
}

char *
compose_ctr_name (const struct compose_project *p, const char *svc, int number)
{
  const char *cn = json_string_value (json_object_get (compose_service (p, svc), "container_name"));
  return cn && number == 1 ? xstrdup (cn) : xasprintf ("%s-%s-%d", p->name, svc, number);
}

static void
push2 (char ***a, const char *flag, const char *val)
{
  strv_push (a, flag);
  strv_push (a, val);
}

/* Service key → run flag, for scalars (string or number) and booleans and lists of strings. */
static const struct {
  const char *key, *flag;
} scalar_flags[] = {
  { "restart", "--restart" },          { "user", "--user" },
  { "working_dir", "--workdir" },      { "mem_limit", "--memory" },
  { "mem_reservation", "--memory-reservation" }, { "memswap_limit", "--memory-swap" },
  { "cpus", "--cpus" },                { "cpu_shares", "--cpu-shares" },
  { "cpuset", "--cpuset-cpus" },       { "pids_limit", "--pids-limit" },
}, bool_flags[] = {
  { "init", "--init" }, { "read_only", "--read-only" }, { "privileged", "--privileged" },
  { "stdin_open", "--interactive" }, { "tty", "--tty" },
}, list_flags[] = {
  { "cap_add", "--cap-add" }, { "cap_drop", "--cap-drop" }, { "security_opt", "--security-opt" },
  { "dns", "--dns" }, { "tmpfs", "--tmpfs" },
};

/* A shell word for s (single quotes unless plain). */
static char *
shell_quote (const char *s)
{
  if (*s && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == strlen (s))
    return xstrdup (s);
  size_t n = 3;
  for (const char *c = s; *c; c++)
    n += *c == '\'' ? 4 : 1;
  char *o = xmalloc (n), *w = o;
  *w++ = '\'';
  for (const char *c = s; *c; c++)
    if (*c == '\'')
      memcpy (w, "'\\''", 4), w += 4;
    else
      *w++ = *c;
  *w++ = '\'';
  *w = '\0';
  return o;
}

static int
health_args (const char *svc, json_t *hc, char ***a, cella_error_t *err)
{
  static const char *const durs[][2] = { { "interval", "--health-interval" },
                                         { "timeout", "--health-timeout" },
                                         { "start_period", "--health-start-period" } };
  json_t *t = json_object_get (hc, "test");
  const char *kind = json_string_value (json_array_get (t, 0));
  if (json_is_true (json_object_get (hc, "disable")) || (kind && strcmp (kind, "NONE") == 0))
    {
      strv_push (a, "--no-healthcheck");
      return 0;
    }
  if (t)
    {
      if (kind && strcmp (kind, "CMD-SHELL") == 0 && json_is_string (json_array_get (t, 1)))
        push2 (a, "--health-cmd", json_string_value (json_array_get (t, 1)));
      else if (kind && strcmp (kind, "CMD") == 0 && json_array_size (t) > 1)
        {
          size_t i;
          json_t *e;
          char *cmd = xstrdup ("");
          json_array_foreach (t, i, e)
            if (i > 0)
              {
                cleanup_free char *q = shell_quote (json_string_value (e) ?: "");
                char *n = xasprintf ("%s%s%s", cmd, i > 1 ? " " : "", q);
                free (cmd);
                cmd = n;
              }
          push2 (a, "--health-cmd", cmd);
          free (cmd);
        }
      else
        return cella_error (err, 0, "service `%s`: healthcheck.test must start with CMD, CMD-SHELL or NONE", svc);
    }
  for (size_t i = 0; i < 3; i++)
    {
      const char *d = json_string_value (json_object_get (hc, durs[i][0]));
      if (d)
        push2 (a, durs[i][1], d);
    }
  if (json_is_integer (json_object_get (hc, "retries")))
    {
      cleanup_free char *r = xasprintf ("%lld", (long long) json_integer_value (json_object_get (hc, "retries")));
      push2 (a, "--health-retries", r);
    }
  return 0;
}

static void
port_args (json_t *ports, char ***a)
{
  size_t i;
  json_t *e;
  json_array_foreach (ports, i, e)
    {
      const char *ip = json_string_value (json_object_get (e, "host_ip"));
      const char *pub = json_string_value (json_object_get (e, "published"));
      const char *proto = json_string_value (json_object_get (e, "protocol"));
      long long tgt = json_integer_value (json_object_get (e, "target"));
      cleanup_free char *spec = NULL;
      if (pub)
        spec = xasprintf ("%s%s%s:%lld/%s", ip ? ip : "", ip ? ":" : "", pub, tgt, proto ? proto : "tcp");
      else
        spec = xasprintf ("%lld/%s", tgt, proto ? proto : "tcp");
      push2 (a, "--publish", spec);
    }
}

static void
volume_args (const struct compose_project *p, json_t *vols, char ***a)
{
  size_t i;
  json_t *e;
  json_t *top = json_object_get (p->model, "volumes");
  json_array_foreach (vols, i, e)
    {
      const char *type = json_string_value (json_object_get (e, "type"));
      const char *src = json_string_value (json_object_get (e, "source"));
      const char *tgt = json_string_value (json_object_get (e, "target"));
      bool ro = json_is_true (json_object_get (e, "read_only"));
      cleanup_free char *spec = NULL;
      if (strcmp (type, "tmpfs") == 0)
        {
          json_t *size = json_object_get (json_object_get (e, "tmpfs"), "size");
          cleanup_free char *sz = json_is_integer (size)  ? xasprintf ("%lld", (long long) json_integer_value (size))
                                  : json_is_string (size) ? xstrdup (json_string_value (size))
                                                          : NULL;
          spec = sz ? xasprintf ("%s:size=%s", tgt, sz) : xstrdup (tgt);
          push2 (a, "--tmpfs", spec);
          continue;
        }
      if (src == NULL)
        spec = xstrdup (tgt);
      else if (strcmp (type, "volume") == 0)
        spec = xasprintf ("%s:%s%s", json_string_value (json_object_get (json_object_get (top, src), "name")), tgt,
                          ro ? ":ro" : "");
      else
        spec = xasprintf ("%s:%s%s", src, tgt, ro ? ":ro" : "");
      push2 (a, "--volume", spec);
    }
}

static void
deploy_args (json_t *s, char ***a)
{
  json_t *res = json_object_get (json_object_get (s, "deploy"), "resources");
  json_t *lim = json_object_get (res, "limits"), *resv = json_object_get (res, "reservations");
  static const char *const lk[][2] = { { "cpus", "--cpus" }, { "memory", "--memory" }, { "pids", "--pids-limit" } };
  for (size_t i = 0; i < 3; i++)
    {
      json_t *v = json_object_get (lim, lk[i][0]);
      cleanup_free char *s2 = json_is_string (v)    ? xstrdup (json_string_value (v))
                              : json_is_integer (v) ? xasprintf ("%lld", (long long) json_integer_value (v))
                              : json_is_real (v)    ? xasprintf ("%g", json_real_value (v))
                                                    : NULL;
      if (s2)
        push2 (a, lk[i][1], s2);
    }
  if (json_is_string (json_object_get (resv, "memory")))
    push2 (a, "--memory-reservation", json_string_value (json_object_get (resv, "memory")));
}

int
compose_run_args (const struct compose_project *p, const char *svc, int number, const char *name, char *const *command,
                  char ***args, cella_error_t *err)
{
  json_t *s = compose_service (p, svc), *e, *nets = json_object_get (p->model, "networks");
  cleanup_strv char **a = NULL;
  const char *k;
  size_t i;
  bool detach = number > 0;
  strv_push (&a, detach ? "--detach" : "--rm");
  push2 (&a, "--name", name);
  push2 (&a, "--hostname", json_string_value (json_object_get (s, "hostname")) ?: svc);
  json_object_foreach (json_object_get (s, "networks"), k, e)
    if (compose_networks_supported ())
      {
        /* one --network per network, in the file's order (the first gets eth0, the default route and
         * the published ports), its aliases as NET:alias=A,alias=B (names on that network only) */
        json_t *al;
        char *spec = xstrdup (json_string_value (json_object_get (json_object_get (nets, k), "name")));
        json_array_foreach (json_object_get (e, "aliases"), i, al)
          {
            char *next = xasprintf ("%s%salias=%s", spec, i ? "," : ":", json_string_value (al));
            free (spec);
            spec = next;
          }
        push2 (&a, "--network", spec);
        free (spec);
      }
  json_object_foreach (json_object_get (s, "environment"), k, e)
    if (json_is_string (e))
      {
        cleanup_free char *kv = xasprintf ("%s=%s", k, json_string_value (e));
        push2 (&a, "--env", kv);
      }
  {
    cleanup_free char *hash = compose_service_hash (p, svc);
    cleanup_free char *l1 = xasprintf ("com.docker.compose.project=%s", p->name);
    cleanup_free char *l2 = xasprintf ("com.docker.compose.service=%s", svc);
    cleanup_free char *l3 = xasprintf ("com.docker.compose.config-hash=%s", hash);
    push2 (&a, "--label", l1);
    push2 (&a, "--label", l2);
    push2 (&a, "--label", l3);
    push2 (&a, "--label", detach ? "com.docker.compose.oneoff=False" : "com.docker.compose.oneoff=True");
    if (detach)
      {
        cleanup_free char *l4 = xasprintf ("com.docker.compose.container-number=%d", number);
        push2 (&a, "--label", l4);
      }
    json_object_foreach (json_object_get (s, "labels"), k, e)
      if (json_is_string (e))
        {
          cleanup_free char *kv = xasprintf ("%s=%s", k, json_string_value (e));
          push2 (&a, "--label", kv);
        }
  }
  port_args (json_object_get (s, "ports"), &a);
  volume_args (p, json_object_get (s, "volumes"), &a);
  for (i = 0; i < sizeof scalar_flags / sizeof *scalar_flags; i++)
    if (json_is_string (json_object_get (s, scalar_flags[i].key)))
      push2 (&a, scalar_flags[i].flag, json_string_value (json_object_get (s, scalar_flags[i].key)));
  for (i = 0; i < sizeof bool_flags / sizeof *bool_flags; i++)
    if (json_is_true (json_object_get (s, bool_flags[i].key)) && (detach || i < 3))
      strv_push (&a, bool_flags[i].flag);
  for (i = 0; i < sizeof list_flags / sizeof *list_flags; i++)
    {
      size_t j;
      json_array_foreach (json_object_get (s, list_flags[i].key), j, e)
        push2 (&a, list_flags[i].flag, json_string_value (e));
    }
  {
    size_t j;
    json_array_foreach (json_object_get (s, "extra_hosts"), j, e)
      {
        cleanup_free char *h = xstrdup (json_string_value (e));
        char *eq = strchr (h, '=');
        if (eq)
          *eq = ':';
        push2 (&a, "--add-host", h);
      }
  }
  deploy_args (s, &a);
  if (json_object_get (s, "healthcheck") && health_args (svc, json_object_get (s, "healthcheck"), &a, err) < 0)
    return -1;
  if (json_is_string (json_object_get (json_object_get (s, "x-cella"), "backend")))
    push2 (&a, "--backend", json_string_value (json_object_get (json_object_get (s, "x-cella"), "backend")));
  if (json_is_string (json_object_get (s, "pull_policy")))
    {
      const char *pp = json_string_value (json_object_get (s, "pull_policy"));
      if (strcmp (pp, "if_not_present") == 0)
        pp = "missing";
      if (strcmp (pp, "always") != 0 && strcmp (pp, "missing") != 0 && strcmp (pp, "never") != 0)
        return cella_error (err, 0, "service `%s`: pull_policy `%s` is not supported", svc, pp);
      push2 (&a, "--pull", pp);
    }
  json_t *ep = json_object_get (s, "entrypoint"), *cmd = json_object_get (s, "command");
  if (json_is_array (ep))
    push2 (&a, "--entrypoint", json_array_size (ep) ? json_string_value (json_array_get (ep, 0)) : "");
  strv_push (&a, json_string_value (json_object_get (s, "image")));
  if (json_is_array (ep))
    json_array_foreach (ep, i, e)
      if (i > 0)
        strv_push (&a, json_string_value (e));
  if (command)
    strv_append_all (&a, command);
  else if (json_is_array (cmd))
    json_array_foreach (cmd, i, e)
      strv_push (&a, json_string_value (e));
  *args = steal_pointer (&a);
  return 0;
}
