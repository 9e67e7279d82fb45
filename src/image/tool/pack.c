/* Packing a tree into a layer tar (pack.h). Two libarchive writers in a row: the tar writer's
 * output is the uncompressed stream (tap_raw: the diff_id), which it hands to a second writer in
 * "raw" format with a gzip or zstd filter, whose output goes to out_fd (tap: the blob digest).
 * So both streams come out of one pass, with no temporary file and no codec code of ours. */
#define _GNU_SOURCE
#include "image/tool/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define COPY_BLOCK (64 * 1024)
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* The first path of a file with several links: the later ones become hard link entries. */
struct link_seen {
  dev_t dev;
  ino_t ino;
  char *path;
};

struct pack {
  const struct pack_opts *opts;
  struct archive *tar, *z; /* z: the compressor, NULL with PACK_NONE */
  struct archive_entry *entry;
  int out_fd;
  pack_tap_fn tap, tap_raw;
  void *tap_ud, *tap_raw_ud;
  int write_errno; /* why writing to out_fd failed */
  void *links;     /* tsearch tree of struct link_seen */
  char *buf;
  cella_error_t *err;
};

/* ---------------------------------------------------------------- output */

static la_ssize_t
out_write (struct archive *a, void *ud, const void *buf, size_t len)
{
  struct pack *p = ud;
  (void) a;
  if (p->tap)
    p->tap (buf, len, p->tap_ud);
  if (write_all (p->out_fd, buf, len) < 0)
    {
      p->write_errno = errno;
      return -1;
    }
  return (la_ssize_t) len;
}

static la_ssize_t
tar_write (struct archive *a, void *ud, const void *buf, size_t len)
{
  struct pack *p = ud;
  la_ssize_t w;
  if (p->tap_raw)
    p->tap_raw (buf, len, p->tap_raw_ud);
  if (p->z == NULL)
    return out_write (a, ud, buf, len);
  w = archive_write_data (p->z, buf, len);
  return w == (la_ssize_t) len ? w : -1;
}

static int
archive_failure (struct pack *p, struct archive *a, const char *path)
{
  if (p->write_errno)
    return cella_error (p->err, p->write_errno, "write layer");
  if (path)
    return cella_error (p->err, 0, "pack `%s`: %s", path, archive_error_string (a) ?: "libarchive failed");
  return cella_error (p->err, 0, "write layer: %s", archive_error_string (a) ?: "libarchive failed");
}

/* The compressor: raw format (one nameless entry whose data is the tar stream), no timestamp
 * in the gzip header so that the same tree gives the same blob, and no padding at the end. */
static int
open_compressor (struct pack *p)
{
  struct archive_entry *e;
  int r;
  if (p->opts->compression == PACK_NONE)
    return 0;
  p->z = archive_write_new ();
  if (p->z == NULL)
    return cella_error (p->err, ENOMEM, "write layer");
  archive_write_set_format_raw (p->z);
  if (p->opts->compression == PACK_GZIP)
    r = archive_write_add_filter_gzip (p->z) == ARCHIVE_OK
            ? archive_write_set_filter_option (p->z, "gzip", "timestamp", NULL)
            : ARCHIVE_FATAL;
  else
    r = archive_write_add_filter_zstd (p->z);
  if (r != ARCHIVE_OK || archive_write_set_bytes_in_last_block (p->z, 1) != ARCHIVE_OK
      || archive_write_open (p->z, p, NULL, out_write, NULL) != ARCHIVE_OK)
    return archive_failure (p, p->z, NULL);
  e = archive_entry_new ();
  archive_entry_set_pathname (e, "layer.tar");
  archive_entry_set_filetype (e, AE_IFREG);
  r = archive_write_header (p->z, e);
  archive_entry_free (e);
  return r == ARCHIVE_OK ? 0 : archive_failure (p, p->z, NULL);
}

static int
open_writers (struct pack *p)
{
  if (open_compressor (p) < 0)
    return -1;
  p->tar = archive_write_new ();
  p->entry = archive_entry_new ();
  if (p->tar == NULL || p->entry == NULL)
    return cella_error (p->err, ENOMEM, "write layer");
  /* pax_restricted: plain ustar headers, and a pax header only for what ustar cannot hold
   * (long names, big ids or sizes, xattrs). The tar ends right after its trailer. */
  if (archive_write_set_format_pax_restricted (p->tar) != ARCHIVE_OK
      || archive_write_set_bytes_in_last_block (p->tar, 1) != ARCHIVE_OK
      || archive_write_open (p->tar, p, NULL, tar_write, NULL) != ARCHIVE_OK)
    return archive_failure (p, p->tar, NULL);
  return 0;
}

