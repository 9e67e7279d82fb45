/* What the plan builder knows about the host: plain data, gathered once by the caller
 * (host_facts_gather, src/host/facts.h) before the plan is built, so that the builder asks the host
 * nothing and a unit test can build any plan for an invented host. */
#ifndef CELLA_PLAN_HOST_FACTS_H
#define CELLA_PLAN_HOST_FACTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The facts that cost something to learn, one bit each (host_facts.have says which were
 * gathered). euid, egid, initial_userns and cap_last are always there. */
enum host_fact {
  HOST_FACT_NS = 1u << 0,          /* ns_usable, ns_why: forks the namespace probe */
  HOST_FACT_PROOT = 1u << 1,       /* proot_path or proot_why: a search of PATH */
  HOST_FACT_PROOT_NO_NS = 1u << 2, /* (asked) HOST_FACT_PROOT only when the ns probe fails */
  HOST_FACT_NET_TOOL = 1u << 3,    /* rootless_net_tool: gathered only when not root */
  HOST_FACT_IDMAP = 1u << 4,       /* the id ranges of a rootless user: gathered only when not root */
  HOST_FACT_VM = 1u << 5,          /* qemu, the guest kernel, KVM */
  HOST_FACT_CPUS = 1u << 6,        /* ncpu */
  HOST_FACT_NETWORK = 1u << 7,     /* network_defined: the user-defined network --network names */
};

struct host_facts {
  unsigned have; /* HOST_FACT_* gathered (or made up by a test) */
  uid_t euid;
  gid_t egid;
  bool initial_userns; /* in the machine's initial user namespace (real root when euid is 0) */
  int cap_last;        /* the kernel's last capability (/proc/sys/kernel/cap_last_cap) */

  /* HOST_FACT_NS: the ns backend's probe; why not (with the fix) when it fails */
  bool ns_usable;
  char *ns_why;
  /* HOST_FACT_PROOT: the proot program (--proot-path, $CELLA_PROOT or PATH), else why not */
  char *proot_path;
  char *proot_why;
  /* HOST_FACT_NET_TOOL: pasta or slirp4netns found, for a rootless private network */
  bool rootless_net_tool;
  /* HOST_FACT_IDMAP: newuidmap/newgidmap installed and the user's /etc/subuid, /etc/subgid ranges */
  bool idmap_helpers, subid_found;
  uint32_t subuid_start, subuid_count, subgid_start, subgid_count;
  /* HOST_FACT_VM: firecracker on PATH; the guest kernel (--kernel or the one found) and its
   * release; vm_why (and its errno) when qemu or the kernel is missing; kvm_why when the VM would
   * run under TCG (NULL: KVM) */
  bool firecracker_found;
  char *vm_kernel, *vm_kernel_release;
  const char *vm_kernel_kind; /* static: "given", "tuned" or "distro" */
  char *vm_why;
  int vm_why_errno;
  char *kvm_why;
  /* HOST_FACT_CPUS: online cpus (0: unknown) */
  long ncpu;
  /* HOST_FACT_NETWORK: `cella network create` made the network query.network names */
  bool network_defined;
  /* HOST_FACT_NETWORK: the first of query.networks_extra that no `cella network create` made */
  char *network_extra_missing;
};

/* What to look for, beside the HOST_FACT_* bits: the options that name a program or a file. */
struct host_facts_query {
  unsigned want;
  const char *proot_path;      /* --proot-path */
  const char *vm_kernel;       /* --kernel */
  const char *network;         /* --network, when it may name a user-defined network */
  char *const *networks_extra; /* the networks after it (--network A --network B) */
};

void host_facts_free (struct host_facts *f);

#endif
