/* The plan: everything needed to run a container, as plain data (see DESIGN.md).
 * Builders (flags, later OCI config and image config) fill it; backends consume it. */
#ifndef CELLA_PLAN_H
#define CELLA_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/util.h"

enum op_kind {
  OP_BIND,
  OP_PROC,
  OP_DEV,
  OP_SYSFS,
  OP_TMPFS,
  OP_OVERLAY,
  OP_SYMLINK,
  OP_MKDIR,
  OP_FILE,
  OP_REMOUNT,
  OP_MASK,
  OP_READONLY,
  OP_MOUNT, /* a kernel filesystem of any type (OCI mounts: devpts, mqueue, tmpfs with options...) */
  OP__COUNT
};

/* bind flags */
enum {
  BIND_OPTIONAL = 1 << 0, /* a missing source is skipped, not an error */
  BIND_WRITABLE = 1 << 1,
  BIND_DEVICE = 1 << 2, /* device nodes usable (no nodev) */
  BIND_RECURSIVE = 1 << 3,
  BIND_NOSUID = 1 << 4, /* OCI bind options */
  BIND_NOEXEC = 1 << 5,
};

/* mount propagation (OCI mount options, rootfsPropagation) */
enum plan_propagation {
  PROP_UNSET,
  PROP_PRIVATE,
  PROP_RPRIVATE,
  PROP_SLAVE,
  PROP_RSLAVE,
  PROP_SHARED,
  PROP_RSHARED,
  PROP_UNBINDABLE,
  PROP_RUNBINDABLE,
  PROP__COUNT
};
/* "private", "rprivate" ... ; NULL for PROP_UNSET */
const char *plan_propagation_name (enum plan_propagation p);

/* overlay modes */
enum overlay_mode {
  OVERLAY_PERSISTENT, /* upper + work dirs on the host */
  OVERLAY_EPHEMERAL,  /* upper + work on a private tmpfs, gone at exit */
  OVERLAY_READONLY,   /* no upper: needs at least two lower layers */
};

/* remount flags (MS_* values are not used in the plan so it stays portable to JSON) */
enum {
  REMOUNT_RDONLY = 1 << 0,
  REMOUNT_NOSUID = 1 << 1,
  REMOUNT_NODEV = 1 << 2,
  REMOUNT_NOEXEC = 1 << 3,
};

/* flags for binds and filesystem mounts alike (OCI mount options); none: relatime */
enum {
  MOUNTF_NOATIME = 1 << 8,
  MOUNTF_STRICTATIME = 1 << 9,
  MOUNTF_NODIRATIME = 1 << 10,
};

/* op.dev_later: what later ops of the plan mount (an OCI config's /dev/pts, /dev/mqueue) */
#define PLAN_DEV_PTS (1u << 0)
#define PLAN_DEV_MQUEUE (1u << 1)

struct op {
  enum op_kind kind;
  char *target;   /* absolute path inside the container */
  char *source;   /* bind: host path; symlink: link text */
  unsigned flags; /* BIND_* or REMOUNT_* */
  /* tmpfs, dev */
  long long size;     /* bytes, 0 = kernel default */
  mode_t mode;        /* tmpfs mode, file mode, mkdir mode; 0 = default */
  bool mqueue;        /* dev: also mount /dev/mqueue */
  bool dev_writable;  /* dev: the tmpfs stays writable (OCI, as runc's /dev); sysfs: read-write (--privileged) */
  bool dev_host;      /* dev: a node for every device of the host's /dev too (--privileged) */
  bool dev_no_shm;    /* dev: no /dev/shm of its own (OCI: the config mounts one, or none) */
  unsigned dev_later; /* dev: PLAN_DEV_* mounted by later ops: only their directory here */
  /* overlay */
  enum overlay_mode ov_mode;
  char **lower;       /* host dirs, top-most first */
  char *upper, *work; /* host dirs (persistent) */
  /* file */
  char *data;
  size_t data_len;
  /* filled by prepare on the host: the resolved source, its identity */
  char *resolved;
  dev_t src_dev;
  ino_t src_ino;
  bool src_is_dir;
  bool skip; /* optional source missing */
  /* OCI mounts */
  enum plan_propagation propagation;
  bool tmpcopyup; /* tmpfs: copy what the root has at target into it */
  char *fstype;   /* mount: filesystem type */
  char **fsopts;  /* mount: "key=value" or "flag" data options */
  /* bind: an idmapped mount (OCI "idmap"/"ridmap"): ids seen through these maps */
  struct id_map *idmap_uid, *idmap_gid;
  size_t nidmap_uid, nidmap_gid;
  bool idmap_recursive;
  bool idmap_ready; /* filled by prepare: idmap_fd is a user namespace with those maps */
  int idmap_fd;
  /* bind, filled by prepare when root of the host makes a container with a user namespace: the
   * detached mount, made on the host (whose root may traverse what the container's may not) */
  bool host_tree_ready;
  int host_tree_fd;
};

