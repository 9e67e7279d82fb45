/* Unit tests for the vm backend's tar (src/vm/tar.c: `cella cp` between the host and a guest;
 * the guest init links the same file). Our archives are read back by ours and by libarchive;
 * libarchive's (pax and GNU long names) are read by ours; hostile archives (built with
 * libarchive's writer) must leave nothing outside the destination. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tap.h"
#include "vm/tar.h"

static char base[64];

static char *
path (const char *rel)
{
  static char buf[8][4096];
  static int i;
  i = (i + 1) % 8;
  snprintf (buf[i], sizeof buf[i], "%s/%s", base, rel);
  return buf[i];
}

static void
must (int r)
{
  if (r < 0)
    abort ();
}

static void
put_file (const char *rel, const char *text, mode_t mode)
{
  int fd = open (path (rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
    abort ();
  fchmod (fd, mode);
  close (fd);
}

static char *
slurp (const char *rel)
{
  static char buf[4096];
  int fd = open (path (rel), O_RDONLY | O_NOFOLLOW);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  return buf;
}

struct first_ctx {
  int dirfd;
  const char *as;
  char top[256];
  bool is_dir;
};

static int
first_cb (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err)
{
  struct first_ctx *f = ctx;
  (void) err;
  snprintf (f->top, sizeof f->top, "%s", top);
  f->is_dir = is_dir;
  d->dirfd = f->dirfd;
  d->as = f->as;
  return 0;
}

/* Extract the archive in fd into base/dest (made here) as `as`. */
static int
extract (int fd, const char *dest, const char *as, bool no_setid, cella_error_t *err)
{
  mkdir (path (dest), 0755);
  struct first_ctx f = { .dirfd = open (path (dest), O_PATH | O_DIRECTORY), .as = as };
  struct tar_read_opts o = { .no_setid = no_setid, .first = first_cb, .ctx = &f };
  lseek (fd, 0, SEEK_SET);
  int r = tar_read (fd, &o, err);
  close (f.dirfd);
  return r;
}

static char long_name[200], long_target[300];

