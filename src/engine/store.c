/* Container records on disk: names, ids, state.json, locks (container.h has the layout). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "container.h"
#include "health.h"
#include "userns.h"
#include "../backend/backend.h"
#include "../ns/ns.h"
#include "../host/probe.h"
#include "../util/json.h"
#include "../util/paths.h"

static const char *const status_names[] = { "created", "running", "restarting", "exited", "removing" };
static const char *const policy_names[] = { "no", "on-failure", "always", "unless-stopped" };

const char *
ctr_status_name (enum ctr_status s)
{
  return (unsigned) s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "unknown";
}

const char *
restart_policy_name (enum restart_policy p)
{
  return (unsigned) p < sizeof policy_names / sizeof policy_names[0] ? policy_names[p] : "no";
}

int
restart_policy_parse (const char *s, enum restart_policy *p, int *max, cella_error_t *err)
{
  const char *colon = strchr (s, ':');
  size_t n = colon ? (size_t) (colon - s) : strlen (s);
  *max = 0;
  for (size_t i = 0; i < sizeof policy_names / sizeof policy_names[0]; i++)
    if (strlen (policy_names[i]) == n && strncmp (s, policy_names[i], n) == 0)
      {
        *p = (enum restart_policy) i;
        if (colon == NULL)
          return 0;
        if (i == RESTART_ON_FAILURE)
          {
            long long m = parse_uint (colon + 1, 1000000);
            if (m >= 0)
              {
                *max = (int) m;
                return 0;
              }
          }
        break;
      }
  return cella_error (err, 0, "--restart `%s`: expected no, on-failure[:MAX-RETRIES], always or unless-stopped", s);
}

void
ctr_state_clear (struct ctr_state *s)
{
  free (s->id);
  free (s->name);
  free (s->image);
  free (s->command);
  free (s->entrypoint);
  free (s->error);
  ctr_healthcheck_clear (&s->hc);
  for (int i = 0; i < s->health_nlog && i < HEALTH_LOG_MAX; i++)
    ctr_health_result_clear (&s->health_log[i]);
  ctr_volumes_free (s->volumes, s->nvolumes);
  memset (s, 0, sizeof *s);
}

char *
ctr_dir (const char *id)
{
  return xasprintf ("%s/containers/%s", paths_data_root (), id);
}

char *
ctr_log_path (const char *id)
{
  return xasprintf ("%s/containers/%s/ctr.log", paths_data_root (), id);
}

char *
ctr_run_dir (const char *id)
{
  return xasprintf ("%s/containers/%s", paths_run_root (), id);
}

static char *
names_dir (void)
{
  return xasprintf ("%s/names", paths_data_root ());
}

char *
ctr_name_generate (void)
{
  static const char *const adj[] = { "brisk", "calm",   "eager", "fond",  "gentle", "happy", "keen", "lucid",
                                     "merry", "nimble", "proud", "quiet", "rapid",  "sly",   "tidy", "witty" };
  static const char *const noun[] = { "otter", "heron", "lynx",  "marten", "puffin", "badger", "ibis",  "gecko",
                                      "tapir", "wren",  "bison", "koala",  "okapi",  "shrew",  "stoat", "vole" };
  unsigned char r[4];
  cleanup_free char *id = paths_new_id ();
  for (int i = 0; i < 4; i++)
    r[i] = (unsigned char) (id ? strtoul ((char[]){ id[2 * i], id[2 * i + 1], 0 }, NULL, 16) : (unsigned) rand ());
  return xasprintf ("%s_%s_%02x%02x", adj[r[0] % 16], noun[r[1] % 16], r[2], r[3]);
}

/* --- state.json ----------------------------------------------------------------------------- */

