/* Unit tests for `cella cp` (engine/copy.c): docker's rules on a fake container root in a
 * temporary directory, and the safety cases: symlinks planted in the root (absolute, relative
 * with "..") as the destination directory, an intermediate component, the final component, and
 * a copy-out source. After each, nothing outside the root may have appeared or changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/copy.h"
#include "tap.h"

static char base[64];   /* the temporary directory: root/, host/, out/, outside/, hostfile */
static char canary[80]; /* a file name unique to this run (also looked for at the host's /) */
static int rootfd = -1;

/* Paths under base; a ring of buffers so a few can be used in one expression. */
static const char *__attribute__ ((format (printf, 1, 2))) P (const char *fmt, ...)
{
  static char ring[8][PATH_MAX];
  static unsigned i;
  char *b = ring[i++ % 8];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (b, PATH_MAX, fmt, ap);
  va_end (ap);
  return b;
}
#define ROOT(rel) P ("%s/root%s", base, rel)
#define HOST(rel) P ("%s/host%s", base, rel)
#define OUT(rel) P ("%s/out%s", base, rel)
#define OUTSIDE P ("%s/outside", base)
#define HOSTFILE P ("%s/hostfile", base)

static void
put (const char *path, const char *text, mode_t mode, time_t mtime)
{
  struct timespec t[2] = { { mtime, 0 }, { mtime, 0 } };
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0 || fchmod (fd, mode) < 0 || futimens (fd, t) < 0)
    {
      perror (path);
      exit (2);
    }
  close (fd);
}

static void
must (int r, const char *what)
{
  if (r < 0)
    {
      perror (what);
      exit (2);
    }
}

static bool
has_text (const char *path, const char *want)
{
  char *got = NULL;
  size_t len;
  cella_error_t err = NULL;
  bool ok = read_file (path, &got, &len, &err) == 0 && len == strlen (want) && memcmp (got, want, len) == 0;
  cella_error_free (&err);
  free (got);
  return ok;
}

static bool
is_link_to (const char *path, const char *target)
{
  char buf[PATH_MAX];
  ssize_t n = readlink (path, buf, sizeof buf - 1);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return strcmp (buf, target) == 0;
}

