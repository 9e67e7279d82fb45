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

#include "util/json.h"
#include "util/paths.h"
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

/* The first 64 characters are lowercase hex (a record file's name). */
static bool
hex64_prefix (const char *s)
{
  for (size_t i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
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

char *
store_diff_id_path (const char *digest)
{
  return xasprintf ("%s/diffids/%s", paths_data_root (), digest_hex (digest));
}

static char *
record_path (const char *id)
{
  return xasprintf ("%s/images/records/%s.json", paths_data_root (), digest_hex (id));
}

int
store_init (cella_error_t *err)
{
  static const char *const dirs[] = { "blobs/sha256", "layers", "diffids", "images/records" };
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
  free (r->key);
  free (r->id);
  free (r->manifest_digest);
  free (r->manifest_media_type);
  free (r->repo_digest);
  for (size_t i = 0; i < r->nlayers; i++)
    {
      free (r->layers[i].digest);
      free (r->layers[i].media_type);
      free (r->layers[i].diff_id);
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
  strv_free (c->health_test);
  memset (c, 0, sizeof *c);
}

/* ---- the name index --------------------------------------------------------------------------- */

static char *
index_path (void)
{
  return xasprintf ("%s/images/index.json", paths_data_root ());
}

/* The index: {"names": {...}, "digests": {...}}, both objects present (a new reference); empty
 * ones when there is no index yet. */
static json_t *
index_read (cella_error_t *err)
{
  cleanup_free char *p = index_path ();
  json_error_t je;
  json_t *root = NULL;
  if (access (p, F_OK) == 0 || errno != ENOENT)
    {
      root = json_load_file (p, 0, &je);
      if (root == NULL)
        {
          cella_error (err, 0, "image index `%s`: %s (line %d)", p, je.text, je.line);
          return NULL;
        }
    }
  if (!json_is_object (root))
    {
      json_decref (root);
      root = json_object ();
    }
  if (!json_is_object (json_object_get (root, "names")))
    json_object_set_new (root, "names", json_object ());
  if (!json_is_object (json_object_get (root, "digests")))
    json_object_set_new (root, "digests", json_object ());
  return root;
}

static json_t *
index_names (json_t *root)
{
  return json_object_get (root, "names");
}

static json_t *
index_digests (json_t *root)
{
  return json_object_get (root, "digests");
}

static int
index_write (json_t *root, cella_error_t *err)
{
  cleanup_free char *p = index_path ();
  char *s = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
  int r = write_file_atomic (p, s, strlen (s), 0600, err);
  free (s);
  return r;
}

/* Change the index under its lock: fn edits it; returns <0 error, 0 write, 1 no change. */
static int
index_update (int (*fn) (json_t *root, void *ud, cella_error_t *err), void *ud, cella_error_t *err)
{
  cleanup_close int lock = lock_file ("index.lock", LOCK_EX, err);
  json_t *root;
  int r;
  if (lock < 0)
    return -1;
  root = index_read (err);
  if (root == NULL)
    return -1;
  r = fn (root, ud, err);
  if (r == 0)
    r = index_write (root, err);
  else if (r > 0)
    r = 0;
  json_decref (root);
  return r;
}

struct refs_set {
  char *const *names, *const *digests;
  const char *key;
  bool removed;
};

static int
do_refs_set (json_t *root, void *ud, cella_error_t *err)
{
  struct refs_set *q = ud;
  (void) err;
  for (size_t i = 0; q->names && q->names[i]; i++)
    json_object_set_new (index_names (root), q->names[i], json_string (q->key));
  for (size_t i = 0; q->digests && q->digests[i]; i++)
    json_object_set_new (index_digests (root), q->digests[i], json_string (q->key));
  return 0;
}

int
image_refs_set (char *const *names, char *const *digest_refs, const char *key, cella_error_t *err)
{
  struct refs_set q = { .names = names, .digests = digest_refs, .key = key };
  return index_update (do_refs_set, &q, err);
}

int
image_name_set (const char *name, const char *key, cella_error_t *err)
{
  char *const names[] = { (char *) name, NULL };
  return image_refs_set (names, NULL, key, err);
}

static int
do_name_remove (json_t *root, void *ud, cella_error_t *err)
{
  struct refs_set *q = ud;
  (void) err;
  if (json_object_get (index_names (root), q->names[0]) == NULL)
    return 1;
  json_object_del (index_names (root), q->names[0]);
  q->removed = true;
  return 0;
}

int
image_name_remove (const char *name, cella_error_t *err)
{
  char *const names[] = { (char *) name, NULL };
  struct refs_set q = { .names = names };
  if (index_update (do_name_remove, &q, err) < 0)
    return -1;
  return q.removed ? 0 : 1;
}

/* Digest references to an image that is gone (keep: the keys that stay; NULL: drop those to ud's key). */
struct refs_drop {
  const char *key;
  char *const *keep;
};

static bool strv_has (char *const *v, const char *s);

static int
do_digests_drop (json_t *root, void *ud, cella_error_t *err)
{
  struct refs_drop *q = ud;
  json_t *digests = index_digests (root), *v;
  const char *k;
  void *tmp;
  bool changed = false;
  (void) err;
  json_object_foreach_safe (digests, tmp, k, v)
    {
      const char *to = json_string_value (v);
      if (to == NULL || (q->key && strcmp (to, q->key) == 0) || (q->keep && !strv_has (q->keep, to)))
        {
          json_object_del (digests, k);
          changed = true;
        }
    }
  return changed ? 0 : 1;
}

/* ---- records ------------------------------------------------------------------------------------ */

static void
fill_names (struct image_record *r, json_t *root)
{
  const char *k;
  json_t *v;
  strv_free (r->names);
  r->names = xzalloc (sizeof *r->names);
  json_object_foreach (index_names (root), k, v)
    if (json_is_string (v) && strcmp (json_string_value (v), r->key) == 0)
      strv_push (&r->names, k);
}

static bool
digest_ok (const char *d)
{
  return d && has_prefix (d, "sha256:") && hex64 (d + 7);
}

int
image_record_parse (json_t *o, const char *path, struct image_record **out, cella_error_t *err)
{
  struct image_record *r = xzalloc (sizeof *r);
  json_t *layers = json_object_get (o, "layers"), *l;
  size_t i;
  r->id = json_member_str (o, "id");
  r->manifest_digest = json_member_str (o, "manifest");
  r->manifest_media_type = json_member_str (o, "manifest_media_type");
  r->repo_digest = json_member_str (o, "repo_digest");
  r->source = json_member_str (o, "source");
  r->created = json_integer_value (json_object_get (o, "created"));
  if (!digest_ok (r->id) || !json_is_array (layers) || (r->manifest_digest && !digest_ok (r->manifest_digest)))
    {
      image_record_free (r);
      return cella_error (err, 0, "image record `%s`: no valid id, manifest or layers", path);
    }
  r->key = xstrdup (r->manifest_digest ? r->manifest_digest : r->id);
  r->layers = xzalloc (sizeof *r->layers * (json_array_size (layers) + 1));
  json_array_foreach (layers, i, l)
    {
      struct image_layer *il = &r->layers[r->nlayers];
      il->digest = json_member_str (l, "digest");
      il->media_type = json_member_str (l, "mediaType");
      il->diff_id = json_member_str (l, "diff_id");
      il->size = json_integer_value (json_object_get (l, "size"));
      r->nlayers++;
      if (!digest_ok (il->digest) || (il->diff_id && !digest_ok (il->diff_id)))
        {
          image_record_free (r);
          return cella_error (err, 0, "image record `%s`: layer %zu has no valid digest", path, i);
        }
      r->size += il->size;
    }
  *out = r;
  return 0;
}

static int
record_read_nonames (const char *key, struct image_record **out, cella_error_t *err)
{
  cleanup_free char *p = record_path (key);
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
  if (r < 0)
    return r;
  /* its file is named by its manifest digest (by its id in stores from before) */
  if (strcmp (key, (*out)->key) != 0 && strcmp (key, (*out)->id) != 0)
    {
      image_record_free (*out);
      *out = NULL;
      return cella_error (err, 0, "image record `%s`: it is not the record of %s", p, key);
    }
  free ((*out)->key);
  (*out)->key = xstrdup (key);
  return 0;
}

int
image_record_read (const char *key, struct image_record **out, cella_error_t *err)
{
  json_t *root;
  int r = record_read_nonames (key, out, err);
  if (r != 0)
    return r;
  root = index_read (err);
  if (root == NULL)
    {
      image_record_free (*out);
      *out = NULL;
      return -1;
    }
  fill_names (*out, root);
  json_decref (root);
  return 0;
}

static bool
str_eq (const char *a, const char *b)
{
  return a == b || (a && b && strcmp (a, b) == 0);
}

/* The same image: what the manifest decides (config, layers, their diff_ids). */
static bool
record_same (const struct image_record *a, const struct image_record *b)
{
  if (!str_eq (a->id, b->id) || !str_eq (a->manifest_digest, b->manifest_digest) || a->nlayers != b->nlayers)
    return false;
  for (size_t i = 0; i < a->nlayers; i++)
    if (!str_eq (a->layers[i].digest, b->layers[i].digest) || !str_eq (a->layers[i].diff_id, b->layers[i].diff_id))
      return false;
  return true;
}

static char *
record_json (const struct image_record *r)
{
  json_t *layers = json_array (), *o;
  char *s;
  for (size_t i = 0; i < r->nlayers; i++)
    json_array_append_new (layers, json_pack ("{s:s, s:s?, s:I, s:s?}", "digest", r->layers[i].digest, "mediaType",
                                              r->layers[i].media_type, "size", (json_int_t) r->layers[i].size,
                                              "diff_id", r->layers[i].diff_id));
  o = json_pack ("{s:s, s:s?, s:s?, s:s?, s:o, s:I, s:s?}", "id", r->id, "manifest", r->manifest_digest,
                 "manifest_media_type", r->manifest_media_type, "repo_digest", r->repo_digest, "layers", layers,
                 "created", (json_int_t) (r->created ? r->created : time (NULL)), "source", r->source);
  if (o == NULL)
    return NULL;
  s = json_dumps (o, JSON_INDENT (2));
  json_decref (o);
  return s;
}

/* An existing record of this key: fine when it is the same image, which is then left as it is. */
static int
record_check_existing (const struct image_record *r, const char *path, cella_error_t *err)
{
  struct image_record *old = NULL;
  int rc = record_read_nonames (r->key, &old, err);
  bool same;
  if (rc < 0)
    return cella_error_wrap (err, "image %s is in the store already, but its record cannot be read", r->key);
  if (rc > 0)
    return cella_error (err, EEXIST, "image record `%s`: it was there a moment ago", path);
  same = record_same (old, r);
  image_record_free (old);
  if (!same)
    return cella_error (err, 0,
                        "image %s is in the store already with other content (record `%s`): it was not replaced; "
                        "the store is damaged: remove that image, then pull or import it again",
                        r->key, path);
  return 0;
}

int
image_record_write (const struct image_record *r, cella_error_t *err)
{
  cleanup_free char *p = NULL, *tmp = NULL, *s = NULL;
  cleanup_close int fd = -1;
  int e;
  if (!digest_ok (r->key) || (strcmp (r->key, r->id) != 0 && !str_eq (r->key, r->manifest_digest)))
    return cella_error (err, 0, "image record for `%s`: its key must be its manifest digest", r->id);
  if ((s = record_json (r)) == NULL)
    return cella_error (err, 0, "image record for `%s`: cannot encode", r->id);
  if (store_init (err) < 0)
    return -1;
  p = record_path (r->key);
  tmp = xasprintf ("%s.tmp.%d", p, (int) getpid ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "create `%s`", tmp);
  if (write_all (fd, s, strlen (s)) < 0 || fsync (fd) < 0)
    {
      e = errno;
      unlink (tmp);
      return cella_error (err, e, "write `%s`", tmp);
    }
  /* link(2), unlike rename(2), never replaces: a record, once there, stays what it is */
  e = link (tmp, p) == 0 ? 0 : errno;
  unlink (tmp);
  if (e == EEXIST)
    return record_check_existing (r, p, err);
  if (e != 0)
    return cella_error (err, e, "store image record `%s`", p);
  fsync_parent (p);
  return 0;
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
  return strcmp (x->key, y->key);
}

int
image_list (struct image_record ***out, size_t *n, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/images/records", paths_data_root ());
  struct image_record **v = NULL;
  size_t cnt = 0;
  json_t *root;
  DIR *d = opendir (dir);
  struct dirent *e;
  *out = NULL;
  *n = 0;
  if (d == NULL)
    return errno == ENOENT ? 0 : cella_error (err, errno, "read `%s`", dir);
  root = index_read (err);
  if (root == NULL)
    {
      closedir (d);
      return -1;
    }
  while ((e = readdir (d)) != NULL)
    {
      size_t len = strlen (e->d_name);
      struct image_record *r = NULL;
      cleanup_free char *key = NULL;
      cella_error_t e2 = NULL;
      if (len != 69 || strcmp (e->d_name + 64, ".json") != 0)
        continue;
      key = xasprintf ("sha256:%.64s", e->d_name);
      if (!hex64_prefix (e->d_name) || record_read_nonames (key, &r, &e2) != 0)
        {
          cella_error_free (&e2); /* a broken record is skipped; prune removes it */
          continue;
        }
      fill_names (r, root);
      v = xrealloc (v, sizeof *v * (cnt + 1));
      v[cnt++] = r;
    }
  closedir (d);
  json_decref (root);
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
  size_t n, hit = SIZE_MAX;
  bool ambiguous = false;
  if (image_list (&v, &n, err) < 0)
    return -1;
  /* newest first: records of one config id (the same image in two manifests, gzip and zstd, say)
   * are one image, and the newest stands for it */
  for (size_t i = 0; i < n; i++)
    if (has_prefix (v[i]->id + 7, pfx) || (v[i]->manifest_digest && has_prefix (v[i]->manifest_digest + 7, pfx)))
      {
        if (hit == SIZE_MAX)
          hit = i;
        else if (strcmp (v[i]->id, v[hit]->id) != 0)
          ambiguous = true;
      }
  if (ambiguous)
    {
      image_list_free (v, n);
      return cella_error (err, 0, "image id prefix `%s` is ambiguous: give more digits", ref);
    }
  if (hit == SIZE_MAX)
    {
      image_list_free (v, n);
      return 1;
    }
  *out = v[hit];
  v[hit] = NULL;
  image_list_free (v, n);
  return 0;
}

/* Is one of r's names in repository repo ("REGISTRY/REPO")? */
static bool
named_in_repo (const struct image_record *r, const char *repo)
{
  for (size_t i = 0; r->names && r->names[i]; i++)
    {
      cleanup_free char *nr = image_name_repo (r->names[i]);
      if (strcmp (nr, repo) == 0)
        return true;
    }
  return false;
}

/* NAME@DIGEST in a store from before digest references: a record with that manifest or repo
 * digest and a name in the repository. */
static int
lookup_digest_by_scan (const char *repo, const char *digest, struct image_record **out, cella_error_t *err)
{
  struct image_record **all;
  size_t n;
  int r = 1;
  if (image_list (&all, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n && r == 1; i++)
    if ((str_eq (all[i]->manifest_digest, digest) || str_eq (all[i]->repo_digest, digest))
        && named_in_repo (all[i], repo))
      {
        *out = steal_pointer (&all[i]);
        r = 0;
      }
  image_list_free (all, n);
  return r;
}

static int
lookup_key (const char *ref, const char *key, struct image_record **out, cella_error_t *err)
{
  int r = image_record_read (key, out, err);
  if (r == 1)
    return cella_error (err, 0, "image `%s` names %s, whose record is missing: run `cella image prune`", ref, key);
  return r;
}

/* NAME[:TAG]@DIGEST: the digest reference REGISTRY/REPO@DIGEST (the tag plays no part, as in docker). */
static int
lookup_digest_ref (const struct image_ref *ir, json_t *root, struct image_record **out, cella_error_t *err)
{
  cleanup_free char *repo = image_ref_repo (ir);
  cleanup_free char *dref = xasprintf ("%s@%s", repo, ir->digest);
  json_t *v = json_object_get (index_digests (root), dref);
  if (json_is_string (v))
    return lookup_key (dref, json_string_value (v), out, err);
  return lookup_digest_by_scan (repo, ir->digest, out, err);
}

int
image_lookup (const char *ref, struct image_record **out, cella_error_t *err)
{
  struct image_ref ir = { 0 };
  json_t *root, *v = NULL;
  int r = 1;
  *out = NULL;
  root = index_read (err);
  if (root == NULL)
    return -1;
  /* a digest in the reference decides; else an exact stored name, then the parsed form, then ids */
  if (image_ref_parse (ref, &ir, NULL) == 0 && ir.digest)
    {
      r = lookup_digest_ref (&ir, root, out, err);
      image_ref_clear (&ir);
      json_decref (root);
      return r;
    }
  v = json_object_get (index_names (root), ref);
  if (v == NULL && ir.tag)
    {
      cleanup_free char *name = image_ref_name (&ir);
      v = json_object_get (index_names (root), name);
    }
  image_ref_clear (&ir);
  if (json_is_string (v))
    r = lookup_key (ref, json_string_value (v), out, err);
  else if (looks_like_id (ref))
    r = lookup_id_prefix (ref, out, err);
  json_decref (root);
  return r;
}

/* ---- config ------------------------------------------------------------------------------------ */

#define CONFIG_MAX (16 << 20) /* as the image tool accepts them */

int
image_config_load (const struct image_record *r, struct image_config *c, cella_error_t *err)
{
  cleanup_free char *p = store_blob_path (r->id), *buf = NULL;
  cleanup_close int fd = open (p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  json_error_t je;
  json_t *o;
  size_t len;
  memset (c, 0, sizeof *c);
  if (fd < 0)
    return cella_error (err, errno, "image %.19s: config blob `%s`", r->id, p);
  if (fstat (fd, &st) < 0 || st.st_size > CONFIG_MAX)
    return cella_error (err, EFBIG, "image %.19s: config blob `%s`", r->id, p);
  if (read_all_fd (fd, &buf, &len, err) < 0)
    return cella_error_wrap (err, "image %.19s: config blob `%s`", r->id, p);
  o = json_loadb (buf, len, 0, &je);
  if (!json_is_object (o))
    {
      json_decref (o);
      return cella_error (err, 0, "image %.19s: config blob `%s`: %s", r->id, p, o ? "not a JSON object" : je.text);
    }
  image_config_from_json (o, c);
  json_decref (o);
  return 0;
}

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
      c->entrypoint = json_strv_read (json_object_get (cfg, "Entrypoint"));
      c->cmd = json_strv_read (json_object_get (cfg, "Cmd"));
      c->env = json_strv_read (json_object_get (cfg, "Env"));
      c->workdir = json_member_str (cfg, "WorkingDir");
      c->user = json_member_str (cfg, "User");
      c->exposed_ports = jkeys (json_object_get (cfg, "ExposedPorts"), false);
      c->volumes = jkeys (json_object_get (cfg, "Volumes"), false);
      c->labels = jkeys (json_object_get (cfg, "Labels"), true);
      {
        json_t *hc = json_object_get (cfg, "Healthcheck");
        c->health_test = json_strv_read (json_object_get (hc, "Test"));
        c->health_interval = json_member_int (hc, "Interval");
        c->health_timeout = json_member_int (hc, "Timeout");
        c->health_start_period = json_member_int (hc, "StartPeriod");
        c->health_retries = (int) json_member_int (hc, "Retries");
      }
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
  c->os = json_member_str (o, "os");
  c->arch = json_member_str (o, "architecture");
  c->created = json_member_str (o, "created");
  c->author = json_member_str (o, "author");
  rootfs = json_object_get (o, "rootfs");
  if (json_is_object (rootfs))
    c->diff_ids = json_strv_read (json_object_get (rootfs, "diff_ids"));
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
          return cella_error (err, errno ? errno : ENOTDIR,
                              "image %.19s: layer %s is not unpacked at `%s`: pull the image again", r->id,
                              r->layers[i].digest, p);
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

/* The keys of the images `cella build`'s layer cache names ($data/build-cache/<key>: one line, an
 * image key): prune keeps them, so that the cache outlives `image prune`; `system prune` removes the
 * cache first. */
static char **
build_cache_keys (void)
{
  cleanup_free char *dir = xasprintf ("%s/build-cache", paths_data_root ());
  char **keys = xzalloc (sizeof *keys);
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return keys;
  while ((e = readdir (d)) != NULL)
    {
      char buf[128];
      ssize_t len;
      int fd;
      if (e->d_name[0] == '.')
        continue;
      fd = openat (dirfd (d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        continue;
      len = read (fd, buf, sizeof buf - 1);
      close (fd);
      if (len <= 0)
        continue;
      buf[len] = '\0';
      buf[strcspn (buf, "\n")] = '\0';
      if (has_prefix (buf, "sha256:"))
        strv_push (&keys, buf);
    }
  closedir (d);
  return keys;
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

/* The record goes, and the digest references to it with it. */
static void
record_delete (const struct image_record *r)
{
  cleanup_free char *p = record_path (r->key);
  struct refs_drop q = { .key = r->key };
  if (unlink (p) == 0)
    fsync_parent (p);
  index_update (do_digests_drop, &q, NULL);
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
          if (strv_len (r->names) == 1 && strv_has (in_use, r->key) && !force)
            {
              cella_error (err, 0,
                           "image `%s` is used by a container: remove the container first, or use -f to untag it", ref);
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
          if (strv_len (r->names) == 1 && !strv_has (in_use, r->key))
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
  if (strv_has (in_use, r->key) && !force)
    {
      cella_error (err, 0, "image %.19s is used by a container: remove the container first, or use -f to untag it",
                   r->id);
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
  if (!strv_has (in_use, r->key))
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

/* Remove the entries of dir that are not in keep (names are hex digests) and any ".tmp-*"; each
 * removal is printed as "Deleted WHAT: sha256:…" unless what is NULL. What cannot be removed is
 * an error (the first one is reported), after the rest is swept. */
static int
sweep_dir (const char *dir, char *const *keep, const char *what, int64_t *freed, cella_error_t *err)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    return 0;
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
        if (remove_tree_mapped (p) < 0)
          {
            if (r == 0)
              r = cella_error (err, errno, "prune: remove %s `%s`", what ? what : "entry", p);
            continue;
          }
        if (tmp || what == NULL)
          continue;
      }
      printf ("Deleted %s: sha256:%s\n", what, e->d_name);
    }
  closedir (d);
  return r;
}

int
image_prune (bool all, int64_t *freed, cella_error_t *err)
{
  cleanup_close int lock = store_lock (true, err);
  struct image_record **v = NULL;
  size_t n = 0;
  cleanup_strv char **in_use = NULL, **keep_blobs = NULL, **keep_layers = NULL, **keep_keys = NULL,
                    **build_cached = NULL;
  cleanup_free char *blobs = NULL, *layers = NULL, *diffids = NULL;
  struct refs_drop gone = { 0 };
  int swept;
  *freed = 0;
  if (lock < 0)
    return -1;
  in_use = image_ids_in_use ();
  build_cached = build_cache_keys ();
  if (image_list (&v, &n, err) < 0)
    return -1;
  keep_blobs = xzalloc (sizeof (char *));
  keep_layers = xzalloc (sizeof (char *));
  keep_keys = xzalloc (sizeof (char *));
  for (size_t i = 0; i < n; i++)
    {
      struct image_record *r = v[i];
      bool used = strv_has (in_use, r->key), cached = strv_has (build_cached, r->key);
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
          if (cached)
            goto keep; /* the build cache's: kept until `system prune` drops the cache */
          record_delete (r);
          printf ("Deleted: %s\n", r->id);
          continue;
        }
    keep:
      strv_push (&keep_keys, r->key);
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
  diffids = xasprintf ("%s/diffids", paths_data_root ());
  swept = sweep_dir (blobs, keep_blobs, "blob", freed, err);
  if (sweep_dir (layers, keep_layers, "layer", freed, swept < 0 ? NULL : err) < 0)
    swept = -1;
  if (sweep_dir (diffids, keep_layers, NULL, freed, swept < 0 ? NULL : err) < 0)
    swept = -1;
  gone.keep = keep_keys;
  if (index_update (do_digests_drop, &gone, swept < 0 ? NULL : err) < 0)
    return -1;
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
  return swept;
}
