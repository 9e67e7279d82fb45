/* cella ps | inspect | logs | top | port: reading containers, never changing them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../engine/volume.h"
#include "../net/net.h"
#include "../engine/container.h"
#include "../engine/health.h"
#include "../engine/logfile.h"
#include "../backend/backend.h"
#include "../vm/vm.h"
#include "../cgroup/cgroup.h"
#include "commands.h"
#include "../util/json.h"
#include "../util/options.h"

struct ro_opts {
  bool all, quiet, no_trunc, follow, timestamps, console;
  char *format, *tail, *since, *until;
  char **filters;
};

#define O(f) offsetof (struct ro_opts, f)
static const struct cli_option ps_table[] = {
  { "all", 'a', OPT_FLAG, O (all), NULL, "Show all containers (default: running ones)" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Only print ids" },
  { "no-trunc", 0, OPT_FLAG, O (no_trunc), NULL, "Do not shorten ids and commands" },
  { "format", 0, OPT_STRING, O (format), "table|json", "Output format (json: one array of objects)" },
  { "filter", 'f', OPT_LIST, O (filters), "KEY=VALUE",
    "name=SUBSTRING, status=created|running|restarting|exited|removing, id=PREFIX, health=starting|healthy|unhealthy|none" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option inspect_table[] = {
  { "format", 'f', OPT_STRING, O (format), "TEMPLATE", "Print {{.Path.To.Field}} of each container instead of JSON" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option logs_table[] = {
  { "follow", 'f', OPT_FLAG, O (follow), NULL, "Keep printing new output until the container stops" },
  { "tail", 'n', OPT_STRING, O (tail), "N", "Only the last N lines (all: everything)" },
  { "since", 0, OPT_STRING, O (since), "TIME",
    "Only output since TIME (RFC3339, unix seconds, or a duration like 10m)" },
  { "until", 0, OPT_STRING, O (until), "TIME", "Only output before TIME" },
  { "timestamps", 't', OPT_FLAG, O (timestamps), NULL, "Prefix each line with its time" },
  { "console", 0, OPT_FLAG, O (console), NULL, "vm backend: the guest kernel's console log instead" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_options[] = { { NULL, 0, 0, 0, NULL, NULL } };
#undef O

static void
ro_opts_free (struct ro_opts *o)
{
  free (o->format);
  free (o->tail);
  free (o->since);
  free (o->until);
  strv_free (o->filters);
}

static int
parse (const struct cli_option *t, struct ro_opts *o, int argc, char **argv, const char *usage, const char *summary,
       int min_args, int *status)
{
  return cli_parse_command (t, o, argc, argv, usage, summary, min_args, "a container is required", status);
}

static char *
rfc3339 (long long ns)
{
  char buf[64];
  if (ns <= 0)
    return xstrdup ("0001-01-01T00:00:00Z");
  log_format_time (ns, buf, sizeof buf);
  return xstrdup (buf);
}

/* "5 seconds", "3 minutes", "2 hours", "4 days" */
static char *
human_since (long long ns)
{
  long long s = (now_ns () - ns) / 1000000000LL;
  if (s < 1)
    return xstrdup ("Less than a second");
  if (s < 60)
    return xasprintf ("%lld second%s", s, s == 1 ? "" : "s");
  if (s < 3600)
    return xasprintf ("%lld minute%s", s / 60, s / 60 == 1 ? "" : "s");
  if (s < 86400)
    return xasprintf ("%lld hour%s", s / 3600, s / 3600 == 1 ? "" : "s");
  return xasprintf ("%lld day%s", s / 86400, s / 86400 == 1 ? "" : "s");
}

/* docker's state word: "paused" for a running container whose cgroup is frozen */
static const char *
st_name (const struct ctr_state *st)
{
  return st->paused && st->status == CTR_RUNNING ? "paused" : ctr_status_name (st->status);
}

