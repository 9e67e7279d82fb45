/* Reading a plan back from the JSON that plan_to_json writes: a container's saved plan is
 * loaded by its monitor (start, restart) and by exec, cp and inspect. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "plan.h"
#include "../oci/oci.h"

struct reader {
  cella_error_t *err;
  const char *where; /* "process", "ops[3]" … for error messages */
  int failed;
};

static int
bad (struct reader *r, const char *key, const char *want)
{
  if (!r->failed)
    cella_error (r->err, 0, "saved plan: `%s%s%s` must be %s", r->where, *r->where ? "." : "", key, want);
  r->failed = 1;
  return -1;
}

static char *
get_str (struct reader *r, json_t *o, const char *key, bool required)
{
  json_t *v = json_object_get (o, key);
  if (v == NULL && !required)
    return NULL;
  if (!json_is_string (v))
    {
      bad (r, key, "a string");
      return NULL;
    }
  return xstrdup (json_string_value (v));
}

static long long
get_int (struct reader *r, json_t *o, const char *key, long long dflt)
{
  json_t *v = json_object_get (o, key);
  if (v == NULL)
    return dflt;
  if (!json_is_integer (v))
    return bad (r, key, "an integer");
  return json_integer_value (v);
}

static bool
get_bool (struct reader *r, json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);
  if (v == NULL)
    return false;
  if (!json_is_boolean (v))
    {
      bad (r, key, "true or false");
      return false;
    }
  return json_is_true (v);
}

static char **
get_strv (struct reader *r, json_t *o, const char *key)
{
  json_t *a = json_object_get (o, key), *v;
  char **out = NULL;
  size_t i;
  if (a == NULL)
    return NULL;
  if (!json_is_array (a))
    {
      bad (r, key, "an array of strings");
      return NULL;
    }
  out = strv_new (json_array_size (a));
  json_array_foreach (a, i, v)
    {
      if (!json_is_string (v))
        {
          strv_free (out);
          bad (r, key, "an array of strings");
          return NULL;
        }
      out[i] = xstrdup (json_string_value (v));
    }
  return out;
}

static unsigned
parse_flags (enum op_kind kind, const char *s)
{
  static const struct {
    const char *name;
    unsigned bind, remount;
  } words[] = {
    { "rw", BIND_WRITABLE, 0 },
    { "optional", BIND_OPTIONAL, 0 },
    { "dev", BIND_DEVICE, 0 },
    { "rec", BIND_RECURSIVE, 0 },
    { "ro", 0, REMOUNT_RDONLY },
    { "nosuid", BIND_NOSUID, REMOUNT_NOSUID },
    { "nodev", 0, REMOUNT_NODEV },
    { "noexec", BIND_NOEXEC, REMOUNT_NOEXEC },
    { "noatime", MOUNTF_NOATIME, MOUNTF_NOATIME },
    { "strictatime", MOUNTF_STRICTATIME, MOUNTF_STRICTATIME },
    { "nodiratime", MOUNTF_NODIRATIME, MOUNTF_NODIRATIME },
  };
  cleanup_free char *copy = xstrdup (s ? s : "");
  char *save = NULL;
  unsigned f = 0;
  for (char *w = strtok_r (copy, ",", &save); w; w = strtok_r (NULL, ",", &save))
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
      if (strcmp (w, words[i].name) == 0)
        f |= kind == OP_BIND ? words[i].bind : words[i].remount;
  return f;
}

static void read_maps (struct reader *r, json_t *a, struct id_map **out, size_t *n);

