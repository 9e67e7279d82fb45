/* cella run: parse flags into run_options, resolve the image, build the plan, run it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <sys/socket.h>
#include <unistd.h>

#include "../engine/attach.h"
#include "../engine/container.h"
#include "../engine/health.h"
#include "../image/default_image.h"
#include "../image/store.h"
#include "../util/paths.h"
#include "../engine/userns.h"
#include "../host/probe.h"
#include "../engine/volume.h"
#include "../backend/backend.h"
#include "../plan/build.h"
#include "../cgroup/cgroup.h"
#include "../host/facts.h"
#include "commands.h"
#include "../util/options.h"

#define O(f) offsetof (struct run_options, f)
static const struct cli_option run_table[] = {
  { "env", 'e', OPT_LIST, O (env), "KEY=VALUE", "Set an environment variable (KEY alone: take the host's value)" },
  { "env-file", 0, OPT_LIST, O (env_files), "FILE", "Read KEY=VALUE lines from a file (# comments)" },
  { "workdir", 'w', OPT_STRING, O (workdir), "DIR", "Working directory inside the container (created if missing)" },
  { "user", 'u', OPT_STRING, O (user), "USER[:GROUP]", "Run as this user (name or uid, resolved in the container)" },
  { "volume", 'v', OPT_LIST, O (volumes), "SRC:CTR[:ro|rw]",
    "Bind-mount a host path (SRC absolute) or mount a volume (SRC a name, created if missing; CTR alone: a new "
    "anonymous volume)" },
  { "volumes-from", 0, OPT_LIST, O (volumes_from), "CTR[:ro|rw]", "Mount the volumes another container mounts" },
  { "tmpfs", 0, OPT_LIST, O (tmpfs), "CTR[:OPTS]", "Mount a tmpfs (OPTS: size=64m,mode=1777,ro,exec,...)" },
  { "mount", 0, OPT_LIST, O (mounts), "SPEC",
    "type=bind|volume|tmpfs|overlay,target=..,source=..,readonly,lower=A:B,upper=..,work=.." },
  { "read-only", 0, OPT_FLAG, O (read_only), NULL, "Mount the container's root read-only" },
  { "hostname", 0, OPT_STRING, O (hostname), "NAME", "Container host name (default: short id)" },
  { "interactive", 'i', OPT_FLAG, O (interactive), NULL, "Keep stdin open and pass it to the container" },
  { "tty", 't', OPT_FLAG, O (tty), NULL, "Allocate a pseudo-terminal" },
  { "network", 0, OPT_LIST, O (network_specs), "MODE",
    "host, none (lo only), private (own address, NAT out) or a network's name; default: private for -d/create/--name, "
    "else host. Repeat it (or NET1,NET2) for several user-defined networks (eth0, eth1... in that order; the default "
    "route and published ports on the first); NET:alias=NAME gives a name on NET only" },
  { "dns", 0, OPT_LIST, O (dns), "IP", "Name server for the container's resolv.conf" },
  { "add-host", 0, OPT_LIST, O (add_hosts), "NAME:IP", "Add a line to the container's /etc/hosts" },
  { "network-alias", 0, OPT_LIST, O (network_aliases), "NAME",
    "Another name the members of the container's user-defined networks resolve to it (root; on every network it is "
    "on)" },
  { "publish-all", 'P', OPT_FLAG, O (publish_all), NULL, "Publish every port the image exposes on a random host port" },
  { "net", 0, OPT_LIST, O (network_specs), "MODE", "Same as --network" },
  { "cap-add", 0, OPT_LIST, O (cap_add), "CAP", "Add a capability (or ALL)" },
  { "cap-drop", 0, OPT_LIST, O (cap_drop), "CAP", "Drop a capability (or ALL)" },
  { "security-opt", 0, OPT_LIST, O (security_opts), "OPT",
    "no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json (a profile in docker's format), "
    "landlock=off|auto|abstract-unix-socket,signal (default auto: with the host's network the host's abstract unix "
    "sockets are out of reach, Linux 6.12+)" },
  { "userns", 0, OPT_STRING, O (userns), "MODE",
    "As root: host (default: no user namespace), auto[:size=N] (a free range of subordinate ids, root inside is its "
    "first) or keep-id (a user namespace with the host's ids)" },
  { "device", 0, OPT_LIST, O (devices), "HOST[:CTR][:PERMS]",
    "Give the container a host device (CTR under /dev, default HOST; PERMS of r, w, m, default rwm)" },
  { "privileged", 0, OPT_FLAG, O (privileged), NULL,
    "Lift the confinement: every capability and host device, no seccomp, no masked paths, rw /sys, no Landlock scoping" },
  { "init", 0, OPT_FLAG, O (init), NULL, "Run a small init as PID 1 that reaps zombies and forwards signals" },
  { "detach", 'd', OPT_FLAG, O (detach), NULL, "Run in the background under a monitor; print the container id" },
  { "name", 0, OPT_STRING, O (name), "NAME", "Name the container (kept until `cella rm`; see `cella ps -a`)" },
  { "rm", 0, OPT_FLAG, O (rm), NULL, "Remove the container when it exits" },
  { "restart", 0, OPT_STRING, O (restart), "POLICY", "no, on-failure[:MAX], always or unless-stopped" },
  { "label", 'l', OPT_LIST, O (labels), "KEY=VALUE", "Set a label on the container (inspect: Config.Labels)" },
  { "log-opt", 0, OPT_LIST, O (log_opts), "max-size=SIZE", "Rotate the container's log at this size (default 10m)" },
  { "health-cmd", 0, OPT_STRING, O (health_cmd), "CMD",
    "Check the container's health by running CMD in it (with /bin/sh -c, like exec); 0: healthy" },
  { "health-interval", 0, OPT_STRING, O (health_interval), "DURATION",
    "Time between health checks (500ms, 30s, 1m30s; default 30s)" },
  { "health-timeout", 0, OPT_STRING, O (health_timeout), "DURATION",
    "A health check running longer is killed and fails (default 30s)" },
  { "health-retries", 0, OPT_STRING, O (health_retries), "N", "Failures in a row that make it unhealthy (default 3)" },
  { "health-start-period", 0, OPT_STRING, O (health_start_period), "DURATION",
    "Failures in this time after a start do not count until a check passes (default 0s)" },
  { "health-on-failure", 0, OPT_STRING, O (health_on_failure), "ACTION",
    "When it turns unhealthy: none (default), kill (and no restart by the policy) or restart it" },
  { "no-healthcheck", 0, OPT_FLAG, O (no_healthcheck), NULL, "No health check, not even the image's" },
  { "backend", 0, OPT_STRING, O (backend), "NAME",
    "ns (namespaces; the default where they work), proot (ptrace; the fallback) or vm (a microVM)" },
  { "publish", 'p', OPT_LIST, O (publish), "[IP:]HOST:CTR[/PROTO]",
    "Publish a port (CTR alone: a random host port; proot backend: same port, or nginx's listen rewritten)" },
  { "proot-path", 0, OPT_STRING, O (proot_path), "PATH",
    "proot backend: the proot program (default: PATH, then Android's places)" },
  { "kernel-release", 0, OPT_STRING, O (kernel_release), "RELEASE",
    "proot backend: what `uname -r` says inside (default: the host's; proot 5.1's -k breaks directory reads)" },
  { "kernel", 0, OPT_STRING, O (vm_kernel), "PATH",
    "vm backend: the guest kernel (default: the tuned one `make vm-kernel` cached, else the host's newest /boot/vmlinuz-*)" },
  { "vm-engine", 0, OPT_STRING, O (vm_engine), "ENGINE", "vm backend: qemu (default) or firecracker" },
  { "vm-memory", 0, OPT_STRING, O (vm_memory), "SIZE", "vm backend: the guest's memory (default 256m)" },
  { "vm-cpus", 0, OPT_STRING, O (vm_cpus), "N", "vm backend: the guest's virtual CPUs (default 1)" },
  { "vm-snapshot", 0, OPT_STRING, O (vm_snapshot), "on|off",
    "vm backend: start from a saved VM state (default on; $CELLA_VM_SNAPSHOT=off changes the default)" },
  { "memory", 'm', OPT_STRING, O (memory), "BYTES",
    "Memory limit (units b, k, m, g: 512m); beyond it the OOM killer ends the container" },
  { "memory-reservation", 0, OPT_STRING, O (memory_reservation), "BYTES",
    "Memory soft limit (reclaimed first under pressure)" },
  { "memory-swap", 0, OPT_STRING, O (memory_swap), "BYTES",
    "Memory plus swap limit (default: twice --memory; -1: unlimited swap)" },
  { "cpus", 0, OPT_STRING, O (cpus), "N", "CPUs the container may use (1.5: 150 ms of cpu time per 100 ms)" },
  { "cpu-shares", 'c', OPT_STRING, O (cpu_shares), "N", "Relative cpu weight (2..262144, default 1024)" },
  { "cpu-quota", 0, OPT_STRING, O (cpu_quota), "US", "CFS quota: µs of cpu time per period (-1: none)" },
  { "cpu-period", 0, OPT_STRING, O (cpu_period), "US", "CFS period in µs (1000..1000000, default 100000)" },
  { "cpuset-cpus", 0, OPT_STRING, O (cpuset_cpus), "LIST", "CPUs the container may run on (0-2,4)" },
  { "cpuset-mems", 0, OPT_STRING, O (cpuset_mems), "LIST", "Memory nodes the container may use (0-1)" },
  { "pids-limit", 0, OPT_STRING, O (pids_limit), "N", "Most processes at once (-1: unlimited)" },
  { "blkio-weight", 0, OPT_STRING, O (blkio_weight), "N", "Relative block I/O weight (10..1000)" },
  { "entrypoint", 0, OPT_STRING, O (entrypoint), "CMD", "Run CMD instead of the image's Entrypoint (\"\" clears it)" },
  { "pull", 0, OPT_STRING, O (pull), "POLICY", "missing (default): pull an image not in the store; always; never" },
  { "dry-run", 0, OPT_FLAG, O (dry_run), NULL, "Print the plan as JSON and run nothing" },
  { "debug", 0, OPT_FLAG, O (debug), NULL, "Print each setup step as it is applied" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static const char run_usage[] = "cella run [OPTIONS] IMAGE|ROOTFS-DIR [COMMAND [ARG...]]";
static const char run_summary[]
    = "Run a command in a new container. IMAGE is an image name (the embedded `busybox` always works\n"
      "offline); a path starting with `/` or `.` is used as the root directory. Without a COMMAND the\n"
      "first of /init, /usr/sbin/nginx, /docker-entrypoint.sh, python3, /bin/sh in the root runs.\n"
      "With --name, -d, --restart or --rm the container is kept by the engine (a monitor owns it; `cella\n"
      "ps`, `logs`, `exec`, `stop` ... work on it); without them a foreground run keeps nothing.\n"
      "Exit status: the command's own; 125 when cella fails; 126 when the command cannot be executed;\n"
      "127 when it is not found; 128+N when it is killed by signal N.";

static const char create_usage[] = "cella create [OPTIONS] IMAGE|ROOTFS-DIR [COMMAND [ARG...]]";
static const char create_summary[]
    = "Create a container without starting it; print its id. `cella start` runs it. Takes the options\n"
      "of `cella run` (-d is ignored).";

/* What IMAGE|ROOTFS-DIR resolved to. */
struct resolved {
  char *rootfs;  /* the directory, or the image's bottom layer */
  char **layers; /* the image's other layers, top-most first */
  bool from_image;
  struct image_record *rec; /* a store image */
  struct image_config cfg;
};

