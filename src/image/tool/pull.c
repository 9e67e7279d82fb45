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

/* Download what is missing among blobs[0..n) (digest + size), with progress. */
static int
fetch_blobs (struct registry *reg, json_t **descs, size_t n, bool quiet, cella_error_t *err)
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
      const char *d = json_string_value (json_object_get (descs[i], "digest"));
      json_t *sz = json_object_get (descs[i], "size");
      bool dup = false;
      if (d == NULL || !digest_valid (d))
        {
          cella_error (err, 0, "the manifest names a blob without a valid digest");
          goto out;
        }
      for (size_t j = 0; j < m; j++)
        dup |= strcmp (reqs[j].digest, d) == 0;
      if (dup || blob_present (d))
        continue;
      reqs[m].digest = d;
      reqs[m].size = json_is_integer (sz) ? json_integer_value (sz) : -1;
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

struct pull_opts {
  bool quiet, from_run;
  char *tls_verify, *platform, *creds;
};

#define O(f) offsetof (struct pull_opts, f)
static const struct cli_option pull_table[] = {
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "No progress, only the image id" },
  { "tls-verify", 0, OPT_STRING, O (tls_verify), "BOOL", "Verify the registry's TLS certificate (default true; false also allows plain http)" },
  { "platform", 0, OPT_STRING, O (platform), "OS/ARCH[/VARIANT]", "Which image of a multi-platform image (default: linux/this machine)" },
  { "creds", 0, OPT_STRING, O (creds), "USER:PASS", "Credentials for this pull (default: from `cella login`)" },
  { "quiet-if-present", 0, OPT_FLAG, O (from_run), NULL, NULL },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

int
tool_pull (const char *refstr, bool quiet, const char *tls_verify, const char *platform, const char *creds,
           char id_out[72], cella_error_t *err)
{
  struct image_ref ref = { 0 };
  struct reg_opts ro = REG_OPTS_INIT;
  struct registry *reg = NULL;
  cleanup_free char *body = NULL, *mt = NULL, *name = NULL, *refname = NULL, *user = NULL, *source = NULL;
  cleanup_free char *body2 = NULL, *mt2 = NULL;
  char digest[72], mdigest[72], stored[72];
  const char *repo_digest = NULL;
  json_t *manifest = NULL, *layers, **descs = NULL;
  size_t len, n, i;
  cleanup_close int lock = -1;
  int rc = -1;

  if (image_ref_parse (refstr, &ref, err) < 0)
    return -1;
  if (store_init (err) < 0 || (lock = store_lock (false, err)) < 0)
    goto out;
  ingest_sweep ();
  if (registry_opts_tls (ref.registry, tls_verify, &ro, err) < 0)
    goto out;
  if (creds)
    {
      char *colon;
      user = xstrdup (creds);
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
  refname = image_ref_string (&ref);
  if (!quiet)
    fprintf (stderr, "Pulling %s\n", refname);
  reg = registry_new (ref.registry, ref.repo, &ro);
  if (registry_get_manifest (reg, ref.digest ? ref.digest : ref.tag, &body, &len, &mt, digest, err) < 0)
    goto out;
  manifest = json_loadb (body, len, 0, NULL);
  if (manifest == NULL)
    {
      cella_error (err, 0, "%s: the registry sent a manifest that is not JSON", refname);
      goto out;
    }
  if (index_type (mt))
    {
      const char *d, *dmt;
      /* keep the list too: its digest is what `NAME@DIGEST` of this image means */
      if (blob_put_mem (body, len, stored, err) < 0 || index_pick (manifest, platform, &d, &dmt, err) < 0)
        goto out;
      repo_digest = digest;
      d = xstrdup (d);
      json_decref (manifest);
      manifest = NULL;
      if (registry_get_manifest (reg, d, &body2, &len, &mt2, mdigest, err) < 0)
        {
          free ((char *) d);
          goto out;
        }
      free ((char *) d);
      free (mt);
      mt = steal_pointer (&mt2);
      free (body);
      body = steal_pointer (&body2);
      manifest = json_loadb (body, len, 0, NULL);
      if (manifest == NULL)
        {
          cella_error (err, 0, "%s: the registry sent a manifest that is not JSON", refname);
          goto out;
        }
    }
  else
    strcpy (mdigest, digest);
  if (!manifest_type_ok (mt))
    {
      cella_error (err, 0, "%s: unsupported manifest media type %s", refname, mt);
      goto out;
    }
  layers = json_object_get (manifest, "layers");
  if (!json_is_array (layers) || !json_is_object (json_object_get (manifest, "config")))
    {
      cella_error (err, 0, "%s: the manifest has no config or layers", refname);
      goto out;
    }
  for (i = 0; i < json_array_size (layers); i++)
    {
      const char *lmt = json_string_value (json_object_get (json_array_get (layers, i), "mediaType"));
      if (!layer_media_type_ok (lmt))
        {
          cella_error (err, 0, "%s: layer %zu has unsupported media type %s", refname, i, lmt);
          goto out;
        }
    }
  n = json_array_size (layers) + 1;
  descs = xzalloc (sizeof *descs * (n + 1));
  descs[0] = json_object_get (manifest, "config");
  for (i = 1; i < n; i++)
    descs[i] = json_array_get (layers, i - 1);
  if (blob_put_mem (body, len, stored, err) < 0 || fetch_blobs (reg, descs, n, quiet, err) < 0)
    goto out;
  for (i = 1; i < n; i++)
    {
      const char *d = json_string_value (json_object_get (descs[i], "digest"));
      if (!quiet && isatty (2))
        fprintf (stderr, "Unpacking layer %.19s\n", d);
      if (layer_ensure (d, err) < 0)
        goto out;
    }
  name = image_ref_name (&ref);
  source = xasprintf ("pull %s", refname);
  {
    char *names[] = { name, NULL };
    if (image_register (manifest, mdigest, mt, repo_digest, source, names, id_out, err) < 0)
      goto out;
  }
  if (!quiet)
    fprintf (stderr, "Digest: %s\nStored %s as %.19s\n", repo_digest ? repo_digest : mdigest, name, id_out);
  rc = 0;
out:
  if (rc < 0)
    cella_error_wrap (err, "pull %s", refstr);
  free (descs);
  json_decref (manifest);
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
  int status, first = cli_parse_command (pull_table, &o, argc, argv, "cella pull [OPTIONS] IMAGE[:TAG|@DIGEST]",
                                         "Pull an image from a registry into the store (short names use the default "
                                         "registry, docker.io unless $CELLA_DEFAULT_REGISTRY or config.json say otherwise).",
                                         1, "an image is required", &status);
  if (first > 0)
    {
      if (o.from_run)
        fprintf (stderr, "Unable to find image '%s' locally\n", argv[first]);
      if (tool_pull (argv[first], o.quiet, o.tls_verify, o.platform, o.creds, id, &err) < 0)
        status = cella_error_print (&err);
      else if (!o.from_run)
        puts (id);
    }
  free (o.tls_verify);
  free (o.platform);
  free (o.creds);
  return status;
}