static int
close_writers (struct pack *p)
{
  if (archive_write_close (p->tar) != ARCHIVE_OK)
    return archive_failure (p, p->tar, NULL);
  if (p->z && (archive_write_finish_entry (p->z) != ARCHIVE_OK || archive_write_close (p->z) != ARCHIVE_OK))
    return archive_failure (p, p->z, NULL);
  return 0;
}

/* ---------------------------------------------------------------- entries */

static int
path_error (struct pack *p, const char *path, int errno_, const char *what)
{
  return cella_error (p->err, errno_, "pack `%s`: %s", path, what);
}

static void
fill_entry (struct pack *p, const char *name, const struct stat *st)
{
  struct archive_entry *e = p->entry;
  archive_entry_clear (e);
  archive_entry_copy_pathname (e, name);
  archive_entry_set_mode (e, st->st_mode);
  archive_entry_set_uid (e, p->opts->self_as_root && st->st_uid == getuid () ? 0 : st->st_uid);
  archive_entry_set_gid (e, p->opts->self_as_root && st->st_gid == getgid () ? 0 : st->st_gid);
  archive_entry_set_mtime (e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
  if (!p->opts->reproducible)
    {
      archive_entry_set_atime (e, st->st_atim.tv_sec, st->st_atim.tv_nsec);
      archive_entry_set_ctime (e, st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
    }
  if (S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode))
    archive_entry_set_rdev (e, st->st_rdev);
  archive_entry_set_size (e, S_ISREG (st->st_mode) ? st->st_size : 0);
}

static int
write_header (struct pack *p, const char *path)
{
  /* ARCHIVE_WARN: a name that is not text in this locale, stored as bytes (hdrcharset=BINARY). */
  return archive_write_header (p->tar, p->entry) >= ARCHIVE_WARN ? 0 : archive_failure (p, p->tar, path);
}

static bool
is_overlay_xattr (const char *k)
{
  return has_prefix (k, "trusted.overlay.") || has_prefix (k, "user.overlay.");
}

static int
add_xattr (struct pack *p, const char *proc, const char *k, const char *path, bool *opaque)
{
  cleanup_free char *v = NULL;
  ssize_t n = lgetxattr (proc, k, NULL, 0);
  for (;;)
    {
      if (n < 0)
        return errno == ENODATA || errno == ENOTSUP ? 0 : path_error (p, path, errno, "read its xattrs");
      free (v);
      v = xmalloc ((size_t) n + 1);
      n = lgetxattr (proc, k, v, (size_t) n + 1);
      if (n >= 0 || errno != ERANGE)
        break;
      n = lgetxattr (proc, k, NULL, 0);
    }
  if (n < 0)
    return errno == ENODATA ? 0 : path_error (p, path, errno, "read its xattrs");
  if (p->opts->overlay_upper && is_overlay_xattr (k))
    {
      if (strcmp (strchr (k, '.') + 1, "overlay.opaque") == 0 && n == 1 && v[0] == 'y')
        *opaque = true;
      return 0;
    }
  archive_entry_xattr_add_entry (p->entry, k, v, (size_t) n);
  return 0;
}

/* Through /proc/self/fd/DIR/NAME: the directory is pinned and the l*xattr calls do not follow
 * NAME, whatever its type (there are no *xattrat calls before Linux 6.13). */
static int
add_xattrs (struct pack *p, int dfd, const char *name, const char *path, bool *opaque)
{
  char proc[64 + NAME_MAX];
  cleanup_free char *list = NULL;
  ssize_t n;
  snprintf (proc, sizeof proc, "/proc/self/fd/%d/%s", dfd, name);
  do
    {
      n = llistxattr (proc, NULL, 0);
      if (n <= 0)
        return n == 0 || errno == ENOTSUP ? 0 : path_error (p, path, errno, "list its xattrs");
      free (list);
      list = xmalloc ((size_t) n);
      n = llistxattr (proc, list, (size_t) n);
    }
  while (n < 0 && errno == ERANGE);
  if (n < 0)
    return path_error (p, path, errno, "list its xattrs");
  for (char *k = list; k < list + n; k += strlen (k) + 1)
    {
      if (strcmp (k, "security.selinux") == 0) /* the host's label, not the image's */
        continue;
      if (add_xattr (p, proc, k, path, opaque) < 0)
        return -1;
    }
  return 0;
}

/* A whiteout or opaque marker: an empty regular file with the owner and mtime of what it
 * stands for. */
static int
write_marker (struct pack *p, const char *name, const struct stat *like)
{
  struct stat st = *like;
  st.st_mode = S_IFREG | 0600;
  st.st_size = 0;
  fill_entry (p, name, &st);
  return write_header (p, name);
}

static int
cmp_link (const void *a, const void *b)
{
  const struct link_seen *x = a, *y = b;
  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void
free_link (void *l)
{
  free (((struct link_seen *) l)->path);
  free (l);
}

/* Whether the file was packed already under another name; if not, remember this one. */
static const char *
seen_link (struct pack *p, const struct stat *st, const char *path)
{
  struct link_seen key = { .dev = st->st_dev, .ino = st->st_ino }, *l;
  struct link_seen **found = tfind (&key, &p->links, cmp_link);
  if (found)
    return (*found)->path;
  l = xmalloc (sizeof *l);
  *l = (struct link_seen){ .dev = st->st_dev, .ino = st->st_ino, .path = xstrdup (path) };
  if (tsearch (l, &p->links, cmp_link) == NULL)
    abort ();
  return NULL;
}

static int
copy_file (struct pack *p, int fd, off_t size, const char *path)
{
  while (size > 0)
    {
      ssize_t n = read (fd, p->buf, size < COPY_BLOCK ? (size_t) size : COPY_BLOCK);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return path_error (p, path, errno, "read");
      if (n == 0)
        break; /* it shrank: libarchive pads the entry with zeros */
      if (archive_write_data (p->tar, p->buf, (size_t) n) < 0)
        return archive_failure (p, p->tar, path);
      size -= n;
    }
  return 0;
}

static int
pack_file (struct pack *p, int dfd, const char *name, const char *path, const struct stat *st)
{
  cleanup_close int fd = -1;
  struct stat fst;
  bool opaque = false;
  const char *first = st->st_nlink > 1 ? seen_link (p, st, path) : NULL;
  if (first)
    {
      fill_entry (p, path, st);
      archive_entry_copy_hardlink (p->entry, first);
      archive_entry_set_size (p->entry, 0);
      return write_header (p, path);
    }
  /* O_NONBLOCK: a FIFO swapped in for the file (by a container that runs while it is packed) must
   * not hang the open; the inode check below then refuses it. (No effect on a regular file's reads.) */
  fd = openat (dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &fst) < 0)
    return path_error (p, path, errno, "open");
  if (fst.st_ino != st->st_ino || fst.st_dev != st->st_dev)
    return path_error (p, path, EAGAIN, "replaced while it was packed");
  fill_entry (p, path, &fst);
  if (add_xattrs (p, dfd, name, path, &opaque) < 0 || write_header (p, path) < 0)
    return -1;
  return copy_file (p, fd, fst.st_size, path);
}

static int
pack_symlink (struct pack *p, int dfd, const char *name, const char *path, const struct stat *st)
{
  char target[PATH_MAX + 1];
  bool opaque = false;
  ssize_t n = readlinkat (dfd, name, target, sizeof target);
  if (n < 0)
    return path_error (p, path, errno, "read the symlink");
  if (n > PATH_MAX)
    return path_error (p, path, ENAMETOOLONG, "read the symlink");
  target[n] = '\0';
  fill_entry (p, path, st);
  archive_entry_copy_symlink (p->entry, target);
  if (add_xattrs (p, dfd, name, path, &opaque) < 0)
    return -1;
  return write_header (p, path);
}

static int pack_dir (struct pack *p, int dfd, const char *rel);

static int
pack_subdir (struct pack *p, int dfd, const char *name, const char *path, const struct stat *st)
{
  cleanup_close int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_free char *tar_name = xasprintf ("%s/", path);
  bool opaque = false;
  if (fd < 0)
    return path_error (p, path, errno, "open");
  fill_entry (p, tar_name, st);
  if (add_xattrs (p, dfd, name, path, &opaque) < 0 || write_header (p, path) < 0)
    return -1;
  if (opaque)
    {
      cleanup_free char *marker = xasprintf ("%s/" WH_OPAQUE, path);
      if (write_marker (p, marker, st) < 0)
        return -1;
    }
  return pack_dir (p, fd, path);
}

static int
pack_node (struct pack *p, int dfd, const char *name, const char *path, const struct stat *st)
{
  bool opaque = false;
  fill_entry (p, path, st);
  if (add_xattrs (p, dfd, name, path, &opaque) < 0)
    return -1;
  return write_header (p, path);
}

static bool
dir_empty (int dfd, const char *name)
{
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  bool empty = true;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return false;
    }
  while (empty && (de = readdir (d)) != NULL)
    empty = strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0;
  closedir (d);
  return empty;
}

