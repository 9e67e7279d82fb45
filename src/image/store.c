/* The image store: records, names, configs, removal and pruning (store.h has the layout). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/paths.h"
#include "ns/ns.h"
#include "ref.h"
#include "store.h"

static bool
hex64 (const char *s)
{
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return false;
  return n == 64;
}

static const char *
digest_hex (const char *digest)
{
  return has_prefix (digest, "sha256:") ? digest + 7 : digest;
}

char *
store_blob_path (const char *digest)
{
  return xasprintf ("%s/blobs/sha256/%s", paths_data_root (), digest_hex (digest));
}

char *
store_layer_path (const char *digest)
{
  return xasprintf ("%s/layers/%s", paths_data_root (), digest_hex (digest));
}

static char *
record_path (const char *id)
{
  return xasprintf ("%s/images/records/%s.json", paths_data_root (), digest_hex (id));
}

int
store_init (cella_error_t *err)
{
  static const char *const dirs[] = { "blobs/sha256", "layers", "images/records" };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      cleanup_free char *p = xasprintf ("%s/%s", paths_data_root (), dirs[i]);
      if (mkdir_p (p, 0700, err) < 0)
        return -1;
    }
  return 0;
}

static int
lock_file (const char *name, int op, cella_error_t *err)
{
  cleanup_free char *p = xasprintf ("%s/images/%s", paths_data_root (), name);
  int fd;
  if (store_init (err) < 0)
    return -1;
  fd = open (p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "open the store lock `%s`", p);
  if (flock (fd, op) < 0)
    {
      close (fd);
      return cella_error (err, errno, "lock `%s`", p);
    }
  return fd;
}

int
store_lock (bool exclusive, cella_error_t *err)
{
  return lock_file ("gc.lock", exclusive ? LOCK_EX : LOCK_SH, err);
}

/* ---- JSON helpers ---------------------------------------------------------------------------- */

static char *
jstr (json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);
  return json_is_string (v) ? xstrdup (json_string_value (v)) : NULL;
}

static char **
jstrv (json_t *a)
{
  char **v = NULL;
  size_t i;
  json_t *e;
  if (!json_is_array (a))
    return NULL;
  v = xzalloc (sizeof *v);
  json_array_foreach (a, i, e)
    if (json_is_string (e))
      strv_push (&v, json_string_value (e));
  return v;
}

/* {"k": {}, ...} → ["k", ...] ; {"k": "v"} → ["k=v"] when with_values */
static char **
jkeys (json_t *o, bool with_values)
{
  char **v = NULL;
  const char *k;
  json_t *val;
  if (!json_is_object (o))
    return NULL;
  json_object_foreach (o, k, val)
    {
      if (with_values)
        {
          cleanup_free char *kv = xasprintf ("%s=%s", k, json_is_string (val) ? json_string_value (val) : "");
          strv_push (&v, kv);
        }
      else
        strv_push (&v, k);
    }
  return v;
}

void
image_record_free (struct image_record *r)
{
  if (r == NULL)
    return;
  free (r->id);
  free (r->manifest_digest);
  free (r->manifest_media_type);
  free (r->repo_digest);
  for (size_t i = 0; i < r->nlayers; i++)
    {
      free (r->layers[i].digest);
      free (r->layers[i].media_type);
    }
  free (r->layers);
  free (r->source);
  strv_free (r->names);
  free (r);
}

void
image_config_clear (struct image_config *c)
{
  strv_free (c->entrypoint);
  strv_free (c->cmd);
  strv_free (c->env);
  free (c->workdir);
  free (c->user);
  strv_free (c->exposed_ports);
  strv_free (c->volumes);
  strv_free (c->labels);
  free (c->os);
  free (c->arch);
  free (c->created);
  free (c->author);
  strv_free (c->diff_ids);
  memset (c, 0, sizeof *c);
}

/* ---- the name index --------------------------------------------------------------------------- */

static char *
index_path (void)
{
  return xasprintf ("%s/images/index.json", paths_data_root ());
}

