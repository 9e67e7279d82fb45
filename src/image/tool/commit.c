/* cella commit (the image tool's half): a container's overlay upper dir packed as one more layer
 * over its image, with a config that says so (rootfs.diff_ids, a history entry, --change), stored
 * and recorded like an import. `cella commit` (src/cli/commit.c) finds the container and runs
 *
 *   cella-image commit --upper DIR (--parent KEY | --base-dir DIR) [--message M] [--author A]
 *                      [--change C]... [--created-by CMD] [--container ID] [--mount-point PATH]...
 *                      [NAME]
 * (--mount-point: what cella mounts on in the container, left out of the layer where the upper dir
 * holds only the empty stub cella made for it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "image/ref.h"
#include "ingest.h"
#include "pack.h"
#include "tool.h"

#define MT_OCI_CONFIG_C "application/vnd.oci.image.config.v1+json"
#define MT_OCI_MANIFEST_C "application/vnd.oci.image.manifest.v1+json"
#define MT_LAYER_GZIP_C "application/vnd.oci.image.layer.v1.tar+gzip"

struct commit_opts {
  char *upper, *parent, *base_dir, *message, *author, *created_by, *container, *config, *key_file, *source;
  char **changes, **mount_points;
};

#define O(f) offsetof (struct commit_opts, f)
/* internal: `cella commit` passes these (no help text: not listed as user options) */
static const struct cli_option commit_table[] = {
  { "upper", 0, OPT_STRING, O (upper), "DIR", NULL },
  { "parent", 0, OPT_STRING, O (parent), "KEY", NULL },
  { "base-dir", 0, OPT_STRING, O (base_dir), "DIR", NULL },
  { "message", 'm', OPT_STRING, O (message), "MSG", NULL },
  { "author", 'a', OPT_STRING, O (author), "AUTHOR", NULL },
  { "change", 'c', OPT_LIST, O (changes), "INSTR", NULL },
  { "created-by", 0, OPT_STRING, O (created_by), "CMD", NULL },
  { "container", 0, OPT_STRING, O (container), "ID", NULL },
  { "mount-point", 0, OPT_LIST, O (mount_points), "PATH", NULL },
  /* `cella build`: the whole image config (history, rootfs of the parent) as the build made it, in
   * place of the parent's; without --upper no layer is added (a step that changed only the config) */
  { "config", 0, OPT_STRING, O (config), "FILE", NULL },
  { "key-file", 0, OPT_STRING, O (key_file), "FILE", NULL },
  { "source", 0, OPT_STRING, O (source), "TEXT", NULL },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static void
commit_opts_free (struct commit_opts *o)
{
  free (o->upper);
  free (o->parent);
  free (o->base_dir);
  free (o->message);
  free (o->author);
  free (o->created_by);
  free (o->container);
  free (o->config);
  free (o->key_file);
  free (o->source);
  strv_free (o->changes);
  strv_free (o->mount_points);
}

/* ---- --change: a Dockerfile instruction applied to the config ---------------------------------- */

static const char *const change_names = "CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL";

/* The exec form (a JSON array of strings) or the shell form (["/bin/sh", "-c", TEXT]). */
static json_t *
argv_value (const char *change, const char *v, cella_error_t *err)
{
  json_t *a, *x;
  size_t i;
  if (*v != '[')
    return json_pack ("[s, s, s]", "/bin/sh", "-c", v);
  a = json_loads (v, 0, NULL);
  if (!json_is_array (a))
    goto bad;
  json_array_foreach (a, i, x)
    if (!json_is_string (x))
      goto bad;
  return a;
bad:
  json_decref (a);
  cella_error (err, 0, "--change `%s`: not a JSON array of strings", change);
  return NULL;
}

static json_t *
object_member (json_t *cfg, const char *key)
{
  json_t *o = json_object_get (cfg, key);
  if (!json_is_object (o))
    {
      o = json_object ();
      json_object_set_new (cfg, key, o);
    }
  return o;
}

/* Set K=V in Env, replacing K's old value. */
static void
env_set (json_t *cfg, const char *kv)
{
  json_t *env = json_object_get (cfg, "Env"), *x;
  size_t klen = strcspn (kv, "="), i;
  if (!json_is_array (env))
    {
      env = json_array ();
      json_object_set_new (cfg, "Env", env);
    }
  json_array_foreach (env, i, x)
    {
      const char *s = json_string_value (x);
      if (s && strncmp (s, kv, klen) == 0 && s[klen] == '=')
        {
          json_array_set_new (env, i, json_string (kv));
          return;
        }
    }
  json_array_append_new (env, json_string (kv));
}

static char *
unquote (const char *s, size_t n)
{
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
    return strndup (s + 1, n - 2);
  return strndup (s, n);
}

/* ENV, LABEL: K=V words (or ENV K V); each pair to fn. */
static int
pairs (json_t *cfg, const char *change, const char *v, bool env, cella_error_t *err)
{
  const char *sp = v + strcspn (v, " \t");
  if (env && memchr (v, '=', (size_t) (sp - v)) == NULL)
    {
      /* ENV K V: the rest of the line is the value */
      cleanup_free char *kv = NULL;
      const char *val = sp + strspn (sp, " \t");
      if (*val == '\0')
        return cella_error (err, 0, "--change `%s`: ENV needs KEY=VALUE or KEY VALUE", change);
      kv = xasprintf ("%.*s=%s", (int) (sp - v), v, val);
      env_set (cfg, kv);
      return 0;
    }
  while (*v)
    {
      size_t n = strcspn (v, " \t");
      const char *eq = memchr (v, '=', n);
      cleanup_free char *key = NULL, *val = NULL;
      if (eq == NULL || eq == v)
        return cella_error (err, 0, "--change `%s`: `%.*s` is not KEY=VALUE", change, (int) n, v);
      key = unquote (v, (size_t) (eq - v));
      val = unquote (eq + 1, n - (size_t) (eq + 1 - v));
      if (env)
        {
          cleanup_free char *kv = xasprintf ("%s=%s", key, val);
          env_set (cfg, kv);
        }
      else
        json_object_set_new (object_member (cfg, "Labels"), key, json_string (val));
      v += n;
      v += strspn (v, " \t");
    }
  return 0;
}

static int
expose (json_t *cfg, const char *change, const char *v, cella_error_t *err)
{
  while (*v)
    {
      size_t n = strcspn (v, " \t");
      cleanup_free char *w = strndup (v, n), *key = NULL;
      char *slash = strchr (w, '/'), *end;
      long port;
      if (slash)
        *slash = '\0';
      errno = 0;
      port = strtol (w, &end, 10);
      if (*w == '\0' || *end != '\0' || errno || port < 1 || port > 65535
          || (slash && strcmp (slash + 1, "tcp") != 0 && strcmp (slash + 1, "udp") != 0
              && strcmp (slash + 1, "sctp") != 0))
        return cella_error (err, 0, "--change `%s`: `%.*s` is not PORT[/tcp|udp|sctp]", change, (int) n, v);
      key = xasprintf ("%ld/%s", port, slash ? slash + 1 : "tcp");
      json_object_set_new (object_member (cfg, "ExposedPorts"), key, json_object ());
      v += n;
      v += strspn (v, " \t");
    }
  return 0;
}

static int
volume (json_t *cfg, const char *change, const char *v, cella_error_t *err)
{
  json_t *vols = object_member (cfg, "Volumes"), *a, *x;
  size_t i;
  if (*v != '[')
    {
      json_object_set_new (vols, v, json_object ());
      return 0;
    }
  if ((a = argv_value (change, v, err)) == NULL)
    return -1;
  json_array_foreach (a, i, x)
    json_object_set_new (vols, json_string_value (x), json_object ());
  json_decref (a);
  return 0;
}

/* One --change onto cfg (the config's "config" object). */
static int
change_apply (json_t *cfg, const char *change, cella_error_t *err)
{
  const char *s = change + strspn (change, " \t");
  size_t n = strcspn (s, " \t");
  cleanup_free char *word = strndup (s, n), *v = NULL;
  size_t len;
  for (char *q = word; *q; q++)
    *q = (char) (*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
  v = xstrdup (s + n + strspn (s + n, " \t"));
  for (len = strlen (v); len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\n'); len--)
    v[len - 1] = '\0';
  if (*word == '\0')
    return cella_error (err, 0, "--change `%s`: an empty instruction (%s)", change, change_names);
  if (strcmp (word, "CMD") && strcmp (word, "ENTRYPOINT") && strcmp (word, "ENV") && strcmp (word, "WORKDIR")
      && strcmp (word, "USER") && strcmp (word, "EXPOSE") && strcmp (word, "LABEL") && strcmp (word, "VOLUME")
      && strcmp (word, "STOPSIGNAL"))
    return cella_error (err, 0, "--change `%s`: unknown instruction `%s` (%s)", change, word, change_names);
  if (*v == '\0')
    return cella_error (err, 0, "--change `%s`: %s needs a value", change, word);
  if (strcmp (word, "CMD") == 0 || strcmp (word, "ENTRYPOINT") == 0)
    {
      json_t *a = argv_value (change, v, err);
      if (a == NULL)
        return -1;
      json_object_set_new (cfg, strcmp (word, "CMD") == 0 ? "Cmd" : "Entrypoint", a);
      return 0;
    }
  if (strcmp (word, "ENV") == 0 || strcmp (word, "LABEL") == 0)
    return pairs (cfg, change, v, strcmp (word, "ENV") == 0, err);
  if (strcmp (word, "EXPOSE") == 0)
    return expose (cfg, change, v, err);
  if (strcmp (word, "VOLUME") == 0)
    return volume (cfg, change, v, err);
  json_object_set_new (cfg,
                       strcmp (word, "WORKDIR") == 0 ? "WorkingDir"
                       : strcmp (word, "USER") == 0  ? "User"
                                                     : "StopSignal",
                       json_string (v));
  return 0;
}

/* ---- the new layer ------------------------------------------------------------------------------ */

/* What the packing child hands back (shared memory: it may run in a mapped user namespace). */
struct packed {
  char digest[72], diff_id[72];
  int64_t size;
};

struct pack_job {
  const char *dir;
  char *const *stubs;
  bool upper;
  int out_fd;
  struct packed *res;
};

struct tapc {
  struct sha256 *h;
  int64_t n;
};

static void
tapc_fn (const void *buf, size_t len, void *ud)
{
  struct tapc *t = ud;
  sha256_update (t->h, buf, len);
  t->n += (int64_t) len;
}

static int
pack_fn (void *ud, cella_error_t *err)
{
  struct pack_job *j = ud;
  /* as root of the mapped namespace the owners are the container's already; as ourselves with no
   * namespace (no subordinate range), what we own is what the container's root owns */
  struct pack_opts po = { .compression = PACK_GZIP,
                          .overlay_upper = j->upper,
                          .reproducible = true,
                          .skip_stubs = j->stubs,
                          .self_as_root = j->upper && geteuid () != 0 };
  struct tapc b = { sha256_new (), 0 }, r = { sha256_new (), 0 };
  cleanup_close int dfd = open (j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || layer_pack (dfd, j->out_fd, &po, tapc_fn, &b, tapc_fn, &r, err) < 0)
    {
      sha256_free (b.h);
      sha256_free (r.h);
      if (dfd < 0)
        return cella_error (err, errno, "open `%s`", j->dir);
      return cella_error_wrap (err, "pack `%s`", j->dir);
    }
  sha256_final (b.h, j->res->digest);
  sha256_final (r.h, j->res->diff_id);
  j->res->size = b.n;
  return 0;
}

/* Pack dir (an upper dir: whiteouts and opaque dirs as .wh. entries) as a gzip layer blob into the
 * store; its digest, diff_id and size out. */
static int
pack_layer (const char *dir, bool upper, char *const *stubs, struct packed *out, cella_error_t *err)
{
  struct packed *res = mmap (NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  struct pack_job j = { .dir = dir, .stubs = stubs, .upper = upper, .res = res };
  int rc = -1;
  if (res == MAP_FAILED)
    return cella_error (err, errno, "mmap");
  memset (res, 0, sizeof *res);
  if ((fd = blob_tmp_open (&tmp, err)) < 0)
    goto out;
  j.out_fd = fd;
  if (ingest_run_mapped (pack_fn, &j, err) < 0 || !digest_valid (res->digest))
    {
      if (*err == NULL)
        cella_error (err, 0, "pack `%s`: no digest came back", dir);
      unlink (tmp);
      goto out;
    }
  *out = *res;
  if (blob_present (out->digest))
    unlink (tmp);
  else if (blob_commit (fd, tmp, out->digest, err) < 0)
    {
      unlink (tmp);
      goto out;
    }
  rc = 0;
out:
  munmap (res, sizeof *res);
  return rc;
}

/* ---- config and manifest ------------------------------------------------------------------------ */

/* The new manifest is OCI: a Docker schema2 parent's gzip layers get the OCI name of the same
 * format (the blob is the same bytes); what has no OCI twin (foreign layers) keeps its own. */
static const char *
oci_layer_type (const char *mt)
{
  if (mt == NULL || strcmp (mt, "application/vnd.docker.image.rootfs.diff.tar.gzip") == 0)
    return MT_LAYER_GZIP_C;
  return mt;
}

/* The parent's config (a copy) and its layers as manifest descriptors. */
static int
parent_load (const char *key, json_t **config, json_t *layers, cella_error_t *err)
{
  struct image_record *r = NULL;
  cleanup_free char *buf = NULL;
  size_t len;
  int rc = image_record_read (key, &r, err);
  if (rc > 0)
    return cella_error (err, 0, "the container's image %.19s is no longer in the store", key);
  if (rc < 0)
    return -1;
  if (blob_read (r->id, INGEST_JSON_MAX, &buf, &len, err) < 0 || (*config = json_loadb (buf, len, 0, NULL)) == NULL
      || !json_is_object (*config))
    {
      json_decref (*config);
      *config = NULL;
      image_record_free (r);
      return *err ? -1 : cella_error (err, 0, "the container's image config %s is not JSON", key);
    }
  for (size_t i = 0; i < r->nlayers; i++)
    json_array_append_new (layers, json_pack ("{s:s, s:s, s:I}", "mediaType", oci_layer_type (r->layers[i].media_type),
                                              "digest", r->layers[i].digest, "size", (json_int_t) r->layers[i].size));
  image_record_free (r);
  return 0;
}

static json_t *
base_config (void)
{
  return json_pack ("{s:s, s:s, s:{s:[s]}, s:{s:s, s:[]}}", "architecture", platform_arch (), "os", "linux", "config",
                    "Env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "rootfs", "type",
                    "layers", "diff_ids");
}

static void
add_layer (json_t *config, json_t *layers, const struct packed *l)
{
  json_t *rootfs = object_member (config, "rootfs"), *ids = json_object_get (rootfs, "diff_ids");
  if (!json_is_array (ids))
    {
      ids = json_array ();
      json_object_set_new (rootfs, "diff_ids", ids);
      json_object_set_new (rootfs, "type", json_string ("layers"));
    }
  json_array_append_new (ids, json_string (l->diff_id));
  json_array_append_new (layers, json_pack ("{s:s, s:s, s:I}", "mediaType", MT_LAYER_GZIP_C, "digest", l->digest,
                                            "size", (json_int_t) l->size));
}

/* A history entry for the new layer; a parent without history gets one (empty) per layer it has
 * first, so that entries and layers still pair up. */
static void
add_history (json_t *config, const struct commit_opts *o, const char *now, size_t parent_layers, const char *base_by)
{
  json_t *hist = json_object_get (config, "history"), *h;
  if (!json_is_array (hist))
    {
      const char *pc = json_string_value (json_object_get (config, "created"));
      hist = json_array ();
      json_object_set_new (config, "history", hist);
      for (size_t i = 0; i < parent_layers; i++)
        json_array_append_new (hist, pc ? json_pack ("{s:s}", "created", pc) : json_object ());
    }
  if (base_by)
    json_array_append_new (hist, json_pack ("{s:s, s:s}", "created", now, "created_by", base_by));
  h = json_pack ("{s:s, s:s}", "created", now, "created_by", o->created_by ? o->created_by : "");
  if (o->author)
    json_object_set_new (h, "author", json_string (o->author));
  if (o->message)
    json_object_set_new (h, "comment", json_string (o->message));
  json_array_append_new (hist, h);
}

static int
name_stored (const char *in, char ***names, cella_error_t *err)
{
  struct image_ref r = { 0 };
  cleanup_free char *n = NULL;
  if (in == NULL)
    return 0;
  if (image_ref_parse (in, &r, err) < 0)
    return cella_error_wrap (err, "commit: image name");
  if (r.digest)
    {
      image_ref_clear (&r);
      return cella_error (err, 0, "commit: image name `%s`: a name to store cannot have a digest", in);
    }
  n = image_ref_name (&r);
  image_ref_clear (&r);
  strv_push (names, n);
  return 0;
}

static int
commit_image (const struct commit_opts *o, char *const *names, char id[72], cella_error_t *err)
{
  json_t *config = NULL, *layers = json_array (), *cfg, *m = NULL;
  struct packed base = { 0 }, top = { 0 };
  struct ingest_limits lim;
  cleanup_free char *now = utc_now_rfc3339 ();
  char cdigest[72], mdigest[72];
  size_t parent_layers = 0;
  char *text = NULL;
  int rc = -1;
  if (o->parent && parent_load (o->parent, &config, layers, err) < 0)
    goto out;
  if (o->config)
    {
      json_error_t je;
      json_decref (config);
      if ((config = json_load_file (o->config, 0, &je)) == NULL || !json_is_object (config))
        {
          cella_error (err, 0, "commit: --config `%s`: not a JSON object (%s)", o->config, je.text);
          goto out;
        }
    }
  if (config == NULL)
    config = base_config ();
  parent_layers = json_array_size (layers);
  cfg = object_member (config, "config");
  /* every --change is checked before anything is written */
  for (size_t i = 0; o->changes && o->changes[i]; i++)
    if (change_apply (cfg, o->changes[i], err) < 0)
      goto out;
  if (ingest_limits_init (&lim, NULL, err) < 0)
    goto out;
  if (o->base_dir)
    {
      if (pack_layer (o->base_dir, false, NULL, &base, err) < 0)
        goto out;
      add_layer (config, layers, &base);
    }
  if (o->upper)
    {
      /* the mount points cella made in the upper dir ("/etc/hosts"), relative as the packer names them */
      cleanup_strv char **stubs = NULL;
      for (size_t i = 0; o->mount_points && o->mount_points[i]; i++)
        if (o->mount_points[i][0] == '/' && o->mount_points[i][1])
          strv_push (&stubs, o->mount_points[i] + 1);
      if (pack_layer (o->upper, true, stubs, &top, err) < 0)
        goto out;
    }
  if (o->upper)
    {
      add_layer (config, layers, &top);
      /* with --config, the build's history already has the base's entry */
      add_history (config, o, now, parent_layers,
                   o->base_dir && o->config == NULL ? "cella: the embedded busybox rootfs" : NULL);
    }
  json_object_set_new (config, "created", json_string (now));
  if (o->author)
    json_object_set_new (config, "author", json_string (o->author));
  if (o->container)
    json_object_set_new (config, "container", json_string (o->container));
  text = json_dumps (config, JSON_COMPACT);
  if (blob_put_mem (text, strlen (text), cdigest, err) < 0)
    goto out;
  m = json_pack ("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST_C, "config",
                 "mediaType", MT_OCI_CONFIG_C, "digest", cdigest, "size", (json_int_t) strlen (text), "layers", layers);
  free (text);
  text = json_dumps (m, JSON_COMPACT);
  if (blob_put_mem (text, strlen (text), mdigest, err) < 0)
    goto out;
  {
    cleanup_free char *source = o->source      ? xstrdup (o->source)
                                : o->container ? xasprintf ("commit %s", o->container)
                                               : xasprintf ("commit %s", o->upper ? o->upper : "");
    struct image_source src
        = { .manifest = mdigest, .media_type = MT_OCI_MANIFEST_C, .source = source, .names = names };
    rc = image_register (&src, &lim, id, err);
    if (rc == 0 && o->key_file)
      {
        char line[80];
        int n = snprintf (line, sizeof line, "%s\n", mdigest);
        rc = write_file_atomic (o->key_file, line, (size_t) n, 0644, err);
      }
  }
out:
  free (text);
  json_decref (m);
  json_decref (config);
  json_decref (layers);
  return rc;
}

int
cmd_image_commit (int argc, char **argv)
{
  struct commit_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_strv char **names = NULL;
  cleanup_close int lock = -1;
  char id[72];
  int status,
      first
      = cli_parse_command (commit_table, &o, argc, argv,
                           "cella-image commit --upper DIR (--parent KEY | --base-dir DIR) [OPTIONS] [NAME[:TAG]]",
                           "The image tool's half of `cella commit` (run that instead).", 0, NULL, &status);
  if (first <= 0)
    {
      commit_opts_free (&o);
      return status;
    }
  if (o.upper == NULL && o.config == NULL)
    cella_error (&err, 0, "commit: --upper is required");
  else if (argc - first > 1)
    cella_error (&err, 0, "commit: too many arguments (usage: cella commit [OPTIONS] CONTAINER [IMAGE[:TAG]])");
  else if (name_stored (argc - first == 1 ? argv[first] : NULL, &names, &err) == 0 && store_init (&err) == 0
           && (lock = store_lock (false, &err)) >= 0)
    {
      ingest_sweep ();
      if (commit_image (&o, names, id, &err) == 0)
        {
          bool quiet = o.key_file != NULL;
          commit_opts_free (&o);
          if (!quiet)
            puts (id);
          return 0;
        }
    }
  commit_opts_free (&o);
  return cella_error_print (&err);
}