static char *
status_text (const struct ctr_state *st)
{
  cleanup_free char *ago = NULL;
  switch (st->status)
    {
    case CTR_RUNNING:
      ago = human_since (st->started_ns);
      /* docker's words */
      if (st->paused)
        return xasprintf ("Up %s (Paused)", ago);
      if (st->health == HEALTH_STARTING)
        return xasprintf ("Up %s (health: starting)", ago);
      if (st->health != HEALTH_NONE)
        return xasprintf ("Up %s (%s)", ago, ctr_health_name (st->health));
      return xasprintf ("Up %s", ago);
    case CTR_RESTARTING:
      ago = human_since (st->finished_ns);
      return xasprintf ("Restarting (%d) %s ago", st->exit_code, ago);
    case CTR_EXITED:
      ago = human_since (st->finished_ns);
      return xasprintf ("Exited (%d) %s ago", st->exit_code, ago);
    case CTR_REMOVING:
      return xstrdup ("Removing");
    case CTR_CREATED:
    default:
      return xstrdup ("Created");
    }
}

static bool
matches (const struct ctr_state *st, char *const *filters, bool all)
{
  for (size_t i = 0; filters && filters[i]; i++)
    {
      const char *f = filters[i];
      if (has_prefix (f, "name=") && (st->name == NULL || strstr (st->name, f + 5) == NULL))
        return false;
      if (has_prefix (f, "status=") && strcmp (st_name (st), f + 7) != 0)
        return false;
      if (has_prefix (f, "id=") && !has_prefix (st->id, f + 3))
        return false;
      if (has_prefix (f, "health=") && strcmp (ctr_health_name (st->health), f + 7) != 0)
        return false;
    }
  return all || st->status == CTR_RUNNING || st->status == CTR_RESTARTING
         || (filters && filters[0] && has_prefix (filters[0], "status="));
}

static int
check_filters (char *const *filters, cella_error_t *err)
{
  static const char *const statuses[] = { "created", "running", "restarting", "exited", "removing", "paused" };
  for (size_t i = 0; filters && filters[i]; i++)
    {
      const char *f = filters[i];
      bool ok = has_prefix (f, "name=") || has_prefix (f, "id=");
      for (size_t k = 0; k < 6 && !ok; k++)
        ok = has_prefix (f, "status=") && strcmp (f + 7, statuses[k]) == 0;
      for (int k = HEALTH_NONE; k <= HEALTH_UNHEALTHY && !ok; k++)
        ok = has_prefix (f, "health=") && strcmp (f + 7, ctr_health_name ((enum ctr_health) k)) == 0;
      if (!ok)
        return cella_error (
            err, 0,
            "ps: filter `%s`: expected name=.., id=.., status=created|running|paused|restarting|exited|removing "
            "or health=starting|healthy|unhealthy|none",
            f);
    }
  return 0;
}

static json_t *
ps_json (const struct ctr_state *st)
{
  cleanup_free char *created = rfc3339 (st->created_ns), *status = status_text (st);
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s}", "Id", st->id, "Names",
                    st->name ? st->name : "", "Image", st->image ? st->image : "", "Command",
                    st->command ? st->command : "", "CreatedAt", created, "State", st_name (st), "Status", status,
                    "ExitCode", st->exit_code, "Pid", st->status == CTR_RUNNING ? st->pid : 0, "RestartCount",
                    st->restart_count, "Health", st->health == HEALTH_NONE ? "" : ctr_health_name (st->health));
}

static void
ps_row (const struct ctr_state *st, bool no_trunc)
{
  cleanup_free char *since = human_since (st->created_ns), *status = status_text (st);
  cleanup_free char *created = xasprintf ("%s ago", since);
  cleanup_free char *cmd = xasprintf ("\"%s\"", st->command ? st->command : "");
  if (!no_trunc && strlen (cmd) > 22)
    strcpy (cmd + 18, "...\"");
  printf ("%-14.*s %-15s %-22s %-16s %-26s %s\n", no_trunc ? 64 : 12, st->id, st->image ? st->image : "", cmd, created,
          status, st->name ? st->name : "");
}

