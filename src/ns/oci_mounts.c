/* Mount steps an OCI config adds: propagation of a mount or of the root, tmpcopyup, and the
 * device nodes of linux.devices. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "internal.h"

int
ns_write_id_map (const char *dir, const char *file, const struct id_map *m, size_t n)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  cleanup_free char *text = xstrdup ("");
  cleanup_close int fd = -1;
  for (size_t i = 0; i < n; i++)
    {
      char *t = xasprintf ("%s%u %u %u\n", text, m[i].inside, m[i].outside, m[i].count);
      free (text);
      text = t;
    }
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0)
    return -1;
  return 0;
}

int
mount_set_propagation (int dirfd, const char *path, enum plan_propagation prop, cella_error_t *err)
{
  static const struct {
    unsigned long long type;
    bool rec;
  } map[PROP__COUNT] = {
    [PROP_PRIVATE] = { MS_PRIVATE, false },       [PROP_RPRIVATE] = { MS_PRIVATE, true },
    [PROP_SLAVE] = { MS_SLAVE, false },           [PROP_RSLAVE] = { MS_SLAVE, true },
    [PROP_SHARED] = { MS_SHARED, false },         [PROP_RSHARED] = { MS_SHARED, true },
    [PROP_UNBINDABLE] = { MS_UNBINDABLE, false }, [PROP_RUNBINDABLE] = { MS_UNBINDABLE, true },
  };
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  struct mount_attr attr = { 0 };
  cleanup_close int fd = -1;
  if (prop == PROP_UNSET || prop >= PROP__COUNT)
    return 0;
  fd = (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd < 0)
    return cella_error (err, errno, "open `%s` to set its propagation", path);
  attr.propagation = map[prop].type;
  if (mount_setattr (fd, "", AT_EMPTY_PATH | (map[prop].rec ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return cella_error (err, errno, "make `%s` %s", path, plan_propagation_name (prop));
  return 0;
}

static int
copy_file (int sfd, int dfd, const char *name, const struct stat *st)
{
  cleanup_close int in = openat (sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int out = -1;
  char buf[65536];
  ssize_t n;
  if (in < 0)
    return -1;
  out = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
  if (out < 0)
    return -1;
  while ((n = read (in, buf, sizeof buf)) > 0)
    if (write_all (out, buf, (size_t) n) < 0)
      return -1;
  return n < 0 ? -1 : 0;
}

/* Directory sfd's contents into dfd: directories, regular files, symlinks; owners and modes
 * kept (an owner we cannot set stays ours). */
