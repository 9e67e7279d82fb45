/* config.json → plan. One function per section of the OCI runtime spec (config.md,
 * config-linux.md); each reads its JSON value, checks it and fills the plan. The first error
 * wins and names the JSON path: "config.json: linux.resources.memory.limit: must be an integer".
 * The loader has no side effects: the bundle's config.json is read, nothing is created.
 *
 * A saved plan keeps these additions in the same OCI form (oci_plan_extras_to_json), read back
 * by the same functions, so what is checked here is what a reloaded plan holds. */
#define _GNU_SOURCE
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

struct rd {
  const char *what; /* "config.json", "saved plan" */
  cella_error_t *err;
  bool failed;
  char ***warnings; /* where warn() puts what is accepted but dropped; NULL: nowhere */
};

static int __attribute__ ((format (printf, 3, 4))) fail (struct rd *r, const char *path, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;
  if (r->failed)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  r->failed = true;
  return cella_error (r->err, 0, "%s: %s: %s", r->what, path, msg ? msg : "invalid");
}

/* A value runc and crun accept with a warning and leave out (runtime-spec: "SHOULD log a warning"). */
static void __attribute__ ((format (printf, 3, 4))) warn (struct rd *r, const char *path, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;
  cleanup_free char *line = NULL;
  if (r->warnings == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  line = xasprintf ("%s: %s: %s", r->what, path, msg ? msg : "ignored");
  strv_push (r->warnings, line);
}

static char *
key_path (const char *base, const char *key)
{
  return *base ? xasprintf ("%s.%s", base, key) : xstrdup (key);
}

static char *
idx_path (const char *base, size_t i)
{
  return xasprintf ("%s[%zu]", base, i);
}

/* ---- typed getters: absent → default, wrong type → error naming base.key ---- */

static int
get_obj (struct rd *r, json_t *o, const char *base, const char *key, json_t **out)
{
  json_t *v = json_object_get (o, key);
  *out = NULL;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_object (v))
    {
      cleanup_free char *p = key_path (base, key);
      return fail (r, p, "must be an object");
    }
  *out = v;
  return 0;
}

static int
get_arr (struct rd *r, json_t *o, const char *base, const char *key, json_t **out)
{
  json_t *v = json_object_get (o, key);
  *out = NULL;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_array (v))
    {
      cleanup_free char *p = key_path (base, key);
      return fail (r, p, "must be an array");
    }
  *out = v;
  return 0;
}

/* *out is borrowed from the JSON (NULL when absent). */
static int
get_str (struct rd *r, json_t *o, const char *base, const char *key, const char **out)
{
  json_t *v = json_object_get (o, key);
  *out = NULL;
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_string (v))
    {
      cleanup_free char *p = key_path (base, key);
      return fail (r, p, "must be a string");
    }
  *out = json_string_value (v);
  return 0;
}

static int
get_bool (struct rd *r, json_t *o, const char *base, const char *key, bool *out)
{
  json_t *v = json_object_get (o, key);
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_boolean (v))
    {
      cleanup_free char *p = key_path (base, key);
      return fail (r, p, "must be true or false");
    }
  *out = json_is_true (v);
  return 0;
}

/* 1 when present, 0 when absent, -1 on error */
static int
get_int (struct rd *r, json_t *o, const char *base, const char *key, long long min, long long max, long long *out)
{
  json_t *v = json_object_get (o, key);
  cleanup_free char *p = NULL;
  if (v == NULL || json_is_null (v))
    return 0;
  p = key_path (base, key);
  if (!json_is_integer (v))
    return fail (r, p, "must be an integer");
  if (json_integer_value (v) < min || json_integer_value (v) > max)
    return fail (r, p, "must be between %lld and %lld", min, max);
  *out = json_integer_value (v);
  return 1;
}

/* unsigned 64-bit values arrive as integers (jansson reads up to LLONG_MAX) */
static int
get_u64 (struct rd *r, json_t *o, const char *base, const char *key, unsigned long long *out)
{
  long long v;
  int k = get_int (r, o, base, key, 0, LLONG_MAX, &v);
  if (k > 0)
    *out = (unsigned long long) v;
  return k;
}

static int
get_strv (struct rd *r, json_t *o, const char *base, const char *key, char ***out)
{
  json_t *a, *v;
  size_t i;
  if (get_arr (r, o, base, key, &a) < 0)
    return -1;
  if (a == NULL)
    return 0;
  *out = strv_new (json_array_size (a));
  json_array_foreach (a, i, v)
    {
      if (!json_is_string (v))
        {
          cleanup_free char *p = key_path (base, key);
          cleanup_free char *pi = idx_path (p, i);
          return fail (r, pi, "must be a string");
        }
      (*out)[i] = xstrdup (json_string_value (v));
    }
  return 0;
}

/* ---- names shared with the writer ---- */

