/* `cella run` options → plan. The defaults follow docker: what a container gets without asking. */
#define _GNU_SOURCE
#include "build.h"
#include "../ns/ns.h"
#include "../proot/backend.h"
#include "../proot/proot.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/paths.h"
#include "../ns/caps.h"
#include "idmap.h"

/* docker's masked and read-only paths */
static const char *const masked_paths[] = {
  "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
  "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void
run_options_free (struct run_options *o)
{
  strv_free (o->env);
  strv_free (o->env_files);
  free (o->workdir);
  free (o->user);
  strv_free (o->volumes);
  strv_free (o->tmpfs);
  strv_free (o->mounts);
  strv_free (o->cap_add);
  strv_free (o->cap_drop);
  strv_free (o->security_opts);
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
  free (o->kernel_release);
  free (o->image);
  strv_free (o->command);
  memset (o, 0, sizeof *o);
}

static int
build_caps (const struct run_options *o, uint64_t *caps, cella_error_t *err)
{
  *caps = caps_default ();
  for (size_t i = 0; o->cap_add && o->cap_add[i]; i++)
    if (strcasecmp (o->cap_add[i], "ALL") == 0)
      caps_modify (caps, "ALL", true, NULL);
  for (size_t i = 0; o->cap_drop && o->cap_drop[i]; i++)
    if (strcasecmp (o->cap_drop[i], "ALL") == 0)
      *caps = 0;
  for (size_t i = 0; o->cap_add && o->cap_add[i]; i++)
    if (strcasecmp (o->cap_add[i], "ALL") != 0 && caps_modify (caps, o->cap_add[i], true, err) < 0)
      return cella_error_wrap (err, "--cap-add");
  for (size_t i = 0; o->cap_drop && o->cap_drop[i]; i++)
    if (strcasecmp (o->cap_drop[i], "ALL") != 0 && caps_modify (caps, o->cap_drop[i], false, err) < 0)
      return cella_error_wrap (err, "--cap-drop");
  return 0;
}

static int
build_security (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  p->process.seccomp = true;
  for (size_t i = 0; o->security_opts && o->security_opts[i]; i++)
    {
      const char *s = o->security_opts[i];
      if (strcmp (s, "no-new-privileges") == 0 || strcmp (s, "no-new-privileges=true") == 0
          || strcmp (s, "no-new-privileges:true") == 0)
        p->process.no_new_privs = true;
      else if (strcmp (s, "no-new-privileges=false") == 0 || strcmp (s, "no-new-privileges:false") == 0)
        p->process.no_new_privs = false;
      else if (strcmp (s, "seccomp=unconfined") == 0 || strcmp (s, "seccomp:unconfined") == 0)
        p->process.seccomp = false;
      else if (has_prefix (s, "seccomp=") || has_prefix (s, "seccomp:"))
        return cella_error (err, 0, "--security-opt `%s`: seccomp profiles from files are not supported yet; use "
                                    "seccomp=unconfined or leave the default filter", s);
      else if (has_prefix (s, "label") || has_prefix (s, "apparmor"))
        ; /* no LSM integration: accepted like podman on hosts without it */
      else
        return cella_error (err, 0, "--security-opt `%s`: unknown option (expected no-new-privileges or seccomp=unconfined)", s);
    }
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
  plan_add_op (p, OP_SYSFS, "/sys");

  plan_add_file (p, "/etc/hostname", hostname_line, strlen (hostname_line), 0644);
  if (p->net == NET_HOST)
    {
      /* the host's names, and ours: the container has its own host name even here */
      hosts = xasprintf ("127.0.0.1\t%s\n", p->hostname);
      add_host_file (p, "/etc/hosts", "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                     hosts);
    }
  else
    {
      hosts = xasprintf ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t%s\n",
                         p->hostname);
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
  else
    plan_add_file (p, "/etc/resolv.conf", "# no network\n", strlen ("# no network\n"), 0644);
}

static void
add_mask_ops (struct plan *p)
{
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
build_process (const struct run_options *o, struct plan *p, cella_error_t *err)
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
  if (build_caps (o, &pr->caps, err) < 0)
    return -1;
  return build_security (o, p, err);
}

/* --backend, or the first that works here: ns, else proot (with one notice line). */
static int
choose_backend (const struct run_options *o, struct plan *p, cella_error_t *err)
{
  cleanup_free char *ns_why = NULL, *proot_why = NULL, *path = NULL;
  if (o->backend && strcmp (o->backend, "ns") == 0)
    p->backend = BACKEND_NS;
  else if (o->backend && strcmp (o->backend, "proot") == 0)
    {
      if (proot_find (o->proot_path, &path, NULL, &proot_why) < 0)
        return cella_error (err, 0, "--backend proot: %s", proot_why);
      p->backend = BACKEND_PROOT;
    }
  else if (o->backend)
    return cella_error (err, 0, "--backend `%s`: unknown (available: ns, proot; vm is not built yet)", o->backend);
  else if (ns_available (&ns_why))
    p->backend = BACKEND_NS;
  else if (proot_find (o->proot_path, &path, NULL, &proot_why) == 0)
    {
      p->backend = BACKEND_PROOT;
      fprintf (stderr, "cella: namespaces are not available here (%s); using the proot backend\n", ns_why);
    }
  else
    return cella_error (err, 0, "no backend can run here: %s; and %s (see `cella doctor`)", ns_why, proot_why);
  if (p->backend != BACKEND_PROOT)
    {
      if (o->proot_path || o->kernel_release)
        return cella_error (err, 0, "%s: only for the proot backend (--backend proot)",
                            o->proot_path ? "--proot-path" : "--kernel-release");
      return 0;
    }
  p->proot_path = steal_pointer (&path);
  /* no fake release unless asked: proot 5.1's -k breaks directory reads (see docs/proot.md) */
  p->kernel_release = o->kernel_release ? xstrdup (o->kernel_release) : NULL;
  /* what proot cannot give is refused, never dropped */
  if (o->network && strcmp (o->network, "host") != 0)
    return cella_error (err, 0, "--network %s: the proot backend has no private network (it shares the host's); use "
                                "--backend ns", o->network);
  if (o->read_only)
    return cella_error (err, 0, "--read-only: the proot backend cannot make the root read-only; use --backend ns");
  if (o->init)
    return cella_error (err, 0, "--init: the proot backend has no PID namespace to be init of; use --backend ns");
  if (o->hostname)
    return cella_error (err, 0, "--hostname: the proot backend cannot give the container a host name of its own (no UTS "
                                "namespace); use --backend ns");
  if (o->cap_add || o->cap_drop)
    return cella_error (err, 0, "%s: the proot backend has no capabilities to grant or drop; use --backend ns",
                        o->cap_add ? "--cap-add" : "--cap-drop");
  if (o->security_opts)
    return cella_error (err, 0, "--security-opt %s: the proot backend has no seccomp or no_new_privs of its own; use "
                                "--backend ns", o->security_opts[0]);
  return 0;
}

/* Mount ops proot has no equivalent for. A tmpfs is a bind of a fresh directory (proot_command). */
static int
proot_refuse_ops (const struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      if (op->kind == OP_OVERLAY)
        return cella_error (err, 0, "overlay at `%s`: the proot backend cannot mount overlays; use --backend ns", op->target);
      if (op->kind == OP_BIND && !(op->flags & BIND_WRITABLE))
        return cella_error (err, 0, "read-only volume `%s`: the proot backend cannot make a bind read-only; use --backend ns",
                            op->target);
      if (op->kind == OP_TMPFS && op->size > 0)
        return cella_error (err, 0, "tmpfs `%s` with a size: the proot backend gives a plain directory, without a size limit",
                            op->target);
    }
  return 0;
}

int
plan_from_run_options (const struct run_options *o, const char *rootfs, bool from_image, struct plan **out,
                       cella_error_t *err)
{
  cleanup_plan struct plan *p = plan_new ();

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
  p->root_overlay = from_image;
  p->readonly = o->read_only;
  p->debug = o->debug;
  p->rootless = geteuid () != 0;
  p->hostname = o->hostname ? xstrdup (o->hostname) : strndup (p->id, 12);
  if (o->hostname && (o->hostname[0] == '\0' || strlen (o->hostname) > 64))
    return cella_error (err, 0, "--hostname `%s`: must be 1 to 64 characters", o->hostname);

  if (choose_backend (o, p, err) < 0)
    return -1;
  if (o->network == NULL || strcmp (o->network, "host") == 0)
    p->net = NET_HOST;
  else if (strcmp (o->network, "none") == 0)
    p->net = NET_NONE;
  else
    return cella_error (err, 0, "--network `%s`: unknown mode (expected none or host)", o->network);

  p->ns = PLAN_NS_MNT | PLAN_NS_PID | PLAN_NS_UTS | PLAN_NS_IPC | PLAN_NS_CGROUP;
  if (p->net == NET_NONE)
    p->ns |= PLAN_NS_NET;
  if (p->backend == BACKEND_PROOT)
    p->ns = 0; /* ptrace, no namespace */
  else if (p->rootless)
    {
      p->ns |= PLAN_NS_USER;
      if (idmap_default (p, err) < 0)
        return -1;
    }

  if (build_process (o, p, err) < 0)
    return -1;
  add_default_ops (p);
  if (add_user_mounts (o, p, err) < 0)
    return -1;
  if (p->backend == BACKEND_PROOT && proot_refuse_ops (p, err) < 0)
    return -1;
  for (size_t i = 0; o->publish && o->publish[i]; i++)
    {
      cleanup_free char *port = NULL;
      if (parse_publish (o->publish[i], &port, err) < 0)
        return -1;
      if (p->backend != BACKEND_PROOT)
        return cella_error (err, 0, "-p %s: published ports come with private networks, which the ns backend does not have "
                                    "yet: the container shares the host's network, so its ports are the host's already",
                            o->publish[i]);
      strv_push (&p->ports, port);
    }
  if (strcmp (p->process.cwd, "/") != 0)
    plan_add_op (p, OP_MKDIR, p->process.cwd)->mode = 0755;
  add_mask_ops (p);
  if (plan_validate (p, err) < 0)
    return -1;
  *out = steal_pointer (&p);
  return 0;
}