static json_t *
state_json (const struct ctr_state *s)
{
  json_t *o = json_object ();
#define SETS(k, v) json_object_set_new (o, k, (v) ? json_string (v) : json_null ())
#define SETI(k, v) json_object_set_new (o, k, json_integer (v))
  SETS ("id", s->id);
  SETS ("name", s->name);
  SETS ("image", s->image);
  SETS ("command", s->command);
  SETS ("entrypoint", s->entrypoint);
  SETS ("status", ctr_status_name (s->status));
  SETI ("pid", s->pid);
  SETI ("pidStart", (json_int_t) s->pid_start);
  SETI ("monitorPid", s->monitor_pid);
  SETI ("monitorStart", (json_int_t) s->monitor_start);
  SETI ("exitCode", s->exit_code);
  json_object_set_new (o, "oomKilled", json_boolean (s->oom_killed));
  SETS ("error", s->error);
  SETI ("created", s->created_ns);
  SETI ("started", s->started_ns);
  SETI ("finished", s->finished_ns);
  SETI ("restartCount", s->restart_count);
  json_object_set_new (o, "stopRequested", json_boolean (s->stop_requested));
  if (s->paused && s->status == CTR_RUNNING)
    json_object_set_new (o, "paused", json_true ());
  SETS ("restartPolicy", restart_policy_name (s->restart));
  SETI ("restartMax", s->restart_max);
  json_object_set_new (o, "autoRemove", json_boolean (s->auto_remove));
  json_object_set_new (o, "tty", json_boolean (s->tty));
  SETI ("logMaxSize", s->log_max_size);
  if (s->nvolumes)
    {
      json_t *a = json_array ();
      for (size_t i = 0; i < s->nvolumes; i++)
        json_array_append_new (a, json_pack ("{s:s, s:s, s:b, s:b}", "name", s->volumes[i].name, "target",
                                             s->volumes[i].target, "readonly", s->volumes[i].readonly, "anonymous",
                                             s->volumes[i].anonymous));
      json_object_set_new (o, "volumes", a);
    }
#undef SETS
#undef SETI
  if (s->hc.test)
    {
      json_t *log = json_array ();
      json_object_set_new (o, "healthcheck",
                           json_pack ("{s:o, s:I, s:I, s:I, s:i, s:s}", "test", json_strv (s->hc.test), "interval",
                                      (json_int_t) s->hc.interval_ns, "timeout", (json_int_t) s->hc.timeout_ns,
                                      "startPeriod", (json_int_t) s->hc.start_period_ns, "retries", s->hc.retries,
                                      "onFailure", health_action_name (s->hc.on_failure)));
      for (int i = 0; i < s->health_nlog && i < HEALTH_LOG_MAX; i++)
        {
          const struct ctr_health_result *r = &s->health_log[i];
          json_array_append_new (log, json_pack ("{s:I, s:I, s:i, s:s}", "start", (json_int_t) r->start_ns, "end",
                                                 (json_int_t) r->end_ns, "exitCode", r->exit_code, "output",
                                                 r->output ? r->output : ""));
        }
      json_object_set_new (o, "health",
                           json_pack ("{s:s, s:i, s:o}", "status", ctr_health_name (s->health), "failingStreak",
                                      s->failing_streak, "log", log));
    }
  return o;
}

static void
health_from_json (json_t *o, struct ctr_state *s)
{
  json_t *hc = json_object_get (o, "healthcheck"), *h = json_object_get (o, "health"), *log, *e;
  const char *status = json_string_value (json_object_get (h, "status"));
  size_t i;
  char **test = json_strv_read (json_object_get (hc, "test"));
  if (test == NULL || test[0] == NULL)
    {
      strv_free (test);
      return;
    }
  s->hc.test = test;
  s->hc.interval_ns = json_member_int (hc, "interval");
  s->hc.timeout_ns = json_member_int (hc, "timeout");
  s->hc.start_period_ns = json_member_int (hc, "startPeriod");
  s->hc.retries = (int) json_member_int (hc, "retries");
  health_action_parse (json_string_value (json_object_get (hc, "onFailure")), &s->hc.on_failure);
  s->health = HEALTH_STARTING;
  for (int k = HEALTH_STARTING; status && k <= HEALTH_UNHEALTHY; k++)
    if (strcmp (status, ctr_health_name ((enum ctr_health) k)) == 0)
      s->health = (enum ctr_health) k;
  s->failing_streak = (int) json_member_int (h, "failingStreak");
  log = json_object_get (h, "log");
  json_array_foreach (log, i, e)
    {
      struct ctr_health_result *r;
      if (s->health_nlog == HEALTH_LOG_MAX)
        break;
      r = &s->health_log[s->health_nlog++];
      r->start_ns = json_member_int (e, "start");
      r->end_ns = json_member_int (e, "end");
      r->exit_code = (int) json_member_int (e, "exitCode");
      r->output = json_member_str (e, "output");
    }
}

static int
lookup_name (const char *const *names, size_t n, const char *s)
{
  for (size_t i = 0; s && i < n; i++)
    if (strcmp (names[i], s) == 0)
      return (int) i;
  return -1;
}

void
ctr_volumes_free (struct ctr_volume *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    {
      free (v[i].name);
      free (v[i].target);
    }
  free (v);
}

static void
volumes_from_json (json_t *a, struct ctr_state *s)
{
  size_t i;
  json_t *e;
  if (!json_is_array (a) || json_array_size (a) == 0)
    return;
  s->volumes = xzalloc (json_array_size (a) * sizeof *s->volumes);
  json_array_foreach (a, i, e)
    {
      struct ctr_volume *v = &s->volumes[s->nvolumes];
      v->name = json_member_str (e, "name");
      v->target = json_member_str (e, "target");
      if (v->name == NULL || v->target == NULL)
        {
          free (v->name);
          free (v->target);
          continue;
        }
      v->readonly = json_is_true (json_object_get (e, "readonly"));
      v->anonymous = json_is_true (json_object_get (e, "anonymous"));
      s->nvolumes++;
    }
}

