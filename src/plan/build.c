/* `cella run` options → plan. The defaults follow docker: what a container gets without asking. */
#define _GNU_SOURCE
#include "build.h"
#include "../util/capnames.h"
#include "etcfiles.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/paths.h"
#include "../engine/userns.h"
#include "../oci/oci.h"
#include "host_facts.h"
#include "../util/caps.h"
#include "idmap.h"
#include "resources.h"

/* docker's masked and read-only paths */
static const char *const masked_paths[] = {
  "/proc/asound",      "/proc/acpi",          "/proc/interrupts", "/proc/kcore",
  "/proc/keys",        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
  "/proc/sched_debug", "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void
plan_facts_query (const struct run_options *o, struct host_facts_query *q)
{
  memset (q, 0, sizeof *q);
  q->proot_path = o->proot_path;
  q->vm_kernel = o->vm_kernel;
  if (o->backend == NULL)
    q->want |= HOST_FACT_NS | HOST_FACT_PROOT_NO_NS | HOST_FACT_IDMAP;
  else if (strcmp (o->backend, "ns") == 0)
    q->want |= HOST_FACT_IDMAP;
  else if (strcmp (o->backend, "proot") == 0)
    q->want |= HOST_FACT_PROOT;
  else if (strcmp (o->backend, "vm") == 0)
    q->want |= HOST_FACT_VM;
  if (o->network == NULL && o->engine)
    q->want |= HOST_FACT_NET_TOOL;
  /* (build_network's modes; anything else may name a network) */
  if (o->network && strcmp (o->network, "host") != 0 && strcmp (o->network, "none") != 0
      && strcmp (o->network, "private") != 0 && strcmp (o->network, "bridge") != 0
      && strcmp (o->network, NET_DEFAULT_NAME) != 0 && !has_prefix (o->network, "container:"))
    {
      q->want |= HOST_FACT_NETWORK;
      q->network = o->network;
      q->networks_extra = o->networks_extra;
    }
  if (o->cpus)
    q->want |= HOST_FACT_CPUS;
}

static bool
network_is_mode (const char *n)
{
  return strcmp (n, "host") == 0 || strcmp (n, "none") == 0 || strcmp (n, "private") == 0 || strcmp (n, "bridge") == 0
         || strcmp (n, NET_DEFAULT_NAME) == 0 || has_prefix (n, "container:");
}

int
run_options_networks (struct run_options *o, cella_error_t *err)
{
  cleanup_strv char **names = NULL;
  if (o->network_specs == NULL)
    return 0;
  for (size_t i = 0; o->network_specs[i]; i++)
    {
      const char *s = o->network_specs[i];
      const char *colon = strchr (s, ':');
      if (*s == '\0')
        return cella_error (err, 0, "--network: an empty value (give a mode or a network's name)");
      if (has_prefix (s, "container:") || colon == NULL)
        {
          /* container:NAME as is; NET1,NET2 is several networks */
          cleanup_free char *copy = xstrdup (s);
          char *save = NULL;
          if (has_prefix (s, "container:"))
            strv_push (&names, s);
          else
            for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
              strv_push (&names, t);
          continue;
        }
      {
        /* NET:alias=A,alias=B (podman's form): names of the container on NET only */
        cleanup_free char *net = xasprintf ("%.*s", (int) (colon - s), s), *opts = xstrdup (colon + 1);
        char *save = NULL;
        if (*net == '\0' || network_is_mode (net))
          return cella_error (err, 0, "--network %s: options (alias=NAME) are for a user-defined network's name", s);
        strv_push (&names, net);
        for (char *t = strtok_r (opts, ",", &save); t; t = strtok_r (NULL, ",", &save))
          {
            cleanup_free char *item = NULL;
            if (!has_prefix (t, "alias=") || t[6] == '\0')
              return cella_error (err, 0, "--network %s: unknown option `%s` (expected alias=NAME)", s, t);
            item = xasprintf ("%s:%s", net, t + 6);
            strv_push (&o->net_aliases_of, item);
          }
      }
    }
  if (names == NULL)
    return cella_error (err, 0, "--network: an empty value (give a mode or a network's name)");
  free (o->network);
  o->network = xstrdup (names[0]);
  if (names[1] == NULL)
    return 0;
  for (size_t i = 0; names[i]; i++)
    {
      if (network_is_mode (names[i]))
        return cella_error (err, 0,
                            "--network %s: only user-defined networks (`cella network create`) combine with "
                            "others; `%s` is not one",
                            names[i], names[i]);
      for (size_t j = 0; j < i; j++)
        if (strcmp (names[i], names[j]) == 0)
          return cella_error (err, 0, "--network %s: given twice", names[i]);
      if (i > 0)
        strv_push (&o->networks_extra, names[i]);
    }
  return 0;
}

void
run_options_free (struct run_options *o)
{
  strv_free (o->env);
  strv_free (o->env_files);
  strv_free (o->labels);
  free (o->health_cmd);
  free (o->health_interval);
  free (o->health_timeout);
  free (o->health_retries);
  free (o->health_start_period);
  free (o->health_on_failure);
  free (o->workdir);
  free (o->user);
  strv_free (o->volumes);
  strv_free (o->volumes_from);
  strv_free (o->tmpfs);
  strv_free (o->mounts);
  strv_free (o->cap_add);
  strv_free (o->cap_drop);
  strv_free (o->security_opts);
  free (o->userns);
  strv_free (o->devices);
  free (o->hostname);
  free (o->network);
  free (o->backend);
  free (o->name);
  free (o->restart);
  strv_free (o->log_opts);
  free (o->entrypoint);
  free (o->pull);
  free (o->proot_path);
  strv_free (o->publish);
  strv_free (o->dns);
  strv_free (o->add_hosts);
  strv_free (o->network_aliases);
  strv_free (o->network_specs);
  strv_free (o->networks_extra);
  strv_free (o->net_aliases_of);
  free (o->kernel_release);
  free (o->vm_kernel);
  free (o->vm_engine);
  free (o->vm_memory);
  free (o->vm_cpus);
  free (o->vm_snapshot);
  free (o->memory);
  free (o->memory_reservation);
  free (o->memory_swap);
  free (o->cpus);
  free (o->cpu_shares);
  free (o->cpu_quota);
  free (o->cpu_period);
  free (o->cpuset_cpus);
  free (o->cpuset_mems);
  free (o->pids_limit);
  free (o->blkio_weight);
  free (o->image);
  strv_free (o->command);
  memset (o, 0, sizeof *o);
}

/* A host fact the builder reads but the caller did not gather: the caller's mistake
 * (plan_facts_query says what to gather). */
static int
need (const struct host_facts *f, unsigned fact, const char *what, cella_error_t *err)
{
  if (f->have & fact)
    return 0;
  return cella_error (err, 0, "internal error: the host fact `%s` was not gathered before the plan was built", what);
}

static int
build_caps (const struct run_options *o, const struct host_facts *f, uint64_t *caps, cella_error_t *err)
{
  /* every capability of this kernel (caps_all, from the gathered cap_last_cap) */
  uint64_t all = f->cap_last >= 63 ? UINT64_MAX : (1ULL << (f->cap_last + 1)) - 1;
  *caps = o->privileged ? all : caps_default ();
  for (size_t i = 0; o->cap_add && o->cap_add[i]; i++)
    if (strcasecmp (o->cap_add[i], "ALL") == 0)
      *caps |= all;
  for (size_t i = 0; o->cap_drop && o->cap_drop[i]; i++)
    if (strcasecmp (o->cap_drop[i], "ALL") == 0)
      *caps = 0;
  for (size_t i = 0; o->cap_add && o->cap_add[i]; i++)
    if (strcasecmp (o->cap_add[i], "ALL") != 0 && caps_modify_in (caps, o->cap_add[i], true, all, err) < 0)
      return cella_error_wrap (err, "--cap-add");
  for (size_t i = 0; o->cap_drop && o->cap_drop[i]; i++)
    if (strcasecmp (o->cap_drop[i], "ALL") != 0 && caps_modify_in (caps, o->cap_drop[i], false, all, err) < 0)
      return cella_error_wrap (err, "--cap-drop");
  return 0;
}

static int
build_security (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  p->process.seccomp = true;
  /* the ns backend scopes what the host's namespaces would share (docs/security.md); --privileged
   * lifts it, unless asked for by name */
  p->landlock = p->backend == BACKEND_NS && !p->privileged ? PLAN_LANDLOCK_AUTO : 0;
  for (size_t i = 0; o->security_opts && o->security_opts[i]; i++)
    {
      const char *s = o->security_opts[i];
      if (has_prefix (s, "landlock=") || has_prefix (s, "landlock:"))
        {
          if (plan_landlock_parse (s + 9, &p->landlock, err) < 0)
            return cella_error_wrap (err, "--security-opt `%s`", s);
          continue;
        }
      if (strcmp (s, "no-new-privileges") == 0 || strcmp (s, "no-new-privileges=true") == 0
          || strcmp (s, "no-new-privileges:true") == 0)
        p->process.no_new_privs = true;
      else if (strcmp (s, "no-new-privileges=false") == 0 || strcmp (s, "no-new-privileges:false") == 0)
        p->process.no_new_privs = false;
      else if (strcmp (s, "seccomp=unconfined") == 0 || strcmp (s, "seccomp:unconfined") == 0)
        {
          p->process.seccomp = false;
          oci_seccomp_free (steal_pointer (&p->process.seccomp_profile));
        }
      else if (has_prefix (s, "seccomp=") || has_prefix (s, "seccomp:"))
        {
          /* docker's profile format, read now: the plan (saved with an engine container, shown by
           * --dry-run) holds the rules that apply to this container's capabilities */
          struct plan_seccomp *prof = NULL;
          if (s[8] == '\0')
            return cella_error (err, 0, "--security-opt `%s`: name a profile file (docker's format) or unconfined", s);
          if (oci_seccomp_profile_load (s + 8, p->process.caps, &prof, err) < 0)
            return -1;
          oci_seccomp_free (p->process.seccomp_profile);
          p->process.seccomp_profile = prof;
          p->process.seccomp = false; /* the profile replaces the default filter */
        }
      else if (has_prefix (s, "label") || has_prefix (s, "apparmor"))
        ; /* no LSM integration: accepted like podman on hosts without it */
      else
        return cella_error (err, 0,
                            "--security-opt `%s`: unknown option (expected no-new-privileges, "
                            "seccomp=unconfined, seccomp=PROFILE.json or landlock=off|auto|SCOPES)",
                            s);
    }
  if (p->privileged)
    p->process.seccomp = false;
  return 0;
}

/* --device: a node in the container's /dev and the cgroup rule that allows it. */
static int
build_devices (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  size_t n = strv_len (o->devices);
  if (n == 0)
    return 0;
  p->devices = xzalloc ((n + 1) * sizeof *p->devices);
  p->res.dev_rules = xzalloc ((n + 1) * sizeof *p->res.dev_rules);
  for (size_t i = 0; i < n; i++)
    {
      if (parse_device (o->devices[i], &p->devices[i], &p->res.dev_rules[i], err) < 0)
        return -1;
      p->ndevices++;
      p->res.ndev_rules++;
    }
  return 0;
}

/* The caller's own id map (/proc/self/uid_map), copied for keep-id: the identity for the
 * machine's root, one line. */
static int
keep_id_map (const char *file, struct id_map **m, size_t *n, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  unsigned in, out, count;
  if (read_file (file, &text, NULL, err) < 0)
    return cella_error_wrap (err, "--userns keep-id");
  if (sscanf (text, "%u %u %u", &in, &out, &count) != 3 || strchr (text, '\n') != strrchr (text, '\n'))
    return cella_error (err, 0, "--userns keep-id: `%s` is not one line of ids to copy", file);
  *m = xmalloc (sizeof **m);
  (*m)[0] = (struct id_map){ in, in, count };
  *n = 1;
  return 0;
}

/* --userns (the ns backend, run by root): host (the default: no user namespace), auto (a range
 * of ids of its own, allocated last, in plan_from_run_options) or keep-id. */
static int
build_userns (const struct run_options *o, const struct host_facts *f, struct plan *p, struct userns_spec *spec,
              cella_error_t *err)
{
  if (userns_parse (o->userns, spec, err) < 0)
    return -1;
  if (spec->mode == USERNS_HOST)
    return 0;
  if (p->backend != BACKEND_NS)
    return cella_error (err, 0, "--userns %s: the %s backend makes no user namespace; use --backend ns", o->userns,
                        p->backend == BACKEND_PROOT ? "proot" : "vm");
  if (p->rootless)
    return cella_error (err, 0,
                        "--userns %s: for containers run by root; a rootless container always runs in a user "
                        "namespace of its own, with you as its root (--userns host)",
                        o->userns);
  if (!f->initial_userns)
    return cella_error (err, 0,
                        "--userns %s: needs the machine's root (cella runs in a user namespace here, which "
                        "cannot map other ids nor make idmapped mounts)",
                        o->userns);
  if (o->privileged)
    return cella_error (err, 0,
                        "--userns %s: not with --privileged (the host's devices and capabilities over them, "
                        "which a user namespace does not give; docker refuses it too): use --userns host",
                        o->userns);
  if (p->net == NET_CONTAINER)
    return cella_error (err, 0,
                        "--userns %s: not with --network container:%s (that network namespace belongs to "
                        "another user namespace)",
                        o->userns, p->network);
  p->ns |= PLAN_NS_USER;
  p->userns_mode = xstrdup (spec->mode == USERNS_AUTO ? "auto" : "keep-id");
  if (spec->mode == USERNS_KEEP_ID)
    return keep_id_map ("/proc/self/uid_map", &p->uid_map, &p->nuid_map, err) < 0
                   || keep_id_map ("/proc/self/gid_map", &p->gid_map, &p->ngid_map, err) < 0
               ? -1
               : 0;
  return 0;
}

/* --userns=auto: the range, taken last so that nothing after it can fail (--dry-run only looks) */
static int
userns_take (const struct run_options *o, const struct userns_spec *spec, struct plan *p, cella_error_t *err)
{
  uint32_t uid, gid;
  if (spec->mode != USERNS_AUTO)
    return 0;
  if (userns_allocate (p->id, spec->size, !o->dry_run, &uid, &gid, err) < 0)
    return -1;
  p->uid_map = xmalloc (sizeof *p->uid_map);
  p->gid_map = xmalloc (sizeof *p->gid_map);
  p->uid_map[0] = (struct id_map){ 0, uid, spec->size };
  p->gid_map[0] = (struct id_map){ 0, gid, spec->size };
  p->nuid_map = p->ngid_map = 1;
  return 0;
}

/* The host's file, with `extra` appended; `fallback` when the host has none. */
static void
add_host_file (struct plan *p, const char *target, const char *host_path, const char *fallback, const char *extra)
{
  cleanup_free char *buf = NULL, *all = NULL;
  size_t len = 0;
  if (host_path == NULL || read_file (host_path, &buf, &len, NULL) < 0)
    {
      free (buf);
      buf = xstrdup (fallback);
      len = strlen (buf);
    }
  all = xasprintf ("%s%s%s", buf, len && buf[len - 1] != '\n' ? "\n" : "", extra ? extra : "");
  plan_add_file (p, target, all, strlen (all), 0644);
}

static void
add_default_ops (struct plan *p)
{
  struct op *op;
  cleanup_free char *hosts = NULL, *hostname_line = xasprintf ("%s\n", p->hostname);

  plan_add_op (p, OP_PROC, "/proc");
  op = plan_add_op (p, OP_DEV, "/dev");
  op->mqueue = true;
  /* --privileged: the host's devices too, and a /dev the workload may add nodes to */
  op->dev_host = op->dev_writable = p->privileged;
  plan_add_op (p, OP_SYSFS, "/sys")->dev_writable = p->privileged;

  plan_add_file (p, "/etc/hostname", hostname_line, strlen (hostname_line), 0644);
  if (p->net == NET_HOST)
    {
      /* the host's names, and ours: the container has its own host name even here */
      hosts = net_hosts ("127.0.0.1", p->hostname, NULL, p->add_hosts);
      memmove (hosts, strstr (hosts, "\n127.0.0.1\t") + 1, strlen (strstr (hosts, "\n127.0.0.1\t") + 1) + 1);
      add_host_file (p, "/etc/hosts", "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                     hosts);
    }
  else
    {
      /* a private network's address replaces 127.0.0.1 when net_prepare leases it */
      hosts = net_hosts ("127.0.0.1", p->hostname, NULL, p->add_hosts);
      plan_add_file (p, "/etc/hosts", hosts, strlen (hosts), 0644);
    }
  if (p->net == NET_HOST)
    {
      /* systemd-resolved's stub listens on the host's loopback; give the real servers */
      cleanup_free char *rc = NULL;
      const char *src = "/etc/resolv.conf";
      if (read_file (src, &rc, NULL, NULL) == 0 && strstr (rc, "nameserver 127.0.0.53")
          && access ("/run/systemd/resolve/resolv.conf", R_OK) == 0)
        src = "/run/systemd/resolve/resolv.conf";
      add_host_file (p, "/etc/resolv.conf", src, "", NULL);
    }
  else if (p->net == NET_PRIVATE || p->net == NET_CONTAINER || p->dns)
    {
      /* as the host's, without its loopback servers (systemd-resolved's real ones when it is the stub) */
      cleanup_free char *rc = NULL, *text = NULL;
      if (read_file ("/run/systemd/resolve/resolv.conf", &rc, NULL, NULL) < 0
          && read_file ("/etc/resolv.conf", &rc, NULL, NULL) < 0)
        rc = NULL;
      text = net_resolv_conf (rc, p->dns);
      plan_add_file (p, "/etc/resolv.conf", text, strlen (text), 0644);
    }
  else
    plan_add_file (p, "/etc/resolv.conf", "# no network\n", strlen ("# no network\n"), 0644);
}

static void
add_mask_ops (struct plan *p)
{
  if (p->privileged)
    return; /* docker's --privileged: nothing masked, /proc/sys writable */
  for (size_t i = 0; i < sizeof masked_paths / sizeof masked_paths[0]; i++)
    plan_add_op (p, OP_MASK, masked_paths[i]);
  for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++)
    plan_add_op (p, OP_READONLY, readonly_paths[i]);
}

static int
add_user_mounts (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; o->volumes && o->volumes[i]; i++)
    {
      cleanup_free char *src = NULL, *dst = NULL;
      unsigned flags;
      if (parse_volume (o->volumes[i], &src, &dst, &flags, err) < 0)
        return -1;
      plan_add_bind (p, src, dst, flags);
    }
  for (size_t i = 0; o->tmpfs && o->tmpfs[i]; i++)
    {
      cleanup_free char *dst = NULL;
      long long size;
      mode_t mode;
      unsigned flags;
      if (parse_tmpfs (o->tmpfs[i], &dst, &size, &mode, &flags, err) < 0)
        return -1;
      plan_add_tmpfs (p, dst, size, mode)->flags = flags;
    }
  for (size_t i = 0; o->mounts && o->mounts[i]; i++)
    if (parse_mount (o->mounts[i], p, err) < 0)
      return -1;
  return 0;
}

