/* Unit test for the embedded busybox image and paths.  TAP output.
 * Build: gcc -std=gnu11 -Isrc tests/unit/test_default_image.c src/image/default_image.c \
 *          src/util/paths.c src/util/util.c */
#define _GNU_SOURCE
#include "util/paths.h"
#include "image/default_image.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_no;
static int failures;

static void
check (bool ok, const char *desc)
{
  test_no++;
  printf ("%sok %d - %s\n", ok ? "" : "not ", test_no, desc);
  if (!ok)
    failures++;
}

static void
diag_err (cella_error_t *err)
{
  if (*err)
    printf ("# error: %s (%s)\n", (*err)->msg, strerror ((*err)->errno_));
}

static int
rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st, (void) flag, (void) ftw;
  return remove (path) < 0 && errno != ENOENT ? -1 : 0;
}

static ino_t
inode_of (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 ? st.st_ino : 0;
}

static bool
file_contains (const char *path, const char *needle)
{
  cleanup_free char *buf = NULL;
  cella_error_t err = NULL;
  if (read_file (path, &buf, NULL, &err) < 0)
    {
      cella_error_free (&err);
      return false;
    }
  return strstr (buf, needle) != NULL;
}

static bool
no_leftovers (const char *images)
{
  DIR *d = opendir (images);
  struct dirent *de;
  bool clean = true;
  if (d == NULL)
    return false;
  while ((de = readdir (d)) != NULL)
    if (has_prefix (de->d_name, ".busybox.tmp.") || has_prefix (de->d_name, ".busybox.old."))
      clean = false;
  closedir (d);
  return clean;
}

static int
copy_file (const char *from, const char *to)
{
  cleanup_free char *buf = NULL;
  cleanup_close int fd = -1;
  cella_error_t err = NULL;
  size_t len;
  if (read_file (from, &buf, &len, &err) < 0)
    {
      cella_error_free (&err);
      return -1;
    }
  fd = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  return fd < 0 || write_all (fd, buf, len) < 0 ? -1 : 0;
}