static void
make_tree (void)
{
  mkdir (path ("src"), 0755);
  mkdir (path ("src/t"), 0750);
  mkdir (path ("src/t/sub"), 0700);
  put_file ("src/t/a.txt", "hello\n", 0640);
  put_file ("src/t/sub/run", "#!/bin/sh\n", 04755);
  memset (long_name, 'n', 150);
  long_name[150] = '\0';
  char rel[300];
  snprintf (rel, sizeof rel, "src/t/sub/%s", long_name);
  put_file (rel, "long\n", 0600);
  must (symlink ("../a.txt", path ("src/t/sub/rel-link")));
  must (symlink ("/etc/passwd", path ("src/t/abs-link")));
  memset (long_target, 'x', 250);
  memcpy (long_target, "/long/", 6);
  long_target[250] = '\0';
  must (symlink (long_target, path ("src/t/long-link")));
  mkfifo (path ("src/t/fifo"), 0620);
  struct timespec t[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
  utimensat (AT_FDCWD, path ("src/t/a.txt"), t, AT_SYMLINK_NOFOLLOW);
  utimensat (AT_FDCWD, path ("src/t/sub"), t, AT_SYMLINK_NOFOLLOW);
}

static int
archive_of_tree (bool zero_owner)
{
  int fd = memfd_create ("tar", MFD_CLOEXEC), src = open (path ("src"), O_PATH | O_DIRECTORY);
  cella_error_t err = NULL;
  int r = tar_write_tree (fd, src, "t", "top", false, zero_owner, false, &err);
  CHECK (r == 0, "write: the tree is archived%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  close (src);
  return fd;
}

static void
test_round_trip (void)
{
  int fd = archive_of_tree (false);
  cella_error_t err = NULL;
  struct stat st;
  char buf[512];
  int r = extract (fd, "rt", "copy", false, &err);
  CHECK (r == 0, "read: our archive extracts%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  CHECK_STR (slurp ("rt/copy/a.txt"), "hello\n", "a file's contents (the top renamed)");
  CHECK (stat (path ("rt/copy/a.txt"), &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_mtime == 1000000000,
         "a file's mode and mtime");
  CHECK (stat (path ("rt/copy/sub/run"), &st) == 0 && (st.st_mode & 07777) == 04755, "set-id bits kept by default");
  CHECK (stat (path ("rt/copy"), &st) == 0 && (st.st_mode & 07777) == 0750, "a directory's mode");
  CHECK (stat (path ("rt/copy/sub"), &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_mtime == 1000000000,
         "a directory's mode and mtime, set after its entries");
  snprintf (buf, sizeof buf, "rt/copy/sub/%s", long_name);
  CHECK_STR (slurp (buf), "long\n", "a 160-byte name (pax path)");
  ssize_t n = readlink (path ("rt/copy/sub/rel-link"), buf, sizeof buf - 1);
  buf[n < 0 ? 0 : n] = '\0';
  CHECK_STR (buf, "../a.txt", "a relative symlink, as a symlink");
  n = readlink (path ("rt/copy/abs-link"), buf, sizeof buf - 1);
  buf[n < 0 ? 0 : n] = '\0';
  CHECK_STR (buf, "/etc/passwd", "an absolute symlink, not followed");
  n = readlink (path ("rt/copy/long-link"), buf, sizeof buf - 1);
  buf[n < 0 ? 0 : n] = '\0';
  CHECK_STR (buf, long_target, "a 250-byte link target (pax linkpath)");
  CHECK (lstat (path ("rt/copy/fifo"), &st) == 0 && S_ISFIFO (st.st_mode), "a fifo");

  /* again onto the copy: files are replaced, directories merged */
  put_file ("rt/copy/a.txt", "changed\n", 0600);
  put_file ("rt/copy/extra", "mine\n", 0600);
  r = extract (fd, "rt", "copy", true, &err);
  CHECK (r == 0, "read: again over the existing tree%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  CHECK_STR (slurp ("rt/copy/a.txt"), "hello\n", "an existing file is replaced");
  CHECK_STR (slurp ("rt/copy/extra"), "mine\n", "an existing directory is merged");
  CHECK (stat (path ("rt/copy/sub/run"), &st) == 0 && (st.st_mode & 07777) == 0755, "no_setid clears set-id bits");

  /* contents mode: the top's entries straight into the destination */
  r = extract (fd, "contents", NULL, false, &err);
  CHECK (r == 0 && slurp ("contents/a.txt") && access (path ("contents/top"), F_OK) < 0,
         "contents mode: the top directory's entries go into the destination itself");
  cella_error_free (&err);
  close (fd);
}

/* xattrs travel as SCHILY.xattr records (binary values too); the reader sets user.* (not
 * user.overlay.*) only when asked (cella build --backend vm), never otherwise. */
static void
test_xattrs (void)
{
  static const char bin[] = { 1, 0, 2, 0 };
  char v[16];
  cella_error_t err = NULL;
  mkdir (path ("xs"), 0755);
  mkdir (path ("xs/t"), 0755);
  put_file ("xs/t/f", "x\n", 0644);
  if (setxattr (path ("xs/t/f"), "user.bin", bin, sizeof bin, 0) < 0)
    {
      tap_skip ("this file system has no user xattrs", "xattrs round trip");
      return;
    }
  must (setxattr (path ("xs/t"), "user.dir", "d", 1, 0));
  must (setxattr (path ("xs/t"), "user.overlay.opaque", "y", 1, 0));
  int fd = memfd_create ("tar", MFD_CLOEXEC), src = open (path ("xs"), O_PATH | O_DIRECTORY);
  CHECK (tar_write_tree (fd, src, "t", "t", false, false, false, &err) == 0, "write: a tree with xattrs");
  cella_error_free (&err);
  close (src);
  for (int want = 0; want < 2; want++)
    {
      const char *dest = want ? "xs-on" : "xs-off";
      mkdir (path (dest), 0755);
      struct first_ctx f = { .dirfd = open (path (dest), O_PATH | O_DIRECTORY), .as = "t" };
      struct tar_read_opts o = { .xattrs = want, .first = first_cb, .ctx = &f };
      lseek (fd, 0, SEEK_SET);
      CHECK (tar_read (fd, &o, &err) == 0, "read with xattrs %s", want ? "on" : "off");
      cella_error_free (&err);
      close (f.dirfd);
      char fp[300], dp[300];
      snprintf (fp, sizeof fp, "%s/t/f", dest);
      snprintf (dp, sizeof dp, "%s/t", dest);
      strcpy (fp, path (fp));
      strcpy (dp, path (dp));
      ssize_t n = getxattr (fp, "user.bin", v, sizeof v);
      if (want)
        {
          CHECK (n == (ssize_t) sizeof bin && memcmp (v, bin, sizeof bin) == 0, "a file's xattr, its NULs kept");
          CHECK (getxattr (dp, "user.dir", v, sizeof v) == 1, "a directory's xattr");
          CHECK (getxattr (dp, "user.overlay.opaque", v, sizeof v) < 0, "overlay's own xattrs are never set");
        }
      else
        CHECK (n < 0 && getxattr (dp, "user.dir", v, sizeof v) < 0, "without the option: no xattrs set");
    }
  close (fd);
}

/* libarchive reads what we write: names, types, sizes, link targets. */
static void
test_libarchive_reads_ours (void)
{
  int fd = archive_of_tree (true);
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  int n = 0, bad = 0;
  bool saw_long = false, saw_link = false, owners_zero = true;
  char want[256];
  snprintf (want, sizeof want, "top/sub/%s", long_name);
  archive_read_support_format_tar (a);
  lseek (fd, 0, SEEK_SET);
  if (archive_read_open_fd (a, fd, 10240) != ARCHIVE_OK)
    bad++;
  while (!bad && archive_read_next_header (a, &e) == ARCHIVE_OK)
    {
      n++;
      const char *p = archive_entry_pathname (e);
      saw_long |= strcmp (p, want) == 0 && archive_entry_size (e) == 5;
      saw_link |= strcmp (p, "top/long-link") == 0 && archive_entry_symlink (e)
                  && strcmp (archive_entry_symlink (e), long_target) == 0;
      owners_zero &= archive_entry_uid (e) == 0 && archive_entry_gid (e) == 0;
    }
  CHECK (!bad && n == 9, "libarchive reads our archive: 9 entries (got %d)", n);
  CHECK (saw_long && saw_link, "libarchive sees the long name and the long link target");
  CHECK (owners_zero, "zero_owner: every entry owned by 0:0");
  archive_read_free (a);
  close (fd);
}

/* An archive written by libarchive in `format`, entries (name, type, link or contents; type 0: a
 * hard link, data the target's name). */
struct ent {
  const char *name;
  mode_t type;
  const char *data;
};

static int
libarchive_tar (int format, const struct ent *ents, size_t n)
{
  int fd = memfd_create ("la", MFD_CLOEXEC);
  struct archive *a = archive_write_new ();
  archive_write_set_format (a, format);
  archive_write_open_fd (a, fd);
  for (size_t i = 0; i < n; i++)
    {
      struct archive_entry *e = archive_entry_new ();
      archive_entry_copy_pathname (e, ents[i].name);
      archive_entry_set_mode (e, (ents[i].type ? ents[i].type : AE_IFREG) | (ents[i].type == AE_IFDIR ? 0755 : 0644));
      archive_entry_set_mtime (e, 1234567890, 0);
      if (ents[i].type == 0)
        archive_entry_copy_hardlink (e, ents[i].data);
      if (ents[i].type == AE_IFLNK)
        archive_entry_copy_symlink (e, ents[i].data);
      if (ents[i].type == AE_IFREG)
        archive_entry_set_size (e, (la_int64_t) strlen (ents[i].data));
      archive_write_header (a, e);
      if (ents[i].type == AE_IFREG)
        archive_write_data (a, ents[i].data, strlen (ents[i].data));
      archive_entry_free (e);
    }
  archive_write_close (a);
  archive_write_free (a);
  return fd;
}

static void
test_reads_libarchive (void)
{
  char longn[512];
  snprintf (longn, sizeof longn, "d/%s/%s", long_name, long_name);
  char longd[256];
  snprintf (longd, sizeof longd, "d/%s", long_name);
  const struct ent ents[] = {
    { "d", AE_IFDIR, NULL }, { longd, AE_IFDIR, NULL }, { longn, AE_IFREG, "deep\n" }, { "d/l", AE_IFLNK, long_target }
  };
  const int formats[] = { ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FORMAT_TAR_GNUTAR };
  const char *names[] = { "pax", "GNU" };
  for (int i = 0; i < 2; i++)
    {
      char dest[32], rel[600], buf[512];
      cella_error_t err = NULL;
      int fd = libarchive_tar (formats[i], ents, 4);
      snprintf (dest, sizeof dest, "la%d", i);
      int r = extract (fd, dest, "d", false, &err);
      CHECK (r == 0, "%s: libarchive's archive extracts%s%s", names[i], err ? ": " : "", err ? err->msg : "");
      cella_error_free (&err);
      snprintf (rel, sizeof rel, "%s/%s", dest, longn);
      CHECK_STR (slurp (rel), "deep\n", "a 300-byte name");
      snprintf (rel, sizeof rel, "%s/d/l", dest);
      ssize_t n = readlink (path (rel), buf, sizeof buf - 1);
      buf[n < 0 ? 0 : n] = '\0';
      CHECK_STR (buf, long_target, "a 250-byte link target");
      close (fd);
    }
}

/* Extract with hard-link entries accepted (cella build's vm export). */
static int
extract_links (int fd, const char *dest, bool hardlinks, cella_error_t *err)
{
  mkdir (path (dest), 0755);
  struct first_ctx f = { .dirfd = open (path (dest), O_PATH | O_DIRECTORY), .as = NULL };
  struct tar_read_opts o = { .hardlinks = hardlinks, .first = first_cb, .ctx = &f };
  lseek (fd, 0, SEEK_SET);
  int r = tar_read (fd, &o, err);
  close (f.dirfd);
  return r;
}

static void
test_hardlinks (void)
{
  cella_error_t err = NULL;
  struct stat a, b, c;
  mkdir (path ("hsrc"), 0755);
  mkdir (path ("hsrc/x"), 0755);
  mkdir (path ("hsrc/x/sub"), 0755);
  put_file ("hsrc/x/a", "A\n", 0644);
  put_file ("hsrc/x/c", "C\n", 0644);
  must (link (path ("hsrc/x/a"), path ("hsrc/x/sub/b")));
  int fd = memfd_create ("tar", MFD_CLOEXEC), src = open (path ("hsrc"), O_PATH | O_DIRECTORY);
  CHECK (tar_write_tree (fd, src, "x", "x", false, false, true, &err) == 0, "write with hard links");
  cella_error_free (&err);
  close (src);
  int r = extract_links (fd, "hl1", true, &err);
  CHECK (r == 0, "a hard link of the archive's own is made%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  CHECK (stat (path ("hl1/a"), &a) == 0 && stat (path ("hl1/sub/b"), &b) == 0 && stat (path ("hl1/c"), &c) == 0
             && a.st_ino == b.st_ino && a.st_nlink == 2 && c.st_ino != a.st_ino && c.st_nlink == 1,
         "x/a and x/sub/b are one file, x/c another (the top's contents in hl1)");
  CHECK_STR (slurp ("hl1/sub/b"), "A\n", "the link's contents");
  r = extract_links (fd, "hl2", false, &err);
  CHECK (r < 0 && err && strstr (err->msg, "hard links in the archive are not supported"),
         "without hardlinks (cp) a link entry is refused");
  cella_error_free (&err);
  close (fd);
  /* hostile: a link to a file the archive did not make (already in the destination), to a
   * symlink it made, to a name outside its top; each refused, the victim keeps one link */
  mkdir (path ("hl3"), 0755);
  put_file ("hl3/victim", "host\n", 0600);
  const struct ent pre[] = { { "x", AE_IFDIR, NULL }, { "x/l", 0, "x/victim" } };
  const struct ent sym[] = { { "x", AE_IFDIR, NULL }, { "x/s", AE_IFLNK, "/etc/passwd" }, { "x/l", 0, "x/s" } };
  const struct ent out[] = { { "x", AE_IFDIR, NULL }, { "x/l", 0, "x/../../hl3/victim" } };
  const struct ent top[] = { { "x", AE_IFDIR, NULL }, { "x/l", 0, "y/victim" } };
  const struct {
    const struct ent *e;
    size_t n;
    const char *why, *msg;
  } cases[] = {
    { pre, 2, "a file already in the destination", "not a file of the archive's own" },
    { sym, 3, "a symlink of the archive", "not a file of the archive's own" },
    { out, 2, "a `..` name", "is refused" },
    { top, 2, "a name not below the top", "not below its first" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      fd = libarchive_tar (ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, cases[i].e, cases[i].n);
      r = extract_links (fd, "hl3", true, &err);
      CHECK (r < 0 && err && strstr (err->msg, cases[i].msg), "a hard link to %s is refused (%s)", cases[i].why,
             err ? err->msg : "no error");
      cella_error_free (&err);
      close (fd);
      CHECK (stat (path ("hl3/victim"), &a) == 0 && a.st_nlink == 1 && lstat (path ("hl3/l"), &b) < 0,
             "the victim has one link and no x/l was made (%s)", cases[i].why);
    }
}

/* Each hostile archive is refused and writes nothing outside base/h/dest. */
static void
test_hostile (void)
{
  static const struct {
    const char *what;
    struct ent ents[3];
    size_t n;
  } cases[] = {
    { "`..` in a name", { { "d", AE_IFDIR, NULL }, { "d/../escaped", AE_IFREG, "x" } }, 2 },
    { "an absolute name", { { "/escaped", AE_IFREG, "x" } }, 1 },
    { "a name outside the first entry", { { "d", AE_IFDIR, NULL }, { "escaped", AE_IFREG, "x" } }, 2 },
    { "a `.` component", { { "d", AE_IFDIR, NULL }, { "d/./escaped", AE_IFREG, "x" } }, 2 },
    { "writing through the archive's own symlink",
      { { "d", AE_IFDIR, NULL }, { "d/l", AE_IFLNK, "../../" }, { "d/l/escaped", AE_IFREG, "x" } },
      3 },
    { "a first entry with a directory part", { { "x/escaped", AE_IFREG, "x" } }, 1 },
  };
  mkdir (path ("h"), 0755);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      cella_error_t err = NULL;
      int fd = libarchive_tar (ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, cases[i].ents, cases[i].n);
      int r = extract (fd, "h/dest", "d", false, &err);
      CHECK (r < 0 && access (path ("h/escaped"), F_OK) < 0 && access (path ("escaped"), F_OK) < 0,
             "hostile: %s is refused (%s)", cases[i].what, err ? err->msg : "accepted");
      cella_error_free (&err);
      close (fd);
    }

  /* a symlink already in the destination (the container's) is not written through */
  mkdir (path ("h/out"), 0755);
  mkdir (path ("h/dest2"), 0755);
  mkdir (path ("h/dest2/d"), 0755);
  must (symlink (path ("h/out"), path ("h/dest2/d/sub")));
  const struct ent through[] = { { "d", AE_IFDIR, NULL }, { "d/sub", AE_IFDIR, NULL }, { "d/sub/f", AE_IFREG, "x" } };
  cella_error_t err = NULL;
  int fd = libarchive_tar (ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, through, 3);
  int r = extract (fd, "h/dest2", "d", false, &err);
  struct stat st;
  CHECK (access (path ("h/out/f"), F_OK) < 0, "a symlink planted in the destination is not written through");
  CHECK (r == 0 && lstat (path ("h/dest2/d/sub"), &st) == 0 && S_ISDIR (st.st_mode),
         "it is replaced by the archive's directory");
  cella_error_free (&err);
  close (fd);

  /* a directory is not replaced by a file */
  const struct ent onto_dir[] = { { "d", AE_IFDIR, NULL }, { "d/sub", AE_IFREG, "x" } };
  fd = libarchive_tar (ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, onto_dir, 2);
  r = extract (fd, "h/dest2", "d", false, &err);
  CHECK (r < 0 && err && strstr (err->msg, "directory"), "a file over an existing directory is refused (%s)",
         err ? err->msg : "accepted");
  cella_error_free (&err);
  close (fd);

  /* hard links are refused */
  fd = memfd_create ("hl", MFD_CLOEXEC);
  struct archive *a = archive_write_new ();
  archive_write_set_format (a, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
  archive_write_open_fd (a, fd);
  struct archive_entry *e = archive_entry_new ();
  archive_entry_copy_pathname (e, "d");
  archive_entry_set_mode (e, AE_IFDIR | 0755);
  archive_write_header (a, e);
  archive_entry_clear (e);
  archive_entry_copy_pathname (e, "d/h");
  archive_entry_set_mode (e, AE_IFREG | 0644);
  archive_entry_copy_hardlink (e, "d/../../etc/passwd");
  archive_write_header (a, e);
  archive_entry_free (e);
  archive_write_close (a);
  archive_write_free (a);
  r = extract (fd, "h/dest3", "d", false, &err);
  CHECK (r < 0 && err && strstr (err->msg, "hard link"), "a hard-link entry is refused (%s)",
         err ? err->msg : "accepted");
  cella_error_free (&err);
  close (fd);
}

static void
test_damaged (void)
{
  int fd = archive_of_tree (false);
  cella_error_t err = NULL;
  struct stat st;
  fstat (fd, &st);
  /* truncated in the middle of the first file's data */
  int cut = memfd_create ("cut", MFD_CLOEXEC);
  char buf[2048];
  lseek (fd, 0, SEEK_SET);
  if (read (fd, buf, sizeof buf) != (ssize_t) sizeof buf || write (cut, buf, 1100) != 1100)
    abort ();
  int r = extract (cut, "dmg1", "t", false, &err);
  CHECK (r < 0 && err && strstr (err->msg, "truncated"), "a truncated archive is an error (%s)",
         err ? err->msg : "accepted");
  cella_error_free (&err);
  /* a header with a flipped byte */
  buf[5] ^= 1;
  int bad = memfd_create ("bad", MFD_CLOEXEC);
  if (write (bad, buf, sizeof buf) != (ssize_t) sizeof buf)
    abort ();
  r = extract (bad, "dmg2", "t", false, &err);
  CHECK (r < 0 && err && strstr (err->msg, "checksum"), "a damaged header is an error (%s)",
         err ? err->msg : "accepted");
  cella_error_free (&err);
  /* an empty stream (the guest failed before writing) */
  int empty = memfd_create ("empty", MFD_CLOEXEC);
  r = extract (empty, "dmg3", "t", false, &err);
  CHECK (r < 0, "an empty stream is an error (%s)", err ? err->msg : "accepted");
  cella_error_free (&err);
  close (fd);
  close (cut);
  close (bad);
  close (empty);
}

int
main (void)
{
  snprintf (base, sizeof base, "/tmp/test_vmtar.XXXXXX");
  if (mkdtemp (base) == NULL)
    return 1;
  umask (022);
  make_tree ();
  test_round_trip ();
  test_xattrs ();
  test_libarchive_reads_ours ();
  test_reads_libarchive ();
  test_hostile ();
  test_hardlinks ();
  test_damaged ();
  char cmd[128];
  snprintf (cmd, sizeof cmd, "rm -rf %s", base);
  if (system (cmd) != 0)
    return 1;
  return tap_done ();
}