int
cmd_ps (int argc, char **argv)
{
  struct ro_opts o = { 0 };
  cella_error_t err = NULL;
  struct ctr_state *v = NULL;
  size_t n = 0;
  bool json;
  int status, first = parse (ps_table, &o, argc, argv, "cella ps [-a] [-q] [--format table|json] [--filter K=V]",
                             "List containers (running ones; -a: all).", 0, &status);
  if (first <= 0)
    goto out;
  json = o.format && strcmp (o.format, "json") == 0;
  if (o.format && !json && strcmp (o.format, "table") != 0)
    {
      cella_error (&err, 0, "ps: --format `%s`: expected table or json", o.format);
      status = cella_error_print (&err);
      goto out;
    }
  if (check_filters (o.filters, &err) < 0 || ctr_list (&v, &n, &err) < 0)
    {
      status = cella_error_print (&err);
      goto out;
    }
  if (json)
    {
      json_t *a = json_array ();
      char *text;
      for (size_t i = 0; i < n; i++)
        if (matches (&v[i], o.filters, o.all))
          json_array_append_new (a, o.quiet ? json_string (v[i].id) : ps_json (&v[i]));
      text = json_dumps (a, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      puts (text);
      free (text);
      json_decref (a);
    }
  else
    {
      if (!o.quiet)
        printf ("%-14s %-15s %-22s %-16s %-26s %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES");
      for (size_t i = 0; i < n; i++)
        if (matches (&v[i], o.filters, o.all))
          {
            if (o.quiet)
              printf ("%.*s\n", o.no_trunc ? 64 : 12, v[i].id);
            else
              ps_row (&v[i], o.no_trunc);
          }
    }
out:
  ctr_list_free (v, n);
  ro_opts_free (&o);
  return status;
}

json_t *
cli_device_rules_json (const struct plan *p)
{
  json_t *a;
  size_t n;
  struct plan_dev_rule *rules;
  if (!backend_can (p, BACKEND_CAP_CGROUP_LIMITS))
    return json_null ();
  if (p->privileged)
    return json_pack ("[s]", "allow a *:* rwm");
  if (!cgroup_devices_confined (p))
    return json_null ();
  a = json_array ();
  rules = cgroup_dev_rules (&p->res, &n);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *t = cgroup_dev_rule_text (&rules[i]);
      json_array_append_new (a, json_sprintf ("%s %s", rules[i].allow ? "allow" : "deny", t));
    }
  free (rules);
  return a;
}

/* docker's --device entries: the plan's nodes that came from a host path, with the permissions of their rule */
static json_t *
host_config_devices (const struct plan *p)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < p->ndevices; i++)
    {
      const struct plan_device *d = &p->devices[i];
      const char *perms = "rwm";
      if (d->host_path == NULL)
        continue;
      for (size_t k = 0; k < p->res.ndev_rules; k++)
        if (p->res.dev_rules[k].allow && p->res.dev_rules[k].type == d->type && p->res.dev_rules[k].major == d->major
            && p->res.dev_rules[k].minor == d->minor)
          perms = p->res.dev_rules[k].access;
      json_array_append_new (a, json_pack ("{s:s, s:s, s:s}", "PathOnHost", d->host_path, "PathInContainer", d->path,
                                           "CgroupPermissions", perms));
    }
  return a;
}

/* docker's names for the cgroup limits (0: not set; PidsLimit null when not set) */
static void
host_config_resources (json_t *hc, const struct plan_resources *r)
{
  json_object_set_new (hc, "Memory", json_integer (r->memory));
  json_object_set_new (hc, "MemoryReservation", json_integer (r->memory_reservation));
  json_object_set_new (hc, "MemorySwap", json_integer (r->memory_swap));
  json_object_set_new (hc, "NanoCpus", json_integer (r->nano_cpus));
  json_object_set_new (hc, "CpuShares", json_integer ((json_int_t) r->cpu_shares));
  json_object_set_new (hc, "CpuQuota", json_integer (r->nano_cpus ? 0 : r->cpu_quota));
  json_object_set_new (hc, "CpuPeriod", json_integer (r->nano_cpus ? 0 : (json_int_t) r->cpu_period));
  json_object_set_new (hc, "CpusetCpus", json_string (r->cpuset_cpus ? r->cpuset_cpus : ""));
  json_object_set_new (hc, "CpusetMems", json_string (r->cpuset_mems ? r->cpuset_mems : ""));
  json_object_set_new (hc, "PidsLimit", r->pids_limit ? json_integer (r->pids_limit) : json_null ());
  json_object_set_new (hc, "BlkioWeight", json_integer (r->io_weight));
  json_object_set_new (hc, "CgroupParent", json_string (r->cgroups_path ? r->cgroups_path : ""));
}

