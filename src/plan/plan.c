#define _GNU_SOURCE
#include "plan.h"
#include "../util/json.h"

#include <jansson.h>
#include <string.h>

#include "../oci/oci.h"

static const char *const op_names[OP__COUNT] = {
  [OP_BIND] = "bind",   [OP_PROC] = "proc",       [OP_DEV] = "dev",         [OP_SYSFS] = "sysfs",
  [OP_TMPFS] = "tmpfs", [OP_OVERLAY] = "overlay", [OP_SYMLINK] = "symlink", [OP_MKDIR] = "mkdir",
  [OP_FILE] = "file",   [OP_REMOUNT] = "remount", [OP_MASK] = "mask",       [OP_READONLY] = "readonly",
  [OP_MOUNT] = "mount",
};

const char *
op_kind_name (enum op_kind k)
{
  return k < OP__COUNT ? op_names[k] : "?";
}

static const struct {
  unsigned bit;
  const char *name;
} landlock_scopes[] = {
  { PLAN_LANDLOCK_ABSTRACT_UNIX, "abstract-unix-socket" },
  { PLAN_LANDLOCK_SIGNAL, "signal" },
};

int
plan_landlock_parse (const char *text, unsigned *out, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (text);
  char *save = NULL;
  unsigned v = 0;
  if (strcmp (text, "off") == 0 || strcmp (text, "auto") == 0)
    {
      *out = text[0] == 'a' ? PLAN_LANDLOCK_AUTO : 0;
      return 0;
    }
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    {
      size_t i = 0;
      while (i < sizeof landlock_scopes / sizeof landlock_scopes[0] && strcmp (t, landlock_scopes[i].name) != 0)
        i++;
      if (i == sizeof landlock_scopes / sizeof landlock_scopes[0])
        return cella_error (err, 0,
                            "unknown Landlock scope `%s` (expected off, auto, or a comma-separated list of "
                            "abstract-unix-socket and signal)",
                            t);
      v |= landlock_scopes[i].bit;
    }
  if (v == 0)
    return cella_error (err, 0,
                        "`%s`: expected off, auto, or a comma-separated list of abstract-unix-socket and signal", text);
  *out = v;
  return 0;
}

char *
plan_landlock_format (unsigned v)
{
  char *s = NULL;
  if (v & PLAN_LANDLOCK_AUTO)
    return xstrdup ("auto");
  for (size_t i = 0; i < sizeof landlock_scopes / sizeof landlock_scopes[0]; i++)
    if (v & landlock_scopes[i].bit)
      {
        char *next = xasprintf ("%s%s%s", s ? s : "", s ? "," : "", landlock_scopes[i].name);
        free (s);
        s = next;
      }
  return s ? s : xstrdup ("off");
}

static const char *const backend_names[] = { [BACKEND_NS] = "ns", [BACKEND_PROOT] = "proot", [BACKEND_VM] = "vm" };

const char *
plan_backend_name (enum backend_kind kind)
{
  return (size_t) kind < sizeof backend_names / sizeof backend_names[0] ? backend_names[kind] : "ns";
}

int
plan_backend_kind (const char *name)
{
  for (size_t i = 0; i < sizeof backend_names / sizeof backend_names[0]; i++)
    if (strcmp (backend_names[i], name) == 0)
      return (int) i;
  return -1;
}

struct plan *
plan_new (void)
{
  struct plan *p = xzalloc (sizeof *p);
  p->net = NET_NONE;
  return p;
}

static void
op_clear (struct op *op)
{
  free (op->target);
  free (op->source);
  strv_free (op->lower);
  free (op->upper);
  free (op->work);
  free (op->data);
  free (op->resolved);
  free (op->fstype);
  strv_free (op->fsopts);
  free (op->idmap_uid);
  free (op->idmap_gid);
}

