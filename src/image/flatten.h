/* A container root as a real directory: a copy of an image's layers merged the way overlayfs
 * merges them, for the backends that cannot mount an overlay (proot; the vm backend's ext4 disk).
 *
 * Regular file data is reflinked (FICLONE) where the filesystem can, else copied in the kernel
 * (copy_file_range), else read and written. Hard links inside a layer stay hard links (a file
 * linked N times is copied once and linked N-1 times); symlinks are copied as symlinks. Every
 * lookup is an *at() call with O_NOFOLLOW relative to a directory fd we hold: no symlink of the
 * image is ever followed, while reading it or while writing the copy. */
#ifndef CELLA_IMAGE_FLATTEN_H
#define CELLA_IMAGE_FLATTEN_H

#include <stdint.h>

#include "util/util.h"

/* Best first: a run reports the weakest one it had to use. */
enum copy_method { COPY_REFLINK, COPY_RANGE, COPY_READ_WRITE };

struct flatten_stats {
  uint64_t files; /* regular files whose data was copied (hard links not counted again) */
  uint64_t dirs;  /* directories created below dest */
  uint64_t symlinks;
  uint64_t hardlinks;         /* names made with linkat to a file copied earlier */
  uint64_t bytes;             /* regular file data, by size */
  uint64_t whiteouts_applied; /* whiteouts that hid something a lower layer had */
  /* The weakest method used for file data; COPY_REFLINK when no file had data. */
  enum copy_method method;
};

/* "reflink", "copy_file_range", "read/write". */
const char *copy_method_name (enum copy_method m);

/* Merge layers (top-most first, NULL-terminated; the last one is the bottom layer) into dest,
 * which must not exist and must not be inside any layer. dest is created 0755; on any error it
 * is removed again, nothing half-done is left.
 *
 * Overlay rules: a whiteout (char 0:0) hides what lower layers have at its name; an opaque
 * directory (trusted.overlay.opaque or user.overlay.opaque = "y") hides the lower layers' entries
 * under it; a directory merges with the same directory of lower layers down to the first layer
 * that has something else (or a whiteout) there.
 *
 * Kept: modes (set-id and sticky bits too), owners where chown is permitted (its EPERM and EINVAL
 * are ignored: unprivileged, or an id not mapped in our user namespace), atime and mtime
 * (directories' set after their contents), xattrs of files and directories except overlay's own
 * (trusted.overlay.*, user.overlay.*; failures to set one are ignored). Device nodes are made where
 * mknod is permitted, else skipped; fifos are made; sockets are skipped. st may be NULL. */
int image_flatten (char *const *layers, const char *dest, struct flatten_stats *st, cella_error_t *err);

/* Copy one tree the same way (no layers, no whiteout or opaque logic; a char 0:0 is copied as
 * the device it is): for a plain rootfs directory. dest must not exist nor be inside src. */
int tree_copy (const char *src, const char *dest, struct flatten_stats *st, cella_error_t *err);

#endif
