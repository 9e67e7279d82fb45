/* Unit tests for flattening layers into a directory (src/image/flatten.c): three layers built by
 * hand with whiteouts, opaque dirs, type changes, hard links, symlinks (an absolute one, and one a
 * higher layer puts a directory over), set-id bits, xattrs, holes and times; the merged tree is
 * listed whole and compared. Then the errors (dest exists, missing layer, dest inside a layer, a
 * failure half way leaves nothing) and tree_copy. Runs as root and unprivileged; what needs a
 * privilege says why it is skipped. Paths are under $TMPDIR (else /tmp). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/flatten.h"
#include "tap.h"

static bool
err_has (cella_error_t *err, const char *needle)
{
  bool r = err && *err && strstr ((*err)->msg, needle) != NULL;
  if (!r)
    printf ("#   error was: %s (looked for `%s`)\n", err && *err ? (*err)->msg : "(none)", needle);
  cella_error_free (err);
  return r;
}

static char *
tmpdir (void)
{
  const char *t = getenv ("TMPDIR");
  char *d = xasprintf ("%s/cella-flatten-test-XXXXXX", t && *t ? t : "/tmp");
  if (mkdtemp (d) == NULL)
    abort ();
  return d;
}

static char *
at (const char *dir, const char *path)
{
  return xasprintf ("%s/%s", dir, path);
}

static void
mkd (const char *dir, const char *path, mode_t mode)
{
  cleanup_free char *p = at (dir, path);
  if (mkdir (p, mode) < 0 || chmod (p, mode) < 0)
    abort ();
}

static void
put (const char *dir, const char *path, const char *text, mode_t mode)
{
  cleanup_free char *p = at (dir, path);
  int fd = open (p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text) || fchmod (fd, mode) < 0)
    abort ();
  close (fd);
}

static void
sym (const char *dir, const char *path, const char *target)
{
  cleanup_free char *p = at (dir, path);
  if (symlink (target, p) < 0)
    abort ();
}

static bool
whiteout (const char *dir, const char *path)
{
  cleanup_free char *p = at (dir, path);
  return mknod (p, S_IFCHR | 0000, makedev (0, 0)) == 0;
}

static void
set_mtime (const char *dir, const char *path, time_t t)
{
  cleanup_free char *p = at (dir, path);
  struct timespec ts[2] = { { t, 0 }, { t, 0 } };
  if (utimensat (AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
    abort ();
}

static time_t
mtime_of (const char *dir, const char *path)
{
  cleanup_free char *p = at (dir, path);
  struct stat st;
  return lstat (p, &st) == 0 ? st.st_mtim.tv_sec : -1;
}

static bool
set_x (const char *dir, const char *path, const char *name, const char *val)
{
  cleanup_free char *p = at (dir, path);
  return lsetxattr (p, name, val, strlen (val), 0) == 0;
}

/* The value of xattr name, or NULL when it is not there. */
static char *
get_x (const char *dir, const char *path, const char *name)
{
  cleanup_free char *p = at (dir, path);
  char buf[256];
  ssize_t n = lgetxattr (p, name, buf, sizeof buf - 1);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  return xstrdup (buf);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static uint32_t
fnv (const char *s, size_t n)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char) s[i]) * 16777619u;
  return h;
}

/* One line per entry: "path type mode what", what being the contents (or size and hash), the
 * symlink target, or the device numbers. */