static bool
is_type (const char *path, mode_t type)
{
  struct stat st;
  return lstat (path, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

static bool
mode_mtime (const char *path, mode_t mode, time_t mtime)
{
  struct stat st;
  bool ok = lstat (path, &st) == 0 && (st.st_mode & 07777) == mode && st.st_mtim.tv_sec == mtime;
  if (!ok)
    printf ("#   %s: mode %o mtime %lld\n", path, st.st_mode & 07777, (long long) st.st_mtim.tv_sec);
  return ok;
}

static bool
err_has (cella_error_t *err, const char *needle)
{
  bool r = *err && strstr ((*err)->msg, needle) != NULL && strchr ((*err)->msg, '\n') == NULL;
  if (!r)
    printf ("#   error was: %s\n", *err ? (*err)->msg : "(none)");
  cella_error_free (err);
  return r;
}

static bool
ok_or_say (int r, cella_error_t *err)
{
  if (r < 0)
    printf ("#   error: %s\n", *err ? (*err)->msg : "(none)");
  cella_error_free (err);
  return r == 0;
}
#define IN(src, dst) ok_or_say (copy_into_root (src, rootfd, dst, NULL, &err), &err)
#define OUTOF(src, dst) ok_or_say (copy_out_of_root (rootfd, src, dst, NULL, &err), &err)

/* Nothing outside the root changed: the sentinel directory is empty, the host file keeps its
 * content, and no copy landed at the host's "/". */
static bool
host_untouched (void)
{
  char slash_canary[128];
  bool empty = rmdir (OUTSIDE) == 0 && mkdir (OUTSIDE, 0755) == 0;
  snprintf (slash_canary, sizeof slash_canary, "/%s", canary);
  if (!empty || !has_text (HOSTFILE, "HOST") || exists (slash_canary))
    {
      printf ("#   outside empty: %d, hostfile kept: %d, %s absent: %d\n", empty, has_text (HOSTFILE, "HOST"),
              slash_canary, !exists (slash_canary));
      unlink (slash_canary); /* a broken copy must not leave its file in the host's / */
      return false;
    }
  return true;
}

static void
symlink_at (const char *target, const char *path)
{
  must (symlink (target, path), path);
}

static void
make_fixture (void)
{
  struct timespec t[2] = { { 1200000000, 0 }, { 1200000000, 0 } };
  char deep[PATH_MAX];
  strcpy (base, "/tmp/cella-copy-XXXXXX");
  must (mkdtemp (base) ? 0 : -1, "mkdtemp");
  snprintf (canary, sizeof canary, "%s.canary", base + 5);
  must (mkdir (OUTSIDE, 0755), "outside");
  put (HOSTFILE, "HOST", 0644, 1000000000);
  must (mkdir (OUT (""), 0755), "out");
  /* The host side: a file, and a tree with a subdirectory, symlinks and a fifo. */
  must (mkdir (HOST (""), 0755), "host");
  put (HOST ("/f.txt"), "hello", 0640, 1000000000);
  put (P ("%s/host/%s", base, canary), "CANARY", 0644, 1000000000);
  must (mkdir (HOST ("/tree"), 0700), "tree");
  must (mkdir (HOST ("/tree/sub"), 0755), "sub");
  put (HOST ("/tree/a.txt"), "A", 0604, 1000000001);
  put (HOST ("/tree/sub/b.txt"), "B", 0600, 1000000002);
  symlink_at ("a.txt", HOST ("/tree/link"));
  symlink_at ("/etc/passwd", HOST ("/tree/abslink"));
  must (utimensat (AT_FDCWD, HOST ("/tree/link"), t, AT_SYMLINK_NOFOLLOW), "link times");
  must (mkfifo (HOST ("/tree/fifo"), 0600), "fifo");
  must (chmod (HOST ("/tree/fifo"), 0620), "fifo mode");
  must (chmod (HOST ("/tree"), 0751), "tree mode");
  t[0].tv_sec = t[1].tv_sec = 1100000000;
  must (utimensat (AT_FDCWD, HOST ("/tree"), t, 0), "tree times");
  /* The container root, with its planted symlinks. */
  must (mkdir (ROOT (""), 0755), "root");
  must (mkdir (ROOT ("/dir"), 0755), "dir");
  must (mkdir (ROOT ("/dir3"), 0755), "dir3");
  must (mkdir (ROOT ("/etc"), 0755), "etc");
  put (ROOT ("/file"), "old", 0644, 1000000000);
  symlink_at ("/", ROOT ("/abs"));
  symlink_at (OUTSIDE, ROOT ("/absout"));
  symlink_at ("../outside", ROOT ("/relout"));
  snprintf (deep, sizeof deep, "../../../../../../../..%s/outside", base);
  symlink_at (deep, ROOT ("/deepout"));
  symlink_at (HOSTFILE, ROOT ("/etc/hostfile"));
  symlink_at ("../../hostfile", ROOT ("/etc/relhost"));
  symlink_at (base, ROOT ("/hostdir"));
  snprintf (deep, sizeof deep, "../../../../../../../..%s", base);
  symlink_at (deep, ROOT ("/relhostdir"));
  /* What those last two name inside the root. */
  {
    cella_error_t err = NULL;
    must (mkdir_p (P ("%s/root%s", base, base), 0755, &err), "root/base");
  }
  put (P ("%s/root%s/hostfile", base, base), "INROOT", 0644, 1000000000);
  rootfd = open (ROOT (""), O_PATH | O_DIRECTORY | O_CLOEXEC);
  must (rootfd, "open root");
}

static void
test_files (void)
{
  cella_error_t err = NULL;
  CHECK (IN (HOST ("/f.txt"), "/new.txt") && has_text (ROOT ("/new.txt"), "hello"), "file -> new file");
  CHECK (mode_mtime (ROOT ("/new.txt"), 0640, 1000000000), "file mode and mtime kept");
  CHECK (IN (HOST ("/f.txt"), "/file") && has_text (ROOT ("/file"), "hello"), "file -> existing file replaces it");
  CHECK (IN (HOST ("/f.txt"), "/dir") && has_text (ROOT ("/dir/f.txt"), "hello"), "file -> existing dir: dir/<name>");
  CHECK (IN (HOST ("/f.txt"), "/dir/") && has_text (ROOT ("/dir/f.txt"), "hello"), "file -> existing dir/");
  CHECK (copy_into_root (HOST ("/f.txt"), rootfd, "/missing/", NULL, &err) < 0
             && err_has (&err, "cp: `/missing/`: no such directory in the container") && !exists (ROOT ("/missing")),
         "file -> missing/ is an error naming it");
  CHECK (copy_into_root (HOST ("/f.txt"), rootfd, "/nodir/x", NULL, &err) < 0
             && err_has (&err, "cp: `/nodir`: no such directory in the container"),
         "file -> missing parent is an error naming the parent");
  CHECK (copy_into_root (HOST ("/f.txt"), rootfd, "/file/", NULL, &err) < 0
             && err_has (&err, "cp: `/file/`: not a directory in the container"),
         "file -> existing file/ is an error");
  CHECK (copy_into_root (HOST ("/f.txt/"), rootfd, "/x", NULL, &err) < 0 && err_has (&err, "f.txt/`: not a directory"),
         "host source file/ is an error");
  CHECK (copy_into_root (HOST ("/nope"), rootfd, "/x", NULL, &err) < 0
             && err_has (&err, "/host/nope`: no such file or directory on the host"),
         "missing host source: error names it");
  CHECK (copy_out_of_root (rootfd, "/nope", OUT ("/x"), NULL, &err) < 0
             && err_has (&err, "cp: `/nope`: no such file or directory in the container"),
         "missing container source: error names it");
  CHECK (copy_out_of_root (rootfd, "/new.txt", OUT (""), NULL, &err) == 0 && has_text (OUT ("/new.txt"), "hello")
             && mode_mtime (OUT ("/new.txt"), 0640, 1000000000),
         "copy out: file -> existing host dir, mode and mtime kept");
}

static bool
tree_copied (const char *dir)
{
  char p[5][PATH_MAX];
  snprintf (p[0], PATH_MAX, "%s/a.txt", dir);
  snprintf (p[1], PATH_MAX, "%s/sub/b.txt", dir);
  snprintf (p[2], PATH_MAX, "%s/link", dir);
  snprintf (p[3], PATH_MAX, "%s/abslink", dir);
  snprintf (p[4], PATH_MAX, "%s/fifo", dir);
  return has_text (p[0], "A") && has_text (p[1], "B") && is_link_to (p[2], "a.txt") && is_link_to (p[3], "/etc/passwd")
         && is_type (p[2], S_IFLNK) && is_type (p[4], S_IFIFO);
}

static bool
tree_meta (const char *dir)
{
  char p[4][PATH_MAX];
  struct stat st;
  snprintf (p[0], PATH_MAX, "%s/a.txt", dir);
  snprintf (p[1], PATH_MAX, "%s/sub/b.txt", dir);
  snprintf (p[2], PATH_MAX, "%s/link", dir);
  snprintf (p[3], PATH_MAX, "%s/fifo", dir);
  return mode_mtime (dir, 0751, 1100000000) && mode_mtime (p[0], 0604, 1000000001)
         && mode_mtime (p[1], 0600, 1000000002) && lstat (p[2], &st) == 0 && st.st_mtim.tv_sec == 1200000000
         && lstat (p[3], &st) == 0 && (st.st_mode & 07777) == 0620;
}

static void
test_dirs (void)
{
  cella_error_t err = NULL;
  CHECK (IN (HOST ("/tree"), "/tree2") && tree_copied (ROOT ("/tree2")), "dir -> missing: created as a copy");
  CHECK (tree_meta (ROOT ("/tree2")), "dir copy keeps modes and mtimes (dirs, files, symlinks, fifos)");
  CHECK (IN (HOST ("/tree"), "/dir") && tree_copied (ROOT ("/dir/tree")), "dir -> existing dir: dir/<name>");
  CHECK (IN (HOST ("/tree/."), "/dir3") && tree_copied (ROOT ("/dir3")) && !exists (ROOT ("/dir3/tree")),
         "dir/. -> existing dir: its contents");
  CHECK (IN (HOST ("/tree/."), "/tree4") && tree_copied (ROOT ("/tree4")), "dir/. -> missing: created");
  CHECK (OUTOF ("/tree2", OUT ("/t")) && tree_copied (OUT ("/t")) && tree_meta (OUT ("/t")),
         "copy out: dir -> missing host path, modes and mtimes kept");
  CHECK (IN (HOST ("/tree"), "/tree2") && tree_copied (ROOT ("/tree2/tree")), "dir -> the same existing dir again");
  CHECK (copy_into_root (HOST ("/tree"), rootfd, "/file", NULL, &err) < 0
             && err_has (&err, "cp: `/file`: not a directory in the container, cannot copy directory")
             && has_text (ROOT ("/file"), "hello"),
         "dir -> existing file is an error, the file is kept");
  CHECK (OUTOF ("/tree2/link", OUT ("/l")) && is_link_to (OUT ("/l"), "a.txt"), "copy out: a symlink as a symlink");
  CHECK (OUTOF ("/dir3/.", OUT ("/t")) && has_text (OUT ("/t/a.txt"), "A") && !exists (OUT ("/t/dir3")),
         "copy out: dir/. -> existing host dir: its contents");
}

static void
test_chown (void)
{
  struct copy_opts o = { .chown = true, .uid = 1234, .gid = 5678 };
  cella_error_t err = NULL;
  struct stat a, b, c;
  int r;
  /* Root of a user namespace that maps one id (unshare -r) is uid 0 but cannot chown to 1234. */
  if (geteuid () != 0 || lchown (HOST ("/f.txt"), 1234, 5678) < 0)
    {
      tap_skip ("needs root (with ids 1234 and 5678 mapped)", "chown option sets the owner of every copied entry");
      return;
    }
  r = copy_into_root (HOST ("/tree"), rootfd, "/owned", &o, &err);
  CHECK (ok_or_say (r, &err) && lstat (ROOT ("/owned"), &a) == 0 && lstat (ROOT ("/owned/sub/b.txt"), &b) == 0
             && lstat (ROOT ("/owned/link"), &c) == 0 && a.st_uid == 1234 && a.st_gid == 5678 && b.st_uid == 1234
             && b.st_gid == 5678 && c.st_uid == 1234 && c.st_gid == 5678
             && mode_mtime (ROOT ("/owned"), 0751, 1100000000),
         "chown option sets the owner of every copied entry (dirs, files, symlinks)");
}

/* (d) a copy-out source: a final symlink is copied as the link; an intermediate one resolves
 * inside the root. The host file it names is never read. */
static void
test_safety_out (void)
{
  cella_error_t err = NULL;
  CHECK (OUTOF ("/etc/hostfile", OUT ("/d1")) && is_link_to (OUT ("/d1"), HOSTFILE) && host_untouched (),
         "copy out of an absolute symlink to a host file copies the link");
  CHECK (OUTOF ("/etc/relhost", OUT ("/d2")) && is_link_to (OUT ("/d2"), "../../hostfile") && host_untouched (),
         "copy out of a relative ../ symlink copies the link");
  CHECK (OUTOF ("/hostdir/hostfile", OUT ("/d3")) && has_text (OUT ("/d3"), "INROOT") && host_untouched (),
         "copy out through an absolute symlinked dir resolves inside the root");
  CHECK (OUTOF ("/relhostdir/hostfile", OUT ("/d4")) && has_text (OUT ("/d4"), "INROOT") && host_untouched (),
         "copy out through a ../ symlinked dir resolves inside the root");
  CHECK (OUTOF ("/abs", OUT ("/d5")) && is_link_to (OUT ("/d5"), "/"), "copy out of a link to / copies the link");
  CHECK (OUTOF ("/abs/etc/hostfile", OUT ("/d6")) && is_type (OUT ("/d6"), S_IFLNK) && host_untouched (),
         "copy out through a link to / stays in the root");
}

/* (a) a planted symlink as the destination directory, (b) as an intermediate component. */
static void
test_safety_dirs (void)
{
  cella_error_t err = NULL;
  char src[PATH_MAX], in_root[PATH_MAX];
  snprintf (src, sizeof src, "%s/host/%s", base, canary);
  snprintf (in_root, sizeof in_root, "/%s", canary);
  CHECK (IN (src, "/abs") && has_text (ROOT (in_root), "CANARY") && host_untouched (),
         "copy into a symlink to / lands in the root's /");
  CHECK (copy_into_root (src, rootfd, "/absout/", NULL, &err) < 0 && err_has (&err, "`/absout/`: no such directory")
             && host_untouched (),
         "copy into an absolute symlink to a host dir: no such directory in the root");
  CHECK (copy_into_root (src, rootfd, "/relout/", NULL, &err) < 0 && err_has (&err, "`/relout/`: no such directory")
             && host_untouched (),
         "copy into a ../ symlink to a host dir: no such directory in the root");
  CHECK (copy_into_root (src, rootfd, "/deepout/x", NULL, &err) < 0 && err_has (&err, "`/deepout`: no such directory")
             && host_untouched (),
         "copy through a ../../.. symlink (intermediate): no such directory in the root");
  CHECK (copy_into_root (src, rootfd, "/absout/x", NULL, &err) < 0 && host_untouched (),
         "copy through an absolute symlink to a host dir (intermediate) is refused");
  CHECK (IN (src, "/abs/dir/c1") && has_text (ROOT ("/dir/c1"), "CANARY") && host_untouched (),
         "copy through a symlink to / (intermediate) resolves in the root");
  CHECK (IN (src, "/hostdir/newfile") && has_text (P ("%s/root%s/newfile", base, base), "CANARY")
             && !exists (P ("%s/newfile", base)) && host_untouched (),
         "copy through a symlink to the host's dir path lands inside the root");
  CHECK (IN (HOST ("/tree"), "/absout") && tree_copied (ROOT ("/absout")) && is_type (ROOT ("/absout"), S_IFDIR)
             && host_untouched (),
         "dir copy onto an absolute symlink to a host dir replaces the link");
  CHECK (IN (HOST ("/tree"), "/relout") && is_type (ROOT ("/relout"), S_IFDIR) && host_untouched (),
         "dir copy onto a ../ symlink replaces the link");
}

/* (c) a planted symlink as the final component: replaced, never written through. */
static void
test_safety_final (void)
{
  cella_error_t err = NULL;
  char deep[PATH_MAX];
  CHECK (IN (HOST ("/f.txt"), "/etc/hostfile") && is_type (ROOT ("/etc/hostfile"), S_IFREG)
             && has_text (ROOT ("/etc/hostfile"), "hello") && host_untouched (),
         "file onto an absolute symlink to a host file replaces the link");
  CHECK (IN (HOST ("/f.txt"), "/etc/relhost") && is_type (ROOT ("/etc/relhost"), S_IFREG) && host_untouched (),
         "file onto a ../ symlink to a host file replaces the link");
  /* Inside a merged tree: links planted where the copy puts a file and a directory. */
  must (mkdir (ROOT ("/merge"), 0755), "merge");
  must (mkdir (ROOT ("/merge/tree"), 0755), "merge/tree");
  symlink_at (HOSTFILE, ROOT ("/merge/tree/a.txt"));
  symlink_at (OUTSIDE, ROOT ("/merge/tree/sub"));
  snprintf (deep, sizeof deep, "../../../../../../../../..%s/outside", base);
  symlink_at (deep, ROOT ("/merge/tree/fifo"));
  CHECK (IN (HOST ("/tree"), "/merge") && tree_copied (ROOT ("/merge/tree"))
             && is_type (ROOT ("/merge/tree/a.txt"), S_IFREG) && host_untouched (),
         "merging a tree over planted links (file, dir, fifo) replaces them");
}

/* A destination inside the source (here: the root holds the host tree) must not recurse. */
static void
test_dst_inside_src (void)
{
  cella_error_t err = NULL;
  int fd = open (base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int r = copy_into_root (HOST ("/tree"), fd, "/host/tree/inner", NULL, &err);
  CHECK (ok_or_say (r, &err) && has_text (HOST ("/tree/inner/a.txt"), "A") && !exists (HOST ("/tree/inner/inner")),
         "a destination inside the source is not copied into itself");
  close (fd);
}

static int
rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st, (void) flag, (void) ftw;
  return remove (path) < 0 ? -1 : 0;
}

int
main (void)
{
  make_fixture ();
  test_files ();
  test_dirs ();
  test_chown ();
  test_safety_out ();
  test_safety_dirs ();
  test_safety_final ();
  test_dst_inside_src ();
  close (rootfd);
  if (nftw (base, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
    perror ("remove the test directory");
  return tap_done ();
}
