/* A container's existing cgroup: applying limits (at start and by update), freezing, listing and signalling
 * its processes, reading its usage back. v1 files and v2 files side by side, one small function per resource.
 * docs/resources.md has the file each limit lands in. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_internal.h"

bool
cg_word (const char *list, const char *word)
{
  size_t n = strlen (word);
  for (const char *s = list; s && (s = strstr (s, word)) != NULL; s += n)
    if ((s == list || s[-1] == ' ' || s[-1] == '\n') && (s[n] == '\0' || s[n] == ' ' || s[n] == '\n'))
      return true;
  return false;
}

bool
cg_v2_needed (const struct plan_resources *r, const char *ctl)
{
  if (strcmp (ctl, "memory") == 0)
    return r->memory || r->memory_reservation || r->memory_swap;
  if (strcmp (ctl, "pids") == 0)
    return r->pids_limit != 0;
  if (strcmp (ctl, "cpu") == 0)
    return r->cpu_shares || r->cpu_quota || r->cpu_period;
  if (strcmp (ctl, "cpuset") == 0)
    return r->cpuset_cpus || r->cpuset_mems;
  if (strcmp (ctl, "io") == 0)
    return r->io_weight != 0 || r->nio_throttle;
  if (strcmp (ctl, "hugetlb") == 0)
    return r->nhugepage_limits != 0;
  return false;
}

bool
cg_unified_used (const struct cgroup_dirs *d, const struct plan_resources *r)
{
  return d->layout == CGROUP_HYBRID && d->unified && d->v1[CG_HUGETLB] == NULL && r->nhugepage_limits;
}

/* The directory that holds controller `ctl`'s files (v1: its hierarchy; v2: the one directory, when the
 * controller is enabled there); NULL with an error naming what is missing. */
static const char *
ctl_dir (const struct cgroup_dirs *d, enum cgroup_v1 c, const char *what, cella_error_t *err)
{
  static const char *const v2_of[CG_V1__COUNT] = {
    [CG_MEMORY] = "memory", [CG_CPU] = "cpu",    [CG_CPUACCT] = "cpu", [CG_CPUSET] = "cpuset",   [CG_PIDS] = "pids",
    [CG_BLKIO] = "io",      [CG_FREEZER] = NULL, [CG_DEVICES] = NULL,  [CG_HUGETLB] = "hugetlb",
  };
  if (d->layout == CGROUP_V2)
    {
      cleanup_free char *ctls = cg_read (d->v2, "cgroup.controllers");
      if (v2_of[c] == NULL || (ctls && cg_word (ctls, v2_of[c])))
        return d->v2;
      cella_error (err, 0,
                   "cgroup: %s was asked, but the `%s` controller is not "
                   "available in `%s`",
                   what, v2_of[c], d->v2);
      return NULL;
    }
  if (d->v1[c] == NULL)
    cella_error (err, 0, "cgroup: %s was asked, but this host has no `%s` cgroup controller", what, cg_v1_name (c));
  return d->v1[c];
}

static char *
num_or (long long v, const char *unlimited)
{
  return v < 0 ? xstrdup (unlimited) : xasprintf ("%lld", v);
}

/* A number from a one-value file ("max" → -1); def when unreadable. */
static long long
read_num (const char *dir, const char *file, long long def)
{
  cleanup_free char *t = dir ? cg_read (dir, file) : NULL;
  if (t == NULL)
    return def;
  if (has_prefix (t, "max"))
    return -1;
  return strtoll (t, NULL, 10);
}

static int
apply_memory_v1 (const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  cleanup_free char *mem = num_or (r->memory, "-1"), *swap = num_or (r->memory_swap, "-1");
  if (r->memory_swap && !cg_has (dir, "memory.memsw.limit_in_bytes"))
    fprintf (stderr, "cella: this kernel does not account swap (no "
                     "memory.memsw.limit_in_bytes): the swap limit is "
                     "not applied\n");
  else if (r->memory_swap && r->memory
           && (r->memory_swap < 0 || r->memory_swap > read_num (dir, "memory.memsw.limit_in_bytes", 0)))
    {
      /* memsw may never be below the memory limit: raise it first */
      if (cg_write (dir, "memory.memsw.limit_in_bytes", swap, err) < 0
          || cg_write (dir, "memory.limit_in_bytes", mem, err) < 0)
        return -1;
      goto soft;
    }
  if (r->memory && cg_write (dir, "memory.limit_in_bytes", mem, err) < 0)
    return -1;
  if (r->memory_swap && cg_has (dir, "memory.memsw.limit_in_bytes")
      && cg_write (dir, "memory.memsw.limit_in_bytes", swap, err) < 0)
    return -1;
soft:
  if (r->memory_reservation)
    {
      cleanup_free char *soft = num_or (r->memory_reservation, "-1");
      return cg_write (dir, "memory.soft_limit_in_bytes", soft, err);
    }
  return 0;
}