static int
build_process (const struct run_options *o, const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  struct plan_process *pr = &p->process;
  cleanup_free char *home = NULL;
  const struct image_defaults *img = o->img;
  struct root_view view;
  char **env = NULL;
  int r;

  pr->argv = strv_dup (o->command);
  pr->cwd = xstrdup (o->workdir ? o->workdir : (img && img->workdir) ? img->workdir : "/");
  pr->tty = o->tty;
  pr->stdin_open = o->interactive;
  pr->init = o->init;
  if (pr->cwd[0] != '/')
    return cella_error (err, 0, "--workdir `%s`: must be an absolute path", pr->cwd);

  if (root_view_open (&view, p->root_layers, p->rootfs, err) < 0)
    return -1;
  pr->user = xstrdup (o->user ? o->user : (img && img->user) ? img->user : "0");
  r = user_resolve_view (&view, pr->user, &pr->uid, &pr->gid, &pr->groups, &pr->ngroups, &home, err);
  root_view_close (&view);
  if (r < 0)
    return -1;
  if (o->user == NULL && (img == NULL || img->user == NULL))
    {
      free (pr->user);
      pr->user = NULL;
    }

  strv_push (&env, "PATH=" DEFAULT_PATH);
  {
    cleanup_free char *h = xasprintf ("HOSTNAME=%s", p->hostname);
    cleanup_free char *hm = xasprintf ("HOME=%s", home);
    strv_push (&env, h);
    strv_push (&env, hm);
  }
  if (pr->tty)
    strv_push (&env, "TERM=xterm");
  for (size_t i = 0; img && img->env && img->env[i]; i++)
    if (strchr (img->env[i], '='))
      env_set (&env, img->env[i]);
  pr->env = env;
  for (size_t i = 0; o->env_files && o->env_files[i]; i++)
    if (parse_env_file (o->env_files[i], &pr->env, err) < 0)
      return -1;
  for (size_t i = 0; o->env && o->env[i]; i++)
    if (parse_env_line (o->env[i], &pr->env, err) < 0)
      return cella_error_wrap (err, "--env");
  if (build_caps (o, f, &pr->caps, err) < 0)
    return -1;
  return build_security (o, p, err);
}

