/* The command of a container whose command line and image give none: the first of a fixed
 * list that exists in its root as an executable file (docs/engine.md has the list). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build.h"

static const struct {
  const char *path;
  const char *const args[4];
} candidates[] = {
  { "/init", { NULL } },
  { "/usr/sbin/nginx", { "-g", "daemon off; master_process off;", NULL } },
  { "/docker-entrypoint.sh", { NULL } },
  { "/usr/local/bin/python3", { NULL } },
  { "/usr/bin/python3", { NULL } },
  { "/bin/sh", { NULL } },
};

/* An executable regular file at path, looked up without leaving the root. */
static bool
root_has_exec (int rootfd, const char *path)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  struct stat st;
  int fd = (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
  bool ok;
  if (fd < 0)
    return false;
  ok = fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111);
  close (fd);
  return ok;
}

int
entrypoint_detect (const char *rootfs, char ***argv, cella_error_t *err)
{
  cleanup_close int rootfd = open (rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cella_error (err, errno, "root `%s`", rootfs);
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (root_has_exec (rootfd, candidates[i].path))
      {
        char **v = NULL;
        strv_push (&v, candidates[i].path);
        for (size_t j = 0; candidates[i].args[j]; j++)
          strv_push (&v, candidates[i].args[j]);
        *argv = v;
        return 0;
      }
  return cella_error (err, 0, "no command given, the image has none, and its root has none of /init, /usr/sbin/nginx, "
                              "/docker-entrypoint.sh, python3 or /bin/sh: give a COMMAND");
}
