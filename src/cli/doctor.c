/* cella doctor: what this host can run. Every answer comes from a probe (src/ns/probe.c) or a
 * lookup made now; the table and the JSON are two views of one report. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../util/paths.h"
#include "../util/json.h"
#include "../net/internal.h"
#include "../ns/landlock.h"
#include "../ns/ns.h"
#include "../host/probe.h"
#include "../plan/idmap.h"
#include "../host/proot_find.h"
#include "../vm/vm.h"
#include "commands.h"
#include "../util/options.h"

enum {
  PG_PROOT,
  PG_NEWUIDMAP,
  PG_NEWGIDMAP,
  PG_PASTA,
  PG_SLIRP4NETNS,
  PG_QEMU,
  PG_FIRECRACKER,
  PG_MKFS_EXT4,
  PG_DEBOOTSTRAP,
  PG_FUSE_OVERLAYFS,
  PG_SKOPEO,
  PG_CRUN,
  PG_RUNC,
  PG_COUNT
};

static const struct {
  const char *name, *version_arg;
} helper_programs[PG_COUNT] = {
  [PG_PROOT] = { "proot", "--version" },
  [PG_NEWUIDMAP] = { "newuidmap", "--version" },
  [PG_NEWGIDMAP] = { "newgidmap", "--version" },
  [PG_PASTA] = { "pasta", "--version" },
  [PG_SLIRP4NETNS] = { "slirp4netns", "--version" },
  [PG_QEMU] = { "qemu-system-x86_64", "--version" },
  [PG_FIRECRACKER] = { "firecracker", "--version" },
  [PG_MKFS_EXT4] = { "mkfs.ext4", "-V" },
  [PG_DEBOOTSTRAP] = { "debootstrap", "--version" },
  [PG_FUSE_OVERLAYFS] = { "fuse-overlayfs", "--version" },
  [PG_SKOPEO] = { "skopeo", "--version" },
  [PG_CRUN] = { "crun", "--version" },
  [PG_RUNC] = { "runc", "--version" },
};

/* What rootless containers get: the caller's subordinate ranges and the setuid helpers. */
struct rootless {
  bool needed; /* not root: containers get a user namespace */
  char *user;
  uid_t uid;
  bool has_subuid, has_subgid, newuidmap, newgidmap;
  uint32_t subuid_start, subuid_count, subgid_start, subgid_count;
};

struct report {
  const char *default_backend; /* "ns", "proot" or "none" */
  bool ns_ok;
  char *ns_reason, *ns_fix;
  struct rootless rl;
  bool proot_ok;
  char *proot_why;
  const char *vm_accel; /* "KVM", "TCG (slow)", or NULL without qemu */
  bool vm_ok;           /* the vm backend can run (vm_available) */
  char *vm_why;         /* what it would use, or what is missing */
  char *release;
  char *scratch; /* where the overlay probe ran */
  struct probe_result kernel[PROBE_COUNT];
  struct probe_cgroups cg;
  const char *overlay_mode;
  bool overlay_ok;
  struct probe_program programs[PG_COUNT];
};

/* ---- gathering --------------------------------------------------------------------------------- */

static bool
sub_range (const char *file, const char *user, uid_t uid, uint32_t *start, uint32_t *count)
{
  cleanup_free char *text = NULL;
  return read_file (file, &text, NULL, NULL) == 0 && idmap_find_range (text, user, uid, start, count) == 0;
}

static void
gather_rootless (struct rootless *rl)
{
  rl->uid = geteuid ();
  rl->needed = rl->uid != 0;
  rl->user = host_passwd_field (rl->uid, 0);
  if (rl->user == NULL)
    rl->user = xasprintf ("%u", (unsigned) rl->uid);
  rl->has_subuid = sub_range ("/etc/subuid", rl->user, rl->uid, &rl->subuid_start, &rl->subuid_count);
  rl->has_subgid = sub_range ("/etc/subgid", rl->user, rl->uid, &rl->subgid_start, &rl->subgid_count);
  /* the paths src/plan/idmap.c runs them from */
  rl->newuidmap = access ("/usr/bin/newuidmap", X_OK) == 0;
  rl->newgidmap = access ("/usr/bin/newgidmap", X_OK) == 0;
}

