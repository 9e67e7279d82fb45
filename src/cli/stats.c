/* cella stats: what running containers use, read from their cgroups (src/ns/cgroup_ctl.c), in docker's
 * columns: CPU %, MEM USAGE / LIMIT, MEM %, BLOCK I/O, PIDS. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../engine/container.h"
#include "../backend/backend.h"
#include "../cgroup/cgroup.h"
#include "commands.h"
#include "../util/options.h"

struct stats_opts {
  bool no_stream, all;
  char *format;
};

#define O(f) offsetof (struct stats_opts, f)
static const struct cli_option stats_table[] = {
  { "no-stream", 0, OPT_FLAG, O (no_stream), NULL, "Print once and exit (default: refresh every second until Ctrl-C)" },
  { "all", 'a', OPT_FLAG, O (all), NULL, "Show all containers (default: running ones)" },
  { "format", 0, OPT_STRING, O (format), "table|json",
    "Output format (json: one object per line, docker's fields plus raw "
    "numbers)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

/* One container's row: two samples of its cpu time give the cpu %. */
struct row {
  char *id, *name;
  bool running;
  struct cgroup_dirs dirs;
  bool has_dirs;
  struct cgroup_stats st;
  long long cpu0_ns, t0_ns;
  double cpu_pct;
};

static void
row_clear (struct row *r)
{
  free (r->id);
  free (r->name);
  cgroup_dirs_clear (&r->dirs);
  memset (r, 0, sizeof *r);
}

static long long
mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* docker's units.BytesSize: binary, "1.5MiB" */
static void
bytes_binary (char *buf, size_t n, long long v)
{
  static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double d = (double) v;
  int i = 0;
  if (v < 0)
    {
      snprintf (buf, n, "--");
      return;
    }
  while (d >= 1024 && i < 4)
    d /= 1024, i++;
  snprintf (buf, n, i ? "%.4g%s" : "%.0f%s", d, u[i]);
}

/* docker's units.HumanSize: decimal, "1.2MB" */
static void
bytes_decimal (char *buf, size_t n, long long v)
{
  static const char *const u[] = { "B", "kB", "MB", "GB", "TB" };
  double d = (double) v;
  int i = 0;
  if (v < 0)
    {
      snprintf (buf, n, "--");
      return;
    }
  while (d >= 1000 && i < 4)
    d /= 1000, i++;
  snprintf (buf, n, "%.4g%s", d, u[i]);
}

static void
sample (struct row *r)
{
  if (!r->has_dirs || cgroup_stats (&r->dirs, &r->st, NULL) < 0)
    {
      memset (&r->st, 0, sizeof r->st);
      r->st.mem_usage = r->st.mem_limit = r->st.cpu_ns = r->st.pids_current = -1;
      r->st.io_read = r->st.io_write = r->st.mem_max_usage = r->st.pids_limit = -1;
    }
}

static int
row_open (struct row *r, const char *id, cella_error_t *err)
{
  struct ctr_state st;
  struct plan *p = NULL;
  memset (r, 0, sizeof *r);
  if (ctr_state_read (id, &st, -1, err) < 0)
    return -1;
  r->id = xstrdup (id);
  r->name = xstrdup (st.name ? st.name : "");
  r->running = st.status == CTR_RUNNING;
  ctr_state_clear (&st);
  if (r->running && ctr_plan_load (id, &p, NULL) == 0 && backend_can (p, BACKEND_CAP_CGROUP_LIMITS)
      && cgroup_path_of (p, &r->dirs, NULL) == 0)
    r->has_dirs = true;
  plan_free (p);
  return 0;
}

static void
take_first (struct row *rows, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      sample (&rows[i]);
      rows[i].cpu0_ns = rows[i].st.cpu_ns;
      rows[i].t0_ns = mono_ns ();
    }
}

static void
take_second (struct row *rows, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      long long t = mono_ns ();
      sample (&rows[i]);
      rows[i].cpu_pct = rows[i].st.cpu_ns >= 0 && rows[i].cpu0_ns >= 0 && t > rows[i].t0_ns
                            ? 100.0 * (double) (rows[i].st.cpu_ns - rows[i].cpu0_ns) / (double) (t - rows[i].t0_ns)
                            : 0;
      rows[i].cpu0_ns = rows[i].st.cpu_ns;
      rows[i].t0_ns = t;
    }
}

static double
mem_pct (const struct cgroup_stats *s)
{
  return s->mem_usage >= 0 && s->mem_limit > 0 ? 100.0 * (double) s->mem_usage / (double) s->mem_limit : 0;
}

