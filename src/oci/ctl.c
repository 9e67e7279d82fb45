/* OCI pause, resume, update and events: a running container's cgroup (src/cgroup/cgroup.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../util/options.h"
#include "../cgroup/cgroup.h"
#include "cli.h"

/* The live container's state, its plan and its cgroup directories. */
struct target {
  struct oci_state st;
  struct plan *p;
  struct cgroup_dirs cg;
  const char *status;
};

static void
target_clear (struct target *t)
{
  oci_state_clear (&t->st);
  plan_free (t->p);
  cgroup_dirs_clear (&t->cg);
}

static int
target_load (struct oci_ctx *c, const char *id, struct target *t, cella_error_t *err)
{
  memset (t, 0, sizeof *t);
  if (oci_load (c, id, &t->st, err) < 0)
    return -1;
  t->status = oci_state_status (c->root, &t->st);
  if (oci_load_plan (c, id, &t->p, err) < 0)
    return -1;
  if (cgroup_path_of (t->p, &t->cg, NULL) < 0)
    {
      cleanup_free char *why = NULL;
      cgroup_usable (&why);
      return cella_error (err, 0, "container `%s` has no cgroup of its own%s%s", id, why ? ": " : "", why ? why : "");
    }
  return 0;
}

static int
one_id (struct oci_ctx *c, int argc, char **argv, const char *usage, const char *summary, const char **id)
{
  static const struct cli_option none[] = { { NULL, 0, OPT_FLAG, 0, NULL, NULL } };
  cella_error_t err = NULL;
  int help = 0, first = cli_parse (none, NULL, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    return oci_fail (c, &err);
  first++;
  if (help)
    {
      cli_print_help (usage, summary, none);
      return 0;
    }
  if (first >= argc)
    {
      cella_error (&err, 0, "%s: a container id is required (usage: %s)", argv[0], usage);
      return oci_fail (c, &err);
    }
  *id = argv[first];
  return -1; /* go on */
}

static int
set_paused (struct oci_ctx *c, int argc, char **argv, bool pause)
{
  cella_error_t err = NULL;
  struct target t;
  const char *id = NULL;
  int r = one_id (c, argc, argv, pause ? "cella pause ID" : "cella resume ID",
                  pause ? "Freeze every process of a container (cgroup freezer)." : "Thaw a paused container.", &id);
  if (r >= 0)
    return r;
  r = target_load (c, id, &t, &err);
  if (r == 0 && strcmp (t.status, pause ? "running" : "paused") != 0)
    r = cella_error (&err, 0, "cannot %s container `%s`: it is %s", pause ? "pause" : "resume", id, t.status);
  if (r == 0)
    r = cgroup_freeze (&t.cg, pause, &err);
  if (r == 0)
    {
      t.st.paused = pause;
      r = oci_state_write (c->root, &t.st, &err);
    }
  target_clear (&t);
  return r < 0 ? oci_fail (c, &err) : 0;
}

int
oci_cmd_pause (struct oci_ctx *c, int argc, char **argv)
{
  return set_paused (c, argc, argv, true);
}

int
oci_cmd_resume (struct oci_ctx *c, int argc, char **argv)
{
  return set_paused (c, argc, argv, false);
}

/* ---- update ---- */

struct update_opts {
  char *resources, *memory, *memory_reservation, *memory_swap, *kernel_memory, *cpu_shares, *cpu_quota, *cpu_period,
      *cpuset_cpus, *cpuset_mems, *pids_limit, *blkio_weight;
};
#define UO(f) offsetof (struct update_opts, f)
static const struct cli_option update_table[] = {
  { "resources", 'r', OPT_STRING, UO (resources), "FILE|-", "linux.resources as JSON (config.json's form)" },
  { "memory", 'm', OPT_STRING, UO (memory), "BYTES", "Memory limit (64m, 1g; -1 unlimited)" },
  { "memory-reservation", 0, OPT_STRING, UO (memory_reservation), "BYTES", "Memory soft limit" },
  { "memory-swap", 0, OPT_STRING, UO (memory_swap), "BYTES", "Memory plus swap limit (-1 unlimited)" },
  { "kernel-memory", 0, OPT_STRING, UO (kernel_memory), "BYTES", "Accepted, ignored (the kernel dropped it)" },
  { "cpu-shares", 0, OPT_STRING, UO (cpu_shares), "N", "CPU shares (v2: converted to a weight)" },
  { "cpu-quota", 0, OPT_STRING, UO (cpu_quota), "US", "CPU time per period, µs (-1 unlimited)" },
  { "cpu-period", 0, OPT_STRING, UO (cpu_period), "US", "CPU period, µs" },
  { "cpuset-cpus", 0, OPT_STRING, UO (cpuset_cpus), "LIST", "CPUs it may use (0-3,5)" },
  { "cpuset-mems", 0, OPT_STRING, UO (cpuset_mems), "LIST", "Memory nodes it may use" },
  { "pids-limit", 0, OPT_STRING, UO (pids_limit), "N", "Most processes (-1 unlimited)" },
  { "blkio-weight", 0, OPT_STRING, UO (blkio_weight), "N", "Block IO weight (10..1000)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static void
update_opts_free (struct update_opts *o)
{
  char **f[]
      = { &o->resources, &o->memory,     &o->memory_reservation, &o->memory_swap, &o->kernel_memory, &o->cpu_shares,
          &o->cpu_quota, &o->cpu_period, &o->cpuset_cpus,        &o->cpuset_mems, &o->pids_limit,    &o->blkio_weight };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    free (*f[i]);
}

/* A signed value: bytes with units for memory, else a plain integer; -1 means unlimited. */
static int
parse_signed (const char *opt, const char *v, bool bytes, long long *out, cella_error_t *err)
{
  long long n;
  if (strcmp (v, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  n = bytes ? cgroup_parse_bytes (v) : parse_uint (v, 1ULL << 62);
  if (n < 0)
    return cella_error (err, 0, "update: %s `%s`: not a valid value", opt, v);
  *out = n;
  return 0;
}

static long long
jint (json_t *o, const char *a, const char *b, bool *found)
{
  json_t *v = json_object_get (json_object_get (o, a), b);
  *found = json_is_integer (v);
  return json_integer_value (v);
}

static const char *
jstring (json_t *o, const char *a, const char *b)
{
  return json_string_value (json_object_get (json_object_get (o, a), b));
}

static int
resources_from_json (const char *file, struct plan_resources *r, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  json_error_t je;
  json_t *o;
  bool f;
  long long v;
  if (strcmp (file, "-") == 0 ? read_all_fd (0, &text, NULL, err) < 0 : read_file (file, &text, NULL, err) < 0)
    return -1;
  o = json_loads (text, 0, &je);
  if (!json_is_object (o))
    {
      json_decref (o);
      return cella_error (err, 0, "update --resources `%s`: not a JSON object (%s)", file, je.text);
    }
  if ((v = jint (o, "memory", "limit", &f)), f)
    r->memory = v;
  if ((v = jint (o, "memory", "reservation", &f)), f)
    r->memory_reservation = v;
  if ((v = jint (o, "memory", "swap", &f)), f)
    r->memory_swap = v;
  if ((v = jint (o, "cpu", "shares", &f)), f)
    r->cpu_shares = (unsigned long long) v;
  if ((v = jint (o, "cpu", "quota", &f)), f)
    r->cpu_quota = v;
  if ((v = jint (o, "cpu", "period", &f)), f)
    r->cpu_period = (unsigned long long) v;
  if ((v = jint (o, "pids", "limit", &f)), f)
    r->pids_limit = v;
  if ((v = jint (o, "blockIO", "weight", &f)), f)
    r->io_weight = (unsigned) v;
  if (jstring (o, "cpu", "cpus"))
    r->cpuset_cpus = xstrdup (jstring (o, "cpu", "cpus"));
  if (jstring (o, "cpu", "mems"))
    r->cpuset_mems = xstrdup (jstring (o, "cpu", "mems"));
  json_decref (o);
  return 0;
}

static int
resources_from_flags (const struct update_opts *o, struct plan_resources *r, cella_error_t *err)
{
  long long v;
  if (o->memory && parse_signed ("--memory", o->memory, true, &r->memory, err) < 0)
    return -1;
  if (o->memory_reservation
      && parse_signed ("--memory-reservation", o->memory_reservation, true, &r->memory_reservation, err) < 0)
    return -1;
  if (o->memory_swap && parse_signed ("--memory-swap", o->memory_swap, true, &r->memory_swap, err) < 0)
    return -1;
  if (o->cpu_shares)
    {
      if (parse_signed ("--cpu-shares", o->cpu_shares, false, &v, err) < 0)
        return -1;
      r->cpu_shares = (unsigned long long) v;
    }
  if (o->cpu_quota && parse_signed ("--cpu-quota", o->cpu_quota, false, &r->cpu_quota, err) < 0)
    return -1;
  if (o->cpu_period)
    {
      if (parse_signed ("--cpu-period", o->cpu_period, false, &v, err) < 0)
        return -1;
      r->cpu_period = (unsigned long long) v;
    }
  if (o->pids_limit && parse_signed ("--pids-limit", o->pids_limit, false, &r->pids_limit, err) < 0)
    return -1;
  if (o->blkio_weight)
    {
      if (parse_signed ("--blkio-weight", o->blkio_weight, false, &v, err) < 0)
        return -1;
      r->io_weight = (unsigned) v;
    }
  if (o->cpuset_cpus)
    r->cpuset_cpus = xstrdup (o->cpuset_cpus);
  if (o->cpuset_mems)
    r->cpuset_mems = xstrdup (o->cpuset_mems);
  return 0;
}

int
oci_cmd_update (struct oci_ctx *c, int argc, char **argv)
{
  struct update_opts o = { 0 };
  struct plan_resources res = { 0 };
  cella_error_t err = NULL;
  struct target t = { 0 };
  bool loaded = false;
  int help = 0, first = cli_parse (update_table, &o, argc - 1, argv + 1, &help, &err), r = -1;
  if (first < 0)
    goto out;
  first++;
  if (help)
    {
      cli_print_help ("cella update [--resources FILE|-] [--memory BYTES] ... ID",
                      "Change the resource limits of a running container.", update_table);
      r = 0;
      goto out;
    }
  if (first >= argc)
    {
      cella_error (&err, 0, "update: a container id is required (usage: cella update [OPTIONS] ID)");
      goto out;
    }
  if (o.resources && resources_from_json (o.resources, &res, &err) < 0)
    goto out;
  if (resources_from_flags (&o, &res, &err) < 0)
    goto out;
  if (target_load (c, argv[first], &t, &err) < 0)
    goto out;
  loaded = true;
  if (strcmp (t.status, "stopped") == 0)
    {
      cella_error (&err, 0, "cannot update container `%s`: it is stopped", argv[first]);
      goto out;
    }
  r = cgroup_update (&t.cg, &res, &err);
out:
  if (loaded || t.p)
    target_clear (&t);
  free (res.cpuset_cpus);
  free (res.cpuset_mems);
  update_opts_free (&o);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- events ---- */

struct events_opts {
  bool stats;
  char *interval;
};
static const struct cli_option events_table[] = {
  { "stats", 0, OPT_FLAG, offsetof (struct events_opts, stats), NULL, "Print the resource usage once and exit" },
  { "interval", 0, OPT_STRING, offsetof (struct events_opts, interval), "DURATION",
    "How often to print it (5s, 500ms; default 5s)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

static json_t *
stats_json (const struct cgroup_stats *s)
{
  return json_pack ("{s:{s:{s:I}}, s:{s:{s:I, s:I, s:I}, s:I}, s:{s:I, s:I}, s:{s:I, s:I}}", "cpu", "usage", "total",
                    (json_int_t) s->cpu_ns, "memory", "usage", "usage", (json_int_t) s->mem_usage, "limit",
                    (json_int_t) s->mem_limit, "max", (json_int_t) s->mem_max_usage, "oom_kills",
                    (json_int_t) s->oom_kills, "pids", "current", (json_int_t) s->pids_current, "limit",
                    (json_int_t) s->pids_limit, "blkio", "read", (json_int_t) s->io_read, "write",
                    (json_int_t) s->io_write);
}

static void
print_event (const char *type, const char *id, json_t *data)
{
  json_t *o = json_pack ("{s:s, s:s}", "type", type, "id", id);
  char *text;
  if (data)
    json_object_set_new (o, "data", data);
  text = json_dumps (o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  printf ("%s\n", text);
  fflush (stdout);
  free (text);
  json_decref (o);
}

static long long
parse_interval_ms (const char *s)
{
  char *end;
  double v = strtod (s, &end);
  if (end == s || v <= 0)
    return -1;
  if (strcmp (end, "ms") == 0)
    return (long long) v;
  if (strcmp (end, "s") == 0 || *end == '\0')
    return (long long) (v * 1000);
  if (strcmp (end, "m") == 0)
    return (long long) (v * 60000);
  return -1;
}

int
oci_cmd_events (struct oci_ctx *c, int argc, char **argv)
{
  struct events_opts o = { 0 };
  cella_error_t err = NULL;
  struct target t = { 0 };
  long long ms = 5000, ooms = -1;
  int help = 0, first = cli_parse (events_table, &o, argc - 1, argv + 1, &help, &err), r = -1;
  if (first < 0)
    goto out;
  first++;
  if (help)
    {
      cli_print_help ("cella events [--stats] [--interval 5s] ID",
                      "Print a container's resource usage as JSON lines (and an `oom` event when one happens), "
                      "until it stops.",
                      events_table);
      r = 0;
      goto out;
    }
  if (first >= argc)
    {
      cella_error (&err, 0, "events: a container id is required (usage: cella events [--stats] ID)");
      goto out;
    }
  if (o.interval && (ms = parse_interval_ms (o.interval)) < 0)
    {
      cella_error (&err, 0, "events: --interval `%s`: expected a duration like 5s or 500ms", o.interval);
      goto out;
    }
  if (target_load (c, argv[first], &t, &err) < 0)
    goto out;
  for (;;)
    {
      struct cgroup_stats s;
      if (strcmp (oci_state_status (c->root, &t.st), "stopped") == 0)
        {
          if (o.stats)
            cella_error (&err, 0, "container `%s` is not running", t.st.id);
          else
            r = 0;
          break;
        }
      if (cgroup_stats (&t.cg, &s, &err) < 0)
        break;
      if (ooms >= 0 && s.oom_kills > ooms)
        print_event ("oom", t.st.id, NULL);
      ooms = s.oom_kills;
      print_event ("stats", t.st.id, stats_json (&s));
      if (o.stats)
        {
          r = 0;
          break;
        }
      usleep ((useconds_t) (ms * 1000));
    }
out:
  target_clear (&t);
  free (o.interval);
  return r < 0 ? oci_fail (c, &err) : 0;
}
