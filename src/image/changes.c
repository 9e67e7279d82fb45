/* `cella diff`: an overlay upper dir read against its lower layers (changes.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes.h"

struct walk {
  char *const *stubs; /* mount targets */
  size_t nstubs;      /* how many were left out so far */
  int *lower_fds;     /* top-most first */
  size_t nlowers;
  struct fs_change *v;
  size_t n, cap;
};

static int
path_rank (char c)
{
  /* the end first, then '/' (what ends a component), then every other byte */
  return c == '\0' ? 0 : c == '/' ? 1 : (unsigned char) c + 2;
}

int
fs_path_cmp (const char *a, const char *b)
{
  for (; *a && *a == *b; a++, b++)
    ;
  return path_rank (*a) - path_rank (*b);
}

static int
change_cmp (const void *x, const void *y)
{
  return fs_path_cmp (((const struct fs_change *) x)->path, ((const struct fs_change *) y)->path);
}

void
fs_changes_free (struct fs_change *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i].path);
  free (v);
}

static void
add (struct walk *w, char kind, const char *path)
{
  if (w->n == w->cap)
    {
      w->cap = w->cap ? w->cap * 2 : 64;
      w->v = xrealloc (w->v, w->cap * sizeof *w->v);
    }
  w->v[w->n].kind = kind;
  w->v[w->n].path = xstrdup (path);
  w->n++;
}

static bool
is_whiteout (const struct stat *st)
{
  return S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0);
}

static bool
is_opaque (int dirfd)
{
  static const char *const names[] = { "trusted.overlay.opaque", "user.overlay.opaque" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      char v[4];
      ssize_t r = fgetxattr (dirfd, names[i], v, sizeof v);
      if (r == 1 && v[0] == 'y')
        return true;
    }
  return false;
}

/* Whether the layers below have rel ("a/b", no leading slash): the top-most layer that has
 * something there decides (a whiteout there hides the ones below). */
static bool
in_lowers (const struct walk *w, const char *rel)
{
  cleanup_free char *parent = xstrdup (rel);
  char *slash = strrchr (parent, '/');
  const char *base = slash ? slash + 1 : rel;
  struct stat st;
  if (slash)
    *slash = '\0';
  for (size_t i = 0; i < w->nlowers; i++)
    {
      struct open_how how
          = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
      cleanup_close int pfd = (int) syscall (SYS_openat2, w->lower_fds[i], slash ? parent : ".", &how, sizeof how);
      if (pfd < 0)
        continue;
      if (fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return !is_whiteout (&st);
    }
  return false;
}

static bool
is_mount_target (const struct walk *w, const char *abs)
{
  for (size_t i = 0; w->stubs && w->stubs[i]; i++)
    if (strcmp (w->stubs[i], abs) == 0)
      return true;
  return false;
}

static void
drop_last (struct walk *w)
{
  free (w->v[--w->n].path);
}

/* dirfd is the upper dir's directory at rel ("" for the root); under_opaque: the lowers are
 * hidden here. */
static int
walk_dir (struct walk *w, int dirfd, const char *rel, bool under_opaque, cella_error_t *err)
{
  DIR *d;
  struct dirent *de;
  int rc = 0, fd = dup (dirfd);
  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      return cella_error (err, e, "read the container's changes at `/%s`", rel);
    }
  while (rc == 0 && (errno = 0, de = readdir (d)) != NULL)
    {
      cleanup_free char *sub = NULL, *abs = NULL;
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      sub = *rel ? xasprintf ("%s/%s", rel, de->d_name) : xstrdup (de->d_name);
      abs = xasprintf ("/%s", sub);
      if (fstatat (dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          rc = cella_error (err, errno, "read the container's changes at `%s`", abs);
          break;
        }
      if (is_whiteout (&st))
        add (w, 'D', abs);
      else if (S_ISDIR (st.st_mode))
        {
          cleanup_close int cfd = openat (dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          size_t at = w->n, stubs = w->nstubs;
          bool opaque;
          char kind;
          if (cfd < 0)
            {
              rc = cella_error (err, errno, "read the container's changes at `%s`", abs);
              break;
            }
          opaque = is_opaque (cfd);
          kind = opaque ? 'D' : !under_opaque && in_lowers (w, sub) ? 'C' : 'A';
          add (w, kind, abs);
          rc = walk_dir (w, cfd, sub, under_opaque || opaque, err);
          /* a mount point cella made (an empty directory no layer has), or a directory made or
           * copied up only to hold such stubs: not the workload's change */
          if (rc == 0 && w->n == at + 1
              && ((kind == 'A' && is_mount_target (w, abs)) || (kind != 'D' && w->nstubs > stubs)))
            {
              drop_last (w);
              w->nstubs++;
            }
        }
      else if (S_ISREG (st.st_mode) && st.st_size == 0 && is_mount_target (w, abs) && !in_lowers (w, sub))
        w->nstubs++; /* the stub of a file bind-mounted over (/etc/hosts ...) */
      else
        add (w, !under_opaque && in_lowers (w, sub) ? 'C' : 'A', abs);
    }
  if (rc == 0 && errno != 0)
    rc = cella_error (err, errno, "read the container's changes at `/%s`", rel);
  closedir (d);
  return rc;
}

int
overlay_changes (const char *upper, char *const *lowers, char *const *mount_targets, struct fs_change **out, size_t *n,
                 cella_error_t *err)
{
  struct walk w = { .stubs = mount_targets };
  cleanup_close int ufd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;
  if (ufd < 0)
    return cella_error (err, errno, "the container's upper dir `%s`", upper);
  while (lowers && lowers[w.nlowers])
    w.nlowers++;
  w.lower_fds = xzalloc ((w.nlowers + 1) * sizeof (int));
  for (size_t i = 0; i < w.nlowers; i++)
    w.lower_fds[i] = -1;
  for (size_t i = 0; rc == 0 && i < w.nlowers; i++)
    {
      w.lower_fds[i] = open (lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (w.lower_fds[i] < 0)
        rc = cella_error (err, errno, "the container's image layer `%s`", lowers[i]);
    }
  if (rc == 0)
    rc = walk_dir (&w, ufd, "", false, err);
  for (size_t i = 0; i < w.nlowers; i++)
    if (w.lower_fds[i] >= 0)
      close (w.lower_fds[i]);
  free (w.lower_fds);
  if (rc < 0)
    {
      fs_changes_free (w.v, w.n);
      return -1;
    }
  if (w.n)
    qsort (w.v, w.n, sizeof *w.v, change_cmp);
  *out = w.v;
  *n = w.n;
  return 0;
}
