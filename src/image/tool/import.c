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
#include "engine/paths.h"
#include "image/ref.h"
#include "ingest.h"
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

/* sha256 of the uncompressed stream: the layer's diff_id. */
static int
tar_diff_id (int fd, char out[72], cella_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  struct sha256 *h = sha256_new ();
  const void *buf;
  size_t len;
  int64_t off;
  int r;
  lseek (fd, 0, SEEK_SET);
  archive_read_support_filter_all (a);
  archive_read_support_format_raw (a);
  if (archive_read_open_fd (a, fd, 1 << 16) != ARCHIVE_OK || archive_read_next_header (a, &e) != ARCHIVE_OK)
    goto bad;
  while ((r = archive_read_data_block (a, &buf, &len, &off)) == ARCHIVE_OK)
    sha256_update (h, buf, len);
  if (r != ARCHIVE_EOF)
    goto bad;
  sha256_final (h, out);
  archive_read_free (a);
  return 0;
bad:
  cella_error (err, 0, "read the layer: %s", archive_error_string (a) ? archive_error_string (a) : "not a tar stream");
  sha256_free (h);
  archive_read_free (a);
  return -1;
}

static char *
iso_now (void)
{
  char buf[64];
  time_t t = time (NULL);
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup (buf);
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
                char id[72], cella_error_t *err)
{
  json_t *m = json_pack ("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST_T, "config",
                         "mediaType", MT_OCI_CONFIG, "digest", config_digest, "size", (json_int_t) config_size, "layers",
                         layers);
  char *text = json_dumps (m, JSON_COMPACT);
  char mdigest[72];
  size_t i;
  json_t *l;
  int rc = -1;
  json_array_foreach (layers, i, l)
    if (layer_ensure (json_string_value (json_object_get (l, "digest")), err) < 0)
      goto out;
  if (blob_put_mem (text, strlen (text), mdigest, err) < 0)
    goto out;
  rc = image_register (m, mdigest, MT_OCI_MANIFEST_T, NULL, source, names, id, err);
out:
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

static json_t *
default_config (json_t *diff_ids)
{
  cleanup_free char *now = iso_now ();
  return json_pack ("{s:s, s:s, s:s, s:{s:[s]}, s:{s:s, s:o}}", "created", now, "architecture", platform_arch (), "os",
                    "linux", "config", "Env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "rootfs",
                    "type", "layers", "diff_ids", diff_ids);
}

int
import_rootfs_dir (const char *dir, char *const *names, const char *source, char id[72], cella_error_t *err)
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
  config = default_config (json_pack ("[s]", diff_id));
  if (store_config (NULL, config, cdigest, &csize, err) < 0)
    {
      json_decref (config);
      return -1;
    }
  json_decref (config);
  layers = json_pack ("[{s:s, s:s, s:I}]", "mediaType", MT_LAYER_GZIP, "digest", digest, "size", (json_int_t) blob.n);
  rc = register_synth (cdigest, csize, layers, names, source, id, err);
  json_decref (layers);
  return rc;
}

/* ---- rootfs tarball ---------------------------------------------------------------------------------- */

static int
import_rootfs_tar (int fd, const char *path, char *const *names, const char *source, char id[72], cella_error_t *err)
{
  const char *mt = sniff_layer_type (fd);
  char digest[72], diff_id[72], cdigest[72];
  int64_t size, csize;
  json_t *config, *layers;
  int rc;
  if (*mt == '\0')
    return cella_error (err, 0, "`%s`: xz and bzip2 tarballs are not OCI layer formats: recompress it with gzip or zstd", path);
  if (tar_diff_id (fd, diff_id, err) < 0 || blob_put_fd (fd, NULL, digest, &size, err) < 0)
    return cella_error_wrap (err, "`%s`", path);
  config = default_config (json_pack ("[s]", diff_id));
  rc = store_config (NULL, config, cdigest, &csize, err);
  json_decref (config);
  if (rc < 0)
    return -1;
  layers = json_pack ("[{s:s, s:s, s:I}]", "mediaType", mt, "digest", digest, "size", (json_int_t) size);
  rc = register_synth (cdigest, csize, layers, names, source, id, err);
  json_decref (layers);
  return rc;
}