static int
state_from_json (json_t *o, struct ctr_state *s)
{
  const char *st = json_string_value (json_object_get (o, "status"));
  const char *rp = json_string_value (json_object_get (o, "restartPolicy"));
  int k = lookup_name (status_names, 5, st);
  if (k < 0)
    return -1;
  s->status = (enum ctr_status) k;
  k = lookup_name (policy_names, 4, rp);
  s->restart = k < 0 ? RESTART_NO : (enum restart_policy) k;
  s->id = json_member_str (o, "id");
  s->name = json_member_str (o, "name");
  s->image = json_member_str (o, "image");
  s->command = json_member_str (o, "command");
  s->entrypoint = json_member_str (o, "entrypoint");
  s->error = json_member_str (o, "error");
  s->pid = (pid_t) json_member_int (o, "pid");
  s->pid_start = (unsigned long long) json_member_int (o, "pidStart");
  s->monitor_pid = (pid_t) json_member_int (o, "monitorPid");
  s->monitor_start = (unsigned long long) json_member_int (o, "monitorStart");
  s->exit_code = (int) json_member_int (o, "exitCode");
  s->oom_killed = json_is_true (json_object_get (o, "oomKilled"));
  s->created_ns = json_member_int (o, "created");
  s->started_ns = json_member_int (o, "started");
  s->finished_ns = json_member_int (o, "finished");
  s->restart_count = (int) json_member_int (o, "restartCount");
  s->stop_requested = json_is_true (json_object_get (o, "stopRequested"));
  s->paused = json_is_true (json_object_get (o, "paused"));
  s->restart_max = (int) json_member_int (o, "restartMax");
  s->auto_remove = json_is_true (json_object_get (o, "autoRemove"));
  s->tty = json_is_true (json_object_get (o, "tty"));
  s->log_max_size = json_member_int (o, "logMaxSize");
  health_from_json (o, s);
  volumes_from_json (json_object_get (o, "volumes"), s);
  return s->id ? 0 : -1;
}

/* --- the flat state, read without jansson ---------------------------------------------------
 * `ps`, `stats` and every lookup read each container's state; jansson's parse was ~80% of a
 * `ps -a` (callgrind, docs/benchmarks.md "Scale"). The record state_json writes is one flat
 * object of strings, integers, booleans and nulls unless it has volumes or a health check: that
 * form is read here. Anything else (a nested value, a \u escape, a byte past ASCII, a number
 * that is not a plain integer, an unknown key) returns 1 and the caller parses with jansson. */

enum flat_type { FLAT_NULL, FLAT_STR, FLAT_INT, FLAT_TRUE, FLAT_FALSE };

struct flat_val {
  enum flat_type type;
  long long i;
  char *s; /* FLAT_STR: decoded, owned */
};

static const char *
flat_ws (const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* *pp at the opening quote; a decoded copy in *out (NULL when not the flat form) */
static const char *
flat_string (const char *p, const char *end, char **out)
{
  const char *q;
  char *d;
  size_t n = 0;
  *out = NULL;
  if (p >= end || *p != '"')
    return NULL;
  for (q = p + 1; q < end && *q != '"'; q++, n++)
    {
      if ((unsigned char) *q < 0x20 || (unsigned char) *q >= 0x80)
        return NULL;
      if (*q == '\\' && ++q >= end)
        return NULL;
    }
  if (q >= end)
    return NULL;
  d = *out = xmalloc (n + 1);
  for (q = p + 1; *q != '"'; q++)
    {
      char c = *q;
      if (c == '\\')
        switch (*++q)
          {
          case '"':
            c = '"';
            break;
          case '\\':
            c = '\\';
            break;
          case '/':
            c = '/';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'n':
            c = '\n';
            break;
          case 'r':
            c = '\r';
            break;
          case 't':
            c = '\t';
            break;
          default: /* \u and anything else: jansson's */
            free (*out);
            *out = NULL;
            return NULL;
          }
      *d++ = c;
    }
  *d = '\0';
  return q + 1;
}

static const char *
flat_value (const char *p, const char *end, struct flat_val *v)
{
  memset (v, 0, sizeof *v);
  if (p >= end)
    return NULL;
  if (*p == '"')
    {
      v->type = FLAT_STR;
      return flat_string (p, end, &v->s);
    }
  if (*p == '-' || (*p >= '0' && *p <= '9'))
    {
      const char *q = p + (*p == '-');
      long long x = 0;
      if (q >= end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))
        return NULL;
      for (; q < end && *q >= '0' && *q <= '9'; q++)
        {
          if (x > (LLONG_MAX - (*q - '0')) / 10)
            return NULL; /* past a long long: jansson's */
          x = x * 10 + (*q - '0');
        }
      if (q < end && (*q == '.' || *q == 'e' || *q == 'E'))
        return NULL;
      v->type = FLAT_INT;
      v->i = *p == '-' ? -x : x;
      return q;
    }
  static const struct {
    const char *word;
    enum flat_type type;
  } words[] = { { "null", FLAT_NULL }, { "true", FLAT_TRUE }, { "false", FLAT_FALSE } };
  for (size_t k = 0; k < 3; k++)
    {
      size_t n = strlen (words[k].word);
      if ((size_t) (end - p) >= n && memcmp (p, words[k].word, n) == 0)
        {
          v->type = words[k].type;
          return p + n;
        }
    }
  return NULL;
}

enum flat_key {
  K_ID,
  K_NAME,
  K_IMAGE,
  K_COMMAND,
  K_ENTRYPOINT,
  K_ERROR,
  K_STATUS,
  K_POLICY,
  K_PID,
  K_PID_START,
  K_MONITOR_PID,
  K_MONITOR_START,
  K_EXIT_CODE,
  K_CREATED,
  K_STARTED,
  K_FINISHED,
  K_RESTART_COUNT,
  K_RESTART_MAX,
  K_LOG_MAX,
  K_OOM,
  K_STOP,
  K_AUTO_REMOVE,
  K_TTY,
  K_COUNT
};