enum net_mode { NET_NONE, NET_HOST, NET_PRIVATE, NET_CONTAINER /* another container's (plan.network names it) */ };

enum backend_kind { BACKEND_NS, BACKEND_PROOT, BACKEND_VM };
/* A kind's name as --backend and the plan's JSON spell it ("ns", "proot", "vm"); and the kind of
 * a name, -1 when none is called that. (What a backend does is backend/backend.h's business.) */
const char *plan_backend_name (enum backend_kind kind);
int plan_backend_kind (const char *name);

#define PLAN_NS_MNT (1u << 0)
#define PLAN_NS_PID (1u << 1)
#define PLAN_NS_UTS (1u << 2)
#define PLAN_NS_IPC (1u << 3)
#define PLAN_NS_NET (1u << 4)
#define PLAN_NS_CGROUP (1u << 5)
#define PLAN_NS_USER (1u << 6)
#define PLAN_NS_TIME (1u << 7)
#define PLAN_NS_COUNT 8
/* "mount", "pid", ... "time": the OCI names, by bit number */
const char *plan_ns_name (unsigned bit_index);

/* OCI process.rlimits: resource is the RLIMIT_* number */
struct plan_rlimit {
  int resource;
  unsigned long long soft, hard;
};

/* OCI process.capabilities: the five sets (bit n = capability n); used when `set` is true,
 * else plan_process.caps applies as it always did. */
