/* An image layer: a tar stream, maybe compressed, unpacked by src/image/tool/unpack.c. Each
 * input is unpacked twice in a private directory (under /dev/shm when there is one, it is
 * memory): as an overlay lower layer into an empty directory, and flattened over a small tree
 * that holds symlinks out of it (absolute and relative) and a directory. Beyond "no crash", the
 * target checks the promise that matters: nothing is written outside the layer directory. A
 * sibling directory, `outside`, holds one file; after each unpack it must hold that file alone,
 * unchanged, with one link. */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/tool/unpack.h"

#define VICTIM "the file outside the layer\n"

static char base[64];
static int base_fd = -1;

/* Directories the layer made 0555 or 0000 (an unprivileged run cannot empty them): made 0700
 * first, top down, symlinks not followed. */
static void
open_up (int dfd, const char *name)
{
  struct stat st;
  DIR *d;
  struct dirent *e;
  int fd;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    return;
  if (fchmodat (dfd, name, 0700, 0) < 0 && errno != EPERM)
    return;
  fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  while ((e = readdir (d)) != NULL)
    if (e->d_type == DT_DIR && strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      open_up (dirfd (d), e->d_name);
  closedir (d);
}

static void
remove_base (void)
{
  if (base[0] == '\0')
    return;
  open_up (AT_FDCWD, base);
  remove_tree (base);
}

static void
setup (void)
{
  struct rlimit fsize = { 1 << 20, 1 << 20 };
  const char *dir = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  int fd;
  snprintf (base, sizeof base, "%s/cella-fuzz-unpack.XXXXXX", dir);
  FUZZ_CHECK (mkdtemp (base) != NULL, "mkdtemp %s", base);
  atexit (remove_base);
  base_fd = open (base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK (base_fd >= 0 && mkdirat (base_fd, "outside", 0755) == 0, "set up %s", base);
  fd = openat (base_fd, "outside/victim", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  FUZZ_CHECK (fd >= 0 && write (fd, VICTIM, strlen (VICTIM)) == (ssize_t) strlen (VICTIM), "write the victim");
  close (fd);
  /* a compressed layer may expand a lot: no file beyond 1 MiB (the write fails with EFBIG) */
  signal (SIGXFSZ, SIG_IGN);
  setrlimit (RLIMIT_FSIZE, &fsize);
}

static void
check_outside (const char *mode)
{
  char buf[128] = "";
  struct stat st;
  int fd = openat (base_fd, "outside/victim", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  FUZZ_CHECK (fd >= 0 && fstat (fd, &st) == 0, "%s: the file outside is gone", mode);
  close (fd);
  FUZZ_CHECK (n == (ssize_t) strlen (VICTIM) && memcmp (buf, VICTIM, (size_t) n) == 0,
              "%s: the file outside the layer changed", mode);
  FUZZ_CHECK (st.st_nlink == 1 && (st.st_mode & 07777) == 0644 && st.st_uid == geteuid (),
              "%s: the file outside was linked or its metadata changed", mode);
  fd = openat (base_fd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK (fd >= 0 && fstat (fd, &st) == 0 && st.st_nlink == 2, "%s: a directory appeared outside the layer", mode);
  {
    DIR *d = fdopendir (fd);
    struct dirent *e;
    size_t entries = 0;
    while ((e = readdir (d)) != NULL)
      entries += strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0;
    closedir (d);
    FUZZ_CHECK (entries == 1, "%s: %zu entries outside the layer, 1 expected", mode, entries);
  }
}

/* A tree to flatten onto: symlinks out of it must never be written through. */
static void
plant (const char *name)
{
  char target[128];
  int dfd = openat (base_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK (dfd >= 0, "open %s", name);
  snprintf (target, sizeof target, "%s/outside", base);
  FUZZ_CHECK (symlinkat (target, dfd, "abs") == 0 && symlinkat ("../outside", dfd, "rel") == 0
                  && symlinkat ("../outside/victim", dfd, "file") == 0 && mkdirat (dfd, "etc", 0755) == 0,
              "plant the tree");
  close (dfd);
}

static void
unpack_once (int memfd, enum unpack_mode mode)
{
  const char *name = mode == UNPACK_FLAT ? "flat" : "layer";
  struct unpack_opts o = { .mode = mode, .set_owner = true, .skip_devices = true };
  struct unpack_stats stats;
  cella_error_t err = NULL;
  int dfd;
  FUZZ_CHECK (mkdirat (base_fd, name, 0755) == 0, "mkdir %s/%s", base, name);
  if (mode == UNPACK_FLAT)
    plant (name);
  dfd = openat (base_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK (dfd >= 0, "open %s", name);
  lseek (memfd, 0, SEEK_SET);
  layer_unpack (memfd, dfd, &o, &stats, &err);
  cella_error_free (&err);
  close (dfd);
  check_outside (name);
  open_up (base_fd, name);
  FUZZ_CHECK (remove_tree_at (base_fd, name) == 0, "remove %s/%s", base, name);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int memfd;
  if (base_fd < 0)
    setup ();
  memfd = memfd_create ("layer", MFD_CLOEXEC);
  FUZZ_CHECK (memfd >= 0 && (size == 0 || write (memfd, data, size) == (ssize_t) size), "memfd");
  unpack_once (memfd, UNPACK_LAYER);
  unpack_once (memfd, UNPACK_FLAT);
  close (memfd);
  return 0;
}
