/* A layer from two whole trees: what a step changed, as an overlay upper dir. cella build's RUN in
 * a VM (the vm backend hands back the guest's root as a tree, not an upper dir): the tree after
 * the step against the tree before it (the stage's layers, flattened) gives the upper dir the ns
 * backend's overlay would have written.
 *
 * Rules, per name, walking both trees with *at() calls and O_NOFOLLOW only:
 * - only in `after`, or another file type than in `before`: moved (renameat, whole subtree) into
 *   upper;
 * - a non-directory in both: moved into upper when its mode, owner, size, mtime (seconds), link
 *   text, xattrs (overlay's own aside) or content differ, else left out;
 * - a directory in both: compared entry by entry; it is in upper (mode, owner, xattrs and mtime of
 *   `after`) when something below it is, or its own mode, owner or xattrs changed;
 * - only in `before`: a whiteout (a 0:0 character device) in upper.
 * A top-level `lost+found` that `before` lacks is left out (mkfs.ext4 makes one on every disk).
 * `after` is consumed (entries are moved out of it). upper must be empty. */
#ifndef CELLA_IMAGE_LAYERDIFF_H
#define CELLA_IMAGE_LAYERDIFF_H

#include "util/util.h"

struct layer_diff_stats {
  unsigned long long added, changed, deleted, dirs;
};

int image_layer_diff (int after, int before, int upper, struct layer_diff_stats *st, cella_error_t *err);

#endif
