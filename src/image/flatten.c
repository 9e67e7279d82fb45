/* Flattening layers into a real directory (flatten.h has the contract).
 *
 * The merge is done one directory at a time, top-down, never copying what a higher layer hides:
 * for a directory of the merged tree we hold an fd of that directory in every layer that
 * contributes to it (top-most first), read all their entries, and sort them by name and then by
 * layer. In each run of equal names the first entry wins, exactly as overlayfs's lookup picks it:
 * a whiteout hides the name; a non-directory is copied from that layer alone; a directory is
 * merged with the same name in the layers below it, down to (not including) the first layer that
 * has a non-directory or a whiteout there, and no further than a layer where it is opaque.
 * Nothing is copied and then deleted. The cost in fds is one per contributing layer per level of
 * depth on the way down (plus the copy's own directory at each level). */
#define _GNU_SOURCE
#include "image/flatten.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define DENTS_SIZE (64 * 1024)
#define RW_SIZE (256 * 1024)

/* The same directory in one contributing layer. */
struct src_dir {
  int fd;
  unsigned layer; /* index into flat.roots, for messages and hard-link keys */
};

struct entry {
  size_t off;       /* of the name in entries.names while reading */
  const char *name; /* set once reading is done (names no longer moves) */
  unsigned pos;     /* index into the directory's src_dir array: top-most first */
  unsigned char type;
};

struct entries {
  struct entry *v;
  size_t len, cap;
  char *names;
  size_t names_len, names_cap;
};

/* A file linked more than once in its layer, and where its first copy went. */
struct link_slot {
  dev_t dev;
  ino_t ino;
  unsigned layer;
  char *path; /* relative to dest; NULL for an empty slot */
};

struct flat {
  char *const *roots; /* the source paths (layers, or tree_copy's src), for messages */
  const char *dest;
  int destfd;
  bool layered; /* whiteouts and opaque directories apply */
  struct flatten_stats *st;
  cella_error_t *err;
  bool no_reflink, no_range;
  int weakest; /* the weakest enum copy_method used so far, -1 for none */
  char *rel;   /* the entry at hand, relative to the roots */
  size_t rel_len, rel_cap;
  char *dents; /* one directory is read whole before anything below it, so one buffer does */
  char *rw_buf;
  struct link_slot *links;
  size_t nlinks, links_cap;
};

const char *
copy_method_name (enum copy_method m)
{
  switch (m)
    {
    case COPY_REFLINK:
      return "reflink";
    case COPY_RANGE:
      return "copy_file_range";
    case COPY_READ_WRITE:
      return "read/write";
    default:
      return "unknown";
    }
}

static int
src_fail (struct flat *f, int e, unsigned layer, const char *action)
{
  return cella_error (f->err, e, "`%s%s%s`: %s", f->roots[layer], *f->rel ? "/" : "", f->rel, action);
}

static int
dest_fail (struct flat *f, int e, const char *action)
{
  return cella_error (f->err, e, "`%s%s%s`: %s", f->dest, *f->rel ? "/" : "", f->rel, action);
}

/* Append "/name" to the current relative path; returns the length to go back to. */
static size_t
rel_push (struct flat *f, const char *name)
{
  size_t old = f->rel_len, n = strlen (name), need = old + 1 + n + 1;
  if (need > f->rel_cap)
    {
      f->rel_cap = need * 2;
      f->rel = xrealloc (f->rel, f->rel_cap);
    }
  if (old > 0)
    f->rel[f->rel_len++] = '/';
  memcpy (f->rel + f->rel_len, name, n + 1);
  f->rel_len += n;
  return old;
}

static void
rel_pop (struct flat *f, size_t len)
{
  f->rel_len = len;
  f->rel[len] = '\0';
}

static bool
is_whiteout (const struct stat *st)
{
  return S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0);
}

