/* cella compose: applications of several containers from a compose file (docs/compose.md).
 * The model comes from src/engine/compose.c; every step is a `cella` subcommand of this binary
 * (compose_cli.h says why). What `up` made is recorded in DATA_ROOT/compose/PROJECT.json
 * (containers with their service and config hash, networks, volumes), so `down` removes exactly
 * that and `up` again recreates only what changed. The record is written after each container is
 * made, so a `compose up` killed halfway leaves a record that the next `up` converges from: a
 * container it does not know the hash of is recreated. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../util/options.h"
#include "../util/paths.h"
#include "commands.h"
#include "compose_cli.h"
#include "../image/store.h"

struct compose_opts {
  char **files, **profiles;
  char *project, *env_file;
};

#define O(f) offsetof (struct compose_opts, f)
static const struct cli_option top_table[] = {
  { "file", 'f', OPT_LIST, O (files), "FILE", "Compose file (several: merged in order; default compose.yaml)" },
  { "project-name", 'p', OPT_STRING, O (project), "NAME",
    "Project name (default: COMPOSE_PROJECT_NAME, `name:`, the directory)" },
  { "profile", 0, OPT_LIST, O (profiles), "PROFILE", "Enable services of this profile (also COMPOSE_PROFILES)" },
  { "env-file", 0, OPT_STRING, O (env_file), "FILE", "Variables for interpolation (default: .env next to the file)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

struct sub_opts {
  bool detach, volumes, remove_orphans, follow, no_deps, force_recreate, tty_off, quiet, timestamps, build, no_cache;
  char *format, *timeout, *tail, *user, *workdir, *name, *index;
  char **env, **scale;
};
#define O(f) offsetof (struct sub_opts, f)
static const struct cli_option up_table[] = {
  { "detach", 'd', OPT_FLAG, O (detach), NULL, "Start in the background (default: follow the logs; Ctrl-C stops)" },
  { "force-recreate", 0, OPT_FLAG, O (force_recreate), NULL,
    "Recreate containers even when their config is unchanged" },
  { "no-deps", 0, OPT_FLAG, O (no_deps), NULL, "Do not start the named services' dependencies" },
  { "remove-orphans", 0, OPT_FLAG, O (remove_orphans), NULL, "Remove containers of services no longer in the file" },
  { "build", 0, OPT_FLAG, O (build), NULL,
    "Build the images of services with `build:` first (default: only those whose image is missing)" },
  { "scale", 0, OPT_LIST, O (scale), "SERVICE=N",
    "Run N containers of SERVICE (PROJECT-SERVICE-1..N; overrides deploy.replicas; repeatable)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option build_table[] = {
  { "no-cache", 0, OPT_FLAG, O (no_cache), NULL, "Run every step again instead of taking layers from the cache" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Print no build output (a failing step's still shows)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option down_table[] = {
  { "volumes", 'v', OPT_FLAG, O (volumes), NULL, "Also remove the named volumes of the file (and anonymous ones)" },
  { "remove-orphans", 0, OPT_FLAG, O (remove_orphans), NULL,
    "Also remove containers of services no longer in the file" },
  { "timeout", 't', OPT_STRING, O (timeout), "SECONDS",
    "Seconds to wait for a stop before SIGKILL (default: stop_grace_period or 10)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option ps_table[] = {
  { "format", 0, OPT_STRING, O (format), "table|json", "Output format" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Only container names" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option logs_table[] = {
  { "follow", 'f', OPT_FLAG, O (follow), NULL, "Keep printing new output" },
  { "tail", 'n', OPT_STRING, O (tail), "N", "Only the last N lines of each" },
  { "timestamps", 't', OPT_FLAG, O (timestamps), NULL, "Prefix each line with its time" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option stop_table[] = {
  { "timeout", 't', OPT_STRING, O (timeout), "SECONDS", "Seconds to wait for a stop before SIGKILL" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option exec_table[] = {
  { "no-TTY", 'T', OPT_FLAG, O (tty_off), NULL, "No pseudo-terminal (default: one when stdin is a terminal)" },
  { "detach", 'd', OPT_FLAG, O (detach), NULL, "Run the command in the background (cella exec -d)" },
  { "env", 'e', OPT_LIST, O (env), "KEY=VALUE", "Set an environment variable" },
  { "user", 'u', OPT_STRING, O (user), "USER", "Run as this user" },
  { "workdir", 'w', OPT_STRING, O (workdir), "DIR", "Working directory" },
  { "index", 0, OPT_STRING, O (index), "N", "Which replica of the service (PROJECT-SERVICE-N; default 1)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option run_table[] = {
  { "no-TTY", 'T', OPT_FLAG, O (tty_off), NULL, "No pseudo-terminal (default: one when stdin is a terminal)" },
  { "rm", 0, OPT_FLAG, O (quiet), NULL, "Accepted for docker compose: the container is always removed" },
  { "name", 0, OPT_STRING, O (name), "NAME", "Container name (default PROJECT-SERVICE-run-RANDOM)" },
  { "env", 'e', OPT_LIST, O (env), "KEY=VALUE", "Set an environment variable" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_table[] = {
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static void
sub_opts_free (struct sub_opts *o)
{
  free (o->format);
  free (o->timeout);
  free (o->tail);
  free (o->user);
  free (o->workdir);
  free (o->name);
  free (o->index);
  strv_free (o->env);
  strv_free (o->scale);
}

/* ---- running cella ---- */

