/* `cella cp`: copy a tree between a host path and a path inside a container root (copy.h has
 * docker's rules and the safety contract). The top of each side is resolved once to a directory
 * fd (inside the root with openat2 RESOLVE_IN_ROOT); every entry below is reached with *at()
 * calls and O_NOFOLLOW relative to an fd we opened, so no path string is ever re-resolved. */
#define _GNU_SOURCE
#include "engine/copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Each level of the walk holds three descriptors (source, destination, the directory stream):
 * 256 levels stay under the usual limit of 1024. A container can make far deeper trees; cp
 * refuses them with one short line, and removes what it had copied. */
#define COPY_MAX_DEPTH 256
/* Paths in messages are cut to their last components beyond this. */
#define SHOWN_MAX 160

/* One side's top-level resolution: inside a container root, or on the host (rootfd -1). */
struct side {
  int rootfd;
  const char *where; /* " in the container" / " on the host", for messages */
};

struct ctx {
  const struct copy_opts *o;
  cella_error_t *err;
  const char *swhere, *dwhere;
  /* The first directory the copy made (or merged into): skipped when the walk meets it, so a
   * destination inside the source does not copy itself forever. */
  bool skip_set;
  dev_t skip_dev;
  ino_t skip_ino;
  unsigned depth;
  const char *top; /* the source as given, for the messages about the whole copy */
};

/* An entry: a name (no slash, never "..") in a directory we hold, and how messages show it. */
struct at {
  int dirfd;
  const char *name;
  const char *shown;
};

/* The top-level source, pinned by the directory that holds it. */
struct src {
  int dirfd;
  char *name;    /* entry in dirfd; "." when dirfd is the source directory itself */
  char *base;    /* the name its copy gets inside an existing directory */
  bool contents; /* SRC ended in "/.": its contents are copied, not itself */
  const char *shown;
  struct stat st;
};

static void
src_free (struct src *s)
{
  if (s->dirfd >= 0)
    close (s->dirfd);
  free (s->name);
  free (s->base);
}

static void
cleanup_dirp (DIR **d)
{
  if (*d != NULL)
    closedir (*d);
}
#define cleanup_dir __attribute__ ((cleanup (cleanup_dirp)))

static char *
xstrndup_ (const char *s, size_t n)
{
  char *p = strndup (s, n);
  if (p == NULL)
    abort ();
  return p;
}

static int
openat2_in_root (int rootfd, const char *path, int flags)
{
  struct open_how how = { .flags = (unsigned) (flags | O_CLOEXEC), .resolve = IN_ROOT };
  int fd, tries = 0;
  /* EAGAIN: a rename raced with a ".." in the path; the kernel asks us to try again. */
  do
    fd = (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && ++tries < 32);
  return fd;
}

static int
side_open (const struct side *s, const char *path, int flags)
{
  if (s->rootfd >= 0)
    return openat2_in_root (s->rootfd, path, flags);
  return open (path, flags | O_CLOEXEC);
}

/* PATH without trailing slashes and "/." components; *dir_syntax when it had any, *dot when it
 * ended in "/." (or was "."). "/" stays "/". */
static char *
path_trim (const char *path, bool *dir_syntax, bool *dot)
{
  size_t n = strlen (path);
  *dir_syntax = *dot = false;
  for (;;)
    {
      if (n > 1 && path[n - 1] == '/')
        n--, *dir_syntax = true;
      else if (n >= 2 && path[n - 1] == '.' && path[n - 2] == '/')
        n--, *dir_syntax = *dot = true;
      else
        break;
    }
  if (n == 1 && path[0] == '.')
    *dot = true;
  return xstrndup_ (path, n);
}

/* Split a trimmed path into its parent (malloc'd) and last component (inside path). */
static const char *
path_split (const char *path, char **parent)
{
  const char *slash = strrchr (path, '/');
  if (slash == NULL)
    *parent = xstrdup (".");
  else if (slash == path)
    *parent = xstrdup ("/");
  else
    *parent = xstrndup_ (path, (size_t) (slash - path));
  return slash ? slash + 1 : path;
}

