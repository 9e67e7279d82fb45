/* Unit tests for layer unpacking and packing (image/tool/unpack.c, pack.c). Every archive is
 * built here with libarchive's writer, so the malicious ones need no fixture files; every path
 * written is under one mkdtemp directory, and each escape case checks that a sibling directory
 * it aims at (outside/) stays untouched. Root-only cases (device nodes, chown, trusted.*
 * xattrs) say `# SKIP` when run as an ordinary user. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/tool/digest.h"
#include "image/tool/pack.h"
#include "image/tool/unpack.h"
#include "tap.h"

#define T_FILE 1500000000
#define T_DIR 1600000000
#define MIB (1024 * 1024)

static char base[64]; /* the temporary directory all cases live in */
static bool is_root;  /* real root: uid 0 in the initial user namespace (not `unshare -r`) */

/* Paths under base; a ring of buffers so a few can be used in one expression. */
static const char *__attribute__ ((format (printf, 1, 2))) P (const char *fmt, ...)
{
  static char ring[8][PATH_MAX];
  static unsigned i;
  char *b = ring[i++ % 8];
  int n;
  va_list ap;
  n = snprintf (b, PATH_MAX, "%s/", base);
  va_start (ap, fmt);
  vsnprintf (b + n, (size_t) (PATH_MAX - n), fmt, ap);
  va_end (ap);
  return b;
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
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

static char *
slurp (const char *path)
{
  char *s = NULL;
  cella_error_t err = NULL;
  if (read_file (path, &s, NULL, &err) < 0)
    {
      cella_error_free (&err);
      return xstrdup ("(unreadable)");
    }
  return s;
}

static void
put (const char *path, const char *text, mode_t mode)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  must (fd, path);
  must (write_all (fd, text, strlen (text)), path);
  must (fchmod (fd, mode), path);
  close (fd);
}

static int
count_entries (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir (d)) != NULL)
    n += strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0;
  closedir (d);
  return n;
}

/* A fresh case directory base/NAME with root/ (the unpack target) and outside/ (what an escape
 * would hit). */
static void
new_case (const char *name)
{
  must (mkdir (P ("%s", name), 0755), name);
  must (mkdir (P ("%s/root", name), 0755), name);
  must (mkdir (P ("%s/outside", name), 0755), name);
}

/* ---------------------------------------------------------------- building archives */

struct tb {
  struct archive *a;
  char *buf;
  size_t len, cap;
};

static la_ssize_t
tb_out (struct archive *a, void *ud, const void *buf, size_t len)
{
  struct tb *t = ud;
  (void) a;
  if (t->len + len > t->cap)
    {
      t->cap = (t->len + len) * 2;
      t->buf = xrealloc (t->buf, t->cap);
    }
  memcpy (t->buf + t->len, buf, len);
  t->len += len;
  return (la_ssize_t) len;
}

static struct tb *
tb_new (int filter)
{
  struct tb *t = xzalloc (sizeof *t);
  t->a = archive_write_new ();
  if (archive_write_set_format_pax (t->a) != ARCHIVE_OK || archive_write_add_filter (t->a, filter) != ARCHIVE_OK
      || archive_write_set_bytes_in_last_block (t->a, 1) != ARCHIVE_OK
      || archive_write_open (t->a, t, NULL, tb_out, NULL) != ARCHIVE_OK)
    {
      fprintf (stderr, "tb_new: %s\n", archive_error_string (t->a));
      exit (2);
    }
  return t;
}

static struct archive_entry *
ent (const char *name, mode_t mode)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_copy_pathname (e, name);
  archive_entry_set_mode (e, mode);
  archive_entry_set_mtime (e, T_FILE, 0);
  return e;
}

/* Write e (freed) and its data. */
static void
tb_put (struct tb *t, struct archive_entry *e, const void *data, size_t len)
{
  if (S_ISREG (archive_entry_mode (e)) && archive_entry_hardlink (e) == NULL && !archive_entry_size_is_set (e))
    archive_entry_set_size (e, (la_int64_t) len);
  if (archive_write_header (t->a, e) < ARCHIVE_WARN || (len && archive_write_data (t->a, data, len) < 0))
    {
      fprintf (stderr, "tb_put %s: %s\n", archive_entry_pathname (e), archive_error_string (t->a));
      exit (2);
    }
  archive_entry_free (e);
}

static void
tb_file (struct tb *t, const char *name, mode_t mode, const char *text)
{
  tb_put (t, ent (name, S_IFREG | mode), text, strlen (text));
}

static void
tb_dir (struct tb *t, const char *name, mode_t mode)
{
  tb_put (t, ent (name, S_IFDIR | mode), NULL, 0);
}

static void
tb_symlink (struct tb *t, const char *name, const char *target)
{
  struct archive_entry *e = ent (name, S_IFLNK | 0777);
  archive_entry_copy_symlink (e, target);
  tb_put (t, e, NULL, 0);
}

static void
tb_hardlink (struct tb *t, const char *name, const char *target)
{
  struct archive_entry *e = ent (name, S_IFREG | 0644);
  archive_entry_copy_hardlink (e, target);
  archive_entry_set_size (e, 0);
  tb_put (t, e, NULL, 0);
}

static void
tb_node (struct tb *t, const char *name, mode_t mode, dev_t rdev)
{
  struct archive_entry *e = ent (name, mode);
  archive_entry_set_rdev (e, rdev);
  tb_put (t, e, NULL, 0);
}

/* The archive as a memfd at offset 0; t is freed. */
static int
tb_fd (struct tb *t)
{
  int fd = memfd_create ("layer", MFD_CLOEXEC);
  if (archive_write_close (t->a) != ARCHIVE_OK)
    {
      fprintf (stderr, "tb_fd: %s\n", archive_error_string (t->a));
      exit (2);
    }
  archive_write_free (t->a);
  must (fd, "memfd_create");
  must (write_all (fd, t->buf, t->len), "write memfd");
  must ((int) lseek (fd, 0, SEEK_SET), "lseek");
  free (t->buf);
  free (t);
  return fd;
}

/* A memfd holding len bytes of buf. */
static int
mem_fd (const void *buf, size_t len)
{
  int fd = memfd_create ("bytes", MFD_CLOEXEC);
  must (fd, "memfd_create");
  must (write_all (fd, buf, len), "write memfd");
  must ((int) lseek (fd, 0, SEEK_SET), "lseek");
  return fd;
}

/* ---------------------------------------------------------------- unpacking */

static int
unpack_to (int tarfd, const char *dir, const struct unpack_opts *o, struct unpack_stats *st, cella_error_t *err)
{
  int dfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int r;
  must (dfd, dir);
  r = layer_unpack (tarfd, dfd, o, st, err);
  close (dfd);
  close (tarfd);
  return r;
}

static bool
ok_unpack (int tarfd, const char *dir, const struct unpack_opts *o, struct unpack_stats *st)
{
  cella_error_t err = NULL;
  if (unpack_to (tarfd, dir, o, st, &err) == 0)
    return true;
  printf ("#   layer_unpack: %s\n", err->msg);
  cella_error_free (&err);
  return false;
}