/* ---- OCI image layout ---------------------------------------------------------------------------------- */

static int
layout_blob (int dirfd, const char *digest, int64_t want_size, cella_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  char got[72];
  int64_t size;
  if (digest == NULL || !digest_valid (digest))
    return cella_error (err, 0, "a descriptor without a valid sha256 digest");
  if (blob_present (digest))
    return 0;
  path = xasprintf ("blobs/sha256/%s", digest + 7);
  fd = open_beneath (dirfd, path, err);
  if (fd < 0)
    return -1;
  if (blob_put_fd (fd, digest, got, &size, err) < 0)
    return -1;
  if (want_size >= 0 && size != want_size)
    return cella_error (err, 0, "blob %s: size %lld, but the manifest says %lld", digest, (long long) size,
                        (long long) want_size);
  return 0;
}

static json_t *
layout_manifest (int dirfd, const char *digest, cella_error_t *err)
{
  cleanup_free char *path = NULL;
  if (layout_blob (dirfd, digest, -1, err) < 0)
    return NULL;
  path = xasprintf ("blobs/sha256/%s", digest + 7);
  return load_json_beneath (dirfd, path, err);
}

static int
import_layout_manifest (int dirfd, const char *mdigest, const char *mt, const char *repo_digest, char *const *names,
                        const char *source, char id[72], cella_error_t *err)
{
  json_t *m = layout_manifest (dirfd, mdigest, err), *layers, *l, *cfg;
  size_t i;
  int rc = -1;
  if (m == NULL)
    return -1;
  cfg = json_object_get (m, "config");
  layers = json_object_get (m, "layers");
  if (!json_is_object (cfg) || !json_is_array (layers))
    {
      cella_error (err, 0, "manifest %s has no config or layers", mdigest);
      goto out;
    }
  if (layout_blob (dirfd, json_string_value (json_object_get (cfg, "digest")), json_integer_value (json_object_get (cfg, "size")),
                   err) < 0)
    goto out;
  json_array_foreach (layers, i, l)
    {
      const char *lmt = json_string_value (json_object_get (l, "mediaType"));
      const char *d = json_string_value (json_object_get (l, "digest"));
      if (!layer_media_type_ok (lmt))
        {
          cella_error (err, 0, "layer %zu: unsupported media type %s", i, lmt);
          goto out;
        }
      if (layout_blob (dirfd, d, json_is_integer (json_object_get (l, "size")) ? json_integer_value (json_object_get (l, "size")) : -1,
                       err) < 0
          || layer_ensure (d, err) < 0)
        goto out;
    }
  rc = image_register (m, mdigest, mt ? mt : MT_OCI_MANIFEST_T, repo_digest, source, names, id, err);
out:
  json_decref (m);
  return rc;
}

static int
import_layout (int dirfd, char *const *names, const char *source, char id[72], cella_error_t *err)
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
      const char *refname = json_string_value (json_object_get (json_object_get (m, "annotations"),
                                                               "org.opencontainers.image.ref.name"));
      cleanup_strv char **these = NULL;
      const char *repo_digest = NULL;
      cleanup_free char *pick = NULL, *pick_mt = NULL;
      if (names && names[0])
        these = done == 0 ? strv_dup (names) : NULL; /* NAME names the first image */
      else if (refname)
        {
          /* a full reference, or a tag: then "localhost/import:TAG" */
          struct image_ref r = { 0 };
          cleanup_free char *full = strchr (refname, '/') || strchr (refname, ':') ? xstrdup (refname)
                                                                                     : xasprintf ("localhost/import:%s", refname);
          if (image_ref_parse (full, &r, NULL) == 0 && r.tag)
            {
              cleanup_free char *n = image_ref_name (&r);
              strv_push (&these, n);
            }
          image_ref_clear (&r);
        }
      if (mt && (strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0))
        {
          json_t *sub = layout_manifest (dirfd, d, err);
          const char *pd, *pmt;
          if (sub == NULL)
            goto out;
          if (index_pick (sub, NULL, &pd, &pmt, err) < 0)
            {
              json_decref (sub);
              goto out;
            }
          pick = xstrdup (pd);
          pick_mt = pmt ? xstrdup (pmt) : NULL;
          json_decref (sub);
          repo_digest = d;
          d = pick;
          mt = pick_mt;
        }
      if (import_layout_manifest (dirfd, d, mt, repo_digest, these, source, id, err) < 0)
        goto out;
      done++;
    }
  rc = 0;
