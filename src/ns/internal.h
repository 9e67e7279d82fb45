/* Shared between the parent (spawn.c) and the child (child.c, mount_ops.c) of the ns backend. */
#ifndef CELLA_NS_INTERNAL_H
#define CELLA_NS_INTERNAL_H

#include "../plan/plan.h"

/* Stages of the parent/child protocol over the SOCK_SEQPACKET sync socket. */
enum sync_msg {
  SYNC_GO = 1,          /* parent → child: id maps written, set yourself up (user ns only) */
  SYNC_PTY = 2,         /* child → parent: the pty master (SCM_RIGHTS) */
  SYNC_ERROR = 3,       /* child → parent: setup failed; status, errno and text follow */
  SYNC_PID = 4,         /* exec's joiner → cella: the pid of the process it started (in .status) */
  SYNC_CREATED = 5,     /* child → parent: set up, now blocked on the exec fifo (OCI create) */
  SYNC_GO_CGROUPNS = 6, /* parent → child: as SYNC_GO, and you are in your cgroup now: create the
                         * cgroup namespace (left out of clone so that its root is that cgroup) */
  SYNC_SECCOMP = 7,     /* child → parent: the seccomp filter's listener (SCM_RIGHTS) for the agent at
                         * listenerPath; the parent answers with an int: 0, or the errno of its failure */
  SYNC_ROOT_MOUNT = 8,  /* child → parent: no mount namespace of its own, its root is a bind in the
                         * runtime's; the mount's id (decimal, in msg) for ns_host_root_release */
  SYNC_EXEC_FAILED = 9, /* the exec stub → parent: no execve of the workload succeeded; a struct
                         * execstub_failure (src/util/execstub.h) */
};

struct sync_error {
  int type;   /* SYNC_ERROR */
  int status; /* exit status to use: 125, 126, 127 */
  int errno_;
  char msg[1024];
};

/* Per-op handles the child holds while it builds the root. */
struct op_rt {
  int fd;     /* detached mount (open_tree / fsmount) or O_PATH source; -1 none */
  int fds[8]; /* dev: host device trees; overlay: lower/upper/work O_PATH fds */
  size_t nfds;
  int *lfds; /* the root overlay: its (many) lower layers, top-most first; NULL otherwise */
  size_t nlfds;
};

struct mount_ctx {
  const struct plan *plan;
  int rootfd;    /* the container root mount, attached at <staging>/root */
  int stagingfd; /* the private tmpfs that holds root/, overlay uppers and placed files */
  const char *staging;
  unsigned seq;
};

/* host side, before clone: resolve sources once and fail early with a clear message */
int mount_op_prepare (struct op *op, const struct plan *p, cella_error_t *err);
/* host side, once the child has its copy: what prepare holds open for it (a bind's detached mount) */
void mount_op_release (struct op *op);
/* host side, before clone: the root's detached mount when the child could not reach it (root of
 * the host, a user namespace); released like the ops' */
int mount_root_prepare (struct plan *p, cella_error_t *err);
void mount_root_release (struct plan *p);
/* child, in its new mount namespace, before the staging tmpfs hides anything */
int mount_op_acquire (const struct op *op, struct op_rt *rt, const struct plan *p, cella_error_t *err);
/* child, relative to the new root */
int mount_op_apply (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err);
void op_rt_close (struct op_rt *rt);
/* mount_ops.c's steps, for the ops that live in files of their own (cgroup_mount.c): a kernel
 * filesystem's mount target (a real directory, never a symlink), fsopen+fsconfig+fsmount
 * (opts: name, value-or-NULL pairs), move_mount onto a target fd, mount_setattr. */
int mount_open_fs_target (int rootfd, const char *path, cella_error_t *err);
int mount_new_fs (const char *type, const char *const *opts, unsigned long long attrs, cella_error_t *err);
/* ... with the source mountinfo shows (mount_new_fs: the type) */
int mount_new_fs_src (const char *type, const char *source, const char *const *opts, unsigned long long attrs,
                      cella_error_t *err);
int mount_attach (int mntfd, int targetfd, const char *what, const char *target, cella_error_t *err);
int mount_set_attr (int mntfd, unsigned long long set, bool recursive, const char *what, cella_error_t *err);
/* OCI `cgroup`/`cgroup2` mount (cgroup_mount.c): the container's own cgroups at op->target */
int mount_cgroups (struct mount_ctx *c, const struct op *op, cella_error_t *err);
/* A detached overlay mount for op (lower fds in rt, ephemeral upper in the staging tmpfs). */
int overlay_mount (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err);

/* Whether a root bound from a directory is made nodev (rootfs.c). */
bool root_nodev (const struct plan *p);
/* Build the root: staging tmpfs, the root mount, every op, pivot_root. */
/* go (NULL: none): the child's late wait for the parent's SYNC_GO (ns_launch_go_late), called
 * before the first mount that shows the container's own cgroup, else once the root is built. */
