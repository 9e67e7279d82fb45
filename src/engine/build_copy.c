/* cella build: COPY and ADD into a step's upper dir (build.h). Sources are read relative to a
 * root (the context, or a flattened stage or image) without following a symlink out of it: a
 * symlink is copied as a symlink, a path through one that leaves the root is refused. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../image/dockerfile.h"
#include "../plan/build.h"
#include "build_internal.h"

int
bc_open (int rootfd, const char *rel, int flags, bool in_root)
{
  struct open_how how = { .flags = (unsigned long long) (flags | O_CLOEXEC),
                          .resolve = (in_root ? RESOLVE_IN_ROOT : RESOLVE_BENEATH) | RESOLVE_NO_MAGICLINKS };
  return (int) syscall (SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
}

/* ---- the content hash (cache keys) -------------------------------------------------------------- */

void
bh_init (struct bhash *h)
{
  h->a = 0xcbf29ce484222325ULL;
  h->b = 0x84222325cbf29ce4ULL;
}

void
bh_update (struct bhash *h, const void *buf, size_t len)
{
  const unsigned char *p = buf;
  for (size_t i = 0; i < len; i++)
    {
      h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
      h->b = (h->b ^ p[i]) * 0x100000001b3ULL;
      h->b ^= h->b >> 29;
    }
}

void
bh_str (struct bhash *h, const char *s)
{
  bh_update (h, s, strlen (s) + 1);
}

void
bh_hex (const struct bhash *h, char out[33])
{
  snprintf (out, 33, "%016llx%016llx", (unsigned long long) h->a, (unsigned long long) h->b);
}

/* Hash what is at rel under rootfd (a file's mode, owner-free, and content; a link's text; a
 * directory's entries, sorted), skipping what ig excludes. */
static int
hash_entry (int dfd, const char *name, const char *rel, const struct df_ignore *ig, struct bhash *h)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  bh_str (h, rel);
  bh_update (h, &st.st_mode, sizeof st.st_mode);
  if (S_ISLNK (st.st_mode))
    {
      char buf[4096];
      ssize_t n = readlinkat (dfd, name, buf, sizeof buf - 1);
      if (n < 0)
        return -1;
      bh_update (h, buf, (size_t) n);
    }
  else if (S_ISREG (st.st_mode))
    {
      char buf[65536];
      ssize_t n;
      int fd = openat (dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return -1;
      while ((n = read (fd, buf, sizeof buf)) > 0)
        bh_update (h, buf, (size_t) n);
      close (fd);
    }
  else if (S_ISDIR (st.st_mode))
    {
      struct dirent **v = NULL;
      int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), n, rc = 0;
      if (fd < 0)
        return -1;
      n = scandirat (fd, ".", &v, NULL, alphasort);
      for (int i = 0; i < n; i++)
        {
          if (rc == 0 && strcmp (v[i]->d_name, ".") && strcmp (v[i]->d_name, ".."))
            {
              cleanup_free char *r = *rel ? xasprintf ("%s/%s", rel, v[i]->d_name) : xstrdup (v[i]->d_name);
              if (ig == NULL || !df_ignore_match (ig, r) || df_ignore_may_except (ig, r))
                rc = hash_entry (fd, v[i]->d_name, r, ig, h);
            }
          free (v[i]);
        }
      free (v);
      close (fd);
      return n < 0 ? -1 : rc;
    }
  return 0;
}

int
bc_hash_source (int rootfd, const char *rel, const struct df_ignore *ig, struct bhash *h)
{
  int fd;
  char *slash = strrchr (rel, '/');
  cleanup_free char *dir = slash ? strndup (rel, (size_t) (slash - rel)) : xstrdup ("");
  int r;
  fd = bc_open (rootfd, dir, O_PATH | O_DIRECTORY, false);
  if (fd < 0)
    return -1;
  r = hash_entry (fd, *rel ? (slash ? slash + 1 : rel) : ".", rel, ig, h);
  close (fd);
  return r;
}

/* ---- sources: globs ------------------------------------------------------------------------------ */

static bool
has_glob (const char *s)
{
  return strpbrk (s, "*?[") != NULL;
}

static bool
ignored (const struct df_ignore *ig, const char *rel)
{
  return ig && *rel && df_ignore_match (ig, rel) && !df_ignore_may_except (ig, rel);
}