static void
list_dir (int dirfd, const char *prefix, char ***lines)
{
  DIR *d = fdopendir (dup (dirfd));
  cleanup_strv char **names = NULL;
  struct dirent *e;
  if (d == NULL)
    abort ();
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      strv_push (&names, e->d_name);
  closedir (d);
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *path = *prefix ? xasprintf ("%s/%s", prefix, names[i]) : xstrdup (names[i]);
      cleanup_free char *line = NULL;
      struct stat st;
      unsigned mode;
      if (fstatat (dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
        abort ();
      mode = st.st_mode & 07777;
      if (S_ISDIR (st.st_mode))
        {
          int fd = openat (dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          line = xasprintf ("%s d %04o", path, mode);
          if (fd < 0)
            abort ();
          list_dir (fd, path, lines);
          close (fd);
        }
      else if (S_ISREG (st.st_mode))
        {
          int fd = openat (dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          cleanup_free char *text = NULL;
          size_t len = 0;
          if (fd < 0 || read_all_fd (fd, &text, &len, NULL) < 0)
            abort ();
          close (fd);
          if (len <= 40)
            line = xasprintf ("%s f %04o %.*s", path, mode, (int) len, text);
          else
            line = xasprintf ("%s f %04o size=%zu fnv=%08x", path, mode, len, fnv (text, len));
        }
      else if (S_ISLNK (st.st_mode))
        {
          char target[4096];
          ssize_t n = readlinkat (dirfd, names[i], target, sizeof target - 1);
          if (n < 0)
            abort ();
          target[n] = '\0';
          line = xasprintf ("%s l -> %s", path, target);
        }
      else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
        line = xasprintf ("%s %c %04o %u:%u", path, S_ISCHR (st.st_mode) ? 'c' : 'b', mode, major (st.st_rdev),
                          minor (st.st_rdev));
      else if (S_ISFIFO (st.st_mode))
        line = xasprintf ("%s p %04o", path, mode);
      else
        line = xasprintf ("%s s", path);
      strv_push (lines, line);
    }
}

/* The whole tree under root, one sorted line per entry. */
static char *
list_tree (const char *root)
{
  cleanup_strv char **lines = NULL;
  int fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t n, total = 1;
  char *out, *p;
  if (fd < 0)
    return xstrdup ("(cannot open)");
  list_dir (fd, "", &lines);
  close (fd);
  n = strv_len (lines);
  if (n)
    qsort (lines, n, sizeof *lines, cmp_str);
  for (size_t i = 0; i < n; i++)
    total += strlen (lines[i]) + 1;
  p = out = xmalloc (total);
  *p = '\0';
  for (size_t i = 0; i < n; i++)
    p += sprintf (p, "%s\n", lines[i]);
  return out;
}

/* Compare two listings; on a difference show both, line by line, as TAP comments. */
static void
check_tree (const char *got, const char *want, const char *what)
{
  bool ok = strcmp (got, want) == 0;
  CHECK (ok, "%s", what);
  if (!ok)
    {
      printf ("# --- got:\n");
      for (const char *p = got; *p;)
        {
          const char *nl = strchr (p, '\n');
          printf ("#   %.*s\n", (int) (nl ? nl - p : (long) strlen (p)), p);
          p = nl ? nl + 1 : p + strlen (p);
        }
      printf ("# --- want:\n");
      for (const char *p = want; *p;)
        {
          const char *nl = strchr (p, '\n');
          printf ("#   %.*s\n", (int) (nl ? nl - p : (long) strlen (p)), p);
          p = nl ? nl + 1 : p + strlen (p);
        }
    }
}

/* Sort the lines of an expected listing the way list_tree does. */
static char *
sorted (char **lines)
{
  size_t n = strv_len (lines), total = 1;
  char *out, *p;
  qsort (lines, n, sizeof *lines, cmp_str);
  for (size_t i = 0; i < n; i++)
    total += strlen (lines[i]) + 1;
  p = out = xmalloc (total);
  *p = '\0';
  for (size_t i = 0; i < n; i++)
    p += sprintf (p, "%s\n", lines[i]);
  return out;
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

/* What this machine and user allowed while the layers were made. */
struct caps {
  bool whiteouts, user_xattr, trusted_xattr, chown, mknod, socket, fcaps;
};

/* A sparse file: one byte, a 1 MiB hole, one byte. */
static void
put_sparse (const char *dir, const char *path)
{
  cleanup_free char *p = at (dir, path);
  int fd = open (p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 || pwrite (fd, "a", 1, 0) != 1 || pwrite (fd, "z", 1, 1 << 20) != 1 || fchmod (fd, 0644) < 0)
    abort ();
  close (fd);
}

static void
make_bottom (const char *l1, struct caps *c)
{
  mkd (l1, "bin", 0755);
  put (l1, "bin/busybox", "bb", 0755);
  {
    /* linked three times, the first name met at the top: one copy, two links */
    cleanup_free char *a = at (l1, "bin/busybox"), *b = at (l1, "bin/sh"), *c2 = at (l1, "bb");
    if (link (a, b) < 0 || link (a, c2) < 0)
      abort ();
  }
  put (l1, "bin/su", "su", 04755);
  put (l1, "bin/ping", "ping", 0755);
  {
    /* file capabilities: the copy must set them after chown, which clears them */
    struct vfs_cap_data caps = { .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE };
    cleanup_free char *p = at (l1, "bin/ping");
    caps.data[0].permitted = 1u << CAP_NET_RAW;
    c->fcaps = setxattr (p, "security.capability", &caps, sizeof caps, 0) == 0;
  }
  mkd (l1, "d2f", 0755);
  put (l1, "d2f/child", "c", 0644);
  mkd (l1, "dev", 0755);
  {
    cleanup_free char *p = at (l1, "dev/null");
    c->mknod = mknod (p, S_IFCHR | 0666, makedev (1, 3)) == 0 && chmod (p, 0666) == 0;
  }
  mkd (l1, "etc", 0755);
  put (l1, "etc/gone", "gone", 0644);
  put (l1, "etc/hosts", "bottom-hosts", 0644);
  put (l1, "etc/passwd", "root:x:0:0", 0644);
  c->user_xattr = set_x (l1, "etc/passwd", "user.keep", "v") && set_x (l1, "etc/passwd", "user.overlay.x", "1");
  set_mtime (l1, "etc/passwd", 1000000000);
  put (l1, "f2d", "file", 0644);
  sym (l1, "link-passwd", "/etc/passwd");
  sym (l1, "rel", "etc/hosts");
  set_mtime (l1, "rel", 1300000000);
  mkd (l1, "opq", 0755);
  put (l1, "opq/old", "old", 0644);
  mkd (l1, "opq/sub", 0755);
  put (l1, "opq/sub/x", "x", 0644);
  mkd (l1, "opq2", 0755);
  put (l1, "opq2/old", "old2", 0644);
  mkd (l1, "opt", 0755);
  put (l1, "opt/keep", "keep", 0644);
  {
    cleanup_free char *a = at (l1, "opt/keep"), *b = at (l1, "opt/keep2");
    if (link (a, b) < 0)
      abort ();
  }
  mkd (l1, "opt/tree", 0755);
  mkd (l1, "opt/tree/a", 0755);
  mkd (l1, "opt/tree/a/b", 0755);
  put (l1, "opt/tree/a/b/deep", "deep", 0644);
  put (l1, "owned", "owned", 0640);
  {
    cleanup_free char *p = at (l1, "owned");
    c->chown = chown (p, 1234, 5678) == 0 && chmod (p, 0640) == 0;
  }
  put_sparse (l1, "sparse");
  mkd (l1, "tmp", 01777);
  set_mtime (l1, "tmp", 1400000000);
}

static void
make_middle (const char *base, const char *l2, struct caps *c)
{
  cleanup_free char *victim = at (base, "victim");
  mkd (l2, "bin", 0755);
  put (l2, "bin/extra", "x", 0644);
  put (l2, "d2f", "now a file", 0644);
  mkd (l2, "etc", 0755);
  put (l2, "etc/hosts", "mid-hosts", 0644);
  mkd (l2, "opt", 0755);
  c->whiteouts = whiteout (l2, "opt/tree");
  /* A symlink out of the root, with a directory over it in the layer above: the merge must make
   * a directory and never write through the link. */
  sym (l2, "lnk", victim);
}

static void
make_top (const char *l3, struct caps *c)
{
  mkd (l3, "etc", 0755);
  c->whiteouts = whiteout (l3, "etc/gone") && c->whiteouts;
  set_mtime (l3, "etc", 1200000000);
  mkd (l3, "f2d", 0755);
  put (l3, "f2d/in", "in", 0644);
  mkd (l3, "lnk", 0755);
  put (l3, "lnk/file", "in-lnk", 0644);
  c->whiteouts = whiteout (l3, "nothing") && c->whiteouts; /* hides nothing: not applied */
  mkd (l3, "opq", 0755);
  put (l3, "opq/new", "new", 0644);
  c->user_xattr = set_x (l3, "opq", "user.overlay.opaque", "y") && c->user_xattr;
  mkd (l3, "opq2", 0755);
  put (l3, "opq2/new", "new2", 0644);
  c->trusted_xattr = set_x (l3, "opq2", "trusted.overlay.opaque", "y");
  mkd (l3, "run", 0755);
  {
    cleanup_free char *p = at (l3, "run/fifo");
    if (mkfifo (p, 0644) < 0 || chmod (p, 0644) < 0)
      abort ();
  }
  {
    cleanup_free char *p = at (l3, "run/sock");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->socket = fd >= 0 && strlen (p) < sizeof sa.sun_path;
    if (c->socket)
      {
        memcpy (sa.sun_path, p, strlen (p) + 1);
        c->socket = bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
      }
    if (fd >= 0)
      close (fd);
  }
}

static char *
expected_merge (const struct caps *c)
{
  cleanup_strv char **w = NULL;
  static const char *const always[] = {
    "bb f 0755 bb",
    "bin d 0755",
    "bin/busybox f 0755 bb",
    "bin/extra f 0644 x",
    "bin/ping f 0755 ping",
    "bin/sh f 0755 bb",
    "bin/su f 4755 su",
    "d2f f 0644 now a file",
    "dev d 0755",
    "etc d 0755",
    "etc/hosts f 0644 mid-hosts",
    "etc/passwd f 0644 root:x:0:0",
    "f2d d 0755",
    "f2d/in f 0644 in",
    "link-passwd l -> /etc/passwd",
    "lnk d 0755",
    "lnk/file f 0644 in-lnk",
    "opq d 0755",
    "opq/new f 0644 new",
    "opq2 d 0755",
    "opq2/new f 0644 new2",
    "opt d 0755",
    "opt/keep f 0644 keep",
    "opt/keep2 f 0644 keep",
    "owned f 0640 owned",
    "rel l -> etc/hosts",
    "run d 0755",
    "run/fifo p 0644",
    "tmp d 1777",
    NULL,
  };
  char sparse[64];
  char *buf = xzalloc ((1 << 20) + 1);
  buf[0] = 'a';
  buf[1 << 20] = 'z';
  snprintf (sparse, sizeof sparse, "sparse f 0644 size=%d fnv=%08x", (1 << 20) + 1, fnv (buf, (1 << 20) + 1));
  free (buf);
  for (size_t i = 0; always[i]; i++)
    strv_push (&w, always[i]);
  strv_push (&w, sparse);
  if (c->mknod)
    strv_push (&w, "dev/null c 0666 1:3");
  if (!c->trusted_xattr)
    strv_push (&w, "opq2/old f 0644 old2");
  if (!c->user_xattr)
    {
      strv_push (&w, "opq/old f 0644 old");
      strv_push (&w, "opq/sub d 0755");
      strv_push (&w, "opq/sub/x f 0644 x");
    }
  return sorted (w);
}

static void
check_stats (const struct flatten_stats *st, const struct caps *c, const char *dest)
{
  /* bb (bin/busybox and bin/sh are its links), bin/extra, bin/ping, bin/su, d2f, etc/hosts, etc/passwd, f2d/in,
   * lnk/file, opq/new, opq2/new, opt/keep, owned, sparse; and what opaque dirs did not hide. */
  uint64_t files = 14 + !c->trusted_xattr + 2 * !c->user_xattr;
  uint64_t dirs = 10 + !c->user_xattr;
  uint64_t bytes = 0;
  {
    /* every distinct regular file's size, counted once per inode */
    static const char *const files_in[] = { "bin/busybox", "bin/extra", "bin/ping", "bin/su",  "d2f",       "etc/hosts",
                                            "etc/passwd",  "f2d/in",    "lnk/file", "opq/new", "opq2/new",  "opt/keep",
                                            "owned",       "sparse",    "opq2/old", "opq/old", "opq/sub/x", NULL };
    for (size_t i = 0; files_in[i]; i++)
      {
        cleanup_free char *p = at (dest, files_in[i]);
        struct stat s;
        if (lstat (p, &s) == 0)
          bytes += (uint64_t) s.st_size;
      }
  }
  CHECK (st->files == files, "stats: %llu files copied (want %llu)", (unsigned long long) st->files,
         (unsigned long long) files);
  CHECK (st->dirs == dirs, "stats: %llu dirs (want %llu)", (unsigned long long) st->dirs, (unsigned long long) dirs);
  CHECK (st->symlinks == 2, "stats: %llu symlinks (want 2)", (unsigned long long) st->symlinks);
  CHECK (st->hardlinks == 3, "stats: %llu hard links (want 3)", (unsigned long long) st->hardlinks);
  CHECK (st->bytes == bytes, "stats: %llu bytes (want %llu)", (unsigned long long) st->bytes,
         (unsigned long long) bytes);
  if (c->whiteouts)
    CHECK (st->whiteouts_applied == 2, "stats: %llu whiteouts applied (want 2: etc/gone, opt/tree)",
           (unsigned long long) st->whiteouts_applied);
  else
    tap_skip ("mknod of a whiteout refused here", "stats: whiteouts applied");
  CHECK (st->method == COPY_REFLINK || st->method == COPY_RANGE || st->method == COPY_READ_WRITE,
         "stats: the copy method is one of the three (%s)", copy_method_name (st->method));
}

static void
check_details (const char *base, const char *l3, const char *dest, const struct caps *c)
{
  cleanup_free char *victim = at (base, "victim");
  cleanup_free char *v_file = at (victim, "file");
  cleanup_free char *keep = get_x (dest, "etc/passwd", "user.keep");
  cleanup_free char *ovl = get_x (dest, "etc/passwd", "user.overlay.x");
  cleanup_free char *opq = get_x (dest, "opq", "user.overlay.opaque");
  cleanup_free char *topq = get_x (dest, "opq2", "trusted.overlay.opaque");
  cleanup_free char *busybox = at (dest, "bin/busybox"), *sh = at (dest, "bin/sh"), *bb = at (dest, "bb");
  cleanup_free char *keep1 = at (dest, "opt/keep"), *keep2 = at (dest, "opt/keep2"), *sparse = at (dest, "sparse");
  struct stat a, b, bbs, sp;
  CHECK (!exists (v_file), "a symlink in a lower layer under a higher directory is not written through");
  CHECK (lstat (busybox, &a) == 0 && lstat (sh, &b) == 0 && lstat (bb, &bbs) == 0 && a.st_ino == b.st_ino
             && a.st_ino == bbs.st_ino && a.st_nlink == 3,
         "a file linked three times is one inode in dest, in two directories");
  CHECK (lstat (keep1, &a) == 0 && lstat (keep2, &b) == 0 && a.st_ino == b.st_ino && a.st_nlink == 2,
         "a hard-linked pair shares one inode in dest");
  CHECK (lstat (sparse, &sp) == 0 && sp.st_blocks * 512 < (1 << 20), "holes are kept (%lld blocks for 1 MiB)",
         (long long) sp.st_blocks);
  CHECK (mtime_of (dest, "etc/passwd") == 1000000000, "a file's mtime is kept");
  CHECK (mtime_of (dest, "etc") == mtime_of (l3, "etc") && mtime_of (dest, "etc") == 1200000000,
         "a merged directory has the top-most layer's mtime, set after its contents");
  CHECK (mtime_of (dest, "tmp") == 1400000000, "a directory's mtime is kept");
  CHECK (mtime_of (dest, "rel") == 1300000000, "a symlink's mtime is kept");
  if (c->user_xattr)
    {
      CHECK (keep && strcmp (keep, "v") == 0, "xattr user.keep is copied");
      CHECK (ovl == NULL, "user.overlay.* xattrs are not copied");
      CHECK (opq == NULL, "the opaque mark is not copied");
    }
  else
    tap_skip ("user xattrs refused on this filesystem", "xattrs copied, overlay's not");
  if (c->trusted_xattr)
    CHECK (topq == NULL, "trusted.overlay.opaque hides the lower entries and is not copied");
  else
    tap_skip ("trusted xattrs need CAP_SYS_ADMIN in the initial user namespace", "trusted.overlay.opaque");
  if (c->chown)
    {
      cleanup_free char *owned = at (dest, "owned"), *su = at (dest, "bin/su");
      CHECK (lstat (owned, &a) == 0 && a.st_uid == 1234 && a.st_gid == 5678 && (a.st_mode & 07777) == 0640,
             "owners are kept (1234:5678)");
      CHECK (lstat (su, &a) == 0 && a.st_uid == 0 && (a.st_mode & 07777) == 04755, "set-uid root stays set-uid root");
    }
  else
    tap_skip ("chown to another user is not permitted here", "owners are kept");
  if (c->fcaps)
    {
      cleanup_free char *src = at (base, "l1/bin/ping"), *dst = at (dest, "bin/ping");
      char x[64], y[64];
      ssize_t nx = getxattr (src, "security.capability", x, sizeof x);
      ssize_t ny = getxattr (dst, "security.capability", y, sizeof y);
      CHECK (nx > 0 && nx == ny && memcmp (x, y, (size_t) nx) == 0, "file capabilities are kept (set after chown)");
    }
  else
    tap_skip ("setting security.capability is not permitted here", "file capabilities are kept");
  if (c->mknod)
    {
      cleanup_free char *null = at (dest, "dev/null");
      CHECK (lstat (null, &a) == 0 && S_ISCHR (a.st_mode) && a.st_rdev == makedev (1, 3),
             "device nodes are recreated (dev/null 1:3)");
    }
  else
    tap_skip ("mknod of a device is not permitted here", "device nodes are recreated");
  if (c->socket)
    {
      cleanup_free char *sock = at (dest, "run/sock");
      CHECK (!exists (sock), "sockets are skipped");
    }
  else
    tap_skip ("could not bind a unix socket in the layer", "sockets are skipped");
}

static void
test_merge (void)
{
  cleanup_free char *base = tmpdir ();
  cleanup_free char *l1 = at (base, "l1"), *l2 = at (base, "l2"), *l3 = at (base, "l3");
  cleanup_free char *dest = at (base, "root"), *victim = at (base, "victim");
  cleanup_free char *want = NULL, *got = NULL;
  char *layers[] = { l3, l2, l1, NULL };
  struct flatten_stats st;
  struct caps c = { 0 };
  cella_error_t err = NULL;
  int r;
  mkdir (l1, 0755);
  mkdir (l2, 0755);
  mkdir (l3, 0755);
  mkdir (victim, 0755);
  make_bottom (l1, &c);
  make_middle (base, l2, &c);
  make_top (l3, &c);
  printf ("# can here: whiteouts %d, user xattrs %d, trusted xattrs %d, chown %d, mknod %d\n", c.whiteouts,
          c.user_xattr, c.trusted_xattr, c.chown, c.mknod);
  CHECK (c.whiteouts, "mknod of a whiteout (0:0) is allowed (Linux 5.8+)");
  r = image_flatten (layers, dest, &st, &err);
  CHECK (r == 0, "flatten three layers%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  if (r < 0)
    {
      remove_tree (base);
      return;
    }
  printf ("# copy method on %s: %s\n", base, copy_method_name (st.method));
  want = expected_merge (&c);
  got = list_tree (dest);
  check_tree (got, want, "the merged tree is exactly what overlayfs would show");
  {
    struct stat s;
    CHECK (stat (dest, &s) == 0 && (s.st_mode & 07777) == 0755, "dest is made 0755");
  }
  check_stats (&st, &c, dest);
  check_details (base, l3, dest, &c);

  /* errors */
  {
    cleanup_free char *marker = at (dest, "etc/hosts");
    CHECK (image_flatten (layers, dest, &st, &err) < 0 && err_has (&err, dest),
           "an existing dest is an error naming it");
    CHECK (exists (marker), "and what was there is left alone");
  }
  {
    cleanup_free char *missing = at (base, "no-such-layer"), *d2 = at (base, "root2");
    char *bad[] = { l3, missing, l1, NULL };
    CHECK (image_flatten (bad, d2, &st, &err) < 0 && err_has (&err, missing), "a missing layer is an error naming it");
    CHECK (!exists (d2), "and leaves no dest");
  }
  {
    cleanup_free char *in1 = at (l1, "newroot"), *in2 = at (l1, "opt/newroot"), *alias = at (base, "alias");
    cleanup_free char *via = at (alias, "newroot");
    CHECK (image_flatten (layers, in1, &st, &err) < 0 && err_has (&err, "inside layer") && !exists (in1),
           "dest directly inside a layer is refused");
    CHECK (image_flatten (layers, in2, &st, &err) < 0 && err_has (&err, l1) && !exists (in2),
           "dest deeper inside a layer is refused, naming the layer");
    if (symlink (l2, alias) < 0)
      abort ();
    CHECK (image_flatten (layers, via, &st, &err) < 0 && err_has (&err, "inside layer") && !exists (via),
           "dest inside a layer through a symlink is refused");
  }
  {
    cleanup_free char *d3 = at (base, "root3");
    char *none[] = { NULL };
    struct stat s;
    CHECK (image_flatten (none, d3, &st, &err) == 0 && stat (d3, &s) == 0 && S_ISDIR (s.st_mode) && st.files == 0,
           "no layers: an empty root");
  }
  fflush (stdout);
  remove_tree (base);
}

/* A failure half way (out of file descriptors in a deep tree, after a read-only directory was
 * finished) leaves nothing behind. Run in a child: it lowers its own fd limit. */
static void
test_rollback (void)
{
  cleanup_free char *base = tmpdir ();
  cleanup_free char *l = at (base, "layer"), *dest = at (base, "root");
  char *layers[] = { l, NULL };
  char path[512] = "deep";
  pid_t pid;
  int status = 0;
  mkdir (l, 0755);
  mkd (l, "0ro", 0755);
  put (l, "0ro/file", "f", 0644);
  mkd (l, "0ro/sub", 0755);
  put (l, "0ro/sub/file", "f", 0444);
  {
    cleanup_free char *p = at (l, "0ro/sub"), *q = at (l, "0ro");
    chmod (p, 0555);
    chmod (q, 0555);
  }
  mkd (l, path, 0755);
  for (int i = 0; i < 40; i++)
    {
      strcat (path, "/d");
      mkd (l, path, 0755);
    }
  pid = fork ();
  if (pid == 0)
    {
      cella_error_t err = NULL;
      int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      struct rlimit rl;
      getrlimit (RLIMIT_NOFILE, &rl);
      rl.rlim_cur = (rlim_t) fd + 16;
      close (fd);
      setrlimit (RLIMIT_NOFILE, &rl);
      if (image_flatten (layers, dest, NULL, &err) == 0)
        _exit (2);
      printf ("# the error: %s\n", err->msg);
      fflush (stdout);
      _exit (err->errno_ == EMFILE && strstr (err->msg, "/deep/d") ? 0 : 3);
    }
  waitpid (pid, &status, 0);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "a failure half way is an error naming the entry (%d)",
         WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  CHECK (!exists (dest), "and removes dest, read-only directories in it too");
  {
    cleanup_free char *p = at (l, "0ro/sub"), *q = at (l, "0ro");
    chmod (q, 0755);
    chmod (p, 0755);
  }
  remove_tree (base);
}

static void
test_tree_copy (void)
{
  cleanup_free char *base = tmpdir ();
  cleanup_free char *src = at (base, "src"), *dest = at (base, "copy"), *inside = at (src, "d/copy");
  cleanup_free char *got = NULL, *want = NULL, *a = at (dest, "a"), *a2 = at (dest, "a2");
  cleanup_strv char **w = NULL;
  struct flatten_stats st;
  cella_error_t err = NULL;
  struct stat x, y;
  bool wh, ux;
  mkdir (src, 0755);
  put (src, "a", "A", 0600);
  {
    cleanup_free char *p = at (src, "a"), *q = at (src, "a2");
    if (link (p, q) < 0)
      abort ();
  }
  mkd (src, "d", 0700);
  put (src, "d/b", "B", 0644);
  sym (src, "s", "/etc/shadow");
  wh = whiteout (src, "wh");
  ux = set_x (src, "d", "user.overlay.opaque", "y") && set_x (src, "d", "user.mine", "1");
  CHECK (tree_copy (src, dest, &st, &err) == 0, "tree_copy of a plain directory%s%s", err ? ": " : "",
         err ? err->msg : "");
  cella_error_free (&err);
  for (const char *const *p
       = (const char *const[]){ "a f 0600 A", "a2 f 0600 A", "d d 0700", "d/b f 0644 B", "s l -> /etc/shadow", NULL };
       *p; p++)
    strv_push (&w, *p);
  if (wh)
    strv_push (&w, "wh c 0000 0:0");
  want = sorted (w);
  got = list_tree (dest);
  check_tree (got, want, "tree_copy copies everything as it is (a 0:0 device too: no whiteout logic)");
  CHECK (lstat (a, &x) == 0 && lstat (a2, &y) == 0 && x.st_ino == y.st_ino, "tree_copy keeps hard links");
  CHECK (st.files == 2 && st.hardlinks == 1 && st.symlinks == 1 && st.dirs == 1 && st.bytes == 2
             && st.whiteouts_applied == 0,
         "tree_copy stats: %llu files, %llu links, %llu symlinks, %llu dirs, %llu bytes", (unsigned long long) st.files,
         (unsigned long long) st.hardlinks, (unsigned long long) st.symlinks, (unsigned long long) st.dirs,
         (unsigned long long) st.bytes);
  if (ux)
    {
      cleanup_free char *mine = get_x (dest, "d", "user.mine"), *opq = get_x (dest, "d", "user.overlay.opaque");
      CHECK (mine && strcmp (mine, "1") == 0 && opq == NULL, "tree_copy keeps xattrs but not overlay's");
    }
  else
    tap_skip ("user xattrs refused on this filesystem", "tree_copy xattrs");
  CHECK (tree_copy (src, inside, &st, &err) < 0 && err_has (&err, "inside the source") && !exists (inside),
         "tree_copy into the source is refused");
  CHECK (tree_copy (src, dest, &st, &err) < 0 && err_has (&err, dest), "tree_copy onto an existing dest names it");
  fflush (stdout);
  remove_tree (base);
}

static void
test_names (void)
{
  CHECK_STR (copy_method_name (COPY_REFLINK), "reflink", "copy_method_name reflink");
  CHECK_STR (copy_method_name (COPY_RANGE), "copy_file_range", "copy_method_name copy_file_range");
  CHECK_STR (copy_method_name (COPY_READ_WRITE), "read/write", "copy_method_name read/write");
}

int
main (void)
{
  umask (022);
  test_names ();
  test_merge ();
  test_rollback ();
  test_tree_copy ();
  return tap_done ();
}