int
compose_cella (char *const *args, char **out, bool quiet)
{
  char self[4096];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  int p[2] = { -1, -1 }, status;
  pid_t pid;
  cleanup_strv char **argv = NULL;
  if (n <= 0)
    return 125;
  self[n] = '\0';
  strv_push (&argv, "cella");
  strv_append_all (&argv, args);
  if (out && pipe2 (p, O_CLOEXEC) < 0)
    return 125;
  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    return 125;
  if (pid == 0)
    {
      if (out)
        dup2 (p[1], 1);
      else if (quiet)
        {
          int null = open ("/dev/null", O_WRONLY | O_CLOEXEC);
          if (null >= 0)
            dup2 (null, 1);
        }
      execv (self, argv);
      _exit (125);
    }
  if (out)
    {
      cella_error_t err = NULL;
      size_t len;
      close (p[1]);
      if (read_all_fd (p[0], out, &len, &err) < 0)
        {
          cella_error_free (&err);
          *out = xstrdup ("");
        }
      close (p[0]);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return 125;
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* `cella WHAT --format json` parsed (ps -a, network ls, volume ls); NULL on failure. */
static json_t *
cella_json (const char *a0, const char *a1, const char *a2)
{
  char *args[6] = { (char *) a0, (char *) a1, NULL, NULL, NULL, NULL };
  size_t n = 2;
  cleanup_free char *out = NULL;
  if (a2)
    args[n++] = (char *) a2;
  args[n++] = (char *) "--format";
  args[n] = (char *) "json";
  if (compose_cella (args, &out, false) != 0)
    return NULL;
  return json_loads (out, 0, NULL);
}

static json_t *
json_take_str (char *s)
{
  json_t *j = json_string (s);
  free (s);
  return j;
}

/* ---- the project record ---- */

static char *
record_path (const char *project)
{
  return xasprintf ("%s/compose/%s.json", paths_data_root (), project);
}

static json_t *
record_load (const char *project)
{
  cleanup_free char *path = record_path (project);
  json_t *r = json_load_file (path, 0, NULL);
  if (!json_is_object (r))
    {
      json_decref (r);
      r = json_pack ("{s:{},s:[],s:[]}", "containers", "networks", "volumes");
    }
  return r;
}

static int
record_save (const char *project, json_t *r, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/compose", paths_data_root ());
  cleanup_free char *path = record_path (project);
  cleanup_free char *s = json_dumps (r, JSON_INDENT (2) | JSON_SORT_KEYS);
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  return write_file_atomic (path, s, strlen (s), 0600, err);
}

static void
strset_add (json_t *arr, const char *s)
{
  size_t i;
  json_t *e;
  json_array_foreach (arr, i, e)
    if (strcmp (json_string_value (e), s) == 0)
      return;
  json_array_append_new (arr, json_string (s));
}

/* ---- containers of the project ---- */

/* The engine's view of one container (from `ps -a --format json`), or NULL. */
static json_t *
ctr_find (json_t *ps, const char *name)
{
  size_t i;
  json_t *e;
  json_array_foreach (ps, i, e)
    if (strcmp (json_string_value (json_object_get (e, "Names")) ?: "", name) == 0)
      return e;
  return NULL;
}

static bool
ctr_running (json_t *c)
{
  const char *st = json_string_value (json_object_get (c, "State"));
  return st && (strcmp (st, "running") == 0 || strcmp (st, "restarting") == 0);
}

/* A service's containers that exist (in ps): those the record has for it, and those with the
 * names of its replicas 1..N; [{name, number}] by number. Only recorded or canonical names: a
 * container of another project whose name happens to look alike is never taken. */
static json_t *
service_ctrs (const struct compose_project *p, const char *svc, json_t *rec, json_t *ps)
{
  json_t *found = json_object (), *e, *out = json_array ();
  int want = compose_service_replicas (p, svc);
  const char *k;
  for (int n = 1; n <= want; n++)
    {
      cleanup_free char *cn = compose_ctr_name (p, svc, n);
      if (ctr_find (ps, cn))
        json_object_set_new (found, cn, json_integer (n));
    }
  json_object_foreach (json_object_get (rec, "containers"), k, e)
    {
      json_t *num = json_object_get (e, "number");
      if (strcmp (json_string_value (json_object_get (e, "service")) ?: "", svc) != 0 || ctr_find (ps, k) == NULL
          || json_object_get (found, k))
        continue;
      /* records written before replicas have no number: theirs was 1 */
      json_object_set_new (found, k, json_integer (json_is_integer (num) ? json_integer_value (num) : 1));
    }
  json_object_foreach (found, k, e)
    {
      size_t i = json_array_size (out);
      /* insertion by number (then name): few replicas */
      while (i > 0)
        {
          json_t *prev = json_array_get (out, i - 1);
          json_int_t pn = json_integer_value (json_object_get (prev, "number"));
          if (pn < json_integer_value (e)
              || (pn == json_integer_value (e) && strcmp (json_string_value (json_object_get (prev, "name")), k) < 0))
            break;
          i--;
        }
      json_array_insert_new (out, i, json_pack ("{s:s,s:O}", "name", k, "number", e));
    }
  json_decref (found);
  return out;
}

/* The services named in args (all, in dependency order, when none); with deps their dependencies
 * first. An unknown name is an error. */
static int
select_services (const struct compose_project *p, char **names, bool deps, char ***out, cella_error_t *err)
{
  cleanup_strv char **sel = NULL;
  json_t *want = json_object ();
  for (char **n = names; n && *n; n++)
    {
      if (compose_service (p, *n) == NULL)
        {
          json_decref (want);
          return cella_error (err, 0, "no such service: %s", *n);
        }
      json_object_set_new (want, *n, json_true ());
    }
  /* the order is a topological one: walking it backwards, a wanted service makes its deps wanted */
  for (size_t i = strv_len (p->order); deps && i-- > 0;)
    if (json_object_get (want, p->order[i]))
      {
        const char *d;
        json_t *e;
        json_object_foreach (json_object_get (compose_service (p, p->order[i]), "depends_on"), d, e)
          json_object_set_new (want, d, json_true ());
      }
  for (char **s = p->order; s && *s; s++)
    if (names == NULL || names[0] == NULL || json_object_get (want, *s))
      strv_push (&sel, *s);
  json_decref (want);
  *out = steal_pointer (&sel);
  if (*out == NULL)
    *out = strv_new (0);
  return 0;
}

static void
say (const char *what, const char *name, const char *state)
{
  fprintf (stderr, " %s %s  %s\n", what, name, state);
}

/* ---- build ---- */

/* The image id of `ref` in the store, or NULL. */
static char *
image_id_of (const char *ref)
{
  struct image_record *r = NULL;
  cella_error_t e = NULL;
  char *id = NULL;
  int rc = image_lookup (ref, &r, &e);
  cella_error_free (&e);
  if (rc == 0)
    {
      id = xstrdup (r->id ? r->id : "");
      image_record_free (r);
    }
  return id;
}

static bool
image_present (const char *ref)
{
  cleanup_free char *id = image_id_of (ref);
  return id != NULL;
}

/* `cella build -t IMAGE [-f FILE] [--build-arg K=V]... [--target T] [--label K=V]... CONTEXT`. */
static int
build_service (const struct compose_project *p, const char *svc, bool no_cache, bool quiet, cella_error_t *err)
{
  json_t *s = compose_service (p, svc), *b = json_object_get (s, "build"), *e;
  const char *img = json_string_value (json_object_get (s, "image")), *k;
  const char *ctx = json_string_value (json_object_get (b, "context"));
  const char *df = json_string_value (json_object_get (b, "dockerfile"));
  cleanup_strv char **args = NULL;
  cleanup_free char *dfpath = NULL;
  strv_push (&args, "build");
  strv_push (&args, "--tag");
  strv_push (&args, img);
  if (df)
    {
      /* relative to the context, as docker compose reads it */
      dfpath = df[0] == '/' ? xstrdup (df) : xasprintf ("%s/%s", ctx, df);
      strv_push (&args, "--file");
      strv_push (&args, dfpath);
    }
  json_object_foreach (json_object_get (b, "args"), k, e)
    {
      cleanup_free char *kv = json_is_string (e) ? xasprintf ("%s=%s", k, json_string_value (e)) : xstrdup (k);
      strv_push (&args, "--build-arg");
      strv_push (&args, kv);
    }
  if (json_is_string (json_object_get (b, "target")))
    {
      strv_push (&args, "--target");
      strv_push (&args, json_string_value (json_object_get (b, "target")));
    }
  {
    cleanup_free char *l1 = xasprintf ("com.docker.compose.project=%s", p->name);
    cleanup_free char *l2 = xasprintf ("com.docker.compose.service=%s", svc);
    strv_push (&args, "--label");
    strv_push (&args, l1);
    strv_push (&args, "--label");
    strv_push (&args, l2);
  }
  json_object_foreach (json_object_get (b, "labels"), k, e)
    if (json_is_string (e))
      {
        cleanup_free char *kv = xasprintf ("%s=%s", k, json_string_value (e));
        strv_push (&args, "--label");
        strv_push (&args, kv);
      }
  if (no_cache)
    strv_push (&args, "--no-cache");
  if (quiet)
    strv_push (&args, "--quiet"); /* a failing step's output still shows */
  strv_push (&args, ctx);
  say ("Image", img, "Building");
  if (compose_cella (args, NULL, quiet) != 0)
    return cella_error (err, 0, "service `%s`: could not build image `%s` from `%s` (see the error above)", svc, img,
                        ctx);
  say ("Image", img, "Built");
  return 0;
}

/* Build the images of `services` that have `build:`: all (always), else only the missing ones. */
static int
build_services (const struct compose_project *p, char **services, bool always, bool no_cache, bool quiet,
                cella_error_t *err)
{
  for (char **s = services; s && *s; s++)
    {
      json_t *svc = compose_service (p, *s);
      if (json_object_get (svc, "build") == NULL)
        continue;
      if (!always && image_present (json_string_value (json_object_get (svc, "image"))))
        continue;
      if (build_service (p, *s, no_cache, quiet, err) < 0)
        return -1;
    }
  return 0;
}

static int
cp_build (struct compose_project *p, struct sub_opts *o, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  if (select_services (p, names, false, &services, err) < 0)
    return -1;
  return build_services (p, services, true, o->no_cache, o->quiet, err);
}

/* ---- up ---- */

static int
ensure_networks (const struct compose_project *p, char **services, json_t *rec, cella_error_t *err)
{
  json_t *have, *nets = json_object_get (p->model, "networks");
  int rc = 0;
  if (!compose_networks_supported ())
    {
      fprintf (stderr,
               "cella compose: warning: rootless: no project network (user-defined networks are for root); each "
               "service gets a private network of its own and services do not reach each other by name (network "
               "aliases neither)\n");
      return 0;
    }
  have = cella_json ("network", "ls", NULL);
  for (char **s = services; *s && rc == 0; s++)
    {
      const char *k;
      json_t *e;
      json_object_foreach (json_object_get (compose_service (p, *s), "networks"), k, e)
        {
          json_t *def = json_object_get (nets, k);
          const char *name = json_string_value (json_object_get (def, "name"));
          bool found = false;
          size_t i;
          json_t *h;
          json_array_foreach (have, i, h)
            if (strcmp (json_string_value (json_object_get (h, "name")) ?: "", name) == 0)
              found = true;
          if (found)
            continue;
          if (json_is_true (json_object_get (def, "external")))
            {
              rc = cella_error (err, 0, "network `%s` is external but does not exist", name);
              break;
            }
          char *const args[] = { (char *) "network", (char *) "create", (char *) name, NULL };
          /* recorded first: a kill between the two leaves a record that `down` cleans up */
          strset_add (json_object_get (rec, "networks"), name);
          if (record_save (p->name, rec, err) < 0 || compose_cella (args, NULL, true) != 0)
            {
              rc = rc ? rc : cella_error (err, 0, "could not create network `%s`", name);
              break;
            }
          json_array_append_new (have, json_pack ("{s:s}", "name", name));
          say ("Network", name, "Created");
        }
    }
  json_decref (have);
  return rc;
}

static int
ensure_volumes (const struct compose_project *p, char **services, json_t *rec, cella_error_t *err)
{
  json_t *have = cella_json ("volume", "ls", NULL), *vols = json_object_get (p->model, "volumes");
  for (char **s = services; *s; s++)
    {
      size_t i;
      json_t *v;
      json_array_foreach (json_object_get (compose_service (p, *s), "volumes"), i, v)
        {
          const char *src = json_string_value (json_object_get (v, "source"));
          json_t *def, *h;
          const char *name;
          bool found = false;
          size_t j;
          if (strcmp (json_string_value (json_object_get (v, "type")), "volume") != 0 || src == NULL)
            continue;
          def = json_object_get (vols, src);
          name = json_string_value (json_object_get (def, "name"));
          json_array_foreach (have, j, h)
            if (strcmp (json_string_value (json_object_get (h, "Name")) ?: "", name) == 0)
              found = true;
          if (found)
            continue;
          if (json_is_true (json_object_get (def, "external")))
            {
              json_decref (have);
              return cella_error (err, 0, "volume `%s` is external but does not exist", name);
            }
          cleanup_free char *l1 = xasprintf ("com.docker.compose.project=%s", p->name);
          cleanup_free char *l2 = xasprintf ("com.docker.compose.volume=%s", src);
          char *const args[] = {
            (char *) "volume", (char *) "create", (char *) "--label", l1, (char *) "--label", l2, (char *) name, NULL
          };
          strset_add (json_object_get (rec, "volumes"), name);
          if (record_save (p->name, rec, err) < 0 || compose_cella (args, NULL, true) != 0)
            {
              json_decref (have);
              return cella_error (err, 0, "could not create volume `%s`", name);
            }
          json_array_append_new (have, json_pack ("{s:s}", "Name", name));
          say ("Volume", name, "Created");
        }
    }
  json_decref (have);
  return 0;
}

/* Wait for one dependency container's condition. */
static int
wait_dep (const char *svc, const char *d, const char *dn, const char *cond, cella_error_t *err)
{
  if (strcmp (cond, "service_healthy") == 0)
    {
      char *const args[] = { (char *) "wait", (char *) "--condition", (char *) "healthy", (char *) dn, NULL };
      say ("Container", dn, "Waiting");
      if (compose_cella (args, NULL, true) != 0)
        return cella_error (err, 0, "dependency failed to start: container %s is not healthy", dn);
      say ("Container", dn, "Healthy");
    }
  else if (strcmp (cond, "service_completed_successfully") == 0)
    {
      char *const args[] = { (char *) "wait", (char *) dn, NULL };
      cleanup_free char *out = NULL;
      say ("Container", dn, "Waiting");
      if (compose_cella (args, &out, false) != 0 || atoi (out) != 0)
        return cella_error (err, 0, "service `%s` didn't complete successfully: container %s exit %d (needed by `%s`)",
                            d, dn, out ? atoi (out) : -1, svc);
      say ("Container", dn, "Exited");
    }
  return 0;
}

/* Wait for svc's dependencies' conditions: on every replica of each dependency. */
static int
wait_deps (const struct compose_project *p, const char *svc, cella_error_t *err)
{
  const char *d;
  json_t *e;
  json_object_foreach (json_object_get (compose_service (p, svc), "depends_on"), d, e)
    {
      const char *cond = json_string_value (json_object_get (e, "condition"));
      if (strcmp (cond, "service_healthy") == 0 && json_object_get (compose_service (p, d), "healthcheck") == NULL)
        fprintf (stderr,
                 "cella compose: warning: `%s` waits for `%s` to be healthy; it needs a healthcheck (or the image's)\n",
                 svc, d);
      for (int n = 1, max = compose_service_replicas (p, d); n <= max; n++)
        {
          cleanup_free char *dn = compose_ctr_name (p, d, n);
          if (wait_dep (svc, d, dn, cond, err) < 0)
            return -1;
        }
    }
  return 0;
}

static int stop_one (const struct compose_project *p, const char *svc, const char *name, const char *timeout);

/* Create or keep replica `number` of svc. */
static int
up_replica (const struct compose_project *p, const char *svc, int number, json_t *ps, json_t *rec, bool force,
            cella_error_t *err)
{
  cleanup_free char *name = compose_ctr_name (p, svc, number);
  cleanup_free char *hash = compose_service_hash (p, svc);
  json_t *ctrs = json_object_get (rec, "containers"), *have = ctr_find (ps, name);
  if (json_object_get (compose_service (p, svc), "build"))
    {
      /* a built image: a rebuild that changed it (up --build) recreates the container too */
      cleanup_free char *id = image_id_of (json_string_value (json_object_get (compose_service (p, svc), "image")));
      char *h2 = xasprintf ("%s@%.19s", hash, id ? id : "none");
      free (hash);
      hash = h2;
    }
  const char *old = json_string_value (json_object_get (json_object_get (ctrs, name), "hash"));
  cleanup_strv char **args = NULL;
  if (have && old && strcmp (old, hash) == 0 && !force)
    {
      if (ctr_running (have))
        {
          say ("Container", name, "Running");
          return 0;
        }
      char *const sargs[] = { (char *) "start", name, NULL };
      if (wait_deps (p, svc, err) < 0)
        return -1;
      if (compose_cella (sargs, NULL, true) != 0)
        return cella_error (err, 0, "could not start container `%s`", name);
      say ("Container", name, "Started");
      return 0;
    }
  if (have)
    {
      char *const rargs[] = { (char *) "rm", (char *) "--force", name, NULL };
      json_object_del (ctrs, name);
      if (record_save (p->name, rec, err) < 0)
        return -1;
      if (compose_cella (rargs, NULL, true) != 0)
        return cella_error (err, 0, "could not remove container `%s` to recreate it", name);
      say ("Container", name, "Recreate");
    }
  if (compose_run_args (p, svc, number, name, NULL, &args, err) < 0)
    return -1;
  if (wait_deps (p, svc, err) < 0)
    return -1;
  /* the name is recorded before the container exists (hash unknown: recreated by the next up) */
  json_object_set_new (ctrs, name, json_pack ("{s:s,s:i}", "service", svc, "number", number));
  if (record_save (p->name, rec, err) < 0)
    return -1;
  {
    cleanup_strv char **full = NULL;
    strv_push (&full, "run");
    strv_append_all (&full, args);
    if (compose_cella (full, NULL, true) != 0)
      return cella_error (err, 0, "service `%s`: could not start container `%s` (see the error above)", svc, name);
  }
  json_object_set_new (ctrs, name, json_pack ("{s:s,s:i,s:s}", "service", svc, "number", number, "hash", hash));
  if (record_save (p->name, rec, err) < 0)
    return -1;
  say ("Container", name, "Started");
  return 0;
}

/* Scale svc to its replica count: remove the containers above it (highest first; stopped with the
 * service's stop signal and grace period) and those whose name is no longer their number's (a
 * changed container_name), then create or keep 1..N. */
static int
up_service (const struct compose_project *p, const char *svc, json_t *ps, json_t *rec, bool force, cella_error_t *err)
{
  int want = compose_service_replicas (p, svc);
  json_t *have = service_ctrs (p, svc, rec, ps), *ctrs = json_object_get (rec, "containers"), *e;
  const char *k;
  void *tmp;
  for (size_t i = json_array_size (have); i-- > 0;)
    {
      json_t *c = json_array_get (have, i);
      const char *name = json_string_value (json_object_get (c, "name"));
      int n = (int) json_integer_value (json_object_get (c, "number"));
      cleanup_free char *canon = compose_ctr_name (p, svc, n);
      if (n <= want && strcmp (canon, name) == 0)
        continue;
      if (ctr_running (ctr_find (ps, name)))
        {
          say ("Container", name, "Stopping");
          stop_one (p, svc, name, NULL);
        }
      char *const rargs[] = { (char *) "rm", (char *) "--force", (char *) name, NULL };
      if (compose_cella (rargs, NULL, true) != 0)
        {
          json_decref (have);
          return cella_error (err, 0, "could not remove container `%s` to scale `%s` to %d", name, svc, want);
        }
      json_object_del (ctrs, name);
      say ("Container", name, "Removed");
    }
  json_decref (have);
  /* recorded containers of svc that are gone and not among 1..N: forget them */
  json_object_foreach_safe (ctrs, tmp, k, e)
    if (strcmp (json_string_value (json_object_get (e, "service")) ?: "", svc) == 0 && ctr_find (ps, k) == NULL)
      {
        json_int_t n = json_integer_value (json_object_get (e, "number"));
        if (n < 1 || n > want)
          json_object_del (ctrs, k);
      }
  if (record_save (p->name, rec, err) < 0)
    return -1;
  for (int n = 1; n <= want; n++)
    if (up_replica (p, svc, n, ps, rec, force, err) < 0)
      return -1;
  return 0;
}

static volatile int got_signal;

static void
on_signal (int sig)
{
  got_signal = sig;
}

/* The existing containers of services, in their order: [{name, number, service}]. */
static json_t *
project_ctrs (const struct compose_project *p, char **services, json_t *ps)
{
  json_t *rec = record_load (p->name), *out = json_array ();
  for (char **s = services; s && *s; s++)
    {
      json_t *l = service_ctrs (p, *s, rec, ps), *c;
      size_t i;
      json_array_foreach (l, i, c)
        {
          json_object_set_new (c, "service", json_string (*s));
          json_array_append (out, c);
        }
      json_decref (l);
    }
  json_decref (rec);
  return out;
}

/* Log sources for the containers of ctrs (project_ctrs), labelled SERVICE-N as docker compose does. */
static size_t
log_sources (json_t *ctrs, struct compose_log_src **srcs, char ***names, char ***labels)
{
  size_t n = json_array_size (ctrs), i;
  json_t *c;
  *srcs = xzalloc (sizeof **srcs * (n ? n : 1));
  json_array_foreach (ctrs, i, c)
    {
      char *lb = xasprintf ("%s-%lld", json_string_value (json_object_get (c, "service")),
                            (long long) json_integer_value (json_object_get (c, "number")));
      strv_push (names, json_string_value (json_object_get (c, "name")));
      strv_push (labels, lb);
      free (lb);
    }
  for (i = 0; i < n; i++)
    (*srcs)[i] = (struct compose_log_src){ (*names)[i], (*labels)[i] };
  return n;
}

static int stop_services (const struct compose_project *p, char **services, const char *timeout);

static int
cp_up (struct compose_project *p, struct sub_opts *o, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  json_t *rec, *ps;
  int rc = 0;
  if (select_services (p, names, !o->no_deps, &services, err) < 0)
    return -1;
  /* --scale, then every service's replica count checked before anything is built or started */
  for (char **sc = o->scale; sc && *sc; sc++)
    {
      cleanup_free char *svc = NULL;
      int n;
      if (compose_scale_parse (*sc, &svc, &n, err) < 0 || compose_set_replicas (p, svc, n, err) < 0)
        return -1;
    }
  for (char **s = services; *s; s++)
    if (compose_check_replicas (p, *s, err) < 0)
      return -1;
  /* images first: --build all of them, else those missing */
  if (build_services (p, services, o->build, false, false, err) < 0)
    return -1;
  rec = record_load (p->name);
  ps = cella_json ("ps", "-a", NULL);
  if (ps == NULL)
    {
      json_decref (rec);
      return cella_error (err, 0, "could not list containers (cella ps -a)");
    }
  rc = ensure_networks (p, services, rec, err);
  if (rc == 0)
    rc = ensure_volumes (p, services, rec, err);
  for (char **s = services; rc == 0 && *s; s++)
    rc = up_service (p, *s, ps, rec, o->force_recreate, err);
  /* orphans: recorded containers whose service left the file */
  if (rc == 0)
    {
      const char *cn;
      json_t *e;
      void *tmp;
      json_object_foreach_safe (json_object_get (rec, "containers"), tmp, cn, e)
        {
          const char *svc = json_string_value (json_object_get (e, "service"));
          if (svc && compose_service (p, svc))
            continue;
          if (!o->remove_orphans)
            {
              fprintf (
                  stderr,
                  "cella compose: warning: found orphan container %s (service `%s`); --remove-orphans removes it\n", cn,
                  svc ? svc : "?");
              continue;
            }
          char *const rargs[] = { (char *) "rm", (char *) "--force", (char *) cn, NULL };
          compose_cella (rargs, NULL, true);
          say ("Container", cn, "Removed");
          json_object_del (json_object_get (rec, "containers"), cn);
        }
      rc = record_save (p->name, rec, err);
    }
  json_decref (ps);
  json_decref (rec);
  if (rc < 0 || o->detach)
    return rc;
  /* foreground: follow the logs until Ctrl-C, then stop the services */
  {
    struct compose_log_src *srcs = NULL;
    cleanup_strv char **cnames = NULL;
    cleanup_strv char **labels = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    json_t *now = cella_json ("ps", "-a", NULL), *ctrs = project_ctrs (p, services, now);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    size_t n = log_sources (ctrs, &srcs, &cnames, &labels);
    json_decref (ctrs);
    json_decref (now);
    compose_logs_follow (srcs, n, true, NULL, &got_signal);
    free (srcs);
    if (got_signal)
      {
        fprintf (stderr, "Gracefully stopping... (press Ctrl+C again to force)\n");
        signal (SIGINT, SIG_DFL);
        stop_services (p, services, NULL);
      }
  }
  return 0;
}

/* ---- stop, down ---- */

static char *
grace_seconds (json_t *svc, const char *timeout)
{
  const char *g = json_string_value (json_object_get (svc, "stop_grace_period"));
  long long sec = 10;
  if (timeout)
    return xstrdup (timeout);
  if (g)
    {
      char *end;
      double v = strtod (g, &end);
      if (strcmp (end, "ms") == 0)
        v /= 1000;
      else if (strcmp (end, "m") == 0)
        v *= 60;
      else if (strcmp (end, "h") == 0)
        v *= 3600;
      sec = (long long) (v + 0.999);
    }
  return xasprintf ("%lld", sec);
}

static int
stop_one (const struct compose_project *p, const char *svc, const char *name, const char *timeout)
{
  json_t *s = svc ? compose_service (p, svc) : NULL;
  const char *sig = json_string_value (json_object_get (s, "stop_signal"));
  cleanup_free char *t = grace_seconds (s, timeout);
  if (sig)
    {
      char *const kargs[] = { (char *) "kill", (char *) "--signal", (char *) sig, (char *) name, NULL };
      compose_cella (kargs, NULL, true);
    }
  char *const args[] = { (char *) "stop", (char *) "--time", t, (char *) name, NULL };
  return compose_cella (args, NULL, true);
}

/* Stop services last-first (dependents before what they depend on), replicas highest first. */
static int
stop_services (const struct compose_project *p, char **services, const char *timeout)
{
  json_t *ps = cella_json ("ps", "-a", NULL), *ctrs = project_ctrs (p, services, ps), *e;
  for (size_t i = json_array_size (ctrs); i-- > 0;)
    {
      e = json_array_get (ctrs, i);
      const char *name = json_string_value (json_object_get (e, "name"));
      if (!ctr_running (ctr_find (ps, name)))
        continue;
      say ("Container", name, "Stopping");
      stop_one (p, json_string_value (json_object_get (e, "service")), name, timeout);
      say ("Container", name, "Stopped");
    }
  json_decref (ctrs);
  json_decref (ps);
  return 0;
}

static int
cp_down (struct compose_project *p, struct sub_opts *o, cella_error_t *err)
{
  json_t *rec = record_load (p->name), *ps = cella_json ("ps", "-a", NULL), *ctrs = json_object_get (rec, "containers");
  cleanup_strv char **order = NULL;
  /* the file's services' containers in reverse dependency order (replicas highest first), then
   * orphans */
  {
    json_t *all = project_ctrs (p, p->order, ps);
    for (size_t i = json_array_size (all); i-- > 0;)
      strv_push (&order, json_string_value (json_object_get (json_array_get (all, i), "name")));
    json_decref (all);
  }
  const char *cn;
  json_t *e;
  json_object_foreach (ctrs, cn, e)
    {
      const char *svc = json_string_value (json_object_get (e, "service"));
      if (svc && compose_service (p, svc))
        continue;
      if (o->remove_orphans)
        strv_push (&order, cn);
      else
        fprintf (stderr, "cella compose: warning: found orphan container %s; --remove-orphans removes it\n", cn);
    }
  /* stops run side by side: each may wait its grace period */
  {
    size_t n = strv_len (order), started = 0;
    pid_t *pids = xzalloc (sizeof *pids * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
      {
        json_t *c = ctr_find (ps, order[i]);
        const char *svc = json_string_value (json_object_get (json_object_get (ctrs, order[i]), "service"));
        if (c == NULL || !ctr_running (c))
          continue;
        say ("Container", order[i], "Stopping");
        fflush (NULL);
        pids[started] = fork ();
        if (pids[started] == 0)
          _exit (stop_one (p, svc, order[i], o->timeout));
        if (pids[started] > 0)
          started++;
        else
          stop_one (p, svc, order[i], o->timeout);
      }
    for (size_t i = 0; i < started; i++)
      while (waitpid (pids[i], NULL, 0) < 0 && errno == EINTR)
        ;
    free (pids);
  }
  for (char **n = order; n && *n; n++)
    {
      json_t *c = ctr_find (ps, *n);
      if (c == NULL)
        {
          json_object_del (ctrs, *n);
          continue;
        }
      char *const args[]
          = { (char *) "rm", (char *) "--force", (char *) (o->volumes ? "--volumes" : "--force"), *n, NULL };
      if (compose_cella (args, NULL, true) != 0)
        {
          json_decref (ps);
          record_save (p->name, rec, NULL);
          json_decref (rec);
          return cella_error (err, 0, "could not remove container `%s`", *n);
        }
      json_object_del (ctrs, *n);
      say ("Container", *n, "Removed");
    }
  /* recorded containers that no longer exist (removed by hand): forgotten */
  {
    void *tmp;
    json_object_foreach_safe (ctrs, tmp, cn, e)
      if (ps && ctr_find (ps, cn) == NULL)
        json_object_del (ctrs, cn);
  }
  json_decref (ps);
  /* networks: the recorded ones and the file's own (not external) */
  json_t *nets = json_copy (json_object_get (rec, "networks"));
  const char *k;
  json_object_foreach (json_object_get (p->model, "networks"), k, e)
    if (!json_is_true (json_object_get (e, "external")))
      strset_add (nets, json_string_value (json_object_get (e, "name")));
  json_t *have = compose_networks_supported () ? cella_json ("network", "ls", NULL) : json_array ();
  size_t i, j;
  json_array_foreach (nets, i, e)
    {
      json_t *h;
      bool found = false;
      json_array_foreach (have, j, h)
        if (strcmp (json_string_value (json_object_get (h, "name")) ?: "", json_string_value (e)) == 0)
          found = true;
      if (!found)
        continue;
      char *const args[] = { (char *) "network", (char *) "rm", (char *) json_string_value (e), NULL };
      if (compose_cella (args, NULL, true) == 0)
        say ("Network", json_string_value (e), "Removed");
    }
  json_decref (have);
  json_decref (nets);
  json_object_set_new (rec, "networks", json_array ());
  if (o->volumes)
    {
      json_t *vols = json_copy (json_object_get (rec, "volumes"));
      json_object_foreach (json_object_get (p->model, "volumes"), k, e)
        if (!json_is_true (json_object_get (e, "external")))
          strset_add (vols, json_string_value (json_object_get (e, "name")));
      have = cella_json ("volume", "ls", NULL);
      json_array_foreach (vols, i, e)
        {
          json_t *h;
          bool found = false;
          json_array_foreach (have, j, h)
            if (strcmp (json_string_value (json_object_get (h, "Name")) ?: "", json_string_value (e)) == 0)
              found = true;
          if (!found)
            continue;
          char *const args[] = { (char *) "volume", (char *) "rm", (char *) json_string_value (e), NULL };
          if (compose_cella (args, NULL, true) == 0)
            say ("Volume", json_string_value (e), "Removed");
        }
      json_decref (have);
      json_decref (vols);
      json_object_set_new (rec, "volumes", json_array ());
    }
  int rc = 0;
  if (json_object_size (ctrs) == 0 && json_array_size (json_object_get (rec, "volumes")) == 0)
    {
      cleanup_free char *path = record_path (p->name);
      unlink (path);
    }
  else
    rc = record_save (p->name, rec, err);
  json_decref (rec);
  return rc;
}

/* ---- ps, logs, start/stop/restart, exec, run, pull, config ---- */

static int
cp_ps (struct compose_project *p, struct sub_opts *o, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  json_t *ps, *out = json_array ();
  if (select_services (p, names, false, &services, err) < 0)
    return -1;
  ps = cella_json ("ps", "-a", NULL);
  if (ps == NULL)
    return cella_error (err, 0, "could not list containers (cella ps -a)");
  json_t *ctrs = project_ctrs (p, services, ps), *ce;
  size_t ci;
  json_array_foreach (ctrs, ci, ce)
    {
      const char *cn = json_string_value (json_object_get (ce, "name"));
      const char *svc = json_string_value (json_object_get (ce, "service"));
      json_t *c = ctr_find (ps, cn), *ports = json_array (), *e;
      size_t i;
      json_array_foreach (json_object_get (compose_service (p, svc), "ports"), i, e)
        {
          const char *ip = json_string_value (json_object_get (e, "host_ip"));
          const char *pub = json_string_value (json_object_get (e, "published"));
          json_array_append_new (
              ports, json_take_str (xasprintf ("%s%s%s%s%lld/%s", ip ? ip : (pub ? "0.0.0.0" : ""), pub ? ":" : "",
                                               pub ? pub : "", pub ? "->" : "",
                                               (long long) json_integer_value (json_object_get (e, "target")),
                                               json_string_value (json_object_get (e, "protocol")))));
        }
      /* (a container without a health check has no Health: "" then, made here and owned by the row) */
      json_t *health = json_object_get (c, "Health");
      json_array_append_new (out, json_pack ("{s:s,s:s,s:O,s:s,s:O,s:O,s:O,s:o,s:O,s:o}", "Name", cn, "Service", svc,
                                             "Number", json_object_get (ce, "number"), "Project", p->name, "Image",
                                             json_object_get (c, "Image"), "State", json_object_get (c, "State"),
                                             "Status", json_object_get (c, "Status"), "Health",
                                             health ? json_incref (health) : json_string (""), "ExitCode",
                                             json_object_get (c, "ExitCode"), "Publishers", ports));
    }
  json_decref (ctrs);
  json_decref (ps);
  if (o->format && strcmp (o->format, "json") == 0)
    {
      char *s = json_dumps (out, JSON_INDENT (2));
      puts (s);
      free (s);
    }
  else if (o->format && strcmp (o->format, "table") != 0)
    {
      json_decref (out);
      return cella_error (err, 0, "unknown --format `%s` (table or json)", o->format);
    }
  else
    {
      size_t i;
      json_t *e;
      if (!o->quiet)
        printf ("%-28s %-14s %-30s %s\n", "NAME", "SERVICE", "STATUS", "PORTS");
      json_array_foreach (out, i, e)
        {
          if (o->quiet)
            {
              puts (json_string_value (json_object_get (e, "Name")));
              continue;
            }
          size_t j;
          json_t *pt;
          printf ("%-28s %-14s %-30s ", json_string_value (json_object_get (e, "Name")),
                  json_string_value (json_object_get (e, "Service")),
                  json_string_value (json_object_get (e, "Status")) ?: "");
          json_array_foreach (json_object_get (e, "Publishers"), j, pt)
            printf ("%s%s", j ? ", " : "", json_string_value (pt));
          putchar ('\n');
        }
    }
  json_decref (out);
  return 0;
}

static int
cp_logs (struct compose_project *p, struct sub_opts *o, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  cleanup_strv char **cnames = NULL;
  cleanup_strv char **labels = NULL;
  cleanup_strv char **extra = NULL;
  struct compose_log_src *srcs = NULL;
  struct sigaction sa = { .sa_handler = on_signal };
  json_t *ps;
  if (select_services (p, names, false, &services, err) < 0)
    return -1;
  /* the containers that exist, every replica */
  ps = cella_json ("ps", "-a", NULL);
  json_t *ctrs = project_ctrs (p, services, ps);
  json_decref (ps);
  if (o->tail)
    {
      strv_push (&extra, "--tail");
      strv_push (&extra, o->tail);
    }
  if (o->timestamps)
    strv_push (&extra, "--timestamps");
  sigaction (SIGINT, &sa, NULL);
  size_t n = log_sources (ctrs, &srcs, &cnames, &labels);
  json_decref (ctrs);
  compose_logs_follow (srcs, n, o->follow, extra, &got_signal);
  free (srcs);
  return 0;
}

static int
cp_lifecycle (struct compose_project *p, const char *what, struct sub_opts *o, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  json_t *ps;
  int rc = 0;
  if (select_services (p, names, false, &services, err) < 0)
    return -1;
  if (strcmp (what, "stop") == 0)
    return stop_services (p, services, o->timeout);
  ps = cella_json ("ps", "-a", NULL);
  if (strcmp (what, "restart") == 0)
    stop_services (p, services, o->timeout);
  json_t *ctrs = project_ctrs (p, services, ps), *c;
  size_t i;
  const char *waited = NULL;
  json_array_foreach (ctrs, i, c)
    {
      const char *cn = json_string_value (json_object_get (c, "name"));
      const char *svc = json_string_value (json_object_get (c, "service"));
      if ((waited == NULL || strcmp (waited, svc) != 0) && wait_deps (p, svc, err) < 0)
        {
          rc = -1;
          break;
        }
      waited = svc;
      char *const args[] = { (char *) "start", (char *) cn, NULL };
      if (compose_cella (args, NULL, true) != 0)
        {
          rc = cella_error (err, 0, "could not start container `%s`", cn);
          break;
        }
      say ("Container", cn, "Started");
    }
  json_decref (ctrs);
  json_decref (ps);
  return rc;
}

static bool
want_tty (const struct sub_opts *o)
{
  return !o->tty_off && isatty (STDIN_FILENO) && isatty (STDOUT_FILENO);
}

static int
cp_exec (struct compose_project *p, struct sub_opts *o, char **rest, cella_error_t *err)
{
  cleanup_strv char **args = NULL;
  cleanup_free char *cn = NULL;
  if (rest[0] == NULL || rest[1] == NULL)
    return cella_error (err, 0, "usage: cella compose exec SERVICE COMMAND [ARG...]");
  if (compose_service (p, rest[0]) == NULL)
    return cella_error (err, 0, "no such service: %s", rest[0]);
  long long idx = o->index ? parse_uint (o->index, COMPOSE_MAX_REPLICAS) : 1;
  if (idx < 1)
    return cella_error (err, 0, "--index `%s`: a replica number from 1 (cella compose ps lists them)", o->index);
  cn = compose_ctr_name (p, rest[0], (int) idx);
  strv_push (&args, "exec");
  if (o->detach)
    strv_push (&args, "--detach");
  else
    {
      strv_push (&args, "--interactive");
      if (want_tty (o))
        strv_push (&args, "--tty");
    }
  for (char **e = o->env; e && *e; e++)
    {
      strv_push (&args, "--env");
      strv_push (&args, *e);
    }
  if (o->user)
    {
      strv_push (&args, "--user");
      strv_push (&args, o->user);
    }
  if (o->workdir)
    {
      strv_push (&args, "--workdir");
      strv_push (&args, o->workdir);
    }
  strv_push (&args, cn);
  strv_append_all (&args, rest + 1);
  return compose_cella (args, NULL, false);
}

static int
cp_run (struct compose_project *p, struct sub_opts *o, char **rest, cella_error_t *err)
{
  cleanup_strv char **args = NULL;
  cleanup_strv char **full = NULL;
  cleanup_strv char **one = NULL;
  cleanup_free char *name = NULL;
  json_t *rec;
  int rc;
  if (rest[0] == NULL)
    return cella_error (err, 0, "usage: cella compose run SERVICE [COMMAND [ARG...]]");
  if (compose_service (p, rest[0]) == NULL)
    return cella_error (err, 0, "no such service: %s", rest[0]);
  strv_push (&one, rest[0]);
  if (build_services (p, one, false, false, false, err) < 0)
    return -1;
  rec = record_load (p->name);
  rc = ensure_networks (p, one, rec, err);
  if (rc == 0)
    rc = ensure_volumes (p, one, rec, err);
  json_decref (rec);
  if (rc < 0)
    return -1;
  if (o->name)
    name = xstrdup (o->name);
  else
    {
      cleanup_free char *id = paths_new_id ();
      name = xasprintf ("%s-%s-run-%.12s", p->name, rest[0], id ? id : "0");
    }
  if (compose_run_args (p, rest[0], 0, name, rest[1] ? rest + 1 : NULL, &args, err) < 0)
    return -1;
  strv_push (&full, "run");
  strv_push (&full, "--interactive");
  if (want_tty (o))
    strv_push (&full, "--tty");
  for (char **e = o->env; e && *e; e++)
    {
      strv_push (&full, "--env");
      strv_push (&full, *e);
    }
  strv_append_all (&full, args);
  return compose_cella (full, NULL, false);
}

static int
cp_pull (struct compose_project *p, char **names, cella_error_t *err)
{
  cleanup_strv char **services = NULL;
  json_t *done = json_object ();
  int rc = 0;
  if (select_services (p, names, false, &services, err) < 0)
    {
      json_decref (done);
      return -1;
    }
  for (char **s = services; *s && rc == 0; s++)
    {
      const char *img = json_string_value (json_object_get (compose_service (p, *s), "image"));
      if (json_object_get (compose_service (p, *s), "build"))
        continue; /* built here, not pulled (docker compose pull --ignore-buildable) */
      if (json_object_get (done, img))
        continue;
      json_object_set_new (done, img, json_true ());
      char *const args[] = { (char *) "pull", (char *) img, NULL };
      if (compose_cella (args, NULL, false) != 0)
        rc = cella_error (err, 0, "service `%s`: could not pull `%s`", *s, img);
    }
  json_decref (done);
  return rc;
}

static int
cp_config (struct compose_project *p, struct sub_opts *o, cella_error_t *err)
{
  if (o->quiet)
    return 0;
  if (o->format && strcmp (o->format, "json") != 0)
    return cella_error (err, 0, "unknown --format `%s` (json)", o->format);
  char *s = json_dumps (p->model, JSON_INDENT (2) | JSON_SORT_KEYS);
  puts (s);
  free (s);
  return 0;
}

static const struct cli_option config_table[] = {
  { "format", 0, OPT_STRING, offsetof (struct sub_opts, format), "json", "Output format (JSON; the only one)" },
  { "quiet", 'q', OPT_FLAG, offsetof (struct sub_opts, quiet), NULL, "Only check the file" },
  { NULL, 0, 0, 0, NULL, NULL },
};

struct subcommand {
  const char *name;
  const struct cli_option *table;
  const char *usage, *summary;
};

static const struct subcommand subcommands[] = {
  { "config", config_table, "cella compose config [--format json] [-q]",
    "Print the resolved file (merged, interpolated, normalized) as JSON." },
  { "up", up_table,
    "cella compose up [-d] [--build] [--force-recreate] [--no-deps] [--remove-orphans] [--scale SERVICE=N]... "
    "[SERVICE...]",
    "Build missing images (--build: all), create networks and volumes, then create and start the services' containers in dependency order; a container "
    "whose config is unchanged is kept. Without -d: follow their logs, Ctrl-C stops them." },
  { "down", down_table, "cella compose down [-v] [--remove-orphans] [-t SECONDS]",
    "Stop and remove the project's containers and networks (-v: and volumes)." },
  { "ps", ps_table, "cella compose ps [--format table|json] [-q] [SERVICE...]", "List the project's containers." },
  { "logs", logs_table, "cella compose logs [-f] [--tail N] [-t] [SERVICE...]",
    "Print the services' output, each line prefixed by its service." },
  { "start", no_table, "cella compose start [SERVICE...]", "Start the services' existing containers." },
  { "stop", stop_table, "cella compose stop [-t SECONDS] [SERVICE...]", "Stop the services' containers." },
  { "restart", stop_table, "cella compose restart [-t SECONDS] [SERVICE...]",
    "Stop and start the services' containers." },
  { "exec", exec_table, "cella compose exec [-T] [-d] [-e K=V] [-u USER] [-w DIR] [--index N] SERVICE COMMAND [ARG...]",
    "Run a command in a service's running container (--index: which replica)." },
  { "run", run_table, "cella compose run [-T] [--rm] [--name NAME] [-e K=V] SERVICE [COMMAND [ARG...]]",
    "Run a one-off container of a service (removed when it exits)." },
  { "pull", no_table, "cella compose pull [SERVICE...]", "Pull the services' images (not those with `build:`)." },
  { "build", build_table, "cella compose build [--no-cache] [-q] [SERVICE...]",
    "Build the images of the services with `build:` (cella build; named `image:`, else PROJECT-SERVICE)." },
  { NULL, NULL, NULL, NULL },
};

static const char compose_usage_line[]
    = "cella compose [-f FILE]... [-p NAME] [--profile P]... [--env-file FILE] COMMAND [ARGS]";

static void
compose_usage (FILE *f)
{
  fprintf (f, "Usage: %s\n\n", compose_usage_line);
  fprintf (f, "Run an application of several containers from a compose file (docs/compose.md).\n\nCommands:\n");
  for (const struct subcommand *s = subcommands; s->name; s++)
    fprintf (f, "  %-8s %s\n", s->name, s->summary);
  fprintf (f, "\nOptions:\n");
  for (const struct cli_option *t = top_table; t->long_name; t++)
    fprintf (f, "  %c%c%s --%-14s %s\n", t->short_name ? '-' : ' ', t->short_name ? t->short_name : ' ',
             t->short_name ? "," : " ", t->long_name, t->help);
  fprintf (f, "\nRun `cella compose COMMAND --help` for a command's options.\n");
}

static int
dispatch (const struct subcommand *sc, struct compose_opts *co, struct sub_opts *so, char **rest, cella_error_t *err)
{
  struct compose_load_opts lo = { co->files, co->project, co->profiles, co->env_file };
  struct compose_project p;
  int rc;
  if (compose_load (&lo, &p, err) < 0)
    return -1;
  if (strcmp (sc->name, "config") == 0)
    rc = cp_config (&p, so, err);
  else if (strcmp (sc->name, "up") == 0)
    rc = cp_up (&p, so, rest, err);
  else if (strcmp (sc->name, "down") == 0)
    rc = cp_down (&p, so, err);
  else if (strcmp (sc->name, "ps") == 0)
    rc = cp_ps (&p, so, rest, err);
  else if (strcmp (sc->name, "logs") == 0)
    rc = cp_logs (&p, so, rest, err);
  else if (strcmp (sc->name, "exec") == 0)
    rc = cp_exec (&p, so, rest, err);
  else if (strcmp (sc->name, "run") == 0)
    rc = cp_run (&p, so, rest, err);
  else if (strcmp (sc->name, "pull") == 0)
    rc = cp_pull (&p, rest, err);
  else if (strcmp (sc->name, "build") == 0)
    rc = cp_build (&p, so, rest, err);
  else
    rc = cp_lifecycle (&p, sc->name, so, rest, err);
  compose_project_free (&p);
  return rc;
}

int
cmd_compose (int argc, char **argv)
{
  struct compose_opts co = { 0 };
  struct sub_opts so = { 0 };
  cella_error_t err = NULL;
  int help = 0, first, status = 0;
  const struct subcommand *sc;
  first = cli_parse (top_table, &co, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    {
      fprintf (stderr, "Usage: %s\n", compose_usage_line);
      return cella_error_print (&err);
    }
  first++;
  if (help || first >= argc)
    {
      compose_usage (help ? stdout : stderr);
      return help ? 0 : 125;
    }
  for (sc = subcommands; sc->name && strcmp (sc->name, argv[first]) != 0; sc++)
    ;
  if (sc->name == NULL)
    {
      fprintf (stderr, "cella: compose: unknown command `%s` (see cella compose --help)\n", argv[first]);
      return 125;
    }
  int sub_first
      = cli_parse_command (sc->table, &so, argc - first, argv + first, sc->usage, sc->summary, 0, NULL, &status);
  if (sub_first > 0)
    {
      /* exec and run take a command after the service: the service's own options end at it */
      cleanup_strv char **rest = strv_dup (argv + first + sub_first);
      if (rest == NULL)
        rest = strv_new (0);
      int rc = dispatch (sc, &co, &so, rest, &err);
      status = rc < 0 ? cella_error_print (&err) : rc;
    }
  sub_opts_free (&so);
  strv_free (co.files);
  strv_free (co.profiles);
  free (co.project);
  free (co.env_file);
  return status;
}