/* The VM's engine, guest kernel and accelerator, from the host's facts (vm_plan_prepare for a plan
 * built elsewhere). */
static int
vm_from_facts (const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  if (need (f, HOST_FACT_VM, "vm", err) < 0)
    return -1;
  if (strcmp (p->vm_engine, "firecracker") == 0)
    {
      /* not shipped by Debian; its API-socket launch is not written yet */
      if (!f->firecracker_found)
        return cella_error (err, 0,
                            "--vm-engine firecracker: firecracker not found on PATH (it is not packaged by Debian; "
                            "use --vm-engine qemu)");
      return cella_error (err, 0, "--vm-engine firecracker: not supported by this build yet; use --vm-engine qemu");
    }
  if (strcmp (p->vm_engine, "qemu") != 0)
    return cella_error (err, 0, "--vm-engine `%s`: unknown (expected qemu or firecracker)", p->vm_engine);
  if (f->vm_why)
    return cella_error (err, f->vm_why_errno, "%s", f->vm_why);
  free (p->vm_kernel);
  p->vm_kernel = f->vm_kernel ? xstrdup (f->vm_kernel) : NULL;
  free (p->vm_kernel_release);
  p->vm_kernel_release = f->vm_kernel_release ? xstrdup (f->vm_kernel_release) : NULL;
  free (p->vm_kernel_kind);
  p->vm_kernel_kind = f->vm_kernel_kind ? xstrdup (f->vm_kernel_kind) : NULL;
  if (p->vm_memory_mib == 0)
    p->vm_memory_mib = 256;
  free (p->vm_accel);
  p->vm_accel = xstrdup (f->kvm_why ? "tcg" : "kvm");
  if (f->kvm_why)
    fprintf (stderr, "cella: no usable KVM (%s): the VM runs under TCG emulation (slow)\n", f->kvm_why);
  return 0;
}

