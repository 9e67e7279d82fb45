/* The initramfs the microVM boots with: a newc cpio (uncompressed, written
 * here: no cpio program) holding our guest init, its config, /dev/console, the
 * mount points, the kernel modules the guest kernel needs when they are not
 * built in, and optionally the container's whole tree (the root then lives in
 * RAM; the guest init copies it into a tmpfs). */
#define _GNU_SOURCE
#include "guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* ---- newc cpio writer
 * ------------------------------------------------------------------------ */

struct cpio {
  FILE *f;
  unsigned ino;
  unsigned long long off;
  const char *path; /* for messages */
};

static int
cpio_put (struct cpio *w, const void *p, size_t n, cella_error_t *err)
{
  if (n && fwrite (p, 1, n, w->f) != n)
    return cella_error (err, errno, "write initramfs %s", w->path);
  w->off += n;
  return 0;
}

static int
cpio_pad (struct cpio *w, cella_error_t *err)
{
  static const char zero[4];
  return cpio_put (w, zero, (4 - w->off % 4) % 4, err);
}

/* One entry's header and name; the caller writes `size` bytes of data and then
 * pads. */
static int
cpio_header (struct cpio *w, const char *name, mode_t mode, uid_t uid, gid_t gid, time_t mtime, unsigned long long size,
             dev_t rdev, cella_error_t *err)
{
  char hdr[128];
  unsigned namesize = (unsigned) strlen (name) + 1;
  if (size > 0xffffffffULL)
    return cella_error (err, EFBIG, "initramfs entry %s: larger than 4 GiB", name);
  if (strlen (name) >= 4096)
    return cella_error (err, ENAMETOOLONG, "initramfs entry %s", name);
  snprintf (hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ++w->ino, (unsigned) mode,
            (unsigned) uid, (unsigned) gid, 1u, (unsigned) mtime, (unsigned) size, 0u, 0u, major (rdev), minor (rdev),
            namesize, 0u);
  if (cpio_put (w, hdr, 110, err) < 0 || cpio_put (w, name, (size_t) namesize, err) < 0)
    return -1;
  return cpio_pad (w, err);
}

static int
cpio_add_data (struct cpio *w, const char *name, mode_t mode, const void *data, size_t size, cella_error_t *err)
{
  if (cpio_header (w, name, mode, 0, 0, time (NULL), size, 0, err) < 0 || cpio_put (w, data, size, err) < 0)
    return -1;
  return cpio_pad (w, err);
}

static int
cpio_add_dir (struct cpio *w, const char *name, cella_error_t *err)
{
  return cpio_add_data (w, name, S_IFDIR | 0755, NULL, 0, err);
}

/* A file from the host, its data streamed; mode given by the caller (the host's
 * may be odd). */
