/* Landlock scoping (landlock.h). The kernel's interface (struct ll_ruleset_attr, the ABI probe)
 * is in src/host/landlock.h. */
#define _GNU_SOURCE
#include "landlock.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
create_ruleset (unsigned scopes)
{
  struct ll_ruleset_attr attr = { 0 };
  attr.scoped = ((scopes & PLAN_LANDLOCK_ABSTRACT_UNIX) ? LL_SCOPE_ABSTRACT_UNIX_SOCKET : 0)
                | ((scopes & PLAN_LANDLOCK_SIGNAL) ? LL_SCOPE_SIGNAL : 0);
  return (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
}

/* Two namespace files name the same namespace; true too when either cannot be read (the
 * process is scoped rather than not). */
static bool
same_ns (const char *a, const char *b)
{
  return same_file (a, b) != 0;
}

/* Does the container's first process live in the host's namespace of this kind (bit index i,
 * a PLAN_NS_* bit): no new one, or a path to the host's own. */
static bool
start_shares (const struct plan *p, unsigned i, const char *self)
{
  if (p->ns_path[i])
    return same_ns (p->ns_path[i], self);
  return !(p->ns & (1u << i));
}

static unsigned
resolve (unsigned asked, bool host_net, bool host_pid)
{
  unsigned s = asked & (PLAN_LANDLOCK_ABSTRACT_UNIX | PLAN_LANDLOCK_SIGNAL);
  if (asked & PLAN_LANDLOCK_AUTO)
    s |= (host_net ? PLAN_LANDLOCK_ABSTRACT_UNIX : 0) | (host_pid ? PLAN_LANDLOCK_SIGNAL : 0);
  return s;
}

unsigned
landlock_scopes_for_start (const struct plan *p)
{
  /* bit indexes of PLAN_NS_NET and PLAN_NS_PID, as in plan.ns_path */
  if (!(p->landlock & PLAN_LANDLOCK_AUTO))
    return resolve (p->landlock, false, false);
  return resolve (p->landlock, start_shares (p, 4, "/proc/self/ns/net"), start_shares (p, 1, "/proc/self/ns/pid"));
}

unsigned
landlock_scopes_for_exec (const struct plan *p, pid_t target)
{
  char net[64], pid[64];
  if (!(p->landlock & PLAN_LANDLOCK_AUTO))
    return resolve (p->landlock, false, false);
  snprintf (net, sizeof net, "/proc/%d/ns/net", (int) target);
  snprintf (pid, sizeof pid, "/proc/%d/ns/pid", (int) target);
  return resolve (p->landlock, same_ns (net, "/proc/self/ns/net"), same_ns (pid, "/proc/self/ns/pid"));
}

int
landlock_restrict (unsigned scopes, bool debug, cella_error_t *err)
{
  cleanup_close int fd = -1;
  int abi;
  if (scopes == 0)
    return 0;
  abi = landlock_abi ();
  if (abi < LANDLOCK_ABI_SCOPES)
    {
      if (debug)
        fprintf (stderr, "cella: debug: Landlock scoping skipped: %s\n",
                 abi == -ENOSYS       ? "this kernel has no Landlock"
                 : abi == -EOPNOTSUPP ? "Landlock is not enabled (lsm= boot parameter)"
                 : abi < 0            ? "Landlock cannot be asked"
                                      : "this kernel's Landlock ABI has no scopes (6, Linux 6.12)");
      return 0;
    }
  fd = create_ruleset (scopes);
  if (fd < 0)
    return cella_error (err, errno, "Landlock: create a ruleset of scopes");
  if (syscall (SYS_landlock_restrict_self, fd, 0) < 0)
    return cella_error (err, errno, "Landlock: scope the container's processes%s",
                        errno == EPERM
                            ? " (needs no_new_privs or CAP_SYS_ADMIN; --security-opt landlock=off turns it off)"
                        : errno == E2BIG ? " (cella runs in 16 nested Landlock domains already)"
                                         : "");
  if (debug)
    {
      cleanup_free char *names = plan_landlock_format (scopes);
      fprintf (stderr, "cella: debug: Landlock scopes: %s\n", names);
    }
  return 0;
}
