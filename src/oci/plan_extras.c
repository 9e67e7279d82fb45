/* The plan's OCI additions in a saved plan: written here in the OCI form under "oci", read
 * back by oci_plan_extras_from_json (config.c) with the same checks as config.json. */
#define _GNU_SOURCE
#include "oci.h"
#include "../util/json.h"

#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>

/* "k=v" list → {"k": "v"} */
static json_t *
kv_json (char *const *v)
{
  json_t *o = json_object ();
  for (size_t i = 0; v && v[i]; i++)
    {
      const char *eq = strchr (v[i], '=');
      cleanup_free char *k = eq ? strndup (v[i], (size_t) (eq - v[i])) : xstrdup (v[i]);
      json_object_set_new (o, k, json_string (eq ? eq + 1 : ""));
    }
  return o;
}

static json_t *
caps_json (uint64_t set)
{
  json_t *a = json_array ();
  for (int c = 0; c < 64; c++)
    if (set & (UINT64_C (1) << c))
      {
        char *name = cap_to_name (c);
        if (name)
          {
            /* libcap writes "cap_chown"; OCI wants "CAP_CHOWN" */
            cleanup_free char *up = xstrdup (name);
            for (char *s = up; *s; s++)
              *s = (char) (*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
            json_array_append_new (a, json_string (up));
            cap_free (name);
          }
      }
  return a;
}

static const char *
rlimit_name (int res)
{
  static const char *const n[RLIM_NLIMITS] = {
    [RLIMIT_CPU] = "RLIMIT_CPU",           [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
    [RLIMIT_DATA] = "RLIMIT_DATA",         [RLIMIT_STACK] = "RLIMIT_STACK",
    [RLIMIT_CORE] = "RLIMIT_CORE",         [RLIMIT_RSS] = "RLIMIT_RSS",
    [RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
    [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",   [RLIMIT_AS] = "RLIMIT_AS",
    [RLIMIT_LOCKS] = "RLIMIT_LOCKS",       [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
    [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
    [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",     [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
  };
  return res >= 0 && res < RLIM_NLIMITS && n[res] ? n[res] : "?";
}

static json_t *
process_json (const struct plan_process *pr)
{
  json_t *o = json_object ();
  if (pr->nrlimits)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < pr->nrlimits; i++)
        json_array_append_new (a,
                               json_pack ("{s:s, s:I, s:I}", "type", rlimit_name (pr->rlimits[i].resource), "soft",
                                          (json_int_t) pr->rlimits[i].soft, "hard", (json_int_t) pr->rlimits[i].hard));
      json_object_set_new (o, "rlimits", a);
    }
  if (pr->has_umask)
    json_object_set_new (o, "umask", json_integer (pr->umask));
  if (pr->has_oom_score_adj)
    json_object_set_new (o, "oomScoreAdj", json_integer (pr->oom_score_adj));
  if (pr->capsets.set)
    json_object_set_new (o, "capabilities",
                         json_pack ("{s:o, s:o, s:o, s:o, s:o}", "bounding", caps_json (pr->capsets.bounding),
                                    "effective", caps_json (pr->capsets.effective), "permitted",
                                    caps_json (pr->capsets.permitted), "inheritable",
                                    caps_json (pr->capsets.inheritable), "ambient", caps_json (pr->capsets.ambient)));
  if (pr->apparmor_profile)
    json_object_set_new (o, "apparmorProfile", json_string (pr->apparmor_profile));
  if (pr->selinux_label)
    json_object_set_new (o, "selinuxLabel", json_string (pr->selinux_label));
  if (pr->console_height || pr->console_width)
    json_object_set_new (
        o, "consoleSize",
        json_pack ("{s:i, s:i}", "height", (int) pr->console_height, "width", (int) pr->console_width));
  return o;
}

static json_t *
seccomp_json (const struct plan_seccomp *s)
{
  json_t *o = json_object (), *sys = json_array ();
  json_object_set_new (o, "defaultAction", json_string (plan_scmp_action_name (s->default_action)));
  if (s->default_errno >= 0)
    json_object_set_new (o, "defaultErrnoRet", json_integer (s->default_errno));
  if (s->arches)
    json_object_set_new (o, "architectures", json_strv (s->arches));
  if (s->flags)
    json_object_set_new (o, "flags", json_strv (s->flags));
  if (s->listener_path)
    json_object_set_new (o, "listenerPath", json_string (s->listener_path));
  if (s->listener_metadata)
    json_object_set_new (o, "listenerMetadata", json_string (s->listener_metadata));
  for (size_t i = 0; i < s->nrules; i++)
    {
      const struct plan_scmp_rule *r = &s->rules[i];
      json_t *ro = json_pack ("{s:o, s:s}", "names", json_strv (r->names), "action", plan_scmp_action_name (r->action));
      if (r->errno_ret >= 0)
        json_object_set_new (ro, "errnoRet", json_integer (r->errno_ret));
      if (r->nargs)
        {
          json_t *a = json_array ();
          for (size_t j = 0; j < r->nargs; j++)
            json_array_append_new (a, json_pack ("{s:i, s:I, s:I, s:s}", "index", (int) r->args[j].index, "value",
                                                 (json_int_t) r->args[j].value, "valueTwo",
                                                 (json_int_t) r->args[j].value_two, "op",
                                                 plan_scmp_op_name (r->args[j].op)));
          json_object_set_new (ro, "args", a);
        }
      json_array_append_new (sys, ro);
    }
  json_object_set_new (o, "syscalls", sys);
  return o;
}

static json_t *
resources_json (const struct plan_resources *r)
{
  static const char *const thr[]
      = { "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
  json_t *o = json_object (), *mem = json_object (), *bio = json_object ();
  /* memory, cpu, pids, io weight and cgroupsPath are the plan's own "resources" key */
  if (r->has_swappiness)
    json_object_set_new (mem, "swappiness", json_integer ((json_int_t) r->memory_swappiness));
  if (r->disable_oom_killer)
    json_object_set_new (mem, "disableOOMKiller", json_true ());
  if (r->memory_kernel_tcp)
    json_object_set_new (mem, "kernelTCP", json_integer ((json_int_t) r->memory_kernel_tcp));
  for (int k = 0; k < 4; k++)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < r->nio_throttle; i++)
        if ((int) r->io_throttle[i].kind == k)
          json_array_append_new (a, json_pack ("{s:I, s:I, s:I}", "major", (json_int_t) r->io_throttle[i].major,
                                               "minor", (json_int_t) r->io_throttle[i].minor, "rate",
                                               (json_int_t) r->io_throttle[i].rate));
      if (json_array_size (a))
        json_object_set_new (bio, thr[k], a);
      else
        json_decref (a);
    }
  json_object_set_new (o, "memory", mem);
  json_object_set_new (o, "blockIO", bio);
  if (r->nhugepage_limits)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < r->nhugepage_limits; i++)
        json_array_append_new (a, json_pack ("{s:s, s:I}", "pageSize", r->hugepage_limits[i].page_size, "limit",
                                             (json_int_t) r->hugepage_limits[i].limit));
      json_object_set_new (o, "hugepageLimits", a);
    }
  if (r->ndev_rules)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < r->ndev_rules; i++)
        {
          const struct plan_dev_rule *d = &r->dev_rules[i];
          char t[2] = { d->type, 0 };
          json_array_append_new (a, json_pack ("{s:b, s:s, s:I, s:I, s:s}", "allow", d->allow, "type", t, "major",
                                               (json_int_t) d->major, "minor", (json_int_t) d->minor, "access",
                                               d->access));
        }
      json_object_set_new (o, "devices", a);
    }
  if (r->unified)
    json_object_set_new (o, "unified", kv_json (r->unified));
  return o;
}

