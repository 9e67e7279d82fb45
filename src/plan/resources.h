/* The pure parts of a plan's resources (src/plan/resources.c); the cgroup code (src/cgroup) applies them. */
#ifndef CELLA_PLAN_RESOURCES_H
#define CELLA_PLAN_RESOURCES_H

#include "plan.h"

/* Docker's memory units: "512", "64k", "32m", "1g", "1.5g", "2t", optional trailing b/ib
 * ("32mb", "32MiB"), case-insensitive; powers of 1024. -1 on a bad value (errno EINVAL/ERANGE). */
long long cgroup_parse_bytes (const char *s);
/* --cpus "1.5" → nano cpus (1500000000); -1 when bad or not positive. */
long long cgroup_parse_cpus (const char *s);
/* nano cpus → cfs quota in µs for the given period (µs). */
long long cgroup_cpus_to_quota (long long nano_cpus, unsigned long long period);
/* Any limit set in r? */
bool cgroup_res_any (const struct plan_resources *r);
/* The first flag name of a set limit ("--memory"), for notices; NULL when none. */
const char *cgroup_res_first_flag (const struct plan_resources *r);

#endif
