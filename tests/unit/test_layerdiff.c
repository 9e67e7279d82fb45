/* Unit tests for a layer made from two whole trees (src/image/layerdiff.c): a `before` and an
 * `after` tree built by hand (added, changed by content, by mode, by owner, by mtime only, by type,
 * deleted files and directories, a directory only its mode changed, unchanged files, a new
 * directory, a top-level lost+found), the upper dir listed whole and compared. Runs as root and
 * unprivileged (owner changes need root: skipped with the reason otherwise; the whiteout, a 0:0
 * character device, needs Linux 5.8 or root). Paths are under $TMPDIR (else /tmp). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/layerdiff.h"
#include "tap.h"

static void
put (const char *root, const char *rel, const char *text, mode_t mode, time_t mtime)
{
  cleanup_free char *p = xasprintf ("%s/%s", root, rel);
  FILE *f = fopen (p, "w");
  struct timespec t[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
  if (f == NULL)
    abort ();
  fputs (text, f);
  fclose (f);
  chmod (p, mode);
  utimensat (AT_FDCWD, p, t, 0);
}

static void
dir (const char *root, const char *rel, mode_t mode)
{
  cleanup_free char *p = xasprintf ("%s/%s", root, rel);
  if (mkdir (p, mode) < 0)
    abort ();
  chmod (p, mode);
}

/* "path type mode" lines of a tree, sorted (the tree's own walk order is the file system's). */
static void
list (int dfd, const char *rel, char **out)
{
  DIR *d = fdopendir (dup (dfd));
  struct dirent *e;
  char **names = NULL;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      strv_push (&names, e->d_name);
  closedir (d);
  for (size_t n = strv_len (names), i = 0; i + 1 < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp (names[i], names[j]) > 0)
        {
          char *t = names[i];
          names[i] = names[j];
          names[j] = t;
        }
  for (size_t i = 0; names && names[i]; i++)
    {
      struct stat st;
      cleanup_free char *sub = *rel ? xasprintf ("%s/%s", rel, names[i]) : xstrdup (names[i]);
      char line[600];
      fstatat (dfd, names[i], &st, AT_SYMLINK_NOFOLLOW);
      snprintf (line, sizeof line, "%s %c%o%s\n", sub,
                S_ISDIR (st.st_mode)   ? 'd'
                : S_ISCHR (st.st_mode) ? 'c'
                : S_ISLNK (st.st_mode) ? 'l'
                                       : 'f',
                (unsigned) (st.st_mode & 07777),
                S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0) ? " whiteout" : "");
      char *n = xasprintf ("%s%s", *out, line);
      free (*out);
      *out = n;
      if (S_ISDIR (st.st_mode))
        {
          int c = openat (dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          list (c, sub, out);
          close (c);
        }
    }
  strv_free (names);
}

/* root/rel in a buffer of the caller's */
#define AT(buf, root, rel) (snprintf ((buf), sizeof (buf), "%s/%s", (root), (rel)), (buf))

static char *
tmpdir (void)
{
  const char *t = getenv ("TMPDIR");
  char *d = xasprintf ("%s/cella-layerdiff-test-XXXXXX", t && *t ? t : "/tmp");
  if (mkdtemp (d) == NULL)
    abort ();
  return d;
}

