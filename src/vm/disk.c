/* The vm backend's root disk (vm.h): ext4 images built without privileges, cached per image. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/paths.h"
#include "image/flatten.h"
#include "vm.h"

#define MIB (1024ULL * 1024ULL)

uint64_t
vm_disk_size (uint64_t used)
{
  uint64_t size = 2 * used + 32 * MIB;
  if (size < 64 * MIB)
    size = 64 * MIB;
  return (size + 16 * MIB - 1) / (16 * MIB) * (16 * MIB);
}

/* Bytes the tree takes (allocated blocks, a hard-linked file once) and its number of entries. */
static int
tree_usage (int dfd, uint64_t *bytes, uint64_t *entries)
{
  DIR *d = fdopendir (dfd);
  struct dirent *e;
  if (d == NULL)
    {
      close (dfd);
      return -1;
    }
  while ((e = readdir (d)))
    {
      struct stat st;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      ++*entries;
      if (S_ISDIR (st.st_mode))
        {
          int sub = openat (dirfd (d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          *bytes += 4096;
          if (sub >= 0)
            tree_usage (sub, bytes, entries);
        }
      else if (S_ISREG (st.st_mode))
        /* a hard link counts its share: the sum over its names is the file's size */
        *bytes += ((uint64_t) st.st_blocks * 512 + 4095) / 4096 * 4096 / (st.st_nlink ? st.st_nlink : 1);
      else if (S_ISLNK (st.st_mode))
        *bytes += st.st_size > 60 ? 4096 : 0; /* short targets live in the inode */
    }
  closedir (d);
  return 0;
}

/* The mkfs.ext4 program: unprivileged users often lack /usr/sbin in PATH. */
static const char *
mkfs_path (void)
{
  static const char *const where[] = { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4" };
  for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
    if (access (where[i], X_OK) == 0)
      return where[i];
  return NULL;
}

/* Run argv (no shell) with its output captured; 0 when it exits 0, else -1 with its output. */
static int
run_tool (char *const *argv, cella_error_t *err)
{
  int p[2], st;
  cleanup_free char *out = NULL;
  size_t len = 0;
  pid_t pid;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    {
      int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      dup2 (null, 0);
      dup2 (p[1], 1);
      dup2 (p[1], 2);
      execv (argv[0], argv);
      dprintf (2, "exec: %s", strerror (errno));
      _exit (127);
    }
  close (p[1]);
  read_all_fd (p[0], &out, &len, NULL);
  close (p[0]);
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for `%s`", argv[0]);
  if (WIFEXITED (st) && WEXITSTATUS (st) == 0)
    return 0;
  while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
    out[--len] = '\0';
  return cella_error (err, 0, "`%s` failed (%s %d): %s", argv[0], WIFEXITED (st) ? "exit status" : "signal",
                      WIFEXITED (st) ? WEXITSTATUS (st) : WTERMSIG (st), out && *out ? out : "no output");
}

static int
mkfs_dir (const char *dir, const char *out, cella_error_t *err)
{
  const char *mkfs = mkfs_path ();
  uint64_t used = 0, entries = 0, size;
  cleanup_free char *size_k = NULL, *inodes = NULL;
  cleanup_close int fd = -1;
  int dfd;
  if (mkfs == NULL)
    return cella_error (err, ENOENT, "mkfs.ext4 (the vm backend's disk builder; apt-get install e2fsprogs)");
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* tree_usage closes it */
  if (dfd < 0 || tree_usage (dfd, &used, &entries) < 0)
    return cella_error (err, errno, "read `%s`", dir);
  size = vm_disk_size (used);
  fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || ftruncate (fd, (off_t) size) < 0)
    return cella_error (err, errno, "create the disk `%s`", out);
  size_k = xasprintf ("%lluk", (unsigned long long) (size / 1024));
  /* mkfs's default (one inode per 16 KiB) is short for trees of many small files */
  inodes = xasprintf ("%llu", (unsigned long long) (entries * 2 + 4096));
  {
    /* The journal stays (4 MiB, mkfs's smallest): a container's disk outlives a VM killed
     * after the stop timeout, and the guest mounts it again without an fsck. */
    char *const argv[]
        = { (char *) mkfs,     (char *) "-q",         (char *) "-F", (char *) "-t", (char *) "ext4",
            (char *) "-L",     (char *) "cella-root", (char *) "-m", (char *) "0",  (char *) "-J",
            (char *) "size=4", (char *) "-N",         inodes,        (char *) "-E", (char *) "root_owner=0:0,nodiscard",
            (char *) "-d",     (char *) dir,          (char *) out,  size_k,        NULL };
    return run_tool (argv, err);
  }
}

struct build_job {
  char *const *layers; /* NULL: dir is used as it is */
  const char *dir;     /* the tree, or where to merge the layers */
  const char *out;
};

/* In the mapped user namespace (or as root): merge, mkfs, remove the merge. */
static int
build_fn (void *ud, cella_error_t *err)
{
  struct build_job *j = ud;
  int r;
  if (j->layers && image_flatten (j->layers, j->dir, NULL, err) < 0)
    return cella_error_wrap (err, "merge the image's layers for its disk");
  r = mkfs_dir (j->dir, j->out, err);
  if (j->layers)
    remove_tree (j->dir);
  return r;
}

static int
build_at (char *const *layers, const char *dir, const char *out, cella_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp-XXXXXX", out);
  cleanup_free char *stage_parent = NULL, *stage = NULL;
  struct build_job j = { .layers = layers, .dir = dir, .out = tmp };
  int fd = mkostemp (tmp, O_CLOEXEC), r;
  if (fd < 0)
    return cella_error (err, errno, "create `%s`", tmp);
  close (fd);
  if (layers)
    {
      stage_parent = xasprintf ("%s.stage-XXXXXX", out);
      if (mkdtemp (stage_parent) == NULL)
        {
          unlink (tmp);
          return cella_error (err, errno, "create `%s`", stage_parent);
        }
      stage = xasprintf ("%s/root", stage_parent);
      j.dir = stage;
    }
  r = ns_run_mapped (build_fn, &j, err);
  if (stage_parent)
    remove_tree_mapped (stage_parent);
  if (r == 0 && rename (tmp, out) < 0)
    r = cella_error (err, errno, "rename `%s` to `%s`", tmp, out);
  if (r < 0)
    unlink (tmp);
  return r;
}

int
vm_disk_build (const char *dir, const char *out, cella_error_t *err)
{
  return build_at (NULL, dir, out, err);
}

/* The cache key of an image without an id (the embedded busybox): its directory's identity. */
static char *
dir_key (const char *dir)
{
  struct stat st;
  uint64_t h = 1469598103934665603ULL;
  cleanup_free char *s = NULL;
  if (stat (dir, &st) < 0)
    return NULL;
  s = xasprintf ("%s|%llu|%llu|%lld.%ld", dir, (unsigned long long) st.st_dev, (unsigned long long) st.st_ino,
                 (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  for (const char *c = s; *c; c++)
    h = (h ^ (unsigned char) *c) * 1099511628211ULL;
  return xasprintf ("dir-%016llx", (unsigned long long) h);
}

int
vm_disk_for_plan (const struct plan *p, const char *fresh, char **path, int *held, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/vm/disks", paths_data_root ());
  cleanup_free char *key = NULL, *out = NULL, *lockp = NULL;
  cleanup_close int lock = -1;
  *held = -1;
  if (!p->root_overlay)
    {
      /* a plain directory changes under us: no cache */
      if (vm_disk_build (p->rootfs, fresh, err) < 0)
        return -1;
      *path = xstrdup (fresh);
      return 0;
    }
  key = p->image_id ? xstrdup (p->image_id) : dir_key (p->rootfs);
  if (key == NULL)
    return cella_error (err, errno, "image root `%s`", p->rootfs);
  for (char *c = key; *c; c++)
    if (*c == '/' || *c == ':')
      *c = '-';
  out = xasprintf ("%s/%s.ext4", dir, key);
  lockp = xasprintf ("%s/%s.lock", dir, key);
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  lock = open (lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0)
    return cella_error (err, errno, "lock `%s`", lockp);
  /* shared while the disk is there (runs clone it side by side), exclusive to build it; a prune
   * (exclusive) may take it between the two, so the shared lock checks again */
  for (;;)
    {
      if (flock (lock, LOCK_SH) < 0)
        return cella_error (err, errno, "lock `%s`", lockp);
      if (access (out, R_OK) == 0)
        break;
      if (flock (lock, LOCK_EX) < 0)
        return cella_error (err, errno, "lock `%s`", lockp);
      if (access (out, R_OK) != 0)
        {
          cleanup_strv char **layers = strv_dup (p->root_layers);
          strv_push (&layers, p->rootfs);
          if (build_at (layers, NULL, out, err) < 0)
            return cella_error_wrap (err, "build the vm disk of %s", p->image ? p->image : p->rootfs);
          if (p->image_id == NULL)
            {
              /* which directory a dir-key stands for: vm_disk_prune tells the stale ones by it */
              cleanup_free char *srcp = xasprintf ("%s/%s.src", dir, key);
              if (write_file_atomic (srcp, p->rootfs, strlen (p->rootfs), 0600, err) < 0)
                return -1;
            }
        }
    }
  *path = steal_pointer (&out);
  *held = steal_fd (&lock);
  return 0;
}

/* Is the cached disk `key` (its file name less .ext4) one that prune removes: not of an image of
 * keep_ids, nor of a root directory that is still as it was when it was built? */
static bool
disk_stale (const char *dir, const char *key, char *const *keep_ids)
{
  for (size_t i = 0; keep_ids && keep_ids[i]; i++)
    {
      cleanup_free char *k = xstrdup (keep_ids[i]);
      for (char *c = k; *c; c++)
        if (*c == '/' || *c == ':')
          *c = '-';
      if (strcmp (k, key) == 0)
        return false;
    }
  if (has_prefix (key, "dir-"))
    {
      /* a directory's disk is stale once the directory changed (another key) or is gone */
      cleanup_free char *srcp = xasprintf ("%s/%s.src", dir, key), *src = NULL, *now = NULL;
      if (read_file (srcp, &src, NULL, NULL) == 0 && (now = dir_key (src)) != NULL && strcmp (now, key) == 0)
        return false;
    }
  return true;
}

/* Each cached disk of $data/vm/disks: counted in *use (when not NULL), the stale ones removed
 * when `remove`. The bytes freed. */
static uint64_t
disks_walk (char *const *keep_ids, bool remove, struct vm_disk_use *use)
{
  cleanup_free char *dir = xasprintf ("%s/vm/disks", paths_data_root ());
  DIR *d = opendir (dir);
  struct dirent *de;
  uint64_t freed = 0;
  while (d && (de = readdir (d)) != NULL)
    {
      size_t len = strlen (de->d_name);
      bool stale;
      struct stat st;
      if (len <= 5 || strcmp (de->d_name + len - 5, ".ext4") != 0)
        continue;
      cleanup_free char *key = strndup (de->d_name, len - 5);
      cleanup_free char *out = xasprintf ("%s/%s", dir, de->d_name);
      if (lstat (out, &st) < 0 || !S_ISREG (st.st_mode))
        continue;
      stale = disk_stale (dir, key, keep_ids);
      if (use)
        {
          use->count++;
          use->size += (uint64_t) st.st_blocks * 512;
          if (stale)
            {
              use->stale++;
              use->reclaimable += (uint64_t) st.st_blocks * 512;
            }
        }
      if (!remove || !stale)
        continue;
      cleanup_free char *lockp = xasprintf ("%s/%s.lock", dir, key);
      cleanup_close int lock = open (lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      /* one being built or cloned holds the lock: left for the next prune */
      if (lock < 0 || flock (lock, LOCK_EX | LOCK_NB) < 0)
        continue;
      if (lstat (out, &st) == 0 && S_ISREG (st.st_mode) && unlink (out) == 0)
        freed += (uint64_t) st.st_blocks * 512;
      {
        cleanup_free char *srcp = xasprintf ("%s/%s.src", dir, key);
        unlink (srcp);
      }
      /* the lock file stays: a run waiting on it must not race one that would make a new one */
    }
  if (d)
    closedir (d);
  return freed;
}

uint64_t
vm_disk_prune (char *const *keep_ids)
{
  return disks_walk (keep_ids, true, NULL);
}

void
vm_disk_usage (char *const *keep_ids, struct vm_disk_use *use)
{
  memset (use, 0, sizeof *use);
  disks_walk (keep_ids, false, use);
}

/* A copy that keeps holes: only the data segments are copied. */
static int
copy_sparse (int in, int out, off_t size)
{
  off_t pos = 0;
  while (pos < size)
    {
      off_t data = lseek (in, pos, SEEK_DATA), hole;
      if (data < 0)
        {
          if (errno == ENXIO)
            break;
          return -1;
        }
      hole = lseek (in, data, SEEK_HOLE);
      if (hole < 0)
        hole = size;
      for (off_t o = data; o < hole;)
        {
          loff_t a = o, b = o;
          ssize_t n = copy_file_range (in, &a, out, &b, (size_t) (hole - o), 0);
          if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
            {
              char buf[65536];
              n = pread (in, buf, (size_t) (hole - o) < sizeof buf ? (size_t) (hole - o) : sizeof buf, o);
              if (n > 0 && pwrite (out, buf, (size_t) n, o) != n)
                return -1;
            }
          if (n <= 0)
            return n == 0 ? 0 : -1;
          o += n;
        }
      pos = hole;
    }
  return ftruncate (out, size);
}

int
vm_disk_clone (const char *src, const char *dst, const char **method, cella_error_t *err)
{
  cleanup_close int in = open (src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_close int out = -1;
  struct stat st;
  if (in < 0 || fstat (in, &st) < 0)
    return cella_error (err, errno, "open the disk `%s`", src);
  out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (out < 0)
    return cella_error (err, errno, "create the disk `%s`", dst);
  if (ioctl (out, FICLONE, in) == 0)
    {
      *method = "reflink";
      return 0;
    }
  if (copy_sparse (in, out, st.st_size) < 0)
    {
      int e = errno;
      unlink (dst);
      return cella_error (err, e, "copy the disk `%s` to `%s`", src, dst);
    }
  *method = "copy";
  return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
unescape_octal (char *s)
{
  char *w = s;
  for (char *r = s; *r; r++)
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7')
      {
        *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
        r += 3;
      }
    else
      *w++ = *r;
  *w = '\0';
}

/* The first mount point at or below dir (malloc'd), or NULL. */
static char *
mount_under (const char *dir)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/mountinfo", "re");
  char *line = NULL, *found = NULL;
  size_t cap = 0, n = strlen (dir);
  if (f == NULL)
    return NULL;
  while (found == NULL && getline (&line, &cap, f) > 0)
    {
      char *save = NULL, *field = strtok_r (line, " ", &save);
      for (int i = 1; field && i < 5; i++)
        field = strtok_r (NULL, " ", &save);
      if (field == NULL)
        continue;
      unescape_octal (field);
      if (strncmp (field, dir, n) == 0 && (field[n] == '\0' || field[n] == '/'))
        found = xstrdup (field);
    }
  free (line);
  return found;
}

int
vm_workdir_remove (const char *path, cella_error_t *err)
{
  cleanup_free char *parent = xstrdup (path), *real = NULL, *mnt = NULL, *self = NULL;
  cleanup_close int pfd = -1, dfd = -1;
  char *slash = strrchr (parent, '/');
  const char *name = slash ? slash + 1 : parent;
  struct stat st;
  if (slash)
    *slash = '\0';
  /* the work dir pinned: everything below happens through this fd, never by its path again */
  pfd = open (slash ? (*parent ? parent : "/") : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "vm work dir `%s`", path);
  if (fstatat (pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "vm work dir `%s`", path);
  if (S_ISLNK (st.st_mode))
    return cella_error (err, ELOOP, "vm work dir `%s`: a symbolic link; not removed", path);
  if (!S_ISDIR (st.st_mode))
    return cella_error (err, ENOTDIR, "vm work dir `%s`: not a directory; not removed", path);
  dfd = openat (pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return cella_error (err, errno, "vm work dir `%s`", path);
  /* where the kernel says the pinned directory is (its parents may be links): mountinfo's terms */
  self = xasprintf ("/proc/self/fd/%d", dfd);
  real = realpath (self, NULL);
  if (real == NULL)
    return cella_error (err, errno, "vm work dir `%s`", path);
  mnt = mount_under (real);
  if (mnt)
    return cella_error (err, EBUSY, "vm work dir `%s`: `%s` is still mounted; not removed", path, mnt);
  if (remove_dir_contents (dfd) < 0 && (geteuid () == 0 || remove_tree_mapped (real) < 0))
    return cella_error (err, errno, "remove the vm work dir `%s`", path);
  if (unlinkat (pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return cella_error (err, errno, "remove the vm work dir `%s`", path);
  return 0;
}
