/* pause/unpause (the cgroup freezer, v1 and v2: cgroup_freeze) and update (live cgroup limits,
 * kept in the plan and state for the next start) of engine containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../cgroup/cgroup.h"
#include "../plan/resources.h"
#include "container.h"
#include "events.h"
#include "../util/paths.h"

static const char *
label (const struct ctr_state *st)
{
  return st->name ? st->name : st->id;
}

static int
cgroup_of (const char *id, const struct ctr_state *st, struct cgroup_dirs *dirs, cella_error_t *err)
{
  struct plan *p = NULL;
  int r;
  if (ctr_plan_load (id, &p, err) < 0)
    return -1;
  r = cgroup_path_of (p, dirs, NULL);
  plan_free (p);
  if (r < 0)
    return cella_error (err, 0, "container `%s` has no cgroup here (a rootless container without a delegated cgroup)",
                        label (st));
  return 0;
}

int
ctr_pause (const char *id, bool pause, cella_error_t *err)
{
  struct ctr_state st;
  struct cgroup_dirs dirs = { 0 };
  int r = -1, lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  if (st.status != CTR_RUNNING)
    cella_error (err, 0, "container `%s` is not running (status: %s)", label (&st), ctr_status_name (st.status));
  else if (st.paused == pause)
    cella_error (err, 0, "container `%s` is %s", label (&st), pause ? "already paused" : "not paused");
  else if (cgroup_of (id, &st, &dirs, err) == 0 && cgroup_freeze (&dirs, pause, err) == 0)
    {
      st.paused = pause;
      r = ctr_state_write (&st, err);
      if (r < 0 && pause)
        cgroup_freeze (&dirs, false, NULL); /* nothing half-done: not frozen unless recorded */
      if (r == 0)
        event_ctr (pause ? "pause" : "unpause", &st);
    }
  if (*err)
    cella_error_wrap (err, "%s", pause ? "pause" : "unpause");
  cgroup_dirs_clear (&dirs);
  ctr_state_clear (&st);
  close (lock);
  return r;
}

void
ctr_thaw_for_signal (struct ctr_state *st)
{
  struct cgroup_dirs dirs = { 0 };
  cella_error_t e = NULL;
  if (!st->paused)
    return;
  if (cgroup_of (st->id, st, &dirs, &e) < 0 || cgroup_freeze (&dirs, false, &e) < 0)
    {
      fprintf (stderr, "cella: thaw container `%s`: %s\n", label (st), e->msg);
      cella_error_free (&e);
    }
  else
    {
      st->paused = false;
      event_ctr ("unpause", st);
    }
  cgroup_dirs_clear (&dirs);
}

bool
ctr_is_paused (const char *id)
{
  struct ctr_state st;
  bool paused;
  if (ctr_state_read (id, &st, -1, NULL) < 0)
    return false;
  paused = st.paused && st.status == CTR_RUNNING;
  ctr_state_clear (&st);
  return paused;
}

static int
write_plan (const char *id, const struct plan *p, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/containers/%s/plan.json", paths_data_root (), id);
  cleanup_free char *json = plan_to_json (p);
  return write_file_atomic (path, json, strlen (json), 0600, err);
}

int
ctr_update (const char *id, const struct ctr_update *u, cella_error_t *err)
{
  struct ctr_state st;
  struct plan *p = NULL;
  struct plan_resources live = { 0 };
  struct cgroup_dirs dirs = { 0 };
  int r = -1, lock = ctr_lock (id, err);
  if (lock < 0)
    return -1;
  if (ctr_state_read (id, &st, lock, err) < 0)
    {
      close (lock);
      return -1;
    }
  if (ctr_plan_load (id, &p, err) < 0)
    goto out;
  if (u->restart && restart_policy_parse (u->restart, &st.restart, &st.restart_max, err) < 0)
    goto out;
  if (u->memory)
    {
      long long old_swap = p->res.memory_swap;
      live.memory = p->res.memory = u->memory;
      if (u->memory_swap)
        live.memory_swap = p->res.memory_swap = u->memory_swap;
      else if (u->memory > 0 && (old_swap == 0 || old_swap == p->res.memory * 2 || old_swap < u->memory))
        live.memory_swap = p->res.memory_swap = u->memory * 2; /* docker's default: as much swap as memory */
      else if (u->memory < 0)
        live.memory_swap = p->res.memory_swap = -1;
    }
  else if (u->memory_swap)
    {
      if (p->res.memory <= 0)
        {
          cella_error (err, 0, "--memory-swap needs a memory limit (--memory) on container `%s`", label (&st));
          goto out;
        }
      live.memory_swap = p->res.memory_swap = u->memory_swap;
    }
  if (p->res.memory_swap > 0 && p->res.memory > 0 && p->res.memory_swap < p->res.memory)
    {
      cella_error (err, 0, "--memory-swap (memory plus swap) must be at least --memory for container `%s`",
                   label (&st));
      goto out;
    }
  if (u->memory_reservation)
    live.memory_reservation = p->res.memory_reservation = u->memory_reservation;
  if (u->nano_cpus)
    {
      p->res.nano_cpus = u->nano_cpus;
      if (p->res.cpu_period == 0)
        p->res.cpu_period = 100000;
      live.cpu_period = p->res.cpu_period;
      live.cpu_quota = p->res.cpu_quota = cgroup_cpus_to_quota (u->nano_cpus, p->res.cpu_period);
    }
  if (u->cpu_shares)
    live.cpu_shares = p->res.cpu_shares = u->cpu_shares;
  if (u->pids_limit)
    live.pids_limit = p->res.pids_limit = u->pids_limit;
  if (cgroup_res_any (&live) && (st.status == CTR_RUNNING || st.status == CTR_RESTARTING))
    {
      /* the running cgroup first: a value the kernel refuses changes nothing */
      if (cgroup_of (id, &st, &dirs, err) < 0 || cgroup_update (&dirs, &live, err) < 0)
        goto out;
    }
  if (write_plan (id, p, err) < 0 || ctr_state_write (&st, err) < 0)
    goto out;
  event_ctr ("update", &st);
  r = 0;
out:
  if (*err)
    cella_error_wrap (err, "update `%s`", label (&st));
  cgroup_dirs_clear (&dirs);
  plan_free (p);
  ctr_state_clear (&st);
  close (lock);
  return r;
}
