/* cella build --backend vm: a RUN step's layer from the guest's root (build_internal.h). The vm
 * backend writes the guest's tar stream of its root disk to the step's export file (plan
 * vm_export); here it is read as an untrusted stream (src/vm/tar.c: no name outside the tree, no
 * write through a symlink, hard links only to its own files, no device nodes; its size bounded by the export disk's)
 * into step/after, the stage's layers are flattened into step/before, and image_layer_diff makes
 * step/upper of the two, as the ns backend's overlay would have. Rootless, all of it runs as root
 * of the mapped user namespace, so the owners the guest set are kept. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../image/flatten.h"
#include "../image/layerdiff.h"
#include "../ns/ns.h"
#include "../vm/tar.h"
#include "build_internal.h"

struct vm_layer {
  const char *dir;
  char *const *layers;
  int after;
};

static int
first_entry (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err)
{
  struct vm_layer *v = ctx;
  if (!is_dir)
    return cella_error (err, 0, "the vm's root stream: its first entry `%s` is not a directory", top);
  d->dirfd = v->after;
  d->as = NULL;
  return 0;
}

static int
vm_layer_run (void *ud, cella_error_t *err)
{
  struct vm_layer *v = ud;
  cleanup_free char *exp = xasprintf ("%s/export.raw", v->dir), *after = xasprintf ("%s/after", v->dir),
                    *before = xasprintf ("%s/before", v->dir), *upper = xasprintf ("%s/upper", v->dir);
  cleanup_close int in = -1, bfd = -1, ufd = -1;
  struct tar_read_opts o = { .chown = true, .xattrs = true, .hardlinks = true, .first = first_entry, .ctx = v };
  struct layer_diff_stats st;
  int rc;
  if (mkdir (after, 0755) < 0)
    return cella_error (err, errno, "create `%s`", after);
  v->after = open (after, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  in = open (exp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (v->after < 0 || in < 0)
    return cella_error (err, errno, "open `%s`", v->after < 0 ? after : exp);
  rc = tar_read (in, &o, err);
  if (rc < 0)
    {
      close (v->after);
      return cella_error_wrap (err, "the vm's root stream");
    }
  /* the disk file's space goes before the copy of the layers is made */
  close (in);
  in = -1;
  unlink (exp);
  if (v->layers && v->layers[0] ? image_flatten (v->layers, before, NULL, err) < 0
                                : mkdir (before, 0755) < 0 && cella_error (err, errno, "create `%s`", before) < 0)
    {
      close (v->after);
      return -1;
    }
  bfd = open (before, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  ufd = open (upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (bfd < 0 || ufd < 0)
    rc = cella_error (err, errno, "open `%s`", bfd < 0 ? before : upper);
  else
    rc = image_layer_diff (v->after, bfd, ufd, &st, err);
  close (v->after);
  if (rc == 0 && getenv ("CELLA_BUILD_DEBUG"))
    fprintf (stderr, "cella: build: vm layer: %llu added, %llu changed, %llu deleted, %llu directories\n", st.added,
             st.changed, st.deleted, st.dirs);
  return rc;
}

int
build_vm_layer (const char *dir, char *const *layers, cella_error_t *err)
{
  struct vm_layer v = { .dir = dir, .layers = layers, .after = -1 };
  return ns_run_mapped (vm_layer_run, &v, err);
}
