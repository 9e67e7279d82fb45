/* Parsing image manifests and configs (manifest.h). */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "manifest.h"

static int
load (const void *buf, size_t len, const char *what, json_t **out, cella_error_t *err)
{
  json_error_t je;
  *out = json_loadb (buf, len, JSON_REJECT_DUPLICATES, &je);
  if (*out == NULL)
    return cella_error (err, 0, "%s: not valid JSON: %s (line %d)", what, je.text, je.line);
  if (!json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      return cella_error (err, 0, "%s: not a JSON object", what);
    }
  return 0;
}

static int
descriptor_parse (json_t *o, const char *what, struct oci_descriptor *d, cella_error_t *err)
{
  json_t *mt = json_object_get (o, "mediaType"), *size = json_object_get (o, "size");
  const char *dg = json_string_value (json_object_get (o, "digest"));
  if (!json_is_object (o))
    return cella_error (err, 0, "%s: not a descriptor object", what);
  if (dg == NULL || !digest_valid (dg))
    return cella_error (err, 0, "%s: no valid sha256 digest", what);
  if (mt && !json_is_string (mt))
    return cella_error (err, 0, "%s: mediaType is not a string", what);
  if (size && (!json_is_integer (size) || json_integer_value (size) < 0))
    return cella_error (err, 0, "%s: size is not a non-negative integer", what);
  snprintf (d->digest, sizeof d->digest, "%s", dg);
  d->media_type = mt ? xstrdup (json_string_value (mt)) : NULL;
  d->size = size ? json_integer_value (size) : -1;
  return 0;
}

void
manifest_clear (struct oci_manifest *m)
{
  free (m->media_type);
  free (m->config.media_type);
  for (size_t i = 0; i < m->nlayers; i++)
    free (m->layers[i].media_type);
  free (m->layers);
  memset (m, 0, sizeof *m);
}

int
manifest_parse (const void *buf, size_t len, struct oci_manifest *m, cella_error_t *err)
{
  json_t *o, *layers, *mt, *l;
  size_t i;
  int r = -1;
  memset (m, 0, sizeof *m);
  if (load (buf, len, "manifest", &o, err) < 0)
    return -1;
  layers = json_object_get (o, "layers");
  mt = json_object_get (o, "mediaType");
  if (json_integer_value (json_object_get (o, "schemaVersion")) != 2)
    cella_error (err, 0, "manifest: schemaVersion is not 2");
  else if (mt && !json_is_string (mt))
    cella_error (err, 0, "manifest: mediaType is not a string");
  else if (!json_is_array (layers))
    cella_error (err, 0, "manifest: no layers list");
  else if (descriptor_parse (json_object_get (o, "config"), "manifest: config", &m->config, err) == 0)
    {
      m->media_type = mt ? xstrdup (json_string_value (mt)) : NULL;
      m->layers = xzalloc (sizeof *m->layers * (json_array_size (layers) + 1));
      r = 0;
      json_array_foreach (layers, i, l)
        {
          cleanup_free char *what = xasprintf ("manifest: layer %zu", i);
          if (descriptor_parse (l, what, &m->layers[i], err) < 0)
            {
              r = -1;
              break;
            }
          m->nlayers++;
        }
    }
  json_decref (o);
  if (r < 0)
    manifest_clear (m);
  return r;
}

int
config_diff_ids_parse (const void *buf, size_t len, char ***diff_ids, cella_error_t *err)
{
  json_t *o, *ids, *d;
  char **v;
  size_t i;
  *diff_ids = NULL;
  if (load (buf, len, "image config", &o, err) < 0)
    return -1;
  ids = json_object_get (json_object_get (o, "rootfs"), "diff_ids");
  if (!json_is_array (ids))
    {
      json_decref (o);
      return cella_error (err, 0, "image config: no rootfs.diff_ids list");
    }
  v = xzalloc (sizeof *v);
  json_array_foreach (ids, i, d)
    {
      if (!json_is_string (d) || !digest_valid (json_string_value (d)))
        {
          strv_free (v);
          json_decref (o);
          return cella_error (err, 0, "image config: rootfs.diff_ids[%zu] is not a sha256 digest", i);
        }
      strv_push (&v, json_string_value (d));
    }
  json_decref (o);
  *diff_ids = v;
  return 0;
}
