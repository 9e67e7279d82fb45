/* cgroups for the ns backend: v2, v1, and hybrid layouts (src/ns/cgroup.c; reading back and
 * controlling a running container's cgroup: src/ns/cgroup_ctl.c). docs/resources.md.
 *
 * Where a container's cgroup lives (relative to the root of each hierarchy we use):
 *   as root of the host (euid 0 in the initial user namespace): /cella/<id>, like docker's
 *     cgroupfs driver (/docker/<id>);
 *   otherwise (rootless, `unshare -r`): v2 only, under the highest ancestor of this process's own
 *     cgroup that this user may write (a delegated subtree): <that>/cella/<id>; without one the
 *     container runs without a cgroup of its own (and limits are reported as not applied);
 *   an OCI cgroupsPath replaces /cella/<id>: absolute as is, relative under the base above, the
 *     systemd form "slice:prefix:name" as the cgroupfs path systemd would use
 *     (/a.slice/a-b.slice/prefix-name.scope).
 * On a hybrid host (v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified) the v1 controllers
 * are used; the unified tree only for hugepage limits when no v1 hugetlb hierarchy exists. */
#ifndef CELLA_CGROUP_H
#define CELLA_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"
#include "../plan/resources.h"

/* Whether a container of this plan gets a cgroup of its own (the parent then moves the child into it before
 * the child sets itself up): an ns-backend plan with a limit, a cgroupsPath, or res.want (engine containers,
 * so that stats, pause and exec's join work), when this process can make cgroups (cgroup_usable). A plain
 * foreground `cella run` without limits gets none. */
bool cgroup_wanted (const struct plan *p);

/* Create the container's cgroup, apply p->res and the device rules, move pid into it. */
int cgroup_enter (const struct plan *p, pid_t pid, cella_error_t *err);
/* The same with the limits in res instead of p's, and on v1 only in the hierarchies of those limits
 * (each other one would cost a mkdir and hold nothing used): the vm backend's QEMU, with its memory
 * limit. */
int cgroup_enter_limited (const struct plan *p, const struct plan_resources *res, pid_t pid, cella_error_t *err);
/* Before clone: when the container's cgroup is one directory of a cgroup2 tree (v2; a hybrid host's
 * devices-only cgroup), create it as cgroup_enter would and set *fd to it, for clone3's CLONE_INTO_CGROUP:
 * the child is born there, without a migration (whose RCU grace period cost 4-11 ms of every start here).
 * *fd -1: cgroup_enter after clone, as before. devices_later: everything but the device rules, which the
 * caller applies with cgroup_devices_apply after clone, while the child builds its root, and before it lets
 * the child run anything of the container's (its exec). */
int cgroup_create_for_clone (const struct plan *p, bool devices_later, int *fd, cella_error_t *err);
/* The device rules of the cgroup that cgroup_create_for_clone (devices_later) made, cgfd open on it. */
int cgroup_devices_apply (const struct plan *p, int cgfd, cella_error_t *err);

/* ---- the pure parts (exported for the unit tests; those the plan builder uses are in plan/resources.h) ---- */

/* cpu.shares (2..262144) → cgroup v2 cpu.weight (1..10000), the OCI/runc conversion. */
unsigned long long cgroup_shares_to_weight (unsigned long long shares);
/* A cgroupsPath (NULL: cella's default) → the container's path relative to a hierarchy's root (starts with
 * '/', no trailing '/'). base: the directory cella works under ("" for the root). */
int cgroup_rel_path (const char *cgroups_path, const char *id, const char *base, char **out, cella_error_t *err);

/* ---- the layout and a container's directories ---- */

enum cgroup_layout { CGROUP_NONE, CGROUP_V1, CGROUP_HYBRID, CGROUP_V2 };

/* The v1 controllers cella uses (each may be co-mounted with others, e.g. cpu,cpuacct). */
enum cgroup_v1 {
  CG_MEMORY,
  CG_CPU,
  CG_CPUACCT,
  CG_CPUSET,
  CG_PIDS,
  CG_BLKIO,
  CG_FREEZER,
  CG_DEVICES,
  CG_HUGETLB,
  CG_V1__COUNT
};