out:
  json_decref (index);
  return rc;
}

/* ---- docker-archive ----------------------------------------------------------------------------------- */

static int
import_docker (int dirfd, char *const *names, const char *source, char id[72], cella_error_t *err)
{
  json_t *man = load_json_beneath (dirfd, "manifest.json", err), *e, *l;
  size_t i, j;
  int rc = -1;
  if (man == NULL)
    return -1;
  if (!json_is_array (man) || json_array_size (man) == 0)
    {
      cella_error (err, 0, "manifest.json of the docker archive lists no image");
      goto out;
    }
  json_array_foreach (man, i, e)
    {
      const char *cfgpath = json_string_value (json_object_get (e, "Config"));
      json_t *tags = json_object_get (e, "RepoTags"), *layers = json_array (), *t;
      cleanup_strv char **these = NULL;
      char cdigest[72];
      int64_t csize;
      cleanup_close int cfd = -1;
      if (cfgpath == NULL)
        {
          json_decref (layers);
          cella_error (err, 0, "docker archive image %zu has no Config", i);
          goto out;
        }
      cfd = open_beneath (dirfd, cfgpath, err);
      if (cfd < 0 || blob_put_fd (cfd, NULL, cdigest, &csize, err) < 0)
        {
          json_decref (layers);
          goto out;
        }
      json_array_foreach (json_object_get (e, "Layers"), j, l)
        {
          cleanup_close int lfd = open_beneath (dirfd, json_string_value (l) ? json_string_value (l) : "", err);
          char ld[72];
          int64_t lsize;
          const char *mt;
          if (lfd < 0 || blob_put_fd (lfd, NULL, ld, &lsize, err) < 0)
            {
              json_decref (layers);
              goto out;
            }
          mt = sniff_layer_type (lfd);
          if (*mt == '\0')
            {
              json_decref (layers);
              cella_error (err, 0, "docker archive layer `%s`: not a tar, gzip or zstd stream", json_string_value (l));
              goto out;
            }
          json_array_append_new (layers, json_pack ("{s:s, s:s, s:I}", "mediaType", mt, "digest", ld, "size",
                                                    (json_int_t) lsize));
        }
      if (names && names[0])
        these = i == 0 ? strv_dup (names) : NULL;
      else
        json_array_foreach (tags, j, t)
          {
            struct image_ref r = { 0 };
            if (json_is_string (t) && image_ref_parse (json_string_value (t), &r, NULL) == 0 && r.tag)
              {
                cleanup_free char *n = image_ref_name (&r);
                strv_push (&these, n);
              }
            image_ref_clear (&r);
          }
      rc = register_synth (cdigest, csize, layers, these, source, id, err);
      json_decref (layers);
      if (rc < 0)
        goto out;
      rc = -1;
    }
  rc = 0;
out:
  json_decref (man);
  return rc;
}

/* ---- archives: what is inside ------------------------------------------------------------------------ */

enum archive_kind { KIND_ROOTFS, KIND_OCI, KIND_DOCKER };

