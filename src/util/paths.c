#define _GNU_SOURCE
#include "util/paths.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Only absolute values count: the XDG base-directory spec says a relative one is invalid
 * and must be ignored, and a relative root would move with the caller's cwd. */
static const char *
getenv_abs (const char *name)
{
  const char *v = getenv (name);
  return v != NULL && v[0] == '/' ? v : NULL;
}

static char *
home_dir (void)
{
  const char *home = getenv_abs ("HOME");
  char *dir;
  if (home != NULL)
    return xstrdup (home);
  dir = host_passwd_field (geteuid (), 5);
  if (dir != NULL && dir[0] == '/')
    return dir;
  free (dir);
  return NULL;
}

static char *
compute_data_root (void)
{
  const char *v = getenv_abs ("CELLA_ROOT");
  cleanup_free char *home = NULL;
  if (v != NULL)
    return xstrdup (v);
  /* root, unless it is the fake root of a user namespace that cannot write the system's
   * store (`unshare -r`): that one is treated like the user it really is */
  if (geteuid () == 0 && (access ("/var/lib/cella", W_OK) == 0 || (errno == ENOENT && access ("/var/lib", W_OK) == 0)))
    return xstrdup ("/var/lib/cella");
  v = getenv_abs ("XDG_DATA_HOME");
  if (v != NULL)
    return xasprintf ("%s/cella", v);
  home = home_dir ();
  if (home != NULL)
    return xasprintf ("%s/.local/share/cella", home);
  /* No home at all (a bare service account): still somewhere private to the uid. */
  return xasprintf ("/var/tmp/cella-data-%u", (unsigned) geteuid ());
}

static char *
compute_run_root (void)
{
  const char *v = getenv_abs ("CELLA_RUN_ROOT");
  if (v != NULL)
    return xstrdup (v);
  /* the fake root of `unshare -r` cannot write /run: like the data root, it is the user it is */
  if (geteuid () == 0 && (access ("/run/cella", W_OK) == 0 || (errno == ENOENT && access ("/run", W_OK) == 0)))
    return xstrdup ("/run/cella");
  v = getenv_abs ("XDG_RUNTIME_DIR");
  if (v != NULL)
    return xasprintf ("%s/cella", v);
  return xasprintf ("/tmp/cella-run-%u", (unsigned) geteuid ());
}

const char *
paths_data_root (void)
{
  static char *cached;
  if (cached == NULL)
    cached = compute_data_root ();
  return cached;
}

const char *
paths_run_root (void)
{
  static char *cached;
  if (cached == NULL)
    cached = compute_run_root ();
  return cached;
}

int
paths_check (cella_error_t *err)
{
  if (state_dir_ensure (paths_data_root (), err) < 0)
    return cella_error_wrap (err, "data root");
  if (state_dir_ensure (paths_run_root (), err) < 0)
    return cella_error_wrap (err, "run root");
  return 0;
}

static int
random_bytes (unsigned char *buf, size_t len)
{
  size_t n = 0;
  while (n < len)
    {
      ssize_t r = getrandom (buf + n, len - n, 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      n += r;
    }
  return 0;
}

char *
paths_new_id (void)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[32];
  char *id;
  if (random_bytes (raw, sizeof raw) < 0)
    return NULL;
  id = xmalloc (2 * sizeof raw + 1);
  for (size_t i = 0; i < sizeof raw; i++)
    {
      id[2 * i] = hex[raw[i] >> 4];
      id[2 * i + 1] = hex[raw[i] & 0xf];
    }
  id[2 * sizeof raw] = '\0';
  return id;
}