static int
glob_walk (int rootfd, const char *dir, const char *pattern, bool in_root, const struct df_ignore *ig, char ***out)
{
  const char *slash = strchr (pattern, '/');
  cleanup_free char *comp = slash ? strndup (pattern, (size_t) (slash - pattern)) : xstrdup (pattern);
  struct dirent **v = NULL;
  int fd, n;
  if (!has_glob (comp))
    {
      cleanup_free char *p = *dir ? xasprintf ("%s/%s", dir, comp) : xstrdup (comp);
      int t = bc_open (rootfd, p, O_PATH | O_NOFOLLOW, in_root);
      if (t < 0)
        return 0;
      close (t);
      if (slash)
        return glob_walk (rootfd, p, slash + 1, in_root, ig, out);
      if (!ignored (ig, p))
        strv_push (out, p);
      return 0;
    }
  fd = bc_open (rootfd, dir, O_RDONLY | O_DIRECTORY, in_root);
  if (fd < 0)
    return 0;
  n = scandirat (fd, ".", &v, NULL, alphasort);
  for (int i = 0; i < n; i++)
    {
      if (strcmp (v[i]->d_name, ".") && strcmp (v[i]->d_name, "..") && fnmatch (comp, v[i]->d_name, 0) == 0)
        {
          cleanup_free char *p = *dir ? xasprintf ("%s/%s", dir, v[i]->d_name) : xstrdup (v[i]->d_name);
          if (slash)
            glob_walk (rootfd, p, slash + 1, in_root, ig, out);
          else if (!ignored (ig, p))
            strv_push (out, p);
        }
      free (v[i]);
    }
  free (v);
  close (fd);
  return 0;
}

/* The sources a COPY word names under rootfd, relative and cleaned; an error names the word when it
 * leaves the root or matches nothing. */
int
bc_sources (int rootfd, const char *word, bool in_root, const struct df_ignore *ig, const char *where, char ***out,
            cella_error_t *err)
{
  cleanup_free char *clean = path_clean (*word == '/' ? word + 1 : word);
  const char *rel = clean;
  while (*rel == '/')
    rel++;
  size_t before = strv_len (*out);
  if (strcmp (rel, ".") == 0)
    rel = "";
  if (strcmp (rel, "..") == 0 || has_prefix (rel, "../"))
    return cella_error (err, 0, "%s: `%s` is outside the build context", where, word);
  if (has_glob (rel))
    {
      glob_walk (rootfd, "", rel, in_root, ig, out);
      if (strv_len (*out) == before)
        return cella_error (err, 0, "%s: no source file matches `%s`", where, word);
      return 0;
    }
  {
    int fd = bc_open (rootfd, rel, O_PATH | O_NOFOLLOW, in_root);
    if (fd < 0)
      {
        if (errno == EXDEV || errno == ELOOP)
          return cella_error (err, 0, "%s: `%s` is outside the build context (through a symlink)", where, word);
        return cella_error (err, errno, "%s: source `%s`", where, word);
      }
    close (fd);
  }
  if (ignored (ig, rel))
    return cella_error (err, 0, "%s: `%s` is excluded by .dockerignore", where, word);
  strv_push (out, rel);
  return 0;
}

/* ---- the copy ------------------------------------------------------------------------------------ */

static int
set_attrs (int dfd, const char *name, const struct stat *st, const struct copy_job *j)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  uid_t uid = j->uid;
  gid_t gid = j->gid;
  if (!j->chown_set && !j->is_context)
    {
      uid = st->st_uid;
      gid = st->st_gid;
    }
  if (fchownat (dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL)
    return -1;
  if (!S_ISLNK (st->st_mode))
    {
      mode_t m = j->chmod_set ? j->mode : (st->st_mode & 07777);
      if (fchmodat (dfd, name, m, 0) < 0)
        return -1;
    }
  utimensat (dfd, name, ts, AT_SYMLINK_NOFOLLOW);
  return 0;
}

static int
copy_data (int in, int out)
{
  char buf[65536];
  ssize_t n;
  for (;;)
    {
      ssize_t c = copy_file_range (in, NULL, out, NULL, 1 << 30, 0);
      if (c == 0)
        return 0;
      if (c < 0)
        break;
    }
  while ((n = read (in, buf, sizeof buf)) > 0)
    if (write_all (out, buf, (size_t) n) < 0)
      return -1;
  return n < 0 ? -1 : 0;
}

