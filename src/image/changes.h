/* What a container changed: its overlay upper dir read against the layers below it, as
 * `docker diff` reports it (A added, C changed, D deleted), for `cella diff`. */
#ifndef CELLA_IMAGE_CHANGES_H
#define CELLA_IMAGE_CHANGES_H

#include <stddef.h>

#include "util/util.h"

struct fs_change {
  char kind;  /* 'A', 'C' or 'D' */
  char *path; /* absolute in the container: "/etc/passwd" */
};

/* Walk upper (an overlayfs upper dir) and list its changes against lowers (top-most first,
 * NULL-terminated; may be empty): a whiteout (char 0:0) is D, so is an opaque directory
 * (trusted.overlay.opaque or user.overlay.opaque = "y", what replaced a deleted directory; what
 * is under it is then A); anything else is C when a lower layer has that path, else A. Every
 * directory of the upper dir is listed (overlay copies up the parents of what changes), so the
 * parents of a change are there as C. What cella made there itself to mount on (an empty file or
 * directory at one of mount_targets, NULL-terminated or NULL, that no lower layer has, and a
 * directory copied up only to hold such) is left out, as docker leaves out its init layer. Sorted by path, component by
 * component ("/a" and what is under it before "/a-b"), as docker lists them. No symlink is followed, in upper or in a
 * lower. */
int overlay_changes (const char *upper, char *const *lowers, char *const *mount_targets, struct fs_change **out,
                     size_t *n, cella_error_t *err);
void fs_changes_free (struct fs_change *v, size_t n);

/* The sort order: component by component. */
int fs_path_cmp (const char *a, const char *b);

#endif
