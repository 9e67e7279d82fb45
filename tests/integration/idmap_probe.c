/* idmap_probe DIR: can this kernel and DIR's file system give DIR an idmapped mount? Tries it
 * on a detached copy of the mount (nothing is attached anywhere): open_tree(OPEN_TREE_CLONE), a
 * user namespace mapping 0 to 1000, mount_setattr(MOUNT_ATTR_IDMAP). Exit 0 when the kernel
 * takes it; else 1 with "why: ERRNO" on stdout. Built by the tests (t_oci_config.sh), so that
 * whether to skip is a fact about the machine, not cella's own say. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int
fail (const char *what)
{
  printf ("%s: %s\n", what, strerrordesc_np (errno));
  return 1;
}

static int
write_file (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  if (fd >= 0)
    close (fd);
  return ok ? 0 : -1;
}

int
main (int argc, char **argv)
{
  int tree, userns, sync[2];
  char path[64], c = 0;
  pid_t child;
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };

  if (argc != 2)
    return 2;
  tree = (int) syscall (SYS_open_tree, AT_FDCWD, argv[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return fail ("open_tree");
  if (pipe (sync) < 0)
    return fail ("pipe");
  child = fork ();
  if (child == 0)
    {
      close (sync[0]);
      if (unshare (CLONE_NEWUSER) < 0)
        _exit (1);
      (void) write (sync[1], &c, 1); /* in the new namespace: the parent may write its maps */
      pause ();
      _exit (0);
    }
  close (sync[1]);
  if (read (sync[0], &c, 1) != 1)
    return fail ("unshare(CLONE_NEWUSER)");
  snprintf (path, sizeof path, "/proc/%d/uid_map", (int) child);
  if (write_file (path, "1000 0 1\n") < 0)
    return fail ("uid_map");
  snprintf (path, sizeof path, "/proc/%d/setgroups", (int) child);
  (void) write_file (path, "deny\n");
  snprintf (path, sizeof path, "/proc/%d/gid_map", (int) child);
  if (write_file (path, "1000 0 1\n") < 0)
    return fail ("gid_map");
  snprintf (path, sizeof path, "/proc/%d/ns/user", (int) child);
  userns = open (path, O_RDONLY | O_CLOEXEC);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  if (userns < 0)
    return fail ("open the user namespace");
  attr.userns_fd = (unsigned) userns;
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return fail ("mount_setattr(MOUNT_ATTR_IDMAP)");
  return 0;
}