/* docker's State.Health: Status, FailingStreak, Log [{Start, End, ExitCode, Output}] */
static json_t *
health_json (const struct ctr_state *st)
{
  json_t *log = json_array ();
  for (int i = 0; i < st->health_nlog; i++)
    {
      const struct ctr_health_result *r = &st->health_log[i];
      cleanup_free char *start = rfc3339 (r->start_ns), *end = rfc3339 (r->end_ns);
      json_array_append_new (log, json_pack ("{s:s, s:s, s:i, s:s}", "Start", start, "End", end, "ExitCode",
                                             r->exit_code, "Output", r->output ? r->output : ""));
    }
  return json_pack ("{s:s, s:i, s:o}", "Status", ctr_health_name (st->health), "FailingStreak", st->failing_streak,
                    "Log", log);
}

/* docker's Mounts, for the volumes the record names (binds and tmpfs are in the plan) */
static json_t *
mounts_json (const struct ctr_state *st)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < st->nvolumes; i++)
    {
      struct volume v;
      bool have = volume_load (st->volumes[i].name, &v, NULL) == 0;
      json_array_append_new (a, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "Type", "volume", "Name",
                                           st->volumes[i].name, "Source", have ? v.mountpoint : "", "Destination",
                                           st->volumes[i].target, "Driver", "local", "RW", !st->volumes[i].readonly,
                                           "Anonymous", st->volumes[i].anonymous));
      if (have)
        volume_clear (&v);
    }
  return a;
}

/* docker's NetworkSettings: each network the container is on (Networks, with its address, MAC and
 * names there, from the leases while it runs; the plan's networks with empty addresses when it
 * does not), the first network's address at the top. */
static json_t *
network_settings (const struct ctr_state *st, const struct plan *p)
{
  json_t *ns = json_object (), *nets = json_object ();
  struct net_membership *m = NULL;
  size_t n = 0;
  const char *first = p->net == NET_PRIVATE ? (p->network ? p->network : NET_DEFAULT_NAME) : NULL;
  if (st->status == CTR_RUNNING && p->net == NET_PRIVATE)
    net_memberships (st->id, &m, &n);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *a = net_addr_str (m[i].addr), *gw = net_addr_str (m[i].gateway);
      char mac[18];
      json_t *al = json_array (), *e;
      char *save = NULL;
      snprintf (mac, sizeof mac, "02:42:%02x:%02x:%02x:%02x", m[i].addr >> 24, (m[i].addr >> 16) & 0xff,
                (m[i].addr >> 8) & 0xff, m[i].addr & 0xff);
      for (char *t = strtok_r (m[i].names, ",", &save); t; t = strtok_r (NULL, ",", &save))
        if (strcmp (t, "-") != 0)
          json_array_append_new (al, json_string (t));
      e = json_pack ("{s:s, s:i, s:s, s:s, s:o}", "IPAddress", a, "IPPrefixLen", m[i].prefix, "Gateway", gw,
                     "MacAddress", mac, "Aliases", al);
      if (first && strcmp (m[i].net, first) == 0)
        {
          json_object_set_new (ns, "IPAddress", json_string (a));
          json_object_set_new (ns, "IPPrefixLen", json_integer (m[i].prefix));
          json_object_set_new (ns, "Gateway", json_string (gw));
          json_object_set_new (ns, "MacAddress", json_string (mac));
        }
      json_object_set_new (nets, m[i].net, e);
      free (m[i].names);
    }
  free (m);
  if (n == 0 && first)
    {
      /* not running: the networks it starts on */
      json_object_set_new (nets, first,
                           json_pack ("{s:s, s:i, s:s, s:s, s:[]}", "IPAddress", "", "IPPrefixLen", 0, "Gateway", "",
                                      "MacAddress", "", "Aliases"));
      for (size_t i = 0; p->networks_extra && p->networks_extra[i]; i++)
        json_object_set_new (nets, p->networks_extra[i],
                             json_pack ("{s:s, s:i, s:s, s:s, s:[]}", "IPAddress", "", "IPPrefixLen", 0, "Gateway", "",
                                        "MacAddress", "", "Aliases"));
    }
  if (json_object_get (ns, "IPAddress") == NULL)
    json_object_set_new (ns, "IPAddress", json_string (""));
  json_object_set_new (ns, "Networks", nets);
  return ns;
}