static void
resolved_clear (struct resolved *r)
{
  free (r->rootfs);
  strv_free (r->layers);
  image_record_free (r->rec);
  image_config_clear (&r->cfg);
  memset (r, 0, sizeof *r);
}

static int
use_record (struct resolved *out, struct image_record *rec, cella_error_t *err)
{
  cleanup_strv char **dirs = NULL;
  size_t n;
  out->rec = rec;
  if (image_config_load (rec, &out->cfg, err) < 0 || image_layer_dirs (rec, &dirs, err) < 0)
    return -1;
  n = strv_len (dirs);
  if (n == 0)
    return cella_error (err, 0, "image %.19s has no layers", rec->id);
  out->rootfs = dirs[n - 1];
  dirs[n - 1] = NULL;
  out->layers = steal_pointer (&dirs);
  out->from_image = true;
  return 0;
}

/* An argument that starts with / or . is a directory; anything else names an image: one in the
 * store, else the embedded busybox, else (with --pull missing, the default) it is pulled. */
static int
resolve_root (const char *arg, const char *pull, struct resolved *out, cella_error_t *err)
{
  struct stat st;
  struct image_record *rec = NULL;
  int r;
  memset (out, 0, sizeof *out);
  if (arg[0] == '/' || arg[0] == '.')
    {
      char *path = realpath (arg, NULL);
      if (path == NULL)
        return cella_error (err, errno, "root directory `%s`", arg);
      if (stat (path, &st) < 0 || !S_ISDIR (st.st_mode))
        {
          free (path);
          return cella_error (err, ENOTDIR, "root directory `%s`", arg);
        }
      out->rootfs = path;
      return 0;
    }
  if (pull == NULL)
    pull = "missing";
  if (strcmp (pull, "missing") != 0 && strcmp (pull, "always") != 0 && strcmp (pull, "never") != 0)
    return cella_error (err, 0, "--pull `%s`: expected missing, always or never", pull);
  if (strcmp (pull, "always") != 0)
    {
      r = image_lookup (arg, &rec, err);
      if (r < 0)
        return -1;
      if (r == 0)
        return use_record (out, rec, err);
      r = default_image_ensure (arg, &out->rootfs, err);
      if (r < 0)
        return -1;
      if (r == 0)
        {
          out->from_image = true;
          return 0;
        }
      if (strcmp (pull, "never") == 0)
        return cella_error (
            err, 0, "image `%s`: not found locally, and --pull never (see `cella images`; `cella pull %s`)", arg, arg);
    }
  {
    char *const pargv[] = { (char *) "pull", (char *) "--quiet-if-present", (char *) arg, NULL };
    int status = image_tool_run (pargv, err);
    if (status < 0)
      return -1;
    if (status != 0)
      return cella_error (err, 0, "image `%s`: not found locally and the pull failed (see above)", arg);
  }
  r = image_lookup (arg, &rec, err);
  if (r < 0)
    return -1;
  if (r > 0)
    return cella_error (err, 0, "image `%s`: pulled, but the store does not name it", arg);
  return use_record (out, rec, err);
}