void
plan_free (struct plan *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->nops; i++)
    op_clear (&p->ops[i]);
  free (p->ops);
  free (p->id);
  free (p->image);
  free (p->image_id);
  free (p->proot_path);
  free (p->kernel_release);
  free (p->root_copy);
  free (p->vm_engine);
  free (p->vm_kernel);
  free (p->vm_kernel_release);
  free (p->vm_kernel_kind);
  free (p->vm_export);
  free (p->vm_accel);
  free (p->rootfs);
  strv_free (p->root_layers);
  strv_free (p->labels);
  strv_free (p->exposed_ports);
  strv_free (p->volumes);
  strv_free (p->ports);
  free (p->network);
  strv_free (p->dns);
  strv_free (p->add_hosts);
  strv_free (p->network_aliases);
  strv_free (p->networks_extra);
  strv_free (p->net_aliases_of);
  free (p->net_addr);
  free (p->root_upper);
  free (p->root_work);
  free (p->hostname);
  free (p->uid_map);
  free (p->gid_map);
  free (p->userns_mode);
  strv_free (p->process.argv);
  strv_free (p->process.env);
  free (p->process.cwd);
  free (p->process.user);
  free (p->process.groups);
  free (p->res.cpuset_cpus);
  free (p->res.cpuset_mems);
  free (p->res.cgroups_path);
  oci_plan_extras_free (p);
  free (p);
}

void
plan_freep (struct plan **p)
{
  plan_free (*p);
  *p = NULL;
}

struct op *
plan_add_op (struct plan *p, enum op_kind kind, const char *target)
{
  struct op *op;
  p->ops = xrealloc (p->ops, (p->nops + 1) * sizeof *p->ops);
  op = &p->ops[p->nops++];
  memset (op, 0, sizeof *op);
  op->kind = kind;
  op->target = xstrdup (target);
  return op;
}

struct op *
plan_add_bind (struct plan *p, const char *source, const char *target, unsigned flags)
{
  struct op *op = plan_add_op (p, OP_BIND, target);
  op->source = xstrdup (source);
  op->flags = flags;
  return op;
}

struct op *
plan_add_tmpfs (struct plan *p, const char *target, long long size, mode_t mode)
{
  struct op *op = plan_add_op (p, OP_TMPFS, target);
  op->size = size;
  op->mode = mode;
  return op;
}

struct op *
plan_add_file (struct plan *p, const char *target, const char *data, size_t len, mode_t mode)
{
  struct op *op = plan_add_op (p, OP_FILE, target);
  op->data = xmalloc (len + 1);
  memcpy (op->data, data, len);
  op->data[len] = '\0';
  op->data_len = len;
  op->mode = mode ? mode : 0644;
  return op;
}

static char *
flags_string (const struct op *op)
{
  char buf[128] = "";
  if (op->kind == OP_BIND)
    {
      strcat (buf, op->flags & BIND_WRITABLE ? "rw" : "ro");
      if (op->flags & BIND_OPTIONAL)
        strcat (buf, ",optional");
      if (op->flags & BIND_DEVICE)
        strcat (buf, ",dev");
      if (op->flags & BIND_RECURSIVE)
        strcat (buf, ",rec");
      if (op->flags & BIND_NOSUID)
        strcat (buf, ",nosuid");
      if (op->flags & BIND_NOEXEC)
        strcat (buf, ",noexec");
    }
  else
    {
      if (op->flags & REMOUNT_RDONLY)
        strcat (buf, "ro,");
      if (op->flags & REMOUNT_NOSUID)
        strcat (buf, "nosuid,");
      if (op->flags & REMOUNT_NODEV)
        strcat (buf, "nodev,");
      if (op->flags & REMOUNT_NOEXEC)
        strcat (buf, "noexec,");
      if (*buf)
        buf[strlen (buf) - 1] = '\0';
    }
  if (op->flags & MOUNTF_NOATIME)
    strcat (buf, *buf ? ",noatime" : "noatime");
  if (op->flags & MOUNTF_STRICTATIME)
    strcat (buf, *buf ? ",strictatime" : "strictatime");
  if (op->flags & MOUNTF_NODIRATIME)
    strcat (buf, *buf ? ",nodiratime" : "nodiratime");
  return xstrdup (buf);
}