static json_t *
inspect_json (const char *id, const struct ctr_state *st)
{
  cleanup_free char *created = rfc3339 (st->created_ns), *started = rfc3339 (st->started_ns);
  cleanup_free char *finished = rfc3339 (st->finished_ns), *log = ctr_log_path (id), *dir = ctr_dir (id);
  struct plan *p = NULL;
  json_t *o, *state, *plan_json = json_null ();
  if (ctr_plan_load (id, &p, NULL) == 0)
    {
      char *text = plan_to_json (p);
      plan_json = json_loads (text, 0, NULL);
      free (text);
    }
  state = json_pack ("{s:s, s:b, s:b, s:b, s:i, s:i, s:s?, s:s, s:s, s:i}", "Status", st_name (st), "Running",
                     st->status == CTR_RUNNING, "Restarting", st->status == CTR_RESTARTING, "Dead", false, "Pid",
                     st->status == CTR_RUNNING ? st->pid : 0, "ExitCode", st->exit_code < 0 ? 0 : st->exit_code,
                     "Error", st->error, "StartedAt", started, "FinishedAt", finished, "MonitorPid",
                     st->status == CTR_RUNNING || st->status == CTR_RESTARTING ? st->monitor_pid : 0);
  json_object_set_new (state, "OOMKilled", json_boolean (st->oom_killed));
  json_object_set_new (state, "Paused", json_boolean (st->paused && st->status == CTR_RUNNING));
  if (st->hc.test)
    json_object_set_new (state, "Health", health_json (st));
  o = json_pack ("{s:s, s:s, s:s, s:o, s:s, s:s}", "Id", id, "Name", st->name ? st->name : "", "Created", created,
                 "State", state, "Image", st->image ? st->image : "", "Backend", "ns");
  if (p)
    {
      json_t *args = json_array ();
      const struct backend *b = backend_of (p);
      json_object_set_new (o, "Backend", json_string (b->name));
      json_object_set_new (o, "RootCopy", p->root_copy ? json_string (p->root_copy) : json_null ());
      if (b->inspect)
        {
          cleanup_free char *cdir = ctr_dir (id), *bstate = backend_state_dir (b, cdir);
          b->inspect (p, bstate, o);
        }
      for (size_t i = 1; p->process.argv && p->process.argv[i]; i++)
        json_array_append_new (args, json_string (p->process.argv[i]));
      json_object_set_new (o, "Path", json_string (p->process.argv ? p->process.argv[0] : ""));
      json_object_set_new (o, "Args", args);
      json_object_set_new (o, "Rootfs", json_string (p->rootfs ? p->rootfs : ""));
      json_object_set_new (o, "UpperDir", p->root_upper ? json_string (p->root_upper) : json_null ());
    }
  json_object_set_new (
      o, "Entrypoint",
      json_pack ("{s:s?, s:b}", "Detected", st->entrypoint, "FromCommandLine", st->entrypoint == NULL));
  json_object_set_new (o, "Mounts", mounts_json (st));
  json_object_set_new (o, "LogPath", json_string (log));
  json_object_set_new (o, "Dir", json_string (dir));
  json_object_set_new (o, "RestartCount", json_integer (st->restart_count));
  json_object_set_new (o, "HostConfig",
                       json_pack ("{s:{s:s, s:i}, s:b, s:I}", "RestartPolicy", "Name",
                                  restart_policy_name (st->restart), "MaximumRetryCount", st->restart_max, "AutoRemove",
                                  st->auto_remove, "LogMaxSize", (json_int_t) st->log_max_size));
  if (p)
    {
      json_t *hc = json_object_get (o, "HostConfig");
      host_config_resources (hc, &p->res);
      json_object_set_new (hc, "Privileged", json_boolean (p->privileged));
      json_object_set_new (hc, "Devices", host_config_devices (p));
      json_object_set_new (hc, "DeviceRules", cli_device_rules_json (p));
      /* docker's: "" when not asked for (the host's), else the mode */
      json_object_set_new (hc, "UsernsMode", json_string (p->userns_mode ? p->userns_mode : ""));
    }
  json_object_set_new (o, "Config", json_pack ("{s:b}", "Tty", st->tty));
  if (st->hc.test)
    {
      json_t *cfg = json_object_get (o, "Config");
      json_object_set_new (cfg, "Healthcheck",
                           json_pack ("{s:o, s:I, s:I, s:I, s:i}", "Test", json_strv (st->hc.test), "Interval",
                                      (json_int_t) st->hc.interval_ns, "Timeout", (json_int_t) st->hc.timeout_ns,
                                      "StartPeriod", (json_int_t) st->hc.start_period_ns, "Retries", st->hc.retries));
      json_object_set_new (cfg, "HealthcheckOnFailureAction", json_string (health_action_name (st->hc.on_failure)));
    }
  {
    json_t *labels = json_object ();
    for (size_t i = 0; p && p->labels && p->labels[i]; i++)
      {
        const char *eq = strchr (p->labels[i], '=');
        cleanup_free char *k = eq ? strndup (p->labels[i], (size_t) (eq - p->labels[i])) : xstrdup (p->labels[i]);
        json_object_set_new (labels, k, json_string (eq ? eq + 1 : ""));
      }
    json_object_set_new (json_object_get (o, "Config"), "Labels", labels);
  }
  if (p && p->backend != BACKEND_PROOT)
    json_object_set_new (o, "NetworkSettings", network_settings (st, p));
  json_object_set_new (o, "Plan", plan_json ? plan_json : json_null ());
  plan_free (p);
  return o;
}

