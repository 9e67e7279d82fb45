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
root_has_exec (const struct root_view *root, const char *path)
{
  struct stat st;
  int fd = root_view_openat (root, path, O_PATH);
  bool ok;
  if (fd < 0)
    return false;
  ok = fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111);
  close (fd);
  return ok;
}

int
entrypoint_detect (const struct root_view *root, char ***argv, cella_error_t *err)
{
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (root_has_exec (root, candidates[i].path))
      {
        char **v = NULL;
        strv_push (&v, candidates[i].path);
        for (size_t j = 0; candidates[i].args[j]; j++)
          strv_push (&v, candidates[i].args[j]);
        *argv = v;
        return 0;
      }
  return cella_error (err, 0,
                      "no command given, the image has none, and its root has none of /init, /usr/sbin/nginx, "
                      "/docker-entrypoint.sh, python3 or /bin/sh: give a COMMAND");
}
