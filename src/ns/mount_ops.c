/* The mount ops: prepare (host), acquire (child, before the staging tmpfs), apply (in the root).
 * Mounts are made with the new mount API: a detached mount (open_tree / fsmount) is configured
 * first and then attached with move_mount onto a target opened with RESOLVE_IN_ROOT, so no
 * path inside the container is ever resolved outside it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "ns.h"

static int
openat2_ (int dirfd, const char *path, int flags, unsigned long long resolve)
{
  struct open_how how = { .flags = flags, .resolve = resolve };
  return (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

void
op_rt_close (struct op_rt *rt)
{
  if (rt->fd >= 0)
    close (rt->fd);
  rt->fd = -1;
  for (size_t i = 0; i < rt->nfds; i++)
    if (rt->fds[i] >= 0)
      close (rt->fds[i]);
  rt->nfds = 0;
  for (size_t i = 0; i < rt->nlfds; i++)
    if (rt->lfds[i] >= 0)
      close (rt->lfds[i]);
  free (rt->lfds);
  rt->lfds = NULL;
  rt->nlfds = 0;
}

/* Does overlayfs take "lowerdir+" (Linux 6.8+)? Asked of the release, not of fsconfig: before 6.5
 * overlayfs parses its options the legacy way, where fsconfig accepts any key and only
 * FSCONFIG_CMD_CREATE refuses it ("unrecognized mount option"), too late to fall back. */
static bool
overlay_has_lowerdir_plus (void)
{
  static int known = -1;
  struct utsname u;
  unsigned major = 0, minor = 0;
  if (known < 0)
    known = uname (&u) == 0 && sscanf (u.release, "%u.%u", &major, &minor) == 2
            && (major > 6 || (major == 6 && minor >= 8));
  return known == 1;
}

