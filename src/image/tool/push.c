/* cella push: an image of the store (or the embedded busybox) to an OCI/Docker registry. Each blob
 * the registry lacks is mounted from the repository the image was pulled from (same registry) or
 * uploaded; then the manifest, as stored or converted to OCI or Docker schema2 media types. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "image/default_image.h"
#include "image/ref.h"
#include "ingest.h"
#include "manifest.h"
#include "progress.h"
#include "registry.h"
#include "tool.h"

#define MT_OCI_CONFIG_P "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_OCI_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_DOCKER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_TAR "application/vnd.docker.image.rootfs.diff.tar"

/* A layer's media type in `docker` (Docker schema2) or OCI terms: NULL when that format has none
 * for it (Docker schema2 layers are gzip). */
const char *
push_layer_media_type (const char *mt, bool docker)
{
  bool gz, tar;
  if (mt == NULL)
    mt = MT_OCI_GZIP; /* old records: what the store kept from a layout without types */
  gz = strcmp (mt, MT_OCI_GZIP) == 0 || strcmp (mt, MT_DOCKER_GZIP) == 0;
  tar = strcmp (mt, MT_OCI_TAR) == 0 || strcmp (mt, MT_DOCKER_TAR) == 0;
  if (docker)
    return gz ? MT_DOCKER_GZIP : NULL;
  return gz ? MT_OCI_GZIP : tar ? MT_OCI_TAR : strcmp (mt, MT_OCI_ZSTD) == 0 ? MT_OCI_ZSTD : NULL;
}

/* The manifest `text` with the media types of `format` ("oci" or "docker"): its own bytes when it
 * is of that format already (the digest stays the one the image was pulled with). Errors name the
 * layer the format cannot carry. */
int
push_convert_manifest (const char *text, size_t len, const char *format, char **out, size_t *out_len, char **mt,
                       cella_error_t *err)
{
  json_t *j = json_loadb (text, len, 0, NULL), *layers, *l;
  bool docker = strcmp (format, "docker") == 0;
  const char *want = docker ? MT_DOCKER_MANIFEST : MT_OCI_MANIFEST;
  const char *have;
  size_t i;
  int rc = 0;
  if (!json_is_object (j))
    {
      json_decref (j);
      return cella_error (err, 0, "the stored manifest is not a JSON object");
    }
  have = json_string_value (json_object_get (j, "mediaType"));
  if (have && strcmp (have, want) == 0)
    {
      *out = xmalloc (len + 1);
      memcpy (*out, text, len);
      (*out)[len] = '\0';
      *out_len = len;
      *mt = xstrdup (want);
      json_decref (j);
      return 0;
    }
  json_object_set_new (j, "mediaType", json_string (want));
  json_object_set_new (json_object_get (j, "config"), "mediaType",
                       json_string (docker ? MT_DOCKER_CONFIG : MT_OCI_CONFIG_P));
  layers = json_object_get (j, "layers");
  json_array_foreach (layers, i, l)
    {
      const char *lmt = json_string_value (json_object_get (l, "mediaType"));
      const char *to = push_layer_media_type (lmt, docker);
      if (to == NULL)
        {
          rc = cella_error (err, 0, "layer %zu (%s) is %s: %s has no media type for it (push it with --format oci)",
                            i + 1, json_string_value (json_object_get (l, "digest")), lmt ? lmt : "untyped",
                            docker ? "Docker schema2" : "OCI");
          break;
        }
      json_object_set_new (l, "mediaType", json_string (to));
    }
  if (rc == 0 && docker)
    {
      /* fields Docker schema2 does not have */
      json_object_del (j, "annotations");
      json_object_del (j, "subject");
      json_object_del (j, "artifactType");
    }
  if (rc == 0)
    {
      *out = json_dumps (j, JSON_COMPACT);
      *out_len = strlen (*out);
      *mt = xstrdup (want);
    }
  json_decref (j);
  return rc;
}

