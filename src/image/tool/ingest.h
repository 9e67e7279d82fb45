/* Putting things into the image store (store.h): blobs verified before they are named, layers
 * unpacked once, image records built from a manifest. Shared by pull, import and build. */
#ifndef CELLA_IMAGE_INGEST_H
#define CELLA_IMAGE_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/options.h"
#include "image/store.h"
#include "unpack.h"

/* What one pull or import may unpack (docs/images.md "Limits"): per layer, the bytes of its
 * uncompressed tar and its number of entries; per pull or import, the uncompressed bytes of all the
 * layers it unpacks. 0 is no limit. */
struct ingest_limits {
  uint64_t layer_bytes, image_bytes, layer_entries;
  uint64_t used; /* bytes unpacked so far by this pull or import */
};

#define INGEST_LAYER_BYTES_DEFAULT (16ULL << 30)
#define INGEST_IMAGE_BYTES_DEFAULT (64ULL << 30)
#define INGEST_LAYER_ENTRIES_DEFAULT 1000000ULL

/* The limit options as given (pull and import share the rows). */
struct limit_args {
  char *max_layer_size, *max_image_size, *max_layer_entries;
};
#define LIMIT_OPTION_ROWS(base)                                                                                            \
  { "max-layer-size",                                                                                                      \
    0,                                                                                                                     \
    OPT_STRING,                                                                                                            \
    (base) + offsetof (struct limit_args, max_layer_size),                                                                 \
    "SIZE",                                                                                                                \
    "Refuse a layer whose uncompressed tar is larger (default 16G, or $CELLA_MAX_LAYER_SIZE; 0: no limit)" },              \
      { "max-image-size", 0,                                                                                               \
        OPT_STRING,       (base) + offsetof (struct limit_args, max_image_size),                                           \
        "SIZE",           "Refuse to unpack more than this in all (default 64G, or $CELLA_MAX_IMAGE_SIZE; 0: no limit)" }, \
  {                                                                                                                        \
    "max-layer-entries", 0, OPT_STRING, (base) + offsetof (struct limit_args, max_layer_entries), "N",                     \
        "Refuse a layer with more files, directories and links (default 1000000, or $CELLA_MAX_LAYER_ENTRIES; 0: none)"    \
  }

/* Each limit from its option, else $CELLA_MAX_LAYER_SIZE / $CELLA_MAX_IMAGE_SIZE /
 * $CELLA_MAX_LAYER_ENTRIES, else "max_layer_size" / "max_image_size" / "max_layer_entries" in
 * cella's config.json (ref.h), else the default; a bad value is an error naming where it came from.
 * a may be NULL (no options). */
int ingest_limits_init (struct ingest_limits *l, const struct limit_args *a, cella_error_t *err);
void limit_args_free (struct limit_args *a);

/* Remove temp files and dirs that interrupted pulls and imports left (those nobody holds a lock on). */
void ingest_sweep (void);

bool blob_present (const char *digest);

/* A temp file for a blob in the store's blob dir, locked while we write it; *path malloc'd. */
int blob_tmp_open (char **path, cella_error_t *err);
/* fsync fd, rename the temp file to blobs/sha256/<hex>. */
int blob_commit (int fd, const char *tmp_path, const char *digest, cella_error_t *err);

/* Store bytes or a file's contents (from offset 0) as a blob; digest out. With `expected`, a
 * different digest is an error and nothing is stored; the source is hashed even when the store
 * has that blob already, so a damaged or crafted source is refused all the same. */
int blob_put_mem (const void *buf, size_t len, char digest[72], cella_error_t *err);
int blob_put_fd (int fd, const char *expected, char digest[72], int64_t *size, cella_error_t *err);

/* A stored blob's bytes (at most max; more is an error), NUL-terminated. Whatever an image's JSON
 * says is read from here, the verified copy, never from the source it came from. */
int blob_read (const char *digest, size_t max, char **buf, size_t *len, cella_error_t *err);

/* The most bytes of a manifest or an image config we read (containerd takes 4 MiB manifests). */
#define INGEST_JSON_MAX (16 << 20)

/* Unpack the stored layer blob into layers/<hex> unless it is there already, checking its diff_id
 * (the sha256 of its uncompressed tar) against want (NULL: whatever it is): a layer dir is named
 * only when it matches, and an existing one is checked against the diff_id recorded when it was
 * unpacked. The unpack counts against lim (layer_bytes and layer_entries, and what is left of
 * image_bytes); over a limit, the error names the layer and the limit, and nothing is kept.
 * diff_id out (may be NULL). */
int layer_ensure (const char *digest, const char *want, struct ingest_limits *lim, char diff_id[72],
                  cella_error_t *err);

/* The error for what (a layer, an archive) going over a limit: which one, and how to raise it. */
int ingest_limit_error (const char *what, enum unpack_limit over, bool by_image, const struct ingest_limits *lim,
                        cella_error_t *err);

/* Is this a layer media type we can unpack (tar, tar+gzip, tar+zstd; OCI or Docker)? */
bool layer_media_type_ok (const char *mt);

/* An image whose manifest is stored (as a blob) with its config and layer blobs. */
struct image_source {
  const char *manifest;    /* the manifest blob's digest: the image's key */
  const char *media_type;  /* as the registry or the index served it; NULL: the body's, else OCI */
  const char *repo_digest; /* the index it was reached through, or NULL */
  const char *source;      /* "pull REF", "import FILE" */
  char *const *names;      /* stored-form names to point at it; NULL for none */
  bool progress;           /* "Unpacking layer …" on stderr for each layer */
};

/* Record the image: its manifest and config are read from the store; each layer is unpacked
 * (layer_ensure, within lim) and its diff_id checked against the config's rootfs.diff_ids, in
 * order and in number; then the record is written (once: image_record_write) and the names and the
 * digest references REPO@MANIFEST (and REPO@INDEX) of each name's repository point at it. Any
 * mismatch is an error and nothing is recorded. id out (the config digest). */
int image_register (const struct image_source *src, struct ingest_limits *lim, char id[72], cella_error_t *err);

/* This machine's platform as OCI names it: "amd64", "arm64", ... and an optional variant. */
const char *platform_arch (void);

/* From an index or manifest list, the manifest for os/arch[/variant] (NULL: linux/this machine);
 * errors list what the index offers. */
int index_pick (json_t *index, const char *platform, const char **digest, const char **media_type, cella_error_t *err);

/* Call fn as root of a user namespace mapped the way rootless containers are (ns_run_mapped:
 * 0 → us, 1.. → our subordinate range), so that a container's files show the owners it sees;
 * as root, or without a range, fn runs here as we are. */
int ingest_run_mapped (int (*fn) (void *ud, cella_error_t *err), void *ud, cella_error_t *err);

/* Whether this process may set owners and trusted.* xattrs: root of the initial user namespace. */
bool ingest_privileged (void);

#endif
