/* The ns backend behind the backend interface (backend/backend.h). */
#include "../cgroup/cgroup.h"
#include "ns.h"

static int
ns_ops_start (struct plan *p, const char *state_dir, struct ns_proc *out, cella_error_t *err)
{
  (void) state_dir;
  return ns_start (p, NULL, out, err);
}

static int
ns_ops_exec (struct plan *p, pid_t target, const char *state_dir, cella_error_t *err)
{
  (void) state_dir;
  return ns_exec (p, target, err);
}

const struct backend backend_ns = {
  .name = "ns",
  .kind = BACKEND_NS,
  .caps = BACKEND_CAP_CGROUP_LIMITS | BACKEND_CAP_CGROUP | BACKEND_CAP_NETNS | BACKEND_CAP_EXEC
          | BACKEND_CAP_OVERLAY_ROOT | BACKEND_CAP_SEALED_EXE,
  .available = ns_available,
  .run = ns_run,
  .start = ns_ops_start,
  .exec = ns_ops_exec,
  .finish = cgroup_finish,
};
