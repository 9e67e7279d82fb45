/* Networking for the ns backend: private networks, published ports, resolv.conf/hosts. */
#ifndef CELLA_NET_H
#define CELLA_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"

/* Whether the parent must set up the network of the child (a private network). */
bool net_wanted (const struct plan *p);

/* After clone, before the child goes on: give the child's network namespace its interfaces. */
int net_attach (struct plan *p, pid_t pid, cella_error_t *err);

#endif
