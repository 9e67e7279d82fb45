/* Unit tests for the plan builder on invented hosts: struct host_facts made up here, so that no
 * probe runs and any host can be tried (backend selection, rootless, the network tool, the vm). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/build.h"
#include "tap.h"
#include "errcheck.h"

#define ALL_FACTS                                                                                                      \
  (HOST_FACT_NS | HOST_FACT_PROOT | HOST_FACT_NET_TOOL | HOST_FACT_IDMAP | HOST_FACT_VM | HOST_FACT_CPUS)

static char root_dir[] = "/tmp/cella-plan-build-XXXXXX";

/* A host run by root of the machine, with namespaces, no proot, no qemu. */
static struct host_facts
root_host (void)
{
  return (struct host_facts){
    .have = ALL_FACTS,
    .euid = 0,
    .egid = 0,
    .initial_userns = true,
    .cap_last = 40,
    .ns_usable = true,
    .proot_why = (char *) "proot is not installed: `apt-get install proot`",
    .vm_why = (char *) "qemu not found",
    .ncpu = 4,
  };
}

/* A user's host (uid 1000): what is usable is set by each test. */
static struct host_facts
user_host (void)
{
  struct host_facts f = root_host ();
  f.euid = 1000;
  f.egid = 1000;
  f.initial_userns = true;
  return f;
}

static void
options (struct run_options *o)
{
  memset (o, 0, sizeof *o);
  strv_push (&o->command, "true");
}

/* Build with facts f; the plan, or NULL with *err. */
static struct plan *
build (const struct run_options *o, const struct host_facts *f, cella_error_t *err)
{
  struct plan *p = NULL;
  if (plan_from_run_options (o, f, root_dir, false, &p, err) < 0)
    return NULL;
  return p;
}

static void
test_backend_selection (void)
{
  struct run_options o;
  struct host_facts f;
  cella_error_t err = NULL;
  struct plan *p;

  options (&o);
  f = root_host ();
  p = build (&o, &f, &err);
  CHECK (p && p->backend == BACKEND_NS && !p->rootless && (p->ns & PLAN_NS_MNT) && !(p->ns & PLAN_NS_USER)
             && p->nuid_map == 0 && p->proot_path == NULL,
         "root host with namespaces: ns, no user namespace, no id map");
  plan_free (p);

  f = user_host ();
  f.ns_usable = false;
  f.ns_why = (char *) "creating a user namespace is refused (EPERM)";
  f.proot_path = (char *) "/opt/bin/proot";
  f.proot_why = NULL;
  p = build (&o, &f, &err);
  CHECK (p && p->backend == BACKEND_PROOT && p->rootless && p->ns == 0 && p->proot_path
             && strcmp (p->proot_path, "/opt/bin/proot") == 0,
         "rootless host without namespaces, proot present: proot, at the path found");
  plan_free (p);

  f.proot_path = NULL;
  f.proot_why = (char *) "proot is not installed";
  p = build (&o, &f, &err);
  CHECK (p == NULL && err && strstr (err->msg, "no backend can run here")
             && strstr (err->msg, "creating a user namespace is refused (EPERM)")
             && err_has (&err, "proot is not installed"),
         "neither namespaces nor proot: the error names both whys");
  plan_free (p);

  o.backend = xstrdup ("proot");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--backend proot: proot is not installed"),
         "--backend proot without proot: its why");
  free (o.backend);
  o.backend = xstrdup ("ns");
  f.have = HOST_FACT_IDMAP; /* no probe gathered: --backend ns needs none */
  p = build (&o, &f, &err);
  CHECK (p && p->backend == BACKEND_NS && (p->ns & PLAN_NS_USER), "--backend ns reads no probe (none gathered)");
  plan_free (p);
  free (o.backend);
  o.backend = NULL;
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "host fact `ns` was not gathered"), "a fact the build needs but was not gathered");
  run_options_free (&o);
}