char *
op_describe (const struct op *op)
{
  cleanup_free char *fl = flags_string (op);
  switch (op->kind)
    {
    case OP_BIND:
      return xasprintf ("bind %s on %s (%s)", op->source, op->target, fl);
    case OP_PROC:
      return xasprintf ("proc on %s", op->target);
    case OP_DEV:
      return xasprintf ("%s dev on %s%s", op->dev_host ? "host devices'" : "minimal", op->target,
                        op->mqueue ? " (with mqueue)" : "");
    case OP_SYSFS:
      return xasprintf ("sysfs on %s (%s)", op->target, op->dev_writable ? "rw" : "ro");
    case OP_TMPFS:
      return xasprintf ("tmpfs on %s (size=%lld, mode=%04o)", op->target, op->size, op->mode ? op->mode : 01777);
    case OP_OVERLAY:
      {
        cleanup_free char *lowers = xstrdup ("");
        for (size_t i = 0; op->lower && op->lower[i]; i++)
          {
            char *n = xasprintf ("%s%s%s", lowers, i ? ":" : "", op->lower[i]);
            free (lowers);
            lowers = n;
          }
        if (op->ov_mode == OVERLAY_PERSISTENT)
          return xasprintf ("overlay on %s (lower=%s, upper=%s, work=%s)", op->target, lowers, op->upper, op->work);
        return xasprintf ("overlay on %s (lower=%s, %s)", op->target, lowers,
                          op->ov_mode == OVERLAY_EPHEMERAL ? "ephemeral" : "read-only");
      }
    case OP_SYMLINK:
      return xasprintf ("symlink %s -> %s", op->target, op->source);
    case OP_MKDIR:
      return xasprintf ("mkdir %s (mode=%04o)", op->target, op->mode ? op->mode : 0755);
    case OP_FILE:
      return xasprintf ("file %s (%zu bytes, ro)", op->target, op->data_len);
    case OP_REMOUNT:
      return xasprintf ("remount %s (%s)", op->target, fl);
    case OP_MASK:
      return xasprintf ("mask %s", op->target);
    case OP_READONLY:
      return xasprintf ("read-only %s", op->target);
    case OP_MOUNT:
      return xasprintf ("%s on %s (%s)", op->fstype ? op->fstype : "?", op->target, fl);
    case OP__COUNT:
    default:
      return xstrdup ("?");
    }
}

/* A container path must be absolute and free of ".." so it cannot name anything outside
 * the root even before RESOLVE_IN_ROOT gets a say. */
