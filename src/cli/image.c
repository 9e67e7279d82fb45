/* cella images / image ls|inspect|rm|prune|tag, and the image commands that the image tool
 * (build/cella-image: libcurl, libarchive) carries out: pull, import, save, export, login,
 * logout, build. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../engine/events.h"
#include "../image/ref.h"
#include "../image/store.h"
#include "commands.h"
#include "../util/options.h"

/* ---- the image tool ---------------------------------------------------------------------------- */

/* Where build/cella-image is: $CELLA_IMAGE_TOOL, else next to this binary, else libexec. Called
 * early in main, before a re-exec from a sealed copy hides where the binary lives; self is this binary's path
 * (/proc/self/exe), or NULL. */
void
image_tool_path_init (const char *self)
{
  const char *slash;
  char *p;
  if (getenv ("CELLA_IMAGE_TOOL") || self == NULL)
    return;
  slash = strrchr (self, '/');
  if (slash == NULL || has_prefix (self, "/memfd:"))
    return;
  p = xasprintf ("%.*s/cella-image", (int) (slash - self), self);
  if (access (p, X_OK) == 0)
    setenv ("CELLA_IMAGE_TOOL", p, 0);
  free (p);
}

static const char *
image_tool_path (void)
{
  const char *e = getenv ("CELLA_IMAGE_TOOL");
  if (e && *e)
    return e;
  if (access (LIBEXECDIR "/cella/cella-image", X_OK) == 0)
    return LIBEXECDIR "/cella/cella-image";
  return NULL;
}