/* Several processes build the same image at once: all succeed, one tree wins. */
static void
test_concurrent_build (const char *images)
{
  pid_t pids[4];
  bool all_ok = true;
  for (size_t i = 0; i < 4; i++)
    {
      pids[i] = fork ();
      if (pids[i] == 0)
        {
          cella_error_t err = NULL;
          char *rootfs = NULL;
          int r = default_image_ensure ("busybox", &rootfs, &err);
          if (r != 0)
            diag_err (&err);
          fflush (stdout);
          _exit (r == 0 && rootfs != NULL ? 0 : 1);
        }
    }
  for (size_t i = 0; i < 4; i++)
    {
      int status;
      if (pids[i] < 0 || waitpid (pids[i], &status, 0) < 0 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
        all_ok = false;
    }
  check (all_ok, "4 concurrent builds all succeed");
  check (no_leftovers (images), "no temp dirs left after concurrent builds");
}

static void
test_contents (const char *rootfs)
{
  cleanup_free char *sh = xasprintf ("%s/bin/sh", rootfs);
  cleanup_free char *bb = xasprintf ("%s/bin/busybox", rootfs);
  cleanup_free char *env = xasprintf ("%s/usr/bin/env", rootfs);
  cleanup_free char *passwd = xasprintf ("%s/etc/passwd", rootfs);
  cleanup_free char *group = xasprintf ("%s/etc/group", rootfs);
  cleanup_free char *osr = xasprintf ("%s/etc/os-release", rootfs);
  cleanup_free char *tmp = xasprintf ("%s/tmp", rootfs);
  cleanup_free char *vartmp = xasprintf ("%s/var/tmp", rootfs);
  cleanup_free char *root = xasprintf ("%s/root", rootfs);
  char target[64] = "";
  struct stat st, bst;
  ssize_t n;

  check (lstat (sh, &st) == 0 && S_ISLNK (st.st_mode), "bin/sh is a symlink");
  check (stat (sh, &st) == 0 && stat (bb, &bst) == 0 && st.st_ino == bst.st_ino, "bin/sh resolves to bin/busybox");
  check (stat (bb, &bst) == 0 && (bst.st_mode & 07777) == 0755 && bst.st_size > 0, "bin/busybox is a 0755 copy");
  n = readlink (env, target, sizeof target - 1);
  if (n >= 0)
    target[n] = '\0';
  check (strcmp (target, "../../bin/busybox") == 0, "usr/bin/env -> ../../bin/busybox");
  check (file_contains (passwd, "\ncella:x:1000:1000:cella:/home/cella:/bin/sh\n"), "etc/passwd has the cella user");
  check (file_contains (group, "\ncella:x:1000:\n"), "etc/group has the cella group");
  check (file_contains (osr, "ID=busybox\n") && file_contains (osr, "VERSION_ID="), "etc/os-release names busybox");
  check (stat (tmp, &st) == 0 && (st.st_mode & 07777) == 01777, "tmp is 1777");
  check (stat (vartmp, &st) == 0 && (st.st_mode & 07777) == 01777, "var/tmp is 1777");
  check (stat (root, &st) == 0 && (st.st_mode & 07777) == 0700, "root is 0700");
}

static void
test_rebuild_on_change (const char *data_root, const char *images, const char *rootfs)
{
  cleanup_free char *copy = xasprintf ("%s/busybox-copy", data_root);
  cleanup_free char *manifest = xasprintf ("%s/images/busybox/manifest", data_root);
  const struct timespec older[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };
  cella_error_t err = NULL;
  char *out = NULL;
  ino_t before, after;
  struct stat st, mst;
  int r;

  if (copy_file ("/bin/busybox", copy) < 0)
    {
      check (false, "copy busybox for rebuild test");
      return;
    }
  /* What a build that crashed half-way leaves behind; the next build sweeps it. */
  {
    cleanup_free char *crashed = xasprintf ("%s/.busybox.tmp.999999", images);
    cleanup_free char *crashed_rootfs = xasprintf ("%s/rootfs", crashed);
    mkdir (crashed, 0755);
    mkdir (crashed_rootfs, 0755);
  }
  setenv ("CELLA_BUSYBOX", copy, 1);
  before = inode_of (rootfs);
  r = default_image_ensure ("busybox", &out, &err);
  diag_err (&err);
  after = inode_of (rootfs);
  check (r == 0 && before != after, "a different source binary triggers a rebuild");
  check (stat (copy, &st) == 0 && stat (manifest, &mst) == 0 && st.st_mtim.tv_sec == mst.st_mtim.tv_sec
             && st.st_mtim.tv_nsec == mst.st_mtim.tv_nsec,
         "manifest mtime is the source's mtime");
  free (out), out = NULL;

  utimensat (AT_FDCWD, copy, older, 0);
  before = after;
  r = default_image_ensure ("busybox", &out, &err);
  diag_err (&err);
  after = inode_of (rootfs);
  check (r == 0 && before != after, "touching the source triggers a rebuild");
  free (out), out = NULL;

  r = default_image_ensure ("busybox", &out, &err);
  check (r == 0 && inode_of (rootfs) == after, "and then it is stable again");
  check (no_leftovers (images), "crashed builds are swept; no temp or old dirs left after rebuilds");
  free (out), out = NULL;
  unsetenv ("CELLA_BUSYBOX");
}

static void
test_errors (const char *data_root)
{
  cleanup_free char *notelf = xasprintf ("%s/not-elf", data_root);
  cella_error_t err = NULL;
  char *out = (char *) "x";
  int r;

  r = default_image_ensure ("alpine", &out, &err);
  check (r == 1 && out == NULL && err == NULL, "unknown image name returns 1");
  r = default_image_ensure ("busybox:1.36", &out, &err);
  check (r == 1 && out == NULL, "busybox with another tag is not embedded");

  setenv ("CELLA_BUSYBOX", "/nonexistent/busybox", 1);
  r = default_image_ensure ("busybox", &out, &err);
  check (r < 0 && out == NULL && err && strstr (err->msg, "CELLA_BUSYBOX") && err->errno_ == ENOENT,
         "missing CELLA_BUSYBOX is an error naming it");
  cella_error_free (&err);

  /* The test binary itself is dynamically linked (unless someone built it -static). */
  setenv ("CELLA_BUSYBOX", "/proc/self/exe", 1);
  r = default_image_ensure ("busybox", &out, &err);
  check (r < 0 && err && strstr (err->msg, "is dynamically linked: apt-get install busybox-static"),
         "dynamic busybox is refused with an install hint");
  if (err)
    printf ("# message: %s\n", err->msg);
  cella_error_free (&err);

  copy_file ("/etc/hostname", notelf);
  setenv ("CELLA_BUSYBOX", notelf, 1);
  r = default_image_ensure ("busybox", &out, &err);
  check (r < 0 && err && strstr (err->msg, "not an ELF executable"), "non-ELF busybox is refused");
  cella_error_free (&err);
  unsetenv ("CELLA_BUSYBOX");
}

static void
test_paths (const char *data_root)
{
  cleanup_free char *a = paths_new_id ();
  cleanup_free char *b = paths_new_id ();
  check (strcmp (paths_data_root (), data_root) == 0, "CELLA_ROOT overrides the data root");
  check (a && b && strlen (a) == 64 && strspn (a, "0123456789abcdef") == 64 && strcmp (a, b) != 0,
         "paths_new_id gives 64 hex digits, distinct");
  check (paths_run_root ()[0] == '/', "run root is absolute");
}

int
main (void)
{
  char tmpl[] = "/tmp/cella-test-image-XXXXXX";
  const char *data_root = mkdtemp (tmpl);
  cleanup_free char *images = NULL, *expected = NULL;
  cella_error_t err = NULL;
  char *rootfs = NULL, *rootfs2 = NULL;
  ino_t ino1;
  int r;

  setvbuf (stdout, NULL, _IOLBF, 0);
  if (data_root == NULL)
    {
      printf ("not ok 1 - mkdtemp: %s\n", strerror (errno));
      return 1;
    }
  unsetenv ("CELLA_BUSYBOX");
  if (access ("/bin/busybox", X_OK) < 0 && access ("/usr/bin/busybox", X_OK) < 0)
    {
      printf ("1..0 # skip: busybox-static is not installed\n");
      rmdir (data_root);
      return 0;
    }
  setenv ("CELLA_ROOT", data_root, 1);
  images = xasprintf ("%s/images", data_root);
  expected = xasprintf ("%s/images/busybox/rootfs", data_root);

  test_paths (data_root);
  test_concurrent_build (images);

  r = default_image_ensure ("busybox", &rootfs, &err);
  diag_err (&err);
  check (r == 0 && rootfs && strcmp (rootfs, expected) == 0, "ensure busybox returns the rootfs path");
  ino1 = inode_of (expected);
  r = default_image_ensure ("busybox:latest", &rootfs2, &err);
  diag_err (&err);
  check (r == 0 && ino1 != 0 && inode_of (expected) == ino1, "second ensure (busybox:latest) does not rebuild");

  if (rootfs)
    test_contents (rootfs);
  test_errors (data_root);
  check (inode_of (expected) == ino1, "failed ensures leave the image in place");
  test_rebuild_on_change (data_root, images, expected);

  free (rootfs);
  free (rootfs2);
  nftw (data_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  check (access (data_root, F_OK) < 0, "temp data root removed");
  printf ("1..%d\n", test_no);
  return failures ? 1 : 0;
}