/* The unpack fails and the message has both needles. */
static bool
refused (int tarfd, const char *dir, const struct unpack_opts *o, const char *n1, const char *n2)
{
  cella_error_t err = NULL;
  bool ok;
  if (unpack_to (tarfd, dir, o, NULL, &err) == 0)
    {
      printf ("#   layer_unpack succeeded\n");
      return false;
    }
  ok = strstr (err->msg, n1) && (n2 == NULL || strstr (err->msg, n2));
  if (!ok)
    printf ("#   error was: %s\n", err->msg);
  cella_error_free (&err);
  return ok;
}

static const struct unpack_opts layer_opts = { .mode = UNPACK_LAYER, .user_xattr = true };
static const struct unpack_opts flat_opts = { .mode = UNPACK_FLAT, .user_xattr = true };

/* ---------------------------------------------------------------- comparing trees */

static uint64_t
hash_file (int dfd, const char *name)
{
  uint64_t h = 1469598103934665603ULL;
  char buf[8192];
  ssize_t n;
  int fd = openat (dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return 0;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      h = (h ^ (unsigned char) buf[i]) * 1099511628211ULL;
  close (fd);
  return h;
}

/* " user.k=v" for each user.* xattr (sorted by the kernel's list order). */
static char *
xattr_sig (int dfd, const char *name)
{
  char proc[PATH_MAX], list[4096], val[256];
  char *out = xstrdup (""), *tmp;
  ssize_t n;
  snprintf (proc, sizeof proc, "/proc/self/fd/%d/%s", dfd, name);
  n = llistxattr (proc, list, sizeof list);
  for (char *k = list; n > 0 && k < list + n; k += strlen (k) + 1)
    {
      ssize_t v = lgetxattr (proc, k, val, sizeof val - 1);
      if (!has_prefix (k, "user.") || v < 0)
        continue;
      val[v] = '\0';
      tmp = xasprintf ("%s %s=%s", out, k, val);
      free (out);
      out = tmp;
    }
  return out;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static char **
sorted_names (int dfd)
{
  char **names = NULL;
  DIR *d = fdopendir (openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct dirent *e;
  if (d == NULL)
    return NULL;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      strv_push (&names, e->d_name);
  closedir (d);
  if (names)
    qsort (names, strv_len (names), sizeof *names, cmp_str);
  return names;
}

static char *
entry_sig (int dfd, const char *name, const char *path, const struct stat *st)
{
  cleanup_free char *xa = xattr_sig (dfd, name);
  char extra[PATH_MAX + 1] = "";
  ssize_t n;
  if (S_ISREG (st->st_mode))
    snprintf (extra, sizeof extra, "size=%lld links=%ld hash=%016llx", (long long) st->st_size, (long) st->st_nlink,
              (unsigned long long) hash_file (dfd, name));
  else if (S_ISLNK (st->st_mode) && (n = readlinkat (dfd, name, extra, PATH_MAX)) >= 0)
    extra[n] = '\0';
  else if (S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode))
    snprintf (extra, sizeof extra, "%u:%u", major (st->st_rdev), minor (st->st_rdev));
  return xasprintf ("%s %07o mtime=%lld %s%s", path, (unsigned) st->st_mode,
                    S_ISLNK (st->st_mode) ? 0LL : (long long) st->st_mtim.tv_sec, extra, xa);
}

static void
sig_walk (int dfd, const char *rel, char ***lines)
{
  cleanup_strv char **names = sorted_names (dfd);
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *path = *rel ? xasprintf ("%s/%s", rel, names[i]) : xstrdup (names[i]);
      struct stat st;
      if (fstatat (dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISSOCK (st.st_mode))
        continue;
      strv_push (lines, "");
      free ((*lines)[strv_len (*lines) - 1]);
      (*lines)[strv_len (*lines) - 1] = entry_sig (dfd, names[i], path, &st);
      if (S_ISDIR (st.st_mode))
        {
          int sub = openat (dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            {
              sig_walk (sub, path, lines);
              close (sub);
            }
        }
    }
}

/* One line per entry: path, mode, mtime, contents or target or device, user.* xattrs. */
static char *
tree_sig (const char *dir)
{
  cleanup_strv char **lines = NULL;
  char *out = xstrdup ("\n"), *tmp;
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return out;
  sig_walk (dfd, "", &lines);
  close (dfd);
  for (size_t i = 0; lines && lines[i]; i++)
    {
      tmp = xasprintf ("%s#     %s\n", out, lines[i]);
      free (out);
      out = tmp;
    }
  return out;
}

/* ---------------------------------------------------------------- reading tars back */

/* "TYPE NAME[=HARDLINK] [xattrs=N]" for each entry, in archive order; NULL if it is not a tar
 * (with any_filter false: not an uncompressed one). */
static char **
tar_lines (const void *buf, size_t len, bool any_filter)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  char **lines = NULL;
  int r;
  if (any_filter)
    archive_read_support_filter_all (a);
  else
    archive_read_support_filter_none (a);
  archive_read_support_format_tar (a);
  if (archive_read_open_memory (a, buf, len) != ARCHIVE_OK)
    {
      archive_read_free (a);
      return NULL;
    }
  while ((r = archive_read_next_header (a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      mode_t t = archive_entry_filetype (e);
      const char *hl = archive_entry_hardlink (e);
      cleanup_free char *line = xasprintf ("%c %s%s%s%s",
                                           hl              ? 'h'
                                           : t == AE_IFDIR ? 'd'
                                           : t == AE_IFLNK ? 'l'
                                           : t == AE_IFREG ? 'f'
                                                           : 'n',
                                           archive_entry_pathname (e), hl ? "=" : "", hl ? hl : "",
                                           archive_entry_xattr_count (e) ? " xattrs" : "");
      strv_push (&lines, line);
    }
  if (r != ARCHIVE_EOF)
    {
      strv_free (lines);
      lines = NULL;
    }
  archive_read_free (a);
  return lines;
}

static bool
has_line (char **lines, const char *want)
{
  for (size_t i = 0; lines && lines[i]; i++)
    if (strcmp (lines[i], want) == 0)
      return true;
  return false;
}

static size_t
line_index (char **lines, const char *want)
{
  for (size_t i = 0; lines && lines[i]; i++)
    if (strcmp (lines[i], want) == 0)
      return i;
  return (size_t) -1;
}

/* ---------------------------------------------------------------- the normal layer */

/* 17 entries, the root's included; owners are set on all but the root and the hard link. */
static const size_t normal_entries = 17, normal_owned = 15;

static void
build_normal_tree (struct tb *t)
{
  struct archive_entry *e;
  cleanup_free char *sparse = xzalloc (MIB);
  e = ent ("d/", S_IFDIR | 0755);
  archive_entry_set_mtime (e, T_DIR, 0);
  tb_put (t, e, NULL, 0);
  e = ent ("d/file", S_IFREG | 0644);
  archive_entry_xattr_add_entry (e, "user.test", "v1", 2);
  tb_put (t, e, "hello\n", 6);
  tb_file (t, "d/empty", 0600, "");
  tb_file (t, "d/suid", 04755, "#!/bin/sh\n");
  tb_symlink (t, "d/link", "file");
  tb_hardlink (t, "d/hard", "d/file");
  tb_dir (t, "ro/", 0555);
  tb_file (t, "ro/f", 0444, "r");
  tb_file (t, "./dot/x", 0644, "dot");
  tb_dir (t, "./dot/", 0750);
  tb_file (t, "d/sub/deep", 0644, "deep");
  tb_dir (t, "d/sub/", 0711);
  tb_file (t, "//abs//file", 0644, "abs");
  tb_dir (t, "/abs/", 0755);
  memset (sparse, 'a', 4096);
  memset (sparse + MIB - 4096, 'b', 4096);
  e = ent ("sparse", S_IFREG | 0644);
  archive_entry_set_size (e, MIB);
  archive_entry_sparse_add_entry (e, 0, 4096);
  archive_entry_sparse_add_entry (e, MIB - 4096, 4096);
  tb_put (t, e, sparse, MIB);
  tb_dir (t, "./", 0755);
  e = ent ("d/ovl", S_IFREG | 0644); /* overlay metadata from an archive is never applied */
  archive_entry_xattr_add_entry (e, "user.overlay.redirect", "/x", 2);
  tb_put (t, e, "o", 1);
}

static int
normal_layer (int filter)
{
  struct tb *t = tb_new (filter);
  build_normal_tree (t);
  return tb_fd (t);
}

static bool
xattr_is (const char *path, const char *name, const char *want)
{
  char v[256];
  ssize_t n = lgetxattr (path, name, v, sizeof v - 1);
  if (n < 0)
    return false;
  v[n] = '\0';
  return strcmp (v, want) == 0;
}

static void
check_normal_tree (const char *r)
{
  struct stat st, st2;
  cleanup_free char *hello = slurp (P ("%s/d/file", r)), *deep = slurp (P ("%s/d/sub/deep", r));
  char buf[PATH_MAX] = "";
  int fd;
  CHECK (strcmp (hello, "hello\n") == 0 && stat (P ("%s/d/file", r), &st) == 0 && (st.st_mode & 07777) == 0644,
         "normal: a file's contents and mode");
  CHECK (st.st_mtim.tv_sec == T_FILE, "normal: a file's mtime");
  CHECK (stat (P ("%s/d", r), &st) == 0 && st.st_mtim.tv_sec == T_DIR && (st.st_mode & 07777) == 0755,
         "normal: a directory's mtime and mode, set after its children");
  CHECK (xattr_is (P ("%s/d/file", r), "user.test", "v1"), "normal: xattr user.test kept");
  CHECK (lgetxattr (P ("%s/d/ovl", r), "user.overlay.redirect", buf, sizeof buf) < 0,
         "normal: an overlay xattr in the archive is not applied");
  CHECK (stat (P ("%s/d/empty", r), &st) == 0 && S_ISREG (st.st_mode) && st.st_size == 0
             && (st.st_mode & 07777) == 0600,
         "normal: an empty file");
  CHECK (stat (P ("%s/d/suid", r), &st) == 0 && (st.st_mode & 07777) == 04755, "normal: mode 04755 kept");
  CHECK (readlink (P ("%s/d/link", r), buf, sizeof buf) == 4 && memcmp (buf, "file", 4) == 0,
         "normal: a symlink and its target");
  CHECK (stat (P ("%s/d/hard", r), &st) == 0 && stat (P ("%s/d/file", r), &st2) == 0 && st.st_ino == st2.st_ino
             && st.st_nlink == 2,
         "normal: a hard link is the same inode");
  CHECK (stat (P ("%s/ro", r), &st) == 0 && (st.st_mode & 07777) == 0555 && exists (P ("%s/ro/f", r)),
         "normal: a 0555 directory gets its child, then its mode");
  CHECK (stat (P ("%s/dot", r), &st) == 0 && (st.st_mode & 07777) == 0750 && exists (P ("%s/dot/x", r)),
         "normal: ./ names, an implicit parent updated by its later entry");
  CHECK (strcmp (deep, "deep") == 0 && stat (P ("%s/d/sub", r), &st) == 0 && (st.st_mode & 07777) == 0711,
         "normal: a child before its directory's entry");
  CHECK (exists (P ("%s/abs/file", r)), "normal: //abs//file and /abs/ land at abs/file and abs");
  fd = open (P ("%s/sparse", r), O_RDONLY | O_CLOEXEC);
  CHECK (fd >= 0 && fstat (fd, &st) == 0 && st.st_size == MIB && st.st_blocks * 512 < MIB / 2
             && pread (fd, buf, 1, 0) == 1 && buf[0] == 'a' && pread (fd, buf, 1, MIB / 2) == 1 && buf[0] == 0
             && pread (fd, buf, 1, MIB - 1) == 1 && buf[0] == 'b',
         "normal: a 1 MiB sparse file keeps its hole (%lld blocks)", (long long) st.st_blocks);
  if (fd >= 0)
    close (fd);
}

static void
test_normal (void)
{
  struct unpack_stats st;
  struct stat root_st;
  const char *r = "normal/root"; /* relative to base, as P () takes it */
  new_case ("normal");
  CHECK (ok_unpack (normal_layer (ARCHIVE_FILTER_NONE), P ("%s", r), &layer_opts, &st), "normal: a plain tar unpacks");
  check_normal_tree (r);
  CHECK (st.entries == normal_entries, "normal: entries counted (%llu)", (unsigned long long) st.entries);
  CHECK (st.bytes == 6 + 10 + 1 + 3 + 4 + 3 + 8192 + 1, "normal: data bytes counted (%llu)",
         (unsigned long long) st.bytes);
  CHECK (geteuid () == 0 ? st.owner_failures == 0 : st.owner_failures == normal_owned,
         "normal: entries not owned as in the archive are counted (%llu)", (unsigned long long) st.owner_failures);
  CHECK (stat (P ("%s", r), &root_st) == 0 && root_st.st_mtim.tv_sec == T_FILE,
         "normal: the ./ entry sets the root's times");
}

static void
test_compressed (void)
{
  static const struct {
    int filter;
    const char *name;
  } filters[] = { { ARCHIVE_FILTER_GZIP, "gzip" },
                  { ARCHIVE_FILTER_ZSTD, "zstd" },
                  { ARCHIVE_FILTER_XZ, "xz" },
                  { ARCHIVE_FILTER_BZIP2, "bzip2" } };
  cleanup_free char *want = tree_sig (P ("normal/root"));
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
    {
      cleanup_free char *got = NULL;
      char dir[PATH_MAX];
      snprintf (dir, sizeof dir, "%s", P ("%s", filters[i].name));
      must (mkdir (dir, 0755), dir);
      CHECK (ok_unpack (normal_layer (filters[i].filter), dir, &layer_opts, NULL), "%s: unpacks (found from the data)",
             filters[i].name);
      got = tree_sig (dir);
      CHECK_STR (got, want, filters[i].name);
    }
}

/* ---------------------------------------------------------------- hostile layers */

static void
test_escapes (void)
{
  struct tb *t;
  char *long_name = xzalloc (5001), comp[301];
  cleanup_free char *comp_name = NULL;
  new_case ("esc");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "../escape", 0644, "x");
  CHECK (refused (tb_fd (t), P ("esc/root"), &layer_opts, "layer entry `../escape`: path leaves the layer", NULL)
             && !exists (P ("esc/escape")),
         "../escape is refused, nothing written beside the root");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "a/../../escape", 0644, "x");
  CHECK (refused (tb_fd (t), P ("esc/root"), &layer_opts, "`a/../../escape`", "leaves the layer")
             && !exists (P ("esc/escape")),
         "a/../../escape is refused");
  for (int i = 0; i < 50; i++)
    memset (long_name + i * 100, i == 49 ? 'z' : 'a', 100), long_name[i * 100 + 99] = i == 49 ? 'z' : '/';
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, long_name, 0644, "x");
  CHECK (refused (tb_fd (t), P ("esc/root"), &layer_opts, "too long", "...`"), "a 5000-byte name is too long");
  memset (comp, 'b', 300);
  comp[300] = '\0';
  comp_name = xasprintf ("ok/%s", comp);
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, comp_name, 0644, "x");
  CHECK (refused (tb_fd (t), P ("esc/root"), &layer_opts, "too long", "component of 300 bytes"),
         "a 300-byte component is too long");
  CHECK (count_entries (P ("esc/root")) == 0 && count_entries (P ("esc")) == 2, "nothing was written by those");
  free (long_name);
}

