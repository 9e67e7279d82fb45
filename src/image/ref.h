/* Image references as docker and podman read them: [REGISTRY/]REPO[:TAG][@sha256:HEX]. */
#ifndef CELLA_IMAGE_REF_H
#define CELLA_IMAGE_REF_H

#include "util/util.h"

struct image_ref {
  char *registry; /* "docker.io", "127.0.0.1:5000", "quay.io" */
  char *repo;     /* "library/busybox" (docker.io's one-component names get "library/") */
  char *tag;      /* "latest" when neither a tag nor a digest was given; NULL with only a digest */
  char *digest;   /* "sha256:<64 hex>" or NULL */
};

/* A setting of cella's config.json: $XDG_CONFIG_HOME/cella/config.json (~/.config/cella/...),
 * /etc/cella/config.json as root. A string, or a number as text (malloc'd); NULL when absent. */
char *image_setting (const char *key);

/* The registry a short name ("busybox", "user/app") is looked up on: $CELLA_DEFAULT_REGISTRY, else
 * "default_registry" in $XDG_CONFIG_HOME/cella/config.json (root: /etc/cella/config.json), else
 * docker.io. */
const char *image_default_registry (void);

/* Parse a reference; errors name the reference and the rule it breaks. */
int image_ref_parse (const char *s, struct image_ref *out, cella_error_t *err);
void image_ref_clear (struct image_ref *r);
/* "REGISTRY/REPO:TAG", "REGISTRY/REPO@DIGEST" or "REGISTRY/REPO:TAG@DIGEST" (malloc'd). */
char *image_ref_string (const struct image_ref *r);
/* "REGISTRY/REPO:TAG" — the name a pulled image is stored under (the digest alone when no tag). */
char *image_ref_name (const struct image_ref *r);
/* "REGISTRY/REPO": the repository a reference names (malloc'd). */
char *image_ref_repo (const struct image_ref *r);
/* The repository of a stored name: "REGISTRY/REPO:TAG" or "REGISTRY/REPO@DIGEST" → "REGISTRY/REPO". */
char *image_name_repo (const char *name);
/* docker.io/library/busybox:latest → busybox:latest, for display (malloc'd). */
char *image_name_short (const char *full);

#endif
