/* Landlock scoping (ABI 6, Linux 6.12): the container's processes cannot connect to abstract unix
 * sockets made outside their Landlock domain, nor signal processes outside it. docs/security.md
 * "Landlock scoping" says what it covers and what it does not. */
#ifndef CELLA_NS_LANDLOCK_H
#define CELLA_NS_LANDLOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "../host/landlock.h" /* landlock_abi, LANDLOCK_ABI_SCOPES */
#include "../plan/plan.h"

/* The scopes (PLAN_LANDLOCK_ABSTRACT_UNIX | PLAN_LANDLOCK_SIGNAL) a process of p gets, on the
 * host's side before it starts: AUTO becomes each scope whose namespace is the host's. */
/* ... for the container's first process: from the plan's namespaces (new ones, or paths) */
unsigned landlock_scopes_for_start (const struct plan *p);
/* ... for a process exec'd in the namespaces of the container's process `target` */
unsigned landlock_scopes_for_exec (const struct plan *p, pid_t target);

/* In the child, before the workload runs, with no_new_privs set or CAP_SYS_ADMIN effective in
 * its user namespace: put this process in a new Landlock domain with these scopes. A kernel
 * without scopes (ABI < 6, or Landlock off) is skipped (a line with debug). 0 or -1 with *err. */
int landlock_restrict (unsigned scopes, bool debug, cella_error_t *err);

#endif
