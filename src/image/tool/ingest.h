/* Putting things into the image store (store.h): blobs verified before they are named, layers
 * unpacked once, image records built from a manifest. Shared by pull, import and build. */
#ifndef CELLA_IMAGE_INGEST_H
#define CELLA_IMAGE_INGEST_H

#include <jansson.h>
#include <stdint.h>

#include "image/store.h"

/* Remove temp files and dirs that interrupted pulls and imports left (those nobody holds a lock on). */
void ingest_sweep (void);

bool blob_present (const char *digest);

/* A temp file for a blob in the store's blob dir, locked while we write it; *path malloc'd. */
int blob_tmp_open (char **path, cella_error_t *err);
/* fsync fd, rename the temp file to blobs/sha256/<hex>. */
int blob_commit (int fd, const char *tmp_path, const char *digest, cella_error_t *err);

/* Store bytes or a file's contents (from offset 0) as a blob; digest out. With `expected`, a
 * different digest is an error and nothing is stored. */
int blob_put_mem (const void *buf, size_t len, char digest[72], cella_error_t *err);
int blob_put_fd (int fd, const char *expected, char digest[72], int64_t *size, cella_error_t *err);

/* Unpack the stored layer blob into layers/<hex> unless it is there already. */
int layer_ensure (const char *digest, cella_error_t *err);

/* Is this a layer media type we can unpack (tar, tar+gzip, tar+zstd; OCI or Docker)? */
bool layer_media_type_ok (const char *mt);

/* Record the image whose manifest (already stored as a blob, digest mdigest) is `manifest`, with its
 * config and layers already stored and unpacked, and point each name at it. id out (the config
 * digest). */
int image_register (json_t *manifest, const char *mdigest, const char *media_type, const char *repo_digest,
                    const char *source, char *const *names, char id[72], cella_error_t *err);

/* This machine's platform as OCI names it: "amd64", "arm64", ... and an optional variant. */
const char *platform_arch (void);

/* From an index or manifest list, the manifest for os/arch[/variant] (NULL: linux/this machine);
 * errors list what the index offers. */
int index_pick (json_t *index, const char *platform, const char **digest, const char **media_type, cella_error_t *err);

/* Whether this process may set owners and trusted.* xattrs: root of the initial user namespace. */
bool ingest_privileged (void);

#endif
