/* Container logs in the CRI format (logfile.h). The writer lives in the monitor, whose RSS
 * budget is about 1 MiB: it keeps at most one 16 KiB partial line per stream and no stdio. */
#define _GNU_SOURCE
#include "engine/logfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define LOG_DEFAULT_MAX (10LL * 1024 * 1024)
#define LOG_CHUNK 16384 /* text of one record at most; a longer line becomes P records */
#define LOG_HDR_ROOM 64 /* room before the text for "<time> <stream> <tag> " */
#define LOG_POLL_MS 100

/* ---------------------------------------------------------------- time parsing */

/* A bounded cursor: record timestamps are not NUL-terminated. */
struct cur {
  const char *p, *end;
};

static bool
cur_eat (struct cur *c, char ch)
{
  if (c->p >= c->end || *c->p != ch)
    return false;
  c->p++;
  return true;
}

static bool
cur_digit (const struct cur *c)
{
  return c->p < c->end && isdigit ((unsigned char) *c->p);
}

/* Between min and max decimal digits. */
static int
cur_digits (struct cur *c, int min, int max, long long *v)
{
  int n = 0;
  for (*v = 0; n < max && cur_digit (c); n++)
    *v = *v * 10 + (*c->p++ - '0');
  return n >= min ? 0 : -1;
}

/* The digits after a '.', as nanoseconds: the first nine count, later ones are dropped. */
static int
cur_fraction (struct cur *c, long long *ns)
{
  long long scale = NS_PER_S;
  if (!cur_digit (c))
    return -1;
  for (*ns = 0; cur_digit (c); c->p++)
    if (scale > 1)
      {
        scale /= 10;
        *ns += (*c->p - '0') * scale;
      }
  return 0;
}

static int
parse_date (struct cur *c, struct tm *tm)
{
  long long y, m, d;
  if (cur_digits (c, 4, 4, &y) < 0 || !cur_eat (c, '-') || cur_digits (c, 2, 2, &m) < 0 || !cur_eat (c, '-')
      || cur_digits (c, 2, 2, &d) < 0)
    return -1;
  *tm = (struct tm){ .tm_year = (int) y - 1900, .tm_mon = (int) m - 1, .tm_mday = (int) d };
  return 0;
}

static int
parse_clock (struct cur *c, struct tm *tm)
{
  long long h, m, s;
  if (cur_digits (c, 2, 2, &h) < 0 || !cur_eat (c, ':') || cur_digits (c, 2, 2, &m) < 0 || !cur_eat (c, ':')
      || cur_digits (c, 2, 2, &s) < 0 || h > 23 || m > 59 || s > 59)
    return -1;
  tm->tm_hour = (int) h, tm->tm_min = (int) m, tm->tm_sec = (int) s;
  return 0;
}

/* 'Z' or ±hh:mm, as seconds east of UTC. */
static int
parse_zone (struct cur *c, long long *off)
{
  long long h, m;
  int sign = c->p < c->end && *c->p == '-' ? -1 : 1;
  *off = 0;
  if (cur_eat (c, 'Z') || cur_eat (c, 'z'))
    return 0;
  if (!cur_eat (c, '+') && !cur_eat (c, '-'))
    return -1;
  if (cur_digits (c, 2, 2, &h) < 0 || !cur_eat (c, ':') || cur_digits (c, 2, 2, &m) < 0 || h > 23 || m > 59)
    return -1;
  *off = sign * (h * 3600 + m * 60);
  return 0;
}

/* timegm() normalises 02-30 into 03-02: a date that moves was not a real one. */
static int
tm_to_ns (const struct tm *tm, long long off, long long frac, long long *ns)
{
  struct tm t = *tm;
  long long secs;
  if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1)
    return -1;
  secs = (long long) timegm (&t) - off;
  if (t.tm_mday != tm->tm_mday || t.tm_mon != tm->tm_mon || secs >= LLONG_MAX / NS_PER_S
      || secs <= LLONG_MIN / NS_PER_S)
    return -1;
  *ns = secs * NS_PER_S + frac;
  return 0;
}

