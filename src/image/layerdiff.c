/* A layer from two whole trees (layerdiff.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layerdiff.h"

#define LINK_MAX_LEN 4096

struct diff {
  struct layer_diff_stats *st;
  cella_error_t *err;
};

static char *
join (const char *rel, const char *name)
{
  return *rel ? xasprintf ("%s/%s", rel, name) : xstrdup (name);
}

static bool
same_content (int a_dir, int b_dir, const char *name)
{
  char x[65536], y[65536];
  bool same = false;
  int a = openat (a_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  int b = openat (b_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (a < 0 || b < 0)
    goto out;
  for (;;)
    {
      ssize_t n = read (a, x, sizeof x), m;
      if (n < 0)
        goto out;
      if (n == 0)
        {
          same = read (b, y, 1) == 0;
          goto out;
        }
      for (m = 0; m < n;)
        {
          ssize_t r = read (b, y + m, (size_t) (n - m));
          if (r <= 0)
            goto out;
          m += r;
        }
      if (memcmp (x, y, (size_t) n) != 0)
        goto out;
    }
out:
  if (a >= 0)
    close (a);
  if (b >= 0)
    close (b);
  return same;
}

static bool
same_link (int a_dir, int b_dir, const char *name)
{
  char x[LINK_MAX_LEN], y[LINK_MAX_LEN];
  ssize_t n = readlinkat (a_dir, name, x, sizeof x), m = readlinkat (b_dir, name, y, sizeof y);
  return n >= 0 && n == m && memcmp (x, y, (size_t) n) == 0;
}

/* The xattrs of a file or directory, overlay's own left out, as sorted "name=value" blobs. */
static char **
xattrs_of (int dir, const char *name)
{
  char names[65536], value[65536];
  char **v = NULL;
  int fd = openat (dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  ssize_t n = fd >= 0 ? flistxattr (fd, names, sizeof names) : -1;
  for (ssize_t i = 0; i < n; i += (ssize_t) strlen (names + i) + 1)
    {
      ssize_t len;
      if (strncmp (names + i, "trusted.overlay.", 16) == 0 || strncmp (names + i, "user.overlay.", 13) == 0)
        continue;
      len = fgetxattr (fd, names + i, value, sizeof value);
      if (len < 0)
        continue;
      /* the value in hex: it is bytes (a file capability has NULs) */
      size_t nl = strlen (names + i);
      char *e = xmalloc (nl + 2 + 2 * (size_t) len);
      memcpy (e, names + i, nl);
      e[nl] = '=';
      for (ssize_t k = 0; k < len; k++)
        snprintf (e + nl + 1 + 2 * k, 3, "%02x", (unsigned char) value[k]);
      e[nl + 1 + 2 * len] = '\0';
      strv_push (&v, e);
      free (e);
    }
  if (fd >= 0)
    close (fd);
  for (size_t a = 0; v && v[a]; a++)
    for (size_t b = a + 1; v[b]; b++)
      if (strcmp (v[a], v[b]) > 0)
        {
          char *t = v[a];
          v[a] = v[b];
          v[b] = t;
        }
  return v;
}

static bool
same_xattrs (int a_dir, int b_dir, const char *name)
{
  cleanup_strv char **x = xattrs_of (a_dir, name), **y = xattrs_of (b_dir, name);
  size_t i = 0;
  for (; x && y && x[i] && y[i]; i++)
    if (strcmp (x[i], y[i]) != 0)
      return false;
  return (x == NULL || x[i] == NULL) && (y == NULL || y[i] == NULL);
}

/* A non-directory of the same type in both: unchanged? */
static bool
unchanged_file (int a_dir, int b_dir, const char *name, const struct stat *a, const struct stat *b)
{
  if (a->st_mode != b->st_mode || a->st_uid != b->st_uid || a->st_gid != b->st_gid)
    return false;
  if (S_ISCHR (a->st_mode) || S_ISBLK (a->st_mode))
    return a->st_rdev == b->st_rdev;
  if (a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec)
    return false;
  if (S_ISLNK (a->st_mode))
    return same_link (a_dir, b_dir, name);
  if (S_ISREG (a->st_mode))
    return same_xattrs (a_dir, b_dir, name) && same_content (a_dir, b_dir, name);
  return true; /* fifos, sockets: their metadata is all they have */
}

static int
move_up (struct diff *d, int after, int upper, const char *name, const char *rel)
{
  if (renameat (after, name, upper, name) < 0)
    return cella_error (d->err, errno, "layer: move `%s` into the upper dir", rel);
  return 0;
}

static int
copy_dir_xattrs (struct diff *d, int after, int upper, const char *name, const char *rel)
{
  char names[65536], value[65536];
  int from = openat (after, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int to = openat (upper, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  ssize_t n = from >= 0 && to >= 0 ? flistxattr (from, names, sizeof names) : -1;
  int rc = 0;
  for (ssize_t i = 0; i < n && rc == 0; i += (ssize_t) strlen (names + i) + 1)
    {
      ssize_t len = fgetxattr (from, names + i, value, sizeof value);
      if (len >= 0 && fsetxattr (to, names + i, value, (size_t) len, 0) < 0)
        rc = cella_error (d->err, errno, "layer: set the xattr `%s` of `%s`", names + i, rel);
    }
  if (from >= 0)
    close (from);
  if (to >= 0)
    close (to);
  return rc;
}

/* The directory `name` of upper takes after's mode, owner, xattrs and mtime. */
static int
dir_attrs (struct diff *d, int after, int upper, const char *name, const struct stat *a, const char *rel)
{
  struct timespec t[2] = { a->st_atim, a->st_mtim };
  /* the directory's xattrs: from after's, which stays where it was (only its entries moved) */
  if (copy_dir_xattrs (d, after, upper, name, rel) < 0)
    return -1;
  if (fchownat (upper, name, a->st_uid, a->st_gid, AT_SYMLINK_NOFOLLOW) < 0
      || fchmodat (upper, name, a->st_mode & 07777, 0) < 0 || utimensat (upper, name, t, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (d->err, errno, "layer: set the attributes of `%s` in the upper dir", rel);
  return 0;
}

static int diff_dir (struct diff *d, int after, int before, int upper, const char *rel, bool *any);

/* A directory in both trees. */
static int
diff_subdir (struct diff *d, int after, int before, int upper, const char *name, const char *rel, const struct stat *a,
             const struct stat *b, bool *any)
{
  int ac = -1, bc = -1, uc = -1, rc = -1;
  bool below = false;
  if (mkdirat (upper, name, 0700) < 0)
    return cella_error (d->err, errno, "layer: create `%s` in the upper dir", rel);
  ac = openat (after, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  bc = openat (before, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  uc = openat (upper, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (ac < 0 || bc < 0 || uc < 0)
    cella_error (d->err, errno, "layer: open the directory `%s`", rel);
  else
    rc = diff_dir (d, ac, bc, uc, rel, &below);
  if (ac >= 0)
    close (ac);
  if (bc >= 0)
    close (bc);
  if (uc >= 0)
    close (uc);
  if (rc < 0)
    return -1;
  if (!below && a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid
      && same_xattrs (after, before, name))
    {
      if (unlinkat (upper, name, AT_REMOVEDIR) < 0)
        return cella_error (d->err, errno, "layer: remove `%s` from the upper dir", rel);
      return 0;
    }
  *any = true;
  if (!below)
    d->st->changed++;
  d->st->dirs++;
  return dir_attrs (d, after, upper, name, a, rel);
}

static int
diff_entry (struct diff *d, int after, int before, int upper, const char *name, const char *rel, bool top, bool *any)
{
  struct stat a, b;
  bool in_before;
  if (fstatat (after, name, &a, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (d->err, errno, "layer: `%s`", rel);
  in_before = fstatat (before, name, &b, AT_SYMLINK_NOFOLLOW) == 0;
  if (!in_before && errno != ENOENT)
    return cella_error (d->err, errno, "layer: `%s` before the step", rel);
  if (!in_before && top && strcmp (name, "lost+found") == 0 && S_ISDIR (a.st_mode))
    return 0;
  if (!in_before || (a.st_mode & S_IFMT) != (b.st_mode & S_IFMT))
    {
      *any = true;
      if (in_before)
        d->st->changed++;
      else
        d->st->added++;
      return move_up (d, after, upper, name, rel);
    }
  if (S_ISDIR (a.st_mode))
    return diff_subdir (d, after, before, upper, name, rel, &a, &b, any);
  if (unchanged_file (after, before, name, &a, &b))
    return 0;
  *any = true;
  d->st->changed++;
  return move_up (d, after, upper, name, rel);
}

/* The names of a directory (a snapshot: entries are moved out while we walk). */
static char **
names_of (int dfd, cella_error_t *err, const char *rel)
{
  char **v = NULL;
  int fd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;
  if (dir == NULL)
    {
      cella_error (err, errno, "layer: read the directory `%s`", *rel ? rel : "/");
      if (fd >= 0)
        close (fd);
      return NULL;
    }
  strv_push (&v, "."); /* never NULL for an empty directory: skipped below */
  while ((errno = 0, e = readdir (dir)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      strv_push (&v, e->d_name);
  if (errno != 0)
    {
      cella_error (err, errno, "layer: read the directory `%s`", *rel ? rel : "/");
      strv_free (v);
      v = NULL;
    }
  closedir (dir);
  return v;
}

static int
diff_dir (struct diff *d, int after, int before, int upper, const char *rel, bool *any)
{
  cleanup_strv char **an = names_of (after, d->err, rel), **bn = NULL;
  if (an == NULL)
    return -1;
  for (size_t i = 1; an[i]; i++)
    {
      cleanup_free char *sub = join (rel, an[i]);
      if (diff_entry (d, after, before, upper, an[i], sub, *rel == '\0', any) < 0)
        return -1;
    }
  bn = names_of (before, d->err, rel);
  if (bn == NULL)
    return -1;
  for (size_t i = 1; bn[i]; i++)
    {
      struct stat st;
      bool gone = true;
      for (size_t j = 1; an[j] && gone; j++)
        gone = strcmp (an[j], bn[i]) != 0;
      if (!gone)
        continue;
      if (fstatat (after, bn[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
        continue; /* not expected: after is not changed but by our moves */
      if (mknodat (upper, bn[i], S_IFCHR, makedev (0, 0)) < 0)
        {
          cleanup_free char *sub = join (rel, bn[i]);
          return cella_error (d->err, errno, "layer: the whiteout of `%s`", sub);
        }
      d->st->deleted++;
      *any = true;
    }
  return 0;
}

int
image_layer_diff (int after, int before, int upper, struct layer_diff_stats *st, cella_error_t *err)
{
  struct layer_diff_stats none = { 0 };
  struct diff d = { .st = st ? st : &none, .err = err };
  bool any = false;
  memset (d.st, 0, sizeof *d.st);
  return diff_dir (&d, after, before, upper, "", &any);
}
