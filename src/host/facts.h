/* Gathering the host facts the plan builder reads (struct host_facts, src/plan/host_facts.h):
 * once, before the plan is built, and only those asked for (the ns probe forks; a foreground run
 * that names its backend must not pay for it). */
#ifndef CELLA_HOST_FACTS_H
#define CELLA_HOST_FACTS_H

#include "../plan/host_facts.h"
#include "../plan/plan.h"

/* Fill *f (zeroed first): euid, egid, initial_userns and cap_last always, and the facts in
 * q->want (HOST_FACT_PROOT_NO_NS: proot only when the ns probe failed; HOST_FACT_NET_TOOL and
 * HOST_FACT_IDMAP only when not root). Nothing here fails: what is missing is a fact too. */
void host_facts_gather (const struct host_facts_query *q, struct host_facts *f);

/* A rootless plan's default id maps (idmap_from_facts) from this host's facts. */
int idmap_default (struct plan *p, cella_error_t *err);

#endif
