/* Unit tests for the backend interface: lookups, capability bits, each backend's check. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tap.h"
#include "errcheck.h"

static void
test_lookup (void)
{
  const char *names[] = { "ns", "proot", "vm" };
  for (size_t i = 0; i < 3; i++)
    {
      const struct backend *b = backend_named (names[i]);
      cleanup_plan struct plan *p = plan_new ();
      CHECK (b && strcmp (b->name, names[i]) == 0, "backend_named (%s)", names[i]);
      CHECK (b && backend_at (i) == b, "backend_at (%zu) is %s", i, names[i]);
      if (b == NULL)
        continue;
      p->backend = b->kind;
      CHECK (backend_of (p) == b, "backend_of a %s plan", names[i]);
      CHECK_STR (plan_backend_name (b->kind), b->name, "the plan's name of its kind");
      CHECK (plan_backend_kind (b->name) == (int) b->kind, "the plan's kind of its name");
      CHECK (b->run && b->start && b->available, "%s: run, start and available", names[i]);
      CHECK ((b->exec != NULL) == ((b->caps & BACKEND_CAP_EXEC) != 0), "%s: exec iff BACKEND_CAP_EXEC", names[i]);
    }
  CHECK (backend_at (3) == NULL, "three backends");
  CHECK (backend_named ("docker") == NULL && backend_named (NULL) == NULL, "an unknown name: NULL");
  CHECK (plan_backend_kind ("docker") < 0, "the plan knows no `docker` kind");
  CHECK (backend_of (&(struct plan){ 0 }) == &backend_ns, "a zeroed plan is an ns plan");
}

static void
test_caps (void)
{
  unsigned ns = backend_ns.caps, pr = backend_proot.caps, vm = backend_vm.caps;
  CHECK ((ns & BACKEND_CAP_CGROUP_LIMITS) && !(pr & BACKEND_CAP_CGROUP_LIMITS) && !(vm & BACKEND_CAP_CGROUP_LIMITS),
         "cgroup limits: ns only (a VM's limit is QEMU's)");
  CHECK ((ns & BACKEND_CAP_CGROUP) && (vm & BACKEND_CAP_CGROUP) && !(pr & BACKEND_CAP_CGROUP),
         "a host cgroup to remove: ns and vm, not proot");
  CHECK ((ns & BACKEND_CAP_NETNS) && !(pr & BACKEND_CAP_NETNS) && !(vm & BACKEND_CAP_NETNS), "network namespace: ns");
  CHECK ((vm & BACKEND_CAP_NET_TAP) && !(ns & BACKEND_CAP_NET_TAP) && !(pr & BACKEND_CAP_NET_TAP), "tap NIC: vm");
  CHECK ((ns & BACKEND_CAP_EXEC) && (pr & BACKEND_CAP_EXEC) && (vm & BACKEND_CAP_EXEC) && backend_vm.exec != NULL,
         "exec: ns, proot and vm (through its guest init)");
  CHECK ((pr & BACKEND_CAP_PLAIN_ROOT) && !(ns & BACKEND_CAP_PLAIN_ROOT) && !(vm & BACKEND_CAP_PLAIN_ROOT),
         "a plain directory root: proot");
  CHECK ((ns & BACKEND_CAP_OVERLAY_ROOT) && !(pr & BACKEND_CAP_OVERLAY_ROOT), "overlay root: ns");
  CHECK ((vm & BACKEND_CAP_PORT_FILE) && !(ns & BACKEND_CAP_PORT_FILE), "a ports file: vm");
  CHECK ((ns & BACKEND_CAP_SEALED_EXE) && !(pr & BACKEND_CAP_SEALED_EXE) && !(vm & BACKEND_CAP_SEALED_EXE),
         "a sealed copy of cella: for ns only (proot runs as the user, a VM never sees the binary)");
  {
    cleanup_plan struct plan *p = plan_new ();
    p->backend = BACKEND_VM;
    CHECK (backend_can (p, BACKEND_CAP_CGROUP | BACKEND_CAP_NET_TAP)
               && !backend_can (p, BACKEND_CAP_CGROUP | BACKEND_CAP_NETNS),
           "backend_can: all the bits asked");
  }
}

static void
test_state_dir (void)
{
  cleanup_free char *pr = backend_state_dir (&backend_proot, "/d/c"), *vm = backend_state_dir (&backend_vm, "/d/c");
  CHECK_STR (pr, "/d/c/proot", "proot keeps its state in <ctr>/proot");
  CHECK_STR (vm, "/d/c/vm", "vm keeps its state in <ctr>/vm");
  CHECK (backend_state_dir (&backend_ns, "/d/c") == NULL, "ns keeps none");
}

static void
test_check (void)
{
  cella_error_t err = NULL;
  {
    cleanup_plan struct plan *p = plan_new ();
    plan_add_op (p, OP_TMPFS, "/scratch")->size = 1 << 20;
    CHECK (backend_check (p, &err) == 0, "ns takes a sized tmpfs");
    p->backend = BACKEND_PROOT;
    CHECK (backend_check (p, &err) < 0
               && err_has (&err, "tmpfs `/scratch` with a size: the proot backend gives a plain directory"),
           "proot refuses a sized tmpfs");
    p->backend = BACKEND_VM;
    CHECK (backend_check (p, &err) == 0, "vm takes a tmpfs (its guest init mounts it)");
    plan_add_op (p, OP_OVERLAY, "/o");
    CHECK (backend_check (p, &err) < 0 && err_has (&err, "overlay at `/o`: not supported by the vm backend yet"),
           "vm refuses an overlay");
  }
  {
    cleanup_plan struct plan *p = plan_new ();
    struct op *op = plan_add_bind (p, "/", "/data", 0);
    p->backend = BACKEND_PROOT;
    CHECK (backend_check (p, &err) < 0
               && err_has (&err, "read-only volume `/data`: the proot backend cannot make a bind read-only"),
           "proot refuses a read-only volume");
    op->flags |= BIND_WRITABLE;
    CHECK (backend_check (p, &err) == 0, "proot takes a writable volume");
    p->res.memory = 64 << 20;
    CHECK (backend_check (p, &err) < 0
               && err_has (&err, "--memory: the proot backend cannot limit resources (no cgroup); use --backend ns"),
           "proot refuses --memory, naming it");
    p->backend = BACKEND_VM;
    CHECK (backend_check (p, &err) == 0, "vm shares a directory");
  }
}

int
main (void)
{
  test_lookup ();
  test_caps ();
  test_state_dir ();
  test_check ();
  return tap_done ();
}