static int
cpio_add_fd (struct cpio *w, const char *name, int fd, const struct stat *st, mode_t mode, uid_t uid, gid_t gid,
             cella_error_t *err)
{
  char buf[1 << 16];
  unsigned long long left = (unsigned long long) st->st_size;
  if (cpio_header (w, name, mode, uid, gid, st->st_mtime, left, 0, err) < 0)
    return -1;
  while (left > 0)
    {
      ssize_t n = read (fd, buf, left < sizeof buf ? left : sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return cella_error (err, n < 0 ? errno : 0, "read %s for the initramfs%s", name, n == 0 ? ": file shrank" : "");
      if (cpio_put (w, buf, (size_t) n, err) < 0)
        return -1;
      left -= (unsigned long long) n;
    }
  return cpio_pad (w, err);
}

static int
cpio_add_file (struct cpio *w, const char *name, const char *src, mode_t mode, cella_error_t *err)
{
  struct stat st;
  int fd = open (src, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "open %s", src);
  int r = fstat (fd, &st) < 0     ? cella_error (err, errno, "stat %s", src)
          : !S_ISREG (st.st_mode) ? cella_error (err, 0, "%s: not a regular file", src)
                                  : cpio_add_fd (w, name, fd, &st, S_IFREG | mode, 0, 0, err);
  close (fd);
  return r;
}

static int
cpio_trailer (struct cpio *w, cella_error_t *err)
{
  if (cpio_header (w, "TRAILER!!!", 0, 0, 0, 0, 0, 0, err) < 0)
    return -1;
  /* The kernel reads the archive in 512-byte blocks' worth happily either way;
   * pad like cpio does. */
  static const char zero[512];
  return cpio_put (w, zero, (512 - w->off % 512) % 512, err);
}

/* ---- the container's tree (optional)
 * --------------------------------------------------------- */

static int
add_tree (struct cpio *w, int dir, const char *prefix, int depth, cella_error_t *err)
{
  DIR *d;
  struct dirent *de;
  int r = 0;
  int dup_fd = dup (dir);
  if (dup_fd < 0 || (d = fdopendir (dup_fd)) == NULL)
    {
      if (dup_fd >= 0)
        close (dup_fd);
      return cella_error (err, errno, "read directory %s", *prefix ? prefix : "/");
    }
  while (r == 0 && (de = readdir (d)) != NULL)
    {
      struct stat st;
      char name[4096], target[4096];
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      /* Our own entries win over the tree's at the top (the guest init also skips
       * them). */
      if (depth == 0 && (strcmp (de->d_name, "init") == 0 || strcmp (de->d_name, "cella") == 0))
        continue;
      if ((size_t) snprintf (name, sizeof name, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) >= sizeof name)
        {
          r = cella_error (err, ENAMETOOLONG, "initramfs tree: %s/%s", prefix, de->d_name);
          break;
        }
      if (fstatat (dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          r = cella_error (err, errno, "stat %s", name);
          break;
        }
      /* Entries are owned by root, like the ext4 root disk's (root_owner=0:0). */
      mode_t mode = st.st_mode & (S_IFMT | 07777);
      if (S_ISDIR (st.st_mode))
        {
          int sub = openat (dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            r = cella_error (err, errno, "open directory %s", name);
          else
            {
              r = cpio_header (w, name, mode, 0, 0, st.st_mtime, 0, 0, err);
              if (r == 0)
                r = add_tree (w, sub, name, depth + 1, err);
              close (sub);
            }
        }
      else if (S_ISREG (st.st_mode))
        {
          int fd = openat (dir, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          r = fd < 0 ? cella_error (err, errno, "open %s", name) : cpio_add_fd (w, name, fd, &st, mode, 0, 0, err);
          if (fd >= 0)
            close (fd);
        }
      else if (S_ISLNK (st.st_mode))
        {
          ssize_t n = readlinkat (dir, de->d_name, target, sizeof target);
          if (n < 0 || (size_t) n >= sizeof target)
            r = cella_error (err, n < 0 ? errno : ENAMETOOLONG, "readlink %s", name);
          else if ((r = cpio_header (w, name, mode, 0, 0, st.st_mtime, (unsigned long long) n, 0, err)) == 0
                   && (r = cpio_put (w, target, (size_t) n, err)) == 0)
            r = cpio_pad (w, err);
        }
      else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode) || S_ISFIFO (st.st_mode))
        r = cpio_header (w, name, mode, 0, 0, st.st_mtime, 0, st.st_rdev, err);
      /* sockets: meaningless in a fresh VM, left out */
    }
  closedir (d);
  return r;
}

/* ---- kernel modules
 * -------------------------------------------------------------------------- */

static const struct {
  const char *name;
  bool required;
} wanted_modules[] = {
  { "virtio_mmio", true },
  { "virtio_blk", true },
  { "virtio_console", true },
  { "crc32c_generic", false }, /* ext4 and jbd2 need a crc32c ("softdep pre: crypto-crc32c") */
  { "ext4", true },
  { "9pnet_virtio", true },
  { "9p", true },
  { "vmw_vsock_virtio_transport", false },
  /* the NIC (-device virtio-net-device); needs net_failover, failover */
  { "virtio_net", false },
};

/* "kernel/fs/ext4/ext4.ko" -> "ext4" (dashes as underscores); the suffix goes
 * to *ext. */
static void
module_name (const char *path, char *out, size_t outlen, const char **ext)
{
  const char *base = strrchr (path, '/');
  base = base ? base + 1 : path;
  const char *dot = strstr (base, ".ko");
  size_t n = dot ? (size_t) (dot - base) : strlen (base);
  if (n >= outlen)
    n = outlen - 1;
  for (size_t i = 0; i < n; i++)
    out[i] = base[i] == '-' ? '_' : base[i];
  out[n] = '\0';
  if (ext)
    *ext = dot ? dot : "";
}

struct moddep {
  char *text;   /* modules.dep, split in place */
  char **lines; /* "path: deps" per line */
  size_t n;
};

static const char *
moddep_find (struct moddep *md, const char *name, const char **deps)
{
  char got[256];
  for (size_t i = 0; i < md->n; i++)
    {
      char *colon = strchr (md->lines[i], ':');
      if (colon == NULL)
        continue;
      *colon = '\0';
      module_name (md->lines[i], got, sizeof got, NULL);
      *colon = ':';
      if (strcmp (got, name) == 0)
        {
          *deps = colon + 1;
          return md->lines[i];
        }
    }
  return NULL;
}

static bool
in_builtin (const char *builtin, const char *name)
{
  char got[256];
  for (const char *p = builtin; p && *p;)
    {
      const char *nl = strchr (p, '\n');
      char line[512];
      size_t n = nl ? (size_t) (nl - p) : strlen (p);
      if (n < sizeof line)
        {
          memcpy (line, p, n);
          line[n] = '\0';
          module_name (line, got, sizeof got, NULL);
          if (strcmp (got, name) == 0)
            return true;
        }
      p = nl ? nl + 1 : p + n;
    }
  return false;
}

static bool
strv_has (char **v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

/* Append `name` and its dependencies (first) to *order as absolute paths. */
static int
resolve_module (const char *moddir, struct moddep *md, const char *name, char ***order, int depth, cella_error_t *err)
{
  const char *deps, *ext;
  char self[512], dep_name[256], path[4096];
  if (depth > 32)
    return cella_error (err, 0, "%s/modules.dep: dependency loop at `%s`", moddir, name);
  const char *line = moddep_find (md, name, &deps);
  if (line == NULL)
    return cella_error (err, 0, "%s/modules.dep: no module `%s`", moddir, name);
  size_t n = strcspn (line, ":");
  if (n >= sizeof self)
    return cella_error (err, ENAMETOOLONG, "%s/modules.dep: %s", moddir, name);
  memcpy (self, line, n);
  self[n] = '\0';
  module_name (self, dep_name, sizeof dep_name, &ext);
  if (strcmp (ext, ".ko") != 0)
    return cella_error (err, 0,
                        "kernel module %s is compressed (%s): not supported; "
                        "use a kernel with uncompressed modules "
                        "or with virtio, ext4 and 9p built in",
                        self, ext);
  snprintf (path, sizeof path, "%s%s%s", self[0] == '/' ? "" : moddir, self[0] == '/' ? "" : "/", self);
  if (strv_has (*order, path))
    return 0;
  /* modules.dep lists the deepest dependency last: load from the end. */
  char *list = strdup (deps);
  char *tok[128];
  size_t nt = 0;
  for (char *save = NULL, *t = strtok_r (list, " \t", &save); t && nt < 128; t = strtok_r (NULL, " \t", &save))
    tok[nt++] = t;
  for (size_t i = nt; i-- > 0;)
    {
      module_name (tok[i], dep_name, sizeof dep_name, NULL);
      if (resolve_module (moddir, md, dep_name, order, depth + 1, err) < 0)
        {
          free (list);
          return -1;
        }
    }
  free (list);
  if (!strv_has (*order, path))
    strv_push (order, path);
  return 0;
}

int
initramfs_modules (const char *moddir, char ***out, cella_error_t *err)
{
  cleanup_free char *dep_path = xasprintf ("%s/modules.dep", moddir);
  cleanup_free char *builtin_path = xasprintf ("%s/modules.builtin", moddir);
  cleanup_free char *builtin = NULL;
  struct moddep md = { 0 };
  cella_error_t ignored = NULL;
  char **order = NULL;
  struct stat st;

  *out = NULL;
  if (stat (moddir, &st) < 0 || !S_ISDIR (st.st_mode))
    return 0; /* no modules directory: a kernel with what it needs built in */
  if (read_file (dep_path, &md.text, NULL, err) < 0)
    return -1;
  if (read_file (builtin_path, &builtin, NULL, &ignored) < 0)
    cella_error_free (&ignored);
  for (char *save = NULL, *l = strtok_r (md.text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      md.lines = xrealloc (md.lines, (md.n + 1) * sizeof *md.lines);
      md.lines[md.n++] = l;
    }
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof wanted_modules / sizeof *wanted_modules; i++)
    {
      const char *deps;
      const char *name = wanted_modules[i].name;
      if (in_builtin (builtin, name))
        continue;
      if (moddep_find (&md, name, &deps) == NULL)
        {
          if (wanted_modules[i].required)
            r = cella_error (err, 0, "kernel modules %s: `%s` is neither built in nor in modules.dep", moddir, name);
          continue;
        }
      r = resolve_module (moddir, &md, name, &order, 0, err);
    }
  free (md.lines);
  free (md.text);
  if (r < 0)
    {
      strv_free (order);
      return -1;
    }
  *out = order;
  return 0;
}

/* ---- the archive
 * -----------------------------------------------------------------------------
 */

static int
write_archive (struct cpio *w, const char *init_path, const char *kernel_release, const char *config, size_t config_len,
               const char *tree, cella_error_t *err)
{
  static const char *const dirs[] = { "dev", "proc", "sys", "newroot", "cella", "cella/modules" };
  cleanup_strv char **mods = NULL;
  char *order = NULL;
  size_t order_len = 0;

  if (kernel_release)
    {
      if (strchr (kernel_release, '/') || kernel_release[0] == '.' || kernel_release[0] == '\0')
        return cella_error (err, 0, "kernel release `%s`: not a release name", kernel_release);
      cleanup_free char *moddir = xasprintf ("/lib/modules/%s", kernel_release);
      if (initramfs_modules (moddir, &mods, err) < 0)
        return -1;
    }
  if (tree)
    {
      int fd = open (tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0)
        return cella_error (err, errno, "open root tree %s", tree);
      struct stat st;
      /* "." carries the root directory's own mode (the kernel chmods an existing
       * directory). */
      int r = fstat (fd, &st) < 0 ? cella_error (err, errno, "stat %s", tree)
                                  : cpio_header (w, ".", S_IFDIR | (st.st_mode & 07777), 0, 0, st.st_mtime, 0, 0, err);
      if (r == 0)
        r = add_tree (w, fd, "", 0, err);
      close (fd);
      if (r < 0)
        return -1;
    }
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    if (cpio_add_dir (w, dirs[i], err) < 0)
      return -1;
  /* The kernel opens /dev/console for init before anything is mounted. */
  if (cpio_header (w, "dev/console", S_IFCHR | 0600, 0, 0, time (NULL), 0, makedev (5, 1), err) < 0)
    return -1;
  if (cpio_add_file (w, "init", init_path, 0755, err) < 0)
    return -1;
  if (cpio_add_data (w, "cella/config", S_IFREG | 0600, config, config_len, err) < 0)
    return -1;
  for (size_t i = 0; mods && mods[i]; i++)
    {
      const char *base = strrchr (mods[i], '/') + 1;
      cleanup_free char *name = xasprintf ("cella/modules/%s", base);
      cleanup_free char *line = xasprintf ("/%s\n", name);
      if (cpio_add_file (w, name, mods[i], 0644, err) < 0)
        return -1;
      order = xrealloc (order, order_len + strlen (line) + 1);
      memcpy (order + order_len, line, strlen (line) + 1);
      order_len += strlen (line);
    }
  int r = cpio_add_data (w, "cella/modules.order", S_IFREG | 0644, order ? order : "", order_len, err);
  free (order);
  if (r < 0)
    return -1;
  return cpio_trailer (w, err);
}

int
initramfs_build_with_tree (const char *out, const char *init_path, const char *kernel_release, const char *config,
                           size_t config_len, const char *tree, cella_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp-XXXXXX", out);
  int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "create %s", tmp);
  struct cpio w = { .f = fdopen (fd, "w"), .path = out };
  if (w.f == NULL)
    {
      close (fd);
      unlink (tmp);
      return cella_error (err, errno, "fdopen %s", tmp);
    }
  int r = write_archive (&w, init_path, kernel_release, config, config_len, tree, err);
  if (r == 0 && (fflush (w.f) != 0 || fsync (fileno (w.f)) < 0))
    r = cella_error (err, errno, "write %s", tmp);
  if (fclose (w.f) != 0 && r == 0)
    r = cella_error (err, errno, "close %s", tmp);
  if (r == 0 && rename (tmp, out) < 0)
    r = cella_error (err, errno, "rename %s to %s", tmp, out);
  if (r < 0)
    unlink (tmp);
  return r;
}

int
initramfs_build (const char *out, const char *init_path, const char *kernel_release, const char *config,
                 size_t config_len, cella_error_t *err)
{
  return initramfs_build_with_tree (out, init_path, kernel_release, config, config_len, NULL, err);
}