static bool
is_opaque (int dirfd)
{
  char v[2];
  return (fgetxattr (dirfd, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y')
         || (fgetxattr (dirfd, "user.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
}

/* Hard links: open addressing on (layer, dev, ino). */

static size_t
link_hash (unsigned layer, dev_t dev, ino_t ino)
{
  uint64_t h = (uint64_t) ino * 0x9e3779b97f4a7c15ull;
  h ^= ((uint64_t) dev + (uint64_t) layer * 0x100000001b3ull) * 0xff51afd7ed558ccdull;
  return (size_t) (h ^ (h >> 29));
}

static struct link_slot *
link_slot (struct link_slot *v, size_t cap, unsigned layer, dev_t dev, ino_t ino)
{
  for (size_t i = link_hash (layer, dev, ino) & (cap - 1);; i = (i + 1) & (cap - 1))
    if (v[i].path == NULL || (v[i].ino == ino && v[i].dev == dev && v[i].layer == layer))
      return &v[i];
}

static void
link_grow (struct flat *f)
{
  size_t cap = f->links_cap ? f->links_cap * 2 : 64;
  struct link_slot *v = xzalloc (cap * sizeof *v);
  for (size_t i = 0; i < f->links_cap; i++)
    if (f->links[i].path)
      *link_slot (v, cap, f->links[i].layer, f->links[i].dev, f->links[i].ino) = f->links[i];
  free (f->links);
  f->links = v;
  f->links_cap = cap;
}

static void
link_remember (struct flat *f, unsigned layer, const struct stat *st)
{
  struct link_slot *s;
  if (st->st_nlink < 2)
    return;
  if ((f->nlinks + 1) * 10 > f->links_cap * 7)
    link_grow (f);
  s = link_slot (f->links, f->links_cap, layer, st->st_dev, st->st_ino);
  if (s->path)
    return;
  *s = (struct link_slot){ st->st_dev, st->st_ino, layer, xstrdup (f->rel) };
  f->nlinks++;
}

/* If this inode was copied before, link name to that copy: 1 when linked, 0 when it must be
 * copied, -1 on error. A link the filesystem refuses (the link count limit; a directory on the
 * way that its own copied mode made unsearchable to us) gets a copy of its own instead. */
static int
link_known (struct flat *f, unsigned layer, const struct stat *st, int out, const char *name)
{
  /* Only directories we made lie on the way to the first copy; still, nothing there is followed. */
  struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
  cleanup_free char *parent = NULL;
  cleanup_close int pfd = -1;
  const char *first, *slash;
  struct link_slot *s;
  if (st->st_nlink < 2 || f->links_cap == 0)
    return 0;
  s = link_slot (f->links, f->links_cap, layer, st->st_dev, st->st_ino);
  if (s->path == NULL)
    return 0;
  first = s->path;
  slash = strrchr (first, '/');
  if (slash)
    {
      parent = xstrdup (first);
      parent[slash - first] = '\0';
      pfd = (int) syscall (SYS_openat2, f->destfd, parent, &how, sizeof how);
      if (pfd < 0 && errno == EACCES)
        return 0;
      if (pfd < 0)
        return dest_fail (f, errno, "open the directory of its first hard link");
    }
  if (linkat (slash ? pfd : f->destfd, slash ? slash + 1 : first, out, name, 0) < 0)
    {
      if (errno == EMLINK || errno == EACCES || errno == EPERM)
        return 0;
      return dest_fail (f, errno, "hard link");
    }
  f->st->hardlinks++;
  return 1;
}

/* File data. */

static void
note_method (struct flat *f, enum copy_method m)
{
  if ((int) m > f->weakest)
    f->weakest = (int) m;
}

static bool
reflink_unsupported (int e)
{
  return e == EOPNOTSUPP || e == EXDEV || e == EINVAL || e == ENOTTY;
}

static bool
range_unsupported (int e)
{
  return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP;
}

static int
copy_span_rw (struct flat *f, int in, int out, off_t off, off_t end)
{
  if (f->rw_buf == NULL)
    f->rw_buf = xmalloc (RW_SIZE);
  while (off < end)
    {
      size_t want = end - off < RW_SIZE ? (size_t) (end - off) : RW_SIZE;
      ssize_t n = pread (in, f->rw_buf, want, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        return 0; /* the file shrank since we looked: copy what it has */
      for (ssize_t done = 0; done < n;)
        {
          ssize_t w = pwrite (out, f->rw_buf + done, (size_t) (n - done), off + done);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            return -1;
          done += w;
        }
      off += n;
      note_method (f, COPY_READ_WRITE);
    }
  return 0;
}

/* [off, end) of in to the same offsets of out. */
static int
copy_span (struct flat *f, int in, int out, off_t off, off_t end)
{
  while (off < end && !f->no_range)
    {
      loff_t a = off, b = off;
      ssize_t n = copy_file_range (in, &a, out, &b, (size_t) (end - off), 0);
      if (n > 0)
        {
          off += n;
          note_method (f, COPY_RANGE);
        }
      else if (n < 0 && errno == EINTR)
        continue;
      else if (n == 0)
        break; /* short file, or a filesystem that says 0 for "cannot": read/write decides */
      else if (range_unsupported (errno))
        f->no_range = true;
      else
        return -1;
    }
  return off < end ? copy_span_rw (f, in, out, off, end) : 0;
}

static int
copy_data (struct flat *f, int in, int out, const struct stat *st)
{
  off_t size = st->st_size, off, data, hole;
  if (size == 0)
    return 0;
  if (!f->no_reflink)
    {
      if (ioctl (out, FICLONE, in) == 0)
        {
          note_method (f, COPY_REFLINK);
          return 0;
        }
      /* Not this filesystem (or not across these two): stop asking. Anything else is about this
       * file only, and the next way may still copy it. */
      if (reflink_unsupported (errno))
        f->no_reflink = true;
    }
  /* Holes are kept where there are any: fewer blocks than the size needs. */
  if ((off_t) st->st_blocks * 512 >= size)
    return copy_span (f, in, out, 0, size);
  for (off = 0; off < size; off = hole)
    {
      data = lseek (in, off, SEEK_DATA);
      if (data < 0 && errno == ENXIO)
        break;
      if (data < 0)
        return copy_span (f, in, out, off, size);
      hole = lseek (in, data, SEEK_HOLE);
      if (hole < 0 || hole > size)
        hole = size;
      if (copy_span (f, in, out, data, hole) < 0)
        return -1;
    }
  return ftruncate (out, size);
}

/* Metadata. */

static bool
overlay_xattr (const char *name)
{
  return has_prefix (name, "trusted.overlay.") || has_prefix (name, "user.overlay.");
}

/* Best effort by contract: security.* and trusted.* need privileges we may not have. */
static void
copy_xattrs (int in, int out)
{
  cleanup_free char *names = NULL;
  ssize_t n = flistxattr (in, NULL, 0);
  if (n <= 0)
    return;
  names = xmalloc ((size_t) n);
  n = flistxattr (in, names, (size_t) n);
  for (char *p = names; n > 0 && p < names + n; p += strlen (p) + 1)
    {
      cleanup_free char *val = NULL;
      ssize_t len;
      if (overlay_xattr (p) || (len = fgetxattr (in, p, NULL, 0)) < 0)
        continue;
      val = xmalloc ((size_t) len + 1);
      len = fgetxattr (in, p, val, (size_t) len);
      if (len >= 0)
        (void) fsetxattr (out, p, val, (size_t) len, 0);
    }
}

static bool
chown_failed (int r)
{
  /* EPERM: not privileged; EINVAL: the id has no mapping in our user namespace. */
  return r < 0 && errno != EPERM && errno != EINVAL;
}

/* Owner first (chown clears set-id bits and file capabilities), then xattrs (a read-only mode
 * would refuse user.*), then the mode, then the times (everything before changes the ctime only). */
static int
set_meta (struct flat *f, int out, int in, const struct stat *st)
{
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  if (chown_failed (fchown (out, st->st_uid, st->st_gid)))
    return dest_fail (f, errno, "set owner");
  copy_xattrs (in, out);
  if (fchmod (out, st->st_mode & 07777) < 0)
    return dest_fail (f, errno, "set mode");
  if (futimens (out, times) < 0)
    return dest_fail (f, errno, "set times");
  return 0;
}

/* The same for what we cannot open: symlinks, device nodes, fifos (no xattrs for them). */
static int
set_meta_at (struct flat *f, int out, const char *name, const struct stat *st)
{
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  if (chown_failed (fchownat (out, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW)))
    return dest_fail (f, errno, "set owner");
  if (!S_ISLNK (st->st_mode) && fchmodat (out, name, st->st_mode & 07777, 0) < 0)
    return dest_fail (f, errno, "set mode");
  if (utimensat (out, name, times, AT_SYMLINK_NOFOLLOW) < 0)
    return dest_fail (f, errno, "set times");
  return 0;
}

/* Non-directories. */

static int
copy_file (struct flat *f, int out, const struct src_dir *s, const char *name)
{
  struct stat st;
  cleanup_close int in = openat (s->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  cleanup_close int fd = -1;
  int r;
  if (in < 0 || fstat (in, &st) < 0)
    return src_fail (f, errno, s->layer, "open");
  if (!S_ISREG (st.st_mode))
    return src_fail (f, 0, s->layer, "changed during the copy");
  if ((r = link_known (f, s->layer, &st, out, name)) != 0)
    return r < 0 ? -1 : 0;
  fd = openat (out, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return dest_fail (f, errno, "create");
  if (copy_data (f, in, fd, &st) < 0)
    return cella_error (f->err, errno, "`%s/%s`: copy from `%s`", f->dest, f->rel, f->roots[s->layer]);
  if (set_meta (f, fd, in, &st) < 0)
    return -1;
  f->st->files++;
  f->st->bytes += (uint64_t) st.st_size;
  link_remember (f, s->layer, &st);
  return 0;
}

static int
copy_symlink (struct flat *f, int out, const struct src_dir *s, const char *name, const struct stat *st)
{
  size_t size = st->st_size > 0 ? (size_t) st->st_size + 1 : 4096;
  cleanup_free char *target = xmalloc (size);
  ssize_t n = readlinkat (s->fd, name, target, size);
  int r;
  if (n < 0)
    return src_fail (f, errno, s->layer, "read symlink");
  if ((size_t) n >= size)
    return src_fail (f, 0, s->layer, "changed during the copy");
  target[n] = '\0';
  if ((r = link_known (f, s->layer, st, out, name)) != 0)
    return r < 0 ? -1 : 0;
  if (symlinkat (target, out, name) < 0)
    return dest_fail (f, errno, "create symlink");
  if (set_meta_at (f, out, name, st) < 0)
    return -1;
  f->st->symlinks++;
  link_remember (f, s->layer, st);
  return 0;
}

/* Device nodes (only where mknod is permitted; skipped elsewhere) and fifos. */
static int
copy_special (struct flat *f, int out, const struct src_dir *s, const char *name, const struct stat *st)
{
  int r;
  if ((r = link_known (f, s->layer, st, out, name)) != 0)
    return r < 0 ? -1 : 0;
  if (mknodat (out, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
    {
      if (errno == EPERM && !S_ISFIFO (st->st_mode))
        return 0;
      return dest_fail (f, errno, "create node");
    }
  if (set_meta_at (f, out, name, st) < 0)
    return -1;
  link_remember (f, s->layer, st);
  return 0;
}

/* Directories. */

static void
entries_free (struct entries *e)
{
  free (e->v);
  free (e->names);
}
#define cleanup_entries __attribute__ ((cleanup (entries_free)))

static void
entries_add (struct entries *es, const char *name, unsigned pos, unsigned char type)
{
  size_t n = strlen (name) + 1;
  if (es->len == es->cap)
    {
      es->cap = es->cap ? es->cap * 2 : 32;
      es->v = xrealloc (es->v, es->cap * sizeof *es->v);
    }
  if (es->names_len + n > es->names_cap)
    {
      es->names_cap = (es->names_len + n) * 2;
      es->names = xrealloc (es->names, es->names_cap);
    }
  memcpy (es->names + es->names_len, name, n);
  es->v[es->len++] = (struct entry){ .off = es->names_len, .pos = pos, .type = type };
  es->names_len += n;
}

static int
entry_cmp (const void *a, const void *b)
{
  const struct entry *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Every entry of every contributing layer, sorted by name, then top-most first. */
static int
read_entries (struct flat *f, const struct src_dir *srcs, size_t n, struct entries *es)
{
  for (size_t i = 0; i < n; i++)
    for (;;)
      {
        ssize_t got = getdents64 (srcs[i].fd, f->dents, DENTS_SIZE);
        if (got < 0)
          return src_fail (f, errno, srcs[i].layer, "read directory");
        if (got == 0)
          break;
        for (ssize_t off = 0; off < got;)
          {
            struct dirent64 *d = (struct dirent64 *) (void *) (f->dents + off);
            off += d->d_reclen;
            if (strcmp (d->d_name, ".") != 0 && strcmp (d->d_name, "..") != 0)
              entries_add (es, d->d_name, (unsigned) i, d->d_type);
          }
      }
  for (size_t i = 0; i < es->len; i++)
    es->v[i].name = es->names + es->v[i].off;
  if (es->len > 1)
    qsort (es->v, es->len, sizeof *es->v, entry_cmp);
  return 0;
}

static int merge_dir (struct flat *f, int out, const struct src_dir *srcs, size_t n);

static void
close_srcs (struct src_dir *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    close (v[i].fd);
}

/* The type of a lower layer's entry; whiteouts as DT_WHT. */
static unsigned char
lower_type (const struct src_dir *s, const struct entry *e)
{
  struct stat st;
  if (e->type != DT_UNKNOWN && e->type != DT_CHR)
    return e->type;
  if (fstatat (s->fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return DT_UNKNOWN;
  return is_whiteout (&st) ? DT_WHT : IFTODT (st.st_mode);
}

/* The directory group[0] names, merged with the same directory in the layers below it. */
static int
merge_subdir (struct flat *f, int out, const struct src_dir *srcs, const struct entry *group, size_t ng)
{
  const char *name = group[0].name;
  const struct src_dir *top = &srcs[group[0].pos];
  cleanup_free struct src_dir *sub = xmalloc (ng * sizeof *sub);
  cleanup_close int dfd = -1;
  size_t nsub = 0;
  struct stat st;
  bool opaque;
  int fd = openat (top->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = -1;
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      if (fd >= 0)
        close (fd);
      return src_fail (f, errno, top->layer, "open directory");
    }
  sub[nsub++] = (struct src_dir){ fd, top->layer };
  opaque = f->layered && is_opaque (fd);
  for (size_t k = 1; f->layered && !opaque && k < ng; k++)
    {
      const struct src_dir *s = &srcs[group[k].pos];
      unsigned char t = lower_type (s, &group[k]);
      if (t == DT_WHT && k + 1 < ng)
        f->st->whiteouts_applied++;
      if (t != DT_DIR)
        break; /* this layer has something else there: it and the ones below are hidden */
      fd = openat (s->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        {
          src_fail (f, errno, s->layer, "open directory");
          goto out;
        }
      sub[nsub++] = (struct src_dir){ fd, s->layer };
      opaque = is_opaque (fd);
    }
  if (mkdirat (out, name, 0700) < 0)
    {
      dest_fail (f, errno, "create directory");
      goto out;
    }
  dfd = openat (out, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    {
      dest_fail (f, errno, "open directory");
      goto out;
    }
  f->st->dirs++;
  /* Mode and times after the contents: adding entries changes the mtime, a read-only mode would
   * stop us. */
  r = merge_dir (f, dfd, sub, nsub) < 0 ? -1 : set_meta (f, dfd, sub[0].fd, &st);
out:
  close_srcs (sub, nsub);
  return r;
}

/* One name of a merged directory: group[0] is the top-most layer's entry, the rest are lower. */
static int
merge_entry (struct flat *f, int out, const struct src_dir *srcs, const struct entry *group, size_t ng)
{
  const struct src_dir *s = &srcs[group[0].pos];
  const char *name = group[0].name;
  struct stat st;
  if (group[0].type == DT_REG)
    return copy_file (f, out, s, name);
  if (group[0].type == DT_DIR)
    return merge_subdir (f, out, srcs, group, ng);
  if (fstatat (s->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return src_fail (f, errno, s->layer, "stat");
  switch (st.st_mode & S_IFMT)
    {
    case S_IFREG:
      return copy_file (f, out, s, name);
    case S_IFDIR:
      return merge_subdir (f, out, srcs, group, ng);
    case S_IFLNK:
      return copy_symlink (f, out, s, name, &st);
    case S_IFCHR:
      if (f->layered && is_whiteout (&st))
        {
          if (ng > 1)
            f->st->whiteouts_applied++;
          return 0;
        }
      return copy_special (f, out, s, name, &st);
    case S_IFBLK:
    case S_IFIFO:
      return copy_special (f, out, s, name, &st);
    default:
      return 0; /* sockets: nothing to copy */
    }
}

static int
merge_dir (struct flat *f, int out, const struct src_dir *srcs, size_t n)
{
  cleanup_entries struct entries es = { 0 };
  if (read_entries (f, srcs, n, &es) < 0)
    return -1;
  for (size_t i = 0, j; i < es.len; i = j)
    {
      size_t mark;
      int r;
      for (j = i + 1; j < es.len && strcmp (es.v[j].name, es.v[i].name) == 0; j++)
        ;
      mark = rel_push (f, es.v[i].name);
      r = merge_entry (f, out, srcs, es.v + i, j - i);
      rel_pop (f, mark);
      if (r < 0)
        return -1;
    }
  return 0;
}

/* The top level. */

/* rm -rf of a half-made copy. Our own modes can have made directories read-only or unsearchable
 * (they are set after the contents), so each one is made ours to empty first. */
static void
discard_at (int dfd, const char *name)
{
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d;
  struct dirent *e;
  if (fd < 0 && errno == EACCES && fchmodat (dfd, name, 0700, 0) == 0)
    fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      unlinkat (dfd, name, 0);
      return;
    }
  (void) fchmod (fd, 0700);
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return;
    }
  while ((e = readdir (d)) != NULL)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
        discard_at (dirfd (d), e->d_name);
      else
        unlinkat (dirfd (d), e->d_name, 0);
    }
  closedir (d);
  unlinkat (dfd, name, AT_REMOVEDIR);
}

static char *
parent_of (const char *path)
{
  size_t n = strlen (path);
  char *p;
  while (n > 1 && path[n - 1] == '/')
    n--;
  while (n > 0 && path[n - 1] != '/')
    n--;
  while (n > 1 && path[n - 1] == '/')
    n--;
  if (n == 0)
    return xstrdup (".");
  p = xstrdup (path);
  p[n] = '\0';
  return p;
}

/* Refuse a dest inside one of the roots (the copy would copy itself). The directory that will
 * hold dest is walked up by "..", so neither symlinks nor bind mounts in the paths can hide it. */
static int
check_outside (const char *dest, const int *fds, char *const *names, size_t n, const char *what, cella_error_t *err)
{
  cleanup_free char *parent = parent_of (dest);
  cleanup_free struct stat *roots = xmalloc ((n ? n : 1) * sizeof *roots);
  int fd = open (parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; i < n; i++)
    if (fstat (fds[i], &roots[i]) < 0)
      roots[i].st_ino = 0;
  while (fd >= 0)
    {
      struct stat here, up;
      int ufd;
      if (fstat (fd, &here) < 0)
        break;
      for (size_t i = 0; i < n; i++)
        if (roots[i].st_ino != 0 && here.st_dev == roots[i].st_dev && here.st_ino == roots[i].st_ino)
          {
            close (fd);
            return cella_error (err, EINVAL, "refusing to copy into `%s`: it is inside %s `%s`", dest, what, names[i]);
          }
      ufd = openat (fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (ufd < 0 || fstat (ufd, &up) < 0 || (up.st_dev == here.st_dev && up.st_ino == here.st_ino))
        {
          if (ufd >= 0)
            close (ufd);
          break;
        }
      close (fd);
      fd = ufd;
    }
  if (fd >= 0)
    close (fd);
  return 0;
}

/* Copy the merge of fds (top-most first) into a new dest. */
static int
flatten_fds (struct flat *f, const int *fds, size_t n)
{
  cleanup_free struct src_dir *srcs = xmalloc ((n ? n : 1) * sizeof *srcs);
  int r;
  for (size_t i = 0; i < n; i++)
    srcs[i] = (struct src_dir){ fds[i], (unsigned) i };
  if (check_outside (f->dest, fds, f->roots, n, f->layered ? "layer" : "the source", f->err) < 0)
    return -1;
  /* 0700 until it is done: nobody else can reach in (and swap a symlink for one of our
   * directories) while we work by name inside it. */
  if (mkdir (f->dest, 0700) < 0)
    return cella_error (f->err, errno, "create `%s`", f->dest);
  f->destfd = open (f->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (f->destfd < 0)
    r = cella_error (f->err, errno, "open `%s`", f->dest);
  else if ((r = merge_dir (f, f->destfd, srcs, n)) == 0 && fchmod (f->destfd, 0755) < 0)
    r = cella_error (f->err, errno, "`%s`: set mode", f->dest);
  if (f->destfd >= 0)
    close (f->destfd);
  if (r < 0)
    discard_at (AT_FDCWD, f->dest);
  return r;
}

static int
flatten_run (char *const *roots, size_t n, bool layered, const char *dest, struct flatten_stats *st, cella_error_t *err)
{
  struct flatten_stats dummy = { 0 }; /* zeroed below too; cppcheck does not see it through f.st */
  struct flat f = {
    .roots = roots, .dest = dest, .destfd = -1, .layered = layered, .st = st ? st : &dummy, .err = err, .weakest = -1
  };
  cleanup_free int *fds = xmalloc ((n ? n : 1) * sizeof *fds);
  size_t opened = 0;
  int r = -1;
  memset (f.st, 0, sizeof *f.st);
  for (; opened < n; opened++)
    {
      fds[opened] = open (roots[opened], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fds[opened] < 0)
        {
          cella_error (err, errno, "%s `%s`", layered ? "layer" : "source", roots[opened]);
          goto out;
        }
    }
  f.rel_cap = 256;
  f.rel = xzalloc (f.rel_cap);
  f.dents = xmalloc (DENTS_SIZE);
  r = flatten_fds (&f, fds, n);
  f.st->method = f.weakest < 0 ? COPY_REFLINK : (enum copy_method) f.weakest;
out:
  for (size_t i = 0; i < opened; i++)
    close (fds[i]);
  for (size_t i = 0; i < f.links_cap; i++)
    free (f.links[i].path);
  free (f.links);
  free (f.rel);
  free (f.dents);
  free (f.rw_buf);
  return r;
}

int
image_flatten (char *const *layers, const char *dest, struct flatten_stats *st, cella_error_t *err)
{
  return flatten_run (layers, layers ? strv_len (layers) : 0, true, dest, st, err);
}

int
tree_copy (const char *src, const char *dest, struct flatten_stats *st, cella_error_t *err)
{
  char *roots[] = { (char *) src, NULL };
  return flatten_run (roots, 1, false, dest, st, err);
}
