/* The pure parts of a plan's resources: docker's units for --memory and --cpus, and which limits
 * a plan sets (for the builder, the cgroup code and the backends that have no cgroup). */
#define _GNU_SOURCE
#include "resources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

long long
cgroup_parse_bytes (const char *s)
{
  static const char units[] = "bkmgtp";
  char *end = NULL;
  const char *u;
  double v;
  long double mult = 1;
  if (s == NULL || *s < '0' || *s > '9')
    return errno = EINVAL, -1;
  errno = 0;
  v = strtod (s, &end);
  if (errno || end == s)
    return errno = EINVAL, -1;
  if (*end == ' ')
    end++;
  if (*end && (u = strchr (units, *end | 0x20)) != NULL)
    {
      for (long i = 0; i < u - units; i++)
        mult *= 1024;
      end++;
      /* 32mb, 32MiB; "b" alone was the unit already */
      if (u != units && (*end | 0x20) == 'i')
        end++;
      if (u != units && (*end | 0x20) == 'b')
        end++;
    }
  if (*end)
    return errno = EINVAL, -1;
  if ((long double) v * mult >= 9.2e18L)
    return errno = ERANGE, -1;
  return (long long) ((long double) v * mult);
}

long long
cgroup_parse_cpus (const char *s)
{
  long long whole = 0, frac = 0, scale = 1000000000LL;
  const char *c = s;
  if (s == NULL || *s == '\0')
    return -1;
  for (; *c >= '0' && *c <= '9'; c++)
    {
      whole = whole * 10 + (*c - '0');
      if (whole > 1000000)
        return -1;
    }
  if (*c == '.')
    for (c++; *c >= '0' && *c <= '9'; c++)
      if (scale > 1)
        {
          scale /= 10;
          frac += (*c - '0') * scale;
        }
  if (*c || c == s || (whole == 0 && frac == 0))
    return -1;
  return whole * 1000000000LL + frac;
}

long long
cgroup_cpus_to_quota (long long nano_cpus, unsigned long long period)
{
  return (long long) ((__int128) nano_cpus * (long long) period / 1000000000LL);
}

bool
cgroup_res_any (const struct plan_resources *r)
{
  return r->memory || r->memory_reservation || r->memory_swap || r->cpu_shares || r->cpu_quota || r->cpu_period
         || r->cpuset_cpus || r->cpuset_mems || r->pids_limit || r->io_weight || r->has_swappiness
         || r->memory_kernel_tcp || r->disable_oom_killer || r->nhugepage_limits || r->nio_throttle
         || (r->unified && r->unified[0]);
}

const char *
cgroup_res_first_flag (const struct plan_resources *r)
{
  return r->memory               ? "--memory"
         : r->memory_reservation ? "--memory-reservation"
         : r->memory_swap        ? "--memory-swap"
         : r->nano_cpus          ? "--cpus"
         : r->cpu_shares         ? "--cpu-shares"
         : r->cpu_quota          ? "--cpu-quota"
         : r->cpu_period         ? "--cpu-period"
         : r->cpuset_cpus        ? "--cpuset-cpus"
         : r->cpuset_mems        ? "--cpuset-mems"
         : r->pids_limit         ? "--pids-limit"
         : r->io_weight          ? "--blkio-weight"
         : cgroup_res_any (r)    ? "linux.resources"
                                 : NULL;
}
