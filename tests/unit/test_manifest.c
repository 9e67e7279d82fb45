/* Unit tests for the image manifest and config parsers (src/image/tool/manifest.c): what they take,
 * and every way an untrusted document is refused. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "image/tool/manifest.h"
#include "tap.h"

#define H4(c) c c c c
#define H64(c) H4 (H4 (H4 (c)))
#define DG(c) "sha256:" H64 (c)

static bool
manifest_refused (const char *text, const char *needle)
{
  struct oci_manifest m;
  cella_error_t err = NULL;
  bool ok = manifest_parse (text, strlen (text), &m, &err) < 0 && err && strstr (err->msg, needle);
  if (!ok)
    printf ("#   %s: %s\n", text, err ? err->msg : "accepted");
  cella_error_free (&err);
  return ok;
}

static void
test_manifest (void)
{
  static const char good[] = "{\"schemaVersion\": 2, \"mediaType\": "
                             "\"application/vnd.oci.image.manifest.v1+json\", "
                             "\"config\": {\"mediaType\": "
                             "\"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DG (
                                 "1") "\", \"size\": 12}, \"layers\": [{\"mediaType\": "
                                      "\"application/vnd.oci.image.layer.v1.tar+gzip\", "
                                      "\"digest\": \"" DG ("2") "\", \"size\": 34}, {\"digest\": \"" DG ("3") "\"}]}";
  struct oci_manifest m;
  cella_error_t err = NULL;
  CHECK (manifest_parse (good, strlen (good), &m, &err) == 0, "a manifest parses");
  CHECK (m.media_type && strcmp (m.media_type, "application/vnd.oci.image.manifest.v1+json") == 0
             && strcmp (m.config.digest, DG ("1")) == 0 && m.config.size == 12,
         "its media type and config");
  CHECK (m.nlayers == 2 && strcmp (m.layers[0].digest, DG ("2")) == 0 && m.layers[0].size == 34
             && m.layers[1].media_type == NULL && m.layers[1].size == -1,
         "its layers, bottom first; absent fields are NULL and -1");
  manifest_clear (&m);
  CHECK (manifest_refused ("", "not valid JSON"), "empty");
  CHECK (manifest_refused ("[]", "not a JSON object"), "an array");
  CHECK (manifest_refused ("{\"schemaVersion\": 1}", "schemaVersion"), "schema 1");
  CHECK (manifest_refused ("{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("1") "\"}}", "no layers"),
         "no layers");
  CHECK (manifest_refused ("{\"schemaVersion\": 2, \"layers\": []}", "config"), "no config");
  CHECK (manifest_refused ("{\"schemaVersion\": 2, \"config\": {\"digest\": "
                           "\"sha256:abc\"}, \"layers\": []}",
                           "digest"),
         "a short digest");
  CHECK (manifest_refused ("{\"schemaVersion\": 2, \"config\": {\"digest\": \"sha512:" H64 ("a") "\"}, \"layers\": []}",
                           "digest"),
         "another algorithm");
  CHECK (
      manifest_refused ("{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("A") "\"}, \"layers\": []}", "digest"),
      "upper-case hex");
  CHECK (
      manifest_refused (
          "{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("1") "\", \"size\": -1}, \"layers\": []}", "size"),
      "a negative size");
  CHECK (manifest_refused (
             "{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("1") "\", \"size\": \"9\"}, \"layers\": []}",
             "size"),
         "a size that is a string");
  CHECK (manifest_refused (
             "{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("1") "\"}, \"layers\": [{\"digest\": 5}]}",
             "layer 0"),
         "a layer without a digest, named by its index");
  CHECK (
      manifest_refused (
          "{\"schemaVersion\": 2, \"config\": {\"digest\": \"" DG ("1") "\"}, \"layers\": [], \"layers\": []}", "JSON"),
      "duplicate keys (one parser may see one, another the other)");
  CHECK (manifest_refused ("{\"schemaVersion\": 2, \"mediaType\": 3, \"config\": "
                           "{\"digest\": \"" DG ("1") "\"}, \"layers\": []}",
                           "mediaType"),
         "a mediaType that is not a string");
}

static int
diff_ids_of (const char *text, char ***ids, cella_error_t *err)
{
  return config_diff_ids_parse (text, strlen (text), ids, err);
}

static void
test_diff_ids (void)
{
  static const char good[] = "{\"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"" DG ("a") "\", \"" DG ("b") "\"]}}";
  char **ids = NULL;
  cella_error_t err = NULL;
  CHECK (diff_ids_of (good, &ids, &err) == 0 && strv_len (ids) == 2 && strcmp (ids[1], DG ("b")) == 0,
         "diff_ids, in order");
  strv_free (ids);
  CHECK (diff_ids_of ("{\"rootfs\": {\"diff_ids\": []}}", &ids, &err) == 0 && ids && ids[0] == NULL,
         "an empty list is a list");
  strv_free (ids);
  CHECK (diff_ids_of ("{}", &ids, &err) < 0 && strstr (err->msg, "rootfs.diff_ids"), "no rootfs.diff_ids");
  cella_error_free (&err);
  CHECK (diff_ids_of ("{\"rootfs\": {\"diff_ids\": [\"sha256:x\"]}}", &ids, &err) < 0
             && strstr (err->msg, "diff_ids[0]"),
         "a bad digest, named by its index");
  cella_error_free (&err);
  CHECK (diff_ids_of ("{\"rootfs\": {\"diff_ids\": [null]}}", &ids, &err) < 0, "a null in the list");
  cella_error_free (&err);
}

int
main (void)
{
  test_manifest ();
  test_diff_ids ();
  return tap_done ();
}