/* The index's "names" object (a new reference); an empty one when there is no index yet. */
static json_t *
index_read (cella_error_t *err)
{
  cleanup_free char *p = index_path ();
  json_error_t je;
  json_t *root, *names;
  if (access (p, F_OK) < 0 && errno == ENOENT)
    return json_object ();
  root = json_load_file (p, 0, &je);
  if (root == NULL)
    {
      cella_error (err, 0, "image index `%s`: %s (line %d)", p, je.text, je.line);
      return NULL;
    }
  names = json_object_get (root, "names");
  if (!json_is_object (names))
    names = json_object ();
  else
    json_incref (names);
  json_decref (root);
  return names;
}

static int
index_write (json_t *names, cella_error_t *err)
{
  cleanup_free char *p = index_path ();
  json_t *root = json_pack ("{s:O}", "names", names);
  char *s = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
  int r;
  json_decref (root);
  r = write_file_atomic (p, s, strlen (s), 0600, err);
  free (s);
  return r;
}

/* Change the index under its lock: fn edits `names`; returns <0 error, 0 write, 1 no change. */
static int
index_update (int (*fn) (json_t *names, void *ud, cella_error_t *err), void *ud, cella_error_t *err)
{
  cleanup_close int lock = lock_file ("index.lock", LOCK_EX, err);
  json_t *names;
  int r;
  if (lock < 0)
    return -1;
  names = index_read (err);
  if (names == NULL)
    return -1;
  r = fn (names, ud, err);
  if (r == 0)
    r = index_write (names, err);
  else if (r > 0)
    r = 0;
  json_decref (names);
  return r;
}

struct name_set {
  const char *name, *id;
  bool removed;
};

static int
do_name_set (json_t *names, void *ud, cella_error_t *err)
{
  struct name_set *q = ud;
  (void) err;
  json_object_set_new (names, q->name, json_string (q->id));
  return 0;
}

int
image_name_set (const char *name, const char *id, cella_error_t *err)
{
  struct name_set q = { .name = name, .id = id };
  return index_update (do_name_set, &q, err);
}

static int
do_name_remove (json_t *names, void *ud, cella_error_t *err)
{
  struct name_set *q = ud;
  (void) err;
  if (json_object_get (names, q->name) == NULL)
    return 1;
  json_object_del (names, q->name);
  q->removed = true;
  return 0;
}

int
image_name_remove (const char *name, cella_error_t *err)
{
  struct name_set q = { .name = name };
  if (index_update (do_name_remove, &q, err) < 0)
    return -1;
  return q.removed ? 0 : 1;
}

/* ---- records ------------------------------------------------------------------------------------ */

static void
fill_names (struct image_record *r, json_t *names)
{
  const char *k;
  json_t *v;
  strv_free (r->names);
  r->names = xzalloc (sizeof *r->names);
  json_object_foreach (names, k, v)
    if (json_is_string (v) && strcmp (json_string_value (v), r->id) == 0)
      strv_push (&r->names, k);
}

int
image_record_parse (json_t *o, const char *path, struct image_record **out, cella_error_t *err)
{
  struct image_record *r = xzalloc (sizeof *r);
  json_t *layers = json_object_get (o, "layers"), *l;
  size_t i;
  r->id = jstr (o, "id");
  r->manifest_digest = jstr (o, "manifest");
  r->manifest_media_type = jstr (o, "manifest_media_type");
  r->repo_digest = jstr (o, "repo_digest");
  r->source = jstr (o, "source");
  r->created = json_integer_value (json_object_get (o, "created"));
  if (r->id == NULL || !has_prefix (r->id, "sha256:") || !hex64 (r->id + 7) || !json_is_array (layers))
    {
      image_record_free (r);
      return cella_error (err, 0, "image record `%s`: no valid id or layers", path);
    }
  r->layers = xzalloc (sizeof *r->layers * (json_array_size (layers) + 1));
  json_array_foreach (layers, i, l)
    {
      struct image_layer *il = &r->layers[r->nlayers];
      il->digest = jstr (l, "digest");
      il->media_type = jstr (l, "mediaType");
      il->size = json_integer_value (json_object_get (l, "size"));
      if (il->digest == NULL || !has_prefix (il->digest, "sha256:") || !hex64 (il->digest + 7))
        {
          free (il->digest);
          free (il->media_type);
          image_record_free (r);
          return cella_error (err, 0, "image record `%s`: layer %zu has no valid digest", path, i);
        }
      r->size += il->size;
      r->nlayers++;
    }
  *out = r;
  return 0;
}