static bool
rootless_range (const struct rootless *rl)
{
  return rl->has_subuid && rl->has_subgid && rl->newuidmap && rl->newgidmap;
}

/* The store's own directory when it exists (the overlay probe then runs on its file system),
 * else $TMPDIR or /tmp. */
static char *
scratch_dir (void)
{
  const char *data = paths_data_root (), *tmp = getenv ("TMPDIR");
  struct stat st;
  if (data && stat (data, &st) == 0 && S_ISDIR (st.st_mode) && access (data, W_OK | X_OK) == 0)
    return xstrdup (data);
  if (tmp && *tmp == '/' && access (tmp, W_OK | X_OK) == 0)
    return xstrdup (tmp);
  return xstrdup ("/tmp");
}

static void
gather_store (struct report *r)
{
  const struct probe_result *ov = &r->kernel[PROBE_OVERLAY];
  bool real_root = geteuid () == 0 && in_initial_userns ();
  r->overlay_ok = ov->ok;
  if (ov->ok)
    r->overlay_mode = real_root ? "kernel overlay" : "kernel overlay with userxattr";
  else if (!r->ns_ok)
    r->overlay_mode = "not used: the ns backend cannot run here (the proot backend copies an image's layers instead)";
  else if (real_root)
    r->overlay_mode = "no overlay upper here: engine containers get a copy of their image (reflink where possible); "
                      "foreground runs keep their changes on a tmpfs overlay";
  else
    r->overlay_mode = "no overlay upper here: engine containers get a copy of their image (reflink where possible); "
                      "foreground runs keep their changes on a tmpfs overlay (fuse-overlayfs is not used)";
}

static void
gather (struct report *r)
{
  cleanup_free char *proot_path = NULL;
  struct utsname u;
  probe_ns_backend_fresh (); /* doctor tries for real, never a kept answer */
  r->ns_ok = probe_ns_backend (&r->ns_reason, &r->ns_fix);
  gather_rootless (&r->rl);
  r->proot_ok = proot_find (NULL, &proot_path, NULL, &r->proot_why) == 0;
  for (int i = 0; i < PG_COUNT; i++)
    {
      r->programs[i].name = helper_programs[i].name;
      r->programs[i].version_arg = helper_programs[i].version_arg;
    }
  /* the proot cella would run, wherever it was found */
  r->programs[PG_PROOT].path = steal_pointer (&proot_path);
  probe_program_versions (r->programs, PG_COUNT, 2000);
  r->release = xstrdup (uname (&u) == 0 ? u.release : "unknown");
  r->scratch = scratch_dir ();
  probe_kernel (r->scratch, r->kernel);
  probe_cgroups (&r->cg);
  gather_store (r);
  if (r->programs[PG_QEMU].path)
    {
      struct probe_result *k = &r->kernel[PROBE_KVM];
      cleanup_free char *dir = xasprintf ("%s/vm", paths_data_root ());
      char *why = k->ok ? vm_kvm_problem (dir) : NULL;
      if (why)
        { /* /dev/kvm opens, but QEMU cannot run a guest on it */
          k->ok = false;
          k->errno_ = 0;
          free (k->detail);
          k->detail = why;
        }
      r->vm_accel = k->ok ? "KVM" : "TCG (slow)";
    }
  r->vm_ok = vm_available (&r->vm_why);
  r->default_backend = r->ns_ok ? "ns" : r->proot_ok ? "proot" : "none";
}

static void
report_free (struct report *r)
{
  free (r->ns_reason);
  free (r->ns_fix);
  free (r->rl.user);
  free (r->proot_why);
  free (r->vm_why);
  free (r->release);
  free (r->scratch);
  probe_results_free (r->kernel, PROBE_COUNT);
  probe_cgroups_free (&r->cg);
  probe_programs_free (r->programs, PG_COUNT);
}