static void
test_rootless_maps (void)
{
  struct run_options o;
  struct host_facts f = user_host ();
  cella_error_t err = NULL;
  struct plan *p;

  options (&o);
  p = build (&o, &f, &err);
  CHECK (p && p->backend == BACKEND_NS && p->rootless && (p->ns & PLAN_NS_USER) && p->nuid_map == 1 && p->ngid_map == 1
             && p->uid_map[0].inside == 0 && p->uid_map[0].outside == 1000 && p->uid_map[0].count == 1,
         "rootless without subordinate ids: only the caller, as 0");
  plan_free (p);
  f.idmap_helpers = f.subid_found = true;
  f.subuid_start = 100000;
  f.subuid_count = 65536;
  f.subgid_start = 200000;
  f.subgid_count = 1000;
  p = build (&o, &f, &err);
  CHECK (p && p->nuid_map == 2 && p->ngid_map == 2 && p->uid_map[1].inside == 1 && p->uid_map[1].outside == 100000
             && p->uid_map[1].count == 65536 && p->gid_map[1].outside == 200000 && p->gid_map[1].count == 1000,
         "rootless with /etc/subuid ranges: mapped from 1 up");
  plan_free (p);

  o.userns = xstrdup ("auto");
  f = root_host ();
  f.initial_userns = false;
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "needs the machine's root"), "--userns auto as root of a user namespace: refused");
  free (o.userns);
  o.userns = NULL;

  f = root_host ();
  o.privileged = true;
  p = build (&o, &f, &err);
  CHECK (p && p->process.caps == (UINT64_C (1) << 41) - 1, "--privileged: every capability of the host's kernel (40)");
  plan_free (p);
  f.cap_last = 63;
  p = build (&o, &f, &err);
  CHECK (p && p->process.caps == UINT64_MAX, "--privileged on a kernel with 64 capabilities");
  plan_free (p);
  o.privileged = false;

  o.cpus = xstrdup ("8");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "this host has only 4 cpus"), "--cpus above the host's cpus");
  run_options_free (&o);
}

/* --network repeated, NET1,NET2 and NET:alias=A: the first network, the others, aliases per
 * network; modes do not combine; an undefined second network, the vm backend refused. */
static void
test_several_networks (void)
{
  struct run_options o;
  struct host_facts f = root_host ();
  cella_error_t err = NULL;
  struct plan *p;

  options (&o);
  f.have |= HOST_FACT_NETWORK;
  f.network_defined = true;
  strv_push (&o.network_specs, "front,mid");
  strv_push (&o.network_specs, "back:alias=db,alias=db2");
  CHECK (run_options_networks (&o, &err) == 0 && strcmp (o.network, "front") == 0 && strv_len (o.networks_extra) == 2
             && strcmp (o.networks_extra[0], "mid") == 0 && strcmp (o.networks_extra[1], "back") == 0
             && strv_len (o.net_aliases_of) == 2 && strcmp (o.net_aliases_of[1], "back:db2") == 0,
         "--network front,mid --network back:alias=db,alias=db2: parsed in order");
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_PRIVATE && strcmp (p->network, "front") == 0 && strv_len (p->networks_extra) == 2
             && strv_len (p->net_aliases_of) == 2,
         "several user-defined networks: in the plan");
  plan_free (p);
  f.network_extra_missing = xstrdup ("mid");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network `mid`: no such network"), "an undefined second network: refused");
  free (f.network_extra_missing);
  f.network_extra_missing = NULL;
  run_options_free (&o);

  options (&o);
  strv_push (&o.network_specs, "front");
  strv_push (&o.network_specs, "host");
  CHECK (run_options_networks (&o, &err) < 0 && err_has (&err, "--network host: only user-defined networks"),
         "--network host with another: refused");
  run_options_free (&o);
  options (&o);
  strv_push (&o.network_specs, "front,front");
  CHECK (run_options_networks (&o, &err) < 0 && err_has (&err, "--network front: given twice"), "a network twice");
  run_options_free (&o);
  options (&o);
  strv_push (&o.network_specs, "front:ip=1.2.3.4");
  CHECK (run_options_networks (&o, &err) < 0 && err_has (&err, "unknown option `ip=1.2.3.4`"),
         "an option other than alias=: refused");
  run_options_free (&o);
  options (&o);
  strv_push (&o.network_specs, "container:web");
  CHECK (run_options_networks (&o, &err) == 0 && strcmp (o.network, "container:web") == 0 && !o.networks_extra,
         "--network container:NAME: one network, as before");
  run_options_free (&o);
}

