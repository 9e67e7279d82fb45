/* The embedded "busybox" image.
 *
 * Layout: <data root>/images/busybox/{rootfs/,manifest}.  The tree is built in
 * images/.busybox.tmp.<pid>, made durable, and renamed into place, so a crash leaves
 * either no image or a complete one.  `manifest` is written last and carries the
 * source binary's mtime as its own mtime: checking freshness is then two stat(2) calls,
 * which matters because every `cella run busybox` goes through here. */
#define _GNU_SOURCE
#include "image/default_image.h"

#include "util/paths.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE_NAME "busybox"
#define IMAGE_DIR "busybox"
#define TMP_PREFIX ".busybox.tmp."
#define OLD_PREFIX ".busybox.old."
#define LOCK_NAME ".busybox.lock"

/* Unprivileged builds own everything themselves; the user namespace maps it to root. */
#define CELLA_UID 1000
#define CELLA_GID 1000

static const char *const busybox_candidates[] = { "/bin/busybox", "/usr/bin/busybox" };

static const struct {
  const char *path;
  mode_t mode;
} rootfs_dirs[] = {
  { "bin", 0755 }, { "sbin", 0755 },     { "usr", 0755 },  { "usr/bin", 0755 },    { "usr/sbin", 0755 },
  { "etc", 0755 }, { "root", 0700 },     { "home", 0755 }, { "home/cella", 0755 }, { "tmp", 01777 },
  { "var", 0755 }, { "var/tmp", 01777 }, { "proc", 0755 }, { "sys", 0755 },        { "dev", 0755 },
  { "run", 0755 }, { "mnt", 0755 },      { "opt", 0755 },  { "srv", 0755 },
};

