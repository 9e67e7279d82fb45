/* Copy-up: a new volume mounted over a path the image has content at gets that content first
 * (docker's behaviour), with owners, modes, times and symlinks as links. The image is a stack of
 * overlay layers: each is copied over the last, bottom first, and its whiteouts and opaque
 * directories remove what the layers below gave, as overlayfs would show it.
 *
 * Rootless, the layers' files belong to the caller's subordinate ids; the copy runs inside
 * ns_run_mapped, where they show the container's owners and lchown can give those owners to the
 * copies. The volume's directory belongs to the caller, root in the container. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "volume.h"
#include "../ns/ns.h"

static bool
is_whiteout (const struct stat *st)
{
  return S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0);
}

static bool
is_opaque (int fd)
{
  char val[1];
  return (fgetxattr (fd, "trusted.overlay.opaque", val, 1) == 1 && val[0] == 'y')
         || (fgetxattr (fd, "user.overlay.opaque", val, 1) == 1 && val[0] == 'y');
}

static int
clear_dir (int dfd)
{
  int dup_fd = dup (dfd);
  DIR *d = dup_fd >= 0 ? fdopendir (dup_fd) : NULL;
  struct dirent *e;
  if (d == NULL)
    {
      if (dup_fd >= 0)
        close (dup_fd);
      return -1;
    }
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      remove_tree_at (dfd, e->d_name);
  closedir (d);
  return 0;
}

static int
set_attrs (int fd, const struct stat *st, const char *what, cella_error_t *err)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  /* owner first: fchown clears set-id bits */
  /* EPERM, EINVAL: a rootless caller without subordinate ids keeps the files as its own */
  if (fchown (fd, st->st_uid, st->st_gid) < 0 && errno != EPERM && errno != EINVAL)
    return cella_error (err, errno, "copy-up: set the owner of `%s` to %u:%u", what, (unsigned) st->st_uid,
                        (unsigned) st->st_gid);
  if (fchmod (fd, st->st_mode & 07777) < 0)
    return cella_error (err, errno, "copy-up: set the mode of `%s`", what);
  futimens (fd, ts);
  return 0;
}

static int copy_dir (int src, int dst, const char *what, cella_error_t *err);