bool
path_is_clean_abs (const char *p)
{
  const char *s;
  if (p == NULL || p[0] != '/')
    return false;
  for (s = p; (s = strstr (s, "..")) != NULL; s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
      return false;
  return true;
}

int
plan_validate (const struct plan *p, cella_error_t *err)
{
  if (p->rootfs == NULL)
    return cella_error (err, 0, "no root filesystem given");
  if (p->process.argv == NULL || p->process.argv[0] == NULL)
    return cella_error (err, 0, "no command given and the image has no default command");
  if (p->process.cwd && p->process.cwd[0] != '/')
    return cella_error (err, 0, "working directory `%s`: must be an absolute path", p->process.cwd);
  for (size_t i = 0; i < p->nops; i++)
    {
      const struct op *op = &p->ops[i];
      if (!path_is_clean_abs (op->target))
        return cella_error (err, 0, "%s target `%s`: must be an absolute path inside the container, without `..`",
                            op_kind_name (op->kind), op->target);
      if (op->kind == OP_BIND && (op->source == NULL || op->source[0] != '/'))
        return cella_error (err, 0, "bind source `%s`: must be an absolute host path", op->source ? op->source : "");
      if (op->kind == OP_SYMLINK && (op->source == NULL || op->source[0] == '\0'))
        return cella_error (err, 0, "symlink `%s`: empty link text", op->target);
      if (op->kind == OP_OVERLAY)
        {
          size_t n = strv_len (op->lower);
          if (n == 0)
            return cella_error (err, 0, "overlay on `%s`: needs at least one lower layer", op->target);
          if (op->ov_mode == OVERLAY_READONLY && n < 2)
            return cella_error (err, 0, "overlay on `%s`: a read-only overlay needs at least two lower layers",
                                op->target);
          if (op->ov_mode == OVERLAY_PERSISTENT && (op->upper == NULL || op->work == NULL))
            return cella_error (err, 0, "overlay on `%s`: a persistent overlay needs upper and work directories",
                                op->target);
          for (size_t j = 0; j < n; j++)
            if (op->lower[j][0] != '/' || strchr (op->lower[j], ','))
              return cella_error (err, 0, "overlay lower `%s`: must be an absolute host path without `,`",
                                  op->lower[j]);
          if (op->ov_mode == OVERLAY_PERSISTENT && (op->upper[0] != '/' || op->work[0] != '/'))
            return cella_error (err, 0, "overlay on `%s`: upper and work must be absolute host paths", op->target);
        }
    }
  return 0;
}

static json_t *
op_json (const struct op *op)
{
  cleanup_free char *desc = op_describe (op);
  cleanup_free char *fl = flags_string (op);
  json_t *o = json_pack ("{s:s, s:s, s:s}", "op", op_kind_name (op->kind), "target", op->target, "describe", desc);
  if (op->source)
    json_object_set_new (o, op->kind == OP_SYMLINK ? "link" : "source", json_string (op->source));
  if (*fl)
    json_object_set_new (o, "flags", json_string (fl));
  if (op->kind == OP_TMPFS || op->kind == OP_DEV)
    json_object_set_new (o, "size", json_integer (op->size));
  if (op->kind == OP_TMPFS || op->kind == OP_FILE || op->kind == OP_MKDIR)
    json_object_set_new (o, "mode", json_integer (op->mode));
  if (op->kind == OP_DEV && op->mqueue)
    json_object_set_new (o, "mqueue", json_true ());
  if ((op->kind == OP_DEV || op->kind == OP_SYSFS) && op->dev_writable)
    json_object_set_new (o, "writable", json_true ());
  if (op->kind == OP_DEV && op->dev_host)
    json_object_set_new (o, "hostDevices", json_true ());
  if (op->kind == OP_DEV && op->dev_no_shm)
    json_object_set_new (o, "noShm", json_true ());
  if (op->kind == OP_DEV && op->dev_later)
    json_object_set_new (o, "later", json_integer (op->dev_later));
  if (op->kind == OP_OVERLAY)
    {
      static const char *const modes[] = { "persistent", "ephemeral", "read-only" };
      json_object_set_new (o, "lower", json_strv (op->lower));
      json_object_set_new (o, "mode", json_string (modes[op->ov_mode]));
      if (op->upper)
        json_object_set_new (o, "upper", json_string (op->upper));
      if (op->work)
        json_object_set_new (o, "work", json_string (op->work));
    }
  if (op->kind == OP_FILE)
    json_object_set_new (o, "data", json_stringn (op->data, op->data_len));
  if (op->propagation)
    json_object_set_new (o, "propagation", json_string (plan_propagation_name (op->propagation)));
  if (op->tmpcopyup)
    json_object_set_new (o, "tmpcopyup", json_true ());
  if (op->fstype)
    json_object_set_new (o, "fstype", json_string (op->fstype));
  if (op->fsopts)
    json_object_set_new (o, "fsopts", json_strv (op->fsopts));
  if (op->nidmap_uid)
    {
      json_t *u = json_array (), *g = json_array ();
      for (size_t i = 0; i < op->nidmap_uid; i++)
        json_array_append_new (u, json_pack ("{s:I, s:I, s:I}", "inside", (json_int_t) op->idmap_uid[i].inside,
                                             "outside", (json_int_t) op->idmap_uid[i].outside, "count",
                                             (json_int_t) op->idmap_uid[i].count));
      for (size_t i = 0; i < op->nidmap_gid; i++)
        json_array_append_new (g, json_pack ("{s:I, s:I, s:I}", "inside", (json_int_t) op->idmap_gid[i].inside,
                                             "outside", (json_int_t) op->idmap_gid[i].outside, "count",
                                             (json_int_t) op->idmap_gid[i].count));
      json_object_set_new (
          o, "idmap",
          json_pack ("{s:o, s:o, s:b}", "uidMappings", u, "gidMappings", g, "recursive", op->idmap_recursive));
    }
  return o;
}

static json_t *
maps_json (const struct id_map *m, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < n; i++)
    json_array_append_new (a, json_pack ("{s:I, s:I, s:I}", "inside", (json_int_t) m[i].inside, "outside",
                                         (json_int_t) m[i].outside, "count", (json_int_t) m[i].count));
  return a;
}

