/* Safe layer unpacking (unpack.h). libarchive only parses the stream; every entry is created
 * here with *at() calls relative to directory fds beneath the target, so each path step is
 * ours to check: archive_write_disk resolves names itself, with symlink rules we cannot set.
 * A layer is untrusted input: a name must not climb out (`..`), and a symlink planted by an
 * earlier entry (`a -> /etc`, then `a/passwd`) must not be written through, so parents are
 * opened with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or component by component with O_NOFOLLOW. */
#define _GNU_SOURCE
#include "image/tool/unpack.h"

#include "image/tool/digest.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_META ".wh..wh." /* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): ignored */
#define NAME_SHOWN 200     /* the longest entry name quoted whole in a message */
#define READ_BLOCK (64 * 1024)

/* A directory's mode and times, applied once its children are written: writing a child
 * changes the directory's mtime, and a 0555 directory would refuse the children of a rootless
 * unpack. */
struct dir_fixup {
  char *path;
  mode_t mode;
  bool has_times;
  struct timespec times[2];
  size_t depth, seq;
};

struct unpack {
  const struct unpack_opts *opts;
  struct unpack_stats *stats;
  uint64_t headers, file_bytes; /* against max_entries and max_bytes */
  int dirfd;
  cella_error_t *err;
  const char *name; /* the entry being written, as the archive spells it */
  char *name_copy;  /* owns it: libarchive frees its strings at the next header */
  const char *ctx;  /* "" or what is being resolved ("hard link target `x`: ") */
  uid_t euid;
  gid_t egid;
  struct dir_fixup *dirs;
  size_t n_dirs, cap_dirs;
  char **written; /* UNPACK_FLAT: this layer's paths, which an opaque directory keeps */
  size_t n_written, cap_written;
  bool written_sorted;
};

static int __attribute__ ((format (printf, 3, 4))) entry_error (struct unpack *u, int errno_, const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  va_end (ap);
  if (strlen (u->name) > NAME_SHOWN)
    return cella_error (u->err, errno_, "layer entry `%.*s...`: %s%s", NAME_SHOWN, u->name, u->ctx, msg);
  return cella_error (u->err, errno_, "layer entry `%s`: %s%s", u->name, u->ctx, msg);
}

/* ---------------------------------------------------------------- the uncompressed stream */

/* libarchive's raw format behind the decompression filters yields the uncompressed bytes; the tar
 * reader gets them through stream_read, which hashes every byte (the layer's diff_id) and counts
 * it against the limit before the tar reader parses it, so a bomb stops at the limit. */
struct stream {
  struct archive *raw;
  struct sha256 *h;
  uint64_t bytes, max;
  bool eof, over;
  char why[256];
};

static int
stream_open (struct stream *s, int fd, uint64_t max, bool hash, cella_error_t *err)
{
  struct archive_entry *e;
  int r;
  *s = (struct stream){ .raw = archive_read_new (), .h = hash ? sha256_new () : NULL, .max = max };
  if (s->raw == NULL)
    return cella_error (err, ENOMEM, "read layer");
  /* The filters cella names, each built into libarchive: support_filter_all would also run
   * external programs (lrzip, lzop...) on untrusted data. */
  archive_read_support_filter_gzip (s->raw);
  archive_read_support_filter_zstd (s->raw);
  archive_read_support_filter_xz (s->raw);
  archive_read_support_filter_bzip2 (s->raw);
  archive_read_support_format_raw (s->raw);
  if (archive_read_open_fd (s->raw, fd, READ_BLOCK) != ARCHIVE_OK)
    return cella_error (err, 0, "read layer: %s", archive_error_string (s->raw) ?: "cannot open");
  r = archive_read_next_header (s->raw, &e);
  if (r == ARCHIVE_EOF)
    s->eof = true;
  else if (r < ARCHIVE_WARN)
    return cella_error (err, 0, "read layer: %s", archive_error_string (s->raw) ?: "cannot decompress");
  return 0;
}

/* The next block: 1 with *buf and *len, 0 at the end, -1 on bad data (s->why) or past the limit
 * (s->over). */
