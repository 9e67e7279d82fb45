/* An image's JSON documents parsed into plain structs: bytes in, struct out, nothing else read or
 * written (the fuzz targets call them as they are). They are untrusted input: every digest must be
 * "sha256:" + 64 lowercase hex digits and every size a non-negative integer, or the document is
 * refused with an error that names what is wrong. */
#ifndef CELLA_IMAGE_MANIFEST_H
#define CELLA_IMAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct oci_descriptor {
  char *media_type; /* NULL when absent (old layouts, docker-archive layers) */
  char digest[72];  /* "sha256:<hex>" */
  int64_t size;     /* -1 when absent */
};

/* An OCI image manifest or a Docker schema2 manifest. */
struct oci_manifest {
  char *media_type; /* the body's mediaType, NULL when absent */
  struct oci_descriptor config;
  struct oci_descriptor *layers; /* bottom first */
  size_t nlayers;
};

int manifest_parse (const void *buf, size_t len, struct oci_manifest *m, cella_error_t *err);
void manifest_clear (struct oci_manifest *m);

/* An image config's rootfs.diff_ids (NULL-terminated, bottom layer first; possibly empty). A
 * config without rootfs.diff_ids, or with anything but digests in it, is an error. */
int config_diff_ids_parse (const void *buf, size_t len, char ***diff_ids, cella_error_t *err);

#endif