int
image_tool_run (char *const *argv, cella_error_t *err)
{
  const char *tool = image_tool_path ();
  cleanup_strv char **v = NULL;
  pid_t pid;
  int status;
  if (tool == NULL)
    return cella_error (err, 0,
                        "the image tool `cella-image` is not installed next to cella (or in %s/cella); "
                        "build it with `make`",
                        LIBEXECDIR);
  strv_push (&v, "cella-image");
  for (size_t i = 0; argv[i]; i++)
    strv_push (&v, argv[i]);
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    {
      execv (tool, v);
      fprintf (stderr, "cella: run `%s`: %s\n", tool, strerror (errno));
      _exit (125);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for the image tool");
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* `cella pull …` and the others: become the image tool with the same arguments. */
int
cmd_image_tool (int argc, char **argv)
{
  const char *tool = image_tool_path ();
  cleanup_strv char **v = NULL;
  if (tool == NULL)
    {
      fprintf (stderr,
               "cella: %s: the image tool `cella-image` is not installed next to cella (or in %s/cella); build it "
               "with `make`\n",
               argv[0], LIBEXECDIR);
      return 125;
    }
  if (strcmp (argv[0], "pull") == 0 || strcmp (argv[0], "import") == 0)
    {
      /* run it as a child, for the event once it has done its work */
      cella_error_t err = NULL;
      const char *what = NULL;
      int status;
      for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-' || argv[i][1] == '\0')
          what = argv[i];
      for (int i = 0; i < argc; i++)
        strv_push (&v, argv[i]);
      status = image_tool_run (v, &err);
      if (status < 0)
        return cella_error_print (&err);
      if (status == 0 && what)
        event_emit ("image", argv[0], what, what, NULL);
      return status;
    }
  strv_push (&v, "cella-image");
  for (int i = 0; i < argc; i++)
    strv_push (&v, argv[i]);
  fflush (NULL);
  execv (tool, v);
  fprintf (stderr, "cella: %s: run `%s`: %s\n", argv[0], tool, strerror (errno));
  return 125;
}

/* ---- images -------------------------------------------------------------------------------------- */

struct img_opts {
  bool all, quiet, no_trunc, digests, force;
  char *format, *filter;
};

#define O(f) offsetof (struct img_opts, f)
static const struct cli_option ls_table[] = {
  { "all", 'a', OPT_FLAG, O (all), NULL, "Also list images without a name" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Only print image ids" },
  { "no-trunc", 0, OPT_FLAG, O (no_trunc), NULL, "Print whole ids" },
  { "digests", 0, OPT_FLAG, O (digests), NULL, "Show manifest digests" },
  { "format", 0, OPT_STRING, O (format), "table|json", "Output format (json: one array of objects)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option inspect_table[] = {
  { "format", 'f', OPT_STRING, O (format), "TEMPLATE", "Print {{.Path.To.Field}} of each image instead of JSON" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option rm_table[] = {
  { "force", 'f', OPT_FLAG, O (force), NULL, "Remove an image with several names, or untag one a container uses" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option prune_table[] = {
  { "all", 'a', OPT_FLAG, O (all), NULL, "Remove every image no container uses, not only those without a name" },
  { "force", 'f', OPT_FLAG, O (force), NULL, "Do not ask (cella never asks; accepted for docker's scripts)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option no_options[] = { { NULL, 0, 0, 0, NULL, NULL } };
#undef O

static void
img_opts_free (struct img_opts *o)
{
  free (o->format);
  free (o->filter);
}

static void
human_size (int64_t b, char *buf, size_t len)
{
  if (b < 1000)
    snprintf (buf, len, "%lld B", (long long) b);
  else if (b < 1000 * 1000)
    snprintf (buf, len, "%.1f kB", b / 1e3);
  else if (b < 1000LL * 1000 * 1000)
    snprintf (buf, len, "%.1f MB", b / 1e6);
  else
    snprintf (buf, len, "%.2f GB", b / 1e9);
}

static void
human_ago (int64_t t, char *buf, size_t len)
{
  long long d = (long long) time (NULL) - t;
  if (d < 60)
    snprintf (buf, len, "%lld seconds ago", d < 0 ? 0 : d);
  else if (d < 3600)
    snprintf (buf, len, "%lld minutes ago", d / 60);
  else if (d < 86400 * 2)
    snprintf (buf, len, "%lld hours ago", d / 3600);
  else
    snprintf (buf, len, "%lld days ago", d / 86400);
}

static void
split_name (const char *full, char **repo, char **tag)
{
  cleanup_free char *s = image_name_short (full);
  char *at = strchr (s, '@'), *colon;
  if (at)
    {
      *repo = strndup (s, (size_t) (at - s));
      *tag = xstrdup ("<none>");
      return;
    }
  colon = strrchr (s, ':');
  if (colon && strchr (colon, '/') == NULL)
    {
      *repo = strndup (s, (size_t) (colon - s));
      *tag = xstrdup (colon + 1);
    }
  else
    {
      *repo = xstrdup (s);
      *tag = xstrdup ("<none>");
    }
}

/* When the image was made: its config's "created" (what docker shows), else when it was stored. */
static int64_t
image_created (const struct image_record *r)
{
  struct image_config c = { 0 };
  cella_error_t err = NULL;
  long long t = -1;
  if (image_config_load (r, &c, &err) == 0)
    t = rfc3339_seconds (c.created);
  cella_error_free (&err);
  image_config_clear (&c);
  return t > 0 ? (int64_t) t : r->created;
}

static json_t *
ls_json (const struct image_record *r)
{
  json_t *names = json_array ();
  for (size_t i = 0; r->names[i]; i++)
    json_array_append_new (names, json_string (r->names[i]));
  return json_pack ("{s:s, s:o, s:s?, s:I, s:I, s:I}", "Id", r->id, "Names", names, "Digest",
                    r->repo_digest ? r->repo_digest : r->manifest_digest, "Created", (json_int_t) image_created (r),
                    "Size", (json_int_t) r->size, "Layers", (json_int_t) r->nlayers);
}

static int
list_images (struct img_opts *o)
{
  cella_error_t err = NULL;
  struct image_record **v;
  size_t n;
  bool json = o->format && strcmp (o->format, "json") == 0;
  json_t *all = json ? json_array () : NULL;
  if (o->format && !json && strcmp (o->format, "table") != 0)
    {
      cella_error (&err, 0, "images: --format `%s`: expected table or json", o->format);
      return cella_error_print (&err);
    }
  if (image_list (&v, &n, &err) < 0)
    return cella_error_print (&err);
  if (!json && !o->quiet)
    printf ("%-40s %-16s %s%-14s %-16s %s\n", "REPOSITORY", "TAG",
            o->digests ? "DIGEST                                                                   " : "", "IMAGE ID",
            "CREATED", "SIZE");
  for (size_t i = 0; i < n; i++)
    {
      struct image_record *r = v[i];
      size_t nn = strv_len (r->names);
      char sz[32], ago[48];
      if (nn == 0 && !o->all && !json)
        continue;
      if (json)
        {
          json_array_append_new (all, ls_json (r));
          continue;
        }
      if (o->quiet)
        {
          printf ("%.*s\n", o->no_trunc ? 71 : 12, o->no_trunc ? r->id : r->id + 7);
          continue;
        }
      human_size (r->size, sz, sizeof sz);
      human_ago (image_created (r), ago, sizeof ago);
      for (size_t j = 0; j < (nn ? nn : 1); j++)
        {
          cleanup_free char *repo = NULL, *tag = NULL;
          if (nn)
            split_name (r->names[j], &repo, &tag);
          printf ("%-40s %-16s ", repo ? repo : "<none>", tag ? tag : "<none>");
          if (o->digests)
            printf ("%-73s ", r->repo_digest ? r->repo_digest : r->manifest_digest ? r->manifest_digest : "<none>");
          printf ("%-14.*s %-16s %s\n", o->no_trunc ? 71 : 12, o->no_trunc ? r->id : r->id + 7, ago, sz);
        }
    }
  if (json)
    {
      char *s = json_dumps (all, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      puts (s);
      free (s);
      json_decref (all);
    }
  image_list_free (v, n);
  return 0;
}

int
cmd_images (int argc, char **argv)
{
  struct img_opts o = { 0 };
  int status, first = cli_parse_command (ls_table, &o, argc, argv, "cella images [OPTIONS]",
                                         "List the images in the store.", 0, "", &status);
  if (first > 0)
    status = list_images (&o);
  img_opts_free (&o);
  return status;
}

static json_t *
strv_to_json (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static json_t *
set_to_json (char *const *v)
{
  json_t *o = json_object ();
  for (size_t i = 0; v && v[i]; i++)
    json_object_set_new (o, v[i], json_object ());
  return o;
}

static json_t *
image_inspect_json (const struct image_record *r, const struct image_config *c)
{
  json_t *labels = json_object (), *layers = json_array (), *repo_digests = json_array (), *cfg, *o;
  for (size_t i = 0; c->labels && c->labels[i]; i++)
    {
      char *eq = strchr (c->labels[i], '=');
      cleanup_free char *k = eq ? strndup (c->labels[i], (size_t) (eq - c->labels[i])) : xstrdup (c->labels[i]);
      json_object_set_new (labels, k, json_string (eq ? eq + 1 : ""));
    }
  for (size_t i = 0; i < r->nlayers; i++)
    {
      cleanup_free char *path = store_layer_path (r->layers[i].digest);
      json_array_append_new (layers,
                             json_pack ("{s:s, s:s?, s:I, s:s}", "Digest", r->layers[i].digest, "MediaType",
                                        r->layers[i].media_type, "Size", (json_int_t) r->layers[i].size, "Path", path));
    }
  for (size_t i = 0; r->names[i]; i++)
    {
      const char *d = r->repo_digest ? r->repo_digest : r->manifest_digest;
      char *colon = strrchr (r->names[i], ':');
      if (d && colon && strchr (colon, '/') == NULL)
        {
          cleanup_free char *rd = xasprintf ("%.*s@%s", (int) (colon - r->names[i]), r->names[i], d);
          json_array_append_new (repo_digests, json_string (rd));
        }
    }
  cfg = json_pack ("{s:o?, s:o?, s:o?, s:s?, s:s?, s:o, s:o, s:o}", "Entrypoint",
                   c->entrypoint ? strv_to_json (c->entrypoint) : NULL, "Cmd", c->cmd ? strv_to_json (c->cmd) : NULL,
                   "Env", c->env ? strv_to_json (c->env) : NULL, "WorkingDir", c->workdir, "User", c->user,
                   "ExposedPorts", set_to_json (c->exposed_ports), "Volumes", set_to_json (c->volumes), "Labels",
                   labels);
  {
    /* what struct image_config does not hold, as the config blob has it */
    static const char *const raw[] = { "StopSignal", "Healthcheck", "OnBuild", "Shell" };
    cleanup_free char *path = store_blob_path (r->id);
    json_t *blob = json_load_file (path, 0, NULL), *bc = json_object_get (blob, "config");
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
      if (json_object_get (bc, raw[i]) && !json_is_null (json_object_get (bc, raw[i])))
        json_object_set (cfg, raw[i], json_object_get (bc, raw[i]));
    json_decref (blob);
  }
  o = json_pack ("{s:s, s:o, s:o, s:s?, s:s?, s:s?, s:I, s:o, s:{s:s, s:o}, s:{s:s?, s:s?, s:s?, s:o, s:I}}", "Id",
                 r->id, "RepoTags", strv_to_json (r->names), "RepoDigests", repo_digests, "Created", c->created, "Os",
                 c->os, "Architecture", c->arch, "Size", (json_int_t) r->size, "Config", cfg, "RootFS", "Type",
                 "layers", "Layers", strv_to_json (c->diff_ids), "Store", "Manifest", r->manifest_digest,
                 "ManifestMediaType", r->manifest_media_type, "Source", r->source, "Layers", layers, "Stored",
                 (json_int_t) r->created);
  return o;
}

static int
inspect_images (struct img_opts *o, int argc, char **argv, int first)
{
  json_t *all = json_array ();
  int status = 0;
  for (int i = first; i < argc; i++)
    {
      cella_error_t err = NULL;
      struct image_record *r = NULL;
      struct image_config c;
      json_t *j;
      int rc = image_lookup (argv[i], &r, &err);
      if (rc > 0)
        cella_error (&err, 0, "image `%s`: not found (see `cella images`)", argv[i]);
      if (rc != 0 || image_config_load (r, &c, &err) < 0)
        {
          image_record_free (r);
          status = cella_error_print (&err);
          continue;
        }
      j = image_inspect_json (r, &c);
      image_config_clear (&c);
      image_record_free (r);
      if (o->format)
        {
          cli_print_template (o->format, j);
          json_decref (j);
        }
      else
        json_array_append_new (all, j);
    }
  if (!o->format)
    {
      char *s = json_dumps (all, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      puts (s);
      free (s);
    }
  json_decref (all);
  return status;
}

static int
image_inspect_cmd (int argc, char **argv)
{
  struct img_opts o = { 0 };
  int status, first = cli_parse_command (inspect_table, &o, argc, argv, "cella image inspect [-f TEMPLATE] IMAGE...",
                                         "Print images' configuration and layers as a JSON array.", 1,
                                         "an image is required", &status);
  if (first > 0)
    status = inspect_images (&o, argc, argv, first);
  img_opts_free (&o);
  return status;
}

int
cmd_rmi (int argc, char **argv)
{
  struct img_opts o = { 0 };
  int status, first = cli_parse_command (rm_table, &o, argc, argv, "cella image rm [-f] IMAGE...",
                                         "Remove images (a name removes that name; the image goes with its last name).",
                                         1, "an image is required", &status);
  for (int i = first; first > 0 && i < argc; i++)
    {
      cella_error_t err = NULL;
      if (image_remove (argv[i], o.force, &err) < 0)
        status = cella_error_print (&err);
      else
        event_emit ("image", "delete", argv[i], argv[i], NULL);
    }
  img_opts_free (&o);
  return status;
}

static int
image_prune_cmd (int argc, char **argv)
{
  struct img_opts o = { 0 };
  int status,
      first = cli_parse_command (prune_table, &o, argc, argv, "cella image prune [-a] [-f]",
                                 "Remove images without a name (-a: every image no container uses), then blobs and "
                                 "layers nothing references, and what interrupted pulls left.",
                                 0, "", &status);
  if (first > 0)
    {
      cella_error_t err = NULL;
      int64_t freed = 0;
      char sz[32];
      if (image_prune (o.all, &freed, &err) < 0)
        status = cella_error_print (&err);
      else
        {
          human_size (freed, sz, sizeof sz);
          printf ("Total reclaimed space: %s\n", sz);
        }
    }
  img_opts_free (&o);
  return status;
}

int
cmd_tag (int argc, char **argv)
{
  struct img_opts o = { 0 };
  int status, first = cli_parse_command (no_options, &o, argc, argv, "cella tag IMAGE NEW-NAME[:TAG]",
                                         "Give an image another name.", 2, "", &status);
  if (first > 0)
    {
      cella_error_t err = NULL;
      struct image_record *r = NULL;
      struct image_ref ref = { 0 };
      cleanup_free char *name = NULL;
      int rc = image_lookup (argv[first], &r, &err);
      if (rc > 0)
        cella_error (&err, 0, "image `%s`: not found (see `cella images`)", argv[first]);
      if (rc != 0 || image_ref_parse (argv[first + 1], &ref, &err) < 0)
        status = cella_error_print (&err);
      else if (ref.digest)
        {
          cella_error (&err, 0, "tag: `%s`: a new name cannot have a digest", argv[first + 1]);
          status = cella_error_print (&err);
        }
      else
        {
          name = image_ref_name (&ref);
          if (image_name_set (name, r->key, &err) < 0)
            status = cella_error_print (&err);
          else
            event_emit ("image", "tag", r->id, name, NULL);
        }
      image_ref_clear (&ref);
      image_record_free (r);
    }
  img_opts_free (&o);
  return status;
}

/* `cella image SUBCOMMAND` */
static const struct {
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *help;
} image_commands[] = {
  { "ls", cmd_images, "List images" },
  { "list", cmd_images, NULL },
  { "inspect", image_inspect_cmd, "Show images' configuration and layers (JSON)" },
  { "rm", cmd_rmi, "Remove images" },
  { "prune", image_prune_cmd, "Remove unused images, blobs and layers" },
  { "tag", cmd_tag, "Give an image another name" },
  { "history", cmd_history, "Show an image's layers and how each was made" },
  { "pull", cmd_image_tool, "Pull an image from a registry" },
  { "import", cmd_image_tool, "Import a rootfs dir or tarball, an OCI layout or archive, a docker-archive" },
  { "save", cmd_image_tool, "Write images to an OCI archive" },
  { "push", cmd_image_tool, "Push an image to a registry" },
  { "build", cmd_image_build,
    "Build an image from a Containerfile (like `cella build`), or with --from bootstrap Debian or Ubuntu" },
  { NULL, NULL, NULL },
};

int
cmd_image (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      FILE *f = argc < 2 ? stderr : stdout;
      fprintf (f, "Usage: cella image COMMAND [OPTIONS]\n\nCommands:\n");
      for (size_t i = 0; image_commands[i].name; i++)
        if (image_commands[i].help)
          fprintf (f, "  %-8s %s\n", image_commands[i].name, image_commands[i].help);
      fprintf (f, "\nRun `cella image COMMAND --help` for a command's options.\n");
      return argc < 2 ? 125 : 0;
    }
  for (size_t i = 0; image_commands[i].name; i++)
    if (strcmp (argv[1], image_commands[i].name) == 0)
      return image_commands[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "cella: image: unknown command `%s` (see cella image --help)\n", argv[1]);
  return 125;
}