static void
test_symlink_tricks (void)
{
  struct tb *t;
  new_case ("sym");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_symlink (t, "link", P ("sym/outside"));
  tb_file (t, "link/evil", 0644, "x");
  CHECK (refused (tb_fd (t), P ("sym/root"), &layer_opts, "layer entry `link/evil`: `link` is a symlink", NULL)
             && count_entries (P ("sym/outside")) == 0,
         "link -> outside, then link/evil: refused, outside stays empty");
  must (mkdir (P ("sym/deeper"), 0755), "deeper");
  must (mkdir (P ("sym/deeper/root"), 0755), "deeper/root");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_symlink (t, "up", "../..");
  tb_file (t, "up/x", 0644, "x");
  CHECK (refused (tb_fd (t), P ("sym/deeper/root"), &layer_opts, "`up/x`", "symlink") && !exists (P ("sym/x")),
         "up -> ../.., then up/x: refused");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_symlink (t, "a", "/");
  tb_file (t, "a/b/c", 0644, "x");
  CHECK (refused (tb_fd (t), P ("sym/root"), &layer_opts, "`a` is a symlink", NULL),
         "a -> /, then a/b/c: refused at the first component");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_symlink (t, "t", P ("sym/outside/target"));
  tb_file (t, "t", 0644, "data");
  tb_symlink (t, "sl", P ("sym/outside"));
  tb_dir (t, "sl/", 0755);
  tb_file (t, "sl/f", 0644, "f");
  CHECK (ok_unpack (tb_fd (t), P ("sym/root"), &layer_opts, NULL), "a file or a directory replaces a symlink");
  {
    struct stat st;
    CHECK (lstat (P ("sym/root/t"), &st) == 0 && S_ISREG (st.st_mode) && lstat (P ("sym/root/sl"), &st) == 0
               && S_ISDIR (st.st_mode) && exists (P ("sym/root/sl/f")) && count_entries (P ("sym/outside")) == 0,
           "the replaced symlinks were not followed");
  }
}