static void
read_op (struct reader *r, struct plan *p, json_t *o)
{
  static const char *const ov_modes[] = { "persistent", "ephemeral", "read-only" };
  cleanup_free char *kind_s = get_str (r, o, "op", true), *target = get_str (r, o, "target", true);
  const char *names[OP__COUNT];
  struct op *op;
  int kind;
  for (int k = 0; k < OP__COUNT; k++)
    names[k] = op_kind_name ((enum op_kind) k);
  if (r->failed)
    return;
  kind = str_index (names, OP__COUNT, kind_s);
  if (kind < 0)
    {
      bad (r, "op", "a known mount op");
      return;
    }
  op = plan_add_op (p, (enum op_kind) kind, target);
  op->source = get_str (r, o, kind == OP_SYMLINK ? "link" : "source", false);
  {
    cleanup_free char *fl = get_str (r, o, "flags", false);
    op->flags = parse_flags (op->kind, fl);
  }
  op->size = get_int (r, o, "size", 0);
  op->mqueue = get_bool (r, o, "mqueue");
  op->dev_writable = (op->kind == OP_DEV || op->kind == OP_SYSFS) && get_bool (r, o, "writable");
  op->dev_host = op->kind == OP_DEV && get_bool (r, o, "hostDevices");
  op->dev_no_shm = op->kind == OP_DEV && get_bool (r, o, "noShm");
  op->dev_later = op->kind == OP_DEV ? (unsigned) get_int (r, o, "later", 0) & (PLAN_DEV_PTS | PLAN_DEV_MQUEUE) : 0;
  op->tmpcopyup = get_bool (r, o, "tmpcopyup");
  {
    json_t *im = json_object_get (o, "idmap");
    if (json_is_object (im))
      {
        read_maps (r, json_object_get (im, "uidMappings"), &op->idmap_uid, &op->nidmap_uid);
        read_maps (r, json_object_get (im, "gidMappings"), &op->idmap_gid, &op->nidmap_gid);
        op->idmap_recursive = json_is_true (json_object_get (im, "recursive"));
      }
  }
  op->fstype = get_str (r, o, "fstype", false);
  op->fsopts = get_strv (r, o, "fsopts");
  {
    cleanup_free char *pr = get_str (r, o, "propagation", false);
    for (int k = 1; pr && k < PROP__COUNT; k++)
      if (strcmp (plan_propagation_name ((enum plan_propagation) k), pr) == 0)
        op->propagation = (enum plan_propagation) k;
  }
  if (op->kind != OP_OVERLAY)
    op->mode = (mode_t) get_int (r, o, "mode", 0);
  else
    {
      cleanup_free char *m = get_str (r, o, "mode", true);
      int mi = str_index (ov_modes, 3, m);
      if (mi < 0)
        bad (r, "mode", "persistent, ephemeral or read-only");
      op->ov_mode = mi < 0 ? OVERLAY_EPHEMERAL : (enum overlay_mode) mi;
      op->lower = get_strv (r, o, "lower");
      op->upper = get_str (r, o, "upper", false);
      op->work = get_str (r, o, "work", false);
    }
  if (op->kind == OP_FILE)
    {
      json_t *d = json_object_get (o, "data");
      if (!json_is_string (d))
        bad (r, "data", "a string");
      else
        {
          op->data_len = json_string_length (d);
          op->data = xmalloc (op->data_len + 1);
          memcpy (op->data, json_string_value (d), op->data_len);
          op->data[op->data_len] = '\0';
        }
    }
}

static void
read_maps (struct reader *r, json_t *a, struct id_map **out, size_t *n)
{
  json_t *v;
  size_t i;
  if (a == NULL)
    return;
  if (!json_is_array (a))
    {
      bad (r, "uidMappings", "an array");
      return;
    }
  *out = xzalloc ((json_array_size (a) + 1) * sizeof **out);
  json_array_foreach (a, i, v)
    {
      (*out)[i].inside = (uint32_t) get_int (r, v, "inside", 0);
      (*out)[i].outside = (uint32_t) get_int (r, v, "outside", 0);
      (*out)[i].count = (uint32_t) get_int (r, v, "count", 0);
    }
  *n = json_array_size (a);
}