static int
apply_memory_v2 (const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  if (r->memory)
    {
      cleanup_free char *v = num_or (r->memory, "max");
      if (cg_write (dir, "memory.max", v, err) < 0)
        return -1;
    }
  if (r->memory_swap)
    {
      /* v2 limits swap alone: memory.swap.max = (memory + swap) − memory */
      long long mem = r->memory ? r->memory : read_num (dir, "memory.max", -1);
      cleanup_free char *v = NULL;
      if (!cg_has (dir, "memory.swap.max"))
        fprintf (stderr, "cella: this kernel does not account swap (no "
                         "memory.swap.max): the swap limit is not applied\n");
      else
        {
          if (r->memory_swap > 0 && mem >= 0 && r->memory_swap < mem)
            return cella_error (err, 0, "cgroup: memory+swap limit %lld is below the memory limit %lld", r->memory_swap,
                                mem);
          v = r->memory_swap < 0 || mem < 0 ? xstrdup ("max") : xasprintf ("%lld", r->memory_swap - mem);
          if (cg_write (dir, "memory.swap.max", v, err) < 0)
            return -1;
        }
    }
  if (r->memory_reservation)
    {
      cleanup_free char *v = num_or (r->memory_reservation, "max");
      return cg_write (dir, "memory.low", v, err);
    }
  return 0;
}

static int
apply_cpu (const struct cgroup_dirs *d, const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  bool v2 = d->layout == CGROUP_V2;
  if (r->cpu_shares)
    {
      cleanup_free char *v = xasprintf ("%llu", v2 ? cgroup_shares_to_weight (r->cpu_shares) : r->cpu_shares);
      if (cg_write (dir, v2 ? "cpu.weight" : "cpu.shares", v, err) < 0)
        return -1;
    }
  if (!r->cpu_quota && !r->cpu_period)
    return 0;
  if (v2)
    {
      /* "QUOTA PERIOD": what is not given stays as it is */
      cleanup_free char *cur = cg_read (dir, "cpu.max"), *v = NULL;
      char q[32] = "max";
      unsigned long long period = 100000;
      if (cur)
        sscanf (cur, "%31s %llu", q, &period);
      if (r->cpu_period)
        period = r->cpu_period;
      if (r->cpu_quota)
        v = r->cpu_quota < 0 ? xasprintf ("max %llu", period) : xasprintf ("%lld %llu", r->cpu_quota, period);
      else
        v = xasprintf ("%s %llu", q, period);
      return cg_write (dir, "cpu.max", v, err);
    }
  if (r->cpu_period)
    {
      cleanup_free char *v = xasprintf ("%llu", r->cpu_period);
      if (cg_write (dir, "cpu.cfs_period_us", v, err) < 0)
        return -1;
    }
  if (r->cpu_quota)
    {
      cleanup_free char *v = xasprintf ("%lld", r->cpu_quota < 0 ? -1 : r->cpu_quota);
      return cg_write (dir, "cpu.cfs_quota_us", v, err);
    }
  return 0;
}

static int
apply_io_weight (const struct cgroup_dirs *d, const char *dir, unsigned w, cella_error_t *err)
{
  cleanup_free char *v = NULL;
  if (w < 10 || w > 1000)
    return cella_error (err, 0, "cgroup: blkio weight %u: must be 10 to 1000", w);
  if (d->layout == CGROUP_V2 && cg_has (dir, "io.weight"))
    {
      v = xasprintf ("default %u", 1 + (w - 10) * 9999 / 990);
      return cg_write (dir, "io.weight", v, err);
    }
  v = xasprintf ("%u", w);
  if (d->layout == CGROUP_V2 && cg_has (dir, "io.bfq.weight"))
    return cg_write (dir, "io.bfq.weight", v, err);
  if (d->layout != CGROUP_V2 && cg_has (dir, "blkio.weight"))
    return cg_write (dir, "blkio.weight", v, err);
  if (d->layout != CGROUP_V2 && cg_has (dir, "blkio.bfq.weight"))
    return cg_write (dir, "blkio.bfq.weight", v, err);
  return cella_error (err, 0,
                      "cgroup: blkio weight %u was asked, but `%s` has no "
                      "weight file (the block I/O scheduler "
                      "has no proportional weights: use bfq)",
                      w, dir);
}