/* RFC3339 with a zone and an optional fraction; with date_only, a bare date is midnight UTC. */
static int
parse_rfc3339 (const char *s, size_t len, bool date_only, long long *ns)
{
  struct cur c = { s, s + len };
  struct tm tm;
  long long frac = 0, off = 0;
  if (parse_date (&c, &tm) < 0)
    return -1;
  if (c.p == c.end)
    return date_only ? tm_to_ns (&tm, 0, 0, ns) : -1;
  if ((!cur_eat (&c, 'T') && !cur_eat (&c, 't')) || parse_clock (&c, &tm) < 0)
    return -1;
  if (cur_eat (&c, '.') && cur_fraction (&c, &frac) < 0)
    return -1;
  if (parse_zone (&c, &off) < 0 || c.p != c.end)
    return -1;
  return tm_to_ns (&tm, off, frac, ns);
}

/* Unix seconds with an optional fraction: 1700000000 or 1700000000.5. */
static int
parse_unix (const char *s, long long *ns)
{
  struct cur c = { s, s + strlen (s) };
  long long secs, frac = 0;
  if (cur_digits (&c, 1, 11, &secs) < 0)
    return -1;
  if (cur_eat (&c, '.') && cur_fraction (&c, &frac) < 0)
    return -1;
  if (c.p != c.end || secs >= LLONG_MAX / NS_PER_S)
    return -1;
  *ns = secs * NS_PER_S + frac;
  return 0;
}

static const struct {
  const char *name;
  long long ns;
} duration_units[] = {
  /* two-letter units first, so "ms" is not read as "m" followed by "s" */
  { "ns", 1 },       { "us", 1000 },         { "\xc2\xb5s", 1000 },    { "ms", 1000000 },
  { "s", NS_PER_S }, { "m", 60 * NS_PER_S }, { "h", 3600 * NS_PER_S },
};

static long long
duration_unit (const char **s)
{
  for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++)
    {
      size_t n = strlen (duration_units[i].name);
      if (strncmp (*s, duration_units[i].name, n) == 0)
        {
          *s += n;
          return duration_units[i].ns;
        }
    }
  return -1;
}

/* One "<number>[.<fraction>]<unit>" of a Go-style duration. */
static int
duration_term (const char **sp, long long *out)
{
  const char *s = *sp;
  long long whole = 0, frac = 0, scale = 1, unit, v;
  bool digits = false;
  for (; isdigit ((unsigned char) *s); s++, digits = true)
    if (__builtin_mul_overflow (whole, 10, &whole) || __builtin_add_overflow (whole, *s - '0', &whole))
      return -1;
  if (*s == '.')
    for (s++; isdigit ((unsigned char) *s); s++, digits = true)
      if (scale < NS_PER_S * 1000000000LL / 10)
        frac = frac * 10 + (*s - '0'), scale *= 10;
  if (!digits || (unit = duration_unit (&s)) < 0 || __builtin_mul_overflow (whole, unit, &v)
      || __builtin_add_overflow (v, (long long) ((long double) frac * unit / scale), &v))
    return -1;
  *sp = s;
  *out = v;
  return 0;
}

static int
parse_duration (const char *s, long long *ns)
{
  long long total = 0, v;
  if (*s == '\0')
    return -1;
  while (*s)
    if (duration_term (&s, &v) < 0 || __builtin_add_overflow (total, v, &total))
      return -1;
  *ns = total;
  return 0;
}

int
log_parse_time (const char *s, long long now_ns, long long *ns, cella_error_t *err)
{
  long long d;
  if (s != NULL && (parse_unix (s, ns) == 0 || parse_rfc3339 (s, strlen (s), true, ns) == 0))
    return 0;
  if (s != NULL && parse_duration (s, &d) == 0 && !__builtin_sub_overflow (now_ns, d, ns))
    return 0;
  return cella_error (err, 0,
                      "time `%s`: expected an RFC3339 time (2026-11-23T10:00:00Z), a date (2026-11-23), "
                      "unix seconds (1700000000.5) or a duration (10m, 1h30m)",
                      s ? s : "");
}