/* --backend vm: what a guest of ours cannot give yet is refused, never dropped. */
static int
vm_choose (const struct run_options *o, const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  if (o->vm_memory)
    {
      long long m = parse_size (o->vm_memory);
      if (m <= 0)
        return cella_error (err, 0, "--vm-memory `%s`: expected a size like 512m or 1g", o->vm_memory);
      if (m < 64LL << 20 || m > 1LL << 40)
        return cella_error (err, 0, "--vm-memory `%s`: between 64m and 1t", o->vm_memory);
      p->vm_memory_mib = (unsigned) (m >> 20);
    }
  if (o->vm_cpus)
    {
      char *end = NULL;
      long n = strtol (o->vm_cpus, &end, 10);
      if (end == o->vm_cpus || *end || n < 1 || n > 255)
        return cella_error (err, 0, "--vm-cpus `%s`: expected a number of virtual CPUs from 1 to 255", o->vm_cpus);
      p->vm_cpus = (unsigned) n;
    }
  {
    const char *snap = o->vm_snapshot ? o->vm_snapshot : getenv ("CELLA_VM_SNAPSHOT");
    if (snap && *snap && strcmp (snap, "on") != 0 && strcmp (snap, "off") != 0)
      return cella_error (err, 0, "%s `%s`: expected on or off",
                          o->vm_snapshot ? "--vm-snapshot" : "$CELLA_VM_SNAPSHOT", snap);
    p->vm_snapshot_off = snap && strcmp (snap, "off") == 0;
  }
  p->vm_kernel = o->vm_kernel ? xstrdup (o->vm_kernel) : NULL;
  p->vm_engine = xstrdup (o->vm_engine ? o->vm_engine : "qemu");
  /* the guest's NIC is QEMU's user-mode network (docs/vm.md "Networking"), or none; as real root
   * a tap on the bridge of the default or a user-defined network (build_network checks the name) */
  if (o->network && strcmp (o->network, "none") != 0 && strcmp (o->network, "private") != 0
      && strcmp (o->network, "bridge") != 0 && strcmp (o->network, NET_DEFAULT_NAME) != 0
      && (f->euid != 0 || !f->initial_userns || strcmp (o->network, "host") == 0
          || has_prefix (o->network, "container:")))
    return cella_error (err, 0,
                        "--network %s: the vm backend gives the guest QEMU's user-mode network (--network "
                        "private, the default) or none (--network none)%s; use --backend ns for others",
                        o->network,
                        f->euid == 0 && f->initial_userns ? ", or as root a network from `cella network ls`" : "");
  if (o->networks_extra)
    return cella_error (err, 0,
                        "--network %s: the vm backend gives the guest one network (--network %s); use --backend ns "
                        "for a container on several",
                        o->networks_extra[0], o->network);
  /* --tmpfs, --cap-add/--cap-drop, --read-only and no-new-privileges: applied by the guest's init */
  for (size_t i = 0; o->security_opts && o->security_opts[i]; i++)
    if (!has_prefix (o->security_opts[i], "no-new-privileges"))
      return cella_error (err, 0,
                          "--security-opt %s: not supported by the vm backend (the VM is the boundary; "
                          "no-new-privileges is)",
                          o->security_opts[i]);
  if (o->devices)
    return cella_error (err, 0, "--device %s: the vm backend cannot pass a host device to the guest; use --backend ns",
                        o->devices[0]);
  if (o->privileged)
    return cella_error (err, 0,
                        "--privileged: the vm backend's guest has no host devices or capabilities to give; use "
                        "--backend ns");
  return vm_from_facts (f, p, err);
}