static int
copy_tree (int sfd, int dfd, cella_error_t *err)
{
  DIR *d;
  struct dirent *e;
  int r = 0, fd = openat (sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return cella_error (err, errno, "tmpcopyup: read a directory");
    }
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (fstatat (sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        r = cella_error (err, errno, "tmpcopyup: stat `%s`", e->d_name);
      else if (S_ISDIR (st.st_mode))
        {
          cleanup_close int s2 = -1, d2 = -1;
          if (mkdirat (dfd, e->d_name, st.st_mode & 07777) < 0
              || (s2 = openat (sfd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0
              || (d2 = openat (dfd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            r = cella_error (err, errno, "tmpcopyup: directory `%s`", e->d_name);
          else
            r = copy_tree (s2, d2, err);
        }
      else if (S_ISREG (st.st_mode))
        {
          if (copy_file (sfd, dfd, e->d_name, &st) < 0)
            r = cella_error (err, errno, "tmpcopyup: file `%s`", e->d_name);
        }
      else if (S_ISLNK (st.st_mode))
        {
          char link[4096];
          ssize_t n = readlinkat (sfd, e->d_name, link, sizeof link - 1);
          if (n < 0 || (link[n] = '\0', symlinkat (link, dfd, e->d_name) < 0))
            r = cella_error (err, errno, "tmpcopyup: symlink `%s`", e->d_name);
        }
      else
        continue; /* devices, fifos, sockets: not copied */
      if (r == 0)
        (void) !fchownat (dfd, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
    }
  closedir (d);
  return r;
}

/* What the root holds at `path` (if anything) into the detached tmpfs m, before it hides it. */
int
mount_tmpcopyup (int rootfd, const char *path, int m, cella_error_t *err)
{
  struct open_how how
      = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  cleanup_close int src = (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
  struct stat st;
  if (src < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "tmpcopyup: open `%s`", path);
  if (fstat (src, &st) == 0)
    {
      (void) !fchmodat (m, ".", st.st_mode & 07777, 0);
      (void) !fchownat (m, "", st.st_uid, st.st_gid, AT_EMPTY_PATH);
    }
  if (copy_tree (src, m, err) < 0)
    return cella_error_wrap (err, "tmpfs on `%s`", path);
  return 0;
}

/* A detached mount of a node onto a new empty file at name in dirfd. */
static int
attach_node (int tree, int dirfd, const char *name, const char *what, cella_error_t *err)
{
  cleanup_close int node = -1;
  int f = openat (dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
  if (f < 0)
    return cella_error (err, errno, "create `%s`", what);
  close (f);
  node = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (node < 0 || move_mount (tree, "", node, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return cella_error (err, errno, "bind the node of `%s`", what);
  return 0;
}

static int
make_parents (int devfd, const char *rel, cella_error_t *err)
{
  cleanup_free char *dir = xstrdup (rel);
  for (char *s = strchr (dir, '/'); s; s = strchr (s + 1, '/'))
    {
      *s = '\0';
      if (mkdirat (devfd, dir, 0755) < 0 && errno != EEXIST)
        return cella_error (err, errno, "mkdir `/dev/%s`", dir);
      *s = '/';
    }
  return 0;
}

/* No mknod in a user namespace: the host's node (--device's, else the one of the same path), bound. */
static int
bind_host_device (int dirfd, const char *name, const struct plan_device *d, cella_error_t *err)
{
  const char *host = d->host_path ? d->host_path : d->path;
  cleanup_close int tree = open_tree (AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return cella_error (err, errno, "device `%s`: cannot mknod here and the host has no `%s` to bind", d->path, host);
  return attach_node (tree, dirfd, name, d->path, err);
}

static mode_t
device_type (const struct plan_device *d)
{
  return d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
}

/* One node at name in dirfd; `replace`: a node already there (/dev/null ...) gives way (in a user
 * namespace that one is a bind of the host's node, detached first), else it stays as it is (runc
 * leaves an existing file outside /dev alone). */
static int
make_device (const struct plan_device *d, int dirfd, const char *name, bool replace, cella_error_t *err)
{
  if (replace && unlinkat (dirfd, name, 0) < 0 && errno == EBUSY)
    {
      cleanup_free char *at = xasprintf ("/proc/self/fd/%d/%s", dirfd, name);
      if (umount2 (at, MNT_DETACH) < 0 || unlinkat (dirfd, name, 0) < 0)
        return cella_error (err, errno, "replace `%s`", d->path);
    }
  if (!replace && faccessat (dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (d->host_tree_ready)
    return attach_node (d->host_tree_fd, dirfd, name, d->path, err);
  if (mknodat (dirfd, name, device_type (d) | d->mode, makedev ((unsigned) d->major, (unsigned) d->minor)) < 0)
    {
      if (errno != EPERM || d->type == 'p')
        return cella_error (err, errno, "mknod `%s`", d->path);
      return bind_host_device (dirfd, name, d, err);
    }
  if (fchmodat (dirfd, name, d->mode, 0) < 0 || fchownat (dirfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "set the owner and mode of `%s`", d->path);
  return 0;
}

static bool
under_dev (const struct plan_device *d)
{
  return strncmp (d->path, "/dev/", 5) == 0;
}

int
ns_make_devices (const struct plan *p, int devfd, cella_error_t *err)
{
  for (size_t i = 0; i < p->ndevices; i++)
    {
      const struct plan_device *d = &p->devices[i];
      if (!under_dev (d))
        continue;
      if (make_parents (devfd, d->path + 5, err) < 0 || make_device (d, devfd, d->path + 5, true, err) < 0)
        return -1;
    }
  return 0;
}

/* A node made on a nodev mount (the root, when /dev is a mount of its own: docs/security.md
 * "Devices") is bound onto itself without nodev, so that the config's device opens. A node
 * attached from the host's /dev, or on a mount that is not nodev, is left as it is. */
static int
usable_node (int parent, const char *name, const struct plan_device *d, cella_error_t *err)
{
  struct mount_attr dev = { .attr_clr = MOUNT_ATTR_NODEV };
  struct statvfs vfs;
  cleanup_close int node = -1, tree = -1;
  if (d->type == 'p' || d->host_tree_ready)
    return 0;
  node = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (node < 0 || fstatvfs (node, &vfs) < 0)
    return cella_error (err, errno, "device `%s`", d->path);
  if (!(vfs.f_flag & ST_NODEV))
    return 0;
  tree = open_tree (node, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree < 0 || mount_setattr (tree, "", AT_EMPTY_PATH, &dev, sizeof dev) < 0
      || move_mount (tree, "", node, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return cella_error (err, errno, "device `%s`: bind it without nodev", d->path);
  return 0;
}

/* Devices outside /dev (runtime-spec 1.1), once every mount is in place: in the root, parents
 * made as needed, through RESOLVE_IN_ROOT. */
int
ns_make_devices_elsewhere (const struct plan *p, int rootfd, cella_error_t *err)
{
  for (size_t i = 0; i < p->ndevices; i++)
    {
      const struct plan_device *d = &p->devices[i];
      cleanup_free char *dir = NULL;
      cleanup_close int parent = -1;
      const char *slash = strrchr (d->path, '/');
      if (under_dev (d))
        continue;
      dir = slash == d->path ? xstrdup ("/") : strndup (d->path, (size_t) (slash - d->path));
      parent = root_open (rootfd, dir, true, true, err);
      if (parent < 0 || make_device (d, parent, slash + 1, false, err) < 0
          || usable_node (parent, slash + 1, d, err) < 0)
        return -1;
    }
  return 0;
}

static bool
map_id (const struct id_map *m, size_t n, uint32_t id, uint32_t *out)
{
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].inside && id - m[i].inside < m[i].count)
      {
        *out = m[i].outside + (id - m[i].inside);
        return true;
      }
  return false;
}

/* One node made on the host in dir, with the config's mode and owner as the host sees the
 * container's ids, then its detached mount. */
static int
host_device_tree (const struct plan *p, const struct plan_device *d, int dir, cella_error_t *err)
{
  char name[32];
  mode_t perm = d->mode;
  uint32_t uid, gid;
  int tree;
  snprintf (name, sizeof name, "%zu", (size_t) (d - p->devices));
  if (!map_id (p->uid_map, p->nuid_map, d->uid, &uid) || !map_id (p->gid_map, p->ngid_map, d->gid, &gid))
    return cella_error (err, 0, "device `%s`: its owner %u:%u is not mapped in the container's user namespace", d->path,
                        (unsigned) d->uid, (unsigned) d->gid);
  if (mknodat (dir, name, device_type (d) | perm, makedev ((unsigned) d->major, (unsigned) d->minor)) < 0
      || fchmodat (dir, name, perm, 0) < 0 || fchownat (dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    {
      int e = errno;
      unlinkat (dir, name, 0);
      return cella_error (err, e, "device `%s`: make its node on the host", d->path);
    }
  tree = open_tree (dir, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return cella_error (err, errno, "device `%s`: clone its node", d->path);
  return tree;
}

/* Host side, before clone, when root of the host makes a container with a user namespace: its
 * root may not mknod, and a bound host node keeps the host's owner and mode. Each node is made
 * here in a private directory of the host's /dev (a file system made for device nodes) and
 * cloned as a detached mount, which the child attaches; the directory goes once the child is
 * set up (ns_release_devices: a mount of an unlinked node cannot be attached). */
int
ns_prepare_devices (struct plan *p, cella_error_t *err)
{
  char tmpl[] = "/dev/.cella-dev.XXXXXX";
  cleanup_close int dir = -1;
  int r = 0;
  ns_release_devices (p);
  if (p->ndevices == 0 || !(p->ns & PLAN_NS_USER) || geteuid () != 0 || !in_initial_userns ())
    return 0;
  if (mkdtemp (tmpl) == NULL)
    return cella_error (err, errno, "make a private directory for device nodes under /dev");
  p->devices_host_dir = xstrdup (tmpl);
  dir = open (tmpl, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  for (size_t i = 0; i < p->ndevices && r == 0; i++)
    {
      struct plan_device *d = &p->devices[i];
      if (d->type == 'p')
        continue; /* anyone may make a fifo */
      if (dir < 0)
        r = cella_error (err, errno, "open `%s`", tmpl);
      else if ((d->host_tree_fd = host_device_tree (p, d, dir, err)) < 0)
        r = -1;
      else
        d->host_tree_ready = true;
    }
  if (r < 0)
    ns_release_devices (p);
  return r;
}

void
ns_release_devices (struct plan *p)
{
  for (size_t i = 0; i < p->ndevices; i++)
    if (p->devices[i].host_tree_ready)
      {
        close (p->devices[i].host_tree_fd);
        p->devices[i].host_tree_ready = false;
      }
  if (p->devices_host_dir)
    remove_tree (p->devices_host_dir);
  free (p->devices_host_dir);
  p->devices_host_dir = NULL;
}

/* Host side: a user namespace with these maps, for MOUNT_ATTR_IDMAP. A helper unshares it, we
 * write its maps (root may map any range) and keep a descriptor of it; the helper exits, the
 * namespace lives on through the descriptor. Returns the descriptor, or -1 with errno. */
int
ns_userns_fd (const struct id_map *uid, size_t nuid, const struct id_map *gid, size_t ngid)
{
  int ready[2], go[2], status, fd = -1, e = EPERM;
  char c = 0;
  pid_t pid;
  cleanup_free char *dir = NULL;
  if (pipe2 (ready, O_CLOEXEC) < 0)
    return -1;
  if (pipe2 (go, O_CLOEXEC) < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return -1;
    }
  pid = fork ();
  if (pid == 0)
    {
      close (ready[0]);
      close (go[1]);
      if (unshare (CLONE_NEWUSER) < 0 || write (ready[1], "r", 1) != 1 || read (go[0], &c, 1) < 0)
        _exit (1);
      _exit (0);
    }
  close (ready[1]);
  close (go[0]);
  if (pid > 0 && read (ready[0], &c, 1) == 1)
    {
      dir = xasprintf ("/proc/%d", (int) pid);
      if (ns_write_id_map (dir, "uid_map", uid, nuid) == 0 && ns_write_id_map (dir, "gid_map", gid, ngid) == 0)
        {
          cleanup_free char *ns = xasprintf ("%s/ns/user", dir);
          fd = open (ns, O_RDONLY | O_CLOEXEC);
        }
      e = errno;
    }
  close (ready[0]);
  close (go[1]);
  if (pid > 0)
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
      ;
  errno = e;
  return fd;
}

/* Host side (prepare): the user namespace of an idmapped bind's mappings. */
int
idmap_prepare (struct op *op, cella_error_t *err)
{
  if (op->idmap_ready)
    close (op->idmap_fd);
  op->idmap_ready = false;
  if (geteuid () != 0)
    return cella_error (err, EPERM, "idmapped mount on `%s`: needs root (its mappings are written from the host)",
                        op->target);
  op->idmap_fd = ns_userns_fd (op->idmap_uid, op->nidmap_uid, op->idmap_gid, op->nidmap_gid);
  op->idmap_ready = op->idmap_fd >= 0;
  if (!op->idmap_ready)
    return cella_error (err, errno, "idmapped mount on `%s`: make a user namespace with its mappings", op->target);
  return 0;
}

/* Child (acquire): the detached bind seen through the mappings. */
int
idmap_apply (const struct op *op, int mntfd, cella_error_t *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) op->idmap_fd };
  if (!op->idmap_ready)
    return 0;
  if (mount_setattr (mntfd, "", AT_EMPTY_PATH | (op->idmap_recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return cella_error (err, errno, "idmapped mount of `%s` on `%s`%s", op->source, op->target,
                        errno == EINVAL ? ": its file system does not support idmapped mounts here" : "");
  return 0;
}