static void
test_network (void)
{
  struct run_options o;
  struct host_facts f = user_host ();
  cella_error_t err = NULL;
  struct plan *p;

  options (&o);
  o.engine = true;
  f.rootless_net_tool = true;
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_PRIVATE && (p->ns & PLAN_NS_NET),
         "rootless engine container with pasta: a private network");
  plan_free (p);
  f.rootless_net_tool = false;
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_HOST && !(p->ns & PLAN_NS_NET),
         "rootless engine container without pasta: the host's network");
  plan_free (p);
  o.engine = false;
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_HOST, "a foreground run: the host's network");
  plan_free (p);
  o.network = xstrdup ("private");
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_PRIVATE && (p->ns & PLAN_NS_NET), "--network private rootless: private (the tool is the "
                                                              "runtime's business)");
  plan_free (p);
  free (o.network);
  o.network = xstrdup ("backend-net");
  f.network_defined = true;
  f.have |= HOST_FACT_NETWORK;
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network backend-net: user-defined networks need root"),
         "a user-defined network, rootless: refused");
  f = root_host ();
  f.have |= HOST_FACT_NETWORK;
  f.network_defined = true;
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_PRIVATE && p->network && strcmp (p->network, "backend-net") == 0,
         "a user-defined network, as root: private, on it");
  plan_free (p);
  strv_push (&o.network_aliases, "db.alias");
  p = build (&o, &f, &err);
  CHECK (p && p->network_aliases && strcmp (p->network_aliases[0], "db.alias") == 0,
         "--network-alias on a user-defined network: in the plan");
  plan_free (p);
  strv_push (&o.network_aliases, "bad,name");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network-alias `bad,name`: a host name"), "a bad alias: refused");
  strv_free (o.network_aliases);
  o.network_aliases = NULL;
  strv_push (&o.network_aliases, "x");
  free (o.network);
  o.network = xstrdup ("private");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network-alias x: only on a user-defined network"),
         "--network-alias without a user-defined network: refused");
  strv_free (o.network_aliases);
  o.network_aliases = NULL;
  free (o.network);
  o.network = xstrdup ("backend-net");
  f.network_defined = false;
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network `backend-net`: unknown mode or network"),
         "a network that is not defined");
  f = root_host ();
  f.have &= ~HOST_FACT_NET_TOOL; /* root: the gatherer does not look for pasta */
  free (o.network);
  o.network = NULL;
  o.engine = true;
  p = build (&o, &f, &err);
  CHECK (p && p->net == NET_PRIVATE, "root engine container: a private network, no tool looked for");
  plan_free (p);
  run_options_free (&o);
}

