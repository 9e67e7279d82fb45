/* The backend interface: how a plan is run. ns (namespaces, src/ns), proot (ptrace, src/proot) and
 * vm (a microVM, src/vm) each fill one `struct backend` (their ops.c); the CLI, the engine and the
 * monitor call only this interface, and the rest of the tree asks a backend's capability bits
 * instead of testing which backend it is.
 *
 * Layering: this header sits on the plan (plan.h, util.h) and below everything that runs a plan
 * (cgroup and net ask the capability bits; ns, proot and vm implement it). It includes none of
 * the backends' headers: the three instances are declared here and defined in their folders. */
#ifndef CELLA_BACKEND_H
#define CELLA_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"
#include "../util/util.h"

/* A started workload (backend-neutral, whichever backend started it): its pid, a pidfd to wait on
 * and signal it, the pty master with -t. (The name is historical: ns_start filled it first.) */
struct ns_proc {
  pid_t pid;
  int pidfd;
  int master;                    /* -1 without a terminal */
  unsigned long long root_mount; /* no mount namespace of its own: its root's bind (else 0) */
};

/* What a backend gives; callers test these, never the backend's kind. */
enum backend_cap {
  BACKEND_CAP_CGROUP_LIMITS = 1u << 0, /* the workload's own cgroup: limits, device rules, OOM, stats */
  BACKEND_CAP_CGROUP = 1u << 1,        /* a cgroup on the host to remove after (the workload's or QEMU's) */
  BACKEND_CAP_NETNS = 1u << 2,         /* a private network is a network namespace with a veth */
  BACKEND_CAP_NET_TAP = 1u << 3,       /* a private network is a tap device (a VM's NIC) */
  BACKEND_CAP_EXEC = 1u << 4,          /* `exec` into a running container */
  BACKEND_CAP_OVERLAY_ROOT = 1u << 5,  /* mounts an image's layers as an overlay root */
  BACKEND_CAP_PLAIN_ROOT = 1u << 6,    /* the root is a plain host directory (an image's layers are
                                          copied), its files there running or not */
  BACKEND_CAP_PORT_FILE = 1u << 7,     /* its supervisor writes the published ports, as resolved, to
                                          `ports` in its state directory */
  BACKEND_CAP_SEALED_EXE = 1u << 8,    /* the workload could reach cella's own binary (as
                                          /proc/PID/exe): run re-executes from a sealed copy first */
};

struct backend {
  const char *name;       /* "ns", "proot", "vm": --backend's value, the plan's JSON */
  enum backend_kind kind; /* the plan's p->backend */
  unsigned caps;          /* enum backend_cap bits */
  /* the directory under a container's own where it keeps its state between starts (NULL: none) */
  const char *state_name;

  /* Can it run here? *why (malloc'd, when given): what is missing, or what would be used. */
  bool (*available) (char **why);
  /* Refuse what the plan asks and this backend cannot give, naming the option; 0 or -1 with *err.
   * Called right after a plan is built, before anything is made for it. */
  int (*check) (const struct plan *p, cella_error_t *err);
  /* In the foreground, with the caller's stdio: the exit status to give (the workload's,
   * 125/126/127, 128+N), or a negative value with *err when nothing ran. */
  int (*run) (struct plan *p, cella_error_t *err);
  /* Detached, for the monitor, with the caller's stdio as the workload's (a pty of its own with
   * process.tty): 0 once it runs, *out filled; or -1 with *err and nothing left running.
   * state_dir: the container's state_name directory (NULL when state_name is). */
  int (*start) (struct plan *p, const char *state_dir, struct ns_proc *out, cella_error_t *err);
  /* p's process in the running container whose workload is `target`: its exit status like run.
   * NULL when the backend cannot (no BACKEND_CAP_EXEC). */
  int (*exec) (struct plan *p, pid_t target, const char *state_dir, cella_error_t *err);
  /* After the workload of a start ended: release what the backend held for it; true when the
   * kernel killed it for lack of memory. NULL: nothing to do. */
  bool (*finish) (const struct plan *p);
  /* What `cella inspect` shows of this backend (keys added to o). NULL: nothing. */
  void (*inspect) (const struct plan *p, const char *state_dir, json_t *o);
  /* Remove a container's state directory (it exists) with care, before the rest of the
   * container's directory goes. NULL: it goes with the rest. */
  int (*remove_state) (const char *state_dir, cella_error_t *err);
  /* Give p a root this backend can use at dest: a copy of its image's layers. NULL: none needed. */
  int (*copy_root) (struct plan *p, const char *dest, cella_error_t *err);
};

extern const struct backend backend_ns, backend_proot, backend_vm;

/* The backend that runs p (its p->backend). */
const struct backend *backend_of (const struct plan *p);
/* By name ("ns", "proot", "vm"); NULL when unknown. */
const struct backend *backend_named (const char *name);
/* The i-th backend (0, 1, 2...), NULL past the last: for doctor and for cleanup of all kinds. */
const struct backend *backend_at (size_t i);

static inline bool
backend_can (const struct plan *p, unsigned caps)
{
  return (backend_of (p)->caps & caps) == caps;
}

/* Refuse what p's backend cannot give (its check). */
int backend_check (const struct plan *p, cella_error_t *err);

/* The state directory of b for a container whose directory is ctr_dir (malloc'd), NULL when b
 * keeps none. */
char *backend_state_dir (const struct backend *b, const char *ctr_dir);
/* An exec's process runs (it was started: its command found and executed, as far as the backend
 * can tell): tell `exec -d`, which waits for this, by closing p->exec_started_fd. Once; no-op
 * without one. */
void backend_exec_started (struct plan *p);

/* Give p a plain directory root at dest, a copy of its image's layers (the proot backend's
 * copier: ns uses it too when the kernel refuses an overlay upper on the data root). */
int backend_copy_root (struct plan *p, const char *dest, cella_error_t *err);

/* Send sig to a started workload (its pidfd). */
int backend_signal (const struct ns_proc *proc, int sig);

#endif
