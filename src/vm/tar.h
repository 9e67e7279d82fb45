/* A small tar (POSIX pax/ustar) writer and reader over directory fds, libc only: `cella cp` for
 * the vm backend (src/vm/copy.c on the host, guest/internal.c in the guest, which links this file
 * like guestcfg.c).
 *
 * Written: regular files, directories, symlinks and fifos (sockets and device nodes are left out;
 * hard links as separate files, or with `hardlinks` as link entries to the first name), with mode, owner, mtime
 * (seconds), and the xattrs of files and directories (pax SCHILY.xattr.NAME records, as GNU tar writes them); a pax
 * record carries what ustar cannot hold (a name or link target over its fields, a size of 8 GiB or more, an id of 2^21
 * or more).
 *
 * Read: the same, plus GNU long-name records ('L', 'K') and base-256 numbers. The stream is
 * untrusted (the host reads the guest's, the guest the host's): a name that is absolute, empty,
 * has a `.` or `..` component, or is not below the first entry's name is refused; every parent of
 * an entry is opened component by component with O_NOFOLLOW from the directory fd given, so a
 * symlink (in the archive or already in the tree) is never written through; an existing entry is
 * replaced (a directory only by a directory: it is merged). Hard-link entries are refused unless
 * o->hardlinks, and then may point only at a regular file this archive made (its name checked like
 * an entry's and resolved the same way); device entries are skipped. Directories get their mode and mtime once the
 * archive has ended. */
#ifndef CELLA_VM_TAR_H
#define CELLA_VM_TAR_H

#include <stdbool.h>
#include <sys/types.h>

#include "../util/util.h"

/* Write the tree at at/name (its top entry named `as` in the archive, a single component) to
 * fd, and the end-of-archive blocks. follow: name itself may be a symlink to follow (what is
 * below it never is). zero_owner: every entry owned by 0:0 (docker's cp into a container).
 * hardlinks: a file's second and later names as hard-link entries (the reader must accept them). */
int tar_write_tree (int fd, int at, const char *name, const char *as, bool follow, bool zero_owner, bool hardlinks,
                    cella_error_t *err);

/* What the first entry's header decides: where the archive goes and what its top is called. */
struct tar_dest {
  int dirfd;      /* the directory the top entry is created in (the caller's; not closed) */
  const char *as; /* the top entry's name there; NULL: the top must be a directory and only its
                     contents go into dirfd (docker's `SRC/.`) */
};
struct tar_read_opts {
  bool chown;     /* set each entry's owner from the archive (as root) */
  bool no_setid;  /* clear set-user-ID and set-group-ID bits */
  bool xattrs;    /* set the entries' user.* (not user.overlay.*) and security.capability xattrs
                     (SCHILY.xattr pax records); others are always left out */
  bool hardlinks; /* accept hard-link entries to regular files this archive made */
  /* called once, with the first entry's name and whether it is a directory: fills *d, or returns
   * -1 with *err (the archive is then not extracted) */
  int (*first) (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err);
  void *ctx;
};

/* Read an archive from fd to its end-of-archive block and extract it (see above). */
int tar_read (int fd, const struct tar_read_opts *o, cella_error_t *err);

#endif
