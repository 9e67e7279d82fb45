/* Unpacking an image layer (a tar stream, maybe compressed) into a directory, safely: every
 * entry lands beneath the directory, nothing is created through a symlink, and OCI whiteouts
 * become overlayfs whiteouts (UNPACK_LAYER) or deletions (UNPACK_FLAT). */
#ifndef CELLA_IMAGE_UNPACK_H
#define CELLA_IMAGE_UNPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

enum unpack_mode {
  UNPACK_LAYER, /* an OCI layer into an EMPTY dir, kept as an overlayfs lower layer: an OCI whiteout
                   `dir/.wh.NAME` becomes an overlay whiteout (char device 0:0 named NAME; mknod of a
                   0:0 whiteout needs no CAP_MKNOD since Linux 5.8); `dir/.wh..wh..opq` makes `dir`
                   opaque: xattr "trusted.overlay.opaque"="y" as root, "user.overlay.opaque"="y" when
                   opts->user_xattr (rootless overlays are mounted with `userxattr`) */
  UNPACK_FLAT,  /* apply a layer ON TOP of an existing tree in dir (flattening layers into one rootfs,
                   for the proot and vm backends, and for `import` of a plain rootfs tarball):
                   `.wh.NAME` removes NAME (recursively), `.wh..wh..opq` empties the directory's
                   existing contents (only what earlier layers put there, not entries of this layer) */
};

struct unpack_opts {
  enum unpack_mode mode;
  bool user_xattr;      /* opaque dirs via user.overlay.opaque (rootless) */
  bool set_owner;       /* chown entries to the archive's uid/gid (root, or inside a mapped user ns);
                           when false, or when chown fails with EPERM/EINVAL (an unmapped id), files
                           stay owned by the caller; each entry whose archive owner is not the caller's
                           is then counted in owner_failures, not an error */
  bool skip_devices;    /* char/block device nodes and fifos are skipped (counted), e.g. rootless; a
                           device node whose mknod is refused (EPERM: no CAP_MKNOD) is skipped too */
  uint64_t max_bytes;   /* 0, or the most bytes the uncompressed stream may hold; the sizes of its
                           regular files count too (a sparse entry cannot claim more than this) */
  uint64_t max_entries; /* 0, or the most archive entries (headers) the layer may hold */
};

enum unpack_limit { UNPACK_WITHIN_LIMITS, UNPACK_OVER_BYTES, UNPACK_OVER_ENTRIES };

struct unpack_stats {
  uint64_t entries, bytes; /* entries written (whiteouts included), bytes of file data */
  uint64_t skipped_devices, owner_failures;
  uint64_t stream_bytes;  /* bytes of the uncompressed stream read */
  char diff_id[72];       /* sha256 of the whole uncompressed stream ("sha256:…"), set on success */
  enum unpack_limit over; /* which limit stopped the unpack, if one did */
};

/* Read a tar stream from fd (plain, gzip, zstd, xz or bzip2: detected from the data, not a name)
 * and write it under dirfd (any fd of a directory, O_PATH is fine). Entry names are taken as
 * relative (a leading `/` or `./` is dropped); a `..` component, a name longer than PATH_MAX or a
 * component longer than NAME_MAX, a parent that is a symlink, and a hard link to something that
 * is not a non-directory, non-symlink entry beneath dirfd are refused. A later entry replaces an
 * earlier one of the same name. Overlay xattrs (trusted.overlay.*, user.overlay.*) in the archive
 * are never applied: only whiteouts make them. Directory modes and times are applied last.
 * stats may be NULL. The whole uncompressed stream goes through sha256 (stats->diff_id, what an
 * image config's rootfs.diff_ids lists) and counts against opts->max_bytes; headers count against
 * opts->max_entries: going over either stops the unpack with an error and stats->over set.
 * Returns 0, or a negative value with *err naming the entry; what was written before an error
 * stays (the caller removes the directory). */
int layer_unpack (int fd, int dirfd, const struct unpack_opts *opts, struct unpack_stats *stats, cella_error_t *err);

/* The diff_id of the layer in fd without unpacking it: the sha256 of its uncompressed stream (to
 * the end of the data, past the tar's end marker), stopped with stats->over = UNPACK_OVER_BYTES
 * beyond max_bytes (0: no limit). stats->stream_bytes and diff_id are set. */
int layer_diff_id (int fd, uint64_t max_bytes, struct unpack_stats *stats, cella_error_t *err);

/* Each entry name of the tar in fd (from offset 0), read as layer_unpack reads it and within the
 * same limits (stats->over says which one stopped it; stats->entries counts the headers), its
 * data read past and dropped; fn returns non-zero to stop early. */
int layer_list (int fd, uint64_t max_bytes, uint64_t max_entries, int (*fn) (const char *name, void *ud), void *ud,
                struct unpack_stats *stats, cella_error_t *err);

#endif
