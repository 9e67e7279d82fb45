/* The proot backend behind the backend interface (backend/backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include "../cgroup/cgroup.h"
#include "../util/paths.h"
#include "backend.h"
#include "../host/proot_find.h"

static bool
proot_ops_available (char **why)
{
  cleanup_free char *path = NULL;
  char *reason = NULL;
  if (proot_find (NULL, &path, NULL, &reason) == 0)
    return true;
  if (why)
    *why = reason;
  else
    free (reason);
  return false;
}

/* Mount ops proot has no equivalent for. A tmpfs is a bind of a fresh directory (proot_command). */
static int
proot_refuse_ops (const struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      if (op->kind == OP_OVERLAY)
        return cella_error (err, 0, "overlay at `%s`: the proot backend cannot mount overlays; use --backend ns",
                            op->target);
      if (op->kind == OP_BIND && !(op->flags & BIND_WRITABLE))
        return cella_error (err, 0,
                            "read-only volume `%s`: the proot backend cannot make a bind read-only; use --backend ns",
                            op->target);
      if (op->kind == OP_TMPFS && op->size > 0)
        return cella_error (err, 0,
                            "tmpfs `%s` with a size: the proot backend gives a plain directory, without a size limit",
                            op->target);
    }
  return 0;
}

/* what proot cannot give is refused, never dropped */
static int
proot_check (const struct plan *p, cella_error_t *err)
{
  if (cgroup_res_any (&p->res))
    return cella_error (err, 0, "%s: the proot backend cannot limit resources (no cgroup); use --backend ns",
                        cgroup_res_first_flag (&p->res));
  return proot_refuse_ops (p, err);
}

/* An image's root is copied next to the data (proot cannot mount an overlay), and removed after. */
static int
proot_ops_run (struct plan *p, cella_error_t *err)
{
  cleanup_free char *copy = NULL;
  int status;
  if (p->root_overlay)
    {
      copy = xasprintf ("%s/proot-root-%.12s", paths_data_root (), p->id);
      if (mkdir_p (paths_data_root (), 0700, err) < 0 || proot_prepare_root (p, copy, err) < 0)
        return -1;
    }
  status = proot_run (p, copy == NULL, err);
  if (copy)
    remove_tree_mapped (copy);
  return status;
}

static int
proot_ops_exec (struct plan *p, pid_t target, const char *state_dir, cella_error_t *err)
{
  (void) target;
  return proot_exec (p, state_dir, err);
}

static void
proot_inspect (const struct plan *p, const char *state_dir, json_t *o)
{
  struct utsname u;
  const char *rel = p->kernel_release ? p->kernel_release : uname (&u) == 0 ? u.release : NULL;
  (void) state_dir;
  json_object_set_new (o, "Proot",
                       json_pack ("{s:s?, s:s?, s:b, s:s?}", "Path", p->proot_path, "KernelRelease", rel,
                                  "KernelReleaseFaked", p->kernel_release != NULL, "RootCopy", p->root_copy));
}

const struct backend backend_proot = {
  .name = "proot",
  .kind = BACKEND_PROOT,
  .caps = BACKEND_CAP_EXEC | BACKEND_CAP_PLAIN_ROOT,
  .state_name = "proot",
  .available = proot_ops_available,
  .check = proot_check,
  .run = proot_ops_run,
  .start = proot_start,
  .exec = proot_ops_exec,
  .inspect = proot_inspect,
  .copy_root = proot_prepare_root,
};