static void
test_hardlink_tricks (void)
{
  struct tb *t;
  struct stat host_before, host_after, st;
  new_case ("hl");
  put (P ("hl/outside/secret"), "secret", 0600);
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_hardlink (t, "h", "../outside/secret");
  CHECK (refused (tb_fd (t), P ("hl/root"), &layer_opts, "`h`: hard link target `../outside/secret` leaves the layer",
                  NULL),
         "a hard link to ../outside is refused");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "file", 0644, "f");
  tb_symlink (t, "s", "file");
  tb_hardlink (t, "h2", "s");
  CHECK (refused (tb_fd (t), P ("hl/root"), &layer_opts, "`h2`: hard link target `s` is a symlink", NULL),
         "a hard link to a symlink is refused");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_symlink (t, "sd", P ("hl/outside"));
  tb_hardlink (t, "h3", "sd/secret");
  CHECK (refused (tb_fd (t), P ("hl/root"), &layer_opts, "`h3`: hard link target `sd/secret`: `sd` is a symlink", NULL),
         "a hard link through a symlinked directory is refused");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_dir (t, "dd/", 0755);
  tb_hardlink (t, "h4", "dd");
  CHECK (refused (tb_fd (t), P ("hl/root"), &layer_opts, "`dd` is a directory", NULL),
         "a hard link to a directory is refused");
  must (stat ("/etc/passwd", &host_before), "/etc/passwd");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_hardlink (t, "pw", "/etc/passwd");
  CHECK (
      refused (tb_fd (t), P ("hl/root"), &layer_opts, "`pw`: hard link target `/etc/passwd` is not in the layer", NULL),
      "a hard link to /etc/passwd is resolved in the layer, and missing");
  must (stat ("/etc/passwd", &host_after), "/etc/passwd");
  CHECK (host_after.st_nlink == host_before.st_nlink && !exists (P ("hl/root/pw")),
         "the host's /etc/passwd was not linked");
  CHECK (stat (P ("hl/outside/secret"), &st) == 0 && st.st_nlink == 1, "outside/secret was never linked");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_dir (t, "etc/", 0755);
  tb_file (t, "etc/passwd", 0644, "root:x:0:0::/root:/bin/sh\n");
  tb_hardlink (t, "pw", "/etc/passwd");
  CHECK (ok_unpack (tb_fd (t), P ("hl/root"), &layer_opts, NULL) && stat (P ("hl/root/pw"), &st) == 0
             && st.st_nlink == 2,
         "a hard link to /etc/passwd inside the layer links the layer's file");
}

static void
test_replace_and_garbage (void)
{
  struct tb *t;
  struct stat st;
  cleanup_free char *two = NULL;
  cella_error_t err = NULL;
  static const char junk[] = "this is not a tar archive, nor anything compressed, just text that goes on a while";
  new_case ("repl");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "r", 0644, "one");
  tb_dir (t, "r/", 0755);
  tb_file (t, "r/c", 0644, "c");
  tb_file (t, "r", 0600, "two");
  CHECK (ok_unpack (tb_fd (t), P ("repl/root"), &layer_opts, NULL), "later entries replace earlier ones");
  two = slurp (P ("repl/root/r"));
  CHECK (lstat (P ("repl/root/r"), &st) == 0 && S_ISREG (st.st_mode) && strcmp (two, "two") == 0,
         "a file replaces a non-empty directory that replaced a file");
  unpack_to (mem_fd (junk, sizeof junk), P ("repl/root"), &layer_opts, NULL, &err);
  CHECK (err && has_prefix (err->msg, "read layer"), "garbage is refused: %s", err ? err->msg : "(no error)");
  cella_error_free (&err);
  {
    struct tb *big = tb_new (ARCHIVE_FILTER_NONE);
    char data[4000];
    memset (data, 'q', sizeof data);
    tb_put (big, ent ("trunc", S_IFREG | 0644), data, sizeof data);
    archive_write_close (big->a);
    unpack_to (mem_fd (big->buf, 1536), P ("repl/root"), &layer_opts, NULL, &err);
    CHECK (err && strstr (err->msg, "`trunc`"), "a truncated tar is refused, naming the entry: %s",
           err ? err->msg : "(no error)");
    cella_error_free (&err);
    archive_write_free (big->a);
    free (big->buf);
    free (big);
  }
}