static int copy_dir_contents (int sfd, int dfd, const char *rel, const struct copy_job *j, cella_error_t *err);

/* Copy sname (in sfd) to dname (in dfd). */
static int
copy_entry (int sfd, const char *sname, int dfd, const char *dname, const char *rel, const struct copy_job *j,
            cella_error_t *err)
{
  struct stat st, dst;
  if (fstatat (sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "%s: read `%s`", j->where, rel);
  if (fstatat (dfd, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !(S_ISDIR (st.st_mode) && S_ISDIR (dst.st_mode)))
    {
      if (S_ISDIR (dst.st_mode) ? remove_tree_at (dfd, dname) < 0 : unlinkat (dfd, dname, 0) < 0)
        return cella_error (err, errno, "%s: replace `%s`", j->where, dname);
    }
  if (S_ISDIR (st.st_mode))
    {
      int s2, d2, r;
      if (mkdirat (dfd, dname, 0700) < 0 && errno != EEXIST)
        return cella_error (err, errno, "%s: mkdir `%s`", j->where, dname);
      s2 = openat (sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      d2 = openat (dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (s2 < 0 || d2 < 0)
        r = cella_error (err, errno, "%s: open `%s`", j->where, rel);
      else
        r = copy_dir_contents (s2, d2, rel, j, err);
      if (s2 >= 0)
        close (s2);
      if (d2 >= 0)
        close (d2);
      if (r < 0)
        return -1;
    }
  else if (S_ISLNK (st.st_mode))
    {
      char buf[4096];
      ssize_t n = readlinkat (sfd, sname, buf, sizeof buf - 1);
      if (n < 0)
        return cella_error (err, errno, "%s: readlink `%s`", j->where, rel);
      buf[n] = '\0';
      if (symlinkat (buf, dfd, dname) < 0)
        return cella_error (err, errno, "%s: symlink `%s`", j->where, dname);
    }
  else if (S_ISREG (st.st_mode))
    {
      int in = openat (sfd, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out, r;
      if (in < 0)
        return cella_error (err, errno, "%s: open `%s`", j->where, rel);
      out = openat (dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (out < 0)
        {
          close (in);
          return cella_error (err, errno, "%s: create `%s`", j->where, dname);
        }
      r = copy_data (in, out);
      close (in);
      close (out);
      if (r < 0)
        return cella_error (err, errno, "%s: copy `%s`", j->where, rel);
    }
  else
    return 0; /* devices, fifos, sockets of a context: not copied */
  if (set_attrs (dfd, dname, &st, j) < 0)
    return cella_error (err, errno, "%s: set owner and mode of `%s`", j->where, dname);
  return 0;
}

static int
copy_dir_contents (int sfd, int dfd, const char *rel, const struct copy_job *j, cella_error_t *err)
{
  struct dirent **v = NULL;
  int n = scandirat (sfd, ".", &v, NULL, alphasort), rc = 0;
  if (n < 0)
    return cella_error (err, errno, "%s: list `%s`", j->where, *rel ? rel : ".");
  for (int i = 0; i < n; i++)
    {
      if (rc == 0 && strcmp (v[i]->d_name, ".") && strcmp (v[i]->d_name, ".."))
        {
          cleanup_free char *r = *rel ? xasprintf ("%s/%s", rel, v[i]->d_name) : xstrdup (v[i]->d_name);
          if (j->ignore == NULL || !df_ignore_match (j->ignore, r) || df_ignore_may_except (j->ignore, r))
            rc = copy_entry (sfd, v[i]->d_name, dfd, v[i]->d_name, r, j, err);
        }
      free (v[i]);
    }
  free (v);
  return rc;
}

/* The directory dir (absolute in the container) made in the upper dir, each missing component
 * with the mode and owner the image has there (0755 root where it has none), a symlink of the
 * image followed (inside the image). Its fd out, and the resolved path. */
static int
upper_mkdirs (const struct copy_job *j, const struct root_view *view, const char *dir, char **resolved,
              cella_error_t *err)
{
  cleanup_free char *path = path_clean (dir);
  int fd = open (j->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC), hops = 0;
  char *done = xstrdup ("");
  const char *p = path;
  if (fd < 0)
    {
      free (done);
      return cella_error (err, errno, "open `%s`", j->upper);
    }
  while (*p)
    {
      size_t n;
      char *comp, *sub;
      struct stat st;
      int lfd, nfd;
      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
      n = strcspn (p, "/");
      comp = strndup (p, n);
      p += n;
      sub = xasprintf ("%s/%s", done, comp);
      if (fstatat (fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
        ;
      else if ((lfd = view->n ? root_view_openat (view, sub, O_PATH | O_NOFOLLOW) : -1) >= 0 && fstat (lfd, &st) == 0
               && S_ISLNK (st.st_mode) && hops++ < 40)
        {
          char buf[4096];
          ssize_t ln = readlinkat (lfd, "", buf, sizeof buf - 1);
          close (lfd);
          if (ln < 0)
            goto fail_errno;
          buf[ln] = '\0';
          /* start again from the root with the link's target in place of the component */
          {
            cleanup_free char *np = buf[0] == '/' ? xasprintf ("%s%s", buf, p) : xasprintf ("%s/%s%s", done, buf, p);
            free (path);
            path = path_clean (np);
          }
          p = path;
          free (done);
          done = xstrdup ("");
          free (comp);
          free (sub);
          close (fd);
          fd = open (j->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (fd < 0)
            goto fail_errno;
          continue;
        }
      else
        {
          mode_t mode = 0755;
          uid_t uid = 0;
          gid_t gid = 0;
          if (lfd >= 0)
            {
              if (S_ISDIR (st.st_mode))
                {
                  mode = st.st_mode & 07777;
                  uid = st.st_uid;
                  gid = st.st_gid;
                }
              close (lfd);
            }
          if (mkdirat (fd, comp, mode) < 0 && errno != EEXIST)
            goto fail_errno;
          if (fchownat (fd, comp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL)
            goto fail_errno;
          if (fchmodat (fd, comp, mode, 0) < 0)
            goto fail_errno;
        }
      nfd = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = nfd;
      free (done);
      done = sub;
      free (comp);
      if (fd < 0)
        {
          free (done);
          return cella_error (err, errno, "%s: destination `%s`", j->where, dir);
        }
      continue;
    fail_errno:
      {
        int e = errno;
        free (comp);
        free (sub);
        free (done);
        if (fd >= 0)
          close (fd);
        return cella_error (err, e, "%s: destination `%s`", j->where, dir);
      }
    }
  *resolved = *done ? done : (free (done), xstrdup ("/"));
  return fd;
}

/* ADD of a local tar archive: unpacked by the host's tar into dest. */
static int
untar (const struct copy_job *j, int sroot, const char *rel, int dfd, cella_error_t *err)
{
  int in = bc_open (sroot, rel, O_RDONLY | O_NOFOLLOW, !j->is_context);
  pid_t pid;
  int status;
  if (in < 0)
    return cella_error (err, errno, "%s: open `%s`", j->where, rel);
  pid = fork ();
  if (pid < 0)
    {
      close (in);
      return cella_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      if (dup2 (in, 0) < 0 || fchdir (dfd) < 0)
        _exit (127);
      execlp ("tar", "tar", "-x", "-f", "/proc/self/fd/0", "--no-overwrite-dir", (char *) NULL);
      _exit (127);
    }
  close (in);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "wait for tar");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "%s: unpack the archive `%s` failed (tar exit status %d)", j->where, rel,
                        WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
  return 0;
}

static bool
is_archive (int sroot, const char *rel, bool in_root)
{
  unsigned char m[262];
  int fd = bc_open (sroot, rel, O_RDONLY | O_NOFOLLOW, in_root);
  ssize_t n;
  if (fd < 0)
    return false;
  n = read (fd, m, sizeof m);
  close (fd);
  if (n >= 3 && m[0] == 0x1f && m[1] == 0x8b)
    return true; /* gzip */
  if (n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
    return true;
  if (n >= 6 && m[0] == 0xfd && memcmp (m + 1, "7zXZ", 4) == 0)
    return true;
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
    return true;
  return n >= 262 && memcmp (m + 257, "ustar", 5) == 0;
}

/* The whole COPY/ADD, in the process that may set the container's owners (ns_run_mapped). */
int
bc_copy_run (void *ud, cella_error_t *err)
{
  const struct copy_job *j = ud;
  struct root_view view = { 0 };
  int sroot = -1, rc = -1;
  cleanup_free char *dest = NULL;
  if (j->bottom && root_view_open (&view, j->layers, j->bottom, err) < 0)
    return -1;
  if (j->src_root && (sroot = open (j->src_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      cella_error (err, errno, "open `%s`", j->src_root);
      goto out;
    }
  if (j->heredoc_data)
    {
      /* COPY <<EOF /dest: one file */
      char *slash;
      cleanup_free char *parent = NULL, *real = NULL;
      const char *name;
      int dfd, fd;
      if (j->dest_dir)
        dest = xasprintf ("%s/%s", j->dest, j->heredoc_name);
      else
        dest = xstrdup (j->dest);
      slash = strrchr (dest, '/');
      parent = strndup (dest, (size_t) (slash - dest));
      name = slash + 1;
      if ((dfd = upper_mkdirs (j, &view, *parent ? parent : "/", &real, err)) < 0)
        goto out;
      unlinkat (dfd, name, 0);
      fd = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0 || write_all (fd, j->heredoc_data, strlen (j->heredoc_data)) < 0
          || fchownat (dfd, name, j->uid, j->gid, AT_SYMLINK_NOFOLLOW) < 0
          || fchmodat (dfd, name, j->chmod_set ? j->mode : 0644, 0) < 0)
        {
          cella_error (err, errno, "%s: write `%s`", j->where, dest);
          if (fd >= 0)
            close (fd);
          close (dfd);
          goto out;
        }
      close (fd);
      close (dfd);
      rc = 0;
      goto out;
    }
  for (size_t i = 0; j->sources[i]; i++)
    {
      const char *rel = j->sources[i];
      struct stat st;
      int sfd;
      char *slash = strrchr (rel, '/');
      cleanup_free char *sdir = slash ? strndup (rel, (size_t) (slash - rel)) : xstrdup ("");
      const char *sname = *rel ? (slash ? slash + 1 : rel) : ".";
      sfd = bc_open (sroot, sdir, O_RDONLY | O_DIRECTORY, !j->is_context);
      if (sfd < 0 || fstatat (sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          cella_error (err, errno, "%s: source `%s`", j->where, *rel ? rel : ".");
          if (sfd >= 0)
            close (sfd);
          goto out;
        }
      if (S_ISDIR (st.st_mode) || (j->add && S_ISREG (st.st_mode) && is_archive (sroot, rel, !j->is_context)))
        {
          /* a directory: its contents into dest; an archive (ADD): unpacked there */
          cleanup_free char *real = NULL;
          int dfd = upper_mkdirs (j, &view, j->dest, &real, err), r;
          if (dfd < 0)
            {
              close (sfd);
              goto out;
            }
          if (S_ISDIR (st.st_mode))
            {
              int s2 = openat (sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
              r = s2 < 0 ? cella_error (err, errno, "%s: open `%s`", j->where, rel)
                         : copy_dir_contents (s2, dfd, rel, j, err);
              if (s2 >= 0)
                close (s2);
            }
          else
            r = untar (j, sroot, rel, dfd, err);
          close (dfd);
          close (sfd);
          if (r < 0)
            goto out;
          continue;
        }
      {
        cleanup_free char *target = NULL, *parent = NULL, *real = NULL;
        const char *base = strrchr (rel, '/') ? strrchr (rel, '/') + 1 : rel;
        char *s2;
        int dfd, r;
        target = j->dest_dir ? xasprintf ("%s/%s", j->dest, base) : xstrdup (j->dest);
        s2 = strrchr (target, '/');
        parent = strndup (target, (size_t) (s2 - target));
        dfd = upper_mkdirs (j, &view, *parent ? parent : "/", &real, err);
        if (dfd < 0)
          {
            close (sfd);
            goto out;
          }
        r = copy_entry (sfd, sname, dfd, s2 + 1, rel, j, err);
        close (dfd);
        close (sfd);
        if (r < 0)
          goto out;
      }
    }
  rc = 0;
out:
  if (sroot >= 0)
    close (sroot);
  if (j->bottom)
    root_view_close (&view);
  return rc;
}