struct push_opts {
  bool quiet;
  char *tls_verify, *creds, *format, *digestfile, *chunk_size;
};

#define O(f) offsetof (struct push_opts, f)
static const struct cli_option push_table[] = {
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "No progress, only the manifest digest" },
  { "format", 'f', OPT_STRING, O (format), "oci|docker",
    "Manifest type to push (default: as stored; docker: Docker schema2, gzip layers only)" },
  { "tls-verify", 0, OPT_STRING, O (tls_verify), "BOOL",
    "Verify the registry's TLS certificate (default true; false also allows plain http)" },
  { "creds", 0, OPT_STRING, O (creds), "USER:PASS", "Credentials for this push (default: from `cella login`)" },
  { "digestfile", 0, OPT_STRING, O (digestfile), "FILE", "Also write the pushed manifest's digest to FILE" },
  { "chunk-size", 0, OPT_STRING, O (chunk_size), "SIZE",
    "Upload blobs larger than SIZE (64m, 512k...) in chunks of SIZE (default: each in one request)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

/* What a stored blob really is, from its first bytes: "gzip", "zstd" or "tar". */
static const char *
sniff_blob (const char *digest)
{
  cleanup_free char *p = store_blob_path (digest);
  cleanup_close int fd = open (p, O_RDONLY | O_CLOEXEC);
  unsigned char b[4] = { 0 };
  if (fd < 0 || read (fd, b, sizeof b) != (ssize_t) sizeof b)
    return "tar";
  if (b[0] == 0x1f && b[1] == 0x8b)
    return "gzip";
  if (b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return "zstd";
  return "tar";
}

/* Every layer's blob against its media type: a gzip type on a blob that is not gzip is refused. */
static int
layers_check (const struct oci_manifest *m, cella_error_t *err)
{
  for (size_t i = 0; i < m->nlayers; i++)
    {
      const char *mt = m->layers[i].media_type ? m->layers[i].media_type : MT_OCI_GZIP;
      const char *is = sniff_blob (m->layers[i].digest);
      const char *says = strstr (mt, "gzip") ? "gzip" : strstr (mt, "zstd") ? "zstd" : "tar";
      if (strcmp (is, says) != 0)
        return cella_error (err, 0, "layer %zu (%s): its media type %s says %s but the stored blob is %s", i + 1,
                            m->layers[i].digest, mt, says, is);
    }
  return 0;
}

/* The repository on `host` the image came from ("pull HOST/REPO:TAG"), for mounts; NULL if none. */
static char *
source_repo (const struct image_record *r, const struct image_ref *dest)
{
  struct image_ref src = { 0 };
  cella_error_t e = NULL;
  char *repo = NULL;
  if (r->source == NULL || !has_prefix (r->source, "pull "))
    return NULL;
  if (image_ref_parse (r->source + 5, &src, &e) < 0)
    {
      cella_error_free (&e);
      return NULL;
    }
  if (strcmp (src.registry, dest->registry) == 0 && strcmp (src.repo, dest->repo) != 0)
    repo = xstrdup (src.repo);
  image_ref_clear (&src);
  return repo;
}

struct push_blob {
  const char *digest;
  int64_t size;
};

/* Blobs to upload, taken in turn by up to PUSH_PARALLEL threads, each with its own client (a copy
 * of the caller's, with its scheme and Authorization). */
#define PUSH_PARALLEL 4

struct upload_pool {
  struct registry *base;
  const struct push_blob *blobs;
  const size_t *todo; /* indexes into blobs */
  char **started;     /* uploads a mount attempt started, per todo entry */
  size_t m, next;
  int64_t chunk;
  struct progress *pr;
  pthread_mutex_t lock;
  bool failed;
  cella_error_t err; /* the first error */
};

static int
upload_one (struct registry *reg, struct upload_pool *p, size_t k, char *started, cella_error_t *err)
{
  const struct push_blob *b = &p->blobs[p->todo[k]];
  cleanup_free char *path = store_blob_path (b->digest);
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  struct blob_upload up = { .digest = b->digest, .fd = fd, .size = b->size, .chunk = p->chunk };
  if (fd < 0)
    {
      free (started);
      return cella_error (err, errno, "blob %s is missing from the store (`%s`): pull the image again", b->digest,
                          path);
    }
  if (fstat (fd, &st) < 0 || st.st_size != b->size)
    {
      free (started);
      return cella_error (err, 0, "blob %s in the store is %lld bytes, the manifest says %lld", b->digest,
                          (long long) st.st_size, (long long) b->size);
    }
  return registry_put_blob (reg, &up, started, k, p->pr ? progress_blob_cb : NULL, p->pr, err);
}

static void *
upload_worker (void *ud)
{
  struct upload_pool *p = ud;
  struct registry *reg = registry_dup (p->base);
  for (;;)
    {
      cella_error_t e = NULL;
      char *started;
      size_t k;
      pthread_mutex_lock (&p->lock);
      if (p->failed || p->next >= p->m)
        {
          pthread_mutex_unlock (&p->lock);
          break;
        }
      k = p->next++;
      started = steal_pointer (&p->started[k]);
      pthread_mutex_unlock (&p->lock);
      if (upload_one (reg, p, k, started, &e) < 0)
        {
          pthread_mutex_lock (&p->lock);
          if (!p->failed)
            {
              p->failed = true;
              p->err = steal_pointer (&e);
            }
          pthread_mutex_unlock (&p->lock);
          cella_error_free (&e);
        }
    }
  registry_free (reg);
  return NULL;
}

/* Upload every blob of the pool: one at a time on the caller's client when there is one, else
 * up to PUSH_PARALLEL at once. */
static int
upload_all (struct upload_pool *p, cella_error_t *err)
{
  pthread_t th[PUSH_PARALLEL];
  size_t n = p->m < PUSH_PARALLEL ? p->m : PUSH_PARALLEL, started = 0;
  if (p->m == 0)
    return 0;
  if (p->m == 1)
    return upload_one (p->base, p, 0, steal_pointer (&p->started[0]), err);
  pthread_mutex_init (&p->lock, NULL);
  for (size_t i = 0; i < n; i++)
    if (pthread_create (&th[started], NULL, upload_worker, p) == 0)
      started++;
  if (started == 0)
    upload_worker (p); /* no thread to be had: this one does it all */
  for (size_t i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  pthread_mutex_destroy (&p->lock);
  if (p->failed)
    {
      *err = steal_pointer (&p->err);
      return -1;
    }
  return 0;
}

/* Upload what the registry lacks among blobs[0..n): HEAD, else mount, else upload with progress. */
static int
push_blobs (struct registry *reg, const struct push_blob *blobs, size_t n, const char *from, int64_t chunk, bool quiet,
            cella_error_t *err)
{
  size_t *todo = xzalloc (sizeof *todo * (n + 1)), m = 0;
  char **started = xzalloc (sizeof *started * (n + 1));
  const char **names = xzalloc (sizeof *names * (n + 1));
  int64_t *totals = xzalloc (sizeof *totals * (n + 1));
  struct progress *pr = NULL;
  int rc = -1;
  for (size_t i = 0; i < n; i++)
    {
      int has;
      bool dup = false;
      for (size_t j = 0; j < i; j++)
        dup |= strcmp (blobs[j].digest, blobs[i].digest) == 0;
      if (dup)
        continue;
      has = registry_blob_exists (reg, blobs[i].digest, NULL, err);
      if (has < 0)
        goto out;
      if (has == 0 && from)
        {
          has = registry_blob_mount (reg, blobs[i].digest, from, &started[m], err);
          if (has < 0)
            goto out;
          if (has > 0 && !quiet)
            fprintf (stderr, "Copying blob %.12s mounted from %s\n", blobs[i].digest + 7, from);
        }
      else if (has > 0 && !quiet)
        fprintf (stderr, "Copying blob %.12s skipped: already exists\n", blobs[i].digest + 7);
      if (has > 0)
        continue;
      names[m] = blobs[i].digest;
      totals[m] = blobs[i].size;
      todo[m++] = i;
    }
  if (!quiet && m > 0)
    pr = progress_new (m, names, totals, isatty (2));
  {
    struct upload_pool pool = {
      .base = reg, .blobs = blobs, .todo = todo, .started = started, .m = m, .chunk = chunk, .pr = pr, .err = NULL
    };
    if (upload_all (&pool, err) < 0)
      goto out;
  }
  rc = 0;
out:
  progress_finish (pr);
  for (size_t k = 0; k < n; k++)
    free (started[k]);
  free (started);
  free (todo);
  free (names);
  free (totals);
  return rc;
}

/* The stored image to push (or save): looked up, or the embedded busybox made into a store image
 * (nameless). */
int
tool_image_or_embedded (const char *src, struct image_record **r, bool *embedded, cella_error_t *err)
{
  cleanup_free char *rootfs = NULL;
  struct ingest_limits lim;
  char id[72];
  int rc = image_lookup (src, r, err);
  *embedded = false;
  if (rc <= 0)
    return rc;
  rc = default_image_ensure (src, &rootfs, err);
  if (rc < 0)
    return -1;
  if (rc > 0)
    return cella_error (err, 0, "image `%s`: not found (see `cella images`)", src);
  *embedded = true;
  if (store_init (err) < 0 || ingest_limits_init (&lim, NULL, err) < 0
      || import_rootfs_dir (rootfs, NULL, "push busybox", &lim, id, err) < 0)
    return -1;
  rc = image_lookup (id, r, err);
  if (rc > 0)
    return cella_error (err, 0, "image `%s`: the image made of the embedded rootfs is gone", src);
  return rc;
}

/* Where to: DEST, else the name of the image that IMAGE named. */
static int
push_dest (const char *src, const char *dest, const struct image_record *r, bool embedded, struct image_ref *ref,
           cella_error_t *err)
{
  struct image_ref s = { 0 };
  cella_error_t e = NULL;
  const char *pick = NULL;
  if (dest)
    return image_ref_parse (dest, ref, err);
  if (image_ref_parse (src, &s, &e) == 0)
    {
      cleanup_free char *full = image_ref_name (&s);
      for (size_t i = 0; r->names && r->names[i]; i++)
        if (strcmp (r->names[i], full) == 0)
          pick = r->names[i];
      image_ref_clear (&s);
      if (pick == NULL && embedded)
        pick = src;
    }
  cella_error_free (&e);
  if (pick == NULL && r->names && r->names[0] && r->names[1] == NULL)
    pick = r->names[0];
  if (pick == NULL)
    return cella_error (err, 0, "image `%s`: give a destination (cella push IMAGE REGISTRY/REPO:TAG)", src);
  return image_ref_parse (pick, ref, err);
}

static int
tool_push (const char *src, const char *dest, const struct push_opts *o, char digest[72], cella_error_t *err)
{
  struct image_record *r = NULL;
  struct image_ref ref = { 0 };
  struct reg_opts ro = REG_OPTS_INIT;
  struct registry *reg = NULL;
  struct oci_manifest m = { 0 };
  cleanup_free char *mbody = NULL, *out = NULL, *mt = NULL, *user = NULL, *from = NULL, *refname = NULL;
  cleanup_free struct push_blob *blobs = NULL;
  cleanup_close int lock = -1;
  size_t mlen = 0, olen = 0;
  int64_t chunk = 0;
  bool embedded = false;
  int rc = -1;

  if (o->format && strcmp (o->format, "oci") != 0 && strcmp (o->format, "docker") != 0
      && strcmp (o->format, "v2s2") != 0)
    return cella_error (err, 0, "--format `%s`: expected oci or docker", o->format);
  if (o->chunk_size && (chunk = parse_size (o->chunk_size)) <= 0)
    return cella_error (err, 0, "--chunk-size `%s`: expected a size like 64m or 1048576", o->chunk_size);
  if (store_init (err) < 0 || (lock = store_lock (false, err)) < 0
      || tool_image_or_embedded (src, &r, &embedded, err) != 0 || push_dest (src, dest, r, embedded, &ref, err) < 0)
    goto out;
  if (o->creds)
    {
      char *colon;
      user = xstrdup (o->creds);
      colon = strchr (user, ':');
      if (colon == NULL)
        {
          cella_error (err, 0, "--creds: expected USER:PASS");
          goto out;
        }
      *colon = '\0';
      ro.user = user;
      ro.pass = colon + 1;
    }
  if (registry_opts_tls (ref.registry, o->tls_verify, &ro, err) < 0)
    goto out;
  if (blob_read (r->manifest_digest, INGEST_JSON_MAX, &mbody, &mlen, err) < 0
      || manifest_parse (mbody, mlen, &m, err) < 0 || layers_check (&m, err) < 0)
    goto out;
  {
    const char *fmt = o->format ? (strcmp (o->format, "oci") == 0 ? "oci" : "docker")
                      : (r->manifest_media_type && strcmp (r->manifest_media_type, MT_DOCKER_MANIFEST) == 0) ? "docker"
                                                                                                             : "oci";
    if (push_convert_manifest (mbody, mlen, fmt, &out, &olen, &mt, err) < 0)
      goto out;
  }
  refname = image_ref_string (&ref);
  if (!o->quiet)
    fprintf (stderr, "Pushing %s\n", refname);
  from = source_repo (r, &ref);
  reg = registry_new (ref.registry, ref.repo, &ro);
  registry_set_push (reg, from);
  blobs = xzalloc (sizeof *blobs * (m.nlayers + 1));
  for (size_t i = 0; i < m.nlayers; i++)
    blobs[i] = (struct push_blob){ m.layers[i].digest, m.layers[i].size };
  blobs[m.nlayers] = (struct push_blob){ m.config.digest, m.config.size };
  if (push_blobs (reg, blobs, m.nlayers + 1, from, chunk, o->quiet, err) < 0)
    goto out;
  if (!o->quiet)
    fprintf (stderr, "Writing manifest to image destination\n");
  if (registry_put_manifest (reg, ref.tag ? ref.tag : ref.digest, out, olen, mt, digest, err) < 0)
    goto out;
  if (o->digestfile)
    {
      cleanup_free char *line = xasprintf ("%s", digest);
      if (write_file_atomic (o->digestfile, line, strlen (line), 0644, err) < 0)
        goto out;
    }
  rc = 0;
out:
  if (rc < 0)
    cella_error_wrap (err, "push %s", src);
  manifest_clear (&m);
  registry_free (reg);
  image_ref_clear (&ref);
  image_record_free (r);
  return rc;
}

int
cmd_push (int argc, char **argv)
{
  struct push_opts o = { 0 };
  cella_error_t err = NULL;
  char digest[72];
  int status, first = cli_parse_command (push_table, &o, argc, argv, "cella push [OPTIONS] IMAGE [DESTINATION]",
                                         "Push an image of the store to a registry (DESTINATION: REGISTRY/REPO[:TAG], "
                                         "default IMAGE's own name); prints the manifest digest.",
                                         1, "an image is required", &status);
  if (first > 0)
    {
      if (argc - first > 2)
        {
          cella_error (&err, 0, "push: expected IMAGE [DESTINATION], got %d arguments", argc - first);
          status = cella_error_print (&err);
        }
      else if (tool_push (argv[first], first + 1 < argc ? argv[first + 1] : NULL, &o, digest, &err) < 0)
        status = cella_error_print (&err);
      else
        puts (digest);
    }
  free (o.tls_verify);
  free (o.creds);
  free (o.format);
  free (o.digestfile);
  free (o.chunk_size);
  return status;
}