/* The command: --entrypoint or the image's Entrypoint, then COMMAND or the image's Cmd; when that
 * gives nothing, detection in the root. */
static int
resolve_command (struct run_options *o, struct resolved *res, char **detected, cella_error_t *err)
{
  char **argv = NULL;
  if (o->entrypoint)
    {
      if (*o->entrypoint)
        strv_push (&argv, o->entrypoint);
    }
  else
    strv_append_all (&argv, res->cfg.entrypoint);
  if (o->command && o->command[0])
    strv_append_all (&argv, o->command);
  else if (o->entrypoint == NULL || !*o->entrypoint || argv == NULL)
    strv_append_all (&argv, res->cfg.cmd);
  strv_free (o->command);
  o->command = argv;
  if (argv == NULL)
    {
      struct root_view view;
      int r;
      if (root_view_open (&view, res->layers, res->rootfs, err) < 0)
        return -1;
      r = entrypoint_detect (&view, &o->command, err);
      root_view_close (&view);
      if (r < 0)
        return -1;
      *detected = xstrdup (o->command[0]);
    }
  return 0;
}

/* The plan for o, from the facts about this host that o needs (gathered once, here). */
static int
build_plan (const struct run_options *o, const struct resolved *res, struct plan **p, cella_error_t *err)
{
  struct host_facts_query q;
  struct host_facts facts;
  int r;
  plan_facts_query (o, &q);
  host_facts_gather (&q, &facts);
  r = plan_from_run_options (o, &facts, res->rootfs, res->from_image, p, err);
  host_facts_free (&facts);
  if (r == 0)
    cgroup_notice_unapplied (*p);
  return r;
}

