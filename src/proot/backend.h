/* The proot backend: a plan run by the `proot` program (ptrace), for hosts that refuse
 * namespaces. The root is a plain directory (a copy of an image's layers; proot cannot mount),
 * fake root (-0), a fake kernel release (-k, only when asked: proot 5.1's -k breaks directory
 * reads), binds for volumes, /dev, /proc, /sys and the files
 * the plan places (hosts, hostname, resolv.conf). What proot cannot give was refused when the plan
 * was built (src/plan/build.c). */
#ifndef CELLA_PROOT_BACKEND_H
#define CELLA_PROOT_BACKEND_H

#include <signal.h>

#include "ns/ns.h"
#include "plan/plan.h"

/* The proot command line for p's process. state_dir: a private directory where the placed files
 * and tmpfs stand-ins are made (kept while the container runs). main_process: the container's own
 * command (published ports apply to it), not an exec. */
int proot_command (const struct plan *p, const struct plan_process *pr, const char *state_dir, bool main_process,
                   char ***argv, cella_error_t *err);

/* Run p in the foreground: the exit status (127 not found, 126 not executable, else proot's) or
 * -1 with *err. Makes its state dir and removes it after; with may_exec and nothing to clean up
 * (no tmpfs, no file to place), execs proot in place of this process instead. */
int proot_run (struct plan *p, bool may_exec, cella_error_t *err);

/* Start p (for the monitor) with the caller's stdio (a pty of its own with process.tty), in a
 * process group of its own so that stop can signal the whole tree. */
int proot_start (struct plan *p, const char *state_dir, struct ns_proc *out, cella_error_t *err);

/* `cella exec` in a proot container: a new proot over the same root; exit status like proot_run. */
int proot_exec (struct plan *p, const char *state_dir, cella_error_t *err);

/* Give the plan a root proot can use: a copy of an image's layers (reflink when the filesystem can)
 * at dest, recorded in p (rootfs = dest, root_copy = the copy method). A directory root is used as
 * it is. The engine uses it for ns containers too when the kernel refuses an overlay upper on the
 * data root's file system. */
int proot_prepare_root (struct plan *p, const char *dest, cella_error_t *err);

#endif
