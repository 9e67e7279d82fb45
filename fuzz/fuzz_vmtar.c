/* The tar stream of `cella cp` on a VM (src/vm/tar.c): the host reads the guest's (a VM's root
 * writes it), the guest init the host's. Extracted into a fresh directory inside a private one;
 * nothing may appear beside it, whatever the names, links and records say. */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/tar.h"

static char base[64];

static void
remove_base (void)
{
  remove_tree (base);
}

static int
first (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err)
{
  (void) top;
  (void) is_dir;
  (void) err;
  d->dirfd = *(int *) ctx;
  d->as = "top";
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char dest[128];
  int fd = memfd_create ("fuzz-tar", MFD_CLOEXEC), dfd;
  cella_error_t err = NULL;
  if (base[0] == '\0')
    {
      snprintf (base, sizeof base, "/tmp/fuzz_vmtar.XXXXXX");
      if (mkdtemp (base) == NULL)
        abort ();
      atexit (remove_base);
    }
  snprintf (dest, sizeof dest, "%s/dest", base);
  remove_tree (dest);
  if (fd < 0 || mkdir (dest, 0700) < 0 || (size && write (fd, data, size) != (ssize_t) size))
    abort ();
  lseek (fd, 0, SEEK_SET);
  dfd = open (dest, O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* hard-link entries accepted: the path cella build reads a guest's stream with (the refusal is trivial) */
  struct tar_read_opts o = { .no_setid = true, .xattrs = true, .hardlinks = true, .first = first, .ctx = &dfd };
  int r = tar_read (fd, &o, &err);
  FUZZ_CHECK ((r == 0) == (err == NULL), "result %d and the error disagree", r);
  /* only dest in base: nothing written beside it */
  int n = 0;
  DIR *d = opendir (base);
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      n++;
  if (d)
    closedir (d);
  FUZZ_CHECK (n == 1, "%d entries beside the destination", n - 1);
  cella_error_free (&err);
  close (dfd);
  close (fd);
  return 0;
}