/* The health check: the image's Healthcheck with the command line's options over it. */
static int
health_from (const struct run_options *o, const struct image_config *cfg, struct ctr_healthcheck *hc,
             cella_error_t *err)
{
  struct health_options ho = { .cmd = o->health_cmd,
                               .interval = o->health_interval,
                               .timeout = o->health_timeout,
                               .retries = o->health_retries,
                               .start_period = o->health_start_period,
                               .on_failure = o->health_on_failure,
                               .none = o->no_healthcheck };
  struct ctr_healthcheck image = { .test = cfg->health_test,
                                   .interval_ns = cfg->health_interval,
                                   .timeout_ns = cfg->health_timeout,
                                   .start_period_ns = cfg->health_start_period,
                                   .retries = cfg->health_retries };
  return health_config (&ho, cfg->health_test ? &image : NULL, hc, err);
}

static int
engine_options (const struct run_options *o, const struct plan *p, struct ctr_create_opts *c, cella_error_t *err)
{
  const struct ctr_healthcheck *health = c->health;
  memset (c, 0, sizeof *c);
  c->health = health;
  c->name = o->name;
  c->image = o->image;
  c->auto_remove = o->rm;
  if (o->restart && restart_policy_parse (o->restart, &c->restart, &c->restart_max, err) < 0)
    return -1;
  if (o->rm && c->restart != RESTART_NO)
    return cella_error (err, 0, "--rm and --restart %s conflict: a removed container cannot be restarted", o->restart);
  if (o->name && !ctr_name_valid (o->name))
    return cella_error (err, 0,
                        "invalid container name `%s`: use letters, digits and _ . - (starting with a letter or digit)",
                        o->name);
  for (size_t i = 0; o->log_opts && o->log_opts[i]; i++)
    {
      if (!has_prefix (o->log_opts[i], "max-size=") || (c->log_max_size = parse_size (o->log_opts[i] + 9)) <= 0)
        return cella_error (err, 0, "--log-opt `%s`: expected max-size=SIZE (like 10m)", o->log_opts[i]);
    }
  (void) p;
  return 0;
}

