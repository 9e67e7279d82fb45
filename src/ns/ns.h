/* The namespace backend: runs a plan with clone(2) namespaces, mount ops and pivot_root. */
#ifndef CELLA_NS_H
#define CELLA_NS_H

#include <signal.h>

#include "../backend/backend.h"
#include "../host/probe.h" /* ns_available */
#include "../plan/plan.h"

/* Run the plan in the foreground; returns the exit status to give the caller (the workload's,
 * 125/126/127, or 128+N for a signal), or a negative value with *err set when nothing ran. */
int ns_run (struct plan *p, cella_error_t *err);

/* A started workload: struct ns_proc, the backend-neutral handle (backend/backend.h). */

/* A container without a mount namespace of its own has its root bound on the rootfs in the
 * runtime's mount namespace, everything it mounted below: detach that bind, if it is still the
 * one with id root_mount. */
void ns_host_root_release (const char *rootfs, unsigned long long root_mount);

/* Start the plan's workload with the caller's stdin/stdout/stderr (a terminal of its own with
 * process.tty). Returns 0 once the workload has exec'd, or a negative value with *err set
 * (its status 126/127 when the command cannot run); nothing is left running then.
 * child_mask: the signal mask the workload starts with (NULL: none blocked). */
int ns_start (struct plan *p, const sigset_t *child_mask, struct ns_proc *out, cella_error_t *err);

/* How an OCI runtime command (src/oci/) starts a container, beyond what the plan says. */
struct ns_launch {
  int exec_fifo;         /* O_PATH fd of the exec fifo: the child, set up, says SYNC_CREATED and
                            blocks opening it for write until `start` opens it for read; -1: exec */
  int console_socket;    /* connected unix socket: the pty master goes there (runc's protocol) */
  unsigned preserve_fds; /* the caller's fds 3 .. 3+n-1 stay open in the workload */
  bool detached;         /* the container outlives this process: no parent-death signal */
  bool cgroup_later;     /* ns_exec_launch: the container's cgroup is frozen (paused); the caller
                            moves the process in once it runs (`started`), or this one would freeze */
  /* in the parent, after id maps and cgroup, before the child builds its root (createRuntime and
   * prestart hooks); the child waits for it. Returns 0 or -1 with *err. */
  int (*parent_hook) (pid_t pid, void *ud, cella_error_t *err);
  void *ud;
  /* ns_run_launch: called once the workload runs (the OCI state is written there) */
  void (*started) (const struct ns_proc *proc, void *ud);
  /* a seccomp profile with SCMP_ACT_NOTIFY: hand the filter's listener fd (of process pid) to
   * the agent; the process waits, and fails when this does. NULL: such a profile fails. */
  int (*seccomp_listener) (int fd, pid_t pid, void *ud, cella_error_t *err);
};
#define NS_LAUNCH_INIT                                                                                                 \
  {                                                                                                                    \
    .exec_fifo = -1, .console_socket = -1                                                                              \
  }

/* ns_start / ns_run with a launch description (NULL: as ns_start / ns_run). */
int ns_start_launch (struct plan *p, const sigset_t *child_mask, const struct ns_launch *l, struct ns_proc *out,
                     cella_error_t *err);
int ns_run_launch (struct plan *p, const struct ns_launch *l, cella_error_t *err);
/* ns_exec with a launch description: console_socket, preserve_fds; detached: return as soon as
 * the process runs, its pid in *pid (the caller's subreaper reaps it). */
int ns_exec_launch (struct plan *p, pid_t target, const struct ns_launch *l, pid_t *pid, cella_error_t *err);

/* Run p's process (argv, env, cwd, user, tty, caps, seccomp) inside the namespaces of the
 * running process `target` (a container's workload); returns its exit status like ns_run. */
int ns_exec (struct plan *p, pid_t target, cella_error_t *err);

/* On an fsopen("overlay") context: the lower layers, top-most first ("lowerdir+" each on Linux
 * 6.8+, else one joined "lowerdir"). */
int overlay_set_lowers (int fs, char *const *lowers, size_t n, cella_error_t *err);

/* A container that root runs in a user namespace of its own (--userns auto or keep-id) gets its
 * root mounted before clone by ns_root_premount (src/ns/userns_root.c): a detached mount (the
 * overlay over its layers, idmapped for auto; or its root directory), its descriptor returned. */
bool ns_root_premount_wanted (const struct plan *p);
int ns_root_premount (const struct plan *p, cella_error_t *err);

/* Call fn as root (0:0) of a new user namespace that maps ids the way rootless containers get
 * them (0 → the caller, 1.. → its /etc/subuid range), in a child, so that files owned by the
 * container's ids can be made (image layers) and removed. As root, or with no subordinate range,
 * fn runs in this process as it is. Its error comes back in *err. */
int ns_run_mapped (int (*fn) (void *ud, cella_error_t *err), void *ud, cella_error_t *err);

/* remove_tree, and when that leaves something (files of subordinate ids), again inside
 * ns_run_mapped. -1 if something stayed. */
int remove_tree_mapped (const char *path);

/* clone3 as fork, into the new namespaces of flags (CLONE_NEW*), with a pidfd of the child in *pidfd
 * and SIGCHLD at its end; cgfd >= 0: born in that cgroup (CLONE_INTO_CGROUP, a v2 directory's fd).
 * 0 in the child, its pid in the caller, -1 with errno. */
pid_t ns_clone (unsigned long long flags, int cgfd, int *pidfd);

/* In a private mount namespace: a directory of the host's tree a fresh tmpfs may cover (/tmp, /mnt,
 * /run or /var/tmp), NULL if none; and that tmpfs (nosuid, nodev, its root of `mode`) mounted over
 * dir: its mount fd, or -1 with *err naming `what`. */
const char *ns_staging_dir (void);
int ns_tmpfs_over (const char *dir, const char *mode, const char *what, cella_error_t *err);

/* Make the mount whose root directory rootfd is the root of this mount namespace (pivot_root);
 * the old root and every mount under it are detached. The caller's cwd becomes "/". */
int ns_pivot_root (int rootfd, cella_error_t *err);

/* ns_available (can this backend run here, and why not) is a host probe: src/host/probe.h. */

#endif
