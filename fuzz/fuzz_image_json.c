/* What a registry or an image archive says about an image: a manifest or an index (OCI or Docker
 * schema2; src/image/tool/registry.c decides what it is, ingest.c picks a platform from an index),
 * the image config (src/image/store.c: Entrypoint, Cmd, Env, User ... become the container's
 * process) and the store's image record. Every byte comes from the registry or the archive. */
#include "fuzz.h"

#include "image/store.h"
#include "image/tool/ingest.h"
#include "image/tool/registry.h"

static void
media_type (const uint8_t *data, size_t size)
{
  static const char *const content_types[]
      = { NULL, "application/json", MT_OCI_MANIFEST "; charset=utf-8", MT_DOCKER_LIST };
  for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
    {
      cella_error_t err = NULL;
      char *mt = NULL;
      if (registry_manifest_media_type ((const char *) data, size, content_types[i], "fuzz", &mt, &err) == 0)
        FUZZ_CHECK (mt != NULL, "a media type was accepted but not returned");
      free (mt);
      cella_error_free (&err);
    }
}

static void
index_platforms (json_t *o)
{
  static const char *const platforms[] = { NULL, "linux/arm/v7", "linux/arm64", "windows/amd64", "bad" };
  for (size_t i = 0; i < sizeof platforms / sizeof platforms[0]; i++)
    {
      cella_error_t err = NULL;
      const char *digest = NULL, *mt = NULL;
      if (index_pick (o, platforms[i], &digest, &mt, &err) == 0)
        FUZZ_CHECK (digest != NULL && strncmp (digest, "sha256:", 7) == 0, "picked a manifest without a digest");
      cella_error_free (&err);
    }
}

static void
config_and_record (json_t *o)
{
  struct image_config c;
  struct image_record *r = NULL;
  cella_error_t err = NULL;
  image_config_from_json (o, &c);
  image_config_clear (&c);
  if (image_record_parse (o, "record.json", &r, &err) == 0)
    {
      FUZZ_CHECK (r->id != NULL && strlen (r->id) == 71, "a record with an odd id");
      image_record_free (r);
    }
  cella_error_free (&err);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  json_t *o;
  media_type (data, size);
  o = json_loadb ((const char *) data, size, 0, NULL);
  if (o == NULL)
    return 0;
  index_platforms (o);
  config_and_record (o);
  json_decref (o);
  return 0;
}
