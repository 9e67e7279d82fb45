/* Building a plan from `cella run` options. The CLI fills struct run_options from argv
 * (src/cli/run.c) and nothing else; every decision about what the container gets is here. */
#ifndef CELLA_PLAN_BUILD_H
#define CELLA_PLAN_BUILD_H

#include "host_facts.h"
#include "plan.h"

/* What an image from the store gives a container (NULL fields: nothing). */
struct image_defaults {
  const char *id;             /* the store key of the image (its manifest digest; docs/images.md) */
  char *const *layers;        /* layer dirs above the plan's rootfs, top-most first */
  char *const *env;           /* Env: before --env-file and -e */
  const char *workdir, *user; /* WorkingDir, User: unless -w / -u */
  char *const *labels, *const *exposed_ports, *const *volumes;
};

struct run_options {
  char **env;          /* -e, in order */
  char **env_files;    /* --env-file */
  char *workdir;       /* -w */
  char *user;          /* -u */
  char **volumes;      /* -v: HOST:CTR binds (the engine turns volume names into their directories first) */
  char **volumes_from; /* --volumes-from CTR[:ro|rw]: read by the engine (src/engine/volume.c) */
  char **tmpfs;        /* --tmpfs */
  char **mounts;       /* --mount */
  char **cap_add, **cap_drop;
  char **security_opts;
  char *userns;    /* --userns host|auto[:size=N]|keep-id */
  char **devices;  /* --device HOST[:CTR][:PERMS] */
  bool privileged; /* --privileged */
  char *hostname;
  char *network;         /* none | host | private | NAME (a network): the first of network_specs */
  char **network_specs;  /* --network, as given (repeated; NAME,NAME; NAME:alias=A): run_options_networks */
  char **networks_extra; /* the user-defined networks after the first one */
  char **net_aliases_of; /* "NET:ALIAS" from --network NET:alias=ALIAS */
  char *backend;
  char *name;
  char *restart;   /* engine: --restart */
  char **log_opts; /* engine: --log-opt max-size=.. */
  char **labels;   /* --label KEY=VALUE: over the image's (plan labels; inspect Config.Labels) */
  bool read_only, interactive, tty, init, rm, dry_run, debug, detach;
  char *entrypoint;       /* --entrypoint */
  char *pull;             /* --pull missing|always|never */
  char **publish;         /* -p [IP:]HOST:CTR[/tcp|udp] */
  bool publish_all;       /* -P: every ExposedPort of the image on a random host port */
  char **dns;             /* --dns */
  char **add_hosts;       /* --add-host NAME:IP */
  char **network_aliases; /* --network-alias NAME (a user-defined network) */
  bool engine;            /* kept by the engine (create, -d, --name, --rm, --restart): private network by default */
  char *proot_path;       /* --proot-path */
  char *kernel_release;   /* --kernel-release (proot) */
  char *vm_kernel;        /* --kernel (vm) */
  char *vm_engine;        /* --vm-engine qemu|firecracker (vm) */
  char *vm_memory;        /* --vm-memory SIZE (vm) */
  char *vm_cpus;          /* --vm-cpus N (vm) */
  char *vm_snapshot;      /* --vm-snapshot on|off (vm) */
  /* cgroup limits, as given (parsed by build_resources): --memory, --cpus, ... */
  char *memory, *memory_reservation, *memory_swap, *cpus, *cpu_shares, *cpu_quota, *cpu_period;
  char *cpuset_cpus, *cpuset_mems, *pids_limit, *blkio_weight;
  /* engine: the health check, as given (src/engine/health.h reads them; the plan has none of it) */
  char *health_cmd, *health_interval, *health_timeout, *health_retries, *health_start_period, *health_on_failure;
  bool no_healthcheck;
  const struct image_defaults *img; /* set by the caller once the image is resolved */
  char *image;                      /* IMAGE or ROOTFS-DIR as given */
  char **command;                   /* COMMAND [ARG...] */
};

/* A root made of overlay layers (or one directory), searched as overlayfs would merge them: the
 * first layer (top-most first) that has a path wins; a whiteout or an opaque directory in a layer
 * hides the layers below. Lookups stay inside each layer (RESOLVE_IN_ROOT). */
struct root_view {
  int *fds;
  size_t n;
};
/* layers: top-most first, above bottom (may be NULL for a single directory). */
int root_view_open (struct root_view *v, char *const *layers, const char *bottom, cella_error_t *err);
void root_view_close (struct root_view *v);
/* openat2 of path in the view; -1 with errno (ENOENT when hidden by a whiteout). */
int root_view_openat (const struct root_view *v, const char *path, int flags);

/* The command for a root that has none from the command line or image: the first of /init,
 * /usr/sbin/nginx (with -g 'daemon off; master_process off;'), /docker-entrypoint.sh,
 * /usr/local/bin/python3, /usr/bin/python3, /bin/sh that is an executable file in it. */
int entrypoint_detect (const struct root_view *root, char ***argv, cella_error_t *err);

/* --network as given (network_specs) → network (the first), networks_extra, net_aliases_of; an
 * error naming the value that cannot be combined or parsed. */
int run_options_networks (struct run_options *o, cella_error_t *err);
void run_options_free (struct run_options *o);

/* The host facts plan_from_run_options reads for o: the caller gathers them (host_facts_gather)
 * and passes them in. Only what o needs: the ns probe only when no --backend is named. */
void plan_facts_query (const struct run_options *o, struct host_facts_query *q);

/* f: the host, as gathered for plan_facts_query (o); the builder asks the host nothing else about
 * itself (an error names a fact that was not gathered). rootfs: the host directory the image or
 * ROOTFS-DIR resolved to; from_image: true when it came from the image store (the container then
 * gets an ephemeral overlay over it). cgroup_notice_unapplied is the caller's. */
int plan_from_run_options (const struct run_options *o, const struct host_facts *f, const char *rootfs, bool from_image,
                           struct plan **out, cella_error_t *err);

/* Parsers, exported for the unit tests. */
int parse_volume (const char *spec, char **src, char **dst, unsigned *flags, cella_error_t *err);
int parse_tmpfs (const char *spec, char **dst, long long *size, mode_t *mode, unsigned *flags, cella_error_t *err);
int parse_env_file (const char *path, char ***env, cella_error_t *err);
int parse_env_line (const char *line, char ***env, cella_error_t *err);
int parse_mount (const char *spec, struct plan *p, cella_error_t *err);
/* --device HOST[:CTR][:PERMS] → the node made at CTR (default HOST, under /dev) from the host's character or
 * block device HOST (symlinks followed, like docker), with its mode and owner, and the cgroup rule that allows
 * PERMS (r, w, m; default rwm) on it. */
int parse_device (const char *spec, struct plan_device *dev, struct plan_dev_rule *rule, cella_error_t *err);
/* -p [IP:]HOST:CTR[/tcp|udp] → "IP:HOST:CTR/PROTO" (malloc'd). */
int parse_publish (const char *spec, char **out, cella_error_t *err);
/* Add KEY=VALUE to env, replacing an earlier KEY. */
void env_set (char ***env, const char *kv);
const char *env_get (char *const *env, const char *key);

/* Resolve a docker --user value against the passwd/group files of the root at rootfd
 * (read with RESOLVE_IN_ROOT, so a symlinked /etc/passwd cannot point at the host). */
int user_resolve_view (const struct root_view *root, const char *spec, uid_t *uid, gid_t *gid, gid_t **groups,
                       size_t *ngroups, char **home, cella_error_t *err);
int user_resolve (int rootfd, const char *spec, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups, char **home,
                  cella_error_t *err);

#endif