int
overlay_set_lowers (int fs, char *const *lowers, size_t n, cella_error_t *err)
{
  cleanup_free char *joined = NULL;
  size_t len = 0;
  /* Linux 6.8+: one layer per "lowerdir+", so no limit on the option's length */
  for (size_t i = 0; overlay_has_lowerdir_plus () && i < n; i++)
    if (fsconfig (fs, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0)
      {
        if (i > 0 || errno != EINVAL)
          return cella_error (err, errno, "overlay layer `%s`", lowers[i]);
        break;
      }
    else if (i + 1 == n)
      return 0;
  for (size_t i = 0; i < n; i++)
    len += strlen (lowers[i]) + 1;
  joined = xzalloc (len + 1);
  for (size_t i = 0; i < n; i++)
    {
      if (i)
        strcat (joined, ":");
      strcat (joined, lowers[i]);
    }
  if (fsconfig (fs, FSCONFIG_SET_STRING, "lowerdir", joined, 0) < 0)
    return cella_error (err, errno,
                        "overlay with %zu layers (this kernel takes them in one option of at most 256 bytes; "
                        "Linux 6.8 lifts that)",
                        n);
  return 0;
}

static int root_open_depth (int rootfd, const char *path, bool create, bool dir, int depth, cella_error_t *err);

/* `name` in parent (at parent_path) is a symlink that leads nowhere yet: create what it points
 * to, resolved inside the root as the kernel will resolve it (runc does the same). */
static int
create_link_target (int rootfd, int parent, const char *parent_path, const char *name, bool dir, int depth,
                    cella_error_t *err)
{
  char link[PATH_MAX];
  cleanup_free char *target = NULL;
  ssize_t n = readlinkat (parent, name, link, sizeof link - 1);
  if (n < 0)
    return cella_error (err, errno, "read the symlink `%s/%s` in the container", parent_path, name);
  link[n] = '\0';
  target = link[0] == '/' ? xstrdup (link) : xasprintf ("%s/%s", parent_path, link);
  return root_open_depth (rootfd, target, true, dir, depth + 1, err);
}

int
root_open (int rootfd, const char *path, bool create, bool dir, cella_error_t *err)
{
  return root_open_depth (rootfd, path, create, dir, 0, err);
}

static int
root_open_depth (int rootfd, const char *path_in, bool create, bool dir, int depth, cella_error_t *err)
{
  cleanup_free char *buf = path_clean (path_in);
  const char *path = path_in;
  cleanup_close int parent = -1;
  struct stat st;
  char *slash, *name;
  int fd;

  if (depth > 40)
    return cella_error (err, ELOOP, "open `%s` in the container", path);
  fd = openat2_ (rootfd, path, O_PATH | O_CLOEXEC, IN_ROOT);
  if (fd >= 0 || errno != ENOENT || !create)
    return fd >= 0 ? fd : cella_error (err, errno, "open `%s` in the container", path);

  /* Create the missing parent first (recursively), then the entry itself. */
  slash = strrchr (buf, '/');
  name = slash + 1;
  if (slash == buf)
    parent = openat2_ (rootfd, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
  else
    {
      *slash = '\0';
      parent = root_open_depth (rootfd, buf, true, true, depth, err);
      if (parent < 0)
        return -1;
    }
  if (parent < 0)
    return cella_error (err, errno, "open the parent of `%s` in the container", path);
  if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
    {
      *slash = '\0';
      return create_link_target (rootfd, parent, buf, name, dir, depth, err);
    }
  if (dir)
    {
      if (mkdirat (parent, name, 0755) < 0 && errno != EEXIST)
        return cella_error (err, errno, "create directory `%s` in the container", path);
    }
  else
    {
      int f = openat (parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (f < 0 && errno != EEXIST)
        return cella_error (err, errno, "create file `%s` in the container", path);
      if (f >= 0)
        close (f);
    }
  fd = openat2_ (rootfd, path, O_PATH | O_CLOEXEC, IN_ROOT);
  if (fd < 0)
    return cella_error (err, errno, "open `%s` in the container", path);
  return fd;
}

/* A mount target for a kernel filesystem (proc, sysfs, dev...) must be a real directory of the
 * root: a symlink there is how a hostile image points a mount at the host (CVE-2019-19921). */
int
mount_open_fs_target (int rootfd, const char *path, cella_error_t *err)
{
  struct stat st;
  cleanup_close int fd = openat2_ (rootfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, IN_ROOT);
  if (fd < 0 && errno == ENOENT)
    return root_open (rootfd, path, true, true, err);
  if (fd < 0)
    return cella_error (err, errno, "open `%s` in the container", path);
  if (fstat (fd, &st) < 0)
    return cella_error (err, errno, "stat `%s` in the container", path);
  if (S_ISLNK (st.st_mode))
    {
      char link[256] = "";
      ssize_t n = readlinkat (fd, "", link, sizeof link - 1);
      if (n > 0)
        link[n] = '\0';
      return cella_error (err, 0,
                          "`%s` in the root filesystem is a symlink (to `%s`): refusing to mount over it; "
                          "make it a directory in the image",
                          path, link);
    }
  if (!S_ISDIR (st.st_mode))
    return cella_error (err, 0, "`%s` in the root filesystem is not a directory", path);
  return steal_fd (&fd);
}

int
mount_attach (int mntfd, int targetfd, const char *what, const char *target, cella_error_t *err)
{
  if (move_mount (mntfd, "", targetfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return cella_error (err, errno, "mount %s on `%s`", what, target);
  return 0;
}

int
mount_set_attr (int mntfd, unsigned long long set, bool recursive, const char *what, cella_error_t *err)
{
  /* an atime mode replaces the mount's (the kernel wants the whole atime field cleared then) */
  struct mount_attr attr
      = { .attr_set = set, .attr_clr = (set & (MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME)) ? MOUNT_ATTR__ATIME : 0 };
  if (set == 0)
    return 0;
  if (mount_setattr (mntfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return cella_error (err, errno, "set mount flags on %s", what);
  return 0;
}

/* fsopen + options + fsmount: a detached filesystem mount the caller owns. `source` is what
 * mountinfo shows as its source (mount(2)'s first argument): fsopen gives none ("none") unless
 * told, and runtime-tools' runtimetest, like a user, looks mounts up by it. */
int
mount_new_fs_src (const char *type, const char *source, const char *const *opts, unsigned long long attrs,
                  cella_error_t *err)
{
  cleanup_close int fs = fsopen (type, FSOPEN_CLOEXEC);
  int m;
  if (fs < 0)
    return cella_error (err, errno, "create a %s filesystem", type);
  if (fsconfig (fs, FSCONFIG_SET_STRING, "source", source, 0) < 0)
    return cella_error (err, errno, "%s source `%s`", type, source);
  for (size_t i = 0; opts && opts[i]; i += 2)
    {
      int r = opts[i + 1] ? fsconfig (fs, FSCONFIG_SET_STRING, opts[i], opts[i + 1], 0)
                          : fsconfig (fs, FSCONFIG_SET_FLAG, opts[i], NULL, 0);
      if (r < 0)
        return cella_error (err, errno, "%s option `%s%s%s`", type, opts[i], opts[i + 1] ? "=" : "",
                            opts[i + 1] ? opts[i + 1] : "");
    }
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "create the %s filesystem", type);
  m = fsmount (fs, FSMOUNT_CLOEXEC, attrs);
  if (m < 0)
    return cella_error (err, errno, "mount the %s filesystem", type);
  return m;
}

/* ... with the type as its source, as docker's are (proc, sysfs, tmpfs, devpts, mqueue, cgroup) */
int
mount_new_fs (const char *type, const char *const *opts, unsigned long long attrs, cella_error_t *err)
{
  return mount_new_fs_src (type, type, opts, attrs, err);
}

/* MOUNTF_* (binds and filesystems): noatime, strictatime (else relatime), nodiratime */
static unsigned long long
atime_attrs (unsigned flags)
{
  return ((flags & MOUNTF_NOATIME) ? MOUNT_ATTR_NOATIME : 0)
         | ((flags & MOUNTF_STRICTATIME) ? MOUNT_ATTR_STRICTATIME : 0)
         | ((flags & MOUNTF_NODIRATIME) ? MOUNT_ATTR_NODIRATIME : 0);
}

static unsigned long long
remount_attrs (unsigned flags)
{
  return ((flags & REMOUNT_RDONLY) ? MOUNT_ATTR_RDONLY : 0) | ((flags & REMOUNT_NOSUID) ? MOUNT_ATTR_NOSUID : 0)
         | ((flags & REMOUNT_NODEV) ? MOUNT_ATTR_NODEV : 0) | ((flags & REMOUNT_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0)
         | atime_attrs (flags);
}

/* ---- prepare: host side ---- */

static int
prepare_host_path (const char *what, const char *path, bool optional, char **resolved, struct stat *st,
                   cella_error_t *err)
{
  char *r = realpath (path, NULL);
  if (r == NULL)
    {
      if (errno == ENOENT && optional)
        return 1;
      return cella_error (err, errno, "%s `%s`", what, path);
    }
  if (stat (r, st) < 0)
    {
      int e = errno;
      free (r);
      return cella_error (err, e, "%s `%s`", what, path);
    }
  *resolved = r;
  return 0;
}

static int bind_tree (const struct op *op, cella_error_t *err);

/* Root of the host, making a container with a user namespace: its root may not reach what the
 * host's root binds in (a source, or the bundle's root, under a directory only root may enter),
 * so those mounts are made here, before clone, and the child only attaches them. */
static bool
bind_on_host (const struct plan *p)
{
  return ((p->ns & PLAN_NS_USER) || p->ns_path[6]) && geteuid () == 0 && in_initial_userns ();
}

int
mount_root_prepare (struct plan *p, cella_error_t *err)
{
  mount_root_release (p);
  if (p->root_overlay || !bind_on_host (p))
    return 0;
  p->root_tree_fd = open_tree (AT_FDCWD, p->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (p->root_tree_fd < 0)
    return cella_error (err, errno, "root `%s`: clone mount", p->rootfs);
  p->root_tree_ready = true;
  return 0;
}

void
mount_root_release (struct plan *p)
{
  if (p->root_tree_ready)
    close (p->root_tree_fd);
  p->root_tree_ready = false;
}

int
mount_op_prepare (struct op *op, const struct plan *p, cella_error_t *err)
{
  struct stat st;
  int r;
  switch (op->kind)
    {
    case OP_BIND:
      mount_op_release (op);
      r = prepare_host_path ("bind source", op->source, op->flags & BIND_OPTIONAL, &op->resolved, &st, err);
      if (r < 0)
        return r;
      if (r > 0)
        {
          op->skip = true;
          return 0;
        }
      op->src_dev = st.st_dev;
      op->src_ino = st.st_ino;
      op->src_is_dir = S_ISDIR (st.st_mode);
      if (op->nidmap_uid && idmap_prepare (op, err) < 0)
        return -1;
      if (bind_on_host (p))
        {
          op->host_tree_fd = bind_tree (op, err);
          if (op->host_tree_fd < 0)
            return -1;
          op->host_tree_ready = true;
        }
      return 0;
    case OP_OVERLAY:
      for (size_t i = 0; op->lower[i]; i++)
        {
          cleanup_free char *res = NULL;
          if (prepare_host_path ("overlay lower", op->lower[i], false, &res, &st, err) < 0)
            return -1;
          if (!S_ISDIR (st.st_mode))
            return cella_error (err, ENOTDIR, "overlay lower `%s`", op->lower[i]);
        }
      if (op->ov_mode == OVERLAY_PERSISTENT)
        {
          cleanup_free char *a = NULL, *b = NULL;
          if (prepare_host_path ("overlay upper", op->upper, false, &a, &st, err) < 0
              || prepare_host_path ("overlay work", op->work, false, &b, &st, err) < 0)
            return -1;
        }
      return 0;
    default:
      return 0;
    }
}

/* ---- acquire: child, new mount namespace, host paths still visible ---- */

static int
acquire_tree (const char *path, bool recursive, cella_error_t *err)
{
  int fd = open_tree (AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (fd < 0)
    return cella_error (err, errno, "clone mount of `%s`", path);
  return fd;
}

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

/* A bind's detached mount: its source cloned, checked to be what prepare saw, flags set. */
static int
bind_tree (const struct op *op, cella_error_t *err)
{
  unsigned long long attrs = atime_attrs (op->flags);
  struct stat st;
  cleanup_close int fd = acquire_tree (op->resolved, op->flags & BIND_RECURSIVE, err);
  if (fd < 0)
    return cella_error_wrap (err, "bind source `%s`", op->source);
  /* the object mounted must be the one checked on the host, not a swapped-in one */
  if (fstat (fd, &st) < 0 || st.st_dev != op->src_dev || st.st_ino != op->src_ino)
    return cella_error (err, 0, "bind source `%s`: changed while the container was being set up", op->source);
  if (!(op->flags & BIND_WRITABLE))
    attrs |= MOUNT_ATTR_RDONLY;
  if (!(op->flags & BIND_DEVICE))
    attrs |= MOUNT_ATTR_NODEV;
  if (op->flags & BIND_NOSUID)
    attrs |= MOUNT_ATTR_NOSUID;
  if (op->flags & BIND_NOEXEC)
    attrs |= MOUNT_ATTR_NOEXEC;
  if (idmap_apply (op, fd, err) < 0)
    return -1;
  if (mount_set_attr (fd, attrs, op->flags & BIND_RECURSIVE, op->source, err) < 0)
    {
      /* in a user namespace the source's atime mode is locked (it came from a more privileged
       * mount namespace): it stays as it is, as with runc */
      if ((*err)->errno_ != EPERM || !atime_attrs (op->flags))
        return -1;
      cella_error_free (err);
      if (mount_set_attr (fd, attrs & ~atime_attrs (op->flags), op->flags & BIND_RECURSIVE, op->source, err) < 0)
        return -1;
    }
  return steal_fd (&fd);
}

void
mount_op_release (struct op *op)
{
  if (op->host_tree_ready)
    close (op->host_tree_fd);
  op->host_tree_ready = false;
}

static int
open_host_dir (const char *path, const char *target, cella_error_t *err)
{
  int fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "overlay on `%s`: directory `%s`", target, path);
  return fd;
}

/* An OCI overlay mount's host directories, opened while the host's tree is in view (the staging
 * tmpfs may hide them later); the mount gets them as /proc/self/fd paths, which also keeps many
 * layers within fsconfig's 256-byte limit on one value. */
static int
acquire_overlay_dirs (const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  for (size_t i = 0; op->fsopts && op->fsopts[i]; i++)
    {
      const char *o = op->fsopts[i];
      if (strncmp (o, "lowerdir=", 9) == 0)
        {
          cleanup_free char *dirs = xstrdup (o + 9);
          char *save = NULL;
          for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
            {
              int fd = open_host_dir (d, op->target, err);
              if (fd < 0)
                return -1;
              rt->lfds = xrealloc (rt->lfds, (rt->nlfds + 1) * sizeof *rt->lfds);
              rt->lfds[rt->nlfds++] = fd;
            }
        }
      else if (strncmp (o, "upperdir=", 9) == 0 && (rt->fds[6] = open_host_dir (o + 9, op->target, err)) < 0)
        return -1;
      else if (strncmp (o, "workdir=", 8) == 0 && (rt->fds[7] = open_host_dir (o + 8, op->target, err)) < 0)
        return -1;
    }
  return 0;
}

int
mount_op_acquire (const struct op *op, struct op_rt *rt, const struct plan *p, cella_error_t *err)
{
  rt->fd = -1;
  rt->nfds = 0;
  rt->fds[6] = rt->fds[7] = -1;
  switch (op->kind)
    {
    case OP_BIND:
      if (op->skip)
        return 0;
      if (op->host_tree_ready)
        {
          rt->fd = fcntl (op->host_tree_fd, F_DUPFD_CLOEXEC, 3);
          return rt->fd < 0 ? cella_error (err, errno, "bind source `%s`", op->source) : 0;
        }
      rt->fd = bind_tree (op, err);
      return rt->fd < 0 ? -1 : 0;
    case OP_DEV:
      /* nothing to take early: the host's /dev is still reachable when the op is applied */
      return 0;
    case OP_SYSFS:
      /* A fresh sysfs needs a network namespace we own; without one (host network in a user
       * namespace) the host's /sys is bound read-only instead, like podman does. */
      if (p->rootless && !(p->ns & PLAN_NS_NET))
        {
          rt->fd = acquire_tree ("/sys", true, err);
          if (rt->fd < 0)
            return -1;
          return mount_set_attr (rt->fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                                 true, "/sys", err);
        }
      return 0;
    case OP_MOUNT:
      return strcmp (op->fstype, "overlay") == 0 ? acquire_overlay_dirs (op, rt, err) : 0;
    case OP_OVERLAY:
      for (size_t i = 0; op->lower[i]; i++)
        {
          if (rt->nfds >= 6)
            return cella_error (err, 0, "overlay on `%s`: at most 6 lower layers", op->target);
          rt->fds[rt->nfds] = open (op->lower[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (rt->fds[rt->nfds] < 0)
            return cella_error (err, errno, "overlay lower `%s`", op->lower[i]);
          rt->nfds++;
        }
      if (op->ov_mode == OVERLAY_PERSISTENT)
        {
          rt->fds[6] = open (op->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
          rt->fds[7] = open (op->work, O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (rt->fds[6] < 0 || rt->fds[7] < 0)
            return cella_error (err, errno, "overlay upper `%s` or work `%s`", op->upper, op->work);
        }
      return 0;
    default:
      return 0;
    }
}

/* ---- apply: child, relative to the new root ---- */

/* Linux 6.8+ lists a mount namespace's mounts (mountinfo) in the order they were made, not
 * attached: a bind taken early (acquire) is copied again here, flags and idmap included, so
 * that it shows in the plan's order, as the OCI spec's "mounts in order" asks. A kernel that
 * cannot copy a detached mount lists them in attach order anyway: the early copy then serves. */
static int
bind_in_order (const struct op *op, const struct op_rt *rt)
{
  int fresh = open_tree (rt->fd, "",
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH
                             | ((op->flags & BIND_RECURSIVE) ? AT_RECURSIVE : 0));
  return fresh >= 0 ? fresh : rt->fd;
}

static int
apply_bind (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  cleanup_close int target = -1;
  int m, r;
  if (op->skip)
    return 0;
  target = root_open (c->rootfd, op->target, true, op->src_is_dir, err);
  if (target < 0)
    return -1;
  m = bind_in_order (op, rt);
  r = mount_attach (m, target, op->source, op->target, err);
  if (m != rt->fd)
    close (m);
  if (r < 0)
    return -1;
  return mount_set_propagation (c->rootfd, op->target, op->propagation, err);
}

static int
apply_proc (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  cleanup_close int target = mount_open_fs_target (c->rootfd, op->target, err);
  cleanup_close int m = -1;
  if (target < 0)
    return -1;
  m = mount_new_fs_src ("proc", op->source ? op->source : "proc", NULL,
                        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
  if (m < 0)
    return -1;
  return mount_attach (m, target, "proc", op->target, err);
}

static const unsigned long long sysfs_attrs
    = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

/* The host's /sys, read-only: reachable here because the old root is still attached. */
static int
bind_host_sys (int target, const char *where, cella_error_t *err)
{
  cleanup_close int tree = acquire_tree ("/sys", true, err);
  if (tree < 0 || mount_set_attr (tree, sysfs_attrs, true, "/sys", err) < 0)
    return -1;
  return mount_attach (tree, target, "sysfs (host, read-only)", where, err);
}

/* A fresh sysfs needs a network namespace owned by our user namespace. Without one (host
 * network in our rootless user namespace, or cella itself inside `unshare -r`) the host's
 * /sys is bound read-only instead, like podman does. */
static int
apply_sysfs (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  cleanup_close int target = mount_open_fs_target (c->rootfd, op->target, err);
  cleanup_close int m = -1;
  if (target < 0)
    return -1;
  if (c->plan->rootless && !(c->plan->ns & PLAN_NS_NET))
    return bind_host_sys (target, op->target, err);
  m = mount_new_fs_src ("sysfs", op->source ? op->source : "sysfs", NULL,
                        op->dev_writable ? sysfs_attrs & ~MOUNT_ATTR_RDONLY : sysfs_attrs, err);
  if (m < 0 && (*err)->errno_ == EPERM)
    {
      cella_error_free (err);
      return bind_host_sys (target, op->target, err);
    }
  if (m < 0)
    return -1;
  return mount_attach (m, target, "sysfs", op->target, err);
}

/* A filesystem on the directory `name` of /dev (made here); source: as docker shows it */
static int
mount_sub_fs (int parentfd, const char *name, const char *type, const char *source, const char *const *opts,
              unsigned long long attrs, const char *where, cella_error_t *err)
{
  cleanup_close int dir = -1, m = -1;
  if (mkdirat (parentfd, name, 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir `%s`", where);
  dir = openat (parentfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0)
    return cella_error (err, errno, "open `%s`", where);
  m = mount_new_fs_src (type, source, opts, attrs, err);
  if (m < 0)
    return -1;
  return mount_attach (m, dir, type, where, err);
}

/* A device node in the container's /dev (dirfd): mknod where we may (real root), else a bind
 * of the host's node (user namespaces may not create devices). Before pivot_root the host's
 * /dev is still reachable. */
static int
make_dev_node (int dirfd, const char *name, bool host_mode, cella_error_t *err)
{
  cleanup_free char *host = xasprintf ("/dev/%s", name);
  cleanup_close int tree = -1, node = -1;
  struct stat st;
  mode_t perm;
  int f;
  if (stat (host, &st) < 0)
    return cella_error (err, errno, "`%s` on the host", host);
  perm = host_mode ? st.st_mode & 07777 : 0666;
  if (mknodat (dirfd, name, (st.st_mode & S_IFMT) | perm, st.st_rdev) == 0)
    {
      /* mknod applied the umask; the workload's umask must stay untouched */
      if (fchmodat (dirfd, name, perm, 0) < 0)
        return cella_error (err, errno, "chmod `/dev/%s`", name);
      if (host_mode && fchownat (dirfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return cella_error (err, errno, "chown `/dev/%s`", name);
      return 0;
    }
  if (errno != EPERM)
    return cella_error (err, errno, "create `/dev/%s`", name);
  tree = open_tree (AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return cella_error (err, errno, "clone mount of `%s`", host);
  f = openat (dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
  if (f < 0)
    return cella_error (err, errno, "create `/dev/%s`", name);
  close (f);
  node = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (node < 0)
    return cella_error (err, errno, "open `/dev/%s`", name);
  return mount_attach (tree, node, name, host, err);
}

/* --privileged: a node for each device of the host's /dev (reachable before pivot_root), made like the
 * minimal ones; what /dev holds already stays. Not the host's console, nor the mounts of its own that every
 * /dev has (pts, shm, mqueue) or links; at most `depth` directories down (/dev/net/tun, /dev/dri/card0 ...). */
static int
add_host_devices (int devfd, const char *rel, int depth, cella_error_t *err)
{
  static const char *const skip[] = { "pts", "shm", "mqueue", "fd", "console", "core" };
  cleanup_free char *host = xasprintf ("/dev%s%s", *rel ? "/" : "", rel);
  DIR *d = opendir (host);
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    return cella_error (err, errno, "read the host's `%s`", host);
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      cleanup_free char *name = xasprintf ("%s%s%s", rel, *rel ? "/" : "", e->d_name);
      struct stat st;
      if (e->d_name[0] == '.' || (!*rel && str_index (skip, sizeof skip / sizeof skip[0], e->d_name) >= 0)
          || fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (S_ISDIR (st.st_mode) && depth > 0)
        {
          if (mkdirat (devfd, name, 0755) < 0 && errno != EEXIST)
            r = cella_error (err, errno, "mkdir `/dev/%s`", name);
          else
            r = add_host_devices (devfd, name, depth - 1, err);
        }
      else if ((S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode)) && faccessat (devfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        r = make_dev_node (devfd, name, true, err);
    }
  closedir (d);
  return r;
}

static int
apply_dev (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  static const char *const tmpfs_opts[] = { "mode", "755", "size", "65536k", NULL };
  static const char *const shm_opts[] = { "mode", "1777", "size", "65536k", NULL };
  static const struct {
    const char *name, *to;
  } links[] = {
    { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
    { "stderr", "/proc/self/fd/2" }, { "ptmx", "pts/ptmx" },         { "core", "/proc/kcore" },
  };
  cleanup_close int target = mount_open_fs_target (c->rootfd, op->target, err);
  cleanup_close int m = -1;
  bool gid5 = true;
  if (target < 0)
    return -1;
  m = mount_new_fs_src ("tmpfs", op->source ? op->source : "tmpfs", tmpfs_opts,
                        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | atime_attrs (op->flags), err);
  if (m < 0 || mount_attach (m, target, "tmpfs", op->target, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++)
    if (make_dev_node (m, dev_nodes[i], false, err) < 0)
      return -1;
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat (links[i].to, m, links[i].name) < 0)
      return cella_error (err, errno, "symlink `/dev/%s`", links[i].name);
  if (op->dev_host && add_host_devices (m, "", 3, err) < 0)
    return -1;
  if (ns_make_devices (c->plan, m, err) < 0)
    return -1;
  /* what a later op mounts (an OCI config's /dev/pts, /dev/mqueue: one mount each, in the
   * config's order) only gets its directory here */
  if ((op->dev_later & PLAN_DEV_PTS) && mkdirat (m, "pts", 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir `/dev/pts`");
  if ((op->dev_later & PLAN_DEV_MQUEUE) && mkdirat (m, "mqueue", 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir `/dev/mqueue`");

  /* gid=5 (tty) exists only where the user namespace maps it: not in our own rootless one with a
   * single id, nor when cella itself runs in someone else's (`unshare -r`); then devpts keeps
   * the caller's group. */
  if (c->plan->rootless)
    {
      gid5 = false;
      for (size_t i = 0; i < c->plan->ngid_map; i++)
        if (c->plan->gid_map[i].inside <= 5 && 5 - c->plan->gid_map[i].inside < c->plan->gid_map[i].count)
          gid5 = true;
    }
  if (!(op->dev_later & PLAN_DEV_PTS))
    {
      const char *pts_opts[]
          = { "newinstance", NULL, "ptmxmode", "0666", "mode", "0620", gid5 ? "gid" : NULL, "5", NULL };
      int r = mount_sub_fs (m, "pts", "devpts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev/pts",
                            err);
      if (r < 0 && gid5 && (*err)->errno_ == EINVAL)
        {
          cella_error_free (err);
          pts_opts[6] = NULL;
          r = mount_sub_fs (m, "pts", "devpts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev/pts",
                            err);
        }
      if (r < 0)
        return -1;
    }
  if (!op->dev_no_shm
      && mount_sub_fs (m, "shm", "tmpfs", "shm", shm_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                       "/dev/shm", err)
             < 0)
    return -1;
  if (op->mqueue && !(op->dev_later & PLAN_DEV_MQUEUE)
      && mount_sub_fs (m, "mqueue", "mqueue", "mqueue", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                       "/dev/mqueue", err)
             < 0)
    return -1;
  /* only the tmpfs itself: pts, shm and mqueue stay writable */
  if (op->dev_writable)
    return 0;
  return mount_set_attr (m, MOUNT_ATTR_RDONLY, false, "/dev", err);
}

/* OCI data options ("key=value" or a bare flag) as mount_new_fs's name/value pairs, after `fixed`;
 * *keep owns the strings. */
static const char **
fs_options (const char *const *fixed, char *const *extra, char ***keep)
{
  size_t n = 0, k;
  const char **opts;
  while (fixed && fixed[n])
    n += 2;
  opts = xzalloc ((n + 2 * strv_len (extra) + 1) * sizeof *opts);
  for (k = 0; k < n; k++)
    /* cppcheck-suppress nullPointer ; n is 0 when fixed is NULL */
    opts[k] = fixed[k];
  *keep = strv_dup (extra);
  for (size_t i = 0; *keep && (*keep)[i]; i++)
    {
      char *eq = strchr ((*keep)[i], '=');
      if (eq)
        *eq = '\0';
      opts[k++] = (*keep)[i];
      opts[k++] = eq ? eq + 1 : NULL;
    }
  opts[k] = NULL;
  return opts;
}

static int
apply_tmpfs (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  char size[32], mode[16];
  const char *fixed[] = { "mode", mode, op->size ? "size" : NULL, size, NULL };
  cleanup_strv char **keep = NULL;
  cleanup_free const char **opts = NULL;
  cleanup_close int target = root_open (c->rootfd, op->target, true, true, err);
  cleanup_close int m = -1;
  if (target < 0)
    return -1;
  snprintf (size, sizeof size, "%lld", op->size);
  snprintf (mode, sizeof mode, "%o", op->mode ? op->mode : 01777);
  opts = op->fsopts ? fs_options (fixed, op->fsopts, &keep) : NULL;
  m = mount_new_fs_src ("tmpfs", op->source ? op->source : "tmpfs", opts ? opts : fixed, remount_attrs (op->flags),
                        err);
  if (m < 0)
    return cella_error_wrap (err, "tmpfs on `%s`", op->target);
  if (op->tmpcopyup && mount_tmpcopyup (c->rootfd, op->target, m, err) < 0)
    return -1;
  if (mount_attach (m, target, "tmpfs", op->target, err) < 0)
    return -1;
  return mount_set_propagation (c->rootfd, op->target, op->propagation, err);
}

/* An OCI overlay mount: its directories are the fds acquire_overlay_dirs opened; its other data
 * options as given. */
static int
apply_overlay_mount (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  cleanup_close int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  cleanup_close int target = root_open (c->rootfd, op->target, true, true, err);
  cleanup_close int m = -1;
  cleanup_strv char **lowers = NULL;
  if (target < 0)
    return -1;
  if (fs < 0)
    return cella_error (err, errno, "overlay on `%s`: create an overlay filesystem", op->target);
  if (fsconfig (fs, FSCONFIG_SET_STRING, "source", op->source ? op->source : "overlay", 0) < 0)
    return cella_error (err, errno, "overlay on `%s`: source", op->target);
  for (size_t i = 0; i < rt->nlfds; i++)
    {
      cleanup_free char *l = xasprintf ("/proc/self/fd/%d", rt->lfds[i]);
      strv_push (&lowers, l);
    }
  if (overlay_set_lowers (fs, lowers, rt->nlfds, err) < 0)
    return cella_error_wrap (err, "overlay on `%s`", op->target);
  for (size_t i = 0; op->fsopts && op->fsopts[i]; i++)
    {
      const char *o = op->fsopts[i], *eq = strchr (o, '=');
      cleanup_free char *key = eq ? strndup (o, (size_t) (eq - o)) : xstrdup (o);
      cleanup_free char *val = NULL;
      int r;
      if (strcmp (key, "lowerdir") == 0)
        continue;
      if (strcmp (key, "upperdir") == 0 || strcmp (key, "workdir") == 0)
        val = xasprintf ("/proc/self/fd/%d", rt->fds[key[0] == 'u' ? 6 : 7]);
      else if (eq)
        val = xstrdup (eq + 1);
      r = val ? fsconfig (fs, FSCONFIG_SET_STRING, key, val, 0) : fsconfig (fs, FSCONFIG_SET_FLAG, key, NULL, 0);
      if (r < 0)
        return cella_error (err, errno, "overlay on `%s`: option `%s`", op->target, o);
    }
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "overlay on `%s`: create the filesystem", op->target);
  m = fsmount (fs, FSMOUNT_CLOEXEC, remount_attrs (op->flags));
  if (m < 0)
    return cella_error (err, errno, "overlay on `%s`: mount", op->target);
  if (mount_attach (m, target, "overlay", op->target, err) < 0)
    return -1;
  return mount_set_propagation (c->rootfd, op->target, op->propagation, err);
}

/* OCI mounts of other kernel filesystems (devpts, mqueue): type, data options, flags. */
static int
apply_mount (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  cleanup_strv char **keep = NULL;
  cleanup_free const char **opts = fs_options (NULL, op->fsopts, &keep);
  cleanup_close int target = mount_open_fs_target (c->rootfd, op->target, err);
  cleanup_close int m = -1;
  if (target < 0)
    return -1;
  m = mount_new_fs_src (op->fstype, op->source ? op->source : op->fstype, opts, remount_attrs (op->flags), err);
  if (m < 0 && strcmp (op->fstype, "devpts") == 0 && (*err)->errno_ == EINVAL)
    {
      /* A config's devpts gid=5 (tty) names a group the user namespace may not map (a rootless
       * bundle run by root of a one-id namespace, `unshare -r`): like crun, mount it without the
       * gid then, so the pts keep the caller's group. */
      size_t k = 0;
      for (size_t i = 0; opts[i]; i += 2)
        if (strcmp (opts[i], "gid") != 0)
          {
            opts[k++] = opts[i];
            opts[k++] = opts[i + 1];
          }
      opts[k] = NULL;
      cella_error_free (err);
      m = mount_new_fs_src (op->fstype, op->source ? op->source : op->fstype, opts, remount_attrs (op->flags), err);
    }
  if (m < 0)
    return cella_error_wrap (err, "%s on `%s`", op->fstype, op->target);
  if (mount_attach (m, target, op->fstype, op->target, err) < 0)
    return -1;
  return mount_set_propagation (c->rootfd, op->target, op->propagation, err);
}

int
overlay_mount (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  cleanup_free char *upper = NULL, *work = NULL;
  cleanup_strv char **lowers = NULL;
  cleanup_close int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  const int *lfds = rt->lfds ? rt->lfds : rt->fds;
  size_t nl = rt->lfds ? rt->nlfds : rt->nfds;
  int m;
  if (fs < 0)
    return cella_error (err, errno, "create an overlay filesystem");
  if (fsconfig (fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0)
    return cella_error (err, errno, "overlay source");
  for (size_t i = 0; i < nl; i++)
    {
      cleanup_free char *l = xasprintf ("/proc/self/fd/%d", lfds[i]);
      strv_push (&lowers, l);
    }
  if (overlay_set_lowers (fs, lowers, nl, err) < 0)
    return -1;
  if (op->ov_mode == OVERLAY_PERSISTENT)
    {
      upper = xasprintf ("/proc/self/fd/%d", rt->fds[6]);
      work = xasprintf ("/proc/self/fd/%d", rt->fds[7]);
    }
  else if (op->ov_mode == OVERLAY_EPHEMERAL)
    {
      unsigned k = c->seq++;
      cleanup_free char *u = xasprintf ("ov%u.upper", k), *w = xasprintf ("ov%u.work", k);
      if (mkdirat (c->stagingfd, u, 0755) < 0 || mkdirat (c->stagingfd, w, 0700) < 0)
        return cella_error (err, errno, "overlay on `%s`: create upper and work dirs", op->target);
      upper = xasprintf ("%s/%s", c->staging, u);
      work = xasprintf ("%s/%s", c->staging, w);
    }
  if (upper
      && (fsconfig (fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0
          || fsconfig (fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
    return cella_error (err, errno, "overlay option upperdir=%s,workdir=%s", upper, work);
  if ((c->plan->rootless || !in_initial_userns ()) && fsconfig (fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
    return cella_error (err, errno, "overlay option userxattr");
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "create the overlay filesystem");
  /* nodev: a node in an image layer or made with mknod in the upper dir is never a way to a device */
  m = fsmount (fs, FSMOUNT_CLOEXEC,
               (op->ov_mode == OVERLAY_READONLY ? MOUNT_ATTR_RDONLY : 0)
                   | (c->plan->privileged ? 0 : MOUNT_ATTR_NODEV));
  if (m < 0)
    return cella_error (err, errno, "mount the overlay filesystem");
  return m;
}

static int
apply_overlay (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  cleanup_close int target = root_open (c->rootfd, op->target, true, true, err);
  cleanup_close int m = -1;
  if (target < 0)
    return -1;
  m = overlay_mount (c, op, rt, err);
  if (m < 0)
    return cella_error_wrap (err, "overlay on `%s`", op->target);
  return mount_attach (m, target, "overlay", op->target, err);
}

static int
apply_symlink (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  cleanup_free char *dir = xstrdup (op->target);
  char *slash = strrchr (dir, '/');
  cleanup_close int parent = -1;
  char buf[4096];
  ssize_t n;
  *slash = '\0';
  parent = root_open (c->rootfd, *dir ? dir : "/", true, true, err);
  if (parent < 0)
    return -1;
  if (symlinkat (op->source, parent, slash + 1) == 0)
    return 0;
  if (errno == EEXIST && (n = readlinkat (parent, slash + 1, buf, sizeof buf - 1)) >= 0)
    {
      buf[n] = '\0';
      if (strcmp (buf, op->source) == 0)
        return 0;
    }
  return cella_error (err, errno, "symlink `%s` -> `%s`", op->target, op->source);
}

static int
apply_file (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  cleanup_free char *name = xasprintf ("file%u", c->seq++);
  cleanup_free char *path = xasprintf ("%s/%s", c->staging, name);
  cleanup_close int f = openat (c->stagingfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, op->mode);
  cleanup_close int tree = -1, target = -1;
  if (f < 0 || write_all (f, op->data, op->data_len) < 0)
    return cella_error (err, errno, "file `%s`: write its contents", op->target);
  fchmod (f, op->mode);
  tree = open_tree (AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return cella_error (err, errno, "file `%s`: clone mount", op->target);
  if (mount_set_attr (tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, false,
                      op->target, err)
      < 0)
    return -1;
  target = root_open (c->rootfd, op->target, true, false, err);
  if (target < 0)
    return -1;
  return mount_attach (tree, target, "file", op->target, err);
}

/* Bind a path onto itself with new flags (readonly op, or remount of something not a mount). */
static int
rebind_with (struct mount_ctx *c, const char *path, unsigned long long attrs, bool optional, cella_error_t *err)
{
  cleanup_close int target = -1, tree = -1;
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = IN_ROOT };
  target = (int) syscall (SYS_openat2, c->rootfd, path, &how, sizeof how);
  if (target < 0)
    return (optional && errno == ENOENT) ? 0 : cella_error (err, errno, "open `%s` in the container", path);
  tree = open_tree (target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0)
    return cella_error (err, errno, "clone mount of `%s`", path);
  if (mount_set_attr (tree, attrs, true, path, err) < 0)
    return -1;
  return mount_attach (tree, target, path, path, err);
}

static int
apply_mask (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  static const char *const opts[] = { "size", "0", "mode", "555", NULL };
  cleanup_close int target = openat2_ (c->rootfd, op->target, O_PATH | O_CLOEXEC, IN_ROOT);
  cleanup_close int m = -1, null = -1;
  struct stat st;
  if (target < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "mask `%s`", op->target);
  if (fstat (target, &st) < 0)
    return cella_error (err, errno, "mask `%s`", op->target);
  if (S_ISDIR (st.st_mode))
    {
      m = mount_new_fs ("tmpfs", opts, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                        err);
      if (m < 0)
        return -1;
      return mount_attach (m, target, "empty tmpfs", op->target, err);
    }
  null = openat2_ (c->rootfd, "/dev/null", O_PATH | O_CLOEXEC, IN_ROOT);
  if (null < 0)
    return cella_error (err, errno, "mask `%s`: needs /dev/null in the container", op->target);
  m = open_tree (null, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (m < 0)
    return cella_error (err, errno, "mask `%s`: clone /dev/null", op->target);
  if (mount_set_attr (m, MOUNT_ATTR_RDONLY, false, op->target, err) < 0)
    return -1;
  return mount_attach (m, target, "/dev/null", op->target, err);
}

int
mount_op_apply (struct mount_ctx *c, const struct op *op, struct op_rt *rt, cella_error_t *err)
{
  switch (op->kind)
    {
    case OP_BIND:
      return apply_bind (c, op, rt, err);
    case OP_PROC:
      return apply_proc (c, op, err);
    case OP_DEV:
      return apply_dev (c, op, err);
    case OP_SYSFS:
      return apply_sysfs (c, op, err);
    case OP_TMPFS:
      return apply_tmpfs (c, op, err);
    case OP_OVERLAY:
      return apply_overlay (c, op, rt, err);
    case OP_SYMLINK:
      return apply_symlink (c, op, err);
    case OP_MKDIR:
      {
        int fd = root_open (c->rootfd, op->target, true, true, err);
        if (fd < 0)
          return -1;
        close (fd);
        return 0;
      }
    case OP_FILE:
      return apply_file (c, op, err);
    case OP_REMOUNT:
      return rebind_with (c, op->target, remount_attrs (op->flags), false, err);
    case OP_MASK:
      return apply_mask (c, op, err);
    case OP_READONLY:
      return rebind_with (c, op->target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                          true, err);
    case OP_MOUNT:
      if (strcmp (op->fstype, "overlay") == 0)
        return apply_overlay_mount (c, op, rt, err);
      if (strcmp (op->fstype, "cgroup") == 0)
        return mount_cgroups (c, op, err);
      return apply_mount (c, op, err);
    case OP__COUNT:
    default:
      return cella_error (err, 0, "unknown mount op %d", (int) op->kind);
    }
}