struct cgroup_dirs {
  enum cgroup_layout layout;
  char *v2;               /* v2: the container's directory (absolute) */
  char *v1[CG_V1__COUNT]; /* v1/hybrid: per controller, NULL where the host lacks it */
  char *unified;          /* hybrid: the same path in the cgroup2 tree, used only for
                           * what no v1 hierarchy has (hugetlb on this kind of host);
                           * NULL otherwise */
  char *dev_shared;       /* a plain run's cgroup (devices only, v2 or the cgroup2 tree of a hybrid host):
                           * the parent `cella/devices-KEY` whose one program of the container's rules
                           * holds for every container below it; NULL: the program goes on the
                           * container's own directory */
};
void cgroup_dirs_clear (struct cgroup_dirs *d);

/* The layout of this host (cached per process). */
enum cgroup_layout cgroup_layout (void);
const char *cgroup_layout_name (enum cgroup_layout l);

/* Whether this process can make cgroups for containers (see the top comment); *why (malloc'd, when given)
 * says why not. */
bool cgroup_usable (char **why);

/* When limits are set but cannot be applied (cgroup_usable false): print once per process on stderr "cella:
 * no writable cgroup for this user: --memory is not applied (<why>)"; as root of the host without any cgroup
 * file system, that the device rules are not applied. */
void cgroup_notice_unapplied (const struct plan *p);

/* The directories of the container of plan p (they need not exist). -1 when it has none here. */
int cgroup_path_of (const struct plan *p, struct cgroup_dirs *out, cella_error_t *err);

/* Move pid (0: the caller) into the container's cgroup in every hierarchy (exec's join). */
int cgroup_join (const struct cgroup_dirs *d, pid_t pid, cella_error_t *err);

/* Apply new limits to an existing cgroup (runc update): only the fields set in r. */
int cgroup_update (const struct cgroup_dirs *d, const struct plan_resources *r, cella_error_t *err);

/* Pause (freeze true) or resume; returns once the kernel says FROZEN / THAWED. */
int cgroup_freeze (const struct cgroup_dirs *d, bool freeze, cella_error_t *err);

/* The pids in the cgroup (malloc'd array, *n entries). */
int cgroup_pids (const struct cgroup_dirs *d, pid_t **pids, size_t *n, cella_error_t *err);

/* Send sig to every process in the cgroup (kill --all); SIGKILL uses cgroup.kill on v2. */
int cgroup_signal_all (const struct cgroup_dirs *d, int sig, cella_error_t *err);

/* What a container uses; -1 in a field the host does not report. */
struct cgroup_stats {
  long long mem_usage;                /* bytes, inactive file cache left out (as docker stats) */
  long long mem_limit;                /* bytes; the host's memory when unlimited */
  long long mem_max_usage;            /* peak bytes */
  long long cpu_ns;                   /* cpu time used, ns */
  long long pids_current, pids_limit; /* limit -1: unlimited */
  long long io_read, io_write;        /* bytes */
  long long oom_kills;
};
int cgroup_stats (const struct cgroup_dirs *d, struct cgroup_stats *st, cella_error_t *err);

/* The OOM kills counted in the cgroup (0 when none or unknown). */
long long cgroup_oom_kills (const struct cgroup_dirs *d);

/* Kill what is left in the cgroup and remove its directories, and the empty cgroups below them, waiting up to
 * patience_ms while one is busy (tasks still exiting: the kernel counts a task in its cgroup until its last
 * switch out, after its parent reaped it). A cgroup already gone is no error. What is still busy then is
 * recorded (<run root>/cgroup-leftover) for cgroup_sweep, and -1 says which. docs/resources.md. */
int cgroup_remove_patient (const struct cgroup_dirs *d, long long patience_ms, cella_error_t *err);

/* cgroup_remove_patient with 2 s (the monitor's, a failed start's). */
int cgroup_remove (const struct cgroup_dirs *d, cella_error_t *err);

/* An orphan cgroup younger than this may be a start under way in another data root: the sweep leaves it. */
#define CGROUP_ORPHAN_MIN_AGE_S 60

/* Remove the recorded leftovers that are empty now; with scan, also every empty cgroup named as a container
 * (64 hex digits) under cella's own directory of each hierarchy (<base>/cella/ID) that keep(ID) does not
 * claim and that is CGROUP_ORPHAN_MIN_AGE_S old. Only rmdir: a cgroup with a task or a child stays, and
 * nothing is killed. Returns how many directories went. */
