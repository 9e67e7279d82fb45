/* Looking files up in a root made of overlay layers, before any overlay is mounted (the plan is
 * built on the host, often by a user who cannot mount): the layers are searched top-most first,
 * as overlayfs merges them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "build.h"

int
root_view_open (struct root_view *v, char *const *layers, const char *bottom, cella_error_t *err)
{
  size_t n = strv_len (layers) + 1;
  v->fds = xmalloc (sizeof (int) * n);
  v->n = 0;
  for (size_t i = 0; i < n; i++)
    {
      const char *dir = i + 1 < n ? layers[i] : bottom;
      int fd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0)
        {
          int e = errno;
          root_view_close (v);
          return cella_error (err, e, "root `%s`", dir);
        }
      v->fds[v->n++] = fd;
    }
  return 0;
}

void
root_view_close (struct root_view *v)
{
  for (size_t i = 0; i < v->n; i++)
    close (v->fds[i]);
  free (v->fds);
  v->fds = NULL;
  v->n = 0;
}

static int
open_in (int dirfd, const char *path, int flags)
{
  struct open_how how = { .flags = (uint64_t) flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

static bool
is_whiteout (const struct stat *st)
{
  return S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0);
}

static bool
is_opaque (int dirfd, const char *path)
{
  char val[2];
  int fd = open_in (dirfd, *path ? path : ".", O_RDONLY | O_DIRECTORY);
  bool r;
  if (fd < 0)
    return false;
  r = (fgetxattr (fd, "trusted.overlay.opaque", val, 1) == 1 && val[0] == 'y')
      || (fgetxattr (fd, "user.overlay.opaque", val, 1) == 1 && val[0] == 'y');
  close (fd);
  return r;
}

/* Does this layer hide `path` in the layers below it: a whiteout at the path or one of its
 * parents, or an opaque parent directory? */
static bool
layer_hides (int dirfd, const char *path)
{
  char buf[4096];
  size_t len = strlen (path);
  if (len >= sizeof buf)
    return false;
  memcpy (buf, path, len + 1);
  for (char *p = buf;;)
    {
      char *slash = strchr (p, '/');
      struct stat st;
      if (slash)
        *slash = '\0';
      if (fstatat (dirfd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0)
        {
          if (is_whiteout (&st))
            return true;
          if (slash && S_ISDIR (st.st_mode) && is_opaque (dirfd, buf))
            return true;
        }
      if (slash == NULL)
        return false;
      *slash = '/';
      p = slash + 1;
    }
}

int
root_view_openat (const struct root_view *v, const char *path, int flags)
{
  while (*path == '/')
    path++;
  for (size_t i = 0; i < v->n; i++)
    {
      int fd = open_in (v->fds[i], path, flags);
      struct stat st;
      if (fd >= 0)
        {
          if (fstat (fd, &st) == 0 && is_whiteout (&st))
            {
              close (fd);
              errno = ENOENT;
              return -1;
            }
          return fd;
        }
      if (errno != ENOENT && errno != ENOTDIR)
        return -1;
      if (i + 1 < v->n && layer_hides (v->fds[i], path))
        break;
    }
  errno = ENOENT;
  return -1;
}