/* ---- the table ---------------------------------------------------------------------------------- */

static void row (const char *name, const char *status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
row (const char *name, const char *status, const char *fmt, ...)
{
  va_list ap;
  printf ("  %-19s %-8s ", name, status);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  putchar ('\n');
}

static char *
vm_detail (const struct report *r)
{
  const struct probe_program *q = &r->programs[PG_QEMU], *fc = &r->programs[PG_FIRECRACKER];
  cleanup_free char *qemu
      = q->path ? xasprintf ("qemu-system-x86_64 found (%s)", r->vm_accel) : xstrdup ("qemu-system-x86_64 not found");
  if (r->vm_ok)
    return xasprintf ("%s, %s; firecracker %s", r->vm_why, r->vm_accel ? r->vm_accel : "TCG (slow)",
                      fc->path ? "found" : "not found");
  return xasprintf ("%s; %s; firecracker %s", r->vm_why, qemu, fc->path ? "found" : "not found");
}

static void
print_backends (const struct report *r)
{
  const struct probe_program *pr = &r->programs[PG_PROOT];
  cleanup_free char *vm = vm_detail (r);
  printf ("Backends (default: %s)\n", r->default_backend);
  if (r->ns_ok)
    row ("ns", "ok", "%s",
         r->rl.needed ? "rootless: a user namespace with mount, PID, UTS and IPC namespaces can be made"
                      : "mount, PID, UTS and IPC namespaces can be made");
  else
    row ("ns", "no", "%s — %s", r->ns_reason, r->ns_fix);
  if (r->proot_ok)
    row ("proot", "ok", "%s%s%s", pr->path, pr->version ? " " : "", pr->version ? pr->version : "");
  else
    row ("proot", "missing", "%s", r->proot_why);
  row ("vm", r->vm_ok ? "ok" : "no", "%s", vm);
}

static void
print_range (const char *what, bool has, uint32_t start, uint32_t count, const char *file, const char *user)
{
  if (has)
    row (what, "ok", "%u-%u (%u ids)", start, start + count - 1, count);
  else
    row (what, "missing", "no line for %s in %s", user, file);
}

static void
print_rootless (const struct rootless *rl)
{
  printf ("\nRootless (user %s, uid %u)\n", rl->user, (unsigned) rl->uid);
  if (!rl->needed)
    {
      row ("user namespace", "ok", "not needed: as root, containers run without one");
      return;
    }
  print_range ("subuid", rl->has_subuid, rl->subuid_start, rl->subuid_count, "/etc/subuid", rl->user);
  print_range ("subgid", rl->has_subgid, rl->subgid_start, rl->subgid_count, "/etc/subgid", rl->user);
  row ("newuidmap", rl->newuidmap ? "ok" : "missing", "%s",
       rl->newuidmap ? "/usr/bin/newuidmap" : "not installed: `apt-get install uidmap`");
  row ("newgidmap", rl->newgidmap ? "ok" : "missing", "%s",
       rl->newgidmap ? "/usr/bin/newgidmap" : "not installed: `apt-get install uidmap`");
  if (rootless_range (rl))
    row ("ids", "ok", "containers get %u ids (0 is you, 1-%u your subordinate range)",
         (rl->subuid_count < rl->subgid_count ? rl->subuid_count : rl->subgid_count) + 1,
         rl->subuid_count < rl->subgid_count ? rl->subuid_count : rl->subgid_count);
  else
    row ("ids", "no",
         "rootless with one id only: add a range to /etc/subuid and /etc/subgid (`usermod "
         "--add-subuids 100000-165535 --add-subgids 100000-165535 %s`)%s",
         rl->user, rl->newuidmap && rl->newgidmap ? "" : " and install uidmap");
}

static void
print_kernel (const struct report *r)
{
  printf ("\nKernel %s\n", r->release);
  for (int i = 0; i < PROBE_COUNT; i++)
    {
      const struct probe_result *k = &r->kernel[i];
      const char *st = k->ok ? "ok" : i == PROBE_KVM && k->errno_ == ENOENT ? "missing" : "no";
      if (i == PROBE_OVERLAY)
        row (k->title, st, "%s (in %s)", k->detail, r->scratch);
      else
        row (k->title, st, "%s", k->detail);
    }
}

static char *
strv_join (char *const *v)
{
  size_t len = 1;
  char *s;
  for (size_t i = 0; v && v[i]; i++)
    len += strlen (v[i]) + 1;
  s = xzalloc (len);
  for (size_t i = 0; v && v[i]; i++)
    {
      if (i)
        strcat (s, " ");
      strcat (s, v[i]);
    }
  return s;
}

static void
print_cgroups (const struct probe_cgroups *cg)
{
  cleanup_free char *v1 = strv_join (cg->v1_controllers), *v2 = strv_join (cg->v2_controllers);
  printf ("\nCgroups\n");
  if (strcmp (cg->version, "none") == 0)
    row ("version", "missing", "no cgroup file system is mounted: containers get no resource limits");
  else if (strcmp (cg->version, "v2") == 0)
    row ("version", "ok", "v2: unified at %s", cg->v2_mount);
  else if (strcmp (cg->version, "hybrid") == 0)
    row ("version", "ok", "hybrid: v1 controllers, and cgroup2 (unified) at %s", cg->v2_mount);
  else
    row ("version", "ok", "v1 only");
  if (strcmp (cg->version, "v2") != 0)
    row ("v1 controllers", *v1 ? "ok" : "no", "%s", *v1 ? v1 : "none enabled");
  if (cg->v2_mount)
    row ("v2 controllers", *v2 ? "ok" : "no", "%s", *v2 ? v2 : "none enabled (they are bound to v1 hierarchies)");
  if (cg->own == NULL)
    row ("delegation", "no", "no cgroup2 directory of this process to delegate");
  else if (cg->delegated)
    row ("delegation", "ok", "%s is writable by this user", cg->own);
  else
    row ("delegation", "no",
         "%s is not writable by this user: a systemd user session delegates one "
         "(`systemd-run --user --scope -p Delegate=yes …`), or root can chown one to you",
         cg->own);
}

static void
print_programs (const struct probe_program *pg)
{
  printf ("\nPrograms\n");
  for (int i = 0; i < PG_COUNT; i++)
    if (pg[i].path == NULL)
      row (pg[i].name, "missing", "not found");
    else if (pg[i].version)
      row (pg[i].name, "ok", "%s (%s)", pg[i].version, pg[i].path);
    else
      row (pg[i].name, "ok", "%s (%s)", pg[i].path,
           pg[i].timed_out ? "no answer to its version option within 2 s" : "prints no version");
}

/* Private networks: bridges and nft (or iptables) as root, else pasta or slirp4netns with nft
 * for the loopback guard (src/net/). */
static json_t *
network_json (void)
{
  cleanup_free char *path = NULL, *nft = net_find_program ("nft"), *fw = NULL;
  const char *tool = net_rootless_tool (&path), *fix;
  bool root = geteuid () == 0 && in_initial_userns ();
  if (root)
    fw = nft ? xstrdup (nft) : net_find_program ("iptables");
  fix = root    ? (fw ? NULL : "apt-get install nftables")
        : !tool ? "apt-get install passt (or slirp4netns)"
        : !nft  ? "apt-get install nftables (the loopback guard)"
                : NULL;
  return json_pack ("{s:s, s:o, s:o}", "private",
                    root   ? "bridge"
                    : tool ? tool
                           : "none",
                    "helper", (root ? fw : path) ? json_string (root ? fw : path) : json_null (), "fix",
                    fix ? json_string (fix) : json_null ());
}

static void
print_network (void)
{
  json_t *n = network_json ();
  const char *priv = json_string_value (json_object_get (n, "private"));
  const char *helper = json_string_value (json_object_get (n, "helper"));
  printf ("\nNetwork\n");
  if (strcmp (priv, "bridge") == 0)
    row ("private", helper ? "ok" : "missing", "a bridge per network, veth pairs, NAT with %s",
         helper ? helper : "neither nft nor iptables found (apt-get install nftables)");
  else if (strcmp (priv, "none") == 0)
    row ("private", "missing", "rootless private networks need pasta (apt-get install passt) or slirp4netns");
  else if (json_is_string (json_object_get (n, "fix")))
    row ("private", "missing", "rootless through %s, but no nft for the guard of the host's loopback: %s", priv,
         json_string_value (json_object_get (n, "fix")));
  else
    row ("private", "ok", "rootless, through %s (%s)", priv, helper);
  json_decref (n);
}

static void
print_table (const struct report *r)
{
  print_backends (r);
  print_rootless (&r->rl);
  print_kernel (r);
  print_cgroups (&r->cg);
  printf ("\nImage store\n");
  row ("overlay", r->overlay_ok ? "ok" : "no", "%s", r->overlay_mode);
  print_programs (r->programs);
  print_network ();
}

/* ---- JSON --------------------------------------------------------------------------------------- */

/* A string that is not UTF-8 (a program's output) must not make the whole object fail. */
static json_t *
str_or_null (const char *s)
{
  json_t *j;
  if (s == NULL)
    return json_null ();
  j = json_string (s);
  return j ? j : json_string ("(not UTF-8)");
}

static json_t *
range_json (bool has, uint32_t start, uint32_t count)
{
  return has ? json_pack ("{s:I, s:I}", "start", (json_int_t) start, "count", (json_int_t) count) : json_null ();
}

static json_t *
rootless_json (const struct rootless *rl)
{
  return json_pack ("{s:b, s:s, s:I, s:o, s:o, s:b, s:b, s:b}", "needed", rl->needed, "user", rl->user, "uid",
                    (json_int_t) rl->uid, "subuid", range_json (rl->has_subuid, rl->subuid_start, rl->subuid_count),
                    "subgid", range_json (rl->has_subgid, rl->subgid_start, rl->subgid_count), "newuidmap",
                    rl->newuidmap, "newgidmap", rl->newgidmap, "id_range", rootless_range (rl));
}

static json_t *
backends_json (const struct report *r)
{
  const struct probe_program *pr = &r->programs[PG_PROOT];
  cleanup_free char *vm = vm_detail (r);
  json_t *ns = json_pack ("{s:b, s:o, s:o, s:o}", "available", r->ns_ok, "reason", str_or_null (r->ns_reason), "fix",
                          str_or_null (r->ns_fix), "rootless", rootless_json (&r->rl));
  json_t *proot
      = json_pack ("{s:b, s:o, s:o, s:o, s:o}", "available", r->proot_ok, "reason", str_or_null (r->proot_why), "fix",
                   r->proot_ok ? json_null () : json_string ("apt-get install proot (or give --proot-path)"), "path",
                   str_or_null (pr->path), "version", str_or_null (pr->version));
  json_t *vmj = json_pack ("{s:b, s:o, s:o, s:s, s:o, s:o, s:o}", "available", r->vm_ok, "reason",
                           r->vm_ok ? json_null () : json_string (r->vm_why), "fix",
                           r->vm_ok ? json_null ()
                                    : json_string ("apt-get install qemu-system-x86 linux-image-amd64 e2fsprogs"),
                           "detail", vm, "qemu", str_or_null (r->programs[PG_QEMU].path), "accel",
                           str_or_null (r->vm_accel), "firecracker", str_or_null (r->programs[PG_FIRECRACKER].path));
  return json_pack ("{s:o, s:o, s:o}", "ns", ns, "proot", proot, "vm", vmj);
}

static json_t *
kernel_json (const struct report *r)
{
  json_t *k = json_pack ("{s:s}", "release", r->release);
  for (int i = 0; i < PROBE_COUNT; i++)
    {
      const struct probe_result *p = &r->kernel[i];
      json_object_set_new (k, p->key,
                           json_pack ("{s:b, s:o, s:o}", "ok", p->ok, "errno",
                                      p->errno_ ? str_or_null (strerrorname_np (p->errno_)) : json_null (), "detail",
                                      str_or_null (p->detail)));
    }
  json_object_set_new (json_object_get (k, "overlay_userns"), "dir", str_or_null (r->scratch));
  json_object_set_new (json_object_get (k, "landlock"), "abi",
                       landlock_abi () > 0 ? json_integer (landlock_abi ()) : json_null ());
  return k;
}

static json_t *
cgroups_json (const struct probe_cgroups *cg)
{
  return json_pack ("{s:s, s:o, s:o, s:o, s:o, s:b}", "version", cg->version, "v2_mount", str_or_null (cg->v2_mount),
                    "v1_controllers", json_strv (cg->v1_controllers), "v2_controllers", json_strv (cg->v2_controllers),
                    "own_cgroup", str_or_null (cg->own), "delegated", cg->delegated);
}

static json_t *
programs_json (const struct probe_program *pg)
{
  json_t *o = json_object ();
  for (int i = 0; i < PG_COUNT; i++)
    {
      json_t *v = json_null ();
      if (pg[i].path)
        v = json_pack ("{s:o, s:o}", "path", str_or_null (pg[i].path), "version", str_or_null (pg[i].version));
      json_object_set_new (o, pg[i].name, v);
    }
  return o;
}

static void
print_json (const struct report *r)
{
  json_t *o = json_pack ("{s:s, s:o, s:o, s:o, s:o, s:o}", "default_backend", r->default_backend, "backends",
                         backends_json (r), "kernel", kernel_json (r), "cgroups", cgroups_json (&r->cg), "image_store",
                         json_pack ("{s:b, s:s}", "overlay", r->overlay_ok, "mode", r->overlay_mode), "programs",
                         programs_json (r->programs));
  json_object_set_new (o, "network", network_json ());
  char *s = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  puts (s);
  free (s);
  json_decref (o);
}

/* ---- the command -------------------------------------------------------------------------------- */

struct doctor_opts {
  char *format;
};

static const struct cli_option doctor_table[] = {
  { "format", 0, OPT_STRING, offsetof (struct doctor_opts, format), "table|json", "Output format (json: one object)" },
  { NULL, 0, 0, 0, NULL, NULL },
};

int
cmd_doctor (int argc, char **argv)
{
  struct doctor_opts o = { 0 };
  struct report r = { 0 };
  cella_error_t err = NULL;
  int status, first = cli_parse_command (doctor_table, &o, argc, argv, "cella doctor [--format table|json]",
                                         "Check what this host can run: the backends and why one cannot, kernel "
                                         "features, cgroups, the image store's overlay, helper programs. Exits 0 when "
                                         "the default backend works, 1 when no backend does.",
                                         0, "", &status);
  cleanup_free char *format = o.format;
  if (first <= 0)
    return status;
  if (first < argc)
    {
      cella_error (&err, 0, "doctor: unexpected argument `%s` (usage: cella doctor [--format table|json])",
                   argv[first]);
      return cella_error_print (&err);
    }
  if (format && strcmp (format, "json") != 0 && strcmp (format, "table") != 0)
    {
      cella_error (&err, 0, "--format `%s`: unknown (table or json)", format);
      return cella_error_print (&err);
    }
  net_gc (); /* reconcile: rules and addresses of containers whose cella process died */
  gather (&r);
  if (format && strcmp (format, "json") == 0)
    print_json (&r);
  else
    print_table (&r);
  status = strcmp (r.default_backend, "none") == 0 ? 1 : 0;
  report_free (&r);
  return status;
}
