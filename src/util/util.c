#define _GNU_SOURCE
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int
error_vset (cella_error_t *err, int status, int errno_, const char *fmt, va_list ap)
{
  cella_error_t e;
  if (err == NULL)
    return -1;
  e = xzalloc (sizeof *e);
  e->errno_ = errno_;
  e->status = status;
  if (vasprintf (&e->msg, fmt, ap) < 0)
    abort ();
  cella_error_free (err);
  *err = e;
  return errno_ > 0 ? -errno_ : -1;
}

int
cella_error (cella_error_t *err, int errno_, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start (ap, fmt);
  r = error_vset (err, EXIT_CELLA_ERROR, errno_, fmt, ap);
  va_end (ap);
  return r;
}

int
cella_error_status (cella_error_t *err, int status, int errno_, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start (ap, fmt);
  r = error_vset (err, status, errno_, fmt, ap);
  va_end (ap);
  return r;
}

int
cella_error_wrap (cella_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *ctx, *msg;
  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&ctx, fmt, ap) < 0)
    abort ();
  va_end (ap);
  msg = xasprintf ("%s: %s", ctx, (*err)->msg);
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = msg;
  return (*err)->errno_ > 0 ? -(*err)->errno_ : -1;
}

void
cella_error_free (cella_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}

int
cella_error_print (cella_error_t *err)
{
  int status = EXIT_CELLA_ERROR;
  if (err == NULL || *err == NULL)
    {
      fprintf (stderr, "cella: unknown error\n");
      return status;
    }
  if ((*err)->errno_ > 0)
    fprintf (stderr, "cella: %s: %s\n", (*err)->msg, strerror ((*err)->errno_));
  else
    fprintf (stderr, "cella: %s\n", (*err)->msg);
  status = (*err)->status;
  cella_error_free (err);
  return status;
}

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

void *
xzalloc (size_t n)
{
  void *p = calloc (1, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

char *
xstrdup (const char *s)
{
  char *p;
  if (s == NULL)
    return NULL;
  p = strdup (s);
  if (p == NULL)
    abort ();
  return p;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return s;
}

void
cleanup_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
      *fd = -1;
    }
}

void
cleanup_fclosep (void *f)
{
  FILE **fp = f;
  if (*fp)
    fclose (*fp);
}

void
cleanup_strvp (char ***v)
{
  strv_free (*v);
  *v = NULL;
}

int
str_index (const char *const *names, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (names[i] && s && strcmp (names[i], s) == 0)
      return (int) i;
  return -1;
}

size_t
strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void
strv_push (char ***v, const char *s)
{
  size_t n = strv_len (*v);
  *v = xrealloc (*v, (n + 2) * sizeof (char *));
  (*v)[n] = xstrdup (s);
  (*v)[n + 1] = NULL;
}

void
strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

char **
strv_dup (char *const *v)
{
  char **r = NULL;
  size_t n = strv_len (v);
  r = xzalloc ((n + 1) * sizeof (char *));
  for (size_t i = 0; i < n; i++)
    r[i] = xstrdup (v[i]);
  return r;
}

int
read_all_fd (int fd, char **out, size_t *len, cella_error_t *err)
{
  size_t cap = 4096, n = 0;
  char *buf = xmalloc (cap + 1);
  for (;;)
    {
      ssize_t r = read (fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          free (buf);
          return cella_error (err, errno, "read");
        }
      if (r == 0)
        break;
      n += r;
      if (n == cap)
        {
          cap *= 2;
          buf = xrealloc (buf, cap + 1);
        }
    }
  buf[n] = '\0';
  *out = buf;
  if (len)
    *len = n;
  return 0;
}

int
read_file (const char *path, char **out, size_t *len, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "open `%s`", path);
  if (read_all_fd (fd, out, len, err) < 0)
    return cella_error_wrap (err, "`%s`", path);
  return 0;
}

int
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t w = write (fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      p += w;
      len -= w;
    }
  return 0;
}

static int
replace_file (const char *path, const void *buf, size_t len, mode_t mode, bool durable, cella_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp.%d", path, (int) getpid ());
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return cella_error (err, errno, "create `%s`", tmp);
  if (write_all (fd, buf, len) < 0 || (durable && fsync (fd) < 0))
    {
      int e = errno;
      unlink (tmp);
      return cella_error (err, e, "write `%s`", tmp);
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return cella_error (err, e, "rename `%s` to `%s`", tmp, path);
    }
  if (durable)
    fsync_parent (path);
  return 0;
}

int
write_file_atomic (const char *path, const void *buf, size_t len, mode_t mode, cella_error_t *err)
{
  return replace_file (path, buf, len, mode, true, err);
}

int
write_file_volatile (const char *path, const void *buf, size_t len, mode_t mode, cella_error_t *err)
{
  return replace_file (path, buf, len, mode, false, err);
}

