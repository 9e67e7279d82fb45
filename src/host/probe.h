/* What this host can do, tried for real where that is cheap: the probes `cella doctor` reports.
 * (The backends only need ns_available, which is built on probe_ns_backend.) */
#ifndef CELLA_HOST_PROBE_H
#define CELLA_HOST_PROBE_H

#include <stdbool.h>
#include <stddef.h>

/* The ns backend's probe: a child tries to unshare the namespaces a container gets here (with a
 * user namespace when not root). true when it can; else *reason ("creating a user namespace … is
 * refused (EPERM): user.max_user_namespaces is 0") and *fix ("`sysctl -w …`"), both malloc'd.
 * The sysctls and /proc/self/status are read only to explain a refusal. Cached per process. */
bool probe_ns_backend (char **reason, char **fix);
/* A positive answer is also kept for the boot in the run root (keyed by the boot id and who asks:
 * ids, user namespace, effective capabilities, seccomp mode, no_new_privs; a change probes again),
 * which saves a start the probe's child. probe_ns_backend_fresh forgets this process's answer and
 * probes for real from then on, whatever is kept: `cella doctor` calls it first, and a run whose
 * kept answer was wrong before it plans again. */
void probe_ns_backend_fresh (void);
/* The start's own clone of the container's namespaces failed with e. When e is a refusal (EPERM,
 * EACCES, ENOSPC, EUSERS, EINVAL, ENOSYS) the kept answer is dropped (the next start probes for
 * real). probe_ns_kept_answer_was_wrong then says whether this process's answer had come from
 * it: the caller may plan again after probe_ns_backend_fresh. */
void probe_ns_refused_at_start (int e);
bool probe_ns_kept_answer_was_wrong (void);

/* Why the ns backend cannot run here (NULL when it can); used by doctor and the auto choice.
 * probe_ns_backend's answer: *why (malloc'd, when given) is "<what is refused> (ERRNO): <cause>
 * — <fix>". Cached per process: about 0.3 ms the first time. */
bool ns_available (char **why);

/* The kernel features, each its own attempt. */
enum probe_id {
  PROBE_MOUNT_NS,
  PROBE_PID_NS,
  PROBE_NET_NS,
  PROBE_USER_NS,
  PROBE_OVERLAY, /* an overlay mounted (and written through) where the image store mounts it */
  PROBE_SECCOMP,
  PROBE_PIDFD,
  PROBE_OPENAT2,
  PROBE_MOUNT_API,
  PROBE_LANDLOCK, /* Landlock scoping (ABI 6): the ABI version, and a ruleset of scopes made */
  PROBE_KVM,
  PROBE_COUNT
};

struct probe_result {
  const char *key;   /* JSON name: "mount_ns", "overlay_userns", … */
  const char *title; /* for the table: "mount namespace", … */
  bool ok;
  int errno_;   /* what the attempt failed with; 0 when ok */
  char *detail; /* what was tried and what came back; the fix too when it failed */
};

/* Run every probe (those that change namespaces in a child each, one after the other: a few
 * milliseconds in all). scratch: a directory where the overlay probe makes (and removes) a
 * temporary directory; the overlay is tried on that directory's file system. */
void probe_kernel (const char *scratch, struct probe_result res[PROBE_COUNT]);

/* The overlay probe alone, on dir's file system (as the upper dir's): true when an overlay can be
 * mounted and written there the way containers mount it; else *detail (malloc'd) says why. */
bool probe_overlay_upper (const char *dir, char **detail);
void probe_results_free (struct probe_result *res, size_t n);

struct probe_cgroups {
  const char *version;   /* "v2" (unified at /sys/fs/cgroup), "hybrid", "v1" or "none" */
  char *v2_mount;        /* where cgroup2 is mounted; NULL without it */
  char **v1_controllers; /* enabled in /proc/cgroups and bound to a v1 hierarchy */
  char **v2_controllers; /* cgroup.controllers of the v2 root */
  char *own;             /* this process's v2 cgroup directory; NULL without v2 */
  bool delegated;        /* own (and its cgroup.procs) writable by this user */
};
void probe_cgroups (struct probe_cgroups *cg);
void probe_cgroups_free (struct probe_cgroups *cg);

/* Helper programs and their versions. */
struct probe_program {
  const char *name;        /* looked up on PATH (then the sbin dirs) when path is NULL */
  const char *version_arg; /* "--version", "-V" */
  char *path;              /* malloc'd; NULL when not found */
  char *version;           /* filled: probe_version_line of what it printed, or NULL */
  bool timed_out;
};

/* name (or a path with a slash) as an executable regular file: $PATH, then /usr/local/sbin,
 * /usr/sbin, /sbin. malloc'd, or NULL. */
char *probe_find_program (const char *name);
/* Run `path version_arg` of every program found, all at once, stdin /dev/null, stdout and stderr
 * captured, in a session of its own (no terminal to block on); whatever still runs after
 * timeout_ms is killed. */
void probe_program_versions (struct probe_program *progs, size_t n, int timeout_ms);
void probe_programs_free (struct probe_program *progs, size_t n);
/* The first line of output that has a digit, trimmed; from its first word that starts with a
 * digit when the line starts with neither a letter nor a digit (proot's ASCII-art banner). */
char *probe_version_line (const char *output);

#endif
