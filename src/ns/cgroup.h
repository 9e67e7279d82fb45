/* cgroups for the ns backend: v2, v1, and hybrid layouts (src/ns/cgroup.c). */
#ifndef CELLA_CGROUP_H
#define CELLA_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"

/* Whether a container of this plan gets a cgroup of its own (the parent then moves the child
 * into it before the child sets itself up). */
bool cgroup_wanted (const struct plan *p);

/* Create the container's cgroup, apply p->res, move pid into it. */
int cgroup_enter (const struct plan *p, pid_t pid, cella_error_t *err);

#endif