static const char *const flat_keys[K_COUNT]
    = { "id",         "name",          "image",         "command",    "entrypoint",   "error",
        "status",     "restartPolicy", "pid",           "pidStart",   "monitorPid",   "monitorStart",
        "exitCode",   "created",       "started",       "finished",   "restartCount", "restartMax",
        "logMaxSize", "oomKilled",     "stopRequested", "autoRemove", "tty" };

/* the key's index, or -1: not one state_json writes at the top (then jansson's) */
static int
flat_key (const char *key)
{
  for (int k = 0; k < K_COUNT; k++)
    if (key[0] == flat_keys[k][0] && strcmp (key, flat_keys[k]) == 0)
      return k;
  return -1;
}

/* as state_from_json: json_member_str (a string or NULL), json_member_int (an integer or 0),
 * json_is_true */
static void
flat_set (struct ctr_state *s, int key, struct flat_val *v, const char **status, const char **policy)
{
  char **strs[] = { &s->id, &s->name, &s->image, &s->command, &s->entrypoint, &s->error };
  long long i = v->type == FLAT_INT ? v->i : 0;
  bool t = v->type == FLAT_TRUE;
  if (key <= K_ERROR)
    {
      free (*strs[key]);
      *strs[key] = v->type == FLAT_STR ? steal_pointer (&v->s) : NULL;
      return;
    }
  switch ((enum flat_key) key)
    {
    case K_STATUS:
      *status = v->type == FLAT_STR ? v->s : NULL;
      break;
    case K_POLICY:
      *policy = v->type == FLAT_STR ? v->s : NULL;
      break;
    case K_PID:
      s->pid = (pid_t) i;
      break;
    case K_PID_START:
      s->pid_start = (unsigned long long) i;
      break;
    case K_MONITOR_PID:
      s->monitor_pid = (pid_t) i;
      break;
    case K_MONITOR_START:
      s->monitor_start = (unsigned long long) i;
      break;
    case K_EXIT_CODE:
      s->exit_code = (int) i;
      break;
    case K_CREATED:
      s->created_ns = i;
      break;
    case K_STARTED:
      s->started_ns = i;
      break;
    case K_FINISHED:
      s->finished_ns = i;
      break;
    case K_RESTART_COUNT:
      s->restart_count = (int) i;
      break;
    case K_RESTART_MAX:
      s->restart_max = (int) i;
      break;
    case K_LOG_MAX:
      s->log_max_size = i;
      break;
    case K_OOM:
      s->oom_killed = t;
      break;
    case K_STOP:
      s->stop_requested = t;
      break;
    case K_AUTO_REMOVE:
      s->auto_remove = t;
      break;
    case K_TTY:
      s->tty = t;
      break;
    default:
      break;
    }
}

/* 0: read into *s; -1: damaged (as state_from_json says); 1: not the flat form */
static int
state_parse_flat (const char *text, size_t len, struct ctr_state *s)
{
  const char *p = text, *end = text + len, *status = NULL, *policy = NULL;
  struct flat_val vals[32];
  size_t nvals = 0;
  int r = 1, k;
  p = flat_ws (p, end);
  if (p >= end || *p++ != '{')
    return 1;
  p = flat_ws (p, end);
  if (p < end && *p == '}')
    p++;
  else
    for (;;)
      {
        cleanup_free char *name = NULL;
        struct flat_val *v;
        int key;
        p = flat_string (p, end, &name);
        if (p == NULL || (key = flat_key (name)) < 0 || nvals == sizeof vals / sizeof vals[0])
          goto out;
        p = flat_ws (p, end);
        if (p >= end || *p++ != ':')
          goto out;
        v = &vals[nvals];
        p = flat_value (flat_ws (p, end), end, v);
        if (p == NULL)
          goto out;
        nvals++;
        flat_set (s, key, v, &status, &policy);
        p = flat_ws (p, end);
        if (p < end && *p == ',')
          {
            p = flat_ws (p + 1, end);
            continue;
          }
        if (p < end && *p == '}')
          {
            p++;
            break;
          }
        goto out;
      }
  if (flat_ws (p, end) != end)
    goto out;
  k = lookup_name (status_names, 5, status);
  if (k < 0)
    {
      r = -1;
      goto out;
    }
  s->status = (enum ctr_status) k;
  k = lookup_name (policy_names, 4, policy);
  s->restart = k < 0 ? RESTART_NO : (enum restart_policy) k;
  r = s->id ? 0 : -1;
out:
  for (size_t i = 0; i < nvals; i++)
    free (vals[i].s);
  return r;
}

int
ctr_state_parse (const char *text, size_t len, struct ctr_state *st)
{
  json_t *o;
  int r;
  memset (st, 0, sizeof *st);
  r = state_parse_flat (text, len, st);
  if (r <= 0)
    {
      if (r < 0)
        ctr_state_clear (st);
      return r;
    }
  ctr_state_clear (st);
  memset (st, 0, sizeof *st);
  o = json_loadb (text, len, 0, NULL);
  r = o ? state_from_json (o, st) : -1;
  json_decref (o);
  if (r < 0)
    ctr_state_clear (st);
  return r;
}