static bool
is_stub (struct pack *p, int dfd, const char *name, const char *path, const struct stat *st)
{
  bool listed = false;
  for (size_t i = 0; !listed && p->opts->skip_stubs && p->opts->skip_stubs[i]; i++)
    listed = strcmp (p->opts->skip_stubs[i], path) == 0;
  return listed && ((S_ISREG (st->st_mode) && st->st_size == 0) || (S_ISDIR (st->st_mode) && dir_empty (dfd, name)));
}

static int
pack_one (struct pack *p, int dfd, const char *name, const char *path)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return path_error (p, path, errno, "stat");
  if (is_stub (p, dfd, name, path, &st))
    return 0;
  if (p->opts->overlay_upper && S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0))
    {
      cleanup_free char *marker = xasprintf ("%.*s" WH_PREFIX "%s", (int) (strlen (path) - strlen (name)), path, name);
      return write_marker (p, marker, &st);
    }
  switch (st.st_mode & S_IFMT)
    {
    case S_IFREG:
      return pack_file (p, dfd, name, path, &st);
    case S_IFDIR:
      return pack_subdir (p, dfd, name, path, &st);
    case S_IFLNK:
      return pack_symlink (p, dfd, name, path, &st);
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
      return pack_node (p, dfd, name, path, &st);
    default:
      return 0; /* sockets live with their process, not in an image */
    }
}

