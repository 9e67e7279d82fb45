/* The backend interface's lookups (backend.h); the backends themselves are src/ns/ops.c,
 * src/proot/ops.c and src/vm/ops.c. */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"

static const struct backend *const backends[] = { &backend_ns, &backend_proot, &backend_vm };

const struct backend *
backend_at (size_t i)
{
  return i < sizeof backends / sizeof backends[0] ? backends[i] : NULL;
}

const struct backend *
backend_of (const struct plan *p)
{
  for (size_t i = 0; backend_at (i); i++)
    if (backends[i]->kind == p->backend)
      return backends[i];
  return &backend_ns; /* a kind no backend claims cannot be built nor loaded */
}

const struct backend *
backend_named (const char *name)
{
  for (size_t i = 0; name && backend_at (i); i++)
    if (strcmp (backends[i]->name, name) == 0)
      return backends[i];
  return NULL;
}

int
backend_check (const struct plan *p, cella_error_t *err)
{
  const struct backend *b = backend_of (p);
  return b->check ? b->check (p, err) : 0;
}

char *
backend_state_dir (const struct backend *b, const char *ctr_dir)
{
  return b->state_name ? xasprintf ("%s/%s", ctr_dir, b->state_name) : NULL;
}

void
backend_exec_started (struct plan *p)
{
  if (p->exec_started_fd > 0)
    close (p->exec_started_fd);
  p->exec_started_fd = 0;
}

int
backend_copy_root (struct plan *p, const char *dest, cella_error_t *err)
{
  return backend_proot.copy_root (p, dest, err);
}

int
backend_signal (const struct ns_proc *proc, int sig)
{
  return (int) syscall (SYS_pidfd_send_signal, proc->pidfd, sig, NULL, 0);
}