size_t cgroup_sweep (bool scan, bool (*keep) (const char *id, void *ud), void *ud);

/* A plain run killed before its teardown leaves its empty leaf below the shared parent (devices-KEY).
 * Once the parent has more than this many leaves, the start that finds it so removes the empty
 * ones that are CGROUP_ORPHAN_MIN_AGE_S old (cgroup_sweep_leaves): the leftovers stay bounded
 * without `system prune`, and a start pays one fstat below the mark. */
#define CGROUP_PLAIN_SWEEP_AT 128
size_t cgroup_sweep_leaves (const char *parent);

/* Remove the cgroup of plan p (ns, and vm: QEMU's), if it has one; errors are dropped (cleanup paths). */
void cgroup_remove_plan (const struct plan *p);

/* exec: move pid into the cgroup of the container of plan p, when it has one (cgroup_wanted and its directory
 * exists); 0 when there is nothing to join. */
int cgroup_join_plan (const struct plan *p, pid_t pid, cella_error_t *err);

/* After the container's workload is gone (foreground run's end, the engine monitor): whether the OOM killer
 * struck in its cgroup; then the cgroup is removed. false when it had none. */
bool cgroup_finish (const struct plan *p);
/* A plain run's own cgroup (below a shared device parent, `cella/devices-KEY`: nothing in it to report, no
 * limit), for another process to rmdir once the run is over: its path into buf, true; false (buf untouched)
 * for any other cgroup, which cgroup_finish removes. */
bool cgroup_plain_leaf (const struct plan *p, char *buf, size_t n);

/* ---- devices (cgroup_dev.c) ---- */

/* Whether the container's device access is limited by its cgroup here: an ns-backend plan without
 * res.all_devices (--privileged), started by root of the host. Elsewhere (rootless, `unshare -r`) the user
 * namespace does it: mknod needs CAP_MKNOD of the initial namespace, and what is mounted in a user namespace
 * is nodev. Such a container always gets a cgroup (cgroup_wanted). */
bool cgroup_devices_confined (const struct plan *p);

/* The rules every confined container gets after its own (runc's list without /dev/console). */
size_t cgroup_dev_default_rules (const struct plan_dev_rule **out);
/* The effective list: deny all, r->dev_rules, the defaults (malloc'd, *n entries). Later rules win. */
struct plan_dev_rule *cgroup_dev_rules (const struct plan_resources *r, size_t *n);
/* "c 1:3 rwm", "b *:* m", "a *:* rwm" (malloc'd). */
char *cgroup_dev_rule_text (const struct plan_dev_rule *r);
/* The rules as a BPF_PROG_TYPE_CGROUP_DEVICE program (malloc'd, *ninsn instructions); -1 when too many. */
struct bpf_insn;
int cgroup_dev_bpf_build (const struct plan_dev_rule *rules, size_t n, struct bpf_insn **out, size_t *ninsn);
/* bpf(BPF_PROG_LOAD) of such a program: its fd. */
int cgroup_dev_bpf_load (const struct bpf_insn *insns, size_t n, cella_error_t *err);
/* Limit the devices of cgroup d to cgroup_dev_rules (r): v1 devices.deny/devices.allow, v2 an eBPF program
 * attached with BPF_F_ALLOW_MULTI (hybrid: v1, or the cgroup2 tree's program when v1 has no devices
 * hierarchy). */
int cgroup_dev_apply (const struct cgroup_dirs *d, const struct plan_resources *r, cella_error_t *err);
/* The same for the cgroup2 directory dir of d, open as cgfd (cgroup_devices_apply): its eBPF program, or
 * d->dev_shared's. */
int cgroup_dev_apply_v2_fd (const struct cgroup_dirs *d, const char *dir, int cgfd, const struct plan_resources *r,
                            cella_error_t *err);
/* "devices-KEY": the name of the shared parent of plain runs with r's device rules (cgroup_dirs.dev_shared);
 * NULL when the rules are too many for a program. */
char *cgroup_dev_shared_name (const struct plan_resources *r);

#endif