/* swappiness, the OOM killer off, the TCP buffer limit: v1 only (cgroup v2 has no such knob; a
 * kernelTCP limit is then ignored, as runc does) */
static int
apply_memory_extras (const struct cgroup_dirs *d, const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  if (d->layout == CGROUP_V2 && !r->has_swappiness && !r->disable_oom_killer)
    return 0;
  if (d->layout == CGROUP_V2)
    return cella_error (err, 0, "cgroup: %s was asked, but cgroup v2 has no such setting",
                        r->has_swappiness ? "memory swappiness" : "disabling the OOM killer");
  if (r->has_swappiness)
    {
      cleanup_free char *v = xasprintf ("%llu", r->memory_swappiness);
      if (cg_write (dir, "memory.swappiness", v, err) < 0)
        return -1;
    }
  if (r->memory_kernel_tcp)
    {
      cleanup_free char *v = xasprintf ("%lld", r->memory_kernel_tcp);
      if (cg_write (dir, "memory.kmem.tcp.limit_in_bytes", v, err) < 0)
        return -1;
    }
  return r->disable_oom_killer ? cg_write (dir, "memory.oom_control", "1", err) : 0;
}

/* hugetlb.<size>.limit_in_bytes (v1) or hugetlb.<size>.max (v2, and hybrid's cgroup2 tree) */
static int
apply_hugetlb (const struct cgroup_dirs *d, const struct plan_resources *r, cella_error_t *err)
{
  const char *dir;
  bool v2 = d->layout == CGROUP_V2 || cg_unified_used (d, r);
  if (cg_unified_used (d, r))
    dir = d->unified;
  else if ((dir = ctl_dir (d, CG_HUGETLB, "a hugepage limit", err)) == NULL)
    return -1;
  for (size_t i = 0; i < r->nhugepage_limits; i++)
    {
      const struct plan_hugepage_limit *l = &r->hugepage_limits[i];
      cleanup_free char *file = xasprintf ("hugetlb.%s.%s", l->page_size, v2 ? "max" : "limit_in_bytes");
      cleanup_free char *v = xasprintf ("%llu", l->limit);
      if (!cg_has (dir, file))
        return cella_error (err, 0, "cgroup: hugepage limit for page size %s: this host has no `%s/%s`", l->page_size,
                            dir, file);
      if (cg_write (dir, file, v, err) < 0)
        return -1;
    }
  return 0;
}

