/* The image tool (build/cella-image): the image commands that need libcurl and libarchive. `cella`
 * runs it for pull, import, save, export, login, logout and build (src/cli/image.c). */
#ifndef CELLA_IMAGE_TOOL_H
#define CELLA_IMAGE_TOOL_H

#include <stddef.h>

#include "cli/options.h"
#include "util/util.h"

int cmd_pull (int argc, char **argv);
int cmd_import (int argc, char **argv);
int cmd_save (int argc, char **argv);
int cmd_export (int argc, char **argv);
int cmd_login (int argc, char **argv);
int cmd_logout (int argc, char **argv);
int cmd_build (int argc, char **argv);

/* Pull one reference into the store; the image id out. */
int tool_pull (const char *ref, bool quiet, const char *tls_verify, const char *platform, const char *creds,
               char id_out[72], cella_error_t *err);

/* Import a rootfs directory as a one-layer image (also used by build); id out. */
int import_rootfs_dir (const char *dir, char *const *names, const char *source, char id_out[72], cella_error_t *err);

#endif
