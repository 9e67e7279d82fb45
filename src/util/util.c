#define _GNU_SOURCE
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool
name_token_valid (const char *name, size_t max)
{
  size_t n = name ? strlen (name) : 0;
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = name[i];
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
        return false;
    }
  return true;
}

bool
ctr_name_valid (const char *name)
{
  return name_token_valid (name, 128);
}

char *
utc_now_rfc3339 (void)
{
  char buf[64];
  time_t t = time (NULL);
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup (buf);
}

static const struct {
  const char *name;
  int num;
} signals[] = {
  { "HUP", SIGHUP },   { "INT", SIGINT },     { "QUIT", SIGQUIT }, { "ILL", SIGILL },   { "TRAP", SIGTRAP },
  { "ABRT", SIGABRT }, { "BUS", SIGBUS },     { "FPE", SIGFPE },   { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
  { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
  { "CHLD", SIGCHLD }, { "CONT", SIGCONT },   { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
  { "TTOU", SIGTTOU }, { "URG", SIGURG },     { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
  { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },     { "PWR", SIGPWR },   { "SYS", SIGSYS },
};

int
signal_parse (const char *s)
{
  long long n = parse_uint (s, 64);
  if (n > 0)
    return (int) n;
  if (strncasecmp (s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcasecmp (s, signals[i].name) == 0)
      return signals[i].num;
  return -1;
}

static int __attribute__ ((format (printf, 4, 0)))
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

char **
strv_new (size_t n)
{
  return xzalloc ((n + 1) * sizeof (char *));
}

void
strv_append_all (char ***v, char *const *more)
{
  size_t n = strv_len (*v), m = strv_len (more);
  if (m == 0)
    return;
  *v = xrealloc (*v, (n + m + 1) * sizeof (char *));
  for (size_t i = 0; i < m; i++)
    (*v)[n + i] = xstrdup (more[i]);
  (*v)[n + m] = NULL;
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
  /* An unpredictable temp name made with O_EXCL (mkostemp): in a directory others can write
   * (a --pid-file's), a symlink or a file planted at the name is never followed or truncated. */
  cleanup_free char *tmp = xasprintf ("%s.tmp-XXXXXX", path);
  cleanup_close int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "create a temp file next to `%s`", path);
  if (fchmod (fd, mode) < 0 || write_all (fd, buf, len) < 0 || (durable && fsync (fd) < 0))
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

char *
path_clean (const char *path)
{
  char *out = xmalloc (strlen (path) + 2), *o = out;
  for (const char *s = path; *s;)
    {
      size_t n;
      while (*s == '/')
        s++;
      n = strcspn (s, "/");
      if (n == 1 && s[0] == '.')
        n = 0;
      if (n)
        {
          *o++ = '/';
          memcpy (o, s, n);
          o += n;
        }
      s += n ? n : (*s == '.');
    }
  if (o == out)
    *o++ = '/';
  *o = '\0';
  return out;
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

int
state_dir_ensure (const char *path, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 && errno == ENOENT)
    {
      /* made here, before anything is put in it: whoever wins a race to create it is checked below */
      cleanup_free char *parent = xstrdup (path);
      char *slash = strrchr (parent, '/');
      if (slash && slash != parent)
        {
          *slash = '\0';
          if (mkdir_p (parent, 0700, err) < 0)
            return cella_error_wrap (err, "state directory `%s`", path);
        }
      if (mkdir (path, 0700) < 0 && errno != EEXIST)
        return cella_error (err, errno, "create the state directory `%s`", path);
      fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
  if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
    return cella_error (err, 0,
                        "state directory `%s` is a symlink or not a directory: refusing to use it (remove it, "
                        "or choose another place)",
                        path);
  if (fd < 0 || fstat (fd, &st) < 0)
    return cella_error (err, errno, "state directory `%s`", path);
  if (st.st_uid != geteuid ())
    return cella_error (err, 0,
                        "state directory `%s` belongs to uid %u, not to you (uid %u): refusing to use it, since "
                        "its owner could plant state there (remove it, or set XDG_RUNTIME_DIR)",
                        path, (unsigned) st.st_uid, (unsigned) geteuid ());
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return cella_error (err, 0,
                        "state directory `%s` has mode %04o: others may write it, refusing to use it "
                        "(chmod 700 it)",
                        path, (unsigned) (st.st_mode & 07777));
  /* ours and written by nobody else, but others may read or enter it (made by hand, umask 022):
   * what it holds (names, commands, pids) is the caller's alone */
  if ((st.st_mode & 0077) && fchmod (fd, st.st_mode & 07700) < 0)
    return cella_error (err, errno, "state directory `%s`: make it private (mode 0700)", path);
  return 0;
}

static bool
status_mask (const char *text, const char *field, uint64_t *out)
{
  const char *f = text;
  char *end;
  while ((f = strstr (f, field)) != NULL && f != text && f[-1] != '\n')
    f++;
  if (f == NULL)
    return false;
  f += strlen (field);
  while (*f == '\t' || *f == ' ')
    f++;
  errno = 0;
  *out = strtoull (f, &end, 16);
  return errno == 0 && end != f && (*end == '\n' || *end == '\0');
}

uint64_t
signals_not_default_in (const char *status)
{
  uint64_t ign, cgt;
  if (status == NULL || !status_mask (status, "SigIgn:", &ign) || !status_mask (status, "SigCgt:", &cgt))
    return ~0ULL;
  return ign | cgt;
}

/* The signals whose disposition is not SIG_DFL (bit sig - 1), from this process's /proc status; every
 * one when that cannot be read (no /proc, or something else mounted there). */
static uint64_t
signals_not_default (void)
{
  char buf[8192];
  size_t len = 0;
  ssize_t n;
  struct statfs sf;
  int fd = open ("/proc/self/status", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ~0ULL;
  if (fstatfs (fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
    {
      close (fd);
      return ~0ULL;
    }
  while (len < sizeof buf - 1 && (n = read (fd, buf + len, sizeof buf - 1 - len)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          close (fd);
          return ~0ULL;
        }
      len += (size_t) n;
    }
  close (fd);
  buf[len] = '\0';
  return signals_not_default_in (buf);
}

void
signals_default (void)
{
  /* the kernel's struct sigaction: glibc's sigaction() refuses signals 32 and 33 (its own), so a
   * SIG_IGN of theirs (GNU make sets both) would reach the workload */
  struct {
    void (*handler) (int);
    unsigned long flags;
    void (*restorer) (void);
    uint64_t mask;
  } dfl = { .handler = SIG_DFL };
  sigset_t none;
  /* a disposition of SIG_IGN survives execve: the caller's (nohup, a shell's `trap ''`) or the
   * monitor's own would reach the workload. Only those that are not SIG_DFL already: a system call
   * for each of the 62 signals cost ~0.3 ms of every start on the development VM, the status file
   * that lists them ~0.07 ms. */
  uint64_t todo = signals_not_default ();
  for (int sig = 1; sig < NSIG && sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP && (todo & (1ULL << (sig - 1))))
      syscall (SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
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
    case '\0':
      break;
    case 'b':
      mult = 1;
      end++;
      break;
    case 'k':
      mult = 1ULL << 10;
      end++;
      break;
    case 'm':
      mult = 1ULL << 20;
      end++;
      break;
    case 'g':
      mult = 1ULL << 30;
      end++;
      break;
    case 't':
      mult = 1ULL << 40;
      end++;
      break;
    default:
      return -1;
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

/* rm -rf without following symlinks (engine containers, image layers), and without a descriptor
 * per level: a container can make a tree deeper than the descriptors a process may hold. Only
 * the RM_HELD deepest directories of the walk stay open; going up past them reopens the parent
 * through ".." and checks it is the directory the walk came down from (device and inode), so a
 * directory moved away meanwhile stops the walk instead of leading it out of the tree.
 * Directories are read with getdents64 into a buffer of each held level's own: a level costs
 * about seven system calls, which is what a tree of 10,000 levels on a busy machine needs. */
#define RM_HELD 16
#define RM_BUF 8192

struct rm_level {
  char *name; /* in the level above (the first: in the caller's dfd) */
  dev_t dev;
  ino_t ino;
  int fd;    /* open for the RM_HELD deepest levels, -1 above them */
  char *buf; /* its entries read so far: buf[pos..len) not seen yet */
  size_t pos, len;
};

struct rm_walk {
  struct rm_level *lv;
  size_t n, cap, held;
  bool keep_top;     /* empty the first level, but leave it (remove_dir_contents) */
  struct stat *kept; /* directories that could not be removed: not entered again on a rescan */
  size_t nkept;
  int r, errno_;
};

static void
rm_failed (struct rm_walk *w)
{
  if (w->r == 0)
    w->errno_ = errno;
  w->r = -1;
}

/* A directory to empty: O_NOFOLLOW, and one without permissions (overlay's work/work is 000)
 * is made 0700 through its pinned O_PATH descriptor, never through its name again. */
static int
rm_open_dir (int dfd, const char *name)
{
  char proc[64];
  cleanup_close int path = -1;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 || errno != EACCES)
    return fd;
  path = openat (dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (path < 0)
    return -1;
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", path);
  if (chmod (proc, 0700) < 0)
    return -1;
  return openat (path, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static bool
rm_is_kept (const struct rm_walk *w, const struct stat *st)
{
  for (size_t i = 0; i < w->nkept; i++)
    if (w->kept[i].st_dev == st->st_dev && w->kept[i].st_ino == st->st_ino)
      return true;
  return false;
}

static void
rm_hold (struct rm_walk *w, struct rm_level *l, int fd)
{
  l->fd = fd;
  l->buf = xmalloc (RM_BUF);
  l->pos = l->len = 0;
  w->held++;
}

static void
rm_let_go (struct rm_walk *w, struct rm_level *l)
{
  close (l->fd);
  free (l->buf);
  l->fd = -1;
  l->buf = NULL;
  w->held--;
}

/* The next entry of a held level ("." and ".." skipped); NULL at its end (errno 0) or on an error. */
static struct dirent64 *
rm_next (struct rm_level *l)
{
  for (;;)
    {
      struct dirent64 *e;
      if (l->pos >= l->len)
        {
          ssize_t n = getdents64 (l->fd, l->buf, RM_BUF);
          if (n <= 0)
            {
              if (n == 0)
                errno = 0;
              return NULL;
            }
          l->pos = 0;
          l->len = (size_t) n;
        }
      e = (struct dirent64 *) (void *) (l->buf + l->pos);
      l->pos += e->d_reclen;
      if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
        return e;
    }
}

/* Is the directory (sx) the root of a mount (another file system, or a bind mount) below the walk's start? */
static bool
rm_is_mount (const struct rm_walk *w, const struct statx *sx, const struct stat *st)
{
  if (w->n == 0)
    return false; /* the caller's own choice */
  if (sx->stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return (sx->stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  return st->st_dev != w->lv[w->n - 1].dev;
}

/* Enter directory fd (named name in the current level); takes fd. 1: a kept one, skipped. A mount
 * below the tree is never entered (its files are not the tree's): it stays, and so do its parents. */
static int
rm_push (struct rm_walk *w, const char *name, int fd)
{
  struct statx sx;
  struct stat st = { 0 };
  if (statx (fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &sx) < 0)
    {
      close (fd);
      return -1;
    }
  st.st_dev = makedev (sx.stx_dev_major, sx.stx_dev_minor);
  st.st_ino = sx.stx_ino;
  if (rm_is_kept (w, &st))
    {
      close (fd); /* its failure is already counted */
      return 1;
    }
  if (rm_is_mount (w, &sx, &st))
    {
      close (fd);
      w->kept = xrealloc (w->kept, (w->nkept + 1) * sizeof *w->kept);
      w->kept[w->nkept++] = st; /* counted once, not entered on a rescan either */
      errno = EBUSY;
      return -1;
    }
  /* the held levels are always the deepest ones: the shallowest of them is let go */
  if (w->held == RM_HELD)
    rm_let_go (w, &w->lv[w->n - w->held]);
  if (w->n == w->cap)
    {
      w->cap = w->cap ? 2 * w->cap : 64;
      w->lv = xrealloc (w->lv, w->cap * sizeof *w->lv);
    }
  w->lv[w->n] = (struct rm_level){ .name = xstrdup (name), .dev = st.st_dev, .ino = st.st_ino };
  rm_hold (w, &w->lv[w->n++], fd);
  return 0;
}

/* The current level is empty (or holds what could not be removed): remove it from its parent,
 * which is reopened through ".." when it was let go. false when the walk must stop. */
static bool
rm_pop (struct rm_walk *w, int dfd)
{
  struct rm_level *top = &w->lv[w->n - 1], *up = w->n > 1 ? &w->lv[w->n - 2] : NULL;
  bool go_on = true;
  if (up && up->fd < 0)
    {
      struct stat st;
      int fd = openat (top->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || fstat (fd, &st) < 0 || st.st_dev != up->dev || st.st_ino != up->ino)
        {
          if (fd >= 0)
            close (fd);
          errno = ESTALE; /* the tree changed under the walk */
          rm_failed (w);
          go_on = false;
        }
      else
        rm_hold (w, up, fd); /* read again from its start: what was removed is gone */
    }
  rm_let_go (w, top);
  if (up == NULL && w->keep_top)
    go_on = true; /* emptied: the caller keeps it */
  else if (go_on && unlinkat (up ? up->fd : dfd, top->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    {
      rm_failed (w);
      w->kept = xrealloc (w->kept, (w->nkept + 1) * sizeof *w->kept);
      w->kept[w->nkept++] = (struct stat){ .st_dev = top->dev, .st_ino = top->ino };
    }
  free (top->name);
  w->n--;
  return go_on;
}

/* One entry of the current level: a non-directory is unlinked, a directory entered. */
static void
rm_entry (struct rm_walk *w, int fd, const struct dirent64 *e)
{
  unsigned char type = e->d_type;
  int child;
  if (type == DT_UNKNOWN)
    {
      struct stat st;
      if (fstatat (fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno != ENOENT)
            rm_failed (w);
          return;
        }
      type = S_ISDIR (st.st_mode) ? DT_DIR : DT_REG;
    }
  if (type != DT_DIR)
    {
      if (unlinkat (fd, e->d_name, 0) < 0 && errno != ENOENT)
        rm_failed (w);
      return;
    }
  child = rm_open_dir (fd, e->d_name);
  if (child < 0)
    {
      /* raced into a non-directory: unlink it like one */
      if (errno == ENOTDIR || errno == ELOOP)
        {
          if (unlinkat (fd, e->d_name, 0) < 0 && errno != ENOENT)
            rm_failed (w);
        }
      else if (errno != ENOENT)
        rm_failed (w);
      return;
    }
  if (rm_push (w, e->d_name, child) < 0)
    rm_failed (w);
}

/* The walk from its first level (pushed) to its end. */
static int
rm_run (struct rm_walk *w, int dfd)
{
  while (w->n > 0)
    {
      struct rm_level *top = &w->lv[w->n - 1];
      struct dirent64 *e = rm_next (top);
      if (e != NULL)
        {
          rm_entry (w, top->fd, e);
          continue;
        }
      if (errno != 0)
        rm_failed (w);
      if (!rm_pop (w, dfd))
        break;
    }
  while (w->n > 0)
    {
      struct rm_level *l = &w->lv[--w->n];
      if (l->fd >= 0)
        rm_let_go (w, l);
      free (l->name);
    }
  free (w->lv);
  free (w->kept);
  errno = w->errno_;
  return w->r;
}

int
remove_dir_contents (int fd)
{
  struct rm_walk w = { .keep_top = true };
  int own = openat (fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (own < 0 || rm_push (&w, ".", own) < 0)
    return -1;
  return rm_run (&w, fd);
}

int
remove_tree_at (int dfd, const char *name)
{
  struct rm_walk w = { 0 };
  int fd = rm_open_dir (dfd, name);
  if (fd < 0)
    return unlinkat (dfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
  if (rm_push (&w, name, fd) < 0)
    return -1;
  return rm_run (&w, dfd);
}

int
remove_tree (const char *path)
{
  return remove_tree_at (AT_FDCWD, path);
}

int
same_file (const char *a, const char *b)
{
  struct stat sa, sb;
  if (stat (a, &sa) < 0 || stat (b, &sb) < 0)
    return -1;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
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
