/* `cella cp`: copy between a host path and a path inside a container root, docker's rules:
 *   SRC a file:  DST an existing dir → DST/<basename>; DST ending in / and missing → error;
 *                else DST is the file (created or replaced; its parent must exist).
 *   SRC a dir:   DST missing → created as a copy of SRC; DST an existing dir → DST/<basename>,
 *                or, when SRC ends in "/.", SRC's contents go into DST itself;
 *                DST an existing file → error.
 * Symlinks inside the copied tree are copied as symlinks, never followed; modes and mtimes
 * are kept; hard links are copied as separate files. Every container-side path is resolved
 * with openat2(RESOLVE_IN_ROOT) against rootfd, and every entry below it is created or opened
 * with *at() calls and O_NOFOLLOW relative to an fd we opened ourselves: a symlink planted in
 * the container (absolute, relative with .., or swapped in during the copy) can neither make
 * us write outside the root nor read a host file into the copy. */
#ifndef CELLA_COPY_H
#define CELLA_COPY_H

#include <stdbool.h>
#include <sys/types.h>

#include "../util/util.h"

struct copy_opts {
  bool chown;    /* set the owner of what is created to uid:gid (copy in as root: 0:0) */
  bool no_setid; /* drop set-uid and set-gid bits (copy_out_of_root always does) */
  uid_t uid;
  gid_t gid;
};

/* host_src: a host path (symlinks in it followed, like docker's cp of a host path);
 * rootfd: a directory fd of the container's root (O_PATH is fine); ctr_dst: absolute. */
int copy_into_root (const char *host_src, int rootfd, const char *ctr_dst, const struct copy_opts *o,
                    cella_error_t *err);
/* ctr_src: absolute path in the container; host_dst: host path ("-" is not handled here). What
 * is copied out loses its set-uid and set-gid bits: the workload made those files, and `cella cp`
 * often runs as root (a set-uid program of the container's would be one of root's on the host). */
int copy_out_of_root (int rootfd, const char *ctr_src, const char *host_dst, const struct copy_opts *o,
                      cella_error_t *err);

#endif