static void
read_process (struct reader *r, struct plan_process *pr, json_t *o)
{
  json_t *caps = json_object_get (o, "capabilities"), *groups = json_object_get (o, "additionalGids"), *v;
  size_t i;
  r->where = "process";
  if (!json_is_object (o))
    {
      bad (r, "", "an object");
      return;
    }
  pr->argv = get_strv (r, o, "args");
  pr->env = get_strv (r, o, "env");
  pr->cwd = get_str (r, o, "cwd", true);
  pr->user = get_str (r, o, "user", false);
  pr->uid = (uid_t) get_int (r, o, "uid", 0);
  pr->gid = (gid_t) get_int (r, o, "gid", 0);
  pr->tty = get_bool (r, o, "terminal");
  pr->stdin_open = get_bool (r, o, "stdin");
  pr->no_new_privs = get_bool (r, o, "noNewPrivileges");
  pr->init = get_bool (r, o, "init");
  pr->seccomp = get_bool (r, o, "seccomp");
  json_array_foreach (caps, i, v)
    if (json_is_integer (v) && json_integer_value (v) >= 0 && json_integer_value (v) < 64)
      pr->caps |= 1ULL << json_integer_value (v);
  if (json_is_array (groups) && json_array_size (groups) > 0)
    {
      pr->groups = xzalloc (json_array_size (groups) * sizeof *pr->groups);
      json_array_foreach (groups, i, v)
        pr->groups[pr->ngroups++] = (gid_t) json_integer_value (v);
    }
}

static void
read_root (struct reader *r, struct plan *p, json_t *o)
{
  static const char *const modes[] = { "bind", "ephemeral-overlay", "overlay" };
  cleanup_free char *mode = NULL;
  int m;
  r->where = "root";
  if (!json_is_object (o))
    {
      bad (r, "", "an object");
      return;
    }
  p->rootfs = get_str (r, o, "path", true);
  p->root_layers = get_strv (r, o, "layers");
  p->readonly = get_bool (r, o, "readonly");
  mode = get_str (r, o, "mode", true);
  m = str_index (modes, 3, mode);
  if (m < 0)
    {
      bad (r, "mode", "bind, ephemeral-overlay or overlay");
      return;
    }
  p->root_overlay = m > 0;
  if (m == 2)
    {
      p->root_upper = get_str (r, o, "upper", true);
      p->root_work = get_str (r, o, "work", true);
    }
}

/* what resources_json (plan.c) wrote */
static void
read_resources (struct reader *r, struct plan_resources *res, json_t *o)
{
  if (o == NULL)
    return;
  r->where = "resources";
  if (!json_is_object (o))
    {
      bad (r, "", "an object");
      return;
    }
  res->memory = get_int (r, o, "memory", 0);
  res->memory_reservation = get_int (r, o, "memoryReservation", 0);
  res->memory_swap = get_int (r, o, "memorySwap", 0);
  res->cpu_shares = (unsigned long long) get_int (r, o, "cpuShares", 0);
  res->cpu_quota = get_int (r, o, "cpuQuota", 0);
  res->cpu_period = (unsigned long long) get_int (r, o, "cpuPeriod", 0);
  res->nano_cpus = get_int (r, o, "nanoCpus", 0);
  res->cpuset_cpus = get_str (r, o, "cpusetCpus", false);
  res->cpuset_mems = get_str (r, o, "cpusetMems", false);
  res->pids_limit = get_int (r, o, "pidsLimit", 0);
  res->io_weight = (unsigned) get_int (r, o, "ioWeight", 0);
  res->cgroups_path = get_str (r, o, "cgroupsPath", false);
  res->want = get_bool (r, o, "want");
  r->where = "";
}