int
ctr_state_write (const struct ctr_state *st, cella_error_t *err)
{
  cleanup_free char *dir = ctr_dir (st->id);
  cleanup_free char *path = xasprintf ("%s/state.json", dir);
  json_t *o = state_json (st);
  char *text = json_dumps (o, JSON_COMPACT);
  int r;
  json_decref (o);
  r = write_file_atomic (path, text, strlen (text), 0644, err);
  free (text);
  return r;
}

/* A running or restarting container whose monitor is gone has exited; if its workload
 * outlived the monitor (a set-uid workload drops PDEATHSIG), it is still running. */
static bool
reconcile (struct ctr_state *s)
{
  if (s->status != CTR_RUNNING && s->status != CTR_RESTARTING)
    return false;
  if (proc_alive (s->monitor_pid, s->monitor_start))
    return false;
  if (s->status == CTR_RUNNING && proc_alive (s->pid, s->pid_start))
    return false;
  s->status = CTR_EXITED;
  if (s->exit_code < 0 || s->finished_ns < s->started_ns)
    {
      s->exit_code = 255;
      free (s->error);
      s->error = xstrdup ("the container's monitor died; the exit status is unknown");
    }
  s->finished_ns = now_ns ();
  s->pid = 0;
  s->monitor_pid = 0;
  return true;
}

int
ctr_state_read (const char *id, struct ctr_state *st, int lockfd, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/containers/%s/state.json", paths_data_root (), id);
  cleanup_free char *text = NULL;
  size_t len;
  memset (st, 0, sizeof *st);
  if (read_file (path, &text, &len, err) < 0)
    return -1;
  if (ctr_state_parse (text, len, st) < 0)
    return cella_error (err, 0, "container %.12s: state file `%s` is damaged (remove it with `cella rm -f %.12s`)", id,
                        path, id);
  if (reconcile (st) && lockfd >= 0)
    ctr_state_write (st, NULL);
  return 0;
}

int
ctr_lock (const char *id, cella_error_t *err)
{
  cleanup_free char *dir = ctr_dir (id);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "container %.12s", id);
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        close (fd);
        return cella_error (err, errno, "lock container %.12s", id);
      }
  return fd;
}

int
ctr_plan_load (const char *id, struct plan **p, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/containers/%s/plan.json", paths_data_root (), id);
  cleanup_free char *text = NULL;
  size_t len;
  if (read_file (path, &text, &len, err) < 0)
    return -1;
  if (plan_from_json (text, p, err) < 0)
    return cella_error_wrap (err, "container %.12s", id);
  return 0;
}

/* --- lookup --------------------------------------------------------------------------------- */

static bool
is_hex_id (const char *s, size_t min)
{
  size_t n = strspn (s, "0123456789abcdef");
  return s[n] == '\0' && n >= min && n <= 64;
}

/* The id a name links to, when the link is live: it names an existing container whose
 * state still carries that name (a crash between claim and create leaves a dead link). */
