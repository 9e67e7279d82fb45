/* Building a plan from `cella run` options. The CLI fills struct run_options from argv
 * (src/cli/run.c) and nothing else; every decision about what the container gets is here. */
#ifndef CELLA_PLAN_BUILD_H
#define CELLA_PLAN_BUILD_H

#include "plan.h"

struct run_options {
  char **env;          /* -e, in order */
  char **env_files;    /* --env-file */
  char *workdir;       /* -w */
  char *user;          /* -u */
  char **volumes;      /* -v */
  char **tmpfs;        /* --tmpfs */
  char **mounts;       /* --mount */
  char **cap_add, **cap_drop;
  char **security_opts;
  char *hostname;
  char *network;       /* none | host */
  char *backend;
  char *name;
  char *restart;       /* engine: --restart */
  char **log_opts;     /* engine: --log-opt max-size=.. */
  bool read_only, interactive, tty, init, rm, dry_run, debug, detach;
  char *image;         /* IMAGE or ROOTFS-DIR as given */
  char **command;      /* COMMAND [ARG...] */
};

/* The command for a root that has none from the command line or image: the first of /init,
 * /usr/sbin/nginx (with -g 'daemon off; master_process off;'), /docker-entrypoint.sh,
 * /usr/local/bin/python3, /usr/bin/python3, /bin/sh that is an executable file in it. */
int entrypoint_detect (const char *rootfs, char ***argv, cella_error_t *err);

void run_options_free (struct run_options *o);

/* rootfs: the host directory the image or ROOTFS-DIR resolved to; from_image: true when it
 * came from the image store (the container then gets an ephemeral overlay over it). */
int plan_from_run_options (const struct run_options *o, const char *rootfs, bool from_image, struct plan **out,
                           cella_error_t *err);

/* Parsers, exported for the unit tests. */
int parse_volume (const char *spec, char **src, char **dst, unsigned *flags, cella_error_t *err);
int parse_tmpfs (const char *spec, char **dst, long long *size, mode_t *mode, unsigned *flags, cella_error_t *err);
int parse_env_file (const char *path, char ***env, cella_error_t *err);
int parse_env_line (const char *line, char ***env, cella_error_t *err);
int parse_mount (const char *spec, struct plan *p, cella_error_t *err);
/* Add KEY=VALUE to env, replacing an earlier KEY. */
void env_set (char ***env, const char *kv);
const char *env_get (char *const *env, const char *key);

/* Resolve a docker --user value against the passwd/group files of the root at rootfd
 * (read with RESOLVE_IN_ROOT, so a symlinked /etc/passwd cannot point at the host). */
int user_resolve (int rootfd, const char *spec, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups,
                  char **home, cella_error_t *err);

#endif
