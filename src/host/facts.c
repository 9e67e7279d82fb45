/* The host facts the plan builder reads, gathered once (src/plan/host_facts.h). */
#define _GNU_SOURCE
#include "facts.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/caps.h"
#include "../net/net.h"
#include "../plan/idmap.h"
#include "proot_find.h"
#include "../util/paths.h"
#include "../vm/vm.h"
#include "probe.h"

static bool
sub_range (const char *file, const char *name, unsigned id, uint32_t *start, uint32_t *count)
{
  cleanup_free char *text = NULL;
  if (read_file (file, &text, NULL, NULL) < 0)
    return false;
  return idmap_find_range (text, name, id, start, count) == 0;
}

static void
gather_idmap (struct host_facts *f)
{
  cleanup_free char *name = host_passwd_field (f->euid, 0);
  f->idmap_helpers = access ("/usr/bin/newuidmap", X_OK) == 0 && access ("/usr/bin/newgidmap", X_OK) == 0;
  f->subid_found = f->idmap_helpers && sub_range ("/etc/subuid", name, f->euid, &f->subuid_start, &f->subuid_count)
                   && sub_range ("/etc/subgid", name, f->euid, &f->subgid_start, &f->subgid_count);
  f->have |= HOST_FACT_IDMAP;
}

static void
gather_ns (struct host_facts *f)
{
  cleanup_free char *reason = NULL, *fix = NULL;
  f->ns_usable = probe_ns_backend (&reason, &fix);
  f->ns_why = f->ns_usable ? NULL : xasprintf ("%s — %s", reason, fix);
  f->have |= HOST_FACT_NS;
}

static void
gather_vm (const struct host_facts_query *q, struct host_facts *f)
{
  cella_error_t err = NULL;
  cleanup_free char *qemu = NULL;
  cleanup_free char *fc = probe_find_program ("firecracker");
  f->firecracker_found = fc != NULL;
  if (vm_qemu_find (&qemu, &err) < 0
      || vm_kernel_find (q->vm_kernel, &f->vm_kernel, &f->vm_kernel_release, &f->vm_kernel_kind, &err) < 0)
    {
      f->vm_why = steal_pointer (&err->msg);
      f->vm_why_errno = err->errno_;
      cella_error_free (&err);
    }
  else
    {
      cleanup_free char *dir = xasprintf ("%s/vm", paths_data_root ());
      f->kvm_why = vm_kvm_problem (dir);
    }
  f->have |= HOST_FACT_VM;
}

void
host_facts_gather (const struct host_facts_query *q, struct host_facts *f)
{
  memset (f, 0, sizeof *f);
  f->euid = geteuid ();
  f->egid = getegid ();
  f->initial_userns = in_initial_userns ();
  f->cap_last = caps_last_cap ();
  if (q->want & HOST_FACT_NS)
    gather_ns (f);
  if ((q->want & HOST_FACT_PROOT) || ((q->want & HOST_FACT_PROOT_NO_NS) && !f->ns_usable))
    {
      if (proot_find (q->proot_path, &f->proot_path, NULL, &f->proot_why) < 0)
        free (steal_pointer (&f->proot_path));
      f->have |= HOST_FACT_PROOT;
    }
  if ((q->want & HOST_FACT_NET_TOOL) && f->euid != 0)
    {
      f->rootless_net_tool = net_rootless_tool (NULL) != NULL;
      f->have |= HOST_FACT_NET_TOOL;
    }
  if ((q->want & HOST_FACT_IDMAP) && f->euid != 0)
    gather_idmap (f);
  if (q->want & HOST_FACT_VM)
    gather_vm (q, f);
  if ((q->want & HOST_FACT_NETWORK) && q->network)
    {
      struct net_def d;
      f->network_defined = net_def_load (q->network, &d, NULL) == 0;
      for (size_t i = 0; q->networks_extra && q->networks_extra[i] && !f->network_extra_missing; i++)
        if (net_def_load (q->networks_extra[i], &d, NULL) < 0)
          f->network_extra_missing = xstrdup (q->networks_extra[i]);
      f->have |= HOST_FACT_NETWORK;
    }
  if (q->want & HOST_FACT_CPUS)
    {
      f->ncpu = sysconf (_SC_NPROCESSORS_ONLN);
      f->have |= HOST_FACT_CPUS;
    }
}

int
idmap_default (struct plan *p, cella_error_t *err)
{
  struct host_facts f = { 0 };
  (void) err;
  f.euid = geteuid ();
  f.egid = getegid ();
  gather_idmap (&f);
  idmap_from_facts (p, &f);
  host_facts_free (&f);
  return 0;
}