static int
copy_file (int src, int dst, const char *name, const struct stat *st, const char *what, cella_error_t *err)
{
  cleanup_close int in = openat (src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int out = -1;
  if (in < 0)
    return cella_error (err, errno, "copy-up: open `%s`", what);
  out = openat (dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return cella_error (err, errno, "copy-up: create `%s`", what);
  for (;;)
    {
      ssize_t n = copy_file_range (in, NULL, out, NULL, 1 << 20, 0);
      if (n == 0)
        break;
      if (n < 0)
        {
          char buf[65536];
          ssize_t r = read (in, buf, sizeof buf);
          if (r == 0)
            break;
          if (r < 0 || write (out, buf, r) != r)
            return cella_error (err, errno, "copy-up: copy `%s`", what);
        }
    }
  return set_attrs (out, st, what, err);
}

static int
copy_entry (int src, int dst, const char *name, const char *parent, cella_error_t *err)
{
  cleanup_free char *what = xasprintf ("%s/%s", parent, name);
  struct stat st, old;
  bool have = fstatat (dst, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (fstatat (src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "copy-up: stat `%s`", what);
  if (is_whiteout (&st))
    {
      if (have)
        remove_tree_at (dst, name);
      return 0;
    }
  if (have && !(S_ISDIR (st.st_mode) && S_ISDIR (old.st_mode)))
    {
      remove_tree_at (dst, name);
      have = false;
    }
  if (S_ISDIR (st.st_mode))
    {
      cleanup_close int s = openat (src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), d = -1;
      if (s < 0)
        return cella_error (err, errno, "copy-up: open `%s`", what);
      if (!have && mkdirat (dst, name, 0700) < 0)
        return cella_error (err, errno, "copy-up: create `%s`", what);
      d = openat (dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (d < 0)
        return cella_error (err, errno, "copy-up: open `%s`", what);
      if (have && is_opaque (s))
        clear_dir (d);
      if (copy_dir (s, d, what, err) < 0)
        return -1;
      return set_attrs (d, &st, what, err);
    }
  if (S_ISREG (st.st_mode))
    return copy_file (src, dst, name, &st, what, err);
  if (S_ISLNK (st.st_mode))
    {
      char target[4096];
      ssize_t n = readlinkat (src, name, target, sizeof target - 1);
      if (n < 0)
        return cella_error (err, errno, "copy-up: read the link `%s`", what);
      target[n] = '\0';
      if (symlinkat (target, dst, name) < 0)
        return cella_error (err, errno, "copy-up: create the link `%s`", what);
      if (fchownat (dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL)
        return cella_error (err, errno, "copy-up: set the owner of `%s`", what);
      return 0;
    }
  /* fifos, sockets, device nodes: made where the caller may (a rootless caller cannot make
   * devices); skipped otherwise, as they carry no data */
  if (mknodat (dst, name, st.st_mode, st.st_rdev) == 0
      && fchownat (dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL)
    return cella_error (err, errno, "copy-up: set the owner of `%s`", what);
  return 0;
}

static int
copy_dir (int src, int dst, const char *what, cella_error_t *err)
{
  int fd = dup (src);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return cella_error (err, errno, "copy-up: read `%s`", what);
    }
  while (r == 0 && (e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      r = copy_entry (src, dst, e->d_name, what, err);
  closedir (d);
  return r;
}

struct copy_up {
  const struct ctr_volume *used;
  size_t nused;
  char *const *made;
  const struct plan *p;
};

/* --userns=auto: the container's ids are a range of the host's; a new volume's files get the
 * host ids the container's own map to (an id outside the map: the overflow id, as the kernel
 * shows it) */
static uint32_t
map_id (const struct id_map *m, size_t n, uint32_t id)
{
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].inside && id - m[i].inside < m[i].count)
      return m[i].outside + (id - m[i].inside);
  return 65534;
}

static int
shift_owner (int dfd, const char *name, const struct plan *p, cella_error_t *err)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0)
    return cella_error (err, errno, "copy-up: stat `%s`", name);
  if (fchownat (dfd, name, map_id (p->uid_map, p->nuid_map, st.st_uid), map_id (p->gid_map, p->ngid_map, st.st_gid),
                AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
      < 0)
    return cella_error (err, errno, "copy-up: set the owner of `%s` for the container's user namespace", name);
  /* chown cleared set-id bits: put the mode back */
  if (!S_ISLNK (st.st_mode)
      && (name[0] ? fchmodat (dfd, name, st.st_mode & 07777, 0) : fchmod (dfd, st.st_mode & 07777)) < 0)
    return cella_error (err, errno, "copy-up: set the mode of `%s`", name);
  return 0;
}

static int
shift_tree (int dfd, const struct plan *p, cella_error_t *err)
{
  int fd = dup (dfd);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return cella_error (err, errno, "copy-up: read a volume directory");
    }
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (fstatat (dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
        {
          cleanup_close int sub = openat (dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          r = sub < 0 ? cella_error (err, errno, "copy-up: open `%s`", e->d_name) : shift_tree (sub, p, err);
        }
      if (r == 0)
        r = shift_owner (dfd, e->d_name, p, err);
    }
  closedir (d);
  return r;
}

static bool
is_made (const struct copy_up *c, const char *name)
{
  for (size_t i = 0; c->made && c->made[i]; i++)
    if (strcmp (c->made[i], name) == 0)
      return true;
  return false;
}

/* One layer's content at target over the volume's directory. The target path is looked up
 * inside the layer (RESOLVE_IN_ROOT): a symlink in the image cannot lead out of it. */
static int
copy_layer (const char *layer, const char *target, int data, bool *seen, cella_error_t *err)
{
  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_IN_ROOT };
  cleanup_close int root = open (layer, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1;
  struct stat st;
  if (root < 0)
    return 0;
  fd = (int) syscall (SYS_openat2, root, target, &how, sizeof how);
  if (fd < 0 || fstat (fd, &st) < 0)
    return 0; /* not in this layer */
  if (is_whiteout (&st) || !S_ISDIR (st.st_mode))
    {
      /* hidden, or not a directory: nothing of the layers below shows there */
      if (*seen)
        clear_dir (data);
      *seen = false;
      return 0;
    }
  if (*seen && is_opaque (fd))
    clear_dir (data);
  if (copy_dir (fd, data, target, err) < 0)
    return -1;
  *seen = true;
  return set_attrs (data, &st, target, err);
}

static int
copy_up_fn (void *ud, cella_error_t *err)
{
  const struct copy_up *c = ud;
  size_t nl = strv_len (c->p->root_layers);
  for (size_t i = 0; i < c->nused; i++)
    {
      cleanup_free char *vdir = NULL;
      cleanup_close int data = -1;
      struct volume v;
      bool seen = false;
      if (!is_made (c, c->used[i].name) || c->used[i].nocopy)
        continue;
      if (volume_load (c->used[i].name, &v, err) < 0)
        return -1;
      data = open (v.mountpoint, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      volume_clear (&v);
      if (data < 0)
        continue; /* a tmpfs- or bind-typed volume has no _data to fill */
      if (copy_layer (c->p->rootfs, c->used[i].target, data, &seen, err) < 0)
        return cella_error_wrap (err, "volume `%s`", c->used[i].name);
      for (size_t l = nl; l > 0; l--)
        if (copy_layer (c->p->root_layers[l - 1], c->used[i].target, data, &seen, err) < 0)
          return cella_error_wrap (err, "volume `%s`", c->used[i].name);
      if (c->p->userns_mode && c->p->nuid_map && c->p->ngid_map && geteuid () == 0
          && (shift_tree (data, c->p, err) < 0 || shift_owner (data, "", c->p, err) < 0))
        return cella_error_wrap (err, "volume `%s`", c->used[i].name);
    }
  return 0;
}

int
volume_copy_up (const struct ctr_volume *used, size_t nused, char *const *made, const struct plan *p,
                cella_error_t *err)
{
  struct copy_up c = { used, nused, made, p };
  if (made == NULL || made[0] == NULL || p->rootfs == NULL)
    return 0;
  return ns_run_mapped (copy_up_fn, &c, err);
}