static const char *const rlimit_names[RLIM_NLIMITS] = {
  [RLIMIT_CPU] = "RLIMIT_CPU",           [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
  [RLIMIT_DATA] = "RLIMIT_DATA",         [RLIMIT_STACK] = "RLIMIT_STACK",
  [RLIMIT_CORE] = "RLIMIT_CORE",         [RLIMIT_RSS] = "RLIMIT_RSS",
  [RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
  [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",   [RLIMIT_AS] = "RLIMIT_AS",
  [RLIMIT_LOCKS] = "RLIMIT_LOCKS",       [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
  [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
  [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",     [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

static const char *const ns_names[PLAN_NS_COUNT]
    = { "mount", "pid", "uts", "ipc", "network", "cgroup", "user", "time" };

const char *
plan_ns_name (unsigned bit_index)
{
  return bit_index < PLAN_NS_COUNT ? ns_names[bit_index] : "?";
}

static const char *const hook_names[HOOK__COUNT] = {
  [HOOK_PRESTART] = "prestart",
  [HOOK_CREATE_RUNTIME] = "createRuntime",
  [HOOK_CREATE_CONTAINER] = "createContainer",
  [HOOK_START_CONTAINER] = "startContainer",
  [HOOK_POSTSTART] = "poststart",
  [HOOK_POSTSTOP] = "poststop",
};

const char *
plan_hook_name (enum plan_hook_kind k)
{
  return k < HOOK__COUNT ? hook_names[k] : "?";
}

static const char *const prop_names[PROP__COUNT] = {
  [PROP_PRIVATE] = "private",       [PROP_RPRIVATE] = "rprivate",       [PROP_SLAVE] = "slave",
  [PROP_RSLAVE] = "rslave",         [PROP_SHARED] = "shared",           [PROP_RSHARED] = "rshared",
  [PROP_UNBINDABLE] = "unbindable", [PROP_RUNBINDABLE] = "runbindable",
};

const char *
plan_propagation_name (enum plan_propagation p)
{
  return p < PROP__COUNT ? prop_names[p] : NULL;
}

static const char *const action_names[SCMPA__COUNT] = {
  [SCMPA_KILL] = "SCMP_ACT_KILL",
  [SCMPA_KILL_PROCESS] = "SCMP_ACT_KILL_PROCESS",
  [SCMPA_KILL_THREAD] = "SCMP_ACT_KILL_THREAD",
  [SCMPA_TRAP] = "SCMP_ACT_TRAP",
  [SCMPA_ERRNO] = "SCMP_ACT_ERRNO",
  [SCMPA_TRACE] = "SCMP_ACT_TRACE",
  [SCMPA_ALLOW] = "SCMP_ACT_ALLOW",
  [SCMPA_LOG] = "SCMP_ACT_LOG",
  [SCMPA_NOTIFY] = "SCMP_ACT_NOTIFY",
};

const char *
plan_scmp_action_name (enum plan_scmp_action a)
{
  return a < SCMPA__COUNT ? action_names[a] : "?";
}

static const char *const op_names[SCMPO__COUNT] = {
  [SCMPO_NE] = "SCMP_CMP_NE",
  [SCMPO_LT] = "SCMP_CMP_LT",
  [SCMPO_LE] = "SCMP_CMP_LE",
  [SCMPO_EQ] = "SCMP_CMP_EQ",
  [SCMPO_GE] = "SCMP_CMP_GE",
  [SCMPO_GT] = "SCMP_CMP_GT",
  [SCMPO_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
};

const char *
plan_scmp_op_name (enum plan_scmp_op o)
{
  return o < SCMPO__COUNT ? op_names[o] : "?";
}

static const char *const seccomp_flags[]
    = { "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW" };

/* ---- process ---- */

static int
read_rlimits (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  json_t *a, *v;
  size_t i;
  cleanup_free char *p = key_path (base, "rlimits");
  if (get_arr (r, pro, base, "rlimits", &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  pr->rlimits = xzalloc ((json_array_size (a) + 1) * sizeof *pr->rlimits);
  json_array_foreach (a, i, v)
    {
      cleanup_free char *pi = idx_path (p, i);
      const char *type = NULL;
      struct plan_rlimit *rl = &pr->rlimits[pr->nrlimits];
      int k;
      if (!json_is_object (v))
        return fail (r, pi, "must be an object");
      if (get_str (r, v, pi, "type", &type) < 0)
        return -1;
      k = str_index (rlimit_names, RLIM_NLIMITS, type);
      if (k < 0)
        {
          cleanup_free char *pt = key_path (pi, "type");
          return type ? fail (r, pt, "unknown resource limit `%s`", type) : fail (r, pt, "is required");
        }
      for (size_t j = 0; j < pr->nrlimits; j++)
        if (pr->rlimits[j].resource == k)
          return fail (r, pi, "%s given twice", type);
      rl->resource = k;
      if (get_u64 (r, v, pi, "soft", &rl->soft) <= 0 || get_u64 (r, v, pi, "hard", &rl->hard) <= 0)
        return r->failed ? -1 : fail (r, pi, "needs soft and hard");
      if (rl->soft > rl->hard)
        return fail (r, pi, "soft limit %llu is above the hard limit %llu", rl->soft, rl->hard);
      pr->nrlimits++;
    }
  return 0;
}

static int
cap_set_from (struct rd *r, json_t *caps, const char *base, const char *key, uint64_t *out)
{
  json_t *a, *v;
  size_t i;
  cleanup_free char *p = key_path (base, key);
  *out = 0;
  if (get_arr (r, caps, base, key, &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  json_array_foreach (a, i, v)
    {
      cleanup_free char *pi = idx_path (p, i);
      cap_value_t c;
      if (!json_is_string (v))
        return fail (r, pi, "must be a string");
      /* runtime-spec 1.1: an unknown name is logged and ignored (a newer config on an older host) */
      if (strncmp (json_string_value (v), "CAP_", 4) != 0 || cap_from_name (json_string_value (v), &c) < 0)
        {
          warn (r, pi, "unknown capability `%s`: ignored", json_string_value (v));
          continue;
        }
      /* a capability this kernel does not know cannot be held: left out, as runc does */
      if (c >= 0 && c < 64)
        *out |= UINT64_C (1) << c;
    }
  return 0;
}

/* "CAP_A, CAP_B" for the capabilities in set */
static char *
caps_names (uint64_t set)
{
  char *out = xstrdup ("");
  for (int c = 0; c < 64; c++)
    if (set & (UINT64_C (1) << c))
      {
        char *name = cap_to_name (c), *n;
        cleanup_free char *up = xstrdup (name ? name : "?");
        cap_free (name);
        for (char *q = up; *q; q++)
          *q = (char) (*q >= 'a' && *q <= 'z' ? *q - 'a' + 'A' : *q);
        n = xasprintf ("%s%s%s", out, *out ? ", " : "", up);
        free (out);
        out = n;
      }
  return out;
}

static int
read_caps (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  json_t *caps;
  cleanup_free char *p = key_path (base, "capabilities");
  struct plan_capsets *s = &pr->capsets;
  if (get_obj (r, pro, base, "capabilities", &caps) < 0)
    return -1;
  s->set = true; /* absent: no capabilities at all (runc) */
  if (caps == NULL)
    return 0;
  if (cap_set_from (r, caps, p, "bounding", &s->bounding) < 0
      || cap_set_from (r, caps, p, "effective", &s->effective) < 0
      || cap_set_from (r, caps, p, "permitted", &s->permitted) < 0
      || cap_set_from (r, caps, p, "inheritable", &s->inheritable) < 0
      || cap_set_from (r, caps, p, "ambient", &s->ambient) < 0)
    return -1;
  if (s->ambient & ~(s->permitted & s->inheritable))
    {
      /* the kernel refuses such an ambient capability; runc warns and leaves it out (buildah asks
       * for ambient capabilities that are not inheritable on every RUN step) */
      cleanup_free char *pa = key_path (p, "ambient");
      cleanup_free char *names = caps_names (s->ambient & ~(s->permitted & s->inheritable));
      warn (r, pa, "%s: not also permitted and inheritable, so the kernel would refuse it: left out", names);
      s->ambient &= s->permitted & s->inheritable;
    }
  pr->caps = s->bounding;
  return 0;
}

static int
read_user (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  json_t *u, *g, *v;
  long long uid = 0, gid = 0, umask_ = 0;
  size_t i;
  cleanup_free char *p = key_path (base, "user");
  if (get_obj (r, pro, base, "user", &u) < 0)
    return -1;
  if (u == NULL)
    return 0;
  if (get_int (r, u, p, "uid", 0, UINT32_MAX - 1, &uid) < 0 || get_int (r, u, p, "gid", 0, UINT32_MAX - 1, &gid) < 0)
    return -1;
  switch (get_int (r, u, p, "umask", 0, 0777, &umask_))
    {
    case -1:
      return -1;
    case 1:
      pr->has_umask = true;
      pr->umask = (mode_t) umask_;
      break;
    default:
      break;
    }
  pr->uid = (uid_t) uid;
  pr->gid = (gid_t) gid;
  free (pr->user);
  pr->user = xasprintf ("%lld:%lld", uid, gid);
  if (get_arr (r, u, p, "additionalGids", &g) < 0)
    return -1;
  if (g && json_array_size (g))
    {
      cleanup_free char *pg = key_path (p, "additionalGids");
      free (pr->groups);
      pr->groups = xzalloc (json_array_size (g) * sizeof *pr->groups);
      pr->ngroups = 0;
      json_array_foreach (g, i, v)
        {
          cleanup_free char *pi = idx_path (pg, i);
          if (!json_is_integer (v) || json_integer_value (v) < 0 || json_integer_value (v) >= UINT32_MAX)
            return fail (r, pi, "must be a group id (an integer)");
          pr->groups[pr->ngroups++] = (gid_t) json_integer_value (v);
        }
    }
  return 0;
}

static bool
host_has (const char *path)
{
  return access (path, F_OK) == 0;
}

static int
read_lsm (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  const char *aa = NULL, *se = NULL;
  if (get_str (r, pro, base, "apparmorProfile", &aa) < 0 || get_str (r, pro, base, "selinuxLabel", &se) < 0)
    return -1;
  if (aa && *aa)
    {
      cleanup_free char *p = key_path (base, "apparmorProfile");
      if (!host_has ("/sys/kernel/security/apparmor"))
        return fail (r, p, "`%s`: this host has no AppArmor", aa);
      pr->apparmor_profile = xstrdup (aa);
    }
  if (se && *se)
    {
      cleanup_free char *p = key_path (base, "selinuxLabel");
      if (!host_has ("/sys/fs/selinux/enforce"))
        return fail (r, p, "`%s`: this host has no SELinux", se);
      pr->selinux_label = xstrdup (se);
    }
  return 0;
}

/* The process fields that a saved plan keeps in OCI form too (extras): rlimits, caps, umask ... */
static int
read_process_extras (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  json_t *cs;
  long long v;
  if (read_rlimits (r, pro, base, pr) < 0 || read_lsm (r, pro, base, pr) < 0)
    return -1;
  switch (get_int (r, pro, base, "oomScoreAdj", -1000, 1000, &v))
    {
    case -1:
      return -1;
    case 1:
      pr->has_oom_score_adj = true;
      pr->oom_score_adj = (int) v;
      break;
    default:
      break;
    }
  if (get_obj (r, pro, base, "consoleSize", &cs) < 0)
    return -1;
  if (cs)
    {
      cleanup_free char *p = key_path (base, "consoleSize");
      long long h = 0, w = 0;
      if (get_int (r, cs, p, "height", 0, 65535, &h) < 0 || get_int (r, cs, p, "width", 0, 65535, &w) < 0)
        return -1;
      pr->console_height = (unsigned) h;
      pr->console_width = (unsigned) w;
    }
  return 0;
}

static int
read_process (struct rd *r, json_t *pro, const char *base, struct plan_process *pr)
{
  const char *cwd = NULL;
  static const char *const unsupported[] = { "ioPriority", "scheduler", "execCPUAffinity" };
  if (get_strv (r, pro, base, "args", &pr->argv) < 0 || get_strv (r, pro, base, "env", &pr->env) < 0
      || get_str (r, pro, base, "cwd", &cwd) < 0 || get_bool (r, pro, base, "terminal", &pr->tty) < 0
      || get_bool (r, pro, base, "noNewPrivileges", &pr->no_new_privs) < 0)
    return -1;
  if (pr->argv == NULL || pr->argv[0] == NULL)
    {
      cleanup_free char *p = key_path (base, "args");
      return fail (r, p, "must name the program to run");
    }
  for (size_t i = 0; pr->env && pr->env[i]; i++)
    if (strchr (pr->env[i], '=') == NULL)
      {
        cleanup_free char *p = key_path (base, "env");
        cleanup_free char *pi = idx_path (p, i);
        return fail (r, pi, "`%s`: must be KEY=VALUE", pr->env[i]);
      }
  if (cwd == NULL || cwd[0] != '/')
    {
      cleanup_free char *p = key_path (base, "cwd");
      return fail (r, p, cwd ? "`%s`: must be an absolute path" : "is required%s", cwd ? cwd : "");
    }
  pr->cwd = xstrdup (cwd);
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
    if (json_object_get (pro, unsupported[i]))
      {
        cleanup_free char *p = key_path (base, unsupported[i]);
        return fail (r, p, "not supported");
      }
  /* OCI stdio is the caller's as is */
  pr->stdin_open = true;
  if (read_user (r, pro, base, pr) < 0 || read_caps (r, pro, base, pr) < 0)
    return -1;
  return read_process_extras (r, pro, base, pr);
}

/* ---- mounts ---- */

enum opt_kind {
  OPT_ATTR,
  OPT_NOT_ATTR,
  OPT_BIND,
  OPT_RBIND,
  OPT_PROP,
  OPT_COPYUP,
  OPT_IGNORE,
  OPT_IDMAP,
  OPT_ATIME,
  OPT_DIRATIME,
  OPT_SB
};

static const struct mount_opt {
  const char *name;
  enum opt_kind kind;
  unsigned value; /* REMOUNT_* for attrs; propagation */
} mount_opts[] = {
  { "ro", OPT_ATTR, REMOUNT_RDONLY },
  { "rw", OPT_NOT_ATTR, REMOUNT_RDONLY },
  { "nosuid", OPT_ATTR, REMOUNT_NOSUID },
  { "suid", OPT_NOT_ATTR, REMOUNT_NOSUID },
  { "nodev", OPT_ATTR, REMOUNT_NODEV },
  { "dev", OPT_NOT_ATTR, REMOUNT_NODEV },
  { "noexec", OPT_ATTR, REMOUNT_NOEXEC },
  { "exec", OPT_NOT_ATTR, REMOUNT_NOEXEC },
  { "bind", OPT_BIND, 0 },
  { "rbind", OPT_RBIND, 0 },
  { "private", OPT_PROP, PROP_PRIVATE },
  { "rprivate", OPT_PROP, PROP_RPRIVATE },
  { "slave", OPT_PROP, PROP_SLAVE },
  { "rslave", OPT_PROP, PROP_RSLAVE },
  { "shared", OPT_PROP, PROP_SHARED },
  { "rshared", OPT_PROP, PROP_RSHARED },
  { "unbindable", OPT_PROP, PROP_UNBINDABLE },
  { "runbindable", OPT_PROP, PROP_RUNBINDABLE },
  { "tmpcopyup", OPT_COPYUP, 0 },
  /* the atime mode (relatime unless asked), on binds and filesystems alike */
  { "atime", OPT_ATIME, 0 },
  { "relatime", OPT_ATIME, 0 },
  { "norelatime", OPT_ATIME, 0 },
  { "nostrictatime", OPT_ATIME, 0 },
  { "noatime", OPT_ATIME, MOUNTF_NOATIME },
  { "strictatime", OPT_ATIME, MOUNTF_STRICTATIME },
  { "diratime", OPT_DIRATIME, 0 },
  { "nodiratime", OPT_DIRATIME, MOUNTF_NODIRATIME },
  /* superblock flags: a new filesystem gets them; a bind shares its source's superblock, so
   * there they change nothing (as with runc) */
  { "sync", OPT_SB, 1 },
  { "async", OPT_SB, 0 },
  { "dirsync", OPT_SB, 2 },
  { "defaults", OPT_IGNORE, 0 },
  { "mand", OPT_IGNORE, 0 },
  { "nomand", OPT_IGNORE, 0 },
  /* change nothing a container can see: accepted, not applied (mount(2) itself ignores the last two) */
  { "lazytime", OPT_IGNORE, 0 },
  { "nolazytime", OPT_IGNORE, 0 },
  { "iversion", OPT_IGNORE, 0 },
  { "noiversion", OPT_IGNORE, 0 },
  { "silent", OPT_IGNORE, 0 },
  { "loud", OPT_IGNORE, 0 },
  { "idmap", OPT_IDMAP, 1 },
  { "ridmap", OPT_IDMAP, 2 },
};

json_t *
oci_mount_option_names (void)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < sizeof mount_opts / sizeof mount_opts[0]; i++)
    json_array_append_new (a, json_string (mount_opts[i].name));
  return a;
}

/* bare words a filesystem takes as data (not mount flags) */
static bool
fs_takes_flag (const char *type, const char *word)
{
  if (strcmp (type, "devpts") == 0)
    return strcmp (word, "newinstance") == 0;
  if (strcmp (type, "cgroup") == 0 || strcmp (type, "cgroup2") == 0)
    return true; /* controller names, nsdelegate ... */
  if (strcmp (type, "overlay") == 0)
    return strcmp (word, "userxattr") == 0 || strcmp (word, "volatile") == 0;
  return false;
}

struct mount_spec {
  unsigned attrs, not_attrs;
  unsigned atime; /* MOUNTF_* */
  bool sync, dirsync;
  bool bind, rbind, copyup;
  int idmap;                        /* 1 idmap, 2 ridmap */
  struct id_map *uid_map, *gid_map; /* the mount's own uidMappings/gidMappings */
  size_t nuid_map, ngid_map;
  enum plan_propagation prop;
  char **data; /* key=value and fs words */
  long long size;
  mode_t mode;
};

static long long
tmpfs_size (const char *s)
{
  char *end;
  unsigned long long v;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || end == s)
    return -1;
  switch (*end)
    {
    case 'k':
    case 'K':
      v <<= 10, end++;
      break;
    case 'm':
    case 'M':
      v <<= 20, end++;
      break;
    case 'g':
    case 'G':
      v <<= 30, end++;
      break;
    default:
      break;
    }
  return *end || v > LLONG_MAX ? -1 : (long long) v;
}

static int
read_mount_options (struct rd *r, json_t *m, const char *base, const char *type, struct mount_spec *ms)
{
  cleanup_strv char **opts = NULL;
  cleanup_free char *p = key_path (base, "options");
  if (get_strv (r, m, base, "options", &opts) < 0)
    return -1;
  for (size_t i = 0; opts && opts[i]; i++)
    {
      const char *o = opts[i], *eq = strchr (o, '=');
      cleanup_free char *pi = idx_path (p, i);
      size_t j;
      if (eq)
        {
          bool tmpfs = strcmp (type, "tmpfs") == 0;
          if (strcmp (type, "proc") == 0 || strcmp (type, "sysfs") == 0)
            return fail (r, pi, "unknown option `%s` for a %s mount", o, type);
          if (tmpfs && strncmp (o, "size=", 5) == 0 && !strchr (o, '%'))
            {
              if ((ms->size = tmpfs_size (o + 5)) < 0)
                return fail (r, pi, "`%s`: size must be a number of bytes (with k, m or g)", o);
              continue;
            }
          if (tmpfs && strncmp (o, "mode=", 5) == 0)
            {
              char *end;
              unsigned long v = strtoul (o + 5, &end, 8);
              if (*end || end == o + 5 || v > 07777)
                return fail (r, pi, "`%s`: mode must be octal", o);
              ms->mode = (mode_t) v;
              continue;
            }
          strv_push (&ms->data, o);
          continue;
        }
      for (j = 0; j < sizeof mount_opts / sizeof mount_opts[0]; j++)
        if (strcmp (mount_opts[j].name, o) == 0)
          break;
      if (j == sizeof mount_opts / sizeof mount_opts[0])
        {
          if (fs_takes_flag (type, o))
            {
              strv_push (&ms->data, o);
              continue;
            }
          return fail (r, pi, "unknown option `%s`", o);
        }
      switch (mount_opts[j].kind)
        {
        case OPT_ATTR:
          ms->attrs |= mount_opts[j].value;
          ms->not_attrs &= ~mount_opts[j].value;
          break;
        case OPT_NOT_ATTR:
          ms->not_attrs |= mount_opts[j].value;
          ms->attrs &= ~mount_opts[j].value;
          break;
        case OPT_BIND:
          ms->bind = true;
          break;
        case OPT_RBIND:
          ms->bind = ms->rbind = true;
          break;
        case OPT_PROP:
          ms->prop = (enum plan_propagation) mount_opts[j].value;
          break;
        case OPT_COPYUP:
          ms->copyup = true;
          break;
        case OPT_IDMAP:
          ms->idmap = (int) mount_opts[j].value;
          break;
        case OPT_ATIME:
          ms->atime = (ms->atime & ~(unsigned) (MOUNTF_NOATIME | MOUNTF_STRICTATIME)) | mount_opts[j].value;
          break;
        case OPT_DIRATIME:
          ms->atime = (ms->atime & ~(unsigned) MOUNTF_NODIRATIME) | mount_opts[j].value;
          break;
        case OPT_SB:
          if (mount_opts[j].value == 2)
            ms->dirsync = true;
          else
            ms->sync = mount_opts[j].value == 1;
          break;
        case OPT_IGNORE:
        default:
          break;
        }
    }
  return 0;
}

static struct op *
find_dev_op (struct plan *p)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_DEV && strcmp (p->ops[i].target, "/dev") == 0)
      return &p->ops[i];
  return NULL;
}

/* An idmapped bind: the mount's own mappings, else the container's user namespace's. */
static int
set_idmap (struct rd *r, struct plan *p, const char *pi, struct op *op, struct mount_spec *ms)
{
  if (ms->idmap == 0 && ms->nuid_map == 0 && ms->ngid_map == 0)
    return 0;
  if ((ms->nuid_map == 0) != (ms->ngid_map == 0))
    return fail (r, pi, "an idmapped mount needs both uidMappings and gidMappings");
  if (ms->nuid_map)
    {
      op->idmap_uid = steal_pointer (&ms->uid_map);
      op->idmap_gid = steal_pointer (&ms->gid_map);
      op->nidmap_uid = ms->nuid_map;
      op->nidmap_gid = ms->ngid_map;
    }
  else
    {
      if (!(p->ns & PLAN_NS_USER))
        return fail (r, pi, "idmap without uidMappings and gidMappings on the mount needs a new user namespace");
      op->idmap_uid = xmalloc (p->nuid_map * sizeof *op->idmap_uid);
      op->idmap_gid = xmalloc (p->ngid_map * sizeof *op->idmap_gid);
      memcpy (op->idmap_uid, p->uid_map, p->nuid_map * sizeof *op->idmap_uid);
      memcpy (op->idmap_gid, p->gid_map, p->ngid_map * sizeof *op->idmap_gid);
      op->nidmap_uid = p->nuid_map;
      op->nidmap_gid = p->ngid_map;
    }
  op->idmap_recursive = ms->idmap == 2 || (op->flags & BIND_RECURSIVE);
  return 0;
}

static int
add_bind_mount (struct rd *r, struct plan *p, const char *pi, const char *dest, const char *source,
                struct mount_spec *ms)
{
  cleanup_free char *src = NULL;
  unsigned flags = 0;
  struct op *op;
  if (source == NULL || *source == '\0')
    {
      cleanup_free char *ps = key_path (pi, "source");
      return fail (r, ps, "a bind mount needs a source");
    }
  /* a relative source is relative to the bundle (runc runs in it) */
  src = source[0] == '/' || p->bundle == NULL ? xstrdup (source) : xasprintf ("%s/%s", p->bundle, source);
  if (!(ms->attrs & REMOUNT_RDONLY))
    flags |= BIND_WRITABLE;
  if (!(ms->attrs & REMOUNT_NODEV))
    flags |= BIND_DEVICE;
  if (ms->attrs & REMOUNT_NOSUID)
    flags |= BIND_NOSUID;
  if (ms->attrs & REMOUNT_NOEXEC)
    flags |= BIND_NOEXEC;
  if (ms->rbind)
    flags |= BIND_RECURSIVE;
  flags |= ms->atime;
  /* data options (mode=755 ...) mean nothing to a bind mount: mount(2) ignores them with
   * MS_BIND, and so do runc and crun */
  if (ms->copyup)
    {
      cleanup_free char *po = key_path (pi, "options");
      return fail (r, po, "tmpcopyup is for tmpfs mounts");
    }
  op = plan_add_bind (p, src, dest, flags);
  op->propagation = ms->prop;
  return set_idmap (r, p, pi, op, ms);
}

/* An OCI config's own /dev/pts or /dev/mqueue under a dev op's /dev: the dev op only makes its
 * directory, the config's entry mounts it (one mount per mount point, in the config's order). */
static void
dev_mounted_later (struct plan *p, const char *dest, const char *type)
{
  static const struct {
    const char *dest, *type;
    unsigned bit;
  } sub[] = {
    { "/dev/pts", "devpts", PLAN_DEV_PTS },
    { "/dev/mqueue", "mqueue", PLAN_DEV_MQUEUE },
  };
  struct op *dev = find_dev_op (p);
  for (size_t i = 0; dev && i < sizeof sub / sizeof sub[0]; i++)
    if (strcmp (dest, sub[i].dest) == 0 && strcmp (type, sub[i].type) == 0)
      dev->dev_later |= sub[i].bit;
}

/* sync and dirsync as the new filesystem's flags (fsconfig), after its data options */
static void
push_sb_flags (struct mount_spec *ms)
{
  if (ms->sync)
    strv_push (&ms->data, "sync");
  if (ms->dirsync)
    strv_push (&ms->data, "dirsync");
}

/* An overlay from the config (podman's --mount type=image, a read-only one with lowerdir only):
 * its directories are host paths, opened before the root is built (src/ns/mount_ops.c). */
static int
check_overlay_options (struct rd *r, const char *pi, char *const *data)
{
  bool lower = false, upper = false, work = false;
  cleanup_free char *po = key_path (pi, "options");
  for (size_t i = 0; data && data[i]; i++)
    {
      const char *o = data[i];
      const char *v = strchr (o, '=');
      if (strncmp (o, "lowerdir=", 9) == 0)
        lower = true;
      else if (strncmp (o, "upperdir=", 9) == 0)
        upper = true;
      else if (strncmp (o, "workdir=", 8) == 0)
        work = true;
      else
        continue;
      for (const char *d = v + 1; d && *d; d = strchr (d, ':') ? strchr (d, ':') + 1 : NULL)
        if (*d != '/')
          return fail (r, po, "`%s`: overlay directories must be absolute host paths", o);
    }
  if (!lower)
    return fail (r, po, "an overlay mount needs lowerdir=");
  if (upper != work)
    return fail (r, po, "an overlay mount needs both upperdir= and workdir=, or neither");
  return 0;
}

static int
add_fs_mount (struct rd *r, struct plan *p, const char *pi, const char *dest, const char *type, const char *source,
              struct mount_spec *ms)
{
  struct op *op;
  if (ms->idmap || ms->nuid_map || ms->ngid_map)
    return fail (r, pi, "idmapped mounts are for bind mounts only");
  if (ms->copyup && strcmp (type, "tmpfs") != 0)
    {
      cleanup_free char *po = key_path (pi, "options");
      return fail (r, po, "tmpcopyup is for tmpfs mounts");
    }
  if (strcmp (type, "proc") == 0)
    op = plan_add_op (p, OP_PROC, dest);
  else if (strcmp (type, "sysfs") == 0)
    op = plan_add_op (p, OP_SYSFS, dest);
  else if (strcmp (type, "tmpfs") == 0 && strcmp (dest, "/dev") == 0 && ms->data == NULL)
    {
      /* /dev: the minimal dev op also makes the devices and links the spec requires */
      op = plan_add_op (p, OP_DEV, dest);
      op->size = ms->size;
      op->dev_writable = !(ms->attrs & REMOUNT_RDONLY);
      op->flags = ms->atime;
      op->dev_no_shm = true; /* /dev/shm is the config's to give (podman --ipc=none gives none) */
      op->source = source && *source ? xstrdup (source) : NULL;
      return 0;
    }
  else if (strcmp (type, "tmpfs") == 0)
    {
      op = plan_add_tmpfs (p, dest, ms->size, ms->mode);
      op->tmpcopyup = ms->copyup;
      push_sb_flags (ms);
      op->fsopts = steal_pointer (&ms->data);
    }
  else if (strcmp (type, "cgroup") == 0 || strcmp (type, "cgroup2") == 0)
    {
      /* the container's own cgroups, in the host's layout (v1, v2 or hybrid), as runc and crun
       * do (src/ns/cgroup_mount.c); the options are the host's */
      op = plan_add_op (p, OP_MOUNT, dest);
      op->fstype = xstrdup ("cgroup");
      op->flags = ms->attrs & REMOUNT_RDONLY;
      op->propagation = ms->prop;
      return 0;
    }
  else if (strcmp (type, "devpts") == 0 || strcmp (type, "mqueue") == 0 || strcmp (type, "overlay") == 0)
    {
      if (strcmp (type, "overlay") == 0 && check_overlay_options (r, pi, ms->data) < 0)
        return -1;
      op = plan_add_op (p, OP_MOUNT, dest);
      op->fstype = xstrdup (type);
      push_sb_flags (ms);
      op->fsopts = steal_pointer (&ms->data);
    }
  else
    {
      cleanup_free char *pt = key_path (pi, "type");
      return fail (
          r, pt,
          "mount type `%s` is not supported (bind, proc, sysfs, tmpfs, devpts, mqueue, cgroup, cgroup2, overlay)",
          type);
    }
  op->flags = ms->attrs | ms->atime;
  op->propagation = ms->prop;
  /* what mountinfo shows as the source, as with runc's mount(2) */
  op->source = source && *source ? xstrdup (source) : NULL;
  dev_mounted_later (p, dest, type);
  return 0;
}

static int read_idmaps (struct rd *r, json_t *lx, const char *base, const char *key, struct id_map **out, size_t *n);

static int
read_mounts (struct rd *r, json_t *root, struct plan *p)
{
  json_t *a, *m;
  size_t i;
  if (get_arr (r, root, "", "mounts", &a) < 0)
    return -1;
  json_array_foreach (a, i, m)
    {
      cleanup_free char *pi = idx_path ("mounts", i);
      struct mount_spec ms = { 0 };
      const char *dest = NULL, *type = NULL, *source = NULL;
      cleanup_free char *clean = NULL;
      int rc;
      if (!json_is_object (m))
        return fail (r, pi, "must be an object");
      if (get_str (r, m, pi, "destination", &dest) < 0 || get_str (r, m, pi, "type", &type) < 0
          || get_str (r, m, pi, "source", &source) < 0)
        return -1;
      if (!path_is_clean_abs (dest))
        {
          cleanup_free char *pd = key_path (pi, "destination");
          return fail (r, pd, dest ? "`%s`: must be an absolute path without `..`" : "is required%s", dest ? dest : "");
        }
      dest = clean = path_clean (dest); /* runc cleans it the same way */
      if (type == NULL || *type == '\0' || strcmp (type, "none") == 0)
        type = "bind";
      if (read_idmaps (r, m, pi, "uidMappings", &ms.uid_map, &ms.nuid_map) < 0
          || read_idmaps (r, m, pi, "gidMappings", &ms.gid_map, &ms.ngid_map) < 0
          || read_mount_options (r, m, pi, type, &ms) < 0)
        rc = -1;
      else if (ms.bind || strcmp (type, "bind") == 0)
        rc = add_bind_mount (r, p, pi, dest, source, &ms);
      else
        rc = add_fs_mount (r, p, pi, dest, type, source, &ms);
      strv_free (ms.data);
      free (ms.uid_map);
      free (ms.gid_map);
      if (rc < 0)
        return -1;
    }
  return 0;
}

/* ---- hooks ---- */

/* A hook that is refused is not counted in nhooks, so plan_free does not see it: free what it
 * got so far. Returns -1. */
static int
hook_clear (struct plan_hook *h)
{
  strv_free (h->args);
  strv_free (h->env);
  h->args = h->env = NULL;
  return -1;
}

static int
read_hook (struct rd *r, json_t *h, const char *pi, struct plan_hook *out)
{
  const char *path = NULL;
  long long t = 0;
  if (!json_is_object (h))
    return fail (r, pi, "must be an object");
  if (get_str (r, h, pi, "path", &path) < 0 || get_strv (r, h, pi, "args", &out->args) < 0
      || get_strv (r, h, pi, "env", &out->env) < 0 || get_int (r, h, pi, "timeout", 1, INT_MAX, &t) < 0)
    return hook_clear (out);
  if (path == NULL || path[0] != '/')
    {
      cleanup_free char *pp = key_path (pi, "path");
      fail (r, pp, path ? "`%s`: must be an absolute path" : "is required%s", path ? path : "");
      return hook_clear (out);
    }
  out->path = xstrdup (path);
  out->timeout = (int) t;
  return 0;
}

static int
read_hooks (struct rd *r, json_t *root, struct plan *p)
{
  json_t *hooks;
  if (get_obj (r, root, "", "hooks", &hooks) < 0 || hooks == NULL)
    return r->failed ? -1 : 0;
  for (int k = 0; k < HOOK__COUNT; k++)
    {
      cleanup_free char *pk = key_path ("hooks", hook_names[k]);
      json_t *a, *h;
      size_t i;
      if (get_arr (r, hooks, "hooks", hook_names[k], &a) < 0)
        return -1;
      if (a == NULL)
        continue;
      p->hooks[k] = xzalloc ((json_array_size (a) + 1) * sizeof *p->hooks[k]);
      json_array_foreach (a, i, h)
        {
          cleanup_free char *pi = idx_path (pk, i);
          if (read_hook (r, h, pi, &p->hooks[k][i]) < 0)
            return -1;
          p->nhooks[k]++;
        }
    }
  return 0;
}

static int
read_annotations (struct rd *r, json_t *root, struct plan *p)
{
  json_t *o, *v;
  const char *k;
  if (get_obj (r, root, "", "annotations", &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  p->annotations = xzalloc (sizeof *p->annotations);
  json_object_foreach (o, k, v)
    {
      cleanup_free char *pk = key_path ("annotations", k);
      cleanup_free char *kv = NULL;
      if (!json_is_string (v))
        return fail (r, pk, "must be a string");
      kv = xasprintf ("%s=%s", k, json_string_value (v));
      strv_push (&p->annotations, kv);
    }
  return 0;
}

/* cella's own annotation: Landlock scoping on request */
static int
read_landlock_annotation (struct rd *r, json_t *root, struct plan *p)
{
  json_t *v = json_object_get (json_object_get (root, "annotations"), OCI_ANNOTATION_LANDLOCK);
  cella_error_t e = NULL;
  cleanup_free char *pk = key_path ("annotations", OCI_ANNOTATION_LANDLOCK);
  if (!json_is_string (v))
    return 0; /* absent, or refused by read_annotations */
  if (plan_landlock_parse (json_string_value (v), &p->landlock, &e) < 0)
    {
      fail (r, pk, "%s", e->msg);
      cella_error_free (&e);
      return -1;
    }
  return 0;
}

/* ---- linux ---- */

static int
read_namespaces (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *a, *n;
  size_t i;
  p->net = NET_HOST;
  if (get_arr (r, lx, "linux", "namespaces", &a) < 0)
    return -1;
  json_array_foreach (a, i, n)
    {
      cleanup_free char *pi = idx_path ("linux.namespaces", i);
      const char *type = NULL, *path = NULL;
      int k;
      if (!json_is_object (n))
        return fail (r, pi, "must be an object");
      if (get_str (r, n, pi, "type", &type) < 0 || get_str (r, n, pi, "path", &path) < 0)
        return -1;
      k = str_index (ns_names, PLAN_NS_COUNT, type);
      if (k < 0)
        {
          cleanup_free char *pt = key_path (pi, "type");
          return type ? fail (r, pt, "unknown namespace type `%s`", type) : fail (r, pt, "is required");
        }
      if ((p->ns & (1u << k)) || p->ns_path[k])
        return fail (r, pi, "namespace `%s` given twice", type);
      if (path && *path)
        {
          if (path[0] != '/')
            {
              cleanup_free char *pp = key_path (pi, "path");
              return fail (r, pp, "`%s`: must be an absolute path", path);
            }
          p->ns_path[k] = xstrdup (path);
        }
      else
        p->ns |= 1u << k;
      if (k == 4)
        p->net = NET_NONE;
    }
  /* Without a mount namespace the container shares cella's (docs/oci.md): its mounts are made
   * there, which a user namespace of its own has no right to do. */
  if (!(p->ns & PLAN_NS_MNT) && !p->ns_path[0] && (p->ns & PLAN_NS_USER))
    return fail (r, "linux.namespaces",
                 "a new user namespace needs a new mount namespace too (add {\"type\": \"mount\"})");
  if ((p->ns & PLAN_NS_TIME) && !host_has ("/proc/self/ns/time"))
    return fail (r, "linux.namespaces", "this kernel has no time namespaces");
  return 0;
}

static int
read_idmaps (struct rd *r, json_t *lx, const char *base, const char *key, struct id_map **out, size_t *n)
{
  json_t *a, *m;
  size_t i;
  cleanup_free char *p = key_path (base, key);
  if (get_arr (r, lx, base, key, &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  *out = xzalloc ((json_array_size (a) + 1) * sizeof **out);
  json_array_foreach (a, i, m)
    {
      cleanup_free char *pi = idx_path (p, i);
      long long c = 0, h = 0, s = 0;
      if (!json_is_object (m))
        return fail (r, pi, "must be an object");
      if (get_int (r, m, pi, "containerID", 0, UINT32_MAX - 1, &c) <= 0
          || get_int (r, m, pi, "hostID", 0, UINT32_MAX - 1, &h) <= 0
          || get_int (r, m, pi, "size", 1, UINT32_MAX, &s) <= 0)
        return r->failed ? -1 : fail (r, pi, "needs containerID, hostID and size");
      (*out)[i] = (struct id_map){ .inside = (uint32_t) c, .outside = (uint32_t) h, .count = (uint32_t) s };
      (*n)++;
    }
  return 0;
}

/* A saved plan's --device node: the host's node it came from (cella's own key, not read from config.json). */
static int
read_host_path (struct rd *r, json_t *d, const char *pi, struct plan_device *dev)
{
  const char *hp = NULL;
  if (get_str (r, d, pi, "hostPath", &hp) < 0)
    return -1;
  if (hp && !path_is_clean_abs (hp))
    {
      cleanup_free char *ph = key_path (pi, "hostPath");
      return fail (r, ph, "`%s`: must be an absolute path", hp);
    }
  dev->host_path = hp ? xstrdup (hp) : NULL;
  return 0;
}

static int
read_devices (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *a, *d;
  size_t i;
  if (get_arr (r, lx, "linux", "devices", &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  p->devices = xzalloc ((json_array_size (a) + 1) * sizeof *p->devices);
  json_array_foreach (a, i, d)
    {
      cleanup_free char *pi = idx_path ("linux.devices", i);
      struct plan_device *dev = &p->devices[p->ndevices];
      const char *path = NULL, *type = NULL;
      long long maj = 0, min = 0, mode = 0666, uid = 0, gid = 0;
      if (!json_is_object (d))
        return fail (r, pi, "must be an object");
      if (get_str (r, d, pi, "path", &path) < 0 || get_str (r, d, pi, "type", &type) < 0)
        return -1;
      /* runtime-spec 1.1: a device may be anywhere in the container, not only under /dev */
      if (!path_is_clean_abs (path) || strcmp (path, "/") == 0 || strcmp (path, "/dev") == 0)
        {
          cleanup_free char *pp = key_path (pi, "path");
          return fail (r, pp, "`%s`: must be an absolute path without `..`", path ? path : "");
        }
      if (type == NULL || strlen (type) != 1 || !strchr ("cbup", type[0]))
        {
          cleanup_free char *pt = key_path (pi, "type");
          return fail (r, pt, "must be c, b, u or p");
        }
      if (type[0] != 'p'
          && (get_int (r, d, pi, "major", 0, UINT32_MAX, &maj) <= 0
              || get_int (r, d, pi, "minor", 0, UINT32_MAX, &min) <= 0))
        return r->failed ? -1
                         : fail (r, pi, "a %s device needs major and minor", type[0] == 'b' ? "block" : "character");
      /* podman copies the host node's whole st_mode (0o20666): the type bits are `type`'s job
       * and ignored, as runc and crun do */
      if (get_int (r, d, pi, "fileMode", 0, 0177777, &mode) < 0
          || get_int (r, d, pi, "uid", 0, UINT32_MAX - 1, &uid) < 0
          || get_int (r, d, pi, "gid", 0, UINT32_MAX - 1, &gid) < 0)
        return -1;
      if (strcmp (r->what, "saved plan") == 0 && read_host_path (r, d, pi, dev) < 0)
        return -1;
      dev->path = xstrdup (path);
      dev->type = type[0] == 'u' ? 'c' : type[0];
      dev->major = maj;
      dev->minor = min;
      dev->mode = (mode_t) (mode & 07777);
      dev->uid = (uid_t) uid;
      dev->gid = (gid_t) gid;
      p->ndevices++;
    }
  return 0;
}

/* Only sysctls the container's own namespaces scope may be set (runc's rule). */
static int
check_sysctl (struct rd *r, const struct plan *p, const char *pk, const char *key)
{
  static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                     "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced" };
  bool own_ipc = (p->ns & PLAN_NS_IPC) || p->ns_path[3], own_net = (p->ns & PLAN_NS_NET) || p->ns_path[4];
  bool own_uts = (p->ns & PLAN_NS_UTS) || p->ns_path[2];
  if (*key == '\0' || strstr (key, "..") || strchr (key, '/') || key[0] == '.')
    return fail (r, pk, "not a sysctl name");
  if (str_index (ipc, sizeof ipc / sizeof ipc[0], key) >= 0 || strncmp (key, "fs.mqueue.", 10) == 0)
    return own_ipc ? 0 : fail (r, pk, "needs an IPC namespace of the container's own");
  if (strncmp (key, "net.", 4) == 0)
    return own_net ? 0 : fail (r, pk, "needs a network namespace of the container's own");
  /* the hostname has a field of its own, and the two would fight (runc and crun refuse it too) */
  if (strcmp (key, "kernel.hostname") == 0)
    return fail (r, pk, "not allowed: it conflicts with the config's `hostname` field (set that instead)");
  if (strcmp (key, "kernel.domainname") == 0)
    return own_uts ? 0 : fail (r, pk, "needs a UTS namespace of the container's own");
  return fail (r, pk, "not a namespaced sysctl: it would change the host");
}

static int
read_sysctl (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *o, *v;
  const char *k;
  if (get_obj (r, lx, "linux", "sysctl", &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  p->sysctl = xzalloc (sizeof *p->sysctl);
  json_object_foreach (o, k, v)
    {
      cleanup_free char *pk = key_path ("linux.sysctl", k);
      cleanup_free char *kv = NULL;
      if (!json_is_string (v))
        return fail (r, pk, "must be a string");
      if (check_sysctl (r, p, pk, k) < 0)
        return -1;
      kv = xasprintf ("%s=%s", k, json_string_value (v));
      strv_push (&p->sysctl, kv);
    }
  return 0;
}

static int
read_action (struct rd *r, json_t *o, const char *base, const char *key, bool required, enum plan_scmp_action *out)
{
  const char *s = NULL;
  cleanup_free char *p = key_path (base, key);
  int k;
  if (get_str (r, o, base, key, &s) < 0)
    return -1;
  if (s == NULL)
    return required ? fail (r, p, "is required") : 0;
  k = str_index (action_names, SCMPA__COUNT, s);
  if (k < 0)
    return fail (r, p, "unknown action `%s`", s);
  *out = (enum plan_scmp_action) k;
  return 0;
}

/* ---- seccomp: a config's linux.seccomp, and docker's profile format (--security-opt
 * seccomp=FILE). Docker's is the same object plus `archMap`, a rule's `name`, `includes`,
 * `excludes` and `comment`; its conditional rules are kept or dropped here, for one container,
 * as moby's setupSeccomp does, so what reaches the plan (and the child) is an OCI profile. ---- */

/* a docker rule's "includes" or "excludes" */
struct scmp_cond {
  char **caps, **arches;
  bool has_kernel;
  unsigned kernel[2];
};

static void
scmp_cond_clear (struct scmp_cond *c)
{
  strv_free (c->caps);
  strv_free (c->arches);
}

/* "4.8", as moby reads it: major.minor, whatever follows */
static bool
parse_kernel_version (const char *s, unsigned v[2])
{
  char *end = NULL;
  unsigned long a, b;
  if (*s < '0' || *s > '9')
    return false;
  a = strtoul (s, &end, 10);
  if (*end != '.' || end[1] < '0' || end[1] > '9')
    return false;
  b = strtoul (end + 1, &end, 10);
  if (a > 65535 || b > 65535 || (*end && *end != '.' && *end != '-' && *end != '+'))
    return false;
  v[0] = (unsigned) a;
  v[1] = (unsigned) b;
  return true;
}

static int
read_scmp_cond (struct rd *r, json_t *s, const char *pi, const char *key, struct scmp_cond *c)
{
  json_t *o;
  const char *mk = NULL;
  cleanup_free char *pk = key_path (pi, key);
  if (get_obj (r, s, pi, key, &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  if (get_strv (r, o, pk, "caps", &c->caps) < 0 || get_strv (r, o, pk, "arches", &c->arches) < 0
      || get_str (r, o, pk, "minKernel", &mk) < 0)
    return -1;
  for (size_t i = 0; c->caps && c->caps[i]; i++)
    {
      cap_value_t cv;
      if (strncmp (c->caps[i], "CAP_", 4) != 0 || cap_from_name (c->caps[i], &cv) < 0)
        {
          cleanup_free char *pc = key_path (pk, "caps");
          cleanup_free char *pci = idx_path (pc, i);
          return fail (r, pci, "unknown capability `%s`", c->caps[i]);
        }
    }
  if (mk && !(c->has_kernel = parse_kernel_version (mk, c->kernel)))
    {
      cleanup_free char *pm = key_path (pk, "minKernel");
      return fail (r, pm, "`%s`: expected a kernel version like 4.8", mk);
    }
  return 0;
}

static bool
cap_held (uint64_t caps, const char *name)
{
  cap_value_t c;
  return cap_from_name (name, &c) == 0 && c >= 0 && c < 64 && (caps & (UINT64_C (1) << c));
}

static bool
kernel_at_least (const unsigned have[2], const unsigned want[2])
{
  return have[0] > want[0] || (have[0] == want[0] && have[1] >= want[1]);
}

/* moby's rule: an exclude that matches drops the rule, so does an include that does not; every
 * capability an include names must be held (in the bounding set), any one an exclude names
 * drops it */
static bool
scmp_rule_applies (const struct oci_seccomp_host *h, const struct scmp_cond *inc, const struct scmp_cond *exc)
{
  if (exc->arches && str_index ((const char *const *) exc->arches, strv_len (exc->arches), h->arch) >= 0)
    return false;
  for (size_t i = 0; exc->caps && exc->caps[i]; i++)
    if (cap_held (h->caps, exc->caps[i]))
      return false;
  if (exc->has_kernel && kernel_at_least (h->kernel, exc->kernel))
    return false;
  if (inc->arches && inc->arches[0]
      && str_index ((const char *const *) inc->arches, strv_len (inc->arches), h->arch) < 0)
    return false;
  for (size_t i = 0; inc->caps && inc->caps[i]; i++)
    if (!cap_held (h->caps, inc->caps[i]))
      return false;
  return !inc->has_kernel || kernel_at_least (h->kernel, inc->kernel);
}

/* "names", or (docker) "name" */
static int
read_scmp_names (struct rd *r, json_t *s, const char *pi, bool docker, char ***names)
{
  const char *one = NULL;
  if (get_strv (r, s, pi, "names", names) < 0 || (docker && get_str (r, s, pi, "name", &one) < 0))
    return -1;
  if (one && *one)
    {
      cleanup_free char *pn = key_path (pi, "name");
      if (*names && (*names)[0])
        return fail (r, pn, "give either name or names, not both");
      strv_free (*names);
      *names = xzalloc (sizeof **names);
      strv_push (names, one);
    }
  if (*names == NULL || (*names)[0] == NULL)
    {
      cleanup_free char *pn = key_path (pi, "names");
      return fail (r, pn, "must name at least one system call");
    }
  return 0;
}

static int
read_scmp_args (struct rd *r, json_t *s, const char *pi, struct plan_scmp_rule *rule)
{
  json_t *args, *a;
  size_t i;
  cleanup_free char *pa = key_path (pi, "args");
  if (get_arr (r, s, pi, "args", &args) < 0 || args == NULL)
    return r->failed ? -1 : 0;
  rule->args = xzalloc ((json_array_size (args) + 1) * sizeof *rule->args);
  json_array_foreach (args, i, a)
    {
      cleanup_free char *pai = idx_path (pa, i);
      struct plan_scmp_arg *arg = &rule->args[i];
      const char *op = NULL;
      long long idx = 0;
      int k;
      if (!json_is_object (a))
        return fail (r, pai, "must be an object");
      if (get_int (r, a, pai, "index", 0, 5, &idx) <= 0 || get_u64 (r, a, pai, "value", &arg->value) < 0
          || get_u64 (r, a, pai, "valueTwo", &arg->value_two) < 0 || get_str (r, a, pai, "op", &op) < 0)
        return r->failed ? -1 : fail (r, pai, "needs an index (0 to 5)");
      k = str_index (op_names, SCMPO__COUNT, op);
      if (k < 0)
        {
          cleanup_free char *po = key_path (pai, "op");
          return op ? fail (r, po, "unknown operator `%s`", op) : fail (r, po, "is required");
        }
      arg->index = (unsigned) idx;
      arg->op = (enum plan_scmp_op) k;
      rule->nargs++;
    }
  return 0;
}

/* One rule; with a docker host (h), *keep says whether its includes/excludes let it apply. */
static int
read_scmp_rule (struct rd *r, json_t *s, const char *pi, const struct oci_seccomp_host *h, struct plan_scmp_rule *rule,
                bool *keep)
{
  __attribute__ ((cleanup (scmp_cond_clear))) struct scmp_cond inc = { 0 }, exc = { 0 };
  long long e = -1;
  *keep = true;
  if (!json_is_object (s))
    return fail (r, pi, "must be an object");
  if (read_scmp_names (r, s, pi, h != NULL, &rule->names) < 0
      || read_action (r, s, pi, "action", true, &rule->action) < 0 || get_int (r, s, pi, "errnoRet", 0, 4095, &e) < 0
      || read_scmp_args (r, s, pi, rule) < 0)
    return -1;
  rule->errno_ret = (int) e;
  if (h == NULL)
    return 0;
  if (read_scmp_cond (r, s, pi, "includes", &inc) < 0 || read_scmp_cond (r, s, pi, "excludes", &exc) < 0)
    return -1;
  *keep = scmp_rule_applies (h, &inc, &exc);
  return 0;
}

static int
check_scmp_arch (struct rd *r, const char *path, const char *a)
{
  cleanup_free char *lower = NULL;
  if (strncmp (a, "SCMP_ARCH_", 10) == 0)
    {
      lower = xstrdup (a + 10);
      for (char *c = lower; *c; c++)
        *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
  if (lower == NULL || seccomp_arch_resolve_name (lower) == 0)
    return fail (r, path, "unknown architecture `%s`", a);
  return 0;
}

static int
check_scmp_arches (struct rd *r, const char *base, const char *key, char *const *v)
{
  cleanup_free char *pk = key_path (base, key);
  for (size_t i = 0; v && v[i]; i++)
    {
      cleanup_free char *pi = idx_path (pk, i);
      if (check_scmp_arch (r, pi, v[i]) < 0)
        return -1;
    }
  return 0;
}

/* docker's archMap: the entry of this machine's architecture gives it and its sub-architectures */
static int
read_scmp_arch_map (struct rd *r, json_t *sc, const char *base, const struct oci_seccomp_host *h,
                    struct plan_seccomp *prof)
{
  json_t *map, *m;
  size_t i;
  cleanup_free char *pm = key_path (base, "archMap");
  if (get_arr (r, sc, base, "archMap", &map) < 0 || map == NULL || json_array_size (map) == 0)
    return r->failed ? -1 : 0;
  if (prof->arches && prof->arches[0])
    return fail (r, pm, "give either architectures or archMap, not both");
  json_array_foreach (map, i, m)
    {
      cleanup_free char *pmi = idx_path (pm, i), *pa = key_path (pmi, "architecture");
      cleanup_strv char **subs = NULL;
      const char *arch = NULL;
      if (!json_is_object (m))
        return fail (r, pmi, "must be an object");
      if (get_str (r, m, pmi, "architecture", &arch) < 0 || get_strv (r, m, pmi, "subArchitectures", &subs) < 0)
        return -1;
      if (arch == NULL)
        return fail (r, pa, "is required");
      if (check_scmp_arch (r, pa, arch) < 0 || check_scmp_arches (r, pmi, "subArchitectures", subs) < 0)
        return -1;
      if (h->scmp_arch && strcmp (arch, h->scmp_arch) == 0 && prof->arches == NULL)
        {
          prof->arches = xzalloc (sizeof *prof->arches);
          strv_push (&prof->arches, arch);
          for (size_t j = 0; subs && subs[j]; j++)
            strv_push (&prof->arches, subs[j]);
        }
    }
  return 0;
}

static void
scmp_rule_clear (struct plan_scmp_rule *rule)
{
  strv_free (rule->names);
  free (rule->args);
  memset (rule, 0, sizeof *rule);
}

static int
read_scmp_profile (struct rd *r, json_t *sc, const char *base, const struct oci_seccomp_host *h,
                   struct plan_seccomp *prof)
{
  json_t *sys, *s;
  const char *listener = NULL, *metadata = NULL;
  long long e = -1;
  size_t i;
  cleanup_free char *pl = key_path (base, "listenerPath"), *ps = key_path (base, "syscalls"),
                    *pf = key_path (base, "flags"), *pd = key_path (base, "defaultAction");
  if (get_str (r, sc, base, "listenerPath", &listener) < 0 || get_str (r, sc, base, "listenerMetadata", &metadata) < 0)
    return -1;
  if (listener && *listener)
    {
      if (h != NULL)
        return fail (r, pl, "a seccomp listener is for OCI bundles, not for a profile of `cella run`");
      if (listener[0] != '/')
        return fail (r, pl, "`%s`: must be an absolute path", listener);
      prof->listener_path = xstrdup (listener);
    }
  if (metadata && *metadata)
    prof->listener_metadata = xstrdup (metadata);
  if (read_action (r, sc, base, "defaultAction", true, &prof->default_action) < 0
      || get_int (r, sc, base, "defaultErrnoRet", 0, 4095, &e) < 0
      || get_strv (r, sc, base, "architectures", &prof->arches) < 0 || get_strv (r, sc, base, "flags", &prof->flags) < 0
      || get_arr (r, sc, base, "syscalls", &sys) < 0)
    return -1;
  prof->default_errno = (int) e;
  /* runc refuses it too: every call of the container, cella's own last ones included, would
   * wait on the agent */
  if (prof->default_action == SCMPA_NOTIFY)
    return fail (r, pd, "SCMP_ACT_NOTIFY cannot be the default action");
  if (check_scmp_arches (r, base, "architectures", prof->arches) < 0
      || (h && read_scmp_arch_map (r, sc, base, h, prof) < 0))
    return -1;
  for (i = 0; prof->flags && prof->flags[i]; i++)
    if (str_index (seccomp_flags, sizeof seccomp_flags / sizeof seccomp_flags[0], prof->flags[i]) < 0)
      {
        cleanup_free char *pfi = idx_path (pf, i);
        return fail (r, pfi, "unknown or unsupported flag `%s`", prof->flags[i]);
      }
  if (sys == NULL)
    return 0;
  prof->rules = xzalloc ((json_array_size (sys) + 1) * sizeof *prof->rules);
  json_array_foreach (sys, i, s)
    {
      cleanup_free char *pi = idx_path (ps, i);
      bool keep;
      if (read_scmp_rule (r, s, pi, h, &prof->rules[prof->nrules++], &keep) < 0)
        return -1;
      if (!keep)
        {
          scmp_rule_clear (&prof->rules[--prof->nrules]);
          continue;
        }
      if (prof->rules[prof->nrules - 1].action == SCMPA_NOTIFY && prof->listener_path == NULL)
        {
          cleanup_free char *pa = key_path (pi, "action");
          return h ? fail (r, pa, "SCMP_ACT_NOTIFY needs a seccomp listener, which only an OCI bundle can name")
                   : fail (r, pa,
                           "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent that gets the "
                           "notifications)");
        }
    }
  return 0;
}

static int
read_seccomp (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *sc;
  if (get_obj (r, lx, "linux", "seccomp", &sc) < 0 || sc == NULL)
    return r->failed ? -1 : 0;
  p->process.seccomp_profile = xzalloc (sizeof *p->process.seccomp_profile);
  return read_scmp_profile (r, sc, "linux.seccomp", NULL, p->process.seccomp_profile);
}

/* docker's names of the native architectures (GOARCH, as moby's includes/excludes match them) */
static const struct {
  uint32_t token;
  const char *docker, *scmp;
} native_arches[] = {
  { SCMP_ARCH_X86_64, "amd64", "SCMP_ARCH_X86_64" },
  { SCMP_ARCH_X86, "x86", "SCMP_ARCH_X86" },
  { SCMP_ARCH_AARCH64, "arm64", "SCMP_ARCH_AARCH64" },
  { SCMP_ARCH_ARM, "arm", "SCMP_ARCH_ARM" },
  { SCMP_ARCH_S390X, "s390x", "SCMP_ARCH_S390X" },
  { SCMP_ARCH_S390, "s390", "SCMP_ARCH_S390" },
  { SCMP_ARCH_PPC64LE, "ppc64le", "SCMP_ARCH_PPC64LE" },
  { SCMP_ARCH_PPC64, "ppc64", "SCMP_ARCH_PPC64" },
  { SCMP_ARCH_PPC, "ppc", "SCMP_ARCH_PPC" },
  { SCMP_ARCH_MIPS64, "mips64", "SCMP_ARCH_MIPS64" },
  { SCMP_ARCH_MIPSEL64, "mipsel64", "SCMP_ARCH_MIPSEL64" },
#ifdef SCMP_ARCH_RISCV64
  { SCMP_ARCH_RISCV64, "riscv64", "SCMP_ARCH_RISCV64" },
#endif
};

void
oci_seccomp_host_native (uint64_t caps, struct oci_seccomp_host *h)
{
  uint32_t native = seccomp_arch_native ();
  struct utsname u;
  memset (h, 0, sizeof *h);
  h->caps = caps;
  h->arch = "";
  for (size_t i = 0; i < sizeof native_arches / sizeof native_arches[0]; i++)
    if (native_arches[i].token == native)
      {
        h->arch = native_arches[i].docker;
        h->scmp_arch = native_arches[i].scmp;
      }
  if (uname (&u) == 0)
    parse_kernel_version (u.release, h->kernel);
}

int
oci_seccomp_profile_parse (const char *text, const char *what, const struct oci_seccomp_host *h,
                           struct plan_seccomp **out, cella_error_t *err)
{
  struct rd r = { .what = what, .err = err };
  json_error_t je;
  json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &je);
  struct plan_seccomp *prof;
  if (root == NULL || !json_is_object (root))
    {
      json_decref (root);
      if (root)
        return cella_error (err, 0, "%s: must be a JSON object", what);
      return cella_error (err, 0, "%s: not valid JSON (line %d, column %d: %s)", what, je.line, je.column, je.text);
    }
  prof = xzalloc (sizeof *prof);
  read_scmp_profile (&r, root, "", h, prof);
  json_decref (root);
  if (r.failed)
    {
      oci_seccomp_free (prof);
      return -1;
    }
  *out = prof;
  return 0;
}

int
oci_seccomp_profile_load (const char *path, uint64_t caps, struct plan_seccomp **out, cella_error_t *err)
{
  cleanup_free char *text = NULL, *what = xasprintf ("seccomp profile `%s`", path);
  struct oci_seccomp_host h;
  if (read_file (path, &text, NULL, err) < 0)
    return cella_error_wrap (err, "seccomp profile");
  oci_seccomp_host_native (caps, &h);
  return oci_seccomp_profile_parse (text, what, &h, out, err);
}

static int
read_paths_as_ops (struct rd *r, json_t *lx, const char *key, enum op_kind kind, struct plan *p)
{
  cleanup_strv char **v = NULL;
  cleanup_free char *pk = key_path ("linux", key);
  if (get_strv (r, lx, "linux", key, &v) < 0)
    return -1;
  for (size_t i = 0; v && v[i]; i++)
    {
      if (!path_is_clean_abs (v[i]))
        {
          cleanup_free char *pi = idx_path (pk, i);
          return fail (r, pi, "`%s`: must be an absolute path without `..`", v[i]);
        }
      plan_add_op (p, kind, v[i]);
    }
  return 0;
}

static int
read_propagation (struct rd *r, json_t *lx, struct plan *p)
{
  const char *s = NULL;
  int k;
  if (get_str (r, lx, "linux", "rootfsPropagation", &s) < 0 || s == NULL || *s == '\0')
    return r->failed ? -1 : 0;
  k = str_index (prop_names, PROP__COUNT, s);
  if (k < 0)
    return fail (r, "linux.rootfsPropagation", "unknown propagation `%s`", s);
  p->rootfs_propagation = (enum plan_propagation) k;
  return 0;
}

static int
read_personality (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *o, *flags;
  const char *dom = NULL;
  if (get_obj (r, lx, "linux", "personality", &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  if (get_str (r, o, "linux.personality", "domain", &dom) < 0
      || get_arr (r, o, "linux.personality", "flags", &flags) < 0)
    return -1;
  if (dom && strcmp (dom, "LINUX") == 0)
    p->personality = PERSONALITY_LINUX;
  else if (dom && strcmp (dom, "LINUX32") == 0)
    p->personality = PERSONALITY_LINUX32;
  else
    return fail (r, "linux.personality.domain", "must be LINUX or LINUX32");
  if (flags && json_array_size (flags))
    return fail (r, "linux.personality.flags", "personality flags are not supported by cella");
  return 0;
}

static int
read_time_offsets (struct rd *r, json_t *lx, struct plan *p)
{
  static const char *const clocks[] = { "monotonic", "boottime" };
  json_t *o, *c;
  const char *k;
  if (get_obj (r, lx, "linux", "timeOffsets", &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  if (!(p->ns & PLAN_NS_TIME))
    return fail (r, "linux.timeOffsets", "needs a new time namespace (add {\"type\": \"time\"} to linux.namespaces)");
  json_object_foreach (o, k, c)
    {
      cleanup_free char *pk = key_path ("linux.timeOffsets", k);
      long long s = 0, ns = 0;
      int i = str_index (clocks, 2, k);
      if (i < 0)
        return fail (r, pk, "unknown clock (monotonic or boottime)");
      if (!json_is_object (c))
        return fail (r, pk, "must be an object");
      if (get_int (r, c, pk, "secs", LLONG_MIN, LLONG_MAX, &s) < 0
          || get_int (r, c, pk, "nanosecs", 0, 999999999, &ns) < 0)
        return -1;
      p->time_offset[i][0] = s;
      p->time_offset[i][1] = ns;
      p->has_time_offsets = true;
    }
  return 0;
}

/* ---- linux.resources ---- */

static int
read_memory (struct rd *r, json_t *res, struct plan_resources *pr)
{
  const char *b = "linux.resources.memory";
  json_t *m;
  long long v;
  if (get_obj (r, res, "linux.resources", "memory", &m) < 0 || m == NULL)
    return r->failed ? -1 : 0;
  if (get_int (r, m, b, "limit", -1, LLONG_MAX, &pr->memory) < 0
      || get_int (r, m, b, "reservation", -1, LLONG_MAX, &pr->memory_reservation) < 0
      || get_int (r, m, b, "swap", -1, LLONG_MAX, &pr->memory_swap) < 0
      || get_int (r, m, b, "kernelTCP", -1, LLONG_MAX, &pr->memory_kernel_tcp) < 0
      || get_bool (r, m, b, "disableOOMKiller", &pr->disable_oom_killer) < 0)
    return -1;
  switch (get_int (r, m, b, "swappiness", 0, 100, &v))
    {
    case -1:
      return -1;
    case 1:
      pr->has_swappiness = true;
      pr->memory_swappiness = (unsigned long long) v;
      break;
    default:
      break;
    }
  /* kernel (deprecated: Linux 6 takes memory.kmem.limit_in_bytes and ignores it), useHierarchy,
   * checkBeforeUpdate: accepted, not applied */
  return 0;
}

static int
read_cpu (struct rd *r, json_t *res, struct plan_resources *pr)
{
  const char *b = "linux.resources.cpu", *cpus = NULL, *mems = NULL;
  static const char *const unsupported[] = { "realtimeRuntime", "realtimePeriod", "idle", "burst" };
  json_t *c;
  if (get_obj (r, res, "linux.resources", "cpu", &c) < 0 || c == NULL)
    return r->failed ? -1 : 0;
  if (get_u64 (r, c, b, "shares", &pr->cpu_shares) < 0 || get_int (r, c, b, "quota", -1, LLONG_MAX, &pr->cpu_quota) < 0
      || get_u64 (r, c, b, "period", &pr->cpu_period) < 0 || get_str (r, c, b, "cpus", &cpus) < 0
      || get_str (r, c, b, "mems", &mems) < 0)
    return -1;
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
    {
      json_t *v = json_object_get (c, unsupported[i]);
      if (v && !json_is_null (v) && !(json_is_integer (v) && json_integer_value (v) == 0))
        {
          cleanup_free char *pk = key_path (b, unsupported[i]);
          return fail (r, pk, "not supported by cella");
        }
    }
  if (cpus && *cpus)
    pr->cpuset_cpus = xstrdup (cpus);
  if (mems && *mems)
    pr->cpuset_mems = xstrdup (mems);
  return 0;
}

static int
read_throttle (struct rd *r, json_t *bio, const char *key, int kind, struct plan_resources *pr)
{
  json_t *a, *d;
  size_t i;
  cleanup_free char *pk = key_path ("linux.resources.blockIO", key);
  if (get_arr (r, bio, "linux.resources.blockIO", key, &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  pr->io_throttle = xrealloc (pr->io_throttle, (pr->nio_throttle + json_array_size (a) + 1) * sizeof *pr->io_throttle);
  json_array_foreach (a, i, d)
    {
      cleanup_free char *pi = idx_path (pk, i);
      struct plan_io_throttle *t = &pr->io_throttle[pr->nio_throttle];
      memset (t, 0, sizeof *t);
      if (!json_is_object (d))
        return fail (r, pi, "must be an object");
      if (get_int (r, d, pi, "major", 0, UINT32_MAX, &t->major) <= 0
          || get_int (r, d, pi, "minor", 0, UINT32_MAX, &t->minor) <= 0 || get_u64 (r, d, pi, "rate", &t->rate) <= 0)
        return r->failed ? -1 : fail (r, pi, "needs major, minor and rate");
      t->kind = kind;
      pr->nio_throttle++;
    }
  return 0;
}

static int
read_blkio (struct rd *r, json_t *res, struct plan_resources *pr)
{
  static const char *const keys[]
      = { "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
  const char *b = "linux.resources.blockIO";
  json_t *bio, *wd;
  long long w = 0, lw = 0;
  if (get_obj (r, res, "linux.resources", "blockIO", &bio) < 0 || bio == NULL)
    return r->failed ? -1 : 0;
  if (get_int (r, bio, b, "weight", 0, 1000, &w) < 0 || get_int (r, bio, b, "leafWeight", 0, 1000, &lw) < 0
      || get_arr (r, bio, b, "weightDevice", &wd) < 0)
    return -1;
  if (w && w < 10)
    return fail (r, "linux.resources.blockIO.weight", "must be between 10 and 1000");
  if (lw)
    return fail (r, "linux.resources.blockIO.leafWeight", "not supported by cella");
  if (wd && json_array_size (wd))
    return fail (r, "linux.resources.blockIO.weightDevice", "per-device weights are not supported by cella");
  if (w)
    pr->io_weight = (unsigned) w;
  for (int k = 0; k < 4; k++)
    if (read_throttle (r, bio, keys[k], k, pr) < 0)
      return -1;
  return 0;
}

static int
read_hugepages (struct rd *r, json_t *res, struct plan_resources *pr)
{
  json_t *a, *h;
  size_t i;
  if (get_arr (r, res, "linux.resources", "hugepageLimits", &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  pr->hugepage_limits = xzalloc ((json_array_size (a) + 1) * sizeof *pr->hugepage_limits);
  json_array_foreach (a, i, h)
    {
      cleanup_free char *pi = idx_path ("linux.resources.hugepageLimits", i);
      struct plan_hugepage_limit *l = &pr->hugepage_limits[i];
      const char *size = NULL;
      if (!json_is_object (h))
        return fail (r, pi, "must be an object");
      if (get_str (r, h, pi, "pageSize", &size) < 0 || get_u64 (r, h, pi, "limit", &l->limit) < 0)
        return -1;
      if (size == NULL || strspn (size, "0123456789") == 0 || strspn (size, "0123456789KMGB") != strlen (size))
        {
          cleanup_free char *ps = key_path (pi, "pageSize");
          return fail (r, ps, "must be a page size like 2MB or 1GB");
        }
      l->page_size = xstrdup (size);
      pr->nhugepage_limits++;
    }
  return 0;
}

static int
read_dev_rules (struct rd *r, json_t *res, struct plan_resources *pr)
{
  json_t *a, *d;
  size_t i;
  if (get_arr (r, res, "linux.resources", "devices", &a) < 0 || a == NULL)
    return r->failed ? -1 : 0;
  pr->dev_rules = xzalloc ((json_array_size (a) + 1) * sizeof *pr->dev_rules);
  json_array_foreach (a, i, d)
    {
      cleanup_free char *pi = idx_path ("linux.resources.devices", i);
      struct plan_dev_rule *rule = &pr->dev_rules[i];
      const char *type = NULL, *access_ = NULL;
      bool allow = false;
      rule->major = rule->minor = -1;
      if (!json_is_object (d))
        return fail (r, pi, "must be an object");
      if (!json_is_boolean (json_object_get (d, "allow")))
        {
          cleanup_free char *pa = key_path (pi, "allow");
          return fail (r, pa, "is required (true or false)");
        }
      if (get_bool (r, d, pi, "allow", &allow) < 0 || get_str (r, d, pi, "type", &type) < 0
          || get_int (r, d, pi, "major", -1, UINT32_MAX, &rule->major) < 0
          || get_int (r, d, pi, "minor", -1, UINT32_MAX, &rule->minor) < 0
          || get_str (r, d, pi, "access", &access_) < 0)
        return -1;
      if (type && (strlen (type) != 1 || !strchr ("acb", type[0])))
        {
          cleanup_free char *pt = key_path (pi, "type");
          return fail (r, pt, "must be a, c or b");
        }
      if (access_ && (strlen (access_) > 3 || strspn (access_, "rwm") != strlen (access_)))
        {
          cleanup_free char *pa = key_path (pi, "access");
          return fail (r, pa, "must be made of r, w and m");
        }
      rule->allow = allow;
      rule->type = type ? type[0] : 'a';
      snprintf (rule->access, sizeof rule->access, "%s", access_ ? access_ : "");
      pr->ndev_rules++;
    }
  return 0;
}

static int
read_resources (struct rd *r, json_t *lx, struct plan_resources *pr)
{
  json_t *res, *pids, *uni, *v;
  const char *k;
  if (get_obj (r, lx, "linux", "resources", &res) < 0 || res == NULL)
    return r->failed ? -1 : 0;
  if (read_memory (r, res, pr) < 0 || read_cpu (r, res, pr) < 0 || read_blkio (r, res, pr) < 0
      || read_hugepages (r, res, pr) < 0 || read_dev_rules (r, res, pr) < 0)
    return -1;
  if (get_obj (r, res, "linux.resources", "pids", &pids) < 0)
    return -1;
  if (pids && get_int (r, pids, "linux.resources.pids", "limit", -1, LLONG_MAX, &pr->pids_limit) < 0)
    return -1;
  for (size_t i = 0; i < 2; i++)
    {
      static const char *const no[] = { "network", "rdma" };
      v = json_object_get (res, no[i]);
      if (v && !json_is_null (v) && !(json_is_object (v) && json_object_size (v) == 0))
        {
          cleanup_free char *pk = key_path ("linux.resources", no[i]);
          return fail (r, pk, "not supported by cella");
        }
    }
  if (get_obj (r, res, "linux.resources", "unified", &uni) < 0)
    return -1;
  json_object_foreach (uni, k, v)
    {
      cleanup_free char *pk = key_path ("linux.resources.unified", k);
      cleanup_free char *kv = NULL;
      if (!json_is_string (v))
        return fail (r, pk, "must be a string");
      if (strchr (k, '/') || k[0] == '.' || strchr (k, '.') == NULL)
        return fail (r, pk, "not a cgroup file name (controller.file)");
      kv = xasprintf ("%s=%s", k, json_string_value (v));
      strv_push (&pr->unified, kv);
    }
  return 0;
}

static int
read_linux_misc (struct rd *r, json_t *lx, struct plan *p)
{
  const char *label = NULL, *cg = NULL;
  json_t *rdt = json_object_get (lx, "intelRdt");
  if (rdt && !json_is_null (rdt))
    return fail (r, "linux.intelRdt", "Intel RDT is not supported by cella");
  if (get_str (r, lx, "linux", "mountLabel", &label) < 0)
    return -1;
  /* A mount label is an SELinux context for the container's files: without SELinux on the host
   * there is nothing to label (runc and crun then ignore it too); with it, cella cannot apply one. */
  if (label && *label && host_has ("/sys/fs/selinux/enforce"))
    return fail (r, "linux.mountLabel", "`%s`: SELinux mount labels are not supported by cella", label);
  if (get_str (r, lx, "linux", "cgroupsPath", &cg) < 0)
    return -1;
  if (cg && *cg)
    p->res.cgroups_path = xstrdup (cg);
  return 0;
}

static int
read_linux (struct rd *r, json_t *root, struct plan *p)
{
  json_t *lx;
  if (get_obj (r, root, "", "linux", &lx) < 0)
    return -1;
  if (lx == NULL)
    return fail (r, "linux", "is required (cella runs Linux containers)");
  if (read_namespaces (r, lx, p) < 0 || read_idmaps (r, lx, "linux", "uidMappings", &p->uid_map, &p->nuid_map) < 0
      || read_idmaps (r, lx, "linux", "gidMappings", &p->gid_map, &p->ngid_map) < 0)
    return -1;
  if ((p->nuid_map || p->ngid_map) && !(p->ns & PLAN_NS_USER))
    return fail (r, "linux.uidMappings", "id mappings need a new user namespace");
  if ((p->ns & PLAN_NS_USER) && (!p->nuid_map || !p->ngid_map))
    return fail (r, "linux.uidMappings", "a new user namespace needs uidMappings and gidMappings");
  if (read_devices (r, lx, p) < 0 || read_sysctl (r, lx, p) < 0 || read_seccomp (r, lx, p) < 0
      || read_propagation (r, lx, p) < 0 || read_personality (r, lx, p) < 0 || read_time_offsets (r, lx, p) < 0
      || read_resources (r, lx, &p->res) < 0 || read_linux_misc (r, lx, p) < 0)
    return -1;
  return 0;
}

static int
read_root_and_names (struct rd *r, json_t *root, struct plan *p)
{
  json_t *ro;
  const char *path = NULL, *host = NULL, *dom = NULL, *ver = NULL;
  if (get_str (r, root, "", "ociVersion", &ver) < 0)
    return -1;
  if (ver == NULL)
    return fail (r, "ociVersion", "is required");
  if (strncmp (ver, "1.", 2) != 0)
    return fail (r, "ociVersion", "`%s`: cella runs version 1 configurations", ver);
  if (get_obj (r, root, "", "root", &ro) < 0)
    return -1;
  if (ro == NULL)
    return fail (r, "root", "is required");
  if (get_str (r, ro, "root", "path", &path) < 0 || get_bool (r, ro, "root", "readonly", &p->readonly) < 0)
    return -1;
  if (path == NULL || *path == '\0')
    return fail (r, "root.path", "is required");
  p->rootfs = path[0] == '/' || p->bundle == NULL ? xstrdup (path) : xasprintf ("%s/%s", p->bundle, path);
  if (get_str (r, root, "", "hostname", &host) < 0 || get_str (r, root, "", "domainname", &dom) < 0)
    return -1;
  if (host && *host)
    p->hostname = xstrdup (host);
  if (dom && *dom)
    p->domainname = xstrdup (dom);
  return 0;
}

static int
check_names (struct rd *r, struct plan *p)
{
  bool own_uts = (p->ns & PLAN_NS_UTS) || p->ns_path[2];
  if (p->hostname && !own_uts)
    return fail (r, "hostname", "needs a UTS namespace of the container's own");
  if (p->domainname && !own_uts)
    return fail (r, "domainname", "needs a UTS namespace of the container's own");
  return 0;
}

int
oci_config_parse (const char *text, const char *bundle, const char *what, struct plan **out, cella_error_t *err)
{
  struct rd r = { .what = what ? what : "config.json", .err = err };
  json_error_t je;
  json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &je), *pro;
  cleanup_plan struct plan *p = NULL;
  if (root == NULL || !json_is_object (root))
    {
      json_decref (root);
      if (root)
        return cella_error (err, 0, "%s: must be a JSON object", r.what);
      return cella_error (err, 0, "%s: not valid JSON (line %d, column %d: %s)", r.what, je.line, je.column, je.text);
    }
  p = plan_new ();
  r.warnings = &p->process.warnings;
  p->backend = BACKEND_NS;
  p->rootless = geteuid () != 0;
  if (bundle)
    p->bundle = xstrdup (bundle);
  if (read_root_and_names (&r, root, p) < 0 || get_obj (&r, root, "", "process", &pro) < 0)
    goto out;
  if (pro == NULL)
    {
      fail (&r, "process", "is required");
      goto out;
    }
  if (read_process (&r, pro, "process", &p->process) < 0 || read_annotations (&r, root, p) < 0
      || read_landlock_annotation (&r, root, p) < 0 || read_linux (&r, root, p) < 0 || check_names (&r, p) < 0
      || read_mounts (&r, root, p) < 0 || read_hooks (&r, root, p) < 0)
    goto out;
  /* after the mounts, as runc does: hide and freeze what the mounts brought */
  {
    json_t *lx = json_object_get (root, "linux");
    if (read_paths_as_ops (&r, lx, "maskedPaths", OP_MASK, p) < 0
        || read_paths_as_ops (&r, lx, "readonlyPaths", OP_READONLY, p) < 0)
      goto out;
    for (size_t i = 0; i < p->ndevices && !r.failed; i++)
      if (strncmp (p->devices[i].path, "/dev/", 5) == 0 && find_dev_op (p) == NULL)
        fail (&r, "linux.devices",
              "cella makes the device nodes under /dev in a tmpfs mounted on /dev: add one to mounts");
  }
out:
  json_decref (root);
  if (r.failed)
    return -1;
  *out = steal_pointer (&p);
  return 0;
}

/* runc's rule: no component of root.path may be a symlink (one to "/" ran the container on the
 * host's root). Walked from "/" with O_NOFOLLOW, one component at a time. */
static int
check_root_path (const char *rootfs, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (rootfs);
  cleanup_close int dir = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char *save = NULL;
  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      struct stat st;
      int next;
      if (strcmp (c, ".") == 0)
        continue;
      if (fstatat (dir, c, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return cella_error (err, errno, "root.path `%s`", rootfs);
      if (S_ISLNK (st.st_mode))
        return cella_error (err, 0, "root.path `%s`: `%s` is a symlink; give the real path (runc refuses it too)",
                            rootfs, c);
      next = openat (dir, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        return cella_error (err, errno, "root.path `%s`", rootfs);
      close (dir);
      dir = next;
    }
  return 0;
}

int
oci_config_load (const char *bundle, struct plan **out, cella_error_t *err)
{
  cleanup_free char *abs = realpath (bundle, NULL);
  cleanup_free char *path = NULL, *text = NULL;
  if (abs == NULL)
    return cella_error (err, errno, "bundle `%s`", bundle);
  path = xasprintf ("%s/config.json", abs);
  if (read_file (path, &text, NULL, err) < 0)
    return -1;
  if (oci_config_parse (text, abs, "config.json", out, err) < 0)
    return -1;
  if (check_root_path ((*out)->rootfs, err) < 0)
    {
      plan_free (*out);
      *out = NULL;
      return -1;
    }
  return 0;
}

int
oci_process_parse (const char *text, const char *what, struct plan_process *pr, cella_error_t *err)
{
  struct rd r = { .what = what ? what : "process.json", .err = err };
  json_error_t je;
  json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &je);
  memset (pr, 0, sizeof *pr);
  r.warnings = &pr->warnings;
  if (root == NULL || !json_is_object (root))
    {
      json_decref (root);
      return cella_error (err, 0, "%s: not a JSON object (line %d: %s)", r.what, je.line, je.text);
    }
  read_process (&r, root, "", pr);
  json_decref (root);
  if (r.failed)
    {
      oci_process_clear (pr);
      return -1;
    }
  return 0;
}

/* ---- a saved plan's OCI additions (written by oci_plan_extras_to_json) ---- */

static int
read_ns_paths (struct rd *r, json_t *lx, struct plan *p)
{
  json_t *o, *v;
  const char *k;
  if (get_obj (r, lx, "linux", "namespacePaths", &o) < 0 || o == NULL)
    return r->failed ? -1 : 0;
  json_object_foreach (o, k, v)
    {
      cleanup_free char *pk = key_path ("linux.namespacePaths", k);
      int i = str_index (ns_names, PLAN_NS_COUNT, k);
      if (i < 0 || !json_is_string (v))
        return fail (r, pk, "must be a namespace type with a path");
      p->ns_path[i] = xstrdup (json_string_value (v));
    }
  return 0;
}

static int
read_extras_process (struct rd *r, json_t *pro, struct plan_process *pr)
{
  long long um;
  if (read_process_extras (r, pro, "oci.process", pr) < 0)
    return -1;
  switch (get_int (r, pro, "oci.process", "umask", 0, 0777, &um))
    {
    case -1:
      return -1;
    case 1:
      pr->has_umask = true;
      pr->umask = (mode_t) um;
      break;
    default:
      break;
    }
  if (json_object_get (pro, "capabilities"))
    {
      uint64_t keep = pr->caps;
      if (read_caps (r, pro, "oci.process", pr) < 0)
        return -1;
      pr->caps = keep;
    }
  return 0;
}

int
oci_plan_extras_from_json (json_t *root, struct plan *p, cella_error_t *err)
{
  struct rd r = { .what = "saved plan", .err = err };
  json_t *x = json_object_get (root, "oci"), *pro, *lx;
  const char *bundle = NULL, *dom = NULL;
  if (x == NULL)
    return 0;
  if (!json_is_object (x))
    return fail (&r, "oci", "must be an object");
  if (get_str (&r, x, "oci", "bundle", &bundle) < 0 || get_str (&r, x, "oci", "domainname", &dom) < 0)
    return -1;
  p->bundle = bundle ? xstrdup (bundle) : NULL;
  p->domainname = dom ? xstrdup (dom) : NULL;
  if (read_annotations (&r, x, p) < 0 || read_hooks (&r, x, p) < 0 || get_obj (&r, x, "oci", "process", &pro) < 0
      || get_obj (&r, x, "oci", "linux", &lx) < 0)
    return -1;
  if (pro && read_extras_process (&r, pro, &p->process) < 0)
    return -1;
  if (lx
      && (read_ns_paths (&r, lx, p) < 0 || read_devices (&r, lx, p) < 0 || read_sysctl (&r, lx, p) < 0
          || read_seccomp (&r, lx, p) < 0 || read_propagation (&r, lx, p) < 0 || read_personality (&r, lx, p) < 0
          || read_time_offsets (&r, lx, p) < 0 || read_resources (&r, lx, &p->res) < 0
          || read_linux_misc (&r, lx, p) < 0))
    return -1;
  return 0;
}