void
log_format_time (long long ns, char *buf, size_t len)
{
  long long secs = ns / NS_PER_S, frac = ns % NS_PER_S;
  time_t t;
  struct tm tm;
  if (frac < 0)
    frac += NS_PER_S, secs--;
  t = (time_t) secs;
  gmtime_r (&t, &tm);
  snprintf (buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, frac);
}

static long long
clock_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---------------------------------------------------------------- writer */

/* A stream's unfinished line: LOG_HDR_ROOM bytes kept free for the record's header, then the
 * text, then one byte for the '\n', so a record goes out with one write() and no copy. */
struct log_line {
  char *buf;
  size_t len;
};

struct log_writer {
  int fd;
  char *path;
  long long max_size, size;
  struct log_line line[2]; /* stdout, stderr */
};

static int
log_open_append (const char *path)
{
  return open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

struct log_writer *
log_writer_open (const char *path, long long max_size, cella_error_t *err)
{
  struct log_writer *w;
  struct stat st;
  cleanup_close int fd = log_open_append (path);
  if (fd < 0)
    return cella_error (err, errno, "open log `%s`", path), NULL;
  if (fstat (fd, &st) < 0)
    return cella_error (err, errno, "stat log `%s`", path), NULL;
  w = xzalloc (sizeof *w);
  w->fd = steal_fd (&fd);
  w->path = xstrdup (path);
  w->max_size = max_size > 0 ? max_size : LOG_DEFAULT_MAX;
  w->size = st.st_size;
  return w;
}

/* PATH becomes PATH.1 (rename replaces the older one) and a new PATH starts. */
static int
log_rotate (struct log_writer *w)
{
  cleanup_free char *old = xasprintf ("%s.1", w->path);
  int fd;
  if (rename (w->path, old) < 0)
    return -1;
  fd = log_open_append (w->path);
  if (fd < 0)
    return -1;
  close (w->fd);
  w->fd = fd;
  w->size = 0;
  return 0;
}

/* Write the stream's kept text as one record and empty it; the text is dropped even when the
 * write fails, so a full disk cannot make the monitor grow. */
static int
log_emit (struct log_writer *w, int idx, bool full)
{
  struct log_line *l = &w->line[idx];
  char ts[40], hdr[LOG_HDR_ROOM];
  int hlen;
  size_t n;
  char *rec;
  int r = 0;
  log_format_time (clock_now_ns (), ts, sizeof ts);
  hlen = snprintf (hdr, sizeof hdr, "%s %s %c ", ts, idx ? "stderr" : "stdout", full ? 'F' : 'P');
  rec = l->buf + LOG_HDR_ROOM - hlen;
  memcpy (rec, hdr, hlen);
  l->buf[LOG_HDR_ROOM + l->len] = '\n';
  n = hlen + l->len + 1;
  l->len = 0;
  /* a failed rotation still writes, to the file it has: losing logs is worse than a big file */
  if (w->size > 0 && w->size + (long long) n > w->max_size && log_rotate (w) < 0)
    r = -1;
  if (write_all (w->fd, rec, n) < 0)
    return -1;
  w->size += n;
  return r;
}

/* Keep text of an unfinished line; each full LOG_CHUNK goes out as a P record. */
static int
log_keep (struct log_writer *w, int idx, const char *s, size_t n)
{
  struct log_line *l = &w->line[idx];
  int r = 0;
  while (n > 0)
    {
      size_t take = LOG_CHUNK - l->len < n ? LOG_CHUNK - l->len : n;
      memcpy (l->buf + LOG_HDR_ROOM + l->len, s, take);
      l->len += take, s += take, n -= take;
      if (l->len == LOG_CHUNK && log_emit (w, idx, false) < 0)
        r = -1;
    }
  return r;
}

int
log_writer_write (struct log_writer *w, int stream, const char *buf, size_t len)
{
  int idx = stream - LOG_STDOUT, r = 0;
  if (w == NULL || (stream != LOG_STDOUT && stream != LOG_STDERR))
    {
      errno = EINVAL;
      return -1;
    }
  if (w->line[idx].buf == NULL)
    w->line[idx].buf = xmalloc (LOG_HDR_ROOM + LOG_CHUNK + 1);
  while (len > 0)
    {
      const char *nl = memchr (buf, '\n', len);
      size_t n = nl ? (size_t) (nl - buf) : len;
      if (log_keep (w, idx, buf, n) < 0 || (nl && log_emit (w, idx, true) < 0))
        r = -1;
      n += nl != NULL;
      buf += n, len -= n;
    }
  return r;
}

void
log_writer_flush (struct log_writer *w)
{
  for (int i = 0; w && i < 2; i++)
    if (w->line[i].len > 0)
      log_emit (w, i, false);
}

void
log_writer_close (struct log_writer *w)
{
  if (w == NULL)
    return;
  log_writer_flush (w);
  close (w->fd);
  free (w->line[0].buf);
  free (w->line[1].buf);
  free (w->path);
  free (w);
}

/* ---------------------------------------------------------------- reader */

struct log_rec {
  long long ns;
  int idx; /* 0 stdout, 1 stderr */
  bool full;
  const char *ts, *text;
  size_t ts_len, text_len;
};

/* "<time> <stdout|stderr> <F|P> <text>"; the space before an empty text is optional. */
static int
parse_record (const char *line, size_t n, struct log_rec *r)
{
  const char *end = line + n, *sp = memchr (line, ' ', n), *p;
  if (sp == NULL || parse_rfc3339 (line, sp - line, false, &r->ns) < 0)
    return -1;
  p = sp + 1;
  if (end - p < 8 || (memcmp (p, "stdout ", 7) != 0 && memcmp (p, "stderr ", 7) != 0) || (p[7] != 'F' && p[7] != 'P'))
    return -1;
  r->idx = p[3] == 'e';
  r->full = p[7] == 'F';
  p += 8;
  if (p < end && *p++ != ' ')
    return -1;
  r->ts = line, r->ts_len = sp - line;
  r->text = p, r->text_len = end - p;
  return 0;
}

/* Lines get ids in the order they start; a tail of N prints only ids >= skip. */
struct log_walk {
  const struct log_read_opts *o;
  int fd[2];
  bool counting;
  long long next_id, skip;
  struct {
    bool mid;     /* inside a line (after a P record) */
    long long id; /* the current line's id, -1 when since/until hide it */
  } st[2];
};

static void
walk_reset (struct log_walk *w)
{
  w->next_id = 0;
  w->st[0].mid = w->st[1].mid = false;
}

static bool
in_range (const struct log_read_opts *o, long long ns)
{
  return (o->since_ns == 0 || ns >= o->since_ns) && (o->until_ns == 0 || ns < o->until_ns);
}

static int
writev_all (int fd, struct iovec *iov, int n)
{
  while (n > 0)
    {
      ssize_t w = writev (fd, iov, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      for (; n > 0 && (size_t) w >= iov->iov_len; iov++, n--)
        w -= iov->iov_len;
      if (n > 0)
        iov->iov_base = (char *) iov->iov_base + w, iov->iov_len -= w;
    }
  return 0;
}

static int
print_record (struct log_walk *w, const struct log_rec *r, bool line_start)
{
  struct iovec iov[4];
  int n = 0;
  if (line_start && w->o->timestamps)
    {
      iov[n++] = (struct iovec){ (void *) r->ts, r->ts_len };
      iov[n++] = (struct iovec){ (void *) " ", 1 };
    }
  iov[n++] = (struct iovec){ (void *) r->text, r->text_len };
  if (r->full)
    iov[n++] = (struct iovec){ (void *) "\n", 1 };
  return writev_all (w->fd[r->idx], iov, n);
}

/* Not a record: a line of its own, printed as it is. */
static int
walk_malformed (struct log_walk *w, const char *line, size_t n)
{
  struct iovec iov[2] = { { (void *) line, n }, { (void *) "\n", 1 } };
  long long id = w->next_id++;
  if (w->counting || id < w->skip)
    return 0;
  return writev_all (w->fd[0], iov, 2);
}

static int
walk_line (struct log_walk *w, const char *line, size_t n, cella_error_t *err)
{
  struct log_rec r;
  bool start;
  if (parse_record (line, n, &r) < 0)
    {
      if (walk_malformed (w, line, n) < 0)
        return cella_error (err, errno, "write log output");
      return 0;
    }
  start = !w->st[r.idx].mid;
  if (start)
    w->st[r.idx].id = in_range (w->o, r.ns) ? w->next_id++ : -1;
  w->st[r.idx].mid = !r.full;
  if (w->counting || w->st[r.idx].id < 0 || w->st[r.idx].id < w->skip)
    return 0;
  if (print_record (w, &r, start) < 0)
    return cella_error (err, errno, "write log output");
  return 0;
}

/* Walk the complete lines of data (and an unterminated last one when `final`): the bytes used. */
static ssize_t
walk_lines (struct log_walk *w, const char *data, size_t len, bool final, cella_error_t *err)
{
  size_t off = 0;
  while (off < len)
    {
      const char *nl = memchr (data + off, '\n', len - off);
      size_t n = nl ? (size_t) (nl - data - off) : len - off;
      if (nl == NULL && !final)
        break;
      if (walk_line (w, data + off, n, err) < 0)
        return -1;
      off += n + (nl != NULL);
    }
  return (ssize_t) off;
}

struct lbuf {
  char *data;
  size_t len, cap;
};

/* Print what the buffer holds and keep an unfinished last line for later. */
static int
lbuf_walk (struct log_walk *w, struct lbuf *b, bool final, cella_error_t *err)
{
  ssize_t used = walk_lines (w, b->data, b->len, final, err);
  if (used < 0)
    return -1;
  if (used > 0)
    memmove (b->data, b->data + used, b->len - used);
  b->len -= used;
  return 0;
}

/* Append everything up to the end of the file. */
static int
lbuf_fill (struct lbuf *b, int fd, const char *path, cella_error_t *err)
{
  for (;;)
    {
      ssize_t r;
      if (b->cap - b->len < 65536)
        {
          b->cap = b->cap * 2 > b->len + 65536 ? b->cap * 2 : b->len + 65536;
          b->data = xrealloc (b->data, b->cap);
        }
      r = read (fd, b->data + b->len, b->cap - b->len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return cella_error (err, errno, "read log `%s`", path);
      if (r == 0)
        return 0;
      b->len += r;
    }
}

/* The file now at PATH, as the reader holds it. */
struct log_cur {
  int fd; /* -1: no file yet */
  dev_t dev;
  ino_t ino;
  struct lbuf buf;
};

static void
log_cur_release (struct log_cur *c)
{
  if (c->fd >= 0)
    close (c->fd);
  free (c->buf.data);
}

/* A missing file is no error: the log is empty, or not started yet. */
static int
log_cur_open (struct log_cur *c, const char *path, cella_error_t *err)
{
  struct stat st;
  c->fd = open (path, O_RDONLY | O_CLOEXEC);
  if (c->fd < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "open log `%s`", path);
  if (fstat (c->fd, &st) < 0)
    return cella_error (err, errno, "stat log `%s`", path);
  c->dev = st.st_dev, c->ino = st.st_ino;
  return 0;
}

/* PATH.1, unless it is the file already open as PATH (a rotation between the two opens). */
static int
read_rotated (const char *path, const struct log_cur *c, struct lbuf *b, cella_error_t *err)
{
  cleanup_free char *old = xasprintf ("%s.1", path);
  cleanup_close int fd = open (old, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "open log `%s`", old);
  if (fstat (fd, &st) < 0)
    return cella_error (err, errno, "stat log `%s`", old);
  if (c->fd >= 0 && st.st_dev == c->dev && st.st_ino == c->ino)
    return 0;
  return lbuf_fill (b, fd, old, err);
}

/* The first pass of a tail: count the lines that pass since/until, then skip all but N. */
static int
count_lines (struct log_walk *w, const struct lbuf *old, const struct lbuf *cur, bool follow, cella_error_t *err)
{
  long long total;
  w->counting = true;
  if (walk_lines (w, old->data, old->len, true, err) < 0 || walk_lines (w, cur->data, cur->len, !follow, err) < 0)
    return -1;
  total = w->next_id;
  walk_reset (w);
  w->counting = false;
  w->skip = total > w->o->tail ? total - w->o->tail : 0;
  return 0;
}

static bool
path_replaced (const char *path, const struct log_cur *c)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return false;
  return c->fd < 0 || st.st_dev != c->dev || st.st_ino != c->ino;
}

/* Print what was added; when PATH is a new file, finish the old one (the writer renames it
 * before it writes the next record, so nothing more comes to it) and go on with the new. */
static int
follow_drain (struct log_walk *w, const char *path, struct log_cur *c, cella_error_t *err)
{
  for (;;)
    {
      bool replaced = path_replaced (path, c);
      if (c->fd >= 0 && (lbuf_fill (&c->buf, c->fd, path, err) < 0 || lbuf_walk (w, &c->buf, replaced, err) < 0))
        return -1;
      if (!replaced)
        return 0;
      if (c->fd >= 0)
        close (c->fd);
      if (log_cur_open (c, path, err) < 0)
        return -1;
      if (c->fd < 0)
        return 0;
    }
}

/* inotify on the directory wakes us early; without it, LOG_POLL_MS polling still works. */
static int
watch_dir (const char *path)
{
  const char *slash = strrchr (path, '/');
  cleanup_free char *dir
      = slash == NULL ? xstrdup (".") : xasprintf ("%.*s", (int) (slash - path + (slash == path)), path);
  int fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0)
    return -1;
  if (inotify_add_watch (fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static void
wait_change (int ifd)
{
  struct pollfd p = { .fd = ifd, .events = POLLIN };
  char ev[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
  if (poll (&p, ifd >= 0, LOG_POLL_MS) > 0)
    while (read (ifd, ev, sizeof ev) > 0)
      ;
}

static int
follow_log (struct log_walk *w, const char *path, struct log_cur *c, cella_error_t *err)
{
  cleanup_close int ifd = watch_dir (path);
  for (;;)
    {
      /* asked before the drain, so what was written before "stop" is still printed */
      bool keep = w->o->keep_following == NULL || w->o->keep_following (w->o->ud);
      if (follow_drain (w, path, c, err) < 0)
        return -1;
      if (!keep)
        return lbuf_walk (w, &c->buf, true, err);
      wait_change (ifd);
    }
}

static int
read_logs (const char *path, struct log_walk *w, struct log_cur *c, struct lbuf *old, cella_error_t *err)
{
  const struct log_read_opts *o = w->o;
  if (log_cur_open (c, path, err) < 0 || read_rotated (path, c, old, err) < 0)
    return -1;
  if (c->fd >= 0 && lbuf_fill (&c->buf, c->fd, path, err) < 0)
    return -1;
  if (o->tail >= 0 && count_lines (w, old, &c->buf, o->follow, err) < 0)
    return -1;
  if (lbuf_walk (w, old, true, err) < 0 || lbuf_walk (w, &c->buf, !o->follow, err) < 0)
    return -1;
  return o->follow ? follow_log (w, path, c, err) : 0;
}

int
log_read (const char *path, const struct log_read_opts *o, int out_fd, int err_fd, cella_error_t *err)
{
  static const struct log_read_opts all = { .tail = -1 };
  struct log_walk w = { .o = o ? o : &all, .fd = { out_fd, err_fd } };
  struct log_cur c = { .fd = -1 };
  struct lbuf old = { 0 };
  int r = read_logs (path, &w, &c, &old, err);
  free (old.data);
  log_cur_release (&c);
  return r;
}