/* "0-3,6": cpu or memory node lists, as the kernel takes them */
static bool
cpu_list_valid (const char *s)
{
  bool digit = false;
  for (const char *c = s; *c; c++)
    {
      if (*c >= '0' && *c <= '9')
        digit = true;
      else if ((*c == '-' || *c == ',') && digit)
        digit = false;
      else
        return false;
    }
  return digit;
}

static int
limit_int (const char *flag, const char *v, long long lo, long long hi, long long *out, cella_error_t *err)
{
  char *end = NULL;
  long long n;
  errno = 0;
  n = v && *v ? strtoll (v, &end, 10) : 0;
  if (v == NULL || *v == '\0' || errno || *end || n < lo || n > hi)
    return cella_error (err, 0, "%s %s: expected an integer from %lld to %lld", flag, v ? v : "", lo, hi);
  *out = n;
  return 0;
}

/* --memory, --cpus, ... → p->res, with docker's checks and defaults (memory-swap twice memory). */
static int
build_resources (const struct run_options *o, const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  struct plan_resources *r = &p->res;
  long long n;
  if (o->memory && (r->memory = cgroup_parse_bytes (o->memory)) <= 0)
    return cella_error (err, 0, "--memory %s: expected a size like 512m or 2g (units b, k, m, g)", o->memory);
  if (o->memory_reservation && (r->memory_reservation = cgroup_parse_bytes (o->memory_reservation)) <= 0)
    return cella_error (err, 0, "--memory-reservation %s: expected a size like 256m (units b, k, m, g)",
                        o->memory_reservation);
  if (o->memory_swap)
    {
      if (strcmp (o->memory_swap, "-1") == 0)
        r->memory_swap = -1;
      else if ((r->memory_swap = cgroup_parse_bytes (o->memory_swap)) <= 0)
        return cella_error (err, 0, "--memory-swap %s: expected a size like 1g, or -1 for unlimited swap",
                            o->memory_swap);
      if (!r->memory)
        return cella_error (err, 0, "--memory-swap %s: needs --memory too (it is memory plus swap)", o->memory_swap);
      if (r->memory_swap > 0 && r->memory_swap < r->memory)
        return cella_error (err, 0, "--memory-swap %s: must be at least --memory %s (it is memory plus swap)",
                            o->memory_swap, o->memory);
    }
  else if (r->memory)
    r->memory_swap = r->memory * 2; /* docker's default: as much swap as memory */
  if (r->memory && r->memory_reservation > r->memory)
    return cella_error (err, 0, "--memory-reservation %s: must not be above --memory %s", o->memory_reservation,
                        o->memory);
  if (o->cpus)
    {
      long ncpu;
      if (need (f, HOST_FACT_CPUS, "cpus", err) < 0)
        return -1;
      ncpu = f->ncpu;
      if ((r->nano_cpus = cgroup_parse_cpus (o->cpus)) <= 0)
        return cella_error (err, 0, "--cpus %s: expected a positive number of cpus like 1.5", o->cpus);
      if (ncpu > 0 && r->nano_cpus > ncpu * 1000000000LL)
        return cella_error (err, 0, "--cpus %s: this host has only %ld cpus", o->cpus, ncpu);
      if (o->cpu_quota || o->cpu_period)
        return cella_error (err, 0, "--cpus %s: conflicts with %s (use one or the other)", o->cpus,
                            o->cpu_quota ? "--cpu-quota" : "--cpu-period");
      r->cpu_period = 100000;
      r->cpu_quota = cgroup_cpus_to_quota (r->nano_cpus, r->cpu_period);
      if (r->cpu_quota < 1000)
        return cella_error (err, 0, "--cpus %s: below the smallest quota the kernel takes (0.01)", o->cpus);
    }
  if (o->cpu_shares && limit_int ("--cpu-shares", o->cpu_shares, 2, 262144, &n, err) < 0)
    return -1;
  r->cpu_shares = o->cpu_shares ? (unsigned long long) n : 0;
  if (o->cpu_period)
    {
      if (limit_int ("--cpu-period", o->cpu_period, 1000, 1000000, &n, err) < 0)
        return -1;
      r->cpu_period = (unsigned long long) n;
    }
  if (o->cpu_quota)
    {
      if (strcmp (o->cpu_quota, "-1") == 0)
        n = -1;
      else if (limit_int ("--cpu-quota", o->cpu_quota, 1000, 1000000000LL, &n, err) < 0)
        return -1;
      r->cpu_quota = n;
    }
  if (o->cpuset_cpus && !cpu_list_valid (o->cpuset_cpus))
    return cella_error (err, 0, "--cpuset-cpus %s: expected a cpu list like 0-2,4", o->cpuset_cpus);
  if (o->cpuset_mems && !cpu_list_valid (o->cpuset_mems))
    return cella_error (err, 0, "--cpuset-mems %s: expected a memory node list like 0 or 0-1", o->cpuset_mems);
  r->cpuset_cpus = o->cpuset_cpus ? xstrdup (o->cpuset_cpus) : NULL;
  r->cpuset_mems = o->cpuset_mems ? xstrdup (o->cpuset_mems) : NULL;
  if (o->pids_limit)
    {
      if (limit_int ("--pids-limit", o->pids_limit, -1, 4194304, &n, err) < 0)
        return -1;
      r->pids_limit = n <= 0 ? -1 : n; /* docker: 0 or -1 is unlimited */
    }
  if (o->blkio_weight)
    {
      if (limit_int ("--blkio-weight", o->blkio_weight, 10, 1000, &n, err) < 0)
        return -1;
      r->io_weight = (unsigned) n;
    }
  return 0;
}