static void
test_vm (void)
{
  struct run_options o;
  struct host_facts f = root_host ();
  cella_error_t err = NULL;
  struct plan *p;

  options (&o);
  o.backend = xstrdup ("vm");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "qemu not found"), "--backend vm without qemu: its why");
  f.vm_why = NULL;
  f.vm_kernel = (char *) "/boot/vmlinuz-test";
  f.vm_kernel_release = (char *) "6.1.0-test";
  f.vm_kernel_kind = "distro";
  f.kvm_why = (char *) "/dev/kvm is missing";
  p = build (&o, &f, &err);
  CHECK (p && p->backend == BACKEND_VM && p->ns == 0 && p->net == NET_PRIVATE && p->vm_kernel
             && strcmp (p->vm_kernel, "/boot/vmlinuz-test") == 0 && p->vm_kernel_release
             && strcmp (p->vm_kernel_release, "6.1.0-test") == 0 && p->vm_accel && strcmp (p->vm_accel, "tcg") == 0
             && p->vm_memory_mib == 256 && p->vm_kernel_kind && strcmp (p->vm_kernel_kind, "distro") == 0,
         "--backend vm: the kernel found (and its kind), TCG without KVM, 256 MiB");
  plan_free (p);
  f.kvm_why = NULL;
  p = build (&o, &f, &err);
  CHECK (p && p->vm_accel && strcmp (p->vm_accel, "kvm") == 0, "--backend vm with KVM");
  plan_free (p);
  o.vm_engine = xstrdup ("firecracker");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "firecracker not found on PATH"), "--vm-engine firecracker without it");
  free (o.vm_engine);
  o.vm_engine = NULL;
  o.network = xstrdup ("host");
  p = build (&o, &f, &err);
  CHECK (p == NULL && err_has (&err, "--network host: the vm backend"), "--backend vm --network host: refused");
  run_options_free (&o);
}

static void
test_query (void)
{
  struct run_options o;
  struct host_facts_query q;
  options (&o);
  plan_facts_query (&o, &q);
  CHECK ((q.want & HOST_FACT_NS) && (q.want & HOST_FACT_PROOT_NO_NS) && !(q.want & HOST_FACT_PROOT)
             && !(q.want & HOST_FACT_VM) && !(q.want & HOST_FACT_NET_TOOL),
         "no --backend: the ns probe, proot only if it fails");
  o.backend = xstrdup ("ns");
  o.engine = true;
  plan_facts_query (&o, &q);
  CHECK (!(q.want & (HOST_FACT_NS | HOST_FACT_PROOT | HOST_FACT_PROOT_NO_NS | HOST_FACT_VM))
             && (q.want & HOST_FACT_NET_TOOL),
         "--backend ns in the engine: no probe, the network tool");
  free (o.backend);
  o.backend = xstrdup ("vm");
  o.vm_kernel = xstrdup ("/k");
  plan_facts_query (&o, &q);
  CHECK ((q.want & HOST_FACT_VM) && !(q.want & HOST_FACT_NS) && q.vm_kernel && strcmp (q.vm_kernel, "/k") == 0,
         "--backend vm: the vm facts, for the kernel asked");
  free (o.backend);
  o.backend = NULL;
  o.network = xstrdup ("private");
  plan_facts_query (&o, &q);
  CHECK (!(q.want & HOST_FACT_NETWORK), "--network private: no network definition looked up");
  free (o.network);
  o.network = xstrdup ("mynet");
  plan_facts_query (&o, &q);
  CHECK ((q.want & HOST_FACT_NETWORK) && q.network && strcmp (q.network, "mynet") == 0,
         "--network NAME: its definition looked up");
  run_options_free (&o);
}

int
main (void)
{
  cleanup_free char *etc = NULL, *passwd = NULL, *cmd = NULL;
  int fd;
  if (mkdtemp (root_dir) == NULL)
    abort ();
  etc = xasprintf ("%s/etc", root_dir);
  passwd = xasprintf ("%s/etc/passwd", root_dir);
  mkdir (etc, 0755);
  fd = open (passwd, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write (fd, "root:x:0:0:root:/root:/bin/sh\n", 30) != 30)
    abort ();
  close (fd);
  test_backend_selection ();
  test_rootless_maps ();
  test_network ();
  test_several_networks ();
  test_vm ();
  test_query ();
  cmd = xasprintf ("rm -rf '%s'", root_dir);
  if (system (cmd) != 0)
    abort ();
  return tap_done ();
}
