/* cella build's RUN in a VM (src/vm/guest.h, export_root): the root disk's
 * tree written as a tar stream to the export disk once the workload is done.
 * The host reads it as an untrusted stream (src/vm/tar.c) and makes the
 * step's layer from it; nothing here needs to be trusted by the host. */
#define _GNU_SOURCE
#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vm/tar.h"

#define EXPORT_WAIT_MS 10000

static char export_dev[64];
static int export_fd = -1; /* opened before the switch to the root (its /dev is the workload's) */

/* The virtio disk whose serial is VM_EXPORT_SERIAL ("/dev/vdX"), or "". */
static void
scan (char *out, size_t len)
{
  DIR *d = opendir ("/sys/block");
  struct dirent *e;
  out[0] = '\0';
  while (d && (e = readdir (d)) != NULL)
    {
      char path[300], serial[64];
      ssize_t n;
      if (strncmp (e->d_name, "vd", 2) != 0)
        continue;
      snprintf (path, sizeof path, "/sys/block/%s/serial", e->d_name);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      n = read (fd, serial, sizeof serial - 1);
      close (fd);
      if (n <= 0)
        continue;
      serial[n] = '\0';
      serial[strcspn (serial, "\n")] = '\0';
      if (strcmp (serial, VM_EXPORT_SERIAL) == 0 && strlen (e->d_name) + 6 <= len)
        {
          memcpy (out, "/dev/", 5);
          memcpy (out + 5, e->d_name, strlen (e->d_name) + 1);
        }
    }
  if (d)
    closedir (d);
}

/* Before the root is mounted: find the export disk (the order of virtio-mmio
 * disks is the machine's, not ours) and make c->root_dev the other one. */
int
export_prepare (struct vm_guest_config *c, cella_error_t *err)
{
  struct timespec start, now, pause = { 0, 5000000 };
  struct stat st;
  clock_gettime (CLOCK_MONOTONIC, &start);
  for (;;)
    {
      scan (export_dev, sizeof export_dev);
      if (export_dev[0] && stat (export_dev, &st) == 0 && S_ISBLK (st.st_mode))
        break;
      clock_gettime (CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > EXPORT_WAIT_MS)
        return cella_error (err, 0, "the export disk (serial %s) did not appear", VM_EXPORT_SERIAL);
      nanosleep (&pause, NULL);
    }
  if (c->root_dev && strcmp (c->root_dev, export_dev) == 0)
    {
      /* two disks: vda and vdb */
      char *other = strdup (strcmp (export_dev, "/dev/vda") == 0 ? "/dev/vdb" : "/dev/vda");
      if (other == NULL)
        abort ();
      c->root_dev = other; /* PID 1 never frees its config */
    }
  export_fd = open (export_dev, O_WRONLY | O_CLOEXEC);
  if (export_fd < 0)
    return cella_error (err, errno, "open the export disk %s", export_dev);
  return 0;
}

/* After the workload: every process is gone; the root's own mount (cloned
 * without what is mounted on it: /proc, /dev, volumes, tmpfs, resolv.conf) as
 * a tar stream on the export disk. */
int
export_root (cella_error_t *err)
{
  int treefd, rc;
  treefd = (int) syscall (SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (treefd < 0)
    return cella_error (err, errno, "export: open_tree /");
  rc = tar_write_tree (export_fd, treefd, ".", "rootfs", false, false, true, err);
  if (rc == 0 && fsync (export_fd) < 0)
    rc = cella_error (err, errno, "export: flush the export disk");
  close (export_fd);
  export_fd = -1;
  close (treefd);
  return rc;
}