static char *
path_join (const char *dir, const char *name)
{
  size_t n = strlen (dir);
  return xasprintf ("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name);
}

/* A path for messages: DIR/NAME, cut at a slash to its last SHOWN_MAX bytes or so ("…/a/b"), so
 * that an error deep in a tree stays one readable line and memory stays linear in the depth. */
static char *
shown_join (const char *dir, const char *name)
{
  char *full = path_join (dir, name), *cut;
  size_t n = strlen (full);
  const char *tail;
  if (n <= SHOWN_MAX)
    return full;
  tail = strchr (full + n - SHOWN_MAX, '/');
  cut = xasprintf ("…%s", tail ? tail : full + n - SHOWN_MAX);
  free (full);
  return cut;
}

/* The kernel's own file systems: reading a file there can take something from the host
 * (/proc/kmsg consumes the host's kernel log) and sizes mean nothing; cp copies none of it. */
static bool
kernel_fs (int fd)
{
  static const long magics[] = { 0x9fa0 /* proc */,        0x62656572 /* sysfs */,      0x64626720 /* debugfs */,
                                 0x74726163 /* tracefs */, 0x73636673 /* securityfs */, 0x27e0eb /* cgroup */,
                                 0x63677270 /* cgroup2 */, (long) 0xcafe4a11 /* bpf */, 0x62656570 /* configfs */ };
  struct statfs sf;
  if (fstatfs (fd, &sf) < 0)
    return false;
  for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
    if ((long) sf.f_type == magics[i])
      return true;
  return false;
}

static char *
read_link (int dirfd, const char *name, size_t hint)
{
  size_t size = hint < 64 ? 64 : hint + 1;
  for (;;)
    {
      char *buf = xmalloc (size);
      ssize_t n = readlinkat (dirfd, name, buf, size);
      if (n >= 0 && (size_t) n < size)
        {
          buf[n] = '\0';
          return buf;
        }
      free (buf);
      if (n < 0 || size > 1024 * 1024)
        return NULL;
      size *= 2;
    }
}

static bool
cfr_unsupported (int e)
{
  return e == EXDEV || e == ENOSYS || e == EINVAL || e == EOPNOTSUPP || e == EBADF;
}

static int
copy_rw (int in, int out)
{
  cleanup_free char *buf = xmalloc (128 * 1024);
  for (;;)
    {
      ssize_t n = read (in, buf, 128 * 1024);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return (int) n;
      if (write_all (out, buf, (size_t) n) < 0)
        return -1;
    }
}

static int
copy_data (int in, int out)
{
  bool first = true;
  for (;;)
    {
      ssize_t n = copy_file_range (in, NULL, out, NULL, 1 << 30, 0);
      if (n > 0)
        first = false;
      else if (n < 0 && errno == EINTR)
        continue;
      else if (n == 0 && !first)
        return 0;
      /* Some filesystems say 0 (procfs) or refuse; both offsets have advanced together, so the
       * plain loop goes on from where this one stopped. */
      else if (n == 0 || cfr_unsupported (errno))
        return copy_rw (in, out);
      else
        return -1;
    }
}

/* Open a source entry to read it, and make sure it is still the one fstatat saw: an entry
 * swapped in since (a symlink is refused by O_NOFOLLOW) is refused, not copied. */
static int
open_verified (struct ctx *c, const struct at *s, int flags, const struct stat *want, struct stat *got)
{
  cleanup_close int fd = openat (s->dirfd, s->name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (c->err, errno, "cp: `%s`: open%s", s->shown, c->swhere);
  if (fstat (fd, got) < 0)
    return cella_error (c->err, errno, "cp: `%s`: stat%s", s->shown, c->swhere);
  if (got->st_dev != want->st_dev || got->st_ino != want->st_ino)
    return cella_error (c->err, 0, "cp: `%s`: changed during the copy%s", s->shown, c->swhere);
  return steal_fd (&fd);
}

/* Make room for a non-directory: an existing file or symlink is removed, never written
 * through; the O_CREAT|O_EXCL (or symlinkat, mkfifoat) that follows refuses anything planted
 * there in between. */
static int
clear_slot (struct ctx *c, const struct at *d)
{
  if (unlinkat (d->dirfd, d->name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno == EISDIR)
    return cella_error (c->err, 0, "cp: `%s`: is a directory%s, cannot replace it with a non-directory", d->shown,
                        c->dwhere);
  return cella_error (c->err, errno, "cp: `%s`: remove%s", d->shown, c->dwhere);
}

/* Owner (fchown first: it clears set-id bits), mode, then times. */
static int
set_meta (struct ctx *c, int fd, const struct stat *st, const struct at *d)
{
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  if (c->o->chown && fchown (fd, c->o->uid, c->o->gid) < 0)
    return cella_error (c->err, errno, "cp: `%s`: set owner to %u:%u%s", d->shown, (unsigned) c->o->uid,
                        (unsigned) c->o->gid, c->dwhere);
  if (fchmod (fd, st->st_mode & (c->o->no_setid ? 01777 : 07777)) < 0)
    return cella_error (c->err, errno, "cp: `%s`: set mode%s", d->shown, c->dwhere);
  if (futimens (fd, times) < 0)
    return cella_error (c->err, errno, "cp: `%s`: set times%s", d->shown, c->dwhere);
  return 0;
}

static int
copy_file (struct ctx *c, const struct at *s, const struct stat *st, const struct at *d)
{
  struct stat got;
  cleanup_close int in = open_verified (c, s, O_RDONLY, st, &got);
  cleanup_close int out = -1;
  if (in < 0)
    return -1;
  if (kernel_fs (in))
    return cella_error (c->err, 0, "cp: `%s`: a file of the kernel's (/proc, /sys ...)%s: not copied", s->shown,
                        c->swhere);
  if (clear_slot (c, d) < 0)
    return -1;
  out = openat (d->dirfd, d->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return cella_error (c->err, errno, "cp: `%s`: create%s", d->shown, c->dwhere);
  if (copy_data (in, out) < 0)
    return cella_error (c->err, errno, "cp: `%s`: copy to `%s`%s", s->shown, d->shown, c->dwhere);
  return set_meta (c, out, &got, d);
}

static int
copy_link (struct ctx *c, const struct at *s, const struct stat *st, const struct at *d)
{
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  cleanup_free char *target = read_link (s->dirfd, s->name, (size_t) st->st_size);
  if (target == NULL)
    return cella_error (c->err, errno, "cp: `%s`: read symlink%s", s->shown, c->swhere);
  if (clear_slot (c, d) < 0)
    return -1;
  if (symlinkat (target, d->dirfd, d->name) < 0)
    return cella_error (c->err, errno, "cp: `%s`: create symlink%s", d->shown, c->dwhere);
  if (c->o->chown && fchownat (d->dirfd, d->name, c->o->uid, c->o->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (c->err, errno, "cp: `%s`: set owner%s", d->shown, c->dwhere);
  if (utimensat (d->dirfd, d->name, times, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (c->err, errno, "cp: `%s`: set times%s", d->shown, c->dwhere);
  return 0;
}

static int
copy_fifo (struct ctx *c, const struct stat *st, const struct at *d)
{
  struct stat got;
  cleanup_close int fd = -1;
  if (clear_slot (c, d) < 0)
    return -1;
  if (mkfifoat (d->dirfd, d->name, 0600) < 0)
    return cella_error (c->err, errno, "cp: `%s`: create fifo%s", d->shown, c->dwhere);
  /* Non-blocking read side: opens at once; O_NOFOLLOW and the check keep it our fifo. */
  fd = openat (d->dirfd, d->name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &got) < 0)
    return cella_error (c->err, errno, "cp: `%s`: open fifo%s", d->shown, c->dwhere);
  if (!S_ISFIFO (got.st_mode))
    return cella_error (c->err, 0, "cp: `%s`: changed during the copy%s", d->shown, c->dwhere);
  return set_meta (c, fd, st, d);
}

/* A directory to copy into: made, or an existing one merged into (docker's rule); a
 * non-directory in its place (a planted symlink included) is replaced. */
static int
make_dir (struct ctx *c, const struct at *d)
{
  struct stat st;
  int fd;
  if (mkdirat (d->dirfd, d->name, 0700) < 0)
    {
      if (errno != EEXIST || fstatat (d->dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return cella_error (c->err, errno, "cp: `%s`: create directory%s", d->shown, c->dwhere);
      if (!S_ISDIR (st.st_mode) && clear_slot (c, d) < 0)
        return -1;
      if (!S_ISDIR (st.st_mode) && mkdirat (d->dirfd, d->name, 0700) < 0)
        return cella_error (c->err, errno, "cp: `%s`: create directory%s", d->shown, c->dwhere);
    }
  fd = openat (d->dirfd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cella_error (c->err, errno, "cp: `%s`: open directory%s", d->shown, c->dwhere);
  return fd;
}

static void
set_skip (struct ctx *c, int dirfd)
{
  struct stat st;
  if (!c->skip_set && fstat (dirfd, &st) == 0)
    {
      c->skip_set = true;
      c->skip_dev = st.st_dev;
      c->skip_ino = st.st_ino;
    }
}

static int copy_entry (struct ctx *c, const struct at *s, const struct at *d);

/* A top-level entry of the copy: what it created is removed again when it fails, so a failed
 * cp leaves nothing half-copied (an existing directory merged into keeps what it had). */
static int
copy_entry_whole (struct ctx *c, const struct at *s, const struct at *d)
{
  struct stat st;
  bool fresh = fstatat (d->dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
  int r = copy_entry (c, s, d);
  if (r < 0 && fresh)
    remove_tree_at (d->dirfd, d->name);
  return r;
}

static int
copy_child (struct ctx *c, int in, int out, const char *name, const struct at *sdir, const struct at *ddir, bool top)
{
  cleanup_free char *sshown = shown_join (sdir->shown, name);
  cleanup_free char *dshown = shown_join (ddir->shown, name);
  struct at s = { in, name, sshown }, d = { out, name, dshown };
  return top ? copy_entry_whole (c, &s, &d) : copy_entry (c, &s, &d);
}

/* Copy what directory `in` holds into `out`. `sdir` and `ddir` only name them in messages;
 * `top`: these are the top-level entries of a "SRC/." copy. */
static int
copy_children (struct ctx *c, int in, int out, const struct at *sdir, const struct at *ddir, bool top)
{
  cleanup_dir DIR *dir = NULL;
  struct dirent *e;
  int fd = fcntl (in, F_DUPFD_CLOEXEC, 0);
  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      return cella_error (c->err, saved, "cp: `%s`: read directory%s", sdir->shown, c->swhere);
    }
  for (errno = 0; (e = readdir (dir)) != NULL; errno = 0)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (copy_child (c, in, out, e->d_name, sdir, ddir, top) < 0)
        return -1;
    }
  if (errno != 0)
    return cella_error (c->err, errno, "cp: `%s`: read directory%s", sdir->shown, c->swhere);
  return 0;
}

static int
copy_dir (struct ctx *c, const struct at *s, const struct stat *st, const struct at *d)
{
  struct stat got;
  cleanup_close int in = -1, out = -1;
  if (c->skip_set && st->st_dev == c->skip_dev && st->st_ino == c->skip_ino)
    return 0;
  if (c->depth >= COPY_MAX_DEPTH)
    return cella_error (c->err, 0, "cp: `%s`: more than %d directories deep%s; nothing was copied", c->top,
                        COPY_MAX_DEPTH, c->swhere);
  in = open_verified (c, s, O_RDONLY | O_DIRECTORY, st, &got);
  if (in < 0 || (out = make_dir (c, d)) < 0)
    return -1;
  set_skip (c, out);
  /* a directory of the kernel's (a running container's /proc, /sys) is copied empty, as docker
   * copies the root's own mount point */
  if (!kernel_fs (in))
    {
      int r;
      c->depth++;
      r = copy_children (c, in, out, s, d, false);
      c->depth--;
      if (r < 0)
        return -1;
    }
  /* Mode and times last: adding entries changes the mtime, and a read-only mode would stop us. */
  return set_meta (c, out, &got, d);
}

static int
copy_entry (struct ctx *c, const struct at *s, const struct at *d)
{
  struct stat st;
  if (fstatat (s->dirfd, s->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (c->err, errno, "cp: `%s`: stat%s", s->shown, c->swhere);
  switch (st.st_mode & S_IFMT)
    {
    case S_IFREG:
      return copy_file (c, s, &st, d);
    case S_IFDIR:
      return copy_dir (c, s, &st, d);
    case S_IFLNK:
      return copy_link (c, s, &st, d);
    case S_IFIFO:
      return copy_fifo (c, &st, d);
    default:
      return 0; /* device nodes and sockets are not copied */
    }
}

/* DST is an existing directory: SRC goes in under its own name, or, for "SRC/.", what SRC holds. */
static int
copy_into_dir (struct ctx *c, struct src *s, int dfd, const char *dst)
{
  cleanup_free char *dshown = path_join (dst, s->base);
  cleanup_close int in = -1;
  struct at sa = { s->dirfd, s->name, s->shown }, da = { dfd, s->base, dshown };
  struct stat got;
  if (!s->contents)
    return copy_entry_whole (c, &sa, &da);
  da.name = ".", da.shown = dst;
  in = open_verified (c, &sa, O_RDONLY | O_DIRECTORY, &s->st, &got);
  if (in < 0)
    return -1;
  set_skip (c, dfd);
  if (kernel_fs (in))
    return 0;
  return copy_children (c, in, dfd, &sa, &da, true);
}

/* DST does not name an existing directory: it names the copy itself, in a parent that exists. */
static int
copy_as (struct ctx *c, struct src *s, const struct side *d, const char *path, const char *dst)
{
  cleanup_free char *parent = NULL;
  const char *base = path_split (path, &parent);
  cleanup_close int pfd = side_open (d, parent, O_PATH | O_DIRECTORY);
  struct stat st;
  struct at sa = { s->dirfd, s->name, s->shown }, da = { pfd, base, dst };
  if (pfd < 0 && errno != ENOENT && errno != ENOTDIR)
    return cella_error (c->err, errno, "cp: `%s`: open%s", parent, d->where);
  if (pfd < 0 || strcmp (base, "..") == 0 || strcmp (base, ".") == 0)
    return cella_error (c->err, 0, "cp: `%s`: no such directory%s", pfd < 0 ? parent : dst, d->where);
  if (S_ISDIR (s->st.st_mode) && fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR (st.st_mode)
      && !S_ISLNK (st.st_mode))
    return cella_error (c->err, 0, "cp: `%s`: not a directory%s, cannot copy directory `%s` onto it", dst, d->where,
                        s->shown);
  return copy_entry_whole (c, &sa, &da);
}

static int
copy_to (struct ctx *c, struct src *s, const struct side *d, const char *dst)
{
  bool dir_syntax, dot;
  cleanup_free char *path = path_trim (dst, &dir_syntax, &dot);
  cleanup_close int dfd = side_open (d, path, O_PATH | O_DIRECTORY);
  if (dfd >= 0)
    return copy_into_dir (c, s, dfd, dst);
  if (errno != ENOENT && errno != ENOTDIR)
    return cella_error (c->err, errno, "cp: `%s`: open%s", dst, d->where);
  if (dir_syntax && !S_ISDIR (s->st.st_mode))
    return cella_error (c->err, 0, "cp: `%s`: %s%s", dst, errno == ENOENT ? "no such directory" : "not a directory",
                        d->where);
  return copy_as (c, s, d, path, dst);
}

static int
src_open_error (cella_error_t *err, int e, const char *path, const char *where)
{
  if (e == ENOENT)
    return cella_error (err, 0, "cp: `%s`: no such file or directory%s", path, where);
  if (e == ENOTDIR)
    return cella_error (err, 0, "cp: `%s`: not a directory%s", path, where);
  return cella_error (err, e, "cp: `%s`: open%s", path, where);
}

/* Pin the source: `self` opens the path itself as a directory ("DIR/", "DIR/."), otherwise its
 * parent is opened and the last component stays a name in it, looked at without following. */
static int
src_pin (struct src *s, const struct side *side, const char *path, bool self, const char *shown, cella_error_t *err)
{
  cleanup_free char *parent = NULL;
  const char *base = path_split (path, &parent);
  s->shown = shown;
  s->name = xstrdup (self ? "." : base);
  s->dirfd = side_open (side, self ? path : parent, O_PATH | O_DIRECTORY);
  if (s->dirfd < 0 || fstatat (s->dirfd, s->name, &s->st, AT_SYMLINK_NOFOLLOW) < 0)
    return src_open_error (err, errno, shown, side->where);
  return 0;
}

/* A host source: symlinks anywhere in the path are followed, like docker's cp of a host path. */
static int
src_open_host (struct src *s, const char *path, cella_error_t *err)
{
  struct side host = { -1, " on the host" };
  bool dir_syntax, dot;
  cleanup_free char *trim = path_trim (path, &dir_syntax, &dot);
  cleanup_free char *real = realpath (trim, NULL);
  cleanup_free char *parent = NULL;
  const char *base;
  if (real == NULL)
    return src_open_error (err, errno, path, host.where);
  base = path_split (trim, &parent);
  s->contents = dot || strcmp (real, "/") == 0;
  if (strcmp (base, "") == 0 || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    base = strrchr (real, '/') + 1;
  s->base = xstrdup (base);
  return src_pin (s, &host, real, s->contents || dir_syntax, path, err);
}

/* A container source: resolved inside the root; a symlink at its end is copied as a symlink
 * (unless "LINK/" asks for the directory it points to, resolved inside the root too). */
static int
src_open_ctr (struct src *s, int rootfd, const char *path, cella_error_t *err)
{
  struct side ctr = { rootfd, " in the container" };
  bool dir_syntax, dot;
  cleanup_free char *trim = path_trim (path, &dir_syntax, &dot);
  cleanup_free char *parent = NULL;
  const char *base = path_split (trim, &parent);
  if (strcmp (base, "..") == 0)
    return cella_error (err, 0, "cp: `%s`: a source path cannot end in `..`", path);
  s->contents = dot || strcmp (base, "") == 0;
  s->base = xstrdup (base);
  return src_pin (s, &ctr, trim, s->contents || dir_syntax, path, err);
}

int
copy_into_root (const char *host_src, int rootfd, const char *ctr_dst, const struct copy_opts *o, cella_error_t *err)
{
  static const struct copy_opts none;
  __attribute__ ((cleanup (src_free))) struct src s = { .dirfd = -1 };
  struct side d = { rootfd, " in the container" };
  struct ctx c = { .o = o ? o : &none, .err = err, .swhere = " on the host", .dwhere = d.where, .top = host_src };
  if (*host_src == '\0' || *ctr_dst == '\0')
    return cella_error (err, 0, "cp: empty path");
  if (src_open_host (&s, host_src, err) < 0)
    return -1;
  return copy_to (&c, &s, &d, ctr_dst);
}

int
copy_out_of_root (int rootfd, const char *ctr_src, const char *host_dst, const struct copy_opts *o, cella_error_t *err)
{
  struct copy_opts out = o ? *o : (struct copy_opts){ .chown = false };
  __attribute__ ((cleanup (src_free))) struct src s = { .dirfd = -1 };
  struct side d = { -1, " on the host" };
  struct ctx c = { .o = &out, .err = err, .swhere = " in the container", .dwhere = d.where, .top = ctr_src };
  out.no_setid = true;
  if (*ctr_src == '\0' || *host_dst == '\0')
    return cella_error (err, 0, "cp: empty path");
  if (src_open_ctr (&s, rootfd, ctr_src, err) < 0)
    return -1;
  return copy_to (&c, &s, &d, host_dst);
}