static int
record_read_nonames (const char *id, struct image_record **out, cella_error_t *err)
{
  cleanup_free char *p = record_path (id);
  json_error_t je;
  json_t *o = json_load_file (p, 0, &je);
  int r;
  if (o == NULL)
    {
      if (access (p, F_OK) < 0 && errno == ENOENT)
        return 1;
      return cella_error (err, 0, "image record `%s`: %s", p, je.text);
    }
  r = image_record_parse (o, p, out, err);
  json_decref (o);
  return r;
}

int
image_record_read (const char *id, struct image_record **out, cella_error_t *err)
{
  json_t *names;
  int r = record_read_nonames (id, out, err);
  if (r != 0)
    return r;
  names = index_read (err);
  if (names == NULL)
    {
      image_record_free (*out);
      *out = NULL;
      return -1;
    }
  fill_names (*out, names);
  json_decref (names);
  return 0;
}

int
image_record_write (const struct image_record *r, cella_error_t *err)
{
  cleanup_free char *p = record_path (r->id);
  json_t *layers = json_array (), *o;
  char *s;
  int rc;
  for (size_t i = 0; i < r->nlayers; i++)
    json_array_append_new (layers, json_pack ("{s:s, s:s?, s:I}", "digest", r->layers[i].digest, "mediaType",
                                              r->layers[i].media_type, "size", (json_int_t) r->layers[i].size));
  o = json_pack ("{s:s, s:s?, s:s?, s:s?, s:o, s:I, s:s?}", "id", r->id, "manifest", r->manifest_digest,
                 "manifest_media_type", r->manifest_media_type, "repo_digest", r->repo_digest, "layers", layers,
                 "created", (json_int_t) (r->created ? r->created : time (NULL)), "source", r->source);
  if (o == NULL)
    return cella_error (err, 0, "image record for `%s`: cannot encode", r->id);
  if (store_init (err) < 0)
    {
      json_decref (o);
      return -1;
    }
  s = json_dumps (o, JSON_INDENT (2));
  json_decref (o);
  rc = write_file_atomic (p, s, strlen (s), 0600, err);
  free (s);
  return rc;
}

void
image_list_free (struct image_record **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    image_record_free (v[i]);
  free (v);
}

static int
cmp_created (const void *a, const void *b)
{
  const struct image_record *x = *(struct image_record *const *) a, *y = *(struct image_record *const *) b;
  if (x->created != y->created)
    return x->created < y->created ? 1 : -1;
  return strcmp (x->id, y->id);
}

int
image_list (struct image_record ***out, size_t *n, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/images/records", paths_data_root ());
  struct image_record **v = NULL;
  size_t cnt = 0;
  json_t *names;
  DIR *d = opendir (dir);
  struct dirent *e;
  *out = NULL;
  *n = 0;
  if (d == NULL)
    return errno == ENOENT ? 0 : cella_error (err, errno, "read `%s`", dir);
  names = index_read (err);
  if (names == NULL)
    {
      closedir (d);
      return -1;
    }
  while ((e = readdir (d)) != NULL)
    {
      size_t len = strlen (e->d_name);
      struct image_record *r = NULL;
      cleanup_free char *id = NULL;
      cella_error_t e2 = NULL;
      if (len != 69 || strcmp (e->d_name + 64, ".json") != 0)
        continue;
      id = xasprintf ("sha256:%.64s", e->d_name);
      if (record_read_nonames (id, &r, &e2) != 0)
        {
          cella_error_free (&e2); /* a broken record is skipped; prune removes it */
          continue;
        }
      fill_names (r, names);
      v = xrealloc (v, sizeof *v * (cnt + 1));
      v[cnt++] = r;
    }
  closedir (d);
  json_decref (names);
  if (cnt)
    qsort (v, cnt, sizeof *v, cmp_created);
  *out = v;
  *n = cnt;
  return 0;
}

/* ---- lookup ------------------------------------------------------------------------------------ */