static int
stream_next (struct stream *s, const void **buf, size_t *len)
{
  la_int64_t off;
  while (!s->eof)
    {
      int r = archive_read_data_block (s->raw, buf, len, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        {
          snprintf (s->why, sizeof s->why, "%s", archive_error_string (s->raw) ?: "cannot decompress");
          return -1;
        }
      if (*len == 0)
        continue;
      s->bytes += *len;
      if (s->max && s->bytes > s->max)
        {
          s->over = true;
          snprintf (s->why, sizeof s->why, "more than %llu bytes uncompressed", (unsigned long long) s->max);
          return -1;
        }
      if (s->h)
        sha256_update (s->h, *buf, *len);
      return 1;
    }
  s->eof = true;
  return 0;
}

static la_ssize_t
stream_read (struct archive *a, void *ud, const void **buf)
{
  struct stream *s = ud;
  size_t len = 0;
  int r = stream_next (s, buf, &len);
  if (r < 0)
    {
      archive_set_error (a, s->over ? EFBIG : EIO, "%s", s->why);
      return -1;
    }
  return r == 0 ? 0 : (la_ssize_t) len;
}

/* Read what the tar reader left (its end marker, padding) into the hash; the diff_id out. */
static int
stream_finish (struct stream *s, struct unpack_stats *st, cella_error_t *err)
{
  const void *buf;
  size_t len;
  int r;
  while ((r = stream_next (s, &buf, &len)) > 0)
    ;
  st->stream_bytes = s->bytes;
  if (r < 0)
    {
      if (s->over)
        st->over = UNPACK_OVER_BYTES;
      return cella_error (err, s->over ? EFBIG : 0, "read layer: %s", s->why);
    }
  if (s->h)
    sha256_final (s->h, st->diff_id);
  s->h = NULL;
  return 0;
}

static void
stream_close (struct stream *s)
{
  if (s->raw)
    archive_read_free (s->raw);
  sha256_free (s->h);
}

/* The tar reader over the stream of fd; *a NULL on an error ("WHAT: why"). */
static int
tar_open (struct stream *s, int fd, uint64_t max, bool hash, const char *what, struct archive **a, cella_error_t *err)
{
  *a = NULL;
  if (stream_open (s, fd, max, hash, err) < 0)
    return -1;
  if ((*a = archive_read_new ()) == NULL)
    return cella_error (err, ENOMEM, "%s", what);
  archive_read_support_format_tar (*a);
  if (archive_read_open2 (*a, s, NULL, stream_read, NULL, NULL) != ARCHIVE_OK)
    return cella_error (err, 0, "%s: %s", what, archive_error_string (*a) ?: "cannot open");
  return 0;
}

/* ---------------------------------------------------------------- names */

/* An archive name as a clean path relative to the layer root: a leading `/` (OCI: names are
 * relative), empty and `.` components dropped, `..` refused. "" is the root itself. `what` says
 * which name it is in messages ("path" or "hard link target `x`"). */
static int
clean_name (struct unpack *u, const char *raw, const char *what, char **out)
{
  size_t len = strlen (raw);
  cleanup_free char *buf = NULL;
  const char *p = raw;
  char *o;
  if (len >= PATH_MAX)
    return entry_error (u, ENAMETOOLONG, "%s: name too long (%zu bytes, at most %d)", what, len, PATH_MAX - 1);
  o = buf = xmalloc (len + 1);
  while (*p != '\0')
    {
      const char *c = p;
      size_t n;
      while (*p != '\0' && *p != '/')
        p++;
      n = (size_t) (p - c);
      while (*p == '/')
        p++;
      if (n == 0 || (n == 1 && c[0] == '.'))
        continue;
      if (n == 2 && c[0] == '.' && c[1] == '.')
        return entry_error (u, EINVAL, "%s leaves the layer", what);
      if (n > NAME_MAX)
        return entry_error (u, ENAMETOOLONG, "%s: name too long (a component of %zu bytes, at most %d)", what, n,
                            NAME_MAX);
      if (o != buf)
        *o++ = '/';
      memcpy (o, c, n);
      o += n;
    }
  *o = '\0';
  *out = steal_pointer (&buf);
  return 0;
}

static const char *
leaf_of (const char *path)
{
  const char *s = strrchr (path, '/');
  return s ? s + 1 : path;
}

static char *
parent_of (const char *path)
{
  const char *s = strrchr (path, '/');
  char *dir = xstrdup (path);
  dir[s ? s - path : 0] = '\0';
  return dir;
}

/* ---------------------------------------------------------------- lookups beneath the root */

static int
open_beneath (int dirfd, const char *path, int flags)
{
  struct open_how how = {
    .flags = (uint64_t) (flags | O_CLOEXEC),
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return (int) syscall (SYS_openat2, dirfd, *path ? path : ".", &how, sizeof how);
}

/* Why component `path[0..end)` (named comp in cur) could not be opened as a directory. */
static int
walk_failure (struct unpack *u, int cur, const char *comp, const char *path, size_t end, int errno_)
{
  struct stat st;
  if (errno_ == ENOENT)
    return entry_error (u, ENOENT, "`%.*s` does not exist", (int) end, path);
  if ((errno_ == ENOTDIR || errno_ == ELOOP) && fstatat (cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      if (S_ISLNK (st.st_mode))
        return entry_error (u, ELOOP, "`%.*s` is a symlink, which is not followed", (int) end, path);
      return entry_error (u, ENOTDIR, "`%.*s` is not a directory", (int) end, path);
    }
  return entry_error (u, errno_, "open `%.*s`", (int) end, path);
}

/* Open directory `path` one component at a time, never following a symlink; with create,
 * missing directories are made (0755 less the umask, like tar's implicit parents). */
static int
walk_dir (struct unpack *u, const char *path, bool create)
{
  cleanup_close int cur = openat (u->dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char comp[NAME_MAX + 1];
  const char *p = path;
  if (cur < 0)
    return cella_error (u->err, errno, "open the layer directory");
  while (*p != '\0')
    {
      const char *c = p;
      int fd;
      while (*p != '\0' && *p != '/')
        p++;
      memcpy (comp, c, (size_t) (p - c)); /* clean_name bounded it by NAME_MAX */
      comp[p - c] = '\0';
      fd = openat (cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create)
        {
          if (mkdirat (cur, comp, 0755) < 0 && errno != EEXIST)
            return entry_error (u, errno, "create directory `%.*s`", (int) (p - path), path);
          fd = openat (cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
      if (fd < 0)
        return walk_failure (u, cur, comp, path, (size_t) (p - path), errno);
      close (cur);
      cur = fd;
      if (*p == '/')
        p++;
    }
  return steal_fd (&cur);
}

/* An O_PATH fd of directory `path` (clean, relative; "" is the root). */
static int
open_dir (struct unpack *u, const char *path, bool create)
{
  int fd = open_beneath (u->dirfd, path, O_PATH | O_DIRECTORY);
  if (fd >= 0)
    return fd;
  /* The walk creates what is missing, names the component that is a symlink, and works where
   * openat2 does not (ENOSYS before Linux 5.6; EAGAIN when a rename raced the lookup). */
  return walk_dir (u, path, create);
}

/* A later entry replaces an earlier one of the same name, like tar; a directory over a
 * directory keeps it and its children. Returns 1 when an existing directory is kept. */
static int
make_room (struct unpack *u, int parent, const char *leaf, bool is_dir)
{
  struct stat st;
  if (fstatat (parent, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : entry_error (u, errno, "stat the existing entry");
  if (S_ISDIR (st.st_mode))
    {
      if (is_dir)
        return 1;
      if (remove_tree_at (parent, leaf) < 0)
        return entry_error (u, errno, "remove the directory it replaces");
      return 0;
    }
  if (unlinkat (parent, leaf, 0) < 0 && errno != ENOENT)
    return entry_error (u, errno, "remove the entry it replaces");
  return 0;
}

/* ---------------------------------------------------------------- metadata */

static bool
entry_times (struct archive_entry *e, struct timespec ts[2])
{
  long ns;
  if (!archive_entry_mtime_is_set (e))
    return false;
  ns = archive_entry_mtime_nsec (e);
  ts[1] = (struct timespec){ .tv_sec = archive_entry_mtime (e), .tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0 };
  ts[0] = ts[1];
  if (archive_entry_atime_is_set (e))
    {
      ns = archive_entry_atime_nsec (e);
      ts[0] = (struct timespec){ .tv_sec = archive_entry_atime (e), .tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0 };
    }
  return true;
}

/* EPERM/EINVAL: not allowed to give the file away, or an id with no mapping in our user
 * namespace. The file stays ours, which is counted. */
static int
set_owner (struct unpack *u, struct archive_entry *e, int parent, const char *leaf)
{
  la_int64_t uid = archive_entry_uid (e), gid = archive_entry_gid (e);
  bool ours = uid == (la_int64_t) u->euid && gid == (la_int64_t) u->egid;
  if (!u->opts->set_owner || uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX)
    {
      u->stats->owner_failures += !ours;
      return 0;
    }
  if (fchownat (parent, leaf, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (errno == EPERM || errno == EINVAL)
    {
      u->stats->owner_failures += !ours;
      return 0;
    }
  return entry_error (u, errno, "set its owner to %lld:%lld", (long long) uid, (long long) gid);
}

static bool
xattr_skipped (const char *name, mode_t type)
{
  /* Overlay metadata (opaque, redirect, metacopy) steers overlayfs lookups: only whiteouts
   * make it. The kernel refuses user.* on anything but regular files and directories. */
  if (has_prefix (name, "trusted.overlay.") || has_prefix (name, "user.overlay."))
    return true;
  return has_prefix (name, "user.") && type != S_IFREG && type != S_IFDIR;
}

static bool
xattr_failure_ok (const char *name, int errno_)
{
  if (errno_ == ENOTSUP) /* the filesystem keeps no xattrs of that namespace */
    return true;
  /* security.* and trusted.* need privileges an unprivileged unpack lacks, and an LSM may
   * refuse a label it does not know. */
  return (has_prefix (name, "security.") || has_prefix (name, "trusted."))
         && (errno_ == EPERM || errno_ == EACCES || errno_ == EINVAL);
}

/* fd: the open regular file, or -1: then the entry is addressed as /proc/self/fd/PARENT/LEAF,
 * which pins the parent and does not follow the leaf (there is no lsetxattrat). */
static int
set_xattrs (struct unpack *u, struct archive_entry *e, int parent, const char *leaf, int fd, mode_t type)
{
  const char *name;
  const void *value;
  size_t size;
  char proc[64 + NAME_MAX];
  if (archive_entry_xattr_reset (e) == 0)
    return 0;
  snprintf (proc, sizeof proc, "/proc/self/fd/%d/%s", parent, leaf);
  while (archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    {
      int r;
      if (xattr_skipped (name, type))
        continue;
      r = fd >= 0 ? fsetxattr (fd, name, value, size, 0) : lsetxattr (proc, name, value, size, 0);
      if (r < 0 && !xattr_failure_ok (name, errno))
        return entry_error (u, errno, "set xattr %s", name);
    }
  return 0;
}

/* Owner, then xattrs, then mode, then times: chown clears setuid/setgid and
 * security.capability, and every change but utimensat moves ctime only. */
static int
set_meta (struct unpack *u, struct archive_entry *e, int parent, const char *leaf, int fd, mode_t type)
{
  struct timespec ts[2];
  mode_t mode = archive_entry_perm (e) & 07777;
  if (set_owner (u, e, parent, leaf) < 0 || set_xattrs (u, e, parent, leaf, fd, type) < 0)
    return -1;
  if (type != S_IFLNK && (fd >= 0 ? fchmod (fd, mode) : fchmodat (parent, leaf, mode, AT_SYMLINK_NOFOLLOW)) < 0)
    return entry_error (u, errno, "set its mode %04o", (unsigned) mode);
  if (entry_times (e, ts) && utimensat (parent, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return entry_error (u, errno, "set its times");
  return 0;
}

static void
defer_dir (struct unpack *u, struct archive_entry *e, const char *path)
{
  struct dir_fixup *d;
  if (u->n_dirs == u->cap_dirs)
    {
      u->cap_dirs = u->cap_dirs ? 2 * u->cap_dirs : 64;
      u->dirs = xrealloc (u->dirs, u->cap_dirs * sizeof *u->dirs);
    }
  d = &u->dirs[u->n_dirs];
  *d = (struct dir_fixup){ .path = xstrdup (path), .mode = archive_entry_perm (e) & 07777, .seq = u->n_dirs };
  d->has_times = entry_times (e, d->times);
  for (const char *p = path; *p; p++)
    d->depth += *p == '/';
  d->depth += *path != '\0';
  u->n_dirs++;
}

/* Deepest first, so that a parent made 0555 (or 0000) is still open to its children; the
 * same directory twice: in archive order, so that the later entry wins. */
static int
cmp_fixup (const void *a, const void *b)
{
  const struct dir_fixup *x = a, *y = b;
  if (x->depth != y->depth)
    return x->depth > y->depth ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
finish_dirs (struct unpack *u)
{
  if (u->n_dirs > 0)
    qsort (u->dirs, u->n_dirs, sizeof *u->dirs, cmp_fixup);
  for (size_t i = 0; i < u->n_dirs; i++)
    {
      struct dir_fixup *d = &u->dirs[i];
      cleanup_close int pfd = -1, fd = -1;
      u->name = d->path;
      pfd = open_dir (u, d->path, false);
      if (pfd < 0)
        {
          cella_error_free (u->err); /* replaced by a later entry, or whited out */
          continue;
        }
      fd = openat (pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || fchmod (fd, d->mode) < 0)
        return entry_error (u, errno, "set its mode %04o", (unsigned) d->mode);
      if (d->has_times && futimens (fd, d->times) < 0)
        return entry_error (u, errno, "set its times");
    }
  return 0;
}

/* ---------------------------------------------------------------- UNPACK_FLAT bookkeeping */

static void
note_written (struct unpack *u, const char *path)
{
  if (u->opts->mode != UNPACK_FLAT || *path == '\0')
    return;
  if (u->n_written == u->cap_written)
    {
      u->cap_written = u->cap_written ? 2 * u->cap_written : 256;
      u->written = xrealloc (u->written, u->cap_written * sizeof *u->written);
    }
  u->written[u->n_written++] = xstrdup (path);
  u->written_sorted = false;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Whether this layer wrote `path` or something beneath it. */
static bool
layer_wrote (struct unpack *u, const char *path)
{
  cleanup_free char *below = xasprintf ("%s/", path);
  size_t lo = 0, hi = u->n_written;
  if (u->n_written == 0)
    return false;
  if (!u->written_sorted)
    {
      qsort (u->written, u->n_written, sizeof *u->written, cmp_str);
      u->written_sorted = true;
    }
  if (bsearch (&path, u->written, u->n_written, sizeof *u->written, cmp_str))
    return true;
  while (lo < hi) /* the first name >= "path/": the paths beneath sort right there */
    {
      size_t mid = lo + (hi - lo) / 2;
      if (strcmp (u->written[mid], below) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo < u->n_written && has_prefix (u->written[lo], below);
}

/* An opaque directory in a flattened tree: remove what earlier layers put under `dfd` (the
 * directory `prefix`), keeping this layer's entries wherever the marker came in the stream. */
static int
flat_empty (struct unpack *u, int dfd, const char *prefix)
{
  cleanup_strv char **names = NULL;
  int fd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return entry_error (u, errno, "read directory `%s`", prefix);
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      strv_push (&names, de->d_name);
  closedir (d);
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *child = *prefix ? xasprintf ("%s/%s", prefix, names[i]) : xstrdup (names[i]);
      cleanup_close int cfd = -1;
      if (!layer_wrote (u, child))
        {
          if (remove_tree_at (dfd, names[i]) < 0)
            return entry_error (u, errno, "remove `%s` from the opaque directory", child);
          continue;
        }
      cfd = openat (dfd, names[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd >= 0 && flat_empty (u, cfd, child) < 0)
        return -1;
    }
  return 0;
}

/* ---------------------------------------------------------------- whiteouts */

static int
whiteout_opaque (struct unpack *u, const char *dir)
{
  cleanup_close int pfd = -1, fd = -1;
  const char *xattr = u->opts->user_xattr ? "user.overlay.opaque" : "trusted.overlay.opaque";
  if (u->opts->mode == UNPACK_FLAT)
    {
      pfd = open_dir (u, dir, false);
      if (pfd == -ENOENT)
        {
          cella_error_free (u->err); /* no earlier contents to hide */
          return 0;
        }
      return pfd < 0 ? pfd : flat_empty (u, pfd, dir);
    }
  pfd = open_dir (u, dir, true);
  if (pfd < 0)
    return pfd;
  fd = openat (pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsetxattr (fd, xattr, "y", 1, 0) < 0)
    return entry_error (u, errno, "mark the directory opaque (%s)", xattr);
  u->stats->entries++;
  return 0;
}

static int
whiteout (struct unpack *u, const char *path)
{
  const char *leaf = leaf_of (path), *name = leaf + strlen (WH_PREFIX);
  cleanup_free char *dir = parent_of (path);
  cleanup_close int pfd = -1;
  int r;
  if (strcmp (leaf, WH_OPAQUE) == 0)
    return whiteout_opaque (u, dir);
  if (has_prefix (leaf, WH_META))
    return 0;
  if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return entry_error (u, EINVAL, "a whiteout that names no entry");
  pfd = open_dir (u, dir, u->opts->mode == UNPACK_LAYER);
  if (u->opts->mode == UNPACK_FLAT)
    {
      if (pfd == -ENOENT)
        {
          cella_error_free (u->err);
          return 0;
        }
      if (pfd < 0)
        return pfd;
      if (remove_tree_at (pfd, name) < 0)
        return entry_error (u, errno, "remove `%s`", name);
      return 0;
    }
  if (pfd < 0)
    return pfd;
  if ((r = make_room (u, pfd, name, false)) < 0)
    return r;
  /* Linux 5.8 lets anyone make a 0:0 char device: the overlay whiteout. */
  if (mknodat (pfd, name, S_IFCHR, makedev (0, 0)) < 0)
    return entry_error (u, errno, "create the overlay whiteout `%s`", name);
  u->stats->entries++;
  return 0;
}

/* ---------------------------------------------------------------- entries */

static int
pwrite_all (int fd, const char *buf, size_t len, off_t off)
{
  while (len > 0)
    {
      ssize_t w = pwrite (fd, buf, len, off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      buf += w, len -= (size_t) w, off += w;
    }
  return 0;
}

/* Files count with their full size, holes included: a sparse entry of a terabyte is a few bytes
 * of tar, and a copy of the layer (flatten, a VM disk) could write it out whole. */
static int
count_file_bytes (struct unpack *u, uint64_t n)
{
  uint64_t max = u->opts->max_bytes;
  u->file_bytes += n;
  if (max == 0 || u->file_bytes <= max)
    return 0;
  u->stats->over = UNPACK_OVER_BYTES;
  return entry_error (u, EFBIG, "the layer's files hold more than %llu bytes", (unsigned long long) max);
}

/* Blocks at their offsets: where libarchive skips a sparse hole, the file keeps one. */
static int
copy_data (struct unpack *u, struct archive *a, struct archive_entry *e, int fd)
{
  off_t end = archive_entry_size_is_set (e) ? archive_entry_size (e) : 0;
  for (;;)
    {
      const void *buf;
      size_t size;
      la_int64_t off;
      int r = archive_read_data_block (a, &buf, &size, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN || off < 0)
        return entry_error (u, 0, "read its data: %s", archive_error_string (a) ?: "bad block offset");
      if (pwrite_all (fd, buf, size, off) < 0)
        return entry_error (u, errno, "write its data");
      u->stats->bytes += size;
      if (off + (off_t) size > end)
        {
          if (count_file_bytes (u, (uint64_t) (off + (off_t) size - end)) < 0)
            return -1;
          end = off + (off_t) size;
        }
    }
  if (end < 0 || ftruncate (fd, end) < 0)
    return entry_error (u, errno, "set its size");
  return 0;
}

static int
write_file (struct unpack *u, struct archive *a, struct archive_entry *e, int parent, const char *leaf)
{
  cleanup_close int fd = -1;
  la_int64_t size = archive_entry_size_is_set (e) ? archive_entry_size (e) : 0;
  int r = count_file_bytes (u, size > 0 ? (uint64_t) size : 0);
  if (r < 0)
    return r;
  r = make_room (u, parent, leaf, false);
  if (r < 0)
    return r;
  fd = openat (parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return entry_error (u, errno, "create the file");
  if (copy_data (u, a, e, fd) < 0)
    return -1;
  return set_meta (u, e, parent, leaf, fd, S_IFREG);
}

/* Created 0700 so that a rootless unpack can write the children; defer_dir sets the mode. */
static int
write_dir (struct unpack *u, struct archive_entry *e, int parent, const char *leaf, const char *path)
{
  int r = make_room (u, parent, leaf, true);
  if (r < 0)
    return r;
  if (r == 0 && mkdirat (parent, leaf, 0700) < 0)
    return entry_error (u, errno, "create the directory");
  if (set_owner (u, e, parent, leaf) < 0 || set_xattrs (u, e, parent, leaf, -1, S_IFDIR) < 0)
    return -1;
  defer_dir (u, e, path);
  return 0;
}

/* The target text is stored as given: it is resolved inside the container, later. */
static int
write_symlink (struct unpack *u, struct archive_entry *e, int parent, const char *leaf)
{
  const char *target = archive_entry_symlink (e);
  int r;
  if (target == NULL || *target == '\0')
    return entry_error (u, EINVAL, "a symlink with no target");
  if ((r = make_room (u, parent, leaf, false)) < 0)
    return r;
  if (symlinkat (target, parent, leaf) < 0)
    return entry_error (u, errno, "create the symlink");
  return set_meta (u, e, parent, leaf, -1, S_IFLNK);
}

/* The target is an earlier entry beneath the root, reached without symlinks, and neither a
 * directory nor a symlink: `/etc/passwd` means the layer's etc/passwd, never the host's. */
static int
write_hardlink (struct unpack *u, struct archive_entry *e, int parent, const char *leaf, const char *path)
{
  const char *raw = archive_entry_hardlink (e);
  cleanup_free char *what = xasprintf ("hard link target `%.*s`", NAME_SHOWN, raw);
  cleanup_free char *ctx = xasprintf ("%s: ", what);
  cleanup_free char *target = NULL, *tdir = NULL;
  cleanup_close int tparent = -1;
  struct stat st;
  int r;
  if (clean_name (u, raw, what, &target) < 0)
    return -1;
  if (*target == '\0')
    return entry_error (u, EISDIR, "%s is the layer root", what);
  if (strcmp (target, path) == 0)
    return 0; /* a link to itself */
  tdir = parent_of (target);
  u->ctx = ctx;
  tparent = open_dir (u, tdir, false);
  u->ctx = "";
  if (tparent == -ENOENT)
    {
      cella_error_free (u->err);
      return entry_error (u, ENOENT, "%s is not in the layer", what);
    }
  if (tparent < 0)
    return tparent;
  if (fstatat (tparent, leaf_of (target), &st, AT_SYMLINK_NOFOLLOW) < 0)
    return entry_error (u, errno, errno == ENOENT ? "%s is not in the layer" : "%s: stat", what);
  if (S_ISDIR (st.st_mode) || S_ISLNK (st.st_mode))
    return entry_error (u, EPERM, "%s is a %s", what, S_ISDIR (st.st_mode) ? "directory" : "symlink");
  if ((r = make_room (u, parent, leaf, false)) < 0)
    return r;
  if (linkat (tparent, leaf_of (target), parent, leaf, 0) < 0)
    return entry_error (u, errno, "link to %s", what);
  return 0;
}

static int
write_node (struct unpack *u, struct archive_entry *e, int parent, const char *leaf, mode_t type)
{
  int r = make_room (u, parent, leaf, false);
  if (r < 0)
    return r;
  r = type == S_IFIFO ? mkfifoat (parent, leaf, 0600) : mknodat (parent, leaf, type | 0600, archive_entry_rdev (e));
  if (r < 0 && errno == EPERM && type != S_IFIFO)
    {
      u->stats->skipped_devices++; /* no CAP_MKNOD: like skip_devices */
      return 1;
    }
  if (r < 0)
    return entry_error (u, errno, "create the %s", type == S_IFIFO ? "fifo" : "device node");
  return set_meta (u, e, parent, leaf, -1, type);
}

/* The layer root itself ("./"): its mode and times only; the caller owns the directory. */
static int
write_root (struct unpack *u, struct archive_entry *e)
{
  if (archive_entry_filetype (e) != AE_IFDIR || archive_entry_hardlink (e) != NULL)
    return entry_error (u, EINVAL, "the layer root can only be a directory");
  defer_dir (u, e, "");
  u->stats->entries++;
  return 0;
}

static int
write_entry (struct unpack *u, struct archive *a, struct archive_entry *e, const char *path)
{
  mode_t type = archive_entry_filetype (e);
  const char *leaf = leaf_of (path);
  cleanup_free char *dir = parent_of (path);
  cleanup_close int parent = -1;
  bool is_node = archive_entry_hardlink (e) == NULL && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO);
  int r;
  if (is_node && u->opts->skip_devices)
    {
      u->stats->skipped_devices++;
      return 0;
    }
  parent = open_dir (u, dir, true);
  if (parent < 0)
    return parent;
  if (archive_entry_hardlink (e) != NULL)
    r = write_hardlink (u, e, parent, leaf, path);
  else
    switch (type)
      {
      case AE_IFREG:
        r = write_file (u, a, e, parent, leaf);
        break;
      case AE_IFDIR:
        r = write_dir (u, e, parent, leaf, path);
        break;
      case AE_IFLNK:
        r = write_symlink (u, e, parent, leaf);
        break;
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        r = write_node (u, e, parent, leaf, type);
        break;
      default:
        return entry_error (u, EINVAL, "unsupported entry type 0%o", (unsigned) type);
      }
  if (r < 0)
    return r;
  if (r == 0)
    {
      u->stats->entries++;
      note_written (u, path);
    }
  return 0;
}

static int
unpack_entry (struct unpack *u, struct archive *a, struct archive_entry *e)
{
  cleanup_free char *path = NULL;
  const char *name = archive_entry_pathname (e);
  if (name == NULL)
    name = archive_entry_pathname_utf8 (e);
  free (u->name_copy);
  u->name = u->name_copy = xstrdup (name ? name : "?");
  if (name == NULL)
    return entry_error (u, EINVAL, "a name that cannot be read");
  if (clean_name (u, name, "path", &path) < 0)
    return -1;
  if (*path == '\0')
    return write_root (u, e);
  if (has_prefix (leaf_of (path), WH_PREFIX))
    return whiteout (u, path);
  return write_entry (u, a, e, path);
}

static int
unpack_all (struct unpack *u, struct archive *a)
{
  for (;;)
    {
      struct archive_entry *e;
      int r = archive_read_next_header (a, &e);
      if (r == ARCHIVE_EOF)
        return 0;
      if (r >= ARCHIVE_WARN && u->opts->max_entries && ++u->headers > u->opts->max_entries)
        {
          u->stats->over = UNPACK_OVER_ENTRIES;
          return cella_error (u->err, 0, "read layer: more than %llu entries",
                              (unsigned long long) u->opts->max_entries);
        }
      if (r < ARCHIVE_WARN)
        {
          if (*u->name)
            return cella_error (u->err, 0, "read layer after entry `%.*s`: %s", NAME_SHOWN, u->name,
                                archive_error_string (a) ?: "bad header");
          return cella_error (u->err, 0, "read layer: %s", archive_error_string (a) ?: "bad header");
        }
      if (unpack_entry (u, a, e) < 0)
        return -1;
    }
}

static void
unpack_free (struct unpack *u)
{
  for (size_t i = 0; i < u->n_dirs; i++)
    free (u->dirs[i].path);
  free (u->dirs);
  for (size_t i = 0; i < u->n_written; i++)
    free (u->written[i]);
  free (u->written);
  free (u->name_copy);
}

int
layer_unpack (int fd, int dirfd, const struct unpack_opts *opts, struct unpack_stats *stats, cella_error_t *err)
{
  struct unpack_stats local = { 0 }; /* zeroed below too; cppcheck does not see it through u.stats */
  struct unpack u = {
    .opts = opts,
    .stats = stats ? stats : &local,
    .dirfd = dirfd,
    .err = err,
    .name = "",
    .ctx = "",
    .euid = geteuid (),
    .egid = getegid (),
  };
  struct stream s;
  struct archive *a = NULL;
  int r;
  *u.stats = (struct unpack_stats){ 0 };
  r = tar_open (&s, fd, opts->max_bytes, true, "read layer", &a, err);
  if (r == 0)
    r = unpack_all (&u, a);
  if (r == 0)
    r = finish_dirs (&u);
  if (r == 0 || s.over)
    {
      /* past the limit, the error says so rather than naming the entry it cut short */
      int f = stream_finish (&s, u.stats, r == 0 ? err : NULL);
      if (r == 0)
        r = f;
      else
        cella_error (err, EFBIG, "read layer: %s", s.why);
    }
  if (a)
    archive_read_free (a);
  stream_close (&s);
  unpack_free (&u);
  return r < 0 ? r : 0;
}

int
layer_diff_id (int fd, uint64_t max_bytes, struct unpack_stats *stats, cella_error_t *err)
{
  struct stream s;
  int r;
  *stats = (struct unpack_stats){ 0 };
  r = stream_open (&s, fd, max_bytes, true, err);
  if (r == 0)
    r = stream_finish (&s, stats, err);
  stream_close (&s);
  return r < 0 ? -1 : 0;
}

int
layer_list (int fd, uint64_t max_bytes, uint64_t max_entries, int (*fn) (const char *name, void *ud), void *ud,
            struct unpack_stats *stats, cella_error_t *err)
{
  struct stream s;
  struct archive *a = NULL;
  struct archive_entry *e;
  int r;
  *stats = (struct unpack_stats){ 0 };
  if (lseek (fd, 0, SEEK_SET) < 0)
    return cella_error (err, errno, "rewind the archive");
  r = tar_open (&s, fd, max_bytes, false, "not a tar archive", &a, err);
  while (r == 0)
    {
      int h = archive_read_next_header (a, &e);
      const char *name;
      if (h == ARCHIVE_EOF)
        break;
      if (h < ARCHIVE_WARN)
        {
          r = cella_error (err, 0, "%s: %s", stats->entries ? "read the archive" : "not a tar archive",
                           archive_error_string (a) ?: "bad header");
          break;
        }
      if (++stats->entries > max_entries && max_entries)
        {
          stats->over = UNPACK_OVER_ENTRIES;
          r = cella_error (err, 0, "read the archive: more than %llu entries", (unsigned long long) max_entries);
          break;
        }
      name = archive_entry_pathname (e);
      if (name && fn (name, ud) != 0)
        break;
    }
  if (s.over)
    {
      stats->over = UNPACK_OVER_BYTES;
      r = cella_error (err, EFBIG, "read the archive: %s", s.why);
    }
  stats->stream_bytes = s.bytes;
  if (a)
    archive_read_free (a);
  stream_close (&s);
  return r < 0 ? -1 : 0;
}
