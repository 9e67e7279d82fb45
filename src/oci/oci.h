/* The OCI runtime side of cella: config.json → plan (config.c), hooks (hooks.c).
 * The runc-compatible command line (src/cli/) uses these. */
#ifndef CELLA_OCI_H
#define CELLA_OCI_H

#include <jansson.h>
#include <sys/types.h>

#include "../plan/plan.h"

/* The annotation that asks cella for Landlock scoping (plan.h PLAN_LANDLOCK_*: "auto",
 * "abstract-unix-socket,signal", "off"); without it an OCI container is not scoped, as with runc
 * and crun (docs/oci.md). */
#define OCI_ANNOTATION_LANDLOCK "io.github.cella.landlock"

/* Read BUNDLE/config.json into a new plan (root.path made absolute against the bundle, which
 * is saved in plan->bundle). Every invalid or unsupported value is an error naming its JSON
 * path ("config.json: mounts[3].options[1]: unknown option `rwx`"). No side effects: nothing
 * is created, only files are read (and the host is probed for AppArmor/SELinux/time
 * namespaces when the config asks for them). */
int oci_config_load (const char *bundle, struct plan **out, cella_error_t *err);

/* The same from JSON text; `bundle` (may be NULL) resolves a relative root.path and names the
 * bundle; `what` prefixes messages ("config.json"). */
int oci_config_parse (const char *text, const char *bundle, const char *what, struct plan **out, cella_error_t *err);

/* The mount options config.json takes (the parse table's names), as a JSON array: what
 * `features` advertises. */
json_t *oci_mount_option_names (void);

/* An OCI `process` object (runc exec --process FILE): fills *pr (cleared first; free with
 * oci_process_clear). */
int oci_process_parse (const char *text, const char *what, struct plan_process *pr, cella_error_t *err);
void oci_process_clear (struct plan_process *pr);

/* The state JSON hooks get on stdin (runtime.md "state"): ociVersion, id, status, pid, bundle,
 * annotations. Caller frees. */
char *oci_state_json (const struct plan *p, const char *status, pid_t pid);

/* Run one hook: fork, exec h->path with h->args and h->env (cella's own environment when none),
 * state_json on its stdin, wait at most h->timeout seconds (then SIGKILL). A non-zero exit,
 * a signal or a timeout is an error naming the hook. */
int oci_hook_run (const struct plan_hook *h, const char *state_json, cella_error_t *err);

/* Run every hook of one kind in order; the first failure stops and is the error. */
int oci_hooks_run (const struct plan *p, enum plan_hook_kind kind, const char *state_json, cella_error_t *err);

/* The plan's OCI additions (rlimits, capability sets, hooks, devices, seccomp profile, sysctl,
 * namespace paths, resources ...) as keys of a saved plan, and back (src/plan/plan.c and
 * from_json.c call these; the JSON form of each is the OCI one). */
void oci_plan_extras_to_json (const struct plan *p, json_t *root);
int oci_plan_extras_from_json (json_t *root, struct plan *p, cella_error_t *err);
void oci_plan_extras_free (struct plan *p);
void oci_process_extras_free (struct plan_process *pr);

/* A seccomp profile in docker's format (`--security-opt seccomp=FILE`, moby's
 * profiles/seccomp/default.json): the OCI linux.seccomp object plus `archMap`, a rule's `name`,
 * `includes`/`excludes` (caps, arches, minKernel) and `comment`. Rules are kept or dropped for
 * the container described by `h` (its bounding set, this machine's architecture and kernel), as
 * docker does, and the result is an OCI profile, loaded like a config's. Errors name the file
 * (`what`) and the JSON path ("profile.json: syscalls[3].args[0].op: unknown operator `X`"). */
struct oci_seccomp_host {
  uint64_t caps;         /* the container's bounding set: includes/excludes.caps */
  const char *arch;      /* docker's (Go's) name of this architecture: "amd64", "arm64" ... */
  const char *scmp_arch; /* "SCMP_ARCH_X86_64": the archMap entry that applies; NULL: none */
  unsigned kernel[2];    /* major, minor: minKernel */
};
void oci_seccomp_host_native (uint64_t caps, struct oci_seccomp_host *h);
int oci_seccomp_profile_parse (const char *text, const char *what, const struct oci_seccomp_host *h,
                               struct plan_seccomp **out, cella_error_t *err);
/* The file at `path`, for a container with bounding set `caps` on this machine. */
int oci_seccomp_profile_load (const char *path, uint64_t caps, struct plan_seccomp **out, cella_error_t *err);
void oci_seccomp_free (struct plan_seccomp *s);

#endif
