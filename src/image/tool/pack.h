/* Packing a directory tree into a layer tar (`cella image import DIR`, `save`, `export`), with
 * taps on the compressed and the uncompressed stream for the blob digest and the diff_id. */
#ifndef CELLA_IMAGE_PACK_H
#define CELLA_IMAGE_PACK_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

enum pack_compression { PACK_NONE, PACK_GZIP, PACK_ZSTD };

struct pack_opts {
  enum pack_compression compression;
  bool overlay_upper;      /* the dir is an overlayfs upper dir: 0:0 char devices become `.wh.NAME`
                              entries, opaque dirs (trusted.overlay.opaque or user.overlay.opaque = y)
                              get a `.wh..wh..opq` entry; overlay xattrs are not stored */
  bool self_as_root;       /* store what our own uid/gid owns as 0 (a rootless container's root, packed
                              where no user namespace maps it back) */
  char *const *skip_stubs; /* paths relative to the root ("etc/hosts", NULL-terminated): left out
                              where they are an empty file or directory (the mount points a
                              container runtime made in an upper dir) */
  bool reproducible;       /* no atime/ctime (entries are always sorted by name and owners are always
                              numeric; the gzip header never carries a time) */
};

/* Every byte written to out_fd is also passed to `tap` and every byte of the uncompressed tar to
 * `tap_raw` (either may be NULL); with PACK_NONE both see the same bytes. */
typedef void (*pack_tap_fn) (const void *buf, size_t len, void *ud);

/* Write a pax tar of the tree under dirfd to out_fd: entry names relative to dirfd, no leading
 * "./", the root itself not written, directories before their contents, symlinks never
 * followed, sockets skipped, files with several links stored once and then as hard links,
 * xattrs stored (but not security.selinux, a host label). Returns 0, or a negative value with
 * *err naming the path. */
int layer_pack (int dirfd, int out_fd, const struct pack_opts *opts, pack_tap_fn tap, void *tap_ud, pack_tap_fn tap_raw,
                void *tap_raw_ud, cella_error_t *err);

#endif