static const struct {
  const char *path;
  const char *content;
} rootfs_files[] = {
  { "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                  "cella:x:1000:1000:cella:/home/cella:/bin/sh\n" },
  { "etc/group", "root:x:0:\n"
                 "daemon:x:1:\n"
                 "bin:x:2:\n"
                 "sys:x:3:\n"
                 "adm:x:4:\n"
                 "tty:x:5:\n"
                 "users:x:100:\n"
                 "nogroup:x:65534:\n"
                 "cella:x:1000:\n" },
  { "etc/hosts", "127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n" },
  { "etc/nsswitch.conf", "passwd: files\n"
                         "group: files\n"
                         "hosts: files dns\n" },
  { "etc/hostname", "localhost\n" },
  /* Empty: the engine bind-mounts or writes the real one per container. */
  { "etc/resolv.conf", "" },
};

static bool
is_embedded_name (const char *name)
{
  return strcmp (name, IMAGE_NAME) == 0 || strcmp (name, IMAGE_NAME ":latest") == 0;
}

/* Hot path: one stat(2) per candidate tried. */
static int
find_busybox (const char **path_out, struct stat *st, cella_error_t *err)
{
  const char *env = getenv ("CELLA_BUSYBOX");
  if (env != NULL && env[0] != '\0')
    {
      if (stat (env, st) < 0)
        return cella_error (err, errno, "image \"" IMAGE_NAME "\": CELLA_BUSYBOX `%s`", env);
      *path_out = env;
      return 0;
    }
  for (size_t i = 0; i < sizeof busybox_candidates / sizeof busybox_candidates[0]; i++)
    if (stat (busybox_candidates[i], st) == 0 && S_ISREG (st->st_mode))
      {
        *path_out = busybox_candidates[i];
        return 0;
      }
  return cella_error (err, 0,
                      "image \"" IMAGE_NAME "\": busybox-static is not installed: "
                      "run scripts/deps.sh or apt-get install busybox-static");
}

static int
timespec_cmp (const struct timespec *a, const struct timespec *b)
{
  if (a->tv_sec != b->tv_sec)
    return a->tv_sec < b->tv_sec ? -1 : 1;
  if (a->tv_nsec != b->tv_nsec)
    return a->tv_nsec < b->tv_nsec ? -1 : 1;
  return 0;
}

/* The manifest's mtime is set to the source's mtime when the image is built.  A source
 * replaced since then (package upgrade, cp, chmod) also has a ctime newer than the
 * manifest's, which catches a replacement that happens to keep the old mtime. */
static bool
manifest_matches (const struct stat *manifest, const struct stat *src)
{
  return S_ISREG (manifest->st_mode) && timespec_cmp (&manifest->st_mtim, &src->st_mtim) == 0
         && timespec_cmp (&src->st_ctim, &manifest->st_ctim) <= 0;
}

static bool
image_fresh_at (int imagesfd, const struct stat *src)
{
  struct stat st;
  return fstatat (imagesfd, IMAGE_DIR "/manifest", &st, 0) == 0 && manifest_matches (&st, src);
}

/* Remove a tree without following symlinks.  Best effort: it is only used on trees we
 * made, and what cannot be removed (a mount point, say) is left behind. */
static int
rm_rf_at (int parent, const char *name)
{
  struct stat st;
  struct dirent *de;
  DIR *d;
  int fd;
  if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (parent, name, 0);
  fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return -1;
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      rm_rf_at (dirfd (d), de->d_name);
  closedir (d);
  return unlinkat (parent, name, AT_REMOVEDIR);
}

/* Leftovers of builds that crashed.  Only called with the build lock held, when no other
 * build can be running, so every such entry is garbage. */
static void
sweep_leftovers (int imagesfd)
{
  int fd = openat (imagesfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct dirent *de;
  DIR *d;
  if (fd < 0)
    return;
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return;
    }
  while ((de = readdir (d)) != NULL)
    if (has_prefix (de->d_name, TMP_PREFIX) || has_prefix (de->d_name, OLD_PREFIX))
      rm_rf_at (imagesfd, de->d_name);
  closedir (d);
}

static int
pread_full (int fd, void *buf, size_t len, off_t off)
{
  ssize_t r;
  do
    r = pread (fd, buf, len, off);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -1;
  if ((size_t) r != len)
    {
      errno = ENOEXEC;
      return -1;
    }
  return 0;
}

/* A statically linked binary has no PT_INTERP: it runs in a rootfs that has no ld.so.
 * p_type is the first 32-bit field of a program header in both ELF classes. */
static int
check_static_elf (int fd, const char *path, cella_error_t *err)
{
  unsigned char ident[EI_NIDENT];
  uint64_t phoff;
  unsigned phentsize, phnum;
  if (pread_full (fd, ident, sizeof ident, 0) < 0 || memcmp (ident, ELFMAG, SELFMAG) != 0)
    return cella_error (err, 0, "image \"" IMAGE_NAME "\": `%s` is not an ELF executable", path);
  if (ident[EI_CLASS] == ELFCLASS64)
    {
      Elf64_Ehdr eh;
      if (pread_full (fd, &eh, sizeof eh, 0) < 0)
        return cella_error (err, errno, "image \"" IMAGE_NAME "\": read `%s`", path);
      phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    }
  else if (ident[EI_CLASS] == ELFCLASS32)
    {
      Elf32_Ehdr eh;
      if (pread_full (fd, &eh, sizeof eh, 0) < 0)
        return cella_error (err, errno, "image \"" IMAGE_NAME "\": read `%s`", path);
      phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    }
  else
    return cella_error (err, 0, "image \"" IMAGE_NAME "\": `%s`: unknown ELF class", path);

  if (phentsize < sizeof (uint32_t) || phnum == PN_XNUM)
    return cella_error (err, 0, "image \"" IMAGE_NAME "\": `%s`: unsupported ELF program headers", path);
  for (unsigned i = 0; i < phnum; i++)
    {
      uint32_t type;
      if (pread_full (fd, &type, sizeof type, (off_t) (phoff + (uint64_t) i * phentsize)) < 0)
        return cella_error (err, errno, "image \"" IMAGE_NAME "\": read `%s`", path);
      if (type == PT_INTERP)
        return cella_error (err, 0,
                            "image \"" IMAGE_NAME "\": `%s` is dynamically linked: "
                            "apt-get install busybox-static",
                            path);
    }
  return 0;
}

/* Run `busybox <arg>` from the already-open source (so we run what we copy) and capture
 * its stdout.  No shell: argv goes straight to exec. */
static int
run_busybox (int exec_fd, const char *path, const char *arg, char **out, cella_error_t *err)
{
  char *argv[] = { (char *) "busybox", (char *) arg, NULL };
  int p[2], status, r;
  pid_t pid;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    {
      int e = errno;
      close (p[0]);
      close (p[1]);
      return cella_error (err, e, "fork");
    }
  if (pid == 0)
    {
      int nul = open ("/dev/null", O_RDONLY);
      if (nul > 0)
        dup2 (nul, 0);
      /* dup2 onto itself would keep O_CLOEXEC. */
      if (p[1] == 1 ? fcntl (1, F_SETFD, 0) < 0 : dup2 (p[1], 1) < 0)
        _exit (127);
      fexecve (exec_fd, argv, environ);
      execv (path, argv);
      _exit (127);
    }
  close (p[1]);
  r = read_all_fd (p[0], out, NULL, err);
  close (p[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "waitpid");
  if (r < 0)
    return cella_error_wrap (err, "`%s %s`", path, arg);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      free (*out);
      *out = NULL;
      return cella_error (err, 0, "`%s %s` failed (wait status %d)", path, arg, status);
    }
  return 0;
}

static int
copy_fd (int src, int dst, off_t size)
{
  off_t done = 0;
  bool use_sendfile = false;
  while (done < size)
    {
      ssize_t n;
      if (!use_sendfile)
        {
          n = copy_file_range (src, NULL, dst, NULL, size - done, 0);
          /* Cross-filesystem on old kernels, or a filesystem without support. */
          if (n < 0 && done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
            {
              use_sendfile = true;
              continue;
            }
        }
      else
        n = sendfile (dst, src, NULL, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        {
          errno = EIO; /* the source shrank under us */
          return -1;
        }
      done += n;
    }
  return 0;
}

static int
copy_busybox (int srcfd, const struct stat *src, int rootfd, cella_error_t *err)
{
  cleanup_close int dst = openat (rootfd, "bin/busybox", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
  if (dst < 0)
    return cella_error (err, errno, "create bin/busybox");
  if (lseek (srcfd, 0, SEEK_SET) < 0 || copy_fd (srcfd, dst, src->st_size) < 0)
    return cella_error (err, errno, "copy busybox to bin/busybox");
  if (fchmod (dst, 0755) < 0)
    return cella_error (err, errno, "chmod bin/busybox");
  return 0;
}

static int
make_dirs (int rootfd, cella_error_t *err)
{
  for (size_t i = 0; i < sizeof rootfs_dirs / sizeof rootfs_dirs[0]; i++)
    {
      const char *path = rootfs_dirs[i].path;
      /* Explicit chmod: mkdir's mode is filtered by the umask, and tmp needs 1777. */
      if (mkdirat (rootfd, path, 0700) < 0)
        return cella_error (err, errno, "mkdir `%s`", path);
      if (fchmodat (rootfd, path, rootfs_dirs[i].mode, 0) < 0)
        return cella_error (err, errno, "chmod `%s`", path);
    }
  /* EINVAL: uid 0 in a user namespace (`unshare -r`) where 1000 is not mapped; EPERM:
   * root without CAP_CHOWN.  Either way the builder owns the tree, as for a plain user. */
  if (geteuid () == 0 && fchownat (rootfd, "home/cella", CELLA_UID, CELLA_GID, AT_SYMLINK_NOFOLLOW) < 0
      && errno != EINVAL && errno != EPERM)
    return cella_error (err, errno, "chown home/cella");
  return 0;
}

static int
write_file_at (int dfd, const char *path, const char *content, mode_t mode, cella_error_t *err)
{
  cleanup_close int fd = openat (dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "create `%s`", path);
  if (write_all (fd, content, strlen (content)) < 0 || fchmod (fd, mode) < 0)
    return cella_error (err, errno, "write `%s`", path);
  return 0;
}

/* "BusyBox v1.35.0 (Debian ...) multi-call binary." -> "1.35.0", limited to the
 * characters os-release allows in VERSION_ID. */
static char *
parse_version (const char *first_line)
{
  const char *p = strstr (first_line, "BusyBox v");
  size_t n = 0;
  if (p == NULL)
    return xstrdup ("unknown");
  p += strlen ("BusyBox v");
  while (p[n] != '\0' && (strchr ("abcdefghijklmnopqrstuvwxyz0123456789._-", p[n]) != NULL))
    n++;
  return n ? xasprintf ("%.*s", (int) n, p) : xstrdup ("unknown");
}

static int
write_etc (int rootfd, const char *version_id, cella_error_t *err)
{
  cleanup_free char *os_release = NULL;
  for (size_t i = 0; i < sizeof rootfs_files / sizeof rootfs_files[0]; i++)
    if (write_file_at (rootfd, rootfs_files[i].path, rootfs_files[i].content, 0644, err) < 0)
      return -1;
  os_release = xasprintf ("NAME=\"cella busybox\"\n"
                          "ID=busybox\n"
                          "VERSION_ID=%s\n"
                          "PRETTY_NAME=\"cella busybox %s\"\n",
                          version_id, version_id);
  return write_file_at (rootfd, "etc/os-release", os_release, 0644, err);
}

/* Applet paths come from the binary we are about to trust as the image anyway, but a
 * path that climbs out of the rootfs is still refused. */
static bool
applet_path_ok (const char *path)
{
  const char *c = path;
  if (path[0] == '\0' || path[0] == '/' || strlen (path) >= 256)
    return false;
  while (*c)
    {
      size_t len = strcspn (c, "/");
      if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
        return false;
      c += len;
      if (*c == '/')
        c++;
    }
  return c[-1] != '/';
}

static bool
is_base_dir (const char *path, size_t len)
{
  for (size_t i = 0; i < sizeof rootfs_dirs / sizeof rootfs_dirs[0]; i++)
    if (strlen (rootfs_dirs[i].path) == len && memcmp (rootfs_dirs[i].path, path, len) == 0)
      return true;
  return false;
}

/* Applets normally land in bin, sbin, usr/bin or usr/sbin, which make_dirs created. */
static int
make_parents (int rootfd, const char *path, cella_error_t *err)
{
  const char *slash = strrchr (path, '/');
  cleanup_free char *p = NULL;
  if (slash == NULL || is_base_dir (path, slash - path))
    return 0;
  p = xstrdup (path);
  for (char *s = strchr (p, '/'); s != NULL; s = strchr (s + 1, '/'))
    {
      *s = '\0';
      if (mkdirat (rootfd, p, 0700) == 0)
        {
          if (fchmodat (rootfd, p, 0755, 0) < 0)
            return cella_error (err, errno, "chmod `%s`", p);
        }
      else if (errno != EEXIST)
        return cella_error (err, errno, "mkdir `%s`", p);
      *s = '/';
    }
  return 0;
}

/* usr/bin/env -> ../../bin/busybox; bin/sh -> busybox; linuxrc -> bin/busybox. */
static char *
applet_target (const char *path)
{
  size_t depth = 0;
  char *t;
  for (const char *c = path; *c; c++)
    depth += *c == '/';
  if (depth == 1 && has_prefix (path, "bin/"))
    return xstrdup ("busybox");
  t = xzalloc (depth * 3 + sizeof "bin/busybox");
  for (size_t i = 0; i < depth; i++)
    strcat (t, "../");
  strcat (t, "bin/busybox");
  return t;
}

static int
link_applets (int rootfd, char *list, size_t *count, cella_error_t *err)
{
  char *save = NULL;
  *count = 0;
  for (char *line = strtok_r (list, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      cleanup_free char *target = NULL;
      line[strcspn (line, " \t\r")] = '\0';
      if (line[0] == '\0' || strcmp (line, "bin/busybox") == 0)
        continue;
      if (!applet_path_ok (line))
        return cella_error (err, 0, "busybox --list-full: unexpected applet path `%s`", line);
      if (make_parents (rootfd, line, err) < 0)
        return -1;
      target = applet_target (line);
      if (symlinkat (target, rootfd, line) < 0)
        {
          if (errno == EEXIST)
            continue;
          return cella_error (err, errno, "symlink `%s` -> `%s`", line, target);
        }
      (*count)++;
    }
  return 0;
}

static int
write_manifest (int tmpfd, const char *src_path, const struct stat *src, const char *version_line, size_t applets,
                cella_error_t *err)
{
  /* Only the mtime is stamped; atime is left alone. */
  const struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, src->st_mtim };
  cleanup_free char *text = xasprintf ("image " IMAGE_NAME "\n"
                                       "source %s\n"
                                       "size %lld\n"
                                       "mtime %lld.%09ld\n"
                                       "version %s\n"
                                       "applets %zu\n",
                                       src_path, (long long) src->st_size, (long long) src->st_mtim.tv_sec,
                                       src->st_mtim.tv_nsec, version_line, applets);
  cleanup_close int fd = openat (tmpfd, "manifest", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "create manifest");
  if (write_all (fd, text, strlen (text)) < 0 || fchmod (fd, 0644) < 0)
    return cella_error (err, errno, "write manifest");
  /* After the last write, or the write would bump the mtime again. */
  if (futimens (fd, times) < 0 || fsync (fd) < 0)
    return cella_error (err, errno, "write manifest");
  return 0;
}

/* Fill the (empty) directory tmpfd: rootfs/ first, manifest last. */
static int
build_tree (int tmpfd, int srcfd, const char *src_path, const struct stat *src, cella_error_t *err)
{
  cleanup_free char *list = NULL, *help = NULL, *version_id = NULL;
  cleanup_close int rootfd = -1;
  size_t applets;
  if (mkdirat (tmpfd, "rootfs", 0700) < 0 || fchmodat (tmpfd, "rootfs", 0755, 0) < 0)
    return cella_error (err, errno, "mkdir rootfs");
  rootfd = openat (tmpfd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0)
    return cella_error (err, errno, "open rootfs");
  if (make_dirs (rootfd, err) < 0 || copy_busybox (srcfd, src, rootfd, err) < 0)
    return -1;
  if (run_busybox (srcfd, src_path, "--list-full", &list, err) < 0
      || run_busybox (srcfd, src_path, "--help", &help, err) < 0)
    return -1;
  help[strcspn (help, "\n")] = '\0';
  version_id = parse_version (help);
  if (link_applets (rootfd, list, &applets, err) < 0 || write_etc (rootfd, version_id, err) < 0)
    return -1;
  /* Everything written so far must be on disk before the manifest says it is complete;
   * one syncfs beats an fsync per file and directory. */
  if (syncfs (tmpfd) < 0)
    return cella_error (err, errno, "syncfs");
  if (write_manifest (tmpfd, src_path, src, help, applets, err) < 0)
    return -1;
  if (fsync (tmpfd) < 0)
    return cella_error (err, errno, "fsync");
  return 0;
}

/* Something is already at images/busybox and it is stale: swap ours in atomically, then
 * delete the old tree. */
static int
replace_stale (int imagesfd, const char *tmpname, cella_error_t *err)
{
  cleanup_free char *old = NULL;
  if (renameat2 (imagesfd, tmpname, imagesfd, IMAGE_DIR, RENAME_EXCHANGE) == 0)
    {
      rm_rf_at (imagesfd, tmpname); /* now holds the old image */
      return 0;
    }
  if (errno != EINVAL && errno != ENOSYS)
    return cella_error (err, errno, "exchange `%s` and `%s`", tmpname, IMAGE_DIR);
  /* No RENAME_EXCHANGE on this filesystem: a short window with no image at all, which a
   * reader sees as "not built yet"; it then waits on the build lock and finds ours. */
  old = xasprintf (OLD_PREFIX "%d", (int) getpid ());
  rm_rf_at (imagesfd, old);
  if (renameat (imagesfd, IMAGE_DIR, imagesfd, old) < 0)
    return cella_error (err, errno, "rename `%s` to `%s`", IMAGE_DIR, old);
  if (renameat (imagesfd, tmpname, imagesfd, IMAGE_DIR) < 0)
    return cella_error (err, errno, "rename `%s` to `%s`", tmpname, IMAGE_DIR);
  rm_rf_at (imagesfd, old);
  return 0;
}

/* Move the finished tree to images/busybox.  If something is already there, it is either
 * a fresh image from a process that won the race (keep it, drop ours) or a stale one. */
static int
install_tree (int imagesfd, const char *tmpname, const struct stat *src, cella_error_t *err)
{
  if (renameat (imagesfd, tmpname, imagesfd, IMAGE_DIR) < 0)
    {
      if (errno != EEXIST && errno != ENOTEMPTY)
        return cella_error (err, errno, "rename `%s` to `%s`", tmpname, IMAGE_DIR);
      if (image_fresh_at (imagesfd, src))
        {
          rm_rf_at (imagesfd, tmpname);
          return 0;
        }
      if (replace_stale (imagesfd, tmpname, err) < 0)
        return -1;
    }
  if (fsync (imagesfd) < 0)
    return cella_error (err, errno, "fsync images");
  return 0;
}

static int
lock_images (int imagesfd, cella_error_t *err)
{
  int fd = openat (imagesfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "open lock `%s`", LOCK_NAME);
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        int e = errno;
        close (fd);
        return cella_error (err, e, "lock `%s`", LOCK_NAME);
      }
  return fd;
}

static int
build_image (const char *src_path, cella_error_t *err)
{
  cleanup_free char *images = xasprintf ("%s/images", paths_data_root ());
  cleanup_free char *tmpname = xasprintf (TMP_PREFIX "%d", (int) getpid ());
  cleanup_close int imagesfd = -1, lockfd = -1, srcfd = -1, tmpfd = -1;
  struct stat src;
  int r;

  /* The data root is private; images/ is readable so rootfs paths can be traversed. */
  if (mkdir_p (paths_data_root (), 0700, err) < 0)
    return -1;
  if (mkdir (images, 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir `%s`", images);
  imagesfd = open (images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (imagesfd < 0)
    return cella_error (err, errno, "open `%s`", images);
  lockfd = lock_images (imagesfd, err);
  if (lockfd < 0)
    return -1;

  srcfd = open (src_path, O_RDONLY | O_CLOEXEC);
  if (srcfd < 0 || fstat (srcfd, &src) < 0)
    return cella_error (err, errno, "open `%s`", src_path);
  /* Someone else built it while we waited for the lock. */
  if (image_fresh_at (imagesfd, &src))
    return 0;
  sweep_leftovers (imagesfd);
  if (!S_ISREG (src.st_mode))
    return cella_error (err, 0, "image \"" IMAGE_NAME "\": `%s` is not a regular file", src_path);
  if (check_static_elf (srcfd, src_path, err) < 0)
    return -1;

  if (mkdirat (imagesfd, tmpname, 0700) < 0 || fchmodat (imagesfd, tmpname, 0755, 0) < 0)
    return cella_error (err, errno, "mkdir `%s/%s`", images, tmpname);
  tmpfd = openat (imagesfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tmpfd < 0)
    r = cella_error (err, errno, "open `%s/%s`", images, tmpname);
  else
    r = build_tree (tmpfd, srcfd, src_path, &src, err);
  if (r == 0)
    r = install_tree (imagesfd, tmpname, &src, err);
  if (r < 0)
    {
      rm_rf_at (imagesfd, tmpname);
      return cella_error_wrap (err, "image \"" IMAGE_NAME "\": build in `%s/%s`", images, tmpname);
    }
  return 0;
}

int
default_image_ensure (const char *name, char **rootfs_out, cella_error_t *err)
{
  cleanup_free char *dir = NULL, *manifest = NULL;
  const char *src_path = NULL;
  struct stat src, man;

  *rootfs_out = NULL;
  if (!is_embedded_name (name))
    return 1;
  if (find_busybox (&src_path, &src, err) < 0)
    return -1;
  dir = xasprintf ("%s/images/" IMAGE_DIR, paths_data_root ());
  manifest = xasprintf ("%s/manifest", dir);
  if (stat (manifest, &man) < 0 || !manifest_matches (&man, &src))
    if (build_image (src_path, err) < 0)
      return -1;
  *rootfs_out = xasprintf ("%s/rootfs", dir);
  return 0;
}
