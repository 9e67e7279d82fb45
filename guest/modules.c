/* Load the kernel modules listed in /cella/modules.order (one absolute path a
 * line, dependencies first; written by the host's initramfs_build). No modprobe
 * here, so the module parameters the kernel command line gives as
 * `module.param=value` are passed by us, as modprobe would. */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *
slurp_small (const char *path, size_t max)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  char *buf = calloc (1, max + 1);
  size_t len = 0;
  ssize_t n;
  while (buf && len < max && (n = read (fd, buf + len, max - len)) > 0)
    len += (size_t) n;
  close (fd);
  return buf;
}

/* Module names treat '-' and '_' alike. */
static bool
modname_eq (const char *a, const char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
      if (x != y)
        return false;
    }
  return true;
}

/* "p1=v1 p2=v2" from the tokens `<name>.p=v` of the kernel command line (quotes
 * not handled). */
static char *
cmdline_params (const char *cmdline, const char *name)
{
  size_t nlen = strlen (name), cap = 1, len = 0;
  char *out = calloc (1, 1);
  const char *p = cmdline;
  while (out && p && *p)
    {
      while (*p == ' ' || *p == '\n')
        p++;
      const char *e = p + strcspn (p, " \n");
      if ((size_t) (e - p) > nlen + 1 && p[nlen] == '.' && modname_eq (p, name, nlen))
        {
          size_t tl = (size_t) (e - p) - nlen - 1;
          char *grown = realloc (out, cap + tl + 1);
          if (grown == NULL)
            break;
          out = grown;
          cap += tl + 1;
          if (len)
            out[len++] = ' ';
          memcpy (out + len, p + nlen + 1, tl);
          len += tl;
          out[len] = '\0';
        }
      p = e;
    }
  return out;
}

static void
load_one (const char *path, const char *cmdline)
{
  char name[128];
  const char *base = strrchr (path, '/');
  base = base ? base + 1 : path;
  size_t n = strcspn (base, ".");
  if (n >= sizeof name)
    n = sizeof name - 1;
  memcpy (name, base, n);
  name[n] = '\0';

  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      say ("kernel module %s: %s", path, strerror (errno));
      return;
    }
  char *params = cmdline_params (cmdline, name);
  /* A failing module is reported but not fatal: the step that needs it fails
   * with its own message (mount, device wait), and a missing optional one
   * (vsock) harms nothing. */
  if (syscall (SYS_finit_module, fd, params ? params : "", 0) < 0 && errno != EEXIST)
    say ("load kernel module %s: %s", name, strerror (errno));
  free (params);
  close (fd);
}

void
modules_load (const char *order_path)
{
  char *list = slurp_small (order_path, 1 << 16);
  char *cmdline = slurp_small ("/proc/cmdline", 4096);
  char *save = NULL;
  if (list == NULL)
    return; /* no modules: the kernel has what we need built in */
  for (char *line = strtok_r (list, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (line[0] == '/')
      load_one (line, cmdline ? cmdline : "");
  free (list);
  free (cmdline);
}
