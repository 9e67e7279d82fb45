/* The guest's root: the basic kernel filesystems, the container's root at
 * /newroot (the root disk, or a tmpfs copy of the initramfs when the host put
 * the tree there), the 9p volumes, and the switch. pivot_root does not work
 * from the initramfs (rootfs cannot be unmounted), so we move the new root over
 * / and chroot, after freeing the initramfs' memory. */
#define _GNU_SOURCE
#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define ROOT_WAIT_MS 5000

static int
mount_one (const char *src, const char *target, const char *type, unsigned long flags, const char *data,
           cella_error_t *err)
{
  if (mkdir (target, 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir %s", target);
  if (mount (src, target, type, flags, data) < 0)
    return cella_error (err, errno, "mount %s (%s) on %s", src, type, target);
  return 0;
}

int
mount_basics (cella_error_t *err)
{
  const unsigned long nse = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  if (mount_one ("proc", "/proc", "proc", nse, NULL, err) < 0
      || mount_one ("sysfs", "/sys", "sysfs", nse, NULL, err) < 0
      || mount_one ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err) < 0
      || mount_one ("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", err) < 0
      || mount_one ("shm", "/dev/shm", "tmpfs", nse, "mode=1777", err) < 0)
    return -1;
  return 0;
}

int
root_mount_disk (const struct vm_guest_config *c, cella_error_t *err)
{
  struct timespec start, now, pause = { 0, 5000000 };
  struct stat st;
  clock_gettime (CLOCK_MONOTONIC, &start);
  /* The block device node appears when virtio_blk has probed the disk. */
  while (stat (c->root_dev, &st) < 0 || !S_ISBLK (st.st_mode))
    {
      clock_gettime (CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > ROOT_WAIT_MS)
        return cella_error (err, errno, "root device %s did not appear (-device virtio-blk-device)", c->root_dev);
      nanosleep (&pause, NULL);
    }
  /* read-only with mounts on it: read-write until their mount points are made (root_seal) */
  bool ro_now = c->root_ro && c->nmounts == 0 && c->ntmpfs == 0;
  return mount_one (c->root_dev, NEWROOT, c->root_fstype ? c->root_fstype : "ext4", ro_now ? MS_RDONLY : 0, NULL, err);
}

int
root_seal (const struct vm_guest_config *c, cella_error_t *err)
{
  if (c->root_dev && c->root_ro && (c->nmounts || c->ntmpfs)
      && mount (NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
    return cella_error (err, errno, "remount the root read-only");
  return 0;
}

/* ---- copying the initramfs into a tmpfs
 * ---------------------------------------------------- */

/* Our own files in the initramfs, not part of the container's tree. */
static bool
is_ours (int depth, const char *name)
{
  return depth == 0 && (strcmp (name, "init") == 0 || strcmp (name, "cella") == 0 || strcmp (name, "newroot") == 0);
}

static int
copy_meta (int dst_dir, const char *name, const struct stat *st, cella_error_t *err)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  if (fchownat (dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "chown %s", name);
  /* chown clears set-id bits, so the mode comes after it. Symlinks have no mode
   * of their own. */
  if (!S_ISLNK (st->st_mode) && fchmodat (dst_dir, name, st->st_mode & 07777, 0) < 0)
    return cella_error (err, errno, "chmod %s", name);
  if (utimensat (dst_dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "set times of %s", name);
  return 0;
}

static int
copy_file (int src_dir, int dst_dir, const char *name, const struct stat *st, cella_error_t *err)
{
  static char buf[1 << 16];
  int in = openat (src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return cella_error (err, errno, "open %s", name);
  int out = openat (dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    {
      close (in);
      return cella_error (err, errno, "create %s", name);
    }
  ssize_t n;
  while ((n = read (in, buf, sizeof buf)) > 0)
    if (write (out, buf, (size_t) n) != n)
      {
        close (in);
        close (out);
        return cella_error (err, errno ? errno : ENOSPC, "write %s (tmpfs full? give the VM more memory)", name);
      }
  close (in);
  close (out);
  if (n < 0)
    return cella_error (err, errno, "read %s", name);
  (void) st;
  return 0;
}

static int
copy_entry (int src_dir, int dst_dir, const char *name, const struct stat *st, cella_error_t *err)
{
  char target[4096];
  ssize_t n;
  switch (st->st_mode & S_IFMT)
    {
    case S_IFREG:
      if (copy_file (src_dir, dst_dir, name, st, err) < 0)
        return -1;
      /* The copy is done: give the initramfs' pages back now, so the peak is
       * about one tree. */
      unlinkat (src_dir, name, 0);
      break;
    case S_IFLNK:
      n = readlinkat (src_dir, name, target, sizeof target - 1);
      if (n < 0)
        return cella_error (err, errno, "readlink %s", name);
      target[n] = '\0';
      if (symlinkat (target, dst_dir, name) < 0)
        return cella_error (err, errno, "symlink %s", name);
      break;
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      if (mknodat (dst_dir, name, st->st_mode, st->st_rdev) < 0)
        return cella_error (err, errno, "mknod %s", name);
      break;
    default:
      return cella_error (err, 0, "%s: unknown file type", name);
    }
  return copy_meta (dst_dir, name, st, err);
}

/* pass 0: directories (pre-order); pass 1: everything else; pass 2: directory
 * metadata (last, since creating entries changes a directory's times). Never
 * crosses into another filesystem. */
static int
copy_tree (int src_dir, int dst_dir, dev_t dev, int depth, int pass, cella_error_t *err)
{
  DIR *d = fdopendir (dup (src_dir));
  struct dirent *de;
  int r = 0;
  if (d == NULL)
    return cella_error (err, errno, "read initramfs directory");
  rewinddir (d); /* the dup shares the offset, which the previous pass left at
                    the end */
  while (r == 0 && (de = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0 || is_ours (depth, de->d_name))
        continue;
      if (fstatat (src_dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          r = cella_error (err, errno, "stat %s", de->d_name);
          break;
        }
      if (!S_ISDIR (st.st_mode))
        {
          if (pass == 1)
            r = copy_entry (src_dir, dst_dir, de->d_name, &st, err);
          continue;
        }
      if (st.st_dev != dev)
        continue; /* /proc, /sys, /dev: mounted, moved later */
      if (pass == 0 && mkdirat (dst_dir, de->d_name, 0700) < 0)
        {
          r = cella_error (err, errno, "mkdir %s", de->d_name);
          break;
        }
      int s = openat (src_dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int t = openat (dst_dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (s < 0 || t < 0)
        r = cella_error (err, errno, "open directory %s", de->d_name);
      else
        r = copy_tree (s, t, dev, depth + 1, pass, err);
      if (s >= 0)
        close (s);
      if (t >= 0)
        close (t);
      if (r == 0 && pass == 2)
        r = copy_meta (dst_dir, de->d_name, &st, err);
    }
  closedir (d);
  return r;
}

int
root_copy_initramfs (cella_error_t *err)
{
  struct stat st;
  int r = -1;
  if (stat ("/", &st) < 0)
    return cella_error (err, errno, "stat /");
  if (mount_one ("tmpfs", NEWROOT, "tmpfs", 0, "mode=0755", err) < 0)
    return -1;
  int src = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int dst = open (NEWROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (src < 0 || dst < 0)
    cella_error (err, errno, "open / or " NEWROOT);
  else if (copy_tree (src, dst, st.st_dev, 0, 0, err) == 0 && copy_tree (src, dst, st.st_dev, 0, 1, err) == 0
           && copy_tree (src, dst, st.st_dev, 0, 2, err) == 0)
    {
      r = copy_meta (dst, ".", &st, err) < 0 ? -1 : 0;
    }
  if (r < 0)
    cella_error (err, (*err)->errno_, "copy the initramfs root into a tmpfs: %s", (*err)->msg);
  if (src >= 0)
    close (src);
  if (dst >= 0)
    close (dst);
  return r;
}

/* ---- volumes and the switch
 * ----------------------------------------------------------------- */

/* mkdir -p below NEWROOT, refusing to follow symlinks (the tree is the
 * container's). */
static int
mkdir_below_newroot (const char *target, cella_error_t *err)
{
  char path[4096];
  int dir = open (NEWROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return cella_error (err, errno, "open " NEWROOT);
  snprintf (path, sizeof path, "%s", target);
  for (char *save = NULL, *comp = strtok_r (path, "/", &save); comp; comp = strtok_r (NULL, "/", &save))
    {
      if (mkdirat (dir, comp, 0755) < 0 && errno != EEXIST)
        {
          close (dir);
          return cella_error (err, errno, "mkdir %s (for volume %s)", comp, target);
        }
      int next = openat (dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (dir);
      if (next < 0)
        return cella_error (err, errno, "volume target %s: %s is not a directory (or a symlink)", target, comp);
      dir = next;
    }
  close (dir);
  return 0;
}

int
mount_volumes (const struct vm_guest_config *c, cella_error_t *err)
{
  for (size_t i = 0; i < c->nmounts; i++)
    {
      const struct vm_mount *m = &c->mounts[i];
      char path[4096];
      snprintf (path, sizeof path, NEWROOT "%s", m->target);
      if (mkdir_below_newroot (m->target, err) < 0)
        return -1;
      if (mount (m->tag, path, "9p", m->ro ? MS_RDONLY : 0, "trans=virtio,version=9p2000.L,msize=262144,cache=none")
          < 0)
        return cella_error (err, errno, "mount 9p volume `%s` on %s (-device virtio-9p-device,mount_tag=%s)", m->tag,
                            m->target, m->tag);
    }
  return 0;
}

int
mount_tmpfs (const struct vm_guest_config *c, cella_error_t *err)
{
  for (size_t i = 0; i < c->ntmpfs; i++)
    {
      const struct vm_tmpfs *t = &c->tmpfs[i];
      char path[4096], data[96];
      int n = snprintf (data, sizeof data, "mode=%o", t->mode ? t->mode : 01777);
      if (t->size && n > 0 && (size_t) n < sizeof data)
        snprintf (data + n, sizeof data - (size_t) n, ",size=%llu", t->size);
      snprintf (path, sizeof path, NEWROOT "%s", t->target);
      if (mkdir_below_newroot (t->target, err) < 0)
        return -1;
      if (mount ("tmpfs", path, "tmpfs", t->flags, data) < 0)
        return cella_error (err, errno, "mount the tmpfs on %s (%s)", t->target, data);
    }
  return 0;
}

/* Remove the initramfs' files, staying on its filesystem (never into /newroot).
 */
static void
delete_tree (int dir, dev_t dev)
{
  DIR *d = fdopendir (dup (dir));
  struct dirent *de;
  if (d == NULL)
    return;
  while ((de = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (fstatat (dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
        continue;
      if (S_ISDIR (st.st_mode))
        {
          int sub = openat (dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            {
              delete_tree (sub, dev);
              close (sub);
            }
          unlinkat (dir, de->d_name, AT_REMOVEDIR); /* fails on mount points: kept */
        }
      else
        unlinkat (dir, de->d_name, 0);
    }
  closedir (d);
}

int
switch_to_newroot (cella_error_t *err)
{
  static const char *const moves[] = { "/dev", "/proc", "/sys" };
  struct stat st;
  for (size_t i = 0; i < sizeof moves / sizeof *moves; i++)
    {
      char dst[64];
      snprintf (dst, sizeof dst, NEWROOT "%s", moves[i]);
      if (mkdir (dst, 0755) < 0 && errno != EEXIST)
        return cella_error (err, errno, "mkdir %s in the container root", moves[i]);
      if (mount (moves[i], dst, NULL, MS_MOVE, NULL) < 0)
        return cella_error (err, errno, "move %s into the container root", moves[i]);
    }
  if (stat ("/", &st) == 0)
    {
      int root = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (root >= 0)
        {
          delete_tree (root, st.st_dev);
          close (root);
        }
    }
  if (chdir (NEWROOT) < 0)
    return cella_error (err, errno, "chdir " NEWROOT);
  if (mount (".", "/", NULL, MS_MOVE, NULL) < 0)
    return cella_error (err, errno, "move the container root onto /");
  if (chroot (".") < 0)
    return cella_error (err, errno, "chroot into the container root");
  if (chdir ("/") < 0)
    return cella_error (err, errno, "chdir /");
  return 0;
}
