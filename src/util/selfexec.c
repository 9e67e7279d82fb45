#define _GNU_SOURCE
#include "selfexec.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static const int all_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

static bool
running_sealed (int exe)
{
  int seals = fcntl (exe, F_GET_SEALS);
  return seals >= 0 && (seals & all_seals) == all_seals;
}

int
selfexec_sealed (char **argv)
{
  extern char **environ;
  cleanup_close int exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cleanup_close int mfd = -1;
  struct stat st;
  off_t off = 0;

  if (exe < 0)
    return -1;
  if (running_sealed (exe))
    return 0;
  if (fstat (exe, &st) < 0)
    return -1;
  mfd = memfd_create ("cella", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
    mfd = memfd_create ("cella", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    return -1;
  while (off < st.st_size)
    {
      ssize_t n = sendfile (mfd, exe, NULL, st.st_size - off);
      if (n <= 0)
        return -1;
      off += n;
    }
  if (fcntl (mfd, F_ADD_SEALS, all_seals) < 0)
    return -1;
  fexecve (mfd, argv, environ);
  return -1;
}
