/* The namespace backend: runs a plan with clone(2) namespaces, mount ops and pivot_root. */
#ifndef CELLA_NS_H
#define CELLA_NS_H

#include <signal.h>

#include "../plan/plan.h"

/* Run the plan in the foreground; returns the exit status to give the caller (the workload's,
 * 125/126/127, or 128+N for a signal), or a negative value with *err set when nothing ran. */
int ns_run (struct plan *p, cella_error_t *err);

/* A started workload: its pid, a pidfd to wait on and signal it, the pty master with -t. */
struct ns_proc {
  pid_t pid;
  int pidfd;
  int master;   /* -1 without a terminal */
};

/* Start the plan's workload with the caller's stdin/stdout/stderr (a terminal of its own with
 * process.tty). Returns 0 once the workload has exec'd, or a negative value with *err set
 * (its status 126/127 when the command cannot run); nothing is left running then.
 * child_mask: the signal mask the workload starts with (NULL: none blocked). */
int ns_start (struct plan *p, const sigset_t *child_mask, struct ns_proc *out, cella_error_t *err);

/* Run p's process (argv, env, cwd, user, tty, caps, seccomp) inside the namespaces of the
 * running process `target` (a container's workload); returns its exit status like ns_run. */
int ns_exec (struct plan *p, pid_t target, cella_error_t *err);

/* On an fsopen("overlay") context: the lower layers, top-most first ("lowerdir+" each on Linux
 * 6.8+, else one joined "lowerdir"). */
int overlay_set_lowers (int fs, char *const *lowers, size_t n, cella_error_t *err);

/* Why the backend cannot run here (NULL when it can); used by doctor and auto choice. */
bool ns_available (char **why);

#endif
