/* Invented hosts for the unit tests that build plans (no probe runs). */
#ifndef CELLA_TEST_HOSTS_H
#define CELLA_TEST_HOSTS_H
#include "plan/host_facts.h"

/* Real root, namespaces usable, no proot, no user-defined networks. */
static const struct host_facts root_host __attribute__ ((unused)) = {
  .have = HOST_FACT_NS | HOST_FACT_PROOT | HOST_FACT_NET_TOOL | HOST_FACT_IDMAP | HOST_FACT_CPUS | HOST_FACT_NETWORK,
  .euid = 0,
  .egid = 0,
  .initial_userns = true,
  .cap_last = 40,
  .ns_usable = true,
  .proot_why = (char *) "proot is not installed",
  .ncpu = 4,
};
#endif