static char *
name_target (const char *name)
{
  cleanup_free char *link = xasprintf ("%s/names/%s", paths_data_root (), name);
  char buf[80];
  struct ctr_state st;
  ssize_t n = readlink (link, buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  if (!is_hex_id (buf, 64) || ctr_state_read (buf, &st, -1, NULL) < 0)
    return NULL;
  if (st.name == NULL || strcmp (st.name, name) != 0)
    {
      ctr_state_clear (&st);
      return NULL;
    }
  ctr_state_clear (&st);
  return xstrdup (buf);
}

int
ctr_lookup (const char *ref, char **id, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/containers", paths_data_root ());
  DIR *d;
  struct dirent *e;
  size_t matches = 0, n = strlen (ref);
  char *t;

  if (*ref == '\0')
    return cella_error (err, 0, "a container name or id is required");
  if (ctr_name_valid (ref) && (t = name_target (ref)) != NULL)
    {
      *id = t;
      return 0;
    }
  *id = NULL;
  if (is_hex_id (ref, 1) && (d = opendir (dir)) != NULL)
    {
      while ((e = readdir (d)) != NULL)
        if (strncmp (e->d_name, ref, n) == 0 && is_hex_id (e->d_name, 64))
          {
            if (matches++ == 0)
              *id = xstrdup (e->d_name);
          }
      closedir (d);
    }
  if (matches == 1)
    return 0;
  free (*id);
  *id = NULL;
  if (matches > 1)
    return cella_error (
        err, 0, "container id prefix `%s` is ambiguous: %zu containers match (give more characters or the name)", ref,
        matches);
  return cella_error (err, 0, "no such container: `%s` (see `cella ps -a`)", ref);
}

/* --- list ----------------------------------------------------------------------------------- */

static int
by_created_desc (const void *a, const void *b)
{
  const struct ctr_state *x = a, *y = b;
  return x->created_ns < y->created_ns ? 1 : x->created_ns > y->created_ns ? -1 : 0;
}

/* ctr_state_read for a listing: through the containers directory's fd (a shorter path walk),
 * one read for a record that fits 4 KiB (a regular file's short read is its end) */
static int
state_read_at (int dfd, const char *id, struct ctr_state *st)
{
  char path[64 + sizeof "/state.json"], small[4096];
  cleanup_close int fd = -1;
  cleanup_free char *big = NULL;
  const char *text = small;
  size_t len;
  ssize_t r;
  memset (st, 0, sizeof *st);
  snprintf (path, sizeof path, "%s/state.json", id);
  fd = openat (dfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  do
    r = read (fd, small, sizeof small);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -1;
  len = (size_t) r;
  if (len == sizeof small)
    {
      size_t rest;
      if (read_all_fd (fd, &big, &rest, NULL) < 0)
        return -1;
      big = xrealloc (big, sizeof small + rest + 1);
      memmove (big + sizeof small, big, rest + 1);
      memcpy (big, small, sizeof small);
      text = big;
      len += rest;
    }
  if (ctr_state_parse (text, len, st) < 0)
    return -1;
  reconcile (st);
  return 0;
}

int
ctr_list (struct ctr_state **out, size_t *n, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/containers", paths_data_root ());
  DIR *d;
  struct dirent *e;
  size_t cap = 0;
  *out = NULL;
  *n = 0;
  ctr_gc ();
  d = opendir (dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : cella_error (err, errno, "list `%s`", dir);
  while ((e = readdir (d)) != NULL)
    {
      struct ctr_state st;
      if (!is_hex_id (e->d_name, 64) || state_read_at (dirfd (d), e->d_name, &st) < 0)
        continue;
      if (*n == cap)
        {
          cap = cap ? cap * 2 : 64;
          *out = xrealloc (*out, cap * sizeof **out);
        }
      (*out)[(*n)++] = st;
    }
  closedir (d);
  if (*n)
    qsort (*out, *n, sizeof **out, by_created_desc);
  return 0;
}

void
ctr_list_free (struct ctr_state *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ctr_state_clear (&v[i]);
  free (v);
}

/* --- create and remove ---------------------------------------------------------------------- */

/* A create holds flock on its .tmp-<id> directory until the record is in place. */
static bool
create_in_progress (const char *id)
{
  cleanup_free char *tmp = xasprintf ("%s/containers/.tmp-%s", paths_data_root (), id);
  cleanup_close int fd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  return fd >= 0 && flock (fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

/* symlink(2) fails with EEXIST if the name exists: of two racing creates exactly one wins.
 * A dead link (its container gone or renamed) is replaced. */
static int
claim_name (const char *name, const char *id, cella_error_t *err)
{
  cleanup_free char *dir = names_dir ();
  cleanup_free char *link = xasprintf ("%s/%s", dir, name);
  for (int attempt = 0; attempt < 3; attempt++)
    {
      cleanup_free char *owner = NULL;
      if (symlink (id, link) == 0)
        {
          fsync_parent (link);
          return 0;
        }
      if (errno != EEXIST)
        return cella_error (err, errno, "claim the name `%s`", name);
      owner = name_target (name);
      if (owner == NULL)
        {
          char buf[80];
          ssize_t n = readlink (link, buf, sizeof buf - 1);
          if (n == 64)
            {
              buf[n] = '\0';
              if (create_in_progress (buf))
                owner = xstrdup (buf);
            }
        }
      if (owner)
        return cella_error (err, 0,
                            "the name `%s` is already in use by container %.12s (remove it or choose another name)",
                            name, owner);
      /* a dead link: take it over with a rename, atomic against other claimers */
      {
        cleanup_free char *tmp = xasprintf ("%s/.claim-%s-%d", dir, name, (int) getpid ());
        if (symlink (id, tmp) == 0 && rename (tmp, link) == 0)
          {
            /* someone else may have done the same; whoever's link is there now wins */
            char buf[80];
            ssize_t n = readlink (link, buf, sizeof buf - 1);
            if (n == 64 && strncmp (buf, id, 64) == 0)
              return 0;
          }
        unlink (tmp);
      }
    }
  return cella_error (err, 0, "the name `%s` is already in use (remove that container or choose another name)", name);
}

static void
release_name (const char *name, const char *id)
{
  cleanup_free char *link = xasprintf ("%s/names/%s", paths_data_root (), name);
  char buf[80];
  ssize_t n = readlink (link, buf, sizeof buf - 1);
  if (n == 64 && strncmp (buf, id, 64) == 0)
    unlink (link);
}

static char *
command_line (char *const *argv)
{
  size_t len = 1;
  char *s, *end;
  for (size_t i = 0; argv && argv[i]; i++)
    len += strlen (argv[i]) + 1;
  end = s = xzalloc (len);
  /* stpcpy, not strcat: strcat walks what is there already, quadratic in the arguments */
  for (size_t i = 0; argv && argv[i]; i++)
    end = stpcpy (i ? stpcpy (end, " ") : end, argv[i]);
  return s;
}

static int
write_new_dir (const char *tmp, struct plan *p, const struct ctr_state *st, cella_error_t *err)
{
  cleanup_free char *plan_path = xasprintf ("%s/plan.json", tmp);
  cleanup_free char *json = NULL;
  if (p->root_overlay)
    {
      cleanup_free char *u = xasprintf ("%s/upper", tmp), *w = xasprintf ("%s/work", tmp);
      if (mkdir (u, 0755) < 0 || mkdir (w, 0700) < 0)
        return cella_error (err, errno, "create the container's overlay directories in `%s`", tmp);
      /* --userns: the top of the container's root belongs to its root, as the image's does
       * through the idmapped layers (src/ns/userns_root.c) */
      if (p->userns_mode && p->nuid_map && p->ngid_map && chown (u, p->uid_map[0].outside, p->gid_map[0].outside) < 0)
        return cella_error (err, errno, "chown `%s` to the container's root", u);
    }
  json = plan_to_json (p);
  if (write_file_atomic (plan_path, json, strlen (json), 0600, err) < 0)
    return -1;
  {
    /* ctr_state_write writes under the final path; write this first state by hand */
    cleanup_free char *sp = xasprintf ("%s/state.json", tmp);
    json_t *o = state_json (st);
    char *text = json_dumps (o, JSON_COMPACT);
    int r = write_file_atomic (sp, text, strlen (text), 0644, err);
    json_decref (o);
    free (text);
    return r;
  }
}

/* mkdir .mk-<id>, lock it, rename it to .tmp-<id>: gc only removes an unlocked .mk- dir with
 * rmdir, so if it struck between our mkdir and our flock, a step fails with ENOENT: again. */
static int
make_locked_dir (const char *base, const char *id, const char *tmp, int *lockfd, cella_error_t *err)
{
  cleanup_free char *mk = xasprintf ("%s/.mk-%s", base, id);
  for (int attempt = 0; attempt < 10; attempt++)
    {
      int e;
      if (mkdir (mk, 0711) == 0 && (*lockfd = open (mk, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0
          && flock (*lockfd, LOCK_EX) == 0 && rename (mk, tmp) == 0)
        return 0;
      e = errno;
      if (*lockfd >= 0)
        close (*lockfd);
      *lockfd = -1;
      if (e != ENOENT)
        {
          rmdir (mk);
          return cella_error (err, e, "create `%s`", tmp);
        }
    }
  return cella_error (err, ENOENT, "create `%s`", tmp);
}

/* Can container upper dirs live under dir? A real probe, its success remembered per file system
 * ($data/.overlay-ok holds the device number), so a create pays for it once. */
static bool
overlay_upper_ok (const char *dir)
{
  cleanup_free char *stamp = xasprintf ("%s/.overlay-ok", paths_data_root ()), *text = NULL, *want = NULL;
  struct stat st;
  if (stat (dir, &st) < 0)
    return true; /* let the mount say what is wrong */
  want = xasprintf ("%llu\n", (unsigned long long) st.st_dev);
  if (read_file (stamp, &text, NULL, NULL) == 0 && strcmp (text, want) == 0)
    return true;
  /* probed in the data root (same file system as dir, normally): a probe killed half way leaves
   * its directory there, not among the containers; ctr_gc removes it */
  (void) dir;
  if (!probe_overlay_upper (paths_data_root (), NULL))
    return false;
  write_file_atomic (stamp, want, strlen (want), 0600, NULL);
  return true;
}

int
ctr_create (struct plan *p, const struct ctr_create_opts *o, char **id_out, cella_error_t *err)
{
  cleanup_free char *base = xasprintf ("%s/containers", paths_data_root ());
  cleanup_free char *names = names_dir ();
  cleanup_free char *id = p->id && is_hex_id (p->id, 64) ? xstrdup (p->id) : paths_new_id ();
  cleanup_free char *name = o->name ? xstrdup (o->name) : ctr_name_generate ();
  cleanup_free char *tmp = NULL, *final = NULL;
  cleanup_close int tmplock = -1;
  struct ctr_state st = { 0 };
  int r;

  if (id == NULL)
    return cella_error (err, errno, "generate a container id");
  if (!ctr_name_valid (name))
    return cella_error (
        err, 0, "invalid container name `%s`: use letters, digits and _ . - (starting with a letter or digit)", name);
  if (mkdir_p (base, 0700, err) < 0 || mkdir_p (names, 0700, err) < 0)
    return -1;
  ctr_gc ();
  /* the record is built aside, locked while we work on it: a create killed at any point
   * leaves an unlocked .tmp dir (garbage) and at most a dead name link (reclaimable) */
  tmp = xasprintf ("%s/.tmp-%s", base, id);
  final = xasprintf ("%s/%s", base, id);
  if (make_locked_dir (base, id, tmp, &tmplock, err) < 0)
    return -1;
  /* a generated name that happens to be taken: draw another */
  for (int attempt = 0; claim_name (name, id, err) < 0; attempt++)
    {
      if (o->name || attempt == 8)
        {
          remove_tree (tmp);
          return -1;
        }
      cella_error_free (err);
      free (name);
      name = ctr_name_generate ();
    }

  free (p->id);
  p->id = xstrdup (id);
  if (backend_can (p, BACKEND_CAP_PLAIN_ROOT) && p->root_overlay)
    {
      /* proot cannot mount: the container gets its own copy of the image */
      cleanup_free char *copy = xasprintf ("%s/rootfs", tmp);
      if (backend_copy_root (p, copy, err) < 0)
        {
          release_name (name, id);
          remove_tree_mapped (tmp);
          return -1;
        }
      free (p->rootfs);
      p->rootfs = xasprintf ("%s/rootfs", final);
    }
  if (backend_can (p, BACKEND_CAP_OVERLAY_ROOT) && p->root_overlay && !overlay_upper_ok (base))
    {
      /* the kernel refuses an overlay whose upper dir is on this file system (e.g. a data root
       * on overlayfs or NFS): the container gets its own copy of the image instead */
      cleanup_free char *copy = xasprintf ("%s/rootfs", tmp), *why = NULL;
      probe_overlay_upper (paths_data_root (), &why);
      if (backend_copy_root (p, copy, err) < 0)
        {
          release_name (name, id);
          remove_tree_mapped (tmp);
          return -1;
        }
      fprintf (stderr, "cella: no overlay on `%s` (%s); the container got a copy of its image (%s)\n", base,
               why ? why : "refused", p->root_copy);
      free (p->rootfs);
      p->rootfs = xasprintf ("%s/rootfs", final);
    }
  p->res.want = true; /* a cgroup of its own even without limits: stats, pause, exec's join */
  if (p->root_overlay)
    {
      free (p->root_upper);
      free (p->root_work);
      p->root_upper = xasprintf ("%s/upper", final);
      p->root_work = xasprintf ("%s/work", final);
    }
  st.id = id;
  st.name = name;
  st.image = (char *) o->image;
  st.command = command_line (p->process.argv);
  st.entrypoint = (char *) o->entrypoint;
  st.status = CTR_CREATED;
  st.exit_code = -1;
  st.created_ns = now_ns ();
  st.restart = o->restart;
  st.restart_max = o->restart_max;
  st.auto_remove = o->auto_remove;
  st.tty = p->process.tty;
  st.log_max_size = o->log_max_size;
  if (o->health && o->health->test)
    {
      st.hc = *o->health; /* borrowed, like the strings above: not cleared */
      st.health = HEALTH_STARTING;
    }
  st.volumes = (struct ctr_volume *) o->volumes;
  st.nvolumes = o->nvolumes;

  /* built aside and renamed into place: a crash leaves either nothing or the whole record */
  r = write_new_dir (tmp, p, &st, err);
  if (r == 0 && rename (tmp, final) < 0)
    r = cella_error (err, errno, "rename `%s` into place", tmp);
  free (st.command);
  if (r < 0)
    {
      release_name (name, id);
      remove_tree (tmp);
      return -1;
    }
  fsync_parent (final);
  event_emit ("container", "create", id, name, (const char *[]){ "image", o->image, NULL });
  *id_out = steal_pointer (&id);
  return 0;
}

int
ctr_remove_files (const char *id, const char *name, cella_error_t *err)
{
  cleanup_free char *dir = ctr_dir (id);
  cleanup_free char *gone = xasprintf ("%s/containers/.rm-%s", paths_data_root (), id);
  cleanup_free char *run = ctr_run_dir (id);
  /* a backend's state (a VM's disk: never removed through a symlink or with a mount in it) */
  for (size_t i = 0; backend_at (i); i++)
    {
      const struct backend *b = backend_at (i);
      cleanup_free char *state = backend_state_dir (b, dir);
      struct stat vst;
      if (b->remove_state && state && lstat (state, &vst) == 0 && b->remove_state (state, err) < 0)
        return cella_error_wrap (err, "remove container %.12s", id);
    }
  if (name)
    release_name (name, id);
  /* out of sight first (ps never lists a half-removed container), then deleted */
  if (rename (dir, gone) < 0 && errno != ENOENT)
    return cella_error (err, errno, "remove container %.12s: rename `%s`", id, dir);
  fsync_parent (dir);
  remove_tree (run);
  if (remove_tree_mapped (gone) < 0)
    return cella_error (err, errno, "remove `%s`", gone);
  userns_release (id); /* after its files: the ids are free once nothing of theirs is left */
  return 0;
}

/* A leftover .tmp-<id> or .rm-<id> is garbage once nobody holds its lock. */
void
ctr_gc (void)
{
  cleanup_free char *base = xasprintf ("%s/containers", paths_data_root ());
  DIR *d = opendir (base);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      cleanup_free char *path = NULL;
      cleanup_close int fd = -1;
      bool mk = has_prefix (e->d_name, ".mk-");
      if (!mk && !has_prefix (e->d_name, ".tmp-") && !has_prefix (e->d_name, ".rm-"))
        continue;
      path = xasprintf ("%s/%s", base, e->d_name);
      fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0 || flock (fd, LOCK_EX | LOCK_NB) < 0)
        continue; /* a create or rm at work */
      if (mk)
        rmdir (path); /* empty; a creator that loses it starts again (make_locked_dir) */
      else
        remove_tree (path);
    }
  closedir (d);
  /* overlay probes (overlay_upper_ok) that were killed: they take milliseconds, so a minute-old one is dead */
  d = opendir (paths_data_root ());
  while (d && (e = readdir (d)) != NULL)
    {
      struct stat st;
      if (has_prefix (e->d_name, "cella-doctor-") && fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
          && S_ISDIR (st.st_mode) && st.st_mtime < time (NULL) - 60)
        remove_tree_at (dirfd (d), e->d_name);
    }
  if (d)
    closedir (d);
}
