/* Building the container's root: staging tmpfs, root mount, ops in order, pivot_root. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "ns.h"

/* The staging tmpfs is mounted over an existing directory of our private copy of the host's
 * mount tree; nothing is created on the host and everything vanishes with the namespace.
 * Every host source was cloned or opened before this point, so hiding /tmp hides nothing. */
const char *
ns_staging_dir (void)
{
  static const char *const candidates[] = { "/tmp", "/mnt", "/run", "/var/tmp" };
  struct stat st;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (lstat (candidates[i], &st) == 0 && S_ISDIR (st.st_mode))
      return candidates[i];
  return NULL;
}

int
ns_tmpfs_over (const char *dir, const char *mode, const char *what, cella_error_t *err)
{
  cleanup_close int fs = fsopen ("tmpfs", FSOPEN_CLOEXEC);
  int m;
  if (fs < 0 || fsconfig (fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0
      || fsconfig (fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "create the %s tmpfs", what);
  m = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (m < 0)
    return cella_error (err, errno, "mount the %s tmpfs", what);
  if (move_mount (m, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    {
      close (m);
      return cella_error (err, errno, "mount the %s tmpfs on `%s`", what, dir);
    }
  return m;
}

int
ns_pivot_root (int rootfd, cella_error_t *err)
{
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
   * removes the old root and every host mount under it from our view. */
  if (fchdir (rootfd) < 0)
    return cella_error (err, errno, "chdir to the new root");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return cella_error (err, errno, "pivot_root");
  if (umount2 (".", MNT_DETACH) < 0)
    return cella_error (err, errno, "detach the old root");
  if (chdir ("/") < 0)
    return cella_error (err, errno, "chdir /");
  return 0;
}

/* A root bound from a directory is nodev when /dev is a mount of its own (cella's minimal dev, an OCI /dev
 * tmpfs), so that no node on the root, shipped with it or made there with mknod, opens a device whatever the
 * cgroup says; an OCI root without such a mount keeps its own /dev nodes usable, as runc does. An overlay root
 * is always nodev (overlay_mount). Not under --privileged. */
bool
root_nodev (const struct plan *p)
{
  if (p->privileged)
    return false;
  for (size_t i = 0; i < p->nops; i++)
    if (strcmp (p->ops[i].target, "/dev") == 0 && p->ops[i].kind != OP_MKDIR && p->ops[i].kind != OP_SYMLINK)
      return true;
  return false;
}

/* Every op's host side taken (before anything is hidden), then the OCI createContainer hooks:
 * in the container's namespaces, before pivot_root, while their paths still resolve in the
 * host's tree (before the staging tmpfs covers /tmp). */
static int
acquire_ops (const struct plan *p, struct op_rt *rts, cella_error_t *err)
{
  for (size_t i = 0; i < p->nops; i++)
    if (mount_op_acquire (&p->ops[i], &rts[i], p, err) < 0)
      return -1;
  if (p->nhooks[HOOK_CREATE_CONTAINER] && ns_oci_hooks (p, HOOK_CREATE_CONTAINER, "creating", ns_host_pid (), err) < 0)
    return -1;
  return 0;
}

/* go's wait, once: the child is in its cgroup (and cgroup namespace) from then on */
static int
go_now (struct root_go *go, cella_error_t *err)
{
  if (go == NULL || go->done)
    return 0;
  go->done = true;
  return go->wait (go->ud, err);
}

static int
apply_ops (struct mount_ctx *c, struct op_rt *rts, struct root_go *go, cella_error_t *err)
{
  const struct plan *p = c->plan;
  for (size_t i = 0; i < p->nops; i++)
    {
      /* the container's own cgroup mount shows where we are: be there first */
      if (p->ops[i].kind == OP_MOUNT && p->ops[i].fstype && strncmp (p->ops[i].fstype, "cgroup", 6) == 0
          && go_now (go, err) < 0)
        return -1;
      if (p->debug)
        {
          cleanup_free char *d = op_describe (&p->ops[i]);
          fprintf (stderr, "cella: debug: %s\n", d);
        }
      if (mount_op_apply (c, &p->ops[i], &rts[i], err) < 0)
        return -1;
      op_rt_close (&rts[i]);
    }
  return ns_make_devices_elsewhere (p, c->rootfd, err);
}

/* In the new root: read-only, then rootfsPropagation (after pivot_root, which refuses a shared
 * root), then each mount's own propagation again: an r* root setting must not override what a
 * mount asked for. */
static int
finish_root (const struct plan *p, cella_error_t *err)
{
  if (p->readonly)
    {
      struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
      if (mount_setattr (AT_FDCWD, "/", 0, &attr, sizeof attr) < 0)
        return cella_error (err, errno, "make the root read-only");
    }
  if (p->rootfs_propagation)
    {
      if (mount_set_propagation (AT_FDCWD, "/", p->rootfs_propagation, err) < 0)
        return -1;
      for (size_t i = 0; i < p->nops; i++)
        if (p->ops[i].propagation && !p->ops[i].skip
            && mount_set_propagation (AT_FDCWD, p->ops[i].target, p->ops[i].propagation, err) < 0)
          return -1;
    }
  return 0;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U /* Linux 6.8 */
#endif

/* The id of the mount at dirfd/path (the never reused 64-bit one where the kernel has it). */
int
ns_mount_id (int dirfd, const char *path, unsigned long long *id)
{
  struct statx st;
  if (statx (dirfd, path, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_MNT_ID_UNIQUE, &st) < 0)
    return -1;
  if (!(st.stx_mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)))
    {
      errno = ENOSYS;
      return -1;
    }
  *id = st.stx_mnt_id;
  return 0;
}

void
ns_host_root_release (const char *rootfs, unsigned long long mount_id)
{
  unsigned long long now;
  /* only the bind this container put there: not the rootfs's own mount (an image's overlay) */
  if (mount_id && ns_mount_id (AT_FDCWD, rootfs, &now) == 0 && now == mount_id)
    umount2 (rootfs, MNT_DETACH | UMOUNT_NOFOLLOW);
}

/* No mount namespace of its own (an OCI config without one): the container shares the
 * runtime's. Its root is a recursive bind of the rootfs onto itself, made a slave so that what
 * is mounted below stays below, and entered with chroot; everything the container mounted goes
 * with that bind (ns_host_root_release: `delete`, or here on failure). */
static int
root_setup_shared (const struct plan *p, struct op_rt *rts, struct root_go *go, cella_error_t *err)
{
  struct mount_ctx c = { .plan = p, .rootfd = -1, .stagingfd = -1 };
  struct mount_attr slave = { .propagation = MS_SLAVE };
  cleanup_close int target = -1, tree = -1;
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_FILE || p->ops[i].kind == OP_OVERLAY)
      return cella_error (err, 0, "mount op on `%s` needs a mount namespace of the container's own", p->ops[i].target);
  if (p->root_overlay || p->root_premounted)
    return cella_error (err, 0, "this root needs a mount namespace of the container's own");
  target = open (p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  tree = open_tree (AT_FDCWD, p->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (target < 0 || tree < 0)
    return cella_error (err, errno, "root `%s`: clone mount", p->rootfs);
  if (acquire_ops (p, rts, err) < 0)
    return -1;
  if (move_mount (tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return cella_error (err, errno,
                        "mount the root `%s` on itself (no mount namespace in the config: cella mounts in "
                        "its own, which needs CAP_SYS_ADMIN there)",
                        p->rootfs);
  c.rootfd = tree;
  if (mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) < 0)
    cella_error (err, errno, "make the root `%s` a slave mount", p->rootfs);
  else if (apply_ops (&c, rts, go, err) == 0)
    {
      if (fchdir (tree) < 0 || chroot (".") < 0 || chdir ("/") < 0)
        cella_error (err, errno, "chroot to `%s`", p->rootfs);
      else if (finish_root (p, err) == 0 && go_now (go, err) == 0)
        return 0;
    }
  umount2 (p->rootfs, MNT_DETACH | UMOUNT_NOFOLLOW);
  return -1;
}

int
root_setup (const struct plan *p, struct op_rt *rts, struct root_go *go, cella_error_t *err)
{
  struct mount_ctx c = { .plan = p, .rootfd = -1, .stagingfd = -1 };
  struct op root_op = { .kind = OP_OVERLAY, .target = (char *) "/", .ov_mode = OVERLAY_EPHEMERAL };
  struct op_rt root_rt = { .fd = -1 };
  cleanup_close int rootdir = -1;
  int r = -1;

  if (!(p->ns & PLAN_NS_MNT) && !p->ns_path[0])
    return root_setup_shared (p, rts, go, err);
  /* Nothing we mount may propagate back to the host. */
  if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return cella_error (err, errno, "make the mount tree private");

  if (p->root_premounted)
    ; /* mounted by the parent (userns_root.c): the descriptor came with clone */
  else if (p->root_overlay)
    {
      size_t nl = strv_len (p->root_layers);
      root_rt.lfds = xmalloc (sizeof (int) * (nl + 1));
      for (size_t i = 0; i <= nl; i++)
        {
          const char *layer = i < nl ? p->root_layers[i] : p->rootfs;
          root_rt.lfds[i] = open (layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (root_rt.lfds[i] < 0)
            {
              cella_error (err, errno, "root layer `%s`", layer);
              op_rt_close (&root_rt);
              return -1;
            }
          root_rt.nlfds++;
        }
      if (p->root_upper)
        {
          /* an engine container: its changes persist in its own directory */
          root_op.ov_mode = OVERLAY_PERSISTENT;
          root_rt.fds[6] = open (p->root_upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
          root_rt.fds[7] = open (p->root_work, O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (root_rt.fds[6] < 0 || root_rt.fds[7] < 0)
            return cella_error (err, errno, "root overlay: upper `%s` or work `%s`", p->root_upper, p->root_work);
        }
    }
  else
    {
      struct mount_attr nodev = { .attr_set = MOUNT_ATTR_NODEV };
      root_rt.fd = p->root_tree_ready
                       ? fcntl (p->root_tree_fd, F_DUPFD_CLOEXEC, 3)
                       : open_tree (AT_FDCWD, p->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
      if (root_rt.fd < 0)
        return cella_error (err, errno, "root `%s`: clone mount", p->rootfs);
      if (root_nodev (p) && mount_setattr (root_rt.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &nodev, sizeof nodev) < 0)
        {
          cella_error (err, errno, "root `%s`: make it nodev", p->rootfs);
          op_rt_close (&root_rt);
          return -1;
        }
    }
  if (acquire_ops (p, rts, err) < 0)
    goto out;
  c.staging = ns_staging_dir ();
  if (c.staging == NULL)
    {
      cella_error (err, 0, "no directory to stage the root on (looked for /tmp, /mnt, /run)");
      goto out;
    }
  c.stagingfd = ns_tmpfs_over (c.staging, "700", "staging", err);
  if (c.stagingfd < 0)
    goto out;
  if (mkdirat (c.stagingfd, "root", 0755) < 0
      || (rootdir = openat (c.stagingfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      cella_error (err, errno, "create the root mount point");
      goto out;
    }
  if (p->root_premounted)
    c.rootfd = p->root_fd;
  else if (p->root_overlay)
    {
      c.rootfd = overlay_mount (&c, &root_op, &root_rt, err);
      if (c.rootfd < 0)
        {
          cella_error_wrap (err, "root overlay on `%s`", p->rootfs);
          goto out;
        }
    }
  else
    c.rootfd = steal_fd (&root_rt.fd);
  if (move_mount (c.rootfd, "", rootdir, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    {
      cella_error (err, errno, "mount the root `%s`", p->rootfs);
      goto out;
    }

  if (apply_ops (&c, rts, go, err) < 0 || ns_pivot_root (c.rootfd, err) < 0 || finish_root (p, err) < 0
      || go_now (go, err) < 0)
    goto out;
  r = 0;
out:
  op_rt_close (&root_rt);
  if (c.rootfd >= 0)
    close (c.rootfd);
  if (c.stagingfd >= 0)
    close (c.stagingfd);
  return r;
}
