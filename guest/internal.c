/* The commands behind `cella top` and `cella cp` on a running VM (src/vm/guest.h,
 * GUEST_INTERNAL): run in an exec session's child, in the container's root, as
 * root. The container's processes are untrusted: tar.c never writes through a
 * symlink, and the chroot keeps every path inside the container. */
#define _GNU_SOURCE
#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/tar.h"

static void __attribute__ ((noreturn)) internal_fail (cella_error_t *err)
{
  fprintf (stderr, "cella: %s%s%s\n", (*err)->msg, (*err)->errno_ > 0 ? ": " : "",
           (*err)->errno_ > 0 ? strerror ((*err)->errno_) : "");
  _exit (1);
}

static int
ps (void)
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  pid_t self = getpid ();
  if (d == NULL)
    {
      fprintf (stderr, "cella: top: /proc in the vm: %s\n", strerror (errno));
      return 1;
    }
  printf ("%-8s %-8s %s\n", "PID", "UID", "CMD");
  while ((e = readdir (d)) != NULL)
    {
      char path[300], cmd[4096];
      struct stat sb;
      ssize_t len;
      char *end;
      long pid = strtol (e->d_name, &end, 10);
      if (*end || pid <= 1 || pid == self)
        continue;
      snprintf (path, sizeof path, "/proc/%ld/cmdline", pid);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      len = read (fd, cmd, sizeof cmd - 1);
      close (fd);
      if (len <= 0)
        continue; /* a kernel thread (or gone) */
      cmd[len] = '\0';
      for (ssize_t i = 0; i + 1 < len; i++)
        if (cmd[i] == '\0')
          cmd[i] = ' ';
      snprintf (path, sizeof path, "/proc/%ld", pid);
      if (stat (path, &sb) < 0)
        continue;
      printf ("%-8ld %-8u %s\n", pid, (unsigned) sb.st_uid, cmd);
    }
  closedir (d);
  return fflush (stdout) == 0 ? 0 : 1;
}

static int
tar_out (const char *dir, const char *name, bool follow)
{
  cella_error_t err = NULL;
  struct stat st;
  const char *sep = strcmp (dir, "/") == 0 ? "" : "/";
  int dfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fstatat (dfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
    cella_error (&err, errno, "cp: `%s%s%s`", dir, sep, name); /* named as the caller did */
  else if (tar_write_tree (1, dfd, name, name, follow, false, false, &err) == 0)
    return 0;
  internal_fail (&err);
}

struct tar_in {
  const char *dst;
  bool contents;
  char *parent, *base;
  int fd;
};

/* docker's cp rules (src/engine/copy.h), decided on the source's first entry. */
static int
tar_in_first (void *ctx, const char *top, bool is_dir, struct tar_dest *d, cella_error_t *err)
{
  struct tar_in *t = ctx;
  struct stat st;
  size_t len = strlen (t->dst);
  if (t->contents && !is_dir)
    return cella_error (err, ENOTDIR, "cp: `%s/.`: the source is not a directory", top);
  int sr = stat (t->dst, &st);
  if (sr < 0 && errno != ENOENT)
    return cella_error (err, errno, "cp: `%s`", t->dst);
  bool exists = sr == 0;
  if (exists && S_ISDIR (st.st_mode))
    {
      t->fd = open (t->dst, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (t->fd < 0)
        return cella_error (err, errno, "cp: `%s`", t->dst);
      d->dirfd = t->fd;
      d->as = t->contents ? NULL : top;
      return 0;
    }
  if (exists && is_dir)
    return cella_error (err, ENOTDIR, "cp: cannot copy a directory onto the file `%s`", t->dst);
  if (!exists && !is_dir && len > 1 && t->dst[len - 1] == '/')
    return cella_error (err, ENOENT, "cp: `%s`: no such directory", t->dst);
  t->parent = strdup (t->dst);
  t->base = strdup (t->dst);
  if (t->parent == NULL || t->base == NULL)
    abort ();
  while (strlen (t->base) > 1 && t->base[strlen (t->base) - 1] == '/')
    t->base[strlen (t->base) - 1] = '\0';
  const char *dirn = dirname (t->parent), *basen = basename (t->base);
  t->fd = open (dirn, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (t->fd < 0)
    return cella_error (err, errno, "cp: `%s`: its directory `%s`", t->dst, dirn);
  d->dirfd = t->fd;
  d->as = basen;
  return 0;
}

static int
tar_in (const char *dst, const char *mode)
{
  cella_error_t err = NULL;
  struct tar_in t = { .dst = dst, .contents = strcmp (mode, "contents") == 0, .fd = -1 };
  struct tar_read_opts o = { .chown = true, .first = tar_in_first, .ctx = &t };
  if (tar_read (0, &o, &err) < 0)
    internal_fail (&err);
  return 0;
}

void
guest_internal (char **argv)
{
  size_t n = 0;
  int code = 2;
  if (argv[0] == NULL || strcmp (argv[0], GUEST_INTERNAL) != 0 || argv[1] == NULL)
    return;
  while (argv[n])
    n++;
  umask (0);
  __fpurge (stdout); /* what init's stdio held at the fork is not this command's output */
  if (strcmp (argv[1], "__ps") == 0 && n == 2)
    code = ps ();
  else if (strcmp (argv[1], "__tar-out") == 0 && n == 5)
    code = tar_out (argv[2], argv[3], strcmp (argv[4], "1") == 0);
  else if (strcmp (argv[1], "__tar-in") == 0 && n == 4)
    code = tar_in (argv[2], argv[3]);
  else
    return; /* not ours: exec'd like any command */
  fflush (NULL);
  _exit (code);
}