struct plan_capsets {
  bool set;
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

/* OCI hooks */
enum plan_hook_kind {
  HOOK_PRESTART,
  HOOK_CREATE_RUNTIME,
  HOOK_CREATE_CONTAINER,
  HOOK_START_CONTAINER,
  HOOK_POSTSTART,
  HOOK_POSTSTOP,
  HOOK__COUNT
};
struct plan_hook {
  char *path;
  char **args; /* argv, argv[0] included; NULL: { path } */
  char **env;
  int timeout; /* seconds; 0: none */
};
const char *plan_hook_name (enum plan_hook_kind k); /* "prestart", "createRuntime" ... */

/* OCI linux.devices, --device: a node made in the container's /dev */
struct plan_device {
  char *path;
  char *host_path; /* --device: the host's node, bound where mknod is refused (user namespaces); NULL: path */
  char type;       /* 'c', 'b' (u is c), 'p' */
  long long major, minor;
  mode_t mode; /* permission bits (config.json without fileMode: 0666) */
  uid_t uid;
  gid_t gid;
  /* filled on the host before clone (a user namespace made by root): the node, made there
   * with its owner, as a detached mount (src/ns/oci_mounts.c) */
  bool host_tree_ready;
  int host_tree_fd;
};

/* OCI linux.seccomp, kept as a rule list and compiled with libseccomp in the child */
enum plan_scmp_action {
  SCMPA_KILL,
  SCMPA_KILL_PROCESS,
  SCMPA_KILL_THREAD,
  SCMPA_TRAP,
  SCMPA_ERRNO,
  SCMPA_TRACE,
  SCMPA_ALLOW,
  SCMPA_LOG,
  SCMPA_NOTIFY,
  SCMPA__COUNT
};
enum plan_scmp_op { SCMPO_NE, SCMPO_LT, SCMPO_LE, SCMPO_EQ, SCMPO_GE, SCMPO_GT, SCMPO_MASKED_EQ, SCMPO__COUNT };
struct plan_scmp_arg {
  unsigned index;
  unsigned long long value, value_two;
  enum plan_scmp_op op;
};
struct plan_scmp_rule {
  char **names;
  enum plan_scmp_action action;
  int errno_ret; /* -1: not given (EPERM for errno/trace) */
  struct plan_scmp_arg *args;
  size_t nargs;
};
struct plan_seccomp {
  enum plan_scmp_action default_action;
  int default_errno; /* -1: not given */
  char **arches;     /* "SCMP_ARCH_X86_64" ... */
  char **flags;      /* "SECCOMP_FILTER_FLAG_LOG" ... */
  struct plan_scmp_rule *rules;
  size_t nrules;
  char *listener_path; /* SCMP_ACT_NOTIFY: the agent's unix socket (gets the notify fd) */
  char *listener_metadata;
};
const char *plan_scmp_action_name (enum plan_scmp_action a); /* "SCMP_ACT_ERRNO" ... */
const char *plan_scmp_op_name (enum plan_scmp_op o);         /* "SCMP_CMP_EQ" ... */

enum plan_personality { PERSONALITY_UNSET, PERSONALITY_LINUX, PERSONALITY_LINUX32 };

struct id_map {
  uint32_t inside, outside, count;
};

/* Landlock scopes (ABI 6, Linux 6.12; src/ns/landlock.c): what the container's processes may not
 * reach outside their Landlock domain. AUTO asks for each scope only where the container shares
 * the namespace that would otherwise contain it: abstract unix sockets in the host's network
 * namespace, signals in the host's PID namespace. 0: no scoping. */
enum {
  PLAN_LANDLOCK_ABSTRACT_UNIX = 1u << 0, /* connect/send to abstract unix sockets made outside */
  PLAN_LANDLOCK_SIGNAL = 1u << 1,        /* signals to processes outside */
  PLAN_LANDLOCK_AUTO = 1u << 2,
};
/* "off", "auto", or a comma-separated list of "abstract-unix-socket" and "signal" (the value of
 * --security-opt landlock= and of the OCI annotation io.github.cella.landlock) */
int plan_landlock_parse (const char *text, unsigned *out, cella_error_t *err);
/* the inverse: "off", "auto", "abstract-unix-socket,signal"; caller frees */
char *plan_landlock_format (unsigned v);

struct plan_process {
  char **argv;
  char **env; /* KEY=VALUE */
  char *cwd;
  char *user; /* as given: name, uid, uid:gid, name:group */
  uid_t uid;  /* resolved in the container (after setup) */
  gid_t gid;
  gid_t *groups; /* supplementary */
  size_t ngroups;
  bool tty;
  bool stdin_open; /* -i */
  bool no_new_privs;
  bool init;     /* --init: a reaper as PID 1 */
  uint64_t caps; /* bit n = capability n; applied to bnd, and eff/prm for root */
  bool seccomp;  /* default filter on */
  /* OCI additions; zero/NULL/false: not set, the engine's behaviour */
  struct plan_rlimit *rlimits;
  size_t nrlimits;
  bool has_umask;
  mode_t umask;
  struct plan_capsets capsets;
  bool has_oom_score_adj;
  int oom_score_adj;
  struct plan_seccomp *seccomp_profile; /* an OCI profile instead of the default filter */
  char *apparmor_profile;
  char *selinux_label;
  unsigned console_height, console_width; /* the terminal's first size; 0: the caller's */
  char **warnings;                        /* OCI loader: what it accepted but left out, to be logged (not saved) */
};

/* Resource limits (cgroups). Zero means "not set" everywhere; OCI `linux.resources` and the
 * engine's --memory/--cpus/--cpu-shares/--pids-limit both land here (src/ns/cgroup.c applies them). */
struct plan_resources {
  long long memory;              /* bytes; -1 unlimited */
  long long memory_reservation;  /* bytes (soft limit) */
  long long memory_swap;         /* memory + swap bytes (docker/OCI meaning); -1 unlimited */
  unsigned long long cpu_shares; /* v1 shares (2..262144); v2 weight derived */
  long long cpu_quota;           /* µs per period; -1 unlimited */
  unsigned long long cpu_period; /* µs */
  char *cpuset_cpus, *cpuset_mems;
  long long pids_limit; /* -1 unlimited */
  unsigned io_weight;   /* blkio weight 10..1000 */
  char *cgroups_path;   /* OCI cgroupsPath; NULL: cella's default for the container */
  long long nano_cpus;  /* --cpus as given (1e9 = one cpu), shown by inspect; quota/period hold it */
  bool want;            /* a cgroup even without limits (engine containers: stats, pause, exec) */
  /* OCI linux.resources beyond the above (src/oci/config.c fills them) */
  bool has_swappiness;
  unsigned long long memory_swappiness;
  long long memory_kernel_tcp; /* bytes, -1 unlimited: cgroup v1 memory.kmem.tcp.limit_in_bytes (v2: none) */
  bool disable_oom_killer;
  struct plan_hugepage_limit {
    char *page_size;
    unsigned long long limit;
  } * hugepage_limits; /* "2MB" */
  size_t nhugepage_limits;
  struct plan_io_throttle {
    enum { IO_READ_BPS, IO_WRITE_BPS, IO_READ_IOPS, IO_WRITE_IOPS } kind;
    long long major, minor;
    unsigned long long rate;
  } * io_throttle;
  size_t nio_throttle;
  struct plan_dev_rule {
    bool allow;
    char type;              /* 'a', 'c', 'b' */
    long long major, minor; /* -1: any */
    char access[4];         /* "rwm" subset; "" = all */
  } * dev_rules;
  size_t ndev_rules;
  char **unified; /* cgroup v2 files: "key=value" */
};

struct plan {
  char *id;             /* 64 hex */
  char *image;          /* image name when run from an image */
  char *image_id;       /* its image store key (manifest digest) when it came from the store */
  char *rootfs;         /* host path of the root (lowest layer when overlay) */
  char **root_layers;   /* more overlay lowers above rootfs, top-most first (multi-layer images) */
  char **labels;        /* from the image: "key=value" */
  char **exposed_ports; /* from the image: "80/tcp" */
  char **volumes;       /* from the image: paths it declares as volumes */
  char **ports;         /* published: "IP:HOST:CTR/PROTO" (IP empty for all addresses) */
  bool root_overlay;    /* container root = an overlay on rootfs ... */
  char *root_upper;     /* ... persistent in these host dirs when set (engine containers), */
  char *root_work;      /* ... else ephemeral */
  bool readonly;        /* read-only root */
  bool root_tree_ready; /* runtime, not saved: root_tree_fd is rootfs's detached mount, made on */
  int root_tree_fd;     /* the host (src/ns/mount_ops.c mount_root_prepare) */
  struct op *ops;
  size_t nops;
  unsigned ns; /* PLAN_NS_* */
  char *hostname;
  struct id_map *uid_map, *gid_map;
  size_t nuid_map, ngid_map;
  bool rootless;        /* caller is not root: user ns, fake root */
  char *userns_mode;    /* --userns auto or keep-id (a user namespace for a root-run container); NULL: host */
  bool root_premounted; /* runtime, not saved: root_fd is the root, mounted by the parent (src/ns/userns_root.c) */
  int root_fd;
  enum net_mode net;
  char *network;          /* NET_PRIVATE: the network's name (NULL: the default, "cella") */
  char **dns;             /* --dns: name servers of the container's resolv.conf */
  char **add_hosts;       /* --add-host NAME:IP */
  char **network_aliases; /* --network-alias: more names of the container on each of its networks */
  char **networks_extra;  /* more user-defined networks after p->network (eth1, eth2...), in order */
  char **net_aliases_of;  /* "NET:ALIAS": a name of the container on network NET only */
  char *net_addr;         /* runtime, not saved: the address net_prepare leased */
  struct plan_process process;
  /* PLAN_LANDLOCK_*: what is asked for, for the container's processes and those exec'd in it */
  unsigned landlock;
  unsigned landlock_now; /* runtime, not saved: the scopes the process being started gets (AUTO resolved) */
  /* runtime, not saved: `exec -d`'s report pipe (0: none, it is never stdio): a backend's exec
   * closes it once the process runs (backend_exec_started), before it waits for the process */
  int exec_started_fd;
  bool debug;
  enum backend_kind backend;
  char *proot_path;        /* proot: the program */
  char *kernel_release;    /* proot: what uname -r says inside (-k) */
  char *root_copy;         /* proot: how an image's layers were copied into rootfs (reflink, ...) */
  char *vm_engine;         /* vm: "qemu" or "firecracker" */
  char *vm_kernel;         /* vm: the guest kernel (--kernel, else make vm-kernel's, else /boot/vmlinuz-*) */
  char *vm_kernel_release; /* vm: its release (for the initramfs' modules), NULL when unknown */
  char *vm_kernel_kind;    /* vm: "given" (--kernel), "tuned" (make vm-kernel) or "distro" */
  char *vm_accel;          /* vm: "kvm" or "tcg", as decided when the plan was made */
  unsigned vm_memory_mib;  /* vm: guest RAM (--vm-memory), 0: 256 */
  unsigned vm_cpus;        /* vm: virtual CPUs (--vm-cpus), 0: 1 */
  bool vm_snapshot_off;    /* vm: --vm-snapshot=off (or $CELLA_VM_SNAPSHOT=off): always a cold boot */
  /* vm, foreground run only (cella build's RUN; not saved with a container): once the workload
   * exited 0, the guest writes its root disk's tree (its own mounts left out) as a tar stream to
   * this file (created by the run; a raw disk of bounded size to the guest). NULL: nothing. */
  char *vm_export;
  struct plan_resources res;
  /* OCI additions; zero/NULL: not set */
  char *bundle;       /* OCI bundle directory */
  char **annotations; /* "key=value" */
  char *domainname;
  char *ns_path[PLAN_NS_COUNT]; /* namespaces to join instead of creating, by PLAN_NS_* bit index */
  char **sysctl;                /* "key=value" */
  struct plan_device *devices;
  size_t ndevices;
  bool privileged;        /* --privileged: every capability, every device, no seccomp, no masked paths, rw /sys */
  char *devices_host_dir; /* runtime, not saved: where the host made them (src/ns/oci_mounts.c) */
  enum plan_personality personality;
  enum plan_propagation rootfs_propagation;
  struct plan_hook *hooks[HOOK__COUNT];
  size_t nhooks[HOOK__COUNT];
  bool has_time_offsets;
  long long time_offset[2][2]; /* [0] monotonic, [1] boottime: { seconds, nanoseconds } */
};

struct plan *plan_new (void);
void plan_free (struct plan *p);
#define cleanup_plan __attribute__ ((cleanup (plan_freep)))
void plan_freep (struct plan **p);

struct op *plan_add_op (struct plan *p, enum op_kind kind, const char *target);
struct op *plan_add_bind (struct plan *p, const char *source, const char *target, unsigned flags);
struct op *plan_add_tmpfs (struct plan *p, const char *target, long long size, mode_t mode);
struct op *plan_add_file (struct plan *p, const char *target, const char *data, size_t len, mode_t mode);

const char *op_kind_name (enum op_kind k);
/* One line saying what the op does, for --debug, --dry-run and errors. */
char *op_describe (const struct op *op);

/* Static checks that need no filesystem: absolute paths, no "..", overlay lower count... */
int plan_validate (const struct plan *p, cella_error_t *err);
/* Absolute and free of ".." components: a container path that cannot name anything outside the
 * root even before RESOLVE_IN_ROOT gets a say. */
bool path_is_clean_abs (const char *p);

/* The plan as JSON text (for --dry-run, inspect, and saved with a container). Caller frees. */
char *plan_to_json (const struct plan *p);
/* Read back what plan_to_json wrote (a container's saved plan). Unknown keys are ignored;
 * a missing or mistyped required key is an error naming it. */
int plan_from_json (const char *text, struct plan **out, cella_error_t *err);

/* Docker's default capability set, as a bit mask. */
uint64_t caps_default (void);

#endif