/* --backend, or the first that works here: ns, else proot (with one notice line). */
static int
choose_backend (const struct run_options *o, const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  const char *path = NULL;
  if (o->backend && strcmp (o->backend, "ns") == 0)
    p->backend = BACKEND_NS;
  else if (o->backend && strcmp (o->backend, "proot") == 0)
    {
      if (need (f, HOST_FACT_PROOT, "proot", err) < 0)
        return -1;
      if ((path = f->proot_path) == NULL)
        return cella_error (err, 0, "--backend proot: %s", f->proot_why);
      p->backend = BACKEND_PROOT;
    }
  else if (o->backend && strcmp (o->backend, "vm") == 0)
    p->backend = BACKEND_VM;
  else if (o->backend)
    return cella_error (err, 0, "--backend `%s`: unknown (available: ns, proot, vm)", o->backend);
  else if (need (f, HOST_FACT_NS, "ns", err) < 0)
    return -1;
  else if (f->ns_usable)
    p->backend = BACKEND_NS;
  else if (need (f, HOST_FACT_PROOT, "proot", err) < 0)
    return -1;
  else if ((path = f->proot_path) != NULL)
    {
      p->backend = BACKEND_PROOT;
      fprintf (stderr, "cella: namespaces are not available here (%s); using the proot backend\n", f->ns_why);
    }
  else
    return cella_error (err, 0, "no backend can run here: %s; and %s (see `cella doctor`)", f->ns_why, f->proot_why);
  if (p->backend != BACKEND_VM && (o->vm_kernel || o->vm_engine || o->vm_memory || o->vm_cpus || o->vm_snapshot))
    return cella_error (err, 0, "%s: only for the vm backend (--backend vm)",
                        o->vm_kernel   ? "--kernel"
                        : o->vm_engine ? "--vm-engine"
                        : o->vm_memory ? "--vm-memory"
                        : o->vm_cpus   ? "--vm-cpus"
                                       : "--vm-snapshot");
  if (p->backend == BACKEND_VM)
    {
      if (o->proot_path || o->kernel_release)
        return cella_error (err, 0, "%s: only for the proot backend (--backend proot)",
                            o->proot_path ? "--proot-path" : "--kernel-release");
      return vm_choose (o, f, p, err);
    }
  if (p->backend != BACKEND_PROOT)
    {
      if (o->proot_path || o->kernel_release)
        return cella_error (err, 0, "%s: only for the proot backend (--backend proot)",
                            o->proot_path ? "--proot-path" : "--kernel-release");
      return 0;
    }
  p->proot_path = xstrdup (path);
  /* no fake release unless asked: proot 5.1's -k breaks directory reads (see docs/proot.md) */
  p->kernel_release = o->kernel_release ? xstrdup (o->kernel_release) : NULL;
  /* what proot cannot give is refused, never dropped */
  if (o->network && strcmp (o->network, "host") != 0)
    return cella_error (err, 0,
                        "--network %s: the proot backend has no private network (it shares the host's); use "
                        "--backend ns",
                        o->network);
  if (o->read_only)
    return cella_error (err, 0, "--read-only: the proot backend cannot make the root read-only; use --backend ns");
  if (o->init)
    return cella_error (err, 0, "--init: the proot backend has no PID namespace to be init of; use --backend ns");
  if (o->hostname)
    return cella_error (err, 0,
                        "--hostname: the proot backend cannot give the container a host name of its own (no UTS "
                        "namespace); use --backend ns");
  if (o->cap_add || o->cap_drop)
    return cella_error (err, 0, "%s: the proot backend has no capabilities to grant or drop; use --backend ns",
                        o->cap_add ? "--cap-add" : "--cap-drop");
  if (o->security_opts)
    return cella_error (err, 0,
                        "--security-opt %s: the proot backend has no seccomp or no_new_privs of its own; use "
                        "--backend ns",
                        o->security_opts[0]);
  if (o->devices)
    return cella_error (err, 0,
                        "--device %s: the proot backend has no /dev or device rules of its own (the workload "
                        "sees the host's /dev as the calling user); use --backend ns",
                        o->devices[0]);
  if (o->privileged)
    return cella_error (err, 0,
                        "--privileged: the proot backend has no capabilities or device rules to lift; use "
                        "--backend ns");
  return 0;
}

