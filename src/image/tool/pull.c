/* cella pull: manifest (through a manifest list or index to this platform), config and layers from
 * an OCI/Docker registry into the store, each verified before it is named. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "image/ref.h"
#include "ingest.h"
#include "manifest.h"
#include "progress.h"
#include "registry.h"
#include "tool.h"

static bool
manifest_type_ok (const char *mt)
{
  return strcmp (mt, MT_OCI_MANIFEST) == 0 || strcmp (mt, MT_DOCKER_MANIFEST) == 0;
}

static bool
index_type (const char *mt)
{
  return strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0;
}

/* Download what is missing among descs[0..n), with progress. */
static int
fetch_blobs (struct registry *reg, const struct oci_descriptor *descs, size_t n, bool quiet, cella_error_t *err)
{
  struct blob_req *reqs = xzalloc (sizeof *reqs * (n + 1));
  char **tmps = xzalloc (sizeof *tmps * (n + 1));
  const char **names = xzalloc (sizeof *names * (n + 1));
  int64_t *totals = xzalloc (sizeof *totals * (n + 1));
  struct progress *pr = NULL;
  size_t m = 0;
  int rc = -1;
  for (size_t i = 0; i < n; i++)
    {
      const char *d = descs[i].digest;
      bool dup = false;
      for (size_t j = 0; j < m; j++)
        dup |= strcmp (reqs[j].digest, d) == 0;
      if (dup || blob_present (d))
        continue;
      reqs[m].digest = d;
      reqs[m].size = descs[i].size;
      reqs[m].fd = blob_tmp_open (&tmps[m], err);
      if (reqs[m].fd < 0)
        goto out;
      names[m] = d;
      totals[m] = reqs[m].size;
      m++;
    }
  if (m == 0)
    {
      rc = 0;
      goto out;
    }
  if (!quiet)
    pr = progress_new (m, names, totals, isatty (2));
  if (registry_get_blobs (reg, reqs, m, 4, pr ? progress_blob_cb : NULL, pr, err) < 0)
    goto out;
  for (size_t i = 0; i < m; i++)
    if (blob_commit (reqs[i].fd, tmps[i], reqs[i].digest, err) < 0)
      goto out;
  rc = 0;
out:
  progress_finish (pr);
  for (size_t i = 0; i < m; i++)
    {
      if (reqs[i].fd >= 0)
        close (reqs[i].fd);
      if (tmps[i])
        unlink (tmps[i]); /* gone already when committed */
      free (tmps[i]);
    }
  free (reqs);
  free (tmps);
  free (names);
  free (totals);
  return rc;
}

/* Before anything is downloaded: the manifest's types, and its blob sizes against the limits (a
 * compressed blob larger than the limit cannot unpack below it, give or take a header). */
static int
manifest_check (const struct oci_manifest *m, const char *mt, const struct ingest_limits *lim, cella_error_t *err)
{
  uint64_t total = 0;
  if (!manifest_type_ok (mt))
    return cella_error (err, 0, "unsupported manifest media type %s", mt);
  /* sizes are required (OCI image spec, Docker schema2): a download is bounded by them */
  if (m->config.size < 0)
    return cella_error (err, 0, "config %s: the manifest gives no size", m->config.digest);
  if (m->config.size > INGEST_JSON_MAX)
    return cella_error (err, 0, "config %s: %lld bytes, more than the %d an image config may have", m->config.digest,
                        (long long) m->config.size, INGEST_JSON_MAX);
  for (size_t i = 0; i < m->nlayers; i++)
    {
      const struct oci_descriptor *l = &m->layers[i];
      uint64_t size = (uint64_t) l->size;
      if (!layer_media_type_ok (l->media_type))
        return cella_error (err, 0, "layer %zu has unsupported media type %s", i + 1, l->media_type);
      if (l->size < 0)
        return cella_error (err, 0, "layer %s: the manifest gives no size", l->digest);
      total += size;
      if (lim->layer_bytes && size > lim->layer_bytes)
        return cella_error (
            err, 0,
            "layer %s: its blob alone is %llu bytes, more than the limit per layer (--max-layer-size or "
            "$CELLA_MAX_LAYER_SIZE)",
            l->digest, (unsigned long long) size);
      if (lim->image_bytes && total > lim->image_bytes)
        return cella_error (err, 0,
                            "layer %s: the image's blobs add up to more than the limit per pull (--max-image-size or "
                            "$CELLA_MAX_IMAGE_SIZE)",
                            l->digest);
    }
  return 0;
}

struct pull_opts {
  bool quiet, from_run;
  char *tls_verify, *platform, *creds;
  struct limit_args limits;
};

#define O(f) offsetof (struct pull_opts, f)
static const struct cli_option pull_table[] = {
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "No progress, only the image id" },
  { "tls-verify", 0, OPT_STRING, O (tls_verify), "BOOL",
    "Verify the registry's TLS certificate (default true; false also allows plain http)" },
  { "platform", 0, OPT_STRING, O (platform), "OS/ARCH[/VARIANT]",
    "Which image of a multi-platform image (default: linux/this machine)" },
  { "creds", 0, OPT_STRING, O (creds), "USER:PASS", "Credentials for this pull (default: from `cella login`)" },
  LIMIT_OPTION_ROWS (O (limits)),
  { "quiet-if-present", 0, OPT_FLAG, O (from_run), NULL, NULL },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static int