static void
print_json (const struct row *r)
{
  const struct cgroup_stats *s = &r->st;
  char cpu[32], mem[64], pct[32], bio[64], pids[32], a[24], b[24];
  json_t *o;
  char *text;
  snprintf (cpu, sizeof cpu, "%.2f%%", r->cpu_pct);
  bytes_binary (a, sizeof a, s->mem_usage);
  bytes_binary (b, sizeof b, s->mem_limit);
  snprintf (mem, sizeof mem, "%s / %s", a, b);
  snprintf (pct, sizeof pct, "%.2f%%", mem_pct (s));
  bytes_decimal (a, sizeof a, s->io_read);
  bytes_decimal (b, sizeof b, s->io_write);
  snprintf (bio, sizeof bio, "%s / %s", a, b);
  snprintf (pids, sizeof pids, "%lld", s->pids_current < 0 ? 0 : s->pids_current);
  snprintf (a, sizeof a, "%.12s", r->id);
  o = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "ID", r->id, "Container", a, "Name", r->name,
                 "CPUPerc", cpu, "MemUsage", mem, "MemPerc", pct, "BlockIO", bio, "PIDs", pids, "Running",
                 (int) r->running);
  json_object_set_new (o, "MemoryUsage", json_integer (s->mem_usage));
  json_object_set_new (o, "MemoryLimit", json_integer (s->mem_limit));
  json_object_set_new (o, "MemoryMaxUsage", json_integer (s->mem_max_usage));
  json_object_set_new (o, "CpuNs", json_integer (s->cpu_ns));
  json_object_set_new (o, "PidsCurrent", json_integer (s->pids_current));
  json_object_set_new (o, "PidsLimit", json_integer (s->pids_limit));
  json_object_set_new (o, "BlockRead", json_integer (s->io_read));
  json_object_set_new (o, "BlockWrite", json_integer (s->io_write));
  json_object_set_new (o, "OOMKills", json_integer (s->oom_kills));
  text = json_dumps (o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  puts (text);
  free (text);
  json_decref (o);
}

static void
print_table (const struct row *rows, size_t n)
{
  printf ("%-14s %-20s %-8s %-22s %-8s %-20s %s\n", "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
          "BLOCK I/O", "PIDS");
  for (size_t i = 0; i < n; i++)
    {
      const struct cgroup_stats *s = &rows[i].st;
      char mem[64], bio[64], a[24], b[24], cpu[16], pct[16];
      if (s->mem_usage < 0 && s->cpu_ns < 0)
        {
          printf ("%-14.12s %-20s %-8s %-22s %-8s %-20s %s\n", rows[i].id, rows[i].name, "--", "-- / --", "--",
                  "-- / --", "--");
          continue;
        }
      bytes_binary (a, sizeof a, s->mem_usage);
      bytes_binary (b, sizeof b, s->mem_limit);
      snprintf (mem, sizeof mem, "%s / %s", a, b);
      bytes_decimal (a, sizeof a, s->io_read);
      bytes_decimal (b, sizeof b, s->io_write);
      snprintf (bio, sizeof bio, "%s / %s", a, b);
      snprintf (cpu, sizeof cpu, "%.2f%%", rows[i].cpu_pct);
      snprintf (pct, sizeof pct, "%.2f%%", mem_pct (s));
      printf ("%-14.12s %-20s %-8s %-22s %-8s %-20s %lld\n", rows[i].id, rows[i].name, cpu, mem, pct, bio,
              s->pids_current < 0 ? 0 : s->pids_current);
    }
}

/* The containers named, or every running one (-a: every one). */
static int
collect (const struct stats_opts *o, int argc, char **argv, struct row **rows, size_t *n, cella_error_t *err)
{
  *rows = NULL;
  *n = 0;
  if (argc > 0)
    {
      *rows = xzalloc ((size_t) argc * sizeof **rows);
      for (int i = 0; i < argc; i++)
        {
          cleanup_free char *id = NULL;
          if (ctr_lookup (argv[i], &id, err) < 0 || row_open (&(*rows)[*n], id, err) < 0)
            return -1;
          (*n)++;
        }
      return 0;
    }
  {
    struct ctr_state *all;
    size_t na;
    if (ctr_list (&all, &na, err) < 0)
      return -1;
    *rows = xzalloc ((na + 1) * sizeof **rows);
    for (size_t i = 0; i < na; i++)
      if ((o->all || all[i].status == CTR_RUNNING) && row_open (&(*rows)[*n], all[i].id, NULL) == 0)
        (*n)++;
    ctr_list_free (all, na);
  }
  return 0;
}

int
cmd_stats (int argc, char **argv)
{
  struct stats_opts o = { 0 };
  cella_error_t err = NULL;
  struct row *rows = NULL;
  size_t n = 0;
  bool json;
  int status, first = cli_parse_command (stats_table, &o, argc, argv, "cella stats [OPTIONS] [CONTAINER...]",
                                         "Show what containers use: cpu, memory, block I/O, processes (from "
                                         "their "
                                         "cgroups).\nWithout names: every running container.",
                                         0, "", &status);
  if (first <= 0)
    goto out;
  json = o.format && strcmp (o.format, "json") == 0;
  if (o.format && !json && strcmp (o.format, "table") != 0)
    {
      cella_error (&err, 0, "stats: --format `%s`: expected table or json", o.format);
      status = cella_error_print (&err);
      goto out;
    }
  if (collect (&o, argc - first, argv + first, &rows, &n, &err) < 0)
    {
      status = cella_error_print (&err);
      goto out;
    }
  take_first (rows, n);
  for (bool again = true; again; again = !o.no_stream)
    {
      struct timespec ts = o.no_stream ? (struct timespec){ 0, 250 * 1000000L } : (struct timespec){ 1, 0 };
      nanosleep (&ts, NULL);
      take_second (rows, n);
      if (!o.no_stream && !json && isatty (1))
        fputs ("\033[2J\033[H", stdout);
      if (json)
        for (size_t i = 0; i < n; i++)
          print_json (&rows[i]);
      else
        print_table (rows, n);
      fflush (stdout);
    }
  status = 0;
out:
  for (size_t i = 0; i < n; i++)
    row_clear (&rows[i]);
  free (rows);
  free (o.format);
  return status;
}