static bool
looks_like_id (const char *s)
{
  size_t n;
  if (has_prefix (s, "sha256:"))
    s += 7;
  n = strlen (s);
  if (n < 4 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

static int
lookup_id_prefix (const char *ref, struct image_record **out, cella_error_t *err)
{
  const char *pfx = has_prefix (ref, "sha256:") ? ref + 7 : ref;
  struct image_record **v;
  size_t n, hit = SIZE_MAX, hits = 0;
  if (image_list (&v, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (has_prefix (v[i]->id + 7, pfx) || (v[i]->manifest_digest && has_prefix (v[i]->manifest_digest + 7, pfx)))
      {
        hit = i;
        hits++;
      }
  if (hits > 1)
    {
      image_list_free (v, n);
      return cella_error (err, 0, "image id prefix `%s` is ambiguous: give more digits", ref);
    }
  if (hits == 0)
    {
      image_list_free (v, n);
      return 1;
    }
  *out = v[hit];
  v[hit] = NULL;
  image_list_free (v, n);
  return 0;
}

int
image_lookup (const char *ref, struct image_record **out, cella_error_t *err)
{
  struct image_ref ir = { 0 };
  cleanup_free char *name = NULL;
  json_t *names, *v;
  int r;
  *out = NULL;
  names = index_read (err);
  if (names == NULL)
    return -1;
  /* an exact stored name first, then the parsed form, then ids */
  v = json_object_get (names, ref);
  if (v == NULL && image_ref_parse (ref, &ir, NULL) == 0)
    {
      if (ir.tag)
        {
          name = image_ref_name (&ir);
          v = json_object_get (names, name);
        }
      if (v == NULL && ir.digest)
        {
          /* NAME@DIGEST: an image of that repository whose manifest (or repo digest) it is */
          struct image_record **all;
          size_t n;
          json_decref (names);
          if (image_list (&all, &n, err) < 0)
            {
              image_ref_clear (&ir);
              return -1;
            }
          r = 1;
          for (size_t i = 0; i < n && r == 1; i++)
            if ((all[i]->manifest_digest && strcmp (all[i]->manifest_digest, ir.digest) == 0)
                || (all[i]->repo_digest && strcmp (all[i]->repo_digest, ir.digest) == 0))
              {
                *out = all[i];
                all[i] = NULL;
                r = 0;
              }
          image_list_free (all, n);
          image_ref_clear (&ir);
          return r;
        }
    }
  image_ref_clear (&ir);
  if (json_is_string (v))
    {
      cleanup_free char *id = xstrdup (json_string_value (v));
      json_decref (names);
      r = image_record_read (id, out, err);
      if (r == 1)
        return cella_error (err, 0, "image `%s` names %s, whose record is missing: run `cella image prune`", ref, id);
      return r;
    }
  json_decref (names);
  if (looks_like_id (ref))
    return lookup_id_prefix (ref, out, err);
  return 1;
}

/* ---- config ------------------------------------------------------------------------------------ */

void
image_config_from_json (json_t *o, struct image_config *c)
{
  json_t *cfg, *rootfs;
  memset (c, 0, sizeof *c);
  cfg = json_object_get (o, "config");
  if (!json_is_object (cfg))
    cfg = json_object_get (o, "container_config");
  if (json_is_object (cfg))
    {
      c->entrypoint = jstrv (json_object_get (cfg, "Entrypoint"));
      c->cmd = jstrv (json_object_get (cfg, "Cmd"));
      c->env = jstrv (json_object_get (cfg, "Env"));
      c->workdir = jstr (cfg, "WorkingDir");
      c->user = jstr (cfg, "User");
      c->exposed_ports = jkeys (json_object_get (cfg, "ExposedPorts"), false);
      c->volumes = jkeys (json_object_get (cfg, "Volumes"), false);
      c->labels = jkeys (json_object_get (cfg, "Labels"), true);
      if (c->workdir && *c->workdir == '\0')
        {
          free (c->workdir);
          c->workdir = NULL;
        }
      if (c->user && *c->user == '\0')
        {
          free (c->user);
          c->user = NULL;
        }
    }
  c->os = jstr (o, "os");
  c->arch = jstr (o, "architecture");
  c->created = jstr (o, "created");
  c->author = jstr (o, "author");
  rootfs = json_object_get (o, "rootfs");
  if (json_is_object (rootfs))
    c->diff_ids = jstrv (json_object_get (rootfs, "diff_ids"));
}

int
image_config_load (const struct image_record *r, struct image_config *c, cella_error_t *err)
{
  cleanup_free char *p = store_blob_path (r->id);
  json_error_t je;
  json_t *o = json_load_file (p, 0, &je);
  memset (c, 0, sizeof *c);
  if (o == NULL)
    return cella_error (err, 0, "image %.19s: config blob `%s`: %s", r->id, p, je.text);
  image_config_from_json (o, c);
  json_decref (o);
  return 0;
}

int
image_layer_dirs (const struct image_record *r, char ***dirs, cella_error_t *err)
{
  char **v = xzalloc (sizeof *v);
  for (size_t i = r->nlayers; i-- > 0;)
    {
      cleanup_free char *p = store_layer_path (r->layers[i].digest);
      struct stat st;
      if (stat (p, &st) < 0 || !S_ISDIR (st.st_mode))
        {
          strv_free (v);
          return cella_error (err, errno ? errno : ENOTDIR, "image %.19s: layer %s is not unpacked at `%s`: pull the image again",
                              r->id, r->layers[i].digest, p);
        }
      strv_push (&v, p);
    }
  *dirs = v;
  return 0;
}

/* ---- what containers use ----------------------------------------------------------------------- */

char **
image_ids_in_use (void)
{
  cleanup_free char *dir = xasprintf ("%s/containers", paths_data_root ());
  char **ids = xzalloc (sizeof *ids);
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return ids;
  while ((e = readdir (d)) != NULL)
    {
      cleanup_free char *p = NULL;
      json_t *o, *v;
      if (e->d_name[0] == '.')
        continue;
      p = xasprintf ("%s/%s/plan.json", dir, e->d_name);
      o = json_load_file (p, 0, NULL);
      if (o == NULL)
        continue;
      v = json_object_get (o, "image_id");
      if (json_is_string (v))
        strv_push (&ids, json_string_value (v));
      json_decref (o);
    }
  closedir (d);
  return ids;
}

static bool
strv_has (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

/* ---- removal ----------------------------------------------------------------------------------- */

static void
record_delete (const struct image_record *r)
{
  cleanup_free char *p = record_path (r->id);
  if (unlink (p) == 0)
    fsync_parent (p);
}

int
image_remove (const char *ref, bool force, cella_error_t *err)
{
  cleanup_close int lock = store_lock (true, err);
  struct image_record *r = NULL;
  cleanup_strv char **in_use = NULL;
  bool by_name;
  int rc;
  if (lock < 0)
    return -1;
  rc = image_lookup (ref, &r, err);
  if (rc < 0)
    return -1;
  if (rc > 0)
    return cella_error (err, 0, "image `%s`: not found (see `cella images`)", ref);
  in_use = image_ids_in_use ();
  /* something that reads as an id is one, unless it is exactly one of the image's names */
  by_name = !looks_like_id (ref) || strv_has (r->names, ref);
  if (by_name)
    {
      cleanup_free char *name = NULL;
      struct image_ref ir = { 0 };
      /* the stored form of the name the user gave */
      for (size_t i = 0; r->names[i] && name == NULL; i++)
        if (strcmp (r->names[i], ref) == 0)
          name = xstrdup (ref);
      if (name == NULL && image_ref_parse (ref, &ir, NULL) == 0 && ir.tag)
        name = image_ref_name (&ir);
      image_ref_clear (&ir);
      if (name && strv_has (r->names, name))
        {
          if (strv_len (r->names) == 1 && strv_has (in_use, r->id) && !force)
            {
              cella_error (err, 0, "image `%s` is used by a container: remove the container first, or use -f to untag it",
                           ref);
              image_record_free (r);
              return -1;
            }
          if (image_name_remove (name, err) < 0)
            {
              image_record_free (r);
              return -1;
            }
          {
            cleanup_free char *s = image_name_short (name);
            printf ("Untagged: %s\n", s);
          }
          if (strv_len (r->names) == 1 && !strv_has (in_use, r->id))
            {
              record_delete (r);
              printf ("Deleted: %s\n", r->id);
            }
          image_record_free (r);
          return 0;
        }
    }
  /* by id */
  if (strv_len (r->names) > 1 && !force)
    {
      cella_error (err, 0, "image %.19s has %zu names (%s, ...): remove them by name, or use -f", r->id,
                   strv_len (r->names), r->names[0]);
      image_record_free (r);
      return -1;
    }
  if (strv_has (in_use, r->id) && !force)
    {
      cella_error (err, 0, "image %.19s is used by a container: remove the container first, or use -f to untag it", r->id);
      image_record_free (r);
      return -1;
    }
  for (size_t i = 0; r->names[i]; i++)
    {
      cleanup_free char *s = image_name_short (r->names[i]);
      if (image_name_remove (r->names[i], err) < 0)
        {
          image_record_free (r);
          return -1;
        }
      printf ("Untagged: %s\n", s);
    }
  if (!strv_has (in_use, r->id))
    {
      record_delete (r);
      printf ("Deleted: %s\n", r->id);
    }
  image_record_free (r);
  return 0;
}

/* ---- prune ---------------------------------------------------------------------------------------- */

static int64_t
tree_bytes_at (int dfd, const char *name)
{
  struct stat st;
  int64_t total = 0;
  int fd;
  DIR *d;
  struct dirent *e;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  if (!S_ISDIR (st.st_mode))
    return S_ISREG (st.st_mode) ? (int64_t) st.st_blocks * 512 : 0;
  fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return 0;
    }
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      total += tree_bytes_at (dirfd (d), e->d_name);
  closedir (d);
  return total;
}

/* Remove the entries of dir that are not in keep (names are hex digests) and any ".tmp-*". */
static void
sweep_dir (const char *dir, char *const *keep, const char *what, int64_t *freed)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      bool tmp = has_prefix (e->d_name, ".tmp-");
      if (e->d_name[0] == '.' && !tmp)
        continue;
      if (!tmp && strv_has (keep, e->d_name))
        continue;
      *freed += tree_bytes_at (dirfd (d), e->d_name);
      {
        cleanup_free char *p = xasprintf ("%s/%s", dir, e->d_name);
        if (remove_tree_mapped (p) < 0 || tmp)
          continue;
      }
      printf ("Deleted %s: sha256:%s\n", what, e->d_name);
    }
  closedir (d);
}

int
image_prune (bool all, int64_t *freed, cella_error_t *err)
{
  cleanup_close int lock = store_lock (true, err);
  struct image_record **v = NULL;
  size_t n = 0;
  cleanup_strv char **in_use = NULL, **keep_blobs = NULL, **keep_layers = NULL;
  cleanup_free char *blobs = NULL, *layers = NULL;
  *freed = 0;
  if (lock < 0)
    return -1;
  in_use = image_ids_in_use ();
  if (image_list (&v, &n, err) < 0)
    return -1;
  keep_blobs = xzalloc (sizeof (char *));
  keep_layers = xzalloc (sizeof (char *));
  for (size_t i = 0; i < n; i++)
    {
      struct image_record *r = v[i];
      bool used = strv_has (in_use, r->id);
      if (!used && (all || strv_len (r->names) == 0))
        {
          for (size_t j = 0; r->names[j]; j++)
            {
              cleanup_free char *s = image_name_short (r->names[j]);
              if (image_name_remove (r->names[j], err) < 0)
                {
                  image_list_free (v, n);
                  return -1;
                }
              printf ("Untagged: %s\n", s);
            }
          record_delete (r);
          printf ("Deleted: %s\n", r->id);
          continue;
        }
      strv_push (&keep_blobs, r->id + 7);
      if (r->manifest_digest)
        strv_push (&keep_blobs, r->manifest_digest + 7);
      if (r->repo_digest)
        strv_push (&keep_blobs, r->repo_digest + 7);
      for (size_t j = 0; j < r->nlayers; j++)
        {
          strv_push (&keep_blobs, r->layers[j].digest + 7);
          strv_push (&keep_layers, r->layers[j].digest + 7);
        }
    }
  image_list_free (v, n);
  blobs = xasprintf ("%s/blobs/sha256", paths_data_root ());
  layers = xasprintf ("%s/layers", paths_data_root ());
  sweep_dir (blobs, keep_blobs, "blob", freed);
  sweep_dir (layers, keep_layers, "layer", freed);
  {
    /* records whose write was interrupted */
    cleanup_free char *rec = xasprintf ("%s/images/records", paths_data_root ());
    DIR *d = opendir (rec);
    struct dirent *e;
    while (d && (e = readdir (d)) != NULL)
      if (has_prefix (e->d_name, ".tmp") || strstr (e->d_name, ".tmp"))
        unlinkat (dirfd (d), e->d_name, 0);
    if (d)
      closedir (d);
  }
  return 0;
}
