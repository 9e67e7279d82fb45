/* The vm backend behind the backend interface (backend/backend.h). */
#include <errno.h>
#include <sys/stat.h>

#include "vm.h"

/* The binds a VM can give are 9p shares of directories. */
static int
vm_check (const struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      struct stat st;
      if (op->kind == OP_OVERLAY)
        return cella_error (err, 0, "overlay at `%s`: not supported by the vm backend yet", op->target);
      if (op->kind == OP_BIND && stat (op->source, &st) < 0)
        return cella_error (err, errno, "volume `%s`", op->source);
      if (op->kind == OP_BIND && !S_ISDIR (st.st_mode))
        return cella_error (err, 0, "volume `%s`: the vm backend shares directories only (9p), not files", op->source);
    }
  return 0;
}

static void
vm_inspect (const struct plan *p, const char *state_dir, json_t *o)
{
  cleanup_free char *disk = xasprintf ("%s/disk.ext4", state_dir);
  json_object_set_new (o, "VM",
                       json_pack ("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:i, s:i}", "Engine", p->vm_engine, "Accel",
                                  p->vm_accel, "Kernel", p->vm_kernel, "KernelRelease", p->vm_kernel_release,
                                  "KernelKind", p->vm_kernel_kind, "Disk", disk, "MemoryMiB",
                                  (int) (p->vm_memory_mib ? p->vm_memory_mib : 256), "CPUs",
                                  (int) (p->vm_cpus ? p->vm_cpus : 1)));
}

const struct backend backend_vm = {
  .name = "vm",
  .kind = BACKEND_VM,
  .caps = BACKEND_CAP_CGROUP | BACKEND_CAP_NET_TAP | BACKEND_CAP_PORT_FILE | BACKEND_CAP_EXEC,
  .state_name = "vm",
  .available = vm_available,
  .check = vm_check,
  .run = vm_run,
  .start = vm_start,
  .exec = vm_exec,
  .inspect = vm_inspect,
  .remove_state = vm_workdir_remove,
};
