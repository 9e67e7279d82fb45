/* `cella cp` on a vm container: through the running guest (src/vm/copy.c). Into the VM the
 * guest applies docker's rules at the destination; out of it the guest's tar stream is extracted
 * into a private directory in the VM's work dir first, and copy.c's copy_out_of_root applies the
 * rules on the host from there (never following what the guest sent). A stopped VM's disk is
 * not read on the host: it is an ext4 image the guest wrote, parsed by nothing of ours. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "container.h"
#include "backend/backend.h"
#include "vm/vm.h"
#include "copy.h"

static bool
ends_with (const char *s, const char *tail)
{
  size_t a = strlen (s), b = strlen (tail);
  return a >= b && strcmp (s + a - b, tail) == 0;
}

/* path without trailing "/" and "/." (at least "/"); *contents when it ended in "/.",
 * *dir_syntax when in "/" or "/.". */
static char *
strip_tail (const char *path, bool *contents, bool *dir_syntax)
{
  char *s = xstrdup (path);
  *contents = ends_with (s, "/.");
  *dir_syntax = *contents || ends_with (s, "/");
  for (;;)
    {
      size_t n = strlen (s);
      if (n > 1 && s[n - 1] == '/')
        s[n - 1] = '\0';
      else if (n > 2 && ends_with (s, "/."))
        s[n - 2] = '\0';
      else
        break;
    }
  if (strcmp (s, "/.") == 0)
    s[1] = '\0';
  return s;
}

static int
copy_in (const char *state, const char *ctr_path, const char *host_path, cella_error_t *err)
{
  bool contents, dir_syntax;
  cleanup_free char *stripped = strip_tail (host_path, &contents, &dir_syntax);
  char real[PATH_MAX];
  if (realpath (stripped, real) == NULL)
    return cella_error (err, errno, "cp: `%s`", host_path);
  if (strcmp (real, "/") == 0)
    return cella_error (err, 0, "cp: copying the host's whole root `/` into a vm is not supported");
  cleanup_free char *dir = xstrdup (real), *base = xstrdup (real);
  cleanup_close int dfd = open (dirname (dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return cella_error (err, errno, "cp: `%s`", dir);
  return vm_copy_in (state, dfd, basename (base), contents, ctr_path, err);
}

static int
copy_out (const char *state, const char *ctr_path, const char *host_path, cella_error_t *err)
{
  bool contents, dir_syntax;
  cleanup_free char *stripped = strip_tail (ctr_path, &contents, &dir_syntax);
  cleanup_free char *tmp = xasprintf ("%s/cp-XXXXXX", state);
  cleanup_free char *dir = xstrdup (stripped), *basebuf = xstrdup (stripped), *src = NULL;
  const char *base = basename (basebuf);
  int rc;
  if (strcmp (stripped, "/") == 0)
    return cella_error (err, 0, "cp: copying a vm's whole root `/` is not supported: name a directory in it");
  if (strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    return cella_error (err, 0, "cp: `%s`: name the path without `.` or `..` at its end", ctr_path);
  if (mkdtemp (tmp) == NULL)
    return cella_error (err, errno, "cp: a directory for the copy in `%s`", state);
  {
    cleanup_close int tfd = open (tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct copy_opts o = { 0 };
    src = xasprintf ("/%s%s", base, contents ? "/." : dir_syntax ? "/" : "");
    rc = tfd < 0 ? cella_error (err, errno, "cp: `%s`", tmp)
         : vm_copy_out (state, dirname (dir), base, dir_syntax, tfd, err) < 0
             ? -1
             : copy_out_of_root (tfd, src, host_path, &o, err);
  }
  remove_tree (tmp);
  return rc;
}

int
ctr_copy_vm (const struct plan *p, const char *id, bool running, bool into, const char *ctr_path, const char *host_path,
             cella_error_t *err)
{
  if (!running)
    return cella_error (err, 0,
                        "cp: container %.12s is a stopped vm: `cella cp` reaches a vm's files only while it runs "
                        "(its disk is the guest's own ext4, not read on the host): start it with "
                        "`cella start %.12s`, then copy",
                        id, id);
  cleanup_free char *dir = ctr_dir (id), *state = backend_state_dir (backend_of (p), dir);
  return into ? copy_in (state, ctr_path, host_path, err) : copy_out (state, ctr_path, host_path, err);
}