/* --network: host, none, private (the default network) or a network's name. Without it: private
 * for a container the engine keeps (docker's bridge), else the host's (the faster start). */
static int
build_network (const struct run_options *o, const struct host_facts *f, struct plan *p, cella_error_t *err)
{
  const char *n = o->network;
  if (n == NULL)
    {
      p->net = NET_HOST;
      /* rootless without pasta or slirp4netns: the host's network, as before */
      if (o->engine && p->backend == BACKEND_NS && f->euid != 0 && need (f, HOST_FACT_NET_TOOL, "net_tool", err) < 0)
        return -1;
      if (o->engine && p->backend == BACKEND_NS && (f->euid == 0 || f->rootless_net_tool))
        p->net = NET_PRIVATE;
    }
  else if (strcmp (n, "host") == 0)
    p->net = NET_HOST;
  else if (strcmp (n, "none") == 0)
    p->net = NET_NONE;
  else if (strcmp (n, "private") == 0 || strcmp (n, "bridge") == 0 || strcmp (n, NET_DEFAULT_NAME) == 0)
    p->net = NET_PRIVATE;
  else if (has_prefix (n, "container:"))
    {
      /* resolved when the container starts (net_join_begin): the other one runs by then */
      if (n[10] == '\0')
        return cella_error (err, 0, "--network container: needs a container's name or id");
      p->net = NET_CONTAINER;
      p->network = xstrdup (n + 10);
    }
  else if (need (f, HOST_FACT_NETWORK, "network", err) < 0)
    return -1;
  else if (f->network_defined)
    {
      if (f->euid != 0 || !f->initial_userns)
        return cella_error (err, 0,
                            "--network %s: user-defined networks need root (rootless containers get pasta or "
                            "slirp4netns with --network private)",
                            n);
      p->net = NET_PRIVATE;
      p->network = xstrdup (n);
    }
  else
    return cella_error (err, 0,
                        "--network `%s`: unknown mode or network (expected none, host, private or a network "
                        "from `cella network ls`)",
                        n);
  for (size_t i = 0; o->add_hosts && o->add_hosts[i]; i++)
    if (net_add_host_check (o->add_hosts[i], err) < 0)
      return -1;
  for (size_t i = 0; o->dns && o->dns[i]; i++)
    {
      unsigned char buf[16];
      if (inet_pton (AF_INET, o->dns[i], buf) != 1 && inet_pton (AF_INET6, o->dns[i], buf) != 1)
        return cella_error (err, 0, "--dns `%s`: not an IP address", o->dns[i]);
    }
  if (o->networks_extra)
    {
      if (p->backend != BACKEND_NS)
        return cella_error (err, 0, "--network %s: several networks are for the ns backend (--backend ns)",
                            o->networks_extra[0]);
      if (f->network_extra_missing)
        return cella_error (err, 0, "--network `%s`: no such network (`cella network ls`; `cella network create %s`)",
                            f->network_extra_missing, f->network_extra_missing);
      if (p->network == NULL)
        return cella_error (err, 0, "--network %s: only user-defined networks combine with others", o->network);
      p->networks_extra = strv_dup (o->networks_extra);
    }
  for (size_t i = 0; o->net_aliases_of && o->net_aliases_of[i]; i++)
    {
      const char *a = strchr (o->net_aliases_of[i], ':') + 1;
      if (p->net != NET_PRIVATE || p->network == NULL)
        return cella_error (err, 0, "--network %s: aliases are for user-defined networks (as root)",
                            o->net_aliases_of[i]);
      if (strlen (a) > 253
          || strspn (a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen (a))
        return cella_error (err, 0, "--network %s: alias `%s` is not a host name (letters, digits, `.`, `-`, `_`)",
                            o->net_aliases_of[i], a);
    }
  p->net_aliases_of = strv_dup (o->net_aliases_of);
  for (size_t i = 0; o->network_aliases && o->network_aliases[i]; i++)
    {
      const char *a = o->network_aliases[i];
      if (p->net != NET_PRIVATE || p->network == NULL)
        return cella_error (err, 0,
                            "--network-alias %s: only on a user-defined network (--network NAME, as root; `cella "
                            "network create NAME`)",
                            a);
      if (*a == '\0' || strlen (a) > 253
          || strspn (a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen (a))
        return cella_error (err, 0, "--network-alias `%s`: a host name (letters, digits, `.`, `-`, `_`)", a);
    }
  p->dns = strv_dup (o->dns);
  p->add_hosts = strv_dup (o->add_hosts);
  p->network_aliases = strv_dup (o->network_aliases);
  return 0;
}

/* -p and -P: published ports need a network of the container's own (or proot's shared one). */
static int
build_ports (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; o->publish && o->publish[i]; i++)
    {
      cleanup_free char *port = NULL;
      if (parse_publish (o->publish[i], &port, err) < 0)
        return -1;
      if (p->backend != BACKEND_PROOT && p->net == NET_CONTAINER)
        return cella_error (err, 0,
                            "-p %s: a container on another container's network publishes nothing of its own; "
                            "publish the port on `%s`",
                            o->publish[i], p->network);
      if (p->backend != BACKEND_PROOT && p->net != NET_PRIVATE)
        return cella_error (err, 0,
                            "-p %s: published ports are for private networks (--network private or a network's "
                            "name); with --network %s the container's ports %s",
                            o->publish[i], p->net == NET_HOST ? "host" : "none",
                            p->net == NET_HOST ? "are the host's already" : "cannot be reached");
      if (p->backend == BACKEND_PROOT && strstr (port, ":0:"))
        return cella_error (err, 0, "-p %s: the proot backend cannot pick a random host port; give HOST:CTR",
                            o->publish[i]);
      strv_push (&p->ports, port);
    }
  if (o->publish_all)
    {
      if (p->net != NET_PRIVATE)
        return cella_error (err, 0,
                            "-P: published ports are for private networks (--network private or a network's name)");
      for (size_t i = 0; p->exposed_ports && p->exposed_ports[i]; i++)
        {
          unsigned port;
          char proto[8] = "tcp";
          cleanup_free char *s = NULL;
          if (sscanf (p->exposed_ports[i], "%u/%7s", &port, proto) < 1 || port == 0 || port > 65535)
            continue;
          s = xasprintf (":0:%u/%s", port, proto);
          strv_push (&p->ports, s);
        }
    }
  return 0;
}

int
plan_from_run_options (const struct run_options *o, const struct host_facts *f, const char *rootfs, bool from_image,
                       struct plan **out, cella_error_t *err)
{
  cleanup_plan struct plan *p = plan_new ();
  struct userns_spec userns;

  p->id = paths_new_id ();
  p->rootfs = xstrdup (rootfs);
  p->image = from_image ? xstrdup (o->image) : NULL;
  if (o->img)
    {
      p->image_id = o->img->id ? xstrdup (o->img->id) : NULL;
      p->root_layers = o->img->layers && o->img->layers[0] ? strv_dup (o->img->layers) : NULL;
      p->labels = o->img->labels ? strv_dup (o->img->labels) : NULL;
      p->exposed_ports = o->img->exposed_ports ? strv_dup (o->img->exposed_ports) : NULL;
      p->volumes = o->img->volumes ? strv_dup (o->img->volumes) : NULL;
    }
  if (o->labels)
    strv_append_all (&p->labels, o->labels); /* after the image's: a reader takes the last KEY= */
  p->root_overlay = from_image;
  p->readonly = o->read_only;
  p->debug = o->debug;
  p->privileged = o->privileged;
  p->rootless = f->euid != 0;
  p->hostname = o->hostname ? xstrdup (o->hostname) : strndup (p->id, 12);
  if (o->hostname && (o->hostname[0] == '\0' || strlen (o->hostname) > 64))
    return cella_error (err, 0, "--hostname `%s`: must be 1 to 64 characters", o->hostname);

  if (choose_backend (o, f, p, err) < 0)
    return -1;
  if (build_network (o, f, p, err) < 0)
    return -1;

  p->ns = PLAN_NS_MNT | PLAN_NS_PID | PLAN_NS_UTS | PLAN_NS_IPC | PLAN_NS_CGROUP;
  if (p->net == NET_NONE || p->net == NET_PRIVATE)
    p->ns |= PLAN_NS_NET;
  if (p->backend == BACKEND_VM)
    {
      p->ns = 0; /* a VM: no host namespace */
      /* its NIC on QEMU's user-mode network unless --network none */
      p->net = p->net == NET_NONE ? NET_NONE : NET_PRIVATE;
    }
  else if (p->backend == BACKEND_PROOT)
    p->ns = 0; /* ptrace, no namespace */
  else if (p->rootless)
    {
      p->ns |= PLAN_NS_USER;
      if (need (f, HOST_FACT_IDMAP, "idmap", err) < 0)
        return -1;
      idmap_from_facts (p, f);
    }
  if (build_userns (o, f, p, &userns, err) < 0)
    return -1;

  if (build_resources (o, f, p, err) < 0)
    return -1;
  if (build_process (o, f, p, err) < 0 || build_devices (o, p, err) < 0)
    return -1;
  add_default_ops (p);
  if (add_user_mounts (o, p, err) < 0)
    return -1;
  if (build_ports (o, p, err) < 0)
    return -1;
  if (strcmp (p->process.cwd, "/") != 0)
    plan_add_op (p, OP_MKDIR, p->process.cwd)->mode = 0755;
  add_mask_ops (p);
  if (plan_validate (p, err) < 0 || userns_take (o, &userns, p, err) < 0)
    return -1;
  *out = steal_pointer (&p);
  return 0;
}
