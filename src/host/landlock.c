/* The host's Landlock ABI and whether scopes can be made (landlock.h). */
#define _GNU_SOURCE
#include "landlock.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

int
landlock_abi (void)
{
  static int abi;
  if (abi == 0)
    {
      long v = syscall (SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
      abi = v > 0 ? (int) v : errno > 0 ? -errno : -ENOSYS;
    }
  return abi;
}

int
landlock_try_scopes (void)
{
  struct ll_ruleset_attr attr = { .scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL };
  int fd = (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (fd < 0)
    return -errno;
  close (fd);
  return 0;
}
