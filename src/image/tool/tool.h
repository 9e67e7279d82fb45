/* The image tool (build/cella-image): the image commands that need libcurl and libarchive. `cella`
 * runs it for pull, push, import, save, export, login, logout and build (src/cli/image.c). */
#ifndef CELLA_IMAGE_TOOL_H
#define CELLA_IMAGE_TOOL_H

#include <stddef.h>

#include "util/options.h"
#include "util/util.h"

int cmd_pull (int argc, char **argv);
int cmd_import (int argc, char **argv);
int cmd_save (int argc, char **argv);
int cmd_export (int argc, char **argv);
int cmd_login (int argc, char **argv);
int cmd_logout (int argc, char **argv);
int cmd_build (int argc, char **argv);
int cmd_image_commit (int argc, char **argv);
int cmd_push (int argc, char **argv);
int cmd_fetch (int argc, char **argv);

struct image_record;
/* src looked up in the store, or, when it names the embedded busybox (`busybox` with no such store
 * image), that rootfs imported as a nameless store image: 0 with *r, or -1 ("not found" included). */
int tool_image_or_embedded (const char *src, struct image_record **r, bool *embedded, cella_error_t *err);

/* push.c, pure (unit tests): a layer media type in Docker schema2 (docker) or OCI terms, NULL when
 * that format has none for it; a manifest with the media types of format "oci" or "docker" (its own
 * bytes when it has them already), the new media type in *mt. */
const char *push_layer_media_type (const char *mt, bool docker);
int push_convert_manifest (const char *text, size_t len, const char *format, char **out, size_t *out_len, char **mt,
                           cella_error_t *err);

struct limit_args;
struct ingest_limits;

struct pull_args {
  bool quiet;
  const char *tls_verify, *platform, *creds; /* NULL: the defaults */
  const struct limit_args *limits;           /* NULL: from the environment, config.json, defaults */
};

/* Pull one reference into the store; the image id out. */
int tool_pull (const char *ref, const struct pull_args *a, char id_out[72], cella_error_t *err);

/* Import a rootfs directory as a one-layer image (also used by build); id out. */
int import_rootfs_dir (const char *dir, char *const *names, const char *source, struct ingest_limits *lim,
                       char id_out[72], cella_error_t *err);

#endif