/* v1 blkio.throttle.<op>_device "MAJ:MIN RATE"; v2 io.max "MAJ:MIN rbps=RATE" */
static int
apply_io_throttle (const struct cgroup_dirs *d, const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  static const char *const v1_files[] = { [IO_READ_BPS] = "blkio.throttle.read_bps_device",
                                          [IO_WRITE_BPS] = "blkio.throttle.write_bps_device",
                                          [IO_READ_IOPS] = "blkio.throttle.read_iops_device",
                                          [IO_WRITE_IOPS] = "blkio.throttle.write_iops_device" };
  static const char *const v2_keys[]
      = { [IO_READ_BPS] = "rbps", [IO_WRITE_BPS] = "wbps", [IO_READ_IOPS] = "riops", [IO_WRITE_IOPS] = "wiops" };
  for (size_t i = 0; i < r->nio_throttle; i++)
    {
      const struct plan_io_throttle *t = &r->io_throttle[i];
      cleanup_free char *v = NULL;
      if (d->layout == CGROUP_V2)
        {
          v = xasprintf ("%lld:%lld %s=%llu", t->major, t->minor, v2_keys[t->kind], t->rate);
          if (cg_write (dir, "io.max", v, err) < 0)
            return -1;
        }
      else
        {
          v = xasprintf ("%lld:%lld %llu", t->major, t->minor, t->rate);
          if (cg_write (dir, v1_files[t->kind], v, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* OCI linux.resources.unified: cgroup v2 file names and values, written as given */
static int
apply_unified (const struct cgroup_dirs *d, char *const *kv, cella_error_t *err)
{
  if (d->layout != CGROUP_V2)
    return cella_error (err, 0, "cgroup: linux.resources.unified needs cgroup v2 (this host: %s)",
                        cgroup_layout_name (d->layout));
  for (size_t i = 0; kv[i]; i++)
    {
      const char *eq = strchr (kv[i], '=');
      cleanup_free char *key = eq ? strndup (kv[i], (size_t) (eq - kv[i])) : NULL;
      if (key == NULL || *key == '\0' || strchr (key, '/') || key[0] == '.')
        return cella_error (err, 0, "cgroup: unified key `%s`: not a cgroup file name", kv[i]);
      if (cg_write (d->v2, key, eq + 1, err) < 0)
        return -1;
    }
  return 0;
}

int
cgroup_update (const struct cgroup_dirs *d, const struct plan_resources *r, cella_error_t *err)
{
  const char *dir;
  if (r->memory || r->memory_swap || r->memory_reservation)
    {
      if ((dir = ctl_dir (d, CG_MEMORY, "a memory limit", err)) == NULL)
        return -1;
      if ((d->layout == CGROUP_V2 ? apply_memory_v2 (dir, r, err) : apply_memory_v1 (dir, r, err)) < 0)
        return -1;
    }
  if (r->cpu_shares || r->cpu_quota || r->cpu_period)
    {
      if ((dir = ctl_dir (d, CG_CPU, "a cpu limit", err)) == NULL || apply_cpu (d, dir, r, err) < 0)
        return -1;
    }
  if (r->cpuset_cpus || r->cpuset_mems)
    {
      if ((dir = ctl_dir (d, CG_CPUSET, "a cpuset", err)) == NULL)
        return -1;
      /* a list the host's cpus or memory nodes do not cover: the kernel says EINVAL; name the option */
      if (r->cpuset_cpus && cg_write (dir, "cpuset.cpus", r->cpuset_cpus, err) < 0)
        return cella_error_wrap (err, "--cpuset-cpus %s", r->cpuset_cpus);
      if (r->cpuset_mems && cg_write (dir, "cpuset.mems", r->cpuset_mems, err) < 0)
        return cella_error_wrap (err, "--cpuset-mems %s", r->cpuset_mems);
    }
  if (r->pids_limit)
    {
      cleanup_free char *v = num_or (r->pids_limit, "max");
      if ((dir = ctl_dir (d, CG_PIDS, "a pids limit", err)) == NULL || cg_write (dir, "pids.max", v, err) < 0)
        return -1;
    }
  if (r->io_weight)
    {
      if ((dir = ctl_dir (d, CG_BLKIO, "a blkio weight", err)) == NULL
          || apply_io_weight (d, dir, r->io_weight, err) < 0)
        return -1;
    }
  if (r->has_swappiness || r->disable_oom_killer || r->memory_kernel_tcp)
    {
      if ((dir = ctl_dir (d, CG_MEMORY, "a memory setting", err)) == NULL || apply_memory_extras (d, dir, r, err) < 0)
        return -1;
    }
  if (r->nhugepage_limits && apply_hugetlb (d, r, err) < 0)
    return -1;
  if (r->nio_throttle)
    {
      if ((dir = ctl_dir (d, CG_BLKIO, "a block I/O throttle", err)) == NULL || apply_io_throttle (d, dir, r, err) < 0)
        return -1;
    }
  if (r->unified && r->unified[0] && apply_unified (d, r->unified, err) < 0)
    return -1;
  return 0;
}

/* ---- processes --------------------------------------------------------------------------------------- */

/* Where to read cgroup.procs: v2's directory, or the first v1 hierarchy the container is in. */
static const char *
procs_dir (const struct cgroup_dirs *d)
{
  static const enum cgroup_v1 order[]
      = { CG_PIDS, CG_FREEZER, CG_MEMORY, CG_CPU, CG_CPUACCT, CG_CPUSET, CG_BLKIO, CG_DEVICES, CG_HUGETLB };
  if (d->layout == CGROUP_V2)
    return d->v2;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (d->v1[order[i]])
      return d->v1[order[i]];
  return d->unified; /* hybrid, devices only: the cgroup2 tree's */
}

int
cgroup_pids (const struct cgroup_dirs *d, pid_t **pids, size_t *n, cella_error_t *err)
{
  const char *dir = procs_dir (d);
  cleanup_free char *text = NULL;
  char *save = NULL;
  size_t cap = 16;
  *pids = NULL;
  *n = 0;
  if (dir == NULL)
    return cella_error (err, 0, "cgroup: the container has none");
  text = cg_read (dir, "cgroup.procs");
  if (text == NULL)
    return cella_error (err, errno, "cgroup: read `%s/cgroup.procs`", dir);
  *pids = xmalloc (cap * sizeof **pids);
  for (char *w = strtok_r (text, "\n", &save); w; w = strtok_r (NULL, "\n", &save))
    {
      if (*n == cap)
        *pids = xrealloc (*pids, (cap *= 2) * sizeof **pids);
      (*pids)[(*n)++] = (pid_t) atoi (w);
    }
  return 0;
}

int
cgroup_signal_all (const struct cgroup_dirs *d, int sig, cella_error_t *err)
{
  /* v1 and no cgroup.kill: a fork between reading the list and the kill escapes one round, so SIGKILL goes
   * round until the cgroup is empty (bounded) */
  int rounds = sig == SIGKILL ? 50 : 1;
  if (sig == SIGKILL && d->layout == CGROUP_V2 && d->v2 && cg_has (d->v2, "cgroup.kill"))
    return cg_write (d->v2, "cgroup.kill", "1", err);
  for (int i = 0; i < rounds; i++)
    {
      pid_t *pids;
      size_t n;
      struct timespec ts = { 0, 2 * 1000000L };
      if (cgroup_pids (d, &pids, &n, err) < 0)
        {
          if (i == 0)
            return -1;
          cella_error_free (err); /* emptied and removed meanwhile (its monitor saw the exit) */
          return 0;
        }
      for (size_t k = 0; k < n; k++)
        if (kill (pids[k], sig) < 0 && errno != ESRCH)
          {
            free (pids);
            return cella_error (err, errno, "cgroup: signal %d to process %d", sig, (int) pids[k]);
          }
      free (pids);
      if (n == 0)
        break;
      nanosleep (&ts, NULL);
    }
  return 0;
}

int
cgroup_freeze (const struct cgroup_dirs *d, bool freeze, cella_error_t *err)
{
  const char *dir = d->layout == CGROUP_V2 ? d->v2 : d->v1[CG_FREEZER];
  bool v2 = d->layout == CGROUP_V2;
  if (dir == NULL)
    return cella_error (err, 0,
                        "cgroup: %s needs the freezer, and this host has no "
                        "`freezer` cgroup controller",
                        freeze ? "pause" : "resume");
  if (cg_write (dir, v2 ? "cgroup.freeze" : "freezer.state", v2 ? (freeze ? "1" : "0") : (freeze ? "FROZEN" : "THAWED"),
                err)
      < 0)
    return -1;
  for (int i = 0; i < 1000; i++)
    {
      cleanup_free char *t = cg_read (dir, v2 ? "cgroup.events" : "freezer.state");
      struct timespec ts = { 0, 5 * 1000000L };
      if (t
          && (v2 ? strstr (t, freeze ? "frozen 1" : "frozen 0") != NULL : has_prefix (t, freeze ? "FROZEN" : "THAWED")))
        return 0;
      /* v1 can stay FREEZING while a task is in an uninterruptible sleep: ask again */
      if (!v2 && freeze && i % 20 == 19)
        cg_write (dir, "freezer.state", "FROZEN", NULL);
      nanosleep (&ts, NULL);
    }
  return cella_error (err, EBUSY, "cgroup: `%s` did not become %s within 5 s", dir, freeze ? "frozen" : "thawed");
}

/* ---- usage ------------------------------------------------------------------------------------------- */

/* "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control): key's value. */
static long long
keyed (const char *dir, const char *file, const char *key, long long def)
{
  cleanup_free char *t = dir ? cg_read (dir, file) : NULL;
  size_t n = strlen (key);
  for (char *l = t; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strncmp (l, key, n) == 0 && l[n] == ' ')
      return strtoll (l + n + 1, NULL, 10);
  return def;
}

static long long
host_memory (void)
{
  long pages = sysconf (_SC_PHYS_PAGES), size = sysconf (_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (long long) pages * size : -1;
}

/* v1 blkio.throttle.io_service_bytes_recursive "8:0 Read N"; v2 io.stat "8:0 rbytes=N wbytes=N ..." */
static void
io_bytes (const struct cgroup_dirs *d, struct cgroup_stats *st)
{
  bool v2 = d->layout == CGROUP_V2;
  const char *dir = v2 ? d->v2 : d->v1[CG_BLKIO];
  cleanup_free char *t = dir ? cg_read (dir, v2 ? "io.stat" : "blkio.throttle.io_service_bytes_recursive") : NULL;
  char *save = NULL;
  if (t == NULL)
    return;
  st->io_read = st->io_write = 0;
  for (char *l = strtok_r (t, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char op[16];
      long long v;
      if (v2)
        {
          char *r = strstr (l, "rbytes="), *w = strstr (l, "wbytes=");
          if (r)
            st->io_read += strtoll (r + 7, NULL, 10);
          if (w)
            st->io_write += strtoll (w + 7, NULL, 10);
        }
      else if (sscanf (l, "%*s %15s %lld", op, &v) == 2)
        {
          if (strcmp (op, "Read") == 0)
            st->io_read += v;
          else if (strcmp (op, "Write") == 0)
            st->io_write += v;
        }
    }
}

long long
cgroup_oom_kills (const struct cgroup_dirs *d)
{
  long long n;
  if (d->layout == CGROUP_V2)
    return d->v2 ? keyed (d->v2, "memory.events", "oom_kill", 0) : 0;
  if (d->v1[CG_MEMORY] == NULL)
    return 0;
  /* oom_kill in memory.oom_control since Linux 4.13 */
  n = keyed (d->v1[CG_MEMORY], "memory.oom_control", "oom_kill", -1);
  return n < 0 ? 0 : n;
}

int
cgroup_stats (const struct cgroup_dirs *d, struct cgroup_stats *st, cella_error_t *err)
{
  bool v2 = d->layout == CGROUP_V2;
  const char *mem = v2 ? d->v2 : d->v1[CG_MEMORY];
  const char *pids = v2 ? d->v2 : d->v1[CG_PIDS];
  const char *dir = procs_dir (d);
  long long host = host_memory ();
  st->mem_usage = st->mem_limit = st->mem_max_usage = st->cpu_ns = -1;
  st->pids_current = st->pids_limit = st->io_read = st->io_write = -1;
  st->oom_kills = 0;
  if (dir == NULL || access (dir, F_OK) < 0)
    return cella_error (err, errno ? errno : ENOENT, "cgroup: `%s`", dir ? dir : "(none)");
  if (mem)
    {
      long long inactive = keyed (mem, "memory.stat", v2 ? "inactive_file" : "total_inactive_file", 0);
      st->mem_usage = read_num (mem, v2 ? "memory.current" : "memory.usage_in_bytes", -1);
      if (st->mem_usage > inactive)
        st->mem_usage -= inactive;
      st->mem_limit = read_num (mem, v2 ? "memory.max" : "memory.limit_in_bytes", -1);
      /* unlimited (v2 "max", v1 a huge page-rounded number): the host's memory, as docker shows */
      if (st->mem_limit < 0 || (host > 0 && st->mem_limit > host))
        st->mem_limit = host;
      st->mem_max_usage = read_num (mem, v2 ? "memory.peak" : "memory.max_usage_in_bytes", -1);
    }
  if (v2)
    {
      long long us = keyed (d->v2, "cpu.stat", "usage_usec", -1);
      st->cpu_ns = us < 0 ? -1 : us * 1000;
    }
  else if (d->v1[CG_CPUACCT])
    st->cpu_ns = read_num (d->v1[CG_CPUACCT], "cpuacct.usage", -1);
  if (pids)
    {
      st->pids_current = read_num (pids, "pids.current", -1);
      st->pids_limit = read_num (pids, "pids.max", -1);
    }
  if (st->pids_current < 0)
    {
      /* no pids controller: count the processes */
      pid_t *v;
      size_t n;
      if (cgroup_pids (d, &v, &n, NULL) == 0)
        st->pids_current = (long long) n;
      free (v);
    }
  io_bytes (d, st);
  st->oom_kills = cgroup_oom_kills (d);
  return 0;
}
