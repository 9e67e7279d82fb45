#define _GNU_SOURCE
#include "selfexec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "execstub.h"
#include "util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static const int all_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

/* Safe already: a sealed memfd; a file on a read-only mount (a write through /proc/PID/exe
 * then fails with EROFS, whoever asks); or, for an ordinary user, a binary that user can
 * neither write nor chmod: the container runs as that user (and its subordinate ids) in a
 * user namespace, with no capability over the host's files, so it cannot write it either. */
static bool
running_safe (int exe)
{
  struct statvfs sv;
  struct stat st;
  int seals = fcntl (exe, F_GET_SEALS);
  if (seals >= 0 && (seals & all_seals) == all_seals)
    return true;
  if (fstatvfs (exe, &sv) == 0 && (sv.f_flag & ST_RDONLY))
    return true;
  if (geteuid () != 0 && fstat (exe, &st) == 0 && st.st_uid != geteuid () && !(st.st_mode & (S_IWGRP | S_IWOTH))
      && faccessat (AT_FDCWD, "/proc/self/exe", W_OK, AT_EACCESS) < 0)
    return true;
  return false;
}

/* Cheapest: a detached read-only bind mount of the binary itself, no copy. Needs
 * CAP_SYS_ADMIN over our mount namespace, so only when cella runs as root. */
static void
exec_from_ro_bind (char **argv)
{
  extern char **environ;
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
  cleanup_close int tree = open_tree (AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return;
  if (mount_setattr (tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return;
  execveat (tree, "", argv, environ, AT_EMPTY_PATH);
}

static void
exec_from_memfd (int exe, char **argv)
{
  extern char **environ;
  cleanup_close int mfd = -1;
  struct stat st;
  off_t off = 0;

  if (fstat (exe, &st) < 0)
    return;
  mfd = memfd_create ("cella", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
    mfd = memfd_create ("cella", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    return;
  while (off < st.st_size)
    {
      ssize_t n = sendfile (mfd, exe, NULL, st.st_size - off);
      if (n <= 0)
        return;
      off += n;
    }
  if (fcntl (mfd, F_ADD_SEALS, all_seals) < 0)
    return;
  fexecve (mfd, argv, environ);
}

int
selfexec_sealed (char **argv)
{
  cleanup_close int exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0)
    return -1;
  if (running_safe (exe))
    return 0;
  if (geteuid () == 0)
    exec_from_ro_bind (argv);
  exec_from_memfd (exe, argv);
  return -1;
}

/* The sealed memfd of the exec stub; -1 when the process was re-executed, or runs safe. */
static int stub_fd = -1;

int
selfexec_defer_to_stub (void)
{
  cleanup_close int exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cleanup_close int mfd = -1;
  if (exe < 0)
    return -1;
  if (running_safe (exe))
    return 0;
  mfd = memfd_create ("cella-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
    mfd = memfd_create ("cella-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0 || write (mfd, execstub_elf, execstub_elf_len) != (ssize_t) execstub_elf_len
      || fcntl (mfd, F_ADD_SEALS, all_seals) < 0)
    return -1;
  stub_fd = steal_fd (&mfd);
  return 0;
}

bool
selfexec_stub_armed (void)
{
  return stub_fd >= 0;
}

void
selfexec_stub_exec (int syncfd, const char *path_list, char *const *argv, char *const *env)
{
  char fdtext[16];
  size_t n = 0;
  char **sargv;
  while (argv[n])
    n++;
  sargv = xzalloc ((n + 4) * sizeof *sargv);
  snprintf (fdtext, sizeof fdtext, "%d", syncfd);
  sargv[0] = (char *) "cella-exec";
  sargv[1] = fdtext;
  sargv[2] = (char *) path_list;
  memcpy (sargv + 3, argv, n * sizeof *sargv);
  /* the stub makes it close-on-exec again before the workload's execve */
  if (fcntl (syncfd, F_SETFD, 0) < 0)
    return;
  execveat (stub_fd, "", sargv, (char **) env, AT_EMPTY_PATH);
  free (sargv);
}
