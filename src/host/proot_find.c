/* Where the proot program is, and which version it is (src/host/proot_find.h). */
#define _GNU_SOURCE
#include "proot_find.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"
#include "../util/util.h"

/* Where proot is installed by hand on Android (adb push, Termux) and by a user without root. */
static const char *const fallback_dirs[] = { "/data/local/tmp", "/data/data/com.termux/files/usr/bin", NULL };

/* A path the user named: it must be an executable file, or why says what is wrong with it. */
static int
check_named (const char *what, const char *path, char **why)
{
  struct stat st;
  if (stat (path, &st) < 0)
    *why = xasprintf ("%s `%s`: %s", what, path, strerror (errno));
  else if (!S_ISREG (st.st_mode))
    *why = xasprintf ("%s `%s`: not a regular file", what, path);
  else if (access (path, X_OK) < 0)
    *why = xasprintf ("%s `%s`: not executable (%s)", what, path, strerror (errno));
  else
    return 0;
  return -1;
}

static char *
search (void)
{
  const char *home = getenv ("HOME");
  char *p = probe_find_program ("proot");
  for (size_t i = 0; p == NULL && fallback_dirs[i]; i++)
    {
      cleanup_free char *c = xasprintf ("%s/proot", fallback_dirs[i]);
      p = probe_find_program (c);
    }
  if (p == NULL && home && *home)
    {
      cleanup_free char *c = xasprintf ("%s/proot", home);
      p = probe_find_program (c);
    }
  return p;
}

int
proot_find (const char *override, char **path, char **version, char **why)
{
  const char *env = getenv ("CELLA_PROOT");
  cleanup_free char *found = NULL;
  *path = NULL;
  *why = NULL;
  if (version)
    *version = NULL;
  if (override)
    {
      if (check_named ("--proot-path", override, why) < 0)
        return -1;
      found = xstrdup (override);
    }
  else if (env && *env)
    {
      if (check_named ("$CELLA_PROOT", env, why) < 0)
        return -1;
      found = xstrdup (env);
    }
  else if ((found = search ()) == NULL)
    {
      *why = xstrdup ("proot is not installed: `apt-get install proot` (or give --proot-path)");
      return -1;
    }
  if (version)
    {
      struct probe_program pr = { .name = "proot", .version_arg = "--version", .path = xstrdup (found) };
      probe_program_versions (&pr, 1, 2000);
      *version = steal_pointer (&pr.version);
      probe_programs_free (&pr, 1);
    }
  *path = steal_pointer (&found);
  return 0;
}