int
cmd_inspect (int argc, char **argv)
{
  struct ro_opts o = { 0 };
  json_t *all = json_array ();
  int status, first = parse (inspect_table, &o, argc, argv, "cella inspect [-f TEMPLATE] CONTAINER...",
                             "Print containers' configuration and state as a JSON array.", 1, &status);
  for (int i = first; first > 0 && i < argc; i++)
    {
      cella_error_t err = NULL;
      cleanup_free char *id = NULL;
      struct ctr_state st;
      json_t *j;
      if (ctr_lookup (argv[i], &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
        {
          status = cella_error_print (&err);
          continue;
        }
      j = inspect_json (id, &st);
      ctr_state_clear (&st);
      if (o.format)
        {
          cli_print_template (o.format, j);
          json_decref (j);
        }
      else
        json_array_append_new (all, j);
    }
  if (first > 0 && !o.format)
    {
      char *text = json_dumps (all, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      puts (text);
      free (text);
    }
  json_decref (all);
  ro_opts_free (&o);
  return status;
}

static bool
still_running (void *ud)
{
  struct ctr_state st;
  bool r;
  if (ctr_state_read (ud, &st, -1, NULL) < 0)
    return false;
  r = st.status == CTR_RUNNING || st.status == CTR_RESTARTING;
  ctr_state_clear (&st);
  return r;
}

int
cmd_logs (int argc, char **argv)
{
  struct ro_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL, *path = NULL;
  struct log_read_opts r = { .tail = -1 };
  struct ctr_state st;
  int status,
      first = parse (logs_table, &o, argc, argv, "cella logs [-f] [--tail N] [--since T] [--until T] [-t] CONTAINER",
                     "Print a container's output (kept by its monitor, rotated at --log-opt max-size).", 1, &status);
  if (first <= 0)
    goto out;
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
    goto fail;
  if (st.started_ns == 0)
    {
      cella_error (&err, 0, "container `%s` has never run, so it has no logs (start it with `cella start %s`)",
                   argv[first], argv[first]);
      ctr_state_clear (&st);
      goto fail;
    }
  ctr_state_clear (&st);
  if (o.console)
    {
      /* the vm backend keeps the guest's console (ttyS0) apart from the workload's output */
      cleanup_free char *dir = ctr_dir (id), *con = xasprintf ("%s/vm/console.log", dir), *text = NULL;
      size_t len = 0;
      if (read_file (con, &text, &len, NULL) < 0)
        {
          cella_error (&err, 0,
                       "logs --console: container `%s` has no console log (only vm backend containers have one)",
                       argv[first]);
          goto fail;
        }
      fwrite (text, 1, len, stdout);
      goto out;
    }
  if (o.tail && strcmp (o.tail, "all") != 0 && (r.tail = parse_uint (o.tail, 1LL << 40)) < 0)
    {
      cella_error (&err, 0, "logs: --tail `%s`: expected a number of lines or `all`", o.tail);
      goto fail;
    }
  if ((o.since && log_parse_time (o.since, now_ns (), &r.since_ns, &err) < 0)
      || (o.until && log_parse_time (o.until, now_ns (), &r.until_ns, &err) < 0))
    goto fail;
  r.timestamps = o.timestamps;
  r.follow = o.follow;
  r.keep_following = still_running;
  r.ud = id;
  path = ctr_log_path (id);
  if (log_read (path, &r, 1, 2, &err) < 0)
    goto fail;
  goto out;
fail:
  status = cella_error_print (&err);
out:
  ro_opts_free (&o);
  return status;
}

/* Processes in the container: those in its pid namespace. */
/* /proc/PID/stat's parent pid (field 4, after the parenthesised name), -1 when gone. */
static long
proc_ppid (const char *pid)
{
  char path[64], buf[1024];
  ssize_t n;
  int fd;
  snprintf (path, sizeof path, "/proc/%s/stat", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  const char *rp = strrchr (buf, ')');
  long ppid;
  return rp && sscanf (rp + 1, " %*c %ld", &ppid) == 1 ? ppid : -1;
}

/* A proot container shares the host's pid namespace: its processes are proot's (the recorded
 * pid) and its descendants. */
static bool
proot_member (pid_t root, const char *pid)
{
  long p = parse_uint (pid, 1 << 30);
  for (int depth = 0; p > 1 && depth < 4096; depth++)
    {
      char buf[24];
      if (p == root)
        return true;
      snprintf (buf, sizeof buf, "%ld", p);
      p = proc_ppid (buf);
    }
  return false;
}

int
cmd_top (int argc, char **argv)
{
  struct ro_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL, *ns_path = NULL;
  char want[64], got[64];
  struct ctr_state st;
  DIR *d;
  struct dirent *e;
  ssize_t n;
  pid_t proot_root;
  int status,
      first = parse (
          no_options, &o, argc, argv, "cella top CONTAINER",
          "List the processes of a running container (a vm's from inside its guest; a proot one's: proot and its descendants).",
          1, &status);
  if (first <= 0)
    return status;
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_state_read (id, &st, -1, &err) < 0)
    return cella_error_print (&err);
  if (st.status != CTR_RUNNING)
    {
      cella_error (&err, 0, "container `%s` is not running (status: %s)", argv[first], ctr_status_name (st.status));
      ctr_state_clear (&st);
      return cella_error_print (&err);
    }
  {
    cleanup_plan struct plan *p = NULL;
    if (ctr_plan_load (id, &p, &err) < 0)
      {
        ctr_state_clear (&st);
        return cella_error_print (&err);
      }
    if (p->backend == BACKEND_VM)
      {
        /* the guest's own table, through its exec channel */
        cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (backend_of (p), dir);
        bool paused = st.paused;
        ctr_state_clear (&st);
        if (paused)
          cella_error (&err, 0, "container `%s` is paused: unpause it first with `cella unpause %s`", argv[first],
                       argv[first]);
        fflush (stdout);
        if (paused || vm_top (state, 1, &err) < 0)
          return cella_error_print (&err);
        return 0;
      }
    proot_root = p->backend == BACKEND_PROOT ? st.pid : 0;
  }
  ns_path = xasprintf ("/proc/%d/ns/pid", (int) st.pid);
  ctr_state_clear (&st);
  n = readlink (ns_path, want, sizeof want - 1);
  if (n < 0)
    {
      cella_error (&err, errno, "read `%s`", ns_path);
      return cella_error_print (&err);
    }
  want[n] = '\0';
  printf ("%-8s %-8s %s\n", "PID", "UID", "CMD");
  d = opendir ("/proc");
  while (d && (e = readdir (d)) != NULL)
    {
      char path[300], cmd[512];
      struct stat sb;
      ssize_t len;
      int fd;
      if (parse_uint (e->d_name, 1 << 30) <= 0)
        continue;
      snprintf (path, sizeof path, "/proc/%s/ns/pid", e->d_name);
      if ((len = readlink (path, got, sizeof got - 1)) < 0)
        continue;
      got[len] = '\0';
      if (proot_root ? !proot_member (proot_root, e->d_name) : strcmp (got, want) != 0)
        continue;
      snprintf (path, sizeof path, "/proc/%s/cmdline", e->d_name);
      fd = open (path, O_RDONLY | O_CLOEXEC);
      len = fd >= 0 ? read (fd, cmd, sizeof cmd - 1) : -1;
      if (fd >= 0)
        close (fd);
      if (len < 0)
        len = 0;
      cmd[len] = '\0';
      for (ssize_t i = 0; i + 1 < len; i++)
        if (cmd[i] == '\0')
          cmd[i] = ' ';
      snprintf (path, sizeof path, "/proc/%s", e->d_name);
      printf ("%-8s %-8u %s\n", e->d_name, stat (path, &sb) == 0 ? (unsigned) sb.st_uid : 0u, cmd);
    }
  if (d)
    closedir (d);
  return 0;
}

int
cmd_port (int argc, char **argv)
{
  struct ro_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  int status, first = parse (no_options, &o, argc, argv, "cella port CONTAINER", "List a container's published ports.",
                             1, &status);
  if (first <= 0)
    return status;
  if (ctr_lookup (argv[first], &id, &err) < 0)
    return cella_error_print (&err);
  {
    /* the proot backend's ports (the host's network), or a running private network's as leased */
    cleanup_plan struct plan *p = NULL;
    cleanup_strv char **leased = net_ports_of (id);
    if (ctr_plan_load (id, &p, &err) < 0)
      return cella_error_print (&err);
    if (backend_can (p, BACKEND_CAP_PORT_FILE))
      {
        /* the ports as the backend's supervisor set them up (a VM's hostfwd rules, random host
         * ports resolved); nothing while it is not running */
        struct ctr_state st = { 0 };
        cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (backend_of (p), dir);
        cleanup_free char *path = xasprintf ("%s/ports", state), *text = NULL;
        bool running = ctr_state_read (id, &st, -1, NULL) == 0 && st.status == CTR_RUNNING;
        ctr_state_clear (&st);
        if (running && read_file (path, &text, NULL, NULL) == 0)
          fputs (text, stdout);
        return 0;
      }
    if (leased)
      {
        for (size_t i = 0; leased[i]; i++)
          puts (leased[i]);
        return 0;
      }
    for (size_t i = 0; p->ports && p->ports[i]; i++)
      {
        char ip[64] = "";
        unsigned host = 0, ctr = 0;
        char proto[8] = "tcp";
        if (sscanf (p->ports[i], "%63[^:]:%u:%u/%7s", ip, &host, &ctr, proto) < 3
            && sscanf (p->ports[i], ":%u:%u/%7s", &host, &ctr, proto) < 2)
          continue;
        printf ("%u/%s -> %s:%u\n", ctr, proto, *ip ? ip : "0.0.0.0", host);
      }
  }
  return 0;
}
