/* The image store (DESIGN.md "On disk"), the part every cella command may need: reading image
 * records and configs, names, tags, removal and pruning. Writing blobs and layers (pull, import)
 * happens in the image tool (src/image/tool/), through the functions marked "writer" here.
 *
 *   $data/blobs/sha256/<hex>      manifests, configs and layer blobs, verified before named
 *   $data/layers/<hex>/           each layer blob unpacked once (hex of the blob's digest), named
 *                                 only after its uncompressed sha256 matched the image config
 *   $data/diffids/<hex>           that uncompressed sha256 (the layer's diff_id), one line
 *   $data/images/records/<hex>.json  one per image, keyed by its MANIFEST digest; written once and
 *                                 never changed (a same-named record must hold the same image)
 *   $data/images/index.json       {"names": {"docker.io/library/busybox:latest": "sha256:<key>"},
 *                                  "digests": {"docker.io/library/busybox@sha256:<d>": "sha256:<key>"}}
 *   $data/images/gc.lock          writers hold it shared, prune and rm hold it exclusive
 *   $data/images/index.lock       held while index.json is rewritten
 *
 * An image's id, as `images` and `inspect` show it, is its config digest, like docker's and
 * podman's; its key (what names point at, what a container's plan records) is its manifest digest.
 * Stores written before records were keyed by manifest digest hold records named by their config
 * digest: they are read as they are (their key is then the config digest).
 *
 * Everything appears by rename(2) or link(2) of a finished temp file or directory (".tmp-*"), so
 * a crash leaves either nothing or a whole object; leftovers are removed by the next prune or pull. */
#ifndef CELLA_IMAGE_STORE_H
#define CELLA_IMAGE_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "util/util.h"

struct image_layer {
  char *digest;     /* blob digest "sha256:…" */
  char *media_type; /* OCI or Docker layer media type */
  int64_t size;     /* compressed size */
  char *diff_id;    /* sha256 of its uncompressed tar, checked against the config (NULL in old records) */
};

struct image_record {
  char *key;             /* what names point at: the manifest digest (old stores: the config digest) */
  char *id;              /* config digest, "sha256:…" */
  char *manifest_digest; /* the manifest we stored, "sha256:…" */
  char *manifest_media_type;
  char *repo_digest;          /* the digest the registry knows it by (a manifest list's, when pulled via one) */
  struct image_layer *layers; /* bottom first, as in the manifest */
  size_t nlayers;
  int64_t created; /* when it entered the store, unix seconds */
  int64_t size;    /* sum of the layer blobs */
  char *source;    /* "pull docker.io/library/busybox:latest", "import FILE" */
  char **names;    /* names pointing at it (filled by the readers below) */
};

struct image_config {
  char **entrypoint, **cmd, **env; /* NULL when absent */
  char *workdir, *user;
  char **exposed_ports; /* "80/tcp" */
  char **volumes;       /* "/data" */
  char **labels;        /* "key=value" */
  char *os, *arch, *created, *author;
  char **diff_ids;
  /* Healthcheck: Test ({"CMD", ...}, {"CMD-SHELL", line}, {"NONE"}; NULL when absent), the
   * durations in ns and Retries (0: not given) */
  char **health_test;
  long long health_interval, health_timeout, health_start_period;
  int health_retries;
};

void image_record_free (struct image_record *r);
void image_config_clear (struct image_config *c);

/* $data/blobs/sha256/<hex>, $data/layers/<hex>, $data/diffids/<hex> (malloc'd); digest "sha256:<hex>". */
char *store_blob_path (const char *digest);
char *store_layer_path (const char *digest);
char *store_diff_id_path (const char *digest);

/* Create the store's directories. */
int store_init (cella_error_t *err);

/* gc.lock: shared for writers (pull, import), exclusive for rm and prune. Returns the fd. */
int store_lock (bool exclusive, cella_error_t *err);

/* Look an image up by name (any form `image_ref_parse` takes), by id or manifest digest or a unique
 * prefix of one (≥ 4 hex digits, with or without "sha256:"; records sharing one config id are one
 * image: the newest is taken), or by NAME[:TAG]@DIGEST: an image of repository NAME whose manifest
 * (or the index it was pulled through) has that digest, as docker's reference store resolves it;
 * the tag is then ignored, and an image of another repository is not found. 0 found, 1 not found,
 * -1 error. */
int image_lookup (const char *ref, struct image_record **out, cella_error_t *err);
int image_record_read (const char *key, struct image_record **out, cella_error_t *err);
/* Every record, with its names, newest first. */
int image_list (struct image_record ***out, size_t *n, cella_error_t *err);
void image_list_free (struct image_record **v, size_t n);

/* The image's config blob, parsed. */
int image_config_load (const struct image_record *r, struct image_config *c, cella_error_t *err);
/* The same from the config blob's JSON (any value: what is missing or of another type stays NULL);
 * a pure function, for the fuzz targets too. */
void image_config_from_json (json_t *o, struct image_config *c);
/* A record file's JSON (`path` names it in messages) into a new record, names not filled; its key is
 * its manifest digest (its id when it has none), which the reader checks against the file's name. */
int image_record_parse (json_t *o, const char *path, struct image_record **out, cella_error_t *err);
/* The unpacked layer dirs, top-most first (for overlay's lowerdir); errors if one is missing. */
int image_layer_dirs (const struct image_record *r, char ***dirs, cella_error_t *err);

/* writer: store the record under r->key, once: when a record of that key exists, it must be the
 * same image (id, manifest, layers and their diff_ids), else it is an error and nothing changes. */
int image_record_write (const struct image_record *r, cella_error_t *err);
/* Point each name and each digest reference ("REGISTRY/REPO@sha256:…") at key, in one update of
 * the index (a name moves from its old image; digest references stay until the image goes). */
int image_refs_set (char *const *names, char *const *digest_refs, const char *key, cella_error_t *err);
int image_name_set (const char *name, const char *key, cella_error_t *err);
/* Remove one name; 1 if it was not there. */
int image_name_remove (const char *name, cella_error_t *err);

/* `image rm`: a name removes that name (and the image when it was its last name and no container
 * uses it); an id removes the image with all its names (refused if it has several names or a
 * container uses it, unless force: then the names go and the record stays while in use). Prints
 * "Untagged: …" / "Deleted: …" lines to stdout. */
int image_remove (const char *ref, bool force, cella_error_t *err);

/* `image prune`: records without names that no container uses (all: every record no container
 * uses), then blobs and layers no record references, then leftovers of interrupted writes.
 * Prints what was removed; reclaimed bytes in *freed. */
int image_prune (bool all, int64_t *freed, cella_error_t *err);

/* Keys of images some container uses (from every container's plan), NULL-terminated. */
char **image_ids_in_use (void);

#endif
