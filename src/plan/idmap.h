#ifndef CELLA_PLAN_IDMAP_H
#define CELLA_PLAN_IDMAP_H
#include "plan.h"
#include "host_facts.h"
/* Fill the plan's uid/gid maps for a rootless container: the caller (f->euid, f->egid) becomes 0;
 * when /etc/subuid and /etc/subgid give the caller a range and newuidmap/newgidmap exist
 * (f->subid_found), that range is mapped from 1 up. */
void idmap_from_facts (struct plan *p, const struct host_facts *f);
/* Parse /etc/subuid-style text for user `name` or numeric `id`; 0 found, 1 none. */
int idmap_find_range (const char *text, const char *name, unsigned id, uint32_t *start, uint32_t *count);
#endif