static int
sniff_archive (int fd, enum archive_kind *kind, cella_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  bool oci = false, index = false, manifest = false;
  int n = 0, r;
  lseek (fd, 0, SEEK_SET);
  archive_read_support_filter_all (a);
  archive_read_support_format_tar (a);
  if (archive_read_open_fd (a, fd, 1 << 16) != ARCHIVE_OK)
    {
      cella_error (err, 0, "not a tar archive: %s", archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  while (n++ < 4096 && (r = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    {
      const char *name = archive_entry_pathname (e);
      if (name && has_prefix (name, "./"))
        name += 2;
      if (name == NULL)
        continue;
      oci |= strcmp (name, "oci-layout") == 0;
      index |= strcmp (name, "index.json") == 0;
      manifest |= strcmp (name, "manifest.json") == 0;
    }
  if (n == 1 && r != ARCHIVE_EOF)
    {
      cella_error (err, 0, "not a tar archive: %s", archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  archive_read_free (a);
  *kind = oci && index ? KIND_OCI : manifest ? KIND_DOCKER : KIND_ROOTFS;
  lseek (fd, 0, SEEK_SET);
  return 0;
}

/* ---- the command ----------------------------------------------------------------------------------------- */

struct import_opts {
  char *unused;
};

static const struct cli_option import_table[] = { { NULL, 0, 0, 0, NULL, NULL } };

static int
import_path (const char *src, char *const *names, char id[72], cella_error_t *err)
{
  cleanup_free char *source = xasprintf ("import %s", src);
  struct stat st;
  if (stat (src, &st) < 0)
    return cella_error (err, errno, "import `%s`", src);
  if (S_ISDIR (st.st_mode))
    {
      cleanup_close int dfd = open (src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0)
        return cella_error (err, errno, "import `%s`", src);
      if (faccessat (dfd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return import_layout (dfd, names, source, id, err);
      if (faccessat (dfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0 && faccessat (dfd, "etc", F_OK, 0) < 0)
        return import_docker (dfd, names, source, id, err);
      return import_rootfs_dir (src, names, source, id, err);
    }
  if (S_ISREG (st.st_mode))
    {
      cleanup_close int fd = open (src, O_RDONLY | O_CLOEXEC);
      enum archive_kind kind;
      cleanup_free char *tmp = NULL;
      cleanup_close int tfd = -1;
      struct unpack_opts uo = { .mode = UNPACK_FLAT, .skip_devices = true };
      int rc;
      if (fd < 0)
        return cella_error (err, errno, "import `%s`", src);
      if (sniff_archive (fd, &kind, err) < 0)
        return cella_error_wrap (err, "import `%s`", src);
      if (kind == KIND_ROOTFS)
        return import_rootfs_tar (fd, src, names, source, id, err);
      /* an OCI archive or a docker-archive: unpacked (safely) into a temp dir of the store first */
      tmp = xasprintf ("%s/layers/.tmp-import-XXXXXX", paths_data_root ());
      if (mkdtemp (tmp) == NULL)
        return cella_error (err, errno, "create a temp dir for `%s`", src);
      tfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (tfd < 0 || flock (tfd, LOCK_EX) < 0 || layer_unpack (fd, tfd, &uo, NULL, err) < 0)
        {
          if (tfd < 0)
            cella_error (err, errno, "open `%s`", tmp);
          remove_tree (tmp);
          return cella_error_wrap (err, "import `%s`", src);
        }
      rc = kind == KIND_OCI ? import_layout (tfd, names, source, id, err) : import_docker (tfd, names, source, id, err);
      remove_tree (tmp);
      return rc < 0 ? cella_error_wrap (err, "import `%s`", src) : 0;
    }
  return cella_error (err, 0, "import `%s`: not a directory or a file", src);
}

int
cmd_import (int argc, char **argv)
{
  cella_error_t err = NULL;
  cleanup_strv char **names = NULL;
  cleanup_close int lock = -1;
  char id[72];
  int status, first = cli_parse_command (
      import_table, NULL, argc, argv, "cella image import SOURCE [NAME[:TAG]]",
      "Import an image from SOURCE: a rootfs directory, a rootfs tarball (.tar, .tar.gz, .tar.zst), an OCI image layout\n"
      "directory or archive, or a docker-archive (`docker save`). NAME names it (an OCI layout's ref.name annotation\n"
      "and a docker-archive's RepoTags are used when NAME is absent). Prints the image id.",
      1, "a SOURCE is required", &status);
  if (first <= 0)
    return status;
  if (argc - first > 2)
    {
      cella_error (&err, 0, "import: too many arguments (usage: cella image import SOURCE [NAME[:TAG]])");
      return cella_error_print (&err);
    }
  if (normalize_names (argc - first == 2 ? (char *const[]){ argv[first + 1], NULL } : NULL, &names, &err) < 0
      || store_init (&err) < 0 || (lock = store_lock (false, &err)) < 0)
    return cella_error_print (&err);
  ingest_sweep ();
  if (import_path (argv[first], names, id, &err) < 0)
    return cella_error_print (&err);
  puts (id);
  return 0;
}