static void
test_diff (void)
{
  cleanup_free char *top = tmpdir ();
  cleanup_free char *b = xasprintf ("%s/before", top), *a = xasprintf ("%s/after", top),
                    *u = xasprintf ("%s/upper", top);
  cleanup_free char *got = xstrdup ("");
  cella_error_t err = NULL;
  struct layer_diff_stats st;
  bool root = geteuid () == 0;
  mkdir (b, 0755);
  mkdir (a, 0755);
  mkdir (u, 0755);
  for (int i = 0; i < 2; i++)
    {
      const char *r = i ? a : b;
      dir (r, "etc", 0755);
      dir (r, "bin", 0755);
      dir (r, "home", 0755);
      dir (r, "same", 0755);
      put (r, "same/f", "same\n", 0644, 1000);
      put (r, "etc/passwd", "root\n", 0644, 1000);
      put (r, "etc/mode", "m\n", 0644, 1000);
      put (r, "etc/time", "t\n", 0644, 1000);
      put (r, "etc/keep", "k\n", 0644, 1000);
      put (r, "bin/sh", "sh\n", 0755, 1000);
      char p[4096];
      CHECK (symlink ("sh", AT (p, r, "bin/link")) == 0, "symlink %s", p);
    }
  /* the step's changes */
  char p[4096];
  put (a, "etc/passwd", "root\nvm\n", 0644, 2000); /* content */
  put (a, "etc/time", "t\n", 0644, 3000);          /* mtime only */
  chmod (AT (p, a, "etc/mode"), 0600);             /* mode */
  unlink (AT (p, a, "bin/sh"));                    /* deleted */
  unlink (AT (p, a, "bin/link"));
  CHECK (symlink ("busybox", AT (p, a, "bin/link")) == 0, "another link text");
  chmod (AT (p, a, "home"), 0700); /* only a directory's mode */
  dir (b, "gone", 0755);
  put (b, "gone/x", "x\n", 0644, 1000); /* a deleted directory */
  dir (a, "new", 0755);
  put (a, "new/f", "n\n", 0644, 1000); /* a new directory */
  put (b, "typechange", "file\n", 0644, 1000);
  dir (a, "typechange", 0755); /* a file became a directory */
  dir (a, "lost+found", 0700); /* mkfs.ext4's */
  if (root)
    {
      put (b, "etc/owner", "o\n", 0644, 1000);
      put (a, "etc/owner", "o\n", 0644, 1000);
      CHECK (chown (AT (p, a, "etc/owner"), 1234, 567) == 0, "chown");
    }
  int af = open (a, O_RDONLY | O_DIRECTORY), bf = open (b, O_RDONLY | O_DIRECTORY),
      uf = open (u, O_RDONLY | O_DIRECTORY);
  int rc = image_layer_diff (af, bf, uf, &st, &err);
  CHECK (rc == 0, "the diff runs (%s)", err ? err->msg : "ok");
  cella_error_free (&err);
  list (uf, "", &got);
  CHECK_STR (
      got,
      root ? "bin d755\nbin/link l777\nbin/sh c0 whiteout\netc d755\netc/mode f600\netc/owner f644\netc/passwd "
             "f644\netc/time f644\ngone c0 whiteout\nhome d700\nnew d755\nnew/f f644\ntypechange d755\n"
           : "bin d755\nbin/link l777\nbin/sh c0 whiteout\netc d755\netc/mode f600\netc/passwd f644\netc/time "
             "f644\ngone c0 whiteout\nhome d700\nnew d755\nnew/f f644\ntypechange d755\n",
      "the upper dir: changed and new entries, whiteouts, parents of changes; not the unchanged, not lost+found");
  CHECK (st.added == 1 && st.deleted == 2 && st.changed == (root ? 7u : 6u),
         "counts: %llu added, %llu changed, %llu deleted", st.added, st.changed, st.deleted);
  if (root)
    {
      struct stat o;
      fstatat (uf, "etc/owner", &o, 0);
      CHECK (o.st_uid == 1234 && o.st_gid == 567, "an owner change alone is a change, the owner kept");
    }
  else
    tap_skip ("chown needs root", "an owner change alone is a change");
  {
    struct stat h;
    fstatat (uf, "home", &h, 0);
    CHECK ((h.st_mode & 07777) == 0700, "a directory in upper has after's mode");
  }
  close (af);
  close (bf);
  close (uf);
  {
    cleanup_free char *cmd = xasprintf ("rm -rf '%s'", top);
    CHECK (system (cmd) == 0, "cleanup");
  }
}

/* An xattr change alone is a change (a file's, a directory's); equal xattrs are not. */
static void
test_xattr_diff (void)
{
  cleanup_free char *top = tmpdir ();
  cleanup_free char *b = xasprintf ("%s/before", top), *a = xasprintf ("%s/after", top),
                    *u = xasprintf ("%s/upper", top);
  cleanup_free char *got = xstrdup ("");
  cella_error_t err = NULL;
  char p[4096], v[8];
  mkdir (b, 0755);
  mkdir (a, 0755);
  mkdir (u, 0755);
  for (int i = 0; i < 2; i++)
    {
      const char *r = i ? a : b;
      dir (r, "d", 0755);
      dir (r, "e", 0755);
      put (r, "d/same", "s\n", 0644, 1000);
      put (r, "d/x", "x\n", 0644, 1000);
    }
  if (setxattr (AT (p, b, "d/same"), "user.k", "1", 1, 0) < 0)
    {
      tap_skip ("this file system has no user xattrs", "xattr changes");
      return;
    }
  CHECK (setxattr (AT (p, a, "d/same"), "user.k", "1", 1, 0) == 0, "setxattr");
  CHECK (setxattr (AT (p, a, "d/x"), "user.k", "2", 1, 0) == 0, "setxattr");
  CHECK (setxattr (AT (p, a, "e"), "user.k", "3", 1, 0) == 0, "setxattr");
  int af = open (a, O_RDONLY | O_DIRECTORY), bf = open (b, O_RDONLY | O_DIRECTORY),
      uf = open (u, O_RDONLY | O_DIRECTORY);
  CHECK (image_layer_diff (af, bf, uf, NULL, &err) == 0, "the diff runs");
  cella_error_free (&err);
  list (uf, "", &got);
  CHECK_STR (got, "d d755\nd/x f644\ne d755\n", "a new xattr is a change, an equal one is not");
  CHECK (getxattr (AT (p, u, "e"), "user.k", v, sizeof v) == 1 && v[0] == '3',
         "a directory in upper has after's xattrs");
  close (af);
  close (bf);
  close (uf);
  cleanup_free char *cmd = xasprintf ("rm -rf '%s'", top);
  CHECK (system (cmd) == 0, "cleanup");
}

int
main (void)
{
  test_diff ();
  test_xattr_diff ();
  return tap_done ();
}