static json_t *
linux_json (const struct plan *p)
{
  json_t *o = json_object (), *nsp = json_object ();
  for (unsigned i = 0; i < PLAN_NS_COUNT; i++)
    if (p->ns_path[i])
      json_object_set_new (nsp, plan_ns_name (i), json_string (p->ns_path[i]));
  json_object_set_new (o, "namespacePaths", nsp);
  if (p->ndevices)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < p->ndevices; i++)
        {
          const struct plan_device *d = &p->devices[i];
          char t[2] = { d->type, 0 };
          json_array_append_new (a,
                                 json_pack ("{s:s, s:s, s:I, s:I, s:i, s:I, s:I}", "path", d->path, "type", t, "major",
                                            (json_int_t) d->major, "minor", (json_int_t) d->minor, "fileMode",
                                            (int) d->mode, "uid", (json_int_t) d->uid, "gid", (json_int_t) d->gid));
          if (d->host_path)
            json_object_set_new (json_array_get (a, json_array_size (a) - 1), "hostPath", json_string (d->host_path));
        }
      json_object_set_new (o, "devices", a);
    }
  if (p->sysctl)
    json_object_set_new (o, "sysctl", kv_json (p->sysctl));
  if (p->process.seccomp_profile)
    json_object_set_new (o, "seccomp", seccomp_json (p->process.seccomp_profile));
  if (p->rootfs_propagation)
    json_object_set_new (o, "rootfsPropagation", json_string (plan_propagation_name (p->rootfs_propagation)));
  if (p->personality)
    json_object_set_new (o, "personality",
                         json_pack ("{s:s}", "domain", p->personality == PERSONALITY_LINUX32 ? "LINUX32" : "LINUX"));
  if (p->has_time_offsets)
    json_object_set_new (o, "timeOffsets",
                         json_pack ("{s:{s:I, s:I}, s:{s:I, s:I}}", "monotonic", "secs",
                                    (json_int_t) p->time_offset[0][0], "nanosecs", (json_int_t) p->time_offset[0][1],
                                    "boottime", "secs", (json_int_t) p->time_offset[1][0], "nanosecs",
                                    (json_int_t) p->time_offset[1][1]));
  json_object_set_new (o, "resources", resources_json (&p->res));
  return o;
}