/* ---------------------------------------------------------------- whiteouts */

static bool
is_whiteout (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0);
}

static int
whiteout_layer (void)
{
  struct tb *t = tb_new (ARCHIVE_FILTER_NONE);
  tb_dir (t, "d/", 0755);
  tb_file (t, "d/keep", 0644, "k");
  tb_file (t, "d/.wh..wh..opq", 0644, "");
  tb_file (t, ".wh.gone", 0644, "");
  tb_file (t, "d/.wh.sub", 0644, "");
  tb_file (t, "n/.wh..wh..opq", 0644, ""); /* before its directory exists */
  tb_file (t, ".wh..wh.plnk", 0644, "");
  return tb_fd (t);
}

static void
test_layer_whiteouts (void)
{
  struct unpack_opts root_opts = { .mode = UNPACK_LAYER };
  char v[8];
  must (mkdir (P ("wh"), 0755), "wh");
  CHECK (ok_unpack (whiteout_layer (), P ("wh"), &layer_opts, NULL), "layer: whiteouts unpack");
  CHECK (is_whiteout (P ("wh/gone")) && !exists (P ("wh/.wh.gone")), "layer: .wh.gone becomes char device 0:0 `gone`");
  CHECK (is_whiteout (P ("wh/d/sub")) && exists (P ("wh/d/keep")), "layer: d/.wh.sub becomes d/sub, d/keep stays");
  CHECK (xattr_is (P ("wh/d"), "user.overlay.opaque", "y") && !exists (P ("wh/d/.wh..wh..opq")),
         "layer: d/.wh..wh..opq makes d opaque (user.overlay.opaque=y)");
  CHECK (xattr_is (P ("wh/n"), "user.overlay.opaque", "y"), "layer: an opaque marker before its directory");
  CHECK (!exists (P ("wh/.wh..wh.plnk")) && lgetxattr (P ("wh/d"), "trusted.overlay.opaque", v, sizeof v) < 0,
         "layer: aufs metadata ignored; no trusted.* xattr with user_xattr");
  if (!is_root)
    {
      tap_skip ("needs root", "layer: trusted.overlay.opaque as root");
      return;
    }
  must (mkdir (P ("wh-root"), 0755), "wh-root");
  CHECK (ok_unpack (whiteout_layer (), P ("wh-root"), &root_opts, NULL)
             && xattr_is (P ("wh-root/d"), "trusted.overlay.opaque", "y"),
         "layer: trusted.overlay.opaque as root");
}

static void
test_flat (void)
{
  struct tb *t;
  new_case ("flat");
  put (P ("flat/outside/secret"), "s", 0644);
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "x", 0644, "x");
  tb_file (t, "d/old1", 0644, "1");
  tb_file (t, "d/old2/deep", 0644, "2");
  tb_file (t, "keep", 0644, "k");
  tb_symlink (t, "sl", P ("flat/outside"));
  tb_symlink (t, "sl2", P ("flat/outside"));
  tb_file (t, "dd/inner/f", 0644, "f");
  CHECK (ok_unpack (tb_fd (t), P ("flat/root"), &flat_opts, NULL), "flat: the first layer");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, ".wh.x", 0644, "");
  tb_file (t, "d/new", 0644, "n");
  tb_file (t, "d/old2/again", 0644, "a");
  tb_file (t, "d/.wh..wh..opq", 0644, "");
  tb_file (t, "d/new2", 0644, "n2");
  tb_file (t, ".wh.sl", 0644, "");
  tb_file (t, ".wh.dd", 0644, "");
  tb_file (t, ".wh.missing", 0644, "");
  tb_file (t, "nodir/.wh.y", 0644, "");
  CHECK (ok_unpack (tb_fd (t), P ("flat/root"), &flat_opts, NULL), "flat: a layer with whiteouts on top");
  CHECK (!exists (P ("flat/root/x")) && !exists (P ("flat/root/.wh.x")) && exists (P ("flat/root/keep")),
         "flat: .wh.x removes x");
  CHECK (!exists (P ("flat/root/d/old1")) && !exists (P ("flat/root/d/old2/deep")),
         "flat: opaque d drops old children");
  CHECK (exists (P ("flat/root/d/new")) && exists (P ("flat/root/d/new2")) && exists (P ("flat/root/d/old2/again")),
         "flat: opaque d keeps this layer's children, before and after the marker");
  CHECK (!exists (P ("flat/root/d/.wh..wh..opq")) && !exists (P ("flat/root/nodir")), "flat: no marker files");
  CHECK (!exists (P ("flat/root/sl")) && exists (P ("flat/outside/secret")) && !exists (P ("flat/root/dd")),
         "flat: whiteouts remove a symlink (not its target) and a tree");
  t = tb_new (ARCHIVE_FILTER_NONE);
  tb_file (t, "sl2/.wh.secret", 0644, "");
  CHECK (refused (tb_fd (t), P ("flat/root"), &flat_opts, "`sl2/.wh.secret`: `sl2` is a symlink", NULL)
             && exists (P ("flat/outside/secret")),
         "flat: a whiteout through a symlink is refused");
}

/* ---------------------------------------------------------------- devices and owners */

static int
device_layer (void)
{
  struct tb *t = tb_new (ARCHIVE_FILTER_NONE);
  tb_node (t, "cdev", S_IFCHR | 0666, makedev (1, 3));
  tb_node (t, "bdev", S_IFBLK | 0600, makedev (7, 0));
  tb_node (t, "fifo", S_IFIFO | 0640, 0);
  return tb_fd (t);
}

static void
test_devices (void)
{
  struct unpack_opts skip = { .mode = UNPACK_LAYER, .skip_devices = true };
  struct unpack_stats st;
  struct stat s;
  must (mkdir (P ("dev-skip"), 0755), "dev-skip");
  must (mkdir (P ("dev"), 0755), "dev");
  CHECK (ok_unpack (device_layer (), P ("dev-skip"), &skip, &st) && st.skipped_devices == 3 && st.entries == 0
             && count_entries (P ("dev-skip")) == 0,
         "devices: skip_devices skips char, block and fifo, counted");
  CHECK (ok_unpack (device_layer (), P ("dev"), &layer_opts, &st), "devices: unpacked");
  CHECK (lstat (P ("dev/fifo"), &s) == 0 && S_ISFIFO (s.st_mode) && (s.st_mode & 07777) == 0640, "devices: a fifo");
  if (!is_root)
    {
      CHECK (st.skipped_devices == 2 && !exists (P ("dev/cdev")), "devices: without CAP_MKNOD, nodes are skipped");
      tap_skip ("needs root", "devices: char and block nodes");
      return;
    }
  CHECK (lstat (P ("dev/cdev"), &s) == 0 && S_ISCHR (s.st_mode) && s.st_rdev == makedev (1, 3)
             && (s.st_mode & 07777) == 0666 && lstat (P ("dev/bdev"), &s) == 0 && S_ISBLK (s.st_mode),
         "devices: char and block nodes");
}