registry_opts (const char *tls_verify, const char *creds, const struct image_ref *ref, struct reg_opts *ro, char **user,
               cella_error_t *err)
{
  char *colon;
  if (registry_opts_tls (ref->registry, tls_verify, ro, err) < 0)
    return -1;
  if (creds == NULL)
    return 0;
  *user = xstrdup (creds);
  colon = strchr (*user, ':');
  if (colon == NULL)
    return cella_error (err, 0, "--creds: expected USER:PASS");
  *colon = '\0';
  ro->user = *user;
  ro->pass = colon + 1;
  return 0;
}

/* The manifest of ref: through an index or manifest list (stored too: its digest is what
 * NAME@DIGEST of this image means) to this platform's. Body, media type and digest out. */
static int
resolve_manifest (struct registry *reg, const struct image_ref *ref, const char *platform, char **body, size_t *len,
                  char **mt, char mdigest[72], char repo_digest[72], cella_error_t *err)
{
  json_t *index;
  const char *d, *dmt;
  cleanup_free char *pick = NULL;
  char stored[72];
  int rc;
  *repo_digest = '\0';
  if (registry_get_manifest (reg, ref->digest ? ref->digest : ref->tag, body, len, mt, mdigest, err) < 0)
    return -1;
  if (!index_type (*mt))
    return 0;
  index = json_loadb (*body, *len, 0, NULL);
  if (index == NULL)
    return cella_error (err, 0, "the registry sent an index that is not JSON");
  rc = blob_put_mem (*body, *len, stored, err) < 0 || index_pick (index, platform, &d, &dmt, err) < 0 ? -1 : 0;
  if (rc == 0)
    pick = xstrdup (d);
  json_decref (index);
  if (rc < 0)
    return -1;
  memcpy (repo_digest, mdigest, 72);
  free (*body);
  free (*mt);
  *body = NULL;
  *mt = NULL;
  return registry_get_manifest (reg, pick, body, len, mt, mdigest, err);
}

int
tool_pull (const char *refstr, const struct pull_args *a, char id_out[72], cella_error_t *err)
{
  struct image_ref ref = { 0 };
  struct reg_opts ro = REG_OPTS_INIT;
  struct registry *reg = NULL;
  struct ingest_limits lim;
  struct oci_manifest m = { 0 };
  cleanup_free char *body = NULL, *mt = NULL, *name = NULL, *refname = NULL, *user = NULL, *source = NULL;
  cleanup_free struct oci_descriptor *descs = NULL;
  char mdigest[72], repo_digest[72], stored[72];
  size_t len;
  cleanup_close int lock = -1;
  int rc = -1;

  if (image_ref_parse (refstr, &ref, err) < 0)
    return -1;
  if (ingest_limits_init (&lim, a->limits, err) < 0
      || registry_opts (a->tls_verify, a->creds, &ref, &ro, &user, err) < 0 || store_init (err) < 0
      || (lock = store_lock (false, err)) < 0)
    goto out;
  ingest_sweep ();
  refname = image_ref_string (&ref);
  if (!a->quiet)
    fprintf (stderr, "Pulling %s\n", refname);
  reg = registry_new (ref.registry, ref.repo, &ro);
  if (resolve_manifest (reg, &ref, a->platform, &body, &len, &mt, mdigest, repo_digest, err) < 0
      || manifest_parse (body, len, &m, err) < 0 || manifest_check (&m, mt, &lim, err) < 0)
    goto out;
  descs = xzalloc (sizeof *descs * (m.nlayers + 1));
  descs[0] = m.config;
  memcpy (descs + 1, m.layers, sizeof *descs * m.nlayers);
  if (blob_put_mem (body, len, stored, err) < 0 || fetch_blobs (reg, descs, m.nlayers + 1, a->quiet, err) < 0)
    goto out;
  name = image_ref_name (&ref);
  source = xasprintf ("pull %s", refname);
  {
    char *names[] = { name, NULL };
    struct image_source src = { .manifest = mdigest,
                                .media_type = mt,
                                .repo_digest = *repo_digest ? repo_digest : NULL,
                                .source = source,
                                .names = names,
                                .progress = !a->quiet && isatty (2) };
    if (image_register (&src, &lim, id_out, err) < 0)
      goto out;
  }
  if (!a->quiet)
    fprintf (stderr, "Digest: %s\nStored %s as %.19s\n", *repo_digest ? repo_digest : mdigest, name, id_out);
  rc = 0;
out:
  if (rc < 0)
    cella_error_wrap (err, "pull %s", refstr);
  manifest_clear (&m);
  registry_free (reg);
  image_ref_clear (&ref);
  return rc;
}

int
cmd_pull (int argc, char **argv)
{
  struct pull_opts o = { 0 };
  cella_error_t err = NULL;
  char id[72];
  int status,
      first = cli_parse_command (pull_table, &o, argc, argv, "cella pull [OPTIONS] IMAGE[:TAG|@DIGEST]",
                                 "Pull an image from a registry into the store (short names use the default "
                                 "registry, docker.io unless $CELLA_DEFAULT_REGISTRY or config.json say otherwise).",
                                 1, "an image is required", &status);
  if (first > 0)
    {
      struct pull_args a = {
        .quiet = o.quiet, .tls_verify = o.tls_verify, .platform = o.platform, .creds = o.creds, .limits = &o.limits
      };
      if (o.from_run)
        fprintf (stderr, "Unable to find image '%s' locally\n", argv[first]);
      if (tool_pull (argv[first], &a, id, &err) < 0)
        status = cella_error_print (&err);
      else if (!o.from_run)
        puts (id);
    }
  free (o.tls_verify);
  free (o.platform);
  free (o.creds);
  limit_args_free (&o.limits);
  return status;
}