void
fsync_parent (const char *path)
{
  /* the rename itself is only durable once the directory is */
  cleanup_free char *dir = xstrdup (path);
  char *slash = strrchr (dir, '/');
  cleanup_close int dfd = -1;
  if (slash == NULL)
    dfd = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  else
    {
      *(slash == dir ? slash + 1 : slash) = '\0';
      dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
  if (dfd >= 0)
    fsync (dfd);
}

int
mkdir_p (const char *path, mode_t mode, cella_error_t *err)
{
  cleanup_free char *p = xstrdup (path);
  for (char *s = p + 1; *s; s++)
    {
      if (*s != '/')
        continue;
      *s = '\0';
      if (mkdir (p, mode) < 0 && errno != EEXIST)
        return cella_error (err, errno, "mkdir `%s`", p);
      *s = '/';
    }
  if (mkdir (p, mode) < 0 && errno != EEXIST)
    return cella_error (err, errno, "mkdir `%s`", p);
  return 0;
}

bool
has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

long long
parse_uint (const char *s, unsigned long long max)
{
  char *end;
  unsigned long long v;
  if (s == NULL || !isdigit ((unsigned char) *s))
    return -1;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || *end || v > max || v > LLONG_MAX)
    return -1;
  return (long long) v;
}

long long
parse_size (const char *s)
{
  char *end;
  unsigned long long v, mult = 1;
  if (s == NULL || !isdigit ((unsigned char) *s))
    return -1;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno)
    return -1;
  switch (tolower ((unsigned char) *end))
    {
    case '\0': break;
    case 'b': mult = 1; end++; break;
    case 'k': mult = 1ULL << 10; end++; break;
    case 'm': mult = 1ULL << 20; end++; break;
    case 'g': mult = 1ULL << 30; end++; break;
    case 't': mult = 1ULL << 40; end++; break;
    default: return -1;
    }
  if (mult > 1 && (*end == 'b' || *end == 'B'))
    end++;
  if (*end != '\0' || (v && mult > ULLONG_MAX / v) || v * mult > LLONG_MAX)
    return -1;
  return (long long) (v * mult);
}

void
colon_db_each (char *text, int (*fn) (char **f, size_t n, void *ud), void *ud)
{
  for (char *line = text, *next; line && *line; line = next)
    {
      char *f[8];
      size_t n = 0;
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      for (char *s = line; n < 8;)
        {
          f[n++] = s;
          s = strchr (s, ':');
          if (s == NULL)
            break;
          *s++ = '\0';
        }
      if (fn (f, n, ud) > 0)
        return;
    }
}

struct passwd_query {
  uid_t uid;
  int field;
  char *found;
};

static int
passwd_match (char **f, size_t n, void *ud)
{
  struct passwd_query *q = ud;
  if (n < 7 || parse_uint (f[2], UINT32_MAX) != (long long) q->uid)
    return 0;
  q->found = xstrdup (f[q->field]);
  return 1;
}

char *
host_passwd_field (uid_t uid, int field)
{
  cleanup_free char *text = NULL;
  struct passwd_query q = { .uid = uid, .field = field };
  if (field < 0 || field > 6 || read_file ("/etc/passwd", &text, NULL, NULL) < 0)
    return NULL;
  colon_db_each (text, passwd_match, &q);
  return q.found;
}

/* rm -rf without following symlinks (engine containers, image layers). */
int
remove_tree_at (int dfd, const char *name)
{
  cleanup_close int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d;
  struct dirent *e;
  int r = 0;
  if (fd < 0 && errno == EACCES && fchmodat (dfd, name, 0700, 0) == 0)
    fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* overlay's work/work is 000 */
  if (fd < 0)
    return unlinkat (dfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
  d = fdopendir (dup (fd));
  if (d == NULL)
    return -1;
  while ((e = readdir (d)) != NULL)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
        {
          if (remove_tree_at (fd, e->d_name) < 0)
            r = -1;
        }
      else if (unlinkat (fd, e->d_name, 0) < 0 && errno != ENOENT)
        r = -1;
    }
  closedir (d);
  if (unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    r = -1;
  return r;
}

int
remove_tree (const char *path)
{
  return remove_tree_at (AT_FDCWD, path);
}

bool
in_initial_userns (void)
{
  static int cached = -1;
  if (cached < 0)
    {
      char buf[128] = "";
      int fd = open ("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
      ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      unsigned a, b, c;
      if (fd >= 0)
        close (fd);
      cached = n > 0 && sscanf (buf, "%u %u %u", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295u;
    }
  return cached;
}

void
error_send (int sock, const cella_error_t e)
{
  char msg[1024];
  int n = snprintf (msg, sizeof msg, "%d\n%s", e ? e->errno_ : 0, e && e->msg ? e->msg : "failed");
  if (n > (int) sizeof msg - 1)
    n = (int) sizeof msg - 1;
  send (sock, msg, (size_t) n, MSG_NOSIGNAL);
}

int
error_recv (int sock, cella_error_t *err)
{
  char msg[1024], *nl;
  ssize_t n;
  do
    n = recv (sock, msg, sizeof msg - 1, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return 1;
  msg[n] = '\0';
  nl = strchr (msg, '\n');
  if (nl == NULL)
    cella_error (err, 0, "%s", msg);
  else
    {
      *nl = '\0';
      cella_error (err, atoi (msg), "%s", nl + 1);
    }
  return 0;
}
