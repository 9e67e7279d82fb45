/* cella image import: a rootfs directory or tarball, an OCI image layout (directory or archive),
 * or a docker-archive (`docker save`) into the store. Every blob is hashed (and checked against
 * the digest its source names) before it is stored; every layer is unpacked by unpack.c. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "util/paths.h"
#include "image/ref.h"
#include "ingest.h"
#include "manifest.h"
#include "pack.h"
#include "registry.h"
#include "tool.h"
#include "unpack.h"

#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_MANIFEST_T "application/vnd.oci.image.manifest.v1+json"
#define MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MAX_JSON (16 << 20)

/* Open a file beneath dir, following no symlink. */
static int
open_beneath (int dirfd, const char *path, cella_error_t *err)
{
  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  int fd = (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd < 0)
    return cella_error (err, errno, "open `%s` in the image", path);
  return fd;
}

static json_t *
load_json_beneath (int dirfd, const char *path, cella_error_t *err)
{
  cleanup_close int fd = open_beneath (dirfd, path, err);
  cleanup_free char *buf = NULL;
  size_t len;
  json_error_t je;
  json_t *o;
  struct stat st;
  if (fd < 0)
    return NULL;
  if (fstat (fd, &st) < 0 || st.st_size > MAX_JSON)
    {
      cella_error (err, EFBIG, "`%s` in the image", path);
      return NULL;
    }
  if (read_all_fd (fd, &buf, &len, err) < 0)
    return NULL;
  o = json_loadb (buf, len, 0, &je);
  if (o == NULL)
    cella_error (err, 0, "`%s` in the image: %s (line %d)", path, je.text, je.line);
  return o;
}