static int
owner_layer (void)
{
  struct tb *t = tb_new (ARCHIVE_FILTER_NONE);
  struct archive_entry *e = ent ("o", S_IFREG | 04755);
  archive_entry_set_uid (e, 1234);
  archive_entry_set_gid (e, 5678);
  archive_entry_xattr_add_entry (e, "trusted.test", "t", 1);
  tb_put (t, e, "o", 1);
  e = ent ("od/", S_IFDIR | 02755);
  archive_entry_set_uid (e, 1234);
  archive_entry_set_gid (e, 5678);
  tb_put (t, e, NULL, 0);
  e = ent ("ol", S_IFLNK | 0777);
  archive_entry_copy_symlink (e, "o");
  archive_entry_set_uid (e, 1234);
  archive_entry_xattr_add_entry (e, "user.skipped", "u", 1);
  tb_put (t, e, NULL, 0);
  return tb_fd (t);
}

static void
test_owners (void)
{
  struct unpack_opts o = { .mode = UNPACK_LAYER, .set_owner = true };
  struct unpack_stats st;
  struct stat s;
  must (mkdir (P ("own"), 0755), "own");
  CHECK (ok_unpack (owner_layer (), P ("own"), &o, &st), "owners: set_owner unpacks");
  if (!is_root)
    {
      CHECK (st.owner_failures == 3 && lstat (P ("own/o"), &s) == 0 && s.st_uid == geteuid ()
                 && (s.st_mode & 07777) == 04755,
             "owners: chown refused is counted, files stay ours");
      tap_skip ("needs root", "owners: chown to the archive's ids");
      tap_skip ("needs root", "owners: trusted.* xattrs");
      return;
    }
  CHECK (st.owner_failures == 0 && lstat (P ("own/o"), &s) == 0 && s.st_uid == 1234 && s.st_gid == 5678
             && (s.st_mode & 07777) == 04755 && lstat (P ("own/od"), &s) == 0 && s.st_uid == 1234
             && (s.st_mode & 07777) == 02755 && lstat (P ("own/ol"), &s) == 0 && s.st_uid == 1234,
         "owners: chown to the archive's ids, setuid/setgid kept after it");
  CHECK (xattr_is (P ("own/o"), "trusted.test", "t"), "owners: trusted.* xattrs as root");
}

/* ---------------------------------------------------------------- packing */

struct sink {
  char *buf;
  size_t len;
};

static void
sink_tap (const void *buf, size_t len, void *ud)
{
  struct sink *s = ud;
  s->buf = xrealloc (s->buf, s->len + len);
  memcpy (s->buf + s->len, buf, len);
  s->len += len;
}