/* linux.resources-like keys; only what is set (0 = unset is never written). */
static json_t *
resources_json (const struct plan_resources *r)
{
  json_t *o = json_object ();
#define RES_INT(k, v)                                                                                                  \
  if (v)                                                                                                               \
  json_object_set_new (o, k, json_integer ((json_int_t) (v)))
#define RES_STR(k, v)                                                                                                  \
  if (v)                                                                                                               \
  json_object_set_new (o, k, json_string (v))
  RES_INT ("memory", r->memory);
  RES_INT ("memoryReservation", r->memory_reservation);
  RES_INT ("memorySwap", r->memory_swap);
  RES_INT ("cpuShares", r->cpu_shares);
  RES_INT ("cpuQuota", r->cpu_quota);
  RES_INT ("cpuPeriod", r->cpu_period);
  RES_INT ("nanoCpus", r->nano_cpus);
  RES_STR ("cpusetCpus", r->cpuset_cpus);
  RES_STR ("cpusetMems", r->cpuset_mems);
  RES_INT ("pidsLimit", r->pids_limit);
  RES_INT ("ioWeight", r->io_weight);
  RES_STR ("cgroupsPath", r->cgroups_path);
#undef RES_INT
#undef RES_STR
  if (r->want)
    json_object_set_new (o, "want", json_true ());
  return o;
}