static int
cmp_name (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorted, so that the same tree always gives the same tar. */
static int
read_names (struct pack *p, int dfd, const char *rel, char ***names)
{
  int fd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return path_error (p, *rel ? rel : ".", errno, "read the directory");
    }
  while ((errno = 0, de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      strv_push (names, de->d_name);
  if (errno != 0)
    {
      closedir (d);
      return path_error (p, *rel ? rel : ".", errno, "read the directory");
    }
  closedir (d);
  if (*names)
    qsort (*names, strv_len (*names), sizeof **names, cmp_name);
  return 0;
}

static int
pack_dir (struct pack *p, int dfd, const char *rel)
{
  cleanup_strv char **names = NULL;
  if (read_names (p, dfd, rel, &names) < 0)
    return -1;
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *path = *rel ? xasprintf ("%s/%s", rel, names[i]) : xstrdup (names[i]);
      if (pack_one (p, dfd, names[i], path) < 0)
        return -1;
    }
  return 0;
}

int
layer_pack (int dirfd, int out_fd, const struct pack_opts *opts, pack_tap_fn tap, void *tap_ud, pack_tap_fn tap_raw,
            void *tap_raw_ud, cella_error_t *err)
{
  struct pack p = {
    .opts = opts,
    .out_fd = out_fd,
    .tap = tap,
    .tap_ud = tap_ud,
    .tap_raw = tap_raw,
    .tap_raw_ud = tap_raw_ud,
    .err = err,
  };
  int r;
  p.buf = xmalloc (COPY_BLOCK);
  r = open_writers (&p);
  if (r == 0)
    r = pack_dir (&p, dirfd, "");
  if (r == 0)
    r = close_writers (&p);
  if (r < 0 && p.tar)
    archive_write_fail (p.tar); /* no trailer after an error */
  if (r < 0 && p.z)
    archive_write_fail (p.z);
  if (p.tar)
    archive_write_free (p.tar);
  if (p.z)
    archive_write_free (p.z);
  archive_entry_free (p.entry);
  tdestroy (p.links, free_link);
  free (p.buf);
  return r < 0 ? r : 0;
}