/* gzip, zstd or plain tar, from the first bytes; "" for what an OCI layer cannot be. */
static const char *
sniff_layer_type (int fd)
{
  unsigned char m[4] = { 0 };
  ssize_t n = pread (fd, m, sizeof m, 0);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
    return MT_LAYER_GZIP;
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
    return MT_LAYER_ZSTD;
  if ((n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') || (n >= 4 && m[0] == 0xfd && m[1] == '7' && m[2] == 'z'))
    return "";
  return MT_LAYER_TAR;
}

/* Names given on the command line, in their stored form. */
static int
normalize_names (char *const *in, char ***out, cella_error_t *err)
{
  char **v = xzalloc (sizeof *v);
  for (size_t i = 0; in && in[i]; i++)
    {
      struct image_ref r = { 0 };
      cleanup_free char *n = NULL;
      if (image_ref_parse (in[i], &r, err) < 0)
        {
          strv_free (v);
          return -1;
        }
      if (r.digest)
        {
          image_ref_clear (&r);
          strv_free (v);
          return cella_error (err, 0, "image name `%s`: a name to store cannot have a digest", in[i]);
        }
      n = image_ref_name (&r);
      image_ref_clear (&r);
      strv_push (&v, n);
    }
  *out = v;
  return 0;
}

/* A manifest for config + layers (all stored already), stored and registered. */
static int
register_synth (const char *config_digest, int64_t config_size, json_t *layers, char *const *names, const char *source,
                struct ingest_limits *lim, char id[72], cella_error_t *err)
{
  json_t *m = json_pack ("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST_T,
                         "config", "mediaType", MT_OCI_CONFIG, "digest", config_digest, "size",
                         (json_int_t) config_size, "layers", layers);
  char *text = json_dumps (m, JSON_COMPACT);
  char mdigest[72];
  int rc = blob_put_mem (text, strlen (text), mdigest, err);
  if (rc == 0)
    {
      struct image_source src
          = { .manifest = mdigest, .media_type = MT_OCI_MANIFEST_T, .source = source, .names = names };
      rc = image_register (&src, lim, id, err);
    }
  free (text);
  json_decref (m);
  return rc;
}

/* ---- rootfs directory ----------------------------------------------------------------------------- */

struct tap2 {
  struct sha256 *h;
  int64_t n;
};

static void
tap_fn (const void *buf, size_t len, void *ud)
{
  struct tap2 *t = ud;
  sha256_update (t->h, buf, len);
  t->n += (int64_t) len;
}

static int
store_config (const char *diff_id_list_json_unused, json_t *config, char digest[72], int64_t *size, cella_error_t *err)
{
  char *text = json_dumps (config, JSON_COMPACT);
  int rc = blob_put_mem (text, strlen (text), digest, err);
  (void) diff_id_list_json_unused;
  *size = (int64_t) strlen (text);
  free (text);
  return rc;
}

/* The config of a one-layer image made from a root: docker's default PATH, and a history entry for
 * the layer (as docker's import writes one: tools that append history, buildah among them, check
 * that the entries without empty_layer match the layers). */
static json_t *
default_config (json_t *diff_ids, const char *comment)
{
  cleanup_free char *now = utc_now_rfc3339 ();
  return json_pack ("{s:s, s:s, s:s, s:{s:[s]}, s:{s:s, s:o}, s:[{s:s, s:s, s:s}]}", "created", now, "architecture",
                    platform_arch (), "os", "linux", "config", "Env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "rootfs", "type", "layers",
                    "diff_ids", diff_ids, "history", "created", now, "created_by", "cella import", "comment", comment);
}

int
import_rootfs_dir (const char *dir, char *const *names, const char *source, struct ingest_limits *lim, char id[72],
                   cella_error_t *err)
{
  cleanup_close int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  struct pack_opts po = { .compression = PACK_GZIP, .reproducible = true };
  struct tap2 blob = { sha256_new (), 0 }, raw = { sha256_new (), 0 };
  char digest[72], diff_id[72], cdigest[72];
  int64_t csize;
  json_t *config, *layers;
  int rc;
  if (dfd < 0)
    {
      sha256_free (blob.h);
      sha256_free (raw.h);
      return cella_error (err, errno, "rootfs directory `%s`", dir);
    }
  fd = blob_tmp_open (&tmp, err);
  if (fd < 0)
    {
      sha256_free (blob.h);
      sha256_free (raw.h);
      return -1;
    }
  if (layer_pack (dfd, fd, &po, tap_fn, &blob, tap_fn, &raw, err) < 0)
    {
      sha256_free (blob.h);
      sha256_free (raw.h);
      unlink (tmp);
      return cella_error_wrap (err, "pack `%s`", dir);
    }
  sha256_final (blob.h, digest);
  sha256_final (raw.h, diff_id);
  if (blob_present (digest))
    unlink (tmp);
  else if (blob_commit (fd, tmp, digest, err) < 0)
    {
      unlink (tmp);
      return -1;
    }
  config = default_config (json_pack ("[s]", diff_id), "imported from a directory");
  if (store_config (NULL, config, cdigest, &csize, err) < 0)
    {
      json_decref (config);
      return -1;
    }
  json_decref (config);
  layers = json_pack ("[{s:s, s:s, s:I}]", "mediaType", MT_LAYER_GZIP, "digest", digest, "size", (json_int_t) blob.n);
  rc = register_synth (cdigest, csize, layers, names, source, lim, id, err);
  json_decref (layers);
  return rc;
}

/* ---- rootfs tarball ---------------------------------------------------------------------------------- */

/* The tarball is stored as it is, one layer; unpacking it gives its diff_id for the config. */
static int
import_rootfs_tar (int fd, const char *path, char *const *names, const char *source, struct ingest_limits *lim,
                   char id[72], cella_error_t *err)
{
  const char *mt = sniff_layer_type (fd);
  char digest[72], diff_id[72], cdigest[72];
  int64_t size, csize;
  json_t *config, *layers;
  int rc;
  if (*mt == '\0')
    return cella_error (err, 0,
                        "`%s`: xz and bzip2 tarballs are not OCI layer formats: recompress it with gzip or zstd", path);
  if (blob_put_fd (fd, NULL, digest, &size, err) < 0 || layer_ensure (digest, NULL, lim, diff_id, err) < 0)
    return cella_error_wrap (err, "`%s`", path);
  config = default_config (json_pack ("[s]", diff_id), "imported from a tarball");
  rc = store_config (NULL, config, cdigest, &csize, err);
  json_decref (config);
  if (rc < 0)
    return -1;
  layers = json_pack ("[{s:s, s:s, s:I}]", "mediaType", mt, "digest", digest, "size", (json_int_t) size);
  rc = register_synth (cdigest, csize, layers, names, source, lim, id, err);
  json_decref (layers);
  return rc;
}

/* ---- OCI image layout ---------------------------------------------------------------------------------- */

/* The layout's file for digest, checked byte for byte against it (even when the store has that
 * blob: a layout whose file differs is damaged or crafted) and stored. */
static int
layout_blob (int dirfd, const struct oci_descriptor *d, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("blobs/sha256/%s", d->digest + 7);
  cleanup_close int fd = open_beneath (dirfd, path, err);
  char got[72];
  int64_t size;
  if (fd < 0 || blob_put_fd (fd, d->digest, got, &size, err) < 0)
    return -1;
  if (d->size >= 0 && size != d->size)
    return cella_error (err, 0, "blob %s: size %lld, but its descriptor says %lld", d->digest, (long long) size,
                        (long long) d->size);
  return 0;
}

/* A JSON blob of the layout (a manifest or an index), verified, then read from the store. */
static int
layout_json_blob (int dirfd, const char *digest, char **buf, size_t *len, cella_error_t *err)
{
  struct oci_descriptor d = { .size = -1 };
  if (digest == NULL || !digest_valid (digest))
    return cella_error (err, 0, "a descriptor without a valid sha256 digest");
  snprintf (d.digest, sizeof d.digest, "%s", digest);
  if (layout_blob (dirfd, &d, err) < 0)
    return -1;
  return blob_read (digest, INGEST_JSON_MAX, buf, len, err);
}

static int
import_layout_manifest (int dirfd, const char *mdigest, const struct image_source *proto, struct ingest_limits *lim,
                        char id[72], cella_error_t *err)
{
  cleanup_free char *buf = NULL;
  struct oci_manifest m;
  struct image_source src = *proto;
  size_t len;
  int rc = -1;
  if (layout_json_blob (dirfd, mdigest, &buf, &len, err) < 0 || manifest_parse (buf, len, &m, err) < 0)
    return cella_error_wrap (err, "manifest %s", mdigest);
  if (m.config.size > INGEST_JSON_MAX)
    cella_error (err, 0, "config %s: %lld bytes, more than an image config may have", m.config.digest,
                 (long long) m.config.size);
  else if (layout_blob (dirfd, &m.config, err) == 0)
    {
      rc = 0;
      for (size_t i = 0; rc == 0 && i < m.nlayers; i++)
        if (!layer_media_type_ok (m.layers[i].media_type))
          rc = cella_error (err, 0, "layer %zu: unsupported media type %s", i + 1, m.layers[i].media_type);
        else
          rc = layout_blob (dirfd, &m.layers[i], err);
    }
  if (rc == 0)
    {
      src.manifest = mdigest;
      rc = image_register (&src, lim, id, err);
    }
  manifest_clear (&m);
  return rc;
}

/* The names an index.json entry gives: NAME for the first image, else its ref.name annotation (a
 * full reference, or a tag: then "localhost/import:TAG"). */
static char **
layout_names (json_t *entry, char *const *names, size_t done)
{
  const char *refname = json_string_value (
      json_object_get (json_object_get (entry, "annotations"), "org.opencontainers.image.ref.name"));
  char **these = NULL;
  struct image_ref r = { 0 };
  cleanup_free char *full = NULL;
  if (names && names[0])
    return done == 0 ? strv_dup (names) : NULL;
  if (refname == NULL)
    return NULL;
  full
      = strchr (refname, '/') || strchr (refname, ':') ? xstrdup (refname) : xasprintf ("localhost/import:%s", refname);
  if (image_ref_parse (full, &r, NULL) == 0 && r.tag)
    {
      cleanup_free char *n = image_ref_name (&r);
      strv_push (&these, n);
    }
  image_ref_clear (&r);
  return these;
}

static int
import_layout (int dirfd, char *const *names, const char *source, struct ingest_limits *lim, char id[72],
               cella_error_t *err)
{
  json_t *index = load_json_beneath (dirfd, "index.json", err), *ms, *m;
  size_t i, done = 0;
  int rc = -1;
  if (index == NULL)
    return -1;
  ms = json_object_get (index, "manifests");
  if (!json_is_array (ms) || json_array_size (ms) == 0)
    {
      cella_error (err, 0, "index.json lists no manifests");
      goto out;
    }
  json_array_foreach (ms, i, m)
    {
      const char *d = json_string_value (json_object_get (m, "digest"));
      const char *mt = json_string_value (json_object_get (m, "mediaType"));
      cleanup_strv char **these = layout_names (m, names, done);
      cleanup_free char *pick = NULL, *pick_mt = NULL;
      struct image_source src = { .media_type = mt, .source = source, .names = these };
      if (mt && (strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0))
        {
          cleanup_free char *buf = NULL;
          json_t *sub = NULL;
          const char *pd, *pmt;
          size_t len;
          int r = layout_json_blob (dirfd, d, &buf, &len, err);
          if (r == 0 && (sub = json_loadb (buf, len, 0, NULL)) == NULL)
            r = cella_error (err, 0, "index %s is not JSON", d);
          if (r == 0 && (r = index_pick (sub, NULL, &pd, &pmt, err)) == 0)
            {
              pick = xstrdup (pd);
              pick_mt = pmt ? xstrdup (pmt) : NULL;
            }
          json_decref (sub);
          if (r < 0)
            goto out;
          src.repo_digest = d;
          src.media_type = pick_mt;
          d = pick;
        }
      if (import_layout_manifest (dirfd, d, &src, lim, id, err) < 0)
        goto out;
      done++;
    }
  rc = 0;
out:
  json_decref (index);
  return rc;
}

/* ---- docker-archive ----------------------------------------------------------------------------------- */

/* A docker-archive layer file, stored; its media type read from the stored blob. */
static int
docker_layer (int dirfd, const char *path, json_t *layers, cella_error_t *err)
{
  cleanup_close int lfd = open_beneath (dirfd, path ? path : "", err);
  cleanup_free char *blob = NULL;
  cleanup_close int bfd = -1;
  char ld[72];
  int64_t lsize;
  const char *mt;
  if (lfd < 0 || blob_put_fd (lfd, NULL, ld, &lsize, err) < 0)
    return -1;
  blob = store_blob_path (ld);
  bfd = open (blob, O_RDONLY | O_CLOEXEC);
  if (bfd < 0)
    return cella_error (err, errno, "blob %s", ld);
  mt = sniff_layer_type (bfd);
  if (*mt == '\0')
    return cella_error (err, 0, "docker archive layer `%s`: not a tar, gzip or zstd stream", path);
  json_array_append_new (layers,
                         json_pack ("{s:s, s:s, s:I}", "mediaType", mt, "digest", ld, "size", (json_int_t) lsize));
  return 0;
}

static char **
docker_names (json_t *entry, char *const *names, size_t i)
{
  json_t *t;
  char **these = NULL;
  size_t j;
  if (names && names[0])
    return i == 0 ? strv_dup (names) : NULL;
  json_array_foreach (json_object_get (entry, "RepoTags"), j, t)
    {
      struct image_ref r = { 0 };
      if (json_is_string (t) && image_ref_parse (json_string_value (t), &r, NULL) == 0 && r.tag)
        {
          cleanup_free char *n = image_ref_name (&r);
          strv_push (&these, n);
        }
      image_ref_clear (&r);
    }
  return these;
}

static int
import_docker_image (int dirfd, json_t *e, size_t i, char *const *names, const char *source, struct ingest_limits *lim,
                     char id[72], cella_error_t *err)
{
  const char *cfgpath = json_string_value (json_object_get (e, "Config"));
  json_t *layers = json_array (), *l;
  cleanup_strv char **these = NULL;
  cleanup_close int cfd = -1;
  char cdigest[72];
  int64_t csize;
  size_t j;
  int rc = -1;
  if (cfgpath == NULL)
    cella_error (err, 0, "docker archive image %zu has no Config", i);
  else if ((cfd = open_beneath (dirfd, cfgpath, err)) >= 0 && blob_put_fd (cfd, NULL, cdigest, &csize, err) == 0)
    {
      rc = 0;
      json_array_foreach (json_object_get (e, "Layers"), j, l)
        if (rc == 0)
          rc = docker_layer (dirfd, json_string_value (l), layers, err);
    }
  if (rc == 0)
    {
      these = docker_names (e, names, i);
      rc = register_synth (cdigest, csize, layers, these, source, lim, id, err);
    }
  json_decref (layers);
  return rc;
}

static int
import_docker (int dirfd, char *const *names, const char *source, struct ingest_limits *lim, char id[72],
               cella_error_t *err)
{
  json_t *man = load_json_beneath (dirfd, "manifest.json", err), *e;
  size_t i;
  int rc = 0;
  if (man == NULL)
    return -1;
  if (!json_is_array (man) || json_array_size (man) == 0)
    rc = cella_error (err, 0, "manifest.json of the docker archive lists no image");
  json_array_foreach (man, i, e)
    if (rc == 0)
      rc = import_docker_image (dirfd, e, i, names, source, lim, id, err);
  json_decref (man);
  return rc < 0 ? -1 : 0;
}

/* ---- archives: what is inside ------------------------------------------------------------------------ */

enum archive_kind { KIND_ROOTFS, KIND_OCI, KIND_DOCKER };

struct sniff {
  bool oci, index, manifest;
  unsigned n;
};

/* An image archive names its few files up front or among a few thousand; a docker-archive may
 * name manifest.json last, so the scan goes on until the OCI layout is seen, or for 4096 entries. */
static int
sniff_entry (const char *name, void *ud)
{
  struct sniff *k = ud;
  while (has_prefix (name, "./"))
    name += 2;
  k->oci |= strcmp (name, "oci-layout") == 0;
  k->index |= strcmp (name, "index.json") == 0;
  k->manifest |= strcmp (name, "manifest.json") == 0;
  return (k->oci && k->index) || ++k->n >= 4096;
}

/* What the archive holds, from its names, read within the limits: the data between them is
 * decompressed and dropped, so a bomb costs time up to the image limit, never disk. */
static int
sniff_archive (int fd, const char *src, const struct ingest_limits *lim, enum archive_kind *kind, cella_error_t *err)
{
  struct sniff k = { 0 };
  struct unpack_stats st;
  if (layer_list (fd, lim->image_bytes, lim->layer_entries, sniff_entry, &k, &st, err) < 0)
    {
      cleanup_free char *what = xasprintf ("import `%s`", src);
      if (st.over != UNPACK_WITHIN_LIMITS)
        return ingest_limit_error (what, st.over, true, lim, err);
      return cella_error_wrap (err, "%s", what);
    }
  *kind = k.oci && k.index ? KIND_OCI : k.manifest ? KIND_DOCKER : KIND_ROOTFS;
  lseek (fd, 0, SEEK_SET);
  return 0;
}

/* ---- the command ----------------------------------------------------------------------------------------- */

struct import_opts {
  struct limit_args limits;
};

#define O(f) offsetof (struct import_opts, f)
static const struct cli_option import_table[] = {
  LIMIT_OPTION_ROWS (O (limits)),
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

/* An OCI archive or a docker-archive: unpacked (safely, within the limits) into a temp dir of the
 * store, then imported from there. */
static int
import_archive (int fd, const char *src, enum archive_kind kind, char *const *names, const char *source,
                struct ingest_limits *lim, char id[72], cella_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s/layers/.tmp-import-XXXXXX", paths_data_root ());
  cleanup_close int tfd = -1;
  struct unpack_opts uo
      = { .mode = UNPACK_FLAT, .skip_devices = true, .max_bytes = lim->image_bytes, .max_entries = lim->layer_entries };
  struct unpack_stats st;
  int rc;
  if (mkdtemp (tmp) == NULL)
    return cella_error (err, errno, "create a temp dir for `%s`", src);
  tfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0 || flock (tfd, LOCK_EX) < 0)
    rc = cella_error (err, errno, "open `%s`", tmp);
  else if ((rc = layer_unpack (fd, tfd, &uo, &st, err)) < 0 && st.over != UNPACK_WITHIN_LIMITS)
    {
      cleanup_free char *what = xasprintf ("import `%s`", src);
      ingest_limit_error (what, st.over, true, lim, err);
    }
  if (rc == 0)
    rc = kind == KIND_OCI ? import_layout (tfd, names, source, lim, id, err)
                          : import_docker (tfd, names, source, lim, id, err);
  remove_tree (tmp);
  return rc < 0 ? -1 : 0;
}

static int
import_path (const char *src, char *const *names, struct ingest_limits *lim, char id[72], cella_error_t *err)
{
  cleanup_free char *source = xasprintf ("import %s", src);
  cleanup_close int fd = -1;
  enum archive_kind kind = KIND_ROOTFS;
  struct stat st;
  if (stat (src, &st) < 0)
    return cella_error (err, errno, "import `%s`", src);
  if (S_ISDIR (st.st_mode))
    {
      cleanup_close int dfd = open (src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0)
        return cella_error (err, errno, "import `%s`", src);
      if (faccessat (dfd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return import_layout (dfd, names, source, lim, id, err);
      if (faccessat (dfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0 && faccessat (dfd, "etc", F_OK, 0) < 0)
        return import_docker (dfd, names, source, lim, id, err);
      return import_rootfs_dir (src, names, source, lim, id, err);
    }
  if (!S_ISREG (st.st_mode))
    return cella_error (err, 0, "import `%s`: not a directory or a file", src);
  fd = open (src, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "import `%s`", src);
  if (sniff_archive (fd, src, lim, &kind, err) < 0)
    return -1;
  if (kind == KIND_ROOTFS)
    return import_rootfs_tar (fd, src, names, source, lim, id, err);
  if (import_archive (fd, src, kind, names, source, lim, id, err) < 0)
    return has_prefix ((*err)->msg, "import `") ? -1 : cella_error_wrap (err, "import `%s`", src);
  return 0;
}

int
cmd_import (int argc, char **argv)
{
  struct import_opts o = { 0 };
  struct ingest_limits lim;
  cella_error_t err = NULL;
  cleanup_strv char **names = NULL;
  cleanup_close int lock = -1;
  char id[72];
  int status,
      first = cli_parse_command (
          import_table, &o, argc, argv, "cella image import [OPTIONS] SOURCE [NAME[:TAG]]",
          "Import an image from SOURCE: a rootfs directory, a rootfs tarball (.tar, .tar.gz, .tar.zst), an OCI image layout\n"
          "directory or archive, or a docker-archive (`docker save`). NAME names it (an OCI layout's ref.name annotation\n"
          "and a docker-archive's RepoTags are used when NAME is absent). Prints the image id.",
          1, "a SOURCE is required", &status);
  if (first <= 0)
    {
      limit_args_free (&o.limits);
      return status;
    }
  if (argc - first > 2)
    cella_error (&err, 0, "import: too many arguments (usage: cella image import [OPTIONS] SOURCE [NAME[:TAG]])");
  else if (ingest_limits_init (&lim, &o.limits, &err) == 0
           && normalize_names (argc - first == 2 ? (char *const[]){ argv[first + 1], NULL } : NULL, &names, &err) == 0
           && store_init (&err) == 0 && (lock = store_lock (false, &err)) >= 0)
    {
      ingest_sweep ();
      if (import_path (argv[first], names, &lim, id, &err) == 0)
        {
          limit_args_free (&o.limits);
          puts (id);
          return 0;
        }
    }
  limit_args_free (&o.limits);
  return cella_error_print (&err);
}
