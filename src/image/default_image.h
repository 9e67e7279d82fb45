/* The embedded default image "busybox": a rootfs assembled on first use from the host's
 * statically linked busybox (Debian's busybox-static), so `cella run busybox` works
 * offline without a registry. */
#ifndef CELLA_DEFAULT_IMAGE_H
#define CELLA_DEFAULT_IMAGE_H

#include "util/util.h"

/* If `name` is an embedded image ("busybox" or "busybox:latest"), make sure its rootfs
 * exists under <data root>/images/busybox/rootfs, building it if missing or if the host
 * busybox changed since it was built, and store the rootfs path (malloc'd) in *rootfs_out.
 * Returns 0 on success, 1 with *rootfs_out = NULL when `name` is not an embedded image
 * (the caller reports "image not found"), or a negative value with *err filled.
 *
 * The busybox binary is $CELLA_BUSYBOX if set, else /bin/busybox or /usr/bin/busybox.
 * When the image is already built this costs two stat(2) calls and nothing else. */
int default_image_ensure (const char *name, char **rootfs_out, cella_error_t *err);

#endif
