/* Unit tests for `cella diff`'s reading of an overlay upper dir (src/image/changes.c): the sort
 * order, and a lower + upper pair built by hand with a whiteout, an opaque directory, changed and
 * added files, cella's mount stubs, and a symlink in a lower that must not be followed. Runs as
 * root and unprivileged (a user xattr for the opaque dir, skipped where the file system has none). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/changes.h"
#include "tap.h"
#include "errcheck.h"

static void
put (const char *root, const char *rel, const char *text)
{
  cleanup_free char *p = xasprintf ("%s/%s", root, rel);
  cleanup_close int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
    {
      printf ("Bail out! write %s: %s\n", p, strerror (errno));
      exit (1);
    }
}

static void
dir (const char *root, const char *rel)
{
  cleanup_free char *p = xasprintf ("%s/%s", root, rel);
  if (mkdir (p, 0755) < 0 && errno != EEXIST)
    {
      printf ("Bail out! mkdir %s: %s\n", p, strerror (errno));
      exit (1);
    }
}

static char *
listing (struct fs_change *v, size_t n)
{
  char *s = xstrdup ("");
  for (size_t i = 0; i < n; i++)
    {
      char *t = xasprintf ("%s%c %s\n", s, v[i].kind, v[i].path);
      free (s);
      s = t;
    }
  return s;
}

static void
test_order (void)
{
  CHECK (fs_path_cmp ("/a", "/a/b") < 0, "a directory sorts before what is under it");
  CHECK (fs_path_cmp ("/a/b", "/a-b") < 0, "what is under /a sorts before /a-b");
  CHECK (fs_path_cmp ("/a-b", "/ab") < 0, "then by byte");
  CHECK (fs_path_cmp ("/etc", "/etc") == 0 && fs_path_cmp ("/z", "/a/z") > 0, "equal; and by the first component");
}

static void
test_upper (void)
{
  const char *t = getenv ("TMPDIR");
  cleanup_free char *base = xasprintf ("%s/cella-changes-test-XXXXXX", t && *t ? t : "/tmp");
  cleanup_free char *lower = NULL, *upper = NULL, *wh = NULL, *opt = NULL, *got = NULL;
  char *lowers[2], *targets[] = { "/etc/hosts", "/proc", NULL };
  struct fs_change *v = NULL;
  size_t n = 0;
  cella_error_t err = NULL;
  bool opaque;
  if (mkdtemp (base) == NULL)
    {
      tap_skip (strerror (errno), "overlay_changes: no temp dir");
      return;
    }
  lower = xasprintf ("%s/lower", base);
  upper = xasprintf ("%s/upper", base);
  dir (base, "lower");
  dir (base, "upper");
  /* the image */
  dir (lower, "bin");
  put (lower, "bin/ls", "ls");
  put (lower, "bin/sh", "sh");
  dir (lower, "etc");
  put (lower, "etc/passwd", "root");
  dir (lower, "opt");
  put (lower, "opt/old", "old");
  dir (lower, "mnt");
  /* a lower symlink where the upper has a file under that name: "var/log" must not be followed */
  {
    cleanup_free char *var = xasprintf ("%s/var", lower);
    if (symlink ("/", var) < 0)
      printf ("# symlink: %s\n", strerror (errno));
  }
  /* the container: deleted /bin/ls, changed /etc/passwd, added /new, replaced /opt, stubs */
  dir (upper, "bin");
  wh = xasprintf ("%s/bin/ls", upper);
  if (mknod (wh, S_IFCHR | 0000, makedev (0, 0)) < 0)
    {
      tap_skip (strerror (errno), "overlay_changes: cannot make a whiteout here");
      goto out;
    }
  dir (upper, "etc");
  put (upper, "etc/passwd", "root\nx");
  put (upper, "etc/hosts", "");
  dir (upper, "proc");
  dir (upper, "dev");
  put (upper, "new", "new");
  dir (upper, "var");
  put (upper, "var/log", "x");
  dir (upper, "opt");
  put (upper, "opt/o", "o");
  opt = xasprintf ("%s/opt", upper);
  opaque = setxattr (opt, geteuid () == 0 ? "trusted.overlay.opaque" : "user.overlay.opaque", "y", 1, 0) == 0;
  lowers[0] = lower;
  lowers[1] = NULL;
  CHECK (overlay_changes (upper, lowers, targets, &v, &n, &err) == 0, "overlay_changes reads the upper dir");
  got = listing (v, n);
  CHECK_STR (got,
             opaque
                 ? "C /bin\nD /bin/ls\nA /dev\nC /etc\nC /etc/passwd\nA /new\nD /opt\nA /opt/o\nC /var\nA /var/log\n"
                 : "C /bin\nD /bin/ls\nA /dev\nC /etc\nC /etc/passwd\nA /new\nC /opt\nA /opt/o\nC /var\nA /var/log\n",
             "A/C/D sorted; an opaque dir is D; mount stubs left out; an empty dir that is no mount point kept; a "
             "lower symlink not followed");
  if (!opaque)
    tap_skip ("no user xattrs on this file system", "opaque directory");
  fs_changes_free (v, n);
  v = NULL;
  /* a stub directory that is not empty is the workload's */
  put (upper, "proc/mine", "x");
  CHECK (overlay_changes (upper, lowers, targets, &v, &n, &err) == 0, "again, with a file in a mount point dir");
  free (got);
  got = listing (v, n);
  CHECK (strstr (got, "A /proc\nA /proc/mine\n") != NULL, "a mount point dir with content is listed");
  fs_changes_free (v, n);
  v = NULL;
  /* the upper dir gone: the error names it */
  CHECK (overlay_changes ("/nonexistent-upper", lowers, NULL, &v, &n, &err) < 0 && err_has (&err, "/nonexistent-upper"),
         "a missing upper dir is an error naming it");
out:
  if (remove_tree (base) < 0)
    printf ("# could not remove %s\n", base);
}

int
main (void)
{
  test_order ();
  test_upper ();
  return tap_done ();
}
