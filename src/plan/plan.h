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
  OP__COUNT
};

/* bind flags */
enum {
  BIND_OPTIONAL = 1 << 0,  /* a missing source is skipped, not an error */
  BIND_WRITABLE = 1 << 1,
  BIND_DEVICE = 1 << 2,    /* device nodes usable (no nodev) */
  BIND_RECURSIVE = 1 << 3,
};

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

struct op {
  enum op_kind kind;
  char *target;         /* absolute path inside the container */
  char *source;         /* bind: host path; symlink: link text */
  unsigned flags;       /* BIND_* or REMOUNT_* */
  /* tmpfs, dev */
  long long size;       /* bytes, 0 = kernel default */
  mode_t mode;          /* tmpfs mode, file mode, mkdir mode; 0 = default */
  bool mqueue;          /* dev: also mount /dev/mqueue */
  /* overlay */
  enum overlay_mode ov_mode;
  char **lower;         /* host dirs, top-most first */
  char *upper, *work;   /* host dirs (persistent) */
  /* file */
  char *data;
  size_t data_len;
  /* filled by prepare on the host: the resolved source, its identity */
  char *resolved;
  dev_t src_dev;
  ino_t src_ino;
  bool src_is_dir;
  bool skip;            /* optional source missing */
};

enum net_mode { NET_NONE, NET_HOST, NET_PRIVATE };

enum backend_kind { BACKEND_NS, BACKEND_PROOT };

#define PLAN_NS_MNT (1u << 0)
#define PLAN_NS_PID (1u << 1)
#define PLAN_NS_UTS (1u << 2)
#define PLAN_NS_IPC (1u << 3)
#define PLAN_NS_NET (1u << 4)
#define PLAN_NS_CGROUP (1u << 5)
#define PLAN_NS_USER (1u << 6)

struct id_map {
  uint32_t inside, outside, count;
};

struct plan_process {
  char **argv;
  char **env;          /* KEY=VALUE */
  char *cwd;
  char *user;          /* as given: name, uid, uid:gid, name:group */
  uid_t uid;           /* resolved in the container (after setup) */
  gid_t gid;
  gid_t *groups;       /* supplementary */
  size_t ngroups;
  bool tty;
  bool stdin_open;     /* -i */
  bool no_new_privs;
  bool init;           /* --init: a reaper as PID 1 */
  uint64_t caps;       /* bit n = capability n; applied to bnd, and eff/prm for root */
  bool seccomp;        /* default filter on */
};

/* Resource limits (cgroups). Zero means "not set" everywhere; OCI `linux.resources` and the
 * engine's --memory/--cpus/--cpu-shares/--pids-limit both land here (src/ns/cgroup.c applies them). */
struct plan_resources {
  long long memory;             /* bytes; -1 unlimited */
  long long memory_reservation; /* bytes (soft limit) */
  long long memory_swap;        /* memory + swap bytes (docker/OCI meaning); -1 unlimited */
  unsigned long long cpu_shares;/* v1 shares (2..262144); v2 weight derived */
  long long cpu_quota;          /* µs per period; -1 unlimited */
  unsigned long long cpu_period;/* µs */
  char *cpuset_cpus, *cpuset_mems;
  long long pids_limit;         /* -1 unlimited */
  unsigned io_weight;           /* blkio weight 10..1000 */
  char *cgroups_path;           /* OCI cgroupsPath; NULL: cella's default for the container */
};

struct plan {
  char *id;            /* 64 hex */
  char *image;         /* image name when run from an image */
  char *image_id;      /* its id (config digest) when it came from the image store */
  char *rootfs;        /* host path of the root (lowest layer when overlay) */
  char **root_layers;  /* more overlay lowers above rootfs, top-most first (multi-layer images) */
  char **labels;       /* from the image: "key=value" */
  char **exposed_ports;/* from the image: "80/tcp" */
  char **volumes;      /* from the image: paths it declares as volumes */
  char **ports;        /* published: "IP:HOST:CTR/PROTO" (IP empty for all addresses) */
  bool root_overlay;   /* container root = an overlay on rootfs ... */
  char *root_upper;    /* ... persistent in these host dirs when set (engine containers), */
  char *root_work;     /* ... else ephemeral */
  bool readonly;       /* read-only root */
  struct op *ops;
  size_t nops;
  unsigned ns;         /* PLAN_NS_* */
  char *hostname;
  struct id_map *uid_map, *gid_map;
  size_t nuid_map, ngid_map;
  bool rootless;       /* caller is not root: user ns, fake root */
  enum net_mode net;
  struct plan_process process;
  bool debug;
  enum backend_kind backend;
  char *proot_path;     /* proot: the program */
  char *kernel_release; /* proot: what uname -r says inside (-k) */
  char *root_copy;      /* proot: how an image's layers were copied into rootfs (reflink, ...) */
  struct plan_resources res;
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

/* The plan as JSON text (for --dry-run, inspect, and saved with a container). Caller frees. */
char *plan_to_json (const struct plan *p);
/* Read back what plan_to_json wrote (a container's saved plan). Unknown keys are ignored;
 * a missing or mistyped required key is an error naming it. */
int plan_from_json (const char *text, struct plan **out, cella_error_t *err);

/* Docker's default capability set, as a bit mask. */
uint64_t caps_default (void);

#endif