static void
read_plan (struct reader *r, struct plan *p, json_t *root)
{
  static const char *const nets[] = { "none", "host", "private", "container" };
  static const char *const nss[] = { "mount", "pid", "uts", "ipc", "network", "cgroup", "user", "time" };
  cleanup_free char *net = NULL;
  json_t *ops = json_object_get (root, "ops"), *ns = json_object_get (root, "namespaces"), *v;
  size_t i;
  int k;

  p->id = get_str (r, root, "id", false);
  p->image = get_str (r, root, "image", false);
  p->image_id = get_str (r, root, "image_id", false);
  {
    cleanup_free char *b = get_str (r, root, "backend", false);
    json_t *pr = json_object_get (root, "proot");
    json_t *vm = json_object_get (root, "vm");
    int kind = b ? plan_backend_kind (b) : BACKEND_NS;
    p->backend = kind < 0 ? BACKEND_NS : (enum backend_kind) kind;
    if (kind < 0)
      bad (r, "backend", "ns, proot or vm");
    if (json_is_object (vm))
      {
        json_t *mem = json_object_get (vm, "memory_mib");
        p->vm_engine = get_str (r, vm, "engine", false);
        p->vm_kernel = get_str (r, vm, "kernel", false);
        p->vm_kernel_release = get_str (r, vm, "kernel_release", false);
        p->vm_kernel_kind = get_str (r, vm, "kernel_kind", false);
        p->vm_accel = get_str (r, vm, "accel", false);
        if (json_is_integer (mem) && json_integer_value (mem) >= 0 && json_integer_value (mem) <= 1048576)
          p->vm_memory_mib = (unsigned) json_integer_value (mem);
        json_t *cpus = json_object_get (vm, "cpus");
        if (json_is_integer (cpus) && json_integer_value (cpus) >= 0 && json_integer_value (cpus) <= 255)
          p->vm_cpus = (unsigned) json_integer_value (cpus);
        p->vm_snapshot_off = json_is_false (json_object_get (vm, "snapshot"));
      }
    if (json_is_object (pr))
      {
        p->proot_path = get_str (r, pr, "path", false);
        p->kernel_release = get_str (r, pr, "kernel_release", false);
        p->root_copy = get_str (r, pr, "root_copy", false);
      }
  }
  p->labels = get_strv (r, root, "labels");
  p->exposed_ports = get_strv (r, root, "exposed_ports");
  p->volumes = get_strv (r, root, "volumes");
  p->ports = get_strv (r, root, "ports");
  p->hostname = get_str (r, root, "hostname", false);
  p->rootless = get_bool (r, root, "rootless");
  p->userns_mode = get_str (r, root, "usernsMode", false);
  if (p->userns_mode && strcmp (p->userns_mode, "auto") != 0 && strcmp (p->userns_mode, "keep-id") != 0)
    bad (r, "usernsMode", "auto or keep-id");
  p->privileged = get_bool (r, root, "privileged");
  net = get_str (r, root, "network", false);
  p->network = get_str (r, root, "network_name", false);
  p->dns = get_strv (r, root, "dns");
  p->add_hosts = get_strv (r, root, "add_hosts");
  p->network_aliases = get_strv (r, root, "network_aliases");
  p->networks_extra = get_strv (r, root, "networks_extra");
  p->net_aliases_of = get_strv (r, root, "net_aliases_of");
  {
    /* absent from plans saved before Landlock scoping existed: those containers run unscoped,
     * and so do the processes exec'd in them */
    cleanup_free char *ll = get_str (r, root, "landlock", false);
    if (ll && plan_landlock_parse (ll, &p->landlock, NULL) < 0)
      bad (r, "landlock", "off, auto, or a list of abstract-unix-socket and signal");
  }
  k = str_index (nets, 4, net ? net : "none");
  if (k < 0)
    bad (r, "network", "none, host, private or container");
  p->net = k < 0 ? NET_NONE : (enum net_mode) k;
  json_array_foreach (ns, i, v)
    if ((k = str_index (nss, 8, json_string_value (v))) >= 0)
      p->ns |= 1u << k;
  read_maps (r, json_object_get (root, "uidMappings"), &p->uid_map, &p->nuid_map);
  read_maps (r, json_object_get (root, "gidMappings"), &p->gid_map, &p->ngid_map);
  read_root (r, p, json_object_get (root, "root"));
  read_process (r, &p->process, json_object_get (root, "process"));
  read_resources (r, &p->res, json_object_get (root, "resources"));
  r->where = "ops";
  if (ops && !json_is_array (ops))
    bad (r, "", "an array");
  json_array_foreach (ops, i, v)
    {
      if (r->failed)
        break;
      if (!json_is_object (v))
        bad (r, "", "an array of objects");
      else
        read_op (r, p, v);
    }
}

int
plan_from_json (const char *text, struct plan **out, cella_error_t *err)
{
  struct reader r = { .err = err, .where = "" };
  json_error_t je;
  json_t *root = json_loads (text, 0, &je);
  struct plan *p;
  if (root == NULL || !json_is_object (root))
    {
      json_decref (root);
      return cella_error (err, 0, "saved plan: not JSON (line %d: %s)", je.line, je.text);
    }
  p = plan_new ();
  read_plan (&r, p, root);
  if (!r.failed && oci_plan_extras_from_json (root, p, err) < 0)
    r.failed = 1;
  json_decref (root);
  if (r.failed)
    {
      plan_free (p);
      return -1;
    }
  *out = p;
  return 0;
}