/* The volumes a run mounts (src/engine/volume.c), under the volume lock from their resolution
 * until the container's record names them (or the run has them mounted). */
struct run_volumes {
  struct ctr_volume *used;
  size_t nused;
  char **made; /* volumes this run created */
  int lock;
};

/* Does the run name a volume (or get anonymous ones)? -v NAME:.., -v /path, --mount type=volume,
 * --volumes-from, or an image VOLUME for a container the engine keeps. */
static bool
volume_wanted (const struct run_options *o)
{
  if (o->volumes_from || (o->engine && o->img && o->img->volumes && o->img->volumes[0]))
    return true;
  for (size_t i = 0; o->volumes && o->volumes[i]; i++)
    if (o->volumes[i][0] != '/' || strchr (o->volumes[i], ':') == NULL)
      return true;
  for (size_t i = 0; o->mounts && o->mounts[i]; i++)
    if (strstr (o->mounts[i], "type=volume") != NULL)
      return true;
  return false;
}

static int
run_volumes_resolve (struct run_options *o, struct run_volumes *rv, cella_error_t *err)
{
  rv->lock = -1;
  if (!volume_wanted (o))
    return 0; /* plain binds and tmpfs: no lock, nothing made under the data root */
  if ((rv->lock = volume_lock (err)) < 0)
    return -1;
  /* anonymous volumes for the image's VOLUME paths: for a container the engine keeps (a
   * foreground run keeps nothing, its writes to those paths go with its overlay) */
  return volume_resolve_run (o, o->volumes_from, o->engine, &rv->used, &rv->nused, &rv->made, err);
}

static void
run_volumes_keep (struct run_volumes *rv)
{
  if (rv->lock >= 0)
    close (rv->lock);
  rv->lock = -1;
  strv_free (rv->made);
  rv->made = NULL;
}

/* A run that made no container record: the anonymous volumes it made go; the named ones too when
 * all (a failed run, --dry-run), else they stay, as docker keeps them after a run. One that a
 * container took meanwhile stays (no force). */
