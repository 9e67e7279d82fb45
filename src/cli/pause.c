/* cella pause, unpause, update: engine containers' freezer and live limits (src/engine/pause.c). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../engine/container.h"
#include "../plan/resources.h"
#include "commands.h"
#include "../util/options.h"

static const struct cli_option no_table[] = {
  { NULL, 0, 0, 0, NULL, NULL },
};

static int
pause_cmd (int argc, char **argv, bool pause)
{
  int status,
      rc = 0,
      first = cli_parse_command (
          no_table, NULL, argc, argv, pause ? "cella pause CONTAINER..." : "cella unpause CONTAINER...",
          pause ? "Freeze every process of running containers (the cgroup freezer)." : "Thaw paused containers.", 1,
          "a CONTAINER is required", &status);
  if (first <= 0)
    return status;
  for (int i = first; i < argc; i++)
    {
      cella_error_t err = NULL;
      cleanup_free char *id = NULL;
      if (ctr_lookup (argv[i], &id, &err) < 0 || ctr_pause (id, pause, &err) < 0)
        rc = cella_error_print (&err);
      else
        puts (argv[i]);
    }
  return rc;
}

int
cmd_pause (int argc, char **argv)
{
  return pause_cmd (argc, argv, true);
}

int
cmd_unpause (int argc, char **argv)
{
  return pause_cmd (argc, argv, false);
}

struct upd_opts {
  char *memory, *memory_swap, *memory_reservation, *cpus, *cpu_shares, *pids_limit, *restart;
};

#define O(f) offsetof (struct upd_opts, f)
static const struct cli_option update_table[] = {
  { "memory", 'm', OPT_STRING, O (memory), "BYTES", "Memory limit (64m, 1g; -1: none)" },
  { "memory-swap", 0, OPT_STRING, O (memory_swap), "BYTES", "Memory plus swap (-1: unlimited swap)" },
  { "memory-reservation", 0, OPT_STRING, O (memory_reservation), "BYTES", "Soft memory limit" },
  { "cpus", 0, OPT_STRING, O (cpus), "N", "CPUs (1.5: one and a half)" },
  { "cpu-shares", 'c', OPT_STRING, O (cpu_shares), "N", "Relative CPU weight (2..262144)" },
  { "pids-limit", 0, OPT_STRING, O (pids_limit), "N", "Most processes at once (-1: no limit)" },
  { "restart", 0, OPT_STRING, O (restart), "POLICY", "no, on-failure[:N], always, unless-stopped" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static int
bytes_opt (const char *flag, const char *v, long long *out, cella_error_t *err)
{
  if (v == NULL)
    return 0;
  if (strcmp (v, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  if ((*out = cgroup_parse_bytes (v)) <= 0)
    return cella_error (err, 0, "update: --%s `%s`: expected a size (64m, 1g) or -1", flag, v);
  if (strcmp (flag, "memory") == 0 && *out < 6 * 1024 * 1024)
    return cella_error (err, 0, "update: --memory `%s`: the least is 6m", v);
  return 0;
}

static int
parse_update (const struct upd_opts *o, struct ctr_update *u, cella_error_t *err)
{
  memset (u, 0, sizeof *u);
  if (bytes_opt ("memory", o->memory, &u->memory, err) < 0
      || bytes_opt ("memory-swap", o->memory_swap, &u->memory_swap, err) < 0
      || bytes_opt ("memory-reservation", o->memory_reservation, &u->memory_reservation, err) < 0)
    return -1;
  if (o->cpus && (u->nano_cpus = cgroup_parse_cpus (o->cpus)) <= 0)
    return cella_error (err, 0, "update: --cpus `%s`: expected a positive number (1.5)", o->cpus);
  if (o->cpu_shares)
    {
      long long n = parse_uint (o->cpu_shares, 262144);
      if (n < 2)
        return cella_error (err, 0, "update: --cpu-shares `%s`: expected 2..262144", o->cpu_shares);
      u->cpu_shares = (unsigned long long) n;
    }
  if (o->pids_limit)
    {
      long long n = strcmp (o->pids_limit, "-1") == 0 || strcmp (o->pids_limit, "0") == 0
                        ? -1
                        : parse_uint (o->pids_limit, (1ULL << 62));
      if (n == -1 && strcmp (o->pids_limit, "-1") != 0 && strcmp (o->pids_limit, "0") != 0)
        return cella_error (err, 0, "update: --pids-limit `%s`: expected a number, or -1 for none", o->pids_limit);
      u->pids_limit = n;
    }
  if (o->restart)
    {
      enum restart_policy rp;
      int max;
      if (restart_policy_parse (o->restart, &rp, &max, err) < 0)
        return cella_error_wrap (err, "update: --restart");
      u->restart = o->restart;
    }
  if (!o->memory && !o->memory_swap && !o->memory_reservation && !o->cpus && !o->cpu_shares && !o->pids_limit
      && !o->restart)
    return cella_error (err, 0,
                        "update: nothing to change (give --memory, --cpus, --pids-limit, --cpu-shares or --restart)");
  return 0;
}

int
cmd_update (int argc, char **argv)
{
  struct upd_opts o = { 0 };
  struct ctr_update u;
  cella_error_t err = NULL;
  int status, first = cli_parse_command (update_table, &o, argc, argv, "cella update [OPTIONS] CONTAINER...",
                                         "Change containers' resource limits (at once in a running container's "
                                         "cgroup) and restart policy; kept for their next start.",
                                         1, "a CONTAINER is required", &status);
  if (first <= 0)
    goto out;
  status = 0;
  if (parse_update (&o, &u, &err) < 0)
    status = cella_error_print (&err);
  else
    for (int i = first; i < argc; i++)
      {
        cleanup_free char *id = NULL;
        if (ctr_lookup (argv[i], &id, &err) < 0 || ctr_update (id, &u, &err) < 0)
          status = cella_error_print (&err);
        else
          puts (argv[i]);
      }
out:
  free (o.memory);
  free (o.memory_swap);
  free (o.memory_reservation);
  free (o.cpus);
  free (o.cpu_shares);
  free (o.pids_limit);
  free (o.restart);
  return status;
}