static void
make_source_tree (const char *src)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct timespec ts[2] = { { T_DIR, 0 }, { T_DIR, 0 } };
  cleanup_free char *big = xmalloc (300 * 1024);
  int fd, s;
  must (mkdir (src, 0755), src);
  must (mkdir (P ("pack/src/d"), 0750), "d");
  put (P ("pack/src/d/file"), "hello", 0640);
  if (setxattr (P ("pack/src/d/file"), "user.test", "v1", 2, 0) < 0)
    printf ("# setxattr: %s\n", strerror (errno));
  put (P ("pack/src/d/suid"), "x", 04755);
  put (P ("pack/src/empty"), "", 0644);
  must (symlink ("file", P ("pack/src/d/link")), "link");
  must (link (P ("pack/src/d/file"), P ("pack/src/d/hard")), "hard");
  must (mkdir (P ("pack/src/deep"), 0755), "deep");
  must (mkdir (P ("pack/src/deep/a"), 0700), "deep/a");
  put (P ("pack/src/deep/a/f"), "f", 0644);
  put (P ("pack/src/caf\xc3\xa9"), "utf-8 name", 0644);
  for (size_t i = 0; i < 300 * 1024; i++)
    big[i] = (char) (i * 2654435761u >> 13);
  fd = open (P ("pack/src/big"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  must (fd, "big");
  must (write_all (fd, big, 300 * 1024), "big");
  close (fd);
  must (mkfifo (P ("pack/src/p"), 0620), "fifo");
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", P ("pack/src/sock"));
  s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  must (s >= 0 ? bind (s, (struct sockaddr *) &sa, sizeof sa) : -1, "bind");
  close (s);
  must (utimensat (AT_FDCWD, P ("pack/src/d"), ts, 0), "utimensat");
  must (utimensat (AT_FDCWD, P ("pack/src/deep/a"), ts, 0), "utimensat");
}

/* Pack src with the given compression; *out gets the bytes out_fd received. */
static int
pack_to (const char *src, const struct pack_opts *o, struct sink *out, struct sink *tap, struct sink *raw,
         cella_error_t *err)
{
  int dfd = open (src, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = memfd_create ("packed", MFD_CLOEXEC);
  int r;
  must (dfd, src);
  must (fd, "memfd_create");
  r = layer_pack (dfd, fd, o, tap ? sink_tap : NULL, tap, raw ? sink_tap : NULL, raw, err);
  close (dfd);
  if (r == 0 && out)
    {
      off_t len = lseek (fd, 0, SEEK_CUR);
      out->buf = xmalloc ((size_t) len + 1);
      out->len = (size_t) pread (fd, out->buf, (size_t) len, 0);
    }
  close (fd);
  return r;
}

static void
check_pack_names (char **names)
{
  CHECK (has_line (names, "d d/") && has_line (names, "f d/file xattrs") && has_line (names, "h d/hard=d/file")
             && has_line (names, "l d/link") && has_line (names, "n p") && has_line (names, "f caf\xc3\xa9")
             && !has_line (names, "n sock") && line_index (names, "d deep/") < line_index (names, "d deep/a/"),
         "pack: relative names, directories first, hard links, no socket");
  for (size_t i = 0; names && names[i]; i++)
    if (has_prefix (names[i] + 2, "./") || has_prefix (names[i] + 2, "/") || names[i][2] == '\0')
      {
        CHECK (false, "pack: bad name `%s`", names[i]);
        return;
      }
  CHECK (names != NULL, "pack: no ./ prefixes, no root entry");
}

static void
test_pack_round_trip (void)
{
  static const struct {
    enum pack_compression c;
    const char *name;
  } modes[] = { { PACK_NONE, "none" }, { PACK_GZIP, "gzip" }, { PACK_ZSTD, "zstd" } };
  struct unpack_opts uo = { .mode = UNPACK_LAYER, .user_xattr = true, .set_owner = is_root };
  cleanup_free char *want = NULL;
  must (mkdir (P ("pack"), 0755), "pack");
  make_source_tree (P ("pack/src"));
  want = tree_sig (P ("pack/src"));
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
    {
      struct pack_opts po = { .compression = modes[i].c };
      struct sink out = { 0 }, tap = { 0 }, raw = { 0 };
      cella_error_t err = NULL;
      cleanup_strv char **names = NULL;
      cleanup_free char *got = NULL;
      char dst[PATH_MAX];
      int r;
      snprintf (dst, sizeof dst, "%s", P ("pack/dst-%s", modes[i].name));
      r = pack_to (P ("pack/src"), &po, &out, &tap, &raw, &err);
      CHECK (r == 0, "pack %s: packs%s%s", modes[i].name, err ? ": " : "", err ? err->msg : "");
      cella_error_free (&err);
      CHECK (tap.len == out.len && out.len > 0 && memcmp (tap.buf, out.buf, out.len) == 0,
             "pack %s: tap sees exactly the %zu bytes written", modes[i].name, out.len);
      names = tar_lines (raw.buf, raw.len, false);
      CHECK (names != NULL && raw.len % 512 == 0, "pack %s: tap_raw sees a plain tar (%zu bytes)", modes[i].name,
             raw.len);
      if (modes[i].c == PACK_NONE)
        CHECK (raw.len == out.len && memcmp (raw.buf, out.buf, out.len) == 0, "pack none: tap_raw is the output");
      else if (modes[i].c == PACK_GZIP)
        CHECK (out.len > 10 && memcmp (out.buf, "\x1f\x8b", 2) == 0 && memcmp (out.buf + 4, "\0\0\0\0", 4) == 0,
               "pack gzip: a gzip stream with no time in its header");
      else
        CHECK (out.len > 4 && memcmp (out.buf, "\x28\xb5\x2f\xfd", 4) == 0, "pack zstd: a zstd stream");
      if (i == 0)
        check_pack_names (names);
      must (mkdir (dst, 0755), dst);
      CHECK (ok_unpack (mem_fd (out.buf, out.len), dst, &uo, NULL), "pack %s: unpacks", modes[i].name);
      got = tree_sig (dst);
      CHECK_STR (got, want, "pack: round trip keeps names, modes, mtimes, contents, targets, links, xattrs");
      free (out.buf), free (tap.buf), free (raw.buf);
    }
}

static void
test_pack_reproducible_and_errors (void)
{
  struct pack_opts po = { .compression = PACK_GZIP, .reproducible = true };
  struct sink a = { 0 }, b = { 0 };
  cella_error_t err = NULL;
  int dfd, ro;
  CHECK (pack_to (P ("pack/src"), &po, &a, NULL, NULL, &err) == 0
             && pack_to (P ("pack/src"), &po, &b, NULL, NULL, &err) == 0 && a.len == b.len
             && memcmp (a.buf, b.buf, a.len) == 0,
         "pack: reproducible output is the same twice");
  cella_error_free (&err);
  free (a.buf), free (b.buf);
  put (P ("pack/ro"), "", 0644);
  ro = open (P ("pack/ro"), O_RDONLY | O_CLOEXEC);
  dfd = open (P ("pack/src"), O_PATH | O_DIRECTORY | O_CLOEXEC);
  layer_pack (dfd, ro, &po, NULL, NULL, NULL, NULL, &err);
  CHECK (err && strcmp (err->msg, "write layer") == 0 && err->errno_ == EBADF, "pack: a write error is reported: %s",
         err ? err->msg : "(none)");
  cella_error_free (&err);
  close (ro);
  close (dfd);
}

static void
test_pack_overlay_upper (void)
{
  struct pack_opts po = { .overlay_upper = true };
  struct sink out = { 0 };
  cella_error_t err = NULL;
  cleanup_strv char **names = NULL;
  must (mkdir (P ("upper"), 0755), "upper");
  must (mknod (P ("upper/gone"), S_IFCHR, makedev (0, 0)), "mknod whiteout");
  must (mkdir (P ("upper/op"), 0755), "op");
  must (setxattr (P ("upper/op"), "user.overlay.opaque", "y", 1, 0), "setxattr user.overlay.opaque");
  put (P ("upper/op/child"), "c", 0644);
  must (mkdir (P ("upper/plain"), 0755), "plain");
  must (setxattr (P ("upper/plain"), "user.overlay.opaque", "n", 1, 0), "setxattr");
  if (is_root)
    {
      must (mkdir (P ("upper/op2"), 0755), "op2");
      must (setxattr (P ("upper/op2"), "trusted.overlay.opaque", "y", 1, 0), "setxattr trusted.overlay.opaque");
    }
  CHECK (pack_to (P ("upper"), &po, &out, NULL, NULL, &err) == 0, "upper: packs");
  cella_error_free (&err);
  names = tar_lines (out.buf, out.len, false);
  CHECK (has_line (names, "f .wh.gone") && !has_line (names, "n gone"), "upper: a 0:0 char device becomes .wh.gone");
  CHECK (has_line (names, "d op/") && line_index (names, "d op/") + 1 == line_index (names, "f op/.wh..wh..opq")
             && line_index (names, "f op/child") > line_index (names, "f op/.wh..wh..opq"),
         "upper: an opaque dir gets .wh..wh..opq, before its children, and no overlay xattr");
  CHECK (has_line (names, "d plain/") && !has_line (names, "f plain/.wh..wh..opq"), "upper: opaque=n is not opaque");
  if (is_root)
    CHECK (has_line (names, "f op2/.wh..wh..opq"), "upper: trusted.overlay.opaque counts too");
  else
    tap_skip ("needs root", "upper: trusted.overlay.opaque counts too");
  must (mkdir (P ("upper-back"), 0755), "upper-back");
  CHECK (ok_unpack (mem_fd (out.buf, out.len), P ("upper-back"), &layer_opts, NULL)
             && is_whiteout (P ("upper-back/gone")) && xattr_is (P ("upper-back/op"), "user.overlay.opaque", "y")
             && !xattr_is (P ("upper-back/plain"), "user.overlay.opaque", "n"),
         "upper: unpacking it as a layer gives the whiteouts back");
  free (out.buf);
}

static bool
initial_userns (void)
{
  cleanup_free char *map = slurp ("/proc/self/uid_map");
  unsigned long inside, outside, count;
  return sscanf (map, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 && outside == 0
         && count == 4294967295UL;
}

/* ---------------------------------------------------------------- diff_ids and limits */

/* The sha256 of fd's bytes from 0: what a plain tar's diff_id must be. */
static void
sha_of (int fd, char out[72])
{
  must ((int) lseek (fd, 0, SEEK_SET), "lseek");
  must (sha256_fd (fd, out, NULL, NULL), "sha256_fd");
  must ((int) lseek (fd, 0, SEEK_SET), "lseek");
}

/* A layer with one file of n zero bytes (a bomb when n is large and the filter compresses). */
static int
zeros_layer (int filter, size_t n)
{
  struct tb *t = tb_new (filter);
  cleanup_free char *z = xzalloc (n);
  tb_put (t, ent ("zeros", S_IFREG | 0644), z, n);
  return tb_fd (t);
}

/* A sparse file that claims a gigabyte and holds 4 KiB of data. */
static int
sparse_layer (void)
{
  struct tb *t = tb_new (ARCHIVE_FILTER_GZIP);
  struct archive_entry *e = ent ("sparse", S_IFREG | 0644);
  char data[4096];
  memset (data, 'x', sizeof data);
  archive_entry_set_size (e, 1 << 30);
  archive_entry_sparse_add_entry (e, (1 << 30) - 4096, 4096);
  if (archive_write_header (t->a, e) < ARCHIVE_WARN || archive_write_data (t->a, data, sizeof data) < 0)
    {
      fprintf (stderr, "sparse_layer: %s\n", archive_error_string (t->a));
      exit (2);
    }
  archive_entry_free (e);
  return tb_fd (t);
}

static int
count_names (const char *name, void *ud)
{
  (void) name;
  ++*(int *) ud;
  return 0;
}

static void
test_diff_id_and_limits (void)
{
  char plain[72], got[72];
  struct unpack_stats st;
  struct unpack_opts o = layer_opts;
  cella_error_t err = NULL;
  int fd = normal_layer (ARCHIVE_FILTER_NONE), n = 0;
  sha_of (fd, plain);
  new_case ("diffid");
  CHECK (ok_unpack (fd, P ("diffid/root"), &layer_opts, &st) && strcmp (st.diff_id, plain) == 0,
         "diff_id: the sha256 of the whole tar, end marker and padding included (%s)", st.diff_id);
  CHECK (st.over == UNPACK_WITHIN_LIMITS && st.stream_bytes > 0, "diff_id: the stream's bytes counted");
  fd = normal_layer (ARCHIVE_FILTER_GZIP);
  CHECK (layer_diff_id (fd, 0, &st, &err) == 0 && strcmp (st.diff_id, plain) == 0,
         "diff_id: of the gzip layer, without unpacking it, is the plain tar's");
  close (fd);
  fd = normal_layer (ARCHIVE_FILTER_ZSTD);
  new_case ("diffid-zstd");
  CHECK (ok_unpack (fd, P ("diffid-zstd/root"), &layer_opts, &st) && strcmp (st.diff_id, plain) == 0,
         "diff_id: of the zstd layer, unpacked, is the plain tar's");

  /* a gzip bomb: 64 MiB of zeros in about 64 KiB */
  new_case ("bomb");
  o.max_bytes = 1 << 20;
  fd = zeros_layer (ARCHIVE_FILTER_GZIP, 64 << 20);
  CHECK (lseek (fd, 0, SEEK_END) < (1 << 20), "bomb: the blob is small");
  lseek (fd, 0, SEEK_SET);
  CHECK (unpack_to (fd, P ("bomb/root"), &o, &st, &err) < 0 && st.over == UNPACK_OVER_BYTES && err
             && strstr (err->msg, "more than 1048576 bytes"),
         "bomb: stopped at the limit (%s)", err ? err->msg : "no error");
  CHECK (st.stream_bytes <= (2 << 20), "bomb: read no further than a block past the limit (%llu)",
         (unsigned long long) st.stream_bytes);
  cella_error_free (&err);
  fd = zeros_layer (ARCHIVE_FILTER_GZIP, 64 << 20);
  CHECK (layer_diff_id (fd, 1 << 20, &st, &err) < 0 && st.over == UNPACK_OVER_BYTES, "bomb: layer_diff_id stops too");
  cella_error_free (&err);
  close (fd);

  /* a sparse entry claims more than the limit while its tar stays small */
  new_case ("sparse");
  o.max_bytes = 16 << 20;
  CHECK (unpack_to (sparse_layer (), P ("sparse/root"), &o, &st, &err) < 0 && st.over == UNPACK_OVER_BYTES && err
             && strstr (err->msg, "sparse"),
         "sparse: a file's size counts against the limit (%s)", err ? err->msg : "no error");
  cella_error_free (&err);
  CHECK (access (P ("sparse/root/sparse"), F_OK) < 0, "sparse: the file was not created");

  /* entries */
  new_case ("entries");
  o.max_bytes = 0;
  o.max_entries = 3;
  CHECK (unpack_to (normal_layer (ARCHIVE_FILTER_NONE), P ("entries/root"), &o, &st, &err) < 0
             && st.over == UNPACK_OVER_ENTRIES && err && strstr (err->msg, "more than 3 entries"),
         "entries: more than max_entries is refused (%s)", err ? err->msg : "no error");
  cella_error_free (&err);

  /* listing, within the same limits */
  fd = normal_layer (ARCHIVE_FILTER_GZIP);
  CHECK (layer_list (fd, 0, 0, count_names, &n, &st, &err) == 0 && (uint64_t) n == st.entries && n > 3,
         "list: every name (%d, %s)", n, err ? err->msg : "");
  cella_error_free (&err);
  CHECK (layer_list (fd, 0, 3, count_names, &n, &st, &err) < 0 && st.over == UNPACK_OVER_ENTRIES, "list: max_entries");
  cella_error_free (&err);
  close (fd);
  fd = zeros_layer (ARCHIVE_FILTER_GZIP, 8 << 20);
  CHECK (layer_list (fd, 1 << 20, 0, count_names, &n, &st, &err) < 0 && st.over == UNPACK_OVER_BYTES,
         "list: max_bytes stops a bomb");
  cella_error_free (&err);
  close (fd);
  fd = mem_fd ("not a tar at all, not even close", 32);
  CHECK (layer_list (fd, 0, 0, count_names, &n, &st, &err) < 0 && err && strstr (err->msg, "not a tar archive"),
         "list: garbage is not a tar archive (%s)", err ? err->msg : "no error");
  cella_error_free (&err);
  close (fd);
  (void) got;
}

int
main (void)
{
  snprintf (base, sizeof base, "/tmp/cella-unpack-XXXXXX");
  if (mkdtemp (base) == NULL)
    {
      perror ("mkdtemp");
      return 2;
    }
  umask (022);
  is_root = geteuid () == 0 && initial_userns ();
  printf ("# in %s, as uid %d\n", base, (int) geteuid ());
  test_normal ();
  test_compressed ();
  test_escapes ();
  test_symlink_tricks ();
  test_hardlink_tricks ();
  test_replace_and_garbage ();
  test_layer_whiteouts ();
  test_flat ();
  test_devices ();
  test_owners ();
  test_pack_round_trip ();
  test_pack_reproducible_and_errors ();
  test_pack_overlay_upper ();
  test_diff_id_and_limits ();
  /* the 0555 directories, which an ordinary user could not empty */
  for (const char **d = (const char *[]){ "normal/root", "gzip", "zstd", "xz", "bzip2", NULL }; *d; d++)
    chmod (P ("%s/ro", *d), 0755);
  CHECK (remove_tree (base) == 0, "cleanup: %s removed", base);
  return tap_done ();
}