static json_t *
hooks_json (const struct plan *p)
{
  json_t *o = json_object ();
  for (int k = 0; k < HOOK__COUNT; k++)
    {
      json_t *a;
      if (p->nhooks[k] == 0)
        continue;
      a = json_array ();
      for (size_t i = 0; i < p->nhooks[k]; i++)
        {
          const struct plan_hook *h = &p->hooks[k][i];
          json_t *ho = json_pack ("{s:s}", "path", h->path);
          if (h->args)
            json_object_set_new (ho, "args", json_strv (h->args));
          if (h->env)
            json_object_set_new (ho, "env", json_strv (h->env));
          if (h->timeout)
            json_object_set_new (ho, "timeout", json_integer (h->timeout));
          json_array_append_new (a, ho);
        }
      json_object_set_new (o, plan_hook_name ((enum plan_hook_kind) k), a);
    }
  return o;
}

void
oci_plan_extras_to_json (const struct plan *p, json_t *root)
{
  json_t *o = json_object ();
  if (p->bundle)
    json_object_set_new (o, "bundle", json_string (p->bundle));
  if (p->domainname)
    json_object_set_new (o, "domainname", json_string (p->domainname));
  if (p->annotations)
    json_object_set_new (o, "annotations", kv_json (p->annotations));
  json_object_set_new (o, "hooks", hooks_json (p));
  json_object_set_new (o, "process", process_json (&p->process));
  json_object_set_new (o, "linux", linux_json (p));
  json_object_set_new (root, "oci", o);
}

/* ---- freeing ---- */

void
oci_seccomp_free (struct plan_seccomp *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nrules; i++)
    {
      strv_free (s->rules[i].names);
      free (s->rules[i].args);
    }
  free (s->rules);
  strv_free (s->arches);
  strv_free (s->flags);
  free (s->listener_path);
  free (s->listener_metadata);
  free (s);
}

void
oci_process_extras_free (struct plan_process *pr)
{
  free (pr->rlimits);
  pr->rlimits = NULL;
  pr->nrlimits = 0;
  oci_seccomp_free (pr->seccomp_profile);
  pr->seccomp_profile = NULL;
  free (pr->apparmor_profile);
  free (pr->selinux_label);
  pr->apparmor_profile = pr->selinux_label = NULL;
  strv_free (pr->warnings);
  pr->warnings = NULL;
}

void
oci_process_clear (struct plan_process *pr)
{
  strv_free (pr->argv);
  strv_free (pr->env);
  free (pr->cwd);
  free (pr->user);
  free (pr->groups);
  oci_process_extras_free (pr);
  memset (pr, 0, sizeof *pr);
}

void
oci_plan_extras_free (struct plan *p)
{
  struct plan_resources *r = &p->res;
  free (p->bundle);
  strv_free (p->annotations);
  free (p->domainname);
  for (int i = 0; i < PLAN_NS_COUNT; i++)
    free (p->ns_path[i]);
  strv_free (p->sysctl);
  for (size_t i = 0; i < p->ndevices; i++)
    {
      free (p->devices[i].path);
      free (p->devices[i].host_path);
    }
  free (p->devices);
  free (p->devices_host_dir);
  for (int k = 0; k < HOOK__COUNT; k++)
    {
      for (size_t i = 0; i < p->nhooks[k]; i++)
        {
          free (p->hooks[k][i].path);
          strv_free (p->hooks[k][i].args);
          strv_free (p->hooks[k][i].env);
        }
      free (p->hooks[k]);
    }
  for (size_t i = 0; i < r->nhugepage_limits; i++)
    free (r->hugepage_limits[i].page_size);
  free (r->hugepage_limits);
  free (r->io_throttle);
  free (r->dev_rules);
  strv_free (r->unified);
  oci_process_extras_free (&p->process);
}