static void
run_volumes_drop (struct run_volumes *rv, bool all)
{
  if (rv->lock >= 0)
    close (rv->lock);
  rv->lock = -1;
  for (size_t i = 0; rv->made && rv->made[i]; i++)
    {
      bool anon = false;
      for (size_t j = 0; j < rv->nused; j++)
        if (strcmp (rv->used[j].name, rv->made[i]) == 0)
          anon = rv->used[j].anonymous;
      if (all || anon)
        {
          int lock = volume_lock (NULL);
          volume_remove (rv->made[i], false, NULL);
          if (lock >= 0)
            close (lock);
        }
    }
  strv_free (rv->made);
  rv->made = NULL;
  ctr_volumes_free (rv->used, rv->nused);
  rv->used = NULL;
  rv->nused = 0;
}

/* run -d / --name / create: the engine keeps the container; a monitor runs it. */
static int
run_in_engine (struct run_options *o, struct plan *p, bool create_only, const char *detected,
               const struct ctr_healthcheck *hc, struct run_volumes *rv, cella_error_t *err)
{
  struct ctr_create_opts c = { .health = hc };
  cleanup_free char *id = NULL;
  int sv[2], status;
  if (engine_options (o, p, &c, err) < 0)
    return -1;
  c.entrypoint = detected;
  c.volumes = rv->used;
  c.nvolumes = rv->nused;
  if (ctr_create (p, &c, &id, err) < 0)
    {
      userns_release (p->id); /* --userns=auto: the range taken for it */
      return -1;
    }
  /* the record names its volumes now: they are its, and volume rm sees them */
  run_volumes_keep (rv);
  if (create_only)
    {
      puts (id);
      return 0;
    }
  if (o->detach)
    {
      if (ctr_start (id, NULL, err) < 0)
        return -1;
      puts (id);
      return 0;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  {
    struct ctr_start_opts so = { .attach_fd = sv[1] };
    int r = ctr_start (id, &so, err);
    close (sv[1]);
    if (r < 0)
      {
        close (sv[0]);
        return -1;
      }
  }
  status = attach_client (sv[0], p->process.tty, p->process.stdin_open);
  close (sv[0]);
  if (status < 0)
    status = ctr_wait (id, err);
  return status < 0 ? -1 : status;
}

static int
run_or_create (int argc, char **argv, bool create_only)
{
  struct run_options o = { 0 };
  cleanup_plan struct plan *p = NULL;
  cleanup_free char *detected = NULL;
  struct resolved res = { 0 };
  struct image_defaults img = { 0 };
  struct ctr_healthcheck hc = { 0 };
  struct run_volumes rv = { .lock = -1 };
  cella_error_t err = NULL;
  bool engine;
  int help, first, status;

  first = cli_parse (run_table, &o, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    goto error;
  if (help)
    {
      if (create_only)
        cli_print_help (create_usage, create_summary, run_table);
      else
        cli_print_help (run_usage, run_summary, run_table);
      run_options_free (&o);
      return 0;
    }
  if (run_options_networks (&o, &err) < 0)
    goto error;
  first += 1;
  if (first >= argc)
    {
      cella_error (&err, 0, "%s: an IMAGE or ROOTFS-DIR is required (usage: %s)", argv[0],
                   create_only ? create_usage : run_usage);
      goto error;
    }
  o.image = xstrdup (argv[first]);
  o.command = strv_dup (argv + first + 1);
  if (resolve_root (o.image, o.pull, &res, &err) < 0 || resolve_command (&o, &res, &detected, &err) < 0
      || health_from (&o, &res.cfg, &hc, &err) < 0)
    goto error;
  if (res.rec)
    {
      img.id = res.rec->key;
      img.layers = res.layers;
      img.env = res.cfg.env;
      img.workdir = res.cfg.workdir;
      img.user = res.cfg.user;
      img.labels = res.cfg.labels;
      img.exposed_ports = res.cfg.exposed_ports;
      img.volumes = res.cfg.volumes;
      o.img = &img;
    }
  o.engine = create_only || o.detach || o.name || o.restart || o.rm;
  if (run_volumes_resolve (&o, &rv, &err) < 0 || build_plan (&o, &res, &p, &err) < 0 || backend_check (p, &err) < 0)
    goto error;
  if (!o.dry_run && volume_copy_up (rv.used, rv.nused, rv.made, p, &err) < 0)
    goto error;
  resolved_clear (&res);
  o.img = NULL;
  if (o.dry_run)
    {
      run_volumes_drop (&rv, true);
      cleanup_free char *text = plan_to_json (p), *json = NULL;
      json_t *j = json_loads (text, 0, NULL);
      json_object_set_new (j, "deviceRules", cli_device_rules_json (p));
      json = json_dumps (j, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      json_decref (j);
      puts (json);
      ctr_healthcheck_clear (&hc);
      run_options_free (&o);
      return 0;
    }
  engine = create_only || o.detach || o.name || o.restart || o.rm;
  if (!engine && hc.test && (o.health_cmd || o.health_on_failure))
    {
      /* the image's own check is simply not run in the foreground, as docker does without -d */
      cella_error (&err, 0,
                   "--health-cmd and --health-on-failure need a container the engine keeps (-d, --name or create)");
      goto error;
    }
  if (engine)
    {
      status = run_in_engine (&o, p, create_only, detected, &hc, &rv, &err);
      ctr_healthcheck_clear (&hc);
      run_volumes_drop (&rv, true); /* nothing left to drop once the record names them */
      run_options_free (&o);
      return status < 0 ? cella_error_print (&err) : status;
    }
  ctr_healthcheck_clear (&hc);
  run_options_free (&o);
  {
    /* no record names them: the run holds its volumes while it runs (volume rm refuses them) */
    int *held = rv.nused ? xzalloc (rv.nused * sizeof *held) : NULL;
    for (size_t i = 0; i < rv.nused; i++)
      held[i] = volume_hold (rv.used[i].name);
    if (rv.lock >= 0)
      close (rv.lock);
    rv.lock = -1;
    status = backend_of (p)->run (p, &err);
    for (size_t i = 0; i < rv.nused; i++)
      if (held[i] >= 0)
        close (held[i]);
    free (held);
  }
  run_volumes_drop (&rv, false);
  if (p->userns_mode)
    userns_release (p->id); /* a foreground run keeps nothing, its ids neither */
  if (status < 0 && p->backend == BACKEND_NS && probe_ns_kept_answer_was_wrong ())
    {
      /* the namespaces were refused though the probe's kept answer said they were allowed (a
       * sysctl changed, another sandbox in the same seccomp state): nothing ran yet, so plan
       * again with a real probe, which picks the proot backend if it has to (once: the real
       * probe's answer is never from the kept file) */
      cella_error_free (&err);
      probe_ns_backend_fresh ();
      return run_or_create (argc, argv, create_only);
    }
  if (status < 0)
    return cella_error_print (&err);
  return status;

error:
  ctr_healthcheck_clear (&hc);
  run_volumes_drop (&rv, true);
  resolved_clear (&res);
  o.img = NULL;
  run_options_free (&o);
  return cella_error_print (&err);
}

/* A profile of the user's may refuse the stub's few system calls (fcntl, execve, write). */
static bool
has_seccomp_profile (const struct run_options *o)
{
  for (size_t i = 0; o->security_opts && o->security_opts[i]; i++)
    {
      const char *s = o->security_opts[i];
      if ((has_prefix (s, "seccomp=") || has_prefix (s, "seccomp:")) && strcmp (s + 8, "unconfined") != 0)
        return true;
    }
  return false;
}

enum run_seal
run_seal_mode (int argc, char **argv)
{
  struct run_options o = { 0 };
  int help, first = cli_parse (run_table, &o, argc - 1, argv + 1, &help, NULL);
  const struct backend *b = first >= 0 && !help ? backend_named (o.backend) : NULL;
  enum run_seal mode = RUN_SEAL_REEXEC;
  if (b && !(b->caps & BACKEND_CAP_SEALED_EXE))
    mode = RUN_SEAL_NONE;
  else if (first >= 0 && !help && !o.init && !(o.detach || o.name || o.restart || o.rm) && !has_seccomp_profile (&o))
    mode = RUN_SEAL_STUB;
  run_options_free (&o);
  return mode;
}

int
cmd_run (int argc, char **argv)
{
  return run_or_create (argc, argv, false);
}

int
cmd_create (int argc, char **argv)
{
  return run_or_create (argc, argv, true);
}