char *
plan_to_json (const struct plan *p)
{
  static const char *const nets[] = { "none", "host", "private", "container" };
  static const struct {
    unsigned bit;
    const char *name;
  } nss[] = {
    { PLAN_NS_MNT, "mount" },   { PLAN_NS_PID, "pid" },       { PLAN_NS_UTS, "uts" },   { PLAN_NS_IPC, "ipc" },
    { PLAN_NS_NET, "network" }, { PLAN_NS_CGROUP, "cgroup" }, { PLAN_NS_USER, "user" }, { PLAN_NS_TIME, "time" },
  };
  const struct plan_process *pr = &p->process;
  json_t *root = json_object (), *proc, *ops = json_array (), *ns = json_array (), *caps = json_array ();
  char *out;

  for (int c = 0; c < 64; c++)
    if (pr->caps & (1ULL << c))
      json_array_append_new (caps, json_integer (c));
  proc = json_pack ("{s:o, s:o, s:s, s:i, s:i, s:b, s:b, s:b, s:b, s:o, s:b}", "args", json_strv (pr->argv), "env",
                    json_strv (pr->env), "cwd", pr->cwd ? pr->cwd : "/", "uid", (int) pr->uid, "gid", (int) pr->gid,
                    "terminal", pr->tty, "stdin", pr->stdin_open, "noNewPrivileges", pr->no_new_privs, "init", pr->init,
                    "capabilities", caps, "seccomp", pr->seccomp);
  if (pr->user)
    json_object_set_new (proc, "user", json_string (pr->user));
  if (pr->ngroups)
    {
      json_t *g = json_array ();
      for (size_t i = 0; i < pr->ngroups; i++)
        json_array_append_new (g, json_integer (pr->groups[i]));
      json_object_set_new (proc, "additionalGids", g);
    }

  for (size_t i = 0; i < p->nops; i++)
    json_array_append_new (ops, op_json (&p->ops[i]));
  for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++)
    if (p->ns & nss[i].bit)
      json_array_append_new (ns, json_string (nss[i].name));

  json_object_set_new (root, "id", json_string (p->id ? p->id : ""));
  if (p->image)
    json_object_set_new (root, "image", json_string (p->image));
  if (p->image_id)
    json_object_set_new (root, "image_id", json_string (p->image_id));
  json_object_set_new (root, "backend", json_string (plan_backend_name (p->backend)));
  if (p->backend == BACKEND_VM)
    json_object_set_new (root, "vm",
                         json_pack ("{s:s*, s:s*, s:s*, s:s*, s:s*, s:I, s:I, s:b}", "engine", p->vm_engine, "kernel",
                                    p->vm_kernel, "kernel_release", p->vm_kernel_release, "kernel_kind",
                                    p->vm_kernel_kind, "accel", p->vm_accel, "memory_mib",
                                    (json_int_t) p->vm_memory_mib, "cpus", (json_int_t) p->vm_cpus, "snapshot",
                                    !p->vm_snapshot_off));
  if (p->backend == BACKEND_PROOT)
    json_object_set_new (root, "proot",
                         json_pack ("{s:s*, s:s*, s:s*}", "path", p->proot_path, "kernel_release", p->kernel_release,
                                    "root_copy", p->root_copy));
  if (p->labels)
    json_object_set_new (root, "labels", json_strv (p->labels));
  if (p->exposed_ports)
    json_object_set_new (root, "exposed_ports", json_strv (p->exposed_ports));
  if (p->volumes)
    json_object_set_new (root, "volumes", json_strv (p->volumes));
  if (p->ports)
    json_object_set_new (root, "ports", json_strv (p->ports));
  {
    json_t *r = json_pack ("{s:s, s:b, s:s}", "path", p->rootfs ? p->rootfs : "", "readonly", p->readonly, "mode",
                           !p->root_overlay ? "bind"
                           : p->root_upper  ? "overlay"
                                            : "ephemeral-overlay");
    if (p->root_layers)
      json_object_set_new (r, "layers", json_strv (p->root_layers));
    if (p->root_overlay && p->root_upper)
      {
        json_object_set_new (r, "upper", json_string (p->root_upper));
        json_object_set_new (r, "work", json_string (p->root_work ? p->root_work : ""));
      }
    json_object_set_new (root, "root", r);
  }
  json_object_set_new (root, "process", proc);
  json_object_set_new (root, "ops", ops);
  json_object_set_new (root, "namespaces", ns);
  json_object_set_new (root, "hostname", json_string (p->hostname ? p->hostname : ""));
  json_object_set_new (root, "rootless", json_boolean (p->rootless));
  if (p->userns_mode)
    json_object_set_new (root, "usernsMode", json_string (p->userns_mode));
  if (p->privileged)
    json_object_set_new (root, "privileged", json_true ());
  json_object_set_new (root, "uidMappings", maps_json (p->uid_map, p->nuid_map));
  json_object_set_new (root, "gidMappings", maps_json (p->gid_map, p->ngid_map));
  json_object_set_new (root, "network", json_string (nets[p->net]));
  if (p->network)
    json_object_set_new (root, "network_name", json_string (p->network));
  if (p->dns)
    json_object_set_new (root, "dns", json_strv (p->dns));
  if (p->add_hosts)
    json_object_set_new (root, "add_hosts", json_strv (p->add_hosts));
  if (p->network_aliases)
    json_object_set_new (root, "network_aliases", json_strv (p->network_aliases));
  if (p->networks_extra)
    json_object_set_new (root, "networks_extra", json_strv (p->networks_extra));
  if (p->net_aliases_of)
    json_object_set_new (root, "net_aliases_of", json_strv (p->net_aliases_of));
  json_object_set_new (root, "resources", resources_json (&p->res));
  if (p->landlock)
    {
      cleanup_free char *ll = plan_landlock_format (p->landlock);
      json_object_set_new (root, "landlock", json_string (ll));
    }
  oci_plan_extras_to_json (p, root);
  out = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (root);
  return out;
}