struct root_go {
  int (*wait) (void *ud, cella_error_t *err);
  void *ud;
  bool done;
};
int root_setup (const struct plan *p, struct op_rt *rts, struct root_go *go, cella_error_t *err);
/* The id of the mount at dirfd/path (statx; the unique 64-bit one on Linux 6.8+). */
int ns_mount_id (int dirfd, const char *path, unsigned long long *id);

/* Open (creating what is missing when create is set) a path inside the root without ever
 * leaving it: every lookup is openat2 RESOLVE_IN_ROOT. Returns an O_PATH fd. */
int root_open (int rootfd, const char *path, bool create, bool dir, cella_error_t *err);

/* The child waits for SYNC_GO when the parent has work to do between clone and the child's
 * setup: id maps (user namespace), the cgroup (src/ns/cgroup.c), the network (src/net/). */
bool ns_child_waits (const struct plan *p);
struct ns_launch;
/* ... or when the launch has a parent_hook */
bool ns_launch_waits (const struct plan *p, const struct ns_launch *l);
/* ... and takes SYNC_GO only after building its root: when only the cgroup needs the parent */
bool ns_launch_go_late (const struct plan *p, const struct ns_launch *l);

/* One message over sock: `payload` with fd attached as SCM_RIGHTS (child.c). */
int send_fd_with (int sock, void *payload, size_t len, int fd);

/* child.c (l: NULL for a plain run) */
__attribute__ ((noreturn)) void ns_child_main (const struct plan *p, int syncfd, const struct ns_launch *l);
/* exec: the joined process (already in every namespace of the container): terminal, user,
 * working directory, capabilities, seccomp, then exec. */
__attribute__ ((noreturn)) void ns_exec_child_main (struct plan *p, int syncfd, const struct ns_launch *l);
/* The error of a failed exec of argv0 (saved: the errno that decides, as execvp's): 127 when not
 * found, 126 otherwise. */
int ns_exec_error (cella_error_t *err, const char *argv0, int saved);
/* init.c: PID 1 reaper for --init; returns the exit status to exit with */
int ns_init_run (pid_t workload);

/* oci_apply.c: what an OCI config adds (every step is a no-op for an engine plan) */
int ns_join_paths (const struct plan *p, cella_error_t *err);                       /* child, first */
int ns_enter_for_children (const struct plan *p, int saved[2], cella_error_t *err); /* parent, before clone */
void ns_leave_for_children (int saved[2]);                                          /* parent, after clone */
int ns_oci_before_root (const struct plan *p, cella_error_t *err);                  /* sysctl, oom, time ns, LSM */
int ns_oci_process (const struct plan *p, cella_error_t *err);      /* rlimits, umask, personality, domainname */
int ns_oci_exec_process (const struct plan *p, cella_error_t *err); /* the same for exec, but domainname */
int ns_oci_session (const struct plan *p, cella_error_t *err);      /* OCI: a session of its own (no tty) */
int ns_oci_make_cwd (const struct plan *p, cella_error_t *err);     /* OCI init: create a missing cwd */
char **ns_process_env (const struct plan *p);                       /* env + HOME when it has none */
pid_t ns_host_pid (void);                                           /* while the host's /proc is mounted */
int ns_oci_hooks (const struct plan *p, enum plan_hook_kind kind, const char *status, pid_t pid, cella_error_t *err);
/* oci_mounts.c: linux.devices in the container's /dev tmpfs (dirfd); a mount's or the root's
 * propagation; tmpcopyup of what the root has at path into the detached tmpfs m */
int ns_make_devices (const struct plan *p, int devfd, cella_error_t *err);
int ns_make_devices_elsewhere (const struct plan *p, int rootfd, cella_error_t *err); /* outside /dev */
int ns_prepare_devices (struct plan *p, cella_error_t *err); /* host, before clone (root + user ns) */
void ns_release_devices (struct plan *p);                    /* host, after clone */
int mount_set_propagation (int dirfd, const char *path, enum plan_propagation prop, cella_error_t *err);
int mount_tmpcopyup (int rootfd, const char *path, int m, cella_error_t *err);
/* a user namespace holding these maps (for MOUNT_ATTR_IDMAP), made from the host by root: its
 * descriptor, or -1 with errno */
int ns_userns_fd (const struct id_map *uid, size_t nuid, const struct id_map *gid, size_t ngid);
/* an idmapped bind: its user namespace made on the host (prepare), set on the detached mount */
int idmap_prepare (struct op *op, cella_error_t *err);
/* Write every range of m to DIR/FILE (/proc/PID, uid_map or gid_map) in one write; -1 with errno. */
int ns_write_id_map (const char *dir, const char *file, const struct id_map *m, size_t n);
int idmap_apply (const struct op *op, int mntfd, cella_error_t *err);

#endif
